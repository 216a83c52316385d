//! The crate's one error type.
//!
//! Policy: every failure is a [`RepoError`] variant with typed fields, and every
//! message names the thing it is about (chunk digest in hex, index name, path).
//! Damage to stored data (`ChunkMissing`, `ChunkCorrupt`, `IndexMissing`,
//! `IndexCorrupt`, `NotARepository`) is kept apart from operating-system failures
//! (`Io`), so callers can tell "the backup is bad" from "the disk is full".

use std::path::PathBuf;

use crate::ChunkDigest;

/// Everything that can go wrong in the repository.
#[derive(thiserror::Error, Debug)]
pub enum RepoError {
    /// A chunk an index refers to has no chunk file.
    #[error("chunk {digest} is missing from the repository")]
    ChunkMissing {
        /// Digest of the missing chunk.
        digest: ChunkDigest,
    },
    /// A chunk file exists but its header, payload or digest is wrong.
    #[error("chunk {digest} is corrupt: {reason}")]
    ChunkCorrupt {
        /// Digest of the damaged chunk.
        digest: ChunkDigest,
        /// What was found wrong.
        reason: String,
    },
    /// No index of that name is stored.
    #[error("index {name:?} does not exist")]
    IndexMissing {
        /// Name of the missing index.
        name: String,
    },
    /// An index file is damaged or inconsistent.
    #[error("index {name:?} is corrupt: {reason}")]
    IndexCorrupt {
        /// Name of the damaged index.
        name: String,
        /// What was found wrong.
        reason: String,
    },
    /// An index name outside `[A-Za-z0-9._-]{1,128}` or starting with a dot.
    #[error("invalid index name {name:?}: use 1 to 128 characters from A-Z a-z 0-9 . _ - and do not start with a dot")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The folder is not (and cannot become) a repository.
    #[error("{} is not a repository: {reason}", path.display())]
    NotARepository {
        /// The folder that was opened.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The caller's [`Control`](crate::Control) asked to stop.
    #[error("operation cancelled")]
    Cancelled,
    /// An operating-system I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path or offset.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl RepoError {
    /// Builds an [`RepoError::Io`] whose context is produced lazily.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RepoError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attaches a context message to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps an I/O error to [`RepoError::Io`] with the context built by `f`.
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T, RepoError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T, RepoError> {
        self.map_err(|e| RepoError::io(f(), e))
    }
}
