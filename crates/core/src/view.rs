//! What one caller may see: every read whose answer depends on who asks goes through a
//! [`View`], and a `View` is built only from an authenticated caller ([`Core::as_caller`]) or
//! by the data folder's owner ([`crate::Owner::view`]). There is no other way to list the
//! catalog, so a handler cannot list what its caller may not see.
//!
//! The restore scope filters backups, restore points, VM restore points and backup files
//! here, once; tasks and restore sessions are the caller's own unless it administers.
//!
//! The types keep it so. A handler holds the `Core` and an authenticated `Caller`; this is how
//! it lists:
//!
//! ```
//! use emrest_core::{BackupRecord, Caller, Core, CoreResult};
//! fn list(core: &Core, caller: &Caller) -> CoreResult<Vec<BackupRecord>> {
//!     core.as_caller(caller).backups()
//! }
//! ```
//!
//! The `Core` has no unscoped listing to call instead:
//!
//! ```compile_fail
//! fn leak(core: &emrest_core::Core) {
//!     let _ = core.backups();
//! }
//! ```
//!
//! and a handler cannot make itself an all-seeing caller, since only the domain fills a
//! `Caller` in:
//!
//! ```compile_fail
//! fn forge(c: &emrest_core::Caller) -> emrest_core::Caller {
//!     emrest_core::Caller { roles: Vec::new(), ..c.clone() }
//! }
//! ```

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::security::{self, EnterpriseRole, RestoreScope};
use crate::Core;
use std::borrow::Cow;
use std::collections::HashSet;
use uuid::Uuid;

/// The reads of one caller.
pub struct View<'a> {
    pub(crate) core: &'a Core,
    pub(crate) caller: Cow<'a, Caller>,
}

impl std::ops::Deref for View<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        self.core
    }
}

impl Core {
    /// The reads of an authenticated caller (from [`crate::Logons::caller`]).
    pub fn as_caller<'a>(&'a self, caller: &'a Caller) -> View<'a> {
        View {
            core: self,
            caller: Cow::Borrowed(caller),
        }
    }

    /// Everything, for the domain's own work (a restore reading its point, a job its
    /// backups); never handed out.
    pub(crate) fn everything(&self) -> View<'_> {
        View {
            core: self,
            caller: Cow::Owned(Caller::owner()),
        }
    }
}

/// Which restore points and backups hold at least one VM a scoped caller may see.
struct Visible {
    points: HashSet<Uuid>,
    backups: HashSet<Uuid>,
}

/// The records a caller may see: all of them when it sees everything (`visible` is `None`),
/// else those `sees` keeps.
fn keep<T>(all: Vec<T>, visible: Option<&Visible>, sees: impl Fn(&Visible, &T) -> bool) -> Vec<T> {
    match visible {
        None => all,
        Some(v) => all.into_iter().filter(|r| sees(v, r)).collect(),
    }
}

impl Caller {
    /// The data folder's owner: sees and may do everything (the CLI, on the authority of the
    /// folder's owner; tests).
    pub(crate) fn owner() -> Caller {
        Caller {
            account_id: Uuid::nil(),
            user_name: crate::audit::LOCAL.user.to_string(),
            session_id: Uuid::nil(),
            roles: vec![EnterpriseRole::PortalAdministrator],
            scope: RestoreScope::All,
            address: None,
        }
    }
}

impl View<'_> {
    /// The caller these reads are for.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    // ---- discovery ----

    // ---- the backup catalog, through the caller's restore scope ----

    /// Restore points and backups that hold a VM the caller may see; `None` when the caller
    /// sees everything.
    fn visible_points(&self) -> CoreResult<Option<Visible>> {
        let caller = self.caller();
        if caller.sees_all_vms() {
            return Ok(None);
        }
        let mut v = Visible {
            points: HashSet::new(),
            backups: HashSet::new(),
        };
        for p in self.catalog.vm_restore_points(None)? {
            if security::can_see_vm(caller, &p) {
                v.points.insert(p.restore_point_id);
                v.backups.insert(p.backup_id);
            }
        }
        Ok(Some(v))
    }

    fn outside_scope(&self, what: &str, id: Uuid) -> CoreError {
        CoreError::Forbidden(format!(
            "Access denied: {what} [{id}] holds no VM in the restore scope of account '{}'",
            self.caller.user_name
        ))
    }

    /// Backups holding a VM the caller may see.
    pub fn backups(&self) -> CoreResult<Vec<BackupRecord>> {
        let all = self.catalog.backups()?;
        Ok(keep(all, self.visible_points()?.as_ref(), |v, b| {
            v.backups.contains(&b.id)
        }))
    }

    /// One backup (403 when it holds no VM of the caller's scope).
    pub fn backup(&self, id: Uuid) -> CoreResult<BackupRecord> {
        self.backup_seen(id, self.visible_points()?.as_ref())
    }

    /// [`View::backup`] with the caller's visible points already known.
    fn backup_seen(&self, id: Uuid, visible: Option<&Visible>) -> CoreResult<BackupRecord> {
        let b = self
            .catalog
            .backups()?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| CoreError::not_found("Backup", id))?;
        if visible.is_some_and(|v| !v.backups.contains(&id)) {
            return Err(self.outside_scope("Backup", id));
        }
        Ok(b)
    }

    /// Restore points (of one backup when given) holding a VM the caller may see.
    pub fn restore_points(&self, backup: Option<Uuid>) -> CoreResult<Vec<RestorePointRecord>> {
        let visible = self.visible_points()?;
        if let Some(b) = backup {
            self.backup_seen(b, visible.as_ref())?;
        }
        let all = self.catalog.restore_points(backup)?;
        Ok(keep(all, visible.as_ref(), |v, p| v.points.contains(&p.id)))
    }

    /// One restore point (403 when it holds no VM of the caller's scope).
    pub fn restore_point(&self, id: Uuid) -> CoreResult<RestorePointRecord> {
        self.restore_point_seen(id, self.visible_points()?.as_ref())
    }

    /// [`View::restore_point`] with the caller's visible points already known.
    fn restore_point_seen(
        &self,
        id: Uuid,
        visible: Option<&Visible>,
    ) -> CoreResult<RestorePointRecord> {
        let p = self
            .catalog
            .restore_point(id)?
            .ok_or_else(|| CoreError::not_found("Restore point", id))?;
        if visible.is_some_and(|v| !v.points.contains(&id)) {
            return Err(self.outside_scope("Restore point", id));
        }
        Ok(p)
    }

    /// VM restore points (of one restore point when given) of VMs the caller may see.
    pub fn vm_restore_points(&self, point: Option<Uuid>) -> CoreResult<Vec<VmRestorePointRecord>> {
        if let Some(p) = point {
            self.restore_point(p)?;
        }
        let all = self.catalog.vm_restore_points(point)?;
        let caller = self.caller();
        Ok(all
            .into_iter()
            .filter(|p| security::can_see_vm(caller, p))
            .collect())
    }

    /// [`View::vm_restore_points`] a batch at a time, in the same order, for a listing of any
    /// size in bounded memory (see [`crate::catalog::Catalog::vm_restore_points_by_batch`]);
    /// `each` gets no empty batch and answers whether to go on.
    pub fn vm_restore_points_by_batch(
        &self,
        point: Option<Uuid>,
        each: &mut dyn FnMut(Vec<VmRestorePointRecord>) -> CoreResult<bool>,
    ) -> CoreResult<()> {
        const BATCH: usize = 1_000;
        if let Some(p) = point {
            self.restore_point(p)?;
        }
        let caller = self.caller();
        self.catalog
            .vm_restore_points_by_batch(point, BATCH, &mut |mut v| {
                v.retain(|p| security::can_see_vm(caller, p));
                if v.is_empty() {
                    Ok(true)
                } else {
                    each(v)
                }
            })
    }

    /// How many VM restore points there are at most for this caller (all of the catalog's,
    /// counted without a scan): enough to choose how to answer a listing.
    pub fn vm_restore_points_at_most(&self) -> CoreResult<u64> {
        self.catalog.vm_restore_point_count()
    }

    /// One VM restore point (403 outside the caller's scope).
    pub fn vm_restore_point(&self, id: Uuid) -> CoreResult<VmRestorePointRecord> {
        let p = self
            .catalog
            .vm_restore_point(id)?
            .ok_or_else(|| CoreError::not_found("VM restore point", id))?;
        security::check_vm(self.caller(), &p)?;
        Ok(p)
    }

    /// Backup files (of one restore point when given) of restore points the caller may see.
    pub fn backup_files(&self, point: Option<Uuid>) -> CoreResult<Vec<BackupFileRecord>> {
        let visible = self.visible_points()?;
        if let Some(p) = point {
            self.restore_point_seen(p, visible.as_ref())?;
        }
        let all = self.catalog.backup_files(point)?;
        Ok(keep(all, visible.as_ref(), |v, f| {
            v.points.contains(&f.restore_point_id)
        }))
    }

    /// One backup file (403 when its restore point holds no VM of the caller's scope).
    pub fn backup_file(&self, id: Uuid) -> CoreResult<BackupFileRecord> {
        let f = self
            .catalog
            .backup_file(id)?
            .ok_or_else(|| CoreError::not_found("Backup file", id))?;
        if self
            .visible_points()?
            .is_some_and(|v| !v.points.contains(&f.restore_point_id))
        {
            return Err(self.outside_scope("Backup file", id));
        }
        Ok(f)
    }

    // ---- tasks and restore sessions ----

    /// Whether the caller may see what `owner` started: its own, or anything when it
    /// administers.
    fn sees_owner(&self, owner: Uuid) -> bool {
        self.caller.sees_all_tasks() || self.caller.account_id == owner
    }

    /// Tasks the caller may see.
    pub fn tasks(&self) -> CoreResult<Vec<TaskRecord>> {
        let scope = (!self.caller.sees_all_tasks()).then_some(self.caller.account_id);
        self.catalog.tasks(scope)
    }

    /// One task.
    pub fn task(&self, id: TaskId) -> CoreResult<TaskRecord> {
        self.catalog
            .task(id)?
            .filter(|t| self.sees_owner(t.account_id))
            .ok_or_else(|| CoreError::not_found("Task", id))
    }

    /// Restore sessions the caller may see, with live progress.
    pub fn restore_sessions(&self) -> CoreResult<Vec<RestoreSessionRecord>> {
        let scope = (!self.caller.sees_all_tasks()).then_some(self.caller.account_id);
        let mut v = self.catalog.restore_sessions(scope)?;
        for s in &mut v {
            self.live_progress(s);
        }
        Ok(v)
    }

    /// One restore session.
    pub fn restore_session(&self, id: Uuid) -> CoreResult<RestoreSessionRecord> {
        let mut s = self
            .catalog
            .restore_session(id)?
            .filter(|s| self.sees_owner(s.account_id))
            .ok_or_else(|| CoreError::not_found("Restore session", id))?;
        self.live_progress(&mut s);
        Ok(s)
    }

    /// A restore session's log (emrest extension).
    pub fn restore_log(&self, id: Uuid) -> CoreResult<Vec<LogLine>> {
        self.restore_session(id)?;
        self.catalog.session_log(id)
    }

    pub(crate) fn live_progress(&self, s: &mut RestoreSessionRecord) {
        if s.state != SessionState::Working {
            return;
        }
        // By session, not through the task list: a task deleted to cancel its restore is
        // hidden from it while the restore winds down, and progress must not drop to 0.
        if let Some(percent) = self.runner.progress_of_session(s.id) {
            s.progress = percent;
        }
    }
}
