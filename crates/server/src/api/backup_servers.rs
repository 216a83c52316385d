//! `/backupServers` (backupservers.md).

use super::jobs::{job_entity, job_ref};
use super::repositories::{repository_entity, repository_ref};
use super::{collection, single, Ctx, Res};
use crate::ids::BackupServerId;
use crate::reply::Reply;
use emrest_core::{BackupServerRecord, Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn backup_server_res(s: &BackupServerRecord) -> Res<'_> {
    Res {
        kind: "BackupServer",
        collection: "backupServers",
        id: s.id,
        name: &s.name,
    }
}

pub(super) fn backup_server_ref(ctx: &Ctx, s: &BackupServerRecord) -> EntityRef {
    backup_server_res(s).reference(ctx, Vec::new())
}

pub(super) fn backup_server_entity(ctx: &Ctx, s: &BackupServerRecord) -> wire::BackupServer {
    let r = backup_server_res(s);
    wire::BackupServer {
        href: r.entity_href(ctx),
        name: s.name.clone(),
        uid: r.uid(),
        // The Down links of get_backupservers_id.md that emrest serves (no managed servers,
        // credentials or passwords; no Edit/Delete: servers are registered by the CLI).
        links: vec![
            r.alternate(ctx),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/jobs", r.path())),
                None,
                Some("JobReferenceList"),
            ),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/repositories", r.path())),
                None,
                Some("RepositoryReferenceList"),
            ),
        ],
        description: s.description.clone(),
        port: i64::from(s.port),
        version: s.version.clone(),
        wcf_port: None,
        vbr_certificate_thumbprint: None,
    }
}

/// `GET /backupServers`.
pub(super) fn list_backup_servers(ctx: &Ctx) -> Result<Reply, CoreError> {
    let v = ctx.core.infrastructure().backup_servers()?;
    Ok(collection(ctx, &v, backup_server_ref, backup_server_entity))
}

/// `GET /backupServers/{ID}`.
pub(super) fn get_backup_server(ctx: &Ctx, id: BackupServerId) -> Result<Reply, CoreError> {
    let s = ctx.core.infrastructure().backup_server(id.0)?;
    Ok(single(ctx, &s, backup_server_ref, backup_server_entity))
}

/// `GET /backupServers/{ID}/jobs`: the jobs of one backup server (get_backupservers_id.md).
pub(super) fn list_backup_server_jobs(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupServerId,
) -> Result<Reply, CoreError> {
    let server = ctx.core.infrastructure().backup_server(id.0)?;
    let jobs: Vec<_> = ctx
        .core
        .as_caller(caller)
        .jobs()?
        .into_iter()
        .filter(|j| j.backup_server_id == server.id)
        .collect();
    Ok(collection(ctx, &jobs, job_ref, job_entity))
}

/// `GET /backupServers/{ID}/repositories`: the repositories of one backup server
/// (get_backupservers_id.md).
pub(super) fn list_backup_server_repositories(
    ctx: &Ctx,
    id: BackupServerId,
) -> Result<Reply, CoreError> {
    let server = ctx.core.infrastructure().backup_server(id.0)?;
    let repos: Vec<_> = ctx
        .core
        .infrastructure()
        .backup_repositories()?
        .into_iter()
        .filter(|r| r.backup_server_id == server.id)
        .collect();
    Ok(collection(ctx, &repos, repository_ref, repository_entity))
}
