//! The attack review's findings, each performed against the real binary on loopback: what the
//! attack did before, and the safe behaviour now.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A demo server and the UID of one of its VM restore points.
fn demo_server(data: &Path) -> (Server, String, String) {
    let server = Server::start(ServerOptions {
        data,
        https: false,
        demo: true,
        admin_password: Some(ADMIN_PASSWORD),
    });
    let token = server.logon("admin", ADMIN_PASSWORD);
    let r = server.call(&token, "GET", "/api/vmRestorePoints?format=Entity", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let uid = r.json()["VmRestorePoints"][0]["UID"]
        .as_str()
        .expect("a VM restore point")
        .to_string();
    (server, token, uid)
}

/// A server without demo data on `data`, with more `serve` arguments.
fn plain_server(data: &Path, extra: &[&str]) -> Server {
    Server::start_with(
        ServerOptions {
            data,
            https: false,
            demo: false,
            admin_password: Some(ADMIN_PASSWORD),
        },
        extra,
    )
}

/// `POST /api/sessionMngr` with HTTP Basic `user:password` as given; the answer's status.
fn basic_logon(server: &Server, user: &str, password: &str) -> u16 {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    request(
        server.http,
        "POST",
        "/api/sessionMngr/?v=latest",
        &[("Authorization", &format!("Basic {basic}"))],
        b"",
    )
    .map_or(0, |r| r.status)
}

/// The tasks the administrator sees.
fn task_count(server: &Server, token: &str) -> usize {
    let r = server.call(token, "GET", "/api/tasks", None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["Refs"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_cross_site_restore_riding_on_the_session_cookie_is_refused() {
    // Finding 9: another site's page could POST an empty text/plain body with the browser's
    // session cookie, and the restore overwrote the original VM.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (server, token, uid) = demo_server(&data);
    let cookie = server
        .logon_response("admin", ADMIN_PASSWORD)
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    let cookie_value = cookie.split(';').next().expect("name=value").to_string();
    let path = format!("/api/vmRestorePoints/{uid}?action=restore");
    let before = task_count(&server, &token);
    let own = format!("http://{}", server.http);
    let post = |headers: &[(&str, &str)]| {
        let mut all = vec![
            ("Cookie", cookie_value.as_str()),
            ("Content-Type", "text/plain"),
        ];
        all.extend_from_slice(headers);
        request(server.http, "POST", &path, &all, b"").expect("POST restore")
    };
    for attack in [
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
        vec![("Referer", "https://evil.example/page")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site"), ("Origin", own.as_str())],
    ] {
        let r = post(&attack);
        assert_eq!(r.status, 403, "{attack:?}: {}", r.text());
        assert!(
            r.text().contains("Cross-site request refused"),
            "{}",
            r.text()
        );
    }
    assert_eq!(task_count(&server, &token), before, "no restore started");
    // The server's own pages (same origin), and clients that send the header, are served.
    let r = post(&[("Origin", &own), ("Sec-Fetch-Site", "same-origin")]);
    assert_eq!(r.status, 202, "{}", r.text());
    let r = request(
        server.http,
        "GET",
        "/api/tasks",
        &[
            ("Cookie", &cookie_value),
            ("Origin", "https://evil.example"),
        ],
        b"",
    )
    .expect("GET");
    assert_eq!(r.status, 200, "reads are not state changes: {}", r.text());
}

#[test]
fn the_data_folder_is_readable_by_its_owner_only() {
    // Finding 5: catalog.db (with the password hashes), audit.log, indexes and disk images
    // were created world-readable.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (server, _, _) = demo_server(&data);
    drop(server);
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let mut files = 0;
    for f in files_below(&data) {
        let m = mode(&f);
        assert_eq!(m & 0o077, 0, "{} is {m:o}", f.display());
        files += 1;
    }
    assert!(
        files > 10,
        "the demo wrote its catalog, repository and disks"
    );
    for f in ["catalog.db", "audit.log"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
}

#[test]
fn a_data_folder_open_to_others_is_reported_at_start_and_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = emrest(&["verify", "--data", arg(&data)]);
    assert!(
        run.stderr.contains("readable by other users") && run.stderr.contains("chmod 700"),
        "{run:?}"
    );
    let server = plain_server(&data, &[]);
    let log = server.stop();
    assert!(log.contains("readable by other users"), "{log}");
}

#[test]
fn the_audit_table_shows_hostile_user_names_escaped_on_one_row_and_never_panics() {
    // Finding 3: a user name over 65,535 bytes made `emrest audit` panic, and one with a
    // newline and terminal escapes printed a forged "admin logon success" row.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = plain_server(&data, &[]);
    // (Basic authorization ends the user name at the first colon.)
    let forged = "x\n2026-01-01 admin 127.0.0.1 logon success\u{1b}[2K\u{202E}";
    let long = "n".repeat(70_000);
    for user in [forged, long.as_str()] {
        assert_eq!(basic_logon(&server, user, "wrong"), 401);
    }
    drop(server);
    let events = emrest(&["audit", "--data", arg(&data), "--json"]).ok();
    let stored = events.stdout.lines().count();
    assert!(
        events.stdout.contains("success\\u001b[2K"),
        "the JSON keeps the value whole: {}",
        events.stdout
    );
    let run = emrest(&["audit", "--data", arg(&data)]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        stored + 1,
        "one row per event:\n{}",
        run.stdout
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("2026-01-01")),
        "no forged row"
    );
    assert!(!run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{202E}'));
    assert!(
        run.stdout.contains("x\\n2026-01-01 admin"),
        "{}",
        run.stdout
    );
    assert!(
        lines.iter().all(|l| l.chars().count() < 1000),
        "long values are cut"
    );
}

#[test]
fn a_scoped_operator_learns_no_vm_name_outside_its_scope_from_a_refusal() {
    // Finding 8: KeepOriginalVM with the VmNewName of a VM outside the operator's scope
    // answered "a VM named 'db01' already exists on this host".
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    make_demo(&data);
    let vms = vm_list(&data);
    let web01 = field(vm_named(&vms, "web01"), "hierarchy_obj_ref").to_string();
    emrest_env(
        &[
            "user",
            "add",
            "--data",
            arg(&data),
            "op",
            "--role",
            "VmRestoreOperator",
            "--scope",
            &web01,
        ],
        &[("EMREST_PASSWORD", "op-pw")],
    )
    .ok();
    let server = plain_server(&data, &[]);
    let point = field(point_of(&point_list(&data), "web01", "Full"), "uid").to_string();
    let restore_as = |token: &str, name: &str| {
        let spec = serde_json::json!({"VmRestoreSpec": {"PowerOnAfterRestore": false,
            "QuickRollback": false, "KeepOriginalVM": true,
            "VmRestoreParameters": {"VmRestorePointUid": point, "VmNewName": name}}});
        let path = format!("/api/vmRestorePoints/{point}?action=restore");
        server.call(token, "POST", &path, Some(&spec))
    };
    let op = server.logon("op", "op-pw");
    let r = restore_as(&op, "db01");
    assert_eq!(r.status, 400, "{}", r.text());
    let m = r.json()["Message"].as_str().unwrap_or_default().to_string();
    assert!(
        m.contains("VmNewName") && m.contains("cannot be used"),
        "{m}"
    );
    assert!(!m.contains("a VM named") && !m.contains("exists"), "{m}");
    // A VM inside the scope (and anything, for an administrator) is named as before.
    let r = restore_as(&op, "web01_restored");
    assert_eq!(r.status, 202, "{}", r.text());
    let admin = server.logon("admin", ADMIN_PASSWORD);
    let m = restore_as(&admin, "db01").json()["Message"].to_string();
    assert!(m.contains("a VM named 'db01' already exists"), "{m}");
}

/// Reads from `stream` until the server closes it; `Err` when it stays open past the hang
/// guard (the test then fails: the server kept a connection it should have closed).
fn read_until_closed(stream: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    stream.set_read_timeout(Some(HANG_GUARD))?;
    let mut got = Vec::new();
    stream.read_to_end(&mut got)?;
    Ok(got)
}

#[test]
fn half_sent_requests_idle_connections_and_silent_tls_clients_are_closed() {
    // Finding 4: with no timer, a half-sent request and a silent TLS connection stayed open
    // for as long as the client liked.
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start_with(
        ServerOptions {
            data: &data,
            https: true,
            demo: false,
            admin_password: Some(ADMIN_PASSWORD),
        },
        &[
            "--header-timeout-secs",
            "1",
            "--tls-handshake-timeout-secs",
            "1",
        ],
    );
    let connect = |addr| std::net::TcpStream::connect(addr).expect("connect");
    // Half a request: the headers never end.
    let mut half = connect(server.http);
    half.write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")
        .expect("write");
    read_until_closed(&mut half).expect("a half-sent request is closed");
    // A kept-alive connection that goes quiet after its answer.
    let mut idle = connect(server.http);
    idle.write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let answer = read_until_closed(&mut idle).expect("an idle connection is closed");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "answered first");
    // A TLS client that never says hello.
    let mut silent = connect(server.https.expect("https"));
    read_until_closed(&mut silent).expect("a silent TLS connection is closed");
    // The server still answers.
    let r = request(server.http, "GET", "/api", &[], b"").expect("GET /api");
    assert_eq!(r.status, 200);
}

#[test]
fn connections_past_the_limit_are_closed_at_once_and_the_server_stays_reachable() {
    // Finding 4: 300 idle connections under a 256-descriptor limit made the server
    // unreachable while it logged "Too many open files" every 50 ms.
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = plain_server(&data, &["--max-connections", "3"]);
    let mut held: Vec<std::net::TcpStream> = Vec::new();
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(server.http).expect("connect");
        // A complete request keeps the connection open (keep-alive) and proves it is served.
        s.write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("write");
        let mut buf = [0u8; 12];
        std::io::Read::read_exact(&mut s, &mut buf).expect("answer");
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    let mut fourth = std::net::TcpStream::connect(server.http).expect("the kernel accepts");
    let _ = fourth.write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let got = read_until_closed(&mut fourth).unwrap_or_default();
    assert!(got.is_empty(), "closed without an answer");
    // One ends: the next client is served.
    drop(held.pop());
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        if let Ok(r) = request(server.http, "GET", "/api", &[], b"") {
            assert_eq!(r.status, 200);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server stayed unreachable"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = server.stop();
    assert!(log.contains("--max-connections"), "{log}");
}

#[test]
fn concurrent_wrong_passwords_cannot_all_pass_the_lockout_check() {
    // Finding 1: 30 wrong passwords sent at once got 30 × 401, and the right password 40 ms
    // later got 201: the lockout was checked before the slow hash and failures counted after.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = plain_server(&data, &[]);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..30)
            .map(|_| s.spawn(|| basic_logon(&server, "admin", "wrong")))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).collect()
    });
    let count = |code| statuses.iter().filter(|s| **s == code).count();
    assert_eq!(count(401) + count(429), 30, "{statuses:?}");
    assert!(
        count(401) <= 5,
        "at most the limit reach the password check: {statuses:?}"
    );
    let r = server.logon_response("admin", ADMIN_PASSWORD);
    assert_eq!(
        r.status,
        429,
        "the right password waits out the lockout: {}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
}

#[test]
fn refused_logons_cannot_fill_the_disk_through_the_audit_log() {
    // Finding 2: every refused logon was written in full and fsynced: one client grew
    // audit.log by ~70 MB/s (a 250 KB user name wrote 1.5 MB per request).
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = plain_server(&data, &[]);
    let audit = data.join("audit.log");
    let before = std::fs::metadata(&audit).map(|m| m.len()).unwrap_or(0);
    let name = "n".repeat(100_000);
    for _ in 0..60 {
        let status = basic_logon(&server, &name, "wrong");
        assert!(matches!(status, 401 | 429), "{status}");
    }
    let grown = std::fs::metadata(&audit).expect("audit.log").len() - before;
    assert!(grown < 16 << 10, "60 refusals wrote {grown} bytes");
    // The server keeps serving, and the count is written when it stops (SIGTERM).
    assert_eq!(server.logon_response("admin", ADMIN_PASSWORD).status, 201);
    let pid = server.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let (status, log) = server.wait_exit();
    assert!(status.success(), "{log}");
    let events = emrest(&["audit", "--data", arg(&data), "--json"]).ok();
    assert!(
        events
            .stdout
            .contains("50 more refused logons from this address"),
        "{}",
        events.stdout
    );
}

/// Finding 10: a heavy `/query` filter used to run on the one writing connection. It now runs
/// on a reader with a cost limit: past it, a 400 naming the filter; logons go on meanwhile.
#[test]
fn a_heavy_query_is_stopped_with_a_400_and_never_holds_up_logons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start_with(
        ServerOptions {
            data: &data,
            https: false,
            demo: true,
            admin_password: Some(ADMIN_PASSWORD),
        },
        &["--query-cost-limit", "10"],
    );
    let token = server.logon("admin", ADMIN_PASSWORD);
    let filter: String = (0..300)
        .map(|i| format!("Name%3D%3D%22vm-{i}%22"))
        .collect::<Vec<_>>()
        .join("%2C");
    let path = format!("/api/query?type=VmRestorePoint&format=Entities&filter={filter}");
    let r = server.call(&token, "GET", &path, None);
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.json()["Message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("filter") && message.contains("million SQLite steps"),
        "{message}"
    );
    // An ordinary query still answers, and so does a logon (a write).
    let r = server.call(
        &token,
        "GET",
        "/api/query?type=VmRestorePoint&filter=Name%3D%3D%22app01%22",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(basic_logon(&server, "admin", ADMIN_PASSWORD), 201);
}

/// Finding 6: an administrator listing logon sessions used to get every user's SessionId,
/// whose base64 is that user's token. Now `/logonSessions` lists the caller's own, and the
/// administrators' extension names the others by a handle that is no token.
#[test]
fn no_listing_hands_an_administrator_another_users_token() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = plain_server(&data, &[]);
    emrest_env(
        &[
            "user",
            "add",
            "--data",
            arg(&data),
            "ops",
            "--role",
            "VmRestoreOperator",
        ],
        &[("EMREST_PASSWORD", "ops pw")],
    )
    .ok();
    let ops = server.logon("ops", "ops pw");
    let ops_id = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&ops)
            .expect("a token is base64"),
    )
    .expect("a session ID is text");
    let admin = server.logon("admin", ADMIN_PASSWORD);
    for path in [
        "/api/logonSessions",
        "/api/logonSessions?format=Entity",
        "/api/emrest/logonSessions",
    ] {
        let r = server.call(&admin, "GET", path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let body = r.text();
        assert!(
            !body.contains(&ops_id) && !body.contains(&ops),
            "{path} reveals the operator's session: {body}"
        );
    }
    let sessions = server
        .call(&admin, "GET", "/api/emrest/logonSessions", None)
        .json();
    let handle = sessions["ManagedLogonSessions"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["UserName"] == "ops"))
        .and_then(|s| s["Handle"].as_str())
        .unwrap_or_else(|| panic!("the operator's session is listed: {sessions}"))
        .to_string();
    // Ending it by handle logs the operator off.
    let r = server.call(
        &admin,
        "DELETE",
        &format!("/api/emrest/logonSessions/{handle}"),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        server
            .call(&ops, "GET", "/api/vmRestorePoints", None)
            .status,
        401
    );
}
