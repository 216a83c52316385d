//! `/restoreSessions` (restoresessions.md) and the emrest log extension.

use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::RestoreSessionId;
use crate::reply::Reply;
use axum::http::StatusCode;
use emrest_core::{Caller, CoreError, RestoreSessionRecord};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn restore_session_name(s: &RestoreSessionRecord) -> String {
    emrest_core::catalog::vm_point_name(&s.vm_name, s.created)
}

pub(super) fn restore_session_ref(ctx: &Ctx, s: &RestoreSessionRecord) -> EntityRef {
    let name = restore_session_name(s);
    let res = Res {
        kind: "RestoreSession",
        collection: "restoreSessions",
        id: s.id,
        name: &name,
    };
    let sname = server_name(ctx, s.backup_server_id);
    res.reference(ctx, vec![server_link(ctx, s.backup_server_id, sname)])
}

pub(super) fn restore_session_entity(ctx: &Ctx, s: &RestoreSessionRecord) -> wire::RestoreSession {
    let name = restore_session_name(s);
    let r = Res {
        kind: "RestoreSession",
        collection: "restoreSessions",
        id: s.id,
        name: &name,
    };
    let sname = server_name(ctx, s.backup_server_id);
    wire::RestoreSession {
        href: r.entity_href(ctx),
        name: name.clone(),
        uid: r.uid(),
        vm_display_name: Some(s.vm_name.clone()),
        links: vec![
            server_link(ctx, s.backup_server_id, sname),
            r.alternate(ctx),
            // restoresessions_id.md: the point used, as a reference link.
            Link::fixed(
                "Related",
                ctx.href(format_args!("/vmRestorePoints/{}", s.vm_restore_point_id)),
                Some(&s.vm_restore_point_name),
                Some("VmRestorePointReference"),
            ),
        ],
        job_uid: None,
        job_name: None,
        job_type: "RestoreVm".into(),
        creation_time_utc: wire::UtcTime::from_unix_millis(s.created),
        end_time_utc: s.ended.map(wire::UtcTime::from_unix_millis),
        state: match s.state {
            emrest_core::SessionState::Starting => wire::SessionState::Starting,
            emrest_core::SessionState::Working => wire::SessionState::Working,
            emrest_core::SessionState::Stopping => wire::SessionState::Stopping,
            emrest_core::SessionState::Stopped => wire::SessionState::Stopped,
        },
        result: match s.result {
            emrest_core::SessionResult::None => wire::SessionResult::None,
            emrest_core::SessionResult::Success => wire::SessionResult::Success,
            emrest_core::SessionResult::Warning => wire::SessionResult::Warning,
            emrest_core::SessionResult::Failed => wire::SessionResult::Failed,
        },
        progress: i32::from(s.progress),
        failure_message: s.failure_message.clone(),
        restored_obj_ref: s.restored_obj_ref.clone(),
    }
}

/// emrest extension: a restore session's log as JSON lines or plain text, outside the documented
/// representations.
fn restore_log_reply(ctx: &Ctx, lines: &[emrest_core::LogLine]) -> Reply {
    let text: String = lines
        .iter()
        .map(|l| {
            format!(
                "{} {}\n",
                wire::UtcTime::from_unix_millis(l.time).to_wire(),
                l.text
            )
        })
        .collect();
    Reply::text(StatusCode::OK, ctx.format, text)
}

/// `GET /restoreSessions`.
pub(super) fn list_restore_sessions(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).restore_sessions()?;
    Ok(collection(
        ctx,
        &v,
        restore_session_ref,
        restore_session_entity,
    ))
}

/// `GET /restoreSessions/{ID}`.
pub(super) fn get_restore_session(
    ctx: &Ctx,
    caller: &Caller,
    id: RestoreSessionId,
) -> Result<Reply, CoreError> {
    let s = ctx.core.as_caller(caller).restore_session(id.0)?;
    Ok(single(ctx, &s, restore_session_ref, restore_session_entity))
}

/// `GET /restoreSessions/{ID}/log` (emrest extension).
pub(super) fn get_restore_session_log(
    ctx: &Ctx,
    caller: &Caller,
    id: RestoreSessionId,
) -> Result<Reply, CoreError> {
    let lines = ctx.core.as_caller(caller).restore_log(id.0)?;
    Ok(restore_log_reply(ctx, &lines))
}
