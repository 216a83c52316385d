//! Repository dictionaries: zstd dictionaries trained on a repository's own chunks.
//!
//! Each chunk is its own zstd frame so that it can be read alone; at 16 KiB a frame has
//! too little data to learn from, and text-like chunks compress worse than in the 1–2 MiB
//! chunks other tools use. A dictionary trained on samples of the repository's first
//! compressible chunks gives every frame that context: on the benchmark's text-like data
//! it stores a chunk in 20.9% of its size instead of 22.5% (level 3), at the same speed.
//!
//! A dictionary is trained once per repository, during the first backup that meets enough
//! compressible chunks, from the first [`SAMPLE_COUNT`] of them; chunks stored before it
//! exists stay plain zstd frames. It is written, durably, before any chunk uses it:
//!
//! ```text
//! dicts/<64 hex>.zdict   the dictionary in zstd's format, named by BLAKE3 of its bytes
//! ```
//!
//! A record of codec 2 (see the `chunk` module) is a zstd frame whose header names its
//! dictionary by zstd's 32-bit dictionary ID, which is part of the dictionary's bytes.
//! Dictionaries are never removed: they are a few KiB and any chunk may need them.
//!
//! Decoders are per worker and know no repository, so loaded dictionaries are kept in a
//! process-wide table by ID. That is sound because a dictionary is immutable and named by
//! its content: a table entry means the same bytes whichever repository loaded it. Two
//! dictionaries sharing an ID (32 bits, so possible across repositories) are both kept; the
//! decoder takes the one under which the chunk's digest verifies.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use crate::chunk::looks_incompressible;
use crate::error::IoContext;
use crate::storage::Storage;
use crate::RepoError;

/// Folder of dictionaries under the repository root.
pub(crate) const DICTS_DIR: &str = "dicts";
/// Key prefix of dictionary objects: `dicts/<64 hex>.zdict`.
const DICTS_PREFIX: &str = "dicts/";
/// Extension of dictionary files.
const DICT_EXT: &str = ".zdict";
/// Largest dictionary trained. Measured on 16 KiB text-like chunks: 16, 64 and 112 KiB
/// dictionaries compress alike, and a small one is cheap to load into every worker.
const DICT_SIZE: usize = 16 << 10;
/// Compressible chunks sampled to train a dictionary (512 KiB of 16 KiB chunks; training
/// takes ~50–100 ms on one core, once per repository). 32 and 128 samples of the benchmark's
/// text compress within 0.1% of each other.
pub(crate) const SAMPLE_COUNT: usize = 32;
/// Chunks larger than this are not sampled and get no dictionary: a frame of that size
/// holds its own context.
pub(crate) const MAX_DICT_CHUNK: usize = 64 << 10;

/// One zstd dictionary.
#[derive(Debug)]
pub(crate) struct Dictionary {
    /// BLAKE3 of `bytes`: the file name.
    pub hash: [u8; 32],
    /// zstd's dictionary ID, which frames compressed with it carry.
    pub id: u32,
    /// The dictionary in zstd's format.
    pub bytes: Vec<u8>,
}

impl Dictionary {
    /// A dictionary from its bytes; `None` when they carry no zstd dictionary ID.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Option<Dictionary> {
        let id = zstd::zstd_safe::get_dict_id_from_dict(&bytes)?.get();
        Some(Dictionary {
            hash: *blake3::hash(&bytes).as_bytes(),
            id,
            bytes,
        })
    }

    /// The file name of this dictionary.
    fn file_name(&self) -> String {
        format!("{}{DICT_EXT}", hex::encode(self.hash))
    }
}

/// Loaded dictionaries by ID (see the module docs).
fn loaded() -> &'static RwLock<HashMap<u32, Vec<Arc<Dictionary>>>> {
    static LOADED: OnceLock<RwLock<HashMap<u32, Vec<Arc<Dictionary>>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// Makes `d` available to every decoder in this process.
pub(crate) fn register(d: &Arc<Dictionary>) {
    let mut table = loaded().write().unwrap_or_else(PoisonError::into_inner);
    let same_id = table.entry(d.id).or_default();
    if !same_id.iter().any(|x| x.hash == d.hash) {
        same_id.push(d.clone());
    }
}

/// The loaded dictionaries with zstd ID `id`.
pub(crate) fn loaded_with_id(id: u32) -> Vec<Arc<Dictionary>> {
    loaded()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
        .unwrap_or_default()
}

/// Loads the dictionaries in `storage` whose names are not in `known`, registering each. An
/// object whose bytes do not hash to its name is damaged and skipped: the chunks that need it
/// then fail verification, naming the dictionary.
pub(crate) fn load_new(
    storage: &dyn Storage,
    known: &[Arc<Dictionary>],
) -> Result<Vec<Arc<Dictionary>>, RepoError> {
    let mut out = Vec::new();
    let keys = storage
        .list(DICTS_PREFIX)
        .ctx(|| format!("list {}", storage.describe(DICTS_DIR)))?;
    for key in keys {
        let Some(name) = key.strip_prefix(DICTS_PREFIX) else {
            continue;
        };
        let Some(hex_name) = name.strip_suffix(DICT_EXT) else {
            continue;
        };
        if hex_name.contains('/') || known.iter().any(|d| hex::encode(d.hash) == hex_name) {
            continue;
        }
        let bytes = match storage.get(&key) {
            Ok((b, _)) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(RepoError::io(
                    format!("read dictionary {}", storage.describe(&key)),
                    e,
                ))
            }
        };
        let Some(d) = Dictionary::from_bytes(bytes).filter(|d| hex::encode(d.hash) == hex_name)
        else {
            continue;
        };
        let d = Arc::new(d);
        register(&d);
        out.push(d);
    }
    Ok(out)
}

/// Stores `d` in `storage` durably and registers it.
pub(crate) fn store(storage: &dyn Storage, d: &Arc<Dictionary>) -> Result<(), RepoError> {
    let key = format!("{DICTS_PREFIX}{}", d.file_name());
    storage
        .put(&key, &d.bytes)
        .ctx(|| format!("write {}", storage.describe(&key)))?;
    register(d);
    Ok(())
}

/// Samples of compressible chunks collected during a backup, for the first dictionary.
#[derive(Default)]
pub(crate) struct Sampler {
    /// Set once the samples were handed out (or there will be none).
    done: AtomicBool,
    samples: Mutex<(Vec<u8>, Vec<usize>)>,
}

impl Sampler {
    /// Offers a chunk being stored. Returns the samples (concatenated, and their sizes) to the
    /// caller whose chunk completes them, once.
    pub(crate) fn offer(&self, data: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
        if self.done.load(Ordering::Relaxed)
            || data.len() > MAX_DICT_CHUNK
            || looks_incompressible(data)
        {
            return None;
        }
        let mut s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if self.done.load(Ordering::Relaxed) {
            return None;
        }
        s.0.extend_from_slice(data);
        s.1.push(data.len());
        if s.1.len() < SAMPLE_COUNT {
            return None;
        }
        self.done.store(true, Ordering::Relaxed);
        Some(std::mem::take(&mut *s))
    }
}

/// Trains a dictionary on samples; `None` when zstd finds nothing to learn from them.
pub(crate) fn train(data: &[u8], sizes: &[usize]) -> Option<Dictionary> {
    let bytes = zstd::dict::from_continuous(data, sizes, DICT_SIZE).ok()?;
    Dictionary::from_bytes(bytes)
}
