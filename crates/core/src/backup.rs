//! Backups that make restore points: every disk of every VM is read through the inventory and
//! stored in the repository; a VM's later runs compare chunk digests with its previous point, so
//! only changed chunks are stored, and where the platform's changed-block tracking covers the
//! time since that point, only changed chunks are read. Each disk index is self-contained (it
//! lists every chunk of the disk), so removing an older point never breaks a newer one.
//!
//! A run is two steps: [`backup_vm`] per VM (disks to chunks and indexes), then [`record_point`]
//! (one catalog transaction). A run that fails or is cancelled before the record calls
//! [`discard`], so no index outlives it; its new chunks are unreferenced and `gc` reclaims them.

use crate::catalog::NewVmPoint;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::Core;
use emrest_platform::{PlatformKind, VmKey};
use emrest_repo::Control;
use uuid::Uuid;

/// What one backup run (or one VM of it) stored.
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

impl BackupRunStats {
    fn add(&mut self, o: &BackupRunStats) {
        self.vms += o.vms;
        self.bytes_read += o.bytes_read;
        self.bytes_stored += o.bytes_stored;
        self.chunks_new += o.chunks_new;
        self.chunks_deduplicated += o.chunks_deduplicated;
        self.chunks_zero += o.chunks_zero;
        self.disks_tracked += o.disks_tracked;
    }
}

/// One VM backed up, its indexes stored, not yet in the catalog.
pub struct VmBackup {
    pub point: NewVmPoint,
    pub stats: BackupRunStats,
    /// Sum of the VM's disk sizes.
    pub total_size: u64,
}

/// Back up every disk of one VM into indexes named `<point_id>.<ordinal>`. `platform`, when
/// given, is the platform the VM must be on. On error, the indexes written so far are removed.
pub fn backup_vm(
    core: &Core,
    key: &VmKey,
    platform: Option<PlatformKind>,
    ctl: &dyn Control,
) -> CoreResult<VmBackup> {
    let (catalog, repo, inventory) = (core.catalog(), core.repository(), core.inventory());
    let vm = inventory.vm(key)?;
    if let Some(p) = platform.filter(|p| *p != vm.kind) {
        return Err(CoreError::invalid(
            "VMs",
            format!(
                "VM '{}' is a {} VM, not {}",
                vm.name,
                vm.kind.wire_platform(),
                p.wire_platform()
            ),
        ));
    }
    let previous = catalog.latest_vm_point(key)?;
    let point_id = Uuid::new_v4();
    let mut stats = BackupRunStats {
        vms: 1,
        ..Default::default()
    };
    let mut disks: Vec<PointDisk> = Vec::new();
    let run = (|| -> CoreResult<()> {
        for (ordinal, disk) in vm.disks.iter().enumerate() {
            let prev_disk = previous
                .as_ref()
                .and_then(|p| p.disks.iter().find(|d| d.name == disk.name));
            // An unreadable previous index only costs deduplication hints, not the backup.
            let prev_index = prev_disk.and_then(|d| repo.get_index(&d.index).ok());
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
            // Stored as its changes against the previous point's index where few changed.
            repo.put_index_after(&index_name, &index, prev_disk.map(|d| d.index.as_str()))?;
            disks.push(PointDisk {
                name: disk.name.clone(),
                size: disk.size,
                index: index_name,
            });
            stats.bytes_read += s.bytes_read;
            stats.bytes_stored += s.bytes_stored;
            stats.chunks_new += s.chunks_new;
            stats.chunks_deduplicated += s.chunks_deduplicated;
            stats.chunks_zero += s.chunks_zero;
        }
        Ok(())
    })();
    if let Err(e) = run {
        discard_disks(core, &disks);
        return Err(e);
    }
    Ok(VmBackup {
        total_size: vm.disks.iter().map(|d| d.size).sum(),
        point: NewVmPoint {
            id: point_id,
            obj_ref: vm.hierarchy_obj_ref(),
            vm: key.clone(),
            platform: vm.kind,
            vm_name: vm.name,
            datastore: vm.datastore,
            storage_profile: vm.storage_profile,
            power: vm.power,
            disks,
        },
        stats,
    })
}

fn discard_disks(core: &Core, disks: &[PointDisk]) {
    for d in disks {
        if let Err(e) = core.repository().delete_index(&d.index) {
            tracing::warn!(
                "cannot remove index {} of an abandoned backup: {e}",
                d.index
            );
        }
    }
}

/// Remove the indexes of VMs backed up by a run that will not be recorded.
pub fn discard(core: &Core, vms: &[VmBackup]) {
    for v in vms {
        discard_disks(core, &v.point.disks);
    }
}

/// Record VMs backed up at `at` as one restore point of the backup named `backup_name`
/// (created on first use). The first point of a backup is Full, the later ones Increment.
pub fn record_point(
    core: &Core,
    backup_name: &str,
    backup_server: Uuid,
    at: Millis,
    vms: Vec<VmBackup>,
) -> CoreResult<(RestorePointRecord, BackupRunStats)> {
    let catalog = core.catalog();
    let platform = vms
        .first()
        .map(|v| v.point.platform)
        .ok_or_else(|| CoreError::invalid("VMs", "a backup needs at least one VM"))?;
    let backup = catalog.ensure_backup(backup_name, platform, backup_server, at)?;
    let point_type = if catalog.restore_points(Some(backup.id))?.is_empty() {
        PointType::Full
    } else {
        PointType::Increment
    };
    let mut stats = BackupRunStats::default();
    for v in &vms {
        stats.add(&v.stats);
    }
    let rp_id = Uuid::new_v4();
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
    let points: Vec<NewVmPoint> = vms.into_iter().map(|v| v.point).collect();
    if let Err(e) = catalog.insert_restore_point(&rp, &file, &points) {
        for p in &points {
            discard_disks(core, &p.disks);
        }
        return Err(e);
    }
    Ok((rp, stats))
}

/// Back up `vms` into the backup named `backup_name` as one restore point taken at `at`; all
/// VMs must share one platform. Nothing is recorded unless every VM was backed up.
pub fn run_backup(
    core: &Core,
    backup_name: &str,
    backup_server: Uuid,
    vms: &[VmKey],
    at: Millis,
    ctl: &dyn Control,
) -> CoreResult<(RestorePointRecord, BackupRunStats)> {
    let first = vms
        .first()
        .ok_or_else(|| CoreError::invalid("VMs", "a backup needs at least one VM"))?;
    let platform = core.inventory().vm(first)?.kind;
    let mut done = Vec::new();
    for key in vms {
        match backup_vm(core, key, Some(platform), ctl) {
            Ok(v) => done.push(v),
            Err(e) => {
                discard(core, &done);
                return Err(e);
            }
        }
    }
    record_point(core, backup_name, backup_server, at, done)
}
