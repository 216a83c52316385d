//! The security resources (accounts_and_roles_intro.md): `/security`, accounts, roles,
//! an account's roles and restore scopes. Element names and order follow the pages and the
//! XSD types they name (EnterpriseAccountEntityType, EnterpriseAccountInRoleType,
//! EnterpriseAccountHierarchyScopeType, mapping_link_types_to_xml_schema.md).

use super::{entity_layer, resource_layer, Entity, EntityList, Link};
use crate::node::{child, elem, Node, Representation};

/// `GET /security` (security.md, scenario_restore_scope.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseSecuritySettings {
    /// URL of `/security`.
    pub href: String,
    /// Down to accounts and roles, Create an account.
    pub links: Vec<Link>,
}

impl Representation for EnterpriseSecuritySettings {
    fn to_node(&self) -> Node<'_> {
        let EnterpriseSecuritySettings { href, links } = self;
        Node::new("EnterpriseSecuritySettings").layer(resource_layer(
            links,
            href,
            "EnterpriseSecuritySettings",
        ))
    }
}

/// `<FlrSettings>` of an account (get_security_accounts_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRestoreSettings {
    /// Restore only files with the listed extensions.
    pub flr_inplace_only: bool,
    /// Comma-separated extensions.
    pub flr_extention_restrictions: Option<String>,
}

/// `<SqlSettings>` of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlRestoreSettings {
    /// Overwriting production databases is forbidden.
    pub deny_in_place_restore: bool,
}

/// An account entity (get_security_accounts_id.md, security_accounts_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseAccount {
    /// URL of the entity.
    pub href: String,
    /// `DOMAIN\name`.
    pub name: String,
    /// `urn:veeam:EnterpriseAccount:<uuid>`.
    pub uid: String,
    /// Alternate, roles and scopes (Down, Create), Delete, ToggleRestoreScopesEnabled.
    pub links: Vec<Link>,
    /// `User`, `Group`, `ExternalUser`, `ExternalGroup`.
    pub account_type: String,
    /// Whether the account may restore every VM.
    pub allow_restore_all_vms: bool,
    /// File-level restore restrictions, when set.
    pub flr_settings: Option<FileRestoreSettings>,
    /// SQL restore restrictions, when set.
    pub sql_settings: Option<SqlRestoreSettings>,
}

impl Representation for EnterpriseAccount {
    fn to_node(&self) -> Node<'_> {
        let EnterpriseAccount {
            href,
            name,
            uid,
            links,
            account_type,
            allow_restore_all_vms,
            flr_settings,
            sql_settings,
        } = self;
        let flr = flr_settings.as_ref().map(|f| {
            let FileRestoreSettings {
                flr_inplace_only,
                flr_extention_restrictions,
            } = f;
            Node::new("FlrSettings").layer(vec![
                elem("FlrInplaceOnly", *flr_inplace_only),
                elem("FlrExtentionRestrictions", flr_extention_restrictions),
            ])
        });
        let sql = sql_settings.as_ref().map(|s| {
            let SqlRestoreSettings {
                deny_in_place_restore,
            } = s;
            Node::new("SqlSettings").layer(vec![elem("DenyInPlaceRestore", *deny_in_place_restore)])
        });
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("AccountType", account_type),
                elem("AllowRestoreAllVms", *allow_restore_all_vms),
                child("FlrSettings", flr),
                child("SqlSettings", sql),
            ])
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for EnterpriseAccount {
    const ELEMENT: &'static str = "EnterpriseAccount";
    const LIST: &'static str = "EnterpriseAccounts";
}

/// A role entity (security_roles_id.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseRole {
    /// URL of the entity.
    pub href: String,
    /// Display name, e.g. `Portal User`.
    pub name: String,
    /// `urn:veeam:EnterpriseRole:<uuid>`.
    pub uid: String,
    /// The Alternate link.
    pub links: Vec<Link>,
}

impl Representation for EnterpriseRole {
    fn to_node(&self) -> Node<'_> {
        let EnterpriseRole {
            href,
            name,
            uid,
            links,
        } = self;
        Node::new(Self::ELEMENT)
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for EnterpriseRole {
    const ELEMENT: &'static str = "EnterpriseRole";
    const LIST: &'static str = "EnterpriseRoles";
}

/// One role of an account (EnterpriseAccountInRoleType: `RoleName`, then the resource layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseAccountInRole {
    /// URL `/security/accounts/{ID}/roles/{ID}`.
    pub href: String,
    /// Delete and the role's reference.
    pub links: Vec<Link>,
    /// Display name of the role.
    pub role_name: String,
}

impl Representation for EnterpriseAccountInRole {
    fn to_node(&self) -> Node<'_> {
        let EnterpriseAccountInRole {
            href,
            links,
            role_name,
        } = self;
        Node::new(Self::ELEMENT)
            .layer(vec![elem("RoleName", role_name)])
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for EnterpriseAccountInRole {
    const ELEMENT: &'static str = "EnterpriseAccountInRole";
    // security_accounts_id_roles.md: `<EnterpriseAccountInRoleList>`.
    const LIST: &'static str = "EnterpriseAccountInRoleList";
}

/// One restore scope object of an account (scenario_restore_scope.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseAccountHierarchyScope {
    /// URL `/security/accounts/{ID}/scopes/{ID}`.
    pub href: String,
    /// The Delete link.
    pub links: Vec<Link>,
    /// Name of the object.
    pub name: String,
    /// Name of its hierarchy root.
    pub hierarchy_root_name: String,
    /// `VMware`, `HyperV`, `vCloud`.
    pub platform: String,
    /// URN type of the object (`Vm`, `Datastore`, `Vc`, `Host`, …).
    pub hierarchy_object_type: String,
    /// Whether Enterprise Manager has resolved the object's VMs.
    pub state: String,
}

impl Representation for EnterpriseAccountHierarchyScope {
    fn to_node(&self) -> Node<'_> {
        let EnterpriseAccountHierarchyScope {
            href,
            links,
            name,
            hierarchy_root_name,
            platform,
            hierarchy_object_type,
            state,
        } = self;
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("Name", name),
                elem("HierarchyRootName", hierarchy_root_name),
                elem("Platform", platform),
                elem("HierarchyObjectType", hierarchy_object_type),
                elem("State", state),
            ])
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}

impl Entity for EnterpriseAccountHierarchyScope {
    const ELEMENT: &'static str = "EnterpriseAccountHierarchyScope";
    // security_accounts_id_scopes.md: `<EnterpriseAccountHierarchyScopes>`.
    const LIST: &'static str = "EnterpriseAccountHierarchyScopes";
}

/// `GET /security/accounts?format=Entity`.
pub type EnterpriseAccounts = EntityList<EnterpriseAccount>;
/// `GET /security/roles?format=Entity`.
pub type EnterpriseRoles = EntityList<EnterpriseRole>;
/// `GET /security/accounts/{ID}/roles`.
pub type EnterpriseAccountInRoleList = EntityList<EnterpriseAccountInRole>;
/// `GET /security/accounts/{ID}/scopes`.
pub type EnterpriseAccountHierarchyScopes = EntityList<EnterpriseAccountHierarchyScope>;
