//! Where the repository keeps its bytes: the [`Storage`] trait, its first implementation
//! ([`FolderStorage`], a local folder) and an in-memory one ([`MemoryStorage`]).
//!
//! The repository names everything it stores by a key — `config`, `packs/ab/<64 hex>.pack`,
//! `indexes/<name>.idx`, `dicts/<64 hex>.zdict` — and reads and writes only through this trait.
//! The operations are the ones an S3-compatible object store offers: an object is written
//! whole and appears atomically (no append, no rename), read whole or by range, listed by
//! prefix, removed. Packs are the one large write: they stream through an [`ObjectWriter`]
//! (a temporary file here; a buffered or multipart upload in an object store) and appear
//! under their key when finished.
//!
//! The folder keeps its speed tricks behind the same calls: [`Storage::open`] gives an open
//! file handle for positioned reads, with page-cache advice, and
//! [`Storage::sync`] fsyncs the folders of many new packs once per backup rather than per pack.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use crate::fsutil::{self, TempFile, TEMP_PREFIX};
use crate::Durability;

/// Which version of an object was read: equal while the object is unchanged, different once
/// it is replaced or modified (the folder: device, inode, length and times of the file).
/// Opaque to the repository, which only compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectVersion(pub [u64; 7]);

/// What [`Storage::stat`] tells of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Length in bytes.
    pub len: u64,
    /// When it was written or last touched ([`Storage::touch`]); garbage collection's
    /// grace period counts from it.
    pub modified: SystemTime,
    /// Which version of it this is.
    pub version: ObjectVersion,
}

/// An object opened for ranged reads (the folder: an open file handle).
pub trait StoredObject: Send + Sync {
    /// The object's length when it was opened.
    fn len(&self) -> u64;

    /// True when the object is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`; `UnexpectedEof` when the object ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Tells the storage `len` bytes at `offset` will be read soon. Advice only: the
    /// default ignores it.
    fn will_need(&self, _offset: u64, _len: u64) {}
}

impl fmt::Debug for dyn StoredObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredObject")
            .field("len", &self.len())
            .finish()
    }
}

/// An object being written; it appears under its key only when [`ObjectWriter::finish`]ed,
/// and dropping an unfinished writer leaves nothing behind.
pub trait ObjectWriter: Send {
    /// Appends `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Stores what was written under `key` atomically (durably per the storage's
    /// durability, but for the listing of its folder: see [`Storage::sync`]). An object
    /// store may still be uploading when this returns: [`Storage::sync`] of the key waits
    /// for it and reports its failure, and reads of the key through the same storage wait.
    fn finish(self: Box<Self>, key: &str) -> io::Result<()>;
}

/// Where a repository keeps its objects, by key (`/`-separated, e.g. `packs/ab/….pack`).
///
/// Errors are `io::Error`s; a missing object is `io::ErrorKind::NotFound`.
pub trait Storage: Send + Sync + fmt::Debug {
    /// How errors and diagnostics name the object `key` (the folder: its path).
    fn describe(&self, key: &str) -> String {
        key.to_string()
    }

    /// The object `key` as a local file, where it is one (diagnostics and tests).
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    /// The whole object `key`, with the version read.
    fn get(&self, key: &str) -> io::Result<(Vec<u8>, ObjectVersion)>;

    /// The object `key` opened for ranged reads.
    fn open(&self, key: &str) -> io::Result<Arc<dyn StoredObject>>;

    /// Reads up to `limit` bytes from the start of `key` (fewer when it is shorter).
    fn get_head(&self, key: &str, limit: usize) -> io::Result<Vec<u8>> {
        let object = self.open(key)?;
        let mut buf = vec![0u8; object.len().min(limit as u64) as usize];
        object.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }

    /// Stores `bytes` as `key`, replacing any object of that name atomically and durably.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;

    /// Starts an object to be finished under a key beginning with `prefix`.
    fn writer(&self, prefix: &str) -> io::Result<Box<dyn ObjectWriter>>;

    /// Keys beginning with `prefix` (which ends with `/`), sorted; temporaries excluded.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;

    /// Length, time and version of `key`; `None` when there is no such object.
    fn stat(&self, key: &str) -> io::Result<Option<ObjectMeta>>;

    /// True when `key` exists.
    fn exists(&self, key: &str) -> io::Result<bool> {
        self.stat(key).map(|m| m.is_some())
    }

    /// Removes `key` (`NotFound` when it is not there); durable once [`Storage::sync`]ed.
    fn delete(&self, key: &str) -> io::Result<()>;

    /// Sets the modified time of `key` to now (garbage collection's grace period).
    fn touch(&self, key: &str) -> io::Result<()>;

    /// Makes the appearance or removal of `keys` durable (the folder: fsyncs the folders
    /// holding them; an object store: waits for their uploads still running), reporting a
    /// write that failed.
    fn sync(&self, _keys: &[&str]) -> io::Result<()> {
        Ok(())
    }

    /// Removes leftovers of writes a crash interrupted (the folder: `.tmp-*` files).
    fn remove_temporaries(&self) -> io::Result<()> {
        Ok(())
    }

    /// True when a listing may not show an object written a moment ago (some object
    /// stores): the repository then looks again before it believes a chunk is missing.
    fn listing_may_lag(&self) -> bool {
        false
    }

    /// Forgets object data kept in memory from earlier reads, so the next reads see the
    /// store as it is now (verification calls it first). Default: nothing kept.
    fn forget_reads(&self) {}

    /// The requests sent so far, for a storage that is paid by the request (an object
    /// store); `None` for a folder.
    fn requests(&self) -> Option<RequestCounts> {
        None
    }
}

/// Requests an object store was sent, by kind, and the bytes each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Whole and ranged reads.
    pub get: u64,
    /// Whole-object writes.
    pub put: u64,
    /// Listing pages.
    pub list: u64,
    /// Looks at one object's length and time.
    pub head: u64,
    /// Removals.
    pub delete: u64,
    /// Server-side copies (refreshing an object's time).
    pub copy: u64,
    /// Multipart upload requests (start, parts, completion, abort).
    pub multipart: u64,
    /// Attempts repeated after a transient failure (included in the counts above).
    pub retries: u64,
    /// Bytes sent.
    pub bytes_up: u64,
    /// Bytes received.
    pub bytes_down: u64,
}

impl RequestCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.get + self.put + self.list + self.head + self.delete + self.copy + self.multipart
    }

    /// The counts since `earlier`.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            get: self.get - earlier.get,
            put: self.put - earlier.put,
            list: self.list - earlier.list,
            head: self.head - earlier.head,
            delete: self.delete - earlier.delete,
            copy: self.copy - earlier.copy,
            multipart: self.multipart - earlier.multipart,
            retries: self.retries - earlier.retries,
            bytes_up: self.bytes_up - earlier.bytes_up,
            bytes_down: self.bytes_down - earlier.bytes_down,
        }
    }
}

impl fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        write!(
            f,
            "{} requests ({} GET, {} PUT, {} LIST, {} HEAD, {} DELETE, {} COPY, {} multipart; {} retried), {:.1} MiB sent, {:.1} MiB received",
            self.total(),
            self.get,
            self.put,
            self.list,
            self.head,
            self.delete,
            self.copy,
            self.multipart,
            self.retries,
            mib(self.bytes_up),
            mib(self.bytes_down)
        )
    }
}

/// A repository in a local folder: a key is a path under the root.
#[derive(Debug)]
pub struct FolderStorage {
    root: PathBuf,
    durability: Durability,
}

impl FolderStorage {
    /// The folder `root` (which must exist), fsyncing per `durability`.
    pub fn new(root: &Path, durability: Durability) -> FolderStorage {
        FolderStorage {
            root: root.to_path_buf(),
            durability,
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The folder of `key` (the root for a key without `/`).
    fn dir_of(&self, key: &str) -> PathBuf {
        match key.rsplit_once('/') {
            Some((dir, _)) => self.root.join(dir),
            None => self.root.clone(),
        }
    }

    /// Adds the keys of the files under `dir` (key prefix `prefix`), recursively.
    fn walk(&self, dir: &Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let key = format!("{prefix}{name}");
            if is_dir(&entry)? {
                self.walk(&entry.path(), &format!("{key}/"), out)?;
            } else {
                out.push(key);
            }
        }
        Ok(())
    }
}

/// Whether `entry` is a folder, or a link to one (as a folder's repository may hold).
fn is_dir(entry: &fs::DirEntry) -> io::Result<bool> {
    let t = entry.file_type()?;
    Ok(t.is_dir() || (t.is_symlink() && entry.path().is_dir()))
}

/// The version of the file `m` describes.
fn version_of(m: &fs::Metadata) -> ObjectVersion {
    ObjectVersion([
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ctime() as u64,
        m.ctime_nsec() as u64,
    ])
}

/// An open pack (or any file) of a folder.
struct OpenFile {
    file: File,
    len: u64,
}

impl StoredObject for OpenFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn will_need(&self, offset: u64, len: u64) {
        fsutil::advise(&self.file, offset, len, crate::target::Advice::WillNeed);
    }
}

/// A file being written under a temporary name in the folder it will be renamed in.
struct FolderWriter {
    tmp: TempFile,
    root: PathBuf,
    durability: Durability,
}

impl ObjectWriter for FolderWriter {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tmp.file().write_all(bytes)
    }

    fn finish(self: Box<Self>, key: &str) -> io::Result<()> {
        let dest = self.root.join(key);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir)?;
        }
        self.tmp.persist(&dest, self.durability).map_err(into_io)
    }
}

impl Storage for FolderStorage {
    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.path(key))
    }

    fn get(&self, key: &str) -> io::Result<(Vec<u8>, ObjectVersion)> {
        use std::io::Read;
        let mut f = File::open(self.path(key))?;
        let meta = f.metadata()?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut bytes)?;
        Ok((bytes, version_of(&meta)))
    }

    fn open(&self, key: &str) -> io::Result<Arc<dyn StoredObject>> {
        let file = File::open(self.path(key))?;
        let len = file.metadata()?.len();
        Ok(Arc::new(OpenFile { file, len }))
    }

    fn get_head(&self, key: &str, limit: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut head = Vec::with_capacity(limit);
        File::open(self.path(key))?
            .take(limit as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let dir = self.dir_of(key);
        let name = key.rsplit('/').next().unwrap_or(key);
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
        }
        fsutil::atomic_write(&dir, name, bytes, self.durability).map_err(into_io)
    }

    fn writer(&self, prefix: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let dir = self.root.join(prefix.trim_end_matches('/'));
        let tmp = match TempFile::create(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)?;
                TempFile::create(&dir)?
            }
            tmp => tmp?,
        };
        Ok(Box::new(FolderWriter {
            tmp,
            root: self.root.clone(),
            durability: self.durability,
        }))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk(
            &self.root.join(prefix.trim_end_matches('/')),
            prefix,
            &mut out,
        )?;
        out.sort();
        Ok(out)
    }

    fn stat(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        match fs::metadata(self.path(key)) {
            Ok(m) if m.is_file() => Ok(Some(ObjectMeta {
                len: m.len(),
                modified: m.modified()?,
                version: version_of(&m),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.path(key).is_file())
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        fs::remove_file(self.path(key))
    }

    /// Fails only when the file cannot be opened: a time that cannot be set only narrows
    /// garbage collection's safety margin, so that failure is ignored.
    fn touch(&self, key: &str) -> io::Result<()> {
        let f = File::options().append(true).open(self.path(key))?;
        let _ = f.set_modified(SystemTime::now());
        Ok(())
    }

    fn sync(&self, keys: &[&str]) -> io::Result<()> {
        if self.durability == Durability::NoSync {
            return Ok(());
        }
        // Each folder once, and the folder above a nested one (a new pack folder).
        let mut dirs: Vec<PathBuf> = Vec::new();
        for key in keys {
            let dir = self.dir_of(key);
            if dir != self.root {
                if let Some(parent) = dir.parent() {
                    dirs.push(parent.to_path_buf());
                }
            }
            dirs.push(dir);
        }
        dirs.sort();
        dirs.dedup();
        // Deepest first, so a folder is durable before the entry naming it.
        for dir in dirs.iter().rev() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn remove_temporaries(&self) -> io::Result<()> {
        remove_temporaries_under(&self.root)
    }
}

/// Removes the `.tmp-*` files in `dir` and every folder below it (leftovers of writes a crash
/// interrupted; also for other storages' local caches).
pub fn remove_temporaries_under(dir: &Path) -> io::Result<()> {
    fsutil::remove_temp_files(dir).map_err(into_io)?;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if is_dir(&entry)? {
            remove_temporaries_under(&entry.path())?;
        }
    }
    Ok(())
}

/// The I/O error inside a [`crate::RepoError`] from the crate's file helpers.
fn into_io(e: crate::RepoError) -> io::Error {
    match e {
        crate::RepoError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

/// The objects of a [`MemoryStorage`] by key, and the last generation given, shared with
/// its writers.
type MemoryObjects = RwLock<(BTreeMap<String, MemObject>, u64)>;

/// One object held by a [`MemoryStorage`].
#[derive(Clone, Debug)]
struct MemObject {
    bytes: Arc<Vec<u8>>,
    modified: SystemTime,
    generation: u64,
}

/// A repository held in memory (lost on drop): the engine against a storage that is not a
/// folder, for tests and trials. Writes are atomic and durable for as long as it lives.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Arc<MemoryObjects>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Replaces the bytes of `key` as they are, bypassing the repository (to damage a
    /// repository in tests).
    pub fn overwrite(&self, key: &str, bytes: Vec<u8>) {
        self.insert(key, bytes);
    }

    fn insert(&self, key: &str, bytes: Vec<u8>) {
        insert(&self.objects, key, bytes);
    }

    fn object(&self, key: &str) -> io::Result<MemObject> {
        self.objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .get(key)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no object {key}")))
    }
}

/// Stores `bytes` as `key` in `objects`, with a new generation.
fn insert(objects: &MemoryObjects, key: &str, bytes: Vec<u8>) {
    let mut objects = objects.write().unwrap_or_else(PoisonError::into_inner);
    objects.1 += 1;
    let generation = objects.1;
    objects.0.insert(
        key.to_string(),
        MemObject {
            bytes: Arc::new(bytes),
            modified: SystemTime::now(),
            generation,
        },
    );
}

fn mem_version(o: &MemObject) -> ObjectVersion {
    ObjectVersion([o.generation, o.bytes.len() as u64, 0, 0, 0, 0, 0])
}

/// An object of a [`MemoryStorage`] as it was when opened.
struct MemBytes(Arc<Vec<u8>>);

impl StoredObject for MemBytes {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// An object being written into a [`MemoryStorage`].
struct MemWriter {
    objects: Arc<MemoryObjects>,
    bytes: Vec<u8>,
}

impl ObjectWriter for MemWriter {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self: Box<Self>, key: &str) -> io::Result<()> {
        insert(&self.objects, key, self.bytes);
        Ok(())
    }
}

impl Storage for MemoryStorage {
    fn describe(&self, key: &str) -> String {
        format!("memory:{key}")
    }

    fn get(&self, key: &str) -> io::Result<(Vec<u8>, ObjectVersion)> {
        let o = self.object(key)?;
        Ok((o.bytes.as_ref().clone(), mem_version(&o)))
    }

    fn open(&self, key: &str) -> io::Result<Arc<dyn StoredObject>> {
        Ok(Arc::new(MemBytes(self.object(key)?.bytes)))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.insert(key, bytes.to_vec());
        Ok(())
    }

    fn writer(&self, _prefix: &str) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(MemWriter {
            objects: self.objects.clone(),
            bytes: Vec::new(),
        }))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        Ok(self
            .objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn stat(&self, key: &str) -> io::Result<Option<ObjectMeta>> {
        match self.object(key) {
            Ok(o) => Ok(Some(ObjectMeta {
                len: o.bytes.len() as u64,
                modified: o.modified,
                version: mem_version(&o),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        match objects.0.remove(key) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no object {key}"),
            )),
        }
    }

    fn touch(&self, key: &str) -> io::Result<()> {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        match objects.0.get_mut(key) {
            Some(o) => {
                o.modified = SystemTime::now();
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no object {key}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_and_memory_behave_alike_as_storage() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::behaves_as_a_storage(&FolderStorage::new(dir.path(), Durability::Fsync));
        crate::testing::behaves_as_a_storage(&MemoryStorage::new());
    }
}
