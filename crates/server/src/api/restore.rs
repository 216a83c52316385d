//! `POST /vmRestorePoints/{ID}?action=restore` (post_vmrestorepoints_id_actionrestore.md).

use super::tasks::task_rep;
use super::Ctx;
use crate::ids::{shown, PathId, VmRestorePointId};
use crate::reply::Reply;
use axum::http::{header, HeaderMap, StatusCode};
use emrest_core::{Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::Format;

/// Restore a VM from a restore point: 202 and the task. An unknown action is named before a
/// malformed `{ID}`, so this handler takes the ID's parse as it is.
pub(super) fn restore_vm_restore_point(
    ctx: &Ctx,
    caller: &Caller,
    id: PathId<VmRestorePointId>,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let action = ctx.query.get("action").unwrap_or("");
    if !action.eq_ignore_ascii_case("restore") {
        return Ok(ctx.err(
            StatusCode::BAD_REQUEST,
            format!(
                "Unknown action {} on a VM restore point; the supported action is ?action=restore",
                shown(action)
            ),
        ));
    }
    let id = id?;
    let body_format = request_format(&ctx.headers, body)?;
    let spec = wire::decode_restore_spec_with(body, body_format, ctx.restore_spec_policy())
        .map_err(|e| CoreError::Invalid {
            element: e.element.clone(),
            message: format!("Invalid RestoreSpec: {e}"),
        })?;
    let request = crate::convert::restore_request(spec);
    let task = ctx.core.restores().start(caller, id.0, &request)?;
    Ok(Reply::rep(
        StatusCode::ACCEPTED,
        ctx.format,
        &task_rep(ctx, caller, &task),
    ))
}

/// The body's format from `Content-Type`; without an XML or JSON one, sniffed from the first
/// byte (JSON.md A1: EM itself ignores Content-Type, so a wrong one is not refused). A body
/// that is then neither is a 400 saying so: http_response_codes.md lists no 415.
pub(super) fn request_format(headers: &HeaderMap, body: &[u8]) -> Result<Format, CoreError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    match ct.as_deref() {
        Some(ct) if ct.contains("json") => return Ok(Format::Json),
        Some(ct) if ct.contains("xml") => return Ok(Format::Xml),
        _ => {}
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        // An empty body: the decoders read it as the defaults.
        return Ok(Format::Xml);
    }
    Format::sniff(body).ok_or_else(|| {
        CoreError::invalid(
            "Content-Type",
            format!(
                "The request body is neither XML nor JSON (Content-Type: {}): send an XML body with Content-Type: application/xml or a JSON one with Content-Type: application/json",
                ct.as_deref().map(shown).unwrap_or_else(|| "none".into())
            ),
        )
    })
}
