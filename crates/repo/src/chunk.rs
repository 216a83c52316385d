//! Chunk files: `chunks/<first 2 hex chars>/<64 hex digest>`.
//!
//! On-disk format (all integers little-endian):
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 0      | 4    | magic `b"EMRC"`                                   |
//! | 4      | 1    | format version (1)                                |
//! | 5      | 1    | codec: 0 = raw, 1 = zstd                          |
//! | 6      | 2    | reserved, zero                                    |
//! | 8      | 4    | uncompressed length (u32)                         |
//! | 12     | ..   | payload (raw bytes, or one zstd frame)            |
//!
//! The digest in the file name is BLAKE3 of the *uncompressed* bytes, and is
//! checked on every read. Payloads are zstd level 1; when that is not smaller
//! than the data the chunk is stored raw, so incompressible data costs no
//! decompression on restore.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::IoContext;
use crate::fsutil::TempFile;
use crate::{ChunkDigest, Durability, RepoError, MAX_CHUNK_SIZE};

/// Magic at the start of every chunk file.
const CHUNK_MAGIC: [u8; 4] = *b"EMRC";
/// The chunk format version this build writes and reads.
const CHUNK_VERSION: u8 = 1;
/// Payload stored as-is.
const CODEC_RAW: u8 = 0;
/// Payload is one zstd frame.
const CODEC_ZSTD: u8 = 1;
/// zstd level: fast enough to keep up with disk reads.
const ZSTD_LEVEL: i32 = 1;

/// The chunk header exactly as laid out on disk.
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

/// Per-worker compression state and buffers, reused across chunks.
pub(crate) struct ChunkCodec {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    /// Header + payload of the chunk file being written or read.
    file_buf: Vec<u8>,
}

impl ChunkCodec {
    /// A codec with empty buffers.
    pub(crate) fn new() -> Result<ChunkCodec, RepoError> {
        Ok(ChunkCodec {
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .ctx(|| "create zstd compressor".to_string())?,
            decompressor: zstd::bulk::Decompressor::new()
                .ctx(|| "create zstd decompressor".to_string())?,
            file_buf: Vec::new(),
        })
    }

    /// Writes `data` as a chunk file at `dir/<dest_name>` via a temporary file; returns the file size.
    pub(crate) fn write_chunk(
        &mut self,
        dir: &Path,
        dest_name: &str,
        data: &[u8],
        durability: Durability,
    ) -> Result<u64, RepoError> {
        let len = data.len();
        let need = CHUNK_HEADER_LEN + len;
        if self.file_buf.len() < need {
            self.file_buf.resize(need, 0);
        }
        // Give zstd one byte less than the data: if it does not fit, raw is better.
        let compressed = if len > 1 {
            self.compressor
                .compress_to_buffer(data, &mut self.file_buf[CHUNK_HEADER_LEN..need - 1])
                .ok()
        } else {
            None
        };

        let mut tmp = match TempFile::create(dir) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).ctx(|| format!("create folder {}", dir.display()))?;
                TempFile::create(dir)
                    .ctx(|| format!("create temporary file in {}", dir.display()))?
            }
            Err(e) => {
                return Err(RepoError::io(
                    format!("create temporary file in {}", dir.display()),
                    e,
                ))
            }
        };
        let tmp_path = tmp.path().to_path_buf();
        let file = tmp.file();
        let written = match compressed {
            Some(n) => {
                self.file_buf[..CHUNK_HEADER_LEN]
                    .copy_from_slice(&ChunkHeader::new(CODEC_ZSTD, len).to_bytes());
                file.write_all(&self.file_buf[..CHUNK_HEADER_LEN + n])
                    .map(|()| CHUNK_HEADER_LEN + n)
            }
            None => file
                .write_all(&ChunkHeader::new(CODEC_RAW, len).to_bytes())
                .and_then(|()| file.write_all(data))
                .map(|()| need),
        }
        .ctx(|| format!("write {}", tmp_path.display()))?;
        tmp.persist(&dir.join(dest_name), durability)?;
        Ok(written as u64)
    }

    /// Reads the chunk file at `path` into `out`, decompressing and verifying it against `digest`.
    pub(crate) fn read_chunk(
        &mut self,
        path: &Path,
        digest: &ChunkDigest,
        out: &mut Vec<u8>,
    ) -> Result<(), RepoError> {
        let corrupt = |reason: String| RepoError::ChunkCorrupt {
            digest: *digest,
            reason,
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::ChunkMissing { digest: *digest })
            }
            Err(e) => {
                return Err(RepoError::io(
                    format!("open chunk file {}", path.display()),
                    e,
                ))
            }
        };
        self.file_buf.clear();
        file.read_to_end(&mut self.file_buf)
            .ctx(|| format!("read chunk file {}", path.display()))?;

        let Some((head, payload)) = self.file_buf.split_first_chunk::<CHUNK_HEADER_LEN>() else {
            return Err(corrupt(format!(
                "file is {} bytes, shorter than the {CHUNK_HEADER_LEN}-byte header",
                self.file_buf.len()
            )));
        };
        let header = ChunkHeader::parse(head);
        if header.magic != CHUNK_MAGIC {
            return Err(corrupt("bad magic (not a chunk file)".to_string()));
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
        out.clear();
        match header.codec {
            CODEC_RAW => {
                if payload.len() != len {
                    return Err(corrupt(format!(
                        "raw payload is {} bytes, header says {len}",
                        payload.len()
                    )));
                }
                out.extend_from_slice(payload);
            }
            CODEC_ZSTD => {
                out.reserve(len);
                let n = self
                    .decompressor
                    .decompress_to_buffer(payload, out)
                    .map_err(|e| corrupt(format!("zstd payload does not decompress: {e}")))?;
                if n != len {
                    return Err(corrupt(format!(
                        "decompressed to {n} bytes, header says {len}"
                    )));
                }
                // Spare capacity past `len` is not trusted: the frame must be exactly `len`.
                out.truncate(len);
            }
            other => return Err(corrupt(format!("unknown codec {other}"))),
        }
        let actual = ChunkDigest::of(out);
        if actual != *digest {
            return Err(corrupt(format!("content hashes to {actual}")));
        }
        Ok(())
    }
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
    fn compressible_chunk_is_stored_zstd_and_random_chunk_raw() {
        let dir = tempfile::tempdir().unwrap();
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
            let size = codec
                .write_chunk(dir.path(), name, data, Durability::NoSync)
                .unwrap();
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            assert_eq!(bytes.len() as u64, size);
            assert_eq!(&bytes[..4], b"EMRC");
            assert_eq!(bytes[5], codec_byte, "{name}");
            let mut out = Vec::new();
            codec
                .read_chunk(&dir.path().join(name), &ChunkDigest::of(data), &mut out)
                .unwrap();
            assert_eq!(&out, data);
        }
        assert!(std::fs::metadata(dir.path().join("text")).unwrap().len() < text.len() as u64 / 10);
    }
}
