//! zstd levels on the benchmark's text-like data in 16 KiB frames, as the repository stores it:
//! stored size and compress/decompress speed per level, without and with a dictionary
//! trained like the repository's (see the `dict` module), and what the 4 GiB benchmark
//! image's ~652 MB of text would cost at each level. It also writes the benchmark image
//! for `repo_size`.
//!
//! `cargo run --release -p emrest-repo --example zstd_levels -- [MiB of text, 64] [levels, 1,3,9]
//! [dictionary KiB, 16] [samples, 32]`
//!
//! `cargo run --release -p emrest-repo --example zstd_levels -- --image <path> <MiB>` writes the
//! benchmark's disk image (`common::make_image`: the generator of `emrest_core::demo::fill_disk`,
//! seed 42).
//!
//! Measured (2 shared cores, 64 MiB of text; speeds are one core's):
//!
//! | level | dict | stored | compress  | 652 MB of text |
//! |-------|------|--------|-----------|----------------|
//! | 1     | no   | 24.6%  | ~300 MB/s | 160.5 MB       |
//! | 3     | no   | 22.5%  | ~320 MB/s | 146.8 MB       |
//! | 1     | yes  | 23.1%  | ~300 MB/s | 150.9 MB       |
//! | 3     | yes  | 20.9%  | ~330 MB/s | 136.8 MB (what the repository uses) |
//! | 4–7   | yes  | 21.0–22.0% | 55–340 MB/s | 136.9–143.6 MB |
//! | 8     | yes  | 20.5%  | ~35 MB/s  | 133.6 MB       |
//! | 9     | yes  | 19.2%  | ~28 MB/s  | 125 MB         |
//! | 12    | yes  | 17.9%  | ~14 MB/s  | 117 MB         |
//! | 19    | yes  | 16.5%  | ~5 MB/s   | 108 MB         |
//!
//! Dictionaries of 16–110 KiB trained on 32 or 256 samples stay within 20.88–21.14% at
//! level 3; frames without the content size and dictionary ID fields save ~5 bytes each.

use std::time::Instant;

mod common;

use common::{fill_text, make_image, Prng};

/// Text of the 4 GiB benchmark image's compressible chunks, in MB.
const IMAGE_TEXT_MB: f64 = 651.7;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--image") {
        let (Some(path), Some(mib)) = (args.get(1), args.get(2)) else {
            return Err("usage: zstd_levels --image <path> <MiB>".into());
        };
        return Ok(make_image(
            std::path::Path::new(path),
            mib.parse::<u64>()? << 20,
            42,
        )?);
    }
    let mib: usize = args.first().map_or(Ok(64), |a| a.parse())?;
    let levels: Vec<i32> = match args.get(1) {
        Some(l) => l.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![1, 3, 9],
    };
    let dict_kib: usize = args.get(2).map_or(Ok(16), |a| a.parse())?;
    let samples: usize = args.get(3).map_or(Ok(32), |a| a.parse())?;

    let mut rng = Prng(0x1234_5678);
    let mut text = vec![0u8; mib << 20];
    for region in text.chunks_mut(1 << 20) {
        fill_text(&mut rng, region);
    }
    let chunks: Vec<&[u8]> = text.chunks(16 << 10).collect();
    let samples = samples.min(chunks.len());
    let t = Instant::now();
    let dict = zstd::dict::from_continuous(
        &chunks[..samples].concat(),
        &vec![16 << 10; samples],
        dict_kib << 10,
    )?;
    println!(
        "{mib} MiB of text in 16 KiB frames; dictionary {} bytes from {samples} samples in {:.0?}",
        dict.len(),
        t.elapsed()
    );
    for &level in &levels {
        for use_dict in [false, true] {
            let (mut c, mut d) = if use_dict {
                (
                    zstd::bulk::Compressor::with_dictionary(level, &dict)?,
                    zstd::bulk::Decompressor::with_dictionary(&dict)?,
                )
            } else {
                (
                    zstd::bulk::Compressor::new(level)?,
                    zstd::bulk::Decompressor::new()?,
                )
            };
            let mut out = vec![0u8; 20 << 10];
            let mut frames = Vec::with_capacity(chunks.len());
            let t = Instant::now();
            for ch in &chunks {
                let n = c.compress_to_buffer(ch, &mut out)?;
                frames.push(out[..n].to_vec());
            }
            let compress = t.elapsed().as_secs_f64();
            let mut back = vec![0u8; 16 << 10];
            let t = Instant::now();
            for (f, ch) in frames.iter().zip(&chunks) {
                let n = d.decompress_to_buffer(f, &mut back)?;
                if back[..n] != **ch {
                    return Err(format!("level {level}: a frame does not round-trip").into());
                }
            }
            let decompress = t.elapsed().as_secs_f64();
            let stored: usize = frames.iter().map(Vec::len).sum();
            let ratio = stored as f64 / text.len() as f64;
            let mbs = text.len() as f64 / 1e6;
            println!(
                "level {level:>3} dict {:<3}: {:>6.3}%  compress {:>4.0} MB/s  decompress {:>5.0} MB/s  \
                 image's text {:>6.2} MB in {:>5.2} s of CPU",
                if use_dict { "yes" } else { "no" },
                100.0 * ratio,
                mbs / compress,
                mbs / decompress,
                IMAGE_TEXT_MB * ratio,
                IMAGE_TEXT_MB / (mbs / compress),
            );
        }
    }
    Ok(())
}
