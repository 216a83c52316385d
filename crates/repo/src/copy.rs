//! Copying a repository into another storage (a folder into a bucket, say), object by object.

use std::io;

use crate::error::IoContext;
use crate::storage::Storage;
use crate::{Control, RepoError, Repository};

/// What [`Repository::copy_to`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Objects written to the destination.
    pub copied: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects the destination already held with the same length (an earlier, interrupted
    /// copy): not written again.
    pub skipped: u64,
}

/// Objects are streamed through in pieces of this size.
const PIECE: u64 = 8 << 20;

impl Repository {
    /// Copies every object of this repository into `dest` that `dest` does not already hold
    /// with the same length: the config, dictionaries and packs first, then the disk indexes,
    /// then the owner mark, so the destination names no chunk it lacks at any moment and an
    /// interrupted copy resumes where it stopped. Refuses a destination that belongs to another
    /// catalog or holds a repository with another chunk size.
    pub fn copy_to(&self, dest: &dyn Storage, ctl: &dyn Control) -> Result<CopyStats, RepoError> {
        let src = self.storage.as_ref();
        let not_repo = |reason: String| RepoError::NotARepository {
            path: dest.describe("").into(),
            reason,
        };
        for key in ["config", "owner"] {
            match (src.get(key), dest.get(key)) {
                (Ok((mine, _)), Ok((theirs, _))) if mine != theirs => {
                    return Err(not_repo(format!(
                        "its {key} differs from this repository's (another repository or catalog is there)"
                    )))
                }
                (_, Err(e)) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(RepoError::io(format!("read {}", dest.describe(key)), e))
                }
                _ => {}
            }
        }
        let mut keys = src.list("").ctx(|| format!("list {}", src.describe("")))?;
        let rank = |k: &str| match k {
            "owner" => 3,
            _ if k.starts_with("indexes/") => 2,
            "config" => 0,
            _ => 1,
        };
        keys.sort_by_key(|k| rank(k));
        let there: std::collections::HashSet<String> = dest
            .list("")
            .ctx(|| format!("list {}", dest.describe("")))?
            .into_iter()
            .collect();
        let mut stats = CopyStats::default();
        let mut written: Vec<String> = Vec::new();
        for key in keys {
            if ctl.cancelled() {
                return Err(RepoError::Cancelled);
            }
            let object = src
                .open(&key)
                .ctx(|| format!("open {}", src.describe(&key)))?;
            let len = object.len();
            let same = there.contains(&key)
                && dest
                    .stat(&key)
                    .ctx(|| format!("inspect {}", dest.describe(&key)))?
                    .is_some_and(|m| m.len == len);
            if same {
                stats.skipped += 1;
                ctl.progress(len);
                continue;
            }
            let prefix = key.rsplit_once('/').map_or("", |(dir, _)| dir);
            let mut writer = dest
                .writer(&format!("{prefix}/"))
                .ctx(|| format!("write {}", dest.describe(&key)))?;
            let mut buf = vec![0u8; PIECE.min(len) as usize];
            let mut at = 0;
            while at < len {
                let n = PIECE.min(len - at) as usize;
                object
                    .read_exact_at(&mut buf[..n], at)
                    .ctx(|| format!("read {}", src.describe(&key)))?;
                writer
                    .write_all(&buf[..n])
                    .ctx(|| format!("write {}", dest.describe(&key)))?;
                at += n as u64;
                ctl.progress(n as u64);
            }
            writer
                .finish(&key)
                .ctx(|| format!("write {}", dest.describe(&key)))?;
            stats.copied += 1;
            stats.bytes += len;
            written.push(key);
        }
        let written: Vec<&str> = written.iter().map(String::as_str).collect();
        dest.sync(&written)
            .ctx(|| format!("make {} durable", dest.describe("")))?;
        Ok(stats)
    }
}
