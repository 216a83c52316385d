//! The query service's SQL (`GET /query?type=…`; query.rs holds the request and its rules):
//! the documented filterable fields of each type (get_query_<type>.md) as SQL expressions
//! over the statement that lists the type, the compilation of a parsed filter (filter.rs) into
//! a parameterized WHERE clause, the caller's scope as SQL, and the paged statements.
//! Values never enter the SQL text: every one is a bound parameter.

use super::backups::{
    backup_row, file_row, rp_row, vm_point_row, FILE_SELECT, RP_SELECT, VM_POINT_COUNT,
    VM_POINT_SELECT,
};
use super::jobs::{
    job_row, load_objects, session_row as job_session_row, task_session_row, JOB_SELECT,
    SESSION_SELECT as JOB_SESSION_SELECT, TASK_SESSION_SELECT,
};
use super::tasks::{session_row, task_row, SESSION_SELECT, TASK_SELECT};
use super::{uuid_col, Catalog, Dialect};
use crate::error::{CoreError, CoreResult};
use crate::filter::{Comparison, Expr, Op};
use crate::model::*;
use crate::query::{parse_time, parse_uid, QueryItems, QueryType};
use emrest_platform::PlatformKind;
use rusqlite::types::Value;
use uuid::Uuid;

/// A value of a row bound as a table of its own ([`Catalog::query_values`]).
pub(crate) enum Cell {
    Text(String),
    Int(i64),
}

impl From<Cell> for Value {
    fn from(c: Cell) -> Value {
        match c {
            Cell::Text(s) => Value::Text(s),
            Cell::Int(n) => Value::Integer(n),
        }
    }
}

/// The SQL operator; `!=` is `IS NOT` so that unset values count as "not equal".
fn op_sql(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "IS NOT",
        Op::Lt => "<",
        Op::Gt => ">",
        Op::Le => "<=",
        Op::Ge => ">=",
    }
}

/// What a field holds, which decides how its values parse and compare.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
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
pub(crate) struct Field {
    pub(crate) name: &'static str,
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
fn sql_stamp(d: Dialect, ms_col: &str) -> String {
    d.stamp(ms_col)
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
pub(crate) fn fields(t: QueryType, d: Dialect) -> Vec<Field> {
    use Kind::*;
    match t {
        QueryType::VmRestorePoint => vec![
            f("UID", "v.id", Uid("VmRestorePoint")),
            f(
                "Name",
                format!("(v.vm_name || '@' || {})", sql_stamp(d, "v.created")),
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
                format!("(s.vm_name || '@' || {})", sql_stamp(d, "s.created")),
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
        // emrest jobs are backup jobs; NextRun is the run the scheduler has recorded (null
        // until its first look at a new or edited schedule, and for chained jobs).
        QueryType::Job => vec![
            f("UID", "j.id", Uid("Job")),
            f("Name", "j.name", Str),
            f("Description", "j.description", Str),
            f(
                "NextRun",
                "(CASE WHEN j.schedule IS NOT NULL AND j.schedule_enabled THEN j.next_run END)",
                Time,
            ),
            f("JobType", "'Backup'", Enum(JOB_TYPES)),
            f("Platform", sql_platform("j.platform"), Enum(PLATFORMS)),
            f("ScheduleConfigured", "(j.schedule IS NOT NULL)", Bool),
            f(
                "ScheduleEnabled",
                "(j.schedule IS NOT NULL AND j.schedule_enabled)",
                Bool,
            ),
            f("BackupServerUid", "j.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("j.backup_server_id"), Str),
        ],
        QueryType::BackupJobSession => vec![
            f("UID", "s.id", Uid("BackupJobSession")),
            // jobs::session_name: `<job>@yyyy-mm-dd hh:mm:ss`.
            f(
                "Name",
                format!("(j.name || '@' || {})", sql_stamp(d, "s.created")),
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
                format!("(t.vm_name || '@' || {})", sql_stamp(d, "t.created")),
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
        QueryType::ObjectInJob => vec![
            f("UID", "h.id", Uid("ObjectInJob")),
            f("Name", "h.name", Str),
            f("JobUid", "h.job_id", Uid("Job")),
            f("JobName", "h.job_name", Str),
            f("BackupServerUid", "h.backup_server_id", Uid("BackupServer")),
            f("BackupServerName", server_name_of("h.backup_server_id"), Str),
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

/// Compile a filter into SQL over `fields`, pushing every value as a bound parameter.
fn compile(
    d: Dialect,
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
                compile(d, t, term, fields, sql, params)?;
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
            let op = op_sql(c.op);
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
            sql.push_str(&format!("({lhs}) {op} {}", d.param(params.len())));
            if collate {
                sql.push_str(d.nocase());
            }
            Ok(())
        }
    }
}

/// A query's filter and sort order, checked against the fields of its type; the catalog
/// renders it in its own dialect when it runs the query.
#[derive(Clone, Debug)]
pub(crate) struct QueryFilter {
    t: QueryType,
    expr: Option<Expr>,
    /// Field name and whether descending.
    sort: Option<(String, bool)>,
}

/// A [`QueryFilter`] in SQL.
struct Rendered {
    where_sql: String,
    params: Vec<Value>,
    order_sql: Option<String>,
    /// The same sort key, the other way round.
    order_sql_rev: Option<String>,
}

/// A default order (plain columns, `, `-separated, each ASC unless it says DESC) the other way
/// round.
fn reverse_order(order: &str) -> String {
    order
        .split(", ")
        .map(|term| match term.strip_suffix(" DESC") {
            Some(key) => format!("{key} ASC"),
            None => format!("{} DESC", term.strip_suffix(" ASC").unwrap_or(term)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ORDER BY key of a sort field.
fn order_key(
    d: Dialect,
    t: QueryType,
    fields: &[Field],
    name: &str,
    desc: bool,
) -> CoreResult<String> {
    let param = if desc { "sortDesc" } else { "sortAsc" };
    let field = find_field(t, fields, name.trim()).map_err(|e| match e {
        CoreError::Invalid { message, .. } => {
            CoreError::invalid(param, format!("Cannot sort: {message}"))
        }
        other => other,
    })?;
    let key = match field.kind {
        Kind::Enum(values) => enum_sql(&field.sql, values),
        Kind::Str => format!("({}){}", field.sql, d.nocase()),
        _ => format!("({})", field.sql),
    };
    Ok(format!("{key} {}", if desc { "DESC" } else { "ASC" }))
}

impl QueryFilter {
    /// Check a parsed filter, then the sort parameters, against the fields of `t`.
    pub(crate) fn new(
        t: QueryType,
        expr: Option<Expr>,
        sort_asc: Option<&str>,
        sort_desc: Option<&str>,
    ) -> CoreResult<QueryFilter> {
        let sort = match (sort_asc, sort_desc) {
            (Some(name), None) => Some((name.to_string(), false)),
            (None, Some(name)) => Some((name.to_string(), true)),
            _ => None,
        };
        let filter = QueryFilter { t, expr, sort };
        // Checked by rendering it once; the SQL is made again by the catalog that runs it.
        let d = Dialect::Sqlite;
        let fields = fields(t, d);
        if let Some(e) = &filter.expr {
            compile(d, t, e, &fields, &mut String::new(), &mut Vec::new())?;
        }
        if sort_asc.is_some() && sort_desc.is_some() {
            return Err(CoreError::invalid(
                "sortAsc",
                "Give sortAsc or sortDesc, not both",
            ));
        }
        if let Some((name, desc)) = &filter.sort {
            order_key(d, t, &fields, name, *desc)?;
        }
        Ok(filter)
    }

    fn render(&self, d: Dialect) -> CoreResult<Rendered> {
        let fields = fields(self.t, d);
        let mut where_sql = String::new();
        let mut params = Vec::new();
        if let Some(e) = &self.expr {
            compile(d, self.t, e, &fields, &mut where_sql, &mut params)?;
        }
        let (order_sql, order_sql_rev) = match &self.sort {
            Some((name, desc)) => (
                Some(order_key(d, self.t, &fields, name, *desc)?),
                Some(order_key(d, self.t, &fields, name, !*desc)?),
            ),
            None => (None, None),
        };
        Ok(Rendered {
            where_sql,
            params,
            order_sql,
            order_sql_rev,
        })
    }
}

impl Rendered {
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

    /// [`Rendered::order`] the other way round: every order ends with the ID, so it is total
    /// and its reverse lists the same rows backwards.
    fn order_rev(&self, default: &str, id: &str) -> String {
        match &self.order_sql_rev {
            Some(o) => format!(" ORDER BY {o}, {id} DESC"),
            None => format!(" ORDER BY {}", reverse_order(default)),
        }
    }
}

/// The documented filterable fields of a type, by name.
pub(crate) fn query_field_names(t: QueryType) -> Vec<&'static str> {
    fields(t, Dialect::Sqlite).iter().map(|f| f.name).collect()
}

/// The count of a VM restore point query that filters on the points' own columns only, from
/// their table alone: every VM restore point has exactly one restore point, backup and backup
/// file (recorded together, `backup_files.restore_point_id` unique), so the joins of
/// `VM_POINT_SELECT` neither add nor drop rows, and a million points are counted without a
/// million joins (an unfiltered count reads one index).
fn lean_count(t: QueryType, where_clause: &str) -> Option<String> {
    if !points_alone(t, where_clause) {
        return None;
    }
    Some(if where_clause.is_empty() {
        VM_POINT_COUNT.to_string()
    } else {
        format!("SELECT count(*) FROM vm_restore_points v{where_clause}")
    })
}

/// Whether a VM restore point query names the points' own columns only (in its filter and its
/// order): it is then counted, filtered, sorted and paged on their table and its indexes alone,
/// and only the rows of the page are joined ([`deferred_page`]).
fn points_alone(t: QueryType, sql: &str) -> bool {
    t == QueryType::VmRestorePoint && !joined_for_test() && aliases(sql).iter().all(|a| *a == "v")
}

#[cfg(test)]
thread_local! {
    /// Tests run a query both ways and compare: `true` takes the joined path always.
    static JOINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn joined_for_test() -> bool {
    JOINED.with(|j| j.get())
}

#[cfg(not(test))]
fn joined_for_test() -> bool {
    false
}

/// A statement as run, with its parameters.
type Statement = (String, Vec<Value>);

thread_local! {
    /// While [`Catalog::explain_queries`] runs on this thread: the statements of the last query
    /// service page read, with their parameters. `None` otherwise, so that no query records
    /// anything unless asked.
    static RECORDED: std::cell::RefCell<Option<Vec<Statement>>> =
        const { std::cell::RefCell::new(None) };
}

impl Catalog {
    /// Runs `run` (queries of the query service, on this thread), then answers the plans SQLite
    /// chooses for the statements of the last page it read (its count, then its page), one
    /// line per step: for a benchmark to show why a query shape is slow.
    pub fn explain_queries<T>(
        &self,
        run: impl FnOnce() -> CoreResult<T>,
    ) -> CoreResult<Vec<String>> {
        RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
        let ran = run();
        let statements = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
        ran?;
        self.with_query_reader(|conn| {
            let mut lines = Vec::new();
            for (sql, params) in &statements {
                lines.push(format!(
                    "-- {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
                let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = st.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(3)?,
                    ))
                })?;
                // Indented under its parent step.
                let mut depth: Vec<(i64, usize)> = Vec::new();
                for row in rows {
                    let (id, parent, detail) = row?;
                    let d = depth
                        .iter()
                        .find(|(i, _)| *i == parent)
                        .map_or(0, |(_, d)| d + 1);
                    depth.push((id, d));
                    lines.push(format!("{}{detail}", "  ".repeat(d + 1)));
                }
            }
            Ok(lines)
        })
    }
}

/// A page of VM restore points picked from their table alone, then joined: the filter, the sort
/// and the OFFSET run over an index where one covers them (no table row read for the rows
/// skipped or sorted away), and the joins run for the page's rows only. The same rows in the
/// same order as the joined query, by the invariant of [`lean_count`].
fn deferred_page(
    d: Dialect,
    select: &str,
    where_clause: &str,
    order: &str,
    limit: &str,
    offset: &str,
) -> String {
    let key = d.row_key();
    format!(
        "{select} WHERE v.{key} IN (SELECT v.{key} FROM vm_restore_points v{where_clause}{order} LIMIT {limit} OFFSET {offset}){order}"
    )
}

/// The table aliases a piece of generated SQL names (`v` of `v.created`). Values are bound
/// parameters, never inlined, so every `x.` in the text is a column reference.
fn aliases(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' {
                out.push(&sql[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Rows to skip before a page.
fn offset(page: u64, page_size: u64) -> CoreResult<i64> {
    (page - 1)
        .checked_mul(page_size)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| CoreError::invalid("page", "page × pageSize is too large"))
}

/// Limit VM restore points (alias `v`) to the caller's restore scope, in SQL, so counts and
/// paging stay exact: the same containment as `security::RestoreScope::covers`.
fn scope_vms(
    d: Dialect,
    caller: &Caller,
    v: &str,
    params: &mut Vec<Value>,
    scope: &mut Vec<String>,
) {
    if let Some(clause) = scope_clause(d, caller, v, params) {
        scope.push(clause);
    }
}

/// Limit containers (restore points, backups, files) to those holding a VM the caller may see.
fn scope_containers(
    d: Dialect,
    caller: &Caller,
    link: &str,
    params: &mut Vec<Value>,
    scope: &mut Vec<String>,
) {
    if let Some(clause) = scope_clause(d, caller, "v", params) {
        scope.push(format!(
            "EXISTS (SELECT 1 FROM vm_restore_points v WHERE {link} AND {clause})"
        ));
    }
}

fn scope_clause(d: Dialect, caller: &Caller, v: &str, params: &mut Vec<Value>) -> Option<String> {
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
        let base = format!(
            "{v}.vm_root = {} AND {v}.platform = {}",
            d.param(root),
            d.param(platform)
        );
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
                "({base} AND lower({v}.{col}) = lower({}))",
                d.param(params.len())
            ));
        }
    }
    Some(if any.is_empty() {
        "0".to_string()
    } else {
        format!("({})", any.join(" OR "))
    })
}

impl Catalog {
    /// One page of a stored type's records matching the filter, in the filter's order (else
    /// the type's collection order), limited to what the caller may see (tasks and restore
    /// sessions to its own unless an administrator, VMs and their containers to its restore
    /// scope); and the number of matching records over all pages.
    pub(crate) fn query(
        &self,
        filter: &QueryFilter,
        caller: &Caller,
        page: u64,
        page_size: u64,
    ) -> CoreResult<(QueryItems, u64)> {
        let d = self.dialect;
        let t = filter.t;
        let r = filter.render(d)?;
        let scoped = !caller.is_admin();
        let mut params = r.params.clone();
        let mut scope: Vec<String> = Vec::new();
        let scope_account = |col: &str, params: &mut Vec<Value>, scope: &mut Vec<String>| {
            if scoped {
                params.push(Value::Text(caller.account_id.to_string()));
                scope.push(format!("{col} = {}", d.param(params.len())));
            }
        };
        // (select, id column, default order) of each backed type.
        let (select, id, default_order): (String, &str, &str) = match t {
            QueryType::VmRestorePoint => {
                scope_vms(d, caller, "v", &mut params, &mut scope);
                (
                    VM_POINT_SELECT.to_string(),
                    "v.id",
                    "v.created DESC, v.vm_name, v.id",
                )
            }
            QueryType::RestorePoint => {
                scope_containers(
                    d,
                    caller,
                    "r.id = v.restore_point_id",
                    &mut params,
                    &mut scope,
                );
                (RP_SELECT.to_string(), "r.id", "r.created DESC, r.id")
            }
            QueryType::Backup => {
                // RepositoryUid reads the repository's UUID from `meta`: the caller made sure
                // it is there.
                scope_containers(
                    d,
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
                    d,
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
            QueryType::HierarchyRoot | QueryType::Repository | QueryType::ObjectInJob => {
                return Err(CoreError::Internal(format!(
                    "{} is computed, not stored: query it with query_values",
                    t.name()
                )))
            }
            QueryType::Job => (JOB_SELECT.to_string(), "j.id", "j.name, j.id"),
            // In the order of /backupSessions and /backupTaskSessions.
            QueryType::BackupJobSession => {
                (JOB_SESSION_SELECT.to_string(), "s.id", "s.created, s.id")
            }
            QueryType::BackupTaskSession => (
                TASK_SESSION_SELECT.to_string(),
                "t.id",
                "s.created, s.id, t.ordinal, t.id",
            ),
        };
        let where_clause = r.where_clause(&scope);
        let skip = offset(page, page_size)?;
        let count_sql = lean_count(t, &where_clause)
            .unwrap_or_else(|| format!("SELECT count(*) FROM ({select}{where_clause})"));
        let (items, total) = self.with_query_reader(|conn| {
            let total: i64 =
                conn.query_row(&count_sql, rusqlite::params_from_iter(params.iter()), |r| {
                    r.get(0)
                })?;
            // A page past the middle is read from the other end: its OFFSET is then the rows
            // after it, not before (the last page of a million points skips none), and the
            // rows are turned back round below.
            let page_len = (total.max(0) as u64)
                .saturating_sub(skip as u64)
                .min(page_size);
            let backwards = skip > 0 && skip as u64 > (total.max(0) as u64) / 2;
            let (limit_value, skip_value, order) = if backwards {
                let after = (total.max(0) as u64).saturating_sub(skip as u64 + page_len);
                (
                    page_len as i64,
                    after as i64,
                    r.order_rev(default_order, id),
                )
            } else {
                (page_size as i64, skip, r.order(default_order, id))
            };
            let mut paged = params.clone();
            paged.push(Value::Integer(limit_value));
            let limit = paged.len();
            paged.push(Value::Integer(skip_value));
            let offset = paged.len();
            let (limit, offset) = (d.param(limit), d.param(offset));
            let sql = if points_alone(t, &format!("{where_clause}{order}")) {
                deferred_page(d, &select, &where_clause, &order, &limit, &offset)
            } else {
                format!("{select}{where_clause}{order} LIMIT {limit} OFFSET {offset}")
            };
            RECORDED.with(|r| {
                if let Some(statements) = r.borrow_mut().as_mut() {
                    *statements = vec![
                        (count_sql.clone(), params.clone()),
                        (sql.clone(), paged.clone()),
                    ];
                }
            });
            let mut st = conn.prepare(&sql)?;
            let args = rusqlite::params_from_iter(paged.iter());
            let items = match t {
                QueryType::VmRestorePoint => QueryItems::VmRestorePoints(
                    st.query_map(args, vm_point_row)?
                        .collect::<Result<_, _>>()?,
                ),
                QueryType::RestorePoint => QueryItems::RestorePoints(
                    st.query_map(args, rp_row)?.collect::<Result<_, _>>()?,
                ),
                QueryType::Backup => {
                    QueryItems::Backups(st.query_map(args, backup_row)?.collect::<Result<_, _>>()?)
                }
                QueryType::BackupFile => QueryItems::BackupFiles(
                    st.query_map(args, file_row)?.collect::<Result<_, _>>()?,
                ),
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
                    let mut jobs: Vec<crate::jobs::JobRecord> =
                        st.query_map(args, job_row)?.collect::<Result<_, _>>()?;
                    for j in &mut jobs {
                        load_objects(conn, j)?;
                    }
                    QueryItems::Jobs(jobs)
                }
                QueryType::BackupJobSession => QueryItems::BackupJobSessions(
                    st.query_map(args, job_session_row)?
                        .collect::<Result<_, _>>()?,
                ),
                QueryType::BackupTaskSession => QueryItems::BackupTaskSessions(
                    st.query_map(args, task_session_row)?
                        .collect::<Result<_, _>>()?,
                ),
                _ => QueryItems::Empty(t),
            };
            let mut items = items;
            if backwards {
                items.reverse();
            }
            Ok((items, total))
        })?;
        Ok((items, total as u64))
    }

    /// Runs a filter over rows bound as `WITH h(<columns>) AS (VALUES …)` (types computed, not
    /// stored); the first column is the ID. Returns the IDs of the page, in order, and the
    /// number of matching rows.
    pub(crate) fn query_values(
        &self,
        filter: &QueryFilter,
        columns: &[&str],
        rows: Vec<Vec<Cell>>,
        page: u64,
        page_size: u64,
    ) -> CoreResult<(Vec<Uuid>, u64)> {
        if rows.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let r = filter.render(self.dialect)?;
        let d = self.dialect;
        let mut params = r.params.clone();
        let mut tuples = Vec::with_capacity(rows.len());
        for row in rows {
            let mut marks = Vec::with_capacity(row.len());
            for v in row {
                params.push(v.into());
                marks.push(d.param(params.len()));
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let cte = format!(
            "WITH h({}) AS (VALUES {})",
            columns.join(", "),
            tuples.join(", ")
        );
        let where_clause = r.where_clause(&[]);
        let skip = offset(page, page_size)?;
        let (ids, total) = self.with_query_reader(|conn| {
            let total: i64 = conn.query_row(
                &format!("{cte} SELECT count(*) FROM h{where_clause}"),
                rusqlite::params_from_iter(params.iter()),
                |r| r.get(0),
            )?;
            params.push(Value::Integer(page_size as i64));
            let limit = params.len();
            params.push(Value::Integer(skip));
            let offset = params.len();
            let sql = format!(
                "{cte} SELECT h.id FROM h{where_clause}{} LIMIT {} OFFSET {}",
                r.order("h.name, h.id", "h.id"),
                d.param(limit),
                d.param(offset)
            );
            let mut st = conn.prepare(&sql)?;
            let ids = st
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    uuid_col(r, 0)
                })?
                .collect::<Result<_, _>>()?;
            Ok((ids, total))
        })?;
        Ok((ids, total as u64))
    }
}

#[cfg(test)]
mod alias_tests {
    use super::*;

    #[test]
    fn a_count_is_lean_only_when_the_where_names_the_points_alone() {
        assert_eq!(
            aliases(" WHERE v.created > ?1 AND (r.backup_id = ?2 OR b_x.name = 'a.b')"),
            ["v", "r", "b_x", "a"]
        );
        assert!(lean_count(QueryType::VmRestorePoint, "").is_some());
        assert!(lean_count(QueryType::VmRestorePoint, " WHERE v.point_type = ?1").is_some());
        assert!(lean_count(QueryType::VmRestorePoint, " WHERE b.name = ?1").is_none());
        assert!(lean_count(QueryType::RestorePoint, "").is_none());
        assert!(
            points_alone(QueryType::VmRestorePoint, " ORDER BY (v.vm_name || '@' || strftime('%Y-%m-%d %H:%M:%S', v.created / 1000, 'unixepoch')) COLLATE NOCASE ASC, v.id")
        );
        assert!(!points_alone(
            QueryType::VmRestorePoint,
            " ORDER BY b.name, v.id"
        ));
    }
}

#[cfg(test)]
mod lean_tests {
    use super::JOINED;
    use crate::demo::SyntheticPoints;
    use crate::query::{QueryItems, QueryRequest};
    use crate::{BackupServerRecord, Core, CoreConfig, Role};
    use emrest_platform::PlatformKind;
    use uuid::Uuid;

    /// Every shape the lean path takes answers the rows, the order and the total of the joined
    /// query, page by page, including pages read from the far end.
    #[test]
    fn the_lean_path_answers_exactly_what_the_joined_query_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (core, _) = Core::open(CoreConfig::new(dir.path().join("data"))).unwrap();
        let server = BackupServerRecord {
            id: Uuid::new_v4(),
            name: "s".into(),
            description: String::new(),
            port: 9392,
            version: "t".into(),
        };
        let cat = core.catalog();
        cat.insert_backup_server(&server).unwrap();
        let root = core
            .inventory()
            .create_root(Uuid::new_v4(), "vc.test", PlatformKind::VMware)
            .unwrap();
        cat.insert_hierarchy_root(root.id, server.id).unwrap();
        SyntheticPoints {
            job: "Job",
            vm_prefix: "vm-",
            file_prefix: "J",
            first_ref: 1000,
            base: 1_600_000_000_000,
        }
        .insert(cat, server.id, root.id, 1500)
        .unwrap();
        core.add_account("t", "t", Role::PortalAdministrator)
            .unwrap();
        let caller = core
            .logons()
            .caller(core.logons().logon("t", "t").unwrap().id)
            .unwrap();
        let shapes: [(Option<&str>, Option<&str>, Option<&str>); 6] = [
            (None, None, None),
            (Some("VmDisplayName==vm-007"), None, Some("CreationTime")),
            (
                Some("(VmDisplayName==vm-001,VmDisplayName==vm-002);Type>Full"),
                None,
                Some("CreationTime"),
            ),
            (
                Some("CreationTime>=2020-09-14T00:00:00Z"),
                Some("Name"),
                None,
            ),
            (None, Some("Type"), None),
            (Some("BackupServerName==s"), Some("Name"), None),
        ];
        for (filter, asc, desc) in shapes {
            for page in ["1", "2", "7", "14", "15", "16"] {
                let req = QueryRequest {
                    type_name: "VmRestorePoint",
                    filter,
                    sort_asc: asc,
                    sort_desc: desc,
                    page_size: Some("100"),
                    page: Some(page),
                };
                let run = |joined: bool| {
                    JOINED.with(|j| j.set(joined));
                    let p = core.as_caller(&caller).query(&req).unwrap();
                    JOINED.with(|j| j.set(false));
                    let ids: Vec<Uuid> = match p.items {
                        QueryItems::VmRestorePoints(v) => v.iter().map(|r| r.id).collect(),
                        other => panic!("not points: {other:?}"),
                    };
                    (ids, p.total)
                };
                assert_eq!(
                    run(false),
                    run(true),
                    "{filter:?} {asc:?} {desc:?} page {page}"
                );
            }
        }
        // The plans of the last page read: its count's, then its page's, each under its SQL.
        let last = QueryRequest {
            type_name: "VmRestorePoint",
            filter: Some("VmDisplayName==vm-007"),
            page_size: Some("100"),
            ..Default::default()
        };
        let plan = cat
            .explain_queries(|| core.as_caller(&caller).query(&last))
            .unwrap();
        assert_eq!(
            plan.iter().filter(|l| l.starts_with("-- ")).count(),
            2,
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .any(|l| l.contains("SCAN") || l.contains("SEARCH")),
            "{plan:?}"
        );
        // Retention removes points: the count the triggers keep follows them.
        for rp in core.view().restore_points(None).unwrap().iter().take(3) {
            cat.remove_restore_point(rp.id, |_| false).unwrap();
        }
        let all = QueryRequest {
            type_name: "VmRestorePoint",
            ..Default::default()
        };
        let lean = core.as_caller(&caller).query(&all).unwrap().total;
        JOINED.with(|j| j.set(true));
        let joined = core.as_caller(&caller).query(&all).unwrap().total;
        JOINED.with(|j| j.set(false));
        assert_eq!((lean, joined), (1200, 1200));
    }
}
