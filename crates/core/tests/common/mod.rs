//! The demo world and the checks the engine tests share: disks by SHA-256, damaged chunks.
#![allow(dead_code)]

use emrest_core::demo::DemoOptions;
use emrest_core::{Caller, Core, CoreConfig, Owner, Role, VmRestorePointRecord};
use emrest_repo::{ChunkDigest, ChunkLocation, Durability};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Open a data folder without fsyncs, with `workers` restore workers.
pub fn open(dir: &std::path::Path, workers: usize) -> Arc<Owner> {
    let cfg = CoreConfig {
        durability: Durability::NoSync,
        restore_workers: workers,
        ..CoreConfig::new(dir)
    };
    Arc::new(Core::open(cfg).expect("open core").0)
}

/// A demo world with `disk_mib` MiB disks and a logged-on Portal Administrator.
pub fn world(disk_mib: u64, workers: usize) -> (tempfile::TempDir, Arc<Owner>, Caller) {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = open(dir.path(), workers);
    core.create_demo(&DemoOptions {
        disk_size: disk_mib << 20,
    })
    .expect("demo");
    core.add_account("tester", "pw", Role::PortalAdministrator)
        .expect("account");
    let s = core.logons().logon("tester", "pw").expect("logon");
    let caller = core.logons().caller(s.id).expect("caller");
    (dir, core, caller)
}

/// disk name → sha256 of the VM's disks now (empty when the VM does not exist).
pub fn vm_disks(core: &Owner, name: &str) -> BTreeMap<String, String> {
    core.vm_report()
        .expect("vm report")
        .into_iter()
        .find(|v| v.name == name)
        .map(|v| v.disks.into_iter().map(|d| (d.name, d.sha256)).collect())
        .unwrap_or_default()
}

/// disk name → sha256 of a point's disks.
pub fn point_disks(core: &Owner, id: uuid::Uuid) -> BTreeMap<String, String> {
    core.point_report()
        .expect("point report")
        .into_iter()
        .find(|p| p.id == id.to_string())
        .map(|p| p.disks.into_iter().map(|d| (d.name, d.sha256)).collect())
        .expect("point")
}

/// The first data chunk of a point's first disk, and where the repository keeps it.
pub fn first_chunk(core: &Owner, p: &VmRestorePointRecord) -> (ChunkDigest, ChunkLocation) {
    let index = core
        .repository()
        .get_index(&p.disks[0].index)
        .expect("index");
    let chunk = *index.referenced().next().expect("a data chunk");
    let loc = core.repository().chunk_location(&chunk).expect("stored");
    assert!(loc.pack.starts_with(core.data_dir()));
    (chunk, loc)
}

/// Flip bits of the last byte of a stored chunk, inside its pack file.
pub fn damage(loc: &ChunkLocation, mask: u8) {
    let mut bytes = std::fs::read(&loc.pack).expect("pack");
    let last = (loc.offset + loc.len - 1) as usize;
    bytes[last] ^= mask;
    std::fs::write(&loc.pack, bytes).expect("write pack");
}
