//! Crash recovery when a data folder is opened to write: what a killed process left behind is
//! finished or removed (regressions found by the real-binary crash harness, crates/cli/tests/crash.rs).

use emrest_core::{Core, CoreConfig, Owner};
use emrest_repo::{Durability, NoControl};
use std::collections::BTreeSet;

mod common;

use common::world;

/// Opens the data folder to write again, running crash recovery, as a restarted server does.
fn reopen(dir: &std::path::Path) -> (Owner, emrest_core::OpenReport) {
    Core::open(CoreConfig {
        durability: Durability::NoSync,
        ..CoreConfig::new(dir)
    })
    .expect("reopen")
}

fn index_files(core: &Owner) -> BTreeSet<String> {
    core.repository()
        .list_indexes()
        .expect("indexes")
        .into_iter()
        .collect()
}

#[test]
fn indexes_of_a_backup_killed_before_its_point_was_recorded_are_removed_at_open() {
    let (dir, core, _) = world(1, 1);
    let named: BTreeSet<String> = core
        .catalog()
        .all_index_names()
        .expect("names")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(index_files(&core), named);
    // What a process killed between writing a VM's indexes and recording its point leaves.
    let vm = core
        .inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == "file01")
        .expect("file01");
    let orphan = emrest_core::backup::backup_vm(&core, &vm.key(), None, &NoControl)
        .expect("back up without recording");
    assert_eq!(orphan.point.disks.len(), 2);
    assert_eq!(index_files(&core).len(), named.len() + 2);
    drop(orphan);
    drop(core);

    let (core, report) = reopen(dir.path());
    assert_eq!(report.orphan_indexes_removed, 2);
    assert_eq!(index_files(&core), named, "exactly the orphans are gone");
    assert!(core.verify_repository().expect("verify").is_empty());
    // A second open finds nothing more to remove.
    drop(core);
    let (_, report) = reopen(dir.path());
    assert_eq!(report.orphan_indexes_removed, 0);
}

/// The oldest point of `vm` (the demo changes every VM after it, so the disks differ from it).
fn oldest_point(core: &Owner, vm: &str) -> emrest_core::VmRestorePointRecord {
    core.view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .filter(|p| p.vm_name == vm)
        .min_by_key(|p| p.created)
        .expect("a point")
}

/// What a process killed half way through a quick rollback's in-place writes leaves: the
/// journal, and each disk holding the point's bytes in its first half of the chunks only.
fn half_rolled_back(core: &Owner, vm: &str) -> (emrest_core::VmRestorePointRecord, uuid::Uuid) {
    let p = oldest_point(core, vm);
    let before = common::vm_disks(core, vm);
    assert_ne!(
        before,
        common::point_disks(core, p.id),
        "the VM differs from the point"
    );
    let session = uuid::Uuid::new_v4();
    let admin = core
        .catalog()
        .account_by_name("admin")
        .expect("accounts")
        .expect("admin")
        .id;
    let now = emrest_core::now_millis();
    core.catalog()
        .insert_restore_session(session, p.id, vm, admin, now)
        .expect("session");
    core.catalog()
        .insert_task("StartVMRestore", Some(session), admin, now)
        .expect("task");
    journal_restore_of(&p, session, core.data_dir());
    for d in &p.disks {
        let index = core.repository().get_index(&d.index).expect("index");
        let file = core
            .inventory()
            .open_disk(&p.vm, &d.name, true)
            .expect("disk");
        for i in 0..index.chunks.len() / 2 {
            let (offset, len) = index.chunk_range(i);
            let bytes = match &index.chunks[i] {
                Some(c) => core.repository().read_chunk(c).expect("chunk"),
                None => vec![0; len],
            };
            std::os::unix::fs::FileExt::write_all_at(&file, &bytes, offset).expect("write");
        }
    }
    let mixed = common::vm_disks(core, vm);
    assert_ne!(mixed, before, "half written");
    assert_ne!(mixed, common::point_disks(core, p.id), "only half written");
    (p, session)
}

/// Writes the journal a restore of `p` by `session` writes before changing the VM's disks.
fn journal_restore_of(
    p: &emrest_core::VmRestorePointRecord,
    session: uuid::Uuid,
    data_dir: &std::path::Path,
) -> std::path::PathBuf {
    let journal = emrest_core::rollback_journal::RollbackJournal::new(session, p);
    emrest_core::rollback_journal::write_journal(
        &emrest_core::rollback_journal::journal_dir(data_dir),
        &journal,
    )
    .expect("journal")
}

fn journals(core: &Owner) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(emrest_core::rollback_journal::journal_dir(core.data_dir())) {
        Ok(d) => d.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_quick_rollback_killed_during_its_writes_is_rolled_forward_to_the_point_at_open() {
    let (dir, core, caller) = world(2, 1);
    let (p, session) = half_rolled_back(&core, "file01");
    let want = common::point_disks(&core, p.id);
    drop(core);

    let (core, report) = reopen(dir.path());
    assert_eq!(report.rollbacks_rolled_forward, 1);
    assert_eq!(report.rollbacks_kept, 0);
    assert_eq!(common::vm_disks(&core, "file01"), want, "exactly the point");
    assert!(journals(&core).is_empty(), "journal removed");
    // The task reads interrupted like any other; the session log says what recovery did.
    let s = core
        .as_caller(&caller)
        .restore_session(session)
        .expect("session");
    assert_eq!(s.result, emrest_core::SessionResult::Failed);
    let log = core.as_caller(&caller).restore_log(session).expect("log");
    assert!(
        log.iter()
            .any(|l| l.text.starts_with("Recovery:") && l.text.contains("rolled forward")),
        "{log:?}"
    );
    // Tracking restarted at the point, as a finished rollback leaves it.
    for d in &p.disks {
        let t = core
            .inventory()
            .changed_blocks(&p.vm, &d.name)
            .expect("tracking")
            .expect("valid tracking");
        assert_eq!(t.label, d.index);
        assert_eq!(t.changed_count(), 0);
    }
    // A quick rollback through the engine leaves no journal behind.
    let newest = core
        .view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .filter(|q| q.vm_name == "file01")
        .max_by_key(|q| q.created)
        .expect("point");
    let req = emrest_core::RestoreRequest {
        quick_rollback: true,
        ..Default::default()
    };
    let t = core
        .restores()
        .start(&caller, newest.id, &req)
        .expect("start");
    assert!(core
        .restores()
        .wait_idle(std::time::Duration::from_secs(60)));
    let t = core.as_caller(&caller).task(t.id).expect("task");
    assert_eq!(t.result.as_ref().map(|r| r.0), Some(true), "{t:?}");
    assert_eq!(
        common::vm_disks(&core, "file01"),
        common::point_disks(&core, newest.id)
    );
    assert!(journals(&core).is_empty(), "journal removed after success");
}

#[test]
fn an_unreadable_point_keeps_the_journal_and_refuses_restores_over_the_vm() {
    let (dir, core, caller) = world(1, 1);
    let (p, session) = half_rolled_back(&core, "file01");
    let mixed = common::vm_disks(&core, "file01");
    // The point's data is gone: its first disk's index no longer reads.
    let first = &p.disks[0].index;
    core.repository().delete_index(first).expect("delete index");
    drop(core);

    let (core, report) = reopen(dir.path());
    assert_eq!(report.rollbacks_rolled_forward, 0);
    assert_eq!(report.rollbacks_kept, 1);
    assert_eq!(journals(&core).len(), 1, "journal kept");
    assert_eq!(common::vm_disks(&core, "file01"), mixed, "nothing written");
    let log = core.as_caller(&caller).restore_log(session).expect("log");
    assert!(
        log.iter().any(|l| l.text.starts_with("Recovery failed:")),
        "{log:?}"
    );
    // A restore over the VM would be undone by a later roll-forward: refused, and nothing starts.
    let other = core
        .view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .find(|q| q.vm_name == "file01" && q.id != p.id)
        .expect("another point");
    for quick in [false, true] {
        let req = emrest_core::RestoreRequest {
            quick_rollback: quick,
            ..Default::default()
        };
        let tasks = core.as_caller(&caller).tasks().expect("tasks").len();
        let err = core
            .restores()
            .start(&caller, other.id, &req)
            .expect_err("refused");
        assert!(
            matches!(&err, emrest_core::CoreError::Conflict(m) if m.contains("rollback journal")),
            "{err}"
        );
        assert_eq!(core.as_caller(&caller).tasks().expect("tasks").len(), tasks);
    }
    // Nor is the mixed VM backed up: the point would capture the mix.
    let points = core.view().vm_restore_points(None).expect("points").len();
    let job = core
        .jobs()
        .create_job("Mixed", &["file01".into()], 5, "test")
        .expect("job");
    let err = core
        .jobs()
        .run_job_now(job.id, 0)
        .expect_err("backup refused");
    assert!(
        matches!(&err, emrest_core::CoreError::Conflict(m) if m.contains("rollback journal")),
        "{err}"
    );
    assert_eq!(
        core.view().vm_restore_points(None).expect("points").len(),
        points
    );
}

/// Polls a task until the catalog says Finished (not `wait_idle`, which also waits for the
/// flush that follows).
fn finished(
    core: &Owner,
    caller: &emrest_core::Caller,
    id: emrest_core::TaskId,
) -> emrest_core::TaskRecord {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let t = core.as_caller(caller).task(id).expect("task");
        if t.state == emrest_core::TaskState::Finished {
            return t;
        }
        assert!(std::time::Instant::now() < deadline, "task {id} hangs");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn a_full_restore_whose_disks_never_reached_the_device_is_brought_to_the_point_at_open() {
    let (dir, core, caller) = world(2, 1);
    let p = oldest_point(&core, "file01");
    let want = common::point_disks(&core, p.id);
    assert_ne!(common::vm_disks(&core, "file01"), want);
    let t = core
        .restores()
        .start(&caller, p.id, &emrest_core::RestoreRequest::default())
        .expect("start");
    assert!(core
        .restores()
        .wait_idle(std::time::Duration::from_secs(60)));
    let t = core.as_caller(&caller).task(t.id).expect("task");
    assert_eq!(t.result.as_ref().map(|r| r.0), Some(true), "{t:?}");
    assert_eq!(common::vm_disks(&core, "file01"), want);
    assert!(
        journals(&core).is_empty(),
        "flushed, so the journal is gone"
    );
    let session = t.restore_session_id.expect("session");

    // Power lost after the task finished and before the flush: the journal the restore wrote
    // before its swap is still there, and the swapped-in images hold whatever reached the
    // device (here: nothing but zeros).
    journal_restore_of(&p, session, core.data_dir());
    for d in &p.disks {
        let file = core
            .inventory()
            .open_disk(&p.vm, &d.name, true)
            .expect("disk");
        std::os::unix::fs::FileExt::write_all_at(&file, &vec![0u8; d.size as usize], 0)
            .expect("zero");
    }
    assert_ne!(common::vm_disks(&core, "file01"), want);
    drop(core);

    let (core, report) = reopen(dir.path());
    assert_eq!(report.rollbacks_rolled_forward, 1);
    assert_eq!(common::vm_disks(&core, "file01"), want, "exactly the point");
    assert!(journals(&core).is_empty(), "journal removed");
    // The task keeps its success; the session log says what recovery did.
    let t = core.as_caller(&caller).task(t.id).expect("task");
    assert_eq!(t.result.as_ref().map(|r| r.0), Some(true), "{t:?}");
    let log = core.as_caller(&caller).restore_log(session).expect("log");
    assert!(
        log.iter()
            .any(|l| l.text.starts_with("Recovery:") && l.text.contains("rolled forward")),
        "{log:?}"
    );
}

#[test]
fn a_restore_started_as_soon_as_the_last_one_finished_waits_for_its_flush_then_wins() {
    let (_dir, core, caller) = world(2, 2);
    let mut points: Vec<_> = core
        .view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .filter(|p| p.vm_name == "file01")
        .collect();
    points.sort_by_key(|p| p.created);
    let (first, second) = (&points[0], &points[points.len() - 1]);
    assert_ne!(
        common::point_disks(&core, first.id),
        common::point_disks(&core, second.id)
    );
    let full = emrest_core::RestoreRequest::default();
    let quick = emrest_core::RestoreRequest {
        quick_rollback: true,
        ..Default::default()
    };
    // The VM is free as soon as the task reads Finished (no Conflict), and the next restore
    // of it, full or in place, lands after the last one's flush, never under it.
    for (point, req) in [(first, &full), (second, &quick), (first, &full)] {
        let t = core
            .restores()
            .start(&caller, point.id, req)
            .expect("start");
        assert_eq!(
            finished(&core, &caller, t.id).result.map(|r| r.0),
            Some(true)
        );
    }
    let d = core
        .restores()
        .start(&caller, second.id, &quick)
        .expect("last");
    assert!(core
        .restores()
        .wait_idle(std::time::Duration::from_secs(60)));
    let d = core.as_caller(&caller).task(d.id).expect("task");
    assert_eq!(d.result.as_ref().map(|r| r.0), Some(true), "{d:?}");
    assert_eq!(
        common::vm_disks(&core, "file01"),
        common::point_disks(&core, second.id)
    );
    assert!(
        journals(&core).is_empty(),
        "every journal flushed and removed"
    );
}

#[test]
fn restores_of_different_vms_at_once_never_trip_over_each_others_journals() {
    let (_dir, core, caller) = world(1, 4);
    // The newest point of every VM, restored in place, all at once, round after round: each
    // restore writes its journal while others flush and remove theirs.
    let mut newest: std::collections::BTreeMap<String, emrest_core::VmRestorePointRecord> =
        Default::default();
    for p in core.view().vm_restore_points(None).expect("points") {
        let e = newest.entry(p.vm_name.clone()).or_insert_with(|| p.clone());
        if p.created > e.created {
            *e = p;
        }
    }
    assert!(newest.len() >= 3, "{newest:?}");
    for round in 0..8 {
        let quick = emrest_core::RestoreRequest {
            quick_rollback: round % 2 == 1,
            ..Default::default()
        };
        let tasks: Vec<_> = newest
            .values()
            .map(|p| core.restores().start(&caller, p.id, &quick).expect("start"))
            .collect();
        assert!(core
            .restores()
            .wait_idle(std::time::Duration::from_secs(60)));
        for t in tasks {
            let t = core.as_caller(&caller).task(t.id).expect("task");
            assert_eq!(
                t.result.as_ref().map(|r| r.0),
                Some(true),
                "round {round}: {t:?}"
            );
        }
    }
    assert!(journals(&core).is_empty());
}

#[test]
fn retention_keeps_a_point_while_a_journal_names_it() {
    let (dir, core, _caller) = world(1, 1);
    let p = oldest_point(&core, "file01");
    let backup = core
        .catalog()
        .backups()
        .expect("backups")
        .into_iter()
        .find(|b| b.id == p.backup_id)
        .expect("the point's backup");
    let mut job = core
        .view()
        .job_by_name(&backup.name)
        .expect("jobs")
        .expect("the backup's job");
    job.retention = 1;
    // A restore to the point has finished and is flushing: its journal is in force.
    let path = journal_restore_of(&p, uuid::Uuid::new_v4(), dir.path());
    let removed = core.jobs().apply_retention(&job).expect("retention");
    assert!(!removed.contains(&p.restore_point_id), "{removed:?}");
    assert!(
        core.view().vm_restore_point(p.id).is_ok(),
        "the journal's point stays"
    );
    // Flushed: the next run removes it.
    std::fs::remove_file(&path).expect("remove journal");
    let removed = core.jobs().apply_retention(&job).expect("retention");
    assert!(removed.contains(&p.restore_point_id), "{removed:?}");
    assert!(core.view().vm_restore_point(p.id).is_err());
}
