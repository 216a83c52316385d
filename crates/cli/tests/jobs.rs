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
