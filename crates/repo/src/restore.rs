//! Restore: plan which chunks a target needs, check them, then write them.
//!
//! Planning and checking touch nothing; only [`Repository::apply_restore`] writes,
//! so a missing or corrupt chunk can be found before a target is modified.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use crate::chunk::{is_all_zero, ChunkCodec};
use crate::direct::{AlignedBuf, DirectTarget};
use crate::error::IoContext;
use crate::pack::{read_runs, Loc};
use crate::parallel;
use crate::target::{read_padded, Advice, RestoreTarget};
use crate::{ChunkDigest, Control, DiskIndex, Durability, RepoError, Repository, Writes};

/// Adjacent chunks are restored together in runs of up to this many bytes, so the
/// target sees large sequential writes whatever the chunk size.
const WRITE_RUN: u64 = 4 << 20;
/// Adjacent records of one pack are read together in stretches of up to this many bytes.
/// Long enough that a read costs little per byte; short, because each restore worker keeps a
/// buffer this large. (An object store serves such stretches from 4 MiB blocks it fetches
/// once for all workers: see the S3 storage.)
const READ_SPAN: u64 = 1 << 20;

/// Restore workers per core when writes go around the page cache (each waits on the device
/// for its write). A 2 GiB restore into preallocated blocks on 2 cores (restore_modes, best
/// and median of 4): 2 per core 1.44 and 1.54 s, 3 per core 1.44 and 1.50 s, 4 per core
/// 1.34 and 1.36 s.
const DIRECT_WORKERS_PER_CORE: usize = 4;

/// The chunks a restore must write, by chunk number, ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestorePlan {
    /// Chunk numbers to write (data chunks, and holes that must be zeroed).
    pub chunks: Vec<usize>,
    /// Chunks considered while planning.
    pub chunks_examined: u64,
}

impl RestorePlan {
    /// Bytes the plan will write into the target.
    pub fn bytes(&self, index: &DiskIndex) -> u64 {
        self.chunks
            .iter()
            .map(|&i| index.chunk_range(i).1 as u64)
            .sum()
    }
}

/// What one restore wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Chunks written into the target (data and zero-filled).
    pub chunks_written: u64,
    /// Bytes written into the target.
    pub bytes_written: u64,
    /// Of those, bytes written around the page cache (`O_DIRECT`; see
    /// [`Repository::with_direct_io`]).
    pub bytes_direct: u64,
}

/// What [`Repository::check_stored`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredCheck {
    /// The first chunk (in disk order) that is not stored, if any.
    pub missing: Option<ChunkDigest>,
    /// Pack files checked (one `stat` each).
    pub packs_checked: u64,
}

/// Per-worker buffers for reading chunks.
struct ChunkWorker {
    codec: ChunkCodec,
    buf: Vec<u8>,
    /// A write run being assembled, placed for direct writes.
    run: AlignedBuf,
    /// The target's current bytes, for in-place restores.
    current: Vec<u8>,
    /// A stretch of a pack holding several adjacent records.
    span: Vec<u8>,
}

/// Granularity at which [`Repository::apply_restore_in_place`] compares and writes: the
/// guest's 4 KiB block.
pub const IN_PLACE_BLOCK: usize = 4096;

/// Consecutive plan entries `start..end` whose chunks are adjacent on disk.
fn runs(index: &DiskIndex, plan: &RestorePlan) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut k = 0;
    while k < plan.chunks.len() {
        let start = k;
        let (first, _) = index.chunk_range(plan.chunks[k]);
        k += 1;
        while k < plan.chunks.len()
            && plan.chunks[k] == plan.chunks[k - 1] + 1
            && index.chunk_range(plan.chunks[k]).0 + index.chunk_range(plan.chunks[k]).1 as u64
                - first
                <= WRITE_RUN
        {
            k += 1;
        }
        out.push((start, k));
    }
    out
}

/// Buffers of finished restores and rollbacks, kept for the next one.
///
/// A page touched for the first time costs this kind of machine far more than the copy into
/// it (a fault, zeroing, and the hypervisor backing the page): a 1% rollback of a 4 GiB disk
/// took ~8,800 minor faults and 0.07–0.3 s of system time in fresh buffers. Workers (with
/// their read, run and decompression buffers) and the rollback's block arena are taken from
/// here and given back when done; at most [`KEPT_WORKERS`] workers and one arena of up to
/// [`KEPT_ARENA`] bytes are kept.
#[derive(Default)]
pub(crate) struct Scratch {
    workers: Mutex<Vec<ChunkWorker>>,
    arena: Arc<Mutex<Vec<u8>>>,
    /// When workers were last given back (a restore or rollback ended).
    last_used: Mutex<Option<std::time::Instant>>,
    /// Worker pools of restores and rollbacks running now (see [`shared_workers`]).
    pools: std::sync::atomic::AtomicUsize,
}

/// The workers a pool asking for `wanted` gets while `running` pools (itself included) run:
/// an equal share, and never fewer than the cores. Concurrent restores run on the same cores,
/// so more threads than that only add buffers (each worker holds a write run and its
/// decompression buffers); a restore running alone gets what it asks for.
pub(crate) fn shared_workers(wanted: usize, running: usize) -> usize {
    let floor = parallel::worker_count(usize::MAX).min(wanted);
    (wanted / running.max(1)).max(floor).max(1)
}

/// Workers [`Scratch`] keeps: as many as a full restore runs on two cores.
const KEPT_WORKERS: usize = 8;
/// Largest block arena [`Scratch`] keeps.
const KEPT_ARENA: usize = 64 << 20;

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (workers, arena) = self.kept();
        write!(f, "Scratch {{ workers: {workers}, arena: {arena} }}")
    }
}

impl Scratch {
    /// A worker with the buffers of an earlier one where one is kept.
    fn worker(&self) -> Result<ChunkWorker, RepoError> {
        let kept = self
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match kept {
            Some(w) => Ok(w),
            None => ChunkWorker::new(),
        }
    }

    /// Workers and block-arena bytes kept.
    fn kept(&self) -> (usize, usize) {
        let workers = self.workers.lock().map_or(0, |w| w.len());
        let arena = self.arena.lock().map_or(0, |a| a.capacity());
        (workers, arena)
    }

    /// Keeps finished workers for the next run.
    fn keep(&self, workers: Vec<ChunkWorker>) {
        let mut kept = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let room = KEPT_WORKERS.saturating_sub(kept.len());
        kept.extend(workers.into_iter().take(room));
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(std::time::Instant::now());
    }

    /// Drops what is kept if nothing was given back for `idle`; true if anything was kept.
    fn release(&self, idle: std::time::Duration) -> bool {
        let last = *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < idle) {
            return false;
        }
        let workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        let arena = std::mem::take(&mut *self.arena.lock().unwrap_or_else(PoisonError::into_inner));
        !workers.is_empty() || arena.capacity() > 0
    }

    /// A `len`-byte arena (contents unspecified), in the kept one's memory where it fits.
    ///
    /// One that does not fit is replaced by a fresh one with a quarter more room, so the next
    /// rollback of about the same size fits too: growing the kept one would copy it and touch
    /// every page of the new one on this thread, while fresh zeroed memory is only touched
    /// where the workers copy blocks into it.
    fn arena(&self, len: usize) -> Arena {
        let mut buf =
            std::mem::take(&mut *self.arena.lock().unwrap_or_else(PoisonError::into_inner));
        if buf.capacity() < len {
            buf = vec![0; len.saturating_add(len / 4).min(KEPT_ARENA).max(len)];
        }
        buf.resize(len, 0);
        Arena {
            buf,
            home: Arc::downgrade(&self.arena),
        }
    }
}

/// A rollback's block bytes, back to back; given back to its [`Scratch`] when dropped.
#[derive(Debug, Default)]
struct Arena {
    buf: Vec<u8>,
    home: std::sync::Weak<Mutex<Vec<u8>>>,
}

impl Drop for Arena {
    fn drop(&mut self) {
        let Some(home) = self.home.upgrade() else {
            return;
        };
        let mut kept = home.lock().unwrap_or_else(PoisonError::into_inner);
        if self.buf.capacity() <= KEPT_ARENA && self.buf.capacity() > kept.capacity() {
            *kept = std::mem::take(&mut self.buf);
        }
    }
}

/// Target offset and length of the run of plan entries `start..end`.
fn run_range(index: &DiskIndex, plan: &RestorePlan, (start, end): (usize, usize)) -> (u64, u64) {
    let (offset, _) = index.chunk_range(plan.chunks[start]);
    let (last_off, last_len) = index.chunk_range(plan.chunks[end - 1]);
    (offset, last_off + last_len as u64 - offset)
}

impl ChunkWorker {
    fn new() -> Result<ChunkWorker, RepoError> {
        Ok(ChunkWorker {
            codec: ChunkCodec::new()?,
            buf: Vec::new(),
            run: AlignedBuf::default(),
            current: Vec::new(),
            span: Vec::new(),
        })
    }
}

/// Refuses an index whose chunk list does not match its sizes.
fn check_index(index: &DiskIndex) -> Result<(), RepoError> {
    match index.inconsistency() {
        None => Ok(()),
        Some(reason) => Err(RepoError::IndexCorrupt {
            name: "(restore)".to_string(),
            reason,
        }),
    }
}

/// Refuses a plan naming chunks the index does not have.
fn check_plan_bounds(index: &DiskIndex, plan: &RestorePlan) -> Result<(), RepoError> {
    match plan.chunks.iter().find(|&&i| i >= index.chunks.len()) {
        None => Ok(()),
        Some(i) => Err(RepoError::io(
            "invalid restore plan",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "plan names chunk {i} but the index has {} chunks",
                    index.chunks.len()
                ),
            ),
        )),
    }
}

impl Repository {
    /// What is kept from finished restores for the next ones (see `Scratch`): workers with
    /// their buffers, and the bytes of a rollback's block arena.
    pub fn kept_scratch(&self) -> (usize, usize) {
        self.scratch.kept()
    }

    /// Gives the memory kept from finished restores back to the system if no restore or
    /// rollback has ended for `idle` (a server calls it now and then); true if any was kept.
    pub fn release_scratch(&self, idle: std::time::Duration) -> bool {
        self.scratch.release(idle)
    }

    /// Runs `work(worker, i)` for every `i` in `0..count` on `workers` threads, each with a
    /// worker kept from an earlier run where there is one; gives them back after.
    fn run_kept<T: Send>(
        &self,
        workers: usize,
        count: usize,
        ctl: &dyn Control,
        work: impl Fn(&mut ChunkWorker, usize) -> Result<T, RepoError> + Sync,
    ) -> Result<Vec<T>, RepoError> {
        use std::sync::atomic::Ordering;
        let pools = &self.scratch.pools;
        let running = pools.fetch_add(1, Ordering::SeqCst) + 1;
        let workers = shared_workers(workers, running);
        let r = parallel::run_on(workers, count, ctl, || self.scratch.worker(), work);
        pools.fetch_sub(1, Ordering::SeqCst);
        let (out, done) = r?;
        self.scratch.keep(done);
        Ok(out)
    }

    /// Works out which chunks a restore must write.
    ///
    /// Without a target (a fresh, zero-filled sparse file) that is every data chunk.
    /// With a target, each chunk range is read and hashed in parallel and kept when
    /// it differs from the index: an all-zero range matches a hole, and a non-zero
    /// range where the index has a hole must be zeroed.
    pub fn plan_restore(
        &self,
        index: &DiskIndex,
        target: Option<&dyn RestoreTarget>,
        ctl: &dyn Control,
    ) -> Result<RestorePlan, RepoError> {
        check_index(index)?;
        let count = index.chunks.len();
        let Some(target) = target else {
            if ctl.cancelled() {
                return Err(RepoError::Cancelled);
            }
            return Ok(RestorePlan {
                chunks: (0..count).filter(|&i| index.chunks[i].is_some()).collect(),
                chunks_examined: count as u64,
            });
        };
        let all: Vec<usize> = (0..count).collect();
        self.compare(index, target, &all, ctl)
    }

    /// Like [`Repository::plan_restore`] against a target, but reads and compares only the
    /// `candidates` (chunk numbers, ascending): the chunks changed-block tracking says may
    /// differ. The rest of the target is trusted to match the index.
    pub fn plan_restore_among(
        &self,
        index: &DiskIndex,
        target: &dyn RestoreTarget,
        candidates: &[usize],
        ctl: &dyn Control,
    ) -> Result<RestorePlan, RepoError> {
        check_index(index)?;
        let mut candidates = candidates.to_vec();
        candidates.sort_unstable();
        candidates.dedup();
        let plan = RestorePlan {
            chunks: candidates,
            chunks_examined: 0,
        };
        check_plan_bounds(index, &plan)?;
        self.compare(index, target, &plan.chunks, ctl)
    }

    /// Reads and hashes the target's `chunks` in parallel; the plan lists those that differ.
    fn compare(
        &self,
        index: &DiskIndex,
        target: &dyn RestoreTarget,
        chunks: &[usize],
        ctl: &dyn Control,
    ) -> Result<RestorePlan, RepoError> {
        let chunk_size = index.chunk_size as usize;
        let (differs, _) = parallel::run(
            chunks.len(),
            ctl,
            || Ok(vec![0u8; chunk_size]),
            |buf, k| {
                let i = chunks[k];
                let (offset, len) = index.chunk_range(i);
                let data = &mut buf[..len];
                read_padded(target, data, offset).ctx(|| {
                    format!("read restore target chunk {i} ({len} bytes at offset {offset})")
                })?;
                let differs = match &index.chunks[i] {
                    None => !is_all_zero(data),
                    Some(d) => ChunkDigest::of(data) != *d,
                };
                ctl.progress(len as u64);
                Ok(differs)
            },
        )?;
        Ok(RestorePlan {
            chunks: (0..chunks.len())
                .filter(|&k| differs[k])
                .map(|k| chunks[k])
                .collect(),
            chunks_examined: chunks.len() as u64,
        })
    }

    /// Reads and verifies every chunk the plan needs, writing nothing.
    ///
    /// Run it before writing into a live target, so a missing or corrupt chunk
    /// fails the restore before the target is touched.
    pub fn check_plan(
        &self,
        index: &DiskIndex,
        plan: &RestorePlan,
        ctl: &dyn Control,
    ) -> Result<(), RepoError> {
        check_index(index)?;
        check_plan_bounds(index, plan)?;
        // Each distinct chunk once, with the length the index expects of it.
        let mut needed: Vec<(ChunkDigest, usize)> = plan
            .chunks
            .iter()
            .filter_map(|&i| index.chunks[i].map(|d| (d, index.chunk_range(i).1)))
            .collect();
        needed.sort_unstable_by_key(|&(d, _)| d);
        needed.dedup_by_key(|&mut (d, _)| d);
        let locs = self.locate_all(needed.iter().map(|(d, _)| d))?;
        let workers = parallel::worker_count(needed.len());
        self.run_kept(workers, needed.len(), ctl, |w, k| {
            let (digest, len) = needed[k];
            w.buf.resize(len, 0);
            self.load_into(&mut w.codec, &digest, &locs[k], &mut w.buf)?;
            ctl.progress(len as u64);
            Ok(())
        })?;
        Ok(())
    }

    /// The first chunk of `index` (in disk order) that is not stored: in no known pack (after
    /// one look for packs written since open), or in a pack file that is gone. The in-memory
    /// map is consulted under one lock and each pack file the index uses is checked once (one
    /// `stat`), so the cost is a lookup per chunk plus a `stat` per pack.
    ///
    /// For an index from [`Repository::get_index_shared`] found whole before, while no chunk
    /// has left or moved between packs in memory since, only the packs are checked again.
    pub fn check_stored(&self, index: &DiskIndex) -> Result<StoredCheck, RepoError> {
        let epoch = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .epoch;
        if let Some(packs) = self.index_cache.stored_packs(index, epoch) {
            let keys: Option<Vec<String>> = {
                let map = self
                    .map
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                (map.epoch == epoch).then(|| {
                    packs
                        .iter()
                        .filter_map(|&n| map.packs.get(n as usize).map(|p| p.key.clone()))
                        .collect()
                })
            };
            if let Some(keys) = keys.filter(|k| k.len() == packs.len()) {
                if keys.iter().all(|k| self.storage.exists(k).unwrap_or(false)) {
                    return Ok(StoredCheck {
                        missing: None,
                        packs_checked: packs.len() as u64,
                    });
                }
            }
            // A pack gone: the full check below names the first chunk missing.
        }
        let lookup = || {
            let map = self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let packs: Vec<Option<u32>> = index
                .referenced()
                .map(|d| map.locs.get(d).map(|l| l.pack))
                .collect();
            (packs, map.epoch)
        };
        let (mut packs, mut at) = lookup();
        if packs.iter().any(Option::is_none) {
            // Packs written by another process since open are picked up.
            self.rescan_until(|| lookup().0.iter().all(Option::is_some))?;
            (packs, at) = lookup();
        }
        let keys: Vec<Option<String>> = {
            let map = self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.packs
                .iter()
                .map(|p| p.present.then(|| p.key.clone()))
                .collect()
        };
        // Per pack number: None unchecked, Some(present).
        let mut checked: Vec<Option<bool>> = vec![None; keys.len()];
        let mut out = StoredCheck::default();
        for (d, pack) in index.referenced().zip(packs) {
            let present = match pack {
                None => false,
                Some(n) => match checked.get_mut(n as usize) {
                    None => false,
                    Some(Some(p)) => *p,
                    Some(c) => {
                        out.packs_checked += 1;
                        let p = keys[n as usize]
                            .as_ref()
                            .is_some_and(|k| self.storage.exists(k).unwrap_or(false));
                        *c = Some(p);
                        p
                    }
                },
            };
            if !present {
                out.missing = Some(*d);
                break;
            }
        }
        if out.missing.is_none() {
            let found = (0..checked.len() as u32)
                .filter(|&n| checked[n as usize] == Some(true))
                .collect();
            self.index_cache.set_stored_packs(index, at, found);
        }
        Ok(out)
    }

    /// The location of every digest, in order; the first one not stored is named by [`Repository::not_found`].
    fn locate_all<'a>(
        &self,
        digests: impl Iterator<Item = &'a ChunkDigest> + Clone,
    ) -> Result<Vec<Loc>, RepoError> {
        for d in digests.clone() {
            // Packs written by another process since open are picked up once.
            if self.locate(d).is_none() {
                self.locate_or_rescan(d)?;
                break;
            }
        }
        let found: Result<Vec<Loc>, ChunkDigest> = {
            let map = self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            digests
                .map(|d| map.locs.get(d).copied().ok_or(*d))
                .collect()
        };
        found.map_err(|d| self.not_found(&d))
    }

    /// Writes the plan's chunks into `target` in parallel, verifying each chunk first.
    ///
    /// Sets the target's length to the disk size first; plan entries that are
    /// holes in the index are zero-filled. Fsyncs the target at the end unless
    /// the repository was opened with [`Durability::NoSync`].
    pub fn apply_restore(
        &self,
        index: &DiskIndex,
        plan: &RestorePlan,
        target: &dyn RestoreTarget,
        ctl: &dyn Control,
    ) -> Result<RestoreStats, RepoError> {
        self.apply(index, plan, target, ctl, false, Writes::Durable)
    }

    /// [`Repository::apply_restore`], flushed or not as `writes` says ([`Writes::Deferred`]:
    /// for a caller that has durably recorded what `target` must hold, brings it there after
    /// a crash, and flushes it itself).
    pub fn apply_restore_with(
        &self,
        index: &DiskIndex,
        plan: &RestorePlan,
        target: &dyn RestoreTarget,
        ctl: &dyn Control,
        writes: Writes,
    ) -> Result<RestoreStats, RepoError> {
        self.apply(index, plan, target, ctl, false, writes)
    }

    /// Like [`Repository::apply_restore`], for a target that already holds most of the data
    /// (QuickRollback): each planned chunk is compared with the target in
    /// [`IN_PLACE_BLOCK`]-byte blocks and only the blocks that differ are written, so the
    /// bytes written follow the guest's changes rather than the chunk size. The stats count
    /// chunks with at least one block written, and the bytes actually written.
    pub fn apply_restore_in_place(
        &self,
        index: &DiskIndex,
        plan: &RestorePlan,
        target: &dyn RestoreTarget,
        ctl: &dyn Control,
    ) -> Result<RestoreStats, RepoError> {
        self.apply(index, plan, target, ctl, true, Writes::Durable)
    }

    fn apply(
        &self,
        index: &DiskIndex,
        plan: &RestorePlan,
        target: &dyn RestoreTarget,
        ctl: &dyn Control,
        in_place: bool,
        writes: Writes,
    ) -> Result<RestoreStats, RepoError> {
        check_index(index)?;
        check_plan_bounds(index, plan)?;
        target
            .set_len(index.disk_size)
            .ctx(|| format!("set restore target length to {}", index.disk_size))?;
        let locs = self.locate_all(plan.chunks.iter().filter_map(|&i| index.chunks[i].as_ref()))?;
        // Position of each plan entry's location in `locs` (holes have none).
        let mut loc_of = Vec::with_capacity(plan.chunks.len());
        let mut n = 0;
        for &i in &plan.chunks {
            loc_of.push(index.chunks[i].map(|_| {
                n += 1;
                n - 1
            }));
        }
        let runs = runs(index, plan);
        // A fresh target (full restore) is written around the page cache; an in-place one is
        // written block by block where it differs, buffered.
        let direct = DirectTarget::new(target, self.direct_io && !in_place);
        direct.preallocate(runs.iter().map(|&run| run_range(index, plan, run)));
        // A direct write returns only once the device has the data: more workers than cores
        // keep the cores reading, decompressing and verifying while several writes are with
        // the device at once.
        let workers = parallel::worker_count(runs.len())
            * if direct.is_direct() {
                DIRECT_WORKERS_PER_CORE
            } else {
                1
            };
        let written = self.run_kept(workers, runs.len(), ctl, |w, r| {
            let (start, end) = runs[r];
            let (offset, total) = run_range(index, plan, runs[r]);
            let total = total as usize;
            let buf = w.run.prepare(total, offset);
            // The run's stored chunks in pack order: records that lie together in a pack
            // (backups store a disk's chunks in order; deduplicated ones point back to
            // earlier records) are read together, across small gaps, with one read each
            // stretch: an object store is paid by the request, a disk likes long reads.
            let mut stored: Vec<(Loc, usize, usize, ChunkDigest)> = Vec::with_capacity(end - start);
            for (&i, &l) in plan.chunks[start..end].iter().zip(&loc_of[start..end]) {
                let (o, len) = index.chunk_range(i);
                let at = (o - offset) as usize;
                match (&index.chunks[i], l) {
                    (Some(d), Some(l)) => stored.push((locs[l], at, len, *d)),
                    _ => {
                        buf[at..at + len].fill(0);
                        ctl.progress(len as u64);
                    }
                }
            }
            stored.sort_unstable_by_key(|(l, ..)| (l.pack, l.entry.offset));
            for run in read_runs(&stored, |(l, ..)| l, READ_GAP, READ_SPAN) {
                if ctl.cancelled() {
                    return Err(RepoError::Cancelled);
                }
                let (first, at, len, d) = stored[run.items.start];
                if run.items.len() == 1 {
                    self.load_into(&mut w.codec, &d, &first, &mut buf[at..at + len])?;
                    ctl.progress(len as u64);
                    continue;
                }
                w.span.resize((run.end - run.start) as usize, 0);
                self.read_pack(run.pack, &d, run.start, &mut w.span)?;
                for (loc, at, len, digest) in &stored[run.items] {
                    let e = loc.entry;
                    let from = (e.offset - run.start) as usize;
                    w.codec
                        .decode_from(
                            &w.span[from..from + e.record_len()],
                            digest,
                            &mut buf[*at..*at + *len],
                        )
                        .map_err(|err| err.at_place(|| self.place(run.pack, e.offset)))?;
                    ctl.progress(*len as u64);
                }
            }
            let write_err = || {
                format!(
                    "write restore target chunks {}..={} ({total} bytes at offset {offset})",
                    plan.chunks[start],
                    plan.chunks[end - 1]
                )
            };
            if !in_place {
                direct.write_all_at(w.run.get(), offset).ctx(write_err)?;
                return Ok(((end - start) as u64, total as u64));
            }
            let buf = w.run.get();
            w.current.resize(total, 0);
            read_padded(target, &mut w.current, offset)
                .ctx(|| format!("read restore target ({total} bytes at offset {offset})"))?;
            let mut chunks = 0;
            let mut bytes = 0;
            for &i in &plan.chunks[start..end] {
                let (o, len) = index.chunk_range(i);
                let at = (o - offset) as usize;
                let (new, old) = (&buf[at..at + len], &w.current[at..at + len]);
                // One write per span of differing blocks.
                let spans = differing_blocks(new, old);
                for &(b, e) in &spans {
                    target
                        .write_all_at(&new[b..e], o + b as u64)
                        .ctx(write_err)?;
                    bytes += (e - b) as u64;
                }
                chunks += u64::from(!spans.is_empty());
            }
            Ok((chunks, bytes))
        })?;
        if self.durability == Durability::Fsync && writes == Writes::Durable {
            target.flush().ctx(|| "fsync restore target".to_string())?;
        }
        Ok(RestoreStats {
            chunks_written: written.iter().map(|w| w.0).sum(),
            bytes_written: written.iter().map(|w| w.1).sum(),
            bytes_direct: direct
                .bytes_direct
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// Bytes of changed blocks a [`RollbackPlan`] keeps in memory; chunks beyond are re-read
/// (and verified again) when the plan is applied.
const ROLLBACK_KEEP: u64 = 256 << 20;

/// An in-place restore worked out and verified in one pass: the target blocks that differ
/// from the restore point, with the restore point's bytes for them.
#[derive(Debug, Default)]
pub struct RollbackPlan {
    /// Target offset and the bytes to write there, ascending, adjacent blocks merged.
    blocks: Vec<(u64, Vec<u8>)>,
    /// Blocks loaded for changed-block tracking: target offset, position in `arena` and
    /// length, ascending by offset.
    loaded: Vec<(u64, usize, usize)>,
    /// The bytes of the `loaded` blocks back to back, in memory kept from earlier rollbacks
    /// (see [`Scratch`]).
    arena: Arena,

    /// Chunks that differ but whose bytes were not kept (over the memory budget).
    reread: RestorePlan,
    /// Chunks read from the target and compared.
    pub chunks_examined: u64,
    /// Chunks with at least one block to write.
    pub chunks_differ: u64,
    /// Chunks read from the repository (each verified against its digest).
    pub chunks_loaded: u64,
    /// Of the chunks examined, those found to match without reading: holes in the point
    /// that lie wholly in holes of the target.
    pub chunks_in_holes: u64,
}

impl RollbackPlan {
    /// Bytes of the blocks kept in memory (chunks over the budget are not counted).
    pub fn blocks_bytes(&self) -> u64 {
        self.writes().map(|(_, b)| b.len() as u64).sum()
    }

    /// Every block to write: target offset and bytes.
    fn writes(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let loaded = self
            .loaded
            .iter()
            .map(|&(offset, at, len)| (offset, &self.arena.buf[at..at + len]));
        self.blocks
            .iter()
            .map(|(offset, bytes)| (*offset, bytes.as_slice()))
            .chain(loaded)
    }
}

/// What one candidate chunk contributes to a rollback.
enum Diff {
    Blocks(Vec<(u64, Vec<u8>)>),
    Reread(usize),
}

/// What changed-block tracking says about a disk since its tracking period began, for
/// [`Repository::prepare_rollback_tracked`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackedChanges {
    /// Byte ranges `(offset, len)` of the disk written since the period began. Where the
    /// period's starting point equals the restore point, only these ranges can differ from it.
    pub written: Vec<(u64, u64)>,
    /// Chunks where the period's starting point differs from the restore point: their
    /// unwritten blocks hold other content too, so they are read from the disk and compared.
    pub compare: Vec<usize>,
}

/// A target read by the digest comparison is read in stretches of this many bytes.
const COMPARE_SPAN: u64 = 4 << 20;
/// ... each read in pieces of this many bytes, hashed while they are in the core's cache
/// (bench/restore.sh 2048, rollback by digests with the disk in the page cache: 0.37–0.39 s
/// against 0.44–0.47 s reading whole stretches; from the device no different).
const COMPARE_READ: usize = 256 << 10;
/// Records of one pack this close together are read with one read (the bytes between are
/// cheaper to read than a second request).
const READ_GAP: u64 = 64 << 10;
/// Spans of a rollback's scattered reads announced (`WILLNEED`) ahead of the one being read.
const ADVISE_AHEAD: usize = 64;

impl Repository {
    /// Works out a QuickRollback in one pass, touching nothing: each chunk of `candidates`
    /// (every chunk when `None`) is read from `target`; where it may differ, the restore
    /// point's chunk is read from the repository and verified, and the
    /// [`IN_PLACE_BLOCK`]-byte blocks that differ are kept. Without candidates a chunk
    /// whose digest matches is skipped unread; with candidates (chunks that may differ) the
    /// digest is not computed, the chunk is compared directly. Consecutive chunks of the
    /// target are read together, in stretches of up to 4 MiB. Without candidates, a chunk
    /// that is a hole in the point and lies wholly in a hole of the target (the file system's
    /// map, `SEEK_DATA`/`SEEK_HOLE`) matches without being read.
    ///
    /// Each chunk is thus read once from the target and at most once from the repository,
    /// and every repository read happens before [`Repository::apply_rollback`] writes.
    pub fn prepare_rollback(
        &self,
        index: &DiskIndex,
        target: &dyn RestoreTarget,
        candidates: Option<&[usize]>,
        ctl: &dyn Control,
    ) -> Result<RollbackPlan, RepoError> {
        check_index(index)?;
        let mut skipped = 0;
        let list: Vec<usize> = match candidates {
            Some(c) => {
                let mut c = c.to_vec();
                c.sort_unstable();
                c.dedup();
                check_plan_bounds(
                    index,
                    &RestorePlan {
                        chunks: c.clone(),
                        chunks_examined: 0,
                    },
                )?;
                c
            }
            None => {
                // The whole disk is read in order, but for the chunks that lie wholly in a hole
                // of the target where the point has a hole too: those match unread.
                target.advise(0, 0, Advice::Sequential);
                let data = target.data_ranges(index.disk_size);
                let mut r = 0;
                (0..index.chunks.len())
                    .filter(|&i| {
                        if index.chunks[i].is_some() {
                            return true;
                        }
                        let (o, l) = index.chunk_range(i);
                        while r < data.len() && data[r].1 <= o {
                            r += 1;
                        }
                        // Some data range ends after `o`: it holds data in the chunk if it
                        // starts before the chunk's end.
                        let in_data = r < data.len() && data[r].0 < o + l as u64;
                        if !in_data {
                            skipped += 1;
                        }
                        in_data
                    })
                    .collect()
            }
        };
        let mut plan = RollbackPlan {
            chunks_in_holes: skipped,
            chunks_examined: skipped,
            ..RollbackPlan::default()
        };
        self.compare_chunks(index, target, &list, candidates.is_some(), ctl, &mut plan)?;
        plan.blocks.sort_unstable_by_key(|(o, _)| *o);
        plan.reread.chunks_examined = plan.reread.chunks.len() as u64;
        Ok(plan)
    }

    /// Works out a QuickRollback from changed-block tracking: the ranges it says were written
    /// get the restore point's bytes, without reading the target (bytes written = bytes the
    /// guest wrote); the chunks in `changes.compare` are read and compared as
    /// [`Repository::prepare_rollback`] does. The repository chunks the written ranges need
    /// are each read once (sorted by pack and offset, nearby records in one read, several
    /// reads in flight) and verified before anything is returned; nothing is written.
    ///
    /// When the written ranges exceed the in-memory budget (256 MiB), their chunks are
    /// compared against the target instead.
    pub fn prepare_rollback_tracked(
        &self,
        index: &DiskIndex,
        target: &dyn RestoreTarget,
        changes: &TrackedChanges,
        ctl: &dyn Control,
    ) -> Result<RollbackPlan, RepoError> {
        check_index(index)?;
        let mut compare = changes.compare.clone();
        compare.sort_unstable();
        compare.dedup();
        check_plan_bounds(
            index,
            &RestorePlan {
                chunks: compare.clone(),
                chunks_examined: 0,
            },
        )?;
        let cs = u64::from(index.chunk_size.max(1));
        // The written ranges, split at chunk boundaries, outside the compared chunks.
        let mut pieces: Vec<(usize, u64, u64)> = Vec::new();
        for &(offset, len) in &changes.written {
            let end = offset.saturating_add(len).min(index.disk_size);
            let mut o = offset;
            while o < end {
                let i = (o / cs) as usize;
                let e = end.min((i as u64 + 1) * cs);
                if compare.binary_search(&i).is_err() {
                    pieces.push((i, o, e - o));
                }
                o = e;
            }
        }
        pieces.sort_unstable();
        pieces.dedup();
        let bytes: u64 = pieces.iter().map(|p| p.2).sum();
        let mut plan = RollbackPlan::default();
        if bytes > ROLLBACK_KEEP {
            compare.extend(pieces.iter().map(|p| p.0));
            compare.sort_unstable();
            compare.dedup();
        } else {
            self.load_written(index, &pieces, ctl, &mut plan)?;
        }
        self.compare_chunks(index, target, &compare, true, ctl, &mut plan)?;
        plan.blocks.sort_unstable_by_key(|(o, _)| *o);
        plan.reread.chunks_examined = plan.reread.chunks.len() as u64;
        Ok(plan)
    }

    /// The restore point's bytes for `pieces` (chunk, offset, length; sorted by chunk), into
    /// `plan.blocks`. Each distinct chunk is read once and verified; holes need no read.
    fn load_written(
        &self,
        index: &DiskIndex,
        pieces: &[(usize, u64, u64)],
        ctl: &dyn Control,
        plan: &mut RollbackPlan,
    ) -> Result<(), RepoError> {
        // Pieces per chunk: pieces[from..to] belong to chunk i.
        let mut groups: Vec<(usize, usize, usize)> = Vec::new();
        for (k, p) in pieces.iter().enumerate() {
            match groups.last_mut() {
                Some(g) if g.0 == p.0 => g.2 = k + 1,
                _ => groups.push((p.0, k, k + 1)),
            }
        }
        plan.chunks_differ += groups.len() as u64;
        // Holes: zeros, no read.
        for &(i, from, to) in &groups {
            if index.chunks[i].is_none() {
                for &(_, o, l) in &pieces[from..to] {
                    plan.blocks.push((o, vec![0; l as usize]));
                }
            }
        }
        // Each distinct digest once, with every group that needs it.
        let mut needed: Vec<(ChunkDigest, usize)> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, &(i, _, _))| index.chunks[i].map(|d| (d, g)))
            .collect();
        needed.sort_unstable();
        let mut digests: Vec<(ChunkDigest, std::ops::Range<usize>)> = Vec::new();
        for (k, (d, _)) in needed.iter().enumerate() {
            match digests.last_mut() {
                Some((last, r)) if last == d => r.end = k + 1,
                _ => digests.push((*d, k..k + 1)),
            }
        }
        let locs = self.locate_all(digests.iter().map(|(d, _)| d))?;
        // Read in pack order; records close together in one read.
        let mut order: Vec<usize> = (0..digests.len()).collect();
        order.sort_unstable_by_key(|&k| (locs[k].pack, locs[k].entry.offset));
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        for (n, &k) in order.iter().enumerate() {
            let l = locs[k];
            if let Some(r) = spans.last_mut() {
                let first = locs[order[r.start]];
                let prev = locs[order[r.end - 1]];
                let prev_end = prev.entry.offset + prev.entry.record_len() as u64;
                if l.pack == first.pack
                    && l.entry.offset >= prev_end
                    && l.entry.offset - prev_end <= READ_GAP
                    && l.entry.offset + l.entry.record_len() as u64 - first.entry.offset
                        <= READ_SPAN
                {
                    r.end = n + 1;
                    continue;
                }
            }
            spans.push(n..n + 1);
        }
        let span_range = |r: &std::ops::Range<usize>| {
            let first = locs[order[r.start]];
            let last = locs[order[r.end - 1]];
            (
                first.entry.offset,
                last.entry.offset + last.entry.record_len() as u64 - first.entry.offset,
            )
        };
        // Each span is announced to the kernel ADVISE_AHEAD spans before a worker reads it:
        // from the workers, so the announcements overlap the reads instead of delaying them.
        let advise = |s: usize| {
            if let Some(r) = spans.get(s) {
                let (o, l) = span_range(r);
                self.advise_pack(locs[order[r.start]].pack, &digests[order[r.start]].0, o, l);
            }
        };
        (0..ADVISE_AHEAD).for_each(advise);
        // Each span's blocks get their own stretch of one arena, in span order.
        let span_bytes = |r: &std::ops::Range<usize>| -> usize {
            order[r.clone()]
                .iter()
                .flat_map(|&k| &needed[digests[k].1.clone()])
                .flat_map(|&(_, g)| &pieces[groups[g].1..groups[g].2])
                .map(|p| p.2 as usize)
                .sum()
        };
        let mut arena = self.scratch.arena(spans.iter().map(span_bytes).sum());
        let mut slots = Vec::with_capacity(spans.len());
        let mut rest = arena.buf.as_mut_slice();
        let mut at = 0;
        for r in &spans {
            let n = span_bytes(r);
            let (slot, tail) = rest.split_at_mut(n);
            slots.push(Mutex::new((at, slot)));
            at += n;
            rest = tail;
        }
        // Scattered reads wait on the device: more reads in flight than cores.
        let workers = parallel::worker_count(spans.len()) * 4;
        let blocks = self.run_kept(workers, spans.len(), ctl, |w, s| {
            advise(s + ADVISE_AHEAD);
            let mut slot = slots[s].lock().unwrap_or_else(PoisonError::into_inner);
            let (base, ref mut slot) = *slot;
            let mut used = 0;
            let r = &spans[s];
            let first = locs[order[r.start]];
            let (span_off, span_len) = span_range(r);
            w.span.resize(span_len as usize, 0);
            self.read_pack(
                first.pack,
                &digests[order[r.start]].0,
                span_off,
                &mut w.span,
            )?;
            let mut out = Vec::new();
            for &k in &order[r.clone()] {
                let (d, users) = &digests[k];
                let e = locs[k].entry;
                let from = (e.offset - span_off) as usize;
                // Every user of a digest has the chunk's length; the first gives it.
                let (i0, _, _) = groups[needed[users.start].1];
                let place = || self.place(locs[k].pack, e.offset);
                let chunk = w
                    .codec
                    .decoded(
                        &w.span[from..from + e.record_len()],
                        d,
                        index.chunk_range(i0).1,
                        &mut w.buf,
                    )
                    .map_err(|err| err.at_place(place))?;
                for &(_, g) in &needed[users.clone()] {
                    let (i, a, b) = groups[g];
                    let (chunk_off, len) = index.chunk_range(i);
                    if len != chunk.len() {
                        return Err(RepoError::ChunkCorrupt {
                            digest: *d,
                            at: Some(place()),
                            reason: format!(
                                "chunk holds {} bytes but {len} are expected",
                                chunk.len()
                            ),
                        });
                    }
                    for &(_, o, l) in &pieces[a..b] {
                        let (at, l) = ((o - chunk_off) as usize, l as usize);
                        slot[used..used + l].copy_from_slice(&chunk[at..at + l]);
                        out.push((o, base + used, l));
                        used += l;
                    }
                }
                ctl.progress(chunk.len() as u64);
            }
            Ok(out)
        })?;
        drop(slots);
        plan.chunks_loaded += digests.len() as u64;
        plan.loaded = blocks.into_iter().flatten().collect();
        plan.loaded.sort_unstable_by_key(|&(o, _, _)| o);
        plan.arena = arena;
        Ok(())
    }

    /// Reads `list`'s chunks (ascending) from `target`, consecutive ones together, and adds
    /// what differs from `index` to `plan` (see [`Repository::prepare_rollback`]).
    fn compare_chunks(
        &self,
        index: &DiskIndex,
        target: &dyn RestoreTarget,
        list: &[usize],
        tracked: bool,
        ctl: &dyn Control,
        plan: &mut RollbackPlan,
    ) -> Result<(), RepoError> {
        // Stretches of consecutive chunks, up to COMPARE_SPAN bytes each.
        let per_span = (COMPARE_SPAN / u64::from(index.chunk_size.max(1))).max(1) as usize;
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        for k in 0..list.len() {
            match spans.last_mut() {
                Some(r) if list[k] == list[k - 1] + 1 && r.len() < per_span => r.end = k + 1,
                _ => spans.push(k..k + 1),
            }
        }
        let kept = std::sync::atomic::AtomicU64::new(0);
        // Twice the cores: one worker hashes while another waits for its read.
        let workers = parallel::worker_count(spans.len()) * 2;
        let loaded = std::sync::atomic::AtomicU64::new(0);
        let diffs = self.run_kept(workers, spans.len(), ctl, |w, s| {
                // Keep the device busy a few stretches ahead of the workers.
                if let Some(ahead) = spans.get(s + 2 * workers) {
                    let (o, _) = index.chunk_range(list[ahead.start]);
                    let (lo, ll) = index.chunk_range(list[ahead.end - 1]);
                    target.advise(o, lo + ll as u64 - o, Advice::WillNeed);
                }
                let mut out = Vec::new();
                // Read in pieces that stay in the core's cache while they are hashed.
                let r = &spans[s];
                let per_read = (COMPARE_READ / index.chunk_size.max(1) as usize).max(1);
                for piece in list[r.clone()].chunks(per_read) {
                    let (span_off, _) = index.chunk_range(piece[0]);
                    let (last_off, last_len) = index.chunk_range(piece[piece.len() - 1]);
                    let span_len = (last_off + last_len as u64 - span_off) as usize;
                    w.span.resize(span_len, 0);
                    read_padded(target, &mut w.span, span_off).ctx(|| {
                        format!(
                            "read restore target chunks {}..={} ({span_len} bytes at offset {span_off})",
                            piece[0],
                            piece[piece.len() - 1]
                        )
                    })?;
                    for &i in piece {
                        if ctl.cancelled() {
                            return Err(RepoError::Cancelled);
                        }
                        let (offset, len) = index.chunk_range(i);
                        let at = (offset - span_off) as usize;
                        let current = &w.span[at..at + len];
                        ctl.progress(len as u64);
                        let new: &[u8] = match &index.chunks[i] {
                            None => {
                                if is_all_zero(current) {
                                    continue;
                                }
                                w.buf.clear();
                                w.buf.resize(len, 0);
                                &w.buf
                            }
                            Some(d) => {
                                if !tracked && ChunkDigest::of(current) == *d {
                                    continue;
                                }
                                let loc = self
                                    .locate_or_rescan(d)?
                                    .ok_or_else(|| self.not_found(d))?;
                                w.buf.resize(len, 0);
                                self.load_into(&mut w.codec, d, &loc, &mut w.buf)?;
                                loaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                &w.buf
                            }
                        };
                        let spans = differing_blocks(new, current);
                        if spans.is_empty() {
                            continue;
                        }
                        let bytes: u64 = spans.iter().map(|(b, e)| (e - b) as u64).sum();
                        if kept.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed) + bytes
                            > ROLLBACK_KEEP
                        {
                            out.push(Diff::Reread(i));
                            continue;
                        }
                        out.push(Diff::Blocks(
                            spans
                                .into_iter()
                                .map(|(b, e)| (offset + b as u64, new[b..e].to_vec()))
                                .collect(),
                        ));
                    }
                }
                Ok(out)
        })?;
        plan.chunks_examined += list.len() as u64;
        plan.chunks_loaded += loaded.into_inner();
        for d in diffs.into_iter().flatten() {
            match d {
                Diff::Blocks(b) => {
                    plan.chunks_differ += 1;
                    plan.blocks.extend(b);
                }
                Diff::Reread(i) => {
                    plan.chunks_differ += 1;
                    plan.reread.chunks.push(i);
                }
            }
        }
        Ok(())
    }

    /// Writes a [`RollbackPlan`] into `target` (the file it was prepared from): the kept
    /// blocks, then the chunks over the memory budget (read and verified again, compared
    /// block by block). Fsyncs the target unless the repository is [`Durability::NoSync`] or
    /// `writes` is [`Writes::Deferred`].
    pub fn apply_rollback(
        &self,
        index: &DiskIndex,
        plan: &RollbackPlan,
        target: &dyn RestoreTarget,
        ctl: &dyn Control,
        writes: Writes,
    ) -> Result<RestoreStats, RepoError> {
        let mut stats = RestoreStats::default();
        for (offset, bytes) in plan.writes() {
            target.write_all_at(bytes, offset).ctx(|| {
                format!(
                    "write restore target ({} bytes at offset {offset})",
                    bytes.len()
                )
            })?;
            stats.bytes_written += bytes.len() as u64;
        }
        stats.chunks_written = plan.chunks_differ - plan.reread.chunks.len() as u64;
        if !plan.reread.chunks.is_empty() {
            // apply() fsyncs (per durability) after writing.
            let more = self.apply(index, &plan.reread, target, ctl, true, writes)?;
            stats.chunks_written += more.chunks_written;
            stats.bytes_written += more.bytes_written;
        } else if self.durability == Durability::Fsync
            && writes == Writes::Durable
            && plan.writes().next().is_some()
        {
            target.flush().ctx(|| "fsync restore target".to_string())?;
        }
        Ok(stats)
    }
}

/// Byte ranges `(start, end)` of `new` that differ from `old`, in [`IN_PLACE_BLOCK`] steps,
/// adjacent differing blocks merged.
fn differing_blocks(new: &[u8], old: &[u8]) -> Vec<(usize, usize)> {
    let len = new.len();
    let differs = |b: usize| {
        let e = (b + IN_PLACE_BLOCK).min(len);
        new[b..e] != old[b..e]
    };
    let mut out = Vec::new();
    let mut b = 0;
    while b < len {
        if !differs(b) {
            b += IN_PLACE_BLOCK;
            continue;
        }
        let mut e = b + IN_PLACE_BLOCK;
        while e < len && differs(e) {
            e += IN_PLACE_BLOCK;
        }
        let e = e.min(len);
        out.push((b, e));
        b = e;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_pools_share_the_workers_down_to_the_cores() {
        let cores = parallel::worker_count(usize::MAX);
        let wanted = cores * DIRECT_WORKERS_PER_CORE;
        // Alone: what it asks for.
        assert_eq!(shared_workers(wanted, 1), wanted);
        // Beside others: an equal share...
        assert_eq!(shared_workers(wanted, 2), (wanted / 2).max(cores));
        // ...never fewer than the cores...
        assert_eq!(shared_workers(wanted, 64), cores);
        // ...and never more than asked.
        assert_eq!(shared_workers(1, 4), 1);
        assert_eq!(shared_workers(3, 0), 3);
    }
}
