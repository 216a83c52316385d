//! Changed-block tracking of the local driver.
//!
//! Each tracked disk has a record `<disk file>.cbt` beside its image:
//!
//! | size | field                                                         |
//! |------|---------------------------------------------------------------|
//! | 8    | magic `b"EMRCBT01"`                                           |
//! | 8    | disk size (u64 LE)                                            |
//! | 8    | device of the image (u64 LE)                                  |
//! | 8    | inode of the image (u64 LE)                                   |
//! | 8    | modification time, seconds (i64 LE)                           |
//! | 4    | modification time, nanoseconds (u32 LE)                       |
//! | 4    | block size (u32 LE)                                           |
//! | 4    | label length (u32 LE), then the label (UTF-8)                 |
//! | 8×n  | the bitmap, one u64 LE word per 64 blocks                     |
//! | 32   | BLAKE3 of everything before                                   |
//!
//! After each write through the platform the image's modification time is set to a
//! stamp with random nanoseconds, and the stamp is recorded. A write that bypasses
//! the platform (or a crash between a write and the record) leaves the kernel's own
//! time on the file, a resize changes the size, a replacement changes the inode: any
//! of these no longer matches the record and tracking is invalid until the next
//! checkpoint, as hypervisors reset CBT. The record itself need not survive a crash
//! (it is written without fsync): a lost or stale record only means invalid tracking.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::store::TMP_MARK;
use crate::cbt::ChangedBlocks;

/// Tracking granularity: the guest's 4 KiB block.
pub(super) const CBT_BLOCK: u32 = 4096;
/// Suffix of tracking records.
const CBT_SUFFIX: &str = ".cbt";
/// Magic at the start of a tracking record.
const CBT_MAGIC: [u8; 8] = *b"EMRCBT01";

/// In-memory tracking state of one disk image.
#[derive(Debug)]
pub(super) struct Tracker {
    pub blocks: ChangedBlocks,
    dev: u64,
    ino: u64,
    /// The modification time this tracker last put on the image.
    stamp: (i64, u32),
    /// False once a write bypassed the platform; stays so until the next checkpoint.
    pub valid: bool,
    /// The record file is behind the in-memory state.
    pub unsaved: bool,
}

/// Path of the tracking record of the image at `disk`.
pub(super) fn record_path(disk: &Path) -> PathBuf {
    let mut name = disk.file_name().unwrap_or_default().to_os_string();
    name.push(CBT_SUFFIX);
    disk.with_file_name(name)
}

impl Tracker {
    /// Starts tracking `file` (of `size` bytes) from now, labelled `label`.
    pub(super) fn start(label: &str, file: &File, size: u64) -> std::io::Result<Tracker> {
        let meta = file.metadata()?;
        let mut t = Tracker {
            blocks: ChangedBlocks::new(label, CBT_BLOCK, size),
            dev: meta.dev(),
            ino: meta.ino(),
            stamp: (0, 0),
            valid: true,
            unsaved: true,
        };
        t.stamp(file)?;
        Ok(t)
    }

    /// True when the image is as this tracker last left it.
    pub(super) fn matches(&self, meta: &Metadata) -> bool {
        meta.len() == self.blocks.disk_size
            && meta.dev() == self.dev
            && meta.ino() == self.ino
            && (meta.mtime(), meta.mtime_nsec() as u32) == self.stamp
    }

    /// Puts a fresh stamp on the image and remembers it as the file system stored it.
    pub(super) fn stamp(&mut self, file: &File) -> std::io::Result<()> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Random nanoseconds: the kernel's own timestamps will not hit them by chance.
        let nanos = (Uuid::new_v4().as_u128() % 1_000_000_000) as u32;
        file.set_modified(UNIX_EPOCH + Duration::new(secs, nanos))?;
        let meta = file.metadata()?;
        self.stamp = (meta.mtime(), meta.mtime_nsec() as u32);
        Ok(())
    }

    /// Writes the record beside the image (temporary name, rename; no fsync, see the module).
    pub(super) fn save(&mut self, disk: &Path) -> std::io::Result<()> {
        let path = record_path(disk);
        let mut out = Vec::with_capacity(96 + self.blocks.words().len() * 8);
        out.extend_from_slice(&CBT_MAGIC);
        out.extend_from_slice(&self.blocks.disk_size.to_le_bytes());
        out.extend_from_slice(&self.dev.to_le_bytes());
        out.extend_from_slice(&self.ino.to_le_bytes());
        out.extend_from_slice(&self.stamp.0.to_le_bytes());
        out.extend_from_slice(&self.stamp.1.to_le_bytes());
        out.extend_from_slice(&self.blocks.block_size.to_le_bytes());
        let label = self.blocks.label.as_bytes();
        out.extend_from_slice(&(label.len() as u32).to_le_bytes());
        out.extend_from_slice(label);
        for w in self.blocks.words() {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let hash = blake3::hash(&out);
        out.extend_from_slice(hash.as_bytes());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}{TMP_MARK}{}", Uuid::new_v4().simple()));
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(&out)?;
            fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        self.unsaved = false;
        Ok(())
    }

    /// Loads the record of the image at `disk`; `None` when there is none or it is damaged.
    pub(super) fn load(disk: &Path) -> Option<Tracker> {
        let bytes = fs::read(record_path(disk)).ok()?;
        let (body, hash) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if blake3::hash(body).as_bytes() != hash || body.get(..8)? != CBT_MAGIC {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
        };
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?))
        };
        let disk_size = u64_at(8)?;
        let dev = u64_at(16)?;
        let ino = u64_at(24)?;
        let secs = u64_at(32)? as i64;
        let nanos = u32_at(40)?;
        let block_size = u32_at(44)?;
        let label_len = u32_at(48)? as usize;
        let label = std::str::from_utf8(body.get(52..52 + label_len)?).ok()?;
        let words: Vec<u64> = body
            .get(52 + label_len..)?
            .chunks(8)
            .map(|w| w.try_into().ok().map(u64::from_le_bytes))
            .collect::<Option<_>>()?;
        Some(Tracker {
            blocks: ChangedBlocks::from_words(label, block_size, disk_size, words)?,
            dev,
            ino,
            stamp: (secs, nanos),
            valid: true,
            unsaved: false,
        })
    }
}
