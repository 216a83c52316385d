//! The [`Inventory`] trait every hypervisor driver implements.

use std::fs::File;

use uuid::Uuid;

use crate::cbt::ChangedBlocks;
use crate::error::PlatformError;
use crate::model::{
    DatastoreInfo, DiskInfo, PlatformKind, PowerState, RootInfo, StagedDisk, StorageProfileInfo,
    TemplateInfo, VmInfo, VmKey,
};

/// A hypervisor inventory: hierarchy roots, datastores, VMs, their disks and power.
///
/// Datastores, storage profiles and VMs are addressed by their object ref within a root
/// (e.g. `datastore-1001`, `urn:vcloud:vdcstorageprofile:<uuid>`).
pub trait Inventory: Send + Sync {
    /// All hierarchy roots, ordered by name.
    fn roots(&self) -> Result<Vec<RootInfo>, PlatformError>;
    /// One hierarchy root.
    fn root(&self, id: Uuid) -> Result<RootInfo, PlatformError>;
    /// Adds a hierarchy root; `AlreadyExists` if the id is taken, `NameInUse` if the name is.
    fn create_root(
        &self,
        id: Uuid,
        name: &str,
        kind: PlatformKind,
    ) -> Result<RootInfo, PlatformError>;
    /// Adds a datastore (a volume on Hyper-V); `capacity` in bytes, `None` for unlimited.
    fn add_datastore(
        &self,
        root: Uuid,
        name: &str,
        capacity: Option<u64>,
    ) -> Result<DatastoreInfo, PlatformError>;
    /// The root's datastores, in creation order.
    fn datastores(&self, root: Uuid) -> Result<Vec<DatastoreInfo>, PlatformError>;
    /// Adds an org VDC storage profile (Cloud Director only, else `Unsupported`).
    fn add_storage_profile(
        &self,
        root: Uuid,
        name: &str,
    ) -> Result<StorageProfileInfo, PlatformError>;
    /// The root's storage profiles, in creation order.
    fn storage_profiles(&self, root: Uuid) -> Result<Vec<StorageProfileInfo>, PlatformError>;
    /// Adds a template (vApp template on Cloud Director, VM template on vCenter).
    fn add_template(&self, root: Uuid, name: &str) -> Result<TemplateInfo, PlatformError>;
    /// The root's templates, in creation order.
    fn templates(&self, root: Uuid) -> Result<Vec<TemplateInfo>, PlatformError>;
    /// All VMs of all roots, ordered by (root name, VM name).
    fn vms(&self) -> Result<Vec<VmInfo>, PlatformError>;
    /// One VM; `NotFound` names its HierarchyObjRef.
    fn vm(&self, key: &VmKey) -> Result<VmInfo, PlatformError>;
    /// The VM of that exact name in the root, if any.
    fn find_vm_by_name(&self, root: Uuid, name: &str) -> Result<Option<VmInfo>, PlatformError>;
    /// New VM with empty (sparse, zero) disks.
    fn create_vm(
        &self,
        root: Uuid,
        datastore: &str,
        name: &str,
        disks: &[DiskInfo],
        power: PowerState,
    ) -> Result<VmInfo, PlatformError>;
    /// Removes a VM and its disks.
    fn delete_vm(&self, key: &VmKey) -> Result<(), PlatformError>;
    /// Opens one of the VM's disk images, read-only or read-write.
    fn open_disk(&self, key: &VmKey, disk: &str, write: bool) -> Result<File, PlatformError>;
    /// A guest write: `bytes` at `offset` of the disk, recorded by changed-block tracking
    /// where the platform has it. Writes past the end of the disk are refused.
    fn write_disk(
        &self,
        key: &VmKey,
        disk: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), PlatformError> {
        let file = self.open_disk(key, disk, true)?;
        let size = file
            .metadata()
            .map_err(|e| PlatformError::io(format!("inspecting disk {disk}"), e))?
            .len();
        if offset
            .checked_add(bytes.len() as u64)
            .is_none_or(|end| end > size)
        {
            return Err(PlatformError::Unsupported {
                what: format!("writing past the end of disk {disk:?} ({size} bytes)"),
            });
        }
        std::os::unix::fs::FileExt::write_all_at(&file, bytes, offset)
            .map_err(|e| PlatformError::io(format!("writing disk {disk}"), e))
    }
    /// The blocks of the disk written since its last checkpoint; `None` when the platform
    /// has no tracking for it, or the tracking is invalid (a write bypassed it, the disk was
    /// resized or replaced) — the caller then compares contents instead.
    fn changed_blocks(
        &self,
        _key: &VmKey,
        _disk: &str,
    ) -> Result<Option<ChangedBlocks>, PlatformError> {
        Ok(None)
    }
    /// Ends the disk's tracking period, returning its changed blocks as
    /// [`Inventory::changed_blocks`] would, and starts a new one labelled `label` (what
    /// the disk holds now, e.g. the restore point just taken or restored).
    fn checkpoint_disk(
        &self,
        _key: &VmKey,
        _disk: &str,
        _label: &str,
    ) -> Result<Option<ChangedBlocks>, PlatformError> {
        Ok(None)
    }
    /// Powers the VM on or off; the state persists.
    fn set_power(&self, key: &VmKey, power: PowerState) -> Result<(), PlatformError>;
    /// A sparse file of `size` zero bytes in the datastore's staging area, for a restore to fill.
    fn stage_disk(
        &self,
        root: Uuid,
        datastore: &str,
        disk_name: &str,
        size: u64,
    ) -> Result<StagedDisk, PlatformError>;
    /// Throws a staged disk away.
    fn discard_staged(&self, staged: StagedDisk);
    /// Swap staged disks in place of the VM's disks of the same names (fsync staged files, rename over, fsync dirs); the VM's config updated (sizes); disks not named are left alone.
    ///
    /// All checks happen before anything changes; if one fails the staged disks are dropped
    /// (removed) and the VM is untouched. Once the swap starts it is journalled, so a crash
    /// is completed on the next open instead of leaving a mix of old and new disks.
    fn replace_disks(&self, key: &VmKey, staged: Vec<StagedDisk>) -> Result<(), PlatformError>;
    /// [`Inventory::replace_disks`] without flushing the staged images first: for a caller
    /// that has durably recorded what the disks must hold, brings them there after a crash
    /// (a swap that never reached the device included) and fsyncs them itself. A driver that
    /// cannot tell the difference flushes anyway.
    fn replace_disks_unflushed(
        &self,
        key: &VmKey,
        staged: Vec<StagedDisk>,
    ) -> Result<(), PlatformError> {
        self.replace_disks(key, staged)
    }
    /// Register a new VM (name must be unique in the root → NameInUse) from staged disks; `object_ref` Some → reuse that ref (restore of a deleted VM), None → allocate a new ref.
    ///
    /// The VM appears at once, complete, or not at all; on error the staged disks are removed.
    /// A reused ref must have the platform's VM ref format and be free (`AlreadyExists`).
    #[allow(clippy::too_many_arguments)]
    fn create_vm_from_staged(
        &self,
        root: Uuid,
        datastore: &str,
        object_ref: Option<&str>,
        name: &str,
        storage_profile: Option<&str>,
        staged: Vec<StagedDisk>,
        power: PowerState,
    ) -> Result<VmInfo, PlatformError>;
    /// Remove leftover staging files (after a crash); returns how many were removed.
    fn clean_staging(&self) -> Result<usize, PlatformError>;
}
