//! The `local` driver: an inventory kept in one folder, VMs as folders of raw sparse
//! disk images.
//!
//! Layout under the folder given to [`LocalInventory::open`]:
//!
//! ```text
//! <root uuid>/root.json                 id, name, kind, unique_id, ref counters,
//!                                       datastores, storage profiles, templates
//! <root uuid>/ds-<n>/                   one folder per datastore (never named after
//!                                       user input or a ref)
//! <root uuid>/ds-<n>/<vm uuid>/vm.json  ref, name, storage profile, power, disks
//! <root uuid>/ds-<n>/<vm uuid>/disk-<i>.img     raw sparse disk images
//! <root uuid>/ds-<n>/<vm uuid>/disk-<i>.img.cbt changed-block tracking (see `cbt`)
//! <root uuid>/ds-<n>/<vm uuid>/replace.json     pending disk swap (rolled forward at open)
//! <root uuid>/ds-<n>/.staging/<uuid>.img        staged disks being restored
//! <root uuid>/ds-<n>/.staging/<uuid>.vm/        a VM being assembled
//! <root uuid>/ds-<n>/.staging/<uuid>.deleted/   a VM being deleted
//! .tmp-<uuid>/                          a root being created
//! ```
//!
//! Durability: JSON records are written to a temporary name, fsynced, renamed and their
//! folder fsynced. A VM appears by renaming a complete folder out of `.staging`, and
//! disappears by renaming it back in before removal, so a crash never leaves half a VM.
//! Disk swaps are journalled in `replace.json` after the staged images are fsynced (by
//! `replace_disks`; `replace_disks_unflushed` leaves that to a caller that journals the disks'
//! content itself), then each replaced disk is removed and the image renamed in its place; an
//! interrupted swap is completed the next time the inventory is opened. Leftovers in `.staging` are removed by
//! [`Inventory::clean_staging`].
//!
//! One process owns the folder; a mutex serialises changes within it. Names from API
//! users are only stored inside the JSON records, never used as paths.

mod cbt;
mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::cbt::ChangedBlocks;
use crate::error::PlatformError;
use crate::inventory::Inventory;
use crate::model::{
    DatastoreInfo, DiskInfo, PlatformKind, PowerState, RootInfo, StagedDisk, StorageProfileInfo,
    TemplateInfo, VmInfo, VmKey,
};
use crate::names::{validate_disk_name, validate_name};
use crate::urn::{hierarchy_obj_ref, parse_hyphenated_uuid, types};
use store::{
    allocated_bytes, create_sparse, read_json, remove_any, sync_dir, write_json_atomic,
    DatastoreConfig, DiskConfig, NamedRef, ReplaceEntry, ReplaceJournal, RootConfig, VmConfig,
    FORMAT, IMG_EXT, REPLACE_FILE, ROOT_FILE, STAGING_DIR, TMP_MARK, VM_FILE,
};

/// First number handed out for `vm-<n>`, `datastore-<n>` and `volume-<n>` refs.
const FIRST_REF: u64 = 1001;
/// Prefix of Cloud Director VM refs.
const VCLOUD_VM_PREFIX: &str = "urn:vcloud:vm:";
/// Prefix of the folders in which roots are assembled.
const ROOT_TMP_PREFIX: &str = ".tmp-";

/// An [`Inventory`] kept in a local folder; see the module documentation for the layout.
#[derive(Debug)]
pub struct LocalInventory {
    dir: PathBuf,
    state: Mutex<State>,
    /// Changed-block tracking of the disks written or checkpointed since open, by image path.
    trackers: Mutex<HashMap<PathBuf, cbt::Tracker>>,
}

/// Everything known about the folder, loaded at open and kept in step with the disk.
#[derive(Debug, Default)]
struct State {
    roots: BTreeMap<Uuid, RootState>,
    /// Staging files handed out and not yet consumed or discarded; `clean_staging` spares them.
    live: HashSet<PathBuf>,
}

#[derive(Debug)]
struct RootState {
    dir: PathBuf,
    config: RootConfig,
    /// VMs by object ref.
    vms: BTreeMap<String, VmRecord>,
}

#[derive(Debug)]
struct VmRecord {
    /// Object ref of the datastore.
    datastore: String,
    dir: PathBuf,
    config: VmConfig,
}

impl RootState {
    fn info(&self) -> RootInfo {
        RootInfo {
            id: self.config.id,
            name: self.config.name.clone(),
            kind: self.config.kind,
            unique_id: self.config.unique_id.clone(),
        }
    }

    fn urn(&self, type_: &str, object_ref: &str) -> String {
        hierarchy_obj_ref(self.config.kind, type_, self.config.id, object_ref)
    }

    fn datastore(&self, object_ref: &str) -> Result<&DatastoreConfig, PlatformError> {
        self.config
            .datastores
            .iter()
            .find(|d| d.object_ref == object_ref)
            .ok_or_else(|| PlatformError::NotFound {
                what: "datastore",
                id: self.urn(types::DATASTORE, object_ref),
            })
    }

    fn datastore_dir(&self, ds: &DatastoreConfig) -> PathBuf {
        self.dir.join(&ds.folder)
    }

    fn staging_dir(&self, ds: &DatastoreConfig) -> PathBuf {
        self.datastore_dir(ds).join(STAGING_DIR)
    }

    fn datastore_info(&self, ds: &DatastoreConfig) -> DatastoreInfo {
        DatastoreInfo {
            root: self.config.id,
            object_ref: ds.object_ref.clone(),
            name: ds.name.clone(),
            capacity: ds.capacity,
        }
    }

    fn vm_record(&self, object_ref: &str) -> Result<&VmRecord, PlatformError> {
        self.vms
            .get(object_ref)
            .ok_or_else(|| PlatformError::NotFound {
                what: "vm",
                id: self.urn(types::VM, object_ref),
            })
    }

    fn vm_info(&self, rec: &VmRecord) -> VmInfo {
        VmInfo {
            root: self.config.id,
            kind: self.config.kind,
            object_ref: rec.config.object_ref.clone(),
            name: rec.config.name.clone(),
            datastore: rec.datastore.clone(),
            storage_profile: rec.config.storage_profile.clone(),
            power: rec.config.power,
            disks: rec
                .config
                .disks
                .iter()
                .map(|d| DiskInfo {
                    name: d.name.clone(),
                    size: d.size,
                })
                .collect(),
        }
    }

    fn vm_name_in_use(&self, name: &str) -> bool {
        self.vms.values().any(|v| v.config.name == name)
    }

    fn ref_in_use(&self, object_ref: &str) -> bool {
        self.vms.contains_key(object_ref)
            || self
                .config
                .templates
                .iter()
                .any(|t| t.object_ref == object_ref)
            || self
                .config
                .datastores
                .iter()
                .any(|d| d.object_ref == object_ref)
    }

    /// Writes `config` as the root's record, then adopts it.
    fn save(&mut self, config: RootConfig) -> Result<(), PlatformError> {
        write_json_atomic(&self.dir, ROOT_FILE, &config)?;
        self.config = config;
        Ok(())
    }

    /// Fails with `NoSpace` if `extra` more bytes do not fit on the datastore.
    fn check_space(&self, ds: &DatastoreConfig, extra: u64) -> Result<(), PlatformError> {
        let Some(capacity) = ds.capacity else {
            return Ok(());
        };
        let used = allocated_bytes(&self.datastore_dir(ds))?;
        if used.saturating_add(extra) > capacity {
            return Err(PlatformError::NoSpace {
                datastore: ds.object_ref.clone(),
                needed: extra,
                free: capacity.saturating_sub(used),
            });
        }
        Ok(())
    }
}

impl State {
    fn root(&self, id: Uuid) -> Result<&RootState, PlatformError> {
        self.roots.get(&id).ok_or_else(|| root_not_found(id))
    }

    fn root_mut(&mut self, id: Uuid) -> Result<&mut RootState, PlatformError> {
        self.roots.get_mut(&id).ok_or_else(|| root_not_found(id))
    }
}

fn root_not_found(id: Uuid) -> PlatformError {
    PlatformError::NotFound {
        what: "hierarchy root",
        id: id.to_string(),
    }
}

/// Takes the next number of the root's ref counter.
fn next_number(config: &mut RootConfig) -> u64 {
    let n = config.next_ref;
    config.next_ref = n.saturating_add(1);
    n
}

/// A fresh VM (or VMware template) ref not used in the root.
fn new_vm_ref(root: &RootState, config: &mut RootConfig) -> String {
    loop {
        let candidate = match config.kind {
            PlatformKind::VMware => format!("vm-{}", next_number(config)),
            PlatformKind::HyperV => Uuid::new_v4().to_string(),
            PlatformKind::VCloud => format!("{VCLOUD_VM_PREFIX}{}", Uuid::new_v4()),
        };
        if !root.ref_in_use(&candidate) {
            return candidate;
        }
    }
}

/// Checks a caller-supplied VM ref against the platform's ref format and returns it in
/// canonical form; on VMware, moves the ref counter past it.
fn reuse_vm_ref(config: &mut RootConfig, object_ref: &str) -> Result<String, PlatformError> {
    let bad = |reason: &str| PlatformError::InvalidRef {
        value: object_ref.to_string(),
        reason: reason.to_string(),
    };
    match config.kind {
        PlatformKind::VMware => {
            let n: u64 = object_ref
                .strip_prefix("vm-")
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| bad("a vCenter VM ref is 'vm-<number>'"))?;
            if n >= config.next_ref {
                config.next_ref = n.saturating_add(1);
            }
            Ok(object_ref.to_string())
        }
        PlatformKind::HyperV => parse_hyphenated_uuid(object_ref)
            .map(|u| u.to_string())
            .ok_or_else(|| bad("a Hyper-V VM ref is a GUID")),
        PlatformKind::VCloud => object_ref
            .get(..VCLOUD_VM_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(VCLOUD_VM_PREFIX))
            .and_then(|_| parse_hyphenated_uuid(&object_ref[VCLOUD_VM_PREFIX.len()..]))
            .map(|u| format!("{VCLOUD_VM_PREFIX}{u}"))
            .ok_or_else(|| bad("a Cloud Director VM ref is 'urn:vcloud:vm:<uuid>'")),
    }
}

/// Rejects an empty-named, invalid or duplicated set of disk names.
fn validate_disk_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), PlatformError> {
    let mut seen = HashSet::new();
    for name in names {
        validate_disk_name(name)?;
        if !seen.insert(name) {
            return Err(PlatformError::InvalidName {
                name: name.to_string(),
                reason: "disk name appears twice".to_string(),
            });
        }
    }
    Ok(())
}

/// The image file name of the VM's `i`-th disk.
fn disk_file(i: usize) -> String {
    format!("disk-{i}.{IMG_EXT}")
}

/// Renames each journalled staged image over its VM disk, records the new sizes in
/// `vm.json` and removes the journal. Safe to repeat after a crash at any point.
fn apply_replace(
    vm_dir: &Path,
    staging_dir: &Path,
    journal: &ReplaceJournal,
    config: &VmConfig,
) -> Result<VmConfig, PlatformError> {
    // Renaming over a large image frees its blocks inside rename(2) when the old inode
    // has no other user: over a second per GiB on a busy disk, all of it on the restore's
    // critical path (measured with strace -T). Holding the old image open moves that work
    // to the last close, which happens on a thread of its own.
    let mut replaced = Vec::new();
    for entry in &journal.disks {
        let from = staging_dir.join(&entry.staged_file);
        let to = vm_dir.join(&entry.disk.file);
        if from.exists() {
            if let Ok(old) = File::open(&to) {
                replaced.push(old);
            }
            // Renaming over an existing file makes ext4 start writing the new file's dirty
            // pages back (`auto_da_alloc`) and the folder's fsync then waits for them: the
            // whole flush of a restore written through the page cache, inside the swap
            // (0.39 s for 800 MB here). Removed first, the old name is free and the flush
            // stays the caller's; the journal renames the staged image in after a crash.
            match fs::remove_file(&to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PlatformError::io(format!("removing {}", to.display()), e)),
            }
        }
        match fs::rename(&from, &to) {
            Ok(()) => {}
            // Already renamed before an interruption.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
            Err(e) => {
                return Err(PlatformError::io(
                    format!("renaming {} over {}", from.display(), to.display()),
                    e,
                ))
            }
        }
    }
    if !replaced.is_empty() {
        // Best effort: if no thread can be started, the files close here instead.
        let _ = std::thread::Builder::new()
            .name("free-replaced-disks".into())
            .spawn(move || drop(replaced));
    }
    sync_dir(vm_dir)?;
    sync_dir(staging_dir)?;
    let mut updated = config.clone();
    for entry in &journal.disks {
        if let Some(d) = updated.disks.iter_mut().find(|d| d.file == entry.disk.file) {
            d.size = entry.disk.size;
        }
    }
    write_json_atomic(vm_dir, VM_FILE, &updated)?;
    let journal_path = vm_dir.join(REPLACE_FILE);
    fs::remove_file(&journal_path)
        .map_err(|e| PlatformError::io(format!("removing {}", journal_path.display()), e))?;
    sync_dir(vm_dir)?;
    Ok(updated)
}

/// Refuses a guest write that does not fall inside the disk.
fn check_write_range(disk: &str, size: u64, offset: u64, len: usize) -> Result<(), PlatformError> {
    if offset.checked_add(len as u64).is_none_or(|end| end > size) {
        return Err(PlatformError::Unsupported {
            what: format!(
                "writing {len} bytes at offset {offset} of disk {disk:?}, which has {size} bytes"
            ),
        });
    }
    Ok(())
}

/// Makes a staged disk's bytes durable before it may replace anything.
fn sync_staged(staged: &[StagedDisk]) -> Result<(), PlatformError> {
    for s in staged {
        s.file
            .sync_all()
            .map_err(|e| PlatformError::io(format!("syncing {}", s.path().display()), e))?;
    }
    Ok(())
}

/// Checks that a staged disk was handed out by this inventory for this datastore and
/// still has the size it was staged with.
fn check_staged(
    live: &HashSet<PathBuf>,
    root: Uuid,
    datastore: &str,
    s: &StagedDisk,
) -> Result<(), PlatformError> {
    if s.root() != root || s.datastore() != datastore {
        return Err(PlatformError::Unsupported {
            what: format!(
                "using disk {:?} staged on datastore {} of root {} for a VM on datastore {datastore} of root {root}",
                s.disk_name,
                s.datastore(),
                s.root()
            ),
        });
    }
    if !live.contains(s.path()) {
        return Err(PlatformError::InvalidRef {
            value: s.path().display().to_string(),
            reason: "not a disk staged by this inventory".to_string(),
        });
    }
    let len = s
        .file
        .metadata()
        .map_err(|e| PlatformError::io(format!("inspecting {}", s.path().display()), e))?
        .len();
    if len != s.size {
        return Err(PlatformError::InvalidRef {
            value: s.path().display().to_string(),
            reason: format!(
                "staged image of disk {:?} is {len} bytes, staged as {} bytes",
                s.disk_name, s.size
            ),
        });
    }
    Ok(())
}

/// File name of a staged image inside its staging folder.
fn staged_file_name(s: &StagedDisk) -> Result<String, PlatformError> {
    s.path()
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| PlatformError::InvalidRef {
            value: s.path().display().to_string(),
            reason: "staged path has no file name".to_string(),
        })
}

impl LocalInventory {
    /// Opens (creating if needed) an inventory folder, completing any interrupted disk swap.
    pub fn open(root_dir: &Path) -> Result<Self, PlatformError> {
        fs::create_dir_all(root_dir)
            .map_err(|e| PlatformError::io(format!("creating {}", root_dir.display()), e))?;
        Self::load(root_dir, false)
    }

    /// Opens an inventory to look at it beside the process that writes it: nothing is created and
    /// an interrupted disk swap is left for the writer (the VM shows its disks before the swap).
    /// Only the reading methods may be used on it.
    pub fn open_read_only(root_dir: &Path) -> Result<Self, PlatformError> {
        Self::load(root_dir, true)
    }

    fn load(root_dir: &Path, read_only: bool) -> Result<Self, PlatformError> {
        let mut state = State::default();
        let entries = fs::read_dir(root_dir)
            .map_err(|e| PlatformError::io(format!("listing {}", root_dir.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| PlatformError::io(format!("listing {}", root_dir.display()), e))?;
            let Some(id) = entry.file_name().to_str().and_then(parse_hyphenated_uuid) else {
                continue;
            };
            let dir = entry.path();
            if !dir.join(ROOT_FILE).is_file() {
                continue;
            }
            let root = Self::load_root(&dir, id, read_only)?;
            state.roots.insert(id, root);
        }
        Ok(LocalInventory {
            dir: root_dir.to_path_buf(),
            state: Mutex::new(state),
            trackers: Mutex::new(HashMap::new()),
        })
    }

    fn load_root(dir: &Path, id: Uuid, read_only: bool) -> Result<RootState, PlatformError> {
        let root_file = dir.join(ROOT_FILE);
        let config: RootConfig = read_json(&root_file)?;
        if config.id != id {
            return Err(PlatformError::corrupt(
                format!("reading {}", root_file.display()),
                format!("records id {} in the folder of root {id}", config.id),
            ));
        }
        let mut vms = BTreeMap::new();
        for ds in &config.datastores {
            let ds_dir = dir.join(&ds.folder);
            if read_only && !ds_dir.is_dir() {
                continue;
            }
            fs::create_dir_all(&ds_dir)
                .map_err(|e| PlatformError::io(format!("creating {}", ds_dir.display()), e))?;
            let entries = fs::read_dir(&ds_dir)
                .map_err(|e| PlatformError::io(format!("listing {}", ds_dir.display()), e))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| PlatformError::io(format!("listing {}", ds_dir.display()), e))?;
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let vm_dir = entry.path();
                let vm_file = vm_dir.join(VM_FILE);
                if !vm_file.is_file() {
                    continue;
                }
                let mut vm: VmConfig = read_json(&vm_file)?;
                let journal_file = vm_dir.join(REPLACE_FILE);
                if journal_file.is_file() && !read_only {
                    let journal: ReplaceJournal = read_json(&journal_file)?;
                    vm = apply_replace(&vm_dir, &ds_dir.join(STAGING_DIR), &journal, &vm)?;
                }
                let object_ref = vm.object_ref.clone();
                let record = VmRecord {
                    datastore: ds.object_ref.clone(),
                    dir: vm_dir,
                    config: vm,
                };
                if let Some(other) = vms.insert(object_ref.clone(), record) {
                    return Err(PlatformError::corrupt(
                        format!("loading root {id}"),
                        format!(
                            "VM ref {object_ref} is recorded twice, also in {}",
                            other.dir.display()
                        ),
                    ));
                }
            }
        }
        Ok(RootState {
            dir: dir.to_path_buf(),
            config,
            vms,
        })
    }

    /// Path of a VM's disk image (for tools and tests; writers should use `open_disk`).
    pub fn disk_path(&self, key: &VmKey, disk: &str) -> Result<PathBuf, PlatformError> {
        let state = self.lock();
        let root = state.root(key.root)?;
        let rec = root.vm_record(&key.object_ref)?;
        Self::disk_path_in(root, rec, disk)
    }

    fn disk_path_in(
        root: &RootState,
        rec: &VmRecord,
        disk: &str,
    ) -> Result<PathBuf, PlatformError> {
        rec.config
            .disks
            .iter()
            .find(|d| d.name == disk)
            .map(|d| rec.dir.join(&d.file))
            .ok_or_else(|| PlatformError::NotFound {
                what: "disk",
                id: format!("{disk} of {}", root.urn(types::VM, &rec.config.object_ref)),
            })
    }

    fn trackers(&self) -> MutexGuard<'_, HashMap<PathBuf, cbt::Tracker>> {
        // A tracker is only marked after its write succeeded; one behind a poisoned lock is sound.
        self.trackers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The disk's size as the VM's config records it.
    fn disk_size(&self, key: &VmKey, disk: &str) -> Result<u64, PlatformError> {
        let vm = self.vm(key)?;
        vm.disks
            .iter()
            .find(|d| d.name == disk)
            .map(|d| d.size)
            .ok_or_else(|| PlatformError::NotFound {
                what: "disk",
                id: format!("{disk} of {}", vm.hierarchy_obj_ref()),
            })
    }

    /// Writes the tracking records that are behind memory (best effort: a lost record only
    /// makes tracking invalid).
    pub fn flush_tracking(&self) {
        for (path, t) in self.trackers().iter_mut() {
            if t.unsaved {
                let _ = t.save(path);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Memory is only updated after the disk, so state behind a poisoned lock is sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves a fully assembled VM folder out of staging into the datastore.
    fn publish_vm(
        assembly: &Path,
        ds_dir: &Path,
        staging: &Path,
    ) -> Result<PathBuf, PlatformError> {
        sync_dir(assembly)?;
        let target = ds_dir.join(Uuid::new_v4().to_string());
        fs::rename(assembly, &target).map_err(|e| {
            PlatformError::io(
                format!("renaming {} to {}", assembly.display(), target.display()),
                e,
            )
        })?;
        sync_dir(ds_dir)?;
        sync_dir(staging)?;
        Ok(target)
    }

    fn create_staging(dir: &Path) -> Result<(), PlatformError> {
        fs::create_dir_all(dir)
            .map_err(|e| PlatformError::io(format!("creating {}", dir.display()), e))
    }

    /// Validates `name`, lets `add` change a copy of the root's record, then saves it.
    fn add_named<T>(
        &self,
        root: Uuid,
        name: &str,
        add: impl FnOnce(&mut RootState, &mut RootConfig) -> Result<T, PlatformError>,
    ) -> Result<T, PlatformError> {
        validate_name(name)?;
        let mut state = self.lock();
        let root = state.root_mut(root)?;
        let mut config = root.config.clone();
        let added = add(root, &mut config)?;
        root.save(config)?;
        Ok(added)
    }

    /// The swap of [`Inventory::replace_disks`], once the staged data is flushed or the
    /// caller answers for it: journalled, then each staged image renamed over its disk.
    fn swap_in(&self, key: &VmKey, mut staged: Vec<StagedDisk>) -> Result<(), PlatformError> {
        let mut state = self.lock();
        let State { roots, live } = &mut *state;
        let root = roots
            .get_mut(&key.root)
            .ok_or_else(|| root_not_found(key.root))?;
        let rec = root.vm_record(&key.object_ref)?;
        let ds = root.datastore(&rec.datastore)?;
        let staging = root.staging_dir(ds);
        let mut journal = ReplaceJournal {
            format: FORMAT,
            disks: Vec::with_capacity(staged.len()),
        };
        for s in &staged {
            check_staged(live, key.root, &rec.datastore, s)?;
            let path = Self::disk_path_in(root, rec, &s.disk_name)?;
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    PlatformError::corrupt(format!("disk {}", path.display()), "no file name")
                })?;
            journal.disks.push(ReplaceEntry {
                staged_file: staged_file_name(s)?,
                disk: DiskConfig {
                    name: s.disk_name.clone(),
                    size: s.size,
                    file,
                },
            });
        }
        // From here the swap is decided: the journal lets a crashed swap be completed at
        // open, and the staged files belong to it (dropping them must not remove them).
        write_json_atomic(&rec.dir, REPLACE_FILE, &journal)?;
        for s in &mut staged {
            s.mark_consumed();
        }
        let updated = apply_replace(&rec.dir, &staging, &journal, &rec.config)?;
        for s in &staged {
            live.remove(s.path());
        }
        if let Some(rec) = root.vms.get_mut(&key.object_ref) {
            rec.config = updated;
        }
        Ok(())
    }
}

impl Drop for LocalInventory {
    fn drop(&mut self) {
        self.flush_tracking();
    }
}

impl Inventory for LocalInventory {
    fn roots(&self) -> Result<Vec<RootInfo>, PlatformError> {
        let state = self.lock();
        let mut roots: Vec<RootInfo> = state.roots.values().map(RootState::info).collect();
        roots.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        Ok(roots)
    }

    fn root(&self, id: Uuid) -> Result<RootInfo, PlatformError> {
        Ok(self.lock().root(id)?.info())
    }

    fn create_root(
        &self,
        id: Uuid,
        name: &str,
        kind: PlatformKind,
    ) -> Result<RootInfo, PlatformError> {
        validate_name(name)?;
        let mut state = self.lock();
        if state.roots.contains_key(&id) {
            return Err(PlatformError::AlreadyExists {
                what: "hierarchy root",
                id: id.to_string(),
            });
        }
        if state.roots.values().any(|r| r.config.name == name) {
            return Err(PlatformError::NameInUse {
                name: name.to_string(),
            });
        }
        let config = RootConfig {
            format: FORMAT,
            id,
            name: name.to_string(),
            kind,
            // Like a vCenter InstanceUUID (em_rest/get_hierarchyroots_id.md, UniqueId).
            unique_id: Uuid::new_v4().to_string(),
            next_ref: FIRST_REF,
            next_datastore_folder: 1,
            datastores: Vec::new(),
            storage_profiles: Vec::new(),
            templates: Vec::new(),
        };
        // Assembled aside and renamed, so a root folder always has its record.
        let tmp = self
            .dir
            .join(format!("{ROOT_TMP_PREFIX}{}", Uuid::new_v4()));
        let dir = self.dir.join(id.to_string());
        let made = fs::create_dir(&tmp)
            .map_err(|e| PlatformError::io(format!("creating {}", tmp.display()), e))
            .and_then(|()| write_json_atomic(&tmp, ROOT_FILE, &config))
            .and_then(|()| {
                fs::rename(&tmp, &dir).map_err(|e| {
                    PlatformError::io(
                        format!("renaming {} to {}", tmp.display(), dir.display()),
                        e,
                    )
                })
            })
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let root = RootState {
            dir,
            config,
            vms: BTreeMap::new(),
        };
        let info = root.info();
        state.roots.insert(id, root);
        Ok(info)
    }

    fn add_datastore(
        &self,
        root: Uuid,
        name: &str,
        capacity: Option<u64>,
    ) -> Result<DatastoreInfo, PlatformError> {
        self.add_named(root, name, |root, config| {
            if config.datastores.iter().any(|d| d.name == name) {
                return Err(PlatformError::NameInUse {
                    name: name.to_string(),
                });
            }
            let object_ref = match config.kind {
                PlatformKind::VMware => format!("datastore-{}", next_number(config)),
                PlatformKind::HyperV => format!("volume-{}", next_number(config)),
                PlatformKind::VCloud => format!("urn:vcloud:datastore:{}", Uuid::new_v4()),
            };
            let folder = format!("ds-{}", config.next_datastore_folder);
            config.next_datastore_folder += 1;
            let ds = DatastoreConfig {
                object_ref,
                name: name.to_string(),
                capacity,
                folder,
            };
            // The record is saved after this; a crash in between leaves an unused empty folder.
            let ds_dir = root.datastore_dir(&ds);
            fs::create_dir_all(&ds_dir)
                .map_err(|e| PlatformError::io(format!("creating {}", ds_dir.display()), e))?;
            sync_dir(&root.dir)?;
            let info = root.datastore_info(&ds);
            config.datastores.push(ds);
            Ok(info)
        })
    }

    fn datastores(&self, root: Uuid) -> Result<Vec<DatastoreInfo>, PlatformError> {
        let state = self.lock();
        let root = state.root(root)?;
        Ok(root
            .config
            .datastores
            .iter()
            .map(|d| root.datastore_info(d))
            .collect())
    }

    fn add_storage_profile(
        &self,
        root: Uuid,
        name: &str,
    ) -> Result<StorageProfileInfo, PlatformError> {
        self.add_named(root, name, |_, config| {
            if config.kind != PlatformKind::VCloud {
                return Err(PlatformError::Unsupported {
                    what: format!("storage profiles on a {} root", config.kind.host_type()),
                });
            }
            if config.storage_profiles.iter().any(|p| p.name == name) {
                return Err(PlatformError::NameInUse {
                    name: name.to_string(),
                });
            }
            let p = NamedRef {
                object_ref: format!("urn:vcloud:vdcstorageprofile:{}", Uuid::new_v4()),
                name: name.to_string(),
            };
            let info = StorageProfileInfo {
                root: config.id,
                object_ref: p.object_ref.clone(),
                name: p.name.clone(),
            };
            config.storage_profiles.push(p);
            Ok(info)
        })
    }

    fn storage_profiles(&self, root: Uuid) -> Result<Vec<StorageProfileInfo>, PlatformError> {
        let state = self.lock();
        let root = state.root(root)?;
        Ok(root
            .config
            .storage_profiles
            .iter()
            .map(|p| StorageProfileInfo {
                root: root.config.id,
                object_ref: p.object_ref.clone(),
                name: p.name.clone(),
            })
            .collect())
    }

    fn add_template(&self, root: Uuid, name: &str) -> Result<TemplateInfo, PlatformError> {
        self.add_named(root, name, |root, config| {
            if config.templates.iter().any(|t| t.name == name) {
                return Err(PlatformError::NameInUse {
                    name: name.to_string(),
                });
            }
            let object_ref = match config.kind {
                PlatformKind::VMware => new_vm_ref(root, config),
                PlatformKind::VCloud => format!("urn:vcloud:vapptemplate:{}", Uuid::new_v4()),
                PlatformKind::HyperV => {
                    return Err(PlatformError::Unsupported {
                        what: "templates on a HvServer root".to_string(),
                    })
                }
            };
            let t = NamedRef {
                object_ref,
                name: name.to_string(),
            };
            let info = TemplateInfo {
                root: config.id,
                object_ref: t.object_ref.clone(),
                name: t.name.clone(),
            };
            config.templates.push(t);
            Ok(info)
        })
    }

    fn templates(&self, root: Uuid) -> Result<Vec<TemplateInfo>, PlatformError> {
        let state = self.lock();
        let root = state.root(root)?;
        Ok(root
            .config
            .templates
            .iter()
            .map(|t| TemplateInfo {
                root: root.config.id,
                object_ref: t.object_ref.clone(),
                name: t.name.clone(),
            })
            .collect())
    }

    fn vms(&self) -> Result<Vec<VmInfo>, PlatformError> {
        let state = self.lock();
        let mut all: Vec<(&str, VmInfo)> = state
            .roots
            .values()
            .flat_map(|r| {
                r.vms
                    .values()
                    .map(move |v| (r.config.name.as_str(), r.vm_info(v)))
            })
            .collect();
        all.sort_by(|(ra, a), (rb, b)| {
            (ra, &a.name, a.root, &a.object_ref).cmp(&(rb, &b.name, b.root, &b.object_ref))
        });
        Ok(all.into_iter().map(|(_, v)| v).collect())
    }

    fn vm(&self, key: &VmKey) -> Result<VmInfo, PlatformError> {
        let state = self.lock();
        let root = state.root(key.root)?;
        Ok(root.vm_info(root.vm_record(&key.object_ref)?))
    }

    fn find_vm_by_name(&self, root: Uuid, name: &str) -> Result<Option<VmInfo>, PlatformError> {
        let state = self.lock();
        let root = state.root(root)?;
        Ok(root
            .vms
            .values()
            .find(|v| v.config.name == name)
            .map(|v| root.vm_info(v)))
    }

    fn create_vm(
        &self,
        root: Uuid,
        datastore: &str,
        name: &str,
        disks: &[DiskInfo],
        power: PowerState,
    ) -> Result<VmInfo, PlatformError> {
        validate_name(name)?;
        validate_disk_names(disks.iter().map(|d| d.name.as_str()))?;
        let mut state = self.lock();
        let root = state.root_mut(root)?;
        let ds = root.datastore(datastore)?.clone();
        if root.vm_name_in_use(name) {
            return Err(PlatformError::NameInUse {
                name: name.to_string(),
            });
        }
        let total = disks.iter().fold(0u64, |t, d| t.saturating_add(d.size));
        root.check_space(&ds, total)?;

        let mut config = root.config.clone();
        let object_ref = new_vm_ref(root, &mut config);
        let vm = VmConfig {
            format: FORMAT,
            object_ref: object_ref.clone(),
            name: name.to_string(),
            storage_profile: None,
            power,
            disks: disks
                .iter()
                .enumerate()
                .map(|(i, d)| DiskConfig {
                    name: d.name.clone(),
                    size: d.size,
                    file: disk_file(i),
                })
                .collect(),
        };
        // The counter is saved first: a VM on disk must never carry a ref the record could hand out again.
        root.save(config)?;
        let staging = root.staging_dir(&ds);
        let ds_dir = root.datastore_dir(&ds);
        Self::create_staging(&staging)?;
        let assembly = staging.join(format!("{}.vm", Uuid::new_v4()));
        let built = (|| {
            fs::create_dir(&assembly)
                .map_err(|e| PlatformError::io(format!("creating {}", assembly.display()), e))?;
            for d in &vm.disks {
                create_sparse(&assembly.join(&d.file), d.size)?;
            }
            write_json_atomic(&assembly, VM_FILE, &vm)?;
            Self::publish_vm(&assembly, &ds_dir, &staging)
        })();
        let vm_dir = match built {
            Ok(dir) => dir,
            Err(e) => {
                let _ = fs::remove_dir_all(&assembly);
                return Err(e);
            }
        };
        let record = VmRecord {
            datastore: ds.object_ref.clone(),
            dir: vm_dir,
            config: vm,
        };
        let info = root.vm_info(&record);
        root.vms.insert(object_ref, record);
        Ok(info)
    }

    fn delete_vm(&self, key: &VmKey) -> Result<(), PlatformError> {
        let mut state = self.lock();
        let root = state.root_mut(key.root)?;
        let rec = root.vm_record(&key.object_ref)?;
        let ds = root.datastore(&rec.datastore)?;
        let staging = root.staging_dir(ds);
        let ds_dir = root.datastore_dir(ds);
        Self::create_staging(&staging)?;
        // Renamed into staging first, so the VM vanishes at once and never half.
        let doomed = staging.join(format!("{}.deleted", Uuid::new_v4()));
        fs::rename(&rec.dir, &doomed).map_err(|e| {
            PlatformError::io(
                format!("renaming {} to {}", rec.dir.display(), doomed.display()),
                e,
            )
        })?;
        sync_dir(&ds_dir)?;
        root.vms.remove(&key.object_ref);
        // A failure here leaves a leftover that `clean_staging` removes.
        let _ = fs::remove_dir_all(&doomed);
        Ok(())
    }

    fn open_disk(&self, key: &VmKey, disk: &str, write: bool) -> Result<File, PlatformError> {
        let path = self.disk_path(key, disk)?;
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path)
            .map_err(|e| PlatformError::io(format!("opening {}", path.display()), e))
    }

    fn write_disk(
        &self,
        key: &VmKey,
        disk: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), PlatformError> {
        let size = self.disk_size(key, disk)?;
        check_write_range(disk, size, offset, bytes.len())?;
        let path = self.disk_path(key, disk)?;
        let io = |what: &str, e| PlatformError::io(format!("{what} {}", path.display()), e);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", e))?;
        let mut trackers = self.trackers();
        if !trackers.contains_key(&path) {
            if let Some(t) = cbt::Tracker::load(&path) {
                trackers.insert(path.clone(), t);
            }
        }
        let meta = file.metadata().map_err(|e| io("inspecting", e))?;
        if let Some(t) = trackers.get_mut(&path) {
            if t.valid && !t.matches(&meta) {
                t.valid = false;
            }
        }
        std::os::unix::fs::FileExt::write_all_at(&file, bytes, offset)
            .map_err(|e| io("writing", e))?;
        if let Some(t) = trackers.get_mut(&path).filter(|t| t.valid) {
            t.blocks.mark(offset, bytes.len() as u64);
            t.unsaved = true;
            if t.stamp(&file).is_err() {
                t.valid = false;
            }
        }
        Ok(())
    }

    fn changed_blocks(
        &self,
        key: &VmKey,
        disk: &str,
    ) -> Result<Option<ChangedBlocks>, PlatformError> {
        let path = self.disk_path(key, disk)?;
        let meta = fs::metadata(&path)
            .map_err(|e| PlatformError::io(format!("inspecting {}", path.display()), e))?;
        let mut trackers = self.trackers();
        if !trackers.contains_key(&path) {
            match cbt::Tracker::load(&path) {
                Some(t) => trackers.insert(path.clone(), t),
                None => return Ok(None),
            };
        }
        let Some(t) = trackers.get_mut(&path) else {
            return Ok(None);
        };
        if !t.matches(&meta) {
            t.valid = false;
        }
        if t.unsaved {
            let _ = t.save(&path);
        }
        Ok(t.valid.then(|| t.blocks.clone()))
    }

    fn checkpoint_disk(
        &self,
        key: &VmKey,
        disk: &str,
        label: &str,
    ) -> Result<Option<ChangedBlocks>, PlatformError> {
        let ended = self.changed_blocks(key, disk)?;
        let path = self.disk_path(key, disk)?;
        let io = |what: &str, e| PlatformError::io(format!("{what} {}", path.display()), e);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", e))?;
        let size = file.metadata().map_err(|e| io("inspecting", e))?.len();
        let mut t = cbt::Tracker::start(label, &file, size).map_err(|e| io("stamping", e))?;
        t.save(&path)
            .map_err(|e| io("writing the tracking record of", e))?;
        self.trackers().insert(path, t);
        Ok(ended)
    }

    fn set_power(&self, key: &VmKey, power: PowerState) -> Result<(), PlatformError> {
        let mut state = self.lock();
        let root = state.root_mut(key.root)?;
        root.vm_record(&key.object_ref)?;
        if let Some(rec) = root.vms.get_mut(&key.object_ref) {
            let mut config = rec.config.clone();
            config.power = power;
            write_json_atomic(&rec.dir, VM_FILE, &config)?;
            rec.config = config;
        }
        Ok(())
    }

    fn stage_disk(
        &self,
        root: Uuid,
        datastore: &str,
        disk_name: &str,
        size: u64,
    ) -> Result<StagedDisk, PlatformError> {
        validate_disk_name(disk_name)?;
        let mut state = self.lock();
        let State { roots, live } = &mut *state;
        let root = roots.get(&root).ok_or_else(|| root_not_found(root))?;
        let ds = root.datastore(datastore)?;
        // Checked and created under the lock, so two restores cannot both take the last bytes.
        root.check_space(ds, size)?;
        let staging = root.staging_dir(ds);
        Self::create_staging(&staging)?;
        let path = staging.join(format!("{}.{IMG_EXT}", Uuid::new_v4()));
        let file = create_sparse(&path, size)?;
        live.insert(path.clone());
        Ok(StagedDisk::new(
            root.config.id,
            &ds.object_ref,
            disk_name,
            size,
            file,
            path,
        ))
    }

    fn discard_staged(&self, staged: StagedDisk) {
        self.lock().live.remove(staged.path());
        // Dropping an unconsumed staged disk removes its file.
        drop(staged);
    }

    fn replace_disks(&self, key: &VmKey, staged: Vec<StagedDisk>) -> Result<(), PlatformError> {
        validate_disk_names(staged.iter().map(|s| s.disk_name.as_str()))?;
        // The slow part (flushing restored data) happens before taking the lock.
        sync_staged(&staged)?;
        self.swap_in(key, staged)
    }

    fn replace_disks_unflushed(
        &self,
        key: &VmKey,
        staged: Vec<StagedDisk>,
    ) -> Result<(), PlatformError> {
        validate_disk_names(staged.iter().map(|s| s.disk_name.as_str()))?;
        self.swap_in(key, staged)
    }
    fn create_vm_from_staged(
        &self,
        root: Uuid,
        datastore: &str,
        object_ref: Option<&str>,
        name: &str,
        storage_profile: Option<&str>,
        mut staged: Vec<StagedDisk>,
        power: PowerState,
    ) -> Result<VmInfo, PlatformError> {
        validate_name(name)?;
        validate_disk_names(staged.iter().map(|s| s.disk_name.as_str()))?;
        sync_staged(&staged)?;
        let mut state = self.lock();
        let State { roots, live } = &mut *state;
        let root = roots.get_mut(&root).ok_or_else(|| root_not_found(root))?;
        let ds = root.datastore(datastore)?.clone();
        if let Some(profile) = storage_profile {
            if root.config.kind != PlatformKind::VCloud {
                return Err(PlatformError::Unsupported {
                    what: format!(
                        "storage profiles on a {} root",
                        root.config.kind.host_type()
                    ),
                });
            }
            if !root
                .config
                .storage_profiles
                .iter()
                .any(|p| p.object_ref == profile)
            {
                return Err(PlatformError::NotFound {
                    what: "storage profile",
                    id: root.urn(types::ORG_VDC_STORAGE_PROFILE, profile),
                });
            }
        }
        if root.vm_name_in_use(name) {
            return Err(PlatformError::NameInUse {
                name: name.to_string(),
            });
        }
        for s in &staged {
            check_staged(live, root.config.id, &ds.object_ref, s)?;
        }
        let mut config = root.config.clone();
        let object_ref = match object_ref {
            Some(r) => {
                let r = reuse_vm_ref(&mut config, r)?;
                if root.ref_in_use(&r) {
                    return Err(PlatformError::AlreadyExists {
                        what: "vm",
                        id: root.urn(types::VM, &r),
                    });
                }
                r
            }
            None => new_vm_ref(root, &mut config),
        };
        let vm = VmConfig {
            format: FORMAT,
            object_ref: object_ref.clone(),
            name: name.to_string(),
            storage_profile: storage_profile.map(str::to_string),
            power,
            disks: staged
                .iter()
                .enumerate()
                .map(|(i, s)| DiskConfig {
                    name: s.disk_name.clone(),
                    size: s.size,
                    file: disk_file(i),
                })
                .collect(),
        };
        // The counter is saved first: a VM on disk must never carry a ref the record could hand out again.
        root.save(config)?;
        let staging = root.staging_dir(&ds);
        let ds_dir = root.datastore_dir(&ds);
        let assembly = staging.join(format!("{}.vm", Uuid::new_v4()));
        let built = (|| {
            fs::create_dir(&assembly)
                .map_err(|e| PlatformError::io(format!("creating {}", assembly.display()), e))?;
            for (s, d) in staged.iter_mut().zip(&vm.disks) {
                let to = assembly.join(&d.file);
                fs::rename(s.path(), &to).map_err(|e| {
                    PlatformError::io(
                        format!("renaming {} to {}", s.path().display(), to.display()),
                        e,
                    )
                })?;
                // Now inside the assembly folder, which is removed as a whole on failure.
                s.mark_consumed();
            }
            write_json_atomic(&assembly, VM_FILE, &vm)?;
            Self::publish_vm(&assembly, &ds_dir, &staging)
        })();
        for s in &staged {
            live.remove(s.path());
        }
        let vm_dir = match built {
            Ok(dir) => dir,
            Err(e) => {
                let _ = fs::remove_dir_all(&assembly);
                return Err(e);
            }
        };
        let record = VmRecord {
            datastore: ds.object_ref.clone(),
            dir: vm_dir,
            config: vm,
        };
        let info = root.vm_info(&record);
        root.vms.insert(object_ref, record);
        Ok(info)
    }

    fn clean_staging(&self) -> Result<usize, PlatformError> {
        let mut state = self.lock();
        let State { roots, live } = &mut *state;
        live.retain(|p| p.exists());
        let mut removed = 0;
        let mut remove = |path: &Path| -> Result<(), PlatformError> {
            remove_any(path)
                .map_err(|e| PlatformError::io(format!("removing {}", path.display()), e))?;
            removed += 1;
            Ok(())
        };
        // Roots whose creation was interrupted.
        for path in list(&self.dir)? {
            if file_name_starts(&path, ROOT_TMP_PREFIX) {
                remove(&path)?;
            }
        }
        for root in roots.values() {
            for path in list(&root.dir)? {
                if is_tmp_file(&path) {
                    remove(&path)?;
                }
            }
            for ds in &root.config.datastores {
                for path in list(&root.staging_dir(ds))? {
                    if !live.contains(&path) {
                        remove(&path)?;
                    }
                }
            }
            for rec in root.vms.values() {
                for path in list(&rec.dir)? {
                    if is_tmp_file(&path) {
                        remove(&path)?;
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// The entries of a folder; none if it does not exist.
fn list(dir: &Path) -> Result<Vec<PathBuf>, PlatformError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PlatformError::io(format!("listing {}", dir.display()), e)),
    };
    entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| PlatformError::io(format!("listing {}", dir.display()), e))
}

fn file_name_starts(path: &Path, prefix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(prefix))
}

/// A temporary file left by an interrupted [`write_json_atomic`].
fn is_tmp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(TMP_MARK))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn disk(name: &str, size: u64) -> DiskInfo {
        DiskInfo {
            name: name.to_string(),
            size,
        }
    }

    /// A crash after the journal was written (and after the first rename) is completed at open.
    #[test]
    fn an_interrupted_disk_swap_is_rolled_forward_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let inv = LocalInventory::open(tmp.path()).unwrap();
        let root = Uuid::new_v4();
        inv.create_root(root, "vc", PlatformKind::VMware).unwrap();
        let ds = inv.add_datastore(root, "ds", None).unwrap().object_ref;
        let vm = inv
            .create_vm(
                root,
                &ds,
                "web01",
                &[disk("disk-0", 4096), disk("disk-1", 4096)],
                PowerState::PoweredOff,
            )
            .unwrap();
        let key = vm.key();
        let vm_dir = inv
            .disk_path(&key, "disk-0")
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();

        let mut entries = Vec::new();
        for (name, size, data) in [("disk-0", 8192u64, b"zero"), ("disk-1", 4096, b"one!")] {
            let mut s = inv.stage_disk(root, &ds, name, size).unwrap();
            s.file.write_all(data).unwrap();
            s.file.sync_all().unwrap();
            entries.push(ReplaceEntry {
                staged_file: staged_file_name(&s).unwrap(),
                disk: DiskConfig {
                    name: name.to_string(),
                    size,
                    file: inv
                        .disk_path(&key, name)
                        .unwrap()
                        .file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                },
            });
            s.mark_consumed();
        }
        let journal = ReplaceJournal {
            format: FORMAT,
            disks: entries.clone(),
        };
        write_json_atomic(&vm_dir, REPLACE_FILE, &journal).unwrap();
        // The crash happened after the first rename.
        let staging = vm_dir.parent().unwrap().join(STAGING_DIR);
        fs::rename(
            staging.join(&entries[0].staged_file),
            vm_dir.join(&entries[0].disk.file),
        )
        .unwrap();
        drop(inv);

        let inv = LocalInventory::open(tmp.path()).unwrap();
        assert!(!vm_dir.join(REPLACE_FILE).exists());
        assert_eq!(
            inv.vm(&key).unwrap().disks,
            vec![disk("disk-0", 8192), disk("disk-1", 4096)]
        );
        for (name, data) in [("disk-0", b"zero"), ("disk-1", b"one!")] {
            let mut buf = [0u8; 4];
            inv.open_disk(&key, name, false)
                .unwrap()
                .read_exact(&mut buf)
                .unwrap();
            assert_eq!(&buf, data);
        }
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
    }

    #[test]
    fn reused_vm_refs_are_checked_and_canonicalised() {
        let mut config = RootConfig {
            format: FORMAT,
            id: Uuid::new_v4(),
            name: "r".into(),
            kind: PlatformKind::HyperV,
            unique_id: String::new(),
            next_ref: FIRST_REF,
            next_datastore_folder: 1,
            datastores: Vec::new(),
            storage_profiles: Vec::new(),
            templates: Vec::new(),
        };
        let guid = "E3E47CE3-ACE6-4F06-9AAF-F52CF2E11234";
        assert_eq!(
            reuse_vm_ref(&mut config, guid).unwrap(),
            guid.to_lowercase()
        );
        assert!(reuse_vm_ref(&mut config, "vm-12").is_err());
        config.kind = PlatformKind::VCloud;
        assert_eq!(
            reuse_vm_ref(&mut config, &format!("urn:vcloud:vm:{guid}")).unwrap(),
            format!("urn:vcloud:vm:{}", guid.to_lowercase())
        );
        assert!(reuse_vm_ref(&mut config, guid).is_err());
        config.kind = PlatformKind::VMware;
        assert!(reuse_vm_ref(&mut config, "vm-").is_err());
        assert!(reuse_vm_ref(&mut config, "vm-1x").is_err());
        assert!(reuse_vm_ref(&mut config, "datastore-1").is_err());
        assert_eq!(reuse_vm_ref(&mut config, "vm-12").unwrap(), "vm-12");
        assert_eq!(config.next_ref, FIRST_REF);
        reuse_vm_ref(&mut config, "vm-7870").unwrap();
        assert_eq!(config.next_ref, 7871);
    }
}
