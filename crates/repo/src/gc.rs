//! Verification, garbage collection and space accounting over chunk files.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::chunk::ChunkCodec;
use crate::error::IoContext;
use crate::fsutil;
use crate::parallel;
use crate::{ChunkDigest, Control, RepoError, Repository};

/// A chunk that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkProblem {
    /// No chunk file exists for the digest.
    Missing(ChunkDigest),
    /// The chunk file is unreadable, damaged or does not hash to its digest.
    Corrupt(ChunkDigest, String),
}

impl ChunkProblem {
    /// The digest of the chunk with the problem.
    pub fn digest(&self) -> &ChunkDigest {
        match self {
            ChunkProblem::Missing(d) | ChunkProblem::Corrupt(d, _) => d,
        }
    }
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkProblem::Missing(d) => write!(f, "chunk {d} is missing"),
            ChunkProblem::Corrupt(d, reason) => write!(f, "chunk {d} is corrupt: {reason}"),
        }
    }
}

/// What one garbage collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Chunk files deleted.
    pub chunks_removed: u64,
    /// Bytes of chunk files deleted.
    pub bytes_removed: u64,
    /// Chunk files kept: live ones, and unreferenced ones still within the grace period.
    pub chunks_kept: u64,
}

impl Repository {
    /// Re-reads, decompresses and re-hashes each distinct digest; reports every problem, sorted by digest.
    ///
    /// On cancellation it stops early and returns the problems found so far.
    pub fn verify_chunks<'a>(
        &self,
        digests: impl IntoIterator<Item = &'a ChunkDigest>,
        ctl: &dyn Control,
    ) -> Vec<ChunkProblem> {
        let mut todo: Vec<ChunkDigest> = digests.into_iter().copied().collect();
        todo.sort_unstable();
        todo.dedup();
        let problems = Mutex::new(Vec::new());
        // Workers build their codec lazily, so the only error `run` returns is cancellation,
        // and then the problems found so far are still reported.
        let _cancelled = parallel::run(
            todo.len(),
            ctl,
            || Ok((None::<ChunkCodec>, Vec::new())),
            |(codec, buf), k| {
                let d = &todo[k];
                let read = match codec {
                    Some(c) => c.read_chunk(&self.chunk_path(d), d, buf),
                    None => ChunkCodec::new()
                        .and_then(|c| codec.insert(c).read_chunk(&self.chunk_path(d), d, buf)),
                };
                let problem = match read {
                    Ok(()) => {
                        ctl.progress(buf.len() as u64);
                        return Ok(());
                    }
                    Err(RepoError::ChunkMissing { digest }) => ChunkProblem::Missing(digest),
                    Err(RepoError::ChunkCorrupt { digest, reason }) => {
                        ChunkProblem::Corrupt(digest, reason)
                    }
                    Err(other) => ChunkProblem::Corrupt(*d, format!("cannot verify: {other}")),
                };
                problems
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(problem);
                Ok(())
            },
        );
        let mut problems = problems
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        problems.sort_by(|a, b| a.digest().cmp(b.digest()));
        problems
    }

    /// Deletes chunk files not in `live` whose modification time is older than `grace`.
    ///
    /// The grace period protects chunks a running backup has just written or
    /// referenced (backups refresh the time of chunks they reuse).
    pub fn gc(&self, live: &HashSet<ChunkDigest>, grace: Duration) -> Result<GcStats, RepoError> {
        let now = SystemTime::now();
        let mut stats = GcStats::default();
        for dir in self.chunk_subdirs()? {
            let mut removed_here = false;
            for (digest, path, meta) in chunk_files(&dir)? {
                if live.contains(&digest) {
                    stats.chunks_kept += 1;
                    continue;
                }
                let mtime = meta
                    .modified()
                    .ctx(|| format!("read modification time of {}", path.display()))?;
                // A time in the future counts as brand new.
                let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
                if age < grace {
                    stats.chunks_kept += 1;
                    continue;
                }
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(RepoError::io(
                            format!("delete chunk {digest} ({})", path.display()),
                            e,
                        ))
                    }
                }
                removed_here = true;
                stats.chunks_removed += 1;
                stats.bytes_removed += meta.len();
            }
            if removed_here {
                fsutil::fsync_dir(&dir, self.durability)?;
            }
        }
        Ok(stats)
    }

    /// Total size of all chunk files in bytes.
    pub fn stored_bytes(&self) -> Result<u64, RepoError> {
        let mut total = 0;
        for dir in self.chunk_subdirs()? {
            total += chunk_files(&dir)?
                .iter()
                .map(|(_, _, m)| m.len())
                .sum::<u64>();
        }
        Ok(total)
    }
}

/// The chunk files in one `chunks/<2 hex>` folder (entries not named by a digest are skipped).
fn chunk_files(dir: &Path) -> Result<Vec<(ChunkDigest, PathBuf, fs::Metadata)>, RepoError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        let Some(digest) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<ChunkDigest>().ok())
        else {
            continue;
        };
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Removed since listing (another GC or a racing delete): nothing to count.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(RepoError::io(
                    format!("inspect {}", entry.path().display()),
                    e,
                ))
            }
        };
        if meta.is_file() {
            out.push((digest, entry.path(), meta));
        }
    }
    Ok(out)
}
