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
//! The trailing hash makes any damage to an index show up as
//! [`RepoError::IndexCorrupt`] on load instead of as a wrong restore.

use crate::{ChunkDigest, RepoError, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

/// Magic at the start of every index file.
const INDEX_MAGIC: [u8; 4] = *b"EMRI";
/// The index format version this build writes.
const INDEX_VERSION: u8 = 2;
/// The first format, still read: a flag and a digest slot for every chunk, holes included.
const INDEX_VERSION_1: u8 = 1;
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

    /// The index in its on-disk format (format 2).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let n = self.chunks.len();
        let data = self.chunks.iter().flatten().count();
        let mut out =
            Vec::with_capacity(INDEX_HEADER_LEN + n.div_ceil(8) + data * DIGEST_LEN + TRAILER_LEN);
        let header = IndexHeader {
            magic: INDEX_MAGIC,
            version: INDEX_VERSION,
            reserved: [0; 3],
            disk_size: self.disk_size.to_le_bytes(),
            chunk_size: self.chunk_size.to_le_bytes(),
            chunk_count: (n as u64).to_le_bytes(),
        };
        out.extend_from_slice(&header.magic);
        out.push(header.version);
        out.extend_from_slice(&header.reserved);
        out.extend_from_slice(&header.disk_size);
        out.extend_from_slice(&header.chunk_size);
        out.extend_from_slice(&header.chunk_count);
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

    /// Parses an index file; the error string says what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<DiskIndex, String> {
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
            v => {
                return Err(format!(
                    "unsupported index format version {v} (this build reads {INDEX_VERSION_1} and {INDEX_VERSION})"
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
            None => Ok(index),
        }
    }
}

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
