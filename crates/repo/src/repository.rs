//! The [`Repository`] handle: opening and creating, config, indexes and single-chunk access.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::chunk::{verify, ChunkCodec, CODEC_RAW};
use crate::dict::{self, Dictionary, DICTS_DIR};
use crate::error::IoContext;
use crate::fsutil::{self, TEMP_PREFIX};
use crate::index::{peek_parent, validate_name, StoredIndex, MAX_DELTA_DEPTH, PEEK_LEN};
use crate::index_cache::{IndexCache, Loaded};
use crate::pack::{ChunkMap, Loc};
use crate::storage::{FolderStorage, ObjectVersion, Storage, StoredObject};
use crate::{
    ChunkDigest, ChunkPlace, DiskIndex, Durability, PackDamage, RepoError, DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
};

/// Key (and, in a folder, file name) of the repository config.
pub(crate) const CONFIG_NAME: &str = "config";
/// How long a rescan waits, one wait per try, for packs a lagging listing does not show yet.
const LAGGING_LISTING_WAITS: [u64; 4] = [100, 300, 800, 2000];
/// Names the catalog that manages the repository (see [`Repository::claim`]).
const OWNER_NAME: &str = "owner";
/// Folder of pack files.
const PACKS_DIR: &str = "packs";
/// Folder of index files.
const INDEXES_DIR: &str = "indexes";
/// Key prefix of index objects: `indexes/<name>.idx`.
const INDEXES_PREFIX: &str = "indexes/";
/// Extension of index files.
const INDEX_EXT: &str = ".idx";
/// Refuses a bad index name, or an index that does not describe its disk consistently.
fn check_storable(name: &str, index: &DiskIndex) -> Result<(), RepoError> {
    validate_name(name)?;
    match index.inconsistency() {
        Some(reason) => Err(RepoError::IndexCorrupt {
            name: name.to_string(),
            reason: format!("refusing to store an inconsistent index: {reason}"),
        }),
        None => Ok(()),
    }
}

/// How the reason of a delta index whose parent cannot be read begins.
const PARENT_PREFIX: &str = "its parent index ";
/// Magic at the start of `config`.
const CONFIG_MAGIC: [u8; 8] = *b"EMRESTRP";
/// The repository format version this build writes and reads.
const CONFIG_VERSION: u32 = 2;

/// The config file exactly as laid out on disk.
#[repr(C)]
struct ConfigFile {
    magic: [u8; 8],
    version: [u8; 4],
    chunk_size: [u8; 4],
}

/// Size of [`ConfigFile`] on disk.
const CONFIG_LEN: usize = 16;
const _: () = assert!(std::mem::size_of::<ConfigFile>() == CONFIG_LEN);

impl ConfigFile {
    fn to_bytes(&self) -> [u8; CONFIG_LEN] {
        let mut b = [0u8; CONFIG_LEN];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&self.version);
        b[12..16].copy_from_slice(&self.chunk_size);
        b
    }
}

/// A backup repository in a [`Storage`] (a local folder by default); `Send + Sync`, share it
/// via `Arc`.
#[derive(Debug)]
pub struct Repository {
    /// The root folder, for a repository in one (empty otherwise).
    pub(crate) root: PathBuf,
    /// Where packs, indexes, dictionaries and the config are kept.
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) chunk_size: u32,
    pub(crate) durability: Durability,
    /// Full restores write their target with `O_DIRECT` where the file system allows it.
    pub(crate) direct_io: bool,
    /// Every stored chunk's location, loaded from the packs' indexes.
    pub(crate) map: RwLock<ChunkMap>,
    /// Open packs, by pack number.
    files: Mutex<HashMap<u32, Arc<dyn StoredObject>>>,
    /// The dictionaries loaded from `dicts/`; new chunks are compressed with the first.
    dicts: RwLock<Vec<Arc<Dictionary>>>,
    /// Held while a delta index is written against its parent and while an index is deleted
    /// (its children stored whole first), so no delta is left naming a deleted parent.
    index_lock: Mutex<()>,
    /// Indexes recently loaded, served while their files are unchanged.
    pub(crate) index_cache: IndexCache,
    /// Buffers of finished restores, kept for the next.
    pub(crate) scratch: crate::restore::Scratch,
}

/// Where a chunk's record (header and payload) lies; for diagnostics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkLocation {
    /// The pack file holding it (for a storage that is not a folder: the pack's key).
    pub pack: PathBuf,
    /// Offset of the record in the pack.
    pub offset: u64,
    /// Length of the record in bytes.
    pub len: u64,
}

impl Repository {
    /// Opens the repository at `root`, creating it (chunk size [`DEFAULT_CHUNK_SIZE`]) if missing.
    pub fn open(root: &Path, durability: Durability) -> Result<Repository, RepoError> {
        Repository::open_with_chunk_size(root, durability, DEFAULT_CHUNK_SIZE)
    }

    /// Opens the repository at `root`, creating it with `chunk_size` if missing (an existing repository keeps its own).
    ///
    /// Removes every leftover `.tmp-*` file: only one process may write to a repository at a time.
    pub fn open_with_chunk_size(
        root: &Path,
        durability: Durability,
        chunk_size: u32,
    ) -> Result<Repository, RepoError> {
        let not_repo = |reason: String| RepoError::NotARepository {
            path: root.to_path_buf(),
            reason,
        };
        match fs::metadata(root) {
            Ok(m) if !m.is_dir() => return Err(not_repo("it is not a folder".to_string())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(RepoError::io(format!("inspect {}", root.display()), e)),
        }
        let storage = FolderStorage::new(root, durability);
        let config_path = root.join(CONFIG_NAME);
        let chunk_size = match storage.get(CONFIG_NAME) {
            Ok((bytes, _)) => parse_config(&bytes).map_err(not_repo)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create(root, &storage, durability, chunk_size)?;
                chunk_size
            }
            Err(e) => return Err(RepoError::io(format!("read {}", config_path.display()), e)),
        };
        for dir in [PACKS_DIR, INDEXES_DIR, DICTS_DIR] {
            let dir = root.join(dir);
            fs::create_dir_all(&dir).ctx(|| format!("create folder {}", dir.display()))?;
        }
        let repo = Repository::new(root, Arc::new(storage), chunk_size, durability);
        repo.remove_stale_temp_files()?;
        repo.rescan()?;
        Ok(repo)
    }

    /// Opens the repository kept in `storage`, creating it with `chunk_size` if it holds no
    /// config (an existing repository keeps its own chunk size). `durability` applies to
    /// restore targets; the storage makes its own writes durable. Like
    /// [`Repository::open_with_chunk_size`], removes leftovers of interrupted writes: only one
    /// process may write to a repository at a time.
    pub fn open_storage(
        storage: Arc<dyn Storage>,
        durability: Durability,
        chunk_size: u32,
    ) -> Result<Repository, RepoError> {
        let not_repo = |reason: String| RepoError::NotARepository {
            path: PathBuf::from(storage.describe("")),
            reason,
        };
        let chunk_size = match storage.get(CONFIG_NAME) {
            Ok((bytes, _)) => parse_config(&bytes).map_err(not_repo)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let config = config_bytes(chunk_size).map_err(not_repo)?;
                storage
                    .put(CONFIG_NAME, &config)
                    .ctx(|| format!("write {}", storage.describe(CONFIG_NAME)))?;
                chunk_size
            }
            Err(e) => {
                return Err(RepoError::io(
                    format!("read {}", storage.describe(CONFIG_NAME)),
                    e,
                ))
            }
        };
        let root = storage.local_path("").unwrap_or_default();
        let repo = Repository::new(&root, storage, chunk_size, durability);
        repo.remove_stale_temp_files()?;
        repo.rescan()?;
        Ok(repo)
    }

    /// Opens an existing repository to read only, for a second process beside the writer: nothing
    /// is created and no temporary file is removed (they may belong to the writer's work).
    pub fn open_read_only(root: &Path, durability: Durability) -> Result<Repository, RepoError> {
        Repository::open_storage_read_only(
            Arc::new(FolderStorage::new(root, durability)),
            durability,
        )
    }

    fn new(
        root: &Path,
        storage: Arc<dyn Storage>,
        chunk_size: u32,
        durability: Durability,
    ) -> Repository {
        Repository {
            root: root.to_path_buf(),
            storage,
            chunk_size,
            durability,
            direct_io: true,
            map: RwLock::new(ChunkMap::default()),
            files: Mutex::new(HashMap::new()),
            dicts: RwLock::new(Vec::new()),
            index_lock: Mutex::new(()),
            index_cache: IndexCache::default(),
            scratch: Default::default(),
        }
    }

    /// Loads the dictionaries and the indexes of packs not yet known (written by another
    /// process since open). Dictionaries come first: a pack is written after the dictionary
    /// its chunks use.
    pub(crate) fn rescan(&self) -> Result<(), RepoError> {
        let known = self
            .dicts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let new = dict::load_new(self.storage.as_ref(), &known)?;
        if !new.is_empty() {
            self.dicts
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(new);
        }
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .scan(self.storage.as_ref())
    }

    /// Whether full restores ([`Repository::apply_restore`]) write around the page cache
    /// (`O_DIRECT`, on by default; Linux only). Where the target's file system refuses direct
    /// writes they fall back to ordinary ones either way; turning it off forces that path.
    pub fn with_direct_io(mut self, on: bool) -> Repository {
        self.direct_io = on;
        self
    }

    /// Chunk size of this repository in bytes.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The repository's root folder (empty for a storage that is not a folder).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the repository is, for messages (a folder's path, or `s3://bucket/prefix`).
    pub fn describe(&self) -> String {
        self.storage.describe("").trim_end_matches('/').to_string()
    }

    /// The requests its storage was sent so far, when it is paid by the request (S3).
    pub fn requests(&self) -> Option<crate::RequestCounts> {
        self.storage.requests()
    }

    /// Marks the repository as belonging to `owner` (a catalog's identity), or checks that
    /// it does: a repository already marked for another owner is refused, so two catalogs
    /// never manage (and collect garbage in) one repository. `write` false only checks.
    pub fn claim(&self, owner: &str, write: bool) -> Result<(), RepoError> {
        let describe = || self.storage.describe(OWNER_NAME);
        match self.storage.get(OWNER_NAME) {
            Ok((bytes, _)) if bytes == owner.as_bytes() => Ok(()),
            Ok((bytes, _)) => Err(RepoError::NotARepository {
                path: PathBuf::from(self.describe()),
                reason: format!(
                    "it belongs to another emrest catalog ({} says {}, this catalog is {owner}); \
                     give each deployment its own bucket or prefix",
                    describe(),
                    String::from_utf8_lossy(&bytes)
                ),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && write => self
                .storage
                .put(OWNER_NAME, owner.as_bytes())
                .ctx(|| format!("write {}", describe())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RepoError::io(format!("read {}", describe()), e)),
        }
    }

    /// Opens the repository kept in `storage` to read only: nothing is created or removed.
    pub fn open_storage_read_only(
        storage: Arc<dyn Storage>,
        durability: Durability,
    ) -> Result<Repository, RepoError> {
        let (bytes, _) = storage
            .get(CONFIG_NAME)
            .map_err(|e| RepoError::NotARepository {
                path: PathBuf::from(storage.describe("")),
                reason: format!("cannot read {}: {e}", storage.describe(CONFIG_NAME)),
            })?;
        let chunk_size = parse_config(&bytes).map_err(|reason| RepoError::NotARepository {
            path: PathBuf::from(storage.describe("")),
            reason,
        })?;
        let root = storage.local_path("").unwrap_or_default();
        let repo = Repository::new(&root, storage, chunk_size, durability);
        repo.rescan()?;
        Ok(repo)
    }

    /// The durability setting the repository was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Stores `index` under `name`, replacing any index of that name atomically.
    pub fn put_index(&self, name: &str, index: &DiskIndex) -> Result<(), RepoError> {
        check_storable(name, index)?;
        self.write_index(name, &index.encode())
    }

    /// Stores the encoded index `name` atomically, after dropping cached indexes built from it.
    fn write_index(&self, name: &str, bytes: &[u8]) -> Result<(), RepoError> {
        let key = index_key(name);
        self.index_cache.forget_file(&key);
        self.storage
            .put(&key, bytes)
            .ctx(|| format!("write index {}", self.storage.describe(&key)))
    }

    /// Stores `index` under `name` like [`Repository::put_index`]; when `parent` names the
    /// index of the point before and few chunks changed, as its changes against that index
    /// (read here, not taken from the caller, so the delta is always against what is stored).
    /// An unreadable parent, a chain already 16 deltas deep or a large change store
    /// the index whole.
    pub fn put_index_after(
        &self,
        name: &str,
        index: &DiskIndex,
        parent: Option<&str>,
    ) -> Result<(), RepoError> {
        let Some(parent) = parent.filter(|p| *p != name) else {
            return self.put_index(name, index);
        };
        check_storable(name, index)?;
        let _held = self
            .index_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A parent in the cache is used, but not added to it: the next backup's parent is
        // the index written here.
        let bytes = self
            .load_index(parent, false)
            .ok()
            .and_then(|p| index.encode_delta(parent, &p.index, p.depth + 1))
            .unwrap_or_else(|| index.encode());
        self.write_index(name, &bytes)
    }

    /// Loads the index `name`, checking its trailing hash (and, for a delta, its parents').
    ///
    /// Served from the cache of recently loaded indexes when it holds `name` (see
    /// [`Repository::get_index_shared`]) but not added to it: a caller reading many indexes
    /// (garbage collection, verification) does not push out the ones restores use.
    pub fn get_index(&self, name: &str) -> Result<DiskIndex, RepoError> {
        // A cached index is copied; one just read is the caller's alone.
        self.load_index_again(name, false)
            .map(|l| Arc::try_unwrap(l.index).unwrap_or_else(|shared| DiskIndex::clone(&shared)))
    }

    /// Loads the index `name` like [`Repository::get_index`], through a small cache of
    /// recently loaded indexes (served while the files they were read from are unchanged):
    /// the restores of one point, and the backup after it, read it once.
    /// [`Repository::check_stored`] of the index returned remembers which packs hold its
    /// chunks, so checking it again costs a `stat` per pack.
    pub fn get_index_shared(&self, name: &str) -> Result<Arc<DiskIndex>, RepoError> {
        self.load_index_again(name, true).map(|l| l.index)
    }

    /// [`Repository::load_index`], once more when a delta was read just before
    /// `delete_index` stored it whole and removed its parent (it is whole now). Lasting
    /// damage fails the same way twice.
    fn load_index_again(&self, name: &str, cache: bool) -> Result<Loaded, RepoError> {
        match self.load_index(name, cache) {
            Err(RepoError::IndexCorrupt { reason, .. }) if reason.starts_with(PARENT_PREFIX) => {
                self.load_index(name, cache)
            }
            loaded => loaded,
        }
    }

    /// The index `name`, from the cache or read (and, with `cache`, kept there).
    fn load_index(&self, name: &str, cache: bool) -> Result<Loaded, RepoError> {
        if let Some(hit) = self.index_cache.get(name, self.storage.as_ref()) {
            return Ok(hit);
        }
        let mut deltas = Vec::new();
        let mut files = Vec::new();
        let mut at = name.to_string();
        let whole = loop {
            let (stored, id) = self.read_stored(&at, name)?;
            files.push((index_key(&at), id));
            match stored {
                StoredIndex::Whole(index) => break index,
                StoredIndex::Delta(d) => {
                    if deltas.len() >= usize::from(MAX_DELTA_DEPTH) {
                        return Err(RepoError::IndexCorrupt {
                            name: name.to_string(),
                            reason: format!("its chain of deltas is longer than {MAX_DELTA_DEPTH}"),
                        });
                    }
                    at = d.parent.clone();
                    deltas.push(d);
                }
            }
        };
        let depth = deltas.len() as u8;
        let corrupt = |reason| RepoError::IndexCorrupt {
            name: name.to_string(),
            reason,
        };
        let mut index = whole;
        for d in deltas.iter().rev() {
            index = d.apply(index).map_err(corrupt)?;
        }
        if let Some(top) = deltas.first() {
            top.check_whole(&index).map_err(corrupt)?;
        }
        let loaded = Loaded {
            index: Arc::new(index),
            depth,
            files,
        };
        if cache {
            self.index_cache.insert(name, loaded.clone());
        }
        Ok(loaded)
    }

    /// Reads and parses the index file `name`, on the way to loading `wanted`: a parent that
    /// is missing or damaged makes `wanted` corrupt, naming the parent. Also gives the
    /// identity of the file read.
    fn read_stored(
        &self,
        name: &str,
        wanted: &str,
    ) -> Result<(StoredIndex, ObjectVersion), RepoError> {
        validate_name(name)?;
        let key = index_key(name);
        let via = |reason: String| {
            if name == wanted {
                reason
            } else {
                format!("{PARENT_PREFIX}{name}: {reason}")
            }
        };
        let (bytes, id) = match self.storage.get(&key) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound && name == wanted => {
                return Err(RepoError::IndexMissing {
                    name: name.to_string(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::IndexCorrupt {
                    name: wanted.to_string(),
                    reason: via("missing".to_string()),
                })
            }
            Err(e) => {
                return Err(RepoError::io(
                    format!("read index {}", self.storage.describe(&key)),
                    e,
                ))
            }
        };
        let stored = StoredIndex::decode(&bytes).map_err(|reason| RepoError::IndexCorrupt {
            name: wanted.to_string(),
            reason: via(reason),
        })?;
        Ok((stored, id))
    }

    /// Deletes the index `name` (its chunks stay until [`Repository::gc`]). Indexes stored as
    /// deltas against it are stored whole first, each atomically: a crash in between leaves
    /// every index loadable.
    pub fn delete_index(&self, name: &str) -> Result<(), RepoError> {
        validate_name(name)?;
        let _held = self
            .index_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for child in self.list_indexes()? {
            if child != name && self.parent_of(&child)?.as_deref() == Some(name) {
                let loaded = self.load_index(&child, false)?;
                self.put_index(&child, &loaded.index)?;
            }
        }
        let key = index_key(name);
        self.index_cache.forget_file(&key);
        match self.storage.delete(&key) {
            Ok(()) => self
                .storage
                .sync(&[&key])
                .ctx(|| format!("fsync folder {}", self.storage.describe(INDEXES_DIR))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RepoError::IndexMissing {
                name: name.to_string(),
            }),
            Err(e) => Err(RepoError::io(
                format!("delete index {}", self.storage.describe(&key)),
                e,
            )),
        }
    }

    /// The parent the index file `name` names, when it is a delta (read from its first bytes).
    fn parent_of(&self, name: &str) -> Result<Option<String>, RepoError> {
        let key = index_key(name);
        let head = match self.storage.get_head(&key, PEEK_LEN) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(RepoError::io(
                    format!("read index {}", self.storage.describe(&key)),
                    e,
                ))
            }
        };
        Ok(peek_parent(&head).map(str::to_string))
    }

    /// Names of all stored indexes, sorted.
    pub fn list_indexes(&self) -> Result<Vec<String>, RepoError> {
        let keys = self
            .storage
            .list(INDEXES_PREFIX)
            .ctx(|| format!("list {}", self.storage.describe(INDEXES_DIR)))?;
        let mut names = Vec::new();
        for key in &keys {
            let Some(name) = key
                .strip_prefix(INDEXES_PREFIX)
                .and_then(|n| n.strip_suffix(INDEX_EXT))
            else {
                continue;
            };
            if validate_name(name).is_ok() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// True when the repository holds a chunk for `d` (its content is not checked).
    pub fn has_chunk(&self, d: &ChunkDigest) -> bool {
        matches!(self.locate_or_rescan(d), Ok(Some(_)))
    }

    /// Reads, decompresses and verifies one chunk.
    pub fn read_chunk(&self, d: &ChunkDigest) -> Result<Vec<u8>, RepoError> {
        let loc = self.locate_or_rescan(d)?.ok_or_else(|| self.not_found(d))?;
        let mut out = vec![0u8; loc.entry.len as usize];
        self.load_into(&mut ChunkCodec::new()?, d, &loc, &mut out)?;
        Ok(out)
    }

    /// Where the chunk `d` is stored, if it is.
    pub fn chunk_location(&self, d: &ChunkDigest) -> Option<ChunkLocation> {
        let loc = self.locate_or_rescan(d).ok().flatten()?;
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let key = &map.packs.get(loc.pack as usize)?.key;
        Some(ChunkLocation {
            pack: self
                .storage
                .local_path(key)
                .unwrap_or_else(|| PathBuf::from(key)),
            offset: loc.entry.offset,
            len: loc.entry.record_len() as u64,
        })
    }

    /// The error for chunk `d`, which no readable pack holds: [`RepoError::PackIndexCorrupt`]
    /// when the damaged index of a pack lists it, else [`RepoError::ChunkMissing`].
    pub fn not_found(&self, d: &ChunkDigest) -> RepoError {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        match map.damaged.iter().find(|p| p.lists(d)) {
            Some(p) => RepoError::PackIndexCorrupt {
                digest: *d,
                pack: self.storage.describe(&p.key),
                reason: p.reason.clone(),
                chunks: p.count,
            },
            None => RepoError::ChunkMissing { digest: *d },
        }
    }

    /// Pack files whose own index cannot be read (found when the repository was opened or
    /// rescanned).
    pub fn damaged_packs(&self) -> Vec<PackDamage> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.damaged
            .iter()
            .map(|p| PackDamage {
                pack: self.storage.describe(&p.key),
                reason: p.reason.clone(),
                chunks: p.count,
            })
            .collect()
    }

    /// Where the record at `offset` of pack number `pack` lies, for an error.
    pub(crate) fn place(&self, pack: u32, offset: u64) -> ChunkPlace {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        ChunkPlace {
            pack: map.packs.get(pack as usize).map_or_else(
                || format!("pack #{pack}"),
                |p| self.storage.describe(&p.key),
            ),
            offset,
        }
    }

    /// The location of `d` among the packs known to this handle.
    pub(crate) fn locate(&self, d: &ChunkDigest) -> Option<Loc> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .locs
            .get(d)
            .copied()
    }

    /// The location of `d`, looking for packs written since open when it is not known.
    pub(crate) fn locate_or_rescan(&self, d: &ChunkDigest) -> Result<Option<Loc>, RepoError> {
        if let Some(l) = self.locate(d) {
            return Ok(Some(l));
        }
        self.rescan_until(|| self.locate(d).is_some())?;
        Ok(self.locate(d))
    }

    /// Rescans for packs written since open until `found` holds. Where the storage's
    /// listings may lag its writes (an object store), a miss is looked for again a few times
    /// over about three seconds before it is believed; a folder is believed at once.
    pub(crate) fn rescan_until(&self, found: impl Fn() -> bool) -> Result<(), RepoError> {
        self.rescan()?;
        if !self.storage.listing_may_lag() {
            return Ok(());
        }
        for wait_ms in LAGGING_LISTING_WAITS {
            if found() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            self.rescan()?;
        }
        Ok(())
    }

    /// The open pack number `pack`; `ChunkMissing` for `d` when it is gone.
    fn pack_file(&self, pack: u32, d: &ChunkDigest) -> Result<Arc<dyn StoredObject>, RepoError> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = files.get(&pack) {
            return Ok(f.clone());
        }
        let key = {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            match map.packs.get(pack as usize) {
                Some(p) if p.present => p.key.clone(),
                _ => return Err(RepoError::ChunkMissing { digest: *d }),
            }
        };
        let file = match self.storage.open(&key) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::ChunkMissing { digest: *d })
            }
            Err(e) => {
                return Err(RepoError::io(
                    format!("open pack {}", self.storage.describe(&key)),
                    e,
                ))
            }
        };
        files.insert(pack, file.clone());
        Ok(file)
    }

    /// Tells the kernel `len` bytes at `offset` of pack `pack` will be read soon, so scattered
    /// reads find them already on their way (advice only: failures are ignored).
    pub(crate) fn advise_pack(&self, pack: u32, d: &ChunkDigest, offset: u64, len: u64) {
        if let Ok(f) = self.pack_file(pack, d) {
            f.will_need(offset, len);
        }
    }

    /// Closes a pack file this handle holds open (before garbage collection removes it).
    pub(crate) fn forget_pack_file(&self, pack: u32) {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pack);
    }

    /// Reads chunk `d` from `loc` into `out` (exactly the chunk's length) and verifies it.
    ///
    /// Raw chunks are read straight into `out`; compressed ones through the codec's buffer.
    /// A damaged chunk's error names its pack and offset.
    pub(crate) fn load_into(
        &self,
        codec: &mut ChunkCodec,
        d: &ChunkDigest,
        loc: &Loc,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        self.load_unplaced(codec, d, loc, out)
            .map_err(|e| e.at_place(|| self.place(loc.pack, loc.entry.offset)))
    }

    /// [`Repository::load_into`] without the place in its errors.
    fn load_unplaced(
        &self,
        codec: &mut ChunkCodec,
        d: &ChunkDigest,
        loc: &Loc,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        let e = loc.entry;
        if e.len as usize != out.len() {
            return Err(RepoError::ChunkCorrupt {
                digest: *d,
                at: None,
                reason: format!("chunk holds {} bytes but {} are expected", e.len, out.len()),
            });
        }
        let file = self.pack_file(loc.pack, d)?;
        let read_err = |err: io::Error| match err.kind() {
            io::ErrorKind::UnexpectedEof => RepoError::ChunkCorrupt {
                digest: *d,
                at: None,
                reason: "its pack is truncated".to_string(),
            },
            _ => RepoError::io(
                format!(
                    "read chunk {d} in {}",
                    self.place(loc.pack, loc.entry.offset)
                ),
                err,
            ),
        };
        if e.codec == CODEC_RAW && e.stored == e.len {
            file.read_exact_at(out, e.offset + u64::from(e.head))
                .map_err(read_err)?;
            verify(d, out)
        } else {
            let buf = codec.record_buf(e.record_len());
            file.read_exact_at(buf, e.offset).map_err(read_err)?;
            codec.decode_record(e.record_len(), d, out)
        }
    }

    /// Reads `buf.len()` bytes of pack number `pack` at `offset` (chunk `d` is the first
    /// record there, named in errors).
    pub(crate) fn read_pack(
        &self,
        pack: u32,
        d: &ChunkDigest,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), RepoError> {
        let file = self.pack_file(pack, d)?;
        file.read_exact_at(buf, offset)
            .map_err(|err| match err.kind() {
                io::ErrorKind::UnexpectedEof => RepoError::ChunkCorrupt {
                    digest: *d,
                    at: Some(self.place(pack, offset)),
                    reason: "its pack is truncated".to_string(),
                },
                _ => RepoError::io(format!("read chunks in {}", self.place(pack, offset)), err),
            })
    }

    /// Refreshes the modification time of the pack holding `d` (once per pack per
    /// operation, tracked in `touched`) so GC's grace window covers it; false if `d` is not stored.
    pub(crate) fn touch_chunk(&self, d: &ChunkDigest, touched: &Mutex<HashSet<u32>>) -> bool {
        let Some(loc) = self.locate(d) else {
            return false;
        };
        let first = touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(loc.pack);
        if first {
            let key = {
                let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
                map.packs.get(loc.pack as usize).map(|p| p.key.clone())
            };
            // A pack that cannot be touched is gone; failing to set the time of one that is
            // there only narrows GC's safety margin (the storage ignores that).
            if key.is_none_or(|k| self.storage.touch(&k).is_err()) {
                return false;
            }
        }
        true
    }

    /// The dictionary new chunks are compressed with, if the repository has one.
    pub(crate) fn dictionary(&self) -> Option<Arc<Dictionary>> {
        self.dicts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .cloned()
    }

    /// Trains a dictionary on `samples` and, unless the repository got one meanwhile, stores
    /// it (durably, before any chunk uses it) as the one new chunks are compressed with.
    /// Training that finds nothing to learn leaves the repository without one.
    pub(crate) fn adopt_dictionary(&self, samples: (Vec<u8>, Vec<usize>)) -> Result<(), RepoError> {
        let Some(d) = dict::train(&samples.0, &samples.1) else {
            return Ok(());
        };
        let d = Arc::new(d);
        let mut dicts = self.dicts.write().unwrap_or_else(PoisonError::into_inner);
        if dicts.is_empty() {
            dict::store(self.storage.as_ref(), &d)?;
            dicts.push(d);
        }
        Ok(())
    }

    /// Removes leftovers of interrupted writes (a folder's `.tmp-*` files in the root,
    /// `indexes/`, `packs/`, `dicts/` and every pack folder).
    fn remove_stale_temp_files(&self) -> Result<(), RepoError> {
        self.storage.remove_temporaries().ctx(|| {
            format!(
                "remove stale temporary files in {}",
                self.storage.describe("")
            )
        })
    }
}

/// Key of the index `name` (already validated).
fn index_key(name: &str) -> String {
    format!("{INDEXES_PREFIX}{name}{INDEX_EXT}")
}

/// Reads the chunk size out of a config file; the error says why it is not a repository.
fn parse_config(bytes: &[u8]) -> Result<u32, String> {
    let Ok(raw) = <&[u8; CONFIG_LEN]>::try_from(bytes) else {
        return Err(format!(
            "config is {} bytes, expected {CONFIG_LEN}",
            bytes.len()
        ));
    };
    let config = ConfigFile {
        magic: [
            raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
        ],
        version: [raw[8], raw[9], raw[10], raw[11]],
        chunk_size: [raw[12], raw[13], raw[14], raw[15]],
    };
    if config.magic != CONFIG_MAGIC {
        return Err("config has a bad magic (not an emrest repository)".to_string());
    }
    let version = u32::from_le_bytes(config.version);
    if version != CONFIG_VERSION {
        return Err(format!(
            "unsupported repository format version {version} (this build reads {CONFIG_VERSION})"
        ));
    }
    let chunk_size = u32::from_le_bytes(config.chunk_size);
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(format!(
            "config chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"
        ));
    }
    Ok(chunk_size)
}

/// The config of a new repository of `chunk_size`; the error says why there can be none.
fn config_bytes(chunk_size: u32) -> Result<[u8; CONFIG_LEN], String> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(format!(
            "cannot create a repository with chunk size {chunk_size}: it must be within {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"
        ));
    }
    let config = ConfigFile {
        magic: CONFIG_MAGIC,
        version: CONFIG_VERSION.to_le_bytes(),
        chunk_size: chunk_size.to_le_bytes(),
    };
    Ok(config.to_bytes())
}

/// Creates a repository in the folder `root` (kept by `storage`): folders first, `config`
/// last, so a crash leaves a folder `open` can finish.
fn create(
    root: &Path,
    storage: &FolderStorage,
    durability: Durability,
    chunk_size: u32,
) -> Result<(), RepoError> {
    let not_repo = |reason: String| RepoError::NotARepository {
        path: root.to_path_buf(),
        reason,
    };
    let config = config_bytes(chunk_size).map_err(not_repo)?;
    let existed = root.exists();
    fs::create_dir_all(root).ctx(|| format!("create folder {}", root.display()))?;
    // Refuse to take over a folder holding anything but a half-created repository.
    for entry in fs::read_dir(root).ctx(|| format!("list {}", root.display()))? {
        let entry = entry.ctx(|| format!("list {}", root.display()))?;
        let name = entry.file_name();
        let ours = name == PACKS_DIR
            || name == INDEXES_DIR
            || name == DICTS_DIR
            || name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes());
        if !ours {
            return Err(not_repo(format!(
                "the folder has no config file and is not empty (found {:?})",
                name
            )));
        }
    }
    for dir in [PACKS_DIR, INDEXES_DIR] {
        let path = root.join(dir);
        fs::create_dir_all(&path).ctx(|| format!("create folder {}", path.display()))?;
    }
    storage
        .put(CONFIG_NAME, &config)
        .ctx(|| format!("write {}", root.join(CONFIG_NAME).display()))?;
    if !existed {
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsutil::fsync_dir(parent, durability)?;
        }
    }
    Ok(())
}
