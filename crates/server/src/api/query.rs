//! The query service (`/querySvc`, `/query`) and the lookup service (`/lookupSvc`, `/lookup`):
//! query_service.md, querysvc.md, lookupsvc.md, get_lookup.md. Parsing, checking and running
//! the query is core's; this module picks the representation and builds the paging links.

use super::backup_files::{backup_file_entity, backup_file_ref};
use super::backup_servers::{backup_server_entity, backup_server_ref};
use super::backups::{backup_entity, backup_ref};
use super::hierarchy_roots::{hierarchy_root_entity, hierarchy_root_ref};
use super::jobs::{
    backup_session_entity, backup_session_ref, job_entity, job_ref, task_session_entity,
    task_session_ref,
};
use super::repositories::{repository_entity, repository_ref};
use super::restore_points::{restore_point_entity, restore_point_ref};
use super::restore_sessions::{restore_session_entity, restore_session_ref};
use super::tasks::task_rep;
use super::vm_restore_points::{vm_point_entity, vm_point_ref};
use super::Ctx;
use crate::endpoint::raw_pairs;
use crate::reply::Reply;
use emrest_core::lookup::LookupRequest;
use emrest_core::query::{QueryItems, QueryPage, QueryRequest, QueryType};
use emrest_core::{Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link, QueryContent, TypedList};

/// Percent-encode a query value as .NET's `HttpUtility.UrlEncode` does, which is what real
/// paging links carry: lower-case hex, `+` for a space, `-_.!*()` left alone (JSON.md C3,
/// B9: `filter=CreationTime%3e%3d%22…%22`).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'*'
            | b'('
            | b')' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

/// `format=` on `/query`: references (default) or entities, any case, singular or plural
/// (JSON.md C2).
fn wants_entities(ctx: &Ctx) -> Result<bool, CoreError> {
    match ctx.query.get("format").map(str::trim) {
        None | Some("") => Ok(false),
        Some(f) if f.eq_ignore_ascii_case("entities") || f.eq_ignore_ascii_case("entity") => {
            Ok(true)
        }
        Some(f) if f.eq_ignore_ascii_case("references") || f.eq_ignore_ascii_case("reference") => {
            Ok(false)
        }
        Some(f) => Err(CoreError::invalid(
            "format",
            format!("format must be Entities or References, not '{f}'"),
        )),
    }
}

/// The URL of another page of this query: the caller's parameters in the caller's order,
/// `pageSize` and `page` replaced where they stood or appended (JSON.md C3, B9).
fn page_href(ctx: &Ctx, page_size: u64, page: u64) -> String {
    let mut parts = Vec::new();
    let (mut size_done, mut page_done) = (false, false);
    for (k, v) in raw_pairs(ctx.raw_query.as_deref()) {
        if k.eq_ignore_ascii_case("pagesize") {
            if !size_done {
                parts.push(format!("{}={page_size}", url_encode(&k)));
                size_done = true;
            }
        } else if k.eq_ignore_ascii_case("page") {
            if !page_done {
                parts.push(format!("{}={page}", url_encode(&k)));
                page_done = true;
            }
        } else {
            parts.push(format!("{}={}", url_encode(&k), url_encode(&v)));
        }
    }
    if !size_done {
        parts.push(format!("pageSize={page_size}"));
    }
    if !page_done {
        parts.push(format!("page={page}"));
    }
    ctx.href(format_args!("/query?{}", parts.join("&")))
}

fn paging_info(ctx: &Ctx, p: &QueryPage) -> wire::PagingInfo {
    let link = |rel: &'static str, page: u64| {
        Link::fixed(rel, page_href(ctx, p.page_size, page), None, None)
    };
    let mut links = vec![link("First", 1)];
    if p.page > 1 {
        links.push(link("Previous", (p.page - 1).min(p.pages_count)));
    }
    if p.page < p.pages_count {
        links.push(link("Next", p.page + 1));
    }
    links.push(link("Last", p.pages_count));
    wire::PagingInfo {
        links,
        page_num: p.page as i64,
        page_size: p.page_size as i64,
        pages_count: p.pages_count as i64,
    }
}

/// The `Entities` member (and its item element) of a type emrest holds no records of.
fn empty_member(t: QueryType) -> (&'static str, &'static str) {
    match t {
        QueryType::Job => ("Jobs", "Job"),
        QueryType::BackupJobSession => ("BackupJobSessions", "BackupJobSession"),
        QueryType::BackupTaskSession => ("BackupTaskSessions", "BackupTaskSession"),
        QueryType::Repository => ("Repositories", "Repository"),
        QueryType::VmRestorePoint => ("VmRestorePoints", "VmRestorePoint"),
        QueryType::RestorePoint => ("RestorePoints", "RestorePoint"),
        QueryType::Backup => ("Backups", "Backup"),
        QueryType::BackupFile => ("BackupFiles", "BackupFile"),
        QueryType::BackupServer => ("BackupServers", "BackupServer"),
        QueryType::HierarchyRoot => ("HierarchyRoots", "HierarchyRoot"),
        QueryType::RestoreSession => ("RestoreSessions", "RestoreSession"),
        QueryType::Task => ("Tasks", "Task"),
        QueryType::ObjectInJob => ("ObjectsInJob", "ObjectInJob"),
    }
}

fn entities<T, E: wire::Entity>(ctx: &Ctx, items: &[T], to: fn(&Ctx, &T) -> E) -> TypedList {
    let v: Vec<E> = items.iter().map(|i| to(ctx, i)).collect();
    TypedList::of(&v)
}

fn refs<T>(ctx: &Ctx, items: &[T], to: fn(&Ctx, &T) -> EntityRef) -> Vec<EntityRef> {
    items.iter().map(|i| to(ctx, i)).collect()
}

/// `GET /query?type=…` (query_service.md). Tasks, which have no reference form, always come
/// as entities under `Resources`.
pub(super) fn get_query(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let as_entities = wants_entities(ctx)?;
    let q = &ctx.query;
    let req = QueryRequest {
        type_name: q.get("type").unwrap_or(""),
        filter: q.get("filter"),
        sort_asc: q.get("sortAsc"),
        sort_desc: q.get("sortDesc"),
        page_size: q.get("pageSize"),
        page: q.get("page"),
    };
    let page = ctx.core.as_caller(caller).query(&req)?;
    let content = match &page.items {
        QueryItems::Tasks(v) => {
            QueryContent::Tasks(v.iter().map(|t| task_rep(ctx, caller, t)).collect())
        }
        QueryItems::ObjectsInJob(v) => QueryContent::ObjectsInJob(wire::ObjectsInJob(
            v.iter()
                .map(|(job, _, o)| super::jobs::object_in_job_of(ctx, *job, o))
                .collect(),
        )),
        items if as_entities => QueryContent::Entities(match items {
            QueryItems::VmRestorePoints(v) => entities(ctx, v, vm_point_entity),
            QueryItems::RestorePoints(v) => entities(ctx, v, restore_point_entity),
            QueryItems::Backups(v) => entities(ctx, v, backup_entity),
            QueryItems::BackupFiles(v) => entities(ctx, v, backup_file_entity),
            QueryItems::BackupServers(v) => entities(ctx, v, backup_server_entity),
            QueryItems::HierarchyRoots(v) => entities(ctx, v, hierarchy_root_entity),
            QueryItems::RestoreSessions(v) => entities(ctx, v, restore_session_entity),
            QueryItems::Jobs(v) => entities(ctx, v, job_entity),
            QueryItems::BackupJobSessions(v) => entities(ctx, v, backup_session_entity),
            QueryItems::BackupTaskSessions(v) => entities(ctx, v, task_session_entity),
            QueryItems::Repositories(v) => entities(ctx, v, repository_entity),
            QueryItems::Tasks(_) | QueryItems::ObjectsInJob(_) | QueryItems::Empty(_) => {
                let (member, item) = empty_member(page.query_type);
                TypedList::empty(member, item)
            }
        }),
        items => QueryContent::Refs(match items {
            QueryItems::VmRestorePoints(v) => refs(ctx, v, vm_point_ref),
            QueryItems::RestorePoints(v) => refs(ctx, v, restore_point_ref),
            QueryItems::Backups(v) => refs(ctx, v, backup_ref),
            QueryItems::BackupFiles(v) => refs(ctx, v, backup_file_ref),
            QueryItems::BackupServers(v) => refs(ctx, v, backup_server_ref),
            QueryItems::HierarchyRoots(v) => refs(ctx, v, hierarchy_root_ref),
            QueryItems::RestoreSessions(v) => refs(ctx, v, restore_session_ref),
            QueryItems::Jobs(v) => refs(ctx, v, job_ref),
            QueryItems::BackupJobSessions(v) => refs(ctx, v, backup_session_ref),
            QueryItems::BackupTaskSessions(v) => refs(ctx, v, task_session_ref),
            QueryItems::Repositories(v) => refs(ctx, v, repository_ref),
            QueryItems::Tasks(_) | QueryItems::ObjectsInJob(_) | QueryItems::Empty(_) => Vec::new(),
        }),
    };
    Ok(Reply::ok(
        ctx.format,
        &wire::QueryResult {
            content,
            paging_info: paging_info(ctx, &page),
        },
    ))
}

fn logon_session_link(ctx: &Ctx, caller: &Caller) -> Link {
    Link::fixed(
        "Up",
        ctx.href(format_args!("/logonSessions/{}", caller.session_id())),
        None,
        Some("LogonSession"),
    )
}

/// `GET /querySvc`: a link per type, entities 15 a page sorted by name, as querysvc.md's
/// example lists them (tasks sorted by `TaskUid`).
pub(super) fn get_query_svc(ctx: &Ctx, caller: &Caller) -> Reply {
    let mut links = vec![logon_session_link(ctx, caller)];
    for t in QueryType::ALL {
        let sort = if t == QueryType::Task {
            "TaskUid"
        } else {
            "name"
        };
        links.push(Link::new(
            "Down",
            ctx.href(format_args!(
                "/query?type={}&format=Entities&sortAsc={sort}&pageSize=15&page=1",
                t.name()
            )),
            None,
            Some(&format!("{}List", t.name())),
        ));
    }
    Reply::ok(
        ctx.format,
        &wire::ServiceDocument::query_service(ctx.url("/querySvc"), links),
    )
}

/// `GET /lookupSvc`: a link per hierarchy root to look up its VMs (lookupsvc.md).
pub(super) fn get_lookup_svc(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let mut links = vec![logon_session_link(ctx, caller)];
    for r in ctx.core.infrastructure().hierarchy_roots()? {
        links.push(Link::fixed(
            "Down",
            ctx.href(format_args!(
                "/lookup?host={}&name=*&type=Vm",
                url_encode(&wire::urn("HierarchyRoot", r.id))
            )),
            None,
            Some("HierarchyItemList"),
        ));
    }
    Ok(Reply::ok(
        ctx.format,
        &wire::ServiceDocument::lookup_service(ctx.url("/lookupSvc"), links),
    ))
}

/// `GET /lookup?host=…&name=…&type=…` or `?hierarchyRef=…` (get_lookup.md). The client
/// veeam_em sends `hierachyRef` (JSON.md B10); both spellings are read.
pub(super) fn get_lookup(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let q = &ctx.query;
    let req = LookupRequest {
        host: q.get("host"),
        hierarchy_ref: q.get("hierarchyRef").or_else(|| q.get("hierachyRef")),
        name: q.get("name"),
        type_: q.get("type"),
    };
    let items = ctx
        .core
        .as_caller(caller)
        .lookup(&req)?
        .into_iter()
        .map(|i| wire::HierarchyItem {
            object_ref: i.object_ref,
            object_type: i.object_type,
            object_name: i.object_name,
        })
        .collect();
    Ok(Reply::ok(
        ctx.format,
        &wire::EntityList::<wire::HierarchyItem>(items),
    ))
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn values_encode_as_dotnet_does() {
        assert_eq!(
            url_encode("CreationTime>=\"2026-06-14T21:07:25\""),
            "CreationTime%3e%3d%222026-06-14T21%3a07%3a25%22"
        );
        assert_eq!(
            url_encode("(ManagedServerType==VC;Name==\"a b\")"),
            "(ManagedServerType%3d%3dVC%3bName%3d%3d%22a+b%22)"
        );
        assert_eq!(url_encode("é&"), "%c3%a9%26");
    }
}
