//! Chunk records: how one chunk is stored inside a pack file.
//!
//! A record is one codec byte and the payload (pack format 2, see the `pack` module):
//!
//! | codec | payload                                                                  |
//! |-------|--------------------------------------------------------------------------|
//! | 0     | the chunk's bytes as they are                                            |
//! | 1     | one zstd frame                                                           |
//! | 2     | one zstd frame compressed with a repository dictionary, which the frame  |
//! |       | header names by its zstd dictionary ID (see the `dict` module)          |
//!
//! The pack index holds each record's lengths, so the record carries nothing else.
//!
//! Packs of format 1 hold version-2 records, which are still read (never written):
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
//! The two are told apart by their first byte: `b'E'` is not a codec. A legacy record's
//! payload is a current record's payload for the same codec, so garbage collection turns
//! one into the other by swapping the header for the codec byte.
//!
//! A chunk is named by BLAKE3 of its *uncompressed* bytes, which is checked on every read.
//! Payloads are zstd level 3; when that is not smaller than the data the chunk is stored
//! raw, so incompressible data costs no decompression on restore and is read straight
//! into the restore buffer.

use std::sync::Arc;

use crate::dict::{self, Dictionary};
use crate::{ChunkDigest, RepoError, MAX_CHUNK_SIZE};

/// Magic at the start of every legacy (version 2) chunk record.
const LEGACY_MAGIC: [u8; 4] = *b"EMRC";
/// The legacy chunk record version.
const LEGACY_VERSION: u8 = 2;
/// Payload stored as-is.
pub(crate) const CODEC_RAW: u8 = 0;
/// Payload is one zstd frame.
pub(crate) const CODEC_ZSTD: u8 = 1;
/// Payload is one zstd frame that needs the repository dictionary its header names.
pub(crate) const CODEC_ZSTD_DICT: u8 = 2;
/// Length of a current record's header: the codec byte.
pub(crate) const RECORD_HEAD_LEN: usize = 1;
/// zstd level. Measured on the benchmark's text-like chunks (16 KiB frames): level 1 stores
/// them in 24.6% of their size, level 3 in 22.5% and level 3 with a repository dictionary
/// in 20.9%, at about the speed of level 1. With the dictionary, levels 4–7 store no less
/// (21.0–22.0%), and levels 8 and 9 (20.5%, 19.2%) take ten times as long, which a full
/// backup cannot afford (figures: `examples/zstd_levels.rs`).
const ZSTD_LEVEL: i32 = 3;

/// The legacy chunk record header exactly as laid out on disk.
#[repr(C)]
struct LegacyHeader {
    magic: [u8; 4],
    version: u8,
    codec: u8,
    reserved: [u8; 2],
    len: [u8; 4],
}

/// Size of [`LegacyHeader`] on disk.
pub(crate) const LEGACY_HEAD_LEN: usize = 12;
const _: () = assert!(std::mem::size_of::<LegacyHeader>() == LEGACY_HEAD_LEN);

impl LegacyHeader {
    #[cfg(test)]
    fn new(codec: u8, len: usize) -> LegacyHeader {
        LegacyHeader {
            magic: LEGACY_MAGIC,
            version: LEGACY_VERSION,
            codec,
            reserved: [0; 2],
            len: (len as u32).to_le_bytes(),
        }
    }

    #[cfg(test)]
    fn to_bytes(&self) -> [u8; LEGACY_HEAD_LEN] {
        let mut b = [0u8; LEGACY_HEAD_LEN];
        b[0..4].copy_from_slice(&self.magic);
        b[4] = self.version;
        b[5] = self.codec;
        b[6..8].copy_from_slice(&self.reserved);
        b[8..12].copy_from_slice(&self.len);
        b
    }

    fn parse(b: &[u8; LEGACY_HEAD_LEN]) -> LegacyHeader {
        LegacyHeader {
            magic: [b[0], b[1], b[2], b[3]],
            version: b[4],
            codec: b[5],
            reserved: [b[6], b[7]],
            len: [b[8], b[9], b[10], b[11]],
        }
    }
}

/// The legacy record of `data` as the previous format wrote it (level 1, no dictionary):
/// the encoder kept so tests can build old repositories byte for byte.
#[cfg(test)]
pub(crate) fn encode_legacy(data: &[u8]) -> (u8, Vec<u8>) {
    let compressed = zstd::bulk::compress(data, 1)
        .ok()
        .filter(|c| c.len() < data.len() && !looks_incompressible(data));
    let (codec, payload) = match compressed {
        Some(c) => (CODEC_ZSTD, c),
        None => (CODEC_RAW, data.to_vec()),
    };
    let mut record = LegacyHeader::new(codec, data.len()).to_bytes().to_vec();
    record.extend_from_slice(&payload);
    (codec, record)
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
    /// The dictionary `compressor` holds, if any.
    compressor_dict: Option<Arc<Dictionary>>,
    decoders: Decoders,
    /// The record being written, or the compressed record being read.
    buf: Vec<u8>,
}

/// Decompression state: a plain decompressor and one holding the last dictionary needed.
struct Decoders {
    plain: zstd::bulk::Decompressor<'static>,
    with_dict: Option<(Arc<Dictionary>, zstd::bulk::Decompressor<'static>)>,
}

fn zstd_err(what: &str) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |e| RepoError::io(what.to_string(), e)
}

impl ChunkCodec {
    /// A codec with an empty buffer.
    pub(crate) fn new() -> Result<ChunkCodec, RepoError> {
        Ok(ChunkCodec {
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(zstd_err("create zstd compressor"))?,
            compressor_dict: None,
            decoders: Decoders {
                plain: zstd::bulk::Decompressor::new()
                    .map_err(zstd_err("create zstd decompressor"))?,
                with_dict: None,
            },
            buf: Vec::new(),
        })
    }

    /// Encodes `data` as a record (codec byte + payload), compressing with `dict` when
    /// given; returns its codec and bytes.
    pub(crate) fn encode(
        &mut self,
        data: &[u8],
        dict: Option<&Arc<Dictionary>>,
    ) -> Result<(u8, &[u8]), RepoError> {
        let len = data.len();
        let need = RECORD_HEAD_LEN + len;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        let compressible = len > 1 && !looks_incompressible(data);
        if compressible && !same_dict(self.compressor_dict.as_ref(), dict) {
            let bytes = dict.map_or(&[][..], |d| &d.bytes[..]);
            self.compressor
                .set_dictionary(ZSTD_LEVEL, bytes)
                .map_err(zstd_err("load a zstd dictionary"))?;
            self.compressor_dict = dict.cloned();
        }
        // Give zstd one byte less than the data: if it does not fit, raw is better.
        let compressed = if compressible {
            self.compressor
                .compress_to_buffer(data, &mut self.buf[RECORD_HEAD_LEN..need - 1])
                .ok()
        } else {
            None
        };
        let (codec, total) = match compressed {
            Some(n) if self.compressor_dict.is_some() => (CODEC_ZSTD_DICT, RECORD_HEAD_LEN + n),
            Some(n) => (CODEC_ZSTD, RECORD_HEAD_LEN + n),
            None => {
                self.buf[RECORD_HEAD_LEN..need].copy_from_slice(data);
                (CODEC_RAW, need)
            }
        };
        self.buf[0] = codec;
        Ok((codec, &self.buf[..total]))
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
        self.decoders.decode(record, digest, out)
    }

    /// Decodes the record `record` (read by the caller, e.g. as part of a longer stretch of
    /// a pack) into `out` and verifies it against `digest`.
    pub(crate) fn decode_from(
        &mut self,
        record: &[u8],
        digest: &ChunkDigest,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        self.decoders.decode(record, digest, out)
    }

    /// The `len`-byte chunk that `record` holds, verified against `digest`: a raw record's
    /// payload where it lies in `record` (no copy), any other record decoded into `scratch`.
    pub(crate) fn decoded<'a>(
        &mut self,
        record: &'a [u8],
        digest: &ChunkDigest,
        len: usize,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], RepoError> {
        if let Some((&CODEC_RAW, payload)) = record.split_first() {
            if payload.len() == len {
                verify(digest, payload)?;
                return Ok(payload);
            }
        }
        scratch.resize(len, 0);
        self.decoders.decode(record, digest, scratch)?;
        Ok(scratch)
    }
}

/// True when `a` and `b` are the same dictionary (or both none).
fn same_dict(a: Option<&Arc<Dictionary>>, b: Option<&Arc<Dictionary>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.hash == b.hash,
        _ => false,
    }
}

/// The chunk under `digest` cannot be decoded, for `reason`.
fn corrupt(digest: &ChunkDigest, reason: String) -> RepoError {
    RepoError::ChunkCorrupt {
        digest: *digest,
        at: None,
        reason,
    }
}

/// Checks what a zstd decompression into `out` gave: the whole chunk, under its digest.
fn decompressed(
    n: std::io::Result<usize>,
    digest: &ChunkDigest,
    out: &[u8],
) -> Result<(), RepoError> {
    match n {
        Ok(n) if n == out.len() => verify(digest, out),
        Ok(n) => Err(corrupt(
            digest,
            format!("decompressed to {n} bytes, the chunk is {}", out.len()),
        )),
        Err(e) => Err(corrupt(
            digest,
            format!("zstd payload does not decompress: {e}"),
        )),
    }
}

impl Decoders {
    /// Decodes one record, current or legacy, into `out` (exactly the chunk's length) and
    /// verifies its digest.
    fn decode(
        &mut self,
        record: &[u8],
        digest: &ChunkDigest,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        let (codec, payload) = match record.first() {
            None => return Err(corrupt(digest, "record is empty".to_string())),
            Some(&b) if b == LEGACY_MAGIC[0] => {
                legacy_parts(record, out.len()).map_err(|r| corrupt(digest, r))?
            }
            Some(&codec) => (codec, &record[RECORD_HEAD_LEN..]),
        };
        let len = out.len();
        match codec {
            CODEC_RAW => {
                if payload.len() != len {
                    return Err(corrupt(
                        digest,
                        format!("raw payload is {} bytes, the chunk {len}", payload.len()),
                    ));
                }
                out.copy_from_slice(payload);
                verify(digest, out)
            }
            CODEC_ZSTD => {
                let n = self.plain.decompress_to_buffer(payload, out);
                decompressed(n, digest, out)
            }
            CODEC_ZSTD_DICT => self.decode_with_dict(payload, digest, out),
            other => Err(corrupt(digest, format!("unknown codec {other}"))),
        }
    }

    /// Decodes a frame that needs a repository dictionary. Dictionaries are looked up by the
    /// 32-bit ID the frame names; should two loaded dictionaries share one, the one under
    /// which the chunk's digest verifies is the right one.
    fn decode_with_dict(
        &mut self,
        payload: &[u8],
        digest: &ChunkDigest,
        out: &mut [u8],
    ) -> Result<(), RepoError> {
        let Some(id) = zstd::zstd_safe::get_dict_id_from_frame(payload) else {
            return Err(corrupt(
                digest,
                "zstd frame of a dictionary codec names no dictionary".to_string(),
            ));
        };
        let candidates = dict::loaded_with_id(id.get());
        if candidates.is_empty() {
            return Err(corrupt(digest, format!(
                "it needs zstd dictionary {:08x}, which is not loaded (its file is missing or damaged)",
                id.get()
            )));
        }
        let mut last = None;
        for d in candidates {
            let holds = self
                .with_dict
                .as_ref()
                .is_some_and(|(held, _)| held.hash == d.hash);
            if !holds {
                let dec = zstd::bulk::Decompressor::with_dictionary(&d.bytes)
                    .map_err(zstd_err("load a zstd dictionary"))?;
                self.with_dict = Some((d.clone(), dec));
            }
            let Some((_, dec)) = self.with_dict.as_mut() else {
                continue;
            };
            let n = dec.decompress_to_buffer(payload, out);
            match decompressed(n, digest, out) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| corrupt(digest, "no dictionary decodes it".to_string())))
    }
}

/// The codec and payload of a legacy record for a chunk of `len` bytes, checked (garbage
/// collection rewrites such a record as the codec byte and the same payload).
pub(crate) fn legacy_parts(record: &[u8], len: usize) -> Result<(u8, &[u8]), String> {
    let Some((head, payload)) = record.split_first_chunk::<LEGACY_HEAD_LEN>() else {
        return Err(format!(
            "record is {} bytes, shorter than the {LEGACY_HEAD_LEN}-byte header",
            record.len()
        ));
    };
    let header = LegacyHeader::parse(head);
    if header.magic != LEGACY_MAGIC {
        return Err("bad magic (not a chunk record)".to_string());
    }
    if header.version != LEGACY_VERSION {
        return Err(format!(
            "unsupported chunk format version {} (this build reads {LEGACY_VERSION})",
            header.version
        ));
    }
    let claimed = u32::from_le_bytes(header.len) as usize;
    if claimed > MAX_CHUNK_SIZE as usize {
        return Err(format!(
            "header claims {claimed} bytes, more than the {MAX_CHUNK_SIZE}-byte maximum"
        ));
    }
    if claimed != len {
        return Err(format!(
            "chunk holds {claimed} bytes but {len} are expected"
        ));
    }
    match header.codec {
        CODEC_RAW | CODEC_ZSTD => Ok((header.codec, payload)),
        other => Err(format!("unknown codec {other}")),
    }
}

/// Checks that `data` hashes to `digest`.
pub(crate) fn verify(digest: &ChunkDigest, data: &[u8]) -> Result<(), RepoError> {
    let actual = ChunkDigest::of(data);
    if actual != *digest {
        return Err(RepoError::ChunkCorrupt {
            digest: *digest,
            at: None,
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
            let (c, record) = codec.encode(data, None).unwrap();
            let record = record.to_vec();
            assert_eq!(c, codec_byte, "{name}");
            assert_eq!(record[0], codec_byte, "{name}");
            if name == "text" {
                assert!(record.len() < text.len() / 10);
            } else {
                // A raw record is the codec byte and the chunk, nothing else.
                assert_eq!(record.len(), 1 + data.len());
                assert_eq!(&record[1..], &data[..]);
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

    /// Text-like 16 KiB chunks, as the demo's disks hold.
    fn text_chunks(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let words = [
            "backup", "restore", "disk", "error", "the", "of", "job", "block",
        ];
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut c = Vec::with_capacity(16 << 10);
                while c.len() < 16 << 10 {
                    c.extend_from_slice(
                        words[rand::Rng::gen_range(&mut rng, 0..words.len())].as_bytes(),
                    );
                    c.push(b' ');
                }
                c.truncate(16 << 10);
                c
            })
            .collect()
    }

    #[test]
    fn a_dictionary_makes_small_frames_smaller_and_the_frame_names_it() {
        let chunks = text_chunks(dict::SAMPLE_COUNT + 8, 5);
        let sampler = dict::Sampler::default();
        let mut samples = None;
        for c in &chunks[..dict::SAMPLE_COUNT] {
            assert!(samples.is_none());
            samples = sampler.offer(c);
        }
        let (data, sizes) = samples.expect("the last sample completes the set");
        assert_eq!(sizes.len(), dict::SAMPLE_COUNT);
        assert!(sampler.offer(&chunks[0]).is_none(), "handed out once");
        let d = Arc::new(dict::train(&data, &sizes).expect("text trains a dictionary"));
        dict::register(&d);

        let mut codec = ChunkCodec::new().unwrap();
        let (mut plain, mut with) = (0, 0);
        for c in &chunks[dict::SAMPLE_COUNT..] {
            plain += codec.encode(c, None).unwrap().1.len();
            let (codec_byte, record) = codec.encode(c, Some(&d)).unwrap();
            assert_eq!(codec_byte, CODEC_ZSTD_DICT);
            let record = record.to_vec();
            with += record.len();
            assert_eq!(
                zstd::zstd_safe::get_dict_id_from_frame(&record[1..]).map(|i| i.get()),
                Some(d.id)
            );
            // A fresh codec (as a restore worker has) finds the dictionary by its ID.
            let mut out = vec![0u8; c.len()];
            ChunkCodec::new()
                .unwrap()
                .decode_from(&record, &ChunkDigest::of(c), &mut out)
                .unwrap();
            assert_eq!(&out, c);
        }
        assert!(with < plain, "dictionary {with} bytes, plain {plain}");
    }

    #[test]
    fn a_frame_needing_an_unknown_dictionary_is_reported_as_corrupt() {
        let chunks = text_chunks(dict::SAMPLE_COUNT + 1, 9);
        let sizes = vec![16 << 10; dict::SAMPLE_COUNT];
        let d = Arc::new(dict::train(&chunks[..dict::SAMPLE_COUNT].concat(), &sizes).unwrap());
        // Not registered: compress with it directly.
        let payload = zstd::bulk::Compressor::with_dictionary(3, &d.bytes)
            .unwrap()
            .compress(&chunks[dict::SAMPLE_COUNT])
            .unwrap();
        let mut record = vec![CODEC_ZSTD_DICT];
        record.extend_from_slice(&payload);
        let digest = ChunkDigest::of(&chunks[dict::SAMPLE_COUNT]);
        let mut out = vec![0u8; 16 << 10];
        let err = ChunkCodec::new()
            .unwrap()
            .decode_from(&record, &digest, &mut out)
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::ChunkCorrupt { reason, .. } if reason.contains(&format!("{:08x}", d.id))),
            "{err}"
        );
    }

    #[test]
    fn legacy_records_still_decode() {
        let text: Vec<u8> = b"the quick brown fox ".repeat(800);
        let mut random = vec![0u8; 16 << 10];
        rand::Rng::fill(
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(8),
            &mut random[..],
        );
        let mut codec = ChunkCodec::new().unwrap();
        for data in [&text, &random] {
            let (c, record) = encode_legacy(data);
            assert_eq!(&record[..4], b"EMRC");
            assert_eq!(record[5], c);
            let mut out = vec![0u8; data.len()];
            codec
                .decode_from(&record, &ChunkDigest::of(data), &mut out)
                .unwrap();
            assert_eq!(&out, data);
            let mut bad = record.clone();
            bad[1] ^= 1;
            assert!(codec
                .decode_from(&bad, &ChunkDigest::of(data), &mut out)
                .is_err_and(|e| e.to_string().contains("magic")));
        }
    }
}
