//! Backup jobs and their sessions: a job names the VMs it backs up and how many restore points
//! to keep; starting it runs a backup job session on a worker thread, with one task session per
//! VM. After a successful run the oldest points beyond the job's retention are removed from the
//! catalog (with their indexes); `collect_garbage` then reclaims the chunks nothing references.
//!
//! Life cycle, as em_rest/get_backupsessions_id.md and get_backuptasksessions_id.md name it:
//! job session Starting → Working → Stopped with Result Success/Warning/Failed (None while it
//! runs); task session Pending → InProgress → Completed.

use crate::backup::{self, VmBackup};
use crate::catalog::NewTaskSession;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::restore::RunControl;
use crate::runner::{Engine, Refusal, Work};
use crate::Core;
use crate::View;
use emrest_platform::{PlatformKind, VmKey};
use emrest_repo::Control;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Backup jobs: creating and running them, retention, garbage collection, schedules.
pub struct Jobs<'a>(pub(crate) &'a Arc<Core>);

crate::service!(Jobs, Arc<Core>);

/// Restore points a new job keeps unless told otherwise.
pub const DEFAULT_RETENTION: u32 = 7;

/// A VM a job backs up (em_rest/jobs_id.md: ObjectInJob).
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobObjectRecord {
    pub id: Uuid,
    pub vm: VmKey,
    pub hierarchy_obj_ref: String,
    pub name: String,
}

/// A backup job.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobRecord {
    pub id: Uuid,
    pub name: String,
    pub backup_server_id: Uuid,
    pub platform: PlatformKind,
    pub description: String,
    /// Restore points to keep (SimpleRetentionPolicy RetainCycles).
    pub retention: u32,
    pub created: Millis,
    pub objects: Vec<JobObjectRecord>,
    /// When the job runs on its own (ScheduleConfigured when set).
    pub schedule: Option<crate::schedule::Schedule>,
    /// Whether the schedule is on (toggleScheduleEnabled flips it).
    pub schedule_enabled: bool,
    /// When the scheduler will next start it, once it has computed that.
    pub next_run: Option<Millis>,
}

impl JobRecord {
    /// When the job runs next on its own: the instant the scheduler recorded, or, until it has
    /// recorded one, the one the schedule gives after `now`; none when the schedule is off,
    /// absent or chained after another job.
    pub fn upcoming_run(&self, now: Millis) -> Option<Millis> {
        let s = self.schedule.as_ref().filter(|_| self.schedule_enabled)?;
        if matches!(s.recurrence, crate::schedule::Recurrence::AfterJob { .. }) {
            return None;
        }
        self.next_run.or_else(|| crate::schedule::next_run(s, now))
    }
}

/// State of a backup task session (em_rest/get_backuptasksessions_id.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TaskSessionState {
    Pending,
    InProgress,
    Completed,
}

impl TaskSessionState {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskSessionState::Pending => "Pending",
            TaskSessionState::InProgress => "InProgress",
            TaskSessionState::Completed => "Completed",
        }
    }
    pub(crate) fn parse(s: &str) -> TaskSessionState {
        match s {
            "Pending" => TaskSessionState::Pending,
            "InProgress" => TaskSessionState::InProgress,
            _ => TaskSessionState::Completed,
        }
    }
}

/// One run of a job.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackupSessionRecord {
    pub id: Uuid,
    pub job_id: Uuid,
    pub job_name: String,
    pub backup_server_id: Uuid,
    pub created: Millis,
    pub ended: Option<Millis>,
    pub state: SessionState,
    pub result: SessionResult,
    pub progress: u8,
    pub failure_message: Option<String>,
    pub is_retry: bool,
    /// The restore point the run made, while it is kept.
    pub restore_point_id: Option<Uuid>,
    /// Bytes processed so far and in all (emrest extras for progress bars; not on the wire).
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// One VM of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackupTaskSessionRecord {
    pub id: Uuid,
    pub session_id: Uuid,
    pub job_name: String,
    pub session_created: Millis,
    pub backup_server_id: Uuid,
    pub vm: VmKey,
    pub hierarchy_obj_ref: String,
    pub vm_name: String,
    pub created: Millis,
    pub ended: Option<Millis>,
    pub state: TaskSessionState,
    pub result: SessionResult,
    pub reason: String,
    /// Sum of the VM's disk sizes.
    pub total_size: u64,
    pub bytes_read: u64,
    /// Compressed bytes newly written to the repository.
    pub bytes_transferred: u64,
    pub chunks_new: u64,
    /// The VM restore point made, while it is kept.
    pub vm_restore_point_id: Option<Uuid>,
}

/// Name of a job session: `<job>@yyyy-mm-dd hh:mm:ss` (em_rest/backupsessions_id.md).
pub fn session_name(job: &str, created: Millis) -> String {
    format!("{job}@{}", crate::time::session_stamp(created))
}

/// What `collect_garbage` removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub indexes_removed: u64,
    pub chunks_removed: u64,
    pub bytes_removed: u64,
    pub chunks_kept: u64,
}

/// Mark sessions left running by a crash as failed (called when a data folder is opened to
/// write).
pub(crate) fn fail_interrupted(core: &Core, now: Millis) -> CoreResult<()> {
    let msg = "Interrupted: the server stopped while this job was running";
    core.catalog().fail_interrupted_backups(now, msg)
}

/// Remove the indexes no restore point names: a backup killed after writing an index and
/// before recording its point leaves them (a cancelled or failed one removes its own). Called
/// when a data folder is opened to write, while nothing runs; returns how many were removed.
pub(crate) fn remove_orphan_indexes(core: &Core) -> CoreResult<usize> {
    let named: HashSet<String> = core
        .catalog()
        .all_index_names()?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let mut removed = 0;
    for name in core.repository().list_indexes()? {
        if !named.contains(&name) {
            core.repository().delete_index(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn require_admin(caller: &Caller) -> CoreResult<()> {
    // get_jobs.md and scenario_starting_a_job.md: jobs are for the Portal Administrator role.
    crate::security::authorize(caller, crate::security::Permission::StartJob)
}

/// Who asked for a job action: an API caller, or an account the local operator acts as
/// ([`Jobs::local_actor`](crate::Jobs::local_actor)). The tasks it starts are that account's.
#[derive(Clone, Debug)]
pub struct Actor {
    pub account_id: Uuid,
    pub user_name: String,
}

impl From<&Caller> for Actor {
    fn from(c: &Caller) -> Actor {
        Actor {
            account_id: c.account_id,
            user_name: c.user_name.clone(),
        }
    }
}

/// A run of a backup job on the task runner: back up each VM of the session, record one
/// restore point, apply retention. `C` is the `Core` it runs for: shared with the worker
/// thread, or borrowed for a run in the caller's thread.
struct JobRun<C> {
    core: C,
    job: JobRecord,
    vms: Vec<JobObjectRecord>,
    session: Uuid,
    at: Millis,
    ctl: Arc<RunControl>,
    /// The task that started the run, finished with this message once the run begins.
    trigger: Option<(TaskId, String)>,
}

impl<C: std::ops::Deref<Target = Core>> Engine for JobRun<C> {
    type Output = ();
    const WHAT: &'static str = "backup";

    fn thread_name(&self) -> String {
        format!("job-{}", self.job.name)
    }

    fn run(&mut self) -> CoreResult<()> {
        if let Some((task, message)) = self.trigger.take() {
            if let Err(e) = self.core.catalog().finish_task(task, true, &message) {
                tracing::error!("task {task}: cannot record the result: {e}");
            }
        }
        if let Some(fault) = self.ctl.fault.get() {
            tracing::info!(
                "job '{}': injected fault (rule {}): {}",
                self.job.name,
                fault.rule,
                fault.effect.name()
            );
            let ctl = &self.ctl;
            self.core
                .faults
                .before_work(fault, &|| ctl.cancelled.load(Ordering::Relaxed));
        }
        self.core
            .run_session_inner(&self.job, self.session, self.at, &self.ctl)
    }

    fn result(&self, outcome: &CoreResult<()>) -> &'static str {
        // A run that ends normally may still have failed VMs: the session says.
        let session = outcome
            .as_ref()
            .ok()
            .and_then(|_| self.core.everything().backup_session(self.session).ok());
        match session.map(|s| s.result) {
            Some(SessionResult::Success) => "success",
            Some(SessionResult::Warning) => "warning",
            _ => "failed",
        }
    }

    fn finish(self, outcome: CoreResult<()>) {
        let (core, session) = (&self.core, self.session);
        if let Ok(tasks) = core.everything().backup_task_sessions(Some(session)) {
            core.metrics.backup_done(
                tasks.iter().map(|t| t.bytes_read).sum(),
                tasks.iter().map(|t| t.bytes_transferred).sum(),
            );
        }
        if let Err(e) = outcome {
            let msg = format!("Backup failed: {e}");
            tracing::warn!("job '{}': {msg}", self.job.name);
            let _ = core.fail_pending_tasks(session, &msg);
            if let Err(e) = core.finish_session(session, SessionResult::Failed, Some(&msg), None) {
                tracing::error!("backup session {session}: cannot record the result: {e}");
            }
        }
        // Its VMs are free before the job leaves the runner's table.
        core.busy.release(self.vms.iter().map(|o| &o.vm));
    }
}

/// What `start` does: a normal run, or a retry of the VMs the last failed run missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunKind {
    Start,
    Retry,
}

impl Core {
    // ---- jobs ----

    pub(crate) fn resolve_vm_for_job(&self, v: &str) -> CoreResult<emrest_platform::VmInfo> {
        self.resolve_vm(v)
    }

    fn resolve_vm(&self, v: &str) -> CoreResult<emrest_platform::VmInfo> {
        let v = v.trim();
        if v.len() > 4 && v[..4].eq_ignore_ascii_case("urn:") {
            let r = emrest_platform::parse_hierarchy_obj_ref(v)
                .map_err(|e| CoreError::invalid("HierarchyObjRef", e.to_string()))?;
            if r.type_ != emrest_platform::types::VM {
                return Err(CoreError::invalid(
                    "HierarchyObjRef",
                    format!("'{v}' is not a VM reference"),
                ));
            }
            let key = VmKey {
                root: r.root,
                object_ref: r.object_ref,
            };
            return self
                .inventory()
                .vm(&key)
                .map_err(|_| CoreError::invalid("HierarchyObjRef", format!("there is no VM {v}")));
        }
        let matches: Vec<_> = self
            .inventory()
            .vms()?
            .into_iter()
            .filter(|vm| vm.name == v)
            .collect();
        let n = matches.len();
        match (matches.into_iter().next(), n) {
            (None, _) => Err(CoreError::invalid(
                "VMs",
                format!("there is no VM named '{v}'"),
            )),
            (Some(vm), 1) => Ok(vm),
            (Some(_), n) => Err(CoreError::invalid(
                "VMs",
                format!("{n} VMs are named '{v}'; name it by its HierarchyObjRef"),
            )),
        }
    }

    // ---- actions ----

    fn launch(
        self: &Arc<Self>,
        actor: &Actor,
        job: JobRecord,
        vms: Vec<JobObjectRecord>,
        kind: RunKind,
    ) -> CoreResult<(TaskRecord, Uuid)> {
        if vms.is_empty() {
            return Err(CoreError::Conflict(format!(
                "Job '{}' has no VM left to back up",
                job.name
            )));
        }
        let ctl = Arc::new(RunControl::default());
        let now = now_millis();
        let session = Uuid::new_v4();
        let admission = match self
            .runner
            .admit(Work::Job(job.id), Some(session), ctl.clone())
        {
            Ok(a) => a,
            Err(Refusal::Busy {
                session: Some(running),
            }) => {
                let s = self.everything().backup_session(running).ok();
                return Err(CoreError::Conflict(format!(
                    "Job '{}' is already running (session {}); wait for it to finish or stop it",
                    job.name,
                    s.map(|s| session_name(&s.job_name, s.created))
                        .unwrap_or_else(|| running.to_string())
                )));
            }
            Err(_) => {
                return Err(CoreError::Conflict(
                    "garbage collection is running; start the job again when it has finished"
                        .into(),
                ))
            }
        };
        // A VM being restored is not backed up meanwhile (busy.rs).
        self.claim_for_backup(&job, &vms)?;
        let (operation, verb) = match kind {
            RunKind::Start => ("StartJob", "start"),
            RunKind::Retry => ("RetryJob", "retry"),
        };
        let created = self
            .create_session(session, &job, &vms, now, kind == RunKind::Retry)
            .and_then(|_| {
                self.catalog()
                    .insert_task(operation, None, actor.account_id, now)
            });
        let task = match created {
            Ok(t) => t,
            Err(e) => {
                self.busy.release(vms.iter().map(|o| &o.vm));
                return Err(e);
            }
        };
        let keys: Vec<VmKey> = vms.iter().map(|o| o.vm.clone()).collect();
        // Admitted, claimed and recorded: from here the run happens, and a rule may fire on it.
        let names: Vec<&str> = vms.iter().map(|o| o.name.as_str()).collect();
        let event = crate::faults::Event::Backup {
            vms: &names,
            account: &actor.user_name,
        };
        self.faults.fire_task(&event, &ctl);
        let run = JobRun {
            core: Arc::clone(self),
            // post_jobs_id_actionstart.md: the task finishes once the job is triggered;
            // clients follow the job's backup sessions from there.
            trigger: Some((
                task.id,
                format!("Job \"{}\" triggered to {verb}.", job.name),
            )),
            job,
            vms,
            session,
            at: now,
            ctl,
        };
        if let Err(e) = admission.spawn(run) {
            self.busy.release(keys.iter());
            let msg = match e {
                CoreError::Internal(m) => m,
                e => e.to_string(),
            };
            let _ = self.finish_session(session, SessionResult::Failed, Some(&msg), None);
            let _ = self.catalog().finish_task(task.id, false, &msg);
            return Err(CoreError::Internal(msg));
        }
        Ok((task, session))
    }

    fn claim_for_backup(&self, job: &JobRecord, vms: &[JobObjectRecord]) -> CoreResult<()> {
        // A VM left mixed by an unfinished quick rollback would be backed up as a mix.
        for o in vms {
            self.rollbacks.check(&o.vm)?;
        }
        let keys: Vec<(VmKey, String)> =
            vms.iter().map(|o| (o.vm.clone(), o.name.clone())).collect();
        self.busy.claim(
            &keys,
            &crate::busy::Activity::Backup {
                job: job.name.clone(),
            },
        )
    }

    fn create_session(
        &self,
        session: Uuid,
        job: &JobRecord,
        vms: &[JobObjectRecord],
        now: Millis,
        is_retry: bool,
    ) -> CoreResult<()> {
        let tasks: Vec<NewTaskSession> = vms
            .iter()
            .map(|o| NewTaskSession {
                object: o,
                total_size: self
                    .inventory()
                    .vm(&o.vm)
                    .map(|vm| vm.disks.iter().map(|d| d.size).sum())
                    .unwrap_or(0),
            })
            .collect();
        self.catalog()
            .insert_backup_session(session, job.id, now, is_retry, &tasks)
    }

    fn run_session_inner(
        &self,
        job: &JobRecord,
        session: Uuid,
        at: Millis,
        ctl: &Arc<RunControl>,
    ) -> CoreResult<()> {
        let tasks = self.everything().backup_task_sessions(Some(session))?;
        let total: u64 = tasks.iter().map(|t| t.total_size).sum();
        ctl.total_bytes.store(total, Ordering::Relaxed);
        self.catalog().backup_session_working(session)?;
        let mut done: Vec<(Uuid, VmBackup)> = Vec::new();
        let mut failed = 0usize;
        for t in &tasks {
            if ctl.cancelled() {
                break;
            }
            self.catalog()
                .task_session_in_progress(t.id, now_millis())?;
            let before = ctl.done_bytes.load(Ordering::Relaxed);
            match backup::backup_vm(self, &t.vm, Some(job.platform), ctl.as_ref()) {
                Ok(vb) => {
                    self.catalog().task_session_stats(
                        t.id,
                        vb.stats.bytes_read,
                        vb.stats.bytes_stored,
                        vb.stats.chunks_new,
                        vb.total_size,
                    )?;
                    done.push((t.id, vb));
                }
                Err(CoreError::Repo(emrest_repo::RepoError::Cancelled)) => break,
                Err(e) => {
                    failed += 1;
                    // Count the VM's bytes as processed so progress still reaches the end.
                    let seen = ctl.done_bytes.load(Ordering::Relaxed) - before;
                    ctl.done_bytes
                        .fetch_add(t.total_size.saturating_sub(seen), Ordering::Relaxed);
                    self.finish_task_session(t.id, SessionResult::Failed, &e.to_string(), None)?;
                }
            }
        }
        if ctl.before_commit() {
            let vbs: Vec<VmBackup> = done.into_iter().map(|(_, v)| v).collect();
            backup::discard(self, &vbs);
            // An injected failure (faults.rs) ends the run with the rule's message.
            let msg = match ctl.fault_failure() {
                Some(m) => m.to_string(),
                None => format!(
                    "Job stopped by {}; no restore point was recorded",
                    ctl.canceller()
                ),
            };
            self.fail_pending_tasks(session, &msg)?;
            return self.finish_session(session, SessionResult::Failed, Some(&msg), None);
        }
        if done.is_empty() {
            let msg = "No VM was backed up".to_string();
            self.fail_pending_tasks(session, &msg)?;
            return self.finish_session(session, SessionResult::Failed, Some(&msg), None);
        }
        let ids: Vec<(Uuid, Uuid)> = done.iter().map(|(t, v)| (*t, v.point.id)).collect();
        let vbs: Vec<VmBackup> = done.into_iter().map(|(_, v)| v).collect();
        let (rp, _) = backup::record_point(self, &job.name, job.backup_server_id, at, vbs)?;
        for (t, p) in ids {
            self.finish_task_session(t, SessionResult::Success, "", Some(p))?;
        }
        let (result, msg) = if failed > 0 {
            (
                SessionResult::Failed,
                Some(format!(
                    "{failed} VM(s) failed; retry the job to back them up"
                )),
            )
        } else {
            (SessionResult::Success, None)
        };
        self.finish_session(session, result, msg.as_deref(), Some(rp.id))?;
        if let Err(e) = self.apply_retention(job) {
            tracing::warn!("job '{}': retention failed: {e}", job.name);
        }
        Ok(())
    }

    fn finish_task_session(
        &self,
        id: Uuid,
        result: SessionResult,
        reason: &str,
        point: Option<Uuid>,
    ) -> CoreResult<()> {
        self.catalog()
            .finish_task_session(id, result, reason, point, now_millis())
    }

    fn fail_pending_tasks(&self, session: Uuid, reason: &str) -> CoreResult<()> {
        self.catalog()
            .fail_pending_task_sessions(session, reason, now_millis())
    }

    fn finish_session(
        &self,
        id: Uuid,
        result: SessionResult,
        failure: Option<&str>,
        point: Option<Uuid>,
    ) -> CoreResult<()> {
        let progress = self.runner.progress_of_session(id).unwrap_or(0);
        let progress = if result == SessionResult::Success || point.is_some() {
            100
        } else {
            progress
        };
        self.catalog()
            .finish_backup_session(id, result, failure, now_millis(), progress, point)
    }

    // ---- retention and garbage collection ----

    fn collect_garbage_inner(&self, grace: Duration) -> CoreResult<GcReport> {
        let repo = self.repository();
        let named: HashSet<String> = self
            .catalog()
            .all_index_names()?
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let mut report = GcReport::default();
        let mut live = HashSet::new();
        for name in &named {
            // An index that cannot be read leaves its chunks unknown: stop rather than guess.
            let index = repo.get_index(name).map_err(|e| {
                CoreError::Conflict(format!(
                    "garbage collection stopped before deleting anything: {e}; run `emrest verify`"
                ))
            })?;
            live.extend(index.referenced().copied());
        }
        for name in repo.list_indexes()? {
            if !named.contains(&name) {
                repo.delete_index(&name)?;
                report.indexes_removed += 1;
            }
        }
        let s = repo.gc(&live, grace)?;
        self.metrics.gc_reclaimed(s.bytes_removed);
        report.chunks_removed = s.chunks_removed;
        report.bytes_removed = s.bytes_removed;
        report.chunks_kept = s.chunks_kept;
        Ok(report)
    }

    // ---- integrity ----

    /// Refuse a restore from a point known to be damaged: marked by `verify`, or with an index
    /// that fails its hash, or naming a chunk that is not there (in no pack, or listed only by
    /// a pack whose own index is damaged, which is then named). Returns the point's disk
    /// indexes (in disk order) so a restore need not read them again.
    pub(crate) fn check_point_intact(
        &self,
        point: &VmRestorePointRecord,
    ) -> CoreResult<Vec<Arc<emrest_repo::DiskIndex>>> {
        let damaged = |why: String| {
            CoreError::Conflict(format!(
                "VM restore point {} of '{}' is damaged ({why}); restore from another point",
                point.id, point.vm_name
            ))
        };
        let marked = self.catalog().damage_of(point.id)?;
        if let Some(why) = marked {
            return Err(damaged(why));
        }
        let mut indexes = Vec::with_capacity(point.disks.len());
        for d in &point.disks {
            // Through the repository's index cache: the restores of one point (and the
            // backup after it) read its index once, and check its chunks once.
            let index = self
                .repository()
                .get_index_shared(&d.index)
                .map_err(|e| damaged(e.to_string()))?;
            // One stat per pack file: a pack removed behind the repository's back (its
            // in-memory map still lists the chunks) counts as missing.
            let missing = self
                .repository()
                .check_stored(&index)
                .map_err(|e| damaged(e.to_string()))?
                .missing;
            if let Some(missing) = missing {
                // A chunk in no pack, or listed only by a pack whose own index is damaged.
                return Err(damaged(match self.repository().not_found(&missing) {
                    emrest_repo::RepoError::ChunkMissing { .. } => {
                        format!("chunk {missing} of disk {} is missing", d.name)
                    }
                    e => format!("disk {}: {e}", d.name),
                }));
            }
            indexes.push(index);
        }
        Ok(indexes)
    }

    /// Record which VM restore points verification found damaged (replacing earlier marks).
    pub(crate) fn mark_damaged(&self, points: &HashMap<Uuid, String>) -> CoreResult<()> {
        self.catalog().mark_damaged(points, now_millis())
    }

    // ---- sessions ----

    pub(crate) fn live_session(&self, s: &mut BackupSessionRecord) {
        if let Some(ctl) = self.runner.control_in_session(Work::Job(s.job_id), s.id) {
            s.bytes_total = ctl.total_bytes.load(Ordering::Relaxed);
            s.bytes_done = ctl.done_bytes.load(Ordering::Relaxed).min(s.bytes_total);
            if s.state != SessionState::Stopped {
                s.progress = ctl.percent();
            }
        }
    }
}

impl View<'_> {
    /// Every job, by name (Portal Administrator only).
    pub fn jobs(&self) -> CoreResult<Vec<JobRecord>> {
        require_admin(self.caller())?;
        self.catalog().jobs()
    }

    /// One job (Portal Administrator only).
    pub fn job(&self, id: Uuid) -> CoreResult<JobRecord> {
        require_admin(self.caller())?;
        self.catalog()
            .job(id)?
            .ok_or_else(|| CoreError::not_found("Job", id))
    }

    /// The job of that name (case-insensitive), if any.
    pub fn job_by_name(&self, name: &str) -> CoreResult<Option<JobRecord>> {
        match self.catalog().job_id_by_name(name)? {
            Some(id) => Ok(Some(self.job(id)?)),
            None => Ok(None),
        }
    }

    /// Backup job sessions, oldest first; of one job when given.
    pub fn backup_sessions(&self, job: Option<Uuid>) -> CoreResult<Vec<BackupSessionRecord>> {
        if let Some(j) = job {
            self.job(j)?;
        }
        let mut v = self.catalog().backup_sessions(job)?;
        for s in &mut v {
            self.live_session(s);
        }
        Ok(v)
    }

    /// One backup job session.
    pub fn backup_session(&self, id: Uuid) -> CoreResult<BackupSessionRecord> {
        let s = self.catalog().backup_session(id)?;
        let mut s = s.ok_or_else(|| CoreError::not_found("Backup session", id))?;
        self.live_session(&mut s);
        Ok(s)
    }

    /// Backup task sessions in job order; of one job session when given.
    pub fn backup_task_sessions(
        &self,
        session: Option<Uuid>,
    ) -> CoreResult<Vec<BackupTaskSessionRecord>> {
        self.catalog()
            .backup_task_sessions(session)?
            .ok_or_else(|| match session {
                Some(s) => CoreError::not_found("Backup session", s),
                None => CoreError::Internal("backup task sessions vanished".into()),
            })
    }

    /// One backup task session.
    pub fn backup_task_session(&self, id: Uuid) -> CoreResult<BackupTaskSessionRecord> {
        self.catalog()
            .backup_task_session(id)?
            .ok_or_else(|| CoreError::not_found("Backup task session", id))
    }
}

impl Jobs<'_> {
    /// The account a command-line job action is made as: `name`, or the built-in
    /// administrator ([`crate::ADMIN_ACCOUNT`]) by default. Its tasks are its own, so it and
    /// every administrator see them through the API; the account must hold a role that may
    /// start jobs, as an API caller must.
    pub fn local_actor(&self, name: Option<&str>) -> CoreResult<Actor> {
        let name = name.unwrap_or(crate::ADMIN_ACCOUNT);
        let account = self.account_named(name).map_err(|e| match e {
            CoreError::NotFound { .. } => CoreError::invalid(
                "as",
                format!("no account '{name}' to act as; name an administrator with --as"),
            ),
            e => e,
        })?;
        let permission = crate::security::Permission::StartJob;
        if !account.roles.iter().any(|r| r.grants(permission)) {
            return Err(CoreError::Forbidden(format!(
                "Access denied: account '{}' may not start, stop or edit jobs; name an administrator with --as",
                account.name
            )));
        }
        Ok(Actor {
            account_id: account.id,
            user_name: account.name,
        })
    }

    /// Create a backup job over VMs named by HierarchyObjRef or by VM name (unique across
    /// roots), all on one platform; the backup server is the one their hierarchy root belongs to.
    pub fn create_job(
        &self,
        name: &str,
        vms: &[String],
        retention: u32,
        description: &str,
    ) -> CoreResult<JobRecord> {
        let name = name.trim();
        if name.is_empty() || name.contains(['@', '/', '\\']) {
            return Err(CoreError::invalid(
                "Name",
                "a job name must not be empty nor contain '@', '/' or '\\'",
            ));
        }
        if retention == 0 {
            return Err(CoreError::invalid(
                "RetainCycles",
                "retention must keep at least one restore point",
            ));
        }
        if vms.is_empty() {
            return Err(CoreError::invalid("VMs", "a job needs at least one VM"));
        }
        if self.everything().job_by_name(name)?.is_some() {
            return Err(CoreError::Conflict(format!(
                "a job named '{name}' already exists"
            )));
        }
        let mut objects: Vec<(emrest_platform::VmInfo, String)> = Vec::new();
        for v in vms {
            let vm = self.resolve_vm(v)?;
            if objects.iter().any(|(o, _)| o.key() == vm.key()) {
                return Err(CoreError::invalid(
                    "VMs",
                    format!("VM '{}' is named twice", vm.name),
                ));
            }
            let obj_ref = vm.hierarchy_obj_ref();
            objects.push((vm, obj_ref));
        }
        let platform = objects[0].0.kind;
        if let Some((other, _)) = objects.iter().find(|(o, _)| o.kind != platform) {
            return Err(CoreError::invalid(
                "VMs",
                format!(
                    "VM '{}' is a {} VM; one job backs up VMs of one platform ({})",
                    other.name,
                    other.kind.wire_platform(),
                    platform.wire_platform()
                ),
            ));
        }
        let roots: HashMap<Uuid, Uuid> = self.catalog().hierarchy_roots()?.into_iter().collect();
        let server = *roots.get(&objects[0].0.root).ok_or_else(|| {
            CoreError::invalid(
                "VMs",
                format!(
                    "the hierarchy root of VM '{}' is not registered with a backup server",
                    objects[0].0.name
                ),
            )
        })?;
        if let Some((other, _)) = objects
            .iter()
            .find(|(o, _)| roots.get(&o.root) != Some(&server))
        {
            return Err(CoreError::invalid(
                "VMs",
                format!("VM '{}' belongs to another backup server", other.name),
            ));
        }
        let id = Uuid::new_v4();
        let job = JobRecord {
            id,
            name: name.to_string(),
            backup_server_id: server,
            platform,
            description: description.to_string(),
            retention,
            created: now_millis(),
            schedule: None,
            schedule_enabled: true,
            next_run: None,
            objects: objects
                .into_iter()
                .map(|(vm, obj_ref)| JobObjectRecord {
                    id: Uuid::new_v4(),
                    vm: vm.key(),
                    hierarchy_obj_ref: obj_ref,
                    name: vm.name,
                })
                .collect(),
        };
        self.catalog().insert_job(&job)?;
        self.everything().job(id)
    }

    /// Whether a job is running now.
    pub fn job_running(&self, id: Uuid) -> bool {
        self.runner.is_running(Work::Job(id))
    }

    /// POST /jobs/{ID}?action=start|stop|retry for an API caller (Portal Administrator only).
    pub fn job_action(&self, caller: &Caller, id: Uuid, action: &str) -> CoreResult<TaskRecord> {
        require_admin(caller)?;
        let actor = Actor::from(caller);
        match action.to_ascii_lowercase().as_str() {
            "start" => self.start_job(&actor, id).map(|(t, _)| t),
            "retry" => self.retry_job(&actor, id).map(|(t, _)| t),
            "stop" => self.stop_job(&actor, id),
            _ => Err(CoreError::invalid(
                "action",
                format!(
                    "unknown job action '{}': expected start, stop, retry, clone or toggleScheduleEnabled",
                    crate::error::clip(action, 80)
                ),
            )),
        }
    }

    /// Start a job on a worker; returns the running task and the new session's ID at once.
    pub fn start_job(&self, actor: &Actor, id: Uuid) -> CoreResult<(TaskRecord, Uuid)> {
        let job = self.everything().job(id)?;
        let vms = job.objects.clone();
        self.launch(actor, job, vms, RunKind::Start)
    }

    /// Retry a job whose last session failed: only the VMs that were not backed up run again
    /// (post_jobs_id_actionretry.md: only for jobs finished with the Failed status).
    pub fn retry_job(&self, actor: &Actor, id: Uuid) -> CoreResult<(TaskRecord, Uuid)> {
        let job = self.everything().job(id)?;
        let last = self
            .everything()
            .backup_sessions(Some(id))?
            .into_iter()
            .max_by_key(|s| s.created);
        let last = match last {
            Some(s) if s.result == SessionResult::Failed => s,
            _ => {
                return Err(CoreError::Conflict(format!(
                    "Job '{}' can be retried only after a failed run",
                    job.name
                )))
            }
        };
        let done: HashSet<VmKey> = self
            .everything()
            .backup_task_sessions(Some(last.id))?
            .into_iter()
            .filter(|t| t.result == SessionResult::Success && t.vm_restore_point_id.is_some())
            .map(|t| t.vm)
            .collect();
        let vms: Vec<JobObjectRecord> = job
            .objects
            .iter()
            .filter(|o| !done.contains(&o.vm))
            .cloned()
            .collect();
        self.launch(actor, job, vms, RunKind::Retry)
    }

    /// Ask a running job to stop; it stops between chunks and records nothing.
    pub fn stop_job(&self, actor: &Actor, id: Uuid) -> CoreResult<TaskRecord> {
        let job = self.everything().job(id)?;
        self.runner
            .control(Work::Job(id))
            .ok_or_else(|| CoreError::Conflict(format!("Job '{}' is not running", job.name)))?
            .cancel(&actor.user_name);
        let now = now_millis();
        let task = self
            .catalog()
            .insert_task("StopJob", None, actor.account_id, now)?;
        // post_jobs_id_actionstop.md: the task reports the trigger.
        let msg = format!("Job \"{}\" triggered to stop.", job.name);
        self.catalog().finish_task(task.id, true, &msg)?;
        self.catalog()
            .task(task.id)?
            .ok_or_else(|| CoreError::Internal("the stop task vanished".into()))
    }

    /// Stop the job a backup session belongs to, if that session is the one running.
    pub fn stop_backup_session(&self, caller: &Caller, session: Uuid) -> CoreResult<TaskRecord> {
        require_admin(caller)?;
        let s = self.everything().backup_session(session)?;
        if self.runner.session(Work::Job(s.job_id)) != Some(session) {
            return Err(CoreError::Conflict(format!(
                "Backup session '{}' is not running",
                session_name(&s.job_name, s.created)
            )));
        }
        self.stop_job(&Actor::from(caller), s.job_id)
    }

    /// Run a job to the end in this thread (demo, CLI, tests), as if started at `at`; returns
    /// the finished session. A job already running is refused.
    pub fn run_job_now(&self, id: Uuid, at: Millis) -> CoreResult<BackupSessionRecord> {
        let job = self.everything().job(id)?;
        let ctl = Arc::new(RunControl::default());
        let session = Uuid::new_v4();
        let Ok(admission) = self.runner.admit(Work::Job(id), Some(session), ctl.clone()) else {
            return Err(CoreError::Conflict(format!(
                "Job '{}' is already running, or garbage collection is",
                job.name
            )));
        };
        self.claim_for_backup(&job, &job.objects)?;
        if let Err(e) = self.create_session(session, &job, &job.objects, at, false) {
            self.busy.release(job.objects.iter().map(|o| &o.vm));
            return Err(e);
        }
        admission.run(JobRun {
            core: self.0.as_ref(),
            trigger: None,
            vms: job.objects.clone(),
            job,
            session,
            at,
            ctl,
        });
        self.everything().backup_session(session)
    }

    /// Remove the job's oldest restore points beyond its retention, with their indexes (as
    /// each finished run does).
    pub fn apply_retention(&self, job: &JobRecord) -> CoreResult<Vec<Uuid>> {
        self.0.apply_retention(job)
    }

    /// Remove indexes no restore point names and chunks no index references that are older
    /// than `grace`. Refused while a job runs (its indexes are not in the catalog yet).
    pub fn collect_garbage(&self, grace: Duration) -> CoreResult<GcReport> {
        let admission = match self.runner.admit(Work::Gc, None, Arc::default()) {
            Ok(a) => a,
            Err(Refusal::Job) => {
                return Err(CoreError::Conflict(
                    "a backup job is running; collect garbage when it has finished".into(),
                ))
            }
            Err(_) => {
                return Err(CoreError::Conflict(
                    "garbage collection is already running".into(),
                ))
            }
        };
        admission.run_here("gc", || self.collect_garbage_inner(grace))
    }

    /// Collect garbage every `every` on a background thread for as long as this `Core` lives;
    /// a run that meets a running job is skipped until the next turn.
    pub fn schedule_gc(&self, every: Duration, grace: Duration) -> CoreResult<()> {
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("gc".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(core) = weak.upgrade() else { return };
                match core.jobs().collect_garbage(grace) {
                    Ok(r) => tracing::info!(
                        "gc: removed {} index(es), {} chunk(s) ({} bytes); kept {} chunk(s)",
                        r.indexes_removed,
                        r.chunks_removed,
                        r.bytes_removed,
                        r.chunks_kept
                    ),
                    Err(CoreError::Conflict(m)) => tracing::info!("gc skipped: {m}"),
                    Err(e) => tracing::warn!("gc failed: {e}"),
                }
            })
            .map(|_| ())
            .map_err(|e| CoreError::Internal(format!("cannot start the gc thread: {e}")))
    }

    /// Wait until no job is running (tests, CLI `--wait`, orderly shutdown).
    pub fn wait_jobs_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.runner.no_jobs() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Core {
    /// Remove the job's oldest restore points beyond its retention, with their indexes. A point
    /// that a restore is using right now is kept until a later run. Returns the points removed.
    pub(crate) fn apply_retention(&self, job: &JobRecord) -> CoreResult<Vec<Uuid>> {
        let Some(backup) = self
            .catalog()
            .backups()?
            .into_iter()
            .find(|b| b.name == job.name)
        else {
            return Ok(Vec::new());
        };
        // Newest first.
        let points = self.catalog().restore_points(Some(backup.id))?;
        let mut removed = Vec::new();
        for rp in points.iter().skip(job.retention as usize) {
            let removed_indexes = self.catalog().remove_restore_point(rp.id, |vm_points| {
                let journalled = self.rollbacks.journalled_points();
                vm_points.iter().any(|id| journalled.contains(id))
            })?;
            let Some(indexes) = removed_indexes else {
                tracing::info!(
                    "retention keeps restore point {} for now: a restore is using it",
                    rp.id
                );
                continue;
            };
            // The catalog no longer names these; a failure here leaves an orphan that gc removes.
            for name in indexes {
                if let Err(e) = self.repository().delete_index(&name) {
                    tracing::warn!("retention: cannot remove index {name}: {e}");
                }
            }
            removed.push(rp.id);
        }
        Ok(removed)
    }
}
