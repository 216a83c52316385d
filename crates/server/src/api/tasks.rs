//! `/tasks` (tasks.md).

use super::*;

pub(super) fn task_rep(ctx: &Ctx, t: &TaskRecord) -> wire::Task {
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
