//! Backup and fresh-restore throughput of one image, beside `std::fs::copy` as a baseline.
//!
//! `cargo run --release -p emrest-repo --example repo_bench -- <image> <workdir>`

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use emrest_repo::{Durability, NoControl, Repository};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(image), Some(work)) = (args.next(), args.next()) else {
        eprintln!("usage: repo_bench <image> <workdir>");
        std::process::exit(2);
    };
    let (image, work) = (PathBuf::from(image), PathBuf::from(work));
    std::fs::create_dir_all(&work)?;
    let size = std::fs::metadata(&image)?.len();
    let mb = size as f64 / 1e6;
    let rate = |secs: f64| mb / secs.max(1e-9);

    let copy_path = work.join("copy.img");
    let t = Instant::now();
    std::fs::copy(&image, &copy_path)?;
    File::open(&copy_path)?.sync_all()?;
    let copy_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&copy_path)?;

    let repo_root = work.join("repo");
    if repo_root.exists() {
        std::fs::remove_dir_all(&repo_root)?;
    }
    let repo = Repository::open(&repo_root, Durability::Fsync)?;
    let t = Instant::now();
    let (index, stats) = repo.backup_disk(&File::open(&image)?, size, None, None, &NoControl)?;
    let backup_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (_, again) = repo.backup_disk(&File::open(&image)?, size, None, None, &NoControl)?;
    let rebackup_secs = t.elapsed().as_secs_f64();

    let restore_path = work.join("restored.img");
    let target = File::create(&restore_path)?;
    let t = Instant::now();
    let plan = repo.plan_restore(&index, None, &NoControl)?;
    let restored = repo.apply_restore(&index, &plan, &target, &NoControl)?;
    let restore_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&restore_path)?;

    println!(
        "image            {size} bytes, {} chunks of {} bytes",
        stats.chunks_total,
        repo.chunk_size()
    );
    println!("fs::copy         {:8.1} MB/s", rate(copy_secs));
    println!(
        "backup (fresh)   {:8.1} MB/s  new {} zero {} dedup {}",
        rate(backup_secs),
        stats.chunks_new,
        stats.chunks_zero,
        stats.chunks_deduplicated
    );
    println!(
        "backup (again)   {:8.1} MB/s  new {}",
        rate(rebackup_secs),
        again.chunks_new
    );
    println!(
        "restore (fresh)  {:8.1} MB/s  {} bytes written",
        rate(restore_secs),
        restored.bytes_written
    );
    println!(
        "repository       {} bytes ({:.1}% of image)",
        repo.stored_bytes()?,
        100.0 * repo.stored_bytes()? as f64 / size.max(1) as f64
    );
    Ok(())
}
