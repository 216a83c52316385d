//! A small cache of parsed, verified disk indexes.
//!
//! Loading a 4 GiB disk's index reads ~6 MB (a delta and the chain below it), checks the
//! BLAKE3 of every file and applies the deltas: 20–35 ms, paid by every restore before its
//! first byte, and by the backup after it (the delta against the parent). Indexes are
//! immutable once stored, but a name can be stored again, deleted, or rebased (stored whole
//! when its parent is deleted), by this process or behind its back. So an entry remembers the
//! version ([`crate::ObjectVersion`]; in a folder: device, inode, length, times) of every
//! object it was built from, taken as it read them, and is served only while a `stat` of each
//! key still finds those versions: a replaced, rebased or removed object — which a folder's
//! atomic write always gives a new inode — misses and is read again. Writers of this process also drop the
//! entries that name the file they write.
//!
//! An entry also remembers which packs hold the index's chunks, as found by a full
//! [`crate::Repository::check_stored`], and the chunk map's epoch then: while no chunk
//! location was removed or moved since, checking the same index again is one `stat` per pack
//! instead of a map lookup per chunk.
//!
//! Bounded by [`MAX_ENTRIES`] and [`MAX_BYTES`], least recently used out first.

use std::sync::{Arc, Mutex, PoisonError};

use crate::storage::{ObjectVersion, Storage};
use crate::DiskIndex;

/// Indexes kept at most.
pub(crate) const MAX_ENTRIES: usize = 8;
/// Bytes of digests kept at most (a 4 GiB disk in 16 KiB chunks: ~8.7 MB); a larger index
/// is never cached.
pub(crate) const MAX_BYTES: usize = 32 << 20;

/// True while the object `key` of `storage` still is the version `id` (a `stat`).
fn still_at(storage: &dyn Storage, key: &str, id: &ObjectVersion) -> bool {
    storage
        .stat(key)
        .is_ok_and(|m| m.is_some_and(|m| m.version == *id))
}

/// A loaded index with the files it was built from (the named file first, then its parents).
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub index: Arc<DiskIndex>,
    /// Deltas it was built from (0: stored whole).
    pub depth: u8,
    pub files: Vec<(String, ObjectVersion)>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    loaded: Loaded,
    bytes: usize,
    /// The packs holding every chunk of the index, and the chunk map's epoch when found.
    stored: Option<(u64, Arc<[u32]>)>,
}

#[derive(Debug, Default)]
pub(crate) struct IndexCache {
    /// Least recently used first.
    entries: Mutex<Vec<Entry>>,
}

/// Memory the digests of `index` take.
fn size_of(index: &DiskIndex) -> usize {
    index.chunks.len() * std::mem::size_of::<Option<crate::ChunkDigest>>()
}

impl IndexCache {
    /// The cached index `name`, if every object it was built from is still in `storage`.
    pub(crate) fn get(&self, name: &str, storage: &dyn Storage) -> Option<Loaded> {
        let mut entries = self.lock();
        let k = entries.iter().position(|e| e.name == name)?;
        let fresh = entries[k]
            .loaded
            .files
            .iter()
            .all(|(key, id)| still_at(storage, key, id));
        let entry = entries.remove(k);
        if !fresh {
            return None;
        }
        let loaded = entry.loaded.clone();
        entries.push(entry);
        Some(loaded)
    }

    /// Keeps `loaded` as the index `name`, dropping the least recently used to make room.
    pub(crate) fn insert(&self, name: &str, loaded: Loaded) {
        let bytes = size_of(&loaded.index);
        if bytes > MAX_BYTES {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|e| e.name != name);
        let mut total: usize = entries.iter().map(|e| e.bytes).sum();
        while !entries.is_empty() && (entries.len() >= MAX_ENTRIES || total + bytes > MAX_BYTES) {
            total -= entries.remove(0).bytes;
        }
        entries.push(Entry {
            name: name.to_string(),
            loaded,
            bytes,
            stored: None,
        });
    }

    /// Drops every entry built from the object `key` (about to be written or removed).
    pub(crate) fn forget_file(&self, key: &str) {
        self.lock()
            .retain(|e| !e.loaded.files.iter().any(|(k, _)| k == key));
    }

    /// The packs found holding every chunk of `index` at chunk-map epoch `epoch`, when
    /// `index` is a cached entry's very index (the same allocation) checked at that epoch.
    pub(crate) fn stored_packs(&self, index: &DiskIndex, epoch: u64) -> Option<Arc<[u32]>> {
        self.lock()
            .iter()
            .find(|e| std::ptr::eq(Arc::as_ptr(&e.loaded.index), index))
            .and_then(|e| e.stored.as_ref())
            .filter(|(at, _)| *at == epoch)
            .map(|(_, packs)| packs.clone())
    }

    /// Records that every chunk of `index` was found in `packs` at epoch `epoch` (when
    /// `index` is a cached entry's).
    pub(crate) fn set_stored_packs(&self, index: &DiskIndex, epoch: u64, packs: Vec<u32>) {
        if let Some(e) = self
            .lock()
            .iter_mut()
            .find(|e| std::ptr::eq(Arc::as_ptr(&e.loaded.index), index))
        {
            e.stored = Some((epoch, packs.into()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
