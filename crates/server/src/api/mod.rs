//! The `/api` surface: one dispatcher over parsed endpoints, with authentication checked once
//! before any handler that needs it. Handlers run on the blocking pool because `core` does
//! file and catalog I/O.

mod backup_files;
mod backup_servers;
mod backups;
mod cache;
mod hierarchy_roots;
mod jobs;
mod logon;
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

use backup_files::*;
use backup_servers::*;
use backups::*;
use hierarchy_roots::*;
use jobs::*;
use logon::*;
use query::*;
use reports::*;
use repositories::*;
use restore::*;
use restore_points::*;
use restore_sessions::*;
use security::*;
use tasks::*;
use vm_restore_points::*;

pub use cache::{CacheStats, ReplyCache};

use crate::endpoint::{Endpoint, Query};
use crate::reply::{core_error, Reply};
use crate::serve::ConnInfo;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use emrest_core::{
    BackupFileRecord, BackupRecord, BackupServerRecord, Caller, Core, CoreError,
    HierarchyRootRecord, LogonSessionRecord, RestorePointRecord, RestoreSessionRecord, TaskRecord,
    VmRestorePointRecord,
};
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
}

struct AppState {
    core: Arc<Core>,
    options: ApiOptions,
    /// Encoded answers of hot read-only GETs (cache.rs).
    cache: Arc<ReplyCache>,
}

/// Build the router: every request goes through `handle`. The reply cache is returned beside
/// it for its counters.
pub fn router(core: Arc<Core>, options: ApiOptions) -> (Router, Arc<ReplyCache>) {
    let cache = Arc::new(ReplyCache::default());
    let router = Router::new()
        .fallback(handle)
        .with_state(Arc::new(AppState {
            core,
            options,
            cache: cache.clone(),
        }));
    (router, cache)
}

/// Everything a handler needs to know about the request besides its body.
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
}

impl Ctx {
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
    let format = negotiate(req.headers());
    let base = base_url(&req);
    let conn = req.extensions().get::<ConnInfo>().copied();
    let method = req.method().clone();
    let endpoint = Endpoint::parse(req.uri().path());
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
fn session_id(headers: &HeaderMap) -> Option<Uuid> {
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

fn dispatch(state: &AppState, ctx: &Ctx, method: Method, endpoint: Endpoint, body: &[u8]) -> Reply {
    use Endpoint as E;
    match (&method, &endpoint) {
        (&Method::GET, E::Root) => return get_root(ctx),
        (&Method::POST, E::SessionMngr) => return create_logon_session(state, ctx),
        (&Method::GET, E::OpenApi) => return openapi::get_openapi(),
        _ => {}
    }
    let mut caller = match session_id(&ctx.headers) {
        Some(id) => match state.core.caller(id) {
            Ok(c) => c,
            Err(e) => return core_error(ctx.format, e),
        },
        None => {
            return ctx.err(
                StatusCode::UNAUTHORIZED,
                "Authentication is required: log on with POST /api/sessionMngr and send the X-RestSvcSessionId header",
            )
        }
    };
    caller.address = ctx.peer;
    if let Err(e) = state.core.authorize(&caller, endpoint.permission(&method)) {
        return core_error(ctx.format, e);
    }
    let core = &state.core;
    let pending = match state.cache.lookup(core, ctx, &caller, &method, &endpoint) {
        cache::Lookup::Hit(reply) => return reply,
        cache::Lookup::Miss(p) => Some(p),
        cache::Lookup::Off => None,
    };
    let result: Result<Reply, CoreError> = match (method.clone(), endpoint.clone()) {
        (Method::GET, E::LogonSessions) => core.logon_sessions(&caller).map(|v| {
            let items = v.iter().map(|s| logon_session_rep(ctx, s)).collect();
            Reply::ok(ctx.format, &wire::EntityList(items))
        }),
        (Method::GET, E::LogonSession(id)) => parse(&id, "LogonSession")
            .and_then(|id| core.logon_session(&caller, id))
            .map(|s| Reply::ok(ctx.format, &logon_session_rep(ctx, &s))),
        (Method::DELETE, E::LogonSession(id)) => parse(&id, "LogonSession")
            .and_then(|id| core.logout(&caller, id))
            .map(|_| Reply::empty(StatusCode::NO_CONTENT, ctx.format)),
        (Method::GET, E::BackupServers) => core
            .backup_servers()
            .map(|v| collection(ctx, &v, backup_server_ref, backup_server_entity)),
        (Method::GET, E::BackupServer(id)) => parse(&id, "BackupServer")
            .and_then(|id| core.backup_server(id))
            .map(|s| single(ctx, &s, backup_server_ref, backup_server_entity)),
        (Method::GET, E::Backups) => core
            .backups_for(&caller)
            .map(|v| collection(ctx, &v, backup_ref, backup_entity)),
        (Method::GET, E::Backup(id)) => parse(&id, "Backup")
            .and_then(|id| core.backup_for(&caller, id))
            .map(|b| single(ctx, &b, backup_ref, backup_entity)),
        (Method::GET, E::BackupRestorePoints(id)) => parse(&id, "Backup")
            .and_then(|id| core.restore_points_for(&caller, Some(id)))
            .map(|v| collection(ctx, &v, restore_point_ref, restore_point_entity)),
        (Method::GET, E::RestorePoints) => core
            .restore_points_for(&caller, None)
            .map(|v| collection(ctx, &v, restore_point_ref, restore_point_entity)),
        (Method::GET, E::RestorePoint(id)) => parse(&id, "RestorePoint")
            .and_then(|id| core.restore_point_for(&caller, id))
            .map(|p| single(ctx, &p, restore_point_ref, restore_point_entity)),
        (Method::GET, E::RestorePointVmRestorePoints(id)) => parse(&id, "RestorePoint")
            .and_then(|id| core.vm_restore_points_for(&caller, Some(id)))
            .map(|v| collection(ctx, &v, vm_point_ref, vm_point_entity)),
        (Method::GET, E::RestorePointBackupFiles(id)) => parse(&id, "RestorePoint")
            .and_then(|id| core.backup_files_for(&caller, Some(id)))
            .map(|v| collection(ctx, &v, backup_file_ref, backup_file_entity)),
        (Method::GET, E::VmRestorePoints) => core
            .vm_restore_points_for(&caller, None)
            .map(|v| collection(ctx, &v, vm_point_ref, vm_point_entity)),
        (Method::GET, E::VmRestorePoint(id)) => parse(&id, "VmRestorePoint")
            .and_then(|id| core.vm_restore_point_for(&caller, id))
            .map(|p| single(ctx, &p, vm_point_ref, vm_point_entity)),
        (Method::POST, E::VmRestorePoint(id)) => restore(state, ctx, &caller, &id, body),
        (Method::GET, E::HierarchyRoots) => core
            .hierarchy_roots()
            .map(|v| collection(ctx, &v, hierarchy_root_ref, hierarchy_root_entity)),
        (Method::GET, E::HierarchyRoot(id)) => parse(&id, "HierarchyRoot")
            .and_then(|id| core.hierarchy_root(id))
            .map(|r| single(ctx, &r, hierarchy_root_ref, hierarchy_root_entity)),
        (Method::GET, E::BackupFiles) => core
            .backup_files_for(&caller, None)
            .map(|v| collection(ctx, &v, backup_file_ref, backup_file_entity)),
        (Method::GET, E::BackupFile(id)) => parse(&id, "BackupFile")
            .and_then(|id| core.backup_file_for(&caller, id))
            .map(|f| single(ctx, &f, backup_file_ref, backup_file_entity)),
        (Method::GET, E::Tasks) => core.tasks(&caller).map(|v| {
            let items = v.iter().map(|t| task_rep(ctx, t)).collect();
            Reply::ok(ctx.format, &wire::EntityList(items))
        }),
        (Method::GET, E::Task(id)) => parse_task(&id)
            .and_then(|id| core.task(&caller, id))
            .map(|t| Reply::ok(ctx.format, &task_rep(ctx, &t))),
        (Method::DELETE, E::Task(id)) => parse_task(&id)
            .and_then(|id| core.delete_task(&caller, id))
            .map(|_| Reply::empty(StatusCode::NO_CONTENT, ctx.format)),
        (Method::GET, E::RestoreSessions) => core
            .restore_sessions(&caller)
            .map(|v| collection(ctx, &v, restore_session_ref, restore_session_entity)),
        (Method::GET, E::RestoreSession(id)) => parse(&id, "RestoreSession")
            .and_then(|id| core.restore_session(&caller, id))
            .map(|s| single(ctx, &s, restore_session_ref, restore_session_entity)),
        (Method::GET, E::RestoreSessionLog(id)) => parse(&id, "RestoreSession")
            .and_then(|id| core.restore_log(&caller, id))
            .map(|lines| restore_log_reply(ctx, &lines)),
        // ---- /security ----
        (Method::GET, E::Security) => Ok(get_security(ctx)),
        (Method::GET, E::SecurityAccounts) => list_accounts(ctx, &caller),
        (Method::POST, E::SecurityAccounts) => create_account(state, ctx, &caller, body),
        (Method::GET, E::SecurityAccount(id)) => get_account(ctx, &caller, &id),
        (Method::POST, E::SecurityAccount(id)) => toggle_restore_scopes(ctx, &caller, &id),
        (Method::DELETE, E::SecurityAccount(id)) => delete_account(ctx, &caller, &id),
        (Method::GET, E::SecurityAccountRoles(id)) => list_account_roles(ctx, &caller, &id),
        (Method::POST, E::SecurityAccountRoles(id)) => {
            add_account_role(state, ctx, &caller, &id, body)
        }
        (Method::GET, E::SecurityAccountRole(id, role)) => {
            get_account_role(ctx, &caller, &id, &role)
        }
        (Method::DELETE, E::SecurityAccountRole(id, role)) => {
            remove_account_role(ctx, &caller, &id, &role)
        }
        (Method::GET, E::SecurityAccountScopes(id)) => list_account_scopes(ctx, &caller, &id),
        (Method::POST, E::SecurityAccountScopes(id)) => {
            add_account_scopes(state, ctx, &caller, &id, body)
        }
        (Method::GET, E::SecurityAccountScope(id, scope)) => {
            get_account_scope(ctx, &caller, &id, &scope)
        }
        (Method::DELETE, E::SecurityAccountScope(id, scope)) => {
            remove_account_scope(ctx, &caller, &id, &scope)
        }
        (Method::GET, E::SecurityRoles) => list_roles(ctx, &caller),
        (Method::GET, E::SecurityRole(id)) => get_role(ctx, &caller, &id),
        // The query and lookup services (query.rs).
        (Method::GET, E::QuerySvc) => Ok(get_query_svc(ctx, &caller)),
        (Method::GET, E::Query) => get_query(ctx, &caller),
        (Method::GET, E::LookupSvc) => get_lookup_svc(ctx, &caller),
        (Method::GET, E::Lookup) => get_lookup(ctx, &caller),
        // Backup jobs and sessions (jobs.rs).
        (Method::GET, E::Jobs) => core
            .jobs_for(&caller)
            .map(|v| collection(ctx, &v, job_ref, job_entity)),
        (Method::GET, E::Job(id)) => parse(&id, "Job")
            .and_then(|id| core.job_for(&caller, id))
            .map(|j| single(ctx, &j, job_ref, job_entity)),
        (Method::POST, E::Job(id)) => job_action(state, ctx, &caller, &id),
        (Method::GET, E::JobIncludes(id)) => parse(&id, "Job")
            .and_then(|id| core.job_for(&caller, id))
            .map(|j| job_includes(ctx, &j)),
        (Method::GET, E::JobBackupSessions(id)) => parse(&id, "Job")
            .and_then(|id| core.job_for(&caller, id))
            .and_then(|j| core.backup_sessions(Some(j.id)))
            .map(|v| collection(ctx, &v, backup_session_ref, backup_session_entity)),
        (Method::GET, E::BackupSessions) => core
            .backup_sessions(None)
            .map(|v| collection(ctx, &v, backup_session_ref, backup_session_entity)),
        (Method::GET, E::BackupSession(id)) => parse(&id, "BackupJobSession")
            .and_then(|id| core.backup_session(id))
            .map(|s| single(ctx, &s, backup_session_ref, backup_session_entity)),
        (Method::POST, E::BackupSession(id)) => backup_session_action(state, ctx, &caller, &id),
        (Method::GET, E::BackupSessionTaskSessions(id)) => parse(&id, "BackupJobSession")
            .and_then(|id| core.backup_task_sessions(Some(id)))
            .map(|v| collection(ctx, &v, task_session_ref, task_session_entity)),
        (Method::GET, E::BackupTaskSessions) => core
            .backup_task_sessions(None)
            .map(|v| collection(ctx, &v, task_session_ref, task_session_entity)),
        (Method::GET, E::BackupTaskSession(id)) => parse(&id, "BackupTaskSession")
            .and_then(|id| core.backup_task_session(id))
            .map(|t| single(ctx, &t, task_session_ref, task_session_entity)),
        // Backup repositories and summary reports (repositories.rs, reports.rs).
        (Method::GET, E::Repositories) => core
            .backup_repositories()
            .map(|v| collection(ctx, &v, repository_ref, repository_entity)),
        (Method::GET, E::Repository(id)) => parse(&id, "Repository")
            .and_then(|id| core.backup_repository(id))
            .map(|r| single(ctx, &r, repository_ref, repository_entity)),
        (Method::GET, E::RepositoryBackups(id)) => parse(&id, "Repository")
            .and_then(|id| core.backup_repository(id))
            // emrest's one repository holds every backup.
            .and_then(|_| core.backups_for(&caller))
            .map(|v| collection(ctx, &v, backup_ref, backup_entity)),
        (Method::GET, E::ReportsSummary) => Ok(get_summary(ctx)),
        (Method::GET, E::ReportFrame(f)) => get_frame(ctx, f),
        // A backup server's jobs and repositories (backup_servers.rs).
        (Method::GET, E::BackupServerJobs(id)) => backup_server_jobs(ctx, &caller, &id),
        (Method::GET, E::BackupServerRepositories(id)) => backup_server_repositories(ctx, &id),
        (m, _) => Ok(ctx.err(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {m} is not allowed on this resource"),
        )),
    };
    let reply = result.unwrap_or_else(|e| core_error(ctx.format, e));
    if let Some(p) = pending {
        p.keep(&reply);
    }
    reply
}

/// An `{ID}` from a path: the bare UUID or the full UID (`urn:veeam:<Kind>:<uuid>`).
fn parse(id: &str, kind: &'static str) -> Result<Uuid, CoreError> {
    wire::parse_id(id, kind).ok_or_else(|| {
        CoreError::invalid(
            "ID",
            format!(
                "{} is not a {kind} ID: expected a UUID or urn:veeam:{kind}:<uuid>",
                shown(id)
            ),
        )
    })
}

fn parse_task(id: &str) -> Result<emrest_core::TaskId, CoreError> {
    id.parse().map_err(|_| {
        CoreError::invalid("ID", format!("{} is not a task ID like task-1", shown(id)))
    })
}

/// A value from the request for an error message: quoted, at most 80 characters (a full UID
/// fits), so that a huge path or parameter is never reflected back at length.
fn shown(value: &str) -> String {
    format!("'{}'", wire::clip(value, 80))
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
        .get_or_init(|| ctx.core.backup_servers().unwrap_or_default())
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.as_str())
}
