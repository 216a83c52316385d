//! Chunk records: how one chunk is stored inside a pack file.
//!
//! On-disk format of a record (all integers little-endian):
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 0      | 4    | magic `b"EMRC"`                                   |
//! | 4      | 1    | format version (2)                                |
//! | 5      | 1    | codec: 0 = raw, 1 = zstd                          |
//! | 6      | 2    | reserved, zero                                    |
//! | 8      | 4    | uncompressed length (u32)                         |
//! | 12     | ..   | payload (raw bytes, or one zstd frame)            |
//!
//! A chunk is named by BLAKE3 of its *uncompressed* bytes, which is checked on
//! every read. Payloads are zstd level 1; when that is not smaller than the data
//! the chunk is stored raw, so incompressible data costs no decompression on
//! restore and is read straight into the restore buffer.

use crate::{ChunkDigest, RepoError, MAX_CHUNK_SIZE};

/// Magic at the start of every chunk record.
const CHUNK_MAGIC: [u8; 4] = *b"EMRC";
/// The chunk record version this build writes and reads.
const CHUNK_VERSION: u8 = 2;
/// Payload stored as-is.
pub(crate) const CODEC_RAW: u8 = 0;
/// Payload is one zstd frame.
pub(crate) const CODEC_ZSTD: u8 = 1;
/// zstd level: fast enough to keep up with disk reads. Measured on the benchmark image
/// (`bench/restore.sh 512`, 16 KiB chunks): levels 6 and 9 shrink the repository after a
/// full backup by only 1.5% and 2.2% (the text-like chunks compress a little better) at
/// several times the compression time of those chunks.
const ZSTD_LEVEL: i32 = 1;

/// The chunk record header exactly as laid out on disk.
#[repr(C)]
struct ChunkHeader {
    magic: [u8; 4],
    version: u8,
    codec: u8,
    reserved: [u8; 2],
    len: [u8; 4],
}

/// Size of [`ChunkHeader`] on disk.
pub(crate) const CHUNK_HEADER_LEN: usize = 12;
const _: () = assert!(std::mem::size_of::<ChunkHeader>() == CHUNK_HEADER_LEN);

impl ChunkHeader {
    fn new(codec: u8, len: usize) -> ChunkHeader {
        ChunkHeader {
            magic: CHUNK_MAGIC,
            version: CHUNK_VERSION,
            codec,
            reserved: [0; 2],
            // Callers never pass more than MAX_CHUNK_SIZE, which fits in u32.
            len: (len as u32).to_le_bytes(),
        }
    }

    fn to_bytes(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[0..4].copy_from_slice(&self.magic);
        b[4] = self.version;
        b[5] = self.codec;
        b[6..8].copy_from_slice(&self.reserved);
        b[8..12].copy_from_slice(&self.len);
        b
    }

    fn parse(b: &[u8; CHUNK_HEADER_LEN]) -> ChunkHeader {
        ChunkHeader {
            magic: [b[0], b[1], b[2], b[3]],
            version: b[4],
            codec: b[5],
            reserved: [b[6], b[7]],
            len: [b[8], b[9], b[10], b[11]],
        }
    }
}

/// True when every byte of `buf` is zero (vectorizes well; exits early on data).
pub(crate) fn is_all_zero(buf: &[u8]) -> bool {
    let mut blocks = buf.chunks_exact(256);
    blocks.all(|b| b.iter().fold(0u8, |acc, &x| acc | x) == 0)
        && blocks.remainder().iter().all(|&x| x == 0)
}

/// Bytes of a chunk sampled by [`looks_incompressible`]: four 256-byte pieces spread over it.
const SAMPLE_PIECE: usize = 256;
/// Byte entropy (bits per byte) of the sample above which a chunk is stored raw unattempted.
/// 1 024 uniformly random bytes estimate at ~7.8; text sits near 4–5, machine code and
/// tables near 6, and a chunk that is partly zeros or text falls well below the bar.
const INCOMPRESSIBLE_BITS: f64 = 7.5;

/// True when a sample of `data` looks like random bytes (already compressed or encrypted
/// data), so zstd would spend a full pass to find nothing: on the benchmark's image 60% of
/// the chunks are such, and that pass was most of a full backup's compression time. The
/// sample's byte histogram costs ~1/16 of compressing the chunk. What it cannot see is
/// redundancy between high-entropy pieces (a random block repeated within a chunk); such a
/// chunk is stored raw, correct and slightly larger.
pub(crate) fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 16 * SAMPLE_PIECE {
        return false;
    }
    let mut hist = [0u32; 256];
    let step = (data.len() - SAMPLE_PIECE) / 3;
    for k in 0..4 {
        for &b in &data[k * step..k * step + SAMPLE_PIECE] {
            hist[b as usize] += 1;
        }
    }
    let n = (4 * SAMPLE_PIECE) as f64;
    let bits: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits > INCOMPRESSIBLE_BITS
}

/// Per-worker compression state and buffer, reused across chunks.
pub(crate) struct ChunkCodec {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    /// The record being written, or the compressed record being read.
    buf: Vec<u8>,
}

impl ChunkCodec {
    /// A codec with an empty buffer.
    pub(crate) fn new() -> Result<ChunkCodec, RepoError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |e| RepoError::io(what, e)
        };
        Ok(ChunkCodec {
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(io("create zstd compressor"))?,
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(io("create zstd decompressor"))?,
            buf: Vec::new(),
        })
    }

    /// Encodes `data` as a record (header + payload); returns its codec and bytes.
    pub(crate) fn encode(&mut self, data: &[u8]) -> (u8, &[u8]) {
        let len = data.len();
        let need = CHUNK_HEADER_LEN + len;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        // Give zstd one byte less than the data: if it does not fit, raw is better.
        let compressed = if len > 1 && !looks_incompressible(data) {
            self.compressor
                .compress_to_buffer(data, &mut self.buf[CHUNK_HEADER_LEN..need - 1])
                .ok()
        } else {
            None
        };
        let (codec, total) = match compressed {
            Some(n) => (CODEC_ZSTD, CHUNK_HEADER_LEN + n),
            None => {
                self.buf[CHUNK_HEADER_LEN..need].copy_from_slice(data);
                (CODEC_RAW, need)
            }
        };
        self.buf[..CHUNK_HEADER_LEN].copy_from_slice(&ChunkHeader::new(codec, len).to_bytes());
        (codec, &self.buf[..total])
    }

    /// A buffer of `len` bytes for the caller to read a whole record into.
    pub(crate) fn record_buf(&mut self, len: usize) -> &mut [u8] {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        &mut self.buf[..len]
    }

    /// Decodes the record in the first `record_len` bytes of the buffer into `out`
    /// (which must be exactly the chunk's length) and verifies it against `digest`.
    pub(crate) fn decode_record(
        &mut self,
        record_len: usize,
        digest: &ChunkDigest,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        let record = &self.buf[..record_len.min(self.buf.len())];
        decode(&mut self.decompressor, record, digest, out)
    }

    /// Decodes the record `record` (read by the caller, e.g. as part of a longer stretch of
    /// a pack) into `out` and verifies it against `digest`.
    pub(crate) fn decode_from(
        &mut self,
        record: &[u8],
        digest: &ChunkDigest,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        decode(&mut self.decompressor, record, digest, out)
    }
}

/// Decodes one record into `out` (exactly the chunk's length) and verifies its digest.
fn decode(
    decompressor: &mut zstd::bulk::Decompressor<'static>,
    record: &[u8],
    digest: &ChunkDigest,
    out: &mut [u8],
) -> Result<(), RepoError> {
    {
        let corrupt = |reason: String| RepoError::ChunkCorrupt {
            digest: *digest,
            reason,
        };
        let Some((head, payload)) = record.split_first_chunk::<CHUNK_HEADER_LEN>() else {
            return Err(corrupt(format!(
                "record is {} bytes, shorter than the {CHUNK_HEADER_LEN}-byte header",
                record.len()
            )));
        };
        let header = ChunkHeader::parse(head);
        if header.magic != CHUNK_MAGIC {
            return Err(corrupt("bad magic (not a chunk record)".to_string()));
        }
        if header.version != CHUNK_VERSION {
            return Err(corrupt(format!(
                "unsupported chunk format version {} (this build reads {CHUNK_VERSION})",
                header.version
            )));
        }
        let len = u32::from_le_bytes(header.len) as usize;
        if len > MAX_CHUNK_SIZE as usize {
            return Err(corrupt(format!(
                "header claims {len} bytes, more than the {MAX_CHUNK_SIZE}-byte maximum"
            )));
        }
        if len != out.len() {
            return Err(corrupt(format!(
                "chunk holds {len} bytes but {} are expected",
                out.len()
            )));
        }
        match header.codec {
            CODEC_RAW => {
                if payload.len() != len {
                    return Err(corrupt(format!(
                        "raw payload is {} bytes, header says {len}",
                        payload.len()
                    )));
                }
                out.copy_from_slice(payload);
            }
            CODEC_ZSTD => {
                let n = decompressor
                    .decompress_to_buffer(payload, out)
                    .map_err(|e| corrupt(format!("zstd payload does not decompress: {e}")))?;
                if n != len {
                    return Err(corrupt(format!(
                        "decompressed to {n} bytes, header says {len}"
                    )));
                }
            }
            other => return Err(corrupt(format!("unknown codec {other}"))),
        }
        verify(digest, out)
    }
}

/// Checks that `data` hashes to `digest`.
pub(crate) fn verify(digest: &ChunkDigest, data: &[u8]) -> Result<(), RepoError> {
    let actual = ChunkDigest::of(data);
    if actual != *digest {
        return Err(RepoError::ChunkCorrupt {
            digest: *digest,
            reason: format!("content hashes to {actual}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_sees_a_single_nonzero_byte_anywhere() {
        for len in [0usize, 1, 255, 256, 257, 4096, 65_537] {
            let mut buf = vec![0u8; len];
            assert!(is_all_zero(&buf));
            for pos in [0, len / 2, len.saturating_sub(1)] {
                if len == 0 {
                    continue;
                }
                buf[pos] = 1;
                assert!(!is_all_zero(&buf), "len {len} pos {pos}");
                buf[pos] = 0;
            }
        }
    }

    #[test]
    fn the_sample_check_passes_random_bytes_and_catches_text_zeros_and_mixtures() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let mut random = vec![0u8; 16 << 10];
        rand::Rng::fill(&mut rng, &mut random[..]);
        assert!(looks_incompressible(&random));
        let text = b"the quick brown fox jumps over the lazy dog\n".repeat(400);
        assert!(!looks_incompressible(&text[..16 << 10]));
        assert!(!looks_incompressible(&vec![0u8; 16 << 10]));
        // Random bytes with a zeroed quarter: the sample sees the zeros and zstd is tried.
        let mut mixed = random.clone();
        mixed[12 << 10..].fill(0);
        assert!(!looks_incompressible(&mixed));
        // Small chunks are always tried.
        assert!(!looks_incompressible(&random[..2048]));
    }

    #[test]
    fn compressible_chunk_is_stored_zstd_and_random_chunk_raw() {
        let mut codec = ChunkCodec::new().unwrap();
        let text: Vec<u8> = b"the quick brown fox ".repeat(3000);
        let mut random = vec![0u8; 60_000];
        rand::Rng::fill(
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7),
            &mut random[..],
        );
        for (name, data, codec_byte) in
            [("text", &text, CODEC_ZSTD), ("random", &random, CODEC_RAW)]
        {
            let (c, record) = codec.encode(data);
            let record = record.to_vec();
            assert_eq!(c, codec_byte, "{name}");
            assert_eq!(&record[..4], b"EMRC");
            assert_eq!(record[5], codec_byte, "{name}");
            if name == "text" {
                assert!(record.len() < text.len() / 10);
            }
            codec.record_buf(record.len()).copy_from_slice(&record);
            let mut out = vec![0u8; data.len()];
            codec
                .decode_record(record.len(), &ChunkDigest::of(data), &mut out)
                .unwrap();
            assert_eq!(&out, data);
            // A record of the wrong length for the slot is refused.
            let mut short = vec![0u8; data.len() - 1];
            assert!(codec
                .decode_record(record.len(), &ChunkDigest::of(data), &mut short)
                .is_err());
        }
    }
}
