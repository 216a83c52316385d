//! The query and lookup services: `<QueryResult>` with `<PagingInfo>`, `<QuerySvc>`,
//! `<LookupSvc>` and `<HierarchyItems>` (query_service.md, querysvc.md, lookupsvc.md,
//! lookup_query.md; the JSON shapes from JSON.md B9 and B10).

use super::{links_member, resource_layer, Entity, EntityRef, Link, Task};
use crate::node::{attr, child, elem, list, ListStyle, Member, Node, Representation, Scalar};

/// The members of `EntitiesType`, in the order a real v12 server serialises them, typos
/// included (`EnterpiseRoles`, `AgentBackupJob`: JSON.md A3 and B9). Every one is present in
/// JSON (`null` when unused); XML shows only the one in use.
pub const ENTITIES_MEMBERS: &[&str] = &[
    "Jobs",
    "FailoverPlans",
    "Backups",
    "Replicas",
    "Repositories",
    "RestorePoints",
    "VmRestorePoints",
    "VAppRestorePoints",
    "VmReplicaPoints",
    "BackupJobSessions",
    "ReplicaJobSessions",
    "ReplicaTaskSessions",
    "RestoreSessions",
    "HierarchyRoots",
    "BackupTaskSessions",
    "BackupServers",
    "ManagedServers",
    "EnterpiseRoles",
    "EnterpiseAccounts",
    "WanAccelerators",
    "CloudGateways",
    "CloudTenants",
    "CloudReplicas",
    "VCloudOrganizationConfigs",
    "BackupFiles",
    "VSphereSelfServiceConfigs",
    "CloudPublicIps",
    "CloudHardwarePlans",
    "CloudVmReplicaPoints",
    "AgentRestorePoints",
    "AgentBackupJob",
    "CloudGatewayPools",
    "CloudFailoverPlans",
    "ExternalRepositories",
    "VlanConfigurations",
    "CloudFailoverSessions",
    "AgentProtectionGroups",
    "DiscoveredComputers",
    "FileServers",
    "NASJobs",
    "CdpReplicas",
    "CdpReplicaVms",
    "CdpPolicies",
    "CdpReplicaSessions",
    "CdpReplicaTaskSessions",
    "VAppReplicaPoints",
    "VmCdpReplicas",
    "VAppCdpReplicas",
    "VAppCdpReplicaVms",
    "SystemSessions",
];

/// The members of `ResourcesType`, where query results that are not entities (tasks) go.
/// From the XSD (JSON.md GOXSD: `Files, Directories, Tasks, CredentialsList, …`); no real JSON
/// sample shows it, so the names after `Tasks` are the XSD's as best known.
pub const RESOURCES_MEMBERS: &[&str] = &[
    "Files",
    "Directories",
    "Tasks",
    "CredentialsList",
    "ObjectsInJob",
    "AccountRole",
    "AccountHierarchyScope",
    "PasswordKeyInfoList",
];

/// A list inside `Entities` or `Resources`: XML `<VmRestorePoints><VmRestorePoint/>…`, JSON
/// `"VmRestorePoints": {"VmRestorePoints": […]}` (JSON.md A7.3). Never `null` for the queried
/// type, even when empty, because clients call `len()` on it (JSON.md A7.5).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedList {
    /// The member name, e.g. `VmRestorePoints`.
    pub member: &'static str,
    /// The element name of one item, e.g. `VmRestorePoint`.
    pub item: &'static str,
    /// The items' trees.
    pub nodes: Vec<Node<'static>>,
}

impl TypedList {
    /// A list of entities of one type.
    pub fn of<T: Entity>(items: &[T]) -> TypedList {
        TypedList {
            member: T::LIST,
            item: T::ELEMENT,
            nodes: items.iter().map(|i| i.to_node().into_owned()).collect(),
        }
    }

    /// An empty list under a member name (for types emrest holds no records of).
    pub fn empty(member: &'static str, item: &'static str) -> TypedList {
        TypedList {
            member,
            item,
            nodes: Vec::new(),
        }
    }

    fn node(&self) -> Node<'static> {
        Node::new(self.member).layer(vec![list(
            self.member,
            ListStyle::Inline,
            self.item,
            Some(self.nodes.clone()),
        )])
    }
}

/// One member per name of `names`, `null` except the one `used` names.
fn members_with(names: &'static [&'static str], used: &TypedList) -> Vec<Member<'static>> {
    names
        .iter()
        .map(|n| child(n, (*n == used.member).then(|| used.node())))
        .collect()
}

/// `<PagingInfo PageNum PageSize PagesCount><Links>` (pagesize_and_page.md; JSON.md A5 order
/// `Links, PageNum, PageSize, PagesCount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagingInfo {
    /// First, Previous, Next and Last links (no Next on the last page, no Previous on the
    /// first: a client stops when Next is missing, JSON.md C3).
    pub links: Vec<Link>,
    /// 1-based page number.
    pub page_num: i64,
    /// Items per page.
    pub page_size: i64,
    /// Number of pages.
    pub pages_count: i64,
}

impl Representation for PagingInfo {
    fn to_node(&self) -> Node<'_> {
        let PagingInfo {
            links,
            page_num,
            page_size,
            pages_count,
        } = self;
        Node::new("PagingInfo").layer(vec![
            links_member(links),
            attr("PageNum", *page_num),
            attr("PageSize", *page_size),
            attr("PagesCount", *pages_count),
        ])
    }
}

/// What a query found: references, entities, or resources (tasks).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryContent {
    /// Default: `Refs`.
    Refs(Vec<EntityRef>),
    /// `format=Entities`: one member of `Entities`.
    Entities(TypedList),
    /// Tasks, which have no reference form, under `Resources.Tasks`.
    Tasks(Vec<Task>),
    /// VMs of jobs (`type=ObjectInJob`), which have no reference form either, under
    /// `Resources.ObjectsInJob`, as `/jobs/{ID}/includes` lists them.
    ObjectsInJob(super::ObjectsInJob),
}

/// `GET /query?…` (query_service.md; JSON.md B9: `Refs, Entities, Resources, Links,
/// PagingInfo`, the unused ones `null`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// What was found.
    pub content: QueryContent,
    /// Paging of the result.
    pub paging_info: PagingInfo,
}

impl Representation for QueryResult {
    fn to_node(&self) -> Node<'_> {
        let QueryResult {
            content,
            paging_info,
        } = self;
        let (refs, entities, resources) = match content {
            QueryContent::Refs(refs) => (
                Some(Node::new("Refs").layer(vec![list(
                    "Refs",
                    ListStyle::Inline,
                    "Ref",
                    Some(refs.iter().map(Representation::to_node).collect()),
                )])),
                None,
                None,
            ),
            QueryContent::Entities(l) => (
                None,
                Some(Node::new("Entities").layer(members_with(ENTITIES_MEMBERS, l))),
                None,
            ),
            QueryContent::Tasks(tasks) => {
                let l = TypedList::of(tasks);
                (
                    None,
                    None,
                    Some(Node::new("Resources").layer(members_with(RESOURCES_MEMBERS, &l))),
                )
            }
            QueryContent::ObjectsInJob(objects) => (
                None,
                None,
                Some(
                    Node::new("Resources").layer(
                        RESOURCES_MEMBERS
                            .iter()
                            .map(|n| child(n, (*n == "ObjectsInJob").then(|| objects.to_node())))
                            .collect::<Vec<_>>(),
                    ),
                ),
            ),
        };
        Node::new("QueryResult").layer(vec![
            child("Refs", refs),
            child("Entities", entities),
            child("Resources", resources),
            links_member(&[]),
            child("PagingInfo", Some(paging_info.to_node())),
        ])
    }
}

/// A service document: `<QuerySvc Type="QueryService">` or `<LookupSvc Type="LookupService">`,
/// a set of links (querysvc.md, lookupsvc.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDocument {
    /// Root element: `QuerySvc` or `LookupSvc`.
    pub element: &'static str,
    /// `Type`: `QueryService` or `LookupService`.
    pub type_: &'static str,
    /// Its own URL.
    pub href: String,
    /// Up to the logon session, Down to the queries.
    pub links: Vec<Link>,
}

impl ServiceDocument {
    /// `GET /querySvc`.
    pub fn query_service(href: String, links: Vec<Link>) -> Self {
        ServiceDocument {
            element: "QuerySvc",
            type_: "QueryService",
            href,
            links,
        }
    }

    /// `GET /lookupSvc`.
    pub fn lookup_service(href: String, links: Vec<Link>) -> Self {
        ServiceDocument {
            element: "LookupSvc",
            type_: "LookupService",
            href,
            links,
        }
    }
}

impl Representation for ServiceDocument {
    fn to_node(&self) -> Node<'_> {
        let ServiceDocument {
            element,
            type_,
            href,
            links,
        } = self;
        Node::new(element).layer(resource_layer(links, href, *type_))
    }
}

/// `<HierarchyItem Type="HierarchyItem">`: one object found by a lookup (lookup_query.md;
/// JSON order `ObjectRef, ObjectType, ObjectName, Links, Href, Type`, JSON.md B10). Real
/// responses carry no links and no Href.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchyItem {
    /// HierarchyObjRef of the object.
    pub object_ref: String,
    /// Its type, e.g. `Vm`.
    pub object_type: String,
    /// Its name.
    pub object_name: String,
}

impl Representation for HierarchyItem {
    fn to_node(&self) -> Node<'_> {
        let HierarchyItem {
            object_ref,
            object_type,
            object_name,
        } = self;
        Node::new("HierarchyItem")
            .layer(vec![
                elem("ObjectRef", object_ref),
                elem("ObjectType", object_type),
                elem("ObjectName", object_name),
            ])
            .layer(resource_layer(&[], Scalar::Null, "HierarchyItem"))
    }
}

impl Entity for HierarchyItem {
    const ELEMENT: &'static str = "HierarchyItem";
    const LIST: &'static str = "HierarchyItems";
}

/// `GET /lookup?…`: `<HierarchyItems>`, JSON `{"HierarchyItems":[…]}`.
pub type HierarchyItems = super::EntityList<HierarchyItem>;
