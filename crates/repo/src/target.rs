//! Where a restore writes a disk: the [`RestoreTarget`] trait and its first implementation,
//! an open [`File`] (a raw image, sparse or not).
//!
//! The restore engine (`restore.rs`) reads, writes, sizes and flushes a target only through
//! this trait, so a qcow2 image or an NBD export (QEMU's `qemu-nbd`, a hypervisor's disk)
//! plugs in without touching it. The file keeps its speed tricks behind optional methods
//! with harmless defaults: a second handle that writes around the page cache
//! ([`RestoreTarget::direct`]), preallocation, the file system's hole map and page-cache
//! advice. A target that has none of them is restored correctly, only without those gains.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Access-pattern advice for [`RestoreTarget::advise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// The range will be read soon: start reading it now.
    WillNeed,
    /// The target will be read from start to end: read ahead aggressively.
    Sequential,
}

/// A disk a restore writes into, addressed by byte offset; shared by the engine's workers.
///
/// Reads and writes are positioned (no cursor), so workers use one target at once.
pub trait RestoreTarget: Sync {
    /// The target's current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// True when the target is empty.
    fn is_empty(&self) -> io::Result<bool> {
        self.len().map(|l| l == 0)
    }

    /// Makes the target `len` bytes long; bytes past the old end read as zeros.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reads up to `buf.len()` bytes at `offset`; 0 at or past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes every completed write durable (a file: fsync; NBD: `NBD_CMD_FLUSH`).
    fn flush(&self) -> io::Result<()>;

    /// Makes `len` bytes at `offset` read as zeros, freeing their space where the target
    /// can (punching a hole); by default by writing zeros.
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        write_zeros(self, offset, len)
    }

    /// The byte ranges `[start, end)` of the first `len` bytes that may hold data, ascending;
    /// the rest read as zeros. By default everything may.
    fn data_ranges(&self, len: u64) -> Vec<(u64, u64)> {
        vec![(0, len)]
    }

    /// Tells the target how `len` bytes at `offset` (0: to the end) will be read. Advice
    /// only: the default ignores it.
    fn advise(&self, _offset: u64, _len: u64, _advice: Advice) {}

    /// Reserves space for `len` bytes at `offset` without changing the length, so later
    /// writes there overwrite rather than allocate; false when the target does not (the
    /// default). Best effort: the writes report a lack of room.
    fn preallocate(&self, _offset: u64, _len: u64) -> bool {
        false
    }

    /// A second view of the same target whose writes bypass caches (`O_DIRECT`), for full
    /// restores; it takes only writes whose buffer address, offset and length are aligned
    /// to 4 KiB and may refuse them with `EINVAL`. `None` (the default) where there is none.
    fn direct(&self) -> Option<Box<dyn RestoreTarget + '_>> {
        None
    }
}

impl<T: RestoreTarget + ?Sized> RestoreTarget for &T {
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        (**self).set_len(len)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        (**self).write_all_at(buf, offset)
    }
    fn flush(&self) -> io::Result<()> {
        (**self).flush()
    }
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        (**self).zero_range(offset, len)
    }
    fn data_ranges(&self, len: u64) -> Vec<(u64, u64)> {
        (**self).data_ranges(len)
    }
    fn advise(&self, offset: u64, len: u64, advice: Advice) {
        (**self).advise(offset, len, advice)
    }
    fn preallocate(&self, offset: u64, len: u64) -> bool {
        (**self).preallocate(offset, len)
    }
    fn direct(&self) -> Option<Box<dyn RestoreTarget + '_>> {
        (**self).direct()
    }
}

/// A raw disk image in a file (opened for reading and writing).
impl RestoreTarget for File {
    fn len(&self) -> io::Result<u64> {
        self.metadata().map(|m| m.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn flush(&self) -> io::Result<()> {
        self.sync_all()
    }

    #[cfg(target_os = "linux")]
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if let (Ok(o), Ok(l)) = (i64::try_from(offset), i64::try_from(len)) {
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            // SAFETY: fallocate on an open descriptor touches no memory of this process.
            if unsafe { libc::fallocate(self.as_raw_fd(), mode, o, l) } == 0 {
                return Ok(());
            }
        }
        // No hole punching here (or a range too large for it): write the zeros.
        write_zeros(self, offset, len)
    }

    fn data_ranges(&self, len: u64) -> Vec<(u64, u64)> {
        data_ranges(self, len)
    }

    fn advise(&self, offset: u64, len: u64, advice: Advice) {
        crate::fsutil::advise(self, offset, len, advice)
    }

    fn preallocate(&self, offset: u64, len: u64) -> bool {
        allocate(self, (offset, len))
    }

    fn direct(&self) -> Option<Box<dyn RestoreTarget + '_>> {
        open_direct(self).map(|f| Box::new(f) as Box<dyn RestoreTarget>)
    }
}

/// Writes `len` zero bytes at `offset`, a MiB at a time.
fn write_zeros<T: RestoreTarget + ?Sized>(target: &T, offset: u64, len: u64) -> io::Result<()> {
    let zeros = vec![0u8; len.min(1 << 20) as usize];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        target.write_all_at(&zeros[..n], offset + at)?;
        at += n as u64;
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `offset`; bytes past the end of `target` read as zeros.
pub(crate) fn read_padded(
    target: &dyn RestoreTarget,
    buf: &mut [u8],
    offset: u64,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match target.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[filled..].fill(0);
    Ok(())
}

/// The byte ranges `[start, end)` of `file` (of `len` bytes) that may hold data, ascending;
/// the rest are holes and read as zeros. Asked of the file system with `SEEK_DATA` /
/// `SEEK_HOLE`; where that is not supported the whole file counts as data. Moves the file's
/// cursor, which positional reads and writes do not use.
#[cfg(target_os = "linux")]
fn data_ranges(file: &File, len: u64) -> Vec<(u64, u64)> {
    use std::os::fd::AsRawFd;
    let whole = vec![(0, len)];
    let seek = |offset: u64, whence: libc::c_int| -> Option<u64> {
        let offset = libc::off_t::try_from(offset).ok()?;
        // SAFETY: the descriptor is open for the lifetime of `file`; lseek reads no memory.
        let r = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
        u64::try_from(r).ok()
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let Some(start) = seek(at, libc::SEEK_DATA) else {
            // ENXIO: no data from `at` on; anything else: no hole map, read everything.
            return match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ENXIO) => out,
                _ => whole,
            };
        };
        if start >= len {
            break;
        }
        let Some(end) = seek(start, libc::SEEK_HOLE) else {
            return whole;
        };
        let end = end.min(len);
        if end <= start {
            return whole;
        }
        out.push((start, end));
        at = end;
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn data_ranges(_file: &File, len: u64) -> Vec<(u64, u64)> {
    vec![(0, len)]
}

/// Allocates `len` bytes of `file` at `offset` without changing its size; false if refused.
#[cfg(target_os = "linux")]
fn allocate(file: &File, (offset, len): (u64, u64)) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return false;
    };
    // SAFETY: fallocate on an open descriptor touches no memory of this process.
    unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn allocate(_file: &File, _range: (u64, u64)) -> bool {
    false
}

/// A second handle on `file`'s inode opened with `O_DIRECT`, or `None` where that is refused.
#[cfg(target_os = "linux")]
fn open_direct(file: &File) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // Reopening through /proc gives an independent open file description of the same inode
    // with its own flags; the caller's handle stays buffered for the unaligned parts.
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_file: &File) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroing_a_range_of_a_file_leaves_zeros_and_the_rest_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        RestoreTarget::write_all_at(&f, &[9u8; 64 << 10], 0).unwrap();
        f.zero_range(8 << 10, 16 << 10).unwrap();
        let mut expect = vec![9u8; 64 << 10];
        expect[8 << 10..24 << 10].fill(0);
        assert_eq!(std::fs::read(&path).unwrap(), expect);
        assert_eq!(RestoreTarget::len(&f).unwrap(), 64 << 10);
        let mut buf = vec![1u8; 100];
        read_padded(&f, &mut buf, (64 << 10) - 50).unwrap();
        assert_eq!(&buf[..50], &[9u8; 50][..]);
        assert_eq!(&buf[50..], &[0u8; 50][..]);
    }
}
