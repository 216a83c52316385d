//! `/jobs` (jobs.md, jobs_id.md, jobs_id_includes.md, post_jobs_id_action*.md),
//! `/backupSessions` (backupsessions*.md) and `/backupTaskSessions` (backuptasksessions*.md).

use super::job_schedule::{schedule_from_wire, schedule_to_wire, ScheduleEdit};
use super::restore::request_format;
use super::tasks::task_rep;
use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::{shown, BackupSessionId, BackupTaskSessionId, JobId, ObjectInJobId};
use crate::reply::Reply;
use axum::http::StatusCode;
use emrest_core::job_admin::JobChanges;
use emrest_core::jobs::{
    session_name, BackupSessionRecord, BackupTaskSessionRecord, JobRecord, TaskSessionState,
};
use emrest_core::{Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn job_res(j: &JobRecord) -> Res<'_> {
    Res {
        kind: "Job",
        collection: "jobs",
        id: j.id,
        name: &j.name,
    }
}

pub(super) fn job_ref(ctx: &Ctx, j: &JobRecord) -> EntityRef {
    let r = job_res(j);
    let sname = server_name(ctx, j.backup_server_id);
    // scenario_starting_a_job.md: a job reference carries Up (server), Alternate (entity) and
    // Down (its sessions) links.
    r.reference(
        ctx,
        vec![
            server_link(ctx, j.backup_server_id, sname),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/backupSessions", r.path())),
                None,
                Some("BackupJobSessionReferenceList"),
            ),
        ],
    )
}

fn object_in_job(
    ctx: &Ctx,
    j: &JobRecord,
    o: &emrest_core::jobs::JobObjectRecord,
) -> wire::ObjectInJob {
    object_in_job_of(ctx, j.id, o)
}

/// A VM of the job `job` (its includes, and the query service's `type=ObjectInJob`).
pub(super) fn object_in_job_of(
    ctx: &Ctx,
    job: uuid::Uuid,
    o: &emrest_core::jobs::JobObjectRecord,
) -> wire::ObjectInJob {
    wire::ObjectInJob {
        href: ctx.href(format_args!("/jobs/{job}/includes/{}", o.id)),
        object_in_job_id: o.id.to_string(),
        hierarchy_obj_ref: o.hierarchy_obj_ref.clone(),
        name: o.name.clone(),
        display_name: o.name.clone(),
    }
}

pub(super) fn job_entity(ctx: &Ctx, j: &JobRecord) -> wire::Job {
    let r = job_res(j);
    let sname = server_name(ctx, j.backup_server_id);
    let action = |rel: &'static str, a: &str| {
        Link::fixed(
            rel,
            ctx.href(format_args!("{}?action={a}", r.path())),
            None,
            None,
        )
    };
    wire::Job {
        href: r.entity_href(ctx),
        name: j.name.clone(),
        uid: r.uid(),
        // get_jobs_id.md links: Up, Alternate, Clone, ToggleScheduleEnabled, Down, Create
        // (an include), and the start, stop and retry actions.
        links: vec![
            server_link(ctx, j.backup_server_id, sname),
            r.alternate(ctx),
            action("Clone", "clone"),
            action("ToggleScheduleEnabled", "toggleScheduleEnabled"),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/includes", r.path())),
                None,
                Some("ObjectInJobList"),
            ),
            Link::fixed(
                "Create",
                ctx.href(format_args!("{}/includes", r.path())),
                None,
                Some("ObjectInJob"),
            ),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/backupSessions", r.path())),
                None,
                Some("BackupJobSessionReferenceList"),
            ),
            action("Start", "start"),
            action("Stop", "stop"),
            action("Retry", "retry"),
        ],
        job_type: "Backup".into(),
        platform: j.platform.wire_platform().into(),
        description: j.description.clone(),
        schedule_configured: j.schedule.is_some(),
        schedule_enabled: j.schedule.is_some() && j.schedule_enabled,
        next_run: next_run(j).map(wire::UtcTime::from_unix_millis),
        schedule: j.schedule.as_ref().map(schedule_to_wire),
        includes: j.objects.iter().map(|o| object_in_job(ctx, j, o)).collect(),
        retain_cycles: i64::from(j.retention),
    }
}

/// When a job runs next (JobRecord::upcoming_run).
pub(super) fn next_run(j: &JobRecord) -> Option<i64> {
    j.upcoming_run(emrest_core::now_millis())
}

fn invalid_body(what: &str, e: wire::DecodeError) -> CoreError {
    CoreError::Invalid {
        element: e.element.clone(),
        message: format!("Invalid {what}: {e}"),
    }
}

fn accepted(ctx: &Ctx, caller: &Caller, task: &emrest_core::TaskRecord) -> Reply {
    Reply::rep(
        StatusCode::ACCEPTED,
        ctx.format,
        &task_rep(ctx, caller, task),
    )
}

/// `PUT /jobs/{ID}?action=edit` (put_jobs_id_actionedit.md): 202 and the task.
pub(super) fn edit_job(
    ctx: &Ctx,
    caller: &Caller,
    id: JobId,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let action = ctx.query.get("action").unwrap_or("");
    if !action.eq_ignore_ascii_case("edit") {
        return Err(CoreError::invalid(
            "action",
            format!(
                "unknown job edit action {}: PUT /jobs/{{ID}} takes ?action=edit",
                shown(action)
            ),
        ));
    }
    let actor = ctx.core.jobs().job_actor(caller)?;
    let job = ctx.core.as_caller(caller).job(id.0)?;
    let format = request_format(&ctx.headers, body)?;
    let spec =
        wire::decode_job_edit_spec(body, format, ctx.order).map_err(|e| invalid_body("Job", e))?;
    let schedule =
        match (&spec.schedule, spec.schedule_configured) {
            (_, Some(false)) => Some(None),
            (Some(o), configured) => match schedule_from_wire(o, job.schedule.as_ref())? {
                ScheduleEdit::Set(s) => Some(Some(s)),
                ScheduleEdit::Remove | ScheduleEdit::Keep if configured == Some(true) => {
                    return Err(CoreError::invalid(
                        "ScheduleConfigured",
                        "ScheduleConfigured is true but no schedule option is enabled \
                     (OptionsDaily, OptionsMonthly, OptionsPeriodically or OptionsDaisyChaining)",
                    ))
                }
                ScheduleEdit::Remove => Some(None),
                ScheduleEdit::Keep => None,
            },
            (None, Some(true)) if job.schedule.is_none() => return Err(CoreError::invalid(
                "JobScheduleOptions",
                "ScheduleConfigured is true but the job has no schedule: send JobScheduleOptions",
            )),
            (None, _) => None,
        };
    let retention = match spec.retain_cycles {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| {
            CoreError::invalid("RetainCycles", format!("RetainCycles {n} is out of range"))
        })?),
    };
    if let Some(t) = spec
        .retain_limit_type
        .as_deref()
        .filter(|t| !t.eq_ignore_ascii_case("Cycles"))
    {
        return Err(CoreError::invalid(
            "RetainLimitType",
            format!(
                "RetainLimitType {}: emrest keeps a number of restore points (Cycles)",
                shown(t)
            ),
        ));
    }
    let changes = JobChanges {
        name: spec.name.filter(|n| n.trim() != job.name),
        description: spec.description,
        retention,
        schedule,
        schedule_enabled: spec.schedule_enabled,
    };
    let task = ctx.core.jobs().edit_job(&actor, id.0, changes)?;
    Ok(accepted(ctx, caller, &task))
}

/// `DELETE /jobs/{ID}` (delete_jobs_id.md): 202 and the task.
pub(super) fn delete_job(ctx: &Ctx, caller: &Caller, id: JobId) -> Result<Reply, CoreError> {
    let actor = ctx.core.jobs().job_actor(caller)?;
    let task = ctx.core.jobs().delete_job(&actor, id.0)?;
    Ok(accepted(ctx, caller, &task))
}

/// `POST /jobs/{ID}/includes` (post_jobs_id_includes.md): 202 and the task.
pub(super) fn add_job_include(
    ctx: &Ctx,
    caller: &Caller,
    id: JobId,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let actor = ctx.core.jobs().job_actor(caller)?;
    ctx.core.as_caller(caller).job(id.0)?;
    let format = request_format(&ctx.headers, body)?;
    let spec = wire::decode_create_object_in_job_spec(body, format, ctx.order)
        .map_err(|e| invalid_body("CreateObjectInJobSpec", e))?;
    let (task, _) = ctx
        .core
        .jobs()
        .add_job_vm(&actor, id.0, &spec.hierarchy_obj_ref)?;
    Ok(accepted(ctx, caller, &task))
}

/// `GET /jobs/{ID}/includes/{ID}` (get_jobs_id_includes_id.md).
pub(super) fn get_job_include(
    ctx: &Ctx,
    caller: &Caller,
    id: JobId,
    object: ObjectInJobId,
) -> Result<Reply, CoreError> {
    ctx.core.jobs().job_actor(caller)?;
    let (j, o) = ctx.core.jobs().job_object(id.0, object.0)?;
    Ok(Reply::ok(ctx.format, &object_in_job(ctx, &j, &o)))
}

/// `DELETE /jobs/{ID}/includes/{ID}` (delete_jobs_id_includes_id.md): 202 and the task.
pub(super) fn delete_job_include(
    ctx: &Ctx,
    caller: &Caller,
    id: JobId,
    object: ObjectInJobId,
) -> Result<Reply, CoreError> {
    let actor = ctx.core.jobs().job_actor(caller)?;
    let task = ctx.core.jobs().remove_job_vm(&actor, id.0, object.0)?;
    Ok(accepted(ctx, caller, &task))
}

/// `POST /jobs/{ID}?action=clone` (post_jobs_id_actionclone.md).
fn clone_job(ctx: &Ctx, caller: &Caller, id: JobId, body: &[u8]) -> Result<Reply, CoreError> {
    let actor = ctx.core.jobs().job_actor(caller)?;
    ctx.core.as_caller(caller).job(id.0)?;
    let format = request_format(&ctx.headers, body)?;
    let spec = wire::decode_job_clone_spec(body, format, ctx.order)
        .map_err(|e| invalid_body("JobCloneSpec", e))?;
    // The clone's points go to the repository of the original (emrest has one per backup
    // server); a RepositoryUid must still name a repository.
    let repo = wire::parse_id(&spec.repository_uid, "Repository").ok_or_else(|| {
        CoreError::invalid(
            "RepositoryUid",
            format!(
                "RepositoryUid {} is not a repository UID like urn:veeam:Repository:<uuid>",
                shown(&spec.repository_uid)
            ),
        )
    })?;
    ctx.core.infrastructure().backup_repository(repo)?;
    let (task, _) =
        ctx.core
            .jobs()
            .clone_job(&actor, id.0, &spec.job_name, spec.description.as_deref())?;
    Ok(accepted(ctx, caller, &task))
}

/// `GET /jobs`.
pub(super) fn list_jobs(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).jobs()?;
    Ok(collection(ctx, &v, job_ref, job_entity))
}

/// `GET /jobs/{ID}`.
pub(super) fn get_job(ctx: &Ctx, caller: &Caller, id: JobId) -> Result<Reply, CoreError> {
    let j = ctx.core.as_caller(caller).job(id.0)?;
    Ok(single(ctx, &j, job_ref, job_entity))
}

/// `GET /jobs/{ID}/includes`.
pub(super) fn list_job_includes(ctx: &Ctx, caller: &Caller, id: JobId) -> Result<Reply, CoreError> {
    let j = ctx.core.as_caller(caller).job(id.0)?;
    let items = j
        .objects
        .iter()
        .map(|o| object_in_job(ctx, &j, o))
        .collect();
    Ok(Reply::ok(ctx.format, &wire::ObjectsInJob(items)))
}

/// `GET /jobs/{ID}/backupSessions`.
pub(super) fn list_job_backup_sessions(
    ctx: &Ctx,
    caller: &Caller,
    id: JobId,
) -> Result<Reply, CoreError> {
    let j = ctx.core.as_caller(caller).job(id.0)?;
    let v = ctx.core.as_caller(caller).backup_sessions(Some(j.id))?;
    Ok(collection(
        ctx,
        &v,
        backup_session_ref,
        backup_session_entity,
    ))
}

/// `POST /jobs/{ID}?action=start|stop|retry|clone|toggleScheduleEnabled` → 202 and the task
/// (core checks the run actions).
pub(super) fn run_job_action(
    ctx: &Ctx,
    caller: &Caller,
    id: JobId,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let action = ctx.query.get("action").unwrap_or("");
    if action.eq_ignore_ascii_case("clone") {
        return clone_job(ctx, caller, id, body);
    }
    if action.eq_ignore_ascii_case("toggleScheduleEnabled") {
        let actor = ctx.core.jobs().job_actor(caller)?;
        let task = ctx.core.jobs().toggle_job_schedule(&actor, id.0)?;
        return Ok(accepted(ctx, caller, &task));
    }
    let task = ctx.core.jobs().job_action(caller, id.0, action)?;
    Ok(Reply::rep(
        StatusCode::ACCEPTED,
        ctx.format,
        &task_rep(ctx, caller, &task),
    ))
}

/// `POST /backupSessions/{ID}?action=stop` (the Stop link of backupsessions_id.md).
pub(super) fn stop_backup_session(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupSessionId,
) -> Result<Reply, CoreError> {
    let action = ctx.query.get("action").unwrap_or("");
    if !action.eq_ignore_ascii_case("stop") {
        return Err(CoreError::invalid(
            "action",
            format!(
                "unknown backup session action {}: the supported action is ?action=stop",
                shown(action)
            ),
        ));
    }
    let task = ctx.core.jobs().stop_backup_session(caller, id.0)?;
    Ok(Reply::rep(
        StatusCode::ACCEPTED,
        ctx.format,
        &task_rep(ctx, caller, &task),
    ))
}

fn session_res<'a>(s: &BackupSessionRecord, name: &'a str) -> Res<'a> {
    Res {
        kind: "BackupJobSession",
        collection: "backupSessions",
        id: s.id,
        name,
    }
}

pub(super) fn backup_session_ref(ctx: &Ctx, s: &BackupSessionRecord) -> EntityRef {
    let name = session_name(&s.job_name, s.created);
    let sname = server_name(ctx, s.backup_server_id);
    session_res(s, &name).reference(ctx, vec![server_link(ctx, s.backup_server_id, sname)])
}

fn session_state(s: emrest_core::SessionState) -> wire::SessionState {
    match s {
        emrest_core::SessionState::Starting => wire::SessionState::Starting,
        emrest_core::SessionState::Working => wire::SessionState::Working,
        emrest_core::SessionState::Stopping => wire::SessionState::Stopping,
        emrest_core::SessionState::Stopped => wire::SessionState::Stopped,
    }
}

fn session_result(r: emrest_core::SessionResult) -> wire::SessionResult {
    match r {
        emrest_core::SessionResult::None => wire::SessionResult::None,
        emrest_core::SessionResult::Success => wire::SessionResult::Success,
        emrest_core::SessionResult::Warning => wire::SessionResult::Warning,
        emrest_core::SessionResult::Failed => wire::SessionResult::Failed,
    }
}

pub(super) fn backup_session_entity(ctx: &Ctx, s: &BackupSessionRecord) -> wire::BackupJobSession {
    let name = session_name(&s.job_name, s.created);
    let r = session_res(s, &name);
    let sname = server_name(ctx, s.backup_server_id);
    // backupsessions_id.md; the first link is Up → backup server, which veeam_exporter reads
    // as Links[0].Name (JSON.md D3).
    let mut links = vec![
        server_link(ctx, s.backup_server_id, sname),
        Link::fixed(
            "Up",
            ctx.href(format_args!("/jobs/{}", s.job_id)),
            Some(&s.job_name),
            Some("JobReference"),
        ),
        r.alternate(ctx),
        Link::fixed(
            "Down",
            ctx.href(format_args!("{}/taskSessions", r.path())),
            None,
            Some("BackupTaskSessionReferenceList"),
        ),
        Link::fixed(
            "Stop",
            ctx.href(format_args!("{}?action=stop", r.path())),
            None,
            None,
        ),
    ];
    if let Some(rp) = s.restore_point_id {
        links.push(Link::fixed(
            "Related",
            ctx.href(format_args!("/restorePoints/{rp}")),
            Some(&wire::UtcTime::from_unix_millis(s.created).restore_point_name()),
            Some("RestorePointReference"),
        ));
    }
    wire::BackupJobSession {
        href: r.entity_href(ctx),
        name: name.clone(),
        uid: r.uid(),
        links,
        job_uid: wire::urn("Job", s.job_id),
        job_name: s.job_name.clone(),
        job_type: "Backup".into(),
        creation_time_utc: wire::UtcTime::from_unix_millis(s.created),
        end_time_utc: s.ended.map(wire::UtcTime::from_unix_millis),
        state: session_state(s.state),
        result: session_result(s.result),
        progress: i32::from(s.progress),
        failure_message: s.failure_message.clone(),
        is_retry: s.is_retry,
    }
}

fn task_session_name(t: &BackupTaskSessionRecord) -> String {
    emrest_core::catalog::vm_point_name(&t.vm_name, t.created)
}

fn task_session_res<'a>(t: &BackupTaskSessionRecord, name: &'a str) -> Res<'a> {
    Res {
        kind: "BackupTaskSession",
        collection: "backupTaskSessions",
        id: t.id,
        name,
    }
}

pub(super) fn task_session_ref(ctx: &Ctx, t: &BackupTaskSessionRecord) -> EntityRef {
    let name = task_session_name(t);
    let sname = server_name(ctx, t.backup_server_id);
    task_session_res(t, &name).reference(ctx, vec![server_link(ctx, t.backup_server_id, sname)])
}

pub(super) fn task_session_entity(
    ctx: &Ctx,
    t: &BackupTaskSessionRecord,
) -> wire::BackupTaskSession {
    let name = task_session_name(t);
    let r = task_session_res(t, &name);
    let sname = server_name(ctx, t.backup_server_id);
    let mut links = vec![
        server_link(ctx, t.backup_server_id, sname),
        Link::fixed(
            "Up",
            ctx.href(format_args!("/backupSessions/{}", t.session_id)),
            Some(&session_name(&t.job_name, t.session_created)),
            Some("BackupJobSessionReference"),
        ),
        r.alternate(ctx),
    ];
    if let Some(p) = t.vm_restore_point_id {
        // backuptasksessions_id.md: Related → the VM restore point entity.
        links.push(Link::fixed(
            "Related",
            ctx.href(format_args!("/vmRestorePoints/{p}?format=Entity")),
            Some(&emrest_core::catalog::vm_point_name(
                &t.vm_name,
                t.session_created,
            )),
            Some("VmRestorePoint"),
        ));
    }
    wire::BackupTaskSession {
        href: r.entity_href(ctx),
        name: name.clone(),
        uid: r.uid(),
        vm_display_name: t.vm_name.clone(),
        links,
        job_session_uid: wire::urn("BackupJobSession", t.session_id),
        creation_time_utc: wire::UtcTime::from_unix_millis(t.created),
        end_time_utc: t.ended.map(wire::UtcTime::from_unix_millis),
        state: match t.state {
            TaskSessionState::Pending => wire::BackupTaskSessionState::Pending,
            TaskSessionState::InProgress => wire::BackupTaskSessionState::InProgress,
            TaskSessionState::Completed => wire::BackupTaskSessionState::Completed,
        },
        result: session_result(t.result),
        reason: t.reason.clone(),
        total_size: i64::try_from(t.total_size).unwrap_or(i64::MAX),
        vm_uid: t.hierarchy_obj_ref.clone(),
    }
}

/// `GET /backupSessions`.
pub(super) fn list_backup_sessions(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).backup_sessions(None)?;
    Ok(collection(
        ctx,
        &v,
        backup_session_ref,
        backup_session_entity,
    ))
}

/// `GET /backupSessions/{ID}`.
pub(super) fn get_backup_session(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupSessionId,
) -> Result<Reply, CoreError> {
    let s = ctx.core.as_caller(caller).backup_session(id.0)?;
    Ok(single(ctx, &s, backup_session_ref, backup_session_entity))
}

/// `GET /backupSessions/{ID}/taskSessions`.
pub(super) fn list_backup_session_task_sessions(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupSessionId,
) -> Result<Reply, CoreError> {
    let v = ctx
        .core
        .as_caller(caller)
        .backup_task_sessions(Some(id.0))?;
    Ok(collection(ctx, &v, task_session_ref, task_session_entity))
}

/// `GET /backupTaskSessions`.
pub(super) fn list_backup_task_sessions(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).backup_task_sessions(None)?;
    Ok(collection(ctx, &v, task_session_ref, task_session_entity))
}

/// `GET /backupTaskSessions/{ID}`.
pub(super) fn get_backup_task_session(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupTaskSessionId,
) -> Result<Reply, CoreError> {
    let t = ctx.core.as_caller(caller).backup_task_session(id.0)?;
    Ok(single(ctx, &t, task_session_ref, task_session_entity))
}
