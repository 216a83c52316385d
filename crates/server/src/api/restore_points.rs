//! `/restorePoints` (restorepoints.md).

use super::backup_files::{backup_file_entity, backup_file_ref};
use super::vm_restore_points::{vm_point_entity, vm_point_ref};
use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::RestorePointId;
use crate::reply::Reply;
use emrest_core::{Caller, CoreError, RestorePointRecord};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn restore_point_name(p: &RestorePointRecord) -> String {
    wire::UtcTime::from_unix_millis(p.created).restore_point_name()
}

pub(super) fn restore_point_ref(ctx: &Ctx, p: &RestorePointRecord) -> EntityRef {
    let name = restore_point_name(p);
    let res = Res {
        kind: "RestorePoint",
        collection: "restorePoints",
        id: p.id,
        name: &name,
    };
    res.reference(
        ctx,
        vec![Link::fixed(
            "Up",
            ctx.href(format_args!("/backups/{}", p.backup_id)),
            Some(&p.backup_name),
            Some("BackupReference"),
        )],
    )
}

pub(super) fn restore_point_entity(ctx: &Ctx, p: &RestorePointRecord) -> wire::RestorePoint {
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
            Link::fixed(
                "Up",
                ctx.href(format_args!("/backups/{}", p.backup_id)),
                Some(&p.backup_name),
                Some("BackupReference"),
            ),
            server_link(ctx, p.backup_server_id, sname),
            r.alternate(ctx),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/vmRestorePoints", r.path())),
                None,
                Some("VmRestorePointReferenceList"),
            ),
            Link::fixed(
                "Down",
                ctx.href(format_args!("{}/backupFiles", r.path())),
                None,
                Some("BackupFileReferenceList"),
            ),
        ],
        backup_date_utc: wire::UtcTime::from_unix_millis(p.created),
    }
}

/// `GET /restorePoints`: the restore points the caller may see.
pub(super) fn list_restore_points(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).restore_points(None)?;
    Ok(collection(ctx, &v, restore_point_ref, restore_point_entity))
}

/// `GET /restorePoints/{ID}`.
pub(super) fn get_restore_point(
    ctx: &Ctx,
    caller: &Caller,
    id: RestorePointId,
) -> Result<Reply, CoreError> {
    let p = ctx.core.as_caller(caller).restore_point(id.0)?;
    Ok(single(ctx, &p, restore_point_ref, restore_point_entity))
}

/// `GET /restorePoints/{ID}/vmRestorePoints`.
pub(super) fn list_restore_point_vm_restore_points(
    ctx: &Ctx,
    caller: &Caller,
    id: RestorePointId,
) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).vm_restore_points(Some(id.0))?;
    Ok(collection(ctx, &v, vm_point_ref, vm_point_entity))
}

/// `GET /restorePoints/{ID}/backupFiles`.
pub(super) fn list_restore_point_backup_files(
    ctx: &Ctx,
    caller: &Caller,
    id: RestorePointId,
) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).backup_files(Some(id.0))?;
    Ok(collection(ctx, &v, backup_file_ref, backup_file_entity))
}
