//! Fault injection with the real binary (docs/faults.md): each effect as a client sees it, and
//! that nothing else changed — the other VMs, the other sessions, the repository's `verify`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const VM: &str = "db01";
const OTHER_VM: &str = "app01";

fn start(data: &Path, extra: &[&str]) -> Server {
    Server::start_with(
        ServerOptions {
            data,
            https: false,
            demo: true,
            admin_password: Some(ADMIN_PASSWORD),
        },
        extra,
    )
}

fn faulty(data: &Path) -> (Server, String) {
    let server = start(data, &["--allow-faults"]);
    let token = server.logon("admin", ADMIN_PASSWORD);
    (server, token)
}

/// Every VM's disks: name → disk → (size, sha256).
fn all_disks(data: &Path) -> BTreeMap<String, BTreeMap<String, (u64, String)>> {
    vm_list(data)
        .iter()
        .map(|v| (field(v, "name").to_string(), disks(v)))
        .collect()
}

fn add_rule(server: &Server, token: &str, rule: Value) -> Value {
    let r = server.call(token, "POST", "/api/emrest/faults", Some(&rule));
    assert_eq!(r.status, 201, "add {rule}: {}", r.text());
    r.json()
}

/// Starts a restore; the path of its task.
fn start_restore(server: &Server, token: &str, point: &str, quick_rollback: bool) -> String {
    let href = field(&post_restore(server, token, point, quick_rollback), "Href").to_string();
    href[href.find("/api/").expect("an /api/ URL")..].to_string()
}

/// `emrest fault add --data <data> <args>`, which must succeed.
fn fault_add(data: &str, args: &[&str]) -> Run {
    let mut all = vec!["fault", "add", "--data", data];
    all.extend_from_slice(args);
    emrest(&all).ok()
}

/// A rule's counters, as the API lists them: (matched, fired).
fn counters(server: &Server, token: &str, rule: &str) -> (Option<u64>, Option<u64>) {
    let r = get(server, token, &format!("/api/emrest/faults/{rule}"));
    (r["Matched"].as_u64(), r["Fired"].as_u64())
}

fn get(server: &Server, token: &str, path: &str) -> Value {
    let r = server.call(token, "GET", path, None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// Polls a task until it is Finished; the task.
fn finished_task(server: &Server, token: &str, task: &str) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let t = get(server, token, task);
        if field(&t, "State") == "Finished" {
            return t;
        }
        assert!(Instant::now() < deadline, "task never finished: {t}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The newest restore session once it has stopped (a cancelled restore's task is gone).
fn stopped_session(server: &Server, token: &str) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let s = newest_restore_session(server, token);
        if s["State"] == "Stopped" {
            return s;
        }
        assert!(Instant::now() < deadline, "the session never stopped: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The newest restore session, as the query service lists them.
fn newest_restore_session(server: &Server, token: &str) -> Value {
    let all = get(server, token, "/api/restoreSessions?format=Entity");
    all["RestoreSessions"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_else(|| panic!("no restore session: {all}"))
}

fn verified(data: &Path) {
    let run = emrest(&["verify", "--data", arg(data)]).ok();
    assert!(run.stdout.contains("repository verified"), "{}", run.stdout);
}

fn audit_lines(data: &Path, action: &str) -> Vec<Value> {
    std::fs::read_to_string(data.join("audit.log"))
        .expect("read audit.log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["action"] == action)
        .collect()
}

#[test]
fn faults_are_refused_without_allow_faults_for_non_administrators_and_off_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = arg(&data);
    // A server without --allow-faults takes no rule, from the API or the CLI.
    let server = start(&data, &[]);
    let admin = server.logon("admin", ADMIN_PASSWORD);
    let rule = json!({"Operation": "Restore", "Effect": "Hang"});
    let r = server.call(&admin, "POST", "/api/emrest/faults", Some(&rule));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("--allow-faults"), "{}", r.text());
    let run = emrest(&[
        "fault", "add", "--data", d, "--on", "restore", "--effect", "hang",
    ]);
    assert!(!run.status.success());
    assert!(run.stderr.contains("--allow-faults"), "{}", run.stderr);
    drop(server);

    // Off loopback only when asked: the server refuses to start.
    let [open] = free_addrs::<1>();
    let everywhere = format!("0.0.0.0:{}", open.port());
    let run = emrest(&[
        "serve",
        "--data",
        d,
        "--http",
        &everywhere,
        "--https",
        "off",
        "--allow-faults",
    ]);
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("--allow-faults-remote"),
        "{}",
        run.stderr
    );

    // With --allow-faults: administrators only, and the audit log names who set each rule.
    let (server, admin) = faulty(&data);
    emrest_env(
        &[
            "user",
            "add",
            "--data",
            d,
            "operator",
            "--role",
            "VmRestoreOperator",
        ],
        &[("EMREST_PASSWORD", "operator-Pa55")],
    )
    .ok();
    let operator = server.logon("operator", "operator-Pa55");
    let r = server.call(&operator, "POST", "/api/emrest/faults", Some(&rule));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        server
            .call(&operator, "GET", "/api/emrest/faults", None)
            .status,
        403
    );
    let by_api = add_rule(&server, &admin, rule);
    let by_cli = fault_add(
        d,
        &[
            "--json",
            "--on",
            "GET /tasks/{ID}",
            "--every",
            "3",
            "--effect",
            "status",
            "--status",
            "503",
        ],
    )
    .json();
    let uid = unsafe { libc::getuid() };
    assert_eq!(by_cli["CreatedBy"], format!("uid {uid}"));
    let listed = get(&server, &admin, "/api/emrest/faults");
    let ids: Vec<&str> = listed["FaultRules"]
        .as_array()
        .expect("FaultRules")
        .iter()
        .map(|r| field(r, "Id"))
        .collect();
    assert_eq!(ids, [field(&by_api, "Id"), field(&by_cli, "Id")]);
    let added = audit_lines(&data, "fault-add");
    let who: Vec<(&str, &str)> = added
        .iter()
        .filter(|v| v["outcome"] == "success")
        .map(|v| (field(v, "user"), field(v, "object")))
        .collect();
    let cli_user = format!("uid {uid}");
    assert_eq!(
        who,
        [
            ("admin", field(&by_api, "Id")),
            (cli_user.as_str(), field(&by_cli, "Id"))
        ]
    );
    // A bad rule names its member; clearing is audited.
    let r = server.call(
        &admin,
        "POST",
        "/api/emrest/faults",
        Some(&json!({"Operation": "Restore", "Effect": "Fail", "Percent": 120})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Percent"), "{}", r.text());
    let run = emrest(&["fault", "clear", "--data", d]).ok();
    assert!(
        run.stderr.contains("2 fault rule(s) removed"),
        "{}",
        run.stderr
    );
    assert_eq!(audit_lines(&data, "fault-clear").len(), 1);
    assert_eq!(
        get(&server, &admin, "/api/emrest/faults")["FaultRules"],
        json!([])
    );
}

#[test]
fn a_restore_fails_at_its_percent_with_its_message_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (server, token) = faulty(&data);
    let before = all_disks(&data);
    let points = point_list(&data);
    let full = point_of(&points, VM, "Full");
    assert_ne!(
        disks(full),
        before[VM],
        "the full point differs from the VM now"
    );
    for (mode, quick) in [("Full", false), ("QuickRollback", true)] {
        let rule = add_rule(
            &server,
            &token,
            json!({"Operation": "Restore", "RestoreMode": mode, "VmName": VM, "Fire": "First",
                   "Count": 1, "Effect": "Fail", "Percent": 50,
                   "Message": "Datastore ds-01 is unreachable"}),
        );
        let task = start_restore(&server, &token, field(full, "id"), quick);
        let t = finished_task(&server, &token, &task);
        assert_eq!(t["Result"]["Success"], false, "{t}");
        assert_eq!(t["Result"]["Message"], "Datastore ds-01 is unreachable");
        let s = newest_restore_session(&server, &token);
        assert_eq!(
            (field(&s, "State"), field(&s, "Result")),
            ("Stopped", "Failed")
        );
        assert_eq!(s["FailureMessage"], "Datastore ds-01 is unreachable");
        assert_eq!(all_disks(&data), before, "{mode}: no VM changed");
        assert_eq!(
            counters(&server, &token, field(&rule, "Id")),
            (Some(1), Some(1))
        );
    }
    verified(&data);
    // The rules fired once each: the next restore runs, and the VM is the point's.
    let task = start_restore(&server, &token, field(full, "id"), false);
    let t = finished_task(&server, &token, &task);
    assert_eq!(t["Result"]["Success"], true, "{t}");
    let after = all_disks(&data);
    assert_eq!(after[VM], disks(full));
    assert_eq!(after[OTHER_VM], before[OTHER_VM]);
}

#[test]
fn a_task_hangs_until_cancelled_stalls_its_progress_and_waits_out_a_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (server, token) = faulty(&data);
    let before = all_disks(&data);
    let points = point_list(&data);
    let full = field(point_of(&points, VM, "Full"), "id").to_string();

    // Hang: Running until the task is cancelled; then the VM is as it was.
    let hang = add_rule(
        &server,
        &token,
        json!({"Operation": "Restore", "Effect": "Hang"}),
    );
    let task = start_restore(&server, &token, &full, false);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(get(&server, &token, &task)["State"], "Running");
    }
    // A restore refused before it runs (the VM is busy) is no match of the rule.
    let busy = server.call(
        &token,
        "POST",
        &format!("/api/vmRestorePoints/{full}?action=restore"),
        Some(
            &json!({"VmRestoreSpec": {"PowerOnAfterRestore": false, "QuickRollback": false,
                                       "HierarchyRootUid": null}}),
        ),
    );
    assert_ne!(busy.status, 202, "{}", busy.text());
    assert_eq!(
        counters(&server, &token, field(&hang, "Id")),
        (Some(1), Some(1))
    );
    assert_eq!(server.call(&token, "DELETE", &task, None).status, 204);
    let s = stopped_session(&server, &token);
    assert_eq!(s["Result"], "Failed", "{s}");
    assert!(
        s["FailureMessage"]
            .as_str()
            .is_some_and(|m| m.contains("cancelled")),
        "{s}"
    );
    assert_eq!(all_disks(&data), before);
    let path = format!("/api/emrest/faults/{}", field(&hang, "Id"));
    assert_eq!(server.call(&token, "DELETE", &path, None).status, 204);

    // Stall: the progress stops at 40% or past it while the session keeps Working.
    add_rule(
        &server,
        &token,
        json!({"Operation": "Restore", "Fire": "First", "Count": 1, "Effect": "Stall",
               "Percent": 40}),
    );
    let task = start_restore(&server, &token, &full, false);
    let deadline = Instant::now() + HANG_GUARD;
    let stalled = loop {
        let s = newest_restore_session(&server, &token);
        if s["Progress"].as_u64().is_some_and(|p| p >= 40) {
            break s;
        }
        assert!(Instant::now() < deadline, "progress never reached 40%: {s}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(50));
        let s = newest_restore_session(&server, &token);
        assert_eq!(s["State"], "Working");
        assert_eq!(s["Progress"], stalled["Progress"], "the progress holds");
    }
    assert_eq!(server.call(&token, "DELETE", &task, None).status, 204);
    assert_eq!(stopped_session(&server, &token)["Result"], "Failed");
    assert_eq!(all_disks(&data), before);

    // Delay: the restore starts late and then succeeds.
    let delay = add_rule(
        &server,
        &token,
        json!({"Operation": "Restore", "Fire": "First", "Count": 1, "Effect": "Delay",
               "DelayMs": 600}),
    );
    let started = Instant::now();
    let task = start_restore(&server, &token, &full, false);
    let t = finished_task(&server, &token, &task);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(t["Result"]["Success"], true, "{t}");
    // The delay was this rule's, and the session's log says so.
    assert_eq!(
        counters(&server, &token, field(&delay, "Id")),
        (Some(1), Some(1))
    );
    let session = newest_restore_session(&server, &token);
    let id = field(&session, "UID")
        .rsplit(':')
        .next()
        .unwrap_or_default();
    let log = server.call(
        &token,
        "GET",
        &format!("/api/restoreSessions/{id}/log"),
        None,
    );
    assert!(
        log.text().contains(&format!(
            "Injected fault (rule {}): Delay",
            field(&delay, "Id")
        )),
        "{}",
        log.text()
    );
    assert_eq!(all_disks(&data)[VM], disks(point_of(&points, VM, "Full")));
    verified(&data);
}

#[test]
fn a_backup_run_fails_with_its_message_and_records_no_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = arg(&data);
    let (server, _token) = faulty(&data);
    let points = point_list(&data).len();
    fault_add(
        d,
        &[
            "--on",
            "backup",
            "--vm",
            VM,
            "--effect",
            "fail",
            "--percent",
            "30",
            "--message",
            "Snapshot creation failed",
        ],
    );
    let jobs = emrest(&["job", "list", "--data", d, "--json"]).ok().json();
    let job = jobs
        .as_array()
        .expect("job list")
        .iter()
        .find(|j| {
            j["job"]["objects"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["name"] == VM))
        })
        .unwrap_or_else(|| panic!("no job backs up {VM}: {jobs}"));
    let name = job["job"]["name"].as_str().expect("job name");
    let run = emrest(&["job", "start", "--data", d, name]);
    assert!(!run.status.success(), "the run failed: {}", run.stderr);
    assert!(
        run.stderr.contains("Snapshot creation failed"),
        "{}",
        run.stderr
    );
    assert_eq!(point_list(&data).len(), points, "no restore point recorded");
    verified(&data);
    // Rules without a VM of that job do not fire: a job without the VM runs.
    let other = jobs
        .as_array()
        .expect("job list")
        .iter()
        .find(|j| {
            j["job"]["objects"]
                .as_array()
                .is_some_and(|o| !o.iter().any(|o| o["name"] == VM))
        })
        .and_then(|j| j["job"]["name"].as_str())
        .expect("a job without the VM");
    emrest(&["job", "start", "--data", d, other]).ok();
    drop(server);
}

#[test]
fn requests_answer_a_status_drop_their_connection_expire_their_session_and_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (server, token) = faulty(&data);
    let d = arg(&data);

    // Every third poll of a task answers 503 with an Error body; the others are served.
    let full = field(point_of(&point_list(&data), VM, "Full"), "id").to_string();
    let task = start_restore(&server, &token, &full, false);
    fault_add(
        d,
        &[
            "--on",
            "GET /tasks/{ID}",
            "--every",
            "3",
            "--effect",
            "status",
            "--status",
            "503",
            "--message",
            "Service is restarting",
        ],
    );
    let statuses: Vec<u16> = (0..6)
        .map(|_| server.call(&token, "GET", &task, None))
        .map(|r| {
            if r.status == 503 {
                assert_eq!(r.json()["Message"], "Service is restarting", "{}", r.text());
            }
            r.status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503]);
    emrest(&["fault", "clear", "--data", d]).ok();

    // Drop: the head and half the body, then the connection closes.
    fault_add(
        d,
        &["--on", "GET /backups", "--first", "1", "--effect", "drop"],
    );
    let (declared, got) = raw_get(&server, &token, "/api/backups");
    assert!(got < declared, "a cut body: {got} of {declared} bytes");
    let (declared, got) = raw_get(&server, &token, "/api/backups");
    assert_eq!(got, declared, "the rule fired once");

    // ExpireSession: that session gets 401 from now on; another session is untouched.
    let other = server.logon("admin", ADMIN_PASSWORD);
    fault_add(
        d,
        &[
            "--on",
            "/repositories",
            "--first",
            "1",
            "--effect",
            "expire-session",
        ],
    );
    assert_eq!(
        server.call(&token, "GET", "/api/repositories", None).status,
        401
    );
    assert_eq!(server.call(&token, "GET", "/api/backups", None).status, 401);
    assert_eq!(
        server.call(&other, "GET", "/api/repositories", None).status,
        200
    );
    let token = other;

    // A logon refused with 401 once, then a slow one.
    fault_add(
        d,
        &[
            "--on",
            "logon",
            "--account",
            "admin",
            "--first",
            "1",
            "--effect",
            "status",
            "--status",
            "401",
        ],
    );
    let r = server.logon_response("admin", ADMIN_PASSWORD);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Injected fault"), "{}", r.text());
    fault_add(
        d,
        &[
            "--on",
            "logon",
            "--first",
            "1",
            "--effect",
            "delay",
            "--delay-ms",
            "500",
        ],
    );
    let started = Instant::now();
    server.logon("admin", ADMIN_PASSWORD);
    assert!(started.elapsed() >= Duration::from_millis(500));
    let rules = emrest(&["fault", "list", "--data", d, "--json"])
        .ok()
        .json();
    let slow = rules
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["Description"] == "Logon: Delay 500 ms, the first time")
        })
        .unwrap_or_else(|| panic!("the slow-logon rule: {rules}"));
    assert_eq!(
        (slow["Matched"].as_u64(), slow["Fired"].as_u64()),
        (Some(1), Some(1))
    );

    // Hang: no answer while the rule is in force; removing it lets the request through.
    let rule = fault_add(
        d,
        &["--json", "--on", "GET /hierarchyRoots", "--effect", "hang"],
    )
    .json();
    let addr = server.http;
    let hung_token = token.clone();
    let hung = std::thread::spawn(move || {
        request(
            addr,
            "GET",
            "/api/hierarchyRoots",
            &[
                ("X-RestSvcSessionId", &hung_token),
                ("Accept", "application/json"),
            ],
            b"",
        )
        .map(|r| r.status)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!hung.is_finished(), "the request hangs");
    emrest(&["fault", "clear", "--data", d, field(&rule, "Id")]).ok();
    assert_eq!(hung.join().expect("join").expect("answered"), 200);
    // The restore the polls followed was not touched by any of it.
    assert_eq!(
        finished_task(&server, &token, &task)["Result"]["Success"],
        true
    );
    verified(&data);
}

/// A GET read to the end of the connection: the Content-Length it declared, and the body
/// bytes that arrived.
fn raw_get(server: &Server, token: &str, path: &str) -> (usize, usize) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.http).expect("connect");
    s.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-RestSvcSessionId: {token}\r\nAccept: application/json\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let declared = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .expect("a Content-Length");
    (declared, raw.len() - end - 4)
}
