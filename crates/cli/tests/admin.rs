//! Administration of a running server with the real binary: every verb that changes the data
//! folder reaches the server through its admin channel, with the output, exit codes and effects
//! it has on a stopped one.

mod common;

use common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

const VM_RESTORE_OPERATOR: &str = "urn:veeam:EnterpriseRole:c11c0c38-ba8b-49c7-bf70-fc2058fff1e2";

fn start(data: &Path) -> Server {
    Server::start(ServerOptions {
        data,
        https: false,
        demo: true,
        admin_password: Some(ADMIN_PASSWORD),
    })
}

/// `POST /api/sessionMngr` with HTTP Basic; the status.
fn logon_status(server: &Server, user: &str, password: &str) -> u16 {
    server.logon_response(user, password).status
}

/// What a spawned `emrest` printed once it exits.
fn finished(child: std::process::Child) -> Run {
    let out = child.wait_with_output().expect("wait for emrest");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `emrest` with `input` on its standard input.
fn emrest_stdin(args: &[&str], input: &str) -> Run {
    let mut cmd = emrest_cmd();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run the emrest binary");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    finished(child)
}

/// Run `emrest` with a terminal (a pseudo-terminal) as its standard input, typing `lines`.
fn emrest_on_terminal(args: &[&str], lines: &[&str]) -> Run {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers passed; the rest may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut cmd = emrest_cmd();
    cmd.args(args)
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("run the emrest binary");
    drop(cmd);
    for line in lines {
        master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type on the terminal");
    }
    finished(child)
}

fn failed_with(run: &Run, needle: &str) {
    assert!(
        !run.status.success() && run.stderr.contains(needle),
        "expected a failure naming {needle:?}: {run:?}"
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
}

#[test]
fn an_account_created_through_the_api_gets_its_password_from_every_cli_form_while_the_server_runs()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start(&data);
    let d = arg(&data);
    let admin = server.logon("admin", ADMIN_PASSWORD);
    let spec = serde_json::json!({
        "AccountType": "User",
        "AccountName": "CORP\\ops",
        "Roles": {"EnterpriseRoles": [{"EnterpriseRoleUid": VM_RESTORE_OPERATOR}]},
        "AllowRestoreAllVms": true,
    });
    let r = server.call(&admin, "POST", "/api/security/accounts", Some(&spec));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(logon_status(&server, "CORP\\ops", "from env"), 401);

    // EMREST_PASSWORD.
    let run = emrest_env(
        &["user", "passwd", "--data", d, "CORP\\ops"],
        &[("EMREST_PASSWORD", "from env")],
    )
    .ok();
    assert_eq!(run.stderr.trim(), "Password of 'CORP\\ops' changed");
    assert_eq!(logon_status(&server, "CORP\\ops", "from env"), 201);

    // --password-stdin.
    emrest_stdin(
        &[
            "user",
            "passwd",
            "--data",
            d,
            "CORP\\ops",
            "--password-stdin",
        ],
        "from stdin\n",
    )
    .ok();
    assert_eq!(logon_status(&server, "CORP\\ops", "from stdin"), 201);
    assert_eq!(logon_status(&server, "CORP\\ops", "from env"), 401);

    // --password on the command line (allowed for scripts).
    emrest(&[
        "user",
        "passwd",
        "--data",
        d,
        "CORP\\ops",
        "--password",
        "from argv",
    ])
    .ok();
    assert_eq!(logon_status(&server, "CORP\\ops", "from argv"), 201);

    // A prompt on a terminal, asked twice; two different answers change nothing.
    let run = emrest_on_terminal(
        &["user", "passwd", "--data", d, "CORP\\ops"],
        &["typed", "typed"],
    )
    .ok();
    assert!(run.stderr.contains("Password for 'CORP\\ops'"), "{run:?}");
    assert_eq!(logon_status(&server, "CORP\\ops", "typed"), 201);
    let run = emrest_on_terminal(
        &["user", "passwd", "--data", d, "CORP\\ops"],
        &["one", "other"],
    );
    failed_with(&run, "the two passwords differ");
    assert_eq!(logon_status(&server, "CORP\\ops", "typed"), 201);

    // An administrator through the API extension, on the same running server.
    let accounts = server
        .call(&admin, "GET", "/api/security/accounts", None)
        .json();
    let id = accounts["Refs"]
        .as_array()
        .and_then(|v| v.iter().find(|a| a["Name"] == "CORP\\ops"))
        .and_then(|a| a["UID"].as_str())
        .and_then(|uid| uid.rsplit(':').next())
        .unwrap_or_else(|| panic!("CORP\\ops is listed: {accounts}"))
        .to_string();
    let r = server.call(
        &admin,
        "PUT",
        &format!("/api/emrest/accounts/{id}/password"),
        Some(&serde_json::json!({ "Password": "from the api" })),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(logon_status(&server, "CORP\\ops", "from the api"), 201);
    assert_eq!(logon_status(&server, "CORP\\ops", "typed"), 401);
    emrest_env(
        &["user", "passwd", "--data", d, "CORP\\ops"],
        &[("EMREST_PASSWORD", "typed")],
    )
    .ok();

    // No password from anywhere, no terminal: one line, exit 1, nothing changed.
    let run = emrest(&["user", "passwd", "--data", d, "CORP\\ops"]);
    failed_with(&run, "no password given");
    // An unknown account: the server's error, as the CLI prints it on a stopped folder.
    let run = emrest_env(
        &["user", "passwd", "--data", d, "CORP\\nobody"],
        &[("EMREST_PASSWORD", "x")],
    );
    failed_with(&run, "CORP\\nobody");

    // The server logged each verb it ran for the CLI, never a password.
    let log = server.stop();
    assert!(log.contains("admin channel: user passwd"), "{log}");
    for secret in ["from env", "from stdin", "from argv", "typed"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn roles_scopes_accounts_jobs_and_gc_change_a_running_server_on_its_next_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start(&data);
    let d = arg(&data);
    let vms = vm_list(&data);
    let app01 = field(vm_named(&vms, "app01"), "hierarchy_obj_ref").to_string();

    // user add, with the password from the environment: it logs on at once.
    let run = emrest_env(
        &[
            "user",
            "add",
            "--data",
            d,
            "LAB\\op",
            "--role",
            "VmRestoreOperator",
        ],
        &[("EMREST_PASSWORD", "op pw")],
    )
    .ok();
    assert_eq!(run.stderr.trim(), "Account 'LAB\\op' added");
    let op = server.logon("LAB\\op", "op pw");
    let points = |token: &str| {
        let r = server.call(token, "GET", "/api/vmRestorePoints", None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["Refs"].as_array().map_or(0, Vec::len)
    };
    let all = points(&op);
    assert!(all > 2, "{all}");
    assert_eq!(server.call(&op, "GET", "/api/jobs", None).status, 403);

    // A role given and taken by the CLI counts on the session's next request.
    let run = emrest(&[
        "user",
        "role",
        "--data",
        d,
        "LAB\\op",
        "add",
        "PortalAdministrator",
    ])
    .ok();
    assert_eq!(run.stderr.trim(), "Portal Administrator given to 'LAB\\op'");
    assert_eq!(server.call(&op, "GET", "/api/jobs", None).status, 200);
    emrest(&[
        "user",
        "role",
        "--data",
        d,
        "LAB\\op",
        "remove",
        "PortalAdministrator",
    ])
    .ok();
    assert_eq!(server.call(&op, "GET", "/api/jobs", None).status, 403);

    // A restore scope narrows what the session sees on its next request; mode all widens it.
    emrest(&["user", "scope", "--data", d, "LAB\\op", "add", &app01]).ok();
    assert_eq!(points(&op), 2, "app01's full and increment");
    emrest(&["user", "scope", "--data", d, "LAB\\op", "mode", "all"]).ok();
    assert_eq!(points(&op), all);

    // job create and job start run in the server: the API sees the job and its new points.
    let admin = server.logon("admin", ADMIN_PASSWORD);
    let run = emrest(&[
        "job", "create", "--data", d, "--name", "nightly", "--vm", "app01",
    ])
    .ok();
    assert!(
        run.stderr.contains("Job 'nightly' created: 1 VM(s)"),
        "{run:?}"
    );
    let jobs = server.call(&admin, "GET", "/api/jobs", None).json();
    let names: Vec<&str> = jobs["Refs"]
        .as_array()
        .map(|v| v.iter().filter_map(|j| j["Name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"nightly"), "{jobs}");
    // A schedule set by the CLI is the server's at once (the API shows it).
    let run = emrest(&[
        "job", "schedule", "--data", d, "nightly", "--daily", "22:00",
    ])
    .ok();
    assert!(run.stderr.contains("Job 'nightly' runs"), "{run:?}");
    let id = jobs["Refs"]
        .as_array()
        .and_then(|v| v.iter().find(|j| j["Name"] == "nightly"))
        .and_then(|j| j["UID"].as_str())
        .and_then(|uid| uid.rsplit(':').next())
        .expect("the job's UID")
        .to_string();
    let job = server
        .call(
            &admin,
            "GET",
            &format!("/api/jobs/{id}?format=Entity"),
            None,
        )
        .json();
    assert_eq!(job["ScheduleConfigured"], true, "{job}");
    assert_eq!(job["ScheduleEnabled"], true, "{job}");
    let before = points(&admin);
    let run = emrest(&["job", "start", "--data", d, "nightly", "--json"]).ok();
    let session = run.json();
    assert_eq!(session["session"]["result"], "Success", "{session}");
    assert!(run.stderr.contains("Success, 1/1 VM(s)"), "{run:?}");
    assert_eq!(points(&admin), before + 1);
    // A job that does not exist: one line, exit 1.
    failed_with(
        &emrest(&["job", "start", "--data", d, "weekly"]),
        "no job named 'weekly'",
    );
    // Stopping a job that is not running is the server's 409 message.
    failed_with(
        &emrest(&["job", "stop", "--data", d, "nightly"]),
        "is not running",
    );

    // gc and verify --mark run in the server.
    let gc = emrest(&["gc", "--data", d, "--json"]).ok().json();
    assert!(gc["chunks_kept"].as_u64().unwrap_or(0) > 0, "{gc}");
    let run = emrest(&["verify", "--data", d, "--mark"]).ok();
    assert_eq!(
        run.stdout.trim(),
        "repository verified: no missing or corrupt chunk"
    );

    // Once the server is gone (cleanly), the same verbs open the folder themselves.
    let pid = server.pid();
    // SAFETY: kill only sends SIGTERM to the server this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let (status, log) = server.wait_exit();
    assert!(status.success(), "{log}");
    assert!(log.contains("admin channel: job start"), "{log}");
    assert!(
        !data.join("admin.sock").exists(),
        "a clean stop removes the socket"
    );
    let run = emrest(&[
        "user",
        "role",
        "--data",
        d,
        "LAB\\op",
        "add",
        "PortalAdministrator",
    ])
    .ok();
    assert_eq!(run.stderr.trim(), "Portal Administrator given to 'LAB\\op'");
}

#[test]
fn a_socket_left_by_a_killed_server_does_not_stop_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start(&data);
    let d = arg(&data);
    server.stop(); // SIGKILL: the socket file stays behind.
    assert!(data.join("admin.sock").exists());
    let run = emrest_env(
        &["user", "add", "--data", d, "late", "--role", "PortalUser"],
        &[("EMREST_PASSWORD", "pw")],
    )
    .ok();
    assert_eq!(run.stderr.trim(), "Account 'late' added");
    // And the next server replaces it and answers on it.
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: None,
    });
    emrest_env(
        &["user", "passwd", "--data", d, "late"],
        &[("EMREST_PASSWORD", "pw2")],
    )
    .ok();
    assert_eq!(logon_status(&server, "late", "pw2"), 201);
}

#[test]
fn the_admin_channel_answers_only_the_data_folders_owner_and_root() {
    // SAFETY: geteuid only reads the process's effective user ID.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: acting as another user needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start(&data);
    // Let another user reach the socket through the file system, so that only the peer
    // credential check stands in its way.
    for p in [dir.path(), data.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    }
    let socket = data.join("admin.sock");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut cmd = emrest_cmd();
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    cmd.args(["user", "passwd", "--data", arg(&data), "admin"])
        .env("EMREST_PASSWORD", "taken over");
    let out = cmd.output().expect("run emrest as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("answers only the data folder's owner"),
        "{stderr}"
    );
    assert_eq!(logon_status(&server, "admin", "taken over"), 401);
    assert_eq!(logon_status(&server, "admin", ADMIN_PASSWORD), 201);
    let log = server.stop();
    assert!(
        log.contains("admin channel: refused a request from uid 65534"),
        "{log}"
    );
}
