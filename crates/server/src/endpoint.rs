//! Request routing as data: the path is parsed into an `Endpoint` once, case-insensitively
//! (clients in the wild send `/api/backupservers` and `/api/backupServers` alike, JSON.md C6),
//! and the query into lower-cased parameter names.

use crate::ids::{
    AccountId, BackupFileId, BackupId, BackupServerId, BackupSessionId, BackupTaskSessionId,
    FaultId, FromPathSegment, HierarchyRootId, JobId, LogonSessionId, ObjectInJobId, PathId,
    RepositoryId, RestorePointId, RestoreSessionId, RoleId, ScopeId, VmRestorePointId,
};
use axum::http;
use emrest_core::security::{Collection, Permission};
use emrest_core::TaskId;

/// A resource the API serves. Its `{ID}`s are parsed here, once; a malformed one is kept as
/// the error the handler answers after the session and permission checks (ids.rs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Root,
    SessionMngr,
    LogonSessions,
    LogonSession(PathId<LogonSessionId>),
    BackupServers,
    BackupServer(PathId<BackupServerId>),
    Backups,
    Backup(PathId<BackupId>),
    BackupRestorePoints(PathId<BackupId>),
    RestorePoints,
    RestorePoint(PathId<RestorePointId>),
    RestorePointVmRestorePoints(PathId<RestorePointId>),
    RestorePointBackupFiles(PathId<RestorePointId>),
    VmRestorePoints,
    VmRestorePoint(PathId<VmRestorePointId>),
    HierarchyRoots,
    HierarchyRoot(PathId<HierarchyRootId>),
    BackupFiles,
    BackupFile(PathId<BackupFileId>),
    Tasks,
    Task(PathId<TaskId>),
    RestoreSessions,
    RestoreSession(PathId<RestoreSessionId>),
    /// emrest extension: the readable log of a restore session.
    RestoreSessionLog(PathId<RestoreSessionId>),
    // ---- /security (accounts_and_roles_intro.md) ----
    Security,
    SecurityAccounts,
    SecurityAccount(PathId<AccountId>),
    SecurityAccountRoles(PathId<AccountId>),
    SecurityAccountRole(PathId<AccountId>, PathId<RoleId>),
    SecurityAccountScopes(PathId<AccountId>),
    SecurityAccountScope(PathId<AccountId>, PathId<ScopeId>),
    SecurityRoles,
    SecurityRole(PathId<RoleId>),
    // The query and lookup services (query_service.md, lookup_service.md).
    QuerySvc,
    Query,
    LookupSvc,
    Lookup,
    // Backup jobs and sessions (jobs.md, backupsessions.md, backuptasksessions.md).
    Jobs,
    Job(PathId<JobId>),
    JobIncludes(PathId<JobId>),
    JobInclude(PathId<JobId>, PathId<ObjectInJobId>),
    JobBackupSessions(PathId<JobId>),
    BackupSessions,
    BackupSession(PathId<BackupSessionId>),
    BackupSessionTaskSessions(PathId<BackupSessionId>),
    BackupTaskSessions,
    BackupTaskSession(PathId<BackupTaskSessionId>),
    // Backup repositories and summary reports (repositories.md, reports_summary.md).
    Repositories,
    Repository(PathId<RepositoryId>),
    RepositoryBackups(PathId<RepositoryId>),
    ReportsSummary,
    ReportFrame(ReportFrame),
    // A backup server's jobs and repositories (get_backupservers_id.md, Down links).
    BackupServerJobs(PathId<BackupServerId>),
    BackupServerRepositories(PathId<BackupServerId>),
    /// emrest extension: the OpenAPI document of the JSON flavour (docs/openapi.json).
    OpenApi,
    /// emrest extension: every account's live logon sessions, by handle (administrators).
    ManagedLogonSessions,
    /// emrest extension: one of them, by its handle (a digest of its SessionId, never it).
    ManagedLogonSession(String),
    /// emrest extension: an account's password, set by an administrator.
    AccountPassword(PathId<AccountId>),
    /// emrest extension: the fault rules of a server started with `--allow-faults`.
    Faults,
    /// emrest extension: one fault rule.
    Fault(PathId<FaultId>),
    /// emrest extension: the VMs the caller may restore (the restore portal's list).
    RestorableVms,
}

/// The frames of `/reports/summary` (em_rest/get_reports_summary*.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFrame {
    Overview,
    VmsOverview,
    JobStatistics,
    Repository,
    ProcessedVms,
}

impl ReportFrame {
    /// Every frame, in the order `/reports/summary` links them.
    pub const ALL: [ReportFrame; 5] = [
        ReportFrame::Overview,
        ReportFrame::VmsOverview,
        ReportFrame::JobStatistics,
        ReportFrame::Repository,
        ReportFrame::ProcessedVms,
    ];

    /// Path segment under `/reports/summary`.
    pub fn segment(self) -> &'static str {
        match self {
            ReportFrame::Overview => "overview",
            ReportFrame::VmsOverview => "vms_overview",
            ReportFrame::JobStatistics => "job_statistics",
            ReportFrame::Repository => "repository",
            ReportFrame::ProcessedVms => "processed_vms",
        }
    }

    /// Element name, also the `Type` of links to it.
    pub fn element(self) -> &'static str {
        match self {
            ReportFrame::Overview => "OverviewReportFrame",
            ReportFrame::VmsOverview => "VmsOverviewReportFrame",
            ReportFrame::JobStatistics => "JobStatisticsReportFrame",
            ReportFrame::Repository => "RepositoryReportFrame",
            ReportFrame::ProcessedVms => "ProcessedVmsReportFrame",
        }
    }
}

impl Endpoint {
    /// Parse a request path; `None` when it names nothing the API serves.
    pub fn parse(path: &str) -> Option<Endpoint> {
        let rest = strip_prefix_ci(path, "/api")?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let segs: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        let id = |i: usize| segs[i].as_str();
        use Endpoint::*;
        Some(match l.as_slice() {
            [] => Root,
            ["sessionmngr"] => SessionMngr,
            ["logonsessions"] => LogonSessions,
            ["logonsessions", _] => LogonSession(parse_id(id(1))),
            ["backupservers"] => BackupServers,
            ["backupservers", _] => BackupServer(parse_id(id(1))),
            ["backups"] => Backups,
            ["backups", _] => Backup(parse_id(id(1))),
            ["backups", _, "restorepoints"] => BackupRestorePoints(parse_id(id(1))),
            ["restorepoints"] => RestorePoints,
            ["restorepoints", _] => RestorePoint(parse_id(id(1))),
            ["restorepoints", _, "vmrestorepoints"] => RestorePointVmRestorePoints(parse_id(id(1))),
            ["restorepoints", _, "backupfiles"] => RestorePointBackupFiles(parse_id(id(1))),
            ["vmrestorepoints"] => VmRestorePoints,
            ["vmrestorepoints", _] => VmRestorePoint(parse_id(id(1))),
            ["hierarchyroots"] => HierarchyRoots,
            ["hierarchyroots", _] => HierarchyRoot(parse_id(id(1))),
            ["backupfiles"] => BackupFiles,
            ["backupfiles", _] => BackupFile(parse_id(id(1))),
            ["tasks"] => Tasks,
            ["tasks", _] => Task(parse_id(id(1))),
            ["restoresessions"] => RestoreSessions,
            ["restoresessions", _] => RestoreSession(parse_id(id(1))),
            ["restoresessions", _, "log"] => RestoreSessionLog(parse_id(id(1))),
            ["security"] => Security,
            ["security", "accounts"] => SecurityAccounts,
            ["security", "accounts", _] => SecurityAccount(parse_id(id(2))),
            ["security", "accounts", _, "roles"] => SecurityAccountRoles(parse_id(id(2))),
            ["security", "accounts", _, "roles", _] => {
                SecurityAccountRole(parse_id(id(2)), parse_id(id(4)))
            }
            ["security", "accounts", _, "scopes"] => SecurityAccountScopes(parse_id(id(2))),
            ["security", "accounts", _, "scopes", _] => {
                SecurityAccountScope(parse_id(id(2)), parse_id(id(4)))
            }
            ["security", "roles"] => SecurityRoles,
            ["security", "roles", _] => SecurityRole(parse_id(id(2))),
            ["querysvc"] => QuerySvc,
            ["query"] => Query,
            ["lookupsvc"] => LookupSvc,
            ["lookup"] => Lookup,
            ["jobs"] => Jobs,
            ["jobs", _] => Job(parse_id(id(1))),
            ["jobs", _, "includes"] => JobIncludes(parse_id(id(1))),
            ["jobs", _, "includes", _] => JobInclude(parse_id(id(1)), parse_id(id(3))),
            ["jobs", _, "backupsessions"] => JobBackupSessions(parse_id(id(1))),
            ["backupsessions"] => BackupSessions,
            ["backupsessions", _] => BackupSession(parse_id(id(1))),
            ["backupsessions", _, "tasksessions"] => BackupSessionTaskSessions(parse_id(id(1))),
            ["backuptasksessions"] => BackupTaskSessions,
            ["backuptasksessions", _] => BackupTaskSession(parse_id(id(1))),
            ["repositories"] => Repositories,
            ["repositories", _] => Repository(parse_id(id(1))),
            ["repositories", _, "backups"] => RepositoryBackups(parse_id(id(1))),
            ["backupservers", _, "jobs"] => BackupServerJobs(parse_id(id(1))),
            ["backupservers", _, "repositories"] => BackupServerRepositories(parse_id(id(1))),
            ["openapi.json"] => OpenApi,
            ["emrest", "logonsessions"] => ManagedLogonSessions,
            ["emrest", "logonsessions", _] => ManagedLogonSession(id(2).to_string()),
            ["emrest", "accounts", _, "password"] => AccountPassword(parse_id(id(2))),
            ["emrest", "faults"] => Faults,
            ["emrest", "faults", _] => Fault(parse_id(id(2))),
            ["emrest", "vms"] => RestorableVms,
            ["reports", "summary"] => ReportsSummary,
            // get_reports_summary_statistics.md's example sends `jobs_statistics`; the resource
            // is `job_statistics` (JSON.md D1, D3): both are served.
            ["reports", "summary", "job_statistics" | "jobs_statistics"] => {
                ReportFrame(self::ReportFrame::JobStatistics)
            }
            ["reports", "summary", f] => {
                ReportFrame(*self::ReportFrame::ALL.iter().find(|r| r.segment() == *f)?)
            }
            _ => return None,
        })
    }
}

impl Endpoint {
    /// What a request needs besides a live session: one exhaustive table, checked once before
    /// dispatch by `Core::authorize` (the roles that grant each permission are in
    /// `emrest_core::security::EnterpriseRole::grants`). `Root`, `SessionMngr` and `OpenApi`
    /// need no session at all and never reach this check.
    pub fn permission(&self, method: &http::Method) -> Permission {
        use Collection as C;
        use Endpoint::*;
        use Permission as P;
        let reads = match self {
            VmRestorePoint(_) if method == http::Method::POST => return P::RestoreVm,
            Security
            | SecurityAccounts
            | SecurityAccount(_)
            | SecurityAccountRoles(_)
            | SecurityAccountRole(_, _)
            | SecurityAccountScopes(_)
            | SecurityAccountScope(_, _)
            | SecurityRoles
            | SecurityRole(_)
            | ManagedLogonSessions
            | ManagedLogonSession(_)
            | AccountPassword(_) => return P::ManageAccounts,
            Faults | Fault(_) => return P::ManageFaults,
            Root | SessionMngr | OpenApi | LogonSessions | LogonSession(_) => C::OwnWork,
            Tasks | Task(_) | RestoreSessions | RestoreSession(_) | RestoreSessionLog(_) => {
                C::OwnWork
            }
            BackupServers | BackupServer(_) | HierarchyRoots | HierarchyRoot(_) => {
                C::Infrastructure
            }
            BackupFiles | BackupFile(_) | RestorePointBackupFiles(_) => C::BackupFiles,
            Backups | Backup(_) | BackupRestorePoints(_) | RestorePoints | RestorePoint(_) => {
                C::Backups
            }
            RestorePointVmRestorePoints(_) => C::RestorePointVms,
            VmRestorePoints | RestorableVms | VmRestorePoint(_) => C::VmRestorePoints,
            // Each query type is authorized again in core as its collection is; the services
            // themselves need the right to see VM restore points (the restore portal's minimum).
            QuerySvc | Query | LookupSvc | Lookup => C::VmRestorePoints,
            // security_roles_concept.md lists /jobs among the Portal User's unavailable ones.
            Jobs
            | Job(_)
            | JobIncludes(_)
            | JobInclude(_, _)
            | JobBackupSessions(_)
            | BackupSessions
            | BackupSession(_)
            | BackupSessionTaskSessions(_)
            | BackupTaskSessions
            | BackupTaskSession(_)
            | BackupServerJobs(_) => C::Jobs,
            // security_roles_concept.md: /repositories and /reports/summary are available to
            // the Portal Administrator and the Portal User, not to restore operators.
            Repositories
            | Repository(_)
            | ReportsSummary
            | ReportFrame(_)
            | BackupServerRepositories(_) => C::Infrastructure,
            // The backups of a repository are backups.
            RepositoryBackups(_) => C::Backups,
        };
        reads.permission()
    }
}

/// An `{ID}` segment, parsed into the ID type of the variant it goes in.
fn parse_id<T: FromPathSegment>(segment: &str) -> PathId<T> {
    T::from_segment(segment)
}

impl Endpoint {
    /// The methods the route serves, in the order the `Allow` header of a 405 lists them. The
    /// dispatcher's match serves exactly these (a test compares them with docs/openapi.json).
    pub fn methods(&self) -> &'static [http::Method] {
        use Endpoint::*;
        const GET: &[http::Method] = &[http::Method::GET];
        const POST: &[http::Method] = &[http::Method::POST];
        const GET_POST: &[http::Method] = &[http::Method::GET, http::Method::POST];
        const GET_DELETE: &[http::Method] = &[http::Method::GET, http::Method::DELETE];
        const PUT: &[http::Method] = &[http::Method::PUT];
        const GET_POST_DELETE: &[http::Method] =
            &[http::Method::GET, http::Method::POST, http::Method::DELETE];
        // /jobs/{ID}: read, actions, edit (put_jobs_id_actionedit.md), delete (delete_jobs_id.md).
        const GET_POST_PUT_DELETE: &[http::Method] = &[
            http::Method::GET,
            http::Method::POST,
            http::Method::PUT,
            http::Method::DELETE,
        ];
        match self {
            SessionMngr => POST,
            AccountPassword(_) => PUT,
            LogonSession(_)
            | Task(_)
            | SecurityAccountRole(_, _)
            | SecurityAccountScope(_, _)
            | ManagedLogonSession(_)
            | Fault(_)
            | JobInclude(_, _) => GET_DELETE,
            Job(_) => GET_POST_PUT_DELETE,
            VmRestorePoint(_)
            | SecurityAccounts
            | SecurityAccountRoles(_)
            | SecurityAccountScopes(_)
            | JobIncludes(_)
            | BackupSession(_) => GET_POST,
            SecurityAccount(_) | Faults => GET_POST_DELETE,
            Root
            | OpenApi
            | LogonSessions
            | BackupServers
            | BackupServer(_)
            | Backups
            | Backup(_)
            | BackupRestorePoints(_)
            | RestorePoints
            | RestorePoint(_)
            | RestorePointVmRestorePoints(_)
            | RestorePointBackupFiles(_)
            | VmRestorePoints
            | HierarchyRoots
            | HierarchyRoot(_)
            | BackupFiles
            | BackupFile(_)
            | Tasks
            | RestoreSessions
            | RestoreSession(_)
            | RestoreSessionLog(_)
            | Security
            | SecurityRoles
            | SecurityRole(_)
            | QuerySvc
            | Query
            | LookupSvc
            | Lookup
            | Jobs
            | JobBackupSessions(_)
            | BackupSessions
            | BackupSessionTaskSessions(_)
            | BackupTaskSessions
            | BackupTaskSession(_)
            | Repositories
            | Repository(_)
            | RepositoryBackups(_)
            | ReportsSummary
            | ReportFrame(_)
            | BackupServerJobs(_)
            | BackupServerRepositories(_)
            | ManagedLogonSessions
            | RestorableVms => GET,
        }
    }
}

impl Endpoint {
    /// The route's template, as the metrics name it (`/vmRestorePoints/{ID}`): one value per
    /// route, whatever the IDs and the spelling of the request.
    pub fn template(&self) -> &'static str {
        use Endpoint::*;
        match self {
            Root => "/",
            SessionMngr => "/sessionMngr",
            LogonSessions => "/logonSessions",
            LogonSession(_) => "/logonSessions/{ID}",
            BackupServers => "/backupServers",
            BackupServer(_) => "/backupServers/{ID}",
            Backups => "/backups",
            Backup(_) => "/backups/{ID}",
            BackupRestorePoints(_) => "/backups/{ID}/restorePoints",
            RestorePoints => "/restorePoints",
            RestorePoint(_) => "/restorePoints/{ID}",
            RestorePointVmRestorePoints(_) => "/restorePoints/{ID}/vmRestorePoints",
            RestorePointBackupFiles(_) => "/restorePoints/{ID}/backupFiles",
            VmRestorePoints => "/vmRestorePoints",
            VmRestorePoint(_) => "/vmRestorePoints/{ID}",
            HierarchyRoots => "/hierarchyRoots",
            HierarchyRoot(_) => "/hierarchyRoots/{ID}",
            BackupFiles => "/backupFiles",
            BackupFile(_) => "/backupFiles/{ID}",
            Tasks => "/tasks",
            Task(_) => "/tasks/{ID}",
            RestoreSessions => "/restoreSessions",
            RestoreSession(_) => "/restoreSessions/{ID}",
            RestoreSessionLog(_) => "/restoreSessions/{ID}/log",
            Security => "/security",
            SecurityAccounts => "/security/accounts",
            SecurityAccount(_) => "/security/accounts/{ID}",
            SecurityAccountRoles(_) => "/security/accounts/{ID}/roles",
            SecurityAccountRole(_, _) => "/security/accounts/{ID}/roles/{RoleID}",
            SecurityAccountScopes(_) => "/security/accounts/{ID}/scopes",
            SecurityAccountScope(_, _) => "/security/accounts/{ID}/scopes/{ScopeID}",
            SecurityRoles => "/security/roles",
            SecurityRole(_) => "/security/roles/{ID}",
            QuerySvc => "/querySvc",
            Query => "/query",
            LookupSvc => "/lookupSvc",
            Lookup => "/lookup",
            Jobs => "/jobs",
            Job(_) => "/jobs/{ID}",
            JobIncludes(_) => "/jobs/{ID}/includes",
            JobInclude(_, _) => "/jobs/{ID}/includes/{ObjectInJobID}",
            JobBackupSessions(_) => "/jobs/{ID}/backupSessions",
            BackupSessions => "/backupSessions",
            BackupSession(_) => "/backupSessions/{ID}",
            BackupSessionTaskSessions(_) => "/backupSessions/{ID}/taskSessions",
            BackupTaskSessions => "/backupTaskSessions",
            BackupTaskSession(_) => "/backupTaskSessions/{ID}",
            Repositories => "/repositories",
            Repository(_) => "/repositories/{ID}",
            RepositoryBackups(_) => "/repositories/{ID}/backups",
            ReportsSummary => "/reports/summary",
            ReportFrame(_) => "/reports/summary/{Frame}",
            BackupServerJobs(_) => "/backupServers/{ID}/jobs",
            BackupServerRepositories(_) => "/backupServers/{ID}/repositories",
            OpenApi => "/openapi.json",
            ManagedLogonSessions => "/emrest/logonSessions",
            ManagedLogonSession(_) => "/emrest/logonSessions/{ID}",
            AccountPassword(_) => "/emrest/accounts/{ID}/password",
            Faults => "/emrest/faults",
            Fault(_) => "/emrest/faults/{ID}",
            RestorableVms => "/emrest/vms",
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Decode `%XX` escapes (and `+` as space when `plus` is set); invalid escapes stay as they are.
fn decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decode a path segment.
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// A parameter name, decoded. A client that copied a link out of an XML body without undoing
/// `&amp;` sends `…&amp;page=2`: the name is read as `page` (special_symbols.md warns that the
/// real server may then ignore the parameter).
pub fn param_name(raw: &str) -> String {
    let k = decode(raw, true);
    match k.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("amp;") => k[4..].to_string(),
        _ => k,
    }
}

/// Query parameters as sent (names decoded, not lower-cased; values decoded), in order.
pub fn raw_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (param_name(k), decode(v, true))
        })
        .collect()
}

/// Query parameters with lower-cased names, values decoded, in the order sent.
#[derive(Clone, Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (param_name(k).to_ascii_lowercase(), decode(v, true))
                })
                .collect(),
        )
    }

    /// The first value of a parameter (name compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `format=Entity` (any case, singular or plural, JSON.md C2).
    pub fn wants_entity(&self) -> bool {
        self.get("format")
            .is_some_and(|f| f.eq_ignore_ascii_case("entity") || f.eq_ignore_ascii_case("entities"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_case_insensitively_with_or_without_trailing_slash() {
        assert_eq!(Endpoint::parse("/api"), Some(Endpoint::Root));
        assert_eq!(Endpoint::parse("/api/"), Some(Endpoint::Root));
        assert_eq!(
            Endpoint::parse("/API/SessionMngr/"),
            Some(Endpoint::SessionMngr)
        );
        let id = "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e08";
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(
            Endpoint::parse(&format!(
                "/api/vmrestorepoints/urn%3Aveeam%3AVmRestorePoint%3A{id}"
            )),
            Some(Endpoint::VmRestorePoint(Ok(VmRestorePointId(uuid))))
        );
        // The segment is decoded before it is parsed: the message quotes the decoded UID.
        let Some(Endpoint::VmRestorePoint(Err(bad))) =
            Endpoint::parse("/api/vmrestorepoints/urn%3Aveeam%3AVmRestorePoint%3Aabc")
        else {
            panic!("a malformed ID still names the route");
        };
        let message = emrest_core::CoreError::from(bad).to_string();
        assert!(
            message.contains("'urn:veeam:VmRestorePoint:abc' is not a VmRestorePoint ID"),
            "{message}"
        );
        assert_eq!(Endpoint::parse("/api/nothing"), None);
        assert_eq!(Endpoint::parse("/apix"), None);
    }

    #[test]
    fn query_names_are_case_insensitive_and_values_decoded() {
        let q = Query::parse(Some("Format=Entity&filter=a%3D%3D%22b%22&v=latest"));
        assert!(q.wants_entity());
        assert_eq!(q.get("FILTER"), Some("a==\"b\""));
        assert_eq!(Query::parse(Some("a=%zz%4")).get("a"), Some("%zz%4"));
    }

    #[test]
    fn escaped_ampersands_copied_from_xml_still_name_the_parameter() {
        let q = Query::parse(Some("type=Backup&amp;pageSize=1&amp;page=2"));
        assert_eq!(q.get("pagesize"), Some("1"));
        assert_eq!(q.get("page"), Some("2"));
        assert_eq!(
            raw_pairs(Some("type=Backup&amp;pageSize=1")),
            vec![
                ("type".into(), "Backup".into()),
                ("pageSize".into(), "1".into())
            ]
        );
    }
}
