//! Backup jobs and their sessions through the API: listings in both formats, start/stop/retry
//! answered with tasks, sessions that end in a restore point equal to the VMs' disks, a second
//! start refused while the job runs, and a damaged point refused before a restore.

use crate::common::*;
use axum::http::StatusCode;
use emrest_core::Role;

const VCENTER_JOB: &str = "Backup Job vcenter01";

/// The ID of a demo job, found through GET /api/jobs.
async fn job_id(w: &World, name: &str) -> String {
    let j = w.get_json("/api/jobs").await.json();
    let r = arr(&j, "Refs")
        .iter()
        .find(|r| r["Name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {j}"));
    uuid_of(r["UID"].as_str().unwrap())
}

/// Change a block of every disk of a VM, so a run has something new to store.
async fn change(w: &World, vm: &str, seed: u64) {
    let key = w.vm(vm).await.expect("vm").key();
    w.blocking(move |c| {
        for d in c.inventory().vm(&key).unwrap().disks {
            let f = c.inventory().open_disk(&key, &d.name, true).unwrap();
            emrest_core::demo::scribble(&f, d.size, 1.0, seed).unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_started_in_xml_and_json_makes_points_equal_to_the_vms_disks() {
    let w = World::new(2 * ONE_MIB).await;
    let job = job_id(&w, VCENTER_JOB).await;
    for (round, format) in [XML, JSON].into_iter().enumerate() {
        change(&w, "web01", 50 + round as u64).await;
        change(&w, "db01", 60 + round as u64).await;
        let web = w.vm("web01").await.unwrap();
        let db = w.vm("db01").await.unwrap();
        let expected = [
            ("web01", w.vm_disks(&web.key()).await),
            ("db01", w.vm_disks(&db.key()).await),
        ];
        let r = w
            .send(Req::post(&format!("/api/jobs/{job}?action=start")).accept(format))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let task_id = if format == XML {
            let x = r.xml();
            assert_eq!(x.name, "Task");
            assert_eq!(x.text_of("Operation"), "StartJob");
            x.text_of("TaskId").to_string()
        } else {
            let t = r.json();
            assert_eq!(t["Operation"], "StartJob");
            t["TaskId"].as_str().unwrap().to_string()
        };
        // post_jobs_id_actionstart.md: the task reports that the job was triggered.
        let task = w.wait_task(&task_id).await;
        assert_eq!(task["Result"]["Success"], true, "{task}");
        assert_eq!(
            task["Result"]["Message"],
            format!("Job \"{VCENTER_JOB}\" triggered to start.")
        );
        let session = wait_job_session(&w, &job, 3 + round).await;
        assert_eq!(session["Result"], "Success", "{session}");
        assert_eq!(session["JobName"], VCENTER_JOB);
        assert_eq!(session["JobType"], "Backup");
        assert_eq!(session["Progress"], 100);
        assert_eq!(session["IsRetry"], false);
        let first = &session["Links"][0];
        assert_eq!(first["Rel"], "Up");
        assert_eq!(first["Type"], "BackupServerReference");
        assert_eq!(first["Name"], "backup01.lab.local");
        // The session names its restore point; the task sessions name each VM's point.
        let rp = link(&session, "Related", "RestorePointReference");
        assert_eq!(w.get_json(&path_of(&rp)).await.status, StatusCode::OK);
        let sid = uuid_of(session["UID"].as_str().unwrap());
        let tasks = w
            .get_json(&format!(
                "/api/backupSessions/{sid}/taskSessions?format=Entity"
            ))
            .await
            .json();
        let tasks = arr(&tasks, "BackupTaskSessions");
        assert_eq!(tasks.len(), 2);
        for (vm, disks) in &expected {
            let t = tasks
                .iter()
                .find(|t| t["VmDisplayName"] == *vm)
                .unwrap_or_else(|| panic!("no task session of {vm}"));
            assert_eq!(t["State"], "Completed");
            assert_eq!(t["Result"], "Success");
            assert_eq!(t["Reason"], "");
            assert_eq!(
                t["TotalSize"],
                2 * ONE_MIB * (if *vm == "web01" { 2 } else { 1 })
            );
            assert_eq!(t["JobSessionUid"], session["UID"]);
            let href = path_of(&link(t, "Related", "VmRestorePoint"));
            let vp: uuid::Uuid = href
                .strip_prefix("/api/vmRestorePoints/")
                .and_then(|s| s.strip_suffix("?format=Entity"))
                .unwrap_or_else(|| panic!("{href}"))
                .parse()
                .unwrap();
            let point = w
                .blocking(move |c| c.view().vm_restore_point(vp).unwrap())
                .await;
            assert_eq!(&w.point_disks(&point).await, disks, "{vm} as backed up");
            assert_eq!(point.point_type, emrest_core::PointType::Increment);
        }
        // The same session in XML: IsRetry last, as backupsessions_id.md shows.
        let x = w
            .get_xml(&format!("/api/backupSessions/{sid}?format=Entity"))
            .await
            .xml();
        assert_eq!(x.name, "BackupJobSession");
        assert_eq!(x.names().last().copied(), Some("IsRetry"));
        assert_eq!(x.text_of("State"), "Stopped");
        assert_eq!(x.text_of("Result"), "Success");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_job_cannot_start_twice_and_stops_without_a_point() {
    let w = World::new(ONE_MIB).await;
    // A job over a large sparse VM, so it is still reading when the second start arrives.
    let job = w
        .blocking(|c| {
            let root = c.infrastructure().hierarchy_roots().unwrap()[0].id;
            let ds = c.inventory().datastores(root).unwrap()[0]
                .object_ref
                .clone();
            let vm = c
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
                .unwrap();
            c.jobs()
                .create_job("Big", &[vm.hierarchy_obj_ref()], 3, "test")
                .unwrap()
                .id
        })
        .await;
    let points = w
        .blocking(|c| c.view().vm_restore_points(None).unwrap().len())
        .await;
    let r = w
        .send(Req::post(&format!("/api/jobs/{job}?action=start")).accept(JSON))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    for format in [XML, JSON] {
        let m = w
            .send(Req::post(&format!("/api/jobs/{job}?action=start")).accept(format))
            .await
            .error(StatusCode::BAD_REQUEST);
        assert!(m.contains("already running"), "{m}");
    }
    let r = w
        .send(Req::post(&format!("/api/jobs/{job}?action=stop")).accept(JSON))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let t = r.json();
    assert_eq!(t["Operation"], "StopJob");
    assert_eq!(t["Result"]["Message"], "Job \"Big\" triggered to stop.");
    let session = wait_job_session(&w, &job.to_string(), 1).await;
    assert_eq!(session["Result"], "Failed");
    assert!(
        session["FailureMessage"]
            .as_str()
            .unwrap()
            .contains("stopped by tester"),
        "{session}"
    );
    assert!(session["Links"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["Rel"] != "Related"));
    assert_eq!(
        w.blocking(|c| c.view().vm_restore_points(None).unwrap().len())
            .await,
        points
    );
    // Stopping it again: not running.
    let m = w
        .send(Req::post(&format!("/api/jobs/{job}?action=stop")))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("not running"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_includes_and_sessions_are_listed_in_both_formats() {
    let w = World::new(ONE_MIB).await;
    let x = w.get_xml("/api/jobs").await.xml();
    assert_eq!(x.name, "EntityReferences");
    let refs = x.all("Ref");
    assert_eq!(refs.len(), 3);
    assert!(refs.iter().all(|r| r.attr("Type") == Some("JobReference")));
    let job = job_id(&w, VCENTER_JOB).await;

    let j = w
        .get_json(&format!("/api/jobs/{job}?format=Entity"))
        .await
        .json();
    assert_eq!(j["Type"], "Job");
    assert_eq!(j["JobType"], "Backup");
    assert_eq!(j["Platform"], "VMware");
    let info = &j["JobInfo"]["BackupJobInfo"];
    assert_eq!(info["SimpleRetentionPolicy"]["RetainCycles"], 7);
    let objects = arr(&info["Includes"], "ObjectInJobs");
    let names: Vec<_> = objects
        .iter()
        .map(|o| o["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web01", "db01"]);
    for rel in ["Start", "Stop", "Retry"] {
        assert!(j["Links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["Rel"] == rel && l["Href"].as_str().unwrap().starts_with(BASE)));
    }
    let list = w.get_json("/api/jobs?format=Entity").await.json();
    assert_eq!(arr(&list, "Jobs").len(), 3);

    let x = w.get_xml(&format!("/api/jobs/{job}/includes")).await.xml();
    assert_eq!(x.name, "ObjectsInJob");
    assert_eq!(x.all("ObjectInJob").len(), 2);
    assert!(x.all("ObjectInJob")[0]
        .text_of("HierarchyObjRef")
        .starts_with("urn:VMware:Vm:"));
    let j = w
        .get_json(&format!("/api/jobs/{job}/includes"))
        .await
        .json();
    assert_eq!(arr(&j, "ObjectInJobs").len(), 2);

    // Two demo runs per job: six sessions, twelve task sessions in all.
    let j = w.get_json("/api/backupSessions").await.json();
    assert_eq!(arr(&j, "Refs").len(), 6);
    assert!(arr(&j, "Refs")
        .iter()
        .all(|r| r["Type"] == "BackupJobSessionReference"));
    let x = w.get_xml("/api/backupSessions?format=Entity").await.xml();
    assert_eq!(x.name, "BackupJobSessions");
    assert_eq!(x.all("BackupJobSession").len(), 6);
    let j = w
        .get_json("/api/backupTaskSessions?format=Entity")
        .await
        .json();
    let ts = arr(&j, "BackupTaskSessions");
    assert_eq!(ts.len(), 12);
    let one = uuid_of(ts[0]["UID"].as_str().unwrap());
    let x = w
        .get_xml(&format!("/api/backupTaskSessions/{one}?format=Entity"))
        .await
        .xml();
    assert_eq!(x.name, "BackupTaskSession");
    assert_eq!(x.text_of("State"), "Completed");
    let r = w
        .get_xml(&format!(
            "/api/backupTaskSessions/urn:veeam:BackupTaskSession:{one}"
        ))
        .await
        .xml();
    assert_eq!(r.attr("Type"), Some("BackupTaskSessionReference"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_job_requests_get_errors_and_change_nothing() {
    let w = World::new(ONE_MIB).await;
    let job = job_id(&w, VCENTER_JOB).await;
    let before = w.get_json("/api/backupSessions").await.json();
    let m = w
        .send(Req::post(&format!("/api/jobs/{job}?action=explode")))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("explode"), "{m}");
    // A huge action is named, not echoed back at length.
    let huge = "x".repeat(10_000);
    let m = w
        .send(Req::post(&format!("/api/jobs/{job}?action={huge}")))
        .await
        .xml_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("xxxx…") && m.len() < 300, "{} bytes", m.len());
    let m = w
        .send(Req::post(&format!("/api/jobs/{job}?action=retry")).accept(JSON))
        .await
        .json_error(StatusCode::BAD_REQUEST);
    assert!(m.contains("failed run"), "{m}");
    w.send(Req::post(
        "/api/jobs/00000000-0000-4000-8000-000000000000?action=start",
    ))
    .await
    .xml_error(StatusCode::NOT_FOUND);
    w.get_json("/api/jobs/not-a-job")
        .await
        .json_error(StatusCode::BAD_REQUEST);
    w.get_json("/api/backupSessions/00000000-0000-4000-8000-000000000000")
        .await
        .json_error(StatusCode::NOT_FOUND);
    // get_jobs.md: jobs are for the Portal Administrator role.
    let other = w.logon_new_account("operator", Role::RestoreOperator).await;
    w.send(Req::get("/api/jobs").token(&other))
        .await
        .xml_error(StatusCode::FORBIDDEN);
    w.send(Req::post(&format!("/api/jobs/{job}?action=start")).token(&other))
        .await
        .xml_error(StatusCode::FORBIDDEN);
    assert_eq!(w.get_json("/api/backupSessions").await.json(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_from_a_point_with_a_missing_chunk_is_refused() {
    let w = World::new(ONE_MIB).await;
    let p = w.point("web01", emrest_core::PointType::Full).await;
    let index = p.disks[0].index.clone();
    w.blocking(move |c| {
        let idx = c.repository().get_index(&index).unwrap();
        let d = idx.referenced().next().unwrap();
        // Chunks live in pack files: remove the pack holding this one.
        let loc = c.repository().chunk_location(d).unwrap();
        std::fs::remove_file(loc.pack).unwrap();
    })
    .await;
    let before = w.snapshot().await;
    for (ct, body) in [(XML, ""), (JSON, "")] {
        let m = w
            .restore(p.id, ct, body)
            .await
            .error(StatusCode::BAD_REQUEST);
        assert!(m.contains("damaged"), "{m}");
    }
    assert_eq!(w.snapshot().await, before);
}
