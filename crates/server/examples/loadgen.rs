//! Load generator (issue 5 item 8): many concurrent clients on loopback, each on its own
//! keep-alive HTTP/1.1 connection, log on, list VM restore points (`?format=Entity`, XML and
//! JSON) and poll tasks, while a fixed number of restores run back to back. Prints requests/s,
//! p50/p99 latency, answers by status, and checks that every restore started has exactly one
//! task, which ends Finished and successful. Exits 1 on any 5xx, I/O error, lost, duplicated or
//! failed task. Run through bench/load.sh, which starts the server.
//!
//! Usage: loadgen <host:port> <user> <password> [clients] [seconds] [restores] [list path]
//! (the list path the clients read, `/api/vmRestorePoints?format=Entity` by default; a page of
//! the query service for a catalog of a million points).

use base64::Engine;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: SocketAddr,
    s: BufReader<TcpStream>,
}

/// A response: status, headers (names lower-cased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Res<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Res<Conn> {
        let s = TcpStream::connect(addr).await?;
        Self::wrap(addr, s)
    }

    /// A connection from another loopback address (another client, as the server sees it).
    async fn connect_from(addr: SocketAddr, local: std::net::IpAddr) -> Res<Conn> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        let s = socket.connect(addr).await?;
        Self::wrap(addr, s)
    }

    fn wrap(addr: SocketAddr, s: TcpStream) -> Res<Conn> {
        s.set_nodelay(true)?;
        Ok(Conn {
            addr,
            s: BufReader::new(s),
        })
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Res<Answer> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.s.get_mut().write_all(&bytes).await?;

        let mut line = String::new();
        if self.s.read_line(&mut line).await? == 0 {
            return Err("connection closed".into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.s.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if answer
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                line.clear();
                self.s.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0; n + 2];
                self.s.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                answer.body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = answer.header("content-length") {
            let mut b = vec![0; n.parse()?];
            self.s.read_exact(&mut b).await?;
            answer.body = b;
        }
        Ok(answer)
    }
}

/// What one client saw.
#[derive(Default)]
struct Stats {
    /// When each request but the logon started, and its latency in microseconds.
    latencies: Vec<(Instant, u32)>,
    logons: Vec<u32>,
    /// When the last logon of these stats was answered.
    logged_on: Option<Instant>,
    by_status: BTreeMap<u16, u64>,
    io_errors: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.latencies.extend(o.latencies);
        self.logons.extend(o.logons);
        self.logged_on = self.logged_on.max(o.logged_on);
        for (k, v) in o.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.io_errors += o.io_errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
    fn record(&mut self, started: Instant, r: &Res<Answer>) {
        match r {
            Ok(a) => {
                *self.by_status.entry(a.status).or_default() += 1;
                if a.status >= 500 && self.first_error.is_none() {
                    self.first_error = Some(String::from_utf8_lossy(&a.body).into_owned());
                }
            }
            Err(e) => {
                self.io_errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
        self.latencies.push((
            started,
            started.elapsed().as_micros().min(u32::MAX as u128) as u32,
        ));
    }
}

struct Cfg {
    addr: SocketAddr,
    basic: String,
    deadline: Instant,
    /// What the clients list between task polls.
    list: String,
}

/// The task IDs of every restore started, in order.
type Started = Arc<Mutex<Vec<String>>>;

async fn logon(conn: &mut Conn, cfg: &Cfg, stats: &mut Stats) -> Res<String> {
    let t = Instant::now();
    let r = conn
        .request(
            "POST",
            "/api/sessionMngr/?v=latest",
            &[("Authorization", &cfg.basic)],
            b"",
        )
        .await;
    stats
        .logons
        .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
    stats.logged_on = Some(Instant::now());
    let a = r?;
    *stats.by_status.entry(a.status).or_default() += 1;
    if a.status != 201 {
        return Err(format!("logon answered {}", a.status).into());
    }
    Ok(a.header("x-restsvcsessionid")
        .ok_or("logon gave no session header")?
        .to_string())
}

/// Five logons, one after the other, from 127.0.0.2 while the clients log on from 127.0.0.1;
/// their latencies in microseconds.
async fn other_address_logons(cfg: Arc<Cfg>) -> Res<Vec<u32>> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let local = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    let mut out = Vec::new();
    for _ in 0..5 {
        let mut conn = Conn::connect_from(cfg.addr, local).await?;
        let mut stats = Stats::default();
        logon(&mut conn, &cfg, &mut stats).await?;
        out.extend(stats.logons);
    }
    Ok(out)
}

/// A reader: log on, then alternate between listing VM restore points and polling a task.
async fn client(n: usize, cfg: Arc<Cfg>, started: Started) -> Stats {
    let mut stats = Stats::default();
    let mut conn = match Conn::connect(cfg.addr).await {
        Ok(c) => c,
        Err(e) => {
            stats.io_errors += 1;
            stats.first_error = Some(format!("connect: {e}"));
            return stats;
        }
    };
    let token = match logon(&mut conn, &cfg, &mut stats).await {
        Ok(t) => t,
        Err(e) => {
            stats.io_errors += 1;
            stats.first_error = Some(format!("logon: {e}"));
            return stats;
        }
    };
    let accept = if n.is_multiple_of(2) {
        "application/xml"
    } else {
        "application/json"
    };
    let headers = [("X-RestSvcSessionId", token.as_str()), ("Accept", accept)];
    let mut i = n;
    while Instant::now() < cfg.deadline {
        i += 1;
        let task = if i.is_multiple_of(2) {
            let s = started.lock().unwrap_or_else(|e| e.into_inner());
            (!s.is_empty()).then(|| s[i % s.len()].clone())
        } else {
            None
        };
        let path = match task {
            Some(t) => format!("/api/tasks/{t}"),
            None => cfg.list.clone(),
        };
        let t = Instant::now();
        let r = conn.request("GET", &path, &headers, b"").await;
        stats.record(t, &r);
        if r.is_err() {
            match Conn::connect(cfg.addr).await {
                Ok(c) => conn = c,
                Err(_) => break,
            }
        }
    }
    stats
}

/// A restorer: restores one VM restore point back to back (in place) until the deadline,
/// waiting for each task to finish. Returns (task ID, finished task) pairs.
async fn restorer(
    cfg: Arc<Cfg>,
    point: String,
    started: Started,
) -> Res<Vec<(String, serde_json::Value)>> {
    let mut stats = Stats::default();
    let mut conn = Conn::connect(cfg.addr).await?;
    let token = logon(&mut conn, &cfg, &mut stats).await?;
    let h = [
        ("X-RestSvcSessionId", token.as_str()),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
    ];
    let mut done = Vec::new();
    while Instant::now() < cfg.deadline {
        let a = conn
            .request(
                "POST",
                &format!("/api/vmRestorePoints/{point}?action=restore"),
                &h,
                b"",
            )
            .await?;
        if a.status != 202 {
            return Err(format!(
                "restore of {point} answered {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )
            .into());
        }
        let id = a.json()?["TaskId"].as_str().ok_or("no TaskId")?.to_string();
        started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let a = conn
                .request("GET", &format!("/api/tasks/{id}"), &h, b"")
                .await?;
            if a.status != 200 {
                return Err(format!("task {id} answered {}", a.status).into());
            }
            let task = a.json()?;
            if task["State"] == "Finished" {
                done.push((id, task));
                break;
            }
        }
    }
    Ok(done)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: loadgen <host:port> <user> <password> [clients] [seconds] [restores] [list path]"
        );
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse()?;
    let clients: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(500);
    let seconds: u64 = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(60);
    let restores: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let list = args
        .get(7)
        .cloned()
        .unwrap_or_else(|| "/api/vmRestorePoints?format=Entity".into());
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", args[2], args[3]))
    );
    let start = Instant::now();
    let cfg = Arc::new(Cfg {
        addr,
        basic,
        deadline: start + Duration::from_secs(seconds),
        list,
    });

    // The points to restore: the newest of `restores` different VMs that are in the inventory
    // (the portal's list: one line per VM, however many points the catalog holds).
    let mut conn = Conn::connect(addr).await?;
    let mut setup = Stats::default();
    let token = logon(&mut conn, &cfg, &mut setup).await?;
    let a = conn
        .request(
            "GET",
            "/api/emrest/vms",
            &[
                ("X-RestSvcSessionId", &token),
                ("Accept", "application/json"),
            ],
            b"",
        )
        .await?;
    let vms = a.json()?;
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for vm in vms["RestorableVms"].as_array().ok_or("no RestorableVms")? {
        if vm["PowerState"].is_null() || chosen.len() >= restores {
            continue;
        }
        let name = vm["Name"].as_str().unwrap_or_default().to_string();
        let uid = vm["LastRestorePointUid"].as_str().unwrap_or_default();
        let id = uid.rsplit(':').next().unwrap_or_default().to_string();
        chosen.insert(name, id);
    }
    drop(conn);

    let started: Started = Arc::default();
    let restorers: Vec<_> = chosen
        .values()
        .map(|p| tokio::spawn(restorer(cfg.clone(), p.clone(), started.clone())))
        .collect();
    let readers: Vec<_> = (0..clients)
        .map(|n| tokio::spawn(client(n, cfg.clone(), started.clone())))
        .collect();
    // An administrator logging on from another address while the clients' logons are queued.
    let probe = tokio::spawn(other_address_logons(cfg.clone()));
    let mut stats = Stats::default();
    for r in readers {
        stats.merge(r.await?);
    }
    let mut probe = probe.await??;
    probe.sort_unstable();
    let elapsed = start.elapsed().as_secs_f64();
    let mut finished = Vec::new();
    let mut restore_errors = Vec::new();
    for r in restorers {
        match r.await? {
            Ok(v) => finished.extend(v),
            Err(e) => restore_errors.push(e.to_string()),
        }
    }

    // Every restore started has exactly one task in the list, Finished and successful.
    let mut conn = Conn::connect(addr).await?;
    let token = logon(&mut conn, &cfg, &mut setup).await?;
    let a = conn
        .request(
            "GET",
            "/api/tasks",
            &[
                ("X-RestSvcSessionId", &token),
                ("Accept", "application/json"),
            ],
            b"",
        )
        .await?;
    let list = a.json()?;
    let tasks = list["Tasks"].as_array().cloned().unwrap_or_default();
    let started = started.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lost = 0;
    let mut duplicated = 0;
    let mut unfinished = 0;
    let mut failed = 0;
    for id in &started {
        let same: Vec<_> = tasks
            .iter()
            .filter(|t| t["TaskId"] == id.as_str())
            .collect();
        match same.len() {
            0 => lost += 1,
            1 => {
                if same[0]["State"] != "Finished" {
                    unfinished += 1;
                } else if same[0]["Result"]["Success"] != true {
                    failed += 1;
                    println!(
                        "failed restore     {id}: {}",
                        same[0]["Result"]["Message"].as_str().unwrap_or_default()
                    );
                }
            }
            _ => duplicated += 1,
        }
    }
    let mut distinct = started.clone();
    distinct.sort();
    distinct.dedup();
    duplicated += started.len() - distinct.len();

    // The logon storm lasts until the last client is logged on: requests of the clients logged
    // on first run beside it, the others after it.
    let storm_end = stats.logged_on.unwrap_or(start);
    let timed = std::mem::take(&mut stats.latencies);
    let mut during: Vec<u32> = timed
        .iter()
        .filter(|(t, _)| *t < storm_end)
        .map(|(_, l)| *l)
        .collect();
    let mut after: Vec<u32> = timed
        .iter()
        .filter(|(t, _)| *t >= storm_end)
        .map(|(_, l)| *l)
        .collect();
    during.sort_unstable();
    after.sort_unstable();
    let mut lat: Vec<u32> = timed.into_iter().map(|(_, l)| l).collect();
    lat.sort_unstable();
    let mut logons = std::mem::take(&mut stats.logons);
    logons.sort_unstable();
    let total = lat.len();
    let five = stats
        .by_status
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum::<u64>();
    println!(
        "clients            {clients} for {elapsed:.1} s, {} restorers",
        chosen.len()
    );
    println!(
        "requests           {total} ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        total as f64 / elapsed,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "  during logons    {} requests in the first {:.1} s, while clients still logged on: p50 {:.2} ms, p99 {:.2} ms",
        during.len(),
        storm_end.duration_since(start).as_secs_f64(),
        pct(&during, 0.5),
        pct(&during, 0.99)
    );
    println!(
        "  after logons     {} requests: p50 {:.2} ms, p99 {:.2} ms",
        after.len(),
        pct(&after, 0.5),
        pct(&after, 0.99)
    );
    println!(
        "logons             {} ({:.1}/s), p50 {:.1} ms, p99 {:.1} ms",
        logons.len(),
        logons.len() as f64 / storm_end.duration_since(start).as_secs_f64().max(0.001),
        pct(&logons, 0.5),
        pct(&logons, 0.99)
    );
    println!(
        "other address      {} logons from 127.0.0.2 during the clients' logon storm, p50 {:.1} ms, max {:.1} ms",
        probe.len(),
        pct(&probe, 0.5),
        pct(&probe, 1.0)
    );
    let statuses: Vec<String> = stats
        .by_status
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    println!("answers by status  {}", statuses.join(", "));
    println!("5xx                {five}");
    println!("I/O errors         {}", stats.io_errors);
    println!(
        "restores           {} started, {} finished, {} in the task list: lost {lost}, duplicated {duplicated}, unfinished {unfinished}, failed {failed}",
        started.len(),
        finished.len(),
        tasks.len()
    );
    for e in &restore_errors {
        println!("restore error      {e}");
    }
    if let Some(e) = &stats.first_error {
        println!(
            "first error        {}",
            e.chars().take(300).collect::<String>()
        );
    }
    let bad = five > 0
        || stats.io_errors > 0
        || lost + duplicated + unfinished + failed > 0
        || !restore_errors.is_empty()
        || started.is_empty();
    if bad {
        println!("RESULT             FAIL");
        std::process::exit(1);
    }
    println!("RESULT             ok");
    Ok(())
}
