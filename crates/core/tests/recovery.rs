//! Crash recovery when a data folder is opened to write: what a killed process left behind is
//! finished or removed (regressions found by the real-binary crash harness, crates/cli/tests/crash.rs).

use emrest_core::{Core, CoreConfig};
use emrest_repo::{Durability, NoControl};
use std::collections::BTreeSet;

mod common;

use common::world;

fn index_files(core: &Core) -> BTreeSet<String> {
    core.repository()
        .list_indexes()
        .expect("indexes")
        .into_iter()
        .collect()
}

#[test]
fn indexes_of_a_backup_killed_before_its_point_was_recorded_are_removed_at_open() {
    let (dir, core, _) = world(1, 1);
    let named: BTreeSet<String> = core
        .catalog()
        .all_index_names()
        .expect("names")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(index_files(&core), named);
    // What a process killed between writing a VM's indexes and recording its point leaves.
    let vm = core
        .inventory()
        .vms()
        .expect("vms")
        .into_iter()
        .find(|v| v.name == "file01")
        .expect("file01");
    let orphan = emrest_core::backup::backup_vm(&core, &vm.key(), None, &NoControl)
        .expect("back up without recording");
    assert_eq!(orphan.point.disks.len(), 2);
    assert_eq!(index_files(&core).len(), named.len() + 2);
    drop(orphan);
    drop(core);

    let (core, report) = Core::open(CoreConfig {
        durability: Durability::NoSync,
        ..CoreConfig::new(dir.path())
    })
    .expect("reopen");
    assert_eq!(report.orphan_indexes_removed, 2);
    assert_eq!(index_files(&core), named, "exactly the orphans are gone");
    assert!(core.verify_repository().expect("verify").is_empty());
    // A second open finds nothing more to remove.
    drop(core);
    let (_, report) = Core::open(CoreConfig {
        durability: Durability::NoSync,
        ..CoreConfig::new(dir.path())
    })
    .expect("reopen");
    assert_eq!(report.orphan_indexes_removed, 0);
}
