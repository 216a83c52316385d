//! The crate's one error type.
//!
//! Policy: every failure is a [`RepoError`] variant with typed fields, and every
//! message names the thing it is about (chunk digest in hex, index name, path).
//! Damage to stored data (`ChunkMissing`, `ChunkCorrupt`, `PackIndexCorrupt`,
//! `IndexMissing`, `IndexCorrupt`, `NotARepository`) is kept apart from operating-system
//! failures (`Io`), so callers can tell "the backup is bad" from "the disk is full".
//! Damage names the file on disk: a chunk whose bytes are wrong names its pack and the
//! record's offset, and a chunk listed only by a pack whose own index is damaged is
//! `PackIndexCorrupt` (naming the pack), not `ChunkMissing`, which is kept for a chunk that
//! no pack holds. The location is looked up only when such an error is built.

use std::path::PathBuf;

use crate::ChunkDigest;

/// Everything that can go wrong in the repository.
#[derive(thiserror::Error, Debug)]
pub enum RepoError {
    /// A chunk an index refers to is in no pack.
    #[error("chunk {digest} is missing from the repository")]
    ChunkMissing {
        /// Digest of the missing chunk.
        digest: ChunkDigest,
    },
    /// A chunk's record is in a pack but its header, payload or digest is wrong: the chunk's
    /// bytes are damaged.
    #[error("chunk {digest} is corrupt: {reason}{}", bytes_damaged(at))]
    ChunkCorrupt {
        /// Digest of the damaged chunk.
        digest: ChunkDigest,
        /// Where its record lies; `None` only for a chunk checked outside a pack.
        at: Option<ChunkPlace>,
        /// What was found wrong.
        reason: String,
    },
    /// A chunk no readable pack holds, listed in a pack whose own index (its entries or
    /// footer) is damaged: the pack's chunks cannot be found in it.
    #[error(
        "chunk {digest} cannot be read: {}",
        PackDamage { pack: pack.clone(), reason: reason.clone(), chunks: *chunks }
    )]
    PackIndexCorrupt {
        /// Digest of the chunk that cannot be read.
        digest: ChunkDigest,
        /// The pack file, as the storage describes it (a path for a folder).
        pack: String,
        /// What is wrong with its index.
        reason: String,
        /// How many chunks the pack's footer says it holds, when the footer can be read.
        chunks: Option<u64>,
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

/// Where a chunk's record lies, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkPlace {
    /// The pack file, as the storage describes it (a path for a folder, else the key).
    pub pack: String,
    /// Offset of the chunk's record in the pack.
    pub offset: u64,
}

impl std::fmt::Display for ChunkPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.pack, self.offset)
    }
}

/// Where a located corrupt chunk lies, and what that means for the operator.
fn bytes_damaged(at: &Option<ChunkPlace>) -> String {
    at.as_ref().map_or_else(String::new, |p| {
        format!(" (the chunk's bytes in {p} are damaged)")
    })
}

/// A pack file whose own index (its entries or footer) is damaged, so that none of its
/// chunks can be found in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackDamage {
    /// The pack file, as the storage describes it (a path for a folder).
    pub pack: String,
    /// What is wrong with its index.
    pub reason: String,
    /// How many chunks its footer says it holds, when the footer can be read.
    pub chunks: Option<u64>,
}

impl std::fmt::Display for PackDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the index of pack {} is damaged ({}): ",
            self.pack, self.reason
        )?;
        match self.chunks {
            Some(1) => write!(f, "its 1 chunk cannot be read"),
            Some(n) => write!(f, "its {n} chunks cannot be read"),
            None => write!(f, "its chunks cannot be read"),
        }
    }
}

impl RepoError {
    /// Gives a [`RepoError::ChunkCorrupt`] without a place the one `place` builds (called
    /// only on an error, so a read that succeeds computes nothing).
    pub(crate) fn at_place(self, place: impl FnOnce() -> ChunkPlace) -> Self {
        match self {
            RepoError::ChunkCorrupt {
                digest,
                at: None,
                reason,
            } => RepoError::ChunkCorrupt {
                digest,
                at: Some(place()),
                reason,
            },
            other => other,
        }
    }

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
