//! `/repositories` (repositories.md, get_repositories_id.md).

use super::backups::{backup_entity, backup_ref};
use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::RepositoryId;
use crate::reply::Reply;
use emrest_core::summary::RepositoryRecord;
use emrest_core::{Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn repository_res(r: &RepositoryRecord) -> Res<'_> {
    Res {
        kind: "Repository",
        collection: "repositories",
        id: r.id,
        name: &r.name,
    }
}

/// Up to the owning backup server first (veeam_exporter-style clients read `Links[0].Name`).
fn up(ctx: &Ctx, r: &RepositoryRecord) -> Link {
    server_link(
        ctx,
        r.backup_server_id,
        server_name(ctx, r.backup_server_id),
    )
}

fn backups_link(ctx: &Ctx, r: &RepositoryRecord) -> Link {
    Link::fixed(
        "Down",
        ctx.href(format_args!("{}/backups", repository_res(r).path())),
        None,
        Some("BackupReferenceList"),
    )
}

pub(super) fn repository_ref(ctx: &Ctx, r: &RepositoryRecord) -> EntityRef {
    repository_res(r).reference(ctx, vec![up(ctx, r)])
}

pub(super) fn repository_entity(ctx: &Ctx, r: &RepositoryRecord) -> wire::Repository {
    let res = repository_res(r);
    wire::Repository {
        href: res.entity_href(ctx),
        name: r.name.clone(),
        uid: res.uid(),
        // No /replicas link: emrest keeps no replicas (get_repositories_id.md lists it).
        links: vec![up(ctx, r), res.alternate(ctx), backups_link(ctx, r)],
        capacity: clamp(r.capacity),
        free_space: clamp(r.free_space),
        kind: r.kind.to_string(),
    }
}

/// Int64 on the wire.
pub(super) fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `GET /repositories`.
pub(super) fn list_repositories(ctx: &Ctx) -> Result<Reply, CoreError> {
    let v = ctx.core.infrastructure().backup_repositories()?;
    Ok(collection(ctx, &v, repository_ref, repository_entity))
}

/// `GET /repositories/{ID}`.
pub(super) fn get_repository(ctx: &Ctx, id: RepositoryId) -> Result<Reply, CoreError> {
    let r = ctx.core.infrastructure().backup_repository(id.0)?;
    Ok(single(ctx, &r, repository_ref, repository_entity))
}

/// `GET /repositories/{ID}/backups`: emrest's one repository holds every backup.
pub(super) fn list_repository_backups(
    ctx: &Ctx,
    caller: &Caller,
    id: RepositoryId,
) -> Result<Reply, CoreError> {
    ctx.core.infrastructure().backup_repository(id.0)?;
    let v = ctx.core.as_caller(caller).backups()?;
    Ok(collection(ctx, &v, backup_ref, backup_entity))
}
