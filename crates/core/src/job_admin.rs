//! Managing jobs: edit (name, description, retention, schedule), add and remove VMs, clone,
//! delete, toggle the schedule (put_jobs_id_actionedit.md, post_jobs_id_includes.md,
//! delete_jobs_id_includes_id.md, post_jobs_id_actionclone.md, delete_jobs_id.md,
//! post_jobs_id_actiontogglescheduleenabled.md).
//!
//! Each change is made at once, in one catalog transaction, and answered with a task already
//! Finished with `Result Success` and the message `Ok`, as the pages' task examples end; a
//! change that cannot be made is refused before anything changes (400, 404 or 409), rather
//! than reported by a failed task. Each method takes plain arguments and an [`Actor`], so the
//! CLI can make the same call (or forward it to a running server).

use crate::catalog::JobEdit;
use crate::error::{CoreError, CoreResult};
use crate::jobs::{Actor, JobObjectRecord, JobRecord};
use crate::model::*;
use crate::runner::Work;
use crate::schedule::{Recurrence, Schedule};
use crate::Jobs;
use uuid::Uuid;

/// What an edit changes; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct JobChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Restore points to keep (SimpleRetentionPolicy RetainCycles).
    pub retention: Option<u32>,
    /// `Some(None)` removes the schedule (ScheduleConfigured false).
    pub schedule: Option<Option<Schedule>>,
    /// ScheduleEnabled.
    pub schedule_enabled: Option<bool>,
}

/// Longest job name (post_jobs_id_actionclone.md: up to 50 characters).
pub const MAX_JOB_NAME: usize = 50;

fn check_name(name: &str) -> CoreResult<String> {
    let name = name.trim();
    if name.is_empty() || name.contains(['@', '/', '\\']) {
        return Err(CoreError::invalid(
            "Name",
            "a job name must not be empty nor contain '@', '/' or '\\'",
        ));
    }
    if name.chars().count() > MAX_JOB_NAME {
        return Err(CoreError::invalid(
            "Name",
            format!("a job name has at most {MAX_JOB_NAME} characters"),
        ));
    }
    Ok(name.to_string())
}

impl Jobs<'_> {
    /// The actor an API caller acts as on jobs (Portal Administrator only, get_jobs.md).
    pub fn job_actor(&self, caller: &Caller) -> CoreResult<Actor> {
        crate::security::authorize(caller, crate::security::Permission::StartJob)?;
        Ok(Actor::from(caller))
    }

    /// A finished task recording a job change made by `actor`.
    fn job_task(&self, actor: &Actor, operation: &str) -> CoreResult<TaskRecord> {
        self.job_task_about(actor, operation, None)
    }

    /// A finished task recording a job change, naming the job it made.
    fn job_task_about(
        &self,
        actor: &Actor,
        operation: &str,
        made: Option<Uuid>,
    ) -> CoreResult<TaskRecord> {
        let task = self
            .catalog()
            .insert_task(operation, None, actor.account_id, now_millis())?;
        if let Some(job) = made {
            self.catalog().set_task_related_job(task.id, job)?;
        }
        self.catalog().finish_task(task.id, true, "Ok")?;
        self.catalog()
            .task(task.id)?
            .ok_or_else(|| CoreError::Internal("a job task vanished".into()))
    }

    /// Refuse a change to a job that is running (its VMs and retention are in use).
    fn require_idle(&self, job: &JobRecord, what: &str) -> CoreResult<()> {
        if self.runner.is_running(Work::Job(job.id)) {
            return Err(CoreError::Conflict(format!(
                "Job '{}' is running; {what} it when it has finished or stop it",
                job.name
            )));
        }
        Ok(())
    }

    /// A chained schedule names an existing other job, and no chain loops back to this one.
    fn check_chain(&self, id: Uuid, schedule: &Schedule) -> CoreResult<()> {
        let Recurrence::AfterJob { previous } = schedule.recurrence else {
            return Ok(());
        };
        let bad = |m: String| CoreError::invalid("PreviousJobUid", format!("PreviousJobUid: {m}"));
        if previous == id {
            return Err(bad("a job cannot run after itself".into()));
        }
        let mut at = previous;
        for _ in 0..64 {
            let job = self
                .catalog()
                .job(at)?
                .ok_or_else(|| bad(format!("there is no job {previous}")))?;
            match job.schedule.map(|s| s.recurrence) {
                Some(Recurrence::AfterJob { previous: p }) if p == id => {
                    return Err(bad(format!(
                        "job '{}' already runs after this one: the chain would loop",
                        job.name
                    )))
                }
                Some(Recurrence::AfterJob { previous: p }) => at = p,
                _ => return Ok(()),
            }
        }
        Err(bad("the chain of jobs is too long".into()))
    }

    /// PUT /jobs/{ID}?action=edit: change what `changes` names; returns the finished task.
    pub fn edit_job(&self, actor: &Actor, id: Uuid, changes: JobChanges) -> CoreResult<TaskRecord> {
        let job = self.everything().job(id)?;
        let name = changes.name.as_deref().map(check_name).transpose()?;
        if let Some(n) = &name {
            if let Some(other) = self.everything().job_by_name(n)?.filter(|o| o.id != id) {
                return Err(CoreError::Conflict(format!(
                    "a job named '{}' already exists",
                    other.name
                )));
            }
            if *n != job.name {
                // Restore points are filed under the job's name (its backup), which is renamed
                // with the job: not while a run is adding to it, nor onto another backup.
                self.require_idle(&job, "rename")?;
                if self
                    .catalog()
                    .backups()?
                    .iter()
                    .any(|b| b.name == *n && b.name != job.name)
                {
                    return Err(CoreError::Conflict(format!(
                        "a backup named '{n}' already exists; choose another name"
                    )));
                }
            }
        }
        if changes.retention == Some(0) {
            return Err(CoreError::invalid(
                "RetainCycles",
                "RetainCycles 0: retention must keep at least one restore point",
            ));
        }
        if let Some(Some(s)) = &changes.schedule {
            self.check_chain(id, s)?;
        }
        let edit = JobEdit {
            name: name
                .filter(|n| *n != job.name)
                .map(|n| (job.name.clone(), n)),
            description: changes.description,
            retention: changes.retention,
            schedule: changes.schedule,
            schedule_enabled: changes.schedule_enabled,
        };
        self.catalog().edit_job(id, &edit)?;
        self.job_task(actor, "EditJob")
    }

    /// POST /jobs/{ID}?action=toggleScheduleEnabled: switch the schedule off, or on again.
    pub fn toggle_job_schedule(&self, actor: &Actor, id: Uuid) -> CoreResult<TaskRecord> {
        let job = self.everything().job(id)?;
        let edit = JobEdit {
            schedule_enabled: Some(!job.schedule_enabled),
            ..JobEdit::default()
        };
        self.catalog().edit_job(id, &edit)?;
        self.job_task(actor, "UpdateJob")
    }

    /// POST /jobs/{ID}/includes: add a VM (by HierarchyObjRef or unique name) to the job.
    /// Returns the task and the new object's ID.
    pub fn add_job_vm(&self, actor: &Actor, id: Uuid, vm: &str) -> CoreResult<(TaskRecord, Uuid)> {
        let job = self.everything().job(id)?;
        self.require_idle(&job, "change")?;
        let info = self.resolve_vm_for_job(vm)?;
        if job.objects.iter().any(|o| o.vm == info.key()) {
            return Err(CoreError::Conflict(format!(
                "VM '{}' is already in job '{}'",
                info.name, job.name
            )));
        }
        if info.kind != job.platform {
            return Err(CoreError::invalid(
                "HierarchyObjRef",
                format!(
                    "VM '{}' is a {} VM; job '{}' backs up {} VMs",
                    info.name,
                    info.kind.wire_platform(),
                    job.name,
                    job.platform.wire_platform()
                ),
            ));
        }
        let server = self
            .catalog()
            .hierarchy_roots()?
            .into_iter()
            .find(|(root, _)| *root == info.root)
            .map(|(_, s)| s);
        if server != Some(job.backup_server_id) {
            return Err(CoreError::invalid(
                "HierarchyObjRef",
                format!("VM '{}' belongs to another backup server", info.name),
            ));
        }
        let object = JobObjectRecord {
            id: Uuid::new_v4(),
            hierarchy_obj_ref: info.hierarchy_obj_ref(),
            vm: info.key(),
            name: info.name,
        };
        self.catalog().insert_job_object(id, &object)?;
        Ok((self.job_task(actor, "UpdateJob")?, object.id))
    }

    /// One VM of a job (GET /jobs/{ID}/includes/{ID}).
    pub fn job_object(&self, id: Uuid, object: Uuid) -> CoreResult<(JobRecord, JobObjectRecord)> {
        let job = self.everything().job(id)?;
        let o = job
            .objects
            .iter()
            .find(|o| o.id == object)
            .cloned()
            .ok_or_else(|| CoreError::not_found("ObjectInJob", object))?;
        Ok((job, o))
    }

    /// DELETE /jobs/{ID}/includes/{ID}: stop backing up a VM. A job's only VM stays
    /// (delete_jobs_id_includes_id.md: it cannot be removed).
    pub fn remove_job_vm(&self, actor: &Actor, id: Uuid, object: Uuid) -> CoreResult<TaskRecord> {
        let (job, o) = self.job_object(id, object)?;
        self.require_idle(&job, "change")?;
        if job.objects.len() == 1 {
            return Err(CoreError::Conflict(format!(
                "VM '{}' is the only VM of job '{}'; a job keeps at least one (delete the job instead)",
                o.name, job.name
            )));
        }
        self.catalog().delete_job_object(id, object)?;
        self.job_task(actor, "UpdateJob")
    }

    /// POST /jobs/{ID}?action=clone: a new job with the same VMs, retention and schedule
    /// (switched off, so the copy does not run beside the original until asked). Returns the
    /// task and the new job.
    pub fn clone_job(
        &self,
        actor: &Actor,
        id: Uuid,
        name: &str,
        description: Option<&str>,
    ) -> CoreResult<(TaskRecord, JobRecord)> {
        let job = self.everything().job(id)?;
        let name = check_name(name).map_err(|e| match e {
            CoreError::Invalid { message, .. } => {
                CoreError::invalid("JobName", format!("JobName: {message}"))
            }
            e => e,
        })?;
        if self.everything().job_by_name(&name)?.is_some() {
            return Err(CoreError::Conflict(format!(
                "a job named '{name}' already exists"
            )));
        }
        let copy = JobRecord {
            id: Uuid::new_v4(),
            name,
            description: description
                .map(str::to_string)
                .unwrap_or_else(|| job.description.clone()),
            created: now_millis(),
            schedule_enabled: false,
            next_run: None,
            objects: job
                .objects
                .iter()
                .map(|o| JobObjectRecord {
                    id: Uuid::new_v4(),
                    ..o.clone()
                })
                .collect(),
            ..job
        };
        self.catalog().insert_job(&copy)?;
        let task = self.job_task_about(actor, "CloneJob", Some(copy.id))?;
        Ok((task, self.everything().job(copy.id)?))
    }

    /// DELETE /jobs/{ID}: remove a job that is not running, with its session history; its
    /// restore points stay.
    pub fn delete_job(&self, actor: &Actor, id: Uuid) -> CoreResult<TaskRecord> {
        let job = self.everything().job(id)?;
        self.require_idle(&job, "delete")?;
        self.catalog().delete_job(id)?;
        self.job_task(actor, "DeleteJob")
    }

    /// Set (`Some(Some)`), remove (`Some(None)`) or keep (`None`) a job's schedule, and switch
    /// it on or off, the job found by name or ID (the CLI's `job schedule`).
    pub fn set_job_schedule(
        &self,
        actor: &Actor,
        job: &str,
        schedule: Option<Option<Schedule>>,
        enabled: Option<bool>,
    ) -> CoreResult<JobRecord> {
        let j = match Uuid::parse_str(job.trim()) {
            Ok(id) => self.everything().job(id)?,
            Err(_) => self
                .everything()
                .job_by_name(job)?
                .ok_or_else(|| CoreError::not_found("Job", job))?,
        };
        let changes = JobChanges {
            schedule,
            schedule_enabled: enabled,
            ..JobChanges::default()
        };
        self.edit_job(actor, j.id, changes)?;
        self.everything().job(j.id)
    }
}
