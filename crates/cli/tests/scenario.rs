//! `emrest demo --scenario FILE` with the real binary: the world the file describes, and bad
//! files refused with their line before anything is created.

mod common;

use common::*;
use std::path::Path;

const SCENARIO: &str = r#"
disk_size = "64K"

[backup_server]
name = "bk.example.test"

[[roots]]
name = "vc.example.test"
platform = "VMware"
datastores = ["fast", "slow"]

[[roots.vms]]
name = "web-{n}"
count = 3
disk_sizes = ["64K", "128K"]
datastore = "slow"

[[roots.vms]]
name = "cold"
power = "PoweredOff"

[[roots]]
name = "hv.example.test"
platform = "HyperV"

[[roots.vms]]
name = "hv-app"
disks = 2

[[jobs]]
name = "Web nightly"
vms = ["web-*", "cold"]
points = 3
change_percent = 5.0

[[jobs]]
name = "HV weekly"
vms = ["hv-app"]
points = 1

[[accounts]]
name = "LAB\\web-operator"
roles = ["VmRestoreOperator"]
scopes = ["web-2"]
password = "scenario pw"

[[accounts]]
name = "LAB\\auditor"
roles = ["PortalUser"]
password_env = "AUDITOR_PASSWORD"
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write the scenario");
    p.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn a_scenario_builds_the_world_it_describes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = write(dir.path(), "world.toml", SCENARIO);
    let run = emrest_env(
        &["demo", "--data", arg(&data), "--scenario", &file],
        &[
            ("EMREST_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("AUDITOR_PASSWORD", "from the environment"),
        ],
    )
    .ok();
    assert!(
        run.stderr.contains("created: 5 VMs, 13 VM restore points"),
        "{run:?}"
    );

    let vms = vm_list(&data);
    let mut names: Vec<&str> = vms.iter().map(|v| field(v, "name")).collect();
    names.sort();
    assert_eq!(names, ["cold", "hv-app", "web-1", "web-2", "web-3"]);
    let web2 = vm_named(&vms, "web-2");
    let sizes: Vec<u64> = disks(web2).values().map(|(size, _)| *size).collect();
    assert_eq!(sizes, [64 << 10, 128 << 10]);
    assert_eq!(field(vm_named(&vms, "cold"), "power_state"), "PoweredOff");
    assert_eq!(disks(vm_named(&vms, "hv-app")).len(), 2);

    // Three points of each web VM and of "cold", one of hv-app; the newest equals the disks.
    let points = point_list(&data);
    let count = |vm: &str| points.iter().filter(|p| field(p, "vm_name") == vm).count();
    assert_eq!((count("web-1"), count("cold"), count("hv-app")), (3, 3, 1));
    let newest = points
        .iter()
        .filter(|p| field(p, "vm_name") == "web-2")
        .max_by_key(|p| field(p, "creation_time").to_string())
        .expect("a point of web-2");
    assert_eq!(disks(newest), disks(web2));

    // Jobs, accounts with roles and scopes, the backup server: all through the API.
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: None,
    });
    let admin = server.logon("admin", ADMIN_PASSWORD);
    let jobs = server.call(&admin, "GET", "/api/jobs", None).json();
    let mut job_names: Vec<&str> = jobs["Refs"]
        .as_array()
        .map(|v| v.iter().filter_map(|j| j["Name"].as_str()).collect())
        .unwrap_or_default();
    job_names.sort();
    assert_eq!(job_names, ["HV weekly", "Web nightly"]);
    let servers = server
        .call(&admin, "GET", "/api/backupServers", None)
        .json();
    assert_eq!(servers["Refs"][0]["Name"], "bk.example.test");
    let op = server.logon("LAB\\web-operator", "scenario pw");
    let seen = server
        .call(&op, "GET", "/api/vmRestorePoints?format=Entity", None)
        .json();
    let seen: Vec<&str> = seen["VmRestorePoints"]
        .as_array()
        .map(|v| v.iter().filter_map(|p| p["VmName"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(seen, ["web-2", "web-2", "web-2"]);
    server.logon("LAB\\auditor", "from the environment");

    // A second run changes nothing.
    let again = emrest_env(
        &["demo", "--data", arg(&data), "--scenario", &file],
        &[("AUDITOR_PASSWORD", "from the environment")],
    )
    .ok();
    assert!(again.stderr.contains("already present"), "{again:?}");
}

#[test]
fn a_bad_scenario_is_refused_with_its_line_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cases: &[(&str, &str, &str)] = &[
        ("[[roots]]\nname = \"a\"\nplatform = \"Xen\"\n", "line 3", "platform 'Xen'"),
        ("[[roots]]\nname = \"a\"\nplatform = \"VMware\"\ncolour = 1\n", "line 4", "colour"),
        ("[[roots]]\nname = \"a\"\nplatform = \"VMware\"\n[[roots.vms]]\nname = \"x\"\n[[roots.vms]]\nname = \"X\"\n", "line 7", "a second VM named 'X'"),
        ("[[roots]]\nname = \"a\"\nplatform = \"VMware\"\n[[roots.vms]]\nname = \"x\"\n[[jobs]]\nname = \"j\"\nvms = [\"x\", \"y\"]\n", "line 8", "no VM named 'y'"),
        ("[[roots]]\nname = \"a\"\nplatform = \"VMware\"\n[[roots.vms]]\nname = \"x\"\ndisk_sizes = [\"1000\"]\n", "line 6", "multiple of 4096"),
        ("[[accounts]]\nname = \"u\"\nroles = [\"Wizard\"]\n", "line 3", "unknown role 'Wizard'"),
        ("[[accounts]]\nname = \"u\"\nroles = [\"PortalUser\"]\npassword_env = \"NOT_SET_ANYWHERE_42\"\n", "line 4", "NOT_SET_ANYWHERE_42 is not set"),
        ("roots = 3\n", "line 1", "invalid type"),
        ("[[roots]\n", "line 1", ""),
    ];
    for (text, line, reason) in cases {
        let file = write(dir.path(), "bad.toml", text);
        let run = emrest(&["demo", "--data", arg(&data), "--scenario", &file]);
        assert_eq!(run.status.code(), Some(1), "{text}: {run:?}");
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("emrest: ")
                && first.contains(&format!("bad.toml: {line}:"))
                && first.contains(reason),
            "{text}: {first}"
        );
        assert!(!data.exists(), "{text}: a data folder was made");
    }
    let run = emrest(&[
        "demo",
        "--data",
        arg(&data),
        "--scenario",
        "/nonexistent.toml",
    ]);
    assert!(
        run.stderr
            .contains("cannot read the scenario /nonexistent.toml"),
        "{run:?}"
    );
}
