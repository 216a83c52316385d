//! Test support for storages kept outside this crate (the S3 one): the contract every
//! [`Storage`] keeps, and a repository's whole life through one. Panics on the first broken
//! expectation; built for this crate's tests and with the `testing` feature.

use std::collections::HashSet;
use std::io::{self, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{
    ChunkProblem, Durability, NoControl, RepoError, Repository, RestoreTarget, Storage, Writes,
};

const CS: u32 = 16 * 1024;

/// What the repository relies on of any storage, run against each implementation.
pub fn behaves_as_a_storage(s: &dyn Storage) {
    let missing = |r: io::Result<()>| r.is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
    assert!(matches!(s.get("config"), Err(e) if e.kind() == io::ErrorKind::NotFound));
    assert_eq!(s.stat("config").unwrap(), None);
    s.put("config", b"one").unwrap();
    let (bytes, v1) = s.get("config").unwrap();
    assert_eq!(bytes, b"one");
    s.put("indexes/a.idx", b"index a").unwrap();
    s.put("config", b"two!").unwrap();
    let (bytes, v2) = s.get("config").unwrap();
    assert_eq!(bytes, b"two!");
    assert_ne!(v1, v2, "a replaced object has a new version");
    assert_eq!(
        s.stat("config").unwrap().map(|m| (m.len, m.version)),
        Some((4, v2))
    );

    let mut w = s.writer("packs/").unwrap();
    w.write_all(b"pack ").unwrap();
    w.write_all(b"bytes").unwrap();
    assert_eq!(
        s.list("packs/").unwrap(),
        Vec::<String>::new(),
        "unfinished is unseen"
    );
    w.finish("packs/ab/ab01.pack").unwrap();
    drop(s.writer("packs/").unwrap());
    s.sync(&["packs/ab/ab01.pack"]).unwrap();
    assert_eq!(s.list("packs/").unwrap(), vec!["packs/ab/ab01.pack"]);
    assert_eq!(s.list("indexes/").unwrap(), vec!["indexes/a.idx"]);
    let o = s.open("packs/ab/ab01.pack").unwrap();
    assert_eq!(o.len(), 10);
    let mut buf = [0u8; 5];
    o.read_exact_at(&mut buf, 5).unwrap();
    assert_eq!(&buf, b"bytes");
    assert!(o.read_exact_at(&mut buf, 6).is_err());
    assert_eq!(s.get_head("indexes/a.idx", 5).unwrap(), b"index");
    assert!(s.exists("packs/ab/ab01.pack").unwrap());
    s.touch("packs/ab/ab01.pack").unwrap();
    assert!(missing(s.touch("packs/ab/none.pack")));

    s.delete("packs/ab/ab01.pack").unwrap();
    s.sync(&["packs/ab/ab01.pack"]).unwrap();
    assert!(missing(s.delete("packs/ab/ab01.pack")));
    assert!(!s.exists("packs/ab/ab01.pack").unwrap());
    s.remove_temporaries().unwrap();
    assert_eq!(s.list("").unwrap(), vec!["config", "indexes/a.idx"]);
}

/// A disk held in memory, as an NBD export or a qcow2 image would be reached: positioned
/// reads and writes, no file system tricks.
#[derive(Default)]
pub struct MemoryDisk(Mutex<Vec<u8>>);

impl MemoryDisk {
    /// The disk's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl RestoreTarget for MemoryDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap_or_else(PoisonError::into_inner).len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut d = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        d.resize(len as usize, 0);
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let d = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let start = (offset as usize).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut d = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let end = offset as usize + buf.len();
        if d.len() < end {
            d.resize(end, 0);
        }
        d[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// 40 chunks and a short tail: pseudo-random, text-like and zero regions.
pub fn image(seed: u64) -> Vec<u8> {
    let cs = CS as usize;
    let mut img = vec![0u8; 40 * cs + 777];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut random = |buf: &mut [u8]| {
        for b in buf {
            // xorshift64: incompressible enough for chunks that must not deduplicate.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    };
    random(&mut img[..12 * cs]);
    for (i, b) in img[12 * cs..28 * cs].iter_mut().enumerate() {
        *b = b"memory storage backup restore "[i % 30];
    }
    random(&mut img[32 * cs..]);
    img
}

/// Backs `img` up into `repo` from a source file (backups read files).
fn back_up(repo: &Repository, img: &[u8]) -> crate::DiskIndex {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("emrest-testing-{}-{n}.img", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(img)
        .unwrap();
    let src = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    repo.backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap()
        .0
}

/// Everything a repository does, through `storage` alone.
pub fn backs_up_restores_verifies_and_collects_garbage(storage: Arc<dyn Storage>) {
    let repo = Repository::open_storage(storage.clone(), Durability::Fsync, CS).unwrap();
    assert_eq!(repo.chunk_size(), CS);
    let img = image(1);
    let index = back_up(&repo, &img);
    repo.put_index("point-1.disk0", &index).unwrap();

    // Everything lives under the documented keys, nothing on disk.
    let keys = storage.list("").unwrap();
    assert!(keys.contains(&"config".to_string()), "{keys:?}");
    assert!(keys.contains(&"indexes/point-1.disk0.idx".to_string()));
    assert!(keys
        .iter()
        .any(|k| k.starts_with("packs/") && k.ends_with(".pack")));
    assert_eq!(repo.root(), std::path::Path::new(""));

    // A second handle on the same storage finds the packs, the index and the chunk size.
    let again = Repository::open_storage(storage.clone(), Durability::Fsync, 4096).unwrap();
    assert_eq!(again.chunk_size(), CS);
    assert_eq!(again.list_indexes().unwrap(), vec!["point-1.disk0"]);
    let loaded = again.get_index_shared("point-1.disk0").unwrap();
    assert_eq!(*loaded, index);
    assert!(again.check_stored(&loaded).unwrap().missing.is_none());

    // A full restore into an in-memory disk is byte-exact.
    let disk = MemoryDisk::default();
    let plan = again.plan_restore(&loaded, None, &NoControl).unwrap();
    let stats = again
        .apply_restore(&loaded, &plan, &disk, &NoControl)
        .unwrap();
    assert_eq!(disk.bytes(), img);
    assert_eq!(stats.bytes_direct, 0, "a memory disk has no direct view");

    // A QuickRollback by digests writes back exactly the blocks changed on the disk.
    {
        let mut d = disk.0.lock().unwrap();
        d[5 * CS as usize + 100] ^= 0xff;
        d[20 * CS as usize..20 * CS as usize + 4096].fill(7);
    }
    let rollback = again
        .prepare_rollback(&loaded, &disk, None, &NoControl)
        .unwrap();
    let stats = again
        .apply_rollback(&loaded, &rollback, &disk, &NoControl, Writes::Durable)
        .unwrap();
    assert_eq!(disk.bytes(), img);
    assert_eq!(stats.bytes_written, 2 * 4096);

    // A damaged pack is found by verification and refused by a restore, naming the chunk.
    let digests: Vec<_> = index.referenced().copied().collect();
    assert!(again.verify_chunks(&digests, &NoControl).is_empty());
    let pack = keys
        .iter()
        .find(|k| k.starts_with("packs/"))
        .unwrap()
        .clone();
    let (mut bytes, _) = storage.get(&pack).unwrap();
    bytes[100] ^= 0x55;
    storage.put(&pack, &bytes).unwrap();
    let fresh = Repository::open_storage(storage.clone(), Durability::Fsync, CS).unwrap();
    let problems = fresh.verify_chunks(&digests, &NoControl);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(matches!(problems[0], ChunkProblem::Corrupt { .. }));
    let plan = fresh.plan_restore(&index, None, &NoControl).unwrap();
    let r = fresh.apply_restore(&index, &plan, &MemoryDisk::default(), &NoControl);
    assert!(
        matches!(r, Err(RepoError::ChunkCorrupt { digest, .. }) if digest == *problems[0].digest())
    );

    // With its index deleted, garbage collection removes every pack.
    fresh.delete_index("point-1.disk0").unwrap();
    let gc = fresh.gc(&HashSet::new(), Duration::ZERO).unwrap();
    assert!(gc.chunks_removed > 0);
    assert!(storage.list("packs/").unwrap().is_empty());
    assert!(fresh.list_indexes().unwrap().is_empty());
}
