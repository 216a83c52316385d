//! What the end-to-end tests share: running the real `emrest` binary, a server guard that kills
//! the child even when a test panics, and a tiny HTTP/1.1 client over `TcpStream`.
//! Traffic goes to 127.0.0.1 only.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a test waits for the server to answer, or for a restore to finish, before failing
/// (a hang guard, not a timing assertion).
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Demo disk size for every test: small, so the 2-core CI machine stays fast.
pub const DISK_SIZE: &str = "2M";
pub const DISK_BYTES: u64 = 2 << 20;

/// Password the tests give the first administrator.
pub const ADMIN_PASSWORD: &str = "e2e-Secret-1";

/// The `emrest` binary, with none of the environment variables it reads inherited from the
/// developer's shell.
pub fn emrest_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emrest"));
    for var in [
        "EMREST_DATA",
        "EMREST_ADMIN_PASSWORD",
        "EMREST_PASSWORD",
        "EMREST_REPOSITORY",
        "EMREST_INVENTORY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// What a finished `emrest` run printed.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panic with everything the command printed unless it succeeded.
    pub fn ok(self) -> Run {
        assert!(
            self.status.success(),
            "emrest failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Parse stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Run `emrest` with `args` and extra environment variables; waits for it to exit.
pub fn emrest_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = emrest_cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the emrest binary");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `emrest` with `args`.
pub fn emrest(args: &[&str]) -> Run {
    emrest_env(args, &[])
}

/// A path as a `&str` argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Create the demo world in `data` with the admin password set, and check it said so.
pub fn make_demo(data: &Path) {
    let run = emrest_env(
        &["demo", "--data", arg(data), "--disk-size", DISK_SIZE],
        &[("EMREST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .ok();
    assert!(
        run.stderr.contains("Demo world created"),
        "stderr: {}",
        run.stderr
    );
}

/// `emrest vm list --json`.
pub fn vm_list(data: &Path) -> Vec<Value> {
    let v = emrest(&["vm", "list", "--json", "--data", arg(data)])
        .ok()
        .json();
    v.as_array().expect("vm list is a JSON array").clone()
}

/// `emrest point list --json`.
pub fn point_list(data: &Path) -> Vec<Value> {
    let v = emrest(&["point", "list", "--json", "--data", arg(data)])
        .ok()
        .json();
    v.as_array().expect("point list is a JSON array").clone()
}

/// A listing entry's disks as name → (size, sha256).
pub fn disks(entry: &Value) -> BTreeMap<String, (u64, String)> {
    entry["disks"]
        .as_array()
        .expect("disks is an array")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().expect("disk name").to_string(),
                (
                    d["size"].as_u64().expect("disk size"),
                    d["sha256"].as_str().expect("disk sha256").to_string(),
                ),
            )
        })
        .collect()
}

/// A string field of a JSON object.
pub fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string field {name} in {v}"))
}

/// The VM of a `vm list` whose name is `name`.
pub fn vm_named<'a>(vms: &'a [Value], name: &str) -> &'a Value {
    vms.iter()
        .find(|v| field(v, "name") == name)
        .unwrap_or_else(|| panic!("no VM named {name}"))
}

/// The restore point of `vm_name` of the given type (`Full` or `Increment`).
pub fn point_of<'a>(points: &'a [Value], vm_name: &str, point_type: &str) -> &'a Value {
    points
        .iter()
        .find(|p| field(p, "vm_name") == vm_name && field(p, "point_type") == point_type)
        .unwrap_or_else(|| panic!("no {point_type} point of {vm_name}"))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every regular file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("list {}: {e}", d.display())) {
            let e = e.expect("directory entry");
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Two free ports on 127.0.0.1 (bound, then released for the server to take).
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local address"))
        .collect();
    addrs.try_into().expect("N addresses")
}

/// Output of a child collected by a thread, line by line, as it comes.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn follow(&self, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let buf = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                b.push_str(&line);
                b.push('\n');
            }
        })
    }

    /// Everything so far.
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A running `emrest serve`; killed when dropped, so a failing test leaves no server behind.
pub struct Server {
    child: Child,
    /// The HTTP listener (every test keeps one for readiness and API calls).
    pub http: SocketAddr,
    /// The HTTPS listener, when started with one.
    pub https: Option<SocketAddr>,
    pub stdout: Captured,
    pub stderr: Captured,
    readers: Vec<JoinHandle<()>>,
}

/// How to start a server.
pub struct ServerOptions<'a> {
    pub data: &'a Path,
    pub https: bool,
    pub demo: bool,
    /// `None` starts without EMREST_ADMIN_PASSWORD.
    pub admin_password: Option<&'a str>,
}

impl Server {
    /// Start `emrest serve` on free loopback ports and wait until `GET /api` answers 200.
    pub fn start(o: ServerOptions<'_>) -> Server {
        Self::start_with(o, &[])
    }

    /// [`Server::start`] with more `serve` arguments.
    pub fn start_with(o: ServerOptions<'_>, extra: &[&str]) -> Server {
        Self::start_env(o, extra, &[])
    }

    /// [`Server::start_with`] with environment variables.
    pub fn start_env(o: ServerOptions<'_>, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let [http, https] = free_addrs::<2>();
        let https = o.https.then_some(https);
        let mut cmd = emrest_cmd();
        let http_arg = http.to_string();
        let https_arg = https.map_or("off".to_string(), |a| a.to_string());
        cmd.args(["serve", "--data", arg(o.data)])
            .args(["--http", &http_arg, "--https", &https_arg]);
        if o.demo {
            cmd.args(["--demo", "--disk-size", DISK_SIZE]);
        }
        cmd.args(extra);
        if let Some(pw) = o.admin_password {
            cmd.env("EMREST_ADMIN_PASSWORD", pw);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start emrest serve");
        let stdout = Captured::default();
        let stderr = Captured::default();
        let readers = vec![
            stdout.follow(child.stdout.take().expect("piped stdout")),
            stderr.follow(child.stderr.take().expect("piped stderr")),
        ];
        let mut server = Server {
            child,
            http,
            https,
            stdout,
            stderr,
            readers,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                panic!(
                    "emrest serve exited before answering ({status}):\n{}",
                    self.stderr.text()
                );
            }
            if let Ok(r) = request(self.http, "GET", "/api", &[], b"") {
                if r.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "emrest serve did not answer GET /api within {HANG_GUARD:?}:\n{}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id (to send it a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the server to exit by itself (after a signal), up to the hang guard.
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return (status, self.join_stderr());
            }
            assert!(
                Instant::now() < deadline,
                "emrest serve did not exit within {HANG_GUARD:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the server; returns all it wrote on stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_stderr()
    }

    fn join_stderr(&mut self) -> String {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.stderr.text()
    }

    /// Log on as `user` with HTTP Basic; the response as sent.
    pub fn logon_response(&self, user: &str, password: &str) -> Response {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request(
            self.http,
            "POST",
            "/api/sessionMngr/?v=latest",
            &[
                ("Authorization", &format!("Basic {basic}")),
                ("Accept", "application/json"),
            ],
            b"",
        )
        .expect("POST /api/sessionMngr")
    }

    /// Log on and return the session token (the `X-RestSvcSessionId` header).
    pub fn logon(&self, user: &str, password: &str) -> String {
        let r = self.logon_response(user, password);
        assert_eq!(r.status, 201, "logon: {}", r.text());
        let token = r
            .header("x-restsvcsessionid")
            .expect("logon answers with an X-RestSvcSessionId header");
        assert!(!token.is_empty());
        token.to_string()
    }

    /// An authenticated JSON request.
    pub fn call(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![
            ("X-RestSvcSessionId", token),
            ("Accept", "application/json"),
        ];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        request(self.http, method, path, &headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }
}

/// Start an in-place restore of the VM restore point `point` (full, or a QuickRollback); the
/// task the 202 answers with.
pub fn post_restore(server: &Server, token: &str, point: &str, quick_rollback: bool) -> Value {
    let spec = serde_json::json!({"VmRestoreSpec": {
        "PowerOnAfterRestore": false,
        "QuickRollback": quick_rollback,
    }});
    let r = server.call(
        token,
        "POST",
        &format!("/api/vmRestorePoints/{point}?action=restore"),
        Some(&spec),
    );
    assert_eq!(r.status, 202, "restore: {}", r.text());
    r.json()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the answer to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    assert!(addr.ip().is_loopback(), "tests talk to 127.0.0.1 only");
    let mut stream = TcpStream::connect_timeout(&addr, HANG_GUARD)?;
    stream.set_read_timeout(Some(HANG_GUARD))?;
    stream.set_write_timeout(Some(HANG_GUARD))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: {status_line}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {status_line}"))?;
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| format!("bad header: {l}"))?;
            Ok((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect::<Result<_, String>>()?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        decode_chunked(rest)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len}"))?;
        if rest.len() < len {
            return Err(format!("body cut short: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line without end")?;
        let size_line = std::str::from_utf8(&rest[..eol]).map_err(|e| e.to_string())?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_line}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err("chunk cut short".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
