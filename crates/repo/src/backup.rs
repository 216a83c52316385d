//! Backup: cut a disk image into chunks, skip zero chunks, store new chunks once, in packs.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, PoisonError};

use crate::chunk::{is_all_zero, ChunkCodec};
use crate::dict::{Sampler, MAX_DICT_CHUNK};
use crate::error::IoContext;
use crate::pack::{FinishedPack, PackWriter, PACK_TARGET};
use crate::parallel;
use crate::{ChunkDigest, Control, DiskIndex, RepoError, Repository};

/// Disk bytes one backup work item covers: adjacent chunks read together and stored in order.
const RUN_BYTES: usize = 4 << 20;

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
        // A repository without a dictionary gets one from this backup's first compressible
        // chunks (see the `dict` module).
        let sampler = (self.dictionary().is_none() && self.chunk_size as usize <= MAX_DICT_CHUNK)
            .then(Sampler::default);
        // Each work item is a run of adjacent chunks read with as few reads as possible and
        // stored in order into the worker's pack, so a disk's chunks stay in disk order inside
        // packs and a restore reads long stretches of a pack at once.
        let per_run = (RUN_BYTES / self.chunk_size as usize).max(1);
        let run_count = count.div_ceil(per_run);
        let run = parallel::run(
            run_count,
            ctl,
            || {
                Ok(Worker {
                    codec: ChunkCodec::new()?,
                    buf: Vec::new(),
                    pack: None,
                    stats: BackupStats::default(),
                })
            },
            |w, r| {
                let first = r * per_run;
                let last = (first + per_run).min(count);
                let mut out = Vec::with_capacity(last - first);
                let mut i = first;
                while i < last {
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
                    match reused {
                        Some(None) => {
                            w.stats.chunks_zero += 1;
                            out.push(None);
                            ctl.progress(len as u64);
                            i += 1;
                            continue;
                        }
                        Some(Some(d)) => {
                            w.stats.chunks_deduplicated += 1;
                            out.push(Some(d));
                            ctl.progress(len as u64);
                            i += 1;
                            continue;
                        }
                        None => {}
                    }
                    // Read this chunk and every following one that must be read, at once.
                    let mut end = i + 1;
                    while end < last
                        && tracking.is_none_or(|(prev, changed)| {
                            changed[end] || prev.chunk_range(end) != index.chunk_range(end)
                        })
                    {
                        end += 1;
                    }
                    let (last_off, last_len) = index.chunk_range(end - 1);
                    let span = (last_off + last_len as u64 - offset) as usize;
                    let mut buf = std::mem::take(&mut w.buf);
                    buf.resize(span, 0);
                    if let Err((at, e)) = read_span(src, &mut buf, offset) {
                        // Name the chunk the read failed in, as a chunk-by-chunk read would.
                        let k = i + ((at - offset) / self.chunk_size as u64) as usize;
                        let (o, len) = index.chunk_range(k.min(end - 1));
                        return Err(RepoError::io(
                            format!("read source chunk {k} ({len} bytes at offset {o})"),
                            e,
                        ));
                    }
                    w.stats.chunks_read += (end - i) as u64;
                    w.stats.bytes_read += span as u64;
                    for k in i..end {
                        if ctl.cancelled() {
                            w.buf = buf;
                            return Err(RepoError::Cancelled);
                        }
                        let (o, len) = index.chunk_range(k);
                        let at = (o - offset) as usize;
                        let d = self.store_chunk(
                            &buf[at..at + len],
                            w,
                            &claimed,
                            &touched,
                            sampler.as_ref(),
                        )?;
                        out.push(d);
                        if w.pack.as_ref().is_some_and(|p| p.len() >= PACK_TARGET) {
                            if let Some(p) = w.pack.take() {
                                let done = p.finish(self.storage.as_ref())?;
                                w.stats.bytes_stored += done.size;
                                finished
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(done);
                            }
                        }
                        ctl.progress(len as u64);
                    }
                    w.buf = buf;
                    i = end;
                }
                Ok(out)
            },
        );
        // Publish what was finished even on error: those packs are complete and durable.
        let publish = |done: Vec<FinishedPack>| -> Result<(), RepoError> {
            // New packs only survive a crash once their folders are synced.
            let keys: Vec<&str> = done.iter().map(|p| p.key.as_str()).collect();
            if !keys.is_empty() {
                self.storage
                    .sync(&keys)
                    .ctx(|| format!("fsync folders of {} new packs", keys.len()))?;
            }
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            for p in done {
                map.add(p.key, p.size, p.entries);
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
                let p = p.finish(self.storage.as_ref())?;
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
        index.chunks = chunks.into_iter().flatten().collect();
        Ok((index, stats))
    }

    /// Stores one chunk's bytes unless they are zero or already present.
    fn store_chunk(
        &self,
        data: &[u8],
        w: &mut Worker,
        claimed: &Mutex<HashSet<ChunkDigest>>,
        touched: &Mutex<HashSet<u32>>,
        sampler: Option<&Sampler>,
    ) -> Result<Option<ChunkDigest>, RepoError> {
        let len = data.len();
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
            None => w.pack.insert(PackWriter::create(self.storage.as_ref())?),
        };
        let mut dict = self.dictionary();
        if dict.is_none() {
            if let Some(samples) = sampler.and_then(|s| s.offer(data)) {
                self.adopt_dictionary(samples)?;
                dict = self.dictionary();
            }
        }
        let (codec, record) = w.codec.encode(data, dict.as_ref())?;
        pack.add(digest, codec, record, len)?;
        w.stats.chunks_new += 1;
        Ok(Some(digest))
    }
}

/// Fills `buf` from `src` at `offset`; on failure, the offset the read stopped at and why.
fn read_span(src: &File, buf: &mut [u8], offset: u64) -> Result<(), (u64, std::io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done as u64;
        match src.read_at(&mut buf[done..], at) {
            Ok(0) => {
                return Err((
                    at,
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the source ends before the stated disk size",
                    ),
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((at, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{CODEC_RAW, CODEC_ZSTD, CODEC_ZSTD_DICT};
    use crate::dict::SAMPLE_COUNT;
    use crate::{Durability, NoControl};
    use std::io::Write;

    /// The first backup of a repository trains a dictionary on its compressible chunks,
    /// stores it under its hash before using it, and the chunks stored after it use it;
    /// everything restores and verifies.
    #[test]
    fn the_first_backup_trains_a_dictionary_and_later_chunks_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(&dir.path().join("repo"), Durability::NoSync).unwrap();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(21);
        let words = ["backup", "restore", "disk", "error", "session", "of", "job"];
        let chunks = 4 * SAMPLE_COUNT;
        let mut img = vec![0u8; chunks << 14];
        for (i, c) in img.chunks_mut(1 << 14).enumerate() {
            if i % 4 == 3 {
                rand::Rng::fill(&mut rng, c);
                continue;
            }
            let mut at = 0;
            while at < c.len() {
                let w = words[rand::Rng::gen_range(&mut rng, 0..words.len())].as_bytes();
                for &b in w.iter().chain(b" ") {
                    if at < c.len() {
                        c[at] = b;
                        at += 1;
                    }
                }
            }
        }
        let path = dir.path().join("a.img");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&img)
            .unwrap();
        let src = File::open(&path).unwrap();
        let (index, stats) = repo
            .backup_disk(&src, img.len() as u64, None, None, &NoControl)
            .unwrap();
        assert_eq!(stats.chunks_new as usize, chunks);

        let d = repo.dictionary().expect("a dictionary was trained");
        let files = crate::pack::list_dir(&dir.path().join("repo/dicts")).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), d.bytes);
        assert!(files[0].ends_with(format!("{}.zdict", hex::encode(d.hash))));

        let map = repo.map.read().unwrap();
        let count = |codec| map.locs.values().filter(|l| l.entry.codec == codec).count();
        assert_eq!(count(CODEC_RAW), chunks / 4);
        // Chunks stored before the dictionary existed are plain frames; the rest use it.
        assert!(
            count(CODEC_ZSTD) >= SAMPLE_COUNT - 1,
            "{}",
            count(CODEC_ZSTD)
        );
        assert!(count(CODEC_ZSTD_DICT) > 0);
        drop(map);

        let target_path = dir.path().join("restored.img");
        let target = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&target_path)
            .unwrap();
        let plan = repo.plan_restore(&index, None, &NoControl).unwrap();
        repo.apply_restore(&index, &plan, &target, &NoControl)
            .unwrap();
        assert_eq!(std::fs::read(&target_path).unwrap(), img);
        assert!(repo
            .verify_chunks(index.referenced(), &NoControl)
            .is_empty());

        // A second handle loads the same dictionary from its file and keeps using it.
        let again = Repository::open(&dir.path().join("repo"), Durability::NoSync).unwrap();
        assert_eq!(again.dictionary().map(|x| x.hash), Some(d.hash));
    }
}
