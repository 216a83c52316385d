//! Backup jobs and their sessions: a job names the VMs it backs up and how many restore points
//! to keep; starting it runs a backup job session on a worker thread, with one task session per
//! VM. After a successful run the oldest points beyond the job's retention are removed from the
//! catalog (with their indexes); `collect_garbage` then reclaims the chunks nothing references.
//!
//! Life cycle, as em_rest/get_backupsessions_id.md and get_backuptasksessions_id.md name it:
//! job session Starting → Working → Stopped with Result Success/Warning/Failed (None while it
//! runs); task session Pending → InProgress → Completed.

use crate::backup::{self, VmBackup};
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::restore::RunControl;
use crate::runner::{Engine, Refusal, Work};
use crate::Core;
use emrest_platform::{PlatformKind, VmKey};
use emrest_repo::Control;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

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
    fn parse(s: &str) -> TaskSessionState {
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

// ---- catalog rows ----

fn uuid_col(row: &Row, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(i)?;
    Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_uuid_col(row: &Row, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let s: Option<String> = row.get(i)?;
    Ok(s.and_then(|s| Uuid::parse_str(&s).ok()))
}

/// Jobs, aliased `j` (the query service filters on `j.` columns).
pub(crate) const JOB_SELECT: &str =
    "SELECT id, name, backup_server_id, platform, description, retain_cycles, created FROM jobs j";

pub(crate) fn job_row(r: &Row) -> rusqlite::Result<JobRecord> {
    let platform: String = r.get(3)?;
    Ok(JobRecord {
        id: uuid_col(r, 0)?,
        name: r.get(1)?,
        backup_server_id: uuid_col(r, 2)?,
        platform: PlatformKind::from_host_type(&platform).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown platform {platform}").into(),
            )
        })?,
        description: r.get(4)?,
        retention: r.get::<_, i64>(5)?.clamp(1, u32::MAX as i64) as u32,
        created: r.get(6)?,
        objects: Vec::new(),
    })
}

pub(crate) const SESSION_SELECT: &str =
    "SELECT s.id, s.job_id, j.name, j.backup_server_id, s.created, s.ended, s.state, s.result,
        s.progress, s.failure_message, s.is_retry, s.restore_point_id
   FROM backup_sessions s JOIN jobs j ON j.id = s.job_id";

pub(crate) fn session_row(r: &Row) -> rusqlite::Result<BackupSessionRecord> {
    Ok(BackupSessionRecord {
        id: uuid_col(r, 0)?,
        job_id: uuid_col(r, 1)?,
        job_name: r.get(2)?,
        backup_server_id: uuid_col(r, 3)?,
        created: r.get(4)?,
        ended: r.get(5)?,
        state: SessionState::parse(&r.get::<_, String>(6)?),
        result: SessionResult::parse(&r.get::<_, String>(7)?),
        progress: r.get::<_, i64>(8)?.clamp(0, 100) as u8,
        failure_message: r.get(9)?,
        is_retry: r.get(10)?,
        restore_point_id: opt_uuid_col(r, 11)?,
        bytes_done: 0,
        bytes_total: 0,
    })
}

pub(crate) const TASK_SESSION_SELECT: &str =
    "SELECT t.id, t.session_id, j.name, s.created, j.backup_server_id, t.vm_root, t.vm_ref,
        t.obj_ref, t.vm_name, t.created, t.ended, t.state, t.result, t.reason, t.total_size,
        t.bytes_read, t.bytes_transferred, t.chunks_new, t.vm_restore_point_id
   FROM backup_task_sessions t JOIN backup_sessions s ON s.id = t.session_id
   JOIN jobs j ON j.id = s.job_id";

pub(crate) fn task_session_row(r: &Row) -> rusqlite::Result<BackupTaskSessionRecord> {
    Ok(BackupTaskSessionRecord {
        id: uuid_col(r, 0)?,
        session_id: uuid_col(r, 1)?,
        job_name: r.get(2)?,
        session_created: r.get(3)?,
        backup_server_id: uuid_col(r, 4)?,
        vm: VmKey {
            root: uuid_col(r, 5)?,
            object_ref: r.get(6)?,
        },
        hierarchy_obj_ref: r.get(7)?,
        vm_name: r.get(8)?,
        created: r.get(9)?,
        ended: r.get(10)?,
        state: TaskSessionState::parse(&r.get::<_, String>(11)?),
        result: SessionResult::parse(&r.get::<_, String>(12)?),
        reason: r.get(13)?,
        total_size: r.get::<_, i64>(14)?.max(0) as u64,
        bytes_read: r.get::<_, i64>(15)?.max(0) as u64,
        bytes_transferred: r.get::<_, i64>(16)?.max(0) as u64,
        chunks_new: r.get::<_, i64>(17)?.max(0) as u64,
        vm_restore_point_id: opt_uuid_col(r, 18)?,
    })
}

pub(crate) fn load_objects(c: &Connection, job: &mut JobRecord) -> CoreResult<()> {
    let mut st = c.prepare(
        "SELECT id, vm_root, vm_ref, obj_ref, name FROM job_objects WHERE job_id = ?1 ORDER BY ordinal",
    )?;
    let rows = st.query_map([job.id.to_string()], |r| {
        Ok(JobObjectRecord {
            id: uuid_col(r, 0)?,
            vm: VmKey {
                root: uuid_col(r, 1)?,
                object_ref: r.get(2)?,
            },
            hierarchy_obj_ref: r.get(3)?,
            name: r.get(4)?,
        })
    })?;
    job.objects = rows.collect::<Result<_, _>>()?;
    Ok(())
}

/// Index names of a restore point's VM points.
fn point_indexes(c: &Connection, rp: Uuid) -> CoreResult<Vec<String>> {
    let mut st = c.prepare(
        "SELECT d.index_name FROM point_disks d JOIN vm_restore_points v ON v.id = d.vm_restore_point_id
          WHERE v.restore_point_id = ?1",
    )?;
    let rows = st.query_map([rp.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Mark sessions left running by a crash as failed (called when a data folder is opened to
/// write).
pub(crate) fn fail_interrupted(core: &Core, now: Millis) -> CoreResult<()> {
    let mut c = core.catalog().conn()?;
    let tx = c.transaction()?;
    let msg = "Interrupted: the server stopped while this job was running";
    tx.execute(
        "UPDATE backup_task_sessions SET state = 'Completed', result = 'Failed', ended = ?1, reason = ?2
          WHERE state != 'Completed'",
        params![now, msg],
    )?;
    tx.execute(
        "UPDATE backup_sessions SET state = 'Stopped', result = 'Failed', ended = ?1, failure_message = ?2
          WHERE state != 'Stopped'",
        params![now, msg],
    )?;
    tx.commit()?;
    Ok(())
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
/// ([`Core::local_actor`]). The tasks it starts are that account's.
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
        self.core
            .run_session_inner(&self.job, self.session, self.at, &self.ctl)
    }

    fn finish(self, outcome: CoreResult<()>) {
        let (core, session) = (&self.core, self.session);
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
        if self.job_by_name(name)?.is_some() {
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
        let now = now_millis();
        {
            let mut c = self.catalog().conn()?;
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO jobs (id, name, backup_server_id, platform, description, retain_cycles, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id.to_string(), name, server.to_string(), platform.host_type(), description, retention, now],
            )?;
            for (i, (vm, obj_ref)) in objects.iter().enumerate() {
                tx.execute(
                    "INSERT INTO job_objects (id, job_id, ordinal, vm_root, vm_ref, obj_ref, name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        Uuid::new_v4().to_string(),
                        id.to_string(),
                        i as i64,
                        vm.root.to_string(),
                        vm.object_ref,
                        obj_ref,
                        vm.name
                    ],
                )?;
            }
            tx.commit()?;
        }
        self.job(id)
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

    /// Every job, by name.
    pub fn jobs(&self) -> CoreResult<Vec<JobRecord>> {
        let c = self.catalog().conn()?;
        let mut jobs = {
            let mut st = c.prepare(&format!("{JOB_SELECT} ORDER BY name"))?;
            let rows = st.query_map([], job_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for j in &mut jobs {
            load_objects(&c, j)?;
        }
        Ok(jobs)
    }

    /// One job.
    pub fn job(&self, id: Uuid) -> CoreResult<JobRecord> {
        let c = self.catalog().conn()?;
        let job = c
            .query_row(
                &format!("{JOB_SELECT} WHERE id = ?1"),
                [id.to_string()],
                job_row,
            )
            .optional()?;
        let mut job = job.ok_or_else(|| CoreError::not_found("Job", id))?;
        load_objects(&c, &mut job)?;
        Ok(job)
    }

    /// The job of that name (case-insensitive), if any.
    pub fn job_by_name(&self, name: &str) -> CoreResult<Option<JobRecord>> {
        let id: Option<String> = self
            .catalog()
            .conn()?
            .query_row("SELECT id FROM jobs WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        match id.and_then(|s| Uuid::parse_str(&s).ok()) {
            Some(id) => Ok(Some(self.job(id)?)),
            None => Ok(None),
        }
    }

    /// Jobs, for an API caller (Portal Administrator only).
    pub fn jobs_for(&self, caller: &Caller) -> CoreResult<Vec<JobRecord>> {
        require_admin(caller)?;
        self.jobs()
    }

    /// One job, for an API caller (Portal Administrator only).
    pub fn job_for(&self, caller: &Caller, id: Uuid) -> CoreResult<JobRecord> {
        require_admin(caller)?;
        self.job(id)
    }

    /// Whether a job is running now.
    pub fn job_running(&self, id: Uuid) -> bool {
        self.runner.is_running(Work::Job(id))
    }

    // ---- actions ----

    /// POST /jobs/{ID}?action=start|stop|retry for an API caller (Portal Administrator only).
    pub fn job_action(
        self: &Arc<Self>,
        caller: &Caller,
        id: Uuid,
        action: &str,
    ) -> CoreResult<TaskRecord> {
        require_admin(caller)?;
        let actor = Actor::from(caller);
        match action.to_ascii_lowercase().as_str() {
            "start" => self.start_job(&actor, id).map(|(t, _)| t),
            "retry" => self.retry_job(&actor, id).map(|(t, _)| t),
            "stop" => self.stop_job(&actor, id),
            _ => Err(CoreError::invalid(
                "action",
                format!(
                    "unknown job action '{}': expected start, stop or retry",
                    crate::error::clip(action, 80)
                ),
            )),
        }
    }

    /// Start a job on a worker; returns the running task and the new session's ID at once.
    pub fn start_job(self: &Arc<Self>, actor: &Actor, id: Uuid) -> CoreResult<(TaskRecord, Uuid)> {
        let job = self.job(id)?;
        let vms = job.objects.clone();
        self.launch(actor, job, vms, RunKind::Start)
    }

    /// Retry a job whose last session failed: only the VMs that were not backed up run again
    /// (post_jobs_id_actionretry.md: only for jobs finished with the Failed status).
    pub fn retry_job(self: &Arc<Self>, actor: &Actor, id: Uuid) -> CoreResult<(TaskRecord, Uuid)> {
        let job = self.job(id)?;
        let last = self
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
        let job = self.job(id)?;
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
        let s = self.backup_session(session)?;
        if self.runner.session(Work::Job(s.job_id)) != Some(session) {
            return Err(CoreError::Conflict(format!(
                "Backup session '{}' is not running",
                session_name(&s.job_name, s.created)
            )));
        }
        self.stop_job(&Actor::from(caller), s.job_id)
    }

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
                let s = self.backup_session(running).ok();
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
        let mut c = self.catalog().conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO backup_sessions (id, job_id, created, state, result, progress, is_retry)
             VALUES (?1, ?2, ?3, 'Starting', 'None', 0, ?4)",
            params![session.to_string(), job.id.to_string(), now, is_retry],
        )?;
        for (i, o) in vms.iter().enumerate() {
            let size: u64 = self
                .inventory()
                .vm(&o.vm)
                .map(|vm| vm.disks.iter().map(|d| d.size).sum())
                .unwrap_or(0);
            tx.execute(
                "INSERT INTO backup_task_sessions (id, session_id, ordinal, vm_root, vm_ref, obj_ref, vm_name,
                     created, state, result, reason, total_size, bytes_read, bytes_transferred, chunks_new)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'Pending', 'None', '', ?9, 0, 0, 0)",
                params![Uuid::new_v4().to_string(), session.to_string(), i as i64, o.vm.root.to_string(),
                        o.vm.object_ref, o.hierarchy_obj_ref, o.name, now, size as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Run a job to the end in this thread (demo, CLI, tests), as if started at `at`; returns
    /// the finished session. A job already running is refused.
    pub fn run_job_now(&self, id: Uuid, at: Millis) -> CoreResult<BackupSessionRecord> {
        let job = self.job(id)?;
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
            core: self,
            trigger: None,
            vms: job.objects.clone(),
            job,
            session,
            at,
            ctl,
        });
        self.backup_session(session)
    }

    fn run_session_inner(
        &self,
        job: &JobRecord,
        session: Uuid,
        at: Millis,
        ctl: &Arc<RunControl>,
    ) -> CoreResult<()> {
        let tasks = self.backup_task_sessions(Some(session))?;
        let total: u64 = tasks.iter().map(|t| t.total_size).sum();
        ctl.total_bytes.store(total, Ordering::Relaxed);
        self.catalog().conn()?.execute(
            "UPDATE backup_sessions SET state = 'Working' WHERE id = ?1",
            [session.to_string()],
        )?;
        let mut done: Vec<(Uuid, VmBackup)> = Vec::new();
        let mut failed = 0usize;
        for t in &tasks {
            if ctl.cancelled() {
                break;
            }
            self.catalog().conn()?.execute(
                "UPDATE backup_task_sessions SET state = 'InProgress', created = ?2 WHERE id = ?1",
                params![t.id.to_string(), now_millis()],
            )?;
            let before = ctl.done_bytes.load(Ordering::Relaxed);
            match backup::backup_vm(self, &t.vm, Some(job.platform), ctl.as_ref()) {
                Ok(vb) => {
                    self.catalog().conn()?.execute(
                        "UPDATE backup_task_sessions SET bytes_read = ?2, bytes_transferred = ?3, chunks_new = ?4,
                             total_size = ?5 WHERE id = ?1",
                        params![t.id.to_string(), vb.stats.bytes_read as i64, vb.stats.bytes_stored as i64,
                                vb.stats.chunks_new as i64, vb.total_size as i64],
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
        if ctl.cancelled() {
            let vbs: Vec<VmBackup> = done.into_iter().map(|(_, v)| v).collect();
            backup::discard(self, &vbs);
            let msg = format!(
                "Job stopped by {}; no restore point was recorded",
                ctl.canceller()
            );
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
        self.catalog().conn()?.execute(
            "UPDATE backup_task_sessions SET state = 'Completed', result = ?2, reason = ?3, ended = ?4,
                 vm_restore_point_id = ?5 WHERE id = ?1",
            params![id.to_string(), result.as_str(), reason, now_millis(), point.map(|p| p.to_string())],
        )?;
        Ok(())
    }

    fn fail_pending_tasks(&self, session: Uuid, reason: &str) -> CoreResult<()> {
        self.catalog().conn()?.execute(
            "UPDATE backup_task_sessions SET state = 'Completed', result = 'Failed', reason = ?2, ended = ?3
              WHERE session_id = ?1 AND state != 'Completed'",
            params![session.to_string(), reason, now_millis()],
        )?;
        Ok(())
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
        self.catalog().conn()?.execute(
            "UPDATE backup_sessions SET state = 'Stopped', result = ?2, failure_message = ?3, ended = ?4,
                 progress = ?5, restore_point_id = ?6 WHERE id = ?1",
            params![id.to_string(), result.as_str(), failure, now_millis(), progress, point.map(|p| p.to_string())],
        )?;
        Ok(())
    }

    // ---- retention and garbage collection ----

    /// Remove the job's oldest restore points beyond its retention, with their indexes. A point
    /// that a restore is using right now is kept until a later run. Returns the points removed.
    pub fn apply_retention(&self, job: &JobRecord) -> CoreResult<Vec<Uuid>> {
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
            let indexes = {
                let mut c = self.catalog().conn()?;
                let busy: i64 = c.query_row(
                    "SELECT count(*) FROM restore_sessions s JOIN vm_restore_points v ON v.id = s.vm_restore_point_id
                      WHERE v.restore_point_id = ?1 AND s.state != 'Stopped'",
                    [rp.id.to_string()],
                    |r| r.get(0),
                )?;
                let journalled = self.rollbacks.journalled_points();
                let mut st = c.prepare_cached(
                    "SELECT id FROM vm_restore_points WHERE restore_point_id = ?1",
                )?;
                let flushing = st
                    .query_map([rp.id.to_string()], |r| r.get::<_, String>(0))?
                    .filter_map(Result::ok)
                    .any(|id| Uuid::parse_str(&id).is_ok_and(|id| journalled.contains(&id)));
                drop(st);
                if busy > 0 || flushing {
                    tracing::info!(
                        "retention keeps restore point {} for now: a restore is using it",
                        rp.id
                    );
                    continue;
                }
                let indexes = point_indexes(&c, rp.id)?;
                let tx = c.transaction()?;
                let id = rp.id.to_string();
                let vm_points = "SELECT id FROM vm_restore_points WHERE restore_point_id = ?1";
                tx.execute(
                    &format!("UPDATE backup_task_sessions SET vm_restore_point_id = NULL WHERE vm_restore_point_id IN ({vm_points})"),
                    [&id],
                )?;
                tx.execute(
                    &format!(
                        "DELETE FROM damaged_points WHERE vm_restore_point_id IN ({vm_points})"
                    ),
                    [&id],
                )?;
                tx.execute(
                    &format!("DELETE FROM point_disks WHERE vm_restore_point_id IN ({vm_points})"),
                    [&id],
                )?;
                tx.execute(
                    "DELETE FROM vm_restore_points WHERE restore_point_id = ?1",
                    [&id],
                )?;
                tx.execute(
                    "DELETE FROM backup_files WHERE restore_point_id = ?1",
                    [&id],
                )?;
                tx.execute(
                    "UPDATE backup_sessions SET restore_point_id = NULL WHERE restore_point_id = ?1",
                    [&id],
                )?;
                tx.execute("DELETE FROM restore_points WHERE id = ?1", [&id])?;
                tx.commit()?;
                indexes
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
    pub fn schedule_gc(self: &Arc<Self>, every: Duration, grace: Duration) -> CoreResult<()> {
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("gc".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(core) = weak.upgrade() else { return };
                match core.collect_garbage(grace) {
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
        report.chunks_removed = s.chunks_removed;
        report.bytes_removed = s.bytes_removed;
        report.chunks_kept = s.chunks_kept;
        Ok(report)
    }

    // ---- integrity ----

    /// Refuse a restore from a point known to be damaged: marked by `verify`, or with an index
    /// that fails its hash, or naming a chunk that is not there. Returns the point's disk
    /// indexes (in disk order) so a restore need not read them again.
    pub fn check_point_intact(
        &self,
        point: &VmRestorePointRecord,
    ) -> CoreResult<Vec<Arc<emrest_repo::DiskIndex>>> {
        let damaged = |why: String| {
            CoreError::Conflict(format!(
                "VM restore point {} of '{}' is damaged ({why}); restore from another point",
                point.id, point.vm_name
            ))
        };
        let marked: Option<String> = self
            .catalog()
            .conn()?
            .query_row(
                "SELECT reason FROM damaged_points WHERE vm_restore_point_id = ?1",
                [point.id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
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
                return Err(damaged(format!(
                    "chunk {missing} of disk {} is missing",
                    d.name
                )));
            }
            indexes.push(index);
        }
        Ok(indexes)
    }

    /// Record which VM restore points verification found damaged (replacing earlier marks).
    pub(crate) fn mark_damaged(&self, points: &HashMap<Uuid, String>) -> CoreResult<()> {
        let mut c = self.catalog().conn()?;
        let tx = c.transaction()?;
        tx.execute("DELETE FROM damaged_points", [])?;
        let now = now_millis();
        for (p, why) in points {
            tx.execute(
                "INSERT OR REPLACE INTO damaged_points (vm_restore_point_id, reason, found) VALUES (?1, ?2, ?3)",
                params![p.to_string(), why, now],
            )?;
        }
        tx.commit()?;
        Ok(())
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

    /// Backup job sessions, oldest first; of one job when given.
    pub fn backup_sessions(&self, job: Option<Uuid>) -> CoreResult<Vec<BackupSessionRecord>> {
        if let Some(j) = job {
            self.job(j)?;
        }
        let mut v = {
            let c = self.catalog().conn()?;
            let mut st = c.prepare(&format!(
                "{SESSION_SELECT} WHERE (?1 IS NULL OR s.job_id = ?1) ORDER BY s.created, s.id"
            ))?;
            let rows = st.query_map([job.map(|j| j.to_string())], session_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for s in &mut v {
            self.live_session(s);
        }
        Ok(v)
    }

    /// One backup job session.
    pub fn backup_session(&self, id: Uuid) -> CoreResult<BackupSessionRecord> {
        let s = self
            .catalog()
            .conn()?
            .query_row(
                &format!("{SESSION_SELECT} WHERE s.id = ?1"),
                [id.to_string()],
                session_row,
            )
            .optional()?;
        let mut s = s.ok_or_else(|| CoreError::not_found("Backup session", id))?;
        self.live_session(&mut s);
        Ok(s)
    }

    /// Backup task sessions in job order; of one job session when given.
    pub fn backup_task_sessions(
        &self,
        session: Option<Uuid>,
    ) -> CoreResult<Vec<BackupTaskSessionRecord>> {
        let c = self.catalog().conn()?;
        if let Some(s) = session {
            let exists: i64 = c.query_row(
                "SELECT count(*) FROM backup_sessions WHERE id = ?1",
                [s.to_string()],
                |r| r.get(0),
            )?;
            if exists == 0 {
                return Err(CoreError::not_found("Backup session", s));
            }
        }
        let mut st = c.prepare(&format!(
            "{TASK_SESSION_SELECT} WHERE (?1 IS NULL OR t.session_id = ?1) ORDER BY s.created, s.id, t.ordinal"
        ))?;
        let rows = st.query_map([session.map(|s| s.to_string())], task_session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One backup task session.
    pub fn backup_task_session(&self, id: Uuid) -> CoreResult<BackupTaskSessionRecord> {
        self.catalog()
            .conn()?
            .query_row(
                &format!("{TASK_SESSION_SELECT} WHERE t.id = ?1"),
                [id.to_string()],
                task_session_row,
            )
            .optional()?
            .ok_or_else(|| CoreError::not_found("Backup task session", id))
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
