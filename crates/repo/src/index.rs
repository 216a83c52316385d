//! Disk indexes: `indexes/<name>.idx`, one per disk per restore point.
//!
//! On-disk format 2, written since the index of a 1%-changed incremental counted for 0.2× of
//! its changed bytes (all integers little-endian):
//!
//! | offset | size          | field                                                  |
//! |--------|---------------|--------------------------------------------------------|
//! | 0      | 4             | magic `b"EMRI"`                                        |
//! | 4      | 1             | format version (2)                                     |
//! | 5      | 3             | reserved, zero                                         |
//! | 8      | 8             | disk size in bytes (u64)                               |
//! | 16     | 4             | chunk size in bytes (u32)                              |
//! | 20     | 8             | chunk count (u64) = ceil(disk size / chunk size)       |
//! | 28     | ceil(n / 8)   | data map: bit i (LSB first) set = chunk i holds data, clear = all-zero hole; unused bits zero |
//! | ..     | 32 × data     | the digest of every data chunk, in chunk order         |
//! | ..     | 32            | BLAKE3 of every byte before it                         |
//!
//! Format 1 (still read) had, instead of the map and digests, 33 bytes per chunk: a flag
//! (0 = hole, 1 = data) and a 32-byte digest, zero for holes.
//!
//! Format 3 is an incremental point's index stored as its changes against the index of the
//! point before it (its parent), when that is less than half the size of format 2: a 1%
//! change to a 4 GiB disk costs ~0.4 MB instead of ~6.3 MB. After the same 28-byte header
//! (version 3): the parent's name (u8 length, then the name), the chain depth (u8: 1 when the
//! parent is whole), the BLAKE3 of the whole index's format 2 encoding (checked after the
//! changes are applied, so a delta read against the wrong parent is refused, never used),
//! the number of changed chunks (LEB128), then per changed chunk in
//! ascending order: the distance from the previous changed chunk (LEB128; the first from
//! chunk 0), a flag (0 = hole, 1 = data) and for data the 32-byte digest; then the trailer.
//! A parent is never deleted while a delta names it: [`crate::Repository::delete_index`]
//! stores its children whole first.
//!
//! The trailing hash makes any damage to an index show up as
//! [`RepoError::IndexCorrupt`] on load instead of as a wrong restore.

use crate::pack::{get_varint, put_varint};
use crate::{ChunkDigest, RepoError, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

/// Magic at the start of every index file.
const INDEX_MAGIC: [u8; 4] = *b"EMRI";
/// The index format version this build writes.
const INDEX_VERSION: u8 = 2;
/// The first format, still read: a flag and a digest slot for every chunk, holes included.
const INDEX_VERSION_1: u8 = 1;
/// An index stored as its changes against its parent's.
const INDEX_VERSION_DELTA: u8 = 3;
/// Longest chain of deltas: a deeper one is stored whole, so loading an index reads at most
/// this many deltas and one whole index.
pub(crate) const MAX_DELTA_DEPTH: u8 = 16;
/// Format 1's per-chunk flag: the chunk is all zeros and has no chunk file.
const FLAG_HOLE: u8 = 0;
/// Format 1's per-chunk flag: the chunk is stored under the digest that follows.
const FLAG_DATA: u8 = 1;

/// The index header exactly as laid out on disk.
#[repr(C)]
struct IndexHeader {
    magic: [u8; 4],
    version: u8,
    reserved: [u8; 3],
    disk_size: [u8; 8],
    chunk_size: [u8; 4],
    chunk_count: [u8; 8],
}

/// Size of [`IndexHeader`] on disk.
const INDEX_HEADER_LEN: usize = 28;
const _: () = assert!(std::mem::size_of::<IndexHeader>() == INDEX_HEADER_LEN);
/// Size of one per-chunk entry of format 1.
const ENTRY_LEN_1: usize = 33;
/// Size of one digest.
const DIGEST_LEN: usize = 32;
/// Size of the trailing BLAKE3 hash.
const TRAILER_LEN: usize = 32;
/// Longest accepted index name.
const MAX_NAME_LEN: usize = 128;

/// The chunk list of one disk image: which digest holds each chunk-sized range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskIndex {
    /// Size of the disk image in bytes.
    pub disk_size: u64,
    /// Size of every chunk but possibly the last, which may be short.
    pub chunk_size: u32,
    /// One entry per chunk; `None` is an all-zero chunk (a hole, never stored).
    pub chunks: Vec<Option<ChunkDigest>>,
}

impl DiskIndex {
    /// Number of chunks a disk of `disk_size` bytes has at `chunk_size`.
    pub fn chunk_count(disk_size: u64, chunk_size: u32) -> usize {
        if chunk_size == 0 {
            return 0;
        }
        disk_size.div_ceil(u64::from(chunk_size)) as usize
    }

    /// Byte offset and length of chunk `i` (length 0 when `i` is past the end).
    pub fn chunk_range(&self, i: usize) -> (u64, usize) {
        let offset = (i as u64).saturating_mul(u64::from(self.chunk_size));
        let len = self
            .disk_size
            .saturating_sub(offset)
            .min(u64::from(self.chunk_size));
        (offset, len as usize)
    }

    /// Every data chunk digest the index refers to (with repeats, holes skipped).
    pub fn referenced(&self) -> impl Iterator<Item = &ChunkDigest> {
        self.chunks.iter().flatten()
    }

    /// Why this index is not self-consistent, if it is not.
    pub(crate) fn inconsistency(&self) -> Option<String> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Some(format!(
                "chunk size {} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}",
                self.chunk_size
            ));
        }
        let expected = DiskIndex::chunk_count(self.disk_size, self.chunk_size);
        if self.chunks.len() != expected {
            return Some(format!(
                "{} chunk entries for a {}-byte disk at chunk size {} (expected {expected})",
                self.chunks.len(),
                self.disk_size,
                self.chunk_size
            ));
        }
        None
    }

    /// Appends the 28-byte header of format `version` for this index.
    fn put_header(&self, out: &mut Vec<u8>, version: u8) {
        let header = IndexHeader {
            magic: INDEX_MAGIC,
            version,
            reserved: [0; 3],
            disk_size: self.disk_size.to_le_bytes(),
            chunk_size: self.chunk_size.to_le_bytes(),
            chunk_count: (self.chunks.len() as u64).to_le_bytes(),
        };
        out.extend_from_slice(&header.magic);
        out.push(header.version);
        out.extend_from_slice(&header.reserved);
        out.extend_from_slice(&header.disk_size);
        out.extend_from_slice(&header.chunk_size);
        out.extend_from_slice(&header.chunk_count);
    }

    /// This index in format 3, as its changes against `parent` (named `parent_name`, itself at
    /// chain depth `depth - 1`), when that is less than half its whole encoding.
    pub(crate) fn encode_delta(
        &self,
        parent_name: &str,
        parent: &DiskIndex,
        depth: u8,
    ) -> Option<Vec<u8>> {
        if depth > MAX_DELTA_DEPTH
            || parent.disk_size != self.disk_size
            || parent.chunk_size != self.chunk_size
            || parent.chunks.len() != self.chunks.len()
            || parent_name.len() > MAX_NAME_LEN
        {
            return None;
        }
        let whole = self.whole_len();
        let changed: Vec<usize> = (0..self.chunks.len())
            .filter(|&i| self.chunks[i] != parent.chunks[i])
            .collect();
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + 64 + changed.len() * 38);
        self.put_header(&mut out, INDEX_VERSION_DELTA);
        out.push(parent_name.len() as u8);
        out.extend_from_slice(parent_name.as_bytes());
        out.push(depth);
        out.extend_from_slice(blake3::hash(&self.encode()).as_bytes());
        put_varint(&mut out, u32::try_from(changed.len()).ok()?);
        let mut prev = 0;
        for i in changed {
            put_varint(&mut out, u32::try_from(i - prev).ok()?);
            prev = i;
            match &self.chunks[i] {
                Some(d) => {
                    out.push(FLAG_DATA);
                    out.extend_from_slice(&d.0);
                }
                None => out.push(FLAG_HOLE),
            }
            if out.len() * 2 >= whole {
                return None;
            }
        }
        let trailer = blake3::hash(&out);
        out.extend_from_slice(trailer.as_bytes());
        Some(out)
    }

    /// Bytes of this index stored whole (format 2).
    fn whole_len(&self) -> usize {
        INDEX_HEADER_LEN
            + self.chunks.len().div_ceil(8)
            + self.chunks.iter().flatten().count() * DIGEST_LEN
            + TRAILER_LEN
    }

    /// The index in its on-disk format (format 2).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.whole_len());
        self.put_header(&mut out, INDEX_VERSION);
        for group in self.chunks.chunks(8) {
            let byte = group
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_some())
                .fold(0u8, |b, (bit, _)| b | 1 << bit);
            out.push(byte);
        }
        for d in self.chunks.iter().flatten() {
            out.extend_from_slice(&d.0);
        }
        let trailer = blake3::hash(&out);
        out.extend_from_slice(trailer.as_bytes());
        out
    }

    /// Parses a whole index file (formats 1 and 2); the error string says what is wrong.
    #[cfg(test)]
    pub(crate) fn decode(bytes: &[u8]) -> Result<DiskIndex, String> {
        match StoredIndex::decode(bytes)? {
            StoredIndex::Whole(index) => Ok(index),
            StoredIndex::Delta(d) => Err(format!("a delta against index {}", d.parent)),
        }
    }
}

/// An index file as stored: whole, or the changes against its parent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoredIndex {
    Whole(DiskIndex),
    Delta(IndexDelta),
}

/// A format 3 index: what differs from the parent's chunks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IndexDelta {
    pub(crate) parent: String,
    /// Deltas in the chain down to a whole index, this one included.
    pub(crate) depth: u8,
    /// BLAKE3 of the whole index's format 2 encoding.
    whole: [u8; 32],
    disk_size: u64,
    chunk_size: u32,
    count: u64,
    changes: Vec<(usize, Option<ChunkDigest>)>,
}

impl IndexDelta {
    /// `parent` (the index named [`IndexDelta::parent`]) with the changes applied. Only the
    /// index asked for needs [`IndexDelta::check_whole`]: the deltas below it in a chain are
    /// covered by its hash.
    pub(crate) fn apply(&self, mut parent: DiskIndex) -> Result<DiskIndex, String> {
        if parent.disk_size != self.disk_size
            || parent.chunk_size != self.chunk_size
            || parent.chunks.len() as u64 != self.count
        {
            return Err(format!(
                "its parent {} describes another disk ({} bytes in {} chunks of {}, this one {} bytes in {} of {})",
                self.parent,
                parent.disk_size,
                parent.chunks.len(),
                parent.chunk_size,
                self.disk_size,
                self.count,
                self.chunk_size
            ));
        }
        for &(i, c) in &self.changes {
            parent.chunks[i] = c;
        }
        Ok(parent)
    }

    /// Whether `index` is the very index this delta was written for.
    pub(crate) fn check_whole(&self, index: &DiskIndex) -> Result<(), String> {
        if let Some(reason) = index.inconsistency() {
            return Err(reason);
        }
        if blake3::hash(&index.encode()).as_bytes() != &self.whole {
            return Err(format!(
                "its changes applied to its parent {} do not give the index it was written for",
                self.parent
            ));
        }
        Ok(())
    }
}

impl StoredIndex {
    /// Parses an index file of any format; the error string says what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<StoredIndex, String> {
        if bytes.len() < INDEX_HEADER_LEN + TRAILER_LEN {
            return Err(format!(
                "file is {} bytes, too short for an index",
                bytes.len()
            ));
        }
        let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
        if blake3::hash(body).as_bytes() != trailer {
            return Err("checksum mismatch (the file is damaged)".to_string());
        }
        let le_u64 = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        };
        if body[0..4] != INDEX_MAGIC {
            return Err("bad magic (not an index file)".to_string());
        }
        let disk_size = le_u64(&body[8..16]);
        let chunk_size = u32::from_le_bytes([body[16], body[17], body[18], body[19]]);
        let count = le_u64(&body[20..28]);
        let entries = &body[INDEX_HEADER_LEN..];
        let chunks = match body[4] {
            INDEX_VERSION => decode_map_and_digests(count, entries)?,
            INDEX_VERSION_1 => decode_version_1(count, entries)?,
            INDEX_VERSION_DELTA => {
                let (parent, depth, whole, changes) = decode_delta(count, entries)?;
                return Ok(StoredIndex::Delta(IndexDelta {
                    parent,
                    depth,
                    whole,
                    disk_size,
                    chunk_size,
                    count,
                    changes,
                }));
            }
            v => {
                return Err(format!(
                    "unsupported index format version {v} (this build reads 1 to {INDEX_VERSION_DELTA})"
                ))
            }
        };
        let index = DiskIndex {
            disk_size,
            chunk_size,
            chunks,
        };
        match index.inconsistency() {
            Some(reason) => Err(reason),
            None => Ok(StoredIndex::Whole(index)),
        }
    }
}

/// A changed chunk of a format 3 index: its position and what it holds.
type Change = (usize, Option<ChunkDigest>);

/// Format 3's entries: parent name, depth, then the changed chunks.
fn decode_delta(count: u64, entries: &[u8]) -> Result<(String, u8, [u8; 32], Vec<Change>), String> {
    let truncated = || "the delta is cut short".to_string();
    let name_len = usize::from(*entries.first().ok_or_else(truncated)?);
    let name = entries.get(1..1 + name_len).ok_or_else(truncated)?;
    let parent = std::str::from_utf8(name)
        .ok()
        .filter(|n| validate_name(n).is_ok())
        .ok_or_else(|| "the parent's name is not an index name".to_string())?
        .to_string();
    let mut at = 1 + name_len;
    let depth = *entries.get(at).ok_or_else(truncated)?;
    if depth == 0 || depth > MAX_DELTA_DEPTH {
        return Err(format!(
            "delta depth {depth} is outside 1..={MAX_DELTA_DEPTH}"
        ));
    }
    at += 1;
    let mut whole = [0u8; 32];
    whole.copy_from_slice(entries.get(at..at + 32).ok_or_else(truncated)?);
    at += 32;
    let n = get_varint(entries, &mut at).ok_or_else(truncated)? as usize;
    // Each change takes at least two bytes: no allocation beyond what the file could hold.
    let mut changes = Vec::with_capacity(n.min(entries.len() / 2));
    let mut pos: u64 = 0;
    for k in 0..n {
        let gap = u64::from(get_varint(entries, &mut at).ok_or_else(truncated)?);
        if k > 0 && gap == 0 {
            return Err(format!("changed chunk {pos} is listed twice"));
        }
        pos += gap;
        if pos >= count {
            return Err(format!("changed chunk {pos} is past the last one"));
        }
        let flag = *entries.get(at).ok_or_else(truncated)?;
        at += 1;
        let chunk = match flag {
            FLAG_HOLE => None,
            FLAG_DATA => {
                let d = entries.get(at..at + DIGEST_LEN).ok_or_else(truncated)?;
                at += DIGEST_LEN;
                let mut digest = [0u8; DIGEST_LEN];
                digest.copy_from_slice(d);
                Some(ChunkDigest(digest))
            }
            other => return Err(format!("changed chunk {pos} has unknown flag {other}")),
        };
        changes.push((pos as usize, chunk));
    }
    if at != entries.len() {
        return Err(format!(
            "{} bytes follow the last change",
            entries.len() - at
        ));
    }
    Ok((parent, depth, whole, changes))
}

/// The parent an index file names when it is a delta, from its first bytes (at least
/// [`PEEK_LEN`] of them, or the whole file); nothing is verified.
pub(crate) fn peek_parent(head: &[u8]) -> Option<&str> {
    if head.get(0..4)? != INDEX_MAGIC || *head.get(4)? != INDEX_VERSION_DELTA {
        return None;
    }
    let len = usize::from(*head.get(INDEX_HEADER_LEN)?);
    let name = head.get(INDEX_HEADER_LEN + 1..INDEX_HEADER_LEN + 1 + len)?;
    std::str::from_utf8(name).ok()
}

/// Bytes enough for [`peek_parent`].
pub(crate) const PEEK_LEN: usize = INDEX_HEADER_LEN + 1 + MAX_NAME_LEN;

/// Format 2's entries: the data map, then one digest per set bit.
fn decode_map_and_digests(count: u64, entries: &[u8]) -> Result<Vec<Option<ChunkDigest>>, String> {
    let map_len = count.div_ceil(8);
    if (entries.len() as u64) < map_len {
        return Err(format!(
            "header says {count} chunks but the file holds only {} bytes of data map",
            entries.len()
        ));
    }
    let (map, digests) = entries.split_at(map_len as usize);
    let data: u64 = map.iter().map(|b| u64::from(b.count_ones())).sum();
    if digests.len() as u64 != data.saturating_mul(DIGEST_LEN as u64) {
        return Err(format!(
            "the data map marks {data} data chunks but the file holds {} bytes of digests",
            digests.len()
        ));
    }
    if !count.is_multiple_of(8) && map.last().is_some_and(|&b| b >> (count % 8) != 0) {
        return Err("the data map marks chunks past the last one".to_string());
    }
    let mut next = digests.chunks_exact(DIGEST_LEN);
    let mut chunks = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        if map[i / 8] & (1 << (i % 8)) == 0 {
            chunks.push(None);
            continue;
        }
        let Some(d) = next.next() else {
            return Err(format!("chunk {i} has no digest"));
        };
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(d);
        chunks.push(Some(ChunkDigest(digest)));
    }
    Ok(chunks)
}

/// Format 1's entries: a flag and a digest slot for every chunk.
fn decode_version_1(count: u64, entries: &[u8]) -> Result<Vec<Option<ChunkDigest>>, String> {
    if entries.len() as u64 != count.saturating_mul(ENTRY_LEN_1 as u64) {
        return Err(format!(
            "header says {count} chunks but the file holds {} bytes of entries",
            entries.len()
        ));
    }
    let mut chunks = Vec::with_capacity(count as usize);
    for (i, e) in entries.chunks_exact(ENTRY_LEN_1).enumerate() {
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&e[1..]);
        match e[0] {
            FLAG_HOLE => chunks.push(None),
            FLAG_DATA => chunks.push(Some(ChunkDigest(digest))),
            other => return Err(format!("chunk {i} has unknown flag {other}")),
        }
    }
    Ok(chunks)
}

/// Checks an index name: 1..=128 characters from `[A-Za-z0-9._-]`, not starting with a dot.
pub(crate) fn validate_name(name: &str) -> Result<(), RepoError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RepoError::InvalidName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DiskIndex {
        DiskIndex {
            disk_size: 3 * 4096 + 100,
            chunk_size: 4096,
            chunks: vec![
                Some(ChunkDigest::of(b"a")),
                None,
                Some(ChunkDigest::of(b"b")),
                None,
            ],
        }
    }

    #[test]
    fn index_round_trips_through_its_file_format() {
        let idx = sample();
        let bytes = idx.encode();
        // One map byte for the four chunks, digests for the two data chunks only.
        assert_eq!(
            bytes.len(),
            INDEX_HEADER_LEN + 1 + 2 * DIGEST_LEN + TRAILER_LEN
        );
        assert_eq!(DiskIndex::decode(&bytes), Ok(idx));
    }

    /// Format 1 as the first builds wrote it: a flag and a digest slot per chunk.
    fn encode_version_1(idx: &DiskIndex) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&[INDEX_VERSION_1, 0, 0, 0]);
        out.extend_from_slice(&idx.disk_size.to_le_bytes());
        out.extend_from_slice(&idx.chunk_size.to_le_bytes());
        out.extend_from_slice(&(idx.chunks.len() as u64).to_le_bytes());
        for c in &idx.chunks {
            out.push(if c.is_some() { FLAG_DATA } else { FLAG_HOLE });
            out.extend_from_slice(&c.map_or([0; DIGEST_LEN], |d| d.0));
        }
        let trailer = blake3::hash(&out);
        out.extend_from_slice(trailer.as_bytes());
        out
    }

    /// Re-seals `body` (an index without its trailer) so only the checks after the hash see it.
    fn sealed(mut body: Vec<u8>) -> Vec<u8> {
        let trailer = blake3::hash(&body);
        body.extend_from_slice(trailer.as_bytes());
        body
    }

    #[test]
    fn format_1_indexes_written_by_earlier_builds_still_load() {
        let idx = sample();
        let old = encode_version_1(&idx);
        assert_eq!(old.len(), INDEX_HEADER_LEN + 4 * ENTRY_LEN_1 + TRAILER_LEN);
        assert_eq!(DiskIndex::decode(&old), Ok(idx));
        // Its own checks still hold: an unknown flag is refused.
        let mut body = old[..old.len() - TRAILER_LEN].to_vec();
        body[INDEX_HEADER_LEN] = 7;
        let err = DiskIndex::decode(&sealed(body)).unwrap_err();
        assert!(err.contains("unknown flag 7"), "{err}");
    }

    #[test]
    fn a_hole_costs_one_bit_and_a_data_chunk_its_digest() {
        let mut chunks = vec![None; 1001];
        chunks[500] = Some(ChunkDigest::of(b"x"));
        let idx = DiskIndex {
            disk_size: 1001 * 4096,
            chunk_size: 4096,
            chunks,
        };
        let bytes = idx.encode();
        assert_eq!(
            bytes.len(),
            INDEX_HEADER_LEN + 126 + DIGEST_LEN + TRAILER_LEN
        );
        assert_eq!(DiskIndex::decode(&bytes), Ok(idx));
    }

    #[test]
    fn a_data_map_that_disagrees_with_the_digests_is_refused() {
        let bytes = sample().encode();
        let body = &bytes[..bytes.len() - TRAILER_LEN];
        // sample(): chunks 0 and 2 hold data, so the map byte is 0b0101.
        assert_eq!(body[INDEX_HEADER_LEN], 0b0101);
        let with_map = |map: u8| {
            let mut b = body.to_vec();
            b[INDEX_HEADER_LEN] = map;
            DiskIndex::decode(&sealed(b)).unwrap_err()
        };
        assert!(with_map(0b0111).contains("marks 3 data chunks"));
        assert!(with_map(0b0001).contains("marks 1 data chunks"));
        // Bit 4 names a fifth chunk of a four-chunk disk (the digest count matches).
        assert!(with_map(0b1_0001).contains("past the last one"));
        let short = sealed(body[..body.len() - 1].to_vec());
        assert!(DiskIndex::decode(&short)
            .unwrap_err()
            .contains("bytes of digests"));
    }

    #[test]
    fn every_single_flipped_bit_in_an_index_file_is_detected() {
        let bytes = sample().encode();
        for pos in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0x10;
            assert!(
                DiskIndex::decode(&damaged).is_err(),
                "flip at {pos} not detected"
            );
        }
        assert!(DiskIndex::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_delta_round_trips_and_any_damage_to_it_is_refused() {
        let a = DiskIndex {
            disk_size: 64 * 4096,
            chunk_size: 4096,
            chunks: (0..64u8).map(|i| Some(ChunkDigest::of(&[i]))).collect(),
        };
        let mut b = a.clone();
        b.chunks[9] = None;
        let bytes = b
            .encode_delta("a", &a, 1)
            .expect("one change is worth a delta");
        let Ok(StoredIndex::Delta(d)) = StoredIndex::decode(&bytes) else {
            panic!("not decoded as a delta");
        };
        assert_eq!((d.parent.as_str(), d.depth), ("a", 1));
        assert_eq!(peek_parent(&bytes), Some("a"));
        let rebuilt = d.apply(a.clone()).unwrap();
        assert_eq!(d.check_whole(&rebuilt), Ok(()));
        assert_eq!(rebuilt, b);
        // Applied to another parent of the same disk, the result is refused.
        let mut other = a.clone();
        other.chunks[3] = None;
        let wrong = d.apply(other).unwrap();
        assert!(d.check_whole(&wrong).is_err());
        for pos in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0x10;
            assert!(
                StoredIndex::decode(&damaged).is_err(),
                "flip at {pos} not detected"
            );
        }
        // Sealed again, a change past the last chunk is still refused.
        let mut body = bytes[..bytes.len() - TRAILER_LEN].to_vec();
        let gap_at = INDEX_HEADER_LEN + 1 + 1 + 1 + 32 + 1;
        assert_eq!(body[gap_at], 9);
        body[gap_at] = 64;
        let err = StoredIndex::decode(&sealed(body)).unwrap_err();
        assert!(err.contains("past the last one"), "{err}");
        // Too deep a chain, a parent of another disk and a large change give no delta.
        assert!(b.encode_delta("a", &a, MAX_DELTA_DEPTH + 1).is_none());
        assert!(b.encode_delta("a", &sample(), 1).is_none());
        let all_new = DiskIndex {
            chunks: (0..64u8).map(|i| Some(ChunkDigest::of(&[i, i]))).collect(),
            ..a.clone()
        };
        assert!(all_new.encode_delta("a", &a, 1).is_none());
    }

    #[test]
    fn last_chunk_range_is_short() {
        let idx = sample();
        assert_eq!(idx.chunk_range(0), (0, 4096));
        assert_eq!(idx.chunk_range(3), (3 * 4096, 100));
        assert_eq!(idx.referenced().count(), 2);
    }

    #[test]
    fn index_names_are_checked() {
        for ok in ["vm-1_disk0.2024", "a", &"x".repeat(128)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "../x",
            "a/b",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(validate_name(bad), Err(RepoError::InvalidName { ref name }) if name == bad),
                "{bad:?}"
            );
        }
    }
}
