//! emrest's backup repository: content-addressed, compressed chunks of disk images.
//!
//! The repository knows nothing of HTTP, the catalog or hypervisors. A disk image
//! is cut into fixed-size chunks (16 KiB by default); each non-zero chunk is stored
//! once, named by the BLAKE3 digest of its bytes, as a record in a pack file, and
//! each backed-up disk gets an index listing its chunks in order. All-zero chunks
//! are holes: recorded in the index, never stored.
//!
//! # Layout: keys in a storage
//!
//! The repository keeps everything in a [`Storage`] under the keys below; the default one,
//! [`FolderStorage`], maps a key to a path under the root folder, and [`MemoryStorage`] keeps
//! them in memory (tests). Object-store operations only (whole writes that appear atomically,
//! ranged reads, listing by prefix, removal), so an S3-compatible bucket fits the same trait.
//! Restores write through [`RestoreTarget`] (a [`std::fs::File`] today).
//!
//! ```text
//! config                      magic, format version, chunk size (see below)
//! packs/<2 hex>/<64 hex>.pack chunk records plus their index (see the `pack` module)
//! dicts/<64 hex>.zdict        zstd dictionaries trained on the repository's chunks (see `dict`)
//! indexes/<name>.idx          one per disk per restore point (see "Index files")
//! ```
//!
//! `config` is 16 bytes: magic `b"EMRESTRP"`, format version (u32 LE, 2) and the
//! chunk size (u32 LE). It is written when the repository is created and checked
//! on every open; the stored chunk size always wins over the one asked for.
//!
//! ## Why 16 KiB chunks in packs
//! Guest writes are scattered: with 1 MiB chunks, 1% of 4 KiB blocks changed at
//! random dirties ~92% of the chunks, so an incremental backup stores almost the
//! whole disk again. Every changed block costs at most one chunk: measured on a
//! 512 MiB image (`bench/restore.sh`), 1% changed grew the repository by 7.6× the
//! changed bytes with 64 KiB chunks and 2.4× with 16 KiB, and a tracked QuickRollback
//! reads (and verifies) 16 KiB instead of 64 KiB per changed block. The price is
//! per-chunk overhead on full backups and restores (4× the records, hashes and map
//! entries), which packing and in-order runs keep small: a backup stores each 4 MiB
//! run of a disk's chunks in order in one pack, and a restore reads adjacent records
//! with one read. One file per chunk would mean 65 536 files per GiB; packs of
//! ~64 MiB keep that to 16 per GiB. The chunk size is stored in `config`, so a
//! repository created with 64 KiB chunks keeps them.
//!
//! Opening a repository reads every pack's index (two reads per pack) into memory:
//! about 70 bytes per stored chunk (~18 MB for 4 GiB of unique data in 16 KiB chunks).
//! Indexes loaded for restores are kept parsed (at most 8 and 32 MiB; ~8.7 MB for a 4 GiB
//! disk) while their files are unchanged (see `index_cache`).
//!
//! ## Chunk records
//! A codec byte — 0 raw, 1 zstd, 2 zstd with a repository dictionary — then the payload;
//! the pack index holds the lengths. Packs of the previous format (version 1) hold records
//! with a 12-byte header and are still read. The digest of the uncompressed bytes is
//! checked on every read.
//!
//! ## Index files
//! 28-byte header — magic `b"EMRI"`, version u8, three reserved bytes, disk size
//! u64 LE, chunk size u32 LE, chunk count u64 LE — then, in format 2, a bit per
//! chunk (data or hole) and the 32-byte digests of the data chunks, then BLAKE3 of
//! everything before it. Format 3 holds an incremental point's changes against its
//! parent's index; format 1 (a flag and a digest slot per chunk) is still read. The
//! layouts are in `index.rs`.
//!
//! # Durability and concurrency
//!
//! In a folder, every file is written under a `.tmp-*` name, fsynced, renamed into place,
//! and its folder is fsynced (pack folders once per backup, through [`Storage::sync`]). [`Durability::NoSync`]
//! turns fsyncs off for tests and benchmarks.
//! Only one *process* may write to a repository at a time: [`Repository::open`]
//! removes every `.tmp-*` file it finds, assuming they are leftovers of a crash.
//! A read-only handle picks up packs written by the writer when it misses a chunk.
//! Within a process a [`Repository`] is `Send + Sync` and may be shared via `Arc`.
//! Garbage collection only rewrites or removes packs older than a grace period,
//! and a backup refreshes the modification time of every pack holding a chunk it
//! references, so a backup running beside GC does not lose chunks.

mod backup;
mod chunk;
mod copy;
mod dict;
mod digest;
mod direct;
mod error;
mod fsutil;
mod gc;
mod index;
mod index_cache;
mod pack;
mod parallel;
mod repository;
mod restore;
mod storage;
mod target;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use backup::BackupStats;
pub use copy::CopyStats;
pub use digest::{ChunkDigest, ParseDigestError};
pub use error::{ChunkPlace, PackDamage, RepoError};
pub use gc::{ChunkProblem, CodecUse, GcStats, SpaceUse};
pub use index::DiskIndex;
pub use repository::{ChunkLocation, Repository};
pub use restore::{
    RestorePlan, RestoreStats, RollbackPlan, StoredCheck, TrackedChanges, IN_PLACE_BLOCK,
};
pub use storage::{
    remove_temporaries_under, FolderStorage, MemoryStorage, ObjectMeta, ObjectVersion,
    ObjectWriter, RequestCounts, Storage, StoredObject,
};
pub use target::{Advice, RestoreTarget};

/// Chunk size of a new repository unless another is asked for: 16 KiB, so a scattered
/// 4 KiB guest write costs at most 16 KiB of backup (see the crate docs).
pub const DEFAULT_CHUNK_SIZE: u32 = 16 << 10;
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

/// How a restore writes its target file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// Durable when the call returns: a fresh target is written around the page cache
    /// (`O_DIRECT`) where the file system allows it, and the target is fsynced (unless the
    /// repository is [`Durability::NoSync`]).
    Durable,
    /// Not flushed: for a caller that has durably recorded what the target must hold, brings
    /// it there after a crash, and flushes it itself (core's restore journals). A fresh
    /// target is still written around the page cache where the file system allows: in a VM
    /// the page cache's first touch of memory can cost more than the device (a 4 GiB restore
    /// through it took 3.4–7.9 s, direct 3.6–3.8 s, here); in place, the few blocks a
    /// rollback writes go through the page cache and their scattered flush leaves the task.
    Deferred,
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
