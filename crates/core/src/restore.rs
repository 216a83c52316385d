//! Entire-VM restore: a request is planned (every reference resolved, every rule checked) before
//! anything is created, then executed on a worker thread that reports through the catalog.
//!
//! Modes (post_vmrestorepoints_id_actionrestore.md):
//! - full restore to the original VM: every disk is written into staging, and only complete,
//!   verified disks replace the VM's disks;
//! - QuickRollback: only the 4 KiB blocks that differ from the restore point are written, in
//!   place. With valid changed-block tracking the blocks it says were written get the restore
//!   point's bytes without the disk being read (only the chunks where the tracking period's
//!   starting point differs from the restore point are read and compared); without, every chunk
//!   is compared by digest. One pass reads each restore point chunk needed at most once,
//!   verified, keeping the blocks to write; only then is the VM touched, so a damaged
//!   repository fails the restore first;
//! - a new VM beside the original (KeepOriginalVM, or a VmNewName in the vCloud form): disks are
//!   staged in the chosen datastore and registered as a new VM.

use crate::catalog::vm_point_name;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use emrest_platform::{
    parse_hierarchy_obj_ref, Inventory, PlatformError, PowerState, StagedDisk, VmInfo, VmKey,
};
use emrest_repo::{Control, DiskIndex, RepoError, Repository, TrackedChanges, Writes};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// What a client asked for, in domain terms (decoded from a RestoreSpec at the HTTP edge).
#[derive(Clone, Debug, Default)]
pub struct RestoreRequest {
    pub power_on_after: bool,
    pub quick_rollback: bool,
    pub keep_original_vm: bool,
    /// `HierarchyRootUid` as sent.
    pub hierarchy_root_uid: Option<String>,
    /// `VmRestoreParameters`, when sent.
    pub parameters: Option<RestoreParameters>,
}

/// The vCloud Director `VmRestoreParameters`.
#[derive(Clone, Debug, Default)]
pub struct RestoreParameters {
    pub vm_restore_point_uid: Option<String>,
    pub vm_new_name: Option<String>,
    pub datastore_ref: Option<String>,
    pub org_vdc_storage_profile_ref: Option<String>,
    pub linked_clone_vm_template_ref: Option<String>,
}

/// Where the restored disks go.
#[derive(Clone, Debug)]
pub enum RestoreTarget {
    /// Overwrite the original VM (recreating it under its old reference if it is gone).
    Original { exists: bool, quick_rollback: bool },
    /// Register a new VM beside the original.
    NewVm {
        name: String,
        datastore: String,
        storage_profile: Option<String>,
    },
}

/// A checked restore: nothing in it can fail validation any more.
#[derive(Clone, Debug)]
pub struct RestorePlan {
    pub point: VmRestorePointRecord,
    pub target: RestoreTarget,
    pub power_on_after: bool,
    /// The point's disk indexes, one per disk in order, when the caller already loaded them
    /// (the intact check does; shared with the repository's index cache); empty: [`execute`]
    /// loads them.
    pub indexes: Vec<Arc<DiskIndex>>,
}

impl RestorePlan {
    /// A line for the session log saying what will happen.
    pub fn describe(&self) -> String {
        let what = match &self.target {
            RestoreTarget::Original {
                quick_rollback: true,
                ..
            } => format!("quick rollback of VM '{}' in place", self.point.vm_name),
            RestoreTarget::Original { exists: true, .. } => {
                format!(
                    "full restore of VM '{}' over the original",
                    self.point.vm_name
                )
            }
            RestoreTarget::Original { exists: false, .. } => format!(
                "full restore of VM '{}' (the original no longer exists; it is recreated)",
                self.point.vm_name
            ),
            RestoreTarget::NewVm {
                name, datastore, ..
            } => format!(
                "restore of VM '{}' as a new VM '{}' on datastore {}",
                self.point.vm_name, name, datastore
            ),
        };
        format!(
            "{what} from restore point {}, power on after restore: {}",
            vm_point_name(&self.point.vm_name, self.point.created),
            self.power_on_after
        )
    }
}

/// Suffix of the default name of a VM restored beside its original (KeepOriginalVM without a
/// name), after the `vApp2_restored` naming of scenario_vm_restore.md.
pub const RESTORED_SUFFIX: &str = "_restored";

fn parse_root_uid(s: &str) -> Option<Uuid> {
    let s = s.trim();
    let tail = match s.rsplit_once(':') {
        Some((head, tail)) if head.eq_ignore_ascii_case("urn:veeam:HierarchyRoot") => tail,
        Some(_) => return None,
        None => s,
    };
    Uuid::parse_str(tail).ok()
}

fn parse_point_uid(s: &str) -> Option<Uuid> {
    let s = s.trim();
    let tail = match s.rsplit_once(':') {
        Some((head, tail)) if head.eq_ignore_ascii_case("urn:veeam:VmRestorePoint") => tail,
        Some(_) => return None,
        None => s,
    };
    Uuid::parse_str(tail).ok()
}

/// Check a request against the catalog and the inventory, and decide what to do.
/// Plan a restore of `point` as `req` asks; `visible` says whether the caller may see a VM of
/// the inventory (a refusal names no VM the caller may not see).
pub fn plan(
    inventory: &dyn Inventory,
    point: VmRestorePointRecord,
    req: &RestoreRequest,
    visible: &dyn Fn(&emrest_platform::VmInfo) -> bool,
) -> CoreResult<RestorePlan> {
    // post_vmrestorepoints_id_actionrestore.md: "If this option is set to true, the
    // QuickRollback option must be set to false."
    if req.keep_original_vm && req.quick_rollback {
        return Err(CoreError::invalid(
            "QuickRollback",
            "QuickRollback must be false when KeepOriginalVM is true",
        ));
    }
    if let Some(uid) = &req.hierarchy_root_uid {
        let root = parse_root_uid(uid).ok_or_else(|| {
            CoreError::invalid(
                "HierarchyRootUid",
                format!("HierarchyRootUid '{uid}' is not a hierarchy root UID (urn:veeam:HierarchyRoot:<id>)"),
            )
        })?;
        inventory.root(root).map_err(|_| {
            CoreError::invalid(
                "HierarchyRootUid",
                format!("HierarchyRootUid '{uid}' does not name a known hierarchy root"),
            )
        })?;
        if root != point.vm.root {
            return Err(CoreError::invalid(
                "HierarchyRootUid",
                format!(
                    "HierarchyRootUid '{uid}' is not the hierarchy root of VM '{}'; restore to another host is not supported",
                    point.vm_name
                ),
            ));
        }
    }
    let params = req.parameters.clone().unwrap_or_default();
    if let Some(uid) = &params.vm_restore_point_uid {
        let id = parse_point_uid(uid).ok_or_else(|| {
            CoreError::invalid(
                "VmRestorePointUid",
                format!("VmRestorePointUid '{uid}' is not a VM restore point UID (urn:veeam:VmRestorePoint:<id>)"),
            )
        })?;
        if id != point.id {
            return Err(CoreError::invalid(
                "VmRestorePointUid",
                format!(
                    "VmRestorePointUid '{uid}' does not match the restore point in the URL ({})",
                    point.id
                ),
            ));
        }
    }
    let datastore = match &params.datastore_ref {
        Some(r) => Some(resolve_ref(
            inventory,
            &point,
            "DatastoreRef",
            "Datastore",
            r,
        )?),
        None => None,
    };
    let storage_profile = match &params.org_vdc_storage_profile_ref {
        Some(r) => Some(resolve_ref(
            inventory,
            &point,
            "OrgVdcStorageProfileRef",
            "OrgVdcStorageProfile",
            r,
        )?),
        None => None,
    };
    if let Some(r) = &params.linked_clone_vm_template_ref {
        resolve_ref(
            inventory,
            &point,
            "LinkedCloneVmTemplateRef",
            "VmTemplate",
            r,
        )?;
    }

    let original = match inventory.vm(&point.vm) {
        Ok(vm) => Some(vm),
        Err(PlatformError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let new_name = params.vm_new_name.clone().filter(|n| {
        // A VmNewName equal to the VM's own name means "restore with its initial name".
        n != &point.vm_name
    });
    let target = if req.keep_original_vm || new_name.is_some() {
        if req.quick_rollback {
            return Err(CoreError::invalid(
                "QuickRollback",
                "QuickRollback must be false when the VM is restored under a new name",
            ));
        }
        let name = new_name.unwrap_or_else(|| format!("{}{RESTORED_SUFFIX}", point.vm_name));
        if let Err(PlatformError::InvalidName { reason, .. }) =
            emrest_platform::names::validate_name(&name)
        {
            // The name may be anything the client sent: quote no more than 40 characters.
            return Err(CoreError::invalid(
                "VmNewName",
                format!(
                    "VmNewName '{}' is not a valid VM name: it {reason}",
                    crate::error::clip(&name, 40)
                ),
            ));
        }
        if let Some(vm) = inventory.find_vm_by_name(point.vm.root, &name)? {
            // A VM outside the caller's restore scope is not named, nor said to be a VM.
            let message = if visible(&vm) {
                format!("a VM named '{name}' already exists on this host; choose another VmNewName")
            } else {
                format!("VmNewName '{name}' cannot be used on this host; choose another VmNewName")
            };
            return Err(CoreError::invalid("VmNewName", message));
        }
        RestoreTarget::NewVm {
            name,
            datastore: datastore.unwrap_or_else(|| point.datastore.clone()),
            storage_profile: storage_profile.or_else(|| point.storage_profile.clone()),
        }
    } else {
        if datastore.as_ref().is_some_and(|d| *d != point.datastore) && original.is_some() {
            return Err(CoreError::invalid(
                "DatastoreRef",
                "DatastoreRef can only move a VM restored under a new name (set VmNewName); the original VM keeps its datastore",
            ));
        }
        RestoreTarget::Original {
            exists: original.is_some(),
            quick_rollback: req.quick_rollback && original.is_some(),
        }
    };
    Ok(RestorePlan {
        point,
        target,
        power_on_after: req.power_on_after,
        indexes: Vec::new(),
    })
}

/// Resolve a HierarchyObjRef of the given type inside the point's own hierarchy root, and return
/// its object ref.
fn resolve_ref(
    inventory: &dyn Inventory,
    point: &VmRestorePointRecord,
    element: &str,
    type_: &str,
    value: &str,
) -> CoreResult<String> {
    let bad = |why: String| CoreError::invalid(element, format!("{element} '{value}' {why}"));
    let r = parse_hierarchy_obj_ref(value)
        .map_err(|e| bad(format!("is not a valid reference: {e}")))?;
    if !r.type_.eq_ignore_ascii_case(type_) {
        return Err(bad(format!(
            "is a {} reference; a {type_} reference is expected",
            r.type_
        )));
    }
    if r.root != point.vm.root {
        return Err(bad("belongs to another hierarchy root than the VM".into()));
    }
    let found = match type_ {
        "Datastore" => inventory
            .datastores(r.root)?
            .iter()
            .any(|d| d.object_ref == r.object_ref),
        "OrgVdcStorageProfile" => inventory
            .storage_profiles(r.root)?
            .iter()
            .any(|d| d.object_ref == r.object_ref),
        _ => inventory
            .templates(r.root)?
            .iter()
            .any(|d| d.object_ref == r.object_ref),
    };
    if !found {
        return Err(bad("does not resolve to an existing object".into()));
    }
    Ok(r.object_ref)
}

/// Progress and cancellation shared between a running restore and the API.
#[derive(Default)]
pub struct RunControl {
    pub cancelled: AtomicBool,
    pub cancelled_by: std::sync::Mutex<Option<String>>,
    pub done_bytes: AtomicU64,
    pub total_bytes: AtomicU64,
    /// Where a quick rollback journals itself before writing in place (the journal folder and
    /// its restore session); `None` writes no journal (rollback_journal.rs).
    pub rollback_journal: Option<(std::path::PathBuf, Uuid)>,
    /// An injected fault this run carries (faults.rs): it fails or stalls the run through
    /// [`Control::cancelled`] and [`RunControl::before_commit`]. Set once the run is admitted
    /// and recorded, so a refused start consumes no firing of a rule.
    pub fault: std::sync::OnceLock<Arc<crate::faults::TaskFault>>,
}

impl RunControl {
    /// Asks the work to stop, on behalf of `who`.
    pub fn cancel(&self, who: &str) {
        if let Ok(mut by) = self.cancelled_by.lock() {
            *by = Some(who.to_string());
        }
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Who asked the work to stop, for the session's message.
    pub fn canceller(&self) -> String {
        self.cancelled_by
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .unwrap_or_else(|| "a user".into())
    }

    /// Whether the work must stop before it changes its target: cancelled, or an injected
    /// failure is due (it fires here at the latest, whatever the progress).
    pub fn before_commit(&self) -> bool {
        // The fault first: a stall ends when the run is cancelled, which must then count.
        self.fault_due(true) || self.cancelled.load(Ordering::SeqCst)
    }

    /// The message of an injected failure that stopped the work.
    pub fn fault_failure(&self) -> Option<&str> {
        self.fault.get().and_then(|f| f.failure())
    }

    fn fault_due(&self, commit: bool) -> bool {
        let Some(f) = self.fault.get() else {
            return false;
        };
        f.check(
            self.percent(),
            commit,
            &|| self.cancelled.load(Ordering::Relaxed),
            &|p| {
                // The progress the task shows when the fault fires is the rule's.
                let total = self.total_bytes.load(Ordering::Relaxed);
                let at = total.saturating_mul(u64::from(p)).div_ceil(100);
                self.done_bytes.fetch_max(at, Ordering::Relaxed);
            },
        )
    }

    /// Percent done, 0..=99 while running.
    pub fn percent(&self) -> u8 {
        let total = self.total_bytes.load(Ordering::Relaxed).max(1);
        let done = self.done_bytes.load(Ordering::Relaxed).min(total);
        ((done * 100 / total) as u8).min(99)
    }
}

impl Control for RunControl {
    fn cancelled(&self) -> bool {
        self.fault_due(false) || self.cancelled.load(Ordering::Relaxed)
    }
    fn progress(&self, bytes: u64) {
        self.done_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Control for the in-place write phase of a quick rollback: progress only, never cancelled,
/// because stopping half way would leave the VM neither as it was nor restored.
struct NoCancel<'a>(&'a RunControl);

impl Control for NoCancel<'_> {
    fn progress(&self, bytes: u64) {
        self.0.progress(bytes)
    }
}

/// What a finished restore did.
#[derive(Debug, Default)]
pub struct RestoreOutcome {
    pub restored_obj_ref: String,
    pub chunks_examined: u64,
    pub chunks_written: u64,
    pub bytes_written: u64,
}

/// Execute a plan. Logs go to `log`; on error nothing of the target has changed.
pub fn execute(
    repo: &Repository,
    inventory: &dyn Inventory,
    plan: &RestorePlan,
    ctl: &RunControl,
    log: &dyn Fn(String),
) -> CoreResult<RestoreOutcome> {
    let point = &plan.point;
    let loaded;
    let indexes: &[Arc<DiskIndex>] = if plan.indexes.len() == point.disks.len() {
        &plan.indexes
    } else {
        loaded = point
            .disks
            .iter()
            .map(|d| repo.get_index_shared(&d.index))
            .collect::<Result<Vec<_>, _>>()?;
        &loaded
    };
    let total: u64 = point.disks.iter().map(|d| d.size).sum();
    ctl.total_bytes.store(total, Ordering::Relaxed);
    let mut out = RestoreOutcome::default();
    match &plan.target {
        RestoreTarget::Original {
            quick_rollback: true,
            ..
        } => quick_rollback(repo, inventory, plan, indexes, ctl, log, &mut out)?,
        RestoreTarget::Original { exists, .. } => {
            let datastore = if *exists {
                inventory.vm(&point.vm)?.datastore
            } else {
                point.datastore.clone()
            };
            // Over the VM's own disks, the restore's writes are flushed after the task has
            // finished: the journal written before the swap brings the disks to the point
            // after a crash, even if the swap reached the device and the data did not
            // (rollback_journal.rs).
            let deferred = *exists && ctl.rollback_journal.is_some();
            let staged = stage_all(
                repo, inventory, point, &datastore, indexes, ctl, log, &mut out, deferred,
            )?;
            let staged = unless_stopped(inventory, ctl, staged)?;
            if *exists {
                if let Err(e) = journal(ctl, point) {
                    staged.into_iter().for_each(|s| inventory.discard_staged(s));
                    return Err(e);
                }
                log(format!(
                    "Powering off VM '{}' and swapping in the restored disks",
                    point.vm_name
                ));
                inventory.set_power(&point.vm, PowerState::PoweredOff)?;
                if deferred {
                    inventory.replace_disks_unflushed(&point.vm, staged)?;
                } else {
                    inventory.replace_disks(&point.vm, staged)?;
                }
            } else {
                log(format!("Registering VM '{}' again", point.vm_name));
                inventory.create_vm_from_staged(
                    point.vm.root,
                    &datastore,
                    Some(&point.vm.object_ref),
                    &point.vm_name,
                    point.storage_profile.as_deref(),
                    staged,
                    PowerState::PoweredOff,
                )?;
            }
            out.restored_obj_ref = point.hierarchy_obj_ref.clone();
        }
        RestoreTarget::NewVm {
            name,
            datastore,
            storage_profile,
        } => {
            let staged = stage_all(
                repo, inventory, point, datastore, indexes, ctl, log, &mut out, false,
            )?;
            let staged = unless_stopped(inventory, ctl, staged)?;
            log(format!(
                "Registering the restored VM as '{name}' on datastore {datastore}"
            ));
            let vm = inventory.create_vm_from_staged(
                point.vm.root,
                datastore,
                None,
                name,
                storage_profile.as_deref(),
                staged,
                PowerState::PoweredOff,
            )?;
            out.restored_obj_ref = vm.hierarchy_obj_ref();
        }
    }
    let key = target_key(inventory, plan, &out)?;
    restart_tracking(inventory, &key, point, log);
    if plan.power_on_after {
        // A running guest may write and flush its disks: what the restore wrote must be
        // durable before (rolling forward after a crash would undo the guest's writes).
        if ctl.rollback_journal.is_some() {
            crate::rollback_journal::flush_disks(
                inventory,
                &key,
                point.disks.iter().map(|d| d.name.as_str()),
            )?;
        }
        inventory.set_power(&key, PowerState::PoweredOn)?;
        log("Powered on the restored VM".into());
    }
    Ok(out)
}

/// The staged disks, or `Cancelled` with them discarded when the work must stop before it
/// changes its target ([`RunControl::before_commit`]).
fn unless_stopped(
    inventory: &dyn Inventory,
    ctl: &RunControl,
    staged: Vec<StagedDisk>,
) -> CoreResult<Vec<StagedDisk>> {
    if ctl.before_commit() {
        staged.into_iter().for_each(|s| inventory.discard_staged(s));
        return Err(RepoError::Cancelled.into());
    }
    Ok(staged)
}

fn target_key(
    inventory: &dyn Inventory,
    plan: &RestorePlan,
    out: &RestoreOutcome,
) -> CoreResult<VmKey> {
    match &plan.target {
        RestoreTarget::NewVm { name, .. } => inventory
            .find_vm_by_name(plan.point.vm.root, name)?
            .map(|v: VmInfo| v.key())
            .ok_or_else(|| {
                CoreError::Internal(format!("restored VM {} vanished", out.restored_obj_ref))
            }),
        RestoreTarget::Original { .. } => Ok(plan.point.vm.clone()),
    }
}

/// Durably records, before the first change to the VM's disks, which point they are being
/// brought to: from here a crash is rolled forward (rollback_journal.rs). No-op without a
/// journal folder.
fn journal(ctl: &RunControl, point: &VmRestorePointRecord) -> CoreResult<()> {
    if let Some((dir, session)) = &ctl.rollback_journal {
        let journal = crate::rollback_journal::RollbackJournal::new(*session, point);
        crate::rollback_journal::write_journal(dir, &journal)?;
    }
    Ok(())
}

/// How a restore writes: flushed after it has finished once a journal answers for the
/// disks; durably before the swap otherwise.
fn writes(deferred: bool) -> Writes {
    if deferred {
        Writes::Deferred
    } else {
        Writes::Durable
    }
}

/// Restore every disk into staging in `datastore` (written as [`writes`] says). On error
/// every staged disk is discarded.
#[allow(clippy::too_many_arguments)]
fn stage_all(
    repo: &Repository,
    inventory: &dyn Inventory,
    point: &VmRestorePointRecord,
    datastore: &str,
    indexes: &[Arc<DiskIndex>],
    ctl: &RunControl,
    log: &dyn Fn(String),
    out: &mut RestoreOutcome,
    deferred: bool,
) -> CoreResult<Vec<StagedDisk>> {
    let mut staged: Vec<StagedDisk> = Vec::new();
    let result = (|| -> CoreResult<()> {
        for (disk, index) in point.disks.iter().zip(indexes) {
            let s = inventory.stage_disk(point.vm.root, datastore, &disk.name, disk.size)?;
            staged.push(s);
            let file = &staged[staged.len() - 1].file;
            let plan = repo.plan_restore(index, None, ctl)?;
            let stats = repo.apply_restore_with(index, &plan, file, ctl, writes(deferred))?;
            out.chunks_examined += plan.chunks_examined;
            out.chunks_written += stats.chunks_written;
            out.bytes_written += stats.bytes_written;
            log(format!(
                "Disk {}: wrote {} of {} chunks ({} bytes) into staging",
                disk.name,
                stats.chunks_written,
                index.chunks.len(),
                stats.bytes_written
            ));
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(staged),
        Err(e) => {
            for s in staged {
                inventory.discard_staged(s);
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn quick_rollback(
    repo: &Repository,
    inventory: &dyn Inventory,
    plan: &RestorePlan,
    indexes: &[Arc<DiskIndex>],
    ctl: &RunControl,
    log: &dyn Fn(String),
    out: &mut RestoreOutcome,
) -> CoreResult<()> {
    let point = &plan.point;
    let vm = inventory.vm(&point.vm)?;
    let deferred = ctl.rollback_journal.is_some();
    // Disks whose size changed since the backup cannot be compared block by block: they are
    // restored in full through staging instead.
    let mut in_place = Vec::new();
    let mut full = Vec::new();
    for (disk, index) in point.disks.iter().zip(indexes) {
        let current = vm.disks.iter().find(|d| d.name == disk.name);
        match current {
            Some(c) if c.size == disk.size => {
                let file = inventory.open_disk(&point.vm, &disk.name, true)?;
                let total = index.chunks.len();
                // One pass reads each candidate chunk of the disk once and the restore
                // point's chunk for it at most once (verified); nothing is written yet.
                let p = match tracked_changes(repo, inventory, &point.vm, disk, index)? {
                    Some((changes, since)) => {
                        let p = repo.prepare_rollback_tracked(index, &file, &changes, ctl)?;
                        let written: u64 = changes.written.iter().map(|w| w.1).sum();
                        log(format!(
                            "Disk {}: changed-block tracking since {since}: {written} bytes written since, {} chunks to roll back without reading the disk; examined {} of {total} chunks where the points differ; read {} chunks from the repository",
                            disk.name, p.chunks_differ, p.chunks_examined, p.chunks_loaded
                        ));
                        p
                    }
                    None => {
                        let p = repo.prepare_rollback(index, &file, None, ctl)?;
                        log(format!(
                            "Disk {}: no valid changed-block tracking; examined {} of {total} chunks by digest, {} differ from the restore point; read {} chunks from the repository; {} chunks were holes in both, matched unread",
                            disk.name, p.chunks_examined, p.chunks_differ, p.chunks_loaded, p.chunks_in_holes
                        ));
                        p
                    }
                };
                in_place.push((disk, index, file, p));
            }
            _ => {
                log(format!(
                    "Disk {}: size changed or disk missing; restoring it in full",
                    disk.name
                ));
                full.push((disk, index));
            }
        }
    }
    let mut staged: Vec<StagedDisk> = Vec::new();
    for (disk, index) in &full {
        match (|| -> CoreResult<StagedDisk> {
            let s = inventory.stage_disk(point.vm.root, &vm.datastore, &disk.name, disk.size)?;
            let p = repo.plan_restore(index, None, ctl).and_then(|p| {
                let st = repo.apply_restore_with(index, &p, &s.file, ctl, writes(deferred))?;
                out.chunks_examined += p.chunks_examined;
                out.chunks_written += st.chunks_written;
                out.bytes_written += st.bytes_written;
                Ok(())
            });
            match p {
                Ok(()) => Ok(s),
                Err(e) => {
                    inventory.discard_staged(s);
                    Err(e.into())
                }
            }
        })() {
            Ok(s) => staged.push(s),
            Err(e) => {
                for s in staged {
                    inventory.discard_staged(s);
                }
                return Err(e);
            }
        }
    }
    if ctl.before_commit() {
        for s in staged {
            inventory.discard_staged(s);
        }
        return Err(RepoError::Cancelled.into());
    }
    // Durably recorded before the first in-place write: a crash from here on is rolled forward.
    if let Err(e) = journal(ctl, point) {
        staged.into_iter().for_each(|s| inventory.discard_staged(s));
        return Err(e);
    }
    // Powering off records the VM's state durably; a VM already off needs no new record.
    if inventory.vm(&point.vm)?.power != PowerState::PoweredOff {
        inventory.set_power(&point.vm, PowerState::PoweredOff)?;
    }
    let no_cancel = NoCancel(ctl);
    for (disk, index, file, p) in &in_place {
        // Deferred writes are flushed once the restore has finished; durable ones are
        // fsynced when the repository is durable, and here otherwise.
        let stats = repo.apply_rollback(index, p, file, &no_cancel, writes(deferred))?;
        if !deferred && repo.durability() == emrest_repo::Durability::NoSync {
            file.sync_all()
                .map_err(|e| CoreError::Internal(format!("flushing disk {}: {e}", disk.name)))?;
        }
        out.chunks_examined += p.chunks_examined;
        out.chunks_written += stats.chunks_written;
        out.bytes_written += stats.bytes_written;
        log(format!(
            "Disk {}: quick rollback wrote {} chunks ({} bytes)",
            disk.name, stats.chunks_written, stats.bytes_written
        ));
    }
    if !staged.is_empty() {
        if deferred {
            inventory.replace_disks_unflushed(&point.vm, staged)?;
        } else {
            inventory.replace_disks(&point.vm, staged)?;
        }
    }
    out.restored_obj_ref = point.hierarchy_obj_ref.clone();
    Ok(())
}

/// What may differ between a disk and `index`, from the platform's changed-block tracking: the
/// byte ranges written since the tracking period began, and the chunks where the point the
/// period began at differs from `index` (compared index to index, nothing read). `None` when
/// tracking is unavailable or invalid, or its starting point is unknown: the caller then
/// compares every chunk by digest.
fn tracked_changes(
    repo: &Repository,
    inventory: &dyn Inventory,
    vm: &VmKey,
    disk: &PointDisk,
    index: &DiskIndex,
) -> CoreResult<Option<(TrackedChanges, String)>> {
    let Some(tracked) = inventory.changed_blocks(vm, &disk.name)? else {
        return Ok(None);
    };
    if tracked.disk_size != index.disk_size {
        return Ok(None);
    }
    // Tracking that began at this very point (the last restore was of it) needs no second
    // index; any failure to load another starting point only costs the full comparison.
    let other;
    let base = if tracked.label == disk.index {
        index
    } else {
        let Ok(b) = repo.get_index(&tracked.label) else {
            return Ok(None);
        };
        other = b;
        &other
    };
    if base.chunk_size != index.chunk_size || base.chunks.len() != index.chunks.len() {
        return Ok(None);
    }
    let compare = (0..index.chunks.len())
        .filter(|&i| base.chunks[i] != index.chunks[i])
        .collect();
    // Runs of written blocks, as byte ranges clipped to the disk.
    let bs = u64::from(tracked.block_size);
    let mut written: Vec<(u64, u64)> = Vec::new();
    for b in tracked.changed() {
        let (o, e) = (b * bs, ((b + 1) * bs).min(tracked.disk_size));
        match written.last_mut() {
            Some((lo, ll)) if *lo + *ll == o => *ll = e - *lo,
            _ => written.push((o, e - o)),
        }
    }
    Ok(Some((TrackedChanges { written, compare }, tracked.label)))
}

/// Starts a new tracking period on every restored disk: it now holds the point's content.
fn restart_tracking(
    inventory: &dyn Inventory,
    vm: &VmKey,
    point: &VmRestorePointRecord,
    log: &dyn Fn(String),
) {
    for d in &point.disks {
        if let Err(e) = inventory.checkpoint_disk(vm, &d.name, &d.index) {
            // The restore itself succeeded; without tracking the next one compares digests.
            log(format!(
                "Disk {}: changed-block tracking not restarted: {e}",
                d.name
            ));
        }
    }
}
