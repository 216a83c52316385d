//! Crash-safe file writing: temporary name in the same folder, fsync, rename, fsync the folder.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::IoContext;
use crate::{Durability, RepoError};

/// Prefix of every temporary file; `Repository::open` removes leftovers.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary file name, unique within this process and very likely across processes.
fn temp_name() -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TEMP_PREFIX}{}-{n}-{nanos:08x}", std::process::id())
}

/// A temporary file that is removed on drop unless it was renamed into place.
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates a new temporary file in `dir` (which must exist).
    pub(crate) fn create(dir: &Path) -> io::Result<TempFile> {
        let path = dir.join(temp_name());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file,
            persisted: false,
        })
    }

    /// The open file.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary path (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Fsyncs (if asked) and renames the file to `dest`; on error the temp file is removed.
    pub(crate) fn persist(mut self, dest: &Path, durability: Durability) -> Result<(), RepoError> {
        if durability == Durability::Fsync {
            self.file
                .sync_all()
                .ctx(|| format!("fsync {}", self.path.display()))?;
        }
        fs::rename(&self.path, dest)
            .ctx(|| format!("rename {} to {}", self.path.display(), dest.display()))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: an error path must not leave temp files behind.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `dir/name` atomically and durably (per `durability`).
pub(crate) fn atomic_write(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> Result<(), RepoError> {
    let mut tmp =
        TempFile::create(dir).ctx(|| format!("create temporary file in {}", dir.display()))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.file()
        .write_all(bytes)
        .ctx(|| format!("write {}", tmp_path.display()))?;
    tmp.persist(&dir.join(name), durability)?;
    fsync_dir(dir, durability)
}

/// Fsyncs a folder so renames and removals in it survive a crash.
pub(crate) fn fsync_dir(dir: &Path, durability: Durability) -> Result<(), RepoError> {
    if durability == Durability::NoSync {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync folder {}", dir.display()))
}

/// Removes every `.tmp-*` file directly inside `dir`; a missing `dir` is fine.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<(), RepoError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RepoError::io(format!("list {}", dir.display()), e)),
    };
    for entry in entries {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(RepoError::io(
                        format!("remove stale temporary file {}", path.display()),
                        e,
                    ))
                }
            }
        }
    }
    Ok(())
}

/// `posix_fadvise` over `len` bytes at `offset` of `file` (0: to the end). Advice only: an
/// error changes nothing about correctness, so it is ignored.
pub(crate) fn advise(file: &File, offset: u64, len: u64, advice: crate::target::Advice) {
    use std::os::fd::AsRawFd;
    let advice = match advice {
        crate::target::Advice::WillNeed => libc::POSIX_FADV_WILLNEED,
        crate::target::Advice::Sequential => libc::POSIX_FADV_SEQUENTIAL,
    };
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the lifetime of `file`; fadvise reads no memory.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, advice);
    }
}
