//! The `/api` surface: one dispatcher over parsed endpoints, with authentication checked once
//! before any handler that needs it. Handlers run on the blocking pool because `core` does
//! file and catalog I/O.

mod backup_files;
mod backup_servers;
mod backups;
mod cache;
mod csrf;
pub mod faults;
mod hierarchy_roots;
mod job_schedule;
mod jobs;
pub(crate) mod logon;
mod logon_gate;
pub mod metrics;
pub mod openapi;
mod query;
mod reports;
mod repositories;
mod restore;
mod restore_points;
mod restore_sessions;
mod security;
mod tasks;
mod vm_restore_points;
mod vms;

pub use cache::{CacheStats, ReplyCache};

use crate::endpoint::{Endpoint, Query};
use crate::reply::{core_error, Reply};
use crate::serve::ConnInfo;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use emrest_core::{BackupServerRecord, Caller, Core, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Format, Link};
use std::sync::Arc;
use uuid::Uuid;

/// Largest request body accepted, the decoders' own limit: a RestoreSpec is a few hundred bytes
/// and a larger body is answered 413 whatever its route.
const BODY_LIMIT: usize = wire::MAX_REQUEST_BODY;

/// API versions the root lists (em_web_api_versions.md; JSON.md B2/C4).
const VERSIONS: &[&str] = &["v1_5", "v1_6", "v1_7"];
/// Older versions real clients still log on with (the `veeam` PyPI client sends v1_4).
const ACCEPTED_OLD_VERSIONS: &[&str] = &["v1_4"];

/// Behaviour switches of the API.
#[derive(Clone, Debug, Default)]
pub struct ApiOptions {
    /// Accept XML request elements in any order.
    pub lenient_xml_order: bool,
    /// Default the restore request's members the reference marks 1/1 when they are left out,
    /// as Enterprise Manager does, instead of refusing the request.
    pub lenient_restore_spec: bool,
    /// Serve `GET /metrics` on this router (metrics.rs).
    pub metrics: Option<metrics::Access>,
    /// Stream a collection of more items than this instead of encoding it whole; `None` is
    /// [`STREAM_ABOVE`].
    pub stream_collections_above: Option<u64>,
}

struct AppState {
    core: Arc<Core>,
    /// Logons take turns between addresses for the cores (logon_gate.rs).
    logon_gate: Arc<logon_gate::LogonGate>,
    options: ApiOptions,
    /// Encoded answers of hot read-only GETs (cache.rs).
    cache: Arc<ReplyCache>,
    /// Permits to stream a long collection (`stream_collection`).
    streams: Arc<tokio::sync::Semaphore>,
}

/// Build the router: every request goes through `handle`. The reply cache is returned beside
/// it for its counters.
pub fn router(core: Arc<Core>, options: ApiOptions) -> (Router, Arc<ReplyCache>) {
    let cache = Arc::new(ReplyCache::default());
    let router = Router::new()
        .fallback(handle)
        .with_state(Arc::new(AppState {
            logon_gate: logon_gate::LogonGate::new(),
            core,
            options,
            cache: cache.clone(),
            streams: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        }));
    (router, cache)
}

/// Everything a handler needs to know about the request besides its body. Cloned for a
/// streamed answer's producer, which outlives the handler.
#[derive(Clone)]
struct Ctx {
    core: Arc<Core>,
    /// Backup server names for Up links, loaded once per request when first needed.
    servers: std::cell::OnceCell<Vec<BackupServerRecord>>,
    format: Format,
    /// `scheme://host:port/api`, as the client reached us.
    base: String,
    query: Query,
    /// The query string as sent (paging links repeat the caller's parameters).
    raw_query: Option<String>,
    headers: HeaderMap,
    /// Whether the request came over HTTPS.
    https: bool,
    /// The client's address.
    peer: Option<std::net::IpAddr>,
    /// How XML request bodies are read (`--lenient-xml-order`).
    order: wire::OrderPolicy,
    /// Whether a restore request may leave out 1/1 members (`--lenient-restore-spec`).
    required: wire::RequiredPolicy,
    /// Collections of more items are streamed (`ApiOptions::stream_collections_above`).
    stream_above: u64,
    /// Permits to stream one: as many as there are cores.
    streams: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    /// How a restore request body is decoded (`--lenient-xml-order`, `--lenient-restore-spec`).
    fn restore_spec_policy(&self) -> wire::RestoreSpecPolicy {
        wire::RestoreSpecPolicy {
            order: self.order,
            required: self.required,
        }
    }

    fn url(&self, path: &str) -> String {
        let mut s = String::with_capacity(self.base.len() + path.len());
        s.push_str(&self.base);
        s.push_str(path);
        s
    }
    /// [`Ctx::url`] of a formatted path, built in one string (no temporary for the path).
    fn href(&self, path: std::fmt::Arguments<'_>) -> String {
        use std::fmt::Write;
        // Room for a collection name, a UUID and a query: one allocation for most URLs.
        let mut s = String::with_capacity(self.base.len() + 96);
        s.push_str(&self.base);
        // Writing to a String cannot fail.
        let _ = s.write_fmt(path);
        s
    }
    fn err(&self, status: StatusCode, msg: impl Into<String>) -> Reply {
        Reply::error(status, self.format, msg)
    }
}

/// `Accept: application/json` selects JSON; XML otherwise (em_web_api_specifications.md).
fn negotiate(headers: &HeaderMap) -> Format {
    let json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/json"));
    if json {
        Format::Json
    } else {
        Format::Xml
    }
}

fn base_url(req: &Request) -> String {
    let info = req.extensions().get::<ConnInfo>().copied();
    let https = info.map(|i| i.https).unwrap_or(false);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .or_else(|| info.map(|i| i.local.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("{}://{host}/api", if https { "https" } else { "http" })
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if let Some(access) = &state.options.metrics {
        if req.uri().path() == metrics::PATH {
            return metrics::answer(state.core.clone(), access.clone(), req).await;
        }
    }
    let started = std::time::Instant::now();
    let method = req.method().clone();
    // Parsed once: the metrics name the route by it, and the dispatcher serves it.
    let endpoint = Endpoint::parse(req.uri().path());
    let route = endpoint.as_ref().map_or("unknown", Endpoint::template);
    let response = answer(state.clone(), req, endpoint).await;
    state.core.metrics().request(
        route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn answer(state: Arc<AppState>, req: Request, endpoint: Option<Endpoint>) -> Response {
    let format = negotiate(req.headers());
    let base = base_url(&req);
    let conn = req.extensions().get::<ConnInfo>().copied();
    let method = req.method().clone();
    let query = Query::parse(req.uri().query());
    let (parts, body) = req.into_parts();
    let ctx = Ctx {
        core: state.core.clone(),
        servers: std::cell::OnceCell::new(),
        format,
        base,
        query,
        raw_query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        https: conn.is_some_and(|c| c.https),
        peer: conn.map(|c| c.peer.ip()),
        order: if state.options.lenient_xml_order {
            wire::OrderPolicy::Lenient
        } else {
            wire::OrderPolicy::Strict
        },
        required: if state.options.lenient_restore_spec {
            wire::RequiredPolicy::Default
        } else {
            wire::RequiredPolicy::Enforce
        },
        stream_above: state
            .options
            .stream_collections_above
            .unwrap_or(STREAM_ABOVE),
        streams: state.streams.clone(),
    };
    let Some(endpoint) = endpoint else {
        return ctx
            .err(
                StatusCode::NOT_FOUND,
                format!("There is no resource at {}", parts.uri.path()),
            )
            .into_response();
    };
    let body = match axum::body::to_bytes(Body::new(body), BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ctx
                .err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request body is larger than {BODY_LIMIT} bytes"),
                )
                .into_response()
        }
    };
    let failed = || {
        Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format,
            "The server failed to process the request",
        )
    };
    // An injected fault on this request (faults.rs), before the logon gate: a slow logon does
    // not hold a turn others wait for.
    let mut drop_response = false;
    if let Some((rule, effect)) =
        faults::request_fault(&state.core, &method, &endpoint, &ctx.headers)
    {
        use emrest_core::faults::Effect;
        match effect {
            Effect::Status { code, message } => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return ctx.err(status, message).into_response();
            }
            Effect::Delay { millis } => {
                tokio::time::sleep(std::time::Duration::from_millis(millis)).await
            }
            Effect::Hang => faults::hang(&state.core, rule).await,
            Effect::Drop => drop_response = true,
            Effect::ExpireSession => {
                if let Some(id) = session_id(&ctx.headers) {
                    state.core.fault_admin().expire_session(id);
                }
            }
            Effect::Fail { .. } | Effect::Stall { .. } => {}
        }
    }
    // A logon waits its turn for a core before its password hash (logon_gate.rs).
    let _slot = if method == Method::POST && endpoint == Endpoint::SessionMngr {
        Some(state.logon_gate.enter(ctx.peer).await)
    } else {
        None
    };
    let reply = if runs_inline(&method, &endpoint) {
        // A panic answers 500, as one on the blocking pool does.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dispatch(&state, &ctx, method, endpoint, &body)
        }))
        .unwrap_or_else(|_| failed())
    } else {
        tokio::task::spawn_blocking(move || dispatch(&state, &ctx, method, endpoint, &body))
            .await
            .unwrap_or_else(|_| failed())
    };
    if drop_response {
        return faults::cut(reply.into_response()).await;
    }
    reply.into_response()
}

/// Requests answered on the async worker itself rather than handed to the blocking pool: reads
/// that resolve the caller from the session cache and run a few short statements on the
/// catalog's read-only connections, which never wait for the writer (WAL). The handoff to the
/// blocking pool and back cost more than such a request's own work (bench/api.sh profile: ~40%
/// of the time in scheduling for GET /tasks/{ID}). Anything that writes, touches the
/// repository or the inventory, or may take long stays on the blocking pool.
fn runs_inline(method: &Method, endpoint: &Endpoint) -> bool {
    use Endpoint as E;
    method == Method::GET
        && matches!(
            endpoint,
            E::Root
                | E::Task(_)
                | E::VmRestorePoints
                | E::VmRestorePoint(_)
                | E::LogonSessions
                | E::LogonSession(_)
        )
}

/// The session ID from the cookie (which wins, JSON.md C5) or the header: base64 of the
/// session GUID (a raw GUID is accepted too).
pub(crate) fn session_id(headers: &HeaderMap) -> Option<Uuid> {
    // Bytes that are not ASCII make a header unreadable, not absent: a garbage cookie must not
    // fall back to the header (the cookie wins, JSON.md C5).
    let cookies: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let from_cookie = cookies
        .iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("X-RestSvcSessionId"))
        .map(|(_, v)| v.trim().to_string());
    let from_header = headers
        .get("X-RestSvcSessionId")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    let token = from_cookie.or(from_header)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    decoded
        .as_deref()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .or_else(|| Uuid::parse_str(&token).ok())
}

/// Answer one request: the routes that need no session, then the session and the permission
/// check (before a malformed `{ID}` is answered: a caller without a session gets 401 whatever
/// the path holds), then the reply cache, then the route.
fn dispatch(state: &AppState, ctx: &Ctx, method: Method, endpoint: Endpoint, body: &[u8]) -> Reply {
    use Endpoint as E;
    match (&method, &endpoint) {
        (&Method::GET, E::Root) => return logon::get_root(ctx),
        (&Method::POST, E::SessionMngr) => return logon::create_logon_session(ctx),
        (&Method::GET, E::OpenApi) => return openapi::get_openapi(),
        _ => {}
    }
    let caller = match authenticate(ctx) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    if csrf::cross_site(ctx, &method) {
        return ctx.err(StatusCode::FORBIDDEN, csrf::REFUSAL);
    }
    if let Err(e) = state.core.authorize(&caller, endpoint.permission(&method)) {
        return core_error(ctx.format, e);
    }
    let pending = match state
        .cache
        .lookup(&state.core, ctx, &caller, &method, &endpoint)
    {
        cache::Lookup::Hit(reply) => return reply,
        cache::Lookup::Miss(p) => Some(p),
        cache::Lookup::Off => None,
    };
    let reply =
        route(ctx, &caller, method, endpoint, body).unwrap_or_else(|e| core_error(ctx.format, e));
    if let Some(p) = pending {
        p.keep(&reply);
    }
    reply
}

/// The caller of a request from its session header or cookie; 401 without one.
fn authenticate(ctx: &Ctx) -> Result<Caller, Reply> {
    let Some(id) = session_id(&ctx.headers) else {
        return Err(ctx.err(
            StatusCode::UNAUTHORIZED,
            "Authentication is required: log on with POST /api/sessionMngr and send the X-RestSvcSessionId header",
        ));
    };
    let caller = ctx
        .core
        .logons()
        .caller(id)
        .map_err(|e| core_error(ctx.format, e))?;
    Ok(caller.at(ctx.peer))
}

/// One named handler per operation, for an authenticated and authorized caller. A path `{ID}`
/// that did not parse (`id?`) is answered 400 here, before the handler runs; the restore takes
/// the parse's result, because it names an unknown action before a malformed ID.
fn route(
    ctx: &Ctx,
    caller: &Caller,
    method: Method,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<Reply, CoreError> {
    use Endpoint as E;
    use Method as M;
    match (method, endpoint) {
        (M::GET, E::LogonSessions) => logon::list_logon_sessions(ctx, caller),
        (M::GET, E::LogonSession(id)) => logon::get_logon_session(ctx, caller, id?),
        (M::DELETE, E::LogonSession(id)) => logon::delete_logon_session(ctx, caller, id?),
        (M::GET, E::ManagedLogonSessions) => logon::list_managed_logon_sessions(ctx, caller),
        (M::GET, E::ManagedLogonSession(handle)) => {
            logon::get_managed_logon_session(ctx, caller, &handle)
        }
        (M::DELETE, E::ManagedLogonSession(handle)) => {
            logon::end_managed_logon_session(ctx, caller, &handle)
        }
        (M::PUT, E::AccountPassword(id)) => security::set_account_password(ctx, caller, id?, body),
        (M::GET, E::Faults) => faults::list_faults(ctx, caller),
        (M::POST, E::Faults) => faults::add_fault(ctx, caller, body),
        (M::DELETE, E::Faults) => faults::clear_faults(ctx, caller),
        (M::GET, E::Fault(id)) => faults::get_fault(ctx, caller, id?),
        (M::DELETE, E::Fault(id)) => faults::remove_fault(ctx, caller, id?),
        (M::GET, E::BackupServers) => backup_servers::list_backup_servers(ctx),
        (M::GET, E::BackupServer(id)) => backup_servers::get_backup_server(ctx, id?),
        (M::GET, E::BackupServerJobs(id)) => {
            backup_servers::list_backup_server_jobs(ctx, caller, id?)
        }
        (M::GET, E::BackupServerRepositories(id)) => {
            backup_servers::list_backup_server_repositories(ctx, id?)
        }
        (M::GET, E::Backups) => backups::list_backups(ctx, caller),
        (M::GET, E::Backup(id)) => backups::get_backup(ctx, caller, id?),
        (M::GET, E::BackupRestorePoints(id)) => {
            backups::list_backup_restore_points(ctx, caller, id?)
        }
        (M::GET, E::RestorePoints) => restore_points::list_restore_points(ctx, caller),
        (M::GET, E::RestorePoint(id)) => restore_points::get_restore_point(ctx, caller, id?),
        (M::GET, E::RestorePointVmRestorePoints(id)) => {
            restore_points::list_restore_point_vm_restore_points(ctx, caller, id?)
        }
        (M::GET, E::RestorePointBackupFiles(id)) => {
            restore_points::list_restore_point_backup_files(ctx, caller, id?)
        }
        (M::GET, E::VmRestorePoints) => vm_restore_points::list_vm_restore_points(ctx, caller),
        (M::GET, E::RestorableVms) => vms::list_restorable_vms(ctx, caller),
        (M::GET, E::VmRestorePoint(id)) => {
            vm_restore_points::get_vm_restore_point(ctx, caller, id?)
        }
        (M::POST, E::VmRestorePoint(id)) => {
            restore::restore_vm_restore_point(ctx, caller, id, body)
        }
        (M::GET, E::HierarchyRoots) => hierarchy_roots::list_hierarchy_roots(ctx),
        (M::GET, E::HierarchyRoot(id)) => hierarchy_roots::get_hierarchy_root(ctx, id?),
        (M::GET, E::BackupFiles) => backup_files::list_backup_files(ctx, caller),
        (M::GET, E::BackupFile(id)) => backup_files::get_backup_file(ctx, caller, id?),
        (M::GET, E::Tasks) => tasks::list_tasks(ctx, caller),
        (M::GET, E::Task(id)) => tasks::get_task(ctx, caller, id?),
        (M::DELETE, E::Task(id)) => tasks::delete_task(ctx, caller, id?),
        (M::GET, E::RestoreSessions) => restore_sessions::list_restore_sessions(ctx, caller),
        (M::GET, E::RestoreSession(id)) => restore_sessions::get_restore_session(ctx, caller, id?),
        (M::GET, E::RestoreSessionLog(id)) => {
            restore_sessions::get_restore_session_log(ctx, caller, id?)
        }
        // ---- /security ----
        (M::GET, E::Security) => Ok(security::get_security(ctx)),
        (M::GET, E::SecurityAccounts) => security::list_accounts(ctx, caller),
        (M::POST, E::SecurityAccounts) => security::create_account(ctx, caller, body),
        (M::GET, E::SecurityAccount(id)) => security::get_account(ctx, caller, id?),
        (M::POST, E::SecurityAccount(id)) => security::toggle_restore_scopes(ctx, caller, id?),
        (M::DELETE, E::SecurityAccount(id)) => security::delete_account(ctx, caller, id?),
        (M::GET, E::SecurityAccountRoles(id)) => security::list_account_roles(ctx, caller, id?),
        (M::POST, E::SecurityAccountRoles(id)) => {
            security::add_account_role(ctx, caller, id?, body)
        }
        (M::GET, E::SecurityAccountRole(id, role)) => {
            security::get_account_role(ctx, caller, id?, role?)
        }
        (M::DELETE, E::SecurityAccountRole(id, role)) => {
            security::remove_account_role(ctx, caller, id?, role?)
        }
        (M::GET, E::SecurityAccountScopes(id)) => security::list_account_scopes(ctx, caller, id?),
        (M::POST, E::SecurityAccountScopes(id)) => {
            security::add_account_scopes(ctx, caller, id?, body)
        }
        (M::GET, E::SecurityAccountScope(id, scope)) => {
            security::get_account_scope(ctx, caller, id?, scope?)
        }
        (M::DELETE, E::SecurityAccountScope(id, scope)) => {
            security::remove_account_scope(ctx, caller, id?, scope?)
        }
        (M::GET, E::SecurityRoles) => security::list_roles(ctx, caller),
        (M::GET, E::SecurityRole(id)) => security::get_role(ctx, caller, id?),
        // ---- the query and lookup services ----
        (M::GET, E::QuerySvc) => Ok(query::get_query_svc(ctx, caller)),
        (M::GET, E::Query) => query::get_query(ctx, caller),
        (M::GET, E::LookupSvc) => query::get_lookup_svc(ctx, caller),
        (M::GET, E::Lookup) => query::get_lookup(ctx, caller),
        // ---- backup jobs and sessions ----
        (M::GET, E::Jobs) => jobs::list_jobs(ctx, caller),
        (M::GET, E::Job(id)) => jobs::get_job(ctx, caller, id?),
        (M::POST, E::Job(id)) => jobs::run_job_action(ctx, caller, id?, body),
        (M::PUT, E::Job(id)) => jobs::edit_job(ctx, caller, id?, body),
        (M::DELETE, E::Job(id)) => jobs::delete_job(ctx, caller, id?),
        (M::GET, E::JobIncludes(id)) => jobs::list_job_includes(ctx, caller, id?),
        (M::POST, E::JobIncludes(id)) => jobs::add_job_include(ctx, caller, id?, body),
        (M::GET, E::JobInclude(id, object)) => jobs::get_job_include(ctx, caller, id?, object?),
        (M::DELETE, E::JobInclude(id, object)) => {
            jobs::delete_job_include(ctx, caller, id?, object?)
        }
        (M::GET, E::JobBackupSessions(id)) => jobs::list_job_backup_sessions(ctx, caller, id?),
        (M::GET, E::BackupSessions) => jobs::list_backup_sessions(ctx, caller),
        (M::GET, E::BackupSession(id)) => jobs::get_backup_session(ctx, caller, id?),
        (M::POST, E::BackupSession(id)) => jobs::stop_backup_session(ctx, caller, id?),
        (M::GET, E::BackupSessionTaskSessions(id)) => {
            jobs::list_backup_session_task_sessions(ctx, caller, id?)
        }
        (M::GET, E::BackupTaskSessions) => jobs::list_backup_task_sessions(ctx, caller),
        (M::GET, E::BackupTaskSession(id)) => jobs::get_backup_task_session(ctx, caller, id?),
        // ---- backup repositories and summary reports ----
        (M::GET, E::Repositories) => repositories::list_repositories(ctx),
        (M::GET, E::Repository(id)) => repositories::get_repository(ctx, id?),
        (M::GET, E::RepositoryBackups(id)) => {
            repositories::list_repository_backups(ctx, caller, id?)
        }
        (M::GET, E::ReportsSummary) => Ok(reports::get_reports_summary(ctx)),
        (M::GET, E::ReportFrame(f)) => reports::get_report_frame(ctx, caller, f),
        (method, endpoint) => Ok(method_not_allowed(ctx, &method, &endpoint)),
    }
}

/// A path the API serves with a method it does not serve there: 405, with the served methods
/// in `Allow` (RFC 9110, 15.5.6).
fn method_not_allowed(ctx: &Ctx, method: &Method, endpoint: &Endpoint) -> Reply {
    let allow: Vec<&str> = endpoint.methods().iter().map(Method::as_str).collect();
    ctx.err(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on this resource"),
    )
    .with_header(header::ALLOW, allow.join(", "))
}

// ---- generic collection and single-resource answers ----

fn collection<T, E: wire::Entity>(
    ctx: &Ctx,
    items: &[T],
    to_ref: fn(&Ctx, &T) -> EntityRef,
    to_entity: fn(&Ctx, &T) -> E,
) -> Reply {
    if ctx.query.wants_entity() {
        let v: Vec<E> = items.iter().map(|i| to_entity(ctx, i)).collect();
        Reply::ok(ctx.format, &wire::EntityList(v))
    } else {
        let v: Vec<EntityRef> = items.iter().map(|i| to_ref(ctx, i)).collect();
        Reply::ok(ctx.format, &wire::EntityReferences(v))
    }
}

/// How many items a collection may hold before it is streamed rather than encoded whole:
/// below it an answer is one buffer (and the reply cache may keep it); above it memory stays a
/// few chunks whatever the size (a million VM restore points is ~900 MB of XML).
pub const STREAM_ABOVE: u64 = 10_000;

/// How many encoded bytes are sent at a time when streaming.
const STREAM_CHUNK: usize = 256 << 10;

/// A collection too long to hold: `read` hands its items over a batch at a time, on a blocking
/// thread of its own, while the client reads; at most a few chunks wait in memory. The bytes are
/// those `collection` would answer. A failure after the head went out cannot become an Error
/// body: the body ends short and the connection closes, so the client sees it is incomplete.
fn stream_collection<T: 'static, E: wire::Entity + 'static>(
    ctx: &Ctx,
    to_ref: fn(&Ctx, &T) -> EntityRef,
    to_entity: fn(&Ctx, &T) -> E,
    read: impl FnOnce(&mut dyn FnMut(Vec<T>) -> Result<bool, CoreError>) -> Result<(), CoreError>
        + Send
        + 'static,
) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let ctx = ctx.clone();
    let format = ctx.format;
    let streams = ctx.streams.clone();
    tokio::spawn(async move {
        // A few at a time (each keeps a core busy): the others wait here holding nothing, so
        // memory stays a few chunks per running stream however many clients ask.
        let Ok(_running) = streams.acquire_owned().await else {
            return;
        };
        let _ =
            tokio::task::spawn_blocking(move || produce(ctx, tx, to_ref, to_entity, read)).await;
    });
    Reply::streamed(format, rx)
}

/// The producer of [`stream_collection`], on a blocking thread.
fn produce<T, E: wire::Entity>(
    ctx: Ctx,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    to_ref: fn(&Ctx, &T) -> EntityRef,
    to_entity: fn(&Ctx, &T) -> E,
    read: impl FnOnce(&mut dyn FnMut(Vec<T>) -> Result<bool, CoreError>) -> Result<(), CoreError>,
) {
    let entities = ctx.query.wants_entity();
    let mut w = if entities {
        wire::ListWriter::entities::<E>(ctx.format)
    } else {
        wire::ListWriter::references(ctx.format)
    };
    let send = |bytes: Vec<u8>| tx.blocking_send(Ok(Bytes::from(bytes))).is_ok();
    let r = read(&mut |items| {
        for i in &items {
            if entities {
                w.push(&to_entity(&ctx, i));
            } else {
                w.push(&to_ref(&ctx, i));
            }
        }
        // A client that went away ends the reading.
        Ok(w.pending() < STREAM_CHUNK || send(w.take()))
    });
    match r {
        Ok(()) => {
            send(w.finish());
        }
        Err(e) => {
            tracing::warn!("a streamed collection ended short: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    }
}

fn single<T, E: wire::Representation>(
    ctx: &Ctx,
    item: &T,
    to_ref: fn(&Ctx, &T) -> EntityRef,
    to_entity: fn(&Ctx, &T) -> E,
) -> Reply {
    if ctx.query.wants_entity() {
        Reply::ok(ctx.format, &to_entity(ctx, item))
    } else {
        Reply::ok(ctx.format, &to_ref(ctx, item))
    }
}

/// The path of one resource, see [`Res::path`].
struct ResPath {
    collection: &'static str,
    id: Uuid,
}

impl std::fmt::Display for ResPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/{}", self.collection, self.id)
    }
}

/// Paths and names of one resource kind.
struct Res<'a> {
    kind: &'static str,
    collection: &'static str,
    id: Uuid,
    name: &'a str,
}

impl Res<'_> {
    /// `/<collection>/<id>`, written where it is used (no string of its own).
    fn path(&self) -> ResPath {
        ResPath {
            collection: self.collection,
            id: self.id,
        }
    }
    fn uid(&self) -> String {
        wire::urn(self.kind, self.id)
    }
    fn reference(&self, ctx: &Ctx, mut links: Vec<Link>) -> EntityRef {
        links.push(Link::fixed(
            "Alternate",
            ctx.href(format_args!(
                "/{}/{}?format=Entity",
                self.collection, self.id
            )),
            Some(self.name),
            Some(self.kind),
        ));
        EntityRef {
            type_: format!("{}Reference", self.kind),
            href: ctx.href(format_args!("/{}/{}", self.collection, self.id)),
            name: self.name.to_string(),
            uid: self.uid(),
            links,
        }
    }
    fn entity_href(&self, ctx: &Ctx) -> String {
        ctx.href(format_args!(
            "/{}/{}?format=Entity",
            self.collection, self.id
        ))
    }
    fn alternate(&self, ctx: &Ctx) -> Link {
        Link {
            rel: "Alternate".into(),
            href: ctx.href(format_args!("/{}/{}", self.collection, self.id)),
            name: Some(self.name.to_owned()),
            type_: Some(format!("{}Reference", self.kind).into()),
        }
    }
}

fn server_link(ctx: &Ctx, id: Uuid, name: Option<&str>) -> Link {
    Link::fixed(
        "Up",
        ctx.href(format_args!("/backupServers/{id}")),
        name,
        Some("BackupServerReference"),
    )
}

fn server_name(ctx: &Ctx, id: Uuid) -> Option<&str> {
    ctx.servers
        .get_or_init(|| {
            ctx.core
                .infrastructure()
                .backup_servers()
                .unwrap_or_default()
        })
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.as_str())
}
