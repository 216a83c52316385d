//! A repository-level full restore (`apply_restore`, fsync included) with direct and with
//! buffered writes, side by side with `cp` and `cp` + fsync of the same VM-like image (the
//! benchmark's, `common::make_image`: 60% random, 15% text, 25% zeros in 1 MiB regions; then two incremental backups after 1% of its
//! 4 KiB blocks changed, as in bench/restore.sh), with the CPU time each step used.
//!
//! `cargo run --release -p emrest-repo --example restore_modes -- [MiB, default 1024] [workdir]`
//!
//! Each round times every step once (in a rotating order, after `sync`), and the best and
//! median of the rounds are printed: the machines are shared and noisy. Environment:
//! `EMREST_ROUNDS` (5), `EMREST_MODES=0` (direct only; 1 buffered and fsynced; 2 direct and
//! unflushed, as the API's restores over a VM; 3 buffered and unflushed), `EMREST_NOCP=1`
//! (restores only, for `perf record`), `EMREST_COLD=1` (the image and packs are dropped from the page
//! cache before each step: a restore after an outage reads its repository from the device),
//! `EMREST_ROLLBACK=1` (then QuickRollbacks with changed-block tracking: 1% of the restored
//! disk's blocks written, planned and rolled back, each phase timed; `EMREST_MODES=9` skips
//! the full restores).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use emrest_repo::{Durability, NoControl, Repository, Writes};

mod common;

use common::{make_image, Prng};

fn rounds() -> usize {
    std::env::var("EMREST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// CPU time (user, system) of this process and its waited-for children so far.
fn cpu() -> (Duration, Duration) {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let mut total = (Duration::ZERO, Duration::ZERO);
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage only fills the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        total.0 += tv(ru.ru_utime);
        total.1 += tv(ru.ru_stime);
    }
    total
}

/// Drops this benchmark's own files (the image and the packs) from the page cache, for
/// `EMREST_COLD=1`: a restore after an outage reads its repository from the device.
fn evict(dir: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            evict(&p);
        } else if let Ok(f) = File::open(&p) {
            // SAFETY: fadvise on an open descriptor touches no memory.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

fn settle() {
    let _ = Command::new("sync").status();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map_or(Ok(1024), |a| a.parse())?;
    let work = match args.next() {
        Some(w) => PathBuf::from(w),
        None => std::env::temp_dir().join(format!("restore-modes-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let size = mib << 20;
    let image = work.join("image.raw");
    make_image(&image, size, 0x9e37_79b9_7f4a_7c15)?;
    let repo_root = work.join("repo");
    let repo = Repository::open(&repo_root, Durability::Fsync)?;
    let (mut index, _) = repo.backup_disk(&File::open(&image)?, size, None, None, &NoControl)?;
    // Two incremental backups after 1% of the 4 KiB blocks changed each time, as in
    // bench/restore.sh: the restored point's chunks then lie in several packs.
    let mut rng = Prng(7);
    for _ in 0..2 {
        let f = File::options().write(true).open(&image)?;
        let mut block = [0u8; 4096];
        for _ in 0..size / 4096 / 100 {
            rng.fill(&mut block);
            f.write_all_at(&block, rng.next_u64() % (size / 4096) * 4096)?;
        }
        f.sync_all()?;
        index = repo
            .backup_disk(&File::open(&image)?, size, Some(&index), None, &NoControl)?
            .0;
    }
    let plan = repo.plan_restore(&index, None, &NoControl)?;
    eprintln!("repository ready; timing");
    let written = plan.bytes(&index);

    // EMREST_MODES=0 picks modes by their position (0 direct, 1 buffered, 2 direct unflushed,
    // 3 buffered unflushed).
    let pick: Option<Vec<usize>> = std::env::var("EMREST_MODES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let modes: Vec<(&str, bool, Writes)> = [
        ("O_DIRECT", true, Writes::Durable),
        ("buffered", false, Writes::Durable),
        ("O_DIRECT, no fsync (deferred)", true, Writes::Deferred),
        ("buffered, no fsync (deferred)", false, Writes::Deferred),
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| pick.as_ref().is_none_or(|p| p.contains(i)))
    .map(|(_, m)| m)
    .collect();
    let mut names: Vec<String> = vec!["cp".into(), "cp + fsync".into()];
    names.extend(modes.iter().map(|(n, _, _)| format!("restore, {n}")));
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut cpus: Vec<(Duration, Duration)> = vec![Default::default(); names.len()];
    let target = work.join("target.raw");
    for round in 0..rounds() {
        for k in 0..names.len() {
            let k = (k + round) % names.len();
            // EMREST_NOCP=1 times the restores alone (for profiles).
            if k < 2 && std::env::var("EMREST_NOCP").is_ok_and(|v| v == "1") {
                continue;
            }
            settle();
            if std::env::var("EMREST_COLD").is_ok_and(|v| v == "1") {
                evict(&work);
            }
            let t = Instant::now();
            let c0 = cpu();
            match k {
                0 | 1 => {
                    if !Command::new("cp")
                        .arg(&image)
                        .arg(&target)
                        .status()?
                        .success()
                    {
                        return Err("cp failed".into());
                    }
                    if k == 1 {
                        File::open(&target)?.sync_all()?;
                    }
                }
                _ => {
                    let repo = Repository::open(&repo_root, Durability::Fsync)?
                        .with_direct_io(modes[k - 2].1);
                    let f = File::options()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&target)?;
                    let st =
                        repo.apply_restore_with(&index, &plan, &f, &NoControl, modes[k - 2].2)?;
                    if st.bytes_written != written {
                        return Err("restore wrote an unexpected byte count".into());
                    }
                }
            }
            times[k].push(t.elapsed());
            let c1 = cpu();
            cpus[k].0 += c1.0 - c0.0;
            cpus[k].1 += c1.1 - c0.1;
            std::fs::remove_file(&target)?;
        }
    }
    println!(
        "{mib} MiB image, {} MB of data chunks written by a restore",
        written / 1_000_000
    );
    let cp_best = times[0].iter().min().copied().unwrap_or_default();
    let sync_best = times[1].iter().min().copied().unwrap_or_default();
    for ((name, mut t), (user, sys)) in names.into_iter().zip(times).zip(cpus) {
        let n = t.len().max(1) as f64;
        t.sort();
        let Some(&best) = t.first() else {
            continue;
        };
        println!(
            "{name:<38} best {:6.3} s  median {:6.3} s  {:7.1} MB/s  {:.2}× cp  {:.2}× cp+fsync  cpu {:.2} user {:.2} sys",
            best.as_secs_f64(),
            t[t.len() / 2].as_secs_f64(),
            size as f64 / 1e6 / best.as_secs_f64(),
            cp_best.as_secs_f64() / best.as_secs_f64(),
            sync_best.as_secs_f64() / best.as_secs_f64(),
            user.as_secs_f64() / n,
            sys.as_secs_f64() / n,
        );
    }
    if std::env::var("EMREST_ROLLBACK").is_ok_and(|v| v == "1") {
        tracked_rollbacks(&repo_root, &index, &plan, &target, size)?;
    }
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// `EMREST_ROLLBACK=1`: QuickRollback with changed-block tracking at the repository level,
/// rounds of: 1% of the restored target's 4 KiB blocks written, then planned (the point's
/// bytes for them read and verified) and written back, each phase timed.
fn tracked_rollbacks(
    repo_root: &Path,
    index: &emrest_repo::DiskIndex,
    plan: &emrest_repo::RestorePlan,
    target: &Path,
    size: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let repo = Repository::open(repo_root, Durability::Fsync)?;
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(target)?;
    repo.apply_restore(index, plan, &f, &NoControl)?;
    let mut rng = Prng(11);
    let (mut prepare, mut apply) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        let mut written = Vec::new();
        let mut block = [0u8; 4096];
        for _ in 0..size / 4096 / 100 {
            rng.fill(&mut block);
            let at = rng.next_u64() % (size / 4096) * 4096;
            f.write_all_at(&block, at)?;
            written.push((at, 4096));
        }
        settle();
        if std::env::var("EMREST_COLD").is_ok_and(|v| v == "1") {
            evict(repo_root);
        }
        let changes = emrest_repo::TrackedChanges {
            written,
            compare: Vec::new(),
        };
        let t = Instant::now();
        let rollback = repo.prepare_rollback_tracked(index, &f, &changes, &NoControl)?;
        prepare.push(t.elapsed());
        let t = Instant::now();
        repo.apply_rollback(index, &rollback, &f, &NoControl, Writes::Deferred)?;
        apply.push(t.elapsed());
    }
    for (name, mut t) in [
        ("tracked rollback 1%: plan", prepare),
        ("tracked rollback 1%: write", apply),
    ] {
        t.sort();
        if let Some(&best) = t.first() {
            println!(
                "{name:<38} best {:6.3} s  median {:6.3} s",
                best.as_secs_f64(),
                t[t.len() / 2].as_secs_f64()
            );
        }
    }
    Ok(())
}
