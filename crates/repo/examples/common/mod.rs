//! The benchmark's disk image for the repository's examples: the generator of
//! `emrest_core::demo::fill_disk` (the image `bench/restore.sh` backs up), repeated here
//! because this crate does not depend on core.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// xorshift64*, as `emrest_core::demo::Prng`.
pub struct Prng(pub u64);

impl Prng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Random bytes: incompressible data.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "backup", "restore", "server", "disk", "error", "info", "warning", "session", "the", "of",
    "config", "user", "request", "time", "value", "ok", "job", "volume", "sector", "block",
];

/// Log-like text, as `emrest_core::demo` writes it.
pub fn fill_text(rng: &mut Prng, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let w = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize].as_bytes();
        let sep: &[u8] = if rng.next_u64().is_multiple_of(12) {
            b"\n"
        } else {
            b" "
        };
        for &b in w.iter().chain(sep) {
            if i < buf.len() {
                buf[i] = b;
                i += 1;
            }
        }
    }
}

/// Writes a `size`-byte image at `path`: 1 MiB regions, ~60% random, ~15% text, the rest
/// zeros (holes), fsynced.
pub fn make_image(path: &Path, size: u64, seed: u64) -> std::io::Result<()> {
    let f = File::create(path)?;
    f.set_len(size)?;
    let mut rng = Prng(seed);
    let region = 1u64 << 20;
    let mut buf = vec![0u8; region as usize];
    let mut off = 0;
    while off < size {
        let len = region.min(size - off) as usize;
        match rng.next_u64() % 20 {
            0..=11 => {
                rng.fill(&mut buf[..len]);
                f.write_all_at(&buf[..len], off)?;
            }
            12..=14 => {
                fill_text(&mut rng, &mut buf[..len]);
                f.write_all_at(&buf[..len], off)?;
            }
            _ => {}
        }
        off += region;
    }
    f.sync_all()
}
