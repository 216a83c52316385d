//! Backup benchmark through a job: one VM with one disk of `--size` MiB (random, text-like and
//! zero regions). Side by side in the same run:
//! - `cp` of the disk image (the baseline a user would compare with),
//! - a full backup (the job's first run),
//! - an incremental backup after 1% of the 4 KiB blocks changed,
//! - an incremental backup of an unchanged disk,
//! - an incremental backup after the same amount of change written contiguously;
//!
//! then the repository's size against the image's.
//!
//! Run: `cargo run --release -p emrest-core --example backup_bench -- [size MiB] [work dir]`

mod common;

use emrest_core::demo::scribble;
use emrest_core::{Core, CoreConfig, SessionResult};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let work = match args.get(2) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("emrest-backup-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&work);
    let size = mib << 20;
    let (core, _) = Core::open(CoreConfig::new(work.join("data")))?;
    let vm = common::bench_vm(&core, size)?;
    let key = vm.key();
    let inv = core.inventory();
    let job = core
        .jobs()
        .create_job("Bench Job", &[vm.hierarchy_obj_ref()], 7, "bench")?;

    // Baseline: cp of the same image (page cache warm, as for the backups).
    let src = emrest_platform::LocalInventory::open_read_only(&work.join("data/platforms"))?
        .disk_path(&key, "disk-0")?;
    let copy = work.join("copy.img");
    let t = Instant::now();
    if !std::process::Command::new("cp")
        .arg(&src)
        .arg(&copy)
        .status()?
        .success()
    {
        return Err("cp failed".into());
    }
    let cp = t.elapsed();
    std::fs::remove_file(&copy)?;

    let run = |label: &str| -> Result<(Duration, u64, u64), Box<dyn std::error::Error>> {
        let t = Instant::now();
        let s = core.jobs().run_job_now(job.id, emrest_core::now_millis())?;
        let d = t.elapsed();
        if s.result != SessionResult::Success {
            return Err(format!("{label}: {:?}", s.failure_message).into());
        }
        let tasks = core.view().backup_task_sessions(Some(s.id))?;
        Ok((
            d,
            tasks.iter().map(|t| t.chunks_new).sum(),
            tasks.iter().map(|t| t.bytes_transferred).sum(),
        ))
    };
    let full = run("full")?;
    let after_full = core.repository().stored_bytes()?;
    let changed = {
        let f = inv.open_disk(&key, "disk-0", true)?;
        scribble(&f, size, 1.0, 7)?
    };
    let incr = run("incremental")?;
    let total = core.repository().stored_bytes()?;
    let same = run("unchanged")?;
    // The same amount of change written in one contiguous run, as a database or log file grows.
    {
        use std::os::unix::fs::FileExt;
        let f = inv.open_disk(&key, "disk-0", true)?;
        let mut buf = vec![0u8; changed as usize];
        emrest_core::demo::Prng::new(13).fill(&mut buf);
        f.write_all_at(&buf, size / 3)?;
        f.sync_all()?;
    }
    let contiguous = run("contiguous")?;

    let mbps = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    println!(
        "emrest backup benchmark: one {mib} MiB disk, chunk size {} KiB, 1% of 4 KiB blocks changed ({} MiB)",
        core.repository().chunk_size() / 1024,
        changed >> 20
    );
    println!(
        "{:<36} {:>9} {:>10} {:>8} {:>11} {:>12}",
        "operation", "seconds", "MB/s", "vs cp", "new chunks", "stored MB"
    );
    let row = |name: &str, (d, chunks, stored): (Duration, u64, u64)| {
        println!(
            "{name:<36} {:>9.3} {:>10.1} {:>8.2} {chunks:>11} {:>12.1}",
            d.as_secs_f64(),
            mbps(d),
            d.as_secs_f64() / cp.as_secs_f64(),
            stored as f64 / 1e6
        )
    };
    println!(
        "{:<36} {:>9.3} {:>10.1} {:>8.2}",
        "cp of the disk image (baseline)",
        cp.as_secs_f64(),
        mbps(cp),
        1.0
    );
    row("full backup (job run 1)", full);
    row("incremental backup (1% changed)", incr);
    row("incremental backup (unchanged)", same);
    row("incremental (same amount, contiguous)", contiguous);
    println!(
        "repository after the first two backups: {:.1} MB (full {:.1} MB) for a {:.1} MB image: {:.1}% of the image",
        total as f64 / 1e6,
        after_full as f64 / 1e6,
        size as f64 / 1e6,
        total as f64 * 100.0 / size as f64
    );
    drop(core);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
