//! Hypervisor inventories behind one trait, and the `local` driver.
//!
//! emrest restores VMs into an [`Inventory`]: hierarchy roots (a vCenter `VC`, a Hyper-V
//! host `HvServer`, a Cloud Director system `VcdSystem`), their datastores, storage
//! profiles and templates, and VMs made of named raw disk images. This crate knows
//! nothing of HTTP, the catalog or the backup repository.
//!
//! Objects are named on the wire by HierarchyObjRef URNs,
//! `urn:<Platform>:<Type>:<HierarchyRootId>.<ObjectRef>`; see [`hierarchy_obj_ref`] and
//! [`parse_hierarchy_obj_ref`].
//!
//! A restore goes through staging: [`Inventory::stage_disk`] gives a sparse file in the
//! target datastore, the restore fills it, and [`Inventory::replace_disks`] or
//! [`Inventory::create_vm_from_staged`] swaps it in atomically, so a VM never holds a
//! half-written disk.
//!
//! [`LocalInventory`] keeps everything in a folder; its module documents the layout.

mod cbt;
mod error;
mod inventory;
pub mod local;
mod model;
pub mod names;
mod urn;

pub use cbt::ChangedBlocks;
pub use error::PlatformError;
pub use inventory::Inventory;
pub use local::LocalInventory;
pub use model::{
    DatastoreInfo, DiskInfo, PlatformKind, PowerState, RootInfo, StagedDisk, StorageProfileInfo,
    TemplateInfo, VmInfo, VmKey,
};
pub use urn::{hierarchy_obj_ref, known_types, parse_hierarchy_obj_ref, types, ObjRef};
