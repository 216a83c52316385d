//! Pack files: many chunk records in one file, with an index of them at the end.
//!
//! `packs/<first 2 hex chars>/<64 hex>.pack`, named by BLAKE3 of the whole file.
//! Small chunks (16 KiB by default) keep incremental backups in proportion to the
//! change; packing them keeps the file count, the fsyncs of a backup and the opens
//! of a restore in proportion to the data instead of to the chunk count.
//!
//! On-disk format, version 2 (all integers little-endian):
//!
//! | offset        | size    | field                                              |
//! |---------------|---------|----------------------------------------------------|
//! | 0             | 4       | magic `b"EMRP"`                                    |
//! | 4             | 1       | format version (2)                                 |
//! | 5             | 3       | reserved, zero                                     |
//! | 8             | ..      | chunk records (see the `chunk` module), back to back |
//! | index_offset  | ..      | per chunk, in record order: digest (32), codec (u8, bit 7 set when the chunk is `common_len` long), then as LEB128 varints the uncompressed length unless bit 7 is set, and the payload length unless the codec is raw (a raw payload is the chunk) |
//! | end − 64      | 64      | footer: index_offset (u64), n (u64), common_len (u32), 4 reserved, BLAKE3 of the index entries (32), magic `b"EMRX"`, version (u8), 3 reserved |
//!
//! A record's offset is where the one before it ends (the first is at 8) and its length
//! is one codec byte plus the payload, so an entry of a full-size raw chunk is 33 bytes
//! (version 1 spent 56, plus a 12-byte record header): on a disk of incompressible data in
//! 16 KiB chunks that is 0.2% of the repository instead of 0.4%.
//!
//! Version 1 packs are still read (garbage collection rewrites them as version 2): the
//! same header, records of the legacy format, fixed 56-byte entries — digest (32), record
//! offset (u64), payload length (u32), uncompressed length (u32), codec (u8), 7 reserved —
//! and a 56-byte footer: index_offset (u64), n (u64), BLAKE3 of the entries (32), magic
//! `b"EMRX"`, version (u8), 3 reserved. Both footers end in magic and version.
//!
//! The footer and the entry hash let a pack's index be loaded with two reads and
//! trusted; every chunk is still checked against its digest when it is read.

use std::collections::HashMap;
#[cfg(test)]
use std::fs;
#[cfg(test)]
use std::path::{Path, PathBuf};

use crate::chunk::{CODEC_RAW, CODEC_ZSTD, CODEC_ZSTD_DICT, LEGACY_HEAD_LEN, RECORD_HEAD_LEN};
use crate::digest::DigestState;
use crate::error::IoContext;
use crate::storage::{ObjectWriter, Storage, StoredObject};
use crate::{ChunkDigest, RepoError, MAX_CHUNK_SIZE};

/// Key prefix of pack objects: `packs/<2 hex>/<64 hex>.pack`.
pub(crate) const PACKS_PREFIX: &str = "packs/";
/// The packs' folder, for messages.
const PACKS_DIR: &str = "packs";

/// Magic at the start of every pack.
const PACK_MAGIC: [u8; 4] = *b"EMRP";
/// Magic at the end of every pack.
const FOOTER_MAGIC: [u8; 4] = *b"EMRX";
/// The pack format version this build writes.
const PACK_VERSION: u8 = 2;
/// The previous pack format version, still read.
const PACK_VERSION_1: u8 = 1;
/// Size of the pack header.
pub(crate) const PACK_HEADER_LEN: usize = 8;
/// Size of one version 1 index entry.
const ENTRY_LEN_1: usize = 56;
/// Size of the version 1 footer.
const FOOTER_LEN_1: usize = 56;
/// Size of the footer.
const FOOTER_LEN: usize = 64;
/// Fixed part of an index entry: digest and codec byte.
const ENTRY_FIXED: usize = 33;
/// Codec byte flag: the chunk is the pack's `common_len` long.
const COMMON_LEN_FLAG: u8 = 0x80;
/// Extension of pack files.
pub(crate) const PACK_EXT: &str = ".pack";
/// A pack is closed once it holds this many bytes: large enough that a 4 GiB disk
/// needs ~100 packs, small enough that garbage collection rewrites little.
pub(crate) const PACK_TARGET: u64 = 64 << 20;

/// How much of a pack's end [`read_index`] says it will read: the index of a full pack of
/// 16 KiB chunks (~4,000 entries) and its footer fit.
const INDEX_HINT: u64 = 256 << 10;
/// The largest index [`read_index`] hints at once its footer tells the size.
const INDEX_HINT_MAX: u64 = 16 << 20;
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

/// The version 1 index entry exactly as laid out on disk (written only by tests now).
#[cfg_attr(not(test), allow(dead_code))]
#[repr(C)]
struct EntryBytes1 {
    digest: [u8; 32],
    offset: [u8; 8],
    stored: [u8; 4],
    len: [u8; 4],
    codec: u8,
    reserved: [u8; 7],
}
const _: () = assert!(std::mem::size_of::<EntryBytes1>() == ENTRY_LEN_1);

/// The version 1 footer exactly as laid out on disk (written only by tests now).
#[cfg_attr(not(test), allow(dead_code))]
#[repr(C)]
struct Footer1 {
    index_offset: [u8; 8],
    count: [u8; 8],
    index_hash: [u8; 32],
    magic: [u8; 4],
    version: u8,
    reserved: [u8; 3],
}
const _: () = assert!(std::mem::size_of::<Footer1>() == FOOTER_LEN_1);

/// The footer exactly as laid out on disk.
#[repr(C)]
struct Footer {
    index_offset: [u8; 8],
    count: [u8; 8],
    common_len: [u8; 4],
    reserved: [u8; 4],
    index_hash: [u8; 32],
    magic: [u8; 4],
    version: u8,
    reserved2: [u8; 3],
}
const _: () = assert!(std::mem::size_of::<Footer>() == FOOTER_LEN);

impl Footer {
    fn to_bytes(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..8].copy_from_slice(&self.index_offset);
        b[8..16].copy_from_slice(&self.count);
        b[16..20].copy_from_slice(&self.common_len);
        b[20..24].copy_from_slice(&self.reserved);
        b[24..56].copy_from_slice(&self.index_hash);
        b[56..60].copy_from_slice(&self.magic);
        b[60] = self.version;
        b[61..64].copy_from_slice(&self.reserved2);
        b
    }
}

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint of at most 32 bits at `*at`, advancing it.
pub(crate) fn get_varint(b: &[u8], at: &mut usize) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        let bits = u32::from(byte & 0x7f);
        if shift == 28 && bits > 0x0f {
            return None;
        }
        v |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Where one chunk lies in one pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Offset of the record (its header) in the pack.
    pub offset: u64,
    /// Payload length (the record is `head` more).
    pub stored: u32,
    /// Uncompressed length.
    pub len: u32,
    /// Codec of the payload.
    pub codec: u8,
    /// Length of the record's header: [`RECORD_HEAD_LEN`], or [`LEGACY_HEAD_LEN`] in a
    /// version 1 pack.
    pub head: u8,
}

impl Entry {
    /// Length of the whole record, header included.
    pub(crate) fn record_len(&self) -> usize {
        usize::from(self.head) + self.stored as usize
    }
}

/// A pack being written through the storage, stored under its content hash when finished.
pub(crate) struct PackWriter {
    out: Box<dyn ObjectWriter>,
    /// How errors name the pack being written.
    describe: String,
    hasher: blake3::Hasher,
    pending: Vec<u8>,
    pos: u64,
    entries: Vec<(ChunkDigest, Entry)>,
}

/// A finished pack: its key and its index.
pub(crate) struct FinishedPack {
    pub key: String,
    pub size: u64,
    pub entries: Vec<(ChunkDigest, Entry)>,
}

impl PackWriter {
    /// Starts a pack in `storage` (under a temporary name in `packs/` for a folder).
    pub(crate) fn create(storage: &dyn Storage) -> Result<PackWriter, RepoError> {
        let describe = storage.describe(PACKS_DIR);
        let out = storage
            .writer(PACKS_PREFIX)
            .ctx(|| format!("create temporary pack in {describe}"))?;
        let mut w = PackWriter {
            out,
            describe,
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

    /// Appends one encoded chunk record (codec byte + payload, see the `chunk` module) of a
    /// `len`-byte chunk for `digest`.
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
            stored: record.len().saturating_sub(RECORD_HEAD_LEN) as u32,
            len: len as u32,
            codec,
            head: RECORD_HEAD_LEN as u8,
        };
        self.append(record)?;
        self.entries.push((digest, entry));
        Ok(())
    }

    /// Appends a record given as codec and payload (garbage collection copying a legacy
    /// record, whose payload is the same).
    pub(crate) fn add_payload(
        &mut self,
        digest: ChunkDigest,
        codec: u8,
        payload: &[u8],
        len: usize,
    ) -> Result<(), RepoError> {
        let entry = Entry {
            offset: self.pos,
            stored: payload.len() as u32,
            len: len as u32,
            codec,
            head: RECORD_HEAD_LEN as u8,
        };
        self.append(&[codec])?;
        self.append(payload)?;
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
        let describe = &self.describe;
        self.out
            .write_all(&self.pending)
            .ctx(|| format!("write a new pack in {describe}"))?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the index and footer and stores the pack as `packs/<2 hex>/<hash>.pack`
    /// (durably per the storage's durability); the caller [`Storage::sync`]s its key.
    pub(crate) fn finish(mut self, storage: &dyn Storage) -> Result<FinishedPack, RepoError> {
        let index_offset = self.pos;
        // The length most chunks have: the first one's (a disk's chunks but its last).
        let common_len = self.entries.first().map_or(0, |(_, e)| e.len);
        let mut index = Vec::with_capacity(self.entries.len() * (ENTRY_FIXED + 3));
        for (d, e) in &self.entries {
            index.extend_from_slice(&d.0);
            let common = e.len == common_len;
            index.push(e.codec | if common { COMMON_LEN_FLAG } else { 0 });
            if !common {
                put_varint(&mut index, e.len);
            }
            if e.codec != CODEC_RAW {
                put_varint(&mut index, e.stored);
            }
        }
        let footer = Footer {
            index_offset: index_offset.to_le_bytes(),
            count: (self.entries.len() as u64).to_le_bytes(),
            common_len: common_len.to_le_bytes(),
            reserved: [0; 4],
            index_hash: *blake3::hash(&index).as_bytes(),
            magic: FOOTER_MAGIC,
            version: PACK_VERSION,
            reserved2: [0; 3],
        };
        self.append(&index)?;
        let fb = footer.to_bytes();
        self.append(&fb)?;
        self.flush()?;
        let name = self.hasher.finalize().to_hex();
        let key = format!("{PACKS_PREFIX}{}/{name}{PACK_EXT}", &name[..2]);
        self.out
            .finish(&key)
            .ctx(|| format!("store pack {}", storage.describe(&key)))?;
        Ok(FinishedPack {
            key,
            size: self.pos,
            entries: self.entries,
        })
    }
}

/// Reads a pack's index (footer, then entries); the error says what is wrong.
pub(crate) fn read_index(
    file: &dyn StoredObject,
    size: u64,
) -> Result<Vec<(ChunkDigest, Entry)>, String> {
    if size < (PACK_HEADER_LEN + FOOTER_LEN_1) as u64 {
        return Err(format!("file is {size} bytes, too short for a pack"));
    }
    // The index sits at the end: a storage that pays by the request (S3) fetches it with
    // the footer in one read from this hint, and widens it below if the index is larger.
    file.will_need(size.saturating_sub(INDEX_HINT), INDEX_HINT.min(size));
    // Both footer versions end in magic, version and three reserved bytes.
    let mut tail = [0u8; 8];
    file.read_exact_at(&mut tail, size - 8)
        .map_err(|e| format!("cannot read the footer: {e}"))?;
    if tail[..4] != FOOTER_MAGIC {
        return Err("bad footer magic (not a pack file)".to_string());
    }
    match tail[4] {
        PACK_VERSION => read_index_2(file, size),
        PACK_VERSION_1 => read_index_1(file, size),
        other => Err(format!(
            "unsupported pack format version {other} (this build reads {PACK_VERSION_1} and {PACK_VERSION})"
        )),
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the index bytes of a pack whose index starts at `index_offset` and ends at
/// `index_end`, checking them against `hash`.
fn read_checked(
    file: &dyn StoredObject,
    index_offset: u64,
    index_end: u64,
    hash: &[u8],
) -> Result<Vec<u8>, String> {
    let mut index = vec![0u8; (index_end - index_offset) as usize];
    file.read_exact_at(&mut index, index_offset)
        .map_err(|e| format!("cannot read the index: {e}"))?;
    if blake3::hash(&index).as_bytes() != hash {
        return Err("index checksum mismatch (the file is damaged)".to_string());
    }
    Ok(index)
}

/// Reads a version 2 index.
fn read_index_2(file: &dyn StoredObject, size: u64) -> Result<Vec<(ChunkDigest, Entry)>, String> {
    if size < (PACK_HEADER_LEN + FOOTER_LEN) as u64 {
        return Err(format!("file is {size} bytes, too short for a pack"));
    }
    let mut f = [0u8; FOOTER_LEN];
    file.read_exact_at(&mut f, size - FOOTER_LEN as u64)
        .map_err(|e| format!("cannot read the footer: {e}"))?;
    let index_offset = u64_at(&f, 0);
    let count = u64_at(&f, 8);
    let common_len = u32_at(&f, 16);
    let index_end = size - FOOTER_LEN as u64;
    let fits = (PACK_HEADER_LEN as u64..=index_end).contains(&index_offset)
        && count
            .checked_mul(ENTRY_FIXED as u64)
            .is_some_and(|n| n <= index_end - index_offset);
    if !fits {
        return Err(format!(
            "footer says {count} entries at offset {index_offset}, which does not fit a {size}-byte file"
        ));
    }
    // Bounded: a damaged footer must not make a storage fetch (and keep) a whole pack.
    if index_offset < index_end && size - index_offset <= INDEX_HINT_MAX {
        file.will_need(index_offset, size - index_offset);
    }
    let index = read_checked(file, index_offset, index_end, &f[24..56])?;
    let mut out = Vec::with_capacity(count as usize);
    let mut at = 0;
    let mut offset = PACK_HEADER_LEN as u64;
    for i in 0..count {
        let bad = || format!("index entry {i} is out of bounds or invalid");
        let Some(fixed) = index.get(at..at + ENTRY_FIXED) else {
            return Err(bad());
        };
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&fixed[..32]);
        let flags = fixed[32];
        at += ENTRY_FIXED;
        let codec = flags & !COMMON_LEN_FLAG;
        let len = if flags & COMMON_LEN_FLAG != 0 {
            common_len
        } else {
            get_varint(&index, &mut at).ok_or_else(bad)?
        };
        let stored = match codec {
            CODEC_RAW => len,
            CODEC_ZSTD | CODEC_ZSTD_DICT => get_varint(&index, &mut at).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        let entry = Entry {
            offset,
            stored,
            len,
            codec,
            head: RECORD_HEAD_LEN as u8,
        };
        offset += entry.record_len() as u64;
        if len == 0 || len > MAX_CHUNK_SIZE || offset > index_offset {
            return Err(bad());
        }
        out.push((ChunkDigest(digest), entry));
    }
    if at != index.len() || offset != index_offset {
        return Err(format!(
            "the index's {count} entries do not cover the records exactly (the file is damaged)"
        ));
    }
    Ok(out)
}

/// Reads a version 1 index.
fn read_index_1(file: &dyn StoredObject, size: u64) -> Result<Vec<(ChunkDigest, Entry)>, String> {
    let mut f = [0u8; FOOTER_LEN_1];
    file.read_exact_at(&mut f, size - FOOTER_LEN_1 as u64)
        .map_err(|e| format!("cannot read the footer: {e}"))?;
    let index_offset = u64_at(&f, 0);
    let count = u64_at(&f, 8);
    let expected_end = count
        .checked_mul(ENTRY_LEN_1 as u64)
        .and_then(|n| n.checked_add(index_offset))
        .and_then(|n| n.checked_add(FOOTER_LEN_1 as u64));
    if expected_end != Some(size) || index_offset < PACK_HEADER_LEN as u64 {
        return Err(format!(
            "footer says {count} entries at offset {index_offset}, which does not fit a {size}-byte file"
        ));
    }
    let index = read_checked(file, index_offset, size - FOOTER_LEN_1 as u64, &f[16..48])?;
    let mut out = Vec::with_capacity(count as usize);
    for (i, e) in index.chunks_exact(ENTRY_LEN_1).enumerate() {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&e[..32]);
        let entry = Entry {
            offset: u64_at(e, 32),
            stored: u32_at(e, 40),
            len: u32_at(e, 44),
            codec: e[48],
            head: LEGACY_HEAD_LEN as u8,
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

/// The bytes of a version 1 pack holding `records` (digest, codec, legacy record, chunk
/// length), as the previous format wrote it: for tests that old repositories still read.
#[cfg(test)]
pub(crate) fn legacy_pack_bytes(records: &[(ChunkDigest, u8, Vec<u8>, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&PACK_MAGIC);
    out.extend_from_slice(&[PACK_VERSION_1, 0, 0, 0]);
    let mut index = Vec::new();
    for (d, codec, record, len) in records {
        let eb = EntryBytes1 {
            digest: d.0,
            offset: (out.len() as u64).to_le_bytes(),
            stored: ((record.len() - LEGACY_HEAD_LEN) as u32).to_le_bytes(),
            len: (*len as u32).to_le_bytes(),
            codec: *codec,
            reserved: [0; 7],
        };
        index.extend_from_slice(&eb.digest);
        index.extend_from_slice(&eb.offset);
        index.extend_from_slice(&eb.stored);
        index.extend_from_slice(&eb.len);
        index.push(eb.codec);
        index.extend_from_slice(&eb.reserved);
        out.extend_from_slice(record);
    }
    let footer = Footer1 {
        index_offset: (out.len() as u64).to_le_bytes(),
        count: (records.len() as u64).to_le_bytes(),
        index_hash: *blake3::hash(&index).as_bytes(),
        magic: FOOTER_MAGIC,
        version: PACK_VERSION_1,
        reserved: [0; 3],
    };
    out.extend_from_slice(&index);
    out.extend_from_slice(&footer.index_offset);
    out.extend_from_slice(&footer.count);
    out.extend_from_slice(&footer.index_hash);
    out.extend_from_slice(&footer.magic);
    out.push(footer.version);
    out.extend_from_slice(&footer.reserved);
    out
}

/// A pack file whose own index cannot be read (or fails its checksum).
#[derive(Debug)]
pub(crate) struct DamagedPack {
    /// Its key in the storage.
    pub key: String,
    /// What is wrong with its index.
    pub reason: String,
    /// The chunk count its footer gives, when the footer is plausible.
    pub count: Option<u64>,
    /// Every 32-byte window of its index bytes (when the footer says where they are): the
    /// digests the damaged index still lists, to tell a chunk in this pack from one in none.
    listed: std::collections::HashSet<ChunkDigest, DigestState>,
}

impl DamagedPack {
    /// True when the pack's damaged index still names `d`.
    pub(crate) fn lists(&self, d: &ChunkDigest) -> bool {
        self.listed.contains(d)
    }
}

/// Largest index region read to salvage the digests of a damaged pack.
const SALVAGE_MAX: u64 = 64 << 20;

/// What can still be learnt from a pack whose index does not read: the entry count of a
/// plausible footer and the digests its index bytes hold (every 32-byte window, so entries
/// whose lengths are damaged still count). Only run for damaged packs.
fn salvage(
    file: &dyn StoredObject,
    size: u64,
) -> (
    Option<u64>,
    std::collections::HashSet<ChunkDigest, DigestState>,
) {
    let mut listed = std::collections::HashSet::default();
    let mut tail = [0u8; 8];
    if size < (PACK_HEADER_LEN + FOOTER_LEN_1) as u64
        || file.read_exact_at(&mut tail, size - 8).is_err()
        || tail[..4] != FOOTER_MAGIC
    {
        return (None, listed);
    }
    let footer_len = match tail[4] {
        PACK_VERSION if size >= (PACK_HEADER_LEN + FOOTER_LEN) as u64 => FOOTER_LEN as u64,
        PACK_VERSION_1 => FOOTER_LEN_1 as u64,
        _ => return (None, listed),
    };
    let mut head = [0u8; 16];
    if file.read_exact_at(&mut head, size - footer_len).is_err() {
        return (None, listed);
    }
    let (index_offset, count) = (u64_at(&head, 0), u64_at(&head, 8));
    let index_end = size - footer_len;
    if !(PACK_HEADER_LEN as u64..=index_end).contains(&index_offset)
        || index_end - index_offset > SALVAGE_MAX
    {
        return (None, listed);
    }
    let mut index = vec![0u8; (index_end - index_offset) as usize];
    if file.read_exact_at(&mut index, index_offset).is_err() {
        return (None, listed);
    }
    for w in index.windows(32) {
        let mut d = [0u8; 32];
        d.copy_from_slice(w);
        listed.insert(ChunkDigest(d));
    }
    let plausible = count
        .checked_mul(ENTRY_FIXED as u64)
        .is_some_and(|n| n <= index_end - index_offset);
    (plausible.then_some(count), listed)
}

/// One known pack.
#[derive(Debug)]
pub(crate) struct PackInfo {
    /// Its key in the storage.
    pub key: String,
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

impl Loc {
    /// Where the chunk's record ends in its pack.
    pub(crate) fn end(&self) -> u64 {
        self.entry.offset + self.entry.record_len() as u64
    }
}

/// Records of neighbouring items read with one read: `items` of the caller's list, and the
/// bytes `start..end` of their pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadRun {
    pub items: std::ops::Range<usize>,
    pub pack: u32,
    pub start: u64,
    pub end: u64,
}

/// Groups `items` (sorted by pack and offset; `loc` tells each one's place) into reads: the
/// records of one pack at most `gap` bytes apart (the same record twice joins too), one read
/// at most `max` bytes long. What a restore and a verification read together, one rule.
pub(crate) fn read_runs<T>(
    items: &[T],
    loc: impl Fn(&T) -> &Loc,
    gap: u64,
    max: u64,
) -> Vec<ReadRun> {
    let mut runs: Vec<ReadRun> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let l = loc(item);
        match runs.last_mut() {
            Some(r)
                if r.pack == l.pack
                    && l.entry.offset <= r.end + gap
                    && l.end().max(r.end) - r.start <= max =>
            {
                r.items.end = i + 1;
                r.end = r.end.max(l.end());
            }
            _ => runs.push(ReadRun {
                items: i..i + 1,
                pack: l.pack,
                start: l.entry.offset,
                end: l.end(),
            }),
        }
    }
    runs
}

/// Every chunk of every pack, in memory: digest → location.
#[derive(Debug, Default)]
pub(crate) struct ChunkMap {
    pub packs: Vec<PackInfo>,
    by_key: HashMap<String, u32>,
    pub locs: HashMap<ChunkDigest, Loc, DigestState>,
    /// Pack files whose index could not be read.
    pub damaged: Vec<DamagedPack>,
    /// Counts the changes that removed or moved a chunk's location ([`ChunkMap::remove`],
    /// [`ChunkMap::relocate`]); adding packs leaves it. What was found at one epoch still
    /// holds (in memory) at the same epoch.
    pub epoch: u64,
}

impl ChunkMap {
    /// The number of the present pack stored as `key`, if there is one.
    pub(crate) fn present_at(&self, key: &str) -> Option<u32> {
        self.by_key
            .get(key)
            .copied()
            .filter(|&n| self.packs[n as usize].present)
    }

    /// Adds a pack and its entries; a digest already located elsewhere keeps that location.
    ///
    /// A pack already present as `key` keeps its number: packs are named by their content
    /// hash, so it is the same file. That happens when garbage collection, killed after it
    /// renamed a rewritten pack into place but before it deleted the original, rewrites the
    /// original again. Two numbers for one file would let a collection delete the file as
    /// the number that locates none of its chunks.
    pub(crate) fn add(
        &mut self,
        key: String,
        size: u64,
        entries: Vec<(ChunkDigest, Entry)>,
    ) -> u32 {
        if let Some(n) = self.present_at(&key) {
            return n;
        }
        let n = self.packs.len() as u32;
        for (d, e) in &entries {
            self.locs.entry(*d).or_insert(Loc { pack: n, entry: *e });
        }
        self.by_key.insert(key.clone(), n);
        self.packs.push(PackInfo {
            key,
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
        self.epoch += 1;
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

    /// Locates chunk `d` at `loc` from now on (moved by garbage collection).
    pub(crate) fn relocate(&mut self, d: ChunkDigest, loc: Loc) {
        self.epoch += 1;
        self.locs.insert(d, loc);
    }

    /// Loads every pack in `storage` not yet known (all of them on a fresh map).
    pub(crate) fn scan(&mut self, storage: &dyn Storage) -> Result<(), RepoError> {
        let keys = storage
            .list(PACKS_PREFIX)
            .ctx(|| format!("list {}", storage.describe(PACKS_DIR)))?;
        for key in keys {
            if !is_pack_key(&key) || self.by_key.contains_key(&key) {
                continue;
            }
            let file = match storage.open(&key) {
                Ok(f) => f,
                // Removed since listing (garbage collection in another process).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(RepoError::io(
                        format!("open pack {}", storage.describe(&key)),
                        e,
                    ))
                }
            };
            let size = file.len();
            match read_index(file.as_ref(), size) {
                Ok(entries) => {
                    // Put back in one piece since it was found damaged.
                    self.damaged.retain(|p| p.key != key);
                    self.add(key, size, entries);
                }
                // Packs are immutable: what was salvaged from it still holds.
                Err(_) if self.damaged.iter().any(|p| p.key == key) => {}
                Err(reason) => {
                    let (count, listed) = salvage(file.as_ref(), size);
                    self.damaged.push(DamagedPack {
                        key,
                        reason,
                        count,
                        listed,
                    });
                }
            }
        }
        Ok(())
    }
}

/// True for `packs/<2 chars>/<64 hex>.pack`.
fn is_pack_key(key: &str) -> bool {
    let mut parts = key.split('/');
    let (Some("packs"), Some(sub), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    sub.len() == 2
        && name
            .strip_suffix(PACK_EXT)
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The entries of a folder, sorted; none if it does not exist.
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FolderStorage;
    use crate::Durability;

    #[test]
    fn read_runs_join_neighbours_of_one_pack_within_the_gap_and_the_length() {
        let loc = |pack, offset, stored| Loc {
            pack,
            entry: Entry {
                offset,
                stored,
                len: stored,
                codec: 0,
                head: 4,
            },
        };
        let items = [
            loc(0, 0, 96),    // 0..100
            loc(0, 100, 96),  // adjacent
            loc(0, 100, 96),  // the same record again (a deduplicated chunk)
            loc(0, 250, 96),  // 50 bytes after: within a gap of 64
            loc(0, 500, 96),  // 154 bytes after: a new read
            loc(0, 600, 396), // adjacent, but 600..1000 makes the read 500 > 450 bytes
            loc(1, 1000, 96), // another pack
        ];
        let runs = read_runs(&items, |l| l, 64, 450);
        let got: Vec<_> = runs
            .iter()
            .map(|r| (r.items.clone(), r.pack, r.start, r.end))
            .collect();
        assert_eq!(
            got,
            vec![
                (0..4, 0, 0, 350),
                (4..5, 0, 500, 600),
                (5..6, 0, 600, 1000),
                (6..7, 1, 1000, 1100),
            ]
        );
    }

    /// A version 2 pack: full-size raw chunks, a compressed one, a dictionary one and a short
    /// last chunk; its index reads back exactly as written, entries of the common size cost
    /// 33 bytes, and any damage to the index or its footer's fields is refused.
    #[test]
    fn version_2_index_round_trips_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FolderStorage::new(dir.path(), Durability::NoSync);
        let mut w = PackWriter::create(&storage).unwrap();
        let raw = |b: u8, n: usize| {
            let mut r = vec![CODEC_RAW];
            r.extend(std::iter::repeat_n(b, n));
            r
        };
        let chunks: Vec<(u8, Vec<u8>, usize)> = vec![
            (CODEC_RAW, raw(1, 16384), 16384),
            (CODEC_RAW, raw(2, 16384), 16384),
            (CODEC_ZSTD, vec![CODEC_ZSTD, 9, 9, 9], 16384),
            (CODEC_ZSTD_DICT, vec![CODEC_ZSTD_DICT; 300], 16384),
            (CODEC_RAW, raw(3, 100), 100),
        ];
        for (k, (codec, record, len)) in chunks.iter().enumerate() {
            w.add(ChunkDigest::of(&[k as u8]), *codec, record, *len)
                .unwrap();
        }
        let done = w.finish(&storage).unwrap();
        let bytes = fs::read(dir.path().join(&done.key)).unwrap();
        let records: usize = chunks.iter().map(|c| c.1.len()).sum();
        // 3 common-size entries without varints except the zstd ones' payload lengths (1 and
        // 2 bytes), and the short raw one with its length (1 byte).
        let index_len = 5 * ENTRY_FIXED + 1 + 2 + 1;
        assert_eq!(
            bytes.len(),
            PACK_HEADER_LEN + records + index_len + FOOTER_LEN
        );
        let read = |b: &[u8]| {
            let p = dir.path().join("probe");
            fs::write(&p, b).unwrap();
            read_index(storage.open("probe").unwrap().as_ref(), b.len() as u64)
        };
        assert_eq!(read(&bytes), Ok(done.entries.clone()));
        let mut at = PACK_HEADER_LEN as u64;
        for ((_, e), (codec, record, len)) in done.entries.iter().zip(&chunks) {
            assert_eq!(
                (e.offset, e.record_len(), e.len as usize, e.codec),
                (at, record.len(), *len, *codec)
            );
            at += record.len() as u64;
        }
        let index_start = PACK_HEADER_LEN + records;
        let checked = (index_start..bytes.len() - FOOTER_LEN + 20)
            .chain(bytes.len() - FOOTER_LEN + 24..bytes.len() - 3);
        for pos in checked {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x04;
            assert!(read(&bad).is_err(), "flip at {pos} not detected");
        }
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [0u32, 1, 127, 128, 16383, 16384, 1 << 21, u32::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut at = 0;
            assert_eq!(get_varint(&b, &mut at), Some(v));
            assert_eq!(at, b.len());
        }
        assert_eq!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut 0), None);
        assert_eq!(get_varint(&[0x80, 0x80], &mut 0), None);
    }
}
