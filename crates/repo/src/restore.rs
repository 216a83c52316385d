//! Restore: plan which chunks a target needs, check them, then write them.
//!
//! Planning and checking touch nothing; only [`Repository::apply_restore`] writes,
//! so a missing or corrupt chunk can be found before a target is modified.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::chunk::{is_all_zero, ChunkCodec};
use crate::error::IoContext;
use crate::parallel;
use crate::{ChunkDigest, Control, DiskIndex, Durability, RepoError, Repository};

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
}

/// Per-worker buffers for reading chunks.
struct ChunkWorker {
    codec: ChunkCodec,
    buf: Vec<u8>,
}

impl ChunkWorker {
    fn new() -> Result<ChunkWorker, RepoError> {
        Ok(ChunkWorker {
            codec: ChunkCodec::new()?,
            buf: Vec::new(),
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

/// Reads `buf.len()` bytes at `offset`; bytes past the end of `file` read as zeros.
fn read_padded(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[filled..].fill(0);
    Ok(())
}

impl Repository {
    /// Works out which chunks a restore must write.
    ///
    /// Without a target (a fresh, zero-filled sparse file) that is every data chunk.
    /// With a target, each chunk range is read and hashed in parallel and kept when
    /// it differs from the index: an all-zero range matches a hole, and a non-zero
    /// range where the index has a hole must be zeroed.
    pub fn plan_restore(
        &self,
        index: &DiskIndex,
        target: Option<&File>,
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
        let chunk_size = index.chunk_size as usize;
        let (differs, _) = parallel::run(
            count,
            ctl,
            || Ok(vec![0u8; chunk_size]),
            |buf, i| {
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
            chunks: (0..count).filter(|&i| differs[i]).collect(),
            chunks_examined: count as u64,
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
        let mut needed: Vec<(ChunkDigest, usize, usize)> = plan
            .chunks
            .iter()
            .filter_map(|&i| index.chunks[i].map(|d| (d, index.chunk_range(i).1, i)))
            .collect();
        needed.sort_unstable_by_key(|&(d, _, _)| d);
        needed.dedup_by_key(|&mut (d, _, _)| d);
        parallel::run(needed.len(), ctl, ChunkWorker::new, |w, k| {
            let (digest, len, i) = needed[k];
            self.load_chunk(w, &digest, len, i)?;
            ctl.progress(len as u64);
            Ok(())
        })?;
        Ok(())
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
        target: &File,
        ctl: &dyn Control,
    ) -> Result<RestoreStats, RepoError> {
        check_index(index)?;
        check_plan_bounds(index, plan)?;
        target
            .set_len(index.disk_size)
            .ctx(|| format!("set restore target length to {}", index.disk_size))?;
        let (written, _) = parallel::run(plan.chunks.len(), ctl, ChunkWorker::new, |w, k| {
            let i = plan.chunks[k];
            let (offset, len) = index.chunk_range(i);
            match &index.chunks[i] {
                Some(d) => self.load_chunk(w, d, len, i)?,
                None => {
                    w.buf.clear();
                    w.buf.resize(len, 0);
                }
            }
            target.write_all_at(&w.buf, offset).ctx(|| {
                format!("write restore target chunk {i} ({len} bytes at offset {offset})")
            })?;
            ctl.progress(len as u64);
            Ok(len as u64)
        })?;
        if self.durability == Durability::Fsync {
            target
                .sync_all()
                .ctx(|| "fsync restore target".to_string())?;
        }
        Ok(RestoreStats {
            chunks_written: written.len() as u64,
            bytes_written: written.iter().sum(),
        })
    }

    /// Reads and verifies chunk `d` into `w.buf`, checking it has the `len` bytes index entry `i` expects.
    fn load_chunk(
        &self,
        w: &mut ChunkWorker,
        d: &ChunkDigest,
        len: usize,
        i: usize,
    ) -> Result<(), RepoError> {
        w.codec.read_chunk(&self.chunk_path(d), d, &mut w.buf)?;
        if w.buf.len() != len {
            return Err(RepoError::ChunkCorrupt {
                digest: *d,
                reason: format!(
                    "chunk holds {} bytes but the index expects {len} at chunk {i}",
                    w.buf.len()
                ),
            });
        }
        Ok(())
    }
}
