//! Restore journals: a QuickRollback writes the restore point's blocks into the VM's own disks,
//! so a crash (SIGKILL, power loss) in the middle would leave each disk a mix of old and point
//! bytes; a full restore over the VM swaps in staged images it has not flushed. Before the first
//! change to the VM's disks the restore records, durably, which VM, which disks and which
//! restore point it is bringing them to; the record is removed once the catalog records the
//! restore's end and the disks are fsynced (after the task finished: the flush is not the
//! client's wait). Whoever finds a record later finishes the job instead of leaving the mix or
//! the unflushed swap: every journalled disk is brought to exactly the point's bytes.
//!
//! Layout: `<data folder>/rollbacks/<restore session id>.json`, written to a `.tmp-` name,
//! fsynced, renamed, and the folder fsynced. The data folder rather than beside the VM's disks,
//! because the inventory is a trait (a hypervisor's datastore is not ours to write journals in)
//! and recovery needs the repository and the catalog anyway, which live there.
//!
//! Recovery happens when the data folder is opened to write ([`crate::Core::open`]), after the
//! inventory has rolled its own disk swaps forward, and also at once when a rollback fails in
//! its write phase (an I/O error): each journalled disk of the same size as the point is
//! compared chunk by chunk with the point's index (digests) and the differing 4 KiB blocks are
//! rewritten, every needed chunk read and verified first; a disk whose size differs (restored
//! through staging by the rollback) is staged in full and swapped in. Changed-block tracking of
//! each disk is then restarted at the point, as a finished rollback does. The VM stays powered
//! off (the rollback powered it off before writing; it never powers a VM on after a failure).
//!
//! The interrupted task still reads Finished, `Success="false"`, "Interrupted", like any task a
//! crash cut short: the client that started it was told nothing else, and the session log
//! says that the VM was rolled forward to the point. When the point's data cannot be read
//! (a missing index or chunk), the journal is kept, the failure is logged loudly, and restores
//! over that VM are refused with a Conflict naming the journal until an operator repairs the
//! repository and restarts the server — rather than silently leaving a mixed disk in place.

use crate::catalog::Catalog;
use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, VmRestorePointRecord};
use emrest_platform::{Inventory, StagedDisk, VmKey};
use emrest_repo::{NoControl, Repository};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use uuid::Uuid;

/// The folder of rollback journals inside the data folder.
pub const JOURNAL_DIR: &str = "rollbacks";
/// The `format` of a journal this version writes and reads.
const FORMAT: &str = "emrest-rollback-journal/1";

/// One journalled disk: what it must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalDisk {
    /// The disk's name in the VM.
    pub name: String,
    /// The restore point's index of it in the repository.
    pub index: String,
    /// Its size at the point.
    pub size: u64,
}

/// A QuickRollback in progress, as recorded before its first in-place write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackJournal {
    /// Always [`FORMAT`].
    pub format: String,
    /// The restore session doing the rollback (also the file's name).
    pub session: Uuid,
    /// The VM restore point the disks are brought to.
    pub point: Uuid,
    /// The VM's hierarchy root.
    pub vm_root: Uuid,
    /// The VM's object ref in its root.
    pub vm_object_ref: String,
    /// The VM's name, for the logs.
    pub vm_name: String,
    /// Every disk of the point.
    pub disks: Vec<JournalDisk>,
    /// When the journal was written (Unix ms).
    pub created: i64,
}

impl RollbackJournal {
    /// The journal of a rollback of `point` by restore session `session`.
    pub fn new(session: Uuid, point: &VmRestorePointRecord) -> RollbackJournal {
        RollbackJournal {
            format: FORMAT.into(),
            session,
            point: point.id,
            vm_root: point.vm.root,
            vm_object_ref: point.vm.object_ref.clone(),
            vm_name: point.vm_name.clone(),
            disks: point
                .disks
                .iter()
                .map(|d| JournalDisk {
                    name: d.name.clone(),
                    index: d.index.clone(),
                    size: d.size,
                })
                .collect(),
            created: now_millis(),
        }
    }

    /// The VM it concerns.
    pub fn vm(&self) -> VmKey {
        VmKey {
            root: self.vm_root,
            object_ref: self.vm_object_ref.clone(),
        }
    }
}

/// The journal folder of a data folder.
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(JOURNAL_DIR)
}

fn io_err(what: String, e: std::io::Error) -> CoreError {
    CoreError::Internal(format!("{what}: {e}"))
}

fn sync_dir(dir: &Path) -> CoreResult<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(format!("fsync {}", dir.display()), e))
}

/// Write a journal durably into `dir` (created if missing): temporary name, fsync, rename,
/// fsync the folder. Returns its path.
pub fn write_journal(dir: &Path, j: &RollbackJournal) -> CoreResult<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(format!("create {}", dir.display()), e))?;
    let path = dir.join(format!("{}.json", j.session));
    let tmp = dir.join(format!(".tmp-{}.json", Uuid::new_v4()));
    let body = serde_json::to_vec_pretty(j)
        .map_err(|e| CoreError::Internal(format!("encoding a rollback journal: {e}")))?;
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(format!("write {}", path.display()), e));
    }
    sync_dir(dir)?;
    Ok(path)
}

/// Remove a journal durably (a missing one is fine).
fn remove_journal(path: &Path) -> CoreResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("remove {}", path.display()), e)),
    }
    match path.parent() {
        Some(d) => sync_dir(d),
        None => Ok(()),
    }
}

/// The journals in `dir` (temporary leftovers of an interrupted write are removed: a journal
/// not yet renamed into place was never in force, no in-place write had started).
fn list_journals(dir: &Path) -> CoreResult<Vec<(PathBuf, CoreResult<RollbackJournal>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| io_err(format!("list {}", dir.display()), e))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        let j = read_journal(&path);
        out.push((path, j));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One journal.
fn read_journal(path: &Path) -> CoreResult<RollbackJournal> {
    let b = std::fs::read(path).map_err(|e| io_err(format!("read {}", path.display()), e))?;
    let j = serde_json::from_slice::<RollbackJournal>(&b).map_err(|e| {
        CoreError::Internal(format!("{} is not a rollback journal: {e}", path.display()))
    })?;
    if j.format != FORMAT {
        return Err(CoreError::Internal(format!(
            "{} has format '{}'; this version reads '{FORMAT}'",
            path.display(),
            j.format
        )));
    }
    Ok(j)
}

/// What rolling a journal forward did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RollForward {
    /// Disks compared in place.
    pub disks_in_place: usize,
    /// Disks restored in full through staging (size changed or missing).
    pub disks_staged: usize,
    /// Chunks that still differed from the point and were rewritten.
    pub chunks_written: u64,
    /// Bytes written in place.
    pub bytes_written: u64,
}

/// Bring every disk of the journal to exactly the point's bytes and restart its tracking.
/// Every needed chunk is read and verified before the disk is written, so an unreadable point
/// fails before making the mix worse (and the journal stays).
pub fn roll_forward(
    repo: &Repository,
    inventory: &dyn Inventory,
    j: &RollbackJournal,
) -> CoreResult<RollForward> {
    let key = j.vm();
    let vm = inventory.vm(&key)?;
    let mut indexes = Vec::with_capacity(j.disks.len());
    for d in &j.disks {
        indexes.push(repo.get_index(&d.index)?);
    }
    let mut out = RollForward::default();
    let mut in_place = Vec::new();
    let mut full = Vec::new();
    for (d, index) in j.disks.iter().zip(&indexes) {
        match vm.disks.iter().find(|c| c.name == d.name) {
            Some(c) if c.size == d.size && index.disk_size == d.size => {
                let file = inventory.open_disk(&key, &d.name, true)?;
                let plan = repo.plan_restore(index, Some(&file), &NoControl)?;
                repo.check_plan(index, &plan, &NoControl)?;
                in_place.push((d, index, file, plan));
            }
            _ => full.push((d, index)),
        }
    }
    // Everything is readable: now write.
    for (d, index, file, plan) in &in_place {
        let stats = repo.apply_restore_in_place(index, plan, file, &NoControl)?;
        file.sync_all()
            .map_err(|e| io_err(format!("fsync disk {}", d.name), e))?;
        out.disks_in_place += 1;
        out.chunks_written += stats.chunks_written;
        out.bytes_written += stats.bytes_written;
    }
    let mut staged: Vec<StagedDisk> = Vec::new();
    for (d, index) in &full {
        let s = match inventory.stage_disk(key.root, &vm.datastore, &d.name, d.size) {
            Ok(s) => s,
            Err(e) => {
                staged.into_iter().for_each(|s| inventory.discard_staged(s));
                return Err(e.into());
            }
        };
        let plan = repo.plan_restore(index, None, &NoControl);
        let applied = plan.and_then(|p| repo.apply_restore(index, &p, &s.file, &NoControl));
        staged.push(s);
        if let Err(e) = applied {
            staged.into_iter().for_each(|s| inventory.discard_staged(s));
            return Err(e.into());
        }
        out.disks_staged += 1;
    }
    if !staged.is_empty() {
        inventory.replace_disks(&key, staged)?;
    }
    for d in &j.disks {
        inventory
            .checkpoint_disk(&key, &d.name, &d.index)
            .map_err(CoreError::from)?;
    }
    Ok(out)
}

/// Fsync every named disk of `vm`: what a restore wrote through the page cache is durable
/// afterwards.
pub(crate) fn flush_disks<'a>(
    inventory: &dyn Inventory,
    vm: &VmKey,
    disks: impl IntoIterator<Item = &'a str>,
) -> CoreResult<()> {
    for name in disks {
        inventory
            .open_disk(vm, name, false)?
            .sync_all()
            .map_err(|e| io_err(format!("fsync disk {name}"), e))?;
    }
    Ok(())
}

/// VMs whose rollback journal could not be rolled forward (restores over them are refused),
/// and VMs whose finished restore is still flushing its disks.
#[derive(Debug)]
pub(crate) struct Pending {
    dir: PathBuf,
    stuck: Mutex<HashMap<VmKey, String>>,
    flushing: Mutex<HashSet<VmKey>>,
    flushed: Condvar,
}

impl Pending {
    pub(crate) fn new(data_dir: &Path) -> Pending {
        Pending {
            dir: journal_dir(data_dir),
            stuck: Mutex::new(HashMap::new()),
            flushing: Mutex::new(HashSet::new()),
            flushed: Condvar::new(),
        }
    }

    /// The VM restore points named by the journals in force: restores still flushing their
    /// disks, and journals kept after a failed roll-forward. Retention keeps these points, or
    /// a crash could leave a journal whose point is gone. Temporary files are left alone:
    /// they are journals other restores are writing.
    pub(crate) fn journalled_points(&self) -> HashSet<Uuid> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return HashSet::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".json") && !n.starts_with(".tmp-"))
            })
            .filter_map(|p| read_journal(&p).ok())
            .map(|j| j.point)
            .collect()
    }

    /// Whether the restore by `session` left a journal (it began changing the VM's disks).
    pub(crate) fn journalled(&self, session: Uuid) -> bool {
        self.dir.join(format!("{session}.json")).exists()
    }

    /// Marks `vm` as flushing the disks of a finished restore, until [`Pending::flushed`].
    pub(crate) fn flushing(&self, vm: &VmKey) {
        self.flushing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(vm.clone());
    }

    /// Ends [`Pending::flushing`] and wakes whoever waits for it.
    pub(crate) fn flushed(&self, vm: &VmKey) {
        self.flushing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(vm);
        self.flushed.notify_all();
    }

    /// Waits until no finished restore is flushing `vm`'s disks: a restore that will journal
    /// and write them must not overlap the previous one's journal (both would be rolled
    /// forward after a crash, in no particular order).
    pub(crate) fn wait_flushed(&self, vm: &VmKey) {
        let mut flushing = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        while flushing.contains(vm) {
            flushing = self
                .flushed
                .wait(flushing)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The journal folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuse a restore over a VM whose disks are left mixed by an unfinished rollback.
    pub(crate) fn check(&self, vm: &VmKey) -> CoreResult<()> {
        let stuck = self.stuck.lock().unwrap_or_else(|p| p.into_inner());
        match stuck.get(vm) {
            Some(why) => Err(CoreError::Conflict(why.clone())),
            None => Ok(()),
        }
    }

    fn mark(&self, vm: VmKey, why: String) {
        self.stuck
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(vm, why);
    }

    /// Settle one journal: roll it forward, log to its session and remove it; on failure keep
    /// it, log loudly and refuse restores over its VM. Returns whether it was rolled forward.
    fn settle(
        &self,
        repo: &Repository,
        inventory: &dyn Inventory,
        catalog: &Catalog,
        path: &Path,
        j: &RollbackJournal,
    ) -> bool {
        let log = |text: &str| {
            if let Err(e) = catalog.append_log(j.session, text, now_millis()) {
                tracing::warn!("restore session {}: cannot write log: {e}", j.session);
            }
        };
        match roll_forward(repo, inventory, j).and_then(|r| remove_journal(path).map(|()| r)) {
            Ok(r) => {
                let msg = format!(
                    "Recovery: the restore of VM '{}' was interrupted after it began changing the VM's disks, or before they were flushed; rolled forward to restore point {}: {} disks compared in place ({} chunks, {} bytes rewritten), {} restored in full; changed-block tracking restarted",
                    j.vm_name, j.point, r.disks_in_place, r.chunks_written, r.bytes_written, r.disks_staged
                );
                tracing::warn!("{msg}");
                log(&msg);
                true
            }
            Err(e) => {
                let why = format!(
                    "VM '{}' may hold a mix of its old disks and restore point {} after an interrupted quick rollback, and rolling it forward failed: {e}. The rollback journal {} is kept; repair the repository and restart the server to finish the rollback",
                    j.vm_name,
                    j.point,
                    path.display()
                );
                tracing::error!("{why}");
                log(&format!("Recovery failed: {why}"));
                self.mark(j.vm(), why);
                false
            }
        }
    }

    /// Crash recovery at open: settle every journal found. Returns (rolled forward, kept).
    pub(crate) fn recover(
        &self,
        repo: &Repository,
        inventory: &dyn Inventory,
        catalog: &Catalog,
    ) -> CoreResult<(usize, usize)> {
        let (mut done, mut kept) = (0, 0);
        for (path, j) in list_journals(&self.dir)? {
            match j {
                Ok(j) => {
                    if self.settle(repo, inventory, catalog, &path, &j) {
                        done += 1;
                    } else {
                        kept += 1;
                    }
                }
                Err(e) => {
                    // Without a readable journal the VM is unknown: nothing can be refused,
                    // but the operator must hear of it.
                    tracing::error!("rollback journal {} kept: {e}", path.display());
                    kept += 1;
                }
            }
        }
        Ok((done, kept))
    }

    /// After a restore ended in this process. A finished restore wrote its VM's disks
    /// through the page cache: they are flushed, then its journal is removed (a flush that
    /// fails is handled like a failed restore). A journal left by a restore that failed
    /// after it began writing the VM's disks is rolled forward now.
    pub(crate) fn after_restore(
        &self,
        repo: &Repository,
        inventory: &dyn Inventory,
        catalog: &Catalog,
        session: Uuid,
        succeeded: bool,
    ) {
        let path = self.dir.join(format!("{session}.json"));
        if !path.exists() {
            return;
        }
        // This journal only: listing the folder would remove the temporary files of journals
        // other restores are writing at this moment.
        let j = match read_journal(&path) {
            Ok(j) => j,
            Err(e) => return tracing::error!("{e}"),
        };
        if succeeded {
            let names = j.disks.iter().map(|d| d.name.as_str());
            match flush_disks(inventory, &j.vm(), names).and_then(|()| remove_journal(&path)) {
                Ok(()) => return,
                Err(e) => tracing::error!(
                    "restore session {session}: flushing VM '{}' failed: {e}; rolling it forward from the restore point",
                    j.vm_name
                ),
            }
        }
        self.settle(repo, inventory, catalog, &path, &j);
    }
}
