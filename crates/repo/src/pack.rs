//! Pack files: many chunk records in one file, with an index of them at the end.
//!
//! `packs/<first 2 hex chars>/<64 hex>.pack`, named by BLAKE3 of the whole file.
//! Small chunks (16 KiB by default) keep incremental backups in proportion to the
//! change; packing them keeps the file count, the fsyncs of a backup and the opens
//! of a restore in proportion to the data instead of to the chunk count.
//!
//! On-disk format (all integers little-endian):
//!
//! | offset        | size    | field                                              |
//! |---------------|---------|----------------------------------------------------|
//! | 0             | 4       | magic `b"EMRP"`                                    |
//! | 4             | 1       | format version (1)                                 |
//! | 5             | 3       | reserved, zero                                     |
//! | 8             | ..      | chunk records (see the `chunk` module), back to back |
//! | index_offset  | 56 × n  | per chunk: digest (32), record offset (u64), payload length (u32), uncompressed length (u32), codec (u8), 7 reserved |
//! | end − 56      | 56      | footer: index_offset (u64), n (u64), BLAKE3 of the index entries (32), magic `b"EMRX"`, version (u8), 3 reserved |
//!
//! The footer and the entry hash let a pack's index be loaded with two reads and
//! trusted; every chunk is still checked against its digest when it is read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::chunk::{CHUNK_HEADER_LEN, CODEC_RAW, CODEC_ZSTD};
use crate::error::IoContext;
use crate::fsutil::TempFile;
use crate::{ChunkDigest, Durability, RepoError, MAX_CHUNK_SIZE};

/// Magic at the start of every pack.
const PACK_MAGIC: [u8; 4] = *b"EMRP";
/// Magic at the end of every pack.
const FOOTER_MAGIC: [u8; 4] = *b"EMRX";
/// The pack format version this build writes and reads.
const PACK_VERSION: u8 = 1;
/// Size of the pack header.
pub(crate) const PACK_HEADER_LEN: usize = 8;
/// Size of one index entry.
const ENTRY_LEN: usize = 56;
/// Size of the footer.
const FOOTER_LEN: usize = 56;
/// Extension of pack files.
pub(crate) const PACK_EXT: &str = ".pack";
/// A pack is closed once it holds this many bytes: large enough that a 4 GiB disk
/// needs ~100 packs, small enough that garbage collection rewrites little.
pub(crate) const PACK_TARGET: u64 = 64 << 20;
/// Records are written in batches of about this size.
const WRITE_BATCH: usize = 1 << 20;

/// The pack header exactly as laid out on disk.
#[repr(C)]
struct PackHeader {
    magic: [u8; 4],
    version: u8,
    reserved: [u8; 3],
}
const _: () = assert!(std::mem::size_of::<PackHeader>() == PACK_HEADER_LEN);

/// One index entry exactly as laid out on disk.
#[repr(C)]
struct EntryBytes {
    digest: [u8; 32],
    offset: [u8; 8],
    stored: [u8; 4],
    len: [u8; 4],
    codec: u8,
    reserved: [u8; 7],
}
const _: () = assert!(std::mem::size_of::<EntryBytes>() == ENTRY_LEN);

/// The footer exactly as laid out on disk.
#[repr(C)]
struct Footer {
    index_offset: [u8; 8],
    count: [u8; 8],
    index_hash: [u8; 32],
    magic: [u8; 4],
    version: u8,
    reserved: [u8; 3],
}
const _: () = assert!(std::mem::size_of::<Footer>() == FOOTER_LEN);

/// Where one chunk lies in one pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Offset of the record (its header) in the pack.
    pub offset: u64,
    /// Payload length (the record is `CHUNK_HEADER_LEN` more).
    pub stored: u32,
    /// Uncompressed length.
    pub len: u32,
    /// Codec of the payload.
    pub codec: u8,
}

impl Entry {
    /// Length of the whole record, header included.
    pub(crate) fn record_len(&self) -> usize {
        CHUNK_HEADER_LEN + self.stored as usize
    }
}

/// A pack being written: a temporary file, renamed to its content hash when finished.
pub(crate) struct PackWriter {
    tmp: TempFile,
    hasher: blake3::Hasher,
    pending: Vec<u8>,
    pos: u64,
    entries: Vec<(ChunkDigest, Entry)>,
}

/// A finished pack: its file and its index.
pub(crate) struct FinishedPack {
    pub path: PathBuf,
    pub size: u64,
    pub entries: Vec<(ChunkDigest, Entry)>,
}

impl PackWriter {
    /// Starts a pack under a temporary name in `packs_dir`.
    pub(crate) fn create(packs_dir: &Path) -> Result<PackWriter, RepoError> {
        let tmp = TempFile::create(packs_dir)
            .ctx(|| format!("create temporary pack in {}", packs_dir.display()))?;
        let mut w = PackWriter {
            tmp,
            hasher: blake3::Hasher::new(),
            pending: Vec::with_capacity(WRITE_BATCH + (MAX_CHUNK_SIZE as usize).min(1 << 20)),
            pos: 0,
            entries: Vec::new(),
        };
        let header = PackHeader {
            magic: PACK_MAGIC,
            version: PACK_VERSION,
            reserved: [0; 3],
        };
        let mut b = [0u8; PACK_HEADER_LEN];
        b[..4].copy_from_slice(&header.magic);
        b[4] = header.version;
        b[5..].copy_from_slice(&header.reserved);
        w.append(&b)?;
        Ok(w)
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.pos
    }

    /// Appends one encoded chunk record (header + payload) for `digest`.
    pub(crate) fn add(
        &mut self,
        digest: ChunkDigest,
        codec: u8,
        record: &[u8],
        len: usize,
    ) -> Result<(), RepoError> {
        let entry = Entry {
            offset: self.pos,
            // Records are at most MAX_CHUNK_SIZE + header, which fits in u32.
            stored: (record.len() - CHUNK_HEADER_LEN) as u32,
            len: len as u32,
            codec,
        };
        self.append(record)?;
        self.entries.push((digest, entry));
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), RepoError> {
        self.pending.extend_from_slice(bytes);
        self.pos += bytes.len() as u64;
        if self.pending.len() >= WRITE_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RepoError> {
        self.hasher.update(&self.pending);
        let path = self.tmp.path().to_path_buf();
        self.tmp
            .file()
            .write_all(&self.pending)
            .ctx(|| format!("write {}", path.display()))?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the index and footer, fsyncs (per `durability`) and renames the pack to
    /// `packs/<2 hex>/<hash>.pack`. The caller fsyncs the folder.
    pub(crate) fn finish(
        mut self,
        packs_dir: &Path,
        durability: Durability,
    ) -> Result<FinishedPack, RepoError> {
        let index_offset = self.pos;
        let mut index = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for (d, e) in &self.entries {
            let eb = EntryBytes {
                digest: d.0,
                offset: e.offset.to_le_bytes(),
                stored: e.stored.to_le_bytes(),
                len: e.len.to_le_bytes(),
                codec: e.codec,
                reserved: [0; 7],
            };
            index.extend_from_slice(&eb.digest);
            index.extend_from_slice(&eb.offset);
            index.extend_from_slice(&eb.stored);
            index.extend_from_slice(&eb.len);
            index.push(eb.codec);
            index.extend_from_slice(&eb.reserved);
        }
        let footer = Footer {
            index_offset: index_offset.to_le_bytes(),
            count: (self.entries.len() as u64).to_le_bytes(),
            index_hash: *blake3::hash(&index).as_bytes(),
            magic: FOOTER_MAGIC,
            version: PACK_VERSION,
            reserved: [0; 3],
        };
        self.append(&index)?;
        let mut fb = Vec::with_capacity(FOOTER_LEN);
        fb.extend_from_slice(&footer.index_offset);
        fb.extend_from_slice(&footer.count);
        fb.extend_from_slice(&footer.index_hash);
        fb.extend_from_slice(&footer.magic);
        fb.push(footer.version);
        fb.extend_from_slice(&footer.reserved);
        self.append(&fb)?;
        self.flush()?;
        let name = self.hasher.finalize().to_hex();
        let dir = packs_dir.join(&name[..2]);
        fs::create_dir_all(&dir).ctx(|| format!("create folder {}", dir.display()))?;
        let path = dir.join(format!("{name}{PACK_EXT}"));
        self.tmp.persist(&path, durability)?;
        Ok(FinishedPack {
            path,
            size: self.pos,
            entries: self.entries,
        })
    }
}

/// Reads a pack's index (footer, then entries); the error says what is wrong.
pub(crate) fn read_index(file: &File, size: u64) -> Result<Vec<(ChunkDigest, Entry)>, String> {
    if size < (PACK_HEADER_LEN + FOOTER_LEN) as u64 {
        return Err(format!("file is {size} bytes, too short for a pack"));
    }
    let mut f = [0u8; FOOTER_LEN];
    file.read_exact_at(&mut f, size - FOOTER_LEN as u64)
        .map_err(|e| format!("cannot read the footer: {e}"))?;
    let u64_at = |b: &[u8], at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if f[48..52] != FOOTER_MAGIC {
        return Err("bad footer magic (not a pack file)".to_string());
    }
    if f[52] != PACK_VERSION {
        return Err(format!(
            "unsupported pack format version {} (this build reads {PACK_VERSION})",
            f[52]
        ));
    }
    let index_offset = u64_at(&f, 0);
    let count = u64_at(&f, 8);
    let expected_end = count
        .checked_mul(ENTRY_LEN as u64)
        .and_then(|n| n.checked_add(index_offset))
        .and_then(|n| n.checked_add(FOOTER_LEN as u64));
    if expected_end != Some(size) || index_offset < PACK_HEADER_LEN as u64 {
        return Err(format!(
            "footer says {count} entries at offset {index_offset}, which does not fit a {size}-byte file"
        ));
    }
    let mut index = vec![0u8; count as usize * ENTRY_LEN];
    file.read_exact_at(&mut index, index_offset)
        .map_err(|e| format!("cannot read the index: {e}"))?;
    if blake3::hash(&index).as_bytes() != &f[16..48] {
        return Err("index checksum mismatch (the file is damaged)".to_string());
    }
    let mut out = Vec::with_capacity(count as usize);
    for (i, e) in index.chunks_exact(ENTRY_LEN).enumerate() {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&e[..32]);
        let entry = Entry {
            offset: u64_at(e, 32),
            stored: u32_at(e, 40),
            len: u32_at(e, 44),
            codec: e[48],
        };
        let end = entry.offset.checked_add(entry.record_len() as u64);
        if entry.offset < PACK_HEADER_LEN as u64
            || end.is_none_or(|end| end > index_offset)
            || entry.len > MAX_CHUNK_SIZE
            || !matches!(entry.codec, CODEC_RAW | CODEC_ZSTD)
        {
            return Err(format!("index entry {i} is out of bounds or invalid"));
        }
        out.push((ChunkDigest(digest), entry));
    }
    Ok(out)
}

/// One known pack.
#[derive(Debug)]
pub(crate) struct PackInfo {
    pub path: PathBuf,
    pub size: u64,
    /// The chunks the pack's index lists (a digest may also be in another pack).
    pub entries: Vec<(ChunkDigest, Entry)>,
    /// False once garbage collection removed the pack.
    pub present: bool,
}

/// Where a chunk lies: pack number (into [`ChunkMap::packs`]) and entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub pack: u32,
    pub entry: Entry,
}

/// Every chunk of every pack, in memory: digest → location.
#[derive(Debug, Default)]
pub(crate) struct ChunkMap {
    pub packs: Vec<PackInfo>,
    by_path: HashMap<PathBuf, u32>,
    pub locs: HashMap<ChunkDigest, Loc>,
    /// Pack files whose index could not be read, with the reason.
    pub damaged: Vec<(PathBuf, String)>,
}

impl ChunkMap {
    /// The number of the present pack at `path`, if there is one.
    pub(crate) fn present_at(&self, path: &Path) -> Option<u32> {
        self.by_path
            .get(path)
            .copied()
            .filter(|&n| self.packs[n as usize].present)
    }

    /// Adds a pack and its entries; a digest already located elsewhere keeps that location.
    ///
    /// A pack already present at `path` keeps its number: packs are named by their content
    /// hash, so it is the same file. That happens when garbage collection, killed after it
    /// renamed a rewritten pack into place but before it deleted the original, rewrites the
    /// original again. Two numbers for one file would let a collection delete the file as
    /// the number that locates none of its chunks.
    pub(crate) fn add(
        &mut self,
        path: PathBuf,
        size: u64,
        entries: Vec<(ChunkDigest, Entry)>,
    ) -> u32 {
        if let Some(n) = self.present_at(&path) {
            return n;
        }
        let n = self.packs.len() as u32;
        for (d, e) in &entries {
            self.locs.entry(*d).or_insert(Loc { pack: n, entry: *e });
        }
        self.by_path.insert(path.clone(), n);
        self.packs.push(PackInfo {
            path,
            size,
            entries,
            present: true,
        });
        n
    }

    /// Forgets a removed pack: its chunks are located in another pack if one holds them.
    pub(crate) fn remove(&mut self, pack: u32) {
        let Some(info) = self.packs.get_mut(pack as usize) else {
            return;
        };
        info.present = false;
        let mut orphans = std::collections::HashSet::new();
        for (d, _) in &info.entries {
            if self.locs.get(d).is_some_and(|l| l.pack == pack) {
                self.locs.remove(d);
                orphans.insert(*d);
            }
        }
        if orphans.is_empty() {
            return;
        }
        // Duplicates only exist after a crash during garbage collection: one pass finds them.
        for (k, p) in self.packs.iter().enumerate().filter(|(_, p)| p.present) {
            for (d, e) in &p.entries {
                if orphans.remove(d) {
                    self.locs.insert(
                        *d,
                        Loc {
                            pack: k as u32,
                            entry: *e,
                        },
                    );
                }
            }
        }
    }

    /// Loads every pack under `packs_dir` not yet known (all of them on a fresh map).
    pub(crate) fn scan(&mut self, packs_dir: &Path) -> Result<(), RepoError> {
        for sub in list_dir(packs_dir)? {
            let is_prefix_dir = sub
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 2)
                && sub.is_dir();
            if !is_prefix_dir {
                continue;
            }
            for path in list_dir(&sub)? {
                let is_pack = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(PACK_EXT))
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                if !is_pack || self.by_path.contains_key(&path) {
                    continue;
                }
                let opened = File::open(&path).and_then(|f| {
                    let size = f.metadata()?.len();
                    Ok((f, size))
                });
                let (file, size) = match opened {
                    Ok(x) => x,
                    // Removed since listing (garbage collection in another process).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(RepoError::io(format!("open pack {}", path.display()), e))
                    }
                };
                match read_index(&file, size) {
                    Ok(entries) => {
                        self.add(path, size, entries);
                    }
                    Err(reason) => {
                        if !self.damaged.iter().any(|(p, _)| *p == path) {
                            self.damaged.push((path, reason));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The entries of a folder, sorted; none if it does not exist.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, RepoError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RepoError::io(format!("list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        out.push(entry.ctx(|| format!("list {}", dir.display()))?.path());
    }
    out.sort();
    Ok(out)
}
