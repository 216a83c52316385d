//! Restore and backup benchmark: one VM with one disk of `size` MiB (random, text-like and zero
//! regions), measured side by side in one run against `cp` of the same image and against restic
//! doing the same backups and restore of the same image (skipped if `restic` is not installed or
//! `EMREST_BENCH_RESTIC=0`).
//!
//! Sequence: full backup (emrest, restic) → 1% of 4 KiB blocks written through the platform
//! (tracked) → incremental backup with tracking (emrest, restic) → 1% written around the platform
//! → incremental backup without tracking → `cp` baselines → full restore → the device alone
//! writing the restore's data bytes as it writes them, with nothing else to do → 1% tracked
//! writes → QuickRollback with tracking → the device alone reading the disk's data, with
//! nothing to hash → 1% untracked writes → QuickRollback by digest comparison →
//! restic restore. Every restore goes through the HTTP API of a server running in this process
//! on loopback: `POST /api/vmRestorePoints/{ID}?action=restore`, then `GET /api/tasks/{ID}`
//! until the task is Finished. `cp`, the full restore and the QuickRollbacks run three times
//! (each rollback after its own 1% of writes); the best is reported, but for the rollback by
//! digests, whose first run reads most of the disk from the device (the full restore wrote it
//! around the page cache) and whose later runs find it in the page cache: both are reported.
//! `EMREST_BENCH_LOG=1` prints each restore's session log (with timestamps) to stderr.
//!
//! Run: `cargo run --release -p emrest-server --example restore_bench -- [size MiB] [work dir]`;
//! `EMREST_BENCH_CHUNK_KIB` picks the repository's chunk size (default: the repository's default).

#[path = "../../core/examples/common/mod.rs"]
mod common;
mod device;

use base64::Engine;
use emrest_core::demo::{scribble, scribble_tracked};
use emrest_core::{Core, CoreConfig, Role};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs of `cp`, of the full restore and of each QuickRollback; the best is reported.
const REPEAT: usize = 3;

/// Peak resident memory of this process since the last reset, in MB (VmHWM).
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1000.0)
}

/// Resets the peak resident memory counter (Linux ≥ 4.0).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Writes back every dirty page before a timed step, so no step pays for the one before
/// (restic's backup leaves gigabytes for the next fsync to wait behind).
fn settle() {
    let _ = Command::new("sync").status();
}

/// Sum of the sizes of all files under `dir`.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += du(&p);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}

/// Bytes of the chunk records (header and payload) the repository's disk indexes refer to,
/// each distinct chunk once: the repository's size less its indexes and pack bookkeeping.
fn record_bytes(repo: &emrest_repo::Repository) -> Res<u64> {
    let mut digests = Vec::new();
    for name in repo.list_indexes()? {
        digests.extend(repo.get_index(&name)?.chunks.into_iter().flatten());
    }
    digests.sort_unstable();
    digests.dedup();
    Ok(digests
        .iter()
        .filter_map(|d| repo.chunk_location(d))
        .map(|l| l.len)
        .sum())
}

/// Runs a command under `/usr/bin/time -f %M`; returns (elapsed, peak MB).
fn timed(cmd: &mut Command) -> Res<(Duration, f64)> {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut full = Command::new("/usr/bin/time");
    full.arg("-f").arg("%M").arg(&prog).args(&args);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            full.env(k, v);
        }
    }
    let t = Instant::now();
    let out = full.output()?;
    let d = t.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            prog.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let kb: f64 = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    Ok((d, kb / 1000.0))
}

/// One HTTP/1.1 exchange on a fresh loopback connection: (status, headers, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Res<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status")?;
    // Chunked bodies: the JSON fields read below are never split, so the framing is ignored.
    Ok((status, head.to_string(), body.to_string()))
}

/// The value of a string field `"name":"value"` in a JSON body.
fn json_str(body: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body.trim()).ok().or_else(|| {
        // A chunked body: take the JSON between the first '{' and the last '}'.
        let (a, b) = (body.find('{')?, body.rfind('}')?);
        serde_json::from_str(&body[a..=b]).ok()
    })?;
    let mut cur = &v;
    for part in name.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

struct Row {
    name: String,
    secs: f64,
    mb_s: f64,
    ratio: String,
    extra: String,
}

/// Removes the benchmark's work folder when dropped.
struct RemoveOnExit(std::path::PathBuf);

impl Drop for RemoveOnExit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let work = match args.get(2) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("emrest-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&work);
    // Several GiB of images and repositories: removed however the run ends (an error too).
    let _cleanup = RemoveOnExit(work.clone());
    let size = mib << 20;
    let mb = size as f64 / 1e6;
    let restic = std::env::var("EMREST_BENCH_RESTIC").map_or(true, |v| v != "0")
        && Command::new("restic").arg("version").output().is_ok();
    if let Some(kib) = std::env::var("EMREST_BENCH_CHUNK_KIB")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        emrest_repo::Repository::open_with_chunk_size(
            &work.join("data/repo"),
            emrest_repo::Durability::Fsync,
            kib << 10,
        )?;
    }
    let (core, _) = Core::open(CoreConfig::new(work.join("data")))?;
    let chunk_kib = core.repository().chunk_size() >> 10;
    let vm = common::bench_vm(&core, size)?;
    let key = vm.key();
    let inv = core.inventory();
    let src = emrest_platform::LocalInventory::open_read_only(&work.join("data/platforms"))?
        .disk_path(&key, "disk-0")?;
    let restic_repo = work.join("restic-repo");
    // The whole repository folder on both sides: packs, the disks' chunk indexes, dictionaries,
    // configuration (restic's figure is its whole folder too).
    let em_repo = work.join("data/repo");
    let restic_cmd = |args: &[&str]| {
        let mut c = Command::new("restic");
        c.arg("--repo")
            .arg(&restic_repo)
            .arg("--quiet")
            .args(args)
            .env("RESTIC_PASSWORD", "bench");
        c
    };
    if restic {
        restic_cmd(&["init"]).output()?;
    }
    let src_str = src.to_string_lossy().to_string();
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let row = |rows: &mut Vec<Row>, name: &str, d: Duration, ratio: String, extra: String| {
        rows.push(Row {
            name: name.to_string(),
            secs: d.as_secs_f64(),
            mb_s: mb / d.as_secs_f64(),
            ratio,
            extra,
        })
    };
    let x = |a: Duration, b: Duration| format!("{:.2}×", b.as_secs_f64() / a.as_secs_f64());

    // Full backups.
    settle();
    reset_peak();
    let before = du(&em_repo);
    let t = Instant::now();
    core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let em_full = t.elapsed();
    let em_full_size = du(&em_repo) - before;
    let em_records = record_bytes(core.repository())?;
    let em_full_peak = peak_mb();
    let mut rs_full = None;
    if restic {
        settle();
        let (d, peak) = timed(&mut restic_cmd(&["backup", &src_str]))?;
        // restic's stored blob bytes (compressed and encrypted), for the same split of its size.
        let stats = restic_cmd(&["stats", "--mode", "raw-data", "--json"]).output()?;
        let blobs = json_str(&String::from_utf8_lossy(&stats.stdout), "total_size")
            .and_then(|v| v.parse::<u64>().ok());
        rs_full = Some((d, du(&restic_repo), peak, blobs));
    }
    // 1% tracked writes, incremental backups.
    let changed1 = scribble_tracked(inv, &key, "disk-0", size, 1.0, 7)?;
    settle();
    reset_peak();
    let before = du(&em_repo);
    let t = Instant::now();
    let s = core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let em_incr = t.elapsed();
    let em_incr_growth = du(&em_repo) - before;
    let em_incr_peak = peak_mb();
    if s.disks_tracked != 1 {
        notes.push("warning: the tracked incremental did not use tracking".into());
    }
    let mut rs_incr = None;
    if restic {
        let before = du(&restic_repo);
        settle();
        let (d, peak) = timed(&mut restic_cmd(&["backup", &src_str]))?;
        rs_incr = Some((d, du(&restic_repo) - before, peak));
    }
    // 1% untracked writes, incremental backup by digest comparison.
    {
        let f = inv.open_disk(&key, "disk-0", true)?;
        scribble(&f, size, 1.0, 8)?;
    }
    let before = du(&em_repo);
    settle();
    let t = Instant::now();
    let s = core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let em_incr_nocbt = t.elapsed();
    let em_incr_nocbt_growth = du(&em_repo) - before;
    if s.disks_tracked != 0 {
        notes.push("warning: the untracked incremental used tracking".into());
    }

    // Baselines: cp of the same image, page cache warm as for the restore; best of REPEAT, as
    // the full restore below (the machines are shared and noisy).
    let copy = work.join("copy.img");
    let cp_once = |sync: bool| -> Res<Duration> {
        settle();
        let t = Instant::now();
        let st = Command::new("cp").arg(&src).arg(&copy).status()?;
        if !st.success() {
            return Err("cp failed".into());
        }
        // The restore makes its disks durable before it swaps them in; so does this baseline.
        if sync {
            std::fs::File::open(&copy)?.sync_all()?;
        }
        let d = t.elapsed();
        std::fs::remove_file(&copy)?;
        Ok(d)
    };
    let mut cp = Duration::MAX;
    let mut cp_sync = Duration::MAX;
    for _ in 0..REPEAT {
        cp = cp.min(cp_once(false)?);
        cp_sync = cp_sync.min(cp_once(true)?);
    }

    let newest = core
        .view()
        .vm_restore_points(None)?
        .iter()
        .max_by_key(|p| p.created)
        .ok_or("no point")?
        .id;
    core.add_account("bench", "bench", Role::PortalAdministrator)?;
    let caller = core
        .logons()
        .caller(core.logons().logon("bench", "bench")?.id)?;

    // The API server, in this process on loopback, over the same core.
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(emrest_server::run(
        core.clone(),
        emrest_server::ServerConfig {
            http: Some(addr),
            https: None,
            tls_cert: None,
            tls_key: None,
            lenient_xml_order: false,
            lenient_restore_spec: false,
            limits: Default::default(),
            metrics: Default::default(),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let up = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if up.elapsed() > Duration::from_secs(10) {
            return Err("the API server did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bench:bench")
    );
    let (st, head, _) = http(
        addr,
        "POST",
        "/api/sessionMngr/?v=latest",
        &[("Authorization", &basic)],
        "",
    )?;
    let token = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("X-RestSvcSessionId")
                .then(|| v.trim().to_string())
        })
        .ok_or(format!("logon failed with status {st}"))?;
    // POST the restore, poll the task until Finished; (time to Finished, time until the
    // restore's disks are flushed and its journal removed, bytes written from the log).
    let run = |quick: bool| -> Res<(Duration, Duration, u64)> {
        let body = format!(
            r#"{{"VmRestoreSpec":{{"PowerOnAfterRestore":false,"QuickRollback":{quick}}}}}"#
        );
        let json = [
            ("X-RestSvcSessionId", token.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ];
        let t = Instant::now();
        let (st, _, b) = http(
            addr,
            "POST",
            &format!("/api/vmRestorePoints/{newest}?action=restore"),
            &json,
            &body,
        )?;
        if st != 202 {
            return Err(format!("restore refused with {st}: {b}").into());
        }
        let task_id = json_str(&b, "TaskId").ok_or("no TaskId in the answer")?;
        loop {
            let (_, _, b) = http(addr, "GET", &format!("/api/tasks/{task_id}"), &json, "")?;
            if json_str(&b, "State").as_deref() == Some("Finished") {
                let d = t.elapsed();
                if json_str(&b, "Result.Success").as_deref() != Some("true") {
                    return Err(format!("restore failed: {b}").into());
                }
                let n: i64 = task_id
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("task ID")?;
                let r = core.as_caller(&caller).task(emrest_core::TaskId(n))?;
                let log = core
                    .as_caller(&caller)
                    .restore_log(r.restore_session_id.ok_or("no session")?)?;
                if std::env::var("EMREST_BENCH_LOG").is_ok_and(|v| v == "1") {
                    for l in &log {
                        eprintln!("{} {}", l.time, l.text);
                    }
                }
                // "Restore completed: examined N chunks, wrote M chunks (B bytes)".
                let bytes = log
                    .iter()
                    .filter(|l| l.text.starts_with("Restore completed"))
                    .filter_map(|l| l.text.split(" chunks (").nth(1))
                    .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
                    .sum();
                if !core.restores().wait_idle(Duration::from_secs(3600)) {
                    return Err("the restore's disks were never flushed".into());
                }
                return Ok((d, t.elapsed(), bytes));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    settle();
    reset_peak();
    let (mut full_restore, mut full_durable, mut full_bytes) = (Duration::MAX, Duration::MAX, 0);
    for _ in 0..REPEAT {
        settle();
        let (d, durable, bytes) = run(false)?;
        if d < full_restore {
            (full_restore, full_durable, full_bytes) = (d, durable, bytes);
        }
    }
    let full_peak = peak_mb();
    // The device alone doing the full restore's writes: the same bytes of new data, written as
    // it writes them, with nothing to read, verify or decompress.
    let mut device_write = Duration::MAX;
    for _ in 0..REPEAT {
        settle();
        device_write = device_write.min(device::write_new(&work.join("device.img"), full_bytes)?);
    }
    // Each QuickRollback runs REPEAT times too, each after its own 1% of writes: (time to
    // Finished, to durable, bytes written, bytes changed) of every run.
    let quick = |tracked: bool, seed: u64| -> Res<Vec<(Duration, Duration, u64, u64)>> {
        let mut runs = Vec::new();
        for k in 0..REPEAT as u64 {
            let changed = if tracked {
                scribble_tracked(inv, &key, "disk-0", size, 1.0, seed + k)?
            } else {
                let f = inv.open_disk(&key, "disk-0", true)?;
                scribble(&f, size, 1.0, seed + k)?
            };
            settle();
            let (d, durable, bytes) = run(true)?;
            runs.push((d, durable, bytes, changed));
        }
        Ok(runs)
    };
    reset_peak();
    let q_cbt = quick(true, 9)?;
    let q_cbt_peak = peak_mb();
    // The device alone doing the reads of a rollback by digests that finds the disk out of the
    // page cache: the disk's data, with nothing to hash.
    let disk = emrest_platform::LocalInventory::open_read_only(&work.join("data/platforms"))?
        .disk_path(&key, "disk-0")?;
    let (mut device_read, mut read_bytes) = (Duration::MAX, 0);
    for _ in 0..REPEAT {
        settle();
        let (d, bytes) = device::read_data(&disk)?;
        (device_read, read_bytes) = (device_read.min(d), bytes);
    }
    // By digests the first run reads most of the disk from the device (the full restore wrote
    // it around the page cache); the later runs find it in the page cache, as a disk in use
    // would be. Both are reported.
    let q_digest = quick(false, 19)?;
    let best = |runs: &[(Duration, Duration, u64, u64)]| {
        runs.iter()
            .copied()
            .min_by_key(|r| r.0)
            .unwrap_or((Duration::MAX, Duration::MAX, 0, 0))
    };
    let (q_cbt, q_cbt_durable, q_cbt_bytes, changed_q1) = best(&q_cbt);
    let (q_cold, q_cold_durable, q_cold_bytes, changed_q2) = best(&q_digest[..1]);
    let (q_warm, q_warm_durable, q_warm_bytes, changed_q3) = best(&q_digest[1..]);

    let mut rs_restore = None;
    if restic {
        let target = work.join("restic-restore");
        settle();
        let (d, peak) = timed(&mut restic_cmd(&[
            "restore",
            "latest",
            "--target",
            &target.to_string_lossy(),
        ]))?;
        rs_restore = Some((d, peak));
        let _ = std::fs::remove_dir_all(&target);
    }

    row(
        &mut rows,
        "cp of the disk image",
        cp,
        "1.00× cp".into(),
        String::new(),
    );
    row(
        &mut rows,
        "cp + fsync of the copy",
        cp_sync,
        x(cp_sync, cp) + " cp",
        String::new(),
    );
    row(
        &mut rows,
        "device: direct write of the restore's data",
        device_write,
        x(device_write, cp) + " cp",
        format!(
            "{:.1} MB into a new file, 4 MiB writes, fsync: the device alone",
            full_bytes as f64 / 1e6
        ),
    );
    // The task finishes once the disks hold the point (written through the page cache, a
    // journal answering for them); they are flushed right after. Both are reported.
    let durable = |d: Duration, base: Duration| {
        let vs = if base == cp_sync {
            "cp+fsync"
        } else {
            "faster than full"
        };
        format!(
            "durable after {:.3} s: {} {vs}",
            d.as_secs_f64(),
            x(d, base)
        )
    };
    row(
        &mut rows,
        "emrest full restore via API",
        full_restore,
        format!(
            "{} cp, {} cp+fsync",
            x(full_restore, cp),
            x(full_restore, cp_sync)
        ),
        format!(
            "{}; {} the device's speed; peak {full_peak:.0} MB",
            durable(full_durable, cp_sync),
            x(full_restore, device_write)
        ),
    );
    // Bytes a rollback wrote, against the bytes the guest changed.
    let wrote = |bytes: u64, changed: u64| {
        format!(
            "wrote {:.1} MB = {:.2}× the {:.1} MB changed",
            bytes as f64 / 1e6,
            bytes as f64 / changed.max(1) as f64,
            changed as f64 / 1e6
        )
    };
    row(
        &mut rows,
        "emrest QuickRollback 1%, tracking",
        q_cbt,
        format!("{} faster than full", x(q_cbt, full_restore)),
        format!(
            "{}; {}; peak {q_cbt_peak:.0} MB",
            wrote(q_cbt_bytes, changed_q1),
            durable(q_cbt_durable, full_durable)
        ),
    );
    row(
        &mut rows,
        "device: read of the disk's data",
        device_read,
        format!("{} faster than full", x(device_read, full_restore)),
        format!(
            "{:.1} MB, page cache emptied: the device alone",
            read_bytes as f64 / 1e6
        ),
    );
    for (name, d, dur, bytes, changed, vs_device) in [
        (
            "emrest QuickRollback 1%, digests, disk not cached",
            q_cold,
            q_cold_durable,
            q_cold_bytes,
            changed_q2,
            format!("; {} the device's speed", x(q_cold, device_read)),
        ),
        (
            "emrest QuickRollback 1%, digests, disk cached",
            q_warm,
            q_warm_durable,
            q_warm_bytes,
            changed_q3,
            String::new(),
        ),
    ] {
        row(
            &mut rows,
            name,
            d,
            format!("{} faster than full", x(d, full_restore)),
            format!(
                "{}; {}{vs_device}",
                wrote(bytes, changed),
                durable(dur, full_durable)
            ),
        );
    }
    let vs = |ours: Duration, theirs: Option<Duration>| match theirs {
        Some(t) => format!("{} faster than restic", x(ours, t)),
        None => String::new(),
    };
    row(
        &mut rows,
        "emrest full backup",
        em_full,
        vs(em_full, rs_full.map(|r| r.0)),
        format!(
            "repo +{:.1} MB: chunk records {:.1} MB, the rest {:.1} MB; peak {em_full_peak:.0} MB",
            em_full_size as f64 / 1e6,
            em_records as f64 / 1e6,
            em_full_size.saturating_sub(em_records) as f64 / 1e6
        ),
    );
    row(
        &mut rows,
        "emrest incremental 1%, tracking",
        em_incr,
        vs(em_incr, rs_incr.map(|r| r.0)),
        format!(
            "repo +{:.1} MB = {:.2}× the {:.1} MB changed; peak {em_incr_peak:.0} MB",
            em_incr_growth as f64 / 1e6,
            em_incr_growth as f64 / changed1.max(1) as f64,
            changed1 as f64 / 1e6
        ),
    );
    row(
        &mut rows,
        "emrest incremental 1%, digests",
        em_incr_nocbt,
        vs(em_incr_nocbt, rs_incr.map(|r| r.0)),
        format!("repo +{:.1} MB", em_incr_nocbt_growth as f64 / 1e6),
    );
    if let (Some(f), Some(i), Some(r)) = (rs_full, rs_incr, rs_restore) {
        row(
            &mut rows,
            "restic full backup",
            f.0,
            String::new(),
            match f.3 {
                Some(blobs) => format!(
                    "repo {:.1} MB: blobs {:.1} MB, the rest {:.1} MB; peak {:.0} MB",
                    f.1 as f64 / 1e6,
                    blobs as f64 / 1e6,
                    f.1.saturating_sub(blobs) as f64 / 1e6,
                    f.2
                ),
                None => format!("repo {:.1} MB; peak {:.0} MB", f.1 as f64 / 1e6, f.2),
            },
        );
        row(
            &mut rows,
            "restic incremental 1%",
            i.0,
            String::new(),
            format!(
                "repo +{:.1} MB = {:.2}× the changed; peak {:.0} MB",
                i.1 as f64 / 1e6,
                i.1 as f64 / changed1.max(1) as f64,
                i.2
            ),
        );
        row(
            &mut rows,
            "restic restore",
            r.0,
            format!("emrest full restore {} faster", x(full_restore, r.0)),
            format!("peak {:.0} MB", r.1),
        );
    }

    println!(
        "emrest benchmark: one {mib} MiB disk, {chunk_kib} KiB chunks, 1% of 4 KiB blocks changed per step"
    );
    println!(
        "{:<50} {:>8} {:>9}  {:<34} notes",
        "operation", "seconds", "MB/s", "ratio"
    );
    for r in &rows {
        println!(
            "{:<50} {:>8.3} {:>9.1}  {:<34} {}",
            r.name, r.secs, r.mb_s, r.ratio, r.extra
        );
    }
    for n in notes {
        println!("{n}");
    }
    let _ = stop.send(());
    let _ = rt.block_on(server);
    drop(core);
    Ok(())
}
