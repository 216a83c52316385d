//! Backup: cut a disk image into chunks, skip zero chunks, store new chunks once, in packs.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::chunk::{is_all_zero, ChunkCodec};
use crate::error::IoContext;
use crate::fsutil;
use crate::pack::{FinishedPack, PackWriter, PACK_TARGET};
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
    /// Bytes newly written to the repository (sizes of the new pack files).
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

/// Per-worker buffers, the pack being filled, and counters.
struct Worker {
    codec: ChunkCodec,
    buf: Vec<u8>,
    pack: Option<PackWriter>,
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
        // Packs whose time this backup refreshed, and packs it finished.
        let touched: Mutex<HashSet<u32>> = Mutex::new(HashSet::new());
        let finished: Mutex<Vec<FinishedPack>> = Mutex::new(Vec::new());
        let chunk_size = self.chunk_size as usize;

        let run = parallel::run(
            count,
            ctl,
            || {
                Ok(Worker {
                    codec: ChunkCodec::new()?,
                    buf: vec![0u8; chunk_size],
                    pack: None,
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
                        Some(d) => self.touch_chunk(&d, &touched).then_some(Some(d)),
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
                    None => {
                        let d = self.backup_chunk(src, w, &claimed, &touched, i, offset, len)?;
                        if w.pack.as_ref().is_some_and(|p| p.len() >= PACK_TARGET) {
                            if let Some(p) = w.pack.take() {
                                let done = p.finish(&self.packs_dir, self.durability)?;
                                w.stats.bytes_stored += done.size;
                                finished
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(done);
                            }
                        }
                        d
                    }
                };
                ctl.progress(len as u64);
                Ok(result)
            },
        );
        // Publish what was finished even on error: those packs are complete and durable.
        let publish = |done: Vec<FinishedPack>| -> Result<(), RepoError> {
            let mut dirs: Vec<PathBuf> = done
                .iter()
                .filter_map(|p| p.path.parent().map(|d| d.to_path_buf()))
                .collect();
            dirs.sort();
            dirs.dedup();
            // New packs only survive a crash once their folders are synced.
            for dir in &dirs {
                fsutil::fsync_dir(dir, self.durability)?;
            }
            if !dirs.is_empty() {
                fsutil::fsync_dir(&self.packs_dir, self.durability)?;
            }
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            for p in done {
                map.add(p.path, p.size, p.entries);
            }
            Ok(())
        };
        let (chunks, mut workers) = match run {
            Ok(x) => x,
            Err(e) => {
                publish(
                    finished
                        .into_inner()
                        .unwrap_or_else(PoisonError::into_inner),
                )?;
                return Err(e);
            }
        };
        let mut done = finished
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        for w in &mut workers {
            if let Some(p) = w.pack.take() {
                let p = p.finish(&self.packs_dir, self.durability)?;
                w.stats.bytes_stored += p.size;
                done.push(p);
            }
        }
        publish(done)?;

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
        touched: &Mutex<HashSet<u32>>,
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
        if !first_claim || self.touch_chunk(&digest, touched) {
            w.stats.chunks_deduplicated += 1;
            return Ok(Some(digest));
        }
        let pack = match &mut w.pack {
            Some(p) => p,
            None => w.pack.insert(PackWriter::create(&self.packs_dir)?),
        };
        let (codec, record) = w.codec.encode(data);
        pack.add(digest, codec, record, len)?;
        w.stats.chunks_new += 1;
        Ok(Some(digest))
    }
}
