//! Verification, garbage collection and space accounting over packs.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::chunk::{legacy_parts, ChunkCodec, CODEC_RAW, CODEC_ZSTD, LEGACY_HEAD_LEN};
use crate::error::IoContext;
use crate::pack::{read_runs, Loc, PackWriter, ReadRun};
use crate::parallel;
use crate::storage::Storage;
use crate::{ChunkDigest, ChunkPlace, Control, RepoError, Repository};

/// A chunk that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkProblem {
    /// No pack holds the chunk.
    Missing(ChunkDigest),
    /// The chunk's record is unreadable, damaged or does not hash to its digest.
    Corrupt {
        /// The chunk's digest.
        digest: ChunkDigest,
        /// Where its record lies (`None` when it could not be read for another reason).
        at: Option<ChunkPlace>,
        /// What was found wrong.
        reason: String,
    },
    /// No readable pack holds the chunk and a pack whose own index is damaged lists it.
    PackIndexCorrupt {
        /// The chunk's digest.
        digest: ChunkDigest,
        /// The pack file, as the storage describes it.
        pack: String,
        /// What is wrong with the pack's index.
        reason: String,
        /// The chunk count the pack's footer gives, when it can be read.
        chunks: Option<u64>,
    },
}

impl ChunkProblem {
    /// The digest of the chunk with the problem.
    pub fn digest(&self) -> &ChunkDigest {
        match self {
            ChunkProblem::Missing(digest)
            | ChunkProblem::Corrupt { digest, .. }
            | ChunkProblem::PackIndexCorrupt { digest, .. } => digest,
        }
    }
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkProblem::Missing(d) => write!(f, "chunk {d} is missing"),
            ChunkProblem::Corrupt { digest, at, reason } => {
                let e = RepoError::ChunkCorrupt {
                    digest: *digest,
                    at: at.clone(),
                    reason: reason.clone(),
                };
                write!(f, "{e}")
            }
            ChunkProblem::PackIndexCorrupt {
                digest,
                pack,
                reason,
                chunks,
            } => {
                let e = RepoError::PackIndexCorrupt {
                    digest: *digest,
                    pack: pack.clone(),
                    reason: reason.clone(),
                    chunks: *chunks,
                };
                write!(f, "{e}")
            }
        }
    }
}

/// The chunks of one codec in a repository's packs (see [`SpaceUse`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecUse {
    /// Records in pack files (a chunk stored in two packs counts twice).
    pub chunks: u64,
    /// Their uncompressed size.
    pub chunk_bytes: u64,
    /// Their size in the packs: records with their headers.
    pub stored_bytes: u64,
}

/// Where a repository's bytes go, by kind of file and, in packs, by codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceUse {
    /// Chunks stored as they are.
    pub raw: CodecUse,
    /// Chunks stored as plain zstd frames.
    pub zstd: CodecUse,
    /// Chunks stored as zstd frames with a repository dictionary.
    pub zstd_dict: CodecUse,
    /// The rest of the pack files: headers, pack indexes (a digest per chunk) and footers.
    pub pack_indexes: u64,
    /// Disk index files (a digest per data chunk of each whole index).
    pub disk_indexes: u64,
    /// Dictionary files.
    pub dictionaries: u64,
    /// The config file.
    pub config: u64,
}

impl SpaceUse {
    /// Bytes of every file counted.
    pub fn total(&self) -> u64 {
        [self.raw, self.zstd, self.zstd_dict]
            .iter()
            .map(|c| c.stored_bytes)
            .sum::<u64>()
            + self.pack_indexes
            + self.disk_indexes
            + self.dictionaries
            + self.config
    }
}

/// Total size of the objects directly under `prefix` (`indexes/`: the files directly in
/// that folder).
fn files_size(storage: &dyn Storage, prefix: &str) -> Result<u64, RepoError> {
    let mut total = 0;
    let keys = storage
        .list(prefix)
        .ctx(|| format!("list {}", storage.describe(prefix.trim_end_matches('/'))))?;
    for key in keys {
        if key[prefix.len()..].contains('/') {
            continue;
        }
        match storage.stat(&key) {
            Ok(m) => total += m.map_or(0, |m| m.len),
            Err(e) => return Err(RepoError::io(format!("stat {}", storage.describe(&key)), e)),
        }
    }
    Ok(total)
}

/// What one garbage collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Chunks deleted (whole packs removed, or dropped when a pack was rewritten).
    pub chunks_removed: u64,
    /// Bytes freed (pack sizes before minus after).
    pub bytes_removed: u64,
    /// Chunks kept: live ones, and unreferenced ones in packs still within the grace period.
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
        // What is checked is the store as it is now, not bytes a storage kept from before.
        self.storage.forget_reads();
        let mut todo: Vec<ChunkDigest> = digests.into_iter().copied().collect();
        todo.sort_unstable();
        todo.dedup();
        if let Some(d) = todo.iter().find(|d| self.locate(d).is_none()) {
            // Packs written by another process since open are picked up once.
            let _ = self.locate_or_rescan(d);
        }
        let mut missing = Vec::new();
        let mut located: Vec<(ChunkDigest, Loc)> = Vec::with_capacity(todo.len());
        for d in todo {
            match self.locate(&d) {
                Some(loc) => located.push((d, loc)),
                None => missing.push(d),
            }
        }
        // In pack order, so neighbouring records are checked from one read: an object store
        // is paid by the request, and a disk prefers long reads too.
        located.sort_unstable_by_key(|(_, l)| (l.pack, l.entry.offset));
        let runs = read_runs(&located, |(_, l)| l, VERIFY_GAP, VERIFY_RUN);
        let problems: Mutex<Vec<ChunkProblem>> = Mutex::new(
            missing
                .iter()
                .map(|d| problem_of(d, self.not_found(d)))
                .collect(),
        );
        // Workers build their codec lazily, so the only error `run` returns is cancellation,
        // and then the problems found so far are still reported.
        let _cancelled = parallel::run(
            runs.len(),
            ctl,
            || Ok((None::<ChunkCodec>, Vec::new(), Vec::new())),
            |(codec, buf, run_buf), k| {
                let found = self.verify_run(&runs[k], &located, codec, buf, run_buf, ctl);
                if !found.is_empty() {
                    problems
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(found);
                }
                Ok(())
            },
        );
        let mut problems = problems
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        problems.sort_by(|a, b| a.digest().cmp(b.digest()));
        problems
    }

    /// Checks the chunks of `run` (neighbours in one pack, in order) from one read of their
    /// records; where that read fails, each chunk alone, so every problem names its chunk and
    /// place.
    fn verify_run(
        &self,
        run: &ReadRun,
        located: &[(ChunkDigest, Loc)],
        codec: &mut Option<ChunkCodec>,
        buf: &mut Vec<u8>,
        run_buf: &mut Vec<u8>,
        ctl: &dyn Control,
    ) -> Vec<ChunkProblem> {
        let chunks = &located[run.items.clone()];
        let codec = match codec {
            Some(c) => c,
            None => match ChunkCodec::new() {
                Ok(c) => codec.insert(c),
                Err(e) => {
                    return chunks
                        .iter()
                        .map(|(d, _)| ChunkProblem::Corrupt {
                            digest: *d,
                            at: None,
                            reason: format!("cannot verify: {e}"),
                        })
                        .collect()
                }
            },
        };
        run_buf.resize((run.end - run.start) as usize, 0);
        let whole = self
            .read_pack(run.pack, &chunks[0].0, run.start, run_buf)
            .is_ok();
        let mut problems = Vec::new();
        for (d, loc) in chunks {
            buf.resize(loc.entry.len as usize, 0);
            let read = if whole {
                let at = (loc.entry.offset - run.start) as usize;
                codec
                    .decode_from(&run_buf[at..at + loc.entry.record_len()], d, buf)
                    .map_err(|e| e.at_place(|| self.place(loc.pack, loc.entry.offset)))
            } else {
                self.load_into(codec, d, loc, buf)
            };
            match read {
                Ok(()) => ctl.progress(buf.len() as u64),
                Err(e) => problems.push(problem_of(d, e)),
            }
        }
        problems
    }

    /// Removes chunks not in `live` from packs whose modification time is older than `grace`.
    ///
    /// A pack with no live chunk is deleted; a pack with some is rewritten with only its live
    /// chunks (records copied as stored), then deleted. The grace period protects chunks a
    /// running backup has just written or referenced (backups refresh the time of the packs
    /// they reuse).
    pub fn gc(&self, live: &HashSet<ChunkDigest>, grace: Duration) -> Result<GcStats, RepoError> {
        self.rescan()?;
        let now = SystemTime::now();
        let mut stats = GcStats::default();
        let pack_count = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .packs
            .len();
        let storage = self.storage.as_ref();
        let mut new_packs: Vec<String> = Vec::new();
        let mut removed_packs: Vec<String> = Vec::new();
        for pack in 0..pack_count as u32 {
            // (path, size, entries the map locates in this pack, with liveness)
            let (path, size, entries, total) = {
                let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
                let info = &map.packs[pack as usize];
                if !info.present {
                    continue;
                }
                let mine: Vec<_> = info
                    .entries
                    .iter()
                    .filter(|(d, _)| map.locs.get(d).is_some_and(|l| l.pack == pack))
                    .map(|(d, e)| (*d, *e, live.contains(d)))
                    .collect();
                (info.key.clone(), info.size, mine, info.entries.len() as u64)
            };
            let kept = entries.iter().filter(|(_, _, l)| *l).count() as u64;
            let mtime = storage
                .stat(&path)
                .and_then(|m| m.ok_or_else(|| io::ErrorKind::NotFound.into()))
                .map(|m| m.modified)
                .ctx(|| format!("read modification time of {}", storage.describe(&path)))?;
            // A time in the future counts as brand new.
            let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
            if age < grace || kept == total {
                stats.chunks_kept += total;
                continue;
            }
            let mut counted_elsewhere = false;
            if kept > 0 {
                let file = storage
                    .open(&path)
                    .ctx(|| format!("open pack {}", storage.describe(&path)))?;
                let mut writer = PackWriter::create(storage)?;
                let mut record = Vec::new();
                let mut unreadable = false;
                for (d, e, _) in entries.iter().filter(|(_, _, l)| *l) {
                    record.resize(e.record_len(), 0);
                    file.read_exact_at(&mut record, e.offset)
                        .ctx(|| format!("read chunk {d} from {}", storage.describe(&path)))?;
                    if usize::from(e.head) != LEGACY_HEAD_LEN {
                        writer.add(*d, e.codec, &record, e.len as usize)?;
                        continue;
                    }
                    // A version 1 pack: each record becomes a current one with its payload.
                    match legacy_parts(&record, e.len as usize) {
                        Ok((codec, payload)) => {
                            writer.add_payload(*d, codec, payload, e.len as usize)?
                        }
                        Err(_) => {
                            unreadable = true;
                            break;
                        }
                    }
                }
                if unreadable {
                    // A damaged legacy header cannot be rewritten: the pack stays as it is
                    // (the temporary rewrite is dropped) and verification reports the chunk.
                    stats.chunks_kept += total;
                    continue;
                }
                let done = writer.finish(storage)?;
                new_packs.push(done.key.clone());
                let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
                // The rewrite may be a pack already present: the same rewrite, done by a
                // collection killed before it deleted this pack. Its chunks are counted as
                // that pack's, and this whole pack is freed.
                if map.present_at(&done.key).is_some() {
                    stats.bytes_removed += size;
                    counted_elsewhere = true;
                } else {
                    stats.bytes_removed += size.saturating_sub(done.size);
                }
                let n = map.add(done.key, done.size, done.entries);
                // The rewritten chunks now live in the new pack.
                for (d, _, _) in entries.iter().filter(|(_, _, l)| *l) {
                    if let Some(e) = map.packs[n as usize]
                        .entries
                        .iter()
                        .find(|(pd, _)| pd == d)
                        .map(|(_, e)| *e)
                    {
                        map.relocate(*d, crate::pack::Loc { pack: n, entry: e });
                    }
                }
            } else {
                stats.bytes_removed += size;
            }
            // New packs must be durable before the old one goes.
            if !new_packs.is_empty() {
                let keys: Vec<&str> = new_packs.iter().map(String::as_str).collect();
                storage
                    .sync(&keys)
                    .ctx(|| format!("fsync folder of {}", storage.describe(keys[0])))?;
                new_packs.clear();
            }
            self.forget_pack_file(pack);
            match storage.delete(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(RepoError::io(
                        format!("delete pack {}", storage.describe(&path)),
                        e,
                    ))
                }
            }
            self.map
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(pack);
            removed_packs.push(path);
            if !counted_elsewhere {
                stats.chunks_kept += kept;
            }
            stats.chunks_removed += total - kept;
        }
        if !removed_packs.is_empty() {
            let keys: Vec<&str> = removed_packs.iter().map(String::as_str).collect();
            storage
                .sync(&keys)
                .ctx(|| format!("fsync folders of {} removed packs", keys.len()))?;
        }
        Ok(stats)
    }

    /// Total size of all pack files in bytes.
    pub fn stored_bytes(&self) -> Result<u64, RepoError> {
        self.rescan()?;
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.packs.iter().filter(|p| p.present).map(|p| p.size).sum())
    }

    /// The bytes of all pack files and the chunk records they hold (what a metrics scrape
    /// reports; a chunk stored in two packs counts twice).
    pub fn stored_totals(&self) -> Result<(u64, u64), RepoError> {
        self.rescan()?;
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map
            .packs
            .iter()
            .filter(|p| p.present)
            .fold((0, 0), |(bytes, chunks), p| {
                (bytes + p.size, chunks + p.entries.len() as u64)
            }))
    }

    /// Where the repository's bytes go: pack records by codec, pack indexes, disk indexes,
    /// dictionaries (what the benchmark's repository size is made of).
    pub fn space_use(&self) -> Result<SpaceUse, RepoError> {
        self.rescan()?;
        let mut u = SpaceUse {
            disk_indexes: files_size(self.storage.as_ref(), "indexes/")?,
            dictionaries: files_size(self.storage.as_ref(), "dicts/")?,
            config: self
                .storage
                .stat(crate::repository::CONFIG_NAME)
                .ok()
                .flatten()
                .map_or(0, |m| m.len),
            ..SpaceUse::default()
        };
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        for pack in map.packs.iter().filter(|p| p.present) {
            let mut records = 0;
            for (_, e) in &pack.entries {
                let c = match e.codec {
                    CODEC_RAW => &mut u.raw,
                    CODEC_ZSTD => &mut u.zstd,
                    _ => &mut u.zstd_dict,
                };
                c.chunks += 1;
                c.chunk_bytes += u64::from(e.len);
                c.stored_bytes += e.record_len() as u64;
                records += e.record_len() as u64;
            }
            u.pack_indexes += pack.size.saturating_sub(records);
        }
        Ok(u)
    }
}

/// How far apart two records of one pack may lie and still be checked from one read, and
/// how long that read may grow.
const VERIFY_GAP: u64 = 64 << 10;
const VERIFY_RUN: u64 = 8 << 20;

/// What verification reports for chunk `d` that could not be read as `e` says.
fn problem_of(d: &ChunkDigest, e: RepoError) -> ChunkProblem {
    match e {
        RepoError::ChunkMissing { digest } => ChunkProblem::Missing(digest),
        RepoError::ChunkCorrupt { digest, at, reason } => {
            ChunkProblem::Corrupt { digest, at, reason }
        }
        RepoError::PackIndexCorrupt {
            digest,
            pack,
            reason,
            chunks,
        } => ChunkProblem::PackIndexCorrupt {
            digest,
            pack,
            reason,
            chunks,
        },
        other => ChunkProblem::Corrupt {
            digest: *d,
            at: None,
            reason: format!("cannot verify: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::encode_legacy;
    use crate::pack::legacy_pack_bytes;
    use crate::{DiskIndex, Durability, NoControl};
    use std::collections::HashMap;
    use std::fs::{self, File};

    /// A 64-chunk image of 16 KiB chunks: text, random and zero chunks.
    fn image() -> Vec<u8> {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
        let mut img = vec![0u8; 64 << 14];
        for (i, c) in img.chunks_mut(1 << 14).enumerate() {
            match i % 4 {
                0 => rand::Rng::fill(&mut rng, c),
                1 | 2 => {
                    let line = format!("chunk {i} says backup restore disk error job\n");
                    for (b, l) in c.iter_mut().zip(line.bytes().cycle()) {
                        *b = l;
                    }
                }
                _ => {}
            }
        }
        img
    }

    /// Restores `index` into a fresh file and returns its bytes.
    fn restore(repo: &Repository, index: &DiskIndex, dir: &std::path::Path) -> Vec<u8> {
        let path = dir.join("restored.img");
        let _ = fs::remove_file(&path);
        let target = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let plan = repo.plan_restore(index, None, &NoControl).unwrap();
        repo.apply_restore(index, &plan, &target, &NoControl)
            .unwrap();
        fs::read(&path).unwrap()
    }

    /// A repository as the previous format left it (version 1 pack, legacy records, written
    /// by the encoder kept for that purpose) restores byte-exact, verifies, and garbage
    /// collection rewrites its pack as version 2 without changing a restored byte.
    /// Bytes of every file under `dir`, however deep.
    fn tree_size(dir: &std::path::Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| match e.file_type().unwrap().is_dir() {
                true => tree_size(&e.path()),
                false => e.metadata().unwrap().len(),
            })
            .sum()
    }

    #[test]
    fn space_use_accounts_for_every_byte_of_the_folder_by_codec_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let repo = Repository::open(&root, Durability::NoSync).unwrap();
        let img = image();
        let path = dir.path().join("a.img");
        fs::write(&path, &img).unwrap();
        let size = img.len() as u64;
        let (index, _) = repo
            .backup_disk(&File::open(&path).unwrap(), size, None, None, &NoControl)
            .unwrap();
        repo.put_index("a", &index).unwrap();
        let u = repo.space_use().unwrap();
        // 16 random chunks raw (the codec byte and the chunk), 32 text chunks compressed,
        // 16 zero chunks not stored at all.
        let chunk = 16u64 << 10;
        assert_eq!(
            u.raw,
            CodecUse {
                chunks: 16,
                chunk_bytes: 16 * chunk,
                stored_bytes: 16 * (chunk + 1),
            }
        );
        assert_eq!(u.zstd.chunks + u.zstd_dict.chunks, 32);
        assert_eq!(u.zstd.chunk_bytes + u.zstd_dict.chunk_bytes, 32 * chunk);
        assert!(u.zstd.stored_bytes + u.zstd_dict.stored_bytes < 32 * chunk / 10);
        // A pack index entry is at least a digest.
        assert!(u.pack_indexes >= 48 * 32, "{u:?}");
        assert_eq!(
            u.disk_indexes,
            fs::metadata(root.join("indexes/a.idx")).unwrap().len()
        );
        assert_eq!(u.config, 16);
        assert_eq!(u.total(), tree_size(&root), "{u:?}");
    }

    #[test]
    fn a_version_1_repository_restores_verifies_and_is_rewritten_by_gc() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let repo = Repository::open(&root, Durability::NoSync).unwrap();
        let img = image();
        let mut index = DiskIndex {
            disk_size: img.len() as u64,
            chunk_size: 1 << 14,
            chunks: Vec::new(),
        };
        let mut records = Vec::new();
        let mut seen = HashMap::new();
        for c in img.chunks(1 << 14) {
            if c.iter().all(|&b| b == 0) {
                index.chunks.push(None);
                continue;
            }
            let d = ChunkDigest::of(c);
            index.chunks.push(Some(d));
            if seen.insert(d, ()).is_none() {
                let (codec, record) = encode_legacy(c);
                records.push((d, codec, record, c.len()));
            }
        }
        // One more chunk that no index refers to, so collection must rewrite the pack.
        let dead = b"no index refers to this chunk".repeat(100);
        let (codec, record) = encode_legacy(&dead);
        records.push((ChunkDigest::of(&dead), codec, record, dead.len()));
        assert!(records.iter().any(|r| r.1 == crate::chunk::CODEC_RAW));
        assert!(records.iter().any(|r| r.1 == crate::chunk::CODEC_ZSTD));
        let bytes = legacy_pack_bytes(&records);
        let name = blake3::hash(&bytes).to_hex();
        let pack_dir = root.join("packs").join(&name[..2]);
        fs::create_dir_all(&pack_dir).unwrap();
        let old_pack = pack_dir.join(format!("{name}.pack"));
        fs::write(&old_pack, &bytes).unwrap();
        repo.rescan().unwrap();

        assert_eq!(restore(&repo, &index, dir.path()), img);
        assert!(repo
            .verify_chunks(index.referenced(), &NoControl)
            .is_empty());
        let live: HashSet<ChunkDigest> = index.referenced().copied().collect();
        let stats = repo.gc(&live, Duration::ZERO).unwrap();
        assert_eq!(stats.chunks_removed, 1);
        assert!(!old_pack.exists());
        let map = repo.map.read().unwrap();
        let rewritten: Vec<_> = map.packs.iter().filter(|p| p.present).collect();
        assert_eq!(rewritten.len(), 1);
        let new_bytes = fs::read(root.join(&rewritten[0].key)).unwrap();
        assert_eq!(new_bytes[4], 2, "rewritten as pack version 2");
        assert!(new_bytes.len() < bytes.len() - 1000);
        drop(map);

        // A fresh handle reads the rewritten pack from disk.
        let reopened = Repository::open(&root, Durability::NoSync).unwrap();
        assert_eq!(restore(&reopened, &index, dir.path()), img);
        assert!(reopened
            .verify_chunks(index.referenced(), &NoControl)
            .is_empty());
    }
}
