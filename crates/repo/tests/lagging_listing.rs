//! A storage whose listings lag its writes, as some S3-compatible stores' do: a reader beside
//! the writer (another node, or the CLI beside the server) must not call the chunks of a point
//! just written missing because a listing did not show their packs yet.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use emrest_repo::testing::{image, MemoryDisk};
use emrest_repo::{
    Durability, MemoryStorage, NoControl, ObjectMeta, ObjectVersion, ObjectWriter, Repository,
    Storage, StoredObject,
};

/// A [`MemoryStorage`] whose `packs/` listings leave out every pack for the next `lag` calls
/// after [`Lagging::start_lagging`], and says so through `listing_may_lag`.
#[derive(Debug)]
struct Lagging {
    inner: MemoryStorage,
    lag: AtomicU32,
    lists: AtomicU32,
    may_lag: bool,
}

impl Lagging {
    fn start_lagging(&self, calls: u32) {
        self.lag.store(calls, Ordering::SeqCst);
    }
}

impl Storage for Lagging {
    fn get(&self, key: &str) -> io::Result<(Vec<u8>, ObjectVersion)> {
        self.inner.get(key)
    }
    fn open(&self, key: &str) -> io::Result<Arc<dyn StoredObject>> {
        self.inner.open(key)
    }
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.put(key, bytes)
    }
    fn writer(&self, prefix: &str) -> io::Result<Box<dyn ObjectWriter>> {
        self.inner.writer(prefix)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        if prefix.starts_with("packs/") {
            self.lists.fetch_add(1, Ordering::SeqCst);
            let lagging = self
                .lag
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if lagging {
                return Ok(Vec::new());
            }
        }
        self.inner.list(prefix)
    }
    fn stat(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        self.inner.stat(key)
    }
    fn delete(&self, key: &str) -> io::Result<()> {
        self.inner.delete(key)
    }
    fn touch(&self, key: &str) -> io::Result<()> {
        self.inner.touch(key)
    }
    fn listing_may_lag(&self) -> bool {
        self.may_lag
    }
}

/// A writer backs a disk up after a reader opened the same storage; the reader's listings of
/// packs then come back empty `lag` times. Returns the reader's restore result and how many
/// listings it made.
fn restore_beside_writer(lag: u32, may_lag: bool) -> (Result<Vec<u8>, String>, u32) {
    let shared = Arc::new(Lagging {
        inner: MemoryStorage::new(),
        lag: AtomicU32::new(0),
        lists: AtomicU32::new(0),
        may_lag,
    });
    let writer = Repository::open_storage(shared.clone(), Durability::NoSync, 16 << 10).unwrap();
    let reader = Repository::open_storage(shared.clone(), Durability::NoSync, 16 << 10).unwrap();
    let img = image(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.img");
    std::fs::write(&path, &img).unwrap();
    let src = std::fs::File::open(&path).unwrap();
    let (index, _) = writer
        .backup_disk(&src, img.len() as u64, None, None, &NoControl)
        .unwrap();
    writer.put_index("p.disk0", &index).unwrap();

    shared.start_lagging(lag);
    let before = shared.lists.load(Ordering::SeqCst);
    let result = (|| {
        let index = reader
            .get_index_shared("p.disk0")
            .map_err(|e| e.to_string())?;
        let plan = reader
            .plan_restore(&index, None, &NoControl)
            .map_err(|e| e.to_string())?;
        let disk = MemoryDisk::default();
        reader
            .apply_restore(&index, &plan, &disk, &NoControl)
            .map_err(|e| e.to_string())?;
        Ok(disk.bytes())
    })();
    (result, shared.lists.load(Ordering::SeqCst) - before)
}

#[test]
fn a_reader_looks_again_when_listings_may_lag_and_restores_the_new_point() {
    let (restored, listings) = restore_beside_writer(3, true);
    assert_eq!(restored.expect("restore"), image(5));
    assert_eq!(
        listings, 4,
        "three lagging listings, then the one that shows the packs"
    );
}

#[test]
fn where_listings_never_lag_a_missing_chunk_is_believed_at_once() {
    // The same storage saying its listings are exact: one rescan, then the chunk is missing
    // (this is what a folder does, where a lag cannot happen).
    let (restored, listings) = restore_beside_writer(3, false);
    let err = restored.expect_err("the packs look missing");
    assert!(
        err.contains("missing") || err.contains("not stored") || err.contains("no pack"),
        "{err}"
    );
    assert_eq!(listings, 1);
}
