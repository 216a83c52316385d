//! The repository in a bucket against the same repository in a folder, side by side:
//! `cargo run --release -p emrest-s3 --example s3_bench -- [MiB]` (default 1024) starts a
//! single-node Garage on loopback (crates/testkit), backs the same image up into a folder
//! and into the bucket, restores each into a fresh file (best of three), and prints the
//! times, the bucket's throughput as a share of the folder's, and the requests per GiB.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use emrest_repo::{DiskIndex, Durability, NoControl, Repository, RequestCounts, Storage};
use emrest_s3::{S3Location, S3Storage};

const CS: u32 = 16 * 1024;

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let Some(g) = emrest_testkit::garage::garage() else {
        eprintln!("s3_bench: needs garage (cargo install garage --locked --version 2.5.0)");
        std::process::exit(2);
    };
    let work = tempfile::tempdir().expect("temporary folder");
    let image = work.path().join("disk.img");
    write_image(&image, mib << 20);
    let src = std::fs::File::open(&image).expect("open the image");
    let gib = mib as f64 / 1024.0;
    println!(
        "# {mib} MiB image (3/4 random, 1/8 text, 1/8 zero), Garage {} set up in {} ms",
        g.endpoint,
        g.setup_time.as_millis()
    );

    let folder =
        Repository::open_with_chunk_size(&work.path().join("repo"), Durability::NoSync, CS)
            .expect("folder repository");
    let s3 = Arc::new(
        S3Storage::with_key(
            S3Location::parse(&g.fresh_url("bench")).expect("address"),
            &g.key_id,
            &g.secret,
            Some(&work.path().join("cache")),
        )
        .expect("bucket"),
    );
    let bucket =
        Repository::open_storage(s3.clone(), Durability::NoSync, CS).expect("bucket repository");

    let (fi, f_backup) = timed(|| backup(&folder, &src, mib << 20));
    let before = s3.requests().unwrap_or_default();
    let (bi, b_backup) = timed(|| backup(&bucket, &src, mib << 20));
    let up = s3.requests().unwrap_or_default().since(&before);

    let f_restore = best_of(3, || restore(&folder, &fi, work.path()));
    let before = s3.requests().unwrap_or_default();
    let b_restore = best_of(3, || restore(&bucket, &bi, work.path()));
    let down = s3.requests().unwrap_or_default().since(&before);

    raw_gets(&s3);
    let rate = |d: Duration| mib as f64 / d.as_secs_f64();
    println!("| operation | folder | bucket (Garage, loopback) | bucket/folder throughput |");
    println!("|---|---|---|---|");
    println!(
        "| backup | {:.3} s ({:.0} MiB/s) | {:.3} s ({:.0} MiB/s) | {:.2}× |",
        f_backup.as_secs_f64(),
        rate(f_backup),
        b_backup.as_secs_f64(),
        rate(b_backup),
        f_backup.as_secs_f64() / b_backup.as_secs_f64()
    );
    println!(
        "| full restore (best of 3) | {:.3} s ({:.0} MiB/s) | {:.3} s ({:.0} MiB/s) | {:.2}× |",
        f_restore.as_secs_f64(),
        rate(f_restore),
        b_restore.as_secs_f64(),
        rate(b_restore),
        f_restore.as_secs_f64() / b_restore.as_secs_f64()
    );
    println!(
        "backup requests: {up}; {:.1} PUTs per GiB backed up",
        (up.put + up.multipart) as f64 / gib
    );
    let per_restore = |c: &RequestCounts| c.get as f64 / 3.0 / gib;
    println!(
        "restore requests (3 restores): {down}; {:.1} GETs per GiB restored",
        per_restore(&down)
    );
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap_or_default()
}

fn backup(repo: &Repository, src: &std::fs::File, size: u64) -> DiskIndex {
    let (index, _) = repo
        .backup_disk(src, size, None, None, &NoControl)
        .expect("backup");
    repo.put_index("bench.disk0", &index).expect("index");
    index
}

fn restore(repo: &Repository, index: &DiskIndex, dir: &std::path::Path) -> Duration {
    let out = dir.join("restored.img");
    let _ = std::fs::remove_file(&out);
    let target = std::fs::File::create(&out).expect("target");
    let t = Instant::now();
    let plan = repo.plan_restore(index, None, &NoControl).expect("plan");
    repo.apply_restore(index, &plan, &target, &NoControl)
        .expect("restore");
    target.sync_all().expect("fsync");
    t.elapsed()
}

/// `len` bytes: per 1 MiB, 3/4 pseudo-random, 1/8 text, 1/8 zero.
fn write_image(path: &std::path::Path, len: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("image"));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        for b in block[..768 << 10].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for (i, b) in block[768 << 10..896 << 10].iter_mut().enumerate() {
            *b = b"emrest restores disks "[i % 22];
        }
        block[896 << 10..].fill(0);
        f.write_all(&block).expect("write the image");
    }
    f.flush().expect("write the image");
}

/// Raw GET throughput of the bucket's packs: whole objects, one stream and four.
fn raw_gets(s3: &S3Storage) {
    let packs = s3.list("packs/").expect("list");
    let t = Instant::now();
    let mut bytes = 0;
    for p in &packs {
        bytes += s3.get(p).expect("get").0.len();
    }
    let one = bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::thread::scope(|sc| {
        for chunk in packs.chunks(packs.len().div_ceil(4)) {
            sc.spawn(move || {
                for p in chunk {
                    s3.get(p).expect("get");
                }
            });
        }
    });
    let four = bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    println!("raw GETs of whole packs: {one:.0} MiB/s on one stream, {four:.0} MiB/s on four");
    // The same bytes stored again under other names, four PUTs at a time.
    let t = Instant::now();
    std::thread::scope(|sc| {
        for (n, chunk) in packs.chunks(packs.len().div_ceil(4)).enumerate() {
            sc.spawn(move || {
                for (i, p) in chunk.iter().enumerate() {
                    let (bytes, _) = s3.get(p).expect("get");
                    s3.put(&format!("raw/{n}-{i}"), &bytes).expect("put");
                }
            });
        }
    });
    let both = bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    println!("raw GET then PUT of each pack, four at a time: {both:.0} MiB/s (the store's ingest bounds backups)");
    for key in s3.list("raw/").expect("list") {
        let _ = s3.delete(&key);
    }
}
