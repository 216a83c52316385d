//! The world both benchmarks measure: one backup server, one vCenter root, one VM with one disk
//! of `size` bytes filled like a real disk (random, text-like and zero regions).

use emrest_core::demo::fill_disk;
use emrest_core::{BackupServerRecord, Owner};
use emrest_platform::{DiskInfo, PlatformKind, PowerState, VmInfo};

/// Create the benchmark VM in `core` and fill its disk.
pub fn bench_vm(core: &Owner, size: u64) -> Result<VmInfo, Box<dyn std::error::Error>> {
    let server = BackupServerRecord {
        id: uuid::Uuid::new_v4(),
        name: "bench".into(),
        description: String::new(),
        port: 9392,
        version: "bench".into(),
    };
    core.catalog().insert_backup_server(&server)?;
    let inv = core.inventory();
    let root = inv.create_root(uuid::Uuid::new_v4(), "vc.bench", PlatformKind::VMware)?;
    core.catalog().insert_hierarchy_root(root.id, server.id)?;
    let ds = inv.add_datastore(root.id, "ds1", None)?;
    let disks = [DiskInfo {
        name: "disk-0".into(),
        size,
    }];
    let vm = inv.create_vm(
        root.id,
        &ds.object_ref,
        "bench-vm",
        &disks,
        PowerState::PoweredOn,
    )?;
    let f = inv.open_disk(&vm.key(), "disk-0", true)?;
    fill_disk(&f, size, 42)?;
    f.sync_all()?;
    Ok(vm)
}
