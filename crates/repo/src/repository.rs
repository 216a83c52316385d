//! The [`Repository`] handle: opening and creating, config, indexes and single-chunk access.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use crate::chunk::{verify, ChunkCodec, CODEC_RAW};
use crate::dict::{self, Dictionary, DICTS_DIR};
use crate::error::IoContext;
use crate::fsutil::{self, TEMP_PREFIX};
use crate::index::{peek_parent, validate_name, StoredIndex, MAX_DELTA_DEPTH, PEEK_LEN};
use crate::index_cache::{FileId, IndexCache, Loaded};
use crate::pack::{ChunkMap, Loc};
use crate::{
    ChunkDigest, DiskIndex, Durability, RepoError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
};

/// File name of the repository config.
pub(crate) const CONFIG_NAME: &str = "config";
/// Folder of pack files.
const PACKS_DIR: &str = "packs";
/// Folder of index files.
const INDEXES_DIR: &str = "indexes";
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

/// A backup repository in one local folder; `Send + Sync`, share it via `Arc`.
#[derive(Debug)]
pub struct Repository {
    pub(crate) root: PathBuf,
    pub(crate) packs_dir: PathBuf,
    pub(crate) indexes_dir: PathBuf,
    pub(crate) dicts_dir: PathBuf,
    pub(crate) chunk_size: u32,
    pub(crate) durability: Durability,
    /// Full restores write their target with `O_DIRECT` where the file system allows it.
    pub(crate) direct_io: bool,
    /// Every stored chunk's location, loaded from the packs' indexes.
    pub(crate) map: RwLock<ChunkMap>,
    /// Open pack files, by pack number.
    files: Mutex<HashMap<u32, Arc<File>>>,
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
    /// The pack file holding it.
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
        let config_path = root.join(CONFIG_NAME);
        let chunk_size = match fs::read(&config_path) {
            Ok(bytes) => parse_config(&bytes).map_err(not_repo)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create(root, durability, chunk_size)?;
                chunk_size
            }
            Err(e) => return Err(RepoError::io(format!("read {}", config_path.display()), e)),
        };
        let repo = Repository::new(root, chunk_size, durability);
        for dir in [&repo.packs_dir, &repo.indexes_dir, &repo.dicts_dir] {
            fs::create_dir_all(dir).ctx(|| format!("create folder {}", dir.display()))?;
        }
        repo.remove_stale_temp_files()?;
        repo.rescan()?;
        Ok(repo)
    }

    /// Opens an existing repository to read only, for a second process beside the writer: nothing
    /// is created and no temporary file is removed (they may belong to the writer's work).
    pub fn open_read_only(root: &Path, durability: Durability) -> Result<Repository, RepoError> {
        let config_path = root.join(CONFIG_NAME);
        let bytes = fs::read(&config_path).map_err(|e| RepoError::NotARepository {
            path: root.to_path_buf(),
            reason: format!("cannot read {}: {e}", config_path.display()),
        })?;
        let chunk_size = parse_config(&bytes).map_err(|reason| RepoError::NotARepository {
            path: root.to_path_buf(),
            reason,
        })?;
        let repo = Repository::new(root, chunk_size, durability);
        repo.rescan()?;
        Ok(repo)
    }

    fn new(root: &Path, chunk_size: u32, durability: Durability) -> Repository {
        Repository {
            root: root.to_path_buf(),
            packs_dir: root.join(PACKS_DIR),
            indexes_dir: root.join(INDEXES_DIR),
            dicts_dir: root.join(DICTS_DIR),
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
        let new = dict::load_new(&self.dicts_dir, &known)?;
        if !new.is_empty() {
            self.dicts
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(new);
        }
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .scan(&self.packs_dir)
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

    /// The repository's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The durability setting the repository was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Stores `index` under `name`, replacing any index of that name atomically.
    pub fn put_index(&self, name: &str, index: &DiskIndex) -> Result<(), RepoError> {
        check_storable(name, index)?;
        self.index_cache.forget_file(&self.index_path(name));
        fsutil::atomic_write(
            &self.indexes_dir,
            &format!("{name}{INDEX_EXT}"),
            &index.encode(),
            self.durability,
        )
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
        self.index_cache.forget_file(&self.index_path(name));
        fsutil::atomic_write(
            &self.indexes_dir,
            &format!("{name}{INDEX_EXT}"),
            &bytes,
            self.durability,
        )
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
        if let Some(hit) = self.index_cache.get(name) {
            return Ok(hit);
        }
        let mut deltas = Vec::new();
        let mut files = Vec::new();
        let mut at = name.to_string();
        let whole = loop {
            let (stored, id) = self.read_stored(&at, name)?;
            files.push((self.index_path(&at), id));
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
    fn read_stored(&self, name: &str, wanted: &str) -> Result<(StoredIndex, FileId), RepoError> {
        validate_name(name)?;
        let path = self.index_path(name);
        let via = |reason: String| {
            if name == wanted {
                reason
            } else {
                format!("{PARENT_PREFIX}{name}: {reason}")
            }
        };
        let read = |path: &Path| -> io::Result<(Vec<u8>, FileId)> {
            use std::io::Read;
            let mut f = File::open(path)?;
            let meta = f.metadata()?;
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            f.read_to_end(&mut bytes)?;
            Ok((bytes, FileId::of(&meta)))
        };
        let (bytes, id) = match read(&path) {
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
            Err(e) => return Err(RepoError::io(format!("read index {}", path.display()), e)),
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
        let path = self.index_path(name);
        self.index_cache.forget_file(&path);
        match fs::remove_file(&path) {
            Ok(()) => fsutil::fsync_dir(&self.indexes_dir, self.durability),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RepoError::IndexMissing {
                name: name.to_string(),
            }),
            Err(e) => Err(RepoError::io(format!("delete index {}", path.display()), e)),
        }
    }

    /// The parent the index file `name` names, when it is a delta (read from its first bytes).
    fn parent_of(&self, name: &str) -> Result<Option<String>, RepoError> {
        use std::io::Read;
        let path = self.index_path(name);
        let mut head = Vec::with_capacity(PEEK_LEN);
        match File::open(&path) {
            Ok(f) => f
                .take(PEEK_LEN as u64)
                .read_to_end(&mut head)
                .ctx(|| format!("read index {}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RepoError::io(format!("read index {}", path.display()), e)),
        };
        Ok(peek_parent(&head).map(str::to_string))
    }

    /// Names of all stored indexes, sorted.
    pub fn list_indexes(&self) -> Result<Vec<String>, RepoError> {
        let dir = &self.indexes_dir;
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
            let entry = entry.ctx(|| format!("list {}", dir.display()))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(INDEX_EXT)) else {
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
        let loc = self
            .locate_or_rescan(d)?
            .ok_or(RepoError::ChunkMissing { digest: *d })?;
        let mut out = vec![0u8; loc.entry.len as usize];
        self.load_into(&mut ChunkCodec::new()?, d, &loc, &mut out)?;
        Ok(out)
    }

    /// Where the chunk `d` is stored, if it is.
    pub fn chunk_location(&self, d: &ChunkDigest) -> Option<ChunkLocation> {
        let loc = self.locate_or_rescan(d).ok().flatten()?;
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Some(ChunkLocation {
            pack: map.packs.get(loc.pack as usize)?.path.clone(),
            offset: loc.entry.offset,
            len: loc.entry.record_len() as u64,
        })
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
        self.rescan()?;
        Ok(self.locate(d))
    }

    /// The open pack file number `pack`; `ChunkMissing` for `d` when it is gone.
    fn pack_file(&self, pack: u32, d: &ChunkDigest) -> Result<Arc<File>, RepoError> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = files.get(&pack) {
            return Ok(f.clone());
        }
        let path = {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            match map.packs.get(pack as usize) {
                Some(p) if p.present => p.path.clone(),
                _ => return Err(RepoError::ChunkMissing { digest: *d }),
            }
        };
        let file = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::ChunkMissing { digest: *d })
            }
            Err(e) => return Err(RepoError::io(format!("open pack {}", path.display()), e)),
        };
        files.insert(pack, file.clone());
        Ok(file)
    }

    /// Tells the kernel `len` bytes at `offset` of pack `pack` will be read soon, so scattered
    /// reads find them already on their way (advice only: failures are ignored).
    pub(crate) fn advise_pack(&self, pack: u32, d: &ChunkDigest, offset: u64, len: u64) {
        if let Ok(f) = self.pack_file(pack, d) {
            crate::fsutil::advise(&f, offset, len, crate::target::Advice::WillNeed);
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
    pub(crate) fn load_into(
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
                reason: format!("chunk holds {} bytes but {} are expected", e.len, out.len()),
            });
        }
        let file = self.pack_file(loc.pack, d)?;
        let read_err = |err: io::Error| match err.kind() {
            io::ErrorKind::UnexpectedEof => RepoError::ChunkCorrupt {
                digest: *d,
                reason: "its pack is truncated".to_string(),
            },
            _ => RepoError::io(format!("read chunk {d} at offset {}", e.offset), err),
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
                    reason: "its pack is truncated".to_string(),
                },
                _ => RepoError::io(format!("read chunks from offset {offset}"), err),
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
            let path = {
                let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
                map.packs.get(loc.pack as usize).map(|p| p.path.clone())
            };
            let opened = path.map(|p| fs::File::options().append(true).open(p));
            match opened {
                // Best effort: failing to refresh the time only narrows GC's safety margin.
                Some(Ok(f)) => {
                    let _ = f.set_modified(SystemTime::now());
                }
                _ => return false,
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
            dict::store(&self.dicts_dir, &d, self.durability)?;
            dicts.push(d);
        }
        Ok(())
    }

    /// Path of the index file `name` (already validated).
    fn index_path(&self, name: &str) -> PathBuf {
        self.indexes_dir.join(format!("{name}{INDEX_EXT}"))
    }

    /// Removes `.tmp-*` leftovers from the root, `indexes/`, `packs/` and every pack folder.
    fn remove_stale_temp_files(&self) -> Result<(), RepoError> {
        fsutil::remove_temp_files(&self.root)?;
        fsutil::remove_temp_files(&self.indexes_dir)?;
        fsutil::remove_temp_files(&self.packs_dir)?;
        fsutil::remove_temp_files(&self.dicts_dir)?;
        for dir in crate::pack::list_dir(&self.packs_dir)? {
            if dir.is_dir() {
                fsutil::remove_temp_files(&dir)?;
            }
        }
        Ok(())
    }
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

/// Creates a repository at `root`: folders first, `config` last, so a crash leaves a folder `open` can finish.
fn create(root: &Path, durability: Durability, chunk_size: u32) -> Result<(), RepoError> {
    let not_repo = |reason: String| RepoError::NotARepository {
        path: root.to_path_buf(),
        reason,
    };
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(not_repo(format!(
            "cannot create a repository with chunk size {chunk_size}: it must be within {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"
        )));
    }
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
    let config = ConfigFile {
        magic: CONFIG_MAGIC,
        version: CONFIG_VERSION.to_le_bytes(),
        chunk_size: chunk_size.to_le_bytes(),
    };
    fsutil::atomic_write(root, CONFIG_NAME, &config.to_bytes(), durability)?;
    if !existed {
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsutil::fsync_dir(parent, durability)?;
        }
    }
    Ok(())
}
