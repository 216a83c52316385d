//! The query service (`GET /query?type=…`, query_service.md): a parsed filter is checked
//! against the documented filterable fields of the type (get_query_<type>.md); the catalog
//! (catalog/query.rs) compiles it into a parameterized WHERE clause over a per-type column map,
//! with sorting and paging in the same SQL statement. Values never enter the SQL text: every
//! one is a bound parameter. This module holds the request, its permissions and the page.
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

use crate::catalog::{Cell, QueryFilter};
use crate::error::{CoreError, CoreResult};
use crate::filter;
use crate::model::*;
use crate::security::Collection;
use crate::View;
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
    /// The VMs jobs back up (get_query_objectinjob.md).
    ObjectInJob,
}

impl QueryType {
    /// The collection a query of this type reads.
    pub fn collection(self) -> Collection {
        match self {
            QueryType::BackupServer | QueryType::HierarchyRoot | QueryType::Repository => {
                Collection::Infrastructure
            }
            QueryType::BackupFile => Collection::BackupFiles,
            QueryType::Backup | QueryType::RestorePoint => Collection::Backups,
            QueryType::VmRestorePoint => Collection::VmRestorePoints,
            QueryType::RestoreSession | QueryType::Task => Collection::OwnWork,
            QueryType::Job
            | QueryType::BackupJobSession
            | QueryType::BackupTaskSession
            | QueryType::ObjectInJob => Collection::Jobs,
        }
    }

    /// Every type, in the order `/querySvc` lists them.
    pub const ALL: [QueryType; 13] = [
        QueryType::VmRestorePoint,
        QueryType::Task,
        QueryType::Job,
        QueryType::ObjectInJob,
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
            QueryType::ObjectInJob => "ObjectInJob",
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
        crate::catalog::query_field_names(self)
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
    /// VMs of jobs, each with its job's ID and name.
    ObjectsInJob(Vec<(Uuid, String, crate::jobs::JobObjectRecord)>),
    /// Nothing (not produced for any type emrest answers today; kept so a new type can be
    /// accepted before it is backed).
    Empty(QueryType),
}

impl QueryItems {
    /// The same items in the opposite order.
    pub(crate) fn reverse(&mut self) {
        match self {
            QueryItems::VmRestorePoints(v) => v.reverse(),
            QueryItems::RestorePoints(v) => v.reverse(),
            QueryItems::Backups(v) => v.reverse(),
            QueryItems::BackupFiles(v) => v.reverse(),
            QueryItems::BackupServers(v) => v.reverse(),
            QueryItems::HierarchyRoots(v) => v.reverse(),
            QueryItems::RestoreSessions(v) => v.reverse(),
            QueryItems::Tasks(v) => v.reverse(),
            QueryItems::Jobs(v) => v.reverse(),
            QueryItems::BackupJobSessions(v) => v.reverse(),
            QueryItems::BackupTaskSessions(v) => v.reverse(),
            QueryItems::Repositories(v) => v.reverse(),
            QueryItems::ObjectsInJob(v) => v.reverse(),
            QueryItems::Empty(_) => {}
        }
    }
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

/// The UUID a UID value names (`urn:veeam:<kind>:<uuid>` or the bare UUID), as UUID text.
pub(crate) fn parse_uid(kind: &str, text: &str) -> Option<String> {
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

/// The parsed, checked parts of a query.
struct Plan {
    t: QueryType,
    filter: QueryFilter,
    page: u64,
    page_size: u64,
}

fn plan(req: &QueryRequest) -> CoreResult<Plan> {
    let t = QueryType::parse(req.type_name)?;
    let expr = match req.filter.filter(|s| !s.trim().is_empty()) {
        Some(text) => {
            Some(filter::parse(text).map_err(|e| CoreError::invalid("filter", e.to_string()))?)
        }
        None => None,
    };
    let filter = QueryFilter::new(t, expr, req.sort_asc, req.sort_desc)?;
    let page_size = parse_positive("pageSize", req.page_size, DEFAULT_PAGE_SIZE)?;
    let page = parse_positive("page", req.page, 1)?;
    Ok(Plan {
        t,
        filter,
        page,
        page_size,
    })
}

impl View<'_> {
    /// Run a query for the caller (tasks and restore sessions are scoped as their
    /// collections are).
    pub fn query(&self, req: &QueryRequest) -> CoreResult<QueryPage> {
        let caller = self.caller();
        let plan = plan(req)?;
        // Each type needs what reading its collection needs.
        crate::security::authorize(caller, plan.t.collection().permission())?;
        match plan.t {
            QueryType::HierarchyRoot => return self.query_roots(&plan),
            QueryType::Repository => return self.query_repositories(&plan),
            QueryType::ObjectInJob => return self.query_objects_in_job(&plan),
            // RepositoryUid reads the repository's UUID from `meta`: make sure it is there.
            QueryType::Backup => {
                self.repository_id()?;
            }
            _ => {}
        }
        let (items, total) = self
            .catalog
            .query(&plan.filter, caller, plan.page, plan.page_size)?;
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
        Ok(page_of(&plan, items, total))
    }

    /// Hierarchy roots live in the inventory, not the catalog: the registered ones are bound
    /// as a `VALUES` table so the same compiled filter, order and paging apply.
    fn query_roots(&self, plan: &Plan) -> CoreResult<QueryPage> {
        let roots = self.infrastructure().hierarchy_roots()?;
        let rows = roots
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.id.to_string()),
                    Cell::Text(r.name.clone()),
                    Cell::Text(r.unique_id.clone()),
                    Cell::Text(r.kind.host_type().to_string()),
                    Cell::Text(r.backup_server_id.to_string()),
                ]
            })
            .collect();
        let (ids, total) = self.catalog.query_values(
            &plan.filter,
            &["id", "name", "unique_id", "host_type", "backup_server_id"],
            rows,
            plan.page,
            plan.page_size,
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
        let repos = self.infrastructure().backup_repositories()?;
        let rows = repos
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.id.to_string()),
                    Cell::Text(r.name.clone()),
                    Cell::Int(i64::try_from(r.free_space).unwrap_or(i64::MAX)),
                    Cell::Int(i64::try_from(r.capacity).unwrap_or(i64::MAX)),
                    Cell::Text(r.backup_server_id.to_string()),
                ]
            })
            .collect();
        let (ids, total) = self.catalog.query_values(
            &plan.filter,
            &["id", "name", "free_space", "capacity", "backup_server_id"],
            rows,
            plan.page,
            plan.page_size,
        )?;
        let page = ids
            .iter()
            .filter_map(|id| repos.iter().find(|r| r.id == *id).cloned())
            .collect();
        Ok(page_of(plan, QueryItems::Repositories(page), total))
    }
}

impl View<'_> {
    /// The VMs of jobs are bound as a `VALUES` table like the hierarchy roots.
    fn query_objects_in_job(&self, plan: &Plan) -> CoreResult<QueryPage> {
        let objects: Vec<(Uuid, String, Uuid, crate::jobs::JobObjectRecord)> = self
            .jobs()?
            .into_iter()
            .flat_map(|j| {
                let (id, name, server) = (j.id, j.name.clone(), j.backup_server_id);
                j.objects
                    .into_iter()
                    .map(move |o| (id, name.clone(), server, o))
            })
            .collect();
        let rows = objects
            .iter()
            .map(|(job, job_name, server, o)| {
                vec![
                    Cell::Text(o.id.to_string()),
                    Cell::Text(o.name.clone()),
                    Cell::Text(job.to_string()),
                    Cell::Text(job_name.clone()),
                    Cell::Text(server.to_string()),
                ]
            })
            .collect();
        let (ids, total) = self.catalog.query_values(
            &plan.filter,
            &["id", "name", "job_id", "job_name", "backup_server_id"],
            rows,
            plan.page,
            plan.page_size,
        )?;
        let page = ids
            .iter()
            .filter_map(|id| {
                objects
                    .iter()
                    .find(|(_, _, _, o)| o.id == *id)
                    .map(|(job, name, _, o)| (*job, name.clone(), o.clone()))
            })
            .collect();
        Ok(page_of(plan, QueryItems::ObjectsInJob(page), total))
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
