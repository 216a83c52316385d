//! The real binary with its repository in an S3 bucket (a real Garage, started by the test)
//! and its inventory outside the data folder: the demo, listings, verify and a restore
//! through the API, all with `--repository` / `--inventory`, and what guards a repository
//! from a second catalog.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The flags every verb gets.
fn flags<'a>(data: &'a Path, repository: &'a str, inventory: &'a Path) -> Vec<&'a str> {
    vec![
        "--data",
        arg(data),
        "--repository",
        repository,
        "--inventory",
        arg(inventory),
    ]
}

/// The disks of each VM or point by key, as name → sha256.
fn hashes(entries: &[Value], key: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    entries
        .iter()
        .map(|e| {
            let d = disks(e).into_iter().map(|(n, (_, sha))| (n, sha)).collect();
            (field(e, key).to_string(), d)
        })
        .collect()
}

#[test]
fn a_deployment_with_its_repository_in_a_bucket_backs_up_lists_verifies_and_restores() {
    let Some(g) = emrest_testkit::garage::garage() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, inventory) = (dir.path().join("data"), dir.path().join("datastores"));
    let url = g.fresh_url("cli");
    let keys = g.env();
    let mut env: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |verb: &[&str], env: &[(&str, &str)]| {
        let mut args = verb.to_vec();
        args.extend(flags(&data, &url, &inventory));
        emrest_env(&args, env)
    };

    // Without the key pair: one clear line, nothing created.
    let refused = run(&["demo", "--disk-size", DISK_SIZE], &[]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("AWS_ACCESS_KEY_ID is not set"),
        "{}",
        refused.stderr
    );

    env.push(("EMREST_ADMIN_PASSWORD", ADMIN_PASSWORD));
    let demo = run(&["demo", "--disk-size", DISK_SIZE], &env).ok();
    assert!(
        demo.stderr.contains("Demo world created"),
        "{}",
        demo.stderr
    );
    assert!(
        demo.stderr
            .contains(&format!("emrest: repository s3://{}/", g.bucket))
            && demo.stderr.contains(" PUT,"),
        "the requests are reported: {}",
        demo.stderr
    );
    assert!(
        !data.join("repo").exists(),
        "no repository in the data folder"
    );
    assert!(
        !data.join("platforms").exists(),
        "no inventory in the data folder"
    );
    assert!(inventory.is_dir());

    // The listings (with the same flags) agree: each VM holds its newest point's bytes.
    let vms = run(&["vm", "list", "--json"], &env).ok().json();
    let points = run(&["point", "list", "--json"], &env).ok().json();
    let (vms, points) = (vms.as_array().unwrap(), points.as_array().unwrap());
    assert_eq!(vms.len(), 6);
    assert_eq!(points.len(), 12);
    let vm_disks = hashes(vms, "hierarchy_obj_ref");
    for vm in vms {
        let newest = points
            .iter()
            .filter(|p| field(p, "hierarchy_obj_ref") == field(vm, "hierarchy_obj_ref"))
            .max_by_key(|p| field(p, "creation_time").to_string())
            .expect("a point");
        assert_eq!(
            hashes(std::slice::from_ref(newest), "hierarchy_obj_ref"),
            BTreeMap::from([(
                field(vm, "hierarchy_obj_ref").to_string(),
                vm_disks[field(vm, "hierarchy_obj_ref")].clone()
            )])
        );
    }
    run(&["verify"], &env).ok();

    // A restore of an older point through the API of a server on the same bucket.
    let full = point_of(points, "app01", "Full");
    let server = Server::start_env(
        ServerOptions {
            data: &data,
            https: false,
            demo: false,
            admin_password: None,
        },
        &["--repository", &url, "--inventory", arg(&inventory)],
        &env,
    );
    let token = server.logon("admin", ADMIN_PASSWORD);
    let task = post_restore(&server, &token, field(full, "id"), false);
    let task_id = task["TaskId"].as_str().expect("TaskId").to_string();
    let deadline = Instant::now() + HANG_GUARD;
    let finished = loop {
        let t = server
            .call(&token, "GET", &format!("/api/tasks/{task_id}"), None)
            .json();
        if t["State"] == "Finished" {
            break t;
        }
        assert!(Instant::now() < deadline, "restore still running: {t}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(finished["Result"]["Success"], json!(true), "{finished}");
    // The store's requests are in the metrics.
    let metrics = request(server.http, "GET", "/metrics", &[], b"")
        .expect("GET /metrics")
        .text();
    let gets = metrics
        .lines()
        .find_map(|l| l.strip_prefix("emrest_object_store_requests_total{kind=\"get\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no GET count in the metrics:\n{metrics}"));
    assert!(gets > 0, "the restore read from the bucket");
    assert!(metrics.contains("emrest_object_store_bytes_total{direction=\"received\"}"));
    drop(server);
    let vms = run(&["vm", "list", "--json"], &env).ok().json();
    let app01 = vm_named(vms.as_array().unwrap(), "app01");
    assert_eq!(
        disks(app01),
        disks(full),
        "the VM's disks equal the restored point's"
    );

    // A second deployment (its own catalog) is refused the same repository.
    let other = dir.path().join("other");
    let mut args = vec!["demo", "--disk-size", DISK_SIZE, "--data", arg(&other)];
    args.extend(["--repository", url.as_str()]);
    let refused = emrest_env(&args, &env);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("belongs to another emrest catalog"),
        "{}",
        refused.stderr
    );
}

#[test]
fn move_copies_a_folder_repository_into_a_bucket_verifies_it_and_resumes() {
    let Some(g) = emrest_testkit::garage::garage() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let url = g.fresh_url("move");
    let keys = g.env();
    let env: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // A bad destination is refused before anything is opened or copied.
    let bad = emrest_env(
        &[
            "move",
            "--data",
            arg(&data),
            "--repository-to",
            "s3://Bad_Bucket",
        ],
        &env,
    );
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("not a bucket name"), "{}", bad.stderr);

    let moved = emrest_env(
        &["move", "--data", arg(&data), "--repository-to", &url],
        &env,
    )
    .ok();
    assert!(
        moved.stderr.contains("Every restore point verified"),
        "{}",
        moved.stderr
    );
    let copied = |stderr: &str| -> u64 {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("copied "))
            .unwrap_or_else(|| panic!("no copied line: {stderr}"));
        line["copied ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    assert!(copied(&moved.stderr) > 10, "{}", moved.stderr);
    assert!(
        moved.stdout.contains("repository verified"),
        "{}",
        moved.stdout
    );

    // The copy lists the same points with the same bytes as the folder.
    let from_folder = point_list(&data);
    let from_bucket = emrest_env(
        &[
            "point",
            "list",
            "--json",
            "--data",
            arg(&data),
            "--repository",
            &url,
        ],
        &env,
    )
    .ok()
    .json();
    assert_eq!(&from_folder, from_bucket.as_array().expect("array"));

    // Again: everything is there already.
    let again = emrest_env(
        &["move", "--data", arg(&data), "--repository-to", &url],
        &env,
    )
    .ok();
    assert_eq!(copied(&again.stderr), 0, "{}", again.stderr);

    // A pack lost from the bucket: verify against the bucket says which points it hurts.
    let s3 = emrest_s3::S3Storage::with_key(
        emrest_s3::S3Location::parse(&url).expect("address"),
        &g.key_id,
        &g.secret,
        None,
    )
    .expect("bucket");
    use emrest_repo::Storage;
    let pack = s3
        .list("packs/")
        .expect("list")
        .into_iter()
        .next()
        .expect("a pack");
    s3.delete(&pack).expect("delete a pack");
    let verify = emrest_env(
        &["verify", "--data", arg(&data), "--repository", &url],
        &env,
    );
    assert!(!verify.status.success(), "{}", verify.stdout);
    assert!(
        verify.stderr.contains("problem(s) found"),
        "{}",
        verify.stderr
    );
}
