//! Backup jobs through `Core`, without HTTP: a run makes a restore point equal to the VM's disks,
//! an incremental run stores only the changed chunks, a running job cannot start twice, a stop
//! records nothing, retention plus gc reclaim space without breaking any remaining point, and a
//! damaged point is refused before a restore touches anything.

use emrest_core::jobs::{Actor, TaskSessionState};
use emrest_core::{
    Caller, CoreError, Owner, RestoreRequest, SessionResult, SessionState, TaskState,
};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{damage, first_chunk, point_disks, vm_disks};

fn world(disk_mib: u64) -> (tempfile::TempDir, Arc<Owner>, Caller) {
    common::world(disk_mib, 2)
}

/// The built-in administrator, as the CLI acts by default.
fn actor(core: &Owner) -> Actor {
    core.jobs().local_actor(None).expect("actor")
}

fn vm_ref(core: &Owner, name: &str) -> String {
    core.inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == name)
        .expect("vm")
        .hierarchy_obj_ref()
}

/// Distinct chunks the repository holds (chunks live inside pack files).
fn chunk_files(core: &Owner) -> usize {
    let repo = core.repository();
    let mut all = std::collections::BTreeSet::new();
    for name in repo.list_indexes().expect("indexes") {
        all.extend(repo.get_index(&name).expect("index").referenced().copied());
    }
    all.len()
}

fn index_files(core: &Owner) -> Vec<String> {
    core.repository().list_indexes().expect("indexes")
}

/// Run a job to the end through the worker, as the API does.
fn run(core: &Owner, job: uuid::Uuid) -> emrest_core::jobs::BackupSessionRecord {
    let (task, session) = core.jobs().start_job(&actor(core), job).expect("start");
    assert_eq!(task.operation, "StartJob");
    assert!(
        core.jobs().wait_jobs_idle(Duration::from_secs(120)),
        "job finished"
    );
    core.view().backup_session(session).expect("session")
}

#[test]
fn the_demo_backups_are_jobs_with_two_successful_sessions() {
    let (_d, core, _) = world(2);
    let jobs = core.view().jobs().expect("jobs");
    let names: Vec<_> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Backup Job hyperv01",
            "Backup Job vcd01",
            "Backup Job vcenter01"
        ]
    );
    for j in &jobs {
        assert_eq!(j.objects.len(), 2);
        let sessions = core.view().backup_sessions(Some(j.id)).expect("sessions");
        assert_eq!(sessions.len(), 2);
        for s in &sessions {
            assert_eq!(s.state, SessionState::Stopped);
            assert_eq!(s.result, SessionResult::Success);
            assert_eq!(s.progress, 100);
            assert!(s.restore_point_id.is_some());
        }
    }
}

#[test]
fn a_job_run_makes_a_point_whose_disks_equal_the_vms_disks() {
    let (_d, core, _) = world(3);
    let job = core
        .jobs()
        .create_job("Web", &["web01".into()], 3, "test")
        .expect("create");
    let expected = vm_disks(&core, "web01");
    let s = run(&core, job.id);
    assert_eq!(s.result, SessionResult::Success, "{:?}", s.failure_message);
    assert_eq!(s.state, SessionState::Stopped);
    let tasks = core.view().backup_task_sessions(Some(s.id)).expect("tasks");
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t.state, TaskSessionState::Completed);
    assert_eq!(t.result, SessionResult::Success);
    assert_eq!(t.total_size, 2 * (3 << 20), "web01 has two 3 MiB disks");
    // The demo's guest writes went through the platform, so changed-block tracking covers the
    // time since web01's last point: nothing changed, nothing is read.
    assert_eq!(
        t.bytes_read, 0,
        "tracking says nothing changed since the last point"
    );
    let vp = t.vm_restore_point_id.expect("VM restore point");
    assert_eq!(point_disks(&core, vp), expected);
    let rp = core
        .view()
        .restore_point(s.restore_point_id.expect("point"))
        .expect("restore point");
    assert_eq!(rp.backup_name, "Web");
}

#[test]
fn an_incremental_run_stores_one_new_chunk_per_changed_block() {
    let (_dir, core, _) = world(8);
    let job = core
        .jobs()
        .create_job("Db", &[vm_ref(&core, "db01")], 5, "test")
        .expect("create");
    let first = run(&core, job.id);
    assert_eq!(first.result, SessionResult::Success);
    // Change k 4 KiB blocks, each in a distinct 1 MiB chunk.
    let key = core
        .inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == "db01")
        .expect("db01")
        .key();
    let f = core
        .inventory()
        .open_disk(&key, "disk-0", true)
        .expect("disk");
    let k = 3u64;
    for i in 0..k {
        let block = [0xA0 + i as u8; 4096];
        f.write_all_at(&block, i * 2 * (1 << 20) + 8192)
            .expect("write");
    }
    f.sync_all().expect("sync");
    let before = chunk_files(&core);
    let second = run(&core, job.id);
    assert_eq!(second.result, SessionResult::Success);
    let t = &core
        .view()
        .backup_task_sessions(Some(second.id))
        .expect("tasks")[0];
    assert_eq!(t.chunks_new, k, "one new chunk per changed block");
    assert_eq!(chunk_files(&core) - before, k as usize);
    let rp = core
        .view()
        .restore_point(second.restore_point_id.expect("point"))
        .expect("rp");
    assert_eq!(rp.point_type, emrest_core::PointType::Increment);
    assert_eq!(
        point_disks(&core, t.vm_restore_point_id.expect("vm point")),
        vm_disks(&core, "db01")
    );
}

#[test]
fn a_running_job_cannot_start_twice() {
    let (_d, core, _) = world(2);
    let job = core.view().jobs().expect("jobs").remove(0);
    let (_, session) = core.jobs().start_job(&actor(&core), job.id).expect("start");
    // The job counts as running from the moment `start_job` returns until its worker ends.
    let err = core
        .jobs()
        .start_job(&actor(&core), job.id)
        .expect_err("second start");
    match err {
        CoreError::Conflict(m) => assert!(m.contains("already running"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(core.jobs().wait_jobs_idle(Duration::from_secs(120)));
    let s = core.view().backup_session(session).expect("session");
    assert_eq!(s.result, SessionResult::Success);
    // Once finished it starts again.
    assert_eq!(run(&core, job.id).result, SessionResult::Success);
}

#[test]
fn stopping_a_job_records_no_point_and_leaves_no_index() {
    let (dir, core, _) = world(2);
    // A VM big enough (2 GiB, sparse) that the stop lands while the run is reading.
    let root = core.infrastructure().hierarchy_roots().expect("roots")[0].id;
    let ds = core.inventory().datastores(root).expect("ds")[0]
        .object_ref
        .clone();
    let vm = core
        .inventory()
        .create_vm(
            root,
            &ds,
            "big01",
            &[emrest_platform::DiskInfo {
                name: "disk-0".into(),
                size: 2 << 30,
            }],
            emrest_platform::PowerState::PoweredOn,
        )
        .expect("vm");
    let job = core
        .jobs()
        .create_job("Big", &[vm.hierarchy_obj_ref()], 3, "test")
        .expect("create");
    let points = core.view().vm_restore_points(None).expect("points").len();
    let indexes = index_files(&core);
    let (_, session) = core.jobs().start_job(&actor(&core), job.id).expect("start");
    let stop = core.jobs().stop_job(&actor(&core), job.id).expect("stop");
    assert_eq!(stop.operation, "StopJob");
    assert_eq!(stop.state, TaskState::Finished);
    assert!(core.jobs().wait_jobs_idle(Duration::from_secs(120)));
    let s = core.view().backup_session(session).expect("session");
    assert_eq!(s.state, SessionState::Stopped);
    assert_eq!(s.result, SessionResult::Failed);
    assert!(
        s.failure_message
            .as_deref()
            .unwrap_or("")
            .contains("stopped by"),
        "{:?}",
        s.failure_message
    );
    assert!(s.restore_point_id.is_none());
    assert_eq!(
        core.view().vm_restore_points(None).expect("points").len(),
        points
    );
    assert_eq!(index_files(&core), indexes, "no index of the stopped run");
    let t = &core
        .view()
        .backup_task_sessions(Some(session))
        .expect("tasks")[0];
    assert_eq!(t.state, TaskSessionState::Completed);
    assert_eq!(t.result, SessionResult::Failed);
    // Stopping a job that is not running is refused; retrying the failed one is allowed.
    assert!(matches!(
        core.jobs().stop_job(&actor(&core), job.id),
        Err(CoreError::Conflict(_))
    ));
    let _ = dir;
}

#[test]
fn retention_and_gc_reclaim_space_and_every_remaining_point_restores_bit_exactly() {
    let (dir, core, caller) = world(4);
    let job = core
        .jobs()
        .create_job("Files", &["file01".into()], 2, "test")
        .expect("create");
    let key = core
        .inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == "file01")
        .expect("vm")
        .key();
    let mut states = BTreeMap::new();
    for round in 0..4u64 {
        for d in ["disk-0", "disk-1"] {
            let f = core.inventory().open_disk(&key, d, true).expect("disk");
            emrest_core::demo::scribble(&f, 4 << 20, 10.0, 100 + round).expect("scribble");
        }
        let s = run(&core, job.id);
        assert_eq!(s.result, SessionResult::Success);
        let t = &core.view().backup_task_sessions(Some(s.id)).expect("tasks")[0];
        states.insert(
            t.vm_restore_point_id.expect("vm point"),
            vm_disks(&core, "file01"),
        );
        let backup = core
            .view()
            .backups()
            .expect("backups")
            .into_iter()
            .find(|b| b.name == "Files")
            .expect("backup");
        let kept = core
            .view()
            .restore_points(Some(backup.id))
            .expect("points")
            .len();
        assert_eq!(kept, (round as usize + 1).min(2), "retention keeps 2");
    }
    let before = core.repository().stored_bytes().expect("size");
    let gc = core.jobs().collect_garbage(Duration::ZERO).expect("gc");
    assert!(gc.chunks_removed > 0, "{gc:?}");
    let after = core.repository().stored_bytes().expect("size");
    assert_eq!(before - after, gc.bytes_removed);
    assert!(after < before);
    // Every point still in the catalog (the demo's and the job's) restores bit for bit.
    let remaining = core.view().vm_restore_points(None).expect("points");
    let mut job_points = 0;
    for p in &remaining {
        let disks = point_disks(&core, p.id);
        if let Some(expected) = states.get(&p.id) {
            assert_eq!(&disks, expected, "point {} as backed up", p.id);
            job_points += 1;
        }
    }
    assert_eq!(job_points, 2);
    // And a real restore of the oldest kept point gives the VM those bytes back.
    let oldest = remaining
        .iter()
        .filter(|p| states.contains_key(&p.id))
        .min_by_key(|p| p.created)
        .expect("oldest");
    // The newest point's indexes are its changes against the oldest kept one's; retention
    // deleted the parent of the oldest, so the oldest's were stored whole first.
    let newest = remaining
        .iter()
        .filter(|p| states.contains_key(&p.id))
        .max_by_key(|p| p.created)
        .expect("newest");
    let index_len = |name: &str| {
        std::fs::metadata(
            core.repository()
                .root()
                .join("indexes")
                .join(format!("{name}.idx")),
        )
        .expect("index file")
        .len()
    };
    for (old, new) in oldest.disks.iter().zip(&newest.disks) {
        let (whole, delta) = (index_len(&old.index), index_len(&new.index));
        assert!(delta * 2 < whole, "{}: {delta} vs {whole} bytes", new.index);
    }
    let t = core
        .restores()
        .start(&caller, oldest.id, &RestoreRequest::default())
        .expect("restore");
    assert!(core.restores().wait_idle(Duration::from_secs(60)));
    let t = core.as_caller(&caller).task(t.id).expect("task");
    assert_eq!(t.result.map(|r| r.0), Some(true));
    assert_eq!(&vm_disks(&core, "file01"), &states[&oldest.id]);
    // Nothing is left to collect.
    let again = core.jobs().collect_garbage(Duration::ZERO).expect("gc");
    assert_eq!((again.chunks_removed, again.indexes_removed), (0, 0));
    let _ = dir;
}

#[test]
fn a_point_with_a_missing_chunk_is_refused_before_the_restore_starts() {
    let (_dir, core, caller) = world(2);
    let p = core
        .view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .find(|p| p.vm_name == "app01")
        .expect("point");
    let (chunk, loc) = first_chunk(&core, &p);
    let digest = chunk.to_string();
    std::fs::remove_file(&loc.pack).expect("remove the pack holding the chunk");
    let before = vm_disks(&core, "app01");
    let tasks = core.as_caller(&caller).tasks().expect("tasks").len();
    match core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
    {
        Err(CoreError::Conflict(m)) => {
            assert!(m.contains("damaged") && m.contains(&digest), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        core.as_caller(&caller).tasks().expect("tasks").len(),
        tasks,
        "no task"
    );
    assert_eq!(vm_disks(&core, "app01"), before);
}

#[test]
fn verify_marks_a_point_with_a_corrupt_chunk_and_its_restore_is_refused() {
    let (_dir, core, caller) = world(2);
    let p = core
        .view()
        .vm_restore_points(None)
        .expect("points")
        .into_iter()
        .find(|p| p.vm_name == "tenant-web")
        .expect("point");
    let (chunk, loc) = first_chunk(&core, &p);
    let digest = chunk.to_string();
    damage(&loc, 1);
    let problems = core.verify_repository().expect("verify");
    assert!(
        problems
            .iter()
            .any(|l| l.contains(&digest) && l.contains(&p.id.to_string())),
        "{problems:?}"
    );
    match core
        .restores()
        .start(&caller, p.id, &RestoreRequest::default())
    {
        Err(CoreError::Conflict(m)) => assert!(m.contains("damaged"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_job_definitions_are_refused_and_create_nothing() {
    let (_d, core, _) = world(2);
    let n = core.view().jobs().expect("jobs").len();
    let invalid = |r: Result<_, CoreError>| matches!(r, Err(CoreError::Invalid { .. }));
    assert!(invalid(core.jobs().create_job(
        "X",
        &["nope".into()],
        3,
        ""
    )));
    assert!(invalid(core.jobs().create_job(
        "X",
        &["web01".into()],
        0,
        ""
    )));
    assert!(invalid(core.jobs().create_job("X", &[], 3, "")));
    assert!(invalid(core.jobs().create_job(
        "X",
        &["web01".into(), "app01".into()],
        3,
        ""
    )));
    assert!(invalid(core.jobs().create_job(
        "X",
        &["urn:VMware:Vm:00000000-0000-0000-0000-000000000000.vm-1".into()],
        3,
        ""
    )));
    assert!(matches!(
        core.jobs()
            .create_job("backup job vcenter01", &["web01".into()], 3, ""),
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(core.view().jobs().expect("jobs").len(), n);
    // Retry needs a failed last run.
    let job = core.view().jobs().expect("jobs").remove(0);
    assert!(matches!(
        core.jobs().retry_job(&actor(&core), job.id),
        Err(CoreError::Conflict(_))
    ));
}

#[test]
fn a_command_line_run_belongs_to_the_account_it_is_made_as() {
    let (_dir, core, caller) = world(1);
    let job = core
        .jobs()
        .create_job("Web only", &[vm_ref(&core, "web01")], 2, "")
        .expect("job");
    let admin = core
        .account_named(emrest_core::ADMIN_ACCOUNT)
        .expect("admin");

    // By default the built-in administrator: its task, seen through its own logon.
    let by_default = core.jobs().local_actor(None).expect("actor");
    assert_eq!(by_default.account_id, admin.id);
    let (task, _) = core.jobs().start_job(&by_default, job.id).expect("start");
    assert_eq!(task.account_id, admin.id);
    assert!(
        core.jobs().wait_jobs_idle(Duration::from_secs(120)),
        "job finished"
    );

    // Another administrator named with --as owns the task it starts.
    let (task, _) = core
        .jobs()
        .start_job(
            &core.jobs().local_actor(Some("tester")).expect("actor"),
            job.id,
        )
        .expect("start");
    assert_eq!(task.account_id, caller.account_id());
    assert_eq!(
        core.as_caller(&caller)
            .task(task.id)
            .expect("task")
            .account_id,
        caller.account_id()
    );
    assert!(
        core.jobs().wait_jobs_idle(Duration::from_secs(120)),
        "job finished"
    );

    // Accounts that may not start jobs, and unknown ones, are refused.
    core.add_account("viewer", "pw", emrest_core::Role::PortalUser)
        .expect("account");
    assert!(matches!(
        core.jobs().local_actor(Some("viewer")),
        Err(CoreError::Forbidden(m)) if m.contains("may not start")
    ));
    assert!(matches!(
        core.jobs().local_actor(Some("ghost")),
        Err(CoreError::Invalid { message, .. }) if message.contains("no account 'ghost'")
    ));
}
