//! `/repositories` (repositories.md, get_repositories_id.md).

use super::*;
use emrest_core::summary::RepositoryRecord;

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
