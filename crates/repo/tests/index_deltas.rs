//! Indexes of incremental points stored as their changes against the previous point's index:
//! they load equal to what was stored, stay small, survive their parent's deletion and are
//! refused (never used) when read against anything but their own parent.

use std::fs;
use std::path::Path;
use std::sync::Arc;

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

/// Stores "a" whole, "b" as a delta of it and "c" of "b", each `n` digests changed from the
/// one before; returns the three as stored.
fn chain(repo: &Repository, n: usize) -> (DiskIndex, DiskIndex, DiskIndex) {
    let a = base_index(1);
    let b = changed(&a, n, 2);
    let c = changed(&b, n, 3);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    repo.put_index_after("c", &c, Some("b")).unwrap();
    (a, b, c)
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
    let (a, b, c) = chain(&repo, 40);
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
    let (_, b, c) = chain(&repo, 10);
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

/// Writes `index` under `name` behind the repository's back, as another process would: a new
/// file renamed over the old one.
fn replace_behind_its_back(dir: &Path, name: &str, index: &DiskIndex) {
    let other = open_repo(dir);
    other.put_index("scratch", index).unwrap();
    let indexes = dir.join("repo/indexes");
    fs::rename(
        indexes.join("scratch.idx"),
        indexes.join(format!("{name}.idx")),
    )
    .unwrap();
}

#[test]
fn a_cached_index_is_shared_and_equals_a_fresh_read() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    let b = changed(&a, 40, 2);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    let first = repo.get_index_shared("b").unwrap();
    let second = repo.get_index_shared("b").unwrap();
    // The second load is the same allocation: the files were not read again.
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(*first, b);
    // A handle that never read it gets the same index from the files.
    assert_eq!(open_repo(dir.path()).get_index("b").unwrap(), *first);
    assert_eq!(repo.get_index("b").unwrap(), b);
}

#[test]
fn a_deleted_or_replaced_index_is_not_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    let b = changed(&a, 40, 2);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    repo.get_index_shared("a").unwrap();
    repo.get_index_shared("b").unwrap();
    // Deleted through the repository.
    repo.delete_index("b").unwrap();
    assert!(matches!(
        repo.get_index_shared("b"),
        Err(RepoError::IndexMissing { .. })
    ));
    // Removed behind its back.
    fs::remove_file(dir.path().join("repo/indexes/a.idx")).unwrap();
    assert!(matches!(
        repo.get_index("a"),
        Err(RepoError::IndexMissing { .. })
    ));
    // Stored again under the same name, through the repository and behind its back.
    let other = base_index(2);
    repo.put_index("a", &a).unwrap();
    assert_eq!(*repo.get_index_shared("a").unwrap(), a);
    repo.put_index("a", &other).unwrap();
    assert_eq!(*repo.get_index_shared("a").unwrap(), other);
    replace_behind_its_back(dir.path(), "a", &a);
    assert_eq!(*repo.get_index_shared("a").unwrap(), a);
}

#[test]
fn a_cached_delta_is_refused_once_its_parent_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let a = base_index(1);
    let b = changed(&a, 10, 2);
    repo.put_index("a", &a).unwrap();
    repo.put_index_after("b", &b, Some("a")).unwrap();
    assert_eq!(*repo.get_index_shared("b").unwrap(), b);
    // The parent replaced through the repository: b no longer loads.
    repo.put_index("a", &changed(&a, 1, 7)).unwrap();
    assert!(matches!(
        repo.get_index_shared("b"),
        Err(RepoError::IndexCorrupt { .. })
    ));
    // The parent back as it was, then replaced behind the repository's back.
    repo.put_index("a", &a).unwrap();
    assert_eq!(*repo.get_index_shared("b").unwrap(), b);
    replace_behind_its_back(dir.path(), "a", &changed(&a, 1, 8));
    assert!(matches!(
        repo.get_index_shared("b"),
        Err(RepoError::IndexCorrupt { .. })
    ));
}

#[test]
fn cached_children_read_right_after_their_parent_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let (_, b, c) = chain(&repo, 10);
    for name in ["a", "b", "c"] {
        repo.get_index_shared(name).unwrap();
    }
    // b is rebased (stored whole), c stays a delta of b: both read as they were stored.
    repo.delete_index("a").unwrap();
    assert_eq!(*repo.get_index_shared("b").unwrap(), b);
    assert_eq!(*repo.get_index_shared("c").unwrap(), c);
    assert_eq!(file_len(dir.path(), "b"), whole_len(&b));
    repo.delete_index("b").unwrap();
    assert_eq!(*repo.get_index_shared("c").unwrap(), c);
    assert_eq!(file_len(dir.path(), "c"), whole_len(&c));
    // And from the files alone.
    assert_eq!(open_repo(dir.path()).get_index("c").unwrap(), c);
}

#[test]
fn the_cache_keeps_a_bounded_number_of_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_repo(dir.path());
    let names: Vec<String> = (0..20).map(|k| format!("i{k}")).collect();
    for (k, name) in names.iter().enumerate() {
        repo.put_index(name, &base_index(k as u32)).unwrap();
    }
    let first: Vec<Arc<DiskIndex>> = names
        .iter()
        .map(|n| repo.get_index_shared(n).unwrap())
        .collect();
    // The last loaded are kept, the first ones were let go (a new allocation each).
    let again = repo.get_index_shared(&names[19]).unwrap();
    assert!(Arc::ptr_eq(&first[19], &again));
    let again = repo.get_index_shared(&names[0]).unwrap();
    assert!(!Arc::ptr_eq(&first[0], &again));
    assert_eq!(*again, base_index(0));
}
