//! emrest extension for the restore portal (`GET /api/emrest/vms`), outside the documented
//! representations: the VMs the caller may restore, with what a person picking one needs to
//! see (where it runs, whether it is on, its newest restore point).

use super::{resource_layer, Entity, Link};
use crate::node::{elem, Node, Representation, Scalar};

/// `<RestorableVm Type="RestorableVm">`: one VM with a restore point inside the caller's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorableVm {
    /// `Related`: the VM's newest VM restore point.
    pub links: Vec<Link>,
    /// The VM's name in its newest restore point.
    pub name: String,
    /// Its HierarchyObjRef (`urn:<Platform>:Vm:<root>.<ref>`).
    pub hierarchy_obj_ref: String,
    /// `VMware`, `HyperV` or `vCloud`.
    pub platform: String,
    /// The name of its hierarchy root (vCenter, Hyper-V host, Cloud Director); absent when the
    /// root is no longer registered.
    pub hierarchy_root_name: Option<String>,
    /// `PoweredOn` or `PoweredOff`; absent when the VM is no longer in the inventory.
    pub power_state: Option<String>,
    /// How many of its restore points the caller may see.
    pub restore_point_count: i64,
    /// UID of its newest VM restore point.
    pub last_restore_point_uid: String,
    /// When that point was made.
    pub last_restore_point_time_utc: crate::UtcTime,
    /// `Full` or `Increment`, as `VmRestorePoint`'s `PointType`.
    pub last_restore_point_type: String,
}

impl Representation for RestorableVm {
    fn to_node(&self) -> Node<'_> {
        let RestorableVm {
            links,
            name,
            hierarchy_obj_ref,
            platform,
            hierarchy_root_name,
            power_state,
            restore_point_count,
            last_restore_point_uid,
            last_restore_point_time_utc,
            last_restore_point_type,
        } = self;
        Node::new("RestorableVm")
            .layer(vec![
                elem("Name", name),
                elem("HierarchyObjRef", hierarchy_obj_ref),
                elem("Platform", platform),
                elem("HierarchyRootName", hierarchy_root_name.as_deref()),
                elem("PowerState", power_state.as_deref()),
                elem("RestorePointCount", *restore_point_count),
                elem("LastRestorePointUid", last_restore_point_uid),
                elem("LastRestorePointTimeUTC", *last_restore_point_time_utc),
                elem("LastRestorePointType", last_restore_point_type),
            ])
            .layer(resource_layer(links, Scalar::Null, "RestorableVm"))
    }
}

impl Entity for RestorableVm {
    const ELEMENT: &'static str = "RestorableVm";
    const LIST: &'static str = "RestorableVms";
}

/// `GET /api/emrest/vms`: `<RestorableVms>`, JSON `{"RestorableVms":[…]}`.
pub type RestorableVms = super::EntityList<RestorableVm>;
