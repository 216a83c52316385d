//! The device's own limits, measured in the benchmark's run: how fast this machine's disk
//! takes new data and gives back a disk's data, with nothing else in the way (no repository
//! to read, no digests, no decompression). A full restore cannot finish before its data is on
//! the device; a rollback by digests without the disk in the page cache cannot finish before
//! the disk's data has been read. The rows built from these figures say how close emrest gets.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes per read or write: large, sequential within each piece, aligned for `O_DIRECT`.
const PIECE: usize = 4 << 20;

/// Reads or writes in flight: four per core, as the full restore's direct writers.
fn in_flight() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

/// A buffer aligned to 4 KiB, for `O_DIRECT`.
struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: the buffer is plain memory owned by this value; each thread uses its own.
unsafe impl Send for Aligned {}

impl Aligned {
    fn new(len: usize) -> io::Result<Aligned> {
        let layout = std::alloc::Layout::from_size_align(len, 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size; zeroed memory is a valid [u8].
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "aligned buffer"));
        }
        Ok(Aligned { ptr, layout })
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to layout.size() bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// Runs `each(buffer, piece)` for pieces `0..pieces` on `in_flight()` threads.
fn run(pieces: usize, each: impl Fn(&mut [u8], usize) -> io::Result<()> + Sync) -> io::Result<()> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..in_flight().min(pieces.max(1)))
            .map(|t| {
                let (next, each) = (&next, &each);
                s.spawn(move || -> io::Result<()> {
                    let mut buf = Aligned::new(PIECE)?;
                    // Bytes the host cannot take for zeros, different in each thread.
                    emrest_core::demo::Prng::new(t as u64 + 1).fill(buf.as_mut());
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= pieces {
                            return Ok(());
                        }
                        each(buf.as_mut(), k)?;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| io::Error::other("a device thread panicked"))??;
        }
        Ok(())
    })
}

/// Writes `bytes` of new data into a new file at `path` as the full restore does (the file
/// preallocated, direct writes of 4 MiB, four per core in flight, then fsync) and removes it:
/// the time the device needs to take the restore's data.
pub fn write_new(path: &Path, bytes: u64) -> io::Result<Duration> {
    // Direct writes take whole 4 KiB blocks: the last piece is rounded up to one.
    let bytes = bytes.next_multiple_of(4096);
    let pieces = bytes.div_ceil(PIECE as u64) as usize;
    let t = Instant::now();
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    // SAFETY: fallocate on an open descriptor; a refusal only leaves the writes allocating.
    unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, bytes as libc::off_t) };
    let written = run(pieces, |buf, k| {
        let at = (k * PIECE) as u64;
        let n = (bytes - at).min(PIECE as u64) as usize;
        f.write_all_at(&buf[..n], at)
    });
    let synced = written.and_then(|()| f.sync_all());
    let d = t.elapsed();
    drop(f);
    std::fs::remove_file(path)?;
    synced.map(|()| d)
}

/// The data ranges of `f` (holes left out), from `SEEK_DATA`/`SEEK_HOLE`.
fn data_ranges(f: &File, len: u64) -> Vec<(u64, u64)> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < len {
        // SAFETY: lseek on an open descriptor.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let end = if hole < 0 {
            len
        } else {
            (hole as u64).min(len)
        };
        if end > data as u64 {
            out.push((data as u64, end - data as u64));
        }
        at = end.max(data as u64 + 1);
    }
    out
}

/// Reads every data range of the file at `path` from the device, 4 MiB pieces and four per
/// core in flight, twice: with direct reads, and through the page cache (emptied of the file
/// first, each piece announced with `WILLNEED` before it is read, as the rollback by digests
/// reads). Returns the faster time (the device alone reading the disk's data) and the
/// bytes read. The file is left out of the page cache.
pub fn read_data(path: &Path) -> io::Result<(Duration, u64)> {
    let direct = read_pieces(path, true)?;
    let cached = read_pieces(path, false)?;
    evict(&File::open(path)?);
    Ok((direct.0.min(cached.0), direct.1))
}

/// Drops `f`'s pages from the page cache.
fn evict(f: &File) {
    // SAFETY: fadvise on an open descriptor; advice only.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

fn read_pieces(path: &Path, direct: bool) -> io::Result<(Duration, u64)> {
    if !direct {
        evict(&File::open(path)?);
    }
    let t = Instant::now();
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(if direct { libc::O_DIRECT } else { 0 })
        .open(path)?;
    let len = f.metadata()?.len();
    let mut pieces = Vec::new();
    for (o, l) in data_ranges(&f, len) {
        let mut at = o;
        while at < o + l {
            let n = (o + l - at).min(PIECE as u64);
            pieces.push((at, n));
            at += n;
        }
    }
    run(pieces.len(), |buf, k| {
        let (o, n) = pieces[k];
        if !direct {
            // SAFETY: as in evict().
            unsafe {
                libc::posix_fadvise(
                    f.as_raw_fd(),
                    o as libc::off_t,
                    n as libc::off_t,
                    libc::POSIX_FADV_WILLNEED,
                )
            };
        }
        // Direct reads take whole 4 KiB blocks; data ranges start on one.
        let n = (n as usize).next_multiple_of(4096).min(PIECE);
        let mut done = 0;
        while done < n {
            match f.read_at(&mut buf[done..n], o + done as u64)? {
                0 => break,
                r => done += r,
            }
        }
        Ok(())
    })?;
    Ok((t.elapsed(), pieces.iter().map(|p| p.1).sum()))
}
