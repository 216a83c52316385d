//! `/tasks` (tasks.md).

use super::Ctx;
use crate::reply::Reply;
use axum::http::StatusCode;
use emrest_core::{Caller, CoreError, TaskId, TaskRecord};
use emrest_wire as wire;
use emrest_wire::Link;

pub(super) fn task_rep(ctx: &Ctx, caller: &Caller, t: &TaskRecord) -> wire::Task {
    let href = ctx.href(format_args!("/tasks/{}", t.id));
    let mut links = vec![Link::fixed("Delete", href.clone(), None, Some("Task"))];
    // scenario_vm_restore.md and the seed page: clients find the session by the Related link of
    // Type RestoreSession, which the finished task carries; the running task (the 202 answer)
    // has the Delete link only.
    let finished = t.state == emrest_core::TaskState::Finished;
    if let Some(s) = t.restore_session_id.filter(|_| finished) {
        links.push(Link::fixed(
            "Related",
            ctx.href(format_args!("/restoreSessions/{s}?format=Entity")),
            None,
            Some("RestoreSession"),
        ));
    }
    // post_jobs_id_actionclone.md: the finished clone task links to the new job.
    if let Some(j) = t.related_job_id.filter(|_| finished) {
        let name = ctx.core.as_caller(caller).job(j).ok().map(|j| j.name);
        links.push(Link::fixed(
            "Related",
            ctx.href(format_args!("/jobs/{j}?format=Entity")),
            name.as_deref(),
            Some("Job"),
        ));
    }
    wire::Task {
        href,
        links,
        task_id: t.id.to_string(),
        state: match t.state {
            emrest_core::TaskState::Running => wire::TaskState::Running,
            emrest_core::TaskState::Finished => wire::TaskState::Finished,
        },
        operation: t.operation.clone(),
        result: t
            .result
            .as_ref()
            .map(|(success, message)| wire::TaskResult {
                success: *success,
                message: message.clone(),
            }),
    }
}

/// `GET /tasks`: the caller's tasks (all of them for an administrator).
pub(super) fn list_tasks(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).tasks()?;
    let items = v.iter().map(|t| task_rep(ctx, caller, t)).collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}

/// `GET /tasks/{ID}`.
pub(super) fn get_task(ctx: &Ctx, caller: &Caller, id: TaskId) -> Result<Reply, CoreError> {
    let t = ctx.core.as_caller(caller).task(id)?;
    Ok(Reply::ok(ctx.format, &task_rep(ctx, caller, &t)))
}

/// `DELETE /tasks/{ID}`.
pub(super) fn delete_task(ctx: &Ctx, caller: &Caller, id: TaskId) -> Result<Reply, CoreError> {
    ctx.core.restores().delete_task(caller, id)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}
