//! The repository against storage and targets that are not files: everything a backup and a
//! restore do goes through the `Storage` and `RestoreTarget` traits, so a repository in
//! memory or in an S3 bucket (a real Garage, started by the test) and an in-memory disk
//! behave as a folder and a file do.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use emrest_repo::{
    ChunkProblem, Durability, MemoryStorage, NoControl, RepoError, Repository, RestoreTarget,
    S3Location, S3Storage, Storage, Writes,
};
use rand::{Rng, SeedableRng};

const CS: u32 = 16 * 1024;

/// A disk held in memory, as an NBD export or a qcow2 image would be reached: positioned
/// reads and writes, no file system tricks.
#[derive(Default)]
struct MemoryDisk(Mutex<Vec<u8>>);

impl MemoryDisk {
    fn bytes(&self) -> Vec<u8> {
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

/// 40 chunks and a short tail: random, text-like and zero regions.
fn image(seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cs = CS as usize;
    let mut img = vec![0u8; 40 * cs + 777];
    rng.fill(&mut img[..12 * cs]);
    for (i, b) in img[12 * cs..28 * cs].iter_mut().enumerate() {
        *b = b"memory storage backup restore "[i % 30];
    }
    rng.fill(&mut img[32 * cs..]);
    img
}

/// Backs `img` up into `repo` from a source file (backups read files; only the repository
/// is in memory).
fn back_up(repo: &Repository, img: &[u8]) -> emrest_repo::DiskIndex {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.img");
    std::fs::write(&path, img).unwrap();
    let src = std::fs::File::open(&path).unwrap();
    repo.backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap()
        .0
}

#[test]
fn a_repository_in_memory_backs_up_restores_verifies_and_collects_garbage_without_a_folder() {
    backs_up_restores_verifies_and_collects_garbage(Arc::new(MemoryStorage::new()));
}

#[test]
fn a_repository_in_an_s3_bucket_backs_up_restores_verifies_and_collects_garbage() {
    let Some(garage) = emrest_testkit::garage::garage() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let location = S3Location::parse(&garage.fresh_url("repository")).unwrap();
    let s3 =
        S3Storage::with_key(location, &garage.key_id, &garage.secret, Some(cache.path())).unwrap();
    backs_up_restores_verifies_and_collects_garbage(Arc::new(s3));
}

/// Everything a repository does, through `storage` alone.
fn backs_up_restores_verifies_and_collects_garbage(storage: Arc<dyn Storage>) {
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
