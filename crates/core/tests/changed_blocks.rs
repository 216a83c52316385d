//! Changed-block tracking through `Core`: backups and QuickRollback read and write only the chunks
//! the platform says changed, and fall back to comparing digests when a write bypassed it.

use emrest_core::demo::DemoOptions;
use emrest_core::{Caller, Core, CoreConfig, Owner, RestoreRequest, Role, TaskState};
use emrest_platform::VmKey;
use emrest_repo::Durability;
use std::time::Duration;

const CHUNK: u64 = emrest_repo::DEFAULT_CHUNK_SIZE as u64;
const DISK_MIB: u64 = 8;
const CHUNKS: u64 = (DISK_MIB << 20) / CHUNK;

fn world() -> (tempfile::TempDir, Owner, Caller) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = CoreConfig {
        durability: Durability::NoSync,
        restore_workers: 2,
        ..CoreConfig::new(dir.path())
    };
    let (core, _) = Core::open(cfg).expect("open core");
    core.create_demo(&DemoOptions {
        disk_size: DISK_MIB << 20,
    })
    .expect("demo");
    core.add_account("tester", "pw", Role::PortalAdministrator)
        .expect("account");
    let s = core.logons().logon("tester", "pw").expect("logon");
    let caller = core.logons().caller(s.id).expect("caller");
    (dir, core, caller)
}

/// db01: one disk of DISK_MIB MiB.
fn db01(core: &Owner) -> VmKey {
    core.inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == "db01")
        .expect("db01")
        .key()
}

fn points(core: &Owner) -> Vec<emrest_core::VmRestorePointRecord> {
    let mut p: Vec<_> = core
        .view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .filter(|p| p.vm_name == "db01")
        .collect();
    p.sort_by_key(|p| p.created);
    p
}

/// Guest writes through the platform: one 4 KiB block at each offset.
fn guest_writes(core: &Owner, key: &VmKey, offsets: &[u64]) {
    for (n, &off) in offsets.iter().enumerate() {
        core.inventory()
            .write_disk(key, "disk-0", off, &[n as u8 + 1; 4096])
            .expect("tracked write");
    }
}

/// A write straight into the image, as a process outside emrest would do it.
fn bypass_write(core: &Owner, key: &VmKey) {
    use std::os::unix::fs::FileExt;
    let f = core
        .inventory()
        .open_disk(key, "disk-0", true)
        .expect("open");
    f.write_all_at(b"outside", 5 * CHUNK + 17).expect("write");
}

/// Runs a QuickRollback to `point` and returns (examined, written) chunk counts from its log.
fn quick_rollback(core: &Owner, caller: &Caller, point: uuid::Uuid) -> (String, u64, u64) {
    let req = RestoreRequest {
        quick_rollback: true,
        ..Default::default()
    };
    let t = core.restores().start(caller, point, &req).expect("start");
    let mut t = core.as_caller(caller).task(t.id).expect("task");
    for _ in 0..2000 {
        if t.state == TaskState::Finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        t = core.as_caller(caller).task(t.id).expect("task");
    }
    assert_eq!(t.result.as_ref().map(|r| r.0), Some(true), "{:?}", t.result);
    let log = core
        .as_caller(caller)
        .restore_log(t.restore_session_id.expect("session"))
        .expect("log");
    let number_after = |line: &str, word: &str| -> u64 {
        line.split(word)
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after {word:?} in {line:?}"))
    };
    let plan = log
        .iter()
        .find(|l| l.text.contains("examined "))
        .expect("a planning line")
        .text
        .clone();
    let wrote = log
        .iter()
        .find(|l| l.text.contains("quick rollback wrote "))
        .expect("a writing line");
    let examined = number_after(&plan, "examined ");
    let written = number_after(&wrote.text, "wrote ");
    (format!("{plan}\n{}", wrote.text), examined, written)
}

fn disk_sha(core: &Owner, vm: &str) -> Vec<String> {
    core.vm_report()
        .expect("report")
        .into_iter()
        .find(|v| v.name == vm)
        .map(|v| v.disks.into_iter().map(|d| d.sha256).collect())
        .expect("vm")
}

fn point_sha(core: &Owner, id: uuid::Uuid) -> Vec<String> {
    core.point_report()
        .expect("report")
        .into_iter()
        .find(|p| p.id == id.to_string())
        .map(|p| p.disks.into_iter().map(|d| d.sha256).collect())
        .expect("point")
}

#[test]
fn quick_rollback_with_tracking_reads_and_writes_only_the_changed_chunks() {
    let (_dir, core, caller) = world();
    let key = db01(&core);
    let [full, latest] = <[_; 2]>::try_from(points(&core)).expect("two points");
    // Blocks in chunks 3, 50 (two blocks) and the last chunk.
    guest_writes(
        &core,
        &key,
        &[
            3 * CHUNK,
            50 * CHUNK + 4096,
            50 * CHUNK + 8192,
            CHUNKS * CHUNK - 4096,
        ],
    );
    let (plan, examined, written) = quick_rollback(&core, &caller, latest.id);
    assert!(plan.contains("changed-block tracking since"), "{plan}");
    // Tracking began at this very point: the disk is not read at all, the three chunks holding
    // written blocks get the point's bytes for those blocks.
    assert_eq!((examined, written), (0, 3), "{plan}");
    assert!(plan.contains("16384 bytes written since"), "{plan}");
    // Each of the three chunks holding data in the point was read once from the repository
    // (and verified), no more; holes need no read.
    let data_chunks = |p: &emrest_core::VmRestorePointRecord, chunks: &[u64]| {
        let index = core
            .repository()
            .get_index(&p.disks[0].index)
            .expect("index");
        chunks
            .iter()
            .filter(|&&c| index.chunks[c as usize].is_some())
            .count()
    };
    let loaded = data_chunks(&latest, &[3, 50, CHUNKS - 1]);
    assert!(
        plan.contains(&format!("read {loaded} chunks from the repository")),
        "{plan}"
    );
    // Only the four changed 4 KiB blocks were written, not the three whole chunks.
    assert!(plan.contains("(16384 bytes)"), "{plan}");
    assert_eq!(disk_sha(&core, "db01"), point_sha(&core, latest.id));

    // Back to the older point: tracking restarted at `latest`, so the chunks to look at are
    // exactly those where the two points differ, found from their indexes alone.
    let index = |p: &emrest_core::VmRestorePointRecord| {
        core.repository()
            .get_index(&p.disks[0].index)
            .expect("index")
    };
    let (a, b) = (index(&full), index(&latest));
    let differ = a
        .chunks
        .iter()
        .zip(&b.chunks)
        .filter(|(x, y)| x != y)
        .count() as u64;
    assert!(differ > 0 && differ < CHUNKS);
    let (plan, examined, written) = quick_rollback(&core, &caller, full.id);
    assert!(plan.contains("changed-block tracking since"), "{plan}");
    assert_eq!((examined, written), (differ, differ), "{plan}");
    assert_eq!(disk_sha(&core, "db01"), point_sha(&core, full.id));

    // A write that bypassed the platform: every chunk is compared by digest, one is written.
    bypass_write(&core, &key);
    let (plan, examined, written) = quick_rollback(&core, &caller, full.id);
    assert!(plan.contains("no valid changed-block tracking"), "{plan}");
    assert_eq!((examined, written), (CHUNKS, 1), "{plan}");
    // Only the chunk whose digest differs was read from the repository (if it holds data).
    let loaded = data_chunks(&full, &[5]);
    assert!(
        plan.contains(&format!("read {loaded} chunks from the repository")),
        "{plan}"
    );
    assert_eq!(disk_sha(&core, "db01"), point_sha(&core, full.id));
}

#[test]
fn backups_with_tracking_read_only_changed_chunks_and_without_read_everything() {
    let (_dir, core, _caller) = world();
    let key = db01(&core);
    guest_writes(&core, &key, &[0, 4096, 70 * CHUNK, 100 * CHUNK + 8192]);
    let s = core
        .backup_now("Backup Job vcenter01", std::slice::from_ref(&key))
        .expect("backup");
    assert_eq!(s.disks_tracked, 1);
    assert_eq!(s.bytes_read, 3 * CHUNK);
    assert_eq!(s.chunks_new, 3);
    let newest = points(&core).pop().expect("point");
    assert_eq!(point_sha(&core, newest.id), disk_sha(&core, "db01"));

    bypass_write(&core, &key);
    let s = core
        .backup_now("Backup Job vcenter01", std::slice::from_ref(&key))
        .expect("backup");
    assert_eq!(s.disks_tracked, 0);
    assert_eq!(s.bytes_read, DISK_MIB << 20);
    assert_eq!(s.chunks_new, 1);

    // The backup restarted tracking: the next one is tracked again.
    guest_writes(&core, &key, &[9 * CHUNK]);
    let s = core
        .backup_now("Backup Job vcenter01", &[key])
        .expect("backup");
    assert_eq!((s.disks_tracked, s.bytes_read), (1, CHUNK));
    let newest = points(&core).pop().expect("point");
    assert_eq!(point_sha(&core, newest.id), disk_sha(&core, "db01"));
}
