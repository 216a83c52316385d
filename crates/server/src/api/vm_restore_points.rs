//! `/vmRestorePoints` (vmrestorepoints.md); the restore action lives in `restore`.

use super::{collection, server_link, server_name, single, stream_collection, Ctx, Res};
use crate::ids::VmRestorePointId;
use crate::reply::Reply;
use emrest_core::{Caller, CoreError, VmRestorePointRecord};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn vm_point_name(p: &VmRestorePointRecord) -> String {
    emrest_core::catalog::vm_point_name(&p.vm_name, p.created)
}

fn vm_point_up_links(ctx: &Ctx, p: &VmRestorePointRecord) -> Vec<Link> {
    let rp_name = wire::UtcTime::from_unix_millis(p.restore_point_created).restore_point_name();
    vec![
        server_link(
            ctx,
            p.backup_server_id,
            server_name(ctx, p.backup_server_id),
        ),
        Link::fixed(
            "Up",
            ctx.href(format_args!("/restorePoints/{}", p.restore_point_id)),
            Some(&rp_name),
            Some("RestorePointReference"),
        ),
        Link::fixed(
            "Up",
            ctx.href(format_args!("/backupFiles/{}", p.backup_file_id)),
            Some(&p.backup_file_name),
            Some("BackupFileReference"),
        ),
    ]
}

pub(super) fn vm_point_ref(ctx: &Ctx, p: &VmRestorePointRecord) -> EntityRef {
    let name = vm_point_name(p);
    let res = Res {
        kind: "VmRestorePoint",
        collection: "vmRestorePoints",
        id: p.id,
        name: &name,
    };
    res.reference(ctx, vm_point_up_links(ctx, p))
}

pub(super) fn vm_point_entity(ctx: &Ctx, p: &VmRestorePointRecord) -> wire::VmRestorePoint {
    let name = vm_point_name(p);
    let r = Res {
        kind: "VmRestorePoint",
        collection: "vmRestorePoints",
        id: p.id,
        name: &name,
    };
    let mut links = Vec::with_capacity(5);
    links.push(Link::fixed(
        "Restore",
        ctx.href(format_args!("{}?action=restore", r.path())),
        None,
        None,
    ));
    links.extend(vm_point_up_links(ctx, p));
    links.push(r.alternate(ctx));
    let href = r.entity_href(ctx);
    let uid = r.uid();
    let (algorithm, point_type) = match p.point_type {
        emrest_core::PointType::Full => ("Full", "Full"),
        emrest_core::PointType::Increment => ("Incremental", "Increment"),
    };
    wire::VmRestorePoint {
        href,
        name,
        uid,
        vm_display_name: Some(p.vm_name.clone()),
        links,
        creation_time_utc: wire::UtcTime::from_unix_millis(p.created),
        vm_name: Some(p.vm_name.clone()),
        algorithm: algorithm.into(),
        point_type: point_type.into(),
        hierarchy_obj_ref: Some(p.hierarchy_obj_ref.clone()),
    }
}

/// `GET /vmRestorePoints`: the VM restore points the caller may see (its restore scope).
pub(super) fn list_vm_restore_points(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let view = ctx.core.as_caller(caller);
    if view.vm_restore_points_at_most()? > ctx.stream_above {
        let (core, caller) = (ctx.core.clone(), caller.clone());
        return Ok(stream_collection(
            ctx,
            vm_point_ref,
            vm_point_entity,
            move |each| {
                core.as_caller(&caller)
                    .vm_restore_points_by_batch(None, each)
            },
        ));
    }
    let v = view.vm_restore_points(None)?;
    Ok(collection(ctx, &v, vm_point_ref, vm_point_entity))
}

/// `GET /vmRestorePoints/{ID}`.
pub(super) fn get_vm_restore_point(
    ctx: &Ctx,
    caller: &Caller,
    id: VmRestorePointId,
) -> Result<Reply, CoreError> {
    let p = ctx.core.as_caller(caller).vm_restore_point(id.0)?;
    Ok(single(ctx, &p, vm_point_ref, vm_point_entity))
}
