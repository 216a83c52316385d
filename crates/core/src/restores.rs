//! Starting a restore and running it on the task runner: check, plan, claim the VM, record the
//! task and its restore session, then a worker executes the plan (restore.rs) and records the
//! outcome.

use crate::error::{CoreError, CoreResult};
use crate::faults::{Event, RestoreMode};
use crate::model::*;
use crate::restore::{self, RestoreOutcome, RestorePlan, RestoreRequest, RunControl};
use crate::runner;
use crate::runner::{Engine, Refusal, Work};
use crate::{audit, busy, now_millis, security, Core};
use emrest_platform::VmKey;
use emrest_repo::{Control, RepoError};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use uuid::Uuid;

/// Starting restores and ending their tasks.
pub struct Restores<'a>(pub(crate) &'a Arc<Core>);

crate::service!(Restores, Arc<Core>);

impl Core {
    fn start_restore_checked(
        self: &Arc<Self>,
        caller: &Caller,
        point_id: Uuid,
        request: &RestoreRequest,
    ) -> CoreResult<TaskRecord> {
        security::authorize(caller, security::Permission::RestoreVm)?;
        let point = self.everything().vm_restore_point(point_id)?;
        security::check_vm(caller, &point)?;
        let indexes = self.check_point_intact(&point)?;
        let visible = |vm: &emrest_platform::VmInfo| security::can_see_inventory_vm(caller, vm);
        let mut plan = restore::plan(self.inventory.as_ref(), point, request, &visible)?;
        // The worker restores from the indexes just checked rather than reading them again.
        plan.indexes = indexes;
        if let restore::RestoreTarget::Original { .. } = &plan.target {
            self.rollbacks.check(&plan.point.vm)?;
        }
        // Admitted before anything is recorded or claimed: a full queue leaves no trace.
        let session_id = Uuid::new_v4();
        let ctl = Arc::new(RunControl {
            rollback_journal: Some((self.rollbacks.dir().to_path_buf(), session_id)),
            ..Default::default()
        });
        let admission = match self
            .runner
            .admit(Work::Restore(session_id), Some(session_id), ctl.clone())
        {
            Ok(a) => a,
            Err(Refusal::Full { admitted }) => {
                return Err(CoreError::Busy {
                    message: format!(
                        "{admitted} restores are running or waiting for a worker, as many as the server queues (--restore-workers, --restore-queue); try again when some have finished"
                    ),
                    retry_after: Duration::from_secs(10),
                })
            }
            Err(refusal) => {
                return Err(CoreError::Internal(format!(
                    "restore session {session_id} was admitted twice: {refusal:?}"
                )))
            }
        };
        let busy_key = match &plan.target {
            restore::RestoreTarget::Original { .. } => plan.point.vm.clone(),
            restore::RestoreTarget::NewVm { name, .. } => VmKey {
                root: plan.point.vm.root,
                object_ref: format!("new-vm-name:{name}"),
            },
        };
        self.busy.claim(
            &[(busy_key.clone(), plan.point.vm_name.clone())],
            &busy::Activity::Restore,
        )?;
        let now = now_millis();
        let started = (|| -> CoreResult<TaskRecord> {
            self.catalog.insert_restore_session(
                session_id,
                point_id,
                &plan.point.vm_name,
                caller.account_id,
                now,
            )?;
            self.catalog.append_log(
                session_id,
                &format!(
                    "Restore requested by {}: {}",
                    caller.user_name,
                    plan.describe()
                ),
                now,
            )?;
            self.catalog
                .insert_task("StartVMRestore", Some(session_id), caller.account_id, now)
        })();
        let task = match started {
            Ok(t) => t,
            Err(e) => {
                self.busy.release([&busy_key]);
                return Err(e);
            }
        };
        // Admitted, claimed and recorded: from here the restore runs, and a rule may fire on it.
        let mode = match &plan.target {
            restore::RestoreTarget::Original {
                quick_rollback: true,
                ..
            } => RestoreMode::QuickRollback,
            _ => RestoreMode::Full,
        };
        let event = Event::Restore {
            mode,
            vm: &plan.point.vm_name,
            account: &caller.user_name,
        };
        self.faults.fire_task(&event, &ctl);
        let run = RestoreRun {
            core: Arc::clone(self),
            task: task.id,
            session: session_id,
            plan,
            ctl,
            busy_key: busy_key.clone(),
        };
        if let Err(e) = admission.spawn(run) {
            // Nothing ran: the task and session end failed and the VM is free again.
            let msg = match e {
                CoreError::Internal(m) => m,
                e => e.to_string(),
            };
            let _ = self.catalog.finish_session(
                session_id,
                SessionResult::Failed,
                None,
                Some(&msg),
                now_millis(),
            );
            let _ = self.catalog.finish_task(task.id, false, &msg);
            self.busy.release([&busy_key]);
            return Err(CoreError::Internal(msg));
        }
        Ok(task)
    }

    fn wait_while_held(&self, ctl: &RunControl) {
        let (held, changed) = &self.restore_hold;
        let mut h = held.lock().unwrap_or_else(PoisonError::into_inner);
        // Cancelling does not notify: look again every few milliseconds.
        while *h && !ctl.cancelled() {
            h = changed
                .wait_timeout(h, Duration::from_millis(5))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A restore on the task runner.
struct RestoreRun {
    core: Arc<Core>,
    task: TaskId,
    session: Uuid,
    plan: RestorePlan,
    ctl: Arc<RunControl>,
    /// What `busy` holds for this restore: the VM, or the new VM's name.
    busy_key: VmKey,
}

impl Engine for RestoreRun {
    type Output = RestoreOutcome;
    const WHAT: &'static str = "restore";

    fn thread_name(&self) -> String {
        format!("restore-{}", self.task)
    }

    fn run(&mut self) -> CoreResult<RestoreOutcome> {
        let (core, session, ctl) = (&self.core, self.session, &self.ctl);
        if ctl.cancelled() {
            return Err(CoreError::Repo(RepoError::Cancelled));
        }
        if let Err(e) = core
            .catalog
            .start_restore(session, "Restore started", now_millis())
        {
            tracing::warn!("restore session {session}: cannot record the start: {e}");
        }
        core.wait_while_held(ctl);
        if let Some(fault) = ctl.fault.get() {
            let _ = core.catalog.append_log(
                session,
                &format!(
                    "Injected fault (rule {}): {}",
                    fault.rule,
                    fault.effect.name()
                ),
                now_millis(),
            );
            core.faults
                .before_work(fault, &|| ctl.cancelled.load(Ordering::Relaxed));
            if ctl.cancelled.load(Ordering::Relaxed) {
                return Err(CoreError::Repo(RepoError::Cancelled));
            }
        }
        if let restore::RestoreTarget::Original { .. } = &self.plan.target {
            // The previous restore of this VM may still be flushing its disks.
            core.rollbacks.wait_flushed(&self.plan.point.vm);
        }
        let log = |text: String| {
            if let Err(e) = core.catalog.append_log(session, &text, now_millis()) {
                tracing::warn!("restore session {session}: cannot write log: {e}");
            }
        };
        restore::execute(&core.repo, core.inventory.as_ref(), &self.plan, ctl, &log)
    }

    fn finish(self, outcome: CoreResult<RestoreOutcome>) {
        let RestoreRun {
            core,
            task,
            session,
            plan,
            ctl,
            busy_key,
        } = self;
        let now = now_millis();
        if let Ok(out) = &outcome {
            core.metrics.restore_written(out.bytes_written);
        }
        let record = || match &outcome {
            Ok(out) => core.catalog.finish_restore(
                session,
                task,
                SessionResult::Success,
                Some(&out.restored_obj_ref),
                "Ok",
                Some(&format!(
                    "Restore completed: examined {} chunks, wrote {} chunks ({} bytes)",
                    out.chunks_examined, out.chunks_written, out.bytes_written
                )),
                now,
            ),
            Err(e) => {
                let msg = match e {
                    // An injected failure (faults.rs) ends the task with the rule's message.
                    CoreError::Repo(RepoError::Cancelled) if ctl.fault_failure().is_some() => {
                        ctl.fault_failure().unwrap_or_default().to_string()
                    }
                    CoreError::Repo(RepoError::Cancelled) => format!(
                        "Restore cancelled by {}; the VM was left as it was",
                        ctl.canceller()
                    ),
                    // Name the point as well as the chunk: the operator restores from another.
                    CoreError::Repo(
                        RepoError::ChunkMissing { .. }
                        | RepoError::ChunkCorrupt { .. }
                        | RepoError::PackIndexCorrupt { .. }
                        | RepoError::IndexMissing { .. }
                        | RepoError::IndexCorrupt { .. },
                    ) => format!(
                        "Restore failed: {e}; VM restore point {} of '{}' is damaged, restore from another point",
                        plan.point.id, plan.point.vm_name
                    ),
                    _ => format!("Restore failed: {e}"),
                };
                if !matches!(e, CoreError::Repo(RepoError::Cancelled))
                    || ctl.fault_failure().is_some()
                {
                    tracing::warn!("task {task}: {msg}");
                }
                core.catalog.finish_restore(
                    session,
                    task,
                    SessionResult::Failed,
                    None,
                    &msg,
                    Some(&msg),
                    now,
                )
            }
        };
        // The task reads Finished and the VM is free in one step, so a restore started the
        // moment the task reads Finished is not refused; a restore that succeeded and
        // journalled is finished for its clients while its disks are flushed, and the next
        // restore of the VM waits for the flush before it journals (`wait_flushed` above). A
        // restore that failed after journalling keeps the VM until after_restore has settled it.
        let journalled = core.rollbacks.journalled(session);
        let flushing = journalled && outcome.is_ok();
        let early = flushing || !journalled;
        if flushing {
            core.rollbacks.flushing(&plan.point.vm);
        }
        let finished = if early {
            core.busy.release_on([&busy_key], record)
        } else {
            record()
        };
        let recorded = finished.is_ok();
        if let Err(e) = finished {
            tracing::error!("task {task}: cannot record the result: {e}");
        }
        let succeeded = outcome.is_ok() && recorded;
        core.rollbacks.after_restore(
            &core.repo,
            core.inventory.as_ref(),
            &core.catalog,
            session,
            succeeded,
        );
        if flushing {
            core.rollbacks.flushed(&plan.point.vm);
        }
        if !(early && recorded) {
            core.busy.release([&busy_key]);
        }
    }
}

impl Restores<'_> {
    /// Remove a task; a running restore is cancelled first and leaves its VM as it was.
    pub fn delete_task(&self, caller: &Caller, id: TaskId) -> CoreResult<()> {
        let task = self.as_caller(caller).task(id)?;
        if task.state == TaskState::Running {
            let work = task.restore_session_id.map(runner::Work::Restore);
            if let Some(ctl) = work.and_then(|w| self.runner.control(w)) {
                ctl.cancel(&caller.user_name);
            }
        }
        self.catalog.delete_task(id)
    }

    /// Wait until no restore is running (tests and orderly shutdown).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.runner.no_restores() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Restores<'_> {
    /// Plan a restore and start it on a worker; returns the running task at once.
    pub fn start(
        &self,
        caller: &Caller,
        point_id: Uuid,
        request: &RestoreRequest,
    ) -> CoreResult<TaskRecord> {
        let object = point_id.to_string();
        let r = self.start_restore_checked(caller, point_id, request);
        self.audit_result(
            caller.into(),
            audit::Action::RestoreStart,
            Some(&object),
            &r,
        );
        r
    }

    /// Holds restores that start from now on (session Working) before they touch any disk,
    /// until released with `false` or cancelled, for tests and maintenance that need
    /// restores in flight for as long as they look at them. Cancelling a held restore ends
    /// it at once with the VM as it was.
    pub fn hold(&self, hold: bool) {
        let (held, changed) = &self.restore_hold;
        *held.lock().unwrap_or_else(PoisonError::into_inner) = hold;
        changed.notify_all();
    }
}
