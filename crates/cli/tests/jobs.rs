//! `emrest job` and `emrest gc` as the real binary: create, start (to the end, with a summary
//! line and JSON), list, retention visible in `point list`, gc, and refusals.

mod common;

use common::*;

#[test]
fn job_create_start_list_and_gc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let d = arg(&data);
    let created = emrest(&[
        "job",
        "create",
        "--data",
        d,
        "--name",
        "Web only",
        "--vm",
        "web01",
        "--retention",
        "1",
    ])
    .ok();
    assert!(
        created.stderr.contains("Job 'Web only' created: 1 VM(s)"),
        "{}",
        created.stderr
    );

    let run = emrest(&["job", "start", "--data", d, "Web only", "--wait", "--json"]).ok();
    let j = run.json();
    assert_eq!(j["session"]["result"], "Success", "{j}");
    assert_eq!(j["task_sessions"][0]["vm_name"], "web01");
    assert!(
        run.stderr.contains("Success, 1/1 VM(s)"),
        "summary line: {}",
        run.stderr
    );
    let first_point = j["task_sessions"][0]["vm_restore_point_id"].clone();

    // A second run with retention 1 replaces the first point; the VM's points are then the
    // demo's two and this job's one.
    let run = emrest(&["job", "start", "--data", d, "Web only", "--json"]).ok();
    let second_point = run.json()["task_sessions"][0]["vm_restore_point_id"].clone();
    assert_ne!(first_point, second_point);
    let ids: Vec<String> = point_list(&data)
        .iter()
        .map(|p| field(p, "id").to_string())
        .collect();
    assert!(ids.contains(&second_point.as_str().unwrap().to_string()));
    assert!(!ids.contains(&first_point.as_str().unwrap().to_string()));

    let list = emrest(&["job", "list", "--data", d, "--json"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["job"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Backup Job hyperv01",
            "Backup Job vcd01",
            "Backup Job vcenter01",
            "Web only"
        ]
    );
    let gc = emrest(&["gc", "--data", d, "--grace-minutes", "0", "--json"])
        .ok()
        .json();
    assert_eq!(
        gc["indexes_removed"], 0,
        "retention removed the indexes itself"
    );
    assert!(gc["chunks_kept"].as_u64().unwrap() > 0);
    // Every remaining point still reads back whole.
    emrest(&["verify", "--data", d]).ok();

    // Refusals: unknown job, stop of a job that does not run, a VM that does not exist.
    let r = emrest(&["job", "start", "--data", d, "nope"]);
    assert!(!r.status.success());
    assert!(r.stderr.contains("no job named 'nope'"), "{}", r.stderr);
    let r = emrest(&["job", "stop", "--data", d, "Web only"]);
    assert!(!r.status.success());
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
    // A run is made as an account that may start jobs (the built-in admin by default).
    let r = emrest(&["job", "start", "--data", d, "Web only", "--as", "ghost"]);
    assert!(!r.status.success());
    assert!(
        r.stderr.contains("no account 'ghost' to act as"),
        "{}",
        r.stderr
    );
    emrest_env(
        &["user", "add", "--data", d, "viewer", "--role", "PortalUser"],
        &[("EMREST_PASSWORD", "v-pw")],
    )
    .ok();
    let r = emrest(&["job", "start", "--data", d, "Web only", "--as", "viewer"]);
    assert!(!r.status.success());
    assert!(
        r.stderr
            .contains("'viewer' may not start, stop or edit jobs"),
        "{}",
        r.stderr
    );
    let r = emrest(&["job", "create", "--data", d, "--name", "X", "--vm", "ghost"]);
    assert!(!r.status.success());
    assert!(r.stderr.contains("no VM named 'ghost'"), "{}", r.stderr);
}

#[test]
fn job_schedule_sets_changes_and_clears_a_schedule_and_job_list_shows_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let d = arg(&data);
    let job = "Backup Job vcenter01";
    let set = emrest(&[
        "job",
        "schedule",
        "--data",
        d,
        job,
        "--daily",
        "22:00",
        "--days",
        "Mon,Wed,Fri",
        "--offset",
        "+02:00",
        "--retries",
        "2",
        "--window",
        "20-6",
    ])
    .ok();
    assert!(
        set.stderr
            .contains("runs Mon,Wed,Fri 22:00 +02:00; next run: "),
        "{}",
        set.stderr
    );
    let list = emrest(&["job", "list", "--data", d, "--json"]).ok().json();
    let row = list
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["job"]["name"] == job)
        .expect("row")
        .clone();
    // 22:00 at +02:00 is 20:00 UTC, on a Monday, Wednesday or Friday.
    let next = row["next_run"].as_str().expect("next run").to_string();
    assert!(next.ends_with("T20:00:00Z"), "{next}");
    let s = &row["job"]["schedule"];
    assert_eq!(s["offset_minutes"], 120);
    assert_eq!(s["retry"]["times"], 2);
    assert_eq!(
        s["recurrence"]["Daily"]["days"],
        serde_json::json!([1, 3, 5])
    );
    let table = emrest(&["job", "list", "--data", d]).ok().stdout;
    assert!(table.contains("NEXT RUN"), "{table}");
    assert!(table.contains(&next), "{table}");

    // Chained after another job: the list names it; switched off: "off"; cleared: "-".
    emrest(&[
        "job",
        "schedule",
        "--data",
        d,
        "Backup Job hyperv01",
        "--after",
        job,
    ])
    .ok();
    let table = emrest(&["job", "list", "--data", d]).ok().stdout;
    assert!(table.contains(&format!("after {job}")), "{table}");
    emrest(&["job", "schedule", "--data", d, job, "--disable"]).ok();
    let list = emrest(&["job", "list", "--data", d, "--json"]).ok().json();
    let row = list
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["job"]["name"] == job)
        .expect("row")
        .clone();
    assert_eq!(row["next_run"], serde_json::Value::Null);
    assert_eq!(row["job"]["schedule_enabled"], false);
    emrest(&["job", "schedule", "--data", d, job, "--clear"]).ok();
    let list = emrest(&["job", "list", "--data", d, "--json"]).ok().json();
    assert!(list
        .as_array()
        .expect("rows")
        .iter()
        .any(|r| r["job"]["name"] == job && r["job"]["schedule"].is_null()));

    // Refusals: one line, non-zero exit, nothing changed.
    for bad in [
        vec!["--daily", "25:00"],
        vec!["--every", "90m"],
        vec!["--daily", "22:00", "--days", "Moonday"],
        vec!["--monthly", "22:00"],
        vec!["--after", "Backup Job vcenter01"],
        vec![],
    ] {
        let mut args = vec!["job", "schedule", "--data", d, job];
        args.extend(bad.iter().copied());
        let out = emrest_cmd().args(&args).output().expect("run");
        assert!(!out.status.success(), "{bad:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{bad:?}: {err}");
    }
}
