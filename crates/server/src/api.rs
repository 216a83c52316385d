//! The `/api` surface: one dispatcher over parsed endpoints, with authentication checked once
//! before any handler that needs it. Handlers run on the blocking pool because `core` does
//! file and catalog I/O.

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

/// Largest request body accepted; a RestoreSpec is a few hundred bytes.
const BODY_LIMIT: usize = 1 << 20;

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
}

/// Build the router: every request goes through `handle`.
pub fn router(core: Arc<Core>, options: ApiOptions) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(Arc::new(AppState { core, options }))
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
    headers: HeaderMap,
}

impl Ctx {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
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
        headers: parts.headers,
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
    let reply =
        tokio::task::spawn_blocking(move || dispatch(&state, &ctx, method, endpoint, &body))
            .await
            .unwrap_or_else(|_| {
                Reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format,
                    "The server failed to process the request",
                )
            });
    reply.into_response()
}

/// The session ID from the cookie (which wins, JSON.md C5) or the header: base64 of the
/// session GUID (a raw GUID is accepted too).
fn session_id(headers: &HeaderMap) -> Option<Uuid> {
    let from_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("X-RestSvcSessionId"))
        .map(|(_, v)| v.trim().to_string());
    let from_header = headers
        .get("X-RestSvcSessionId")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
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
        (&Method::POST, E::SessionMngr) => return logon(state, ctx),
        _ => {}
    }
    let caller = match session_id(&ctx.headers) {
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
    let core = &state.core;
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
            .backups()
            .map(|v| collection(ctx, &v, backup_ref, backup_entity)),
        (Method::GET, E::Backup(id)) => parse(&id, "Backup")
            .and_then(|id| core.backup(id))
            .map(|b| single(ctx, &b, backup_ref, backup_entity)),
        (Method::GET, E::BackupRestorePoints(id)) => parse(&id, "Backup")
            .and_then(|id| core.restore_points(Some(id)))
            .map(|v| collection(ctx, &v, restore_point_ref, restore_point_entity)),
        (Method::GET, E::RestorePoints) => core
            .restore_points(None)
            .map(|v| collection(ctx, &v, restore_point_ref, restore_point_entity)),
        (Method::GET, E::RestorePoint(id)) => parse(&id, "RestorePoint")
            .and_then(|id| core.restore_point(id))
            .map(|p| single(ctx, &p, restore_point_ref, restore_point_entity)),
        (Method::GET, E::RestorePointVmRestorePoints(id)) => parse(&id, "RestorePoint")
            .and_then(|id| core.vm_restore_points(Some(id)))
            .map(|v| collection(ctx, &v, vm_point_ref, vm_point_entity)),
        (Method::GET, E::RestorePointBackupFiles(id)) => parse(&id, "RestorePoint")
            .and_then(|id| core.backup_files(Some(id)))
            .map(|v| collection(ctx, &v, backup_file_ref, backup_file_entity)),
        (Method::GET, E::VmRestorePoints) => core
            .vm_restore_points(None)
            .map(|v| collection(ctx, &v, vm_point_ref, vm_point_entity)),
        (Method::GET, E::VmRestorePoint(id)) => parse(&id, "VmRestorePoint")
            .and_then(|id| core.vm_restore_point(id))
            .map(|p| single(ctx, &p, vm_point_ref, vm_point_entity)),
        (Method::POST, E::VmRestorePoint(id)) => restore(state, ctx, &caller, &id, body),
        (Method::GET, E::HierarchyRoots) => core
            .hierarchy_roots()
            .map(|v| collection(ctx, &v, hierarchy_root_ref, hierarchy_root_entity)),
        (Method::GET, E::HierarchyRoot(id)) => parse(&id, "HierarchyRoot")
            .and_then(|id| core.hierarchy_root(id))
            .map(|r| single(ctx, &r, hierarchy_root_ref, hierarchy_root_entity)),
        (Method::GET, E::BackupFiles) => core
            .backup_files(None)
            .map(|v| collection(ctx, &v, backup_file_ref, backup_file_entity)),
        (Method::GET, E::BackupFile(id)) => parse(&id, "BackupFile")
            .and_then(|id| core.backup_file(id))
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
        (m, _) => Ok(ctx.err(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {m} is not allowed on this resource"),
        )),
    };
    result.unwrap_or_else(|e| core_error(ctx.format, e))
}

/// An `{ID}` from a path: the bare UUID or the full UID (`urn:veeam:<Kind>:<uuid>`).
fn parse(id: &str, kind: &'static str) -> Result<Uuid, CoreError> {
    wire::parse_id(id, kind).ok_or_else(|| {
        CoreError::invalid(
            "ID",
            format!("'{id}' is not a {kind} ID: expected a UUID or urn:veeam:{kind}:<uuid>"),
        )
    })
}

fn parse_task(id: &str) -> Result<emrest_core::TaskId, CoreError> {
    id.parse()
        .map_err(|_| CoreError::invalid("ID", format!("'{id}' is not a task ID like task-1")))
}

// ---- root and logon ----

fn get_root(ctx: &Ctx) -> Reply {
    Reply::ok(
        ctx.format,
        &wire::EnterpriseManager::new(&ctx.base, VERSIONS),
    )
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
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

fn logon(state: &AppState, ctx: &Ctx) -> Reply {
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
    match state.core.logon(&user, &password) {
        Ok(s) => {
            let token = base64::engine::general_purpose::STANDARD.encode(s.id.to_string());
            Reply::rep(StatusCode::CREATED, ctx.format, &logon_session_rep(ctx, &s))
                .with_header(
                    header::HeaderName::from_static("x-restsvcsessionid"),
                    token.clone(),
                )
                .with_header(
                    header::SET_COOKIE,
                    format!("X-RestSvcSessionId={token}; Path=/api; HttpOnly"),
                )
        }
        Err(e) => core_error(ctx.format, e),
    }
}

fn logon_session_rep(ctx: &Ctx, s: &LogonSessionRecord) -> wire::LogonSession {
    let down = |path: &str, t: &str| Link::new("Down", ctx.url(path), None, Some(t));
    let links = vec![
        Link::new("Up", ctx.url("/"), None, Some("EnterpriseManager")),
        down("/backupServers", "BackupServerReferenceList"),
        down("/hierarchyRoots", "HierarchyRootReferenceList"),
        down("/backups", "BackupReferenceList"),
        down("/restorePoints", "RestorePointReferenceList"),
        down("/vmRestorePoints", "VmRestorePointReferenceList"),
        down("/restoreSessions", "RestoreSessionReferenceList"),
        down("/backupFiles", "BackupFileReferenceList"),
        down("/tasks", "TaskList"),
        down("/backupServers?format=Entity", "BackupServerList"),
        down("/hierarchyRoots?format=Entity", "HierarchyRootList"),
        down("/backups?format=Entity", "BackupList"),
        down("/restorePoints?format=Entity", "RestorePointList"),
        down("/vmRestorePoints?format=Entity", "VmRestorePointList"),
        down("/restoreSessions?format=Entity", "RestoreSessionList"),
        down("/backupFiles?format=Entity", "BackupFileList"),
        Link::new(
            "Delete",
            ctx.url(&format!("/logonSessions/{}", s.id)),
            None,
            None,
        ),
    ];
    wire::LogonSession {
        href: ctx.url(&format!("/logonSessions/{}", s.id)),
        links,
        user_name: s.user_name.clone(),
        session_id: s.id.to_string(),
    }
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

/// Paths and names of one resource kind.
struct Res<'a> {
    kind: &'static str,
    collection: &'static str,
    id: Uuid,
    name: &'a str,
}

impl Res<'_> {
    fn path(&self) -> String {
        format!("/{}/{}", self.collection, self.id)
    }
    fn uid(&self) -> String {
        wire::urn(self.kind, self.id)
    }
    fn reference(&self, ctx: &Ctx, mut links: Vec<Link>) -> EntityRef {
        links.push(Link::new(
            "Alternate",
            ctx.url(&format!("{}?format=Entity", self.path())),
            Some(self.name),
            Some(self.kind),
        ));
        EntityRef {
            type_: format!("{}Reference", self.kind),
            href: ctx.url(&self.path()),
            name: self.name.to_string(),
            uid: self.uid(),
            links,
        }
    }
    fn entity_href(&self, ctx: &Ctx) -> String {
        ctx.url(&format!("{}?format=Entity", self.path()))
    }
    fn alternate(&self, ctx: &Ctx) -> Link {
        Link::new(
            "Alternate",
            ctx.url(&self.path()),
            Some(self.name),
            Some(&format!("{}Reference", self.kind)),
        )
    }
}

fn server_link(ctx: &Ctx, id: Uuid, name: Option<&str>) -> Link {
    Link::new(
        "Up",
        ctx.url(&format!("/backupServers/{id}")),
        name,
        Some("BackupServerReference"),
    )
}

fn server_name(ctx: &Ctx, id: Uuid) -> Option<String> {
    ctx.servers
        .get_or_init(|| ctx.core.backup_servers().unwrap_or_default())
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.clone())
}

// ---- backup servers ----

fn backup_server_res(s: &BackupServerRecord) -> Res<'_> {
    Res {
        kind: "BackupServer",
        collection: "backupServers",
        id: s.id,
        name: &s.name,
    }
}

fn backup_server_ref(ctx: &Ctx, s: &BackupServerRecord) -> EntityRef {
    backup_server_res(s).reference(ctx, Vec::new())
}

fn backup_server_entity(ctx: &Ctx, s: &BackupServerRecord) -> wire::BackupServer {
    let r = backup_server_res(s);
    wire::BackupServer {
        href: r.entity_href(ctx),
        name: s.name.clone(),
        uid: r.uid(),
        links: vec![
            r.alternate(ctx),
            Link::new(
                "Down",
                ctx.url(&format!("{}/backups", r.path())),
                None,
                Some("BackupReferenceList"),
            ),
        ],
        description: s.description.clone(),
        port: i64::from(s.port),
        version: s.version.clone(),
        wcf_port: None,
        vbr_certificate_thumbprint: None,
    }
}

// ---- backups ----

fn backup_res(b: &BackupRecord) -> Res<'_> {
    Res {
        kind: "Backup",
        collection: "backups",
        id: b.id,
        name: &b.name,
    }
}

fn backup_ref(ctx: &Ctx, b: &BackupRecord) -> EntityRef {
    let name = server_name(ctx, b.backup_server_id);
    backup_res(b).reference(
        ctx,
        vec![server_link(ctx, b.backup_server_id, name.as_deref())],
    )
}

fn backup_entity(ctx: &Ctx, b: &BackupRecord) -> wire::Backup {
    let r = backup_res(b);
    let name = server_name(ctx, b.backup_server_id);
    wire::Backup {
        href: r.entity_href(ctx),
        name: b.name.clone(),
        uid: r.uid(),
        links: vec![
            server_link(ctx, b.backup_server_id, name.as_deref()),
            r.alternate(ctx),
            Link::new(
                "Down",
                ctx.url(&format!("{}/restorePoints", r.path())),
                None,
                Some("RestorePointReferenceList"),
            ),
        ],
        platform: b.platform.wire_platform().to_string(),
        backup_type: "Standard".into(),
    }
}

// ---- restore points ----

fn restore_point_name(p: &RestorePointRecord) -> String {
    wire::UtcTime::from_unix_millis(p.created).restore_point_name()
}

fn restore_point_ref(ctx: &Ctx, p: &RestorePointRecord) -> EntityRef {
    let name = restore_point_name(p);
    let res = Res {
        kind: "RestorePoint",
        collection: "restorePoints",
        id: p.id,
        name: &name,
    };
    res.reference(
        ctx,
        vec![Link::new(
            "Up",
            ctx.url(&format!("/backups/{}", p.backup_id)),
            Some(&p.backup_name),
            Some("BackupReference"),
        )],
    )
}

fn restore_point_entity(ctx: &Ctx, p: &RestorePointRecord) -> wire::RestorePoint {
    let name = restore_point_name(p);
    let r = Res {
        kind: "RestorePoint",
        collection: "restorePoints",
        id: p.id,
        name: &name,
    };
    let sname = server_name(ctx, p.backup_server_id);
    wire::RestorePoint {
        href: r.entity_href(ctx),
        name: name.clone(),
        uid: r.uid(),
        links: vec![
            Link::new(
                "Up",
                ctx.url(&format!("/backups/{}", p.backup_id)),
                Some(&p.backup_name),
                Some("BackupReference"),
            ),
            server_link(ctx, p.backup_server_id, sname.as_deref()),
            r.alternate(ctx),
            Link::new(
                "Down",
                ctx.url(&format!("{}/vmRestorePoints", r.path())),
                None,
                Some("VmRestorePointReferenceList"),
            ),
            Link::new(
                "Down",
                ctx.url(&format!("{}/backupFiles", r.path())),
                None,
                Some("BackupFileReferenceList"),
            ),
        ],
        backup_date_utc: wire::UtcTime::from_unix_millis(p.created),
    }
}

// ---- VM restore points ----

fn vm_point_name(p: &VmRestorePointRecord) -> String {
    emrest_core::catalog::vm_point_name(&p.vm_name, p.created)
}

fn vm_point_up_links(ctx: &Ctx, p: &VmRestorePointRecord) -> Vec<Link> {
    let rp_name = wire::UtcTime::from_unix_millis(p.restore_point_created).restore_point_name();
    let sname = server_name(ctx, p.backup_server_id);
    vec![
        server_link(ctx, p.backup_server_id, sname.as_deref()),
        Link::new(
            "Up",
            ctx.url(&format!("/restorePoints/{}", p.restore_point_id)),
            Some(&rp_name),
            Some("RestorePointReference"),
        ),
        Link::new(
            "Up",
            ctx.url(&format!("/backupFiles/{}", p.backup_file_id)),
            Some(&p.backup_file_name),
            Some("BackupFileReference"),
        ),
    ]
}

fn vm_point_ref(ctx: &Ctx, p: &VmRestorePointRecord) -> EntityRef {
    let name = vm_point_name(p);
    let res = Res {
        kind: "VmRestorePoint",
        collection: "vmRestorePoints",
        id: p.id,
        name: &name,
    };
    res.reference(ctx, vm_point_up_links(ctx, p))
}

fn vm_point_entity(ctx: &Ctx, p: &VmRestorePointRecord) -> wire::VmRestorePoint {
    let name = vm_point_name(p);
    let r = Res {
        kind: "VmRestorePoint",
        collection: "vmRestorePoints",
        id: p.id,
        name: &name,
    };
    let mut links = vec![Link::new(
        "Restore",
        ctx.url(&format!("{}?action=restore", r.path())),
        None,
        None,
    )];
    links.extend(vm_point_up_links(ctx, p));
    links.push(r.alternate(ctx));
    let (algorithm, point_type) = match p.point_type {
        emrest_core::PointType::Full => ("Full", "Full"),
        emrest_core::PointType::Increment => ("Incremental", "Increment"),
    };
    wire::VmRestorePoint {
        href: r.entity_href(ctx),
        name: name.clone(),
        uid: r.uid(),
        vm_display_name: Some(p.vm_name.clone()),
        links,
        creation_time_utc: wire::UtcTime::from_unix_millis(p.created),
        vm_name: Some(p.vm_name.clone()),
        algorithm: algorithm.into(),
        point_type: point_type.into(),
        hierarchy_obj_ref: Some(p.hierarchy_obj_ref.clone()),
    }
}

// ---- hierarchy roots ----

fn hierarchy_root_res(r: &HierarchyRootRecord) -> Res<'_> {
    Res {
        kind: "HierarchyRoot",
        collection: "hierarchyRoots",
        id: r.id,
        name: &r.name,
    }
}

fn hierarchy_root_ref(ctx: &Ctx, r: &HierarchyRootRecord) -> EntityRef {
    let sname = server_name(ctx, r.backup_server_id);
    hierarchy_root_res(r).reference(
        ctx,
        vec![server_link(ctx, r.backup_server_id, sname.as_deref())],
    )
}

fn hierarchy_root_entity(ctx: &Ctx, r: &HierarchyRootRecord) -> wire::HierarchyRoot {
    let res = hierarchy_root_res(r);
    let sname = server_name(ctx, r.backup_server_id);
    wire::HierarchyRoot {
        href: res.entity_href(ctx),
        name: r.name.clone(),
        uid: res.uid(),
        links: vec![
            server_link(ctx, r.backup_server_id, sname.as_deref()),
            res.alternate(ctx),
        ],
        hierarchy_root_id: r.id.to_string(),
        unique_id: r.unique_id.clone(),
        host_type: r.kind.host_type().to_string(),
    }
}

// ---- backup files ----

fn backup_file_res(f: &BackupFileRecord) -> Res<'_> {
    Res {
        kind: "BackupFile",
        collection: "backupFiles",
        id: f.id,
        name: &f.file_name,
    }
}

fn backup_file_up(ctx: &Ctx, f: &BackupFileRecord) -> Vec<Link> {
    let sname = server_name(ctx, f.backup_server_id);
    vec![
        server_link(ctx, f.backup_server_id, sname.as_deref()),
        Link::new(
            "Up",
            ctx.url(&format!("/backups/{}", f.backup_id)),
            Some(&f.backup_name),
            Some("BackupReference"),
        ),
    ]
}

fn backup_file_ref(ctx: &Ctx, f: &BackupFileRecord) -> EntityRef {
    backup_file_res(f).reference(ctx, backup_file_up(ctx, f))
}

fn backup_file_entity(ctx: &Ctx, f: &BackupFileRecord) -> wire::BackupFile {
    let r = backup_file_res(f);
    let mut links = backup_file_up(ctx, f);
    links.push(r.alternate(ctx));
    links.push(Link::new(
        "Related",
        ctx.url(&format!("/restorePoints/{}", f.restore_point_id)),
        None,
        Some("RestorePointReference"),
    ));
    let ratio = |a: u64, b: u64| {
        if a == 0 {
            1.0
        } else {
            (b as f64 / a as f64 * 100.0).round() / 100.0
        }
    };
    wire::BackupFile {
        href: r.entity_href(ctx),
        name: f.file_name.clone(),
        uid: r.uid(),
        links,
        file_path: format!("repo/{}/{}", f.backup_name, f.file_name),
        backup_size: f.backup_size as i64,
        data_size: f.data_size as i64,
        deduplication_ratio: 1.0,
        compress_ratio: ratio(f.backup_size, f.data_size),
        creation_time_utc: wire::UtcTime::from_unix_millis(f.created),
        file_type: f.file_name.rsplit('.').next().unwrap_or("vbk").to_string(),
    }
}

// ---- tasks ----

fn task_rep(ctx: &Ctx, t: &TaskRecord) -> wire::Task {
    let href = ctx.url(&format!("/tasks/{}", t.id));
    let mut links = vec![Link::new("Delete", href.clone(), None, Some("Task"))];
    // scenario_vm_restore.md and the seed page: clients find the session by the Related link of
    // Type RestoreSession, which the finished task carries; the running task (the 202 answer)
    // has the Delete link only.
    let finished = t.state == emrest_core::TaskState::Finished;
    if let Some(s) = t.restore_session_id.filter(|_| finished) {
        links.push(Link::new(
            "Related",
            ctx.url(&format!("/restoreSessions/{s}?format=Entity")),
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

// ---- restore sessions ----

fn restore_session_name(s: &RestoreSessionRecord) -> String {
    emrest_core::catalog::vm_point_name(&s.vm_name, s.created)
}

fn restore_session_ref(ctx: &Ctx, s: &RestoreSessionRecord) -> EntityRef {
    let name = restore_session_name(s);
    let res = Res {
        kind: "RestoreSession",
        collection: "restoreSessions",
        id: s.id,
        name: &name,
    };
    let sname = server_name(ctx, s.backup_server_id);
    res.reference(
        ctx,
        vec![server_link(ctx, s.backup_server_id, sname.as_deref())],
    )
}

fn restore_session_entity(ctx: &Ctx, s: &RestoreSessionRecord) -> wire::RestoreSession {
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
            server_link(ctx, s.backup_server_id, sname.as_deref()),
            r.alternate(ctx),
            // restoresessions_id.md: the point used, as a reference link.
            Link::new(
                "Related",
                ctx.url(&format!("/vmRestorePoints/{}", s.vm_restore_point_id)),
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

// ---- the restore ----

fn restore(
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
fn request_format(headers: &HeaderMap, body: &[u8]) -> Format {
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
