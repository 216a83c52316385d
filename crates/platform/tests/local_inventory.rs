//! Behaviour of the `local` inventory driver, through the `Inventory` trait.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use emrest_platform::{
    parse_hierarchy_obj_ref, DiskInfo, Inventory, LocalInventory, PlatformError, PlatformKind,
    PowerState, VmInfo, VmKey,
};
use uuid::Uuid;

const MIB: u64 = 1024 * 1024;

fn disk(name: &str, size: u64) -> DiskInfo {
    DiskInfo {
        name: name.to_string(),
        size,
    }
}

/// An inventory with one root of `kind` and one unlimited datastore; returns (root, datastore ref).
fn setup(dir: &Path, kind: PlatformKind) -> (LocalInventory, Uuid, String) {
    let inv = LocalInventory::open(dir).unwrap();
    let root = Uuid::new_v4();
    inv.create_root(root, "host01", kind).unwrap();
    let ds = inv.add_datastore(root, "datastore1", None).unwrap();
    (inv, root, ds.object_ref)
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Files in any `.staging` folder under `dir`.
fn staging_entries(dir: &Path) -> Vec<PathBuf> {
    tree(dir)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == ".staging") && !p.ends_with(".staging"))
        .collect()
}

fn read_disk(inv: &LocalInventory, key: &VmKey, name: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    inv.open_disk(key, name, false)
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    buf
}

/// Stages `disk_name` of `size` bytes with `data` written at `offset`.
fn staged_with(
    inv: &LocalInventory,
    root: Uuid,
    ds: &str,
    disk_name: &str,
    size: u64,
    offset: u64,
    data: &[u8],
) -> emrest_platform::StagedDisk {
    let mut s = inv.stage_disk(root, ds, disk_name, size).unwrap();
    s.file.seek(SeekFrom::Start(offset)).unwrap();
    s.file.write_all(data).unwrap();
    s
}

#[test]
fn each_root_kind_gets_its_own_ref_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = LocalInventory::open(tmp.path()).unwrap();
    let (vc, hv, vcd) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let r = inv
        .create_root(vc, "vcsa.lab.local", PlatformKind::VMware)
        .unwrap();
    assert_eq!(
        (r.id, r.kind, r.kind.host_type()),
        (vc, PlatformKind::VMware, "VC")
    );
    assert!(Uuid::parse_str(&r.unique_id).is_ok());
    inv.create_root(hv, "hv01.lab.local", PlatformKind::HyperV)
        .unwrap();
    inv.create_root(vcd, "vcd.lab.local", PlatformKind::VCloud)
        .unwrap();
    let names: Vec<_> = inv.roots().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["hv01.lab.local", "vcd.lab.local", "vcsa.lab.local"]);

    // vCenter: datastore-<n>, vm-<n> from one counter starting at 1001.
    let ds = inv.add_datastore(vc, "datastore1", None).unwrap();
    assert_eq!(ds.object_ref, "datastore-1001");
    let vm = inv
        .create_vm(
            vc,
            &ds.object_ref,
            "web01",
            &[disk("disk-0", MIB)],
            PowerState::PoweredOn,
        )
        .unwrap();
    assert_eq!(vm.object_ref, "vm-1002");
    assert_eq!(
        vm.hierarchy_obj_ref(),
        format!("urn:VMware:Vm:{vc}.vm-1002")
    );
    assert_eq!(
        ds.hierarchy_obj_ref(PlatformKind::VMware),
        format!("urn:VMware:Datastore:{vc}.datastore-1001")
    );

    // Hyper-V: volume-<n>, lower-case GUID VMs.
    let vol = inv.add_datastore(hv, "D:", None).unwrap();
    assert_eq!(vol.object_ref, "volume-1001");
    let vm = inv
        .create_vm(hv, &vol.object_ref, "sql01", &[], PowerState::PoweredOff)
        .unwrap();
    assert_eq!(
        Uuid::parse_str(&vm.object_ref).unwrap().to_string(),
        vm.object_ref
    );
    let parsed = parse_hierarchy_obj_ref(&vm.hierarchy_obj_ref()).unwrap();
    assert_eq!(
        (parsed.kind, parsed.root, parsed.object_ref.as_str()),
        (PlatformKind::HyperV, hv, vm.object_ref.as_str())
    );
    assert!(matches!(
        inv.add_storage_profile(hv, "gold"),
        Err(PlatformError::Unsupported { .. })
    ));
    assert!(matches!(
        inv.add_template(hv, "t"),
        Err(PlatformError::Unsupported { .. })
    ));

    // Cloud Director: URN refs that survive a HierarchyObjRef round trip.
    let ds = inv.add_datastore(vcd, "vsan", None).unwrap();
    assert!(ds.object_ref.starts_with("urn:vcloud:datastore:"));
    let profile = inv.add_storage_profile(vcd, "Gold").unwrap();
    assert!(profile
        .object_ref
        .starts_with("urn:vcloud:vdcstorageprofile:"));
    assert_eq!(
        parse_hierarchy_obj_ref(&profile.hierarchy_obj_ref())
            .unwrap()
            .object_ref,
        profile.object_ref
    );
    let template = inv.add_template(vcd, "centos").unwrap();
    assert!(template.object_ref.starts_with("urn:vcloud:vapptemplate:"));
    let vm = inv
        .create_vm(
            vcd,
            &ds.object_ref,
            "app01",
            &[disk("disk-0", MIB)],
            PowerState::PoweredOff,
        )
        .unwrap();
    assert!(vm.object_ref.starts_with("urn:vcloud:vm:"));
    let parsed = parse_hierarchy_obj_ref(&vm.hierarchy_obj_ref()).unwrap();
    assert_eq!(
        (parsed.type_.as_str(), parsed.object_ref.as_str()),
        ("Vm", vm.object_ref.as_str())
    );
    assert_eq!(inv.storage_profiles(vcd).unwrap(), vec![profile]);
    assert_eq!(inv.templates(vcd).unwrap(), vec![template]);
}

#[test]
fn create_root_rejects_taken_ids_and_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, _) = setup(tmp.path(), PlatformKind::VMware);
    assert!(matches!(
        inv.create_root(root, "other", PlatformKind::VMware),
        Err(PlatformError::AlreadyExists { .. })
    ));
    assert!(matches!(
        inv.create_root(Uuid::new_v4(), "host01", PlatformKind::HyperV),
        Err(PlatformError::NameInUse { .. })
    ));
    assert!(matches!(
        inv.add_datastore(root, "datastore1", None),
        Err(PlatformError::NameInUse { .. })
    ));
}

#[test]
fn names_with_path_traversal_are_rejected_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let before = tree(tmp.path());
    for bad in [
        "../../etc",
        "..",
        ".",
        "",
        "a/b",
        "a\\b",
        "evil\n",
        &"x".repeat(129),
    ] {
        let invalid =
            |r: Result<_, PlatformError>| matches!(r, Err(PlatformError::InvalidName { .. }));
        assert!(
            invalid(
                inv.create_vm(root, &ds, bad, &[], PowerState::PoweredOff)
                    .map(|_| ())
            ),
            "{bad:?}"
        );
        assert!(invalid(
            inv.create_vm(root, &ds, "ok", &[disk(bad, 1)], PowerState::PoweredOff)
                .map(|_| ())
        ));
        assert!(invalid(
            inv.create_root(Uuid::new_v4(), bad, PlatformKind::VMware)
                .map(|_| ())
        ));
        assert!(invalid(inv.add_datastore(root, bad, None).map(|_| ())));
        assert!(invalid(inv.stage_disk(root, &ds, bad, 1).map(|_| ())));
    }
    assert_eq!(tree(tmp.path()), before);
    assert!(inv.vms().unwrap().is_empty());
}

#[test]
fn duplicate_disk_names_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let err = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", 1), disk("disk-0", 2)],
            PowerState::PoweredOff,
        )
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::InvalidName { ref reason, .. } if reason.contains("twice"))
    );
}

#[test]
fn create_vm_makes_sparse_zero_disks_of_the_requested_size() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let size = 64 * MIB;
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", size), disk("disk-1", 4096)],
            PowerState::PoweredOff,
        )
        .unwrap();
    assert_eq!(vm.disks, vec![disk("disk-0", size), disk("disk-1", 4096)]);
    let path = inv.disk_path(&vm.key(), "disk-0").unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), size);
    assert!(
        meta.blocks() * 512 < size / 8,
        "disk is not sparse: {} blocks",
        meta.blocks()
    );
    let bytes = read_disk(&inv, &vm.key(), "disk-0");
    assert_eq!(bytes.len() as u64, size);
    assert!(bytes.iter().all(|&b| b == 0));
    // Folders are named by generated ids, not by the VM name.
    assert!(!path.to_string_lossy().contains("web01"));
    assert!(staging_entries(tmp.path()).is_empty());
}

#[test]
fn lookups_name_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let key = VmKey {
        root,
        object_ref: "vm-4242".into(),
    };
    match inv.vm(&key) {
        Err(PlatformError::NotFound { what: "vm", id }) => {
            assert_eq!(id, format!("urn:VMware:Vm:{root}.vm-4242"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        inv.root(Uuid::new_v4()),
        Err(PlatformError::NotFound {
            what: "hierarchy root",
            ..
        })
    ));
    assert!(matches!(
        inv.create_vm(root, "datastore-9", "x", &[], PowerState::PoweredOff),
        Err(PlatformError::NotFound {
            what: "datastore",
            ..
        })
    ));
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", 1)],
            PowerState::PoweredOff,
        )
        .unwrap();
    assert!(matches!(
        inv.open_disk(&vm.key(), "disk-9", false),
        Err(PlatformError::NotFound { what: "disk", .. })
    ));
    assert_eq!(inv.find_vm_by_name(root, "web01").unwrap(), Some(vm));
    assert_eq!(inv.find_vm_by_name(root, "nope").unwrap(), None);
}

#[test]
fn vm_names_are_unique_within_a_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    inv.create_vm(root, &ds, "web01", &[], PowerState::PoweredOff)
        .unwrap();
    assert!(matches!(
        inv.create_vm(root, &ds, "web01", &[], PowerState::PoweredOff),
        Err(PlatformError::NameInUse { ref name }) if name == "web01"
    ));
    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    let path = staged.path().to_path_buf();
    assert!(matches!(
        inv.create_vm_from_staged(
            root,
            &ds,
            None,
            "web01",
            None,
            vec![staged],
            PowerState::PoweredOff
        ),
        Err(PlatformError::NameInUse { .. })
    ));
    // The refused staged disk was dropped, and with it its file.
    assert!(!path.exists());
    // Another root may reuse the name.
    let other = Uuid::new_v4();
    inv.create_root(other, "host02", PlatformKind::VMware)
        .unwrap();
    let ds2 = inv.add_datastore(other, "datastore1", None).unwrap();
    inv.create_vm(other, &ds2.object_ref, "web01", &[], PowerState::PoweredOff)
        .unwrap();
}

#[test]
fn replace_disks_gives_the_vm_the_staged_bytes_and_leaves_no_staging_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", MIB), disk("disk-1", MIB)],
            PowerState::PoweredOn,
        )
        .unwrap();
    let key = vm.key();
    inv.open_disk(&key, "disk-1", true)
        .unwrap()
        .write_all(b"keep me")
        .unwrap();

    let staged = staged_with(&inv, root, &ds, "disk-0", 2 * MIB, MIB + 5, b"restored");
    assert_eq!(staging_entries(tmp.path()).len(), 1);
    inv.replace_disks(&key, vec![staged]).unwrap();

    let bytes = read_disk(&inv, &key, "disk-0");
    assert_eq!(bytes.len() as u64, 2 * MIB);
    assert_eq!(&bytes[(MIB + 5) as usize..(MIB + 13) as usize], b"restored");
    assert!(bytes[..(MIB + 5) as usize].iter().all(|&b| b == 0));
    assert_eq!(&read_disk(&inv, &key, "disk-1")[..7], b"keep me");
    assert_eq!(
        inv.vm(&key).unwrap().disks,
        vec![disk("disk-0", 2 * MIB), disk("disk-1", MIB)]
    );
    assert!(staging_entries(tmp.path()).is_empty());
    assert!(!tree(tmp.path()).iter().any(|p| p.ends_with("replace.json")));
    assert_eq!(inv.clean_staging().unwrap(), 0);

    // The new size is on disk, not only in memory.
    let reopened = LocalInventory::open(tmp.path()).unwrap();
    assert_eq!(reopened.vm(&key).unwrap().disks[0], disk("disk-0", 2 * MIB));
}

#[test]
fn replace_disks_with_an_unknown_disk_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", 4096)],
            PowerState::PoweredOff,
        )
        .unwrap();
    inv.open_disk(&vm.key(), "disk-0", true)
        .unwrap()
        .write_all(b"original")
        .unwrap();
    let good = staged_with(&inv, root, &ds, "disk-0", 4096, 0, b"restored");
    let stray = inv.stage_disk(root, &ds, "disk-7", 4096).unwrap();
    assert!(matches!(
        inv.replace_disks(&vm.key(), vec![good, stray]),
        Err(PlatformError::NotFound { what: "disk", .. })
    ));
    assert_eq!(&read_disk(&inv, &vm.key(), "disk-0")[..8], b"original");
    assert!(staging_entries(tmp.path()).is_empty());
}

#[test]
fn a_disk_staged_on_another_datastore_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let other = inv.add_datastore(root, "datastore2", None).unwrap();
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", 4096)],
            PowerState::PoweredOff,
        )
        .unwrap();
    let staged = inv
        .stage_disk(root, &other.object_ref, "disk-0", 4096)
        .unwrap();
    assert!(matches!(
        inv.replace_disks(&vm.key(), vec![staged]),
        Err(PlatformError::Unsupported { .. })
    ));
}

#[test]
fn create_vm_from_staged_registers_a_new_vm() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let original = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", MIB)],
            PowerState::PoweredOn,
        )
        .unwrap();
    let staged = staged_with(&inv, root, &ds, "disk-0", MIB, 512, b"copy");
    let copy = inv
        .create_vm_from_staged(
            root,
            &ds,
            None,
            "web01_restored",
            None,
            vec![staged],
            PowerState::PoweredOn,
        )
        .unwrap();
    assert_ne!(copy.object_ref, original.object_ref);
    assert_eq!(copy.name, "web01_restored");
    assert_eq!(copy.power, PowerState::PoweredOn);
    assert_eq!(copy.datastore, ds);
    assert_eq!(copy.disks, vec![disk("disk-0", MIB)]);
    assert_eq!(&read_disk(&inv, &copy.key(), "disk-0")[512..516], b"copy");
    assert!(read_disk(&inv, &original.key(), "disk-0")
        .iter()
        .all(|&b| b == 0));
    assert!(staging_entries(tmp.path()).is_empty());
    assert_eq!(inv.vms().unwrap().len(), 2);
}

#[test]
fn create_vm_from_staged_can_reuse_the_ref_of_a_deleted_vm() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", 4096)],
            PowerState::PoweredOff,
        )
        .unwrap();

    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    assert!(matches!(
        inv.create_vm_from_staged(
            root,
            &ds,
            Some(&vm.object_ref),
            "web02",
            None,
            vec![staged],
            PowerState::PoweredOff
        ),
        Err(PlatformError::AlreadyExists { what: "vm", .. })
    ));

    inv.delete_vm(&vm.key()).unwrap();
    assert!(matches!(
        inv.vm(&vm.key()),
        Err(PlatformError::NotFound { .. })
    ));
    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    let back = inv
        .create_vm_from_staged(
            root,
            &ds,
            Some(&vm.object_ref),
            "web01",
            None,
            vec![staged],
            PowerState::PoweredOff,
        )
        .unwrap();
    assert_eq!(back.key(), vm.key());

    // A far-ahead reused ref moves the counter past it.
    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    inv.create_vm_from_staged(
        root,
        &ds,
        Some("vm-5000"),
        "old",
        None,
        vec![staged],
        PowerState::PoweredOff,
    )
    .unwrap();
    let next = inv
        .create_vm(root, &ds, "new", &[], PowerState::PoweredOff)
        .unwrap();
    assert_eq!(next.object_ref, "vm-5001");

    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    assert!(matches!(
        inv.create_vm_from_staged(
            root,
            &ds,
            Some("urn:vcloud:vm:x"),
            "bad",
            None,
            vec![staged],
            PowerState::PoweredOff
        ),
        Err(PlatformError::InvalidRef { .. })
    ));
    assert!(staging_entries(tmp.path()).is_empty());
}

#[test]
fn vcloud_vm_from_staged_carries_its_storage_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VCloud);
    let profile = inv.add_storage_profile(root, "Gold").unwrap();
    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    let vm = inv
        .create_vm_from_staged(
            root,
            &ds,
            None,
            "app01",
            Some(&profile.object_ref),
            vec![staged],
            PowerState::PoweredOff,
        )
        .unwrap();
    assert_eq!(
        vm.storage_profile.as_deref(),
        Some(profile.object_ref.as_str())
    );
    let staged = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    assert!(matches!(
        inv.create_vm_from_staged(
            root,
            &ds,
            None,
            "app02",
            Some("urn:vcloud:vdcstorageprofile:nope"),
            vec![staged],
            PowerState::PoweredOff
        ),
        Err(PlatformError::NotFound {
            what: "storage profile",
            ..
        })
    ));
}

#[test]
fn a_full_datastore_refuses_to_stage_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = LocalInventory::open(tmp.path()).unwrap();
    let root = Uuid::new_v4();
    inv.create_root(root, "vc", PlatformKind::VMware).unwrap();
    let ds = inv
        .add_datastore(root, "small", Some(10 * MIB))
        .unwrap()
        .object_ref;
    inv.create_vm(
        root,
        &ds,
        "web01",
        &[disk("disk-0", 6 * MIB)],
        PowerState::PoweredOff,
    )
    .unwrap();
    let first = inv.stage_disk(root, &ds, "disk-0", 3 * MIB).unwrap();

    match inv.stage_disk(root, &ds, "disk-0", 2 * MIB) {
        Err(PlatformError::NoSpace {
            datastore,
            needed,
            free,
        }) => {
            assert_eq!(
                (datastore.as_str(), needed, free),
                (ds.as_str(), 2 * MIB, MIB)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        inv.create_vm(
            root,
            &ds,
            "web02",
            &[disk("disk-0", 2 * MIB)],
            PowerState::PoweredOff
        ),
        Err(PlatformError::NoSpace { .. })
    ));
    assert_eq!(staging_entries(tmp.path()).len(), 1);
    inv.discard_staged(first);
    assert!(staging_entries(tmp.path()).is_empty());
    // With the staged disk gone, the space is free again.
    inv.discard_staged(inv.stage_disk(root, &ds, "disk-0", 4 * MIB).unwrap());
}

#[test]
fn clean_staging_removes_leftovers_but_spares_disks_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let in_flight = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    let staging = in_flight.path().parent().unwrap().to_path_buf();
    // What a crash leaves: a staged image, a half-assembled VM.
    fs::write(
        staging.join("0b7c1d2e-0000-4000-8000-000000000000.img"),
        b"partial",
    )
    .unwrap();
    fs::create_dir(staging.join("1b7c1d2e-0000-4000-8000-000000000000.vm")).unwrap();
    fs::write(
        staging.join("1b7c1d2e-0000-4000-8000-000000000000.vm/disk-0.img"),
        b"x",
    )
    .unwrap();

    assert_eq!(inv.clean_staging().unwrap(), 2);
    assert!(in_flight.path().exists());
    assert_eq!(staging_entries(tmp.path()).len(), 1);
    drop(in_flight);
    assert!(staging_entries(tmp.path()).is_empty());

    // After a restart nothing is in flight any more.
    let kept = inv.stage_disk(root, &ds, "disk-0", 4096).unwrap();
    let path = kept.path().to_path_buf();
    std::mem::forget(kept); // as if the process had died
    let reopened = LocalInventory::open(tmp.path()).unwrap();
    assert_eq!(reopened.clean_staging().unwrap(), 1);
    assert!(!path.exists());
}

#[test]
fn reopening_sees_the_same_inventory() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", MIB)],
            PowerState::PoweredOn,
        )
        .unwrap();
    inv.create_vm(root, &ds, "app01", &[], PowerState::PoweredOff)
        .unwrap();
    inv.open_disk(&vm.key(), "disk-0", true)
        .unwrap()
        .write_all(b"data")
        .unwrap();
    let (roots, stores, vms) = (
        inv.roots().unwrap(),
        inv.datastores(root).unwrap(),
        inv.vms().unwrap(),
    );
    drop(inv);

    let inv = LocalInventory::open(tmp.path()).unwrap();
    assert_eq!(inv.roots().unwrap(), roots);
    assert_eq!(inv.datastores(root).unwrap(), stores);
    assert_eq!(inv.vms().unwrap(), vms);
    assert_eq!(
        vms.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["app01", "web01"]
    );
    assert_eq!(&read_disk(&inv, &vm.key(), "disk-0")[..4], b"data");
    // Counters persist too: no ref is handed out twice.
    let next = inv
        .create_vm(root, &ds, "db01", &[], PowerState::PoweredOff)
        .unwrap();
    assert!(vms.iter().all(|v: &VmInfo| v.object_ref != next.object_ref));
}

#[test]
fn power_state_persists() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::HyperV);
    let vm = inv
        .create_vm(root, &ds, "web01", &[], PowerState::PoweredOff)
        .unwrap();
    inv.set_power(&vm.key(), PowerState::PoweredOn).unwrap();
    assert_eq!(inv.vm(&vm.key()).unwrap().power, PowerState::PoweredOn);
    assert_eq!(
        LocalInventory::open(tmp.path())
            .unwrap()
            .vm(&vm.key())
            .unwrap()
            .power,
        PowerState::PoweredOn
    );
    inv.set_power(&vm.key(), PowerState::PoweredOff).unwrap();
    assert_eq!(
        LocalInventory::open(tmp.path())
            .unwrap()
            .vm(&vm.key())
            .unwrap()
            .power,
        PowerState::PoweredOff
    );
}

#[test]
fn delete_vm_removes_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", MIB)],
            PowerState::PoweredOff,
        )
        .unwrap();
    let dir = inv
        .disk_path(&vm.key(), "disk-0")
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    inv.delete_vm(&vm.key()).unwrap();
    assert!(!dir.exists());
    assert!(staging_entries(tmp.path()).is_empty());
    assert!(LocalInventory::open(tmp.path())
        .unwrap()
        .vms()
        .unwrap()
        .is_empty());
}

#[test]
fn the_inventory_is_usable_as_a_shared_trait_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, root, ds) = setup(tmp.path(), PlatformKind::VMware);
    let inv: std::sync::Arc<dyn Inventory> = std::sync::Arc::new(inv);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let inv = inv.clone();
            let ds = ds.clone();
            std::thread::spawn(move || {
                inv.create_vm(
                    root,
                    &ds,
                    &format!("vm{i}"),
                    &[disk("disk-0", 4096)],
                    PowerState::PoweredOff,
                )
            })
        })
        .collect();
    let mut refs: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap().object_ref)
        .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), 4);
}

/// A VMware VM with one 1 MiB disk whose tracking was just checkpointed as "p1".
fn tracked_vm(dir: &Path) -> (LocalInventory, VmKey) {
    let (inv, root, ds) = setup(dir, PlatformKind::VMware);
    let vm = inv
        .create_vm(
            root,
            &ds,
            "web01",
            &[disk("disk-0", MIB)],
            PowerState::PoweredOn,
        )
        .unwrap();
    let key = vm.key();
    assert_eq!(
        inv.changed_blocks(&key, "disk-0").unwrap(),
        None,
        "never checkpointed"
    );
    assert_eq!(inv.checkpoint_disk(&key, "disk-0", "p1").unwrap(), None);
    (inv, key)
}

#[test]
fn writes_through_the_platform_are_tracked_across_reopen_until_the_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, key) = tracked_vm(tmp.path());
    inv.write_disk(&key, "disk-0", 5 * 4096 + 10, b"guest")
        .unwrap();
    inv.write_disk(&key, "disk-0", 9 * 4096 - 2, b"span")
        .unwrap(); // blocks 8 and 9
    inv.write_disk(&key, "disk-0", MIB - 1, b"!").unwrap();
    let cbt = inv
        .changed_blocks(&key, "disk-0")
        .unwrap()
        .expect("valid tracking");
    assert_eq!(cbt.label, "p1");
    assert_eq!(cbt.block_size, 4096);
    assert_eq!(cbt.changed().collect::<Vec<_>>(), vec![5, 8, 9, 255]);
    assert_eq!(
        &read_disk(&inv, &key, "disk-0")[5 * 4096 + 10..5 * 4096 + 15],
        b"guest"
    );
    // A write past the end is refused and changes nothing.
    assert!(inv.write_disk(&key, "disk-0", MIB - 1, b"xy").is_err());
    assert_eq!(
        fs::metadata(inv.disk_path(&key, "disk-0").unwrap())
            .unwrap()
            .len(),
        MIB
    );

    drop(inv);
    let inv = LocalInventory::open(tmp.path()).unwrap();
    let again = inv
        .changed_blocks(&key, "disk-0")
        .unwrap()
        .expect("still valid");
    assert_eq!(again, cbt);
    inv.write_disk(&key, "disk-0", 0, b"x").unwrap();
    let ended = inv
        .checkpoint_disk(&key, "disk-0", "p2")
        .unwrap()
        .expect("valid");
    assert_eq!(ended.changed().collect::<Vec<_>>(), vec![0, 5, 8, 9, 255]);
    let fresh = inv.changed_blocks(&key, "disk-0").unwrap().expect("valid");
    assert_eq!((fresh.label.as_str(), fresh.changed_count()), ("p2", 0));
}

#[test]
fn a_write_that_bypasses_the_platform_invalidates_tracking_until_the_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, key) = tracked_vm(tmp.path());
    inv.write_disk(&key, "disk-0", 0, b"tracked").unwrap();
    // Straight into the image, as a process outside emrest would.
    let path = inv.disk_path(&key, "disk-0").unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(300 * 1024)).unwrap();
    f.write_all(b"bypass").unwrap();
    drop(f);
    assert_eq!(inv.changed_blocks(&key, "disk-0").unwrap(), None);
    // Later tracked writes do not make it valid again, in this process or the next.
    inv.write_disk(&key, "disk-0", 4096, b"more").unwrap();
    assert_eq!(inv.changed_blocks(&key, "disk-0").unwrap(), None);
    drop(inv);
    let inv = LocalInventory::open(tmp.path()).unwrap();
    assert_eq!(inv.changed_blocks(&key, "disk-0").unwrap(), None);
    assert_eq!(inv.checkpoint_disk(&key, "disk-0", "p2").unwrap(), None);
    inv.write_disk(&key, "disk-0", 4096, b"after").unwrap();
    let cbt = inv
        .changed_blocks(&key, "disk-0")
        .unwrap()
        .expect("valid again");
    assert_eq!(cbt.changed().collect::<Vec<_>>(), vec![1]);

    // A resize (here: truncation from outside) invalidates it too, even across a reopen.
    drop(inv);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(MIB / 2)
        .unwrap();
    let inv = LocalInventory::open(tmp.path()).unwrap();
    assert_eq!(inv.changed_blocks(&key, "disk-0").unwrap(), None);
}
