//! Restore and backup benchmark: one VM with one disk of `size` MiB (random, text-like and zero
//! regions), measured side by side in one run against `cp` of the same image and against restic
//! doing the same backups and restore of the same image (skipped if `restic` is not installed or
//! `EMREST_BENCH_RESTIC=0`).
//!
//! Sequence: full backup (emrest, restic) → 1% of 4 KiB blocks written through the platform
//! (tracked) → incremental backup with tracking (emrest, restic) → 1% written around the platform
//! → incremental backup without tracking → `cp` baselines → full restore → 1% tracked writes →
//! QuickRollback with tracking → 1% untracked writes → QuickRollback by digest comparison →
//! restic restore. Restores run through `Core::start_restore` and task polling, as the API does;
//! `cp` and the full restore run three times and the best time is reported.
//! `EMREST_BENCH_LOG=1` prints each restore's session log (with timestamps) to stderr.
//!
//! Run: `cargo run --release -p emrest-core --example restore_bench -- [size MiB] [work dir]`;
//! `EMREST_BENCH_CHUNK_KIB` picks the repository's chunk size (default: the repository's default).

mod common;

use emrest_core::demo::{scribble, scribble_tracked};
use emrest_core::{Core, CoreConfig, RestoreRequest, Role, TaskState};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs of `cp` and of the full restore; the best is reported.
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

struct Row {
    name: String,
    secs: f64,
    mb_s: f64,
    ratio: String,
    extra: String,
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let work = match args.get(2) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("emrest-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&work);
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
    let before = core.repository().stored_bytes()?;
    let t = Instant::now();
    core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let em_full = t.elapsed();
    let em_full_size = core.repository().stored_bytes()? - before;
    let em_full_peak = peak_mb();
    let mut rs_full = None;
    if restic {
        settle();
        let (d, peak) = timed(&mut restic_cmd(&["backup", &src_str]))?;
        rs_full = Some((d, du(&restic_repo), peak));
    }
    // 1% tracked writes, incremental backups.
    let changed1 = scribble_tracked(inv, &key, "disk-0", size, 1.0, 7)?;
    settle();
    reset_peak();
    let before = core.repository().stored_bytes()?;
    let t = Instant::now();
    let s = core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let em_incr = t.elapsed();
    let em_incr_growth = core.repository().stored_bytes()? - before;
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
    let before = core.repository().stored_bytes()?;
    settle();
    let t = Instant::now();
    let s = core.backup_now("Bench Job", std::slice::from_ref(&key))?;
    let em_incr_nocbt = t.elapsed();
    let em_incr_nocbt_growth = core.repository().stored_bytes()? - before;
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
        .vm_restore_points(None)?
        .iter()
        .max_by_key(|p| p.created)
        .ok_or("no point")?
        .id;
    core.add_account("bench", "bench", Role::PortalAdministrator)?;
    let caller = core.caller(core.logon("bench", "bench")?.id)?;
    let run = |req: &RestoreRequest| -> Res<(Duration, u64)> {
        let t = Instant::now();
        let task = core.start_restore(&caller, newest, req)?;
        loop {
            let r = core.task(&caller, task.id)?;
            if r.state == TaskState::Finished {
                let d = t.elapsed();
                let (ok, msg) = r.result.unwrap_or((false, "no result".into()));
                if !ok {
                    return Err(msg.into());
                }
                let log = core.restore_log(&caller, r.restore_session_id.ok_or("no session")?)?;
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
                return Ok((d, bytes));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    settle();
    reset_peak();
    let mut full_restore = Duration::MAX;
    for _ in 0..REPEAT {
        settle();
        full_restore = full_restore.min(run(&RestoreRequest::default())?.0);
    }
    let full_peak = peak_mb();
    let quick = RestoreRequest {
        quick_rollback: true,
        ..Default::default()
    };
    let changed_q1 = scribble_tracked(inv, &key, "disk-0", size, 1.0, 9)?;
    settle();
    reset_peak();
    let (q_cbt, q_cbt_bytes) = run(&quick)?;
    let q_cbt_peak = peak_mb();
    let changed_q2 = {
        let f = inv.open_disk(&key, "disk-0", true)?;
        scribble(&f, size, 1.0, 11)?
    };
    settle();
    let (q_digest, q_digest_bytes) = run(&quick)?;

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
        "emrest full restore (staging+swap)",
        full_restore,
        format!(
            "{} cp, {} cp+fsync",
            x(full_restore, cp),
            x(full_restore, cp_sync)
        ),
        format!("peak {full_peak:.0} MB"),
    );
    row(
        &mut rows,
        "emrest QuickRollback 1%, tracking",
        q_cbt,
        format!("{} faster than full", x(q_cbt, full_restore)),
        format!(
            "wrote {:.1} MB = {:.2}× the {:.1} MB changed; peak {q_cbt_peak:.0} MB",
            q_cbt_bytes as f64 / 1e6,
            q_cbt_bytes as f64 / changed_q1.max(1) as f64,
            changed_q1 as f64 / 1e6
        ),
    );
    row(
        &mut rows,
        "emrest QuickRollback 1%, digests",
        q_digest,
        format!("{} faster than full", x(q_digest, full_restore)),
        format!(
            "wrote {:.1} MB = {:.2}× the {:.1} MB changed",
            q_digest_bytes as f64 / 1e6,
            q_digest_bytes as f64 / changed_q2.max(1) as f64,
            changed_q2 as f64 / 1e6
        ),
    );
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
            "repo +{:.1} MB; peak {em_full_peak:.0} MB",
            em_full_size as f64 / 1e6
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
            format!("repo {:.1} MB; peak {:.0} MB", f.1 as f64 / 1e6, f.2),
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
        "{:<36} {:>8} {:>9}  {:<34} notes",
        "operation", "seconds", "MB/s", "ratio"
    );
    for r in &rows {
        println!(
            "{:<36} {:>8.3} {:>9.1}  {:<34} {}",
            r.name, r.secs, r.mb_s, r.ratio, r.extra
        );
    }
    for n in notes {
        println!("{n}");
    }
    drop(core);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
