//! The `emrest` maintenance verbs, run as the real binary: `demo`, `vm list`, `point list`,
//! `verify`, and how every verb refuses bad input.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn demo_creates_the_world_once_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let first = emrest(&["demo", "--data", arg(&data), "--disk-size", DISK_SIZE]).ok();
    assert!(
        first
            .stderr
            .contains("Demo world created: 6 VMs, 12 VM restore points"),
        "stderr: {}",
        first.stderr
    );
    assert!(
        first.stderr.contains("generated password"),
        "the first open of a data folder without EMREST_ADMIN_PASSWORD shows the admin password: {}",
        first.stderr
    );
    let points_before = emrest(&["point", "list", "--json", "--data", arg(&data)])
        .ok()
        .stdout;
    let vms_before = emrest(&["vm", "list", "--json", "--data", arg(&data)])
        .ok()
        .stdout;

    let second = emrest(&["demo", "--data", arg(&data), "--disk-size", DISK_SIZE]).ok();
    assert!(
        second
            .stderr
            .contains("Demo world already present: 6 VMs, 12 VM restore points"),
        "stderr: {}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("generated password"),
        "the admin password is shown once only: {}",
        second.stderr
    );
    let points_after = emrest(&["point", "list", "--json", "--data", arg(&data)])
        .ok()
        .stdout;
    let vms_after = emrest(&["vm", "list", "--json", "--data", arg(&data)])
        .ok()
        .stdout;
    assert_eq!(points_before, points_after);
    assert_eq!(vms_before, vms_after);
}

#[test]
fn vm_list_gives_six_vms_on_three_platforms_whose_disks_equal_their_newest_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let vms = vm_list(&data);
    let points = point_list(&data);
    assert_eq!(vms.len(), 6, "{vms:#?}");

    let mut per_platform: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for vm in &vms {
        per_platform
            .entry(field(vm, "platform"))
            .or_default()
            .insert(field(vm, "name"));
    }
    assert_eq!(
        per_platform.keys().copied().collect::<Vec<_>>(),
        ["HyperV", "VCloud", "VMware"]
    );
    for (platform, names) in &per_platform {
        assert_eq!(names.len(), 2, "{platform}: {names:?}");
    }

    // The bytes `vm list` hashes are the VM disk files in the data folder (wherever the local
    // platform keeps them): hash every file there independently.
    let file_hashes: BTreeSet<String> = files_below(&data.join("platforms"))
        .iter()
        .map(|f| sha256_hex(&std::fs::read(f).expect("read a file")))
        .collect();

    for vm in &vms {
        let name = field(vm, "name");
        for f in ["hierarchy_root", "datastore", "hierarchy_obj_ref"] {
            assert!(!field(vm, f).is_empty(), "{name}: empty {f}");
        }
        assert_eq!(field(vm, "power_state"), "PoweredOn", "{name}");
        let vm_disks = disks(vm);
        assert!(!vm_disks.is_empty(), "{name} has no disks");
        for (disk, (size, sha)) in &vm_disks {
            assert_eq!(*size, DISK_BYTES, "{name}/{disk}");
            assert!(
                file_hashes.contains(sha),
                "{name}/{disk}: sha256 {sha} is the hash of no file in the data folder"
            );
        }
        // The demo's incremental backup was taken after the last change, so the VM holds
        // exactly what its newest point holds.
        let newest = points
            .iter()
            .filter(|p| field(p, "hierarchy_obj_ref") == field(vm, "hierarchy_obj_ref"))
            .max_by_key(|p| field(p, "creation_time").to_string())
            .unwrap_or_else(|| panic!("{name} has no restore point"));
        assert_eq!(field(newest, "point_type"), "Increment", "{name}");
        assert_eq!(
            vm_disks,
            disks(newest),
            "{name}: disks differ from its newest point"
        );
    }
}

#[test]
fn point_list_gives_a_full_and_an_increment_per_vm_that_differ() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let points = point_list(&data);
    assert_eq!(points.len(), 12);

    let ids: BTreeSet<&str> = points.iter().map(|p| field(p, "id")).collect();
    assert_eq!(ids.len(), 12, "point IDs are unique");
    let mut per_vm: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for p in &points {
        assert_eq!(
            field(p, "uid"),
            format!("urn:veeam:VmRestorePoint:{}", field(p, "id"))
        );
        per_vm
            .entry(field(p, "hierarchy_obj_ref"))
            .or_default()
            .push(p);
    }
    assert_eq!(per_vm.len(), 6);
    for (vm, pts) in per_vm {
        let mut types: Vec<&str> = pts.iter().map(|p| field(p, "point_type")).collect();
        types.sort();
        assert_eq!(types, ["Full", "Increment"], "{vm}");
        let full = pts
            .iter()
            .find(|p| field(p, "point_type") == "Full")
            .unwrap();
        let inc = pts
            .iter()
            .find(|p| field(p, "point_type") == "Increment")
            .unwrap();
        assert_eq!(field(full, "vm_name"), field(inc, "vm_name"));
        assert!(
            field(full, "creation_time") < field(inc, "creation_time"),
            "{vm}: the Full point is older"
        );
        let (full_disks, inc_disks) = (disks(full), disks(inc));
        assert_eq!(
            full_disks.keys().collect::<Vec<_>>(),
            inc_disks.keys().collect::<Vec<_>>(),
            "{vm}: same disks in both points"
        );
        assert!(
            full_disks.iter().any(|(d, v)| inc_disks[d].1 != v.1),
            "{vm}: the guest changed no disk between the Full and the Increment point"
        );
    }
}

#[test]
fn text_listings_have_a_header_and_a_row_per_vm_and_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let vms = emrest(&["vm", "list", "--data", arg(&data)]).ok().stdout;
    let rows: Vec<&str> = vms.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(rows.len(), 7, "{vms}");
    assert!(rows[0].starts_with("NAME"), "{vms}");
    for vm in vm_list(&data) {
        assert!(
            rows.iter()
                .any(|r| r.split_whitespace().next() == Some(field(&vm, "name"))),
            "{vms}"
        );
        for (_, (_, sha)) in disks(&vm) {
            assert!(vms.contains(&sha), "{vms}");
        }
    }
    let points = emrest(&["point", "list", "--data", arg(&data)]).ok().stdout;
    let rows: Vec<&str> = points.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(rows.len(), 13, "{points}");
    assert!(rows[0].starts_with("ID"), "{points}");
}

/// What a refused command must look like: a non-zero exit, and a first stderr line from emrest
/// (`emrest: ...`, then nothing else) or from clap (`error: ...`).
fn assert_refused(run: &Run, needle: &str) {
    assert!(!run.status.success(), "expected a failure: {run:?}");
    let first = run.stderr.lines().next().unwrap_or_default();
    if first.starts_with("emrest: ") {
        assert_eq!(
            run.stderr.trim_end().lines().count(),
            1,
            "one line only: {}",
            run.stderr
        );
        assert!(first.contains(needle), "{needle:?} not in: {first}");
    } else {
        // clap's own message; it may continue on the next lines (missing arguments).
        assert!(first.starts_with("error: "), "stderr: {}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in: {}",
            run.stderr
        );
    }
}

#[test]
fn bad_input_fails_with_one_clear_line_and_creates_no_data_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = arg(&data);
    let cases: &[(&[&str], &str)] = &[
        (&["demo", "--data", d, "--disk-size", "0"], "--disk-size"),
        (
            &["demo", "--data", d, "--disk-size", "12X"],
            "unknown size unit",
        ),
        (
            &["demo", "--data", d, "--disk-size", "1000"],
            "multiple of 4096",
        ),
        (&["demo", "--data", d, "--disk-size=-1M"], "--disk-size"),
        (
            &["serve", "--data", d, "--demo", "--disk-size", "0"],
            "--disk-size",
        ),
        (
            &[
                "serve",
                "--data",
                d,
                "--http",
                "notanaddress",
                "--https",
                "off",
            ],
            "--http: 'notanaddress' is not an address",
        ),
        (
            &[
                "serve",
                "--data",
                d,
                "--http",
                "off",
                "--https",
                "127.0.0.1",
            ],
            "--https: '127.0.0.1' is not an address",
        ),
        (
            &["serve", "--data", d, "--http", "off", "--https", "off"],
            "both --http and --https are off",
        ),
        (
            &[
                "user",
                "add",
                "--data",
                d,
                "bob",
                "--password",
                "pw",
                "--role",
                "Wizard",
            ],
            "unknown role 'Wizard'",
        ),
        // No password from anywhere (no EMREST_PASSWORD, stdin not a terminal).
        (
            &["user", "add", "--data", d, "bob", "--role", "PortalUser"],
            "no password given: set EMREST_PASSWORD, use --password-stdin",
        ),
        // No role given: least privilege is the operator's choice, never a default.
        (
            &["user", "add", "--data", d, "bob", "--password", "pw"],
            "--role",
        ),
        (
            &["user", "passwd", "--data", d, "admin", "--password", "pw"],
            "is not an emrest data folder",
        ),
        (&["vm", "list", "--data", d], "is not an emrest data folder"),
        (
            &["point", "list", "--data", d],
            "is not an emrest data folder",
        ),
        (&["verify", "--data", d], "is not an emrest data folder"),
    ];
    for (args, needle) in cases {
        let run = emrest(args);
        assert_refused(&run, needle);
        assert!(
            !data.exists(),
            "`emrest {}` left a data folder behind",
            args.join(" ")
        );
    }
}

#[test]
fn bad_input_against_an_existing_world_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let d = arg(&data);
    let before = (point_list(&data), vm_list(&data));
    let run = emrest(&[
        "user",
        "add",
        "--data",
        d,
        "bob",
        "--password",
        "x",
        "--role",
        "root",
    ]);
    assert_refused(&run, "unknown role 'root'");
    let run = emrest(&["user", "passwd", "--data", d, "nobody", "--password", "x"]);
    assert_refused(&run, "nobody");
    let run = emrest(&[
        "user",
        "add",
        "--data",
        d,
        "admin",
        "--password",
        "x",
        "--role",
        "PortalUser",
    ]);
    assert_refused(&run, "already exists");
    let run = emrest(&["demo", "--data", d, "--disk-size", "3K"]);
    assert_refused(&run, "multiple of 4096");
    assert_eq!(before, (point_list(&data), vm_list(&data)));
}

#[test]
fn serve_on_a_port_in_use_fails_with_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let run = emrest_env(
        &[
            "serve",
            "--data",
            arg(&data),
            "--http",
            &addr,
            "--https",
            "off",
        ],
        &[("EMREST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    assert!(!run.status.success(), "{run:?}");
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("emrest: ") && last.contains(&format!("cannot listen on {addr}")),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn user_add_and_passwd_work_and_refuse_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let d = arg(&data);
    let run = emrest_env(
        &[
            "user",
            "add",
            "--data",
            d,
            "operator",
            "--role",
            "restoreoperator",
        ],
        &[("EMREST_PASSWORD", "op-pw")],
    )
    .ok();
    assert!(run.stderr.contains("Account 'operator' added"), "{run:?}");
    let run = emrest(&[
        "user",
        "passwd",
        "--data",
        d,
        "operator",
        "--password",
        "new",
    ])
    .ok();
    assert!(
        run.stderr.contains("Password of 'operator' changed"),
        "{run:?}"
    );
}

#[test]
fn user_roles_scopes_list_and_audit_verbs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let d = arg(&data);
    let vms = vm_list(&data);
    let app01 = field(vm_named(&vms, "app01"), "hierarchy_obj_ref").to_string();
    emrest(&[
        "user",
        "add",
        "--data",
        d,
        "LAB\\op",
        "--password",
        "pw",
        "--role",
        "VmRestoreOperator",
        "--scope",
        &app01,
    ])
    .ok();
    emrest(&["user", "role", "--data", d, "LAB\\op", "add", "PortalUser"]).ok();
    let list = emrest(&["user", "list", "--data", d, "--json"]).ok().json();
    let op = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "LAB\\op")
        .expect("the new account is listed");
    assert_eq!(
        op["roles"],
        serde_json::json!(["PortalUser", "VmRestoreOperator"])
    );
    assert_eq!(op["allowRestoreAllVms"], false);
    assert_eq!(op["scopes"][0]["objRef"], app01.as_str());
    let scope_id = op["scopes"][0]["id"].as_str().unwrap().to_string();
    emrest(&["user", "scope", "--data", d, "LAB\\op", "remove", &scope_id]).ok();
    emrest(&["user", "scope", "--data", d, "LAB\\op", "mode", "all"]).ok();
    // Bad input is refused and named.
    let run = emrest(&["user", "role", "--data", d, "LAB\\op", "add", "Wizard"]);
    assert!(
        !run.status.success() && run.stderr.contains("unknown role 'Wizard'"),
        "{run:?}"
    );
    let run = emrest(&[
        "user",
        "scope",
        "--data",
        d,
        "LAB\\op",
        "add",
        "urn:VMware:Vm:bad",
    ]);
    assert!(
        !run.status.success() && run.stderr.contains("HierarchyObjRef"),
        "{run:?}"
    );
    let run = emrest(&[
        "user",
        "role",
        "--data",
        d,
        "LAB\\op",
        "remove",
        "PortalAdministrator",
    ]);
    assert!(!run.status.success(), "{run:?}");
    // Every change is in the audit log, without the password.
    let audit = emrest(&["audit", "--data", d, "--json"]).ok();
    let actions: Vec<String> = audit
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for a in [
        "account-create",
        "role-add",
        "scope-remove",
        "scope-toggle",
        "scope-add",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
    }
    assert!(!audit.stdout.contains("\"pw\""));
    let table = emrest(&["audit", "--data", d]).ok();
    assert!(table.stdout.starts_with("TIME"), "{}", table.stdout);
}

/// Every chunk the demo's points reference, as (digest, where it is stored), read through a
/// read-only repository handle (the chunks live inside pack files).
fn stored_chunks(data: &Path) -> Vec<(String, emrest_repo::ChunkLocation)> {
    let repo = emrest_repo::Repository::open_read_only(
        &data.join("repo"),
        emrest_repo::Durability::NoSync,
    )
    .expect("open the repository");
    let mut digests = BTreeSet::new();
    for name in repo.list_indexes().expect("indexes") {
        let index = repo.get_index(&name).expect("index");
        digests.extend(index.referenced().copied());
    }
    assert!(!digests.is_empty(), "the demo stored no chunk");
    digests
        .into_iter()
        .map(|d| (d.to_string(), repo.chunk_location(&d).expect("stored")))
        .collect()
}

/// The verify output line about `digest`; checks it names only known VM restore points, at
/// least one.
fn problem_line(run: &Run, digest: &str, what: &str, point_ids: &BTreeSet<String>) {
    assert!(!run.status.success(), "verify must fail: {run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(digest))
        .unwrap_or_else(|| panic!("no line names chunk {digest}: {run:?}"));
    assert!(line.contains(what), "{line}");
    let named: Vec<&str> = line
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .filter(|w| w.len() == 36)
        .collect();
    assert!(!named.is_empty(), "no VM restore point named: {line}");
    for id in named {
        assert!(
            point_ids.contains(id),
            "{id} is no VM restore point: {line}"
        );
    }
    assert!(
        run.stderr.starts_with("emrest: ") && run.stderr.contains("problem(s) found"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_passes_on_a_demo_world_and_names_a_corrupt_chunk_and_its_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let d = arg(&data);
    let run = emrest(&["verify", "--data", d]).ok();
    assert!(
        run.stdout.contains("no missing or corrupt chunk"),
        "{run:?}"
    );

    let point_ids: BTreeSet<String> = point_list(&data)
        .iter()
        .map(|p| field(p, "id").to_string())
        .collect();
    let (digest, loc) = stored_chunks(&data).swap_remove(0);
    let path = loc.pack.clone();
    let original = std::fs::read(&path).expect("read pack");
    // Chunk records start with a 12-byte header; damage the payload.
    assert!(loc.len > 12, "chunk {digest} has no payload");
    let mut damaged = original.clone();
    let at = (loc.offset + 12 + (loc.len - 12) / 2) as usize;
    damaged[at] ^= 0x5a;
    let mut perm = std::fs::metadata(&path).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)] // the test owns this temporary file
    perm.set_readonly(false);
    std::fs::set_permissions(&path, perm).expect("make the pack writable");
    std::fs::write(&path, &damaged).expect("damage the chunk");

    let run = emrest(&["verify", "--data", d]);
    problem_line(&run, &digest, "corrupt", &point_ids);
    // The line names the damaged file on disk and where in it, and what is wrong.
    problem_line(
        &run,
        &digest,
        &format!(
            "(the chunk's bytes in {} at offset {} are damaged)",
            path.display(),
            loc.offset
        ),
        &point_ids,
    );
    assert_eq!(run.stdout.lines().count(), 1, "one problem only: {run:?}");

    std::fs::write(&path, &original).expect("repair the pack");
    emrest(&["verify", "--data", d]).ok();
}

/// A demo data folder under `dir`, its VM restore point IDs, its stored chunks and the pack
/// that holds the last of them.
fn demo_and_its_last_pack(
    dir: &Path,
) -> (
    PathBuf,
    BTreeSet<String>,
    Vec<(String, emrest_repo::ChunkLocation)>,
    PathBuf,
) {
    let data = dir.join("data");
    make_demo(&data);
    let point_ids = point_list(&data)
        .iter()
        .map(|p| field(p, "id").to_string())
        .collect();
    let chunks = stored_chunks(&data);
    let pack = chunks.last().expect("a chunk").1.pack.clone();
    (data, point_ids, chunks, pack)
}

#[test]
fn verify_names_every_chunk_of_a_missing_pack_and_its_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, point_ids, chunks, pack) = demo_and_its_last_pack(dir.path());
    let lost: Vec<&String> = chunks
        .iter()
        .filter(|(_, l)| l.pack == pack)
        .map(|(d, _)| d)
        .collect();
    std::fs::remove_file(&pack).expect("delete the pack");
    let run = emrest(&["verify", "--data", arg(&data)]);
    for digest in &lost {
        problem_line(&run, digest, "missing", &point_ids);
    }
    assert_eq!(run.stdout.lines().count(), lost.len(), "{run:?}");
}

#[test]
fn verify_names_a_pack_whose_own_index_is_damaged_instead_of_calling_its_chunks_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, point_ids, _, pack) = demo_and_its_last_pack(dir.path());
    // An entry's codec byte in the pack's index (the footer's first field is its offset).
    let mut bytes = std::fs::read(&pack).expect("read pack");
    let footer = bytes.len() - 64;
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&bytes[footer..footer + 8]);
    let at = u64::from_le_bytes(offset) as usize + 32;
    bytes[at] ^= 0x10;
    let mut perm = std::fs::metadata(&pack).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)] // the test owns this temporary file
    perm.set_readonly(false);
    std::fs::set_permissions(&pack, perm).expect("make the pack writable");
    std::fs::write(&pack, &bytes).expect("damage the pack index");

    let run = emrest(&["verify", "--data", arg(&data)]);
    assert!(!run.status.success(), "{run:?}");
    let named = format!("the index of pack {} is damaged (", pack.display());
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(&named))
        .unwrap_or_else(|| panic!("no line names the pack: {run:?}"));
    assert!(
        line.contains("chunks cannot be read; affects VM restore point(s) "),
        "{line}"
    );
    assert!(point_ids.iter().any(|id| line.contains(id)), "{line}");
    assert!(!run.stdout.contains("missing"), "{run:?}");
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one line for the pack: {run:?}"
    );
}
