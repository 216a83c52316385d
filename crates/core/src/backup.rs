//! Backups that make restore points: every disk of every VM is read through the inventory and
//! stored in the repository; a VM's later runs compare chunk digests with its previous point, so
//! only changed chunks are stored, and where the platform's changed-block tracking covers the
//! time since that point, only changed chunks are read (the jobs API comes with issue 3).

use crate::catalog::NewVmPoint;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::Core;
use emrest_platform::VmKey;
use emrest_repo::Control;
use uuid::Uuid;

/// What one backup run stored.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BackupRunStats {
    pub vms: u64,
    pub bytes_read: u64,
    pub bytes_stored: u64,
    pub chunks_new: u64,
    pub chunks_deduplicated: u64,
    pub chunks_zero: u64,
    /// Disks whose changed-block tracking was used (only their changed chunks were read).
    pub disks_tracked: u64,
}

/// Back up `vms` into the backup named `backup_name` as one restore point taken at `at`.
pub fn run_backup(
    core: &Core,
    backup_name: &str,
    backup_server: Uuid,
    vms: &[VmKey],
    at: Millis,
    ctl: &dyn Control,
) -> CoreResult<(RestorePointRecord, BackupRunStats)> {
    let (catalog, repo, inventory) = (core.catalog(), core.repository(), core.inventory());
    let first = vms
        .first()
        .ok_or_else(|| CoreError::invalid("VMs", "a backup needs at least one VM"))?;
    let platform = inventory.vm(first)?.kind;
    let backup = catalog.ensure_backup(backup_name, platform, backup_server, at)?;
    let first_point = catalog.restore_points(Some(backup.id))?.is_empty();
    let point_type = if first_point {
        PointType::Full
    } else {
        PointType::Increment
    };
    let rp_id = Uuid::new_v4();
    let mut stats = BackupRunStats::default();
    let mut points = Vec::new();
    for key in vms {
        let vm = inventory.vm(key)?;
        if vm.kind != platform {
            return Err(CoreError::invalid(
                "VMs",
                format!(
                    "VM '{}' is on another platform than the backup '{backup_name}'",
                    vm.name
                ),
            ));
        }
        let previous = catalog.latest_vm_point(key)?;
        let point_id = Uuid::new_v4();
        let mut disks = Vec::new();
        for (ordinal, disk) in vm.disks.iter().enumerate() {
            let prev_disk = previous
                .as_ref()
                .and_then(|p| p.disks.iter().find(|d| d.name == disk.name));
            let prev_index = prev_disk.map(|d| repo.get_index(&d.index)).transpose()?;
            let index_name = format!("{point_id}.{ordinal}");
            // The tracking period ends before the disk is read, so writes during the read land
            // in the next period. Its blocks count only if it started at the previous point.
            let tracked = inventory.checkpoint_disk(key, &disk.name, &index_name)?;
            let changed = match (tracked, prev_disk) {
                (Some(t), Some(p)) if t.label == p.index && t.disk_size == disk.size => {
                    stats.disks_tracked += 1;
                    Some(t.chunk_mask(repo.chunk_size()))
                }
                _ => None,
            };
            let file = inventory.open_disk(key, &disk.name, false)?;
            let (index, s) = repo.backup_disk(
                &file,
                disk.size,
                prev_index.as_ref(),
                changed.as_deref(),
                ctl,
            )?;
            repo.put_index(&index_name, &index)?;
            stats.bytes_read += s.bytes_read;
            stats.bytes_stored += s.bytes_stored;
            stats.chunks_new += s.chunks_new;
            stats.chunks_deduplicated += s.chunks_deduplicated;
            stats.chunks_zero += s.chunks_zero;
            disks.push(PointDisk {
                name: disk.name.clone(),
                size: disk.size,
                index: index_name,
            });
        }
        stats.vms += 1;
        points.push(NewVmPoint {
            id: point_id,
            obj_ref: vm.hierarchy_obj_ref(),
            vm: key.clone(),
            platform: vm.kind,
            vm_name: vm.name,
            datastore: vm.datastore,
            storage_profile: vm.storage_profile,
            power: vm.power,
            disks,
        });
    }
    let rp = RestorePointRecord {
        id: rp_id,
        backup_id: backup.id,
        backup_name: backup.name.clone(),
        backup_server_id: backup.backup_server_id,
        created: at,
        point_type,
    };
    // Backup file naming follows Veeam's `<job>D<yyyy-mm-ddThhmmss>.vbk|.vib`.
    let ext = match point_type {
        PointType::Full => "vbk",
        PointType::Increment => "vib",
    };
    let file = BackupFileRecord {
        id: Uuid::new_v4(),
        backup_id: backup.id,
        backup_name: backup.name.clone(),
        backup_server_id: backup.backup_server_id,
        restore_point_id: rp_id,
        file_name: format!("{}D{}.{ext}", backup.name, crate::time::file_stamp(at)),
        backup_size: stats.bytes_stored,
        data_size: stats.bytes_read,
        created: at,
    };
    catalog.insert_restore_point(&rp, &file, &points)?;
    Ok((rp, stats))
}
