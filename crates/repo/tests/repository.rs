//! Behaviour of the repository as its users (core's backup and restore engines) rely on it.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use emrest_repo::{
    ChunkDigest, ChunkLocation, ChunkProblem, Control, DiskIndex, Durability, NoControl, RepoError,
    Repository, TrackedChanges, Writes, DEFAULT_CHUNK_SIZE,
};
use rand::{Rng, SeedableRng};

const CS: u32 = 64 * 1024;
const CSU: usize = CS as usize;

/// Test image: 48 chunks plus a short tail — random, text-like and zero regions.
const IMAGE_SIZE: u64 = 48 * CS as u64 + 12_345;

fn image_bytes(seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut img = vec![0u8; IMAGE_SIZE as usize];
    // chunks 0..16 random, 16..32 text-like, 32..40 zero, 40.. random again, chunk 44 zero.
    rng.fill(&mut img[..16 * CSU]);
    let words = [
        "backup ", "restore ", "veeam ", "chunk ", "disk ", "emrest\n",
    ];
    let mut pos = 16 * CSU;
    while pos < 32 * CSU {
        let w = words[rng.gen_range(0..words.len())].as_bytes();
        let n = w.len().min(32 * CSU - pos);
        img[pos..pos + n].copy_from_slice(&w[..n]);
        pos += n;
    }
    rng.fill(&mut img[40 * CSU..]);
    img[44 * CSU..45 * CSU].fill(0);
    img
}

/// Chunk numbers of the test image that are all zero.
const ZERO_CHUNKS: [usize; 9] = [32, 33, 34, 35, 36, 37, 38, 39, 44];

fn write_file(path: &Path, bytes: &[u8]) -> File {
    fs::write(path, bytes).unwrap();
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

fn open_repo(dir: &Path) -> Repository {
    Repository::open_with_chunk_size(&dir.join("repo"), Durability::NoSync, CS).unwrap()
}

/// A repository in a fresh folder holding one backup of `img` (also written to `a.img`).
fn backed_up(img: &[u8]) -> (tempfile::TempDir, Repository, DiskIndex) {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let src = write_file(&dir.path().join("a.img"), img);
    let (index, _) = repo
        .backup_disk(&src, IMAGE_SIZE, None, None, &NoControl)
        .unwrap();
    (dir, repo, index)
}

/// Where chunk `d` is stored (it must be).
fn location(repo: &Repository, d: &ChunkDigest) -> ChunkLocation {
    repo.chunk_location(d).expect("chunk is stored")
}

/// Flips bits in the stored record of `d`, `from_end` bytes before its end (or at `from_start`).
fn damage(repo: &Repository, d: &ChunkDigest, at: impl Fn(u64) -> u64, xor: u8) {
    let loc = location(repo, d);
    let mut bytes = fs::read(&loc.pack).unwrap();
    let pos = (loc.offset + at(loc.len)) as usize;
    bytes[pos] ^= xor;
    fs::write(&loc.pack, &bytes).unwrap();
}

/// Makes `d` missing the way the repository allows: garbage collection with every other
/// chunk of `index` live.
fn lose_chunk(repo: &Repository, index: &DiskIndex, d: &ChunkDigest) {
    let live: HashSet<ChunkDigest> = index.referenced().copied().filter(|x| x != d).collect();
    repo.gc(&live, Duration::ZERO).unwrap();
    assert!(!repo.has_chunk(d));
}

/// Every pack file of the repository.
fn pack_files(repo: &Repository) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in fs::read_dir(repo.root().join("packs")).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for f in fs::read_dir(sub).unwrap() {
                out.push(f.unwrap().path());
            }
        }
    }
    out
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            out.push(path.clone());
        }
        if entry.file_type().unwrap().is_dir() {
            out.extend(temp_files(&path));
        }
    }
    out
}

/// Counts progress bytes and cancels once `cancel_after` chunks were processed.
struct Probe {
    chunks: AtomicU64,
    bytes: AtomicU64,
    cancel_after: u64,
}

impl Probe {
    fn new(cancel_after: u64) -> Probe {
        Probe {
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            cancel_after,
        }
    }
}

impl Control for Probe {
    fn cancelled(&self) -> bool {
        self.chunks.load(Ordering::SeqCst) >= self.cancel_after
    }
    fn progress(&self, bytes: u64) {
        self.chunks.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(bytes, Ordering::SeqCst);
    }
}

/// Backs up `img` (written to `dir/name`) and returns index and stats.
fn backup(
    repo: &Repository,
    dir: &Path,
    name: &str,
    img: &[u8],
) -> (DiskIndex, emrest_repo::BackupStats) {
    let src = write_file(&dir.join(name), img);
    repo.backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap()
}

fn restore_fresh(repo: &Repository, index: &DiskIndex, path: &Path) -> Vec<u8> {
    let target = File::create(path).unwrap();
    let plan = repo.plan_restore(index, None, &NoControl).unwrap();
    repo.apply_restore(index, &plan, &target, &NoControl)
        .unwrap();
    fs::read(path).unwrap()
}

#[test]
fn repository_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Repository>();
}

#[test]
fn backup_then_fresh_restore_reproduces_the_image_and_stores_zero_chunks_as_holes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(1);
    let src = write_file(&dir.path().join("disk.img"), &img);
    let probe = Probe::new(u64::MAX);

    let (index, stats) = repo
        .backup_disk(&src, IMAGE_SIZE, None, None, &probe)
        .unwrap();
    repo.put_index("vm1-disk0", &index).unwrap();
    let index = repo.get_index("vm1-disk0").unwrap();

    assert_eq!(index.disk_size, IMAGE_SIZE);
    assert_eq!(index.chunk_size, CS);
    assert_eq!(index.chunks.len(), 49);
    assert_eq!(index.chunk_range(48), (48 * CS as u64, 12_345));
    let holes: Vec<usize> = (0..49).filter(|&i| index.chunks[i].is_none()).collect();
    assert_eq!(holes, ZERO_CHUNKS);
    assert_eq!(stats.chunks_total, 49);
    assert_eq!(stats.chunks_read, 49);
    assert_eq!(stats.chunks_zero, 9);
    assert_eq!(stats.chunks_new + stats.chunks_deduplicated, 40);
    assert_eq!(stats.bytes_read, IMAGE_SIZE);
    assert_eq!(probe.bytes.load(Ordering::SeqCst), IMAGE_SIZE);
    // Each distinct data chunk stored once, none for holes, in a few packs; text compresses.
    let distinct: HashSet<_> = index.referenced().copied().collect();
    let mut records: Vec<_> = distinct.iter().map(|d| location(&repo, d)).collect();
    records.sort_by_key(|l| (l.pack.clone(), l.offset));
    records.dedup();
    assert_eq!(records.len(), distinct.len());
    assert!((1..=8).contains(&pack_files(&repo).len()));
    assert_eq!(stats.chunks_new, distinct.len() as u64);
    assert_eq!(repo.stored_bytes().unwrap(), stats.bytes_stored);
    assert!(stats.bytes_stored < IMAGE_SIZE - 9 * CS as u64 - 8 * CS as u64);

    let target_path = dir.path().join("restored.img");
    let restored = restore_fresh(&repo, &index, &target_path);
    assert_eq!(restored.len(), img.len());
    assert_eq!(blake3::hash(&restored), blake3::hash(&img));
    // Holes were not written: the fresh target stays sparse there.
    let allocated = fs::metadata(&target_path).unwrap().blocks() * 512;
    assert!(
        allocated <= IMAGE_SIZE - 8 * CS as u64,
        "{allocated} bytes allocated for a {IMAGE_SIZE}-byte image with 9 zero chunks"
    );
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

/// Whether files in `dir` take `O_DIRECT` writes (ext4 and xfs do; tmpfs may not).
fn direct_writes_work(dir: &Path) -> bool {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let Ok(f) = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join("probe"))
    else {
        return false;
    };
    // An aligned buffer: 4 KiB inside an 8 KiB allocation.
    let raw = vec![7u8; 8192];
    let at = raw.as_ptr().align_offset(4096);
    f.write_all_at(&raw[at..at + 4096], 0).is_ok()
}

#[test]
fn fresh_restore_is_byte_exact_and_sparse_with_direct_writes_and_with_the_buffered_fallback() {
    let dir = tempfile::tempdir().unwrap();
    // 20 000-byte chunks: write runs start and end off 4 KiB boundaries, and the image ends
    // in a short chunk, so direct writes need buffered heads and tails.
    let img = image_bytes(5);
    let cs = 20_000u32;
    // (direct, writes): a deferred restore writes the same bytes, only its flush is the
    // caller's.
    for (direct, writes) in [
        (true, Writes::Durable),
        (false, Writes::Durable),
        (true, Writes::Deferred),
    ] {
        let root = dir.path().join(format!("repo-{direct}-{writes:?}"));
        let repo = Repository::open_with_chunk_size(&root, Durability::Fsync, cs)
            .unwrap()
            .with_direct_io(direct);
        let (index, _) = backup(&repo, dir.path(), "src.img", &img);
        let path = dir.path().join(format!("restored-{direct}-{writes:?}.img"));
        let target = File::create(&path).unwrap();
        let plan = repo.plan_restore(&index, None, &NoControl).unwrap();
        let stats = repo
            .apply_restore_with(&index, &plan, &target, &NoControl, writes)
            .unwrap();
        drop(target);
        let restored = fs::read(&path).unwrap();
        assert_eq!(restored.len(), img.len(), "direct {direct}");
        assert!(restored == img, "direct {direct}: restored bytes differ");
        assert_eq!(stats.bytes_written, plan.bytes(&index));
        if direct && direct_writes_work(dir.path()) {
            // Most of the data went around the page cache (all but the unaligned edges).
            assert!(
                stats.bytes_direct > stats.bytes_written / 2,
                "{} of {} bytes written directly",
                stats.bytes_direct,
                stats.bytes_written
            );
        } else if !direct {
            assert_eq!(stats.bytes_direct, 0);
        }
        // The 512 KiB zero region (and zero chunk 44) stay holes either way.
        let allocated = fs::metadata(&path).unwrap().blocks() * 512;
        assert!(
            allocated <= IMAGE_SIZE - 400 * 1024,
            "direct {direct}: {allocated} bytes allocated for {IMAGE_SIZE}"
        );
    }
}

#[test]
fn identical_second_backup_stores_no_new_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(2);
    let (first, _) = backup(&repo, dir.path(), "a.img", &img);
    let before = repo.stored_bytes().unwrap();

    let (second, stats) = backup(&repo, dir.path(), "b.img", &img);
    assert_eq!(second, first);
    assert_eq!(stats.chunks_new, 0);
    assert_eq!(stats.bytes_stored, 0);
    assert_eq!(stats.chunks_deduplicated, 40);
    assert_eq!(repo.stored_bytes().unwrap(), before);
}

#[test]
fn scattered_byte_changes_store_only_the_changed_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let mut img = image_bytes(3);
    let (first, _) = backup(&repo, dir.path(), "a.img", &img);

    // One byte each in a random, a text, a zero chunk and the short tail.
    let touched = [3usize, 20, 35, 48];
    for &c in &touched {
        let pos = c * CSU + 1000;
        img[pos] = img[pos].wrapping_add(1);
    }
    let (second, stats) = backup(&repo, dir.path(), "b.img", &img);
    assert_eq!(stats.chunks_new, 4);
    assert_eq!(stats.chunks_zero, 8);
    let differing: Vec<usize> = (0..49)
        .filter(|&i| first.chunks[i] != second.chunks[i])
        .collect();
    assert_eq!(differing, touched);
    assert_eq!(
        restore_fresh(&repo, &second, &dir.path().join("r.img")),
        img
    );
}

#[test]
fn changed_block_tracking_reads_only_changed_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let mut img = image_bytes(4);
    let (first, _) = backup(&repo, dir.path(), "a.img", &img);

    img[5 * CSU + 7] ^= 0xff;
    img[48 * CSU + 7] ^= 0xff;
    let mut changed = vec![false; 49];
    changed[5] = true;
    changed[48] = true;
    let src = write_file(&dir.path().join("b.img"), &img);
    let probe = Probe::new(u64::MAX);
    let (second, stats) = repo
        .backup_disk(&src, IMAGE_SIZE, Some(&first), Some(&changed), &probe)
        .unwrap();

    assert_eq!(stats.chunks_read, 2);
    assert_eq!(stats.bytes_read, CS as u64 + 12_345);
    assert_eq!(stats.chunks_new, 2);
    assert_eq!(probe.bytes.load(Ordering::SeqCst), IMAGE_SIZE);
    // Same index as a full read would give.
    let (full, _) = backup(&repo, dir.path(), "c.img", &img);
    assert_eq!(second, full);
}

#[test]
fn changed_block_tracking_rereads_chunks_missing_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(5);
    let (first, _) = backup(&repo, dir.path(), "a.img", &img);
    let lost = first.chunks[0].unwrap();
    lose_chunk(&repo, &first, &lost);

    let src = File::open(dir.path().join("a.img")).unwrap();
    let (second, stats) = repo
        .backup_disk(
            &src,
            IMAGE_SIZE,
            Some(&first),
            Some(&[false; 49]),
            &NoControl,
        )
        .unwrap();
    assert_eq!(stats.chunks_read, 1);
    assert_eq!(stats.chunks_new, 1);
    assert_eq!(second, first);
    assert!(repo.has_chunk(&lost));
}

#[test]
fn changed_block_tracking_of_the_wrong_length_is_ignored_and_everything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(6);
    let (first, _) = backup(&repo, dir.path(), "a.img", &img);
    let src = File::open(dir.path().join("a.img")).unwrap();
    let (_, stats) = repo
        .backup_disk(
            &src,
            IMAGE_SIZE,
            Some(&first),
            Some(&[false; 10]),
            &NoControl,
        )
        .unwrap();
    assert_eq!(stats.chunks_read, 49);
}

#[test]
fn plan_against_a_modified_target_lists_exactly_the_differing_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(7);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    let target_path = dir.path().join("target.img");
    let mut current = img.clone();
    current[2 * CSU + 9] ^= 1; // data chunk changed
    current[21 * CSU..22 * CSU].fill(0); // data chunk zeroed
    current[36 * CSU + 100] = 7; // hole became non-zero
    current[48 * CSU + 12_000] ^= 1; // short tail changed
    let target = write_file(&target_path, &current);

    let plan = repo
        .plan_restore(&index, Some(&target), &NoControl)
        .unwrap();
    assert_eq!(plan.chunks, vec![2, 21, 36, 48]);
    assert_eq!(plan.chunks_examined, 49);
    assert_eq!(plan.bytes(&index), 3 * CS as u64 + 12_345);

    repo.check_plan(&index, &plan, &NoControl).unwrap();
    let stats = repo
        .apply_restore(&index, &plan, &target, &NoControl)
        .unwrap();
    assert_eq!(stats.chunks_written, 4);
    assert_eq!(stats.bytes_written, plan.bytes(&index));
    assert_eq!(fs::read(&target_path).unwrap(), img);
    // Now identical: nothing left to do.
    let again = repo
        .plan_restore(&index, Some(&target), &NoControl)
        .unwrap();
    assert!(again.chunks.is_empty());
}

#[test]
fn plan_treats_a_short_target_as_zero_filled_and_apply_sets_the_length() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(8);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    let target_path = dir.path().join("target.img");
    // The target holds only the first 40 chunks: the rest reads as zeros.
    let target = write_file(&target_path, &img[..40 * CSU]);
    let plan = repo
        .plan_restore(&index, Some(&target), &NoControl)
        .unwrap();
    assert_eq!(
        plan.chunks,
        (40..49).filter(|&i| i != 44).collect::<Vec<_>>()
    );
    repo.apply_restore(&index, &plan, &target, &NoControl)
        .unwrap();
    assert_eq!(fs::read(&target_path).unwrap(), img);

    let mut longer = img.clone();
    longer.extend_from_slice(b"trailing garbage");
    let target = write_file(&target_path, &longer);
    let plan = repo
        .plan_restore(&index, Some(&target), &NoControl)
        .unwrap();
    repo.apply_restore(&index, &plan, &target, &NoControl)
        .unwrap();
    assert_eq!(fs::read(&target_path).unwrap(), img);
}

/// An image of 4 KiB chunks (the smallest chunk size): `kinds` cycles per chunk through
/// `b'r'` random (stored as is), `b't'` text (compressed) and `b'0'` zeros (a hole), and a short
/// tail ends it. A 4 MiB write run then holds up to 1024 chunks.
fn mixed_small_chunk_image(seed: u64, chunks: usize, kinds: &[u8]) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut img = vec![0u8; chunks * 4096 + 1234];
    for (c, piece) in img.chunks_mut(4096).enumerate() {
        match kinds[c % kinds.len()] {
            b'r' => rng.fill(piece),
            b't' => {
                for (k, b) in piece.iter_mut().enumerate() {
                    *b = b"restore the disk, chunk by chunk\n"[(k + c) % 33];
                }
            }
            _ => {}
        }
    }
    img
}

#[test]
fn fresh_restore_of_small_mixed_chunks_is_byte_exact_and_sparse_through_both_write_paths() {
    let dir = tempfile::tempdir().unwrap();
    // 2 560 chunks of 4 KiB = 10 MiB: 4 MiB write runs and read stretches of up to 1 024
    // records, stored as is and compressed side by side, broken by holes.
    for (name, kinds) in [("random", &b"r"[..]), ("mixed", &b"rrtrt0rrrrtt"[..])] {
        let img = mixed_small_chunk_image(21, 2560, kinds);
        let zero_chunks = (0..2560).filter(|c| kinds[c % kinds.len()] == b'0').count() as u64;
        for direct in [true, false] {
            let root = dir.path().join(format!("repo-{name}-{direct}"));
            let repo = Repository::open_with_chunk_size(&root, Durability::NoSync, 4096)
                .unwrap()
                .with_direct_io(direct);
            let (index, _) = backup(&repo, dir.path(), &format!("{name}.img"), &img);
            let path = dir.path().join(format!("restored-{name}-{direct}.img"));
            let target = File::create(&path).unwrap();
            let plan = repo.plan_restore(&index, None, &NoControl).unwrap();
            let stats = repo
                .apply_restore(&index, &plan, &target, &NoControl)
                .unwrap();
            drop(target);
            let what = format!("{name}, direct {direct}");
            assert!(
                fs::read(&path).unwrap() == img,
                "{what}: restored bytes differ"
            );
            // Every data chunk (and the tail) written once, the zero chunks not at all.
            assert_eq!(stats.chunks_written, 2561 - zero_chunks, "{what}");
            assert_eq!(
                stats.bytes_written,
                img.len() as u64 - zero_chunks * 4096,
                "{what}"
            );
            if !direct {
                assert_eq!(stats.bytes_direct, 0, "{what}");
            }
            let allocated = fs::metadata(&path).unwrap().blocks() * 512;
            assert!(
                allocated <= stats.bytes_written + 64 * 1024,
                "{what}: {allocated} bytes allocated for {} written",
                stats.bytes_written
            );
        }
    }
}

#[test]
fn a_damaged_record_in_the_middle_of_a_read_stretch_fails_the_restore_naming_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let img = mixed_small_chunk_image(22, 600, b"rrt");
    let repo = Repository::open_with_chunk_size(&dir.path().join("repo"), Durability::NoSync, 4096)
        .unwrap();
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    // A chunk stored as is (read in place) and a compressed one, both inside a stretch.
    for (chunk, what) in [(300usize, "stored as is"), (302, "compressed")] {
        let d = index.chunks[chunk].unwrap();
        damage(&repo, &d, |len| len - 10, 0x40);
        let target = File::create(dir.path().join(format!("t-{chunk}.img"))).unwrap();
        let plan = repo.plan_restore(&index, None, &NoControl).unwrap();
        match repo.apply_restore(&index, &plan, &target, &NoControl) {
            Err(RepoError::ChunkCorrupt { digest, .. }) => assert_eq!(digest, d, "{what}"),
            other => panic!("{what}: expected ChunkCorrupt, got {other:?}"),
        }
        damage(&repo, &d, |len| len - 10, 0x40);
    }
}

#[test]
fn flipped_byte_in_a_chunk_file_is_reported_as_corrupt_naming_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(9);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    for (chunk, what) in [(0usize, "raw random"), (20, "zstd text")] {
        let d = index.chunks[chunk].unwrap();
        damage(&repo, &d, |len| len - 10, 0x40);
        match repo.read_chunk(&d) {
            Err(e @ RepoError::ChunkCorrupt { .. }) => {
                assert!(e.to_string().contains(&d.to_string()), "{what}: {e}")
            }
            other => panic!("{what}: expected ChunkCorrupt, got {other:?}"),
        }
    }
}

/// A chunk whose bytes in its pack are wrong is reported, by a read, by verification and by
/// a restore (through a stretch read and one chunk at a time), naming the pack file on disk
/// and the record's offset, and saying the chunk's bytes are damaged.
#[test]
fn a_damaged_chunk_names_its_pack_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(31);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    let d = index.chunks[5].unwrap();
    let loc = location(&repo, &d);
    damage(&repo, &d, |len| len / 2, 0x08);
    let pack = loc.pack.display().to_string();
    let check = |e: &RepoError, what: &str| {
        match e {
            RepoError::ChunkCorrupt {
                digest,
                at: Some(at),
                ..
            } => {
                assert_eq!(*digest, d, "{what}");
                assert_eq!((at.pack.as_str(), at.offset), (pack.as_str(), loc.offset));
            }
            other => panic!("{what}: expected a located ChunkCorrupt, got {other:?}"),
        }
        let m = e.to_string();
        for part in [
            format!("chunk {d} is corrupt: "),
            format!(
                "(the chunk's bytes in {pack} at offset {} are damaged)",
                loc.offset
            ),
        ] {
            assert!(m.contains(&part), "{what}: {m} lacks {part}");
        }
    };
    for handle in [&repo, &open_repo(dir.path())] {
        check(&handle.read_chunk(&d).unwrap_err(), "read");
        let problems = handle.verify_chunks(index.referenced(), &NoControl);
        assert_eq!(problems.len(), 1);
        match &problems[0] {
            ChunkProblem::Corrupt {
                digest,
                at: Some(at),
                ..
            } => assert_eq!(
                (*digest, at.offset, at.pack.as_str()),
                (d, loc.offset, &*pack)
            ),
            other => panic!("verify: {other:?}"),
        }
        assert!(problems[0].to_string().contains(&pack), "{}", problems[0]);
        let target = File::create(dir.path().join("t.img")).unwrap();
        let plan = handle.plan_restore(&index, None, &NoControl).unwrap();
        check(
            &handle
                .apply_restore(&index, &plan, &target, &NoControl)
                .unwrap_err(),
            "fresh restore",
        );
        // In place, against a target that differs only in that chunk: read on its own.
        let mut current = img.clone();
        current[5 * CSU] ^= 1;
        let target = write_file(&dir.path().join("cur.img"), &current);
        let plan = handle
            .plan_restore(&index, Some(&target), &NoControl)
            .unwrap();
        check(
            &handle.check_plan(&index, &plan, &NoControl).unwrap_err(),
            "check before an in-place restore",
        );
    }
}

/// The offset of a version 2 pack's index, from its footer.
fn pack_index_offset(bytes: &[u8]) -> usize {
    let f = &bytes[bytes.len() - 64..];
    u64::from_le_bytes(f[..8].try_into().unwrap()) as usize
}

/// A pack whose own index is damaged (an entry's codec byte, or the footer's checksum of
/// the entries) makes its chunks unreadable, and a fresh handle says so naming the pack file
/// and its chunk count, not that the chunks are missing; a chunk in no pack stays missing.
#[test]
fn a_damaged_pack_index_is_reported_naming_the_pack_not_as_missing_chunks() {
    for (what, at) in [
        (
            "an entry's codec byte",
            (|b: &[u8]| pack_index_offset(b) + 32) as fn(&[u8]) -> usize,
        ),
        ("the footer's index checksum", |b: &[u8]| b.len() - 40),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_repo(dir.path());
        let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(32));
        let d = index.chunks[7].unwrap();
        let loc = location(&repo, &d);
        let pack = loc.pack.display().to_string();
        let mut bytes = fs::read(&loc.pack).unwrap();
        let pos = at(&bytes);
        bytes[pos] ^= 0x10;
        fs::write(&loc.pack, &bytes).unwrap();
        drop(repo);

        let repo = open_repo(dir.path());
        let damaged = repo.damaged_packs();
        assert_eq!(damaged.len(), 1, "{what}");
        let emrest_repo::PackDamage {
            pack: dp,
            reason,
            chunks,
        } = &damaged[0];
        assert_eq!(dp, &pack, "{what}");
        let n = chunks.unwrap_or_else(|| panic!("{what}: no chunk count"));
        assert!(n >= 1, "{what}");
        let check = |e: &RepoError, how: &str| {
            match e {
                RepoError::PackIndexCorrupt {
                    digest,
                    pack: p,
                    reason: r,
                    chunks: c,
                } => assert_eq!(
                    (digest, p, r, *c),
                    (&d, &pack, reason, Some(n)),
                    "{what}: {how}"
                ),
                other => panic!("{what}: {how}: expected PackIndexCorrupt, got {other:?}"),
            }
            let m = e.to_string();
            assert!(
                m.contains(&format!("the index of pack {pack} is damaged ({reason})"))
                    && m.contains(&format!("its {n} chunks cannot be read"))
                    && !m.contains("missing"),
                "{what}: {how}: {m}"
            );
        };
        check(&repo.read_chunk(&d).unwrap_err(), "read");
        check(&repo.not_found(&d), "not found");
        assert!(!repo.has_chunk(&d));
        let problems = repo.verify_chunks([&d], &NoControl);
        assert!(
            matches!(&problems[..], [ChunkProblem::PackIndexCorrupt { digest, pack: p, .. }] if *digest == d && *p == pack),
            "{what}: {problems:?}"
        );
        let target = File::create(dir.path().join("t.img")).unwrap();
        let restore = repo
            .plan_restore(&index, None, &NoControl)
            .and_then(|plan| repo.apply_restore(&index, &plan, &target, &NoControl));
        match restore {
            Err(RepoError::PackIndexCorrupt { pack: p, .. }) => assert_eq!(p, pack, "{what}"),
            other => panic!("{what}: restore: expected PackIndexCorrupt, got {other:?}"),
        }
        assert!(repo.check_stored(&index).unwrap().missing.is_some());
        // A chunk that no pack lists is still missing.
        let never = ChunkDigest::of(b"never stored");
        assert!(
            matches!(repo.not_found(&never), RepoError::ChunkMissing { digest } if digest == never)
        );
    }
}

#[test]
fn deleted_pack_file_is_reported_as_missing_naming_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(10));
    let d = index.chunks[3].unwrap();
    fs::remove_file(location(&repo, &d).pack).unwrap();
    // The handle that knew the pack finds the file gone; a new handle does not know the chunk.
    assert!(matches!(repo.read_chunk(&d), Err(RepoError::ChunkMissing { digest }) if digest == d));
    let repo = open_repo(dir.path());
    assert!(!repo.has_chunk(&d));
    match repo.read_chunk(&d) {
        Err(e @ RepoError::ChunkMissing { .. }) => assert!(e.to_string().contains(&d.to_string())),
        other => panic!("expected ChunkMissing, got {other:?}"),
    }
}

#[test]
fn check_plan_fails_on_a_bad_chunk_before_the_target_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(11);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    let mut current = img.clone();
    for c in [1usize, 30, 47] {
        current[c * CSU] ^= 1;
    }
    let target_path = dir.path().join("target.img");
    let target = write_file(&target_path, &current);
    let plan = repo
        .plan_restore(&index, Some(&target), &NoControl)
        .unwrap();
    assert_eq!(plan.chunks, vec![1, 30, 47]);

    let bad = index.chunks[47].unwrap();
    lose_chunk(&repo, &index, &bad);
    assert!(matches!(
        repo.check_plan(&index, &plan, &NoControl),
        Err(RepoError::ChunkMissing { digest }) if digest == bad
    ));
    assert_eq!(fs::read(&target_path).unwrap(), current);

    // apply_restore verifies too, and never writes the bad chunk.
    assert!(matches!(
        repo.apply_restore(&index, &plan, &target, &NoControl),
        Err(RepoError::ChunkMissing { digest }) if digest == bad
    ));
    assert_eq!(
        &fs::read(&target_path).unwrap()[47 * CSU..48 * CSU],
        &current[47 * CSU..48 * CSU]
    );
}

#[test]
fn damaged_or_missing_index_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(12));
    repo.put_index("point-1.disk0", &index).unwrap();
    let path = repo.root().join("indexes").join("point-1.disk0.idx");
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::write(&path, &bytes).unwrap();
    match repo.get_index("point-1.disk0") {
        Err(e @ RepoError::IndexCorrupt { .. }) => assert!(e.to_string().contains("point-1.disk0")),
        other => panic!("expected IndexCorrupt, got {other:?}"),
    }
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        repo.get_index("point-1.disk0"),
        Err(RepoError::IndexCorrupt { .. })
    ));
    assert!(matches!(
        repo.get_index("point-2"),
        Err(RepoError::IndexMissing { name }) if name == "point-2"
    ));
    assert!(matches!(
        repo.delete_index("point-2"),
        Err(RepoError::IndexMissing { .. })
    ));
}

#[test]
fn invalid_index_names_are_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let index = DiskIndex {
        disk_size: 0,
        chunk_size: CS,
        chunks: vec![],
    };
    for bad in ["../x", "a/b", "", ".hidden", "a b", &"n".repeat(129)] {
        let invalid = |r: Result<(), RepoError>| matches!(r, Err(RepoError::InvalidName { name }) if name == bad);
        assert!(invalid(repo.put_index(bad, &index)), "put {bad:?}");
        assert!(invalid(repo.get_index(bad).map(|_| ())), "get {bad:?}");
        assert!(invalid(repo.delete_index(bad)), "delete {bad:?}");
    }
    assert_eq!(repo.list_indexes().unwrap(), Vec::<String>::new());
    assert!(!dir.path().join("x.idx").exists());
}

#[test]
fn indexes_are_listed_sorted_replaced_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(13));
    let empty = DiskIndex {
        disk_size: 0,
        chunk_size: CS,
        chunks: vec![],
    };
    repo.put_index("b", &index).unwrap();
    repo.put_index("a", &empty).unwrap();
    repo.put_index("a", &index).unwrap();
    assert_eq!(repo.list_indexes().unwrap(), vec!["a", "b"]);
    assert_eq!(repo.get_index("a").unwrap(), index);
    repo.delete_index("a").unwrap();
    assert_eq!(repo.list_indexes().unwrap(), vec!["b"]);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn inconsistent_index_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let bad = DiskIndex {
        disk_size: 10 * CS as u64,
        chunk_size: CS,
        chunks: vec![None; 3],
    };
    assert!(matches!(
        repo.put_index("bad", &bad),
        Err(RepoError::IndexCorrupt { .. })
    ));
    assert!(matches!(
        repo.get_index("bad"),
        Err(RepoError::IndexMissing { .. })
    ));
}

#[test]
fn cancellation_stops_backup_plan_and_restore_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(14);
    let src = write_file(&dir.path().join("a.img"), &img);

    let probe = Probe::new(5);
    let r = repo.backup_disk(&src, IMAGE_SIZE, None, None, &probe);
    assert!(matches!(r, Err(RepoError::Cancelled)), "{r:?}");
    assert!(probe.chunks.load(Ordering::SeqCst) < 49);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());

    let (index, _) = repo
        .backup_disk(&src, IMAGE_SIZE, None, None, &NoControl)
        .unwrap();
    let r = repo.plan_restore(&index, Some(&src), &Probe::new(5));
    assert!(matches!(r, Err(RepoError::Cancelled)), "{r:?}");
    let target = File::create(dir.path().join("t.img")).unwrap();
    let plan = repo.plan_restore(&index, None, &NoControl).unwrap();
    let r = repo.apply_restore(&index, &plan, &target, &Probe::new(5));
    assert!(matches!(r, Err(RepoError::Cancelled)), "{r:?}");
    let r = repo.check_plan(&index, &plan, &Probe::new(0));
    assert!(matches!(r, Err(RepoError::Cancelled)), "{r:?}");
}

#[test]
fn source_shorter_than_the_stated_size_is_an_io_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let src = write_file(&dir.path().join("a.img"), &vec![1u8; 3 * CSU]);
    match repo.backup_disk(&src, 4 * CS as u64, None, None, &NoControl) {
        Err(e @ RepoError::Io { .. }) => {
            assert!(e.to_string().contains(&format!("offset {}", 3 * CS)), "{e}")
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

fn set_age(path: &Path, age: Duration) {
    File::open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

#[test]
fn gc_removes_old_unreferenced_chunks_and_keeps_live_and_young_ones() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img_a = image_bytes(15);
    let mut img_b = img_a.clone();
    for c in [0usize, 17, 41] {
        img_b[c * CSU + 5] ^= 0x80;
    }
    let (a, _) = backup(&repo, dir.path(), "a.img", &img_a);
    let (b, _) = backup(&repo, dir.path(), "b.img", &img_b);
    repo.put_index("a", &a).unwrap();
    repo.put_index("b", &b).unwrap();
    repo.delete_index("a").unwrap();
    // Chunks of `a` that `b` does not share: 0, 17, 41. Packs are young: nothing goes.
    let live: HashSet<ChunkDigest> = b.referenced().copied().collect();
    let stats = repo.gc(&live, Duration::from_secs(3600)).unwrap();
    assert_eq!(stats.chunks_removed, 0);
    assert_eq!(stats.bytes_removed, 0);
    assert!(repo.has_chunk(&a.chunks[17].unwrap()));

    for f in pack_files(&repo) {
        set_age(&f, Duration::from_secs(7200));
    }
    let before = repo.stored_bytes().unwrap();
    let stats = repo.gc(&live, Duration::from_secs(3600)).unwrap();
    assert_eq!(stats.chunks_removed, 3);
    assert_eq!(stats.chunks_kept, live.len() as u64);
    for c in [0usize, 17, 41] {
        assert!(!repo.has_chunk(&a.chunks[c].unwrap()), "chunk {c}");
    }
    assert!(stats.bytes_removed > 0);
    assert_eq!(repo.stored_bytes().unwrap(), before - stats.bytes_removed);
    assert!(repo.verify_chunks(b.referenced(), &NoControl).is_empty());
    assert_eq!(restore_fresh(&repo, &b, &dir.path().join("r.img")), img_b);
    // A new handle sees the same: the rewritten packs are complete.
    let reopened = open_repo(dir.path());
    assert!(reopened
        .verify_chunks(b.referenced(), &NoControl)
        .is_empty());
    assert!(!reopened.has_chunk(&a.chunks[0].unwrap()));

    // Once nothing is live, every pack goes.
    let stats = repo.gc(&HashSet::new(), Duration::ZERO).unwrap();
    assert_eq!(stats.chunks_removed, live.len() as u64);
    assert!(pack_files(&repo).is_empty());
    assert_eq!(repo.stored_bytes().unwrap(), 0);
}

#[test]
fn backup_refreshes_reused_chunks_so_gc_grace_protects_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(16);
    let (first, _) = backup(&repo, dir.path(), "a.img", &img);
    for f in pack_files(&repo) {
        set_age(&f, Duration::from_secs(7200));
    }
    // The first index was never stored (or was deleted); a new backup reuses its chunks.
    let (second, stats) = backup(&repo, dir.path(), "b.img", &img);
    assert_eq!(stats.chunks_new, 0);
    let stats = repo.gc(&HashSet::new(), Duration::from_secs(3600)).unwrap();
    assert_eq!(stats.chunks_removed, 0);
    assert_eq!(second, first);
}

#[test]
fn verify_reports_every_missing_and_corrupt_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(17));
    assert!(repo
        .verify_chunks(index.referenced(), &NoControl)
        .is_empty());

    let missing = index.chunks[2].unwrap();
    let corrupt = index.chunks[25].unwrap();
    lose_chunk(&repo, &index, &missing);
    damage(&repo, &corrupt, |_| 0, 0x20); // the record's codec byte
    let unknown = ChunkDigest::of(b"never stored");

    let problems = repo.verify_chunks(
        index.referenced().chain(std::iter::once(&unknown)),
        &NoControl,
    );
    let mut expected = vec![missing, corrupt, unknown];
    expected.sort();
    assert_eq!(
        problems.iter().map(|p| *p.digest()).collect::<Vec<_>>(),
        expected
    );
    for p in &problems {
        match p {
            ChunkProblem::Missing(d) => assert!(*d == missing || *d == unknown),
            ChunkProblem::Corrupt {
                digest: d, reason, ..
            } => {
                assert_eq!(*d, corrupt);
                assert!(reason.contains("unknown codec"), "{reason}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn reopening_keeps_the_stored_chunk_size_and_removes_stale_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let repo = Repository::open_with_chunk_size(&root, Durability::Fsync, CS).unwrap();
    let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(18));
    repo.put_index("x", &index).unwrap();
    drop(repo);
    let stale = [
        root.join(".tmp-1-2-3"),
        root.join("indexes").join(".tmp-crashed"),
        root.join("packs").join(".tmp-half-written-pack"),
        root.join("packs").join("ab").join(".tmp-stale"),
    ];
    for p in &stale {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"partial").unwrap();
    }

    let repo = Repository::open(&root, Durability::Fsync).unwrap();
    assert_eq!(repo.chunk_size(), CS);
    assert_eq!(repo.root(), root.as_path());
    for p in &stale {
        assert!(!p.exists(), "{} survived open", p.display());
    }
    assert_eq!(repo.get_index("x").unwrap(), index);
}

#[test]
fn default_chunk_size_applies_to_new_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(&dir.path().join("new"), Durability::NoSync).unwrap();
    assert_eq!(repo.chunk_size(), DEFAULT_CHUNK_SIZE);
    assert!(dir.path().join("new").join("config").is_file());
}

#[test]
fn folders_that_are_not_repositories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let not_repo = |p: &Path| {
        matches!(
            Repository::open(p, Durability::NoSync),
            Err(RepoError::NotARepository { path, .. }) if path == p
        )
    };

    let busy = dir.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("photo.jpg"), b"x").unwrap();
    assert!(not_repo(&busy));

    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(not_repo(&file));

    let damaged = dir.path().join("damaged");
    Repository::open(&damaged, Durability::NoSync).unwrap();
    fs::write(damaged.join("config"), b"EMRESTRP garbage").unwrap();
    assert!(not_repo(&damaged));

    let bad_size =
        Repository::open_with_chunk_size(&dir.path().join("tiny"), Durability::NoSync, 100);
    assert!(matches!(bad_size, Err(RepoError::NotARepository { .. })));
}

#[test]
fn error_messages_name_what_they_are_about() {
    let d = ChunkDigest::of(b"x");
    let msgs = [
        RepoError::ChunkMissing { digest: d }.to_string(),
        RepoError::ChunkCorrupt {
            digest: d,
            at: None,
            reason: "bad".into(),
        }
        .to_string(),
    ];
    for m in msgs {
        assert!(m.contains(&d.to_string()), "{m}");
    }
    let m = RepoError::NotARepository {
        path: PathBuf::from("/srv/emrest/repo"),
        reason: "r".into(),
    }
    .to_string();
    assert!(m.contains("/srv/emrest/repo"), "{m}");
}

#[test]
fn in_place_restore_writes_only_the_differing_4k_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(19);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    let mut current = img.clone();
    // Two bytes in one block of chunk 2, one in a block of chunk 20, one in zero chunk 33,
    // and the last byte of the short tail.
    for pos in [
        2 * CSU + 10,
        2 * CSU + 4000,
        20 * CSU + 9000,
        33 * CSU + 5,
        img.len() - 1,
    ] {
        current[pos] ^= 0x11;
    }
    let target_path = dir.path().join("target.img");
    let target = write_file(&target_path, &current);
    let plan = repo
        .plan_restore(&index, Some(&target), &NoControl)
        .unwrap();
    assert_eq!(plan.chunks, vec![2, 20, 33, 48]);
    let stats = repo
        .apply_restore_in_place(&index, &plan, &target, &NoControl)
        .unwrap();
    assert_eq!(fs::read(&target_path).unwrap(), img);
    assert_eq!(stats.chunks_written, 4);
    // Three whole 4 KiB blocks, and the tail's last block (12 345 = 3 × 4096 + 57 bytes).
    assert_eq!(stats.bytes_written, 3 * 4096 + 57);
    // Nothing left to write the second time.
    let again = repo
        .apply_restore_in_place(&index, &plan, &target, &NoControl)
        .unwrap();
    assert_eq!((again.chunks_written, again.bytes_written), (0, 0));
}

#[test]
fn rollback_reads_each_candidate_once_and_writes_only_the_differing_blocks() {
    let img = image_bytes(31);
    let (dir, repo, index) = backed_up(&img);
    // Three 4 KiB blocks change: two in chunk 2 (adjacent), one in chunk 20; chunk 33 (a hole)
    // gets one non-zero block.
    let mut changed = img.clone();
    for at in [2 * CSU + 4096, 2 * CSU + 8192, 20 * CSU, 33 * CSU + 4096] {
        changed[at..at + 4096].fill(0xA5);
    }
    let target = write_file(&dir.path().join("t.img"), &changed);

    // Tracked: candidates 2, 20, 33 and the unchanged 7 — every data candidate is read from the
    // repository once, compared directly; the hole needs no read.
    let plan = repo
        .prepare_rollback(&index, &target, Some(&[2, 7, 20, 33]), &NoControl)
        .unwrap();
    assert_eq!(
        (plan.chunks_examined, plan.chunks_differ, plan.chunks_loaded),
        (4, 3, 3)
    );
    assert_eq!(plan.blocks_bytes(), 4 * 4096);
    // By digest: every chunk examined, only the two data chunks that differ are read.
    let plan = repo
        .prepare_rollback(&index, &target, None, &NoControl)
        .unwrap();
    assert_eq!(
        (plan.chunks_examined, plan.chunks_differ, plan.chunks_loaded),
        (49, 3, 2)
    );
    let stats = repo
        .apply_rollback(&index, &plan, &target, &NoControl, Writes::Durable)
        .unwrap();
    assert_eq!((stats.chunks_written, stats.bytes_written), (3, 4 * 4096));
    assert_eq!(fs::read(dir.path().join("t.img")).unwrap(), img);
}

#[test]
fn rollback_refuses_a_corrupt_chunk_before_writing_anything() {
    let img = image_bytes(32);
    let (dir, repo, index) = backed_up(&img);
    let mut changed = img.clone();
    changed[3 * CSU..3 * CSU + 4096].fill(7);
    let target = write_file(&dir.path().join("t.img"), &changed);
    let d = index.chunks[3].unwrap();
    let loc = location(&repo, &d);
    let pack = OpenOptions::new().write(true).open(&loc.pack).unwrap();
    use std::os::unix::fs::FileExt;
    pack.write_all_at(b"XXXX", loc.offset + loc.len - 8)
        .unwrap();
    let r = repo.prepare_rollback(&index, &target, None, &NoControl);
    assert!(
        matches!(r, Err(RepoError::ChunkCorrupt { digest, .. }) if digest == d),
        "{r:?}"
    );
    assert_eq!(fs::read(dir.path().join("t.img")).unwrap(), changed);
}

/// The test image with chunk 45 a copy of chunk 41 (one digest, two places).
fn image_with_a_repeated_chunk(seed: u64) -> Vec<u8> {
    let mut img = image_bytes(seed);
    img.copy_within(41 * CSU..42 * CSU, 45 * CSU);
    img
}

/// Blocks the guest wrote since the point: two adjacent ones in chunk 2, one in chunk 41 and
/// one in its twin 45, one in the hole 33, and the short tail's last 57 bytes.
const WRITTEN: [(u64, u64); 5] = [
    (2 * CS as u64 + 4096, 8192),
    (41 * CS as u64, 4096),
    (45 * CS as u64 + 4096, 4096),
    (33 * CS as u64 + 8192, 4096),
    (48 * CS as u64 + 12_288, 57),
];

fn scribble_written(img: &[u8]) -> Vec<u8> {
    let mut changed = img.to_vec();
    for (o, l) in WRITTEN {
        changed[o as usize..(o + l) as usize].fill(0xA5);
    }
    changed
}

#[test]
fn tracked_rollback_reads_no_disk_and_each_needed_chunk_once_and_writes_only_the_written_blocks() {
    let img = image_with_a_repeated_chunk(33);
    let (dir, repo, index) = backed_up(&img);
    assert_eq!(index.chunks[41], index.chunks[45]);
    let mut changed = scribble_written(&img);
    // A write tracking did not see (in chunk 10): trusted away, so left as it is.
    changed[10 * CSU + 100] ^= 0xFF;
    let path = dir.path().join("t.img");
    write_file(&path, &changed);
    // Opened write-only: any read of the disk would fail.
    let target = OpenOptions::new().write(true).open(&path).unwrap();
    let changes = TrackedChanges {
        written: WRITTEN.to_vec(),
        compare: Vec::new(),
    };
    let plan = repo
        .prepare_rollback_tracked(&index, &target, &changes, &NoControl)
        .unwrap();
    // Nothing read from the disk; five chunks touched; chunks 2, 41 (= 45) and 48 read from the
    // repository once each, the hole not at all.
    assert_eq!(
        (plan.chunks_examined, plan.chunks_differ, plan.chunks_loaded),
        (0, 5, 3)
    );
    let written: u64 = WRITTEN.iter().map(|w| w.1).sum();
    assert_eq!(plan.blocks_bytes(), written);
    let stats = repo
        .apply_rollback(&index, &plan, &target, &NoControl, Writes::Durable)
        .unwrap();
    assert_eq!((stats.chunks_written, stats.bytes_written), (5, written));
    let mut expected = img.clone();
    expected[10 * CSU + 100] ^= 0xFF;
    assert_eq!(fs::read(&path).unwrap(), expected);
}

#[test]
fn restores_and_rollbacks_run_in_buffers_kept_from_the_last_one() {
    let img = image_with_a_repeated_chunk(35);
    let (dir, repo, index) = backed_up(&img);
    assert_eq!(repo.kept_scratch(), (0, 0));
    let restored = restore_fresh(&repo, &index, &dir.path().join("r.img"));
    assert_eq!(restored, img);
    let (workers, arena) = repo.kept_scratch();
    assert!((1..=8).contains(&workers), "{workers} workers kept");
    assert_eq!(arena, 0);
    let path = dir.path().join("t.img");
    let changes = TrackedChanges {
        written: WRITTEN.to_vec(),
        compare: Vec::new(),
    };
    let written: u64 = WRITTEN.iter().map(|w| w.1).sum();
    let mut first = None;
    for round in 0..3 {
        let target = write_file(&path, &scribble_written(&img));
        let plan = repo
            .prepare_rollback_tracked(&index, &target, &changes, &NoControl)
            .unwrap();
        // The plan holds the arena while it lives: from the second round on, the one the
        // round before gave back (nothing is left kept meanwhile).
        assert_eq!(repo.kept_scratch().1, 0, "round {round}");
        assert_eq!(plan.blocks_bytes(), written);
        repo.apply_rollback(&index, &plan, &target, &NoControl, Writes::Durable)
            .unwrap();
        drop(plan);
        // Given back once the plan is dropped: room for the blocks read from the repository
        // (the hole's zeros are kept apart) and a quarter more, the same size each round.
        let loaded = (written - 4096) as usize;
        let (kept_workers, arena) = repo.kept_scratch();
        assert_eq!(arena, loaded + loaded / 4, "round {round}");
        assert_eq!(*first.get_or_insert(arena), arena, "round {round}");
        assert!(kept_workers <= 8);
        assert_eq!(fs::read(&path).unwrap(), img, "round {round}");
    }
    // Given back to the system only once idle long enough.
    assert!(!repo.release_scratch(Duration::from_secs(3600)));
    assert_ne!(repo.kept_scratch(), (0, 0));
    assert!(repo.release_scratch(Duration::ZERO));
    assert_eq!(repo.kept_scratch(), (0, 0));
    assert!(
        !repo.release_scratch(Duration::ZERO),
        "nothing left to release"
    );
}

#[test]
fn tracked_rollback_compares_the_chunks_where_the_starting_point_differs() {
    let img = image_with_a_repeated_chunk(34);
    let (dir, repo, index) = backed_up(&img);
    let mut changed = scribble_written(&img);
    // Chunk 20 held other content at the start of tracking: one block differs.
    changed[20 * CSU + 3 * 4096..20 * CSU + 4 * 4096].fill(1);
    let path = dir.path().join("t.img");
    let target = write_file(&path, &changed);
    let changes = TrackedChanges {
        // A write inside chunk 20 is covered by its comparison.
        written: [WRITTEN.as_slice(), &[(20 * CS as u64, 4096)]].concat(),
        compare: vec![20],
    };
    let plan = repo
        .prepare_rollback_tracked(&index, &target, &changes, &NoControl)
        .unwrap();
    assert_eq!(
        (plan.chunks_examined, plan.chunks_differ, plan.chunks_loaded),
        (1, 6, 4)
    );
    // Deferred: the same blocks, left for the caller to flush (core's journalled restores).
    let stats = repo
        .apply_rollback(&index, &plan, &target, &NoControl, Writes::Deferred)
        .unwrap();
    let written: u64 = WRITTEN.iter().map(|w| w.1).sum();
    assert_eq!(
        (stats.chunks_written, stats.bytes_written),
        (6, written + 4096)
    );
    assert_eq!(fs::read(&path).unwrap(), img);
}

#[test]
fn tracked_rollback_refuses_a_corrupt_chunk_before_writing_anything() {
    let img = image_with_a_repeated_chunk(35);
    let (dir, repo, index) = backed_up(&img);
    let changed = scribble_written(&img);
    let path = dir.path().join("t.img");
    let target = write_file(&path, &changed);
    let d = index.chunks[41].unwrap();
    damage(&repo, &d, |len| len - 8, 0x5A);
    let changes = TrackedChanges {
        written: WRITTEN.to_vec(),
        compare: Vec::new(),
    };
    let r = repo.prepare_rollback_tracked(&index, &target, &changes, &NoControl);
    assert!(
        matches!(r, Err(RepoError::ChunkCorrupt { digest, .. }) if digest == d),
        "{r:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), changed);
}

/// A collection killed after it renamed a rewritten pack into place but before it deleted the
/// pack it rewrote leaves both; the next collection, with the same live chunks, rewrites the old
/// pack again into a file of the very same name (packs are named by their content hash). It
/// must neither count that file as a second pack nor delete it as one without live chunks: the
/// live chunks would be gone. Seeds are tried until the old pack's name sorts first (the order
/// in which a collection visits packs), which is when a collection rewrites it rather than
/// finding its live chunks already in the other.
#[test]
fn gc_after_a_crash_between_rewrite_and_delete_keeps_every_live_chunk() {
    let mut old_first = 0;
    for seed in 40..56 {
        let dir = tempfile::tempdir().unwrap();
        let repo = open_repo(dir.path());
        let (index, _) = backup(&repo, dir.path(), "a.img", &image_bytes(seed));
        let old = pack_files(&repo);
        assert_eq!(old.len(), 1, "one backup of a small image fills one pack");
        let saved = fs::read(&old[0]).unwrap();
        // Chunks 0, 17 and 41 become garbage; the rest stay live.
        let dead: HashSet<ChunkDigest> = [0usize, 17, 41]
            .iter()
            .map(|&c| index.chunks[c].unwrap())
            .collect();
        let live: HashSet<ChunkDigest> = index
            .referenced()
            .copied()
            .filter(|d| !dead.contains(d))
            .collect();
        repo.gc(&live, Duration::ZERO).unwrap();
        let rewritten = pack_files(&repo);
        assert_eq!(rewritten.len(), 1);
        if old[0] < rewritten[0] {
            old_first += 1;
        }
        // The kill: the old pack is still there beside its rewrite.
        fs::write(&old[0], &saved).unwrap();
        drop(repo);

        let repo = open_repo(dir.path());
        let stats = repo.gc(&live, Duration::ZERO).unwrap();
        assert_eq!(stats.chunks_kept, live.len() as u64, "seed {seed}");
        assert_eq!(pack_files(&repo), rewritten, "seed {seed}");
        assert!(
            repo.verify_chunks(&live, &NoControl).is_empty(),
            "seed {seed}: live chunks lost"
        );
        let reopened = open_repo(dir.path());
        assert!(
            reopened.verify_chunks(&live, &NoControl).is_empty(),
            "seed {seed}: live chunks lost on disk"
        );
        for d in &dead {
            assert!(!reopened.has_chunk(d), "seed {seed}");
        }
    }
    assert!(old_first > 0, "no seed put the old pack first");
}

#[test]
fn stored_check_stats_each_pack_once_and_names_the_first_chunk_of_a_lost_pack() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(61);
    let (_, _) = backup(&repo, dir.path(), "a.img", &img);
    // A second image sharing most chunks: its new chunks (5 and 40) go to a second pack.
    let mut changed = img.clone();
    changed[5 * CSU + 7] ^= 1;
    changed[40 * CSU + 7] ^= 1;
    let (index, _) = backup(&repo, dir.path(), "b.img", &changed);
    let packs: HashSet<PathBuf> = index
        .referenced()
        .map(|d| location(&repo, d).pack)
        .collect();
    assert_eq!(packs.len(), 2);
    let referenced = index.referenced().count();
    assert!(referenced > 30);
    // Dozens of chunks, one stat per pack.
    let check = repo.check_stored(&index).unwrap();
    assert_eq!((check.missing, check.packs_checked), (None, 2));
    // The second pack removed behind the repository's back (its map still lists the chunks):
    // the first chunk in disk order that lived there is named.
    let new = index.chunks[5].unwrap();
    fs::remove_file(location(&repo, &new).pack).unwrap();
    let check = repo.check_stored(&index).unwrap();
    assert_eq!((check.missing, check.packs_checked), (Some(new), 2));
    // A handle opened since does not know the chunks at all: same answer, one stat.
    let repo = open_repo(dir.path());
    let check = repo.check_stored(&index).unwrap();
    assert_eq!((check.missing, check.packs_checked), (Some(new), 1));
}

#[test]
fn a_cached_index_checked_whole_is_checked_again_by_its_packs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(63);
    let _ = backup(&repo, dir.path(), "a.img", &img);
    let mut changed = img.clone();
    changed[5 * CSU + 7] ^= 1;
    let (stored, _) = backup(&repo, dir.path(), "b.img", &changed);
    repo.put_index("b", &stored).unwrap();
    let index = repo.get_index_shared("b").unwrap();
    let first = repo.check_stored(&index).unwrap();
    assert_eq!((first.missing, first.packs_checked), (None, 2));
    // Again: the packs found the first time, one stat each, same answer.
    let again = repo
        .check_stored(&repo.get_index_shared("b").unwrap())
        .unwrap();
    assert_eq!((again.missing, again.packs_checked), (None, 2));
    // A pack removed behind the repository's back is still found missing, naming the first
    // chunk in disk order that lived there.
    let new = index.chunks[5].unwrap();
    fs::remove_file(location(&repo, &new).pack).unwrap();
    let check = repo.check_stored(&index).unwrap();
    assert_eq!((check.missing, check.packs_checked), (Some(new), 2));
    // A copy of the index (not the cached one) is checked chunk by chunk: same answer.
    let copy = DiskIndex::clone(&index);
    assert_eq!(repo.check_stored(&copy).unwrap().missing, Some(new));
}

#[test]
fn digest_rollback_decides_chunks_in_holes_of_both_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let img = image_bytes(62);
    let (index, _) = backup(&repo, dir.path(), "a.img", &img);
    for z in ZERO_CHUNKS {
        assert!(index.chunks[z].is_none());
    }
    // A fresh restore leaves the zero chunks as holes; then a block of hole chunk 33 and a
    // block of data chunk 2 are written.
    let path = dir.path().join("t.img");
    restore_fresh(&repo, &index, &path);
    let target = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    use std::os::unix::fs::FileExt;
    target.write_all_at(&[0xA5; 4096], 33 * CS as u64).unwrap();
    target.write_all_at(&[0x5A; 4096], 2 * CS as u64).unwrap();
    let meta = target.metadata().unwrap();
    if meta.blocks() * 512 >= meta.len() {
        eprintln!("this file system leaves no holes: nothing to skip");
        return;
    }
    let probe = Probe::new(u64::MAX);
    let plan = repo
        .prepare_rollback(&index, &target, None, &probe)
        .unwrap();
    // Every chunk examined; the eight zero chunks still holes in the target were decided from
    // the file system's map: not read (the progress counts each chunk read from the target).
    let holes = ZERO_CHUNKS.len() as u64 - 1;
    assert_eq!(
        (
            plan.chunks_examined,
            plan.chunks_in_holes,
            plan.chunks_differ,
            plan.chunks_loaded
        ),
        (49, holes, 2, 1)
    );
    assert_eq!(probe.chunks.load(Ordering::SeqCst), 49 - holes);
    assert_eq!(
        probe.bytes.load(Ordering::SeqCst),
        IMAGE_SIZE - holes * CS as u64
    );
    let stats = repo
        .apply_rollback(&index, &plan, &target, &NoControl, Writes::Durable)
        .unwrap();
    assert_eq!((stats.chunks_written, stats.bytes_written), (2, 2 * 4096));
    assert_eq!(fs::read(&path).unwrap(), img);
}
