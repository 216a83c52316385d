//! `emrest serve` as the real binary, driven over HTTP by a client written here: logon, restore
//! through the API checked bit for bit with the CLI listings run beside the server, HTTPS with
//! the generated key pair, the first administrator's password, and signals.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

/// Poll a task until it is Finished (hang guard only); returns its last representation.
fn wait_task(server: &Server, token: &str, task_id: &str) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let r = server.call(token, "GET", &format!("/api/tasks/{task_id}"), None);
        assert_eq!(r.status, 200, "GET task: {}", r.text());
        let task = r.json();
        if task["State"] == "Finished" {
            return task;
        }
        assert_eq!(task["State"], "Running", "{task}");
        assert!(
            Instant::now() < deadline,
            "task {task_id} still running after {HANG_GUARD:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The path of an absolute link to this server.
fn path_of(server: &Server, href: &str) -> String {
    let base = format!("http://{}", server.http);
    href.strip_prefix(&base)
        .unwrap_or_else(|| panic!("link {href} does not use the request's own base {base}"))
        .to_string()
}

/// The first link of `rel` in a JSON representation.
fn link(v: &Value, rel: &str) -> String {
    v["Links"]
        .as_array()
        .expect("Links array")
        .iter()
        .find(|l| l["Rel"] == rel)
        .and_then(|l| l["Href"].as_str())
        .unwrap_or_else(|| panic!("no {rel} link in {v}"))
        .to_string()
}

/// POST a restore of a VM restore point through its Restore link, wait for the task, and
/// check it succeeded.
fn restore(server: &Server, token: &str, point: &Value, spec: Value) {
    let href = link(point, "Restore");
    let r = server.call(token, "POST", &path_of(server, &href), Some(&spec));
    assert_eq!(r.status, 202, "restore: {}", r.text());
    let task = r.json();
    assert_eq!(task["Operation"], "StartVMRestore", "{task}");
    let task_id = task["TaskId"].as_str().expect("TaskId").to_string();
    let done = wait_task(server, token, &task_id);
    assert_eq!(done["Result"]["Success"], true, "{done}");
    let session_href = link(&done, "Related");
    let r = server.call(token, "GET", &path_of(server, &session_href), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let session = r.json();
    assert_eq!(session["State"], "Stopped", "{session}");
    assert_eq!(session["Result"], "Success", "{session}");
}

#[test]
fn a_restore_through_http_makes_the_vm_equal_to_the_point_while_listings_run_beside_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: true,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let token = server.logon("admin", ADMIN_PASSWORD);

    let r = server.call(&token, "GET", "/api/vmRestorePoints?format=Entity", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let api_points = r.json()["VmRestorePoints"]
        .as_array()
        .expect("VmRestorePoints")
        .clone();
    assert_eq!(api_points.len(), 12);

    // The listings open the data folder read-only beside the running server.
    let cli_points = point_list(&data);
    let mut api_uids: Vec<&str> = api_points.iter().map(|p| field(p, "UID")).collect();
    let mut cli_uids: Vec<&str> = cli_points.iter().map(|p| field(p, "uid")).collect();
    api_uids.sort();
    cli_uids.sort();
    assert_eq!(
        api_uids, cli_uids,
        "the API and the CLI list the same points"
    );

    let api_point = |vm: &str, point_type: &str| {
        api_points
            .iter()
            .find(|p| p["VmName"] == vm && p["PointType"] == point_type)
            .unwrap_or_else(|| panic!("no {point_type} point of {vm} in the API"))
            .clone()
    };
    let full = point_of(&cli_points, "web01", "Full");
    let inc = point_of(&cli_points, "web01", "Increment");
    assert_ne!(
        disks(full),
        disks(inc),
        "the demo changed web01 after the Full backup"
    );
    let before = vm_list(&data);
    assert_eq!(disks(vm_named(&before, "web01")), disks(inc));

    // First the newest point, powered off afterwards: the power state is the spec's doing.
    restore(
        &server,
        &token,
        &api_point("web01", "Increment"),
        json!({"VmRestoreSpec": {"PowerOnAfterRestore": false, "QuickRollback": false}}),
    );
    let vms = vm_list(&data);
    let web01 = vm_named(&vms, "web01");
    assert_eq!(disks(web01), disks(inc));
    assert_eq!(field(web01, "power_state"), "PoweredOff");

    // Then the older Full point, powered on: every disk bit for bit as the point holds it.
    restore(
        &server,
        &token,
        &api_point("web01", "Full"),
        json!({"VmRestoreSpec": {"PowerOnAfterRestore": true, "QuickRollback": false}}),
    );
    let after = vm_list(&data);
    let web01 = vm_named(&after, "web01");
    assert_eq!(disks(web01), disks(full), "web01 now holds its Full point");
    assert_eq!(field(web01, "power_state"), "PoweredOn");
    for vm in &before {
        let name = field(vm, "name");
        if name != "web01" {
            assert_eq!(
                disks(vm),
                disks(vm_named(&after, name)),
                "{name} was touched"
            );
        }
    }
    // The repository is still whole, and `verify` runs beside the server too.
    emrest(&["verify", "--data", arg(&data)]).ok();
    server.stop();
}

#[test]
fn a_second_server_is_refused_and_other_writers_go_through_the_running_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let d = arg(&data);
    let [http] = free_addrs::<1>();
    let http = http.to_string();
    let refused = |args: &[&str]| {
        let run = emrest_env(args, &[("EMREST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
        assert!(!run.status.success(), "{args:?}: {run:?}");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("emrest: ") && l.contains("in use")),
            "{args:?}: {}",
            run.stderr
        );
    };
    refused(&["serve", "--data", d, "--http", &http, "--https", "off"]);
    assert!(
        TcpStream::connect(http.parse::<SocketAddr>().unwrap()).is_err(),
        "the refused second server must not listen"
    );
    // Verbs that change the folder run in the server, through its admin channel.
    let user_add = [
        "user",
        "add",
        "--data",
        d,
        "bob",
        "--password",
        "pw",
        "--role",
        "PortalUser",
    ];
    emrest(&user_add).ok();
    server.logon("bob", "pw");
    let run = emrest(&["demo", "--data", d, "--disk-size", DISK_SIZE]).ok();
    assert!(run.stderr.contains("Demo world created: 6 VMs"), "{run:?}");
    // Without the channel, the folder's lock still keeps a second writer out.
    std::fs::remove_file(data.join("admin.sock")).expect("remove the socket");
    let mut again = user_add;
    again[4] = "carol";
    refused(&again);
    // The server was not disturbed.
    server.logon("admin", ADMIN_PASSWORD);
    server.stop();
}

#[test]
fn listings_leave_running_tasks_to_the_server_which_fails_them_on_its_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    // A restore task and session left Running, as a server killed mid-restore leaves them.
    {
        let (core, _) = emrest_core::Core::open(emrest_core::CoreConfig::new(&data))
            .expect("open the data folder");
        let account = core
            .catalog()
            .account_by_name("admin")
            .expect("catalog")
            .expect("admin account")
            .id;
        let point = core.view().vm_restore_points(None).expect("points")[0].clone();
        // Any fresh UUID will do for the session; a logon session's ID is one.
        let session = core
            .logons()
            .logon("admin", ADMIN_PASSWORD)
            .expect("logon")
            .id;
        core.catalog()
            .insert_restore_session(session, point.id, &point.vm_name, account, 1)
            .expect("session");
        core.catalog()
            .insert_task("StartVMRestore", Some(session), account, 1)
            .expect("task");
    }
    for args in [&["vm", "list"][..], &["point", "list"], &["verify"]] {
        let run = emrest(&[args, &["--data", arg(&data)]].concat()).ok();
        assert!(
            !run.stderr.contains("interrupted"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: None,
    });
    let token = server.logon("admin", ADMIN_PASSWORD);
    let r = server.call(&token, "GET", "/api/tasks/task-1", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let task = r.json();
    assert_eq!(task["State"], "Finished", "{task}");
    assert_eq!(task["Result"]["Success"], false, "{task}");
    let log = server.stop();
    assert!(
        log.contains("1 task(s) were interrupted"),
        "the server reports what it recovered: {log}"
    );
}

#[test]
fn serve_names_on_start_up_each_kind_of_leftover_recovery_dealt_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    // What a killed process leaves behind, one of each kind.
    {
        let (core, _) = emrest_core::Core::open(emrest_core::CoreConfig::new(&data))
            .expect("open the data folder");
        let admin = core
            .catalog()
            .account_by_name("admin")
            .expect("catalog")
            .expect("admin account")
            .id;
        // A running task.
        core.catalog()
            .insert_task("StartJob", None, admin, 1)
            .expect("task");
        // A backup's index that no restore point names.
        let p = core.view().vm_restore_points(None).expect("points")[0].clone();
        let index = core
            .repository()
            .get_index(&p.disks[0].index)
            .expect("index");
        core.repository()
            .put_index("orphan-of-a-killed-backup", &index)
            .expect("index");
        // A quick rollback's journal (its writes had begun), and one nobody can read.
        let journals = emrest_core::rollback_journal::journal_dir(core.data_dir());
        let journal = emrest_core::rollback_journal::RollbackJournal::new(uuid::Uuid::new_v4(), &p);
        emrest_core::rollback_journal::write_journal(&journals, &journal).expect("journal");
        std::fs::write(
            journals.join(format!("{}.json", uuid::Uuid::new_v4())),
            b"{ torn",
        )
        .expect("torn journal");
    }
    // An inventory change interrupted before its rename.
    std::fs::create_dir(data.join("platforms").join(".tmp-interrupted-root")).expect("leftover");

    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: None,
    });
    let log = server.stop();
    for line in [
        "Recovery: 1 task(s) were interrupted by the last stop and are marked failed",
        "Recovery: 1 leftover(s) of an interrupted restore or inventory change were removed",
        "Recovery: 1 index(es) of an interrupted backup were removed",
        "Recovery: 1 restore(s) interrupted after changing their VM's disks, or before flushing them, were rolled forward",
        "Recovery: 1 rollback journal(s) could not be rolled forward and are kept in",
    ] {
        assert!(log.contains(line), "missing {line:?} in: {log}");
    }
    assert!(!data
        .join("platforms")
        .join(".tmp-interrupted-root")
        .exists());

    // A clean stop leaves nothing to recover but the journal nobody can read.
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: None,
    });
    let log = server.stop();
    let recovery: Vec<&str> = log.lines().filter(|l| l.contains("Recovery:")).collect();
    assert_eq!(recovery.len(), 1, "{log}");
    assert!(recovery[0].contains("1 rollback journal(s) could not be rolled forward"));
}

/// The DER bytes of the first certificate in a PEM file.
fn pem_certificate_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("PEM certificate is base64")
}

/// SHA-256 as upper-case hex pairs separated by colons, as the server logs it.
fn colon_fingerprint(der: &[u8]) -> String {
    sha256_hex(der)
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint the server logged.
fn logged_fingerprint(log: &str) -> String {
    let marker = "TLS certificate SHA-256 fingerprint: ";
    let line = log
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no fingerprint in the log:\n{log}"));
    line[line.find(marker).unwrap() + marker.len()..]
        .trim()
        .to_string()
}

fn tls_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend(kind.to_be_bytes());
    out.extend((data.len() as u16).to_be_bytes());
    out.extend(data);
}

/// A TLS 1.2 ClientHello with ECDHE suites (the server's generated key is ECDSA P-256).
fn client_hello() -> Vec<u8> {
    let mut body = vec![3, 3]; // TLS 1.2
    body.extend([0x42; 32]); // client random
    body.push(0); // no session ID
    let suites: [u16; 6] = [0xc02b, 0xc02c, 0xcca9, 0xc02f, 0xc030, 0xcca8];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend(s.to_be_bytes());
    }
    body.extend([1, 0]); // compression: null only
    let mut ext = Vec::new();
    tls_extension(&mut ext, 10, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]); // groups
    tls_extension(&mut ext, 11, &[1, 0]); // point formats: uncompressed
    tls_extension(&mut ext, 13, &[0, 10, 4, 3, 5, 3, 8, 4, 4, 1, 8, 7]); // signature algorithms
    tls_extension(&mut ext, 23, &[]); // extended master secret
    tls_extension(&mut ext, 0xff01, &[0]); // renegotiation info
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut handshake = vec![1]; // ClientHello
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![22, 3, 1];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// Open a TLS handshake with `addr` and return the DER of the certificate the server presents
/// (checking that a ServerHello came first).
fn tls_server_certificate(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, HANG_GUARD).expect("connect to HTTPS");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    stream.write_all(&client_hello()).expect("send ClientHello");
    let mut handshake = Vec::new(); // handshake messages, records unwrapped
    let mut seen_server_hello = false;
    loop {
        let mut header = [0u8; 5];
        stream
            .read_exact(&mut header)
            .expect("a TLS record from the server");
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("record payload");
        match header[0] {
            22 => handshake.extend(payload),
            21 => panic!("the server sent a TLS alert: {payload:?}"),
            other => panic!("unexpected TLS record type {other}"),
        }
        while handshake.len() >= 4 {
            let msg_len =
                u32::from_be_bytes([0, handshake[1], handshake[2], handshake[3]]) as usize;
            if handshake.len() < 4 + msg_len {
                break;
            }
            let msg: Vec<u8> = handshake.drain(..4 + msg_len).collect();
            match msg[0] {
                2 => seen_server_hello = true,
                11 => {
                    assert!(seen_server_hello, "Certificate before ServerHello");
                    // certificate_list<3>, then the first entry: cert<3> + DER.
                    let first_len = u32::from_be_bytes([0, msg[7], msg[8], msg[9]]) as usize;
                    return msg[10..10 + first_len].to_vec();
                }
                _ => {}
            }
        }
    }
}

#[test]
fn https_serves_a_generated_key_pair_whose_fingerprint_is_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(ServerOptions {
        data: &data,
        https: true,
        demo: false,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let tls = data.join("tls");
    let cert_pem = std::fs::read_to_string(tls.join("cert.pem")).expect("tls/cert.pem");
    let key = tls.join("key.pem");
    let key_mode = std::fs::metadata(&key)
        .expect("tls/key.pem")
        .permissions()
        .mode();
    assert_eq!(
        key_mode & 0o777,
        0o600,
        "the private key is readable by its owner only"
    );
    assert!(std::fs::read_to_string(&key)
        .expect("read key")
        .contains("PRIVATE KEY"));

    let der = pem_certificate_der(&cert_pem);
    let served = tls_server_certificate(server.https.expect("https listener"));
    assert_eq!(served, der, "the HTTPS listener presents tls/cert.pem");
    let log = server.stop();
    assert!(
        log.contains("generated a self-signed TLS certificate"),
        "{log}"
    );
    assert_eq!(logged_fingerprint(&log), colon_fingerprint(&der));

    // A restart keeps the pair.
    let server = Server::start(ServerOptions {
        data: &data,
        https: true,
        demo: false,
        admin_password: None,
    });
    let served = tls_server_certificate(server.https.expect("https listener"));
    let log = server.stop();
    assert_eq!(served, der, "the certificate survives a restart");
    assert!(!log.contains("generated a self-signed"), "{log}");
    assert_eq!(logged_fingerprint(&log), colon_fingerprint(&der));
    assert_eq!(
        std::fs::read_to_string(tls.join("cert.pem")).expect("cert"),
        cert_pem
    );
}

/// The password from the server's "generated password: ..." line, once it has been printed.
fn generated_password(server: &Server) -> String {
    let marker = "generated password: ";
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let log = server.stderr.text();
        if let Some(line) = log.lines().find(|l| l.contains(marker)) {
            return line[line.find(marker).unwrap() + marker.len()..]
                .trim()
                .to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no generated password in:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn first_start_without_a_password_prints_a_generated_one_once_and_it_logs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let options = || ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: None,
    };
    let server = Server::start(options());
    let password = generated_password(&server);
    assert!(password.len() >= 12, "a strong password: {password:?}");
    server.logon("admin", &password);
    let wrong = server.logon_response("admin", "not-the-password");
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let log = server.stop();
    assert_eq!(log.matches(&password).count(), 1, "shown once: {log}");

    let server = Server::start(options());
    server.logon("admin", &password);
    let log = server.stop();
    assert!(!log.contains("generated password"), "{log}");
    assert!(!log.contains(&password), "{log}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let (status, log) = server.wait_exit();
    assert!(status.success(), "exit {status}: {log}");
    assert!(log.contains("shutting down"), "{log}");
    // The lock is released: the folder opens for writing again.
    emrest(&[
        "user",
        "add",
        "--data",
        arg(&data),
        "bob",
        "--password",
        "pw",
        "--role",
        "PortalUser",
    ])
    .ok();
}

#[test]
fn the_server_log_goes_to_stderr_without_colour_codes_when_piped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(ServerOptions {
        data: &data,
        https: false,
        demo: false,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let stdout = server.stdout.clone();
    let log = server.stop();
    assert!(log.contains("serving HTTP on http://"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escapes in a piped log: {log:?}"
    );
    assert_eq!(stdout.text(), "", "stdout is for data, not the log");
}

#[test]
fn metrics_move_to_their_own_listener_behind_a_bearer_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let [metrics] = free_addrs::<1>();
    let metrics_arg = metrics.to_string();
    let server = Server::start_with(
        ServerOptions {
            data: &data,
            https: false,
            demo: false,
            admin_password: Some(ADMIN_PASSWORD),
        },
        &[
            "--metrics",
            &metrics_arg,
            "--metrics-token",
            "scrape-secret",
        ],
    );
    server.logon("admin", ADMIN_PASSWORD);
    // Moved: the API listener no longer serves them.
    let r = request(server.http, "GET", "/metrics", &[], b"").expect("GET /metrics");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = request(metrics, "GET", "/metrics", &[], b"").expect("GET /metrics");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = request(
        metrics,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer wrong")],
        b"",
    )
    .expect("GET /metrics");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = request(
        metrics,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer scrape-secret")],
        b"",
    )
    .expect("GET /metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .lines()
            .any(|l| l == "emrest_logons_total{outcome=\"success\"} 1"),
        "{}",
        r.text()
    );
    // That listener serves nothing else.
    let r = request(metrics, "GET", "/api", &[], b"").expect("GET /api");
    assert_eq!(r.status, 404);
    server.stop();
}
