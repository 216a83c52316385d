//! The restore engine through `Core`, without HTTP: every mode leaves the disks bit for bit equal
//! to the restore point, and every failure (cancel, damaged chunk, crash) leaves the VM as it was.

use emrest_core::demo::DemoOptions;
use emrest_core::{Caller, Core, CoreConfig, CoreError, Owner, RestoreRequest, TaskState};
use emrest_repo::Durability;
use std::time::Duration;

mod common;

use common::{damage, open, point_disks, vm_disks, world};

/// The older (Full) point of a VM.
fn full_point(core: &Owner, vm: &str) -> emrest_core::VmRestorePointRecord {
    core.view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .filter(|p| p.vm_name == vm)
        .min_by_key(|p| p.created)
        .expect("a point")
}

fn wait(core: &Owner, caller: &Caller, task: emrest_core::TaskId) -> emrest_core::TaskRecord {
    for _ in 0..2000 {
        let t = core.as_caller(caller).task(task).expect("task");
        if t.state == TaskState::Finished {
            return t;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("task {task} did not finish");
}

#[test]
fn full_restore_replaces_disks_with_the_points_bytes() {
    let (_d, core, caller) = world(4, 2);
    let p = full_point(&core, "web01");
    assert_ne!(
        vm_disks(&core, "web01"),
        point_disks(&core, p.id),
        "demo changed the VM since the full backup"
    );
    let t = core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
        .expect("start");
    let t = wait(&core, &caller, t.id);
    assert_eq!(t.result, Some((true, "Ok".to_string())));
    assert_eq!(vm_disks(&core, "web01"), point_disks(&core, p.id));
}

#[test]
fn quick_rollback_writes_only_changed_chunks() {
    let (_d, core, caller) = world(8, 2);
    let p = full_point(&core, "db01");
    let req = RestoreRequest {
        quick_rollback: true,
        ..Default::default()
    };
    let t = core.restores().start(&caller, p.id, &req).expect("start");
    let t = wait(&core, &caller, t.id);
    assert_eq!(t.result.as_ref().map(|r| r.0), Some(true), "{:?}", t.result);
    assert_eq!(vm_disks(&core, "db01"), point_disks(&core, p.id));
    let session = t.restore_session_id.expect("session");
    let log = core.as_caller(&caller).restore_log(session).expect("log");
    let line = log
        .iter()
        .find(|l| l.text.contains("quick rollback wrote"))
        .expect("a quick rollback line");
    let written: u64 = line
        .text
        .split("wrote ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("chunk count");
    // 128 chunks of 64 KiB; the demo scribbled over 2% of the 2048 4 KiB blocks (41 writes)
    // between the two points. Nothing unchanged may be written.
    assert!(written > 0 && written <= 41, "wrote {written} chunks");
    // A second rollback to the same point finds nothing to write.
    let t2 = core
        .restores()
        .start(&caller, p.id, &req)
        .expect("start again");
    let t2 = wait(&core, &caller, t2.id);
    let log2 = core
        .as_caller(&caller)
        .restore_log(t2.restore_session_id.expect("session"))
        .expect("log");
    assert!(
        log2.iter()
            .any(|l| l.text.contains("quick rollback wrote 0 chunks")),
        "{log2:?}"
    );
}

#[test]
fn keep_original_restores_beside_the_original() {
    let (_d, core, caller) = world(2, 2);
    let p = full_point(&core, "app01");
    let before = vm_disks(&core, "app01");
    let req = RestoreRequest {
        keep_original_vm: true,
        power_on_after: true,
        ..Default::default()
    };
    let t = core.restores().start(&caller, p.id, &req).expect("start");
    assert_eq!(wait(&core, &caller, t.id).result.map(|r| r.0), Some(true));
    assert_eq!(vm_disks(&core, "app01"), before, "original untouched");
    assert_eq!(vm_disks(&core, "app01_restored"), point_disks(&core, p.id));
    // The name is now taken: a second KeepOriginalVM restore is refused before it starts.
    let err = core
        .restores()
        .start(&caller, p.id, &req)
        .expect_err("name in use");
    assert!(
        matches!(err, CoreError::Invalid { ref element, .. } if element.as_deref() == Some("VmNewName")),
        "{err}"
    );
}

#[test]
fn keep_original_with_quick_rollback_is_refused_and_creates_nothing() {
    let (_d, core, caller) = world(1, 2);
    let p = full_point(&core, "web01");
    let req = RestoreRequest {
        keep_original_vm: true,
        quick_rollback: true,
        ..Default::default()
    };
    let err = core
        .restores()
        .start(&caller, p.id, &req)
        .expect_err("refused");
    assert!(
        matches!(err, CoreError::Invalid { ref element, .. } if element.as_deref() == Some("QuickRollback"))
    );
    assert!(core.as_caller(&caller).tasks().expect("tasks").is_empty());
}

#[test]
fn a_corrupt_chunk_fails_the_restore_and_leaves_the_vm_as_it_was() {
    for quick in [false, true] {
        let (dir, core, caller) = world(2, 2);
        let p = full_point(&core, "file01");
        let before = vm_disks(&core, "file01");
        // Damage every chunk the full point needs that the VM's current disks do not already hold.
        let mut damaged = 0;
        for d in &p.disks {
            let index = core.repository().get_index(&d.index).expect("index");
            for digest in index.referenced() {
                let loc = core.repository().chunk_location(digest).expect("stored");
                assert!(loc.pack.starts_with(dir.path().join("repo")));
                damage(&loc, 0xff);
                damaged += 1;
            }
        }
        assert!(damaged > 0);
        let req = RestoreRequest {
            quick_rollback: quick,
            ..Default::default()
        };
        let t = core.restores().start(&caller, p.id, &req).expect("start");
        let t = wait(&core, &caller, t.id);
        let (ok, msg) = t.result.expect("result");
        assert!(!ok, "quick={quick}: the restore must fail");
        assert!(msg.contains("chunk"), "message names the chunk: {msg}");
        assert_eq!(
            vm_disks(&core, "file01"),
            before,
            "quick={quick}: VM untouched"
        );
        let staging: Vec<_> = walk(dir.path().join("platforms"))
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(".staging/"))
            .collect();
        assert!(staging.is_empty(), "staging left behind: {staging:?}");
    }
}

fn walk(dir: std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn cancelling_a_queued_restore_leaves_the_vm_as_it_was() {
    // One worker: the first restore runs, the second waits in Starting and is cancelled there.
    let (_d, core, caller) = world(32, 1);
    let first = full_point(&core, "web01");
    let second = full_point(&core, "db01");
    let before = vm_disks(&core, "db01");
    let t1 = core
        .restores()
        .start(&caller, first.id, &RestoreRequest::default())
        .expect("first");
    let t2 = core
        .restores()
        .start(&caller, second.id, &RestoreRequest::default())
        .expect("second");
    core.restores().delete_task(&caller, t2.id).expect("cancel");
    assert!(
        core.as_caller(&caller).task(t2.id).is_err(),
        "a deleted task is gone"
    );
    wait(&core, &caller, t1.id);
    assert!(core.restores().wait_idle(Duration::from_secs(30)));
    let session = core
        .as_caller(&caller)
        .restore_session(t2.restore_session_id.expect("session"))
        .expect("session");
    assert_eq!(session.result, emrest_core::SessionResult::Failed);
    assert!(
        session
            .failure_message
            .as_deref()
            .is_some_and(|m| m.contains("cancelled by tester")),
        "{session:?}"
    );
    assert_eq!(vm_disks(&core, "db01"), before);
}

#[test]
fn a_second_restore_of_a_busy_vm_is_refused() {
    let (_d, core, caller) = world(32, 1);
    let p = full_point(&core, "web01");
    let t1 = core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
        .expect("first");
    let err = core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
        .expect_err("busy");
    assert!(matches!(err, CoreError::Conflict(_)), "{err}");
    wait(&core, &caller, t1.id);
}

#[test]
fn reopening_after_a_crash_marks_running_tasks_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let core = open(dir.path(), 1);
        core.create_demo(&DemoOptions { disk_size: 1 << 20 })
            .expect("demo");
        let account = uuid::Uuid::new_v4();
        // A task and session left Running, as a killed process leaves them.
        let p = full_point(&core, "web01");
        let session = uuid::Uuid::new_v4();
        core.catalog()
            .insert_restore_session(session, p.id, "web01", account, 1)
            .expect("session");
        core.catalog()
            .insert_task("StartVMRestore", Some(session), account, 1)
            .expect("task");
    }
    let (core, report) = Core::open(CoreConfig {
        durability: Durability::NoSync,
        ..CoreConfig::new(dir.path())
    })
    .expect("reopen");
    assert_eq!(report.interrupted_tasks, 1);
    let tasks = core.catalog().tasks(None).expect("tasks");
    let (ok, msg) = tasks[0].result.clone().expect("finished");
    assert!(!ok && msg.contains("Interrupted"), "{msg}");
    core.catalog().integrity_check().expect("catalog intact");
}

#[test]
fn points_name_their_vms_as_the_inventory_does() {
    let (_d, core, _caller) = world(1, 1);
    for p in core.view().vm_restore_points(None).expect("points") {
        // The point's VM key resolves, and its name and reference are the inventory's.
        let vm = core.inventory().vm(&p.vm).expect("vm exists");
        assert_eq!(vm.name, p.vm_name);
        assert_eq!(vm.hierarchy_obj_ref(), p.hierarchy_obj_ref);
    }
    assert_eq!(
        core.view().vm_restore_points(None).expect("points").len(),
        12
    );
}

#[test]
fn a_second_writer_is_refused_but_a_reader_may_look_while_a_restore_runs() {
    let (dir, core, caller) = world(16, 1);
    let err = Core::open(CoreConfig::new(dir.path()))
        .err()
        .expect("locked");
    assert!(matches!(err, CoreError::Conflict(_)), "{err}");
    let p = full_point(&core, "web01");
    let t = core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
        .expect("start");
    let reader = Core::open(CoreConfig {
        read_only: true,
        ..CoreConfig::new(dir.path())
    })
    .expect("read-only open")
    .0;
    assert_eq!(reader.point_report().expect("points").len(), 12);
    assert_eq!(reader.vm_report().expect("vms").len(), 6);
    // The reader did not mark the writer's running task as interrupted.
    let t = wait(&core, &caller, t.id);
    assert_eq!(t.result, Some((true, "Ok".to_string())));
    assert_eq!(vm_disks(&reader, "web01"), point_disks(&core, p.id));
}

/// A chunk whose bytes are damaged: the restore fails naming the chunk, its pack file on disk
/// and the record's offset; verify says the same and the marked point's restore is refused
/// with it.
#[test]
fn a_damaged_chunk_is_named_with_its_pack_file_and_offset_by_the_restore_and_verify() {
    let (_dir, core, caller) = world(2, 2);
    let p = full_point(&core, "file01");
    let (digest, loc) = common::first_chunk(&core, &p);
    damage(&loc, 0x40);
    let place = format!(
        "(the chunk's bytes in {} at offset {} are damaged)",
        loc.pack.display(),
        loc.offset
    );
    let t = core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
        .expect("start");
    let (ok, msg) = wait(&core, &caller, t.id).result.expect("result");
    assert!(!ok);
    assert!(
        msg.starts_with("Restore failed: ")
            && msg.contains(&format!("chunk {digest} is corrupt: "))
            && msg.contains(&place)
            && msg.contains(&format!("VM restore point {} of 'file01' is damaged", p.id)),
        "{msg}"
    );
    let problems = core.verify_repository().expect("verify");
    assert!(
        problems
            .iter()
            .any(|l| l.contains(&format!("chunk {digest} is corrupt: "))
                && l.contains(&place)
                && l.contains(&p.id.to_string())),
        "{problems:?}"
    );
    match core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
    {
        Err(CoreError::Conflict(m)) => assert!(m.contains(&place), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A pack whose own index is damaged: a restore of a point that needs its chunks is refused
/// naming the pack file and saying its index is damaged, and verify says the same, not that
/// the chunks are missing.
#[test]
fn a_damaged_pack_index_is_named_by_the_restore_refusal_and_verify_not_as_missing_chunks() {
    let (dir, core, _) = world(2, 2);
    let p = full_point(&core, "file01");
    let (_, loc) = common::first_chunk(&core, &p);
    drop(core);
    // The footer's checksum of the pack's entries.
    let mut bytes = std::fs::read(&loc.pack).expect("pack");
    let at = bytes.len() - 40;
    bytes[at] ^= 0x01;
    std::fs::write(&loc.pack, bytes).expect("write pack");

    let core = open(dir.path(), 2);
    let s = core.logons().logon("tester", "pw").expect("logon");
    let caller = core.logons().caller(s.id).expect("caller");
    let named = format!(
        "the index of pack {} is damaged (index checksum mismatch",
        loc.pack.display()
    );
    match core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
    {
        Err(CoreError::Conflict(m)) => assert!(
            m.contains(&named)
                && m.contains("chunks cannot be read")
                && m.contains(&format!("VM restore point {} of 'file01' is damaged", p.id))
                && !m.contains("missing"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let problems = core.verify_repository().expect("verify");
    assert!(
        problems
            .iter()
            .any(|l| l.contains(&named) && l.contains(&p.id.to_string())),
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|l| l.contains("missing")),
        "{problems:?}"
    );
}
