//! Where a repository's bytes go after a full backup of one image, beside restic's repository
//! of the same image (when `restic` is installed and `EMREST_BENCH_RESTIC` is not `0`).
//!
//! `cargo run --release -p emrest-repo --example repo_size -- <image> <workdir> [chunk KiB]`
//!
//! The work folder gets `repo/` and `restic/`, both removed first. The benchmark's image:
//! `cargo run --release -p emrest-repo --example zstd_levels -- --image <image> <MiB>`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use emrest_repo::{CodecUse, Durability, NoControl, Repository, DEFAULT_CHUNK_SIZE};

/// Bytes of the file at `path`, or of every file under it, however deep.
fn tree_size(path: &Path) -> u64 {
    match std::fs::read_dir(path) {
        Ok(rd) => rd.flatten().map(|e| tree_size(&e.path())).sum(),
        Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn codec_row(name: &str, c: &CodecUse) {
    let pct = 100.0 * c.stored_bytes as f64 / (c.chunk_bytes as f64).max(1.0);
    println!(
        "  {name:<22} {:>10.3} MB  {:>8} chunks, {:.3} MB of chunks ({pct:.2}%)",
        mb(c.stored_bytes),
        c.chunks,
        mb(c.chunk_bytes)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(image), Some(work)) = (args.next(), args.next()) else {
        eprintln!("usage: repo_size <image> <workdir> [chunk KiB]");
        std::process::exit(2);
    };
    let chunk_size = match args.next() {
        Some(kib) => kib.parse::<u32>()? << 10,
        None => DEFAULT_CHUNK_SIZE,
    };
    let (image, work) = (PathBuf::from(image), PathBuf::from(work));
    let size = std::fs::metadata(&image)?.len();

    let root = work.join("repo");
    let _ = std::fs::remove_dir_all(&root);
    let repo = Repository::open_with_chunk_size(&root, Durability::Fsync, chunk_size)?;
    let t = Instant::now();
    let (index, _) = repo.backup_disk(&File::open(&image)?, size, None, None, &NoControl)?;
    repo.put_index("full", &index)?;
    let secs = t.elapsed().as_secs_f64();
    let u = repo.space_use()?;
    println!(
        "emrest, {} KiB chunks: full backup {secs:.2} s, repository {:.3} MB",
        chunk_size >> 10,
        mb(u.total())
    );
    codec_row("records raw", &u.raw);
    codec_row("records zstd", &u.zstd);
    codec_row("records zstd + dict", &u.zstd_dict);
    for (name, bytes) in [
        ("pack indexes, headers", u.pack_indexes),
        ("disk indexes", u.disk_indexes),
        ("dictionaries", u.dictionaries),
        ("config", u.config),
    ] {
        println!("  {name:<22} {:>10.3} MB", mb(bytes));
    }

    let restic = std::env::var("EMREST_BENCH_RESTIC").map_or(true, |v| v != "0")
        && Command::new("restic").arg("version").output().is_ok();
    if !restic {
        return Ok(());
    }
    let restic_repo = work.join("restic");
    let _ = std::fs::remove_dir_all(&restic_repo);
    let run = |args: &[&str]| -> Result<(), Box<dyn std::error::Error>> {
        let status = Command::new("restic")
            .arg("--repo")
            .arg(&restic_repo)
            .arg("--quiet")
            .args(args)
            .env("RESTIC_PASSWORD", "bench")
            .status()?;
        if !status.success() {
            return Err(format!("restic {args:?}: {status}").into());
        }
        Ok(())
    };
    run(&["init"])?;
    let t = Instant::now();
    run(&["backup", &image.to_string_lossy()])?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "restic: full backup {secs:.2} s, repository {:.3} MB",
        mb(tree_size(&restic_repo))
    );
    let mut parts: Vec<_> = std::fs::read_dir(&restic_repo)?.flatten().collect();
    parts.sort_by_key(|e| e.file_name());
    for e in parts {
        println!(
            "  {:<22} {:>10.3} MB",
            e.file_name().to_string_lossy(),
            mb(tree_size(&e.path()))
        );
    }
    Ok(())
}
