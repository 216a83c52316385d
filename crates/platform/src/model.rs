//! Plain data describing hierarchy roots, datastores, VMs and disks.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::urn::{hierarchy_obj_ref, types};

/// The virtualisation platform a hierarchy root belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlatformKind {
    /// A vCenter server.
    VMware,
    /// A Hyper-V host.
    HyperV,
    /// A VMware Cloud Director system.
    VCloud,
}

impl PlatformKind {
    /// All kinds, in a fixed order.
    pub const ALL: [PlatformKind; 3] = [
        PlatformKind::VMware,
        PlatformKind::HyperV,
        PlatformKind::VCloud,
    ];

    /// The `<Platform>` segment of a HierarchyObjRef URN.
    ///
    /// `HyperV`, as the responses in em_rest/jobs_id.md and em_rest/vmrestorepoints_id.md spell
    /// it (what a real server emits); em_rest/constructing_hierarchyobjreftype.md writes
    /// `Hyperv` in prose, so parsing accepts any case.
    pub fn urn_platform(&self) -> &'static str {
        match self {
            PlatformKind::VMware => "VMware",
            PlatformKind::HyperV => "HyperV",
            PlatformKind::VCloud => "vCloud",
        }
    }

    /// The kind named by a URN `<Platform>` segment, compared case-insensitively.
    pub fn from_urn_platform(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.urn_platform().eq_ignore_ascii_case(s))
    }

    /// The HierarchyRoot `HostType` of a root of this kind (em_rest/get_hierarchyroots_id.md).
    pub fn host_type(&self) -> &'static str {
        match self {
            PlatformKind::VMware => "VC",
            PlatformKind::HyperV => "HvServer",
            PlatformKind::VCloud => "VcdSystem",
        }
    }

    /// The kind whose [`host_type`](Self::host_type) is `s` (case-insensitive); other
    /// documented host types (`ESX`, `HvCluster`, ...) are not roots emrest creates.
    pub fn from_host_type(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.host_type().eq_ignore_ascii_case(s))
    }

    /// The value of a Backup's `Platform` element.
    pub fn wire_platform(&self) -> &'static str {
        match self {
            PlatformKind::VMware => "VMware",
            PlatformKind::HyperV => "HyperV",
            PlatformKind::VCloud => "vCloud",
        }
    }

    /// The kind whose [`wire_platform`](Self::wire_platform) is `s` (case-insensitive).
    pub fn from_wire_platform(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.wire_platform().eq_ignore_ascii_case(s))
    }

    /// The URN `<Type>` of the hierarchy root object itself.
    pub fn root_type(&self) -> &'static str {
        match self {
            PlatformKind::VMware => types::VC,
            PlatformKind::HyperV => types::HOST,
            PlatformKind::VCloud => types::VCD_SYSTEM,
        }
    }

    /// The URN `<Type>` of templates on this platform, if it has any.
    pub fn template_type(&self) -> Option<&'static str> {
        match self {
            PlatformKind::VMware => Some(types::TEMPLATE),
            PlatformKind::HyperV => None,
            PlatformKind::VCloud => Some(types::VAPP_TEMPLATE),
        }
    }
}

/// Power state of a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PowerState {
    /// Running.
    PoweredOn,
    /// Stopped.
    PoweredOff,
}

/// A hierarchy root: a vCenter, a Hyper-V host or a Cloud Director system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootInfo {
    /// HierarchyRootId.
    pub id: Uuid,
    /// Display name (host name).
    pub name: String,
    /// Platform of the root.
    pub kind: PlatformKind,
    /// UniqueId (vCenter InstanceUUID-like string).
    pub unique_id: String,
}

/// A datastore (VMware, vCloud) or volume (Hyper-V) under a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatastoreInfo {
    /// Root the datastore belongs to.
    pub root: Uuid,
    /// Object ref (`datastore-1001`, `volume-1001`, `urn:vcloud:datastore:<uuid>`).
    pub object_ref: String,
    /// Display name.
    pub name: String,
    /// Capacity in bytes, `None` for unlimited.
    pub capacity: Option<u64>,
}

impl DatastoreInfo {
    /// The datastore's HierarchyObjRef, given the kind of its root.
    pub fn hierarchy_obj_ref(&self, kind: PlatformKind) -> String {
        hierarchy_obj_ref(kind, types::DATASTORE, self.root, &self.object_ref)
    }
}

/// A Cloud Director org VDC storage profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageProfileInfo {
    /// Root the profile belongs to.
    pub root: Uuid,
    /// Object ref (`urn:vcloud:vdcstorageprofile:<uuid>`).
    pub object_ref: String,
    /// Display name.
    pub name: String,
}

impl StorageProfileInfo {
    /// The profile's HierarchyObjRef (`urn:vCloud:OrgVdcStorageProfile:...`).
    pub fn hierarchy_obj_ref(&self) -> String {
        hierarchy_obj_ref(
            PlatformKind::VCloud,
            types::ORG_VDC_STORAGE_PROFILE,
            self.root,
            &self.object_ref,
        )
    }
}

/// A template (vApp template on Cloud Director, VM template on vCenter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Root the template belongs to.
    pub root: Uuid,
    /// Object ref (`urn:vcloud:vapptemplate:<uuid>` or `vm-<n>`).
    pub object_ref: String,
    /// Display name.
    pub name: String,
}

/// One virtual disk of a VM.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiskInfo {
    /// Disk name, unique within the VM (e.g. `disk-0`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// A virtual machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmInfo {
    /// Root the VM belongs to.
    pub root: Uuid,
    /// Platform of the root.
    pub kind: PlatformKind,
    /// Object ref (`vm-1001`, a lower-case GUID, `urn:vcloud:vm:<uuid>`).
    pub object_ref: String,
    /// Display name, unique within the root.
    pub name: String,
    /// Object ref of the datastore holding the VM.
    pub datastore: String,
    /// Object ref of the storage profile (Cloud Director only).
    pub storage_profile: Option<String>,
    /// Current power state.
    pub power: PowerState,
    /// Disks, in creation order.
    pub disks: Vec<DiskInfo>,
}

impl VmInfo {
    /// The VM's HierarchyObjRef (`urn:<Platform>:Vm:<root>.<ref>`).
    pub fn hierarchy_obj_ref(&self) -> String {
        hierarchy_obj_ref(self.kind, types::VM, self.root, &self.object_ref)
    }

    /// The key that identifies the VM.
    pub fn key(&self) -> VmKey {
        VmKey {
            root: self.root,
            object_ref: self.object_ref.clone(),
        }
    }
}

/// Identifies a VM: its root and its object ref.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VmKey {
    /// HierarchyRootId.
    pub root: Uuid,
    /// Object ref within the root.
    pub object_ref: String,
}

/// A disk image written aside, not yet part of any VM.
///
/// Dropping a staged disk that was not handed to `replace_disks` or
/// `create_vm_from_staged` removes its file, so an aborted restore leaves nothing behind.
#[derive(Debug)]
pub struct StagedDisk {
    /// Name the disk will carry in the VM.
    pub disk_name: String,
    /// Size in bytes.
    pub size: u64,
    /// The open image, for the restore to write into.
    pub file: File,
    path: PathBuf,
    root: Uuid,
    datastore: String,
    consumed: bool,
}

impl StagedDisk {
    /// Wraps a staging file created by an inventory driver.
    pub fn new(
        root: Uuid,
        datastore: &str,
        disk_name: &str,
        size: u64,
        file: File,
        path: PathBuf,
    ) -> Self {
        StagedDisk {
            disk_name: disk_name.to_string(),
            size,
            file,
            path,
            root,
            datastore: datastore.to_string(),
            consumed: false,
        }
    }

    /// Where the image is staged.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Root whose datastore holds the image.
    pub fn root(&self) -> Uuid {
        self.root
    }

    /// Object ref of the datastore holding the image.
    pub fn datastore(&self) -> &str {
        &self.datastore
    }

    /// Marks the file as owned by a VM (or a pending swap): dropping no longer removes it.
    pub(crate) fn mark_consumed(&mut self) {
        self.consumed = true;
    }
}

impl Drop for StagedDisk {
    fn drop(&mut self) {
        if !self.consumed {
            // Best effort: a leftover is also removed by `clean_staging`.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
