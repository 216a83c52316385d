//! The [`Repository`] handle: opening and creating, config, indexes and single-chunk access.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::chunk::ChunkCodec;
use crate::error::IoContext;
use crate::fsutil::{self, TEMP_PREFIX};
use crate::index::validate_name;
use crate::{
    ChunkDigest, DiskIndex, Durability, RepoError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
};

/// File name of the repository config.
const CONFIG_NAME: &str = "config";
/// Folder of chunk files.
const CHUNKS_DIR: &str = "chunks";
/// Folder of index files.
const INDEXES_DIR: &str = "indexes";
/// Extension of index files.
const INDEX_EXT: &str = ".idx";
/// Magic at the start of `config`.
const CONFIG_MAGIC: [u8; 8] = *b"EMRESTRP";
/// The repository format version this build writes and reads.
const CONFIG_VERSION: u32 = 1;

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
    pub(crate) chunks_dir: PathBuf,
    pub(crate) indexes_dir: PathBuf,
    pub(crate) chunk_size: u32,
    pub(crate) durability: Durability,
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
        let repo = Repository {
            root: root.to_path_buf(),
            chunks_dir: root.join(CHUNKS_DIR),
            indexes_dir: root.join(INDEXES_DIR),
            chunk_size,
            durability,
        };
        for dir in [&repo.chunks_dir, &repo.indexes_dir] {
            fs::create_dir_all(dir).ctx(|| format!("create folder {}", dir.display()))?;
        }
        repo.remove_stale_temp_files()?;
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
        Ok(Repository {
            root: root.to_path_buf(),
            chunks_dir: root.join(CHUNKS_DIR),
            indexes_dir: root.join(INDEXES_DIR),
            chunk_size,
            durability,
        })
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
        validate_name(name)?;
        if let Some(reason) = index.inconsistency() {
            return Err(RepoError::IndexCorrupt {
                name: name.to_string(),
                reason: format!("refusing to store an inconsistent index: {reason}"),
            });
        }
        fsutil::atomic_write(
            &self.indexes_dir,
            &format!("{name}{INDEX_EXT}"),
            &index.encode(),
            self.durability,
        )
    }

    /// Loads the index `name`, checking its trailing hash.
    pub fn get_index(&self, name: &str) -> Result<DiskIndex, RepoError> {
        validate_name(name)?;
        let path = self.index_path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::IndexMissing {
                    name: name.to_string(),
                })
            }
            Err(e) => return Err(RepoError::io(format!("read index {}", path.display()), e)),
        };
        DiskIndex::decode(&bytes).map_err(|reason| RepoError::IndexCorrupt {
            name: name.to_string(),
            reason,
        })
    }

    /// Deletes the index `name` (its chunks stay until [`Repository::gc`]).
    pub fn delete_index(&self, name: &str) -> Result<(), RepoError> {
        validate_name(name)?;
        let path = self.index_path(name);
        match fs::remove_file(&path) {
            Ok(()) => fsutil::fsync_dir(&self.indexes_dir, self.durability),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RepoError::IndexMissing {
                name: name.to_string(),
            }),
            Err(e) => Err(RepoError::io(format!("delete index {}", path.display()), e)),
        }
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

    /// True when a chunk file for `d` exists (its content is not checked).
    pub fn has_chunk(&self, d: &ChunkDigest) -> bool {
        self.chunk_path(d).is_file()
    }

    /// Reads, decompresses and verifies one chunk.
    pub fn read_chunk(&self, d: &ChunkDigest) -> Result<Vec<u8>, RepoError> {
        let mut out = Vec::new();
        ChunkCodec::new()?.read_chunk(&self.chunk_path(d), d, &mut out)?;
        Ok(out)
    }

    /// Folder holding the chunk files whose digest starts with `d`'s first byte.
    pub(crate) fn chunk_dir(&self, d: &ChunkDigest) -> PathBuf {
        self.chunks_dir.join(d.prefix())
    }

    /// Path of the chunk file for `d`.
    pub(crate) fn chunk_path(&self, d: &ChunkDigest) -> PathBuf {
        self.chunk_dir(d).join(d.to_hex())
    }

    /// Path of the index file `name` (already validated).
    fn index_path(&self, name: &str) -> PathBuf {
        self.indexes_dir.join(format!("{name}{INDEX_EXT}"))
    }

    /// Refreshes the chunk's modification time so GC's grace window covers it; false if it is missing.
    pub(crate) fn touch_chunk(&self, d: &ChunkDigest) -> bool {
        match fs::File::open(self.chunk_path(d)) {
            // Best effort: failing to refresh the time only narrows GC's safety margin.
            Ok(f) => {
                let _ = f.set_modified(SystemTime::now());
                true
            }
            Err(_) => false,
        }
    }

    /// Removes `.tmp-*` leftovers from the root, `indexes/`, `chunks/` and every chunk folder.
    fn remove_stale_temp_files(&self) -> Result<(), RepoError> {
        fsutil::remove_temp_files(&self.root)?;
        fsutil::remove_temp_files(&self.indexes_dir)?;
        fsutil::remove_temp_files(&self.chunks_dir)?;
        for dir in self.chunk_subdirs()? {
            fsutil::remove_temp_files(&dir)?;
        }
        Ok(())
    }

    /// The `chunks/<2 hex>` folders that exist.
    pub(crate) fn chunk_subdirs(&self) -> Result<Vec<PathBuf>, RepoError> {
        let dir = &self.chunks_dir;
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
            let entry = entry.ctx(|| format!("list {}", dir.display()))?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir && entry.file_name().len() == 2 {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
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
        let ours = name == CHUNKS_DIR
            || name == INDEXES_DIR
            || name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes());
        if !ours {
            return Err(not_repo(format!(
                "the folder has no config file and is not empty (found {:?})",
                name
            )));
        }
    }
    for dir in [CHUNKS_DIR, INDEXES_DIR] {
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
