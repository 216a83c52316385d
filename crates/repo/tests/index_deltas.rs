//! Indexes of incremental points stored as their changes against the previous point's index:
//! they load equal to what was stored, stay small, survive their parent's deletion and are
//! refused (never used) when read against anything but their own parent.

use std::fs;
use std::path::Path;

use emrest_repo::{ChunkDigest, DiskIndex, Durability, RepoError, Repository};

const CS: u32 = 16 * 1024;
const CHUNKS: usize = 4000;

fn open_repo(dir: &Path) -> Repository {
    Repository::open_with_chunk_size(&dir.join("repo"), Durability::NoSync, CS).unwrap()
}

/// A disk of [`CHUNKS`] chunks, every fifth a hole.
fn base_index(seed: u32) -> DiskIndex {
    DiskIndex {
        disk_size: CHUNKS as u64 * u64::from(CS),
        chunk_size: CS,
        chunks: (0..CHUNKS)
            .map(|i| {
                (i % 5 != 0)
                    .then(|| ChunkDigest::of(&[&seed.to_le_bytes()[..], &i.to_le_bytes()].concat()))
            })
            .collect(),
    }
}

/// `index` with `n` chunks changed (spread over the disk, a hole among them turned to data
/// and a data chunk turned to a hole), marked by `tag`.
fn changed(index: &DiskIndex, n: usize, tag: u8) -> DiskIndex {
    let mut next = index.clone();
    for k in 0..n {
        let i = (k * 7919 + usize::from(tag)) % CHUNKS;
        next.chunks[i] = if k == 1 {
            None
        } else {
            Some(ChunkDigest::of(&[tag, k as u8, (k >> 8) as u8]))
        };
    }
    next
}

fn file_len(dir: &Path, name: &str) -> u64 {
    fs::metadata(dir.join("repo/indexes").join(format!("{name}.idx")))
        .unwrap()
        .len()
}

#[test]
fn an_incremental_index_is_stored_as_its_changes_and_loads_equal() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    let b = changed(&a, 40, 2);
    let c = changed(&b, 40, 3);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    repo.put_index_after("c", &c, Some("b")).unwrap();
    assert_eq!(repo.get_index("a").unwrap(), a);
    assert_eq!(repo.get_index("b").unwrap(), b);
    assert_eq!(repo.get_index("c").unwrap(), c);
    // Whole: 28 + 500 map bytes + 3200 digests × 32 + 32; a delta: ~40 × 34 bytes plus its head.
    assert_eq!(file_len(dir.path(), "a"), 28 + 500 + 3200 * 32 + 32);
    for name in ["b", "c"] {
        let len = file_len(dir.path(), name);
        assert!(len < 40 * 34 + 128, "{name}.idx is {len} bytes");
    }
    // A fresh handle reads the same.
    let again = open_repo(dir.path());
    assert_eq!(again.get_index("c").unwrap(), c);
}

#[test]
fn a_large_change_or_a_missing_parent_stores_the_index_whole() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    repo.put_index("a", &a).unwrap();
    let whole = base_index(9);
    repo.put_index("whole", &whole).unwrap();
    repo.put_index_after("most-changed", &whole, Some("a"))
        .unwrap();
    assert_eq!(
        file_len(dir.path(), "most-changed"),
        file_len(dir.path(), "whole")
    );
    let b = changed(&a, 3, 2);
    repo.put_index_after("orphan", &b, Some("no-such-index"))
        .unwrap();
    assert_eq!(file_len(dir.path(), "orphan"), file_len(dir.path(), "a"));
    assert_eq!(repo.get_index("orphan").unwrap(), b);
}

#[test]
fn deleting_a_parent_stores_its_children_whole_first() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    let b = changed(&a, 10, 2);
    let c = changed(&b, 10, 3);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    repo.put_index_after("c", &c, Some("b")).unwrap();
    let c_len = file_len(dir.path(), "c");
    repo.delete_index("a").unwrap();
    assert_eq!(repo.list_indexes().unwrap(), ["b", "c"]);
    assert_eq!(repo.get_index("b").unwrap(), b);
    assert_eq!(repo.get_index("c").unwrap(), c);
    assert_eq!(file_len(dir.path(), "b"), whole_len(&b));
    assert_eq!(
        file_len(dir.path(), "c"),
        c_len,
        "the grandchild stays a delta of b"
    );
    // Deleting the middle of a chain: c is stored whole, then loads alone.
    repo.delete_index("b").unwrap();
    assert_eq!(repo.get_index("c").unwrap(), c);
    assert_eq!(file_len(dir.path(), "c"), whole_len(&c));
}

/// The size of `index` stored whole (format 2).
fn whole_len(index: &DiskIndex) -> u64 {
    (28 + index.chunks.len().div_ceil(8) + index.chunks.iter().flatten().count() * 32 + 32) as u64
}

#[test]
fn a_delta_is_refused_against_a_replaced_or_missing_parent() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    let b = changed(&a, 10, 2);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    // The parent replaced by another index of the same disk: the changes no longer give b.
    repo.put_index("a", &changed(&a, 1, 7)).unwrap();
    match repo.get_index("b") {
        Err(RepoError::IndexCorrupt { name, reason }) => {
            assert_eq!(name, "b");
            assert!(reason.contains("do not give the index"), "{reason}");
        }
        other => panic!("expected IndexCorrupt, got {other:?}"),
    }
    // The parent gone behind the repository's back: b is corrupt, naming its parent.
    fs::remove_file(dir.path().join("repo/indexes/a.idx")).unwrap();
    match repo.get_index("b") {
        Err(RepoError::IndexCorrupt { name, reason }) => {
            assert_eq!(name, "b");
            assert!(reason.contains("parent index a: missing"), "{reason}");
        }
        other => panic!("expected IndexCorrupt, got {other:?}"),
    }
}

#[test]
fn a_chain_is_stored_whole_again_past_its_maximum_depth() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let mut index = base_index(1);
    repo.put_index("p0", &index).unwrap();
    let mut wholes = vec![0];
    for k in 1..=20usize {
        index = changed(&index, 2, k as u8);
        let name = format!("p{k}");
        repo.put_index_after(&name, &index, Some(&format!("p{}", k - 1)))
            .unwrap();
        assert_eq!(repo.get_index(&name).unwrap(), index);
        if file_len(dir.path(), &name) == whole_len(&index) {
            wholes.push(k);
        }
    }
    // 16 deltas deep at most: p17 starts a new chain.
    assert_eq!(wholes, [0, 17]);
}
