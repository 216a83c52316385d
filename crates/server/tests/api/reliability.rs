//! Reliability through the API: cancelling a running restore and stopping a running backup,
//! restores queued beyond the worker count, conflicts between work on one VM, two clients on one
//! session, a datastore without room, and a damaged repository. Each leaves the VM as it was.
//! Latencies are printed, never asserted.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::{Owner, PointType};
use emrest_platform::{DiskInfo, PowerState, VmKey};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Chunk size of the demo repository.
const CHUNK: u64 = 64 << 10;

/// Fill a disk so that every 64 KiB chunk differs from every other (a restore writes each one)
/// while compressing well (backups and restores stay quick).
fn fill(core: &Owner, key: &VmKey, disk: &str, size: u64, seed: u64) {
    let f = core.inventory().open_disk(key, disk, true).unwrap();
    let mut buf = vec![0u8; CHUNK as usize];
    for i in 0..size / CHUNK {
        let word = (seed << 32 | i).to_le_bytes();
        for w in buf.chunks_mut(8) {
            w.copy_from_slice(&word);
        }
        std::os::unix::fs::FileExt::write_all_at(&f, &buf, i * CHUNK).unwrap();
    }
}

/// A VM of `disks` disks of `mib` MiB on `datastore` (the root's first when `None`), filled,
/// with a job of its own. With `backed_up`, the job has run once and the VM changed since;
/// returns (VM, job, the VM restore point when backed up).
async fn vm_with_job(
    w: &World,
    name: &str,
    disks: usize,
    mib: u64,
    datastore: Option<String>,
    backed_up: bool,
) -> (VmKey, uuid::Uuid, Option<uuid::Uuid>) {
    let name = name.to_string();
    w.blocking(move |c| {
        let root = c.infrastructure().hierarchy_roots().unwrap()[0].id;
        let ds = datastore.unwrap_or_else(|| {
            c.inventory().datastores(root).unwrap()[0]
                .object_ref
                .clone()
        });
        let size = mib << 20;
        let disk_infos: Vec<DiskInfo> = (0..disks)
            .map(|i| DiskInfo {
                name: format!("disk-{i}"),
                size,
            })
            .collect();
        let vm = c
            .inventory()
            .create_vm(root, &ds, &name, &disk_infos, PowerState::PoweredOn)
            .unwrap();
        for (i, d) in disk_infos.iter().enumerate() {
            fill(c, &vm.key(), &d.name, size, i as u64 + 1);
        }
        let job = c
            .jobs()
            .create_job(&format!("Job {name}"), &[vm.hierarchy_obj_ref()], 3, "test")
            .unwrap()
            .id;
        let point = backed_up.then(|| {
            let s = c
                .jobs()
                .run_job_now(job, emrest_core::now_millis())
                .unwrap();
            let rp = s.restore_point_id.expect("a point");
            let p = c.view().vm_restore_points(Some(rp)).unwrap()[0].id;
            // A change after the backup, so "as before" and "as the point" differ.
            c.inventory()
                .write_disk(&vm.key(), "disk-0", 0, &[0xa5; 4096])
                .unwrap();
            p
        });
        (vm.key(), job, point)
    })
    .await
}

/// POST a full restore to the original VM; returns the accepted task (JSON).
async fn start_restore(w: &World, point: uuid::Uuid) -> serde_json::Value {
    let r = w
        .send(
            Req::post(&format!("/api/vmRestorePoints/{point}?action=restore"))
                .content_type(JSON)
                .accept(JSON)
                .body(r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":false}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let mut task = r.json();
    // A running task carries no Related link yet; note its session for `session`.
    let id: i64 = task["TaskId"]
        .as_str()
        .and_then(|t| t.strip_prefix("task-"))
        .and_then(|n| n.parse().ok())
        .expect("a task ID");
    let sid = w
        .blocking(move |c| {
            c.catalog()
                .task(emrest_core::TaskId(id))
                .unwrap()
                .and_then(|t| t.restore_session_id)
                .expect("a restore session")
        })
        .await;
    task["SessionId"] = sid.to_string().into();
    task
}

/// The restore session of a task, as JSON: through the session ID `start_restore` noted, or
/// the Related link of a finished task.
async fn session(w: &World, task: &serde_json::Value) -> serde_json::Value {
    let path = match task["SessionId"].as_str() {
        Some(sid) => format!("/api/restoreSessions/{sid}?format=Entity"),
        None => path_of(&link(task, "Related", "RestoreSession")),
    };
    let r = w.get_json(&path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// Poll a restore session until `until` holds (hang guard only).
async fn wait_session(
    w: &World,
    task: &serde_json::Value,
    until: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = session(w, task).await;
        if until(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "restore session stuck: {s}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn working(s: &serde_json::Value) -> bool {
    s["State"] == "Working" && s["Progress"].as_i64().unwrap_or(0) >= 1
}

fn stopped(s: &serde_json::Value) -> bool {
    s["State"] == "Stopped"
}

/// Files of staging areas and temporary names anywhere in the data folder.
fn leftovers(w: &World) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![w._dir.path().to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if d.ends_with(".staging") || name.contains(".tmp-") || name == "replace.json" {
                out.push(p.clone());
            }
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_running_restore_task_stops_it_and_the_session_names_who() {
    let w = World::new(ONE_MIB).await;
    let (key, _, point) = vm_with_job(&w, "big01", 1, 256, None, true).await;
    let before = w.vm_disks(&key).await;
    let task = start_restore(&w, point.unwrap()).await;
    let id = task["TaskId"].as_str().unwrap().to_string();
    // Running for real: working, with progress, when the DELETE arrives.
    wait_session(&w, &task, working).await;
    let t0 = Instant::now();
    let r = w.send(Req::delete(&format!("/api/tasks/{id}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let s = wait_session(&w, &task, stopped).await;
    println!(
        "cancel latency of a running 256 MiB full restore: {:?}",
        t0.elapsed()
    );
    assert_eq!(s["Result"], "Failed", "{s}");
    assert_eq!(
        s["FailureMessage"],
        "Restore cancelled by tester; the VM was left as it was"
    );
    let log = w.blocking(move |c| {
        let sid = uuid::Uuid::parse_str(s["UID"].as_str().unwrap().rsplit(':').next().unwrap());
        c.catalog().session_log(sid.unwrap()).unwrap()
    });
    assert!(
        log.await
            .iter()
            .any(|l| l.text == "Restore cancelled by tester; the VM was left as it was"),
        "the session log records who stopped it"
    );
    assert_eq!(w.vm_disks(&key).await, before, "the VM is as it was");
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));
    // The deleted task is gone; its VM is free again.
    w.get_json(&format!("/api/tasks/{id}"))
        .await
        .json_error(StatusCode::NOT_FOUND);
    let again = start_restore(&w, point.unwrap()).await;
    let done = w.wait_task(again["TaskId"].as_str().unwrap()).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
}

fn index_files(c: &Owner) -> (BTreeSet<String>, BTreeSet<String>) {
    let named = c
        .catalog()
        .all_index_names()
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let stored = c.repository().list_indexes().unwrap().into_iter().collect();
    (named, stored)
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_running_backup_records_nothing_and_a_vm_being_backed_up_is_not_restored() {
    let w = World::new(ONE_MIB).await;
    // Never backed up: the first run reads the whole disk. The job also holds app01, which it
    // reaches only after big02.
    let (big, _, _) = vm_with_job(&w, "big02", 1, 256, None, false).await;
    let job = w
        .blocking(move |c| {
            let app01 = c
                .inventory()
                .vms()
                .unwrap()
                .into_iter()
                .find(|v| v.name == "app01")
                .unwrap();
            let big = c.inventory().vm(&big).unwrap();
            c.jobs()
                .create_job(
                    "Big and web",
                    &[big.hierarchy_obj_ref(), app01.hierarchy_obj_ref()],
                    3,
                    "test",
                )
                .unwrap()
                .id
        })
        .await;
    let app01 = w.point("app01", PointType::Full).await;
    let app01_before = w.vm_disks(&app01.vm).await;
    let (points, _) = w
        .blocking(|c| {
            (
                c.view().vm_restore_points(None).unwrap().len(),
                index_files(c),
            )
        })
        .await;
    let r = w
        .send(Req::post(&format!("/api/jobs/{job}?action=start")).accept(JSON))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let session = move |c: &Owner| {
        c.view()
            .backup_sessions(Some(job))
            .unwrap()
            .into_iter()
            .next()
            .expect("a session")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = w.blocking(session).await;
        if s.state == emrest_core::SessionState::Working && s.progress >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "backup not running: {s:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // A restore over a VM of the running job is refused (400: http_response_codes.md has no
    // 409), in both formats, and creates no task.
    let tasks = w.get_json("/api/tasks").await.json();
    for format in [XML, JSON] {
        let m = w
            .send(
                Req::post(&format!("/api/vmRestorePoints/{}?action=restore", app01.id))
                    .content_type(format)
                    .accept(format),
            )
            .await
            .error(StatusCode::BAD_REQUEST);
        assert_eq!(
            m,
            "VM 'app01' is being backed up by job 'Big and web'; restore it when the job has finished, or stop the job"
        );
    }
    assert_eq!(w.get_json("/api/tasks").await.json(), tasks);
    let t0 = Instant::now();
    let r = w
        .send(Req::post(&format!("/api/jobs/{job}?action=stop")).accept(JSON))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    let s = loop {
        let s = w.blocking(session).await;
        if s.state == emrest_core::SessionState::Stopped {
            break s;
        }
        assert!(Instant::now() < deadline, "backup did not stop: {s:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    println!(
        "stop latency of a running 256 MiB backup: {:?}",
        t0.elapsed()
    );
    assert_eq!(s.result, emrest_core::SessionResult::Failed);
    assert_eq!(
        s.failure_message.as_deref(),
        Some("Job stopped by tester; no restore point was recorded")
    );
    let (after, (named, stored)) = w
        .blocking(|c| {
            (
                c.view().vm_restore_points(None).unwrap().len(),
                index_files(c),
            )
        })
        .await;
    assert_eq!(after, points, "no point recorded");
    assert_eq!(named, stored, "no index left behind");
    assert_eq!(w.vm_disks(&app01.vm).await, app01_before);
    // Stopped, the job holds no VM any more: app01 restores.
    w.blocking(|c| assert!(c.jobs().wait_jobs_idle(Duration::from_secs(60))))
        .await;
    let t = start_restore(&w, app01.id).await;
    let done = w.wait_task(t["TaskId"].as_str().unwrap()).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restores_beyond_the_worker_count_wait_and_work_on_a_busy_vm_is_refused() {
    let w = World::with_config(ONE_MIB, Default::default(), |c| c.restore_workers = 2).await;
    let (a, _, pa) = vm_with_job(&w, "big-a", 1, 192, None, true).await;
    let (b, _, pb) = vm_with_job(&w, "big-b", 1, 192, None, true).await;
    let (before_a, before_b) = (w.vm_disks(&a).await, w.vm_disks(&b).await);
    let third = w.point("web01", PointType::Full).await;
    // The two take their workers and stay there, before touching a disk, until released
    // (they restore in well under a second otherwise).
    w.blocking(|c| c.restores().hold(true)).await;
    let ta = start_restore(&w, pa.unwrap()).await;
    let tb = start_restore(&w, pb.unwrap()).await;
    // Two run side by side...
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (sa, sb) = (session(&w, &ta).await, session(&w, &tb).await);
        assert!(!stopped(&sa) && !stopped(&sb), "{sa} {sb}");
        if sa["State"] == "Working" && sb["State"] == "Working" {
            break;
        }
        assert!(Instant::now() < deadline, "{sa} {sb}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // ...and a third, started once both hold the two workers, waits: task Running, session
    // Starting.
    let tc = start_restore(&w, third.id).await;
    let sc = session(&w, &tc).await;
    assert_eq!(sc["State"], "Starting", "{sc}");
    assert_eq!(sc["Progress"], 0, "{sc}");
    let id_c = tc["TaskId"].as_str().unwrap();
    let t = w.get_json(&format!("/api/tasks/{id_c}")).await.json();
    assert_eq!(t["State"], "Running", "{t}");

    // A second restore of a VM being restored, and a backup of it, are refused with a 400 that
    // says why (http_response_codes.md has no 409); nothing is created.
    let tasks = w.get_json("/api/tasks").await.json();
    let m = w
        .send(
            Req::post(&format!(
                "/api/vmRestorePoints/{}?action=restore",
                pa.unwrap()
            ))
            .accept(JSON),
        )
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert_eq!(
        m,
        "VM 'big-a' is already being restored; wait for that task to finish"
    );
    let job_a = w
        .blocking(|c| c.view().job_by_name("Job big-a").unwrap().unwrap().id)
        .await;
    let sessions = w.blocking(move |c| c.view().backup_sessions(Some(job_a)).unwrap().len());
    let sessions = sessions.await;
    let m = w
        .send(Req::post(&format!("/api/jobs/{job_a}?action=start")))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert_eq!(
        m,
        "VM 'big-a' is being restored; start job 'Job big-a' again when the restore has finished"
    );
    assert_eq!(w.get_json("/api/tasks").await.json(), tasks);
    assert_eq!(
        w.blocking(move |c| c.view().backup_sessions(Some(job_a)).unwrap().len())
            .await,
        sessions,
        "no backup session"
    );

    // Cancelling the two running ones lets the waiting one run to the end.
    for t in [&ta, &tb] {
        let id = t["TaskId"].as_str().unwrap();
        let r = w.send(Req::delete(&format!("/api/tasks/{id}"))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    w.blocking(|c| c.restores().hold(false)).await;
    let done = w.wait_task(id_c).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
    assert_eq!(w.vm_disks(&third.vm).await, w.point_disks(&third).await);
    for (t, key, before) in [(&ta, &a, &before_a), (&tb, &b, &before_b)] {
        let s = wait_session(&w, t, stopped).await;
        assert_eq!(s["Result"], "Failed", "{s}");
        assert_eq!(&w.vm_disks(key).await, before);
    }
    // Free again: the job runs.
    let r = w
        .send(Req::post(&format!("/api/jobs/{job_a}?action=start")))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    w.blocking(|c| assert!(c.jobs().wait_jobs_idle(Duration::from_secs(60))))
        .await;
}

/// The order of restore session states.
fn rank(state: &str) -> u8 {
    match state {
        "Starting" => 0,
        "Working" => 1,
        "Stopping" => 2,
        "Stopped" => 3,
        other => panic!("unknown state {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_polling_and_cancelling_one_restore_see_one_consistent_story() {
    let w = std::sync::Arc::new(World::new(ONE_MIB).await);
    let (key, _, point) = vm_with_job(&w, "big03", 1, 192, None, true).await;
    let before = w.vm_disks(&key).await;
    let task = start_restore(&w, point.unwrap()).await;
    wait_session(&w, &task, working).await;
    // Two clients on the same logon session read the task and the restore session as fast as
    // they can, and both delete the task at the same moment.
    let client = |w: std::sync::Arc<World>, task: serde_json::Value| async move {
        let id = task["TaskId"].as_str().unwrap().to_string();
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut deletes = Vec::new();
        let mut gone = false;
        for i in 0.. {
            if i == 20 {
                deletes.push(
                    w.send(Req::delete(&format!("/api/tasks/{id}")))
                        .await
                        .status,
                );
            }
            let s = session(&w, &task).await;
            // The task is there until one of the two deletes it, then gone for good.
            let t = w.get_json(&format!("/api/tasks/{id}")).await;
            assert!(
                t.status == StatusCode::OK && !gone || t.status == StatusCode::NOT_FOUND,
                "{}",
                t.text()
            );
            gone = t.status == StatusCode::NOT_FOUND;
            seen.push((
                s["State"].as_str().unwrap().to_string(),
                s["Progress"].as_i64().unwrap(),
            ));
            if stopped(&s) {
                return (seen, deletes, s);
            }
        }
        unreachable!()
    };
    let (one, two) = tokio::join!(
        tokio::spawn(client(w.clone(), task.clone())),
        tokio::spawn(client(w.clone(), task.clone()))
    );
    let ((seen1, del1, end1), (seen2, del2, end2)) = (one.unwrap(), two.unwrap());
    let deletes: Vec<StatusCode> = del1.into_iter().chain(del2).collect();
    // Deleting twice at once: one removes it, the other finds it gone or removes it too; never
    // a server error.
    assert!(deletes.contains(&StatusCode::NO_CONTENT), "{deletes:?}");
    assert!(
        deletes
            .iter()
            .all(|s| *s == StatusCode::NO_CONTENT || *s == StatusCode::NOT_FOUND),
        "{deletes:?}"
    );
    for seen in [&seen1, &seen2] {
        for pair in seen.windows(2) {
            let ((s0, p0), (s1, p1)) = (&pair[0], &pair[1]);
            assert!(rank(s0) <= rank(s1), "state went back: {pair:?}");
            if s0 == "Working" && s1 == "Working" {
                assert!(p0 <= p1, "progress went back: {pair:?}");
            }
        }
    }
    assert_eq!(end1, end2, "both clients end with the same session");
    assert_eq!(end1["Result"], "Failed", "{end1}");
    assert_eq!(w.vm_disks(&key).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_to_a_datastore_without_room_fails_clearly_and_removes_its_staging() {
    let w = World::new(ONE_MIB).await;
    // Per-datastore capacity of the local platform: 12 MiB (and room for metadata), of which the VM's two 4 MiB disks
    // take 8. The first disk's staging fits, the second's does not.
    let ds = w
        .blocking(|c| {
            let root = c.infrastructure().hierarchy_roots().unwrap()[0].id;
            c.inventory()
                .add_datastore(root, "tiny", Some((12 << 20) + (64 << 10)))
                .unwrap()
                .object_ref
        })
        .await;
    let (key, _, point) = vm_with_job(&w, "cramped", 2, 4, Some(ds.clone()), true).await;
    let before = w.vm_disks(&key).await;
    let task = start_restore(&w, point.unwrap()).await;
    let done = w.wait_task(task["TaskId"].as_str().unwrap()).await;
    assert_eq!(done["Result"]["Success"], false, "{done}");
    let msg = done["Result"]["Message"].as_str().unwrap();
    assert!(
        msg.starts_with("Restore failed: ")
            && msg.contains(&format!("not enough space on datastore {ds}"))
            && msg.contains(&format!("{} bytes needed", 4 << 20)),
        "{msg}"
    );
    let s = session(&w, &done).await;
    assert_eq!(s["Result"], "Failed");
    assert_eq!(s["FailureMessage"], msg);
    assert_eq!(w.vm_disks(&key).await, before, "the VM is untouched");
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flipped_byte_or_a_missing_chunk_fails_the_restore_naming_the_chunk_and_the_point() {
    let w = World::new(ONE_MIB).await;
    // A flipped byte: the restore starts, fails on reading the chunk, and the VM is as it was.
    let p = w.point("web01", PointType::Full).await;
    let index = p.disks[0].index.clone();
    let (digest, place) = w
        .blocking(move |c| {
            let idx = c.repository().get_index(&index).unwrap();
            let d = *idx.referenced().next().unwrap();
            let loc = c.repository().chunk_location(&d).unwrap();
            let mut bytes = std::fs::read(&loc.pack).unwrap();
            bytes[(loc.offset + loc.len - 1) as usize] ^= 0x40;
            std::fs::write(&loc.pack, bytes).unwrap();
            let place = format!(
                "(the chunk's bytes in {} at offset {} are damaged)",
                loc.pack.display(),
                loc.offset
            );
            (d.to_string(), place)
        })
        .await;
    let before = w.vm_disks(&p.vm).await;
    let task = start_restore(&w, p.id).await;
    let done = w.wait_task(task["TaskId"].as_str().unwrap()).await;
    assert_eq!(done["Result"]["Success"], false, "{done}");
    let msg = done["Result"]["Message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("chunk {digest} is corrupt"))
            && msg.contains(&place)
            && msg.contains(&format!("VM restore point {} of 'web01' is damaged", p.id)),
        "{msg}"
    );
    assert_eq!(session(&w, &done).await["FailureMessage"], msg);
    assert_eq!(w.vm_disks(&p.vm).await, before);
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));

    // A missing chunk file: refused before anything starts, naming a chunk and the point.
    let p = w.point("file01", PointType::Full).await;
    let disks = p.disks.clone();
    w.blocking(move |c| {
        let d = disks
            .iter()
            .find_map(|d| {
                let idx = c.repository().get_index(&d.index).unwrap();
                let first = idx.referenced().next().copied();
                first
            })
            .expect("a stored chunk");
        std::fs::remove_file(c.repository().chunk_location(&d).unwrap().pack).unwrap();
    })
    .await;
    let snapshot = w.snapshot().await;
    let m = w
        .send(Req::post(&format!("/api/vmRestorePoints/{}?action=restore", p.id)).accept(JSON))
        .await
        .json_error(StatusCode::BAD_REQUEST);
    let named = m
        .split("chunk ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_default();
    assert!(
        m.contains(&format!("VM restore point {} of 'file01' is damaged", p.id))
            && named.len() == 64
            && m.contains("is missing"),
        "{m}"
    );
    assert_eq!(w.snapshot().await, snapshot);
}

#[tokio::test(flavor = "multi_thread")]
async fn restores_past_the_workers_and_the_queue_are_refused_with_503_recording_nothing() {
    // Security review finding 10: each restore request started a thread that waited for a
    // worker, with no bound on how many waited.
    let w = World::with_config(ONE_MIB, Default::default(), |c| {
        c.restore_workers = 1;
        c.restore_queue = 1;
    })
    .await;
    let first = w.point("web01", PointType::Full).await;
    let second = w.point("db01", PointType::Full).await;
    let third = w.point("file01", PointType::Full).await;
    w.blocking(|c| c.restores().hold(true)).await;
    let t1 = start_restore(&w, first.id).await;
    let t2 = start_restore(&w, second.id).await;
    let tasks_before = w.get_json("/api/tasks").await.json();
    for (ct, accept) in [(JSON, JSON), (XML, XML)] {
        let body = if ct == JSON {
            r#"{"VmRestoreSpec":{"PowerOnAfterRestore":false,"QuickRollback":false}}"#
        } else {
            "<RestoreSpec xmlns=\"http://www.veeam.com/ent/v1.0\"><VmRestoreSpec><PowerOnAfterRestore>false</PowerOnAfterRestore><QuickRollback>false</QuickRollback></VmRestoreSpec></RestoreSpec>"
        };
        let r = w
            .send(
                Req::post(&format!("/api/vmRestorePoints/{}?action=restore", third.id))
                    .content_type(ct)
                    .accept(accept)
                    .body(body),
            )
            .await;
        let m = r.error(StatusCode::SERVICE_UNAVAILABLE);
        assert!(m.contains("--restore-queue"), "{m}");
        assert!(r.header("Retry-After").is_some());
    }
    assert_eq!(
        w.get_json("/api/tasks").await.json(),
        tasks_before,
        "no task recorded"
    );
    w.blocking(|c| c.restores().hold(false)).await;
    for t in [&t1, &t2] {
        let done = w.wait_task(t["TaskId"].as_str().unwrap()).await;
        assert_eq!(done["Result"]["Success"], true, "{done}");
    }
    // Room again.
    let t3 = start_restore(&w, third.id).await;
    let done = w.wait_task(t3["TaskId"].as_str().unwrap()).await;
    assert_eq!(done["Result"]["Success"], true, "{done}");
}
