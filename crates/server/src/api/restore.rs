//! `POST /vmRestorePoints/{ID}?action=restore` (post_vmrestorepoints_id_actionrestore.md).

use super::*;

pub(super) fn restore(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let action = ctx.query.get("action").unwrap_or("");
    if !action.eq_ignore_ascii_case("restore") {
        return Ok(ctx.err(
            StatusCode::BAD_REQUEST,
            format!("Unknown action '{action}' on a VM restore point; the supported action is ?action=restore"),
        ));
    }
    let id = parse(id, "VmRestorePoint")?;
    let body_format = request_format(&ctx.headers, body);
    let policy = if state.options.lenient_xml_order {
        wire::OrderPolicy::Lenient
    } else {
        wire::OrderPolicy::Strict
    };
    let spec =
        wire::decode_restore_spec(body, body_format, policy).map_err(|e| CoreError::Invalid {
            element: e.element.clone(),
            message: format!("Invalid RestoreSpec: {e}"),
        })?;
    let request = crate::convert::restore_request(spec);
    let task = state.core.start_restore(caller, id, &request)?;
    Ok(Reply::rep(
        StatusCode::ACCEPTED,
        ctx.format,
        &task_rep(ctx, &task),
    ))
}

/// The body's format from `Content-Type`; without one, sniffed from the first byte (JSON.md A1).
pub(super) fn request_format(headers: &HeaderMap, body: &[u8]) -> Format {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    match ct {
        Some(ct) if ct.contains("json") => Format::Json,
        Some(ct) if ct.contains("xml") => Format::Xml,
        _ => match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Format::Json,
            _ => Format::Xml,
        },
    }
}
