//! `/backups` (backups.md).

use super::restore_points::{restore_point_entity, restore_point_ref};
use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::BackupId;
use crate::reply::Reply;
use emrest_core::{BackupRecord, Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn backup_res(b: &BackupRecord) -> Res<'_> {
    Res {
        kind: "Backup",
        collection: "backups",
        id: b.id,
        name: &b.name,
    }
}

pub(super) fn backup_ref(ctx: &Ctx, b: &BackupRecord) -> EntityRef {
    let name = server_name(ctx, b.backup_server_id);
    backup_res(b).reference(ctx, vec![server_link(ctx, b.backup_server_id, name)])
}

pub(super) fn backup_entity(ctx: &Ctx, b: &BackupRecord) -> wire::Backup {
    let r = backup_res(b);
    let name = server_name(ctx, b.backup_server_id);
    wire::Backup {
        href: r.entity_href(ctx),
        name: b.name.clone(),
        uid: r.uid(),
        links: vec![
            server_link(ctx, b.backup_server_id, name),
            r.alternate(ctx),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/restorePoints", r.path())),
                None,
                Some("RestorePointReferenceList"),
            ),
        ],
        platform: b.platform.wire_platform().to_string(),
        backup_type: "Standard".into(),
    }
}

/// `GET /backups`: the backups the caller may see.
pub(super) fn list_backups(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).backups()?;
    Ok(collection(ctx, &v, backup_ref, backup_entity))
}

/// `GET /backups/{ID}`.
pub(super) fn get_backup(ctx: &Ctx, caller: &Caller, id: BackupId) -> Result<Reply, CoreError> {
    let b = ctx.core.as_caller(caller).backup(id.0)?;
    Ok(single(ctx, &b, backup_ref, backup_entity))
}

/// `GET /backups/{ID}/restorePoints`.
pub(super) fn list_backup_restore_points(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupId,
) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).restore_points(Some(id.0))?;
    Ok(collection(ctx, &v, restore_point_ref, restore_point_entity))
}
