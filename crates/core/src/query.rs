//! The query service (`GET /query?type=…`, query_service.md): a parsed filter is checked
//! against the documented filterable fields of the type (get_query_<type>.md) and compiled
//! into a parameterized WHERE clause over a per-type column map; sorting and paging happen in
//! the same SQL statement. Values never enter the SQL text: every one is a bound parameter.
//!
//! Choices where the pages are silent (each one documented for users in the README):
//! - `;` (AND) binds tighter than `,` (OR), as in FIQL; group with parentheses otherwise.
//! - String comparisons ignore case (Enterprise Manager runs on a case-insensitive SQL Server
//!   collation); field names, type names and enum literals ignore case too (JSON.md C6).
//! - Enum fields compare by their documented index (query_comparison.md: `Result>Success`
//!   means Warning or Failed).
//! - `!=` matches unset values (`EndTime!=…` includes sessions still running).
//! - Dates: `YYYY-MM-DD[(T| )hh:mm[:ss[.fff]]][Z|±hh:mm]`, quoted or not; no zone means UTC
//!   (JSON.md C7).
//! - A UID value may be the full `urn:veeam:<Kind>:<uuid>` or the bare UUID.
//! - The default page size is 100, as real v12/v13 servers answer (JSON.md C3; the page
//!   pagesize_and_page.md claims "all on one page", which real servers do not do).
//! - A page past the last one is an empty page, not an error.
//! - Without sortAsc/sortDesc, results come in the order of the matching collection
//!   (`/vmRestorePoints`: newest first); every order ends with the ID, so paging is stable.

use crate::catalog::{
    backup_row, file_row, rp_row, session_row, task_row, uuid_col, vm_point_row, FILE_SELECT,
    RP_SELECT, SESSION_SELECT, TASK_SELECT, VM_POINT_SELECT,
};
use crate::error::{CoreError, CoreResult};
use crate::filter::{self, Comparison, Expr};
use crate::model::*;
use crate::security::Permission;
use crate::Core;
use emrest_platform::PlatformKind;
use rusqlite::types::Value;
use uuid::Uuid;

/// Page size when the request gives none (JSON.md C3).
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// The query types emrest answers (query_type.md lists them all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryType {
    VmRestorePoint,
    RestorePoint,
    Backup,
    BackupFile,
    BackupServer,
    HierarchyRoot,
    RestoreSession,
    Task,
    Job,
    BackupJobSession,
    BackupTaskSession,
    /// emrest's backup repository (get_query_repository.md).
    Repository,
}

impl QueryType {
    /// Every type, in the order `/querySvc` lists them.
    pub const ALL: [QueryType; 12] = [
        QueryType::VmRestorePoint,
        QueryType::Task,
        QueryType::Job,
        QueryType::RestorePoint,
        QueryType::BackupTaskSession,
        QueryType::RestoreSession,
        QueryType::Repository,
        QueryType::Backup,
        QueryType::HierarchyRoot,
        QueryType::BackupJobSession,
        QueryType::BackupServer,
        QueryType::BackupFile,
    ];

    /// The `type=` spelling.
    pub fn name(self) -> &'static str {
        match self {
            QueryType::VmRestorePoint => "VmRestorePoint",
            QueryType::RestorePoint => "RestorePoint",
            QueryType::Backup => "Backup",
            QueryType::BackupFile => "BackupFile",
            QueryType::BackupServer => "BackupServer",
            QueryType::HierarchyRoot => "HierarchyRoot",
            QueryType::RestoreSession => "RestoreSession",
            QueryType::Task => "Task",
            QueryType::Job => "Job",
            QueryType::BackupJobSession => "BackupJobSession",
            QueryType::BackupTaskSession => "BackupTaskSession",
            QueryType::Repository => "Repository",
        }
    }

    /// The type named by `type=` (any case).
    pub fn parse(s: &str) -> CoreResult<QueryType> {
        let s = s.trim();
        if let Some(t) = Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
        {
            return Ok(t);
        }
        let supported: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
        let message = if s.is_empty() {
            format!(
                "The query needs a type parameter, e.g. /api/query?type=VmRestorePoint; types: {}",
                supported.join(", ")
            )
        } else if DOCUMENTED_ELSEWHERE
            .iter()
            .any(|d| d.eq_ignore_ascii_case(s))
        {
            format!(
                "Query type '{s}' is not supported by emrest yet; supported types: {}",
                supported.join(", ")
            )
        } else {
            format!(
                "Unknown query type '{s}'; supported types: {}",
                supported.join(", ")
            )
        };
        Err(CoreError::invalid("type", message))
    }

    /// The documented filterable fields, by `type=` spelling.
    pub fn field_names(self) -> Vec<&'static str> {
        fields(self).iter().map(|f| f.name).collect()
    }
}

/// Types of query_type.md that emrest does not answer (a clearer 400 than "unknown").
const DOCUMENTED_ELSEWHERE: &[&str] = &[
    "AgentBackupJob",
    "AgentProtectionGroup",
    "AgentRestorePoint",
    "CdpPolicy",
    "CdpReplica",
    "CdpReplicaSession",
    "CdpReplicaTaskSession",
    "CloudGateway",
    "CloudGatewayPool",
    "CloudTenant",
    "CloudFailoverPlan",
    "CloudFailoverSession",
    "CloudHardwarePlan",
    "CloudPublicIpAddress",
    "CloudReplica",
    "CloudSubtenant",
    "CloudVmReplicaPoint",
    "Credentials",
    "DiscoveredComputer",
    "FailoverPlan",
    "FileServer",
    "ManagedServer",
    "NasJob",
    "NasObject",
    "ObjectInJob",
    "Passwords",
    "Replica",
    "ReplicaJobSession",
    "ReplicaTaskSession",
    "vAppReplicaPoint",
    "vAppRestorePoint",
    "VCloudOrganizationConfig",
    "VlanConfiguration",
    "VmReplicaPoint",
    "VsphereSelfServiceConfig",
    "WanAccelerator",
];

/// A query as the client sent it (raw strings: core validates them).
#[derive(Clone, Debug, Default)]
pub struct QueryRequest<'a> {
    pub type_name: &'a str,
    pub filter: Option<&'a str>,
    pub sort_asc: Option<&'a str>,
    pub sort_desc: Option<&'a str>,
    pub page_size: Option<&'a str>,
    pub page: Option<&'a str>,
}

/// One page of records of the queried type.
#[derive(Clone, Debug)]
pub enum QueryItems {
    /// VM restore points (their `disks` are not loaded).
    VmRestorePoints(Vec<VmRestorePointRecord>),
    RestorePoints(Vec<RestorePointRecord>),
    Backups(Vec<BackupRecord>),
    BackupFiles(Vec<BackupFileRecord>),
    BackupServers(Vec<BackupServerRecord>),
    HierarchyRoots(Vec<HierarchyRootRecord>),
    RestoreSessions(Vec<RestoreSessionRecord>),
    Tasks(Vec<TaskRecord>),
    /// Jobs, with their objects loaded.
    Jobs(Vec<crate::jobs::JobRecord>),
    BackupJobSessions(Vec<crate::jobs::BackupSessionRecord>),
    BackupTaskSessions(Vec<crate::jobs::BackupTaskSessionRecord>),
    /// Backup repositories.
    Repositories(Vec<crate::summary::RepositoryRecord>),
    /// Nothing (not produced for any type emrest answers today; kept so a new type can be
    /// accepted before it is backed).
    Empty(QueryType),
}

/// A page of a query's result, with what paging links need.
#[derive(Clone, Debug)]
pub struct QueryPage {
    pub query_type: QueryType,
    pub items: QueryItems,
    /// Number of records matching the filter, over all pages.
    pub total: u64,
    /// 1-based page number.
    pub page: u64,
    pub page_size: u64,
    /// At least 1 (an empty result is one empty page).
    pub pages_count: u64,
}

/// What a field holds, which decides how its values parse and compare.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    /// A UUID column; values may be `urn:veeam:<kind>:<uuid>` or the bare UUID.
    Uid(&'static str),
    /// Milliseconds since the epoch.
    Time,
    Int,
    Float,
    Bool,
    /// Compared and sorted by index in the documented list (query_comparison.md).
    Enum(&'static [&'static str]),
    /// `task-N` (or `N`), compared numerically.
    TaskId,
}

/// A filterable (and sortable) field: its documented name, SQL expression and kind.
struct Field {
    name: &'static str,
    sql: String,
    kind: Kind,
}

fn f(name: &'static str, sql: impl Into<String>, kind: Kind) -> Field {
    Field {
        name,
        sql: sql.into(),
        kind,
    }
}

const SESSION_STATES: &[&str] = &["Starting", "Stopping", "Working", "Stopped"];
const JOB_SESSION_STATES: &[&str] = &[
    "Starting", "Stopping", "Working", "Pausing", "Resuming", "Stopped",
];
/// get_query_backupjobsession.md: Success < Warning < Failed. `None` (a session still running,
/// not a documented value) sorts before them.
const RESULTS: &[&str] = &["Success", "Warning", "Failed"];
const POINT_TYPES: &[&str] = &["Full", "Increment", "ReverseIncrement"];
const ALGORITHMS: &[&str] = &[
    "Full",
    "ReversedIncremental",
    "Incremental",
    "SyntheticFull",
];
const PLATFORMS: &[&str] = &[
    "VMware",
    "HyperV",
    "vCloud",
    "AgentForLinux",
    "AgentForWindows",
    "CustomPlatform",
];
const BACKUP_TYPES: &[&str] = &["Standard", "ParentBackup", "ChildBackup"];
const HOST_TYPES: &[&str] = &[
    "ESX",
    "VC",
    "ESXi",
    "HvServer",
    "HvCluster",
    "Scvmm",
    "VcdSystem",
];
const TASK_STATES: &[&str] = &["Running", "OperationFinished", "Finished"];
/// get_backuptasksessions_id.md: a task session's states, in the order they happen.
const TASK_SESSION_STATES: &[&str] = &["Pending", "InProgress", "Completed"];
const FILE_TYPES: &[&str] = &["vbk", "vib", "vrb"];
const RESTORE_TYPES: &[&str] = &["FileLevelRestore", "RestoreVm"];
const JOB_TYPES: &[&str] = &["Backup", "BackupCopy", "ImmediateBackupCopy", "Replica"];
const JOB_SESSION_TYPES: &[&str] = &[
    "Backup",
    "BackupCopy",
    "ImmediateBackupCopy",
    "ImmediateBackupCopyWorker",
    "AgentBackup",
    "AgentManagement",
    "NasBackup",
];

fn server_name_of(col: &str) -> String {
    format!("(SELECT bs.name FROM backup_servers bs WHERE bs.id = {col})")
}

/// `2013-08-26 08:31:22`, the stamp in VM restore point names (catalog::vm_point_name).
fn sql_stamp(ms_col: &str) -> String {
    format!("strftime('%Y-%m-%d %H:%M:%S', {ms_col} / 1000, 'unixepoch')")
}

/// `Aug 26 2013  7:57AM`, a restore point's SQL Server style name (JSON.md A9).
fn sql_restore_point_name(ms_col: &str) -> String {
    let t = format!("{ms_col} / 1000, 'unixepoch'");
    let hour = format!("CAST(strftime('%H', {t}) AS INTEGER)");
    format!(
        "(substr('JanFebMarAprMayJunJulAugSepOctNovDec', (CAST(strftime('%m', {t}) AS INTEGER) - 1) * 3 + 1, 3) \
         || ' ' || substr(' ' || CAST(strftime('%d', {t}) AS INTEGER), -2) \
         || ' ' || strftime('%Y', {t}) \
         || ' ' || substr(' ' || (({hour} + 11) % 12 + 1), -2) \
         || ':' || strftime('%M', {t}) \
         || CASE WHEN {hour} < 12 THEN 'AM' ELSE 'PM' END)"
    )
}

/// The Backup `Platform` value of a stored platform (stored as the root's host type).
fn sql_platform(col: &str) -> String {
    let whens: String = PlatformKind::ALL
        .iter()
        .map(|k| format!(" WHEN '{}' THEN '{}'", k.host_type(), k.wire_platform()))
        .collect();
    format!("(CASE {col}{whens} END)")
}

/// The documented filterable fields of each type (get_query_<type>.md), mapped to the columns
/// of the statement that lists the type. Extra fields real clients filter on are marked.
fn fields(t: QueryType) -> Vec<Field> {
    use Kind::*;
    match t {
        QueryType::VmRestorePoint => vec![
            f("UID", "v.id", Uid("VmRestorePoint")),
            f(
                "Name",
                format!("(v.vm_name || '@' || {})", sql_stamp("v.created")),
                Str,
            ),
            f("CreationTime", "v.created", Time),
            f("Type", "v.point_type", Enum(POINT_TYPES)),
            f(
                "Algorithm",
                "(CASE v.point_type WHEN 'Full' THEN 'Full' ELSE 'Incremental' END)",
                Enum(ALGORITHMS),
            ),
            f("RestorePointId", "v.restore_point_id", Uid("RestorePoint")),
            f(
                "RestorePointName",
                sql_restore_point_name("r.created"),
                Str,
            ),
            f("VmDisplayName", "v.vm_name", Str),
            f("BackupServerUid", "b.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("b.backup_server_id"), Str),
            // Not on get_query_vmrestorepoint.md, but real clients filter on them
            // (JSON.md C6, D5: NEO4J sends HierarchyObjRef=="…").
            f("HierarchyObjRef", "v.obj_ref", Str),
            f("VmName", "v.vm_name", Str),
        ],
        QueryType::RestorePoint => vec![
            f("UID", "r.id", Uid("RestorePoint")),
            f("Name", sql_restore_point_name("r.created"), Str),
            f("CreationTime", "r.created", Time),
            f("BackupUid", "r.backup_id", Uid("Backup")),
            f("BackupName", "b.name", Str),
            f("BackupServerUid", "b.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("b.backup_server_id"), Str),
        ],
        QueryType::Backup => vec![
            f("UID", "b.id", Uid("Backup")),
            f("Name", "b.name", Str),
            // emrest keeps no jobs: no backup has a parent job UID; the job name is the
            // backup's name, as a job's backup is named after it.
            f("JobUid", "NULL", Uid("Job")),
            f("JobName", "b.name", Str),
            // emrest's one repository holds every backup (summary.rs); its UUID is in `meta`.
            f(
                "RepositoryUid",
                format!(
                    "(SELECT value FROM meta WHERE key = '{}')",
                    crate::summary::REPOSITORY_KEY
                ),
                Uid("Repository"),
            ),
            f(
                "RepositoryName",
                format!("'{}'", crate::summary::REPOSITORY_NAME),
                Str,
            ),
            f("Platform", sql_platform("b.platform"), Enum(PLATFORMS)),
            f("BackupType", "'Standard'", Enum(BACKUP_TYPES)),
        ],
        QueryType::BackupFile => vec![
            f("UID", "f.id", Uid("BackupFile")),
            f("Name", "f.file_name", Str),
            f("CreationTimeUTC", "f.created", Time),
            f("BackupSize", "f.backup_size", Int),
            f("DataSize", "f.data_size", Int),
            f(
                "CompressRatio",
                "(CASE WHEN f.backup_size = 0 THEN 1.0 ELSE round(CAST(f.data_size AS REAL) / f.backup_size, 2) END)",
                Float,
            ),
            f("FileType", "lower(substr(f.file_name, -3))", Enum(FILE_TYPES)),
            f("BackupUid", "r.backup_id", Uid("Backup")),
            f("BackupName", "b.name", Str),
            f("BackupServerUid", "b.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("b.backup_server_id"), Str),
        ],
        QueryType::BackupServer => vec![
            f("UID", "s.id", Uid("BackupServer")),
            f("Name", "s.name", Str),
            f("Description", "s.description", Str),
            f("IpOrDnsName", "s.name", Str),
            f("Port", "s.port", Int),
            f("Version", "s.version", Str),
        ],
        QueryType::HierarchyRoot => vec![
            f("UID", "h.id", Uid("HierarchyRoot")),
            f("Name", "h.name", Str),
            f("UniqueId", "h.unique_id", Str),
            f("HostType", "h.host_type", Enum(HOST_TYPES)),
            f("BackupServerUid", "h.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("h.backup_server_id"), Str),
        ],
        QueryType::RestoreSession => vec![
            f("UID", "s.id", Uid("RestoreSession")),
            f(
                "Name",
                format!("(s.vm_name || '@' || {})", sql_stamp("s.created")),
                Str,
            ),
            f("Type", "'RestoreVm'", Enum(RESTORE_TYPES)),
            f("CreationTime", "s.created", Time),
            f("EndTime", "s.ended", Time),
            f("State", "s.state", Enum(SESSION_STATES)),
            f("Result", "s.result", Enum(RESULTS)),
            f("BackupServerUid", "b.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("b.backup_server_id"), Str),
            f("VmDisplayName", "s.vm_name", Str),
        ],
        QueryType::Task => vec![
            f("TaskId", "id", TaskId),
            // `/querySvc` sorts tasks by `TaskUid` (querysvc.md's example).
            f("TaskUid", "id", TaskId),
            f("State", "state", Enum(TASK_STATES)),
            f("Operation", "operation", Str),
        ],
        // emrest jobs are backup jobs without a schedule (they run when started).
        QueryType::Job => vec![
            f("UID", "j.id", Uid("Job")),
            f("Name", "j.name", Str),
            f("Description", "j.description", Str),
            f("NextRun", "NULL", Time),
            f("JobType", "'Backup'", Enum(JOB_TYPES)),
            f("Platform", sql_platform("j.platform"), Enum(PLATFORMS)),
            f("ScheduleConfigured", "0", Bool),
            f("ScheduleEnabled", "0", Bool),
            f("BackupServerUid", "j.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("j.backup_server_id"), Str),
        ],
        QueryType::BackupJobSession => vec![
            f("UID", "s.id", Uid("BackupJobSession")),
            // jobs::session_name: `<job>@yyyy-mm-dd hh:mm:ss`.
            f(
                "Name",
                format!("(j.name || '@' || {})", sql_stamp("s.created")),
                Str,
            ),
            f("JobType", "'Backup'", Enum(JOB_SESSION_TYPES)),
            f("JobUid", "s.job_id", Uid("Job")),
            f("JobName", "j.name", Str),
            f("CreationTime", "s.created", Time),
            f("EndTime", "s.ended", Time),
            f("State", "s.state", Enum(JOB_SESSION_STATES)),
            f("Result", "s.result", Enum(RESULTS)),
            f("IsRetry", "s.is_retry", Bool),
            f("BackupServerUid", "j.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("j.backup_server_id"), Str),
        ],
        // No get_query_backuptasksession.md in the reference: the fields of the entity
        // (backuptasksessions_id.md), as the client veeam_em sorts by CreationTime.
        QueryType::BackupTaskSession => vec![
            f("UID", "t.id", Uid("BackupTaskSession")),
            // catalog::vm_point_name: `<vm>@yyyy-mm-dd hh:mm:ss`.
            f(
                "Name",
                format!("(t.vm_name || '@' || {})", sql_stamp("t.created")),
                Str,
            ),
            f("JobSessionUid", "t.session_id", Uid("BackupJobSession")),
            f("CreationTime", "t.created", Time),
            f("EndTime", "t.ended", Time),
            f("State", "t.state", Enum(TASK_SESSION_STATES)),
            f("Result", "t.result", Enum(RESULTS)),
            f("Reason", "t.reason", Str),
            f("TotalSize", "t.total_size", Int),
            f("VmUid", "t.obj_ref", Str),
            f("VmDisplayName", "t.vm_name", Str),
        ],
        QueryType::Repository => vec![
            f("UID", "h.id", Uid("Repository")),
            f("Name", "h.name", Str),
            f("FreeSpace", "h.free_space", Int),
            f("Capacity", "h.capacity", Int),
            f("BackupServerUid", "h.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("h.backup_server_id"), Str),
        ],
    }
}

fn find_field<'a>(t: QueryType, fields: &'a [Field], name: &str) -> CoreResult<&'a Field> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            CoreError::invalid(
                "filter",
                format!(
                    "'{name}' is not a field of {}; fields: {}",
                    t.name(),
                    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// A value of the wrong form for its field.
fn bad_value(c: &Comparison, expected: &str) -> CoreError {
    CoreError::invalid(
        "filter",
        format!(
            "Invalid filter at position {} ('{}'): {} expects {expected}",
            c.value.pos, c.value.text, c.field
        ),
    )
}

fn enum_index(values: &[&str], text: &str) -> Option<i64> {
    values
        .iter()
        .position(|v| v.eq_ignore_ascii_case(text.trim()))
        .map(|i| i as i64)
}

/// `CASE expr WHEN 'v0' THEN 0 … ELSE -1 END`: an enum's documented index.
fn enum_sql(expr: &str, values: &[&str]) -> String {
    let whens: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!(" WHEN '{v}' THEN {i}"))
        .collect();
    format!("(CASE {expr}{whens} ELSE -1 END)")
}

fn parse_uid(kind: &str, text: &str) -> Option<String> {
    let t = text.trim();
    let bare = match t.rsplit_once(':') {
        Some((prefix, id)) => {
            let p: Vec<&str> = prefix.split(':').collect();
            let ok = p.len() == 3
                && p[0].eq_ignore_ascii_case("urn")
                && p[1].eq_ignore_ascii_case("veeam")
                && p[2].eq_ignore_ascii_case(kind);
            if !ok {
                return None;
            }
            id
        }
        None => t,
    };
    Uuid::parse_str(bare).ok().map(|u| u.to_string())
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse a filter date: `YYYY-MM-DD[(T| )hh:mm[:ss[.fraction]]][Z|±hh:mm]`; no zone is UTC.
pub fn parse_time(s: &str) -> Option<Millis> {
    let b = s.trim().as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d == 0 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    let mut i = 10;
    let (mut h, mut mi, mut sec, mut ms) = (0u32, 0u32, 0u32, 0i64);
    if matches!(b.get(i), Some(b'T' | b't' | b' ')) {
        h = num(i + 1, 2)?;
        if b.get(i + 3) != Some(&b':') {
            return None;
        }
        mi = num(i + 4, 2)?;
        i += 6;
        if b.get(i) == Some(&b':') {
            sec = num(i + 1, 2)?;
            i += 3;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                let frac: String = std::str::from_utf8(&b[start..i.min(start + 3)])
                    .ok()?
                    .chars()
                    .chain("000".chars())
                    .take(3)
                    .collect();
                ms = frac.parse().ok()?;
            }
        }
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
    }
    let mut offset_min: i64 = 0;
    match b.get(i) {
        None => {}
        Some(b'Z' | b'z') if i + 1 == b.len() => {}
        Some(c @ (b'+' | b'-')) => {
            let oh = num(i + 1, 2)?;
            if b.get(i + 3) != Some(&b':') || i + 6 != b.len() {
                return None;
            }
            let om = num(i + 4, 2)?;
            let sign = if *c == b'+' { 1 } else { -1 };
            offset_min = sign * (i64::from(oh) * 60 + i64::from(om));
        }
        _ => return None,
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs =
        days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec) - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Compile a filter into SQL over `fields`, pushing every value as a bound parameter.
fn compile(
    t: QueryType,
    e: &Expr,
    fields: &[Field],
    sql: &mut String,
    params: &mut Vec<Value>,
) -> CoreResult<()> {
    match e {
        Expr::And(v) | Expr::Or(v) => {
            let joiner = if matches!(e, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, term) in v.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                compile(t, term, fields, sql, params)?;
            }
            sql.push(')');
            Ok(())
        }
        Expr::Cmp(c) => {
            let field = find_field(t, fields, &c.field).map_err(|e| match e {
                CoreError::Invalid { message, .. } => CoreError::invalid(
                    "filter",
                    format!(
                        "Invalid filter at position {} ('{}'): {message}",
                        c.field_pos, c.field
                    ),
                ),
                other => other,
            })?;
            let op = c.op.sql();
            let text = c.value.text.as_str();
            let (lhs, value, collate) = match field.kind {
                Kind::Str => (field.sql.clone(), Value::Text(text.to_string()), true),
                Kind::Uid(kind) => {
                    let id = parse_uid(kind, text).ok_or_else(|| {
                        bad_value(c, &format!("a UID like urn:veeam:{kind}:<uuid> or a UUID"))
                    })?;
                    (field.sql.clone(), Value::Text(id), false)
                }
                Kind::Time => {
                    let ms = parse_time(text)
                        .ok_or_else(|| bad_value(c, "a UTC date such as 2025-08-14T12:31:30Z"))?;
                    (field.sql.clone(), Value::Integer(ms), false)
                }
                Kind::Int => {
                    let n: i64 = text
                        .trim()
                        .parse()
                        .map_err(|_| bad_value(c, "a whole number"))?;
                    (field.sql.clone(), Value::Integer(n), false)
                }
                Kind::Float => {
                    let x: f64 = text
                        .trim()
                        .parse()
                        .ok()
                        .filter(|x: &f64| x.is_finite())
                        .ok_or_else(|| bad_value(c, "a number"))?;
                    (field.sql.clone(), Value::Real(x), false)
                }
                Kind::Bool => {
                    let v = if text.trim().eq_ignore_ascii_case("true") {
                        1
                    } else if text.trim().eq_ignore_ascii_case("false") {
                        0
                    } else {
                        return Err(bad_value(c, "True or False"));
                    };
                    (field.sql.clone(), Value::Integer(v), false)
                }
                Kind::Enum(values) => {
                    let i = enum_index(values, text)
                        .ok_or_else(|| bad_value(c, &format!("one of {}", values.join(", "))))?;
                    (enum_sql(&field.sql, values), Value::Integer(i), false)
                }
                Kind::TaskId => {
                    let t = text.trim();
                    let n = t
                        .get(..5)
                        .filter(|p| p.eq_ignore_ascii_case("task-"))
                        .map_or(t, |_| &t[5..]);
                    let n: i64 = n
                        .parse()
                        .map_err(|_| bad_value(c, "a task ID such as task-1"))?;
                    (field.sql.clone(), Value::Integer(n), false)
                }
            };
            params.push(value);
            sql.push_str(&format!("({lhs}) {op} ?{}", params.len()));
            if collate {
                sql.push_str(" COLLATE NOCASE");
            }
            Ok(())
        }
    }
}

fn parse_positive(name: &str, raw: Option<&str>, default: u64) -> CoreResult<u64> {
    match raw {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0 && *n <= i64::MAX as u64)
            .ok_or_else(|| {
                CoreError::invalid(
                    name,
                    format!("{name} must be a whole number greater than 0, not '{s}'"),
                )
            }),
    }
}

/// The parsed, checked parts of a query, ready for SQL.
struct Plan {
    t: QueryType,
    where_sql: String,
    params: Vec<Value>,
    order_sql: Option<String>,
    page: u64,
    page_size: u64,
}

fn plan(req: &QueryRequest) -> CoreResult<Plan> {
    let t = QueryType::parse(req.type_name)?;
    let fields = fields(t);
    let mut where_sql = String::new();
    let mut params = Vec::new();
    if let Some(text) = req.filter.filter(|s| !s.trim().is_empty()) {
        let expr = filter::parse(text).map_err(|e| CoreError::invalid("filter", e.to_string()))?;
        compile(t, &expr, &fields, &mut where_sql, &mut params)?;
    }
    let order_sql = match (req.sort_asc, req.sort_desc) {
        (Some(_), Some(_)) => {
            return Err(CoreError::invalid(
                "sortAsc",
                "Give sortAsc or sortDesc, not both",
            ))
        }
        (Some(name), None) | (None, Some(name)) => {
            let desc = req.sort_desc.is_some();
            let param = if desc { "sortDesc" } else { "sortAsc" };
            let field = find_field(t, &fields, name.trim()).map_err(|e| match e {
                CoreError::Invalid { message, .. } => {
                    CoreError::invalid(param, format!("Cannot sort: {message}"))
                }
                other => other,
            })?;
            let key = match field.kind {
                Kind::Enum(values) => enum_sql(&field.sql, values),
                Kind::Str => format!("({}) COLLATE NOCASE", field.sql),
                _ => format!("({})", field.sql),
            };
            Some(format!("{key} {}", if desc { "DESC" } else { "ASC" }))
        }
        (None, None) => None,
    };
    let page_size = parse_positive("pageSize", req.page_size, DEFAULT_PAGE_SIZE)?;
    let page = parse_positive("page", req.page, 1)?;
    Ok(Plan {
        t,
        where_sql,
        params,
        order_sql,
        page,
        page_size,
    })
}

impl Plan {
    /// `WHERE …` joined with the type's own conditions (visibility, deleted rows).
    fn where_clause(&self, scope: &[String]) -> String {
        let mut parts: Vec<&str> = scope.iter().map(String::as_str).collect();
        if !self.where_sql.is_empty() {
            parts.push(&self.where_sql);
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    fn order(&self, default: &str, id: &str) -> String {
        match &self.order_sql {
            Some(o) => format!(" ORDER BY {o}, {id}"),
            None => format!(" ORDER BY {default}"),
        }
    }

    fn offset(&self) -> CoreResult<i64> {
        (self.page - 1)
            .checked_mul(self.page_size)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| CoreError::invalid("page", "page × pageSize is too large"))
    }
}

/// Limit VM restore points (alias `v`) to the caller's restore scope, in SQL, so counts and
/// paging stay exact: the same containment as `security::RestoreScope::covers`.
fn scope_vms(caller: &Caller, v: &str, params: &mut Vec<Value>, scope: &mut Vec<String>) {
    if let Some(clause) = scope_clause(caller, v, params) {
        scope.push(clause);
    }
}

/// Limit containers (restore points, backups, files) to those holding a VM the caller may see.
fn scope_containers(caller: &Caller, link: &str, params: &mut Vec<Value>, scope: &mut Vec<String>) {
    if let Some(clause) = scope_clause(caller, "v", params) {
        scope.push(format!(
            "EXISTS (SELECT 1 FROM vm_restore_points v WHERE {link} AND {clause})"
        ));
    }
}

fn scope_clause(caller: &Caller, v: &str, params: &mut Vec<Value>) -> Option<String> {
    use crate::security::RestoreScope;
    let objects = match &caller.scope {
        _ if caller.is_admin() => return None,
        RestoreScope::All => return None,
        RestoreScope::Objects(objects) => objects,
    };
    let mut any = Vec::new();
    for o in objects {
        params.push(Value::Text(o.root.to_string()));
        let root = params.len();
        params.push(Value::Text(o.kind.host_type().to_string()));
        let platform = params.len();
        let base = format!("{v}.vm_root = ?{root} AND {v}.platform = ?{platform}");
        let t = o.type_.as_str();
        if t == o.kind.root_type() {
            any.push(format!("({base})"));
        } else if t == emrest_platform::types::VM || t == emrest_platform::types::DATASTORE {
            params.push(Value::Text(o.object_ref.clone()));
            let col = if t == emrest_platform::types::VM {
                "vm_ref"
            } else {
                "datastore"
            };
            any.push(format!(
                "({base} AND lower({v}.{col}) = lower(?{}))",
                params.len()
            ));
        }
    }
    Some(if any.is_empty() {
        "0".to_string()
    } else {
        format!("({})", any.join(" OR "))
    })
}

impl Core {
    /// Run a query for the caller (tasks and restore sessions are scoped as their
    /// collections are).
    pub fn query(&self, caller: &Caller, req: &QueryRequest) -> CoreResult<QueryPage> {
        let plan = plan(req)?;
        // Each type needs the permission its collection needs (security_roles_concept.md).
        let permission = match plan.t {
            QueryType::BackupServer | QueryType::HierarchyRoot => Permission::ReadInfrastructure,
            QueryType::BackupFile => Permission::ReadBackupFiles,
            QueryType::Backup | QueryType::RestorePoint => Permission::ReadBackups,
            QueryType::VmRestorePoint => Permission::ReadVmRestorePoints,
            QueryType::RestoreSession | QueryType::Task => Permission::LoggedOn,
            QueryType::Job | QueryType::BackupJobSession | QueryType::BackupTaskSession => {
                Permission::StartJob
            }
            // As /repositories (security_roles_concept.md).
            QueryType::Repository => Permission::ReadInfrastructure,
        };
        crate::security::authorize(caller, permission)?;
        let scoped = !caller.is_admin();
        let mut params = plan.params.clone();
        let mut scope: Vec<String> = Vec::new();
        let scope_account = |col: &str, params: &mut Vec<Value>, scope: &mut Vec<String>| {
            if scoped {
                params.push(Value::Text(caller.account_id.to_string()));
                scope.push(format!("{col} = ?{}", params.len()));
            }
        };
        // (select, id column, default order) of each backed type.
        let (select, id, default_order): (String, &str, &str) = match plan.t {
            QueryType::VmRestorePoint => {
                scope_vms(caller, "v", &mut params, &mut scope);
                (
                    VM_POINT_SELECT.to_string(),
                    "v.id",
                    "v.created DESC, v.vm_name, v.id",
                )
            }
            QueryType::RestorePoint => {
                scope_containers(caller, "r.id = v.restore_point_id", &mut params, &mut scope);
                (RP_SELECT.to_string(), "r.id", "r.created DESC, r.id")
            }
            QueryType::Backup => {
                // RepositoryUid reads the repository's UUID from `meta`: make sure it is there.
                self.repository_id()?;
                scope_containers(
                    caller,
                    "v.restore_point_id IN (SELECT id FROM restore_points WHERE backup_id = b.id)",
                    &mut params,
                    &mut scope,
                );
                (
                    "SELECT b.id, b.name, b.platform, b.backup_server_id, b.created FROM backups b"
                        .to_string(),
                    "b.id",
                    "b.name, b.id",
                )
            }
            QueryType::BackupFile => {
                scope_containers(
                    caller,
                    "v.restore_point_id = f.restore_point_id",
                    &mut params,
                    &mut scope,
                );
                (FILE_SELECT.to_string(), "f.id", "f.created DESC, f.id")
            }
            QueryType::BackupServer => (
                "SELECT s.id, s.name, s.description, s.port, s.version FROM backup_servers s"
                    .to_string(),
                "s.id",
                "s.name, s.id",
            ),
            QueryType::RestoreSession => {
                scope_account("s.account_id", &mut params, &mut scope);
                (SESSION_SELECT.to_string(), "s.id", "s.created, s.id")
            }
            QueryType::Task => {
                scope.push("deleted = 0".into());
                scope_account("account_id", &mut params, &mut scope);
                (TASK_SELECT.to_string(), "id", "id")
            }
            QueryType::HierarchyRoot => return self.query_roots(&plan),
            QueryType::Job => (
                crate::catalog::JOB_SELECT.to_string(),
                "j.id",
                "j.name, j.id",
            ),
            // In the order of /backupSessions and /backupTaskSessions.
            QueryType::BackupJobSession => (
                crate::catalog::JOB_SESSION_SELECT.to_string(),
                "s.id",
                "s.created, s.id",
            ),
            QueryType::BackupTaskSession => (
                crate::catalog::TASK_SESSION_SELECT.to_string(),
                "t.id",
                "s.created, s.id, t.ordinal, t.id",
            ),
            QueryType::Repository => return self.query_repositories(&plan),
        };
        let where_clause = plan.where_clause(&scope);
        let conn = self.catalog.conn()?;
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) FROM ({select}{where_clause})"),
            rusqlite::params_from_iter(params.iter()),
            |r| r.get(0),
        )?;
        let mut paged = params.clone();
        paged.push(Value::Integer(plan.page_size as i64));
        let limit = paged.len();
        paged.push(Value::Integer(plan.offset()?));
        let offset = paged.len();
        let sql = format!(
            "{select}{where_clause}{} LIMIT ?{limit} OFFSET ?{offset}",
            plan.order(default_order, id)
        );
        let mut st = conn.prepare(&sql)?;
        let args = rusqlite::params_from_iter(paged.iter());
        let items = match plan.t {
            QueryType::VmRestorePoint => QueryItems::VmRestorePoints(
                st.query_map(args, vm_point_row)?
                    .collect::<Result<_, _>>()?,
            ),
            QueryType::RestorePoint => {
                QueryItems::RestorePoints(st.query_map(args, rp_row)?.collect::<Result<_, _>>()?)
            }
            QueryType::Backup => {
                QueryItems::Backups(st.query_map(args, backup_row)?.collect::<Result<_, _>>()?)
            }
            QueryType::BackupFile => {
                QueryItems::BackupFiles(st.query_map(args, file_row)?.collect::<Result<_, _>>()?)
            }
            QueryType::BackupServer => QueryItems::BackupServers(
                st.query_map(args, |r| {
                    Ok(BackupServerRecord {
                        id: uuid_col(r, 0)?,
                        name: r.get(1)?,
                        description: r.get(2)?,
                        port: r.get(3)?,
                        version: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?,
            ),
            QueryType::RestoreSession => QueryItems::RestoreSessions(
                st.query_map(args, session_row)?.collect::<Result<_, _>>()?,
            ),
            QueryType::Task => {
                QueryItems::Tasks(st.query_map(args, task_row)?.collect::<Result<_, _>>()?)
            }
            QueryType::Job => {
                let mut jobs: Vec<crate::jobs::JobRecord> = st
                    .query_map(args, crate::catalog::job_row)?
                    .collect::<Result<_, _>>()?;
                for j in &mut jobs {
                    crate::catalog::load_objects(&conn, j)?;
                }
                QueryItems::Jobs(jobs)
            }
            QueryType::BackupJobSession => QueryItems::BackupJobSessions(
                st.query_map(args, crate::catalog::job_session_row)?
                    .collect::<Result<_, _>>()?,
            ),
            QueryType::BackupTaskSession => QueryItems::BackupTaskSessions(
                st.query_map(args, crate::catalog::task_session_row)?
                    .collect::<Result<_, _>>()?,
            ),
            _ => QueryItems::Empty(plan.t),
        };
        drop(st);
        drop(conn);
        let items = match items {
            QueryItems::RestoreSessions(mut v) => {
                for s in &mut v {
                    self.live_progress(s);
                }
                QueryItems::RestoreSessions(v)
            }
            QueryItems::BackupJobSessions(mut v) => {
                for s in &mut v {
                    self.live_session(s);
                }
                QueryItems::BackupJobSessions(v)
            }
            other => other,
        };
        Ok(page_of(&plan, items, total as u64))
    }

    /// Hierarchy roots live in the inventory, not the catalog: the registered ones are bound
    /// as a `VALUES` table so the same compiled filter, order and paging apply.
    fn query_roots(&self, plan: &Plan) -> CoreResult<QueryPage> {
        let roots = self.hierarchy_roots()?;
        let rows = roots
            .iter()
            .map(|r| {
                vec![
                    Value::Text(r.id.to_string()),
                    Value::Text(r.name.clone()),
                    Value::Text(r.unique_id.clone()),
                    Value::Text(r.kind.host_type().to_string()),
                    Value::Text(r.backup_server_id.to_string()),
                ]
            })
            .collect();
        let (ids, total) = self.query_values(
            plan,
            &["id", "name", "unique_id", "host_type", "backup_server_id"],
            rows,
        )?;
        let page = ids
            .iter()
            .filter_map(|id| roots.iter().find(|r| r.id == *id).cloned())
            .collect();
        Ok(page_of(plan, QueryItems::HierarchyRoots(page), total))
    }

    /// Repositories are computed (summary.rs), not stored: bound as a `VALUES` table like the
    /// hierarchy roots.
    fn query_repositories(&self, plan: &Plan) -> CoreResult<QueryPage> {
        let repos = self.backup_repositories()?;
        let rows = repos
            .iter()
            .map(|r| {
                vec![
                    Value::Text(r.id.to_string()),
                    Value::Text(r.name.clone()),
                    Value::Integer(i64::try_from(r.free_space).unwrap_or(i64::MAX)),
                    Value::Integer(i64::try_from(r.capacity).unwrap_or(i64::MAX)),
                    Value::Text(r.backup_server_id.to_string()),
                ]
            })
            .collect();
        let (ids, total) = self.query_values(
            plan,
            &["id", "name", "free_space", "capacity", "backup_server_id"],
            rows,
        )?;
        let page = ids
            .iter()
            .filter_map(|id| repos.iter().find(|r| r.id == *id).cloned())
            .collect();
        Ok(page_of(plan, QueryItems::Repositories(page), total))
    }

    /// Runs the plan over rows bound as `WITH h(<columns>) AS (VALUES …)`; the first column is
    /// the ID. Returns the IDs of the page, in order, and the number of matching rows.
    fn query_values(
        &self,
        plan: &Plan,
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> CoreResult<(Vec<Uuid>, u64)> {
        if rows.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut params = plan.params.clone();
        let mut tuples = Vec::with_capacity(rows.len());
        for row in rows {
            let mut marks = Vec::with_capacity(row.len());
            for v in row {
                params.push(v);
                marks.push(format!("?{}", params.len()));
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let cte = format!(
            "WITH h({}) AS (VALUES {})",
            columns.join(", "),
            tuples.join(", ")
        );
        let where_clause = plan.where_clause(&[]);
        let conn = self.catalog.conn()?;
        let total: i64 = conn.query_row(
            &format!("{cte} SELECT count(*) FROM h{where_clause}"),
            rusqlite::params_from_iter(params.iter()),
            |r| r.get(0),
        )?;
        params.push(Value::Integer(plan.page_size as i64));
        let limit = params.len();
        params.push(Value::Integer(plan.offset()?));
        let offset = params.len();
        let sql = format!(
            "{cte} SELECT h.id FROM h{where_clause}{} LIMIT ?{limit} OFFSET ?{offset}",
            plan.order("h.name, h.id", "h.id")
        );
        let mut st = conn.prepare(&sql)?;
        let ids = st
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                uuid_col(r, 0)
            })?
            .collect::<Result<_, _>>()?;
        Ok((ids, total as u64))
    }
}

fn page_of(plan: &Plan, items: QueryItems, total: u64) -> QueryPage {
    QueryPage {
        query_type: plan.t,
        items,
        total,
        page: plan.page,
        page_size: plan.page_size,
        pages_count: total.div_ceil(plan.page_size).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_every_form_clients_send() {
        let base = 1_718_406_445_000; // 2024-06-14T23:07:25Z
        for s in [
            "2024-06-14T23:07:25Z",
            "2024-06-14T23:07:25",
            "2024-06-14 23:07:25",
            "2024-06-14T23:07:25.000Z",
            "2024-06-15T01:07:25+02:00",
            "2024-06-14T22:07:25-01:00",
        ] {
            assert_eq!(parse_time(s), Some(base), "{s}");
        }
        assert_eq!(parse_time("2024-06-14T23:07:25.389954Z"), Some(base + 389));
        assert_eq!(parse_time("2024-06-14T23:07Z"), Some(base - 25_000));
        assert_eq!(parse_time("2024-06-14"), Some(1_718_323_200_000));
        for bad in [
            "2024-13-01",
            "2024-02-30",
            "2024-06-14T24:00:00",
            "yesterday",
            "2024-06-14T23:07:25Q",
            "2024-06-14T23:07:25.Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(parse_time("2024-02-29"), Some(1_709_164_800_000));
    }

    #[test]
    fn uids_accept_urn_or_bare_uuid_of_the_right_kind() {
        let id = "39cb6675-8930-436a-8ac3-8a4ae6195cb1";
        assert_eq!(
            parse_uid("Backup", &format!("urn:veeam:Backup:{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(parse_uid("Backup", &id.to_uppercase()).as_deref(), Some(id));
        assert_eq!(
            parse_uid("Backup", &format!("URN:VEEAM:backup:{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(parse_uid("Backup", &format!("urn:veeam:Job:{id}")), None);
        assert_eq!(parse_uid("Backup", "nope"), None);
    }

    #[test]
    fn types_parse_case_insensitively_and_unknown_ones_are_named() {
        assert_eq!(
            QueryType::parse("vmrestorepoint").unwrap(),
            QueryType::VmRestorePoint
        );
        assert_eq!(
            QueryType::parse("backupServer").unwrap(),
            QueryType::BackupServer
        );
        let e = QueryType::parse("Replica").unwrap_err().to_string();
        assert!(e.contains("not supported by emrest yet"), "{e}");
        let e = QueryType::parse("Bogus").unwrap_err().to_string();
        assert!(e.contains("Unknown query type 'Bogus'"), "{e}");
        let e = QueryType::parse("").unwrap_err().to_string();
        assert!(e.contains("needs a type"), "{e}");
    }

    fn plan_err(filter: &str) -> String {
        plan(&QueryRequest {
            type_name: "VmRestorePoint",
            filter: Some(filter),
            ..Default::default()
        })
        .map(|_| ())
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn unknown_fields_and_bad_values_name_position_and_token() {
        let e = plan_err("VmDisplayName==a;Colour==red");
        assert!(
            e.starts_with("Invalid filter at position 18 ('Colour'): 'Colour' is not a field of VmRestorePoint"),
            "{e}"
        );
        let e = plan_err("CreationTime>\"last week\"");
        assert_eq!(
            e,
            "Invalid filter at position 14 ('last week'): CreationTime expects a UTC date such as 2025-08-14T12:31:30Z"
        );
        let e = plan_err("Type==Differential");
        assert!(
            e.contains("one of Full, Increment, ReverseIncrement"),
            "{e}"
        );
        let e = plan_err("UID==42");
        assert!(e.contains("urn:veeam:VmRestorePoint:<uuid>"), "{e}");
    }

    #[test]
    fn paging_and_sort_parameters_are_checked() {
        let p = |size: Option<&'static str>, page: Option<&'static str>| {
            plan(&QueryRequest {
                type_name: "Task",
                page_size: size,
                page,
                ..Default::default()
            })
        };
        assert_eq!(p(None, None).unwrap().page_size, DEFAULT_PAGE_SIZE);
        for bad in ["0", "-1", "x", ""] {
            assert!(p(Some(bad), None).is_err(), "{bad}");
            assert!(p(None, Some(bad)).is_err(), "{bad}");
        }
        let both = plan(&QueryRequest {
            type_name: "Task",
            sort_asc: Some("State"),
            sort_desc: Some("State"),
            ..Default::default()
        });
        assert!(both.is_err());
        let e = plan(&QueryRequest {
            type_name: "Task",
            sort_desc: Some("Colour"),
            ..Default::default()
        })
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("Cannot sort: 'Colour' is not a field of Task"),
            "{e}"
        );
    }
}
