//! emrest's backup repository: content-addressed, compressed chunks of disk images.
//!
//! The repository knows nothing of HTTP, the catalog or hypervisors. A disk image
//! is cut into fixed-size chunks; each non-zero chunk is stored once, named by the
//! BLAKE3 digest of its bytes, and each backed-up disk gets an index listing its
//! chunks in order. All-zero chunks are holes: recorded in the index, never stored.
//!
//! # Layout under the root folder
//!
//! ```text
//! config                      magic, format version, chunk size (see below)
//! chunks/<2 hex>/<64 hex>     one file per chunk (see "Chunk files")
//! indexes/<name>.idx          one per disk per restore point (see "Index files")
//! ```
//!
//! `config` is 16 bytes: magic `b"EMRESTRP"`, format version (u32 LE, 1) and the
//! chunk size (u32 LE). It is written when the repository is created and checked
//! on every open; the stored chunk size always wins over the one asked for.
//!
//! ## Chunk files
//! 12-byte header — magic `b"EMRC"`, version u8, codec u8 (0 raw, 1 zstd), two
//! reserved bytes, uncompressed length u32 LE — then the payload. The file name
//! is the BLAKE3 digest of the uncompressed bytes and is checked on every read.
//!
//! ## Index files
//! 28-byte header — magic `b"EMRI"`, version u8, three reserved bytes, disk size
//! u64 LE, chunk size u32 LE, chunk count u64 LE — then per chunk a flag byte
//! (0 hole, 1 data) and a 32-byte digest, then BLAKE3 of everything before it.
//!
//! # Durability and concurrency
//!
//! Every file is written under a `.tmp-*` name in its final folder, fsynced,
//! renamed into place, and the folder is fsynced (chunk folders once per backup).
//! [`Durability::NoSync`] turns fsyncs off for tests and benchmarks.
//! Only one *process* may write to a repository at a time: [`Repository::open`]
//! removes every `.tmp-*` file it finds (listing every chunk folder), assuming
//! they are leftovers of a crash.
//! Within a process a [`Repository`] is `Send + Sync` and may be shared via `Arc`.
//! Garbage collection only removes unreferenced chunks older than a grace period,
//! and a backup refreshes the modification time of every existing chunk it
//! references, so a backup running beside GC does not lose chunks.

mod backup;
mod chunk;
mod digest;
mod error;
mod fsutil;
mod gc;
mod index;
mod parallel;
mod repository;
mod restore;

pub use backup::BackupStats;
pub use digest::{ChunkDigest, ParseDigestError};
pub use error::RepoError;
pub use gc::{ChunkProblem, GcStats};
pub use index::DiskIndex;
pub use repository::Repository;
pub use restore::{RestorePlan, RestoreStats};

/// Chunk size of a new repository unless another is asked for: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// Smallest chunk size a repository accepts: 4 KiB.
pub const MIN_CHUNK_SIZE: u32 = 4 << 10;
/// Largest chunk size a repository accepts: 64 MiB.
pub const MAX_CHUNK_SIZE: u32 = 64 << 20;

/// Whether writes are fsynced before they count as done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Fsync files and folders so completed writes survive a crash (the default).
    #[default]
    Fsync,
    /// Skip fsyncs: faster, for tests and benchmarks only.
    NoSync,
}

/// Engine callbacks, checked between chunks; implementations must never block.
pub trait Control: Sync {
    /// True when the operation should stop with [`RepoError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
    /// Called with the byte count of each chunk processed (a delta, not a total).
    fn progress(&self, _bytes: u64) {}
}

/// A [`Control`] that never cancels and ignores progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoControl;

impl Control for NoControl {}
