//! `/emrest/faults` (emrest extension): the fault rules of a server started with
//! `--allow-faults` (core/src/faults.rs), and the effects of the rules that match requests:
//! an answer with a given status, a delay, a hang, a connection dropped half way through the
//! response, an expired session. Administrators only; every change is audited by core.
//!
//! The fault routes themselves are never faulted, so a rule can always be removed.

use super::logon::basic_credentials;
use super::restore::request_format;
use super::{session_id, Ctx};
use crate::endpoint::Endpoint;
use crate::ids::FaultId;
use crate::reply::Reply;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use emrest_core::faults::{Effect, Event, FaultRule, FaultSpec, Fire, Operation, RestoreMode, Who};
use emrest_core::{Caller, Core, CoreError};
use emrest_wire as wire;
use emrest_wire::Link;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// A 400 naming the member of the `FaultRuleSpec` at fault, in its message too.
fn invalid(element: &str, message: impl Into<String>) -> CoreError {
    CoreError::invalid(
        element,
        format!("Invalid FaultRuleSpec: {element}: {}", message.into()),
    )
}

/// The route a rule names, when this server serves it: its template is the rule's spelling
/// (`/api/Tasks/{id}` is `/tasks/{ID}`) and its methods the ones the rule may name.
fn route_of(route: &str) -> Option<Endpoint> {
    let route = route.trim();
    let path = match route.get(..4) {
        Some(head) if head.eq_ignore_ascii_case("/api") => &route[4..],
        _ => route,
    };
    // Fill each `{…}` with a value of its kind, parse, and compare the template.
    let mut sample = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        sample.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        sample.push_str(if name.eq_ignore_ascii_case("Frame") {
            "overview"
        } else {
            "00000000-0000-0000-0000-000000000001"
        });
        rest = &rest[close + 1..];
    }
    sample.push_str(rest);
    let endpoint = Endpoint::parse(&format!("/api{sample}"))?;
    endpoint
        .template()
        .eq_ignore_ascii_case(path)
        .then_some(endpoint)
}

/// A `FaultRuleSpec` as core's rule, every member checked and named when wrong.
fn spec_of(w: wire::FaultRuleSpec) -> Result<FaultSpec, CoreError> {
    let is = |v: &str, name: &str| v.eq_ignore_ascii_case(name);
    let op = w.operation.trim();
    let operation = if is(op, "Restore") {
        let mode = match w.restore_mode.as_deref().map(str::trim) {
            None => None,
            Some(m) if is(m, "Full") => Some(RestoreMode::Full),
            Some(m) if is(m, "QuickRollback") => Some(RestoreMode::QuickRollback),
            Some(m) => {
                return Err(invalid(
                    "RestoreMode",
                    format!("'{}' is not Full or QuickRollback", wire::clip(m, 40)),
                ))
            }
        };
        Operation::Restore(mode)
    } else if is(op, "Backup") {
        Operation::Backup
    } else if is(op, "Logon") {
        Operation::Logon
    } else if is(op, "Request") {
        let Some(route) = w.route.as_deref() else {
            return Err(invalid(
                "Route",
                "a Request rule needs a Route: a route template as docs/openapi.json names it, e.g. /tasks/{ID}",
            ));
        };
        let endpoint = route_of(route).ok_or_else(|| {
            invalid(
                "Route",
                format!(
                    "'{}' is not a route of this API: name one as docs/openapi.json does, e.g. /tasks/{{ID}}",
                    wire::clip(route, 80)
                ),
            )
        })?;
        let template = endpoint.template();
        if matches!(endpoint, Endpoint::Faults | Endpoint::Fault(_)) {
            return Err(invalid(
                "Route",
                "the fault routes are never faulted (a rule must always be removable)",
            ));
        }
        let method = match w.method.as_deref().map(str::trim) {
            None => None,
            Some(m) => {
                let m = m.to_ascii_uppercase();
                let served = endpoint.methods();
                if !served.iter().any(|s| s.as_str() == m) {
                    let names: Vec<&str> = served.iter().map(Method::as_str).collect();
                    return Err(invalid(
                        "Method",
                        format!(
                            "{template} does not answer '{}': it answers {}",
                            wire::clip(&m, 20),
                            names.join(", ")
                        ),
                    ));
                }
                Some(m)
            }
        };
        Operation::Request {
            method,
            route: template.to_string(),
        }
    } else {
        return Err(invalid(
            "Operation",
            format!(
                "'{}' is not Restore, Backup, Logon or Request",
                wire::clip(op, 40)
            ),
        ));
    };
    if w.restore_mode.is_some() && !matches!(operation, Operation::Restore(_)) {
        return Err(invalid(
            "RestoreMode",
            "RestoreMode applies to Operation Restore",
        ));
    }
    if (w.route.is_some() || w.method.is_some()) && !matches!(operation, Operation::Request { .. })
    {
        let element = if w.route.is_some() { "Route" } else { "Method" };
        return Err(invalid(
            element,
            format!("{element} applies to Operation Request"),
        ));
    }
    let non_negative = |name: &str, v: Option<i64>| -> Result<Option<u64>, CoreError> {
        v.map(|v| u64::try_from(v).map_err(|_| invalid(name, format!("{v} is negative"))))
            .transpose()
    };
    let count = non_negative("Count", w.count)?;
    let fire_name = w.fire.as_deref().map(str::trim).unwrap_or("Always");
    let fire = if is(fire_name, "Always") {
        Fire::Always
    } else if is(fire_name, "First") || is(fire_name, "Every") {
        let n = count.ok_or_else(|| invalid("Count", format!("Fire {fire_name} needs a Count")))?;
        if is(fire_name, "First") {
            Fire::First(n)
        } else {
            Fire::Every(n)
        }
    } else if is(fire_name, "Chance") {
        let p = w
            .probability
            .as_deref()
            .ok_or_else(|| invalid("Probability", "Fire Chance needs a Probability (0 to 1)"))?;
        let probability = p.trim().parse::<f64>().map_err(|_| {
            invalid(
                "Probability",
                format!("'{}' is not a number", wire::clip(p, 40)),
            )
        })?;
        let seed = non_negative("Seed", w.seed)?.unwrap_or(0);
        Fire::Chance { probability, seed }
    } else {
        return Err(invalid(
            "Fire",
            format!(
                "'{}' is not Always, First, Every or Chance",
                wire::clip(fire_name, 40)
            ),
        ));
    };
    if count.is_some() && !matches!(fire, Fire::First(_) | Fire::Every(_)) {
        return Err(invalid("Count", "Count applies to Fire First or Every"));
    }
    if (w.probability.is_some() || w.seed.is_some()) && !matches!(fire, Fire::Chance { .. }) {
        let element = if w.probability.is_some() {
            "Probability"
        } else {
            "Seed"
        };
        return Err(invalid(
            element,
            format!("{element} applies to Fire Chance"),
        ));
    }
    // Its range is core's rule (FaultSpec::check); here only what a u8 cannot hold.
    let percent = w
        .percent
        .map(|p| {
            u8::try_from(p)
                .map_err(|_| invalid("Percent", format!("{p} is not a percent from 0 to 99")))
        })
        .transpose()?;
    let delay = non_negative("DelayMs", w.delay_ms)?;
    let effect_name = w.effect.trim();
    let message = w.message.clone();
    let effect = if is(effect_name, "Fail") {
        let percent = percent.unwrap_or(0);
        Effect::Fail {
            percent,
            message: message
                .clone()
                .unwrap_or_else(|| format!("Injected fault: the task failed at {percent}%")),
        }
    } else if is(effect_name, "Delay") {
        Effect::Delay {
            millis: delay.ok_or_else(|| invalid("DelayMs", "Effect Delay needs DelayMs"))?,
        }
    } else if is(effect_name, "Hang") {
        Effect::Hang
    } else if is(effect_name, "Stall") {
        Effect::Stall {
            percent: percent.unwrap_or(0),
            millis: delay,
        }
    } else if is(effect_name, "Status") {
        let code = w
            .status_code
            .ok_or_else(|| invalid("StatusCode", "Effect Status needs a StatusCode"))?;
        let code = u16::try_from(code)
            .map_err(|_| invalid("StatusCode", format!("{code} is not an HTTP status")))?;
        let reason = StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Effect::Status {
            code,
            message: message
                .clone()
                .unwrap_or_else(|| format!("Injected fault: {code} {reason}")),
        }
    } else if is(effect_name, "Drop") {
        Effect::Drop
    } else if is(effect_name, "ExpireSession") {
        Effect::ExpireSession
    } else {
        return Err(invalid(
            "Effect",
            format!(
                "'{}' is not Fail, Delay, Hang, Stall, Status, Drop or ExpireSession",
                wire::clip(effect_name, 40)
            ),
        ));
    };
    let unused = |name: &str, given: bool, applies: bool, to: &str| {
        if given && !applies {
            Err(invalid(name, format!("{name} applies to Effect {to}")))
        } else {
            Ok(())
        }
    };
    unused(
        "Percent",
        w.percent.is_some(),
        matches!(effect, Effect::Fail { .. } | Effect::Stall { .. }),
        "Fail or Stall",
    )?;
    unused(
        "DelayMs",
        w.delay_ms.is_some(),
        matches!(effect, Effect::Delay { .. } | Effect::Stall { .. }),
        "Delay or Stall",
    )?;
    unused(
        "StatusCode",
        w.status_code.is_some(),
        matches!(effect, Effect::Status { .. }),
        "Status",
    )?;
    unused(
        "Message",
        message.is_some(),
        matches!(effect, Effect::Fail { .. } | Effect::Status { .. }),
        "Fail or Status",
    )?;
    let spec = FaultSpec {
        operation,
        vm: w.vm_name.filter(|v| !v.trim().is_empty()),
        account: w.account_name.filter(|v| !v.trim().is_empty()),
        fire,
        effect,
    };
    spec.check()?;
    Ok(spec)
}

/// Core's rule as a `FaultRuleSpec` would send it.
pub fn wire_spec(spec: &FaultSpec) -> wire::FaultRuleSpec {
    let mut w = wire::FaultRuleSpec {
        operation: spec.operation.name().to_string(),
        vm_name: spec.vm.clone(),
        account_name: spec.account.clone(),
        effect: spec.effect.name().to_string(),
        ..Default::default()
    };
    match &spec.operation {
        Operation::Restore(mode) => w.restore_mode = mode.map(|m| m.as_str().to_string()),
        Operation::Request { method, route } => {
            w.method = method.clone();
            w.route = Some(route.clone());
        }
        Operation::Backup | Operation::Logon => {}
    }
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match spec.fire {
        Fire::Always => w.fire = Some("Always".into()),
        Fire::First(n) => {
            w.fire = Some("First".into());
            w.count = Some(as_i64(n));
        }
        Fire::Every(n) => {
            w.fire = Some("Every".into());
            w.count = Some(as_i64(n));
        }
        Fire::Chance { probability, seed } => {
            w.fire = Some("Chance".into());
            w.probability = Some(probability.to_string());
            w.seed = Some(as_i64(seed));
        }
    }
    match &spec.effect {
        Effect::Fail { percent, message } => {
            w.percent = Some(i64::from(*percent));
            w.message = Some(message.clone());
        }
        Effect::Delay { millis } => w.delay_ms = Some(as_i64(*millis)),
        Effect::Stall { percent, millis } => {
            w.percent = Some(i64::from(*percent));
            w.delay_ms = millis.map(as_i64);
        }
        Effect::Status { code, message } => {
            w.status_code = Some(i64::from(*code));
            w.message = Some(message.clone());
        }
        Effect::Hang | Effect::Drop | Effect::ExpireSession => {}
    }
    w
}

fn rule_rep(ctx: &Ctx, r: &FaultRule) -> wire::FaultRule {
    let href = ctx.url(&format!("/emrest/faults/{}", r.id));
    wire::FaultRule {
        links: vec![Link::fixed("Delete", href.clone(), None, None)],
        href,
        id: r.id.to_string(),
        spec: wire_spec(&r.spec),
        description: r.spec.describe(),
        created_by: r.created_by.clone(),
        creation_time_utc: wire::UtcTime::from_unix_millis(r.created),
        matched: r.matched,
        fired: r.fired,
    }
}

/// `GET /emrest/faults`: the rules in force, oldest first.
pub(super) fn list_faults(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let rules = ctx.core.fault_admin().list(Who::Caller(caller))?;
    let items = rules.iter().map(|r| rule_rep(ctx, r)).collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}

/// `GET /emrest/faults/{ID}`.
pub(super) fn get_fault(ctx: &Ctx, caller: &Caller, id: FaultId) -> Result<Reply, CoreError> {
    let rule = ctx.core.fault_admin().get(Who::Caller(caller), id.0)?;
    Ok(Reply::ok(ctx.format, &rule_rep(ctx, &rule)))
}

/// `POST /emrest/faults` with a `FaultRuleSpec`: 201 and the rule.
pub(super) fn add_fault(ctx: &Ctx, caller: &Caller, body: &[u8]) -> Result<Reply, CoreError> {
    // Refused as the rest of the extension is, before the body is looked at.
    ctx.core.fault_admin().list(Who::Caller(caller))?;
    let format = request_format(&ctx.headers, body)?;
    let w =
        wire::decode_fault_rule_spec(body, format, ctx.order).map_err(|e| CoreError::Invalid {
            element: e.element.clone(),
            message: format!("Invalid FaultRuleSpec: {e}"),
        })?;
    let rule = ctx
        .core
        .fault_admin()
        .add(Who::Caller(caller), spec_of(w)?)?;
    Ok(Reply::rep(
        StatusCode::CREATED,
        ctx.format,
        &rule_rep(ctx, &rule),
    ))
}

/// `DELETE /emrest/faults`: every rule removed. 204.
pub(super) fn clear_faults(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    ctx.core.fault_admin().clear(Who::Caller(caller))?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

/// `DELETE /emrest/faults/{ID}`. 204.
pub(super) fn remove_fault(ctx: &Ctx, caller: &Caller, id: FaultId) -> Result<Reply, CoreError> {
    ctx.core.fault_admin().remove(Who::Caller(caller), id.0)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

/// The checked rule of a `FaultRuleSpec` sent as JSON (the admin channel's `emrest fault add`).
pub fn spec_from_json(body: &[u8]) -> Result<FaultSpec, CoreError> {
    let w = wire::decode_fault_rule_spec(body, wire::Format::Json, wire::OrderPolicy::Lenient)
        .map_err(|e| CoreError::Invalid {
            element: e.element.clone(),
            message: format!("Invalid FaultRuleSpec: {e}"),
        })?;
    spec_of(w)
}

/// The rule that fires on this request, if any (none while no rule watches requests).
pub(super) fn request_fault(
    core: &Core,
    method: &Method,
    endpoint: &Endpoint,
    headers: &HeaderMap,
) -> Option<(Uuid, Effect)> {
    let faults = core.faults();
    if !faults.watches_requests() || matches!(endpoint, Endpoint::Faults | Endpoint::Fault(_)) {
        return None;
    }
    let account = if *endpoint == Endpoint::SessionMngr {
        basic_credentials(headers).map(|(user, _)| user)
    } else {
        session_id(headers)
            .and_then(|id| core.logons().caller(id).ok())
            .map(|c| c.user_name().to_string())
    };
    faults.fire(&Event::Request {
        method: method.as_str(),
        route: endpoint.template(),
        account: account.as_deref(),
    })
}

/// A `Hang`: waits while its rule is in force (the client gives up first, or the rule is
/// removed and the request is served).
pub(super) async fn hang(core: &Core, rule: Uuid) {
    while core.faults().in_force(rule) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `Drop`: the response's head and the first half of its body, then the connection closes
/// (the body stream fails, and the server aborts a response it cannot finish).
pub(super) async fn cut(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let mut response = Response::from_parts(
        parts,
        Body::new(CutBody {
            half: Some(half),
            wait: None,
        }),
    );
    response.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(bytes.len().max(1)),
    );
    response
}

/// A body that yields its first half, waits for it to reach the client, then fails: the server
/// closes the connection short of the Content-Length it announced.
struct CutBody {
    half: Option<axum::body::Bytes>,
    wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for CutBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if let Some(half) = self.half.take() {
            self.wait = Some(Box::pin(tokio::time::sleep(Duration::from_millis(100))));
            return Poll::Ready(Some(Ok(http_body::Frame::data(half))));
        }
        if let Some(wait) = self.wait.as_mut() {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(Some(Err(std::io::Error::other(
            "injected fault: connection dropped",
        ))))
    }
}
