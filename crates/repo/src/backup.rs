//! Backup: cut a disk image into chunks, skip zero chunks, store new chunks once.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::chunk::{is_all_zero, ChunkCodec};
use crate::error::IoContext;
use crate::fsutil;
use crate::parallel;
use crate::{ChunkDigest, Control, DiskIndex, RepoError, Repository};

/// What one backup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupStats {
    /// Chunks in the disk image.
    pub chunks_total: u64,
    /// Chunks read from the source (the rest came from the previous index).
    pub chunks_read: u64,
    /// All-zero chunks, recorded as holes.
    pub chunks_zero: u64,
    /// Chunks written to the repository by this backup.
    pub chunks_new: u64,
    /// Data chunks that were already stored (or taken unchanged from the previous index).
    pub chunks_deduplicated: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Compressed bytes newly written (chunk file sizes).
    pub bytes_stored: u64,
}

impl BackupStats {
    fn add(&mut self, o: &BackupStats) {
        self.chunks_read += o.chunks_read;
        self.chunks_zero += o.chunks_zero;
        self.chunks_new += o.chunks_new;
        self.chunks_deduplicated += o.chunks_deduplicated;
        self.bytes_read += o.bytes_read;
        self.bytes_stored += o.bytes_stored;
    }
}

/// Per-worker buffers and counters.
struct Worker {
    codec: ChunkCodec,
    buf: Vec<u8>,
    stats: BackupStats,
}

impl Repository {
    /// Backs up `size` bytes of `src` and returns its index (not yet stored: see [`Repository::put_index`]).
    ///
    /// Chunks are read in parallel with positional reads; all-zero chunks become holes;
    /// chunks already stored are not written again. With `previous` and `changed`
    /// (changed-block tracking, one bool per chunk, true = changed), an unchanged
    /// chunk is not read and keeps its digest from `previous`. Tracking data that
    /// does not line up with this backup (other chunk size, wrong length) is
    /// ignored and every chunk is read.
    pub fn backup_disk(
        &self,
        src: &File,
        size: u64,
        previous: Option<&DiskIndex>,
        changed: Option<&[bool]>,
        ctl: &dyn Control,
    ) -> Result<(DiskIndex, BackupStats), RepoError> {
        let mut index = DiskIndex {
            disk_size: size,
            chunk_size: self.chunk_size,
            chunks: Vec::new(),
        };
        let count = DiskIndex::chunk_count(size, self.chunk_size);
        let tracking = match (previous, changed) {
            (Some(p), Some(c)) if p.chunk_size == self.chunk_size && c.len() == count => {
                Some((p, c))
            }
            _ => None,
        };
        // Digests being written by this backup, so two workers never store the same chunk.
        let claimed: Mutex<HashSet<ChunkDigest>> = Mutex::new(HashSet::new());
        let touched_dirs: [AtomicBool; 256] = std::array::from_fn(|_| AtomicBool::new(false));
        let chunk_size = self.chunk_size as usize;

        let (chunks, workers) = parallel::run(
            count,
            ctl,
            || {
                Ok(Worker {
                    codec: ChunkCodec::new()?,
                    buf: vec![0u8; chunk_size],
                    stats: BackupStats::default(),
                })
            },
            |w, i| {
                let (offset, len) = index.chunk_range(i);
                let reused = tracking.and_then(|(prev, changed)| {
                    let usable = !changed[i] && prev.chunk_range(i) == (offset, len);
                    let entry = *prev.chunks.get(i).filter(|_| usable)?;
                    match entry {
                        None => Some(None),
                        // A chunk missing from the store is read again rather than trusted.
                        Some(d) => self.touch_chunk(&d).then_some(Some(d)),
                    }
                });
                let result = match reused {
                    Some(None) => {
                        w.stats.chunks_zero += 1;
                        None
                    }
                    Some(Some(d)) => {
                        w.stats.chunks_deduplicated += 1;
                        Some(d)
                    }
                    None => self.backup_chunk(src, w, &claimed, &touched_dirs, i, offset, len)?,
                };
                ctl.progress(len as u64);
                Ok(result)
            },
        )?;

        // New chunk files only survive a crash once their folders are synced.
        let mut any_touched = false;
        for (byte, flag) in touched_dirs.iter().enumerate() {
            if flag.load(Ordering::Relaxed) {
                any_touched = true;
                let dir = self.chunks_dir.join(hex::encode([byte as u8]));
                fsutil::fsync_dir(&dir, self.durability)?;
            }
        }
        if any_touched {
            fsutil::fsync_dir(&self.chunks_dir, self.durability)?;
        }

        let mut stats = BackupStats {
            chunks_total: count as u64,
            ..BackupStats::default()
        };
        for w in &workers {
            stats.add(&w.stats);
        }
        index.chunks = chunks;
        Ok((index, stats))
    }

    /// Reads chunk `i` from `src` and stores it unless it is zero or already present.
    #[allow(clippy::too_many_arguments)]
    fn backup_chunk(
        &self,
        src: &File,
        w: &mut Worker,
        claimed: &Mutex<HashSet<ChunkDigest>>,
        touched_dirs: &[AtomicBool; 256],
        i: usize,
        offset: u64,
        len: usize,
    ) -> Result<Option<ChunkDigest>, RepoError> {
        let data = &mut w.buf[..len];
        src.read_exact_at(data, offset)
            .ctx(|| format!("read source chunk {i} ({len} bytes at offset {offset})"))?;
        w.stats.chunks_read += 1;
        w.stats.bytes_read += len as u64;
        if is_all_zero(data) {
            w.stats.chunks_zero += 1;
            return Ok(None);
        }
        let digest = ChunkDigest::of(data);
        let first_claim = claimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest);
        if !first_claim || self.touch_chunk(&digest) {
            w.stats.chunks_deduplicated += 1;
            return Ok(Some(digest));
        }
        let stored = w.codec.write_chunk(
            &self.chunk_dir(&digest),
            &digest.to_hex(),
            data,
            self.durability,
        )?;
        touched_dirs[usize::from(digest.0[0])].store(true, Ordering::Relaxed);
        w.stats.chunks_new += 1;
        w.stats.bytes_stored += stored;
        Ok(Some(digest))
    }
}
