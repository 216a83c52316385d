//! Logon sessions: the root document, `POST /sessionMngr`, `/logonSessions` (post_sessionmngr.md, logonsessions.md).

use super::{Ctx, ACCEPTED_OLD_VERSIONS, VERSIONS};
use crate::ids::LogonSessionId;
use crate::reply::{core_error, Reply};
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use emrest_core::{Caller, CoreError, LogonSessionRecord};
use emrest_wire as wire;
use emrest_wire::Link;

/// `GET /api/`: the root document (em_web_api_versions.md).
pub(super) fn get_root(ctx: &Ctx) -> Reply {
    Reply::ok(
        ctx.format,
        &wire::EnterpriseManager::new(&ctx.base, VERSIONS),
    )
}

pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `POST /api/sessionMngr/`: log on with Basic credentials (post_sessionmngr.md).
pub(super) fn create_logon_session(ctx: &Ctx) -> Reply {
    if let Some(v) = ctx.query.get("v") {
        let known = v.eq_ignore_ascii_case("latest")
            || VERSIONS
                .iter()
                .chain(ACCEPTED_OLD_VERSIONS)
                .any(|k| k.eq_ignore_ascii_case(v));
        if !known {
            return ctx.err(
                StatusCode::BAD_REQUEST,
                format!(
                    "API version '{v}' is not supported; supported: latest, {}",
                    VERSIONS.join(", ")
                ),
            );
        }
    }
    let Some((user, password)) = basic_credentials(&ctx.headers) else {
        return ctx.err(
            StatusCode::UNAUTHORIZED,
            "Log on with HTTP Basic authentication (Authorization: Basic base64(user:password))",
        );
    };
    match ctx.core.logons().logon_from(&user, &password, ctx.peer) {
        Ok(s) => {
            let token = base64::engine::general_purpose::STANDARD.encode(s.id.to_string());
            // http_authentication.md: `Set-Cookie: X-RestSvcSessionId=…; Path=/api;`. emrest
            // adds HttpOnly and SameSite=Strict always (no other site's page sends it), and
            // Secure when the session was opened over HTTPS.
            let secure = if ctx.https { "; Secure" } else { "" };
            Reply::rep(StatusCode::CREATED, ctx.format, &logon_session_rep(ctx, &s))
                .with_header(
                    header::HeaderName::from_static("x-restsvcsessionid"),
                    token.clone(),
                )
                .with_header(
                    header::SET_COOKIE,
                    format!(
                        "X-RestSvcSessionId={token}; Path=/api; HttpOnly; SameSite=Strict{secure}"
                    ),
                )
        }
        Err(e) => core_error(ctx.format, e),
    }
}

/// `GET /logonSessions`.
pub(super) fn list_logon_sessions(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.logons().logon_sessions(caller)?;
    let items = v.iter().map(|s| logon_session_rep(ctx, s)).collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}

/// `GET /logonSessions/{ID}`.
pub(super) fn get_logon_session(
    ctx: &Ctx,
    caller: &Caller,
    id: LogonSessionId,
) -> Result<Reply, CoreError> {
    let s = ctx.core.logons().logon_session(caller, id.0)?;
    Ok(Reply::ok(ctx.format, &logon_session_rep(ctx, &s)))
}

/// `DELETE /logonSessions/{ID}`: log off.
pub(super) fn delete_logon_session(
    ctx: &Ctx,
    caller: &Caller,
    id: LogonSessionId,
) -> Result<Reply, CoreError> {
    ctx.core.logons().logout(caller, id.0)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

fn logon_session_rep(ctx: &Ctx, s: &LogonSessionRecord) -> wire::LogonSession {
    let down = |path: &str, t: &'static str| Link::fixed("Down", ctx.url(path), None, Some(t));
    let links = vec![
        Link::fixed("Up", ctx.url("/"), None, Some("EnterpriseManager")),
        down("/backupServers", "BackupServerReferenceList"),
        down("/hierarchyRoots", "HierarchyRootReferenceList"),
        down("/backups", "BackupReferenceList"),
        down("/restorePoints", "RestorePointReferenceList"),
        down("/vmRestorePoints", "VmRestorePointReferenceList"),
        down("/restoreSessions", "RestoreSessionReferenceList"),
        down("/backupFiles", "BackupFileReferenceList"),
        down("/tasks", "TaskList"),
        down("/querySvc", "QueryService"),
        down("/lookupSvc", "LookupService"),
        down("/backupServers?format=Entity", "BackupServerList"),
        down("/hierarchyRoots?format=Entity", "HierarchyRootList"),
        down("/backups?format=Entity", "BackupList"),
        down("/restorePoints?format=Entity", "RestorePointList"),
        down("/vmRestorePoints?format=Entity", "VmRestorePointList"),
        down("/restoreSessions?format=Entity", "RestoreSessionList"),
        down("/backupFiles?format=Entity", "BackupFileList"),
        down("/security", "EnterpriseSecuritySettings"),
        Link::fixed(
            "Delete",
            ctx.href(format_args!("/logonSessions/{}", s.id)),
            None,
            None,
        ),
    ];
    wire::LogonSession {
        href: ctx.href(format_args!("/logonSessions/{}", s.id)),
        links,
        user_name: s.user_name.clone(),
        session_id: s.id.to_string(),
    }
}

fn managed_session_rep(
    ctx: &Ctx,
    caller: &Caller,
    handle: String,
    s: &LogonSessionRecord,
) -> wire::ManagedLogonSession {
    let href = ctx.url(&format!("/emrest/logonSessions/{handle}"));
    wire::ManagedLogonSession {
        links: vec![Link::fixed("Delete", href.clone(), None, None)],
        href,
        current: s.id == caller.session_id(),
        handle,
        user_name: s.user_name.clone(),
        creation_time_utc: wire::UtcTime::from_unix_millis(s.created),
        last_activity_time_utc: wire::UtcTime::from_unix_millis(s.last_seen),
    }
}

/// `GET /emrest/logonSessions` (emrest extension): every account's live sessions, by handle.
pub(super) fn list_managed_logon_sessions(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let items = ctx
        .core
        .logons()
        .managed_logon_sessions(caller)?
        .into_iter()
        .map(|(h, s)| managed_session_rep(ctx, caller, h, &s))
        .collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}

/// `GET /emrest/logonSessions/{Handle}` (emrest extension).
pub(super) fn get_managed_logon_session(
    ctx: &Ctx,
    caller: &Caller,
    handle: &str,
) -> Result<Reply, CoreError> {
    let (h, s) = ctx
        .core
        .logons()
        .managed_logon_sessions(caller)?
        .into_iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(handle))
        .ok_or_else(|| CoreError::not_found("Logon session", wire::clip(handle, 80)))?;
    Ok(Reply::ok(
        ctx.format,
        &managed_session_rep(ctx, caller, h, &s),
    ))
}

/// `DELETE /emrest/logonSessions/{Handle}` (emrest extension): end any account's session.
pub(super) fn end_managed_logon_session(
    ctx: &Ctx,
    caller: &Caller,
    handle: &str,
) -> Result<Reply, CoreError> {
    ctx.core.logons().end_logon_session(caller, handle)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}
