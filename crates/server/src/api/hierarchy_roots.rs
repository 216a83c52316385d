//! `/hierarchyRoots` (hierarchyroots.md).

use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::HierarchyRootId;
use crate::reply::Reply;
use emrest_core::{CoreError, HierarchyRootRecord};
use emrest_wire as wire;
use emrest_wire::EntityRef;

fn hierarchy_root_res(r: &HierarchyRootRecord) -> Res<'_> {
    Res {
        kind: "HierarchyRoot",
        collection: "hierarchyRoots",
        id: r.id,
        name: &r.name,
    }
}

pub(super) fn hierarchy_root_ref(ctx: &Ctx, r: &HierarchyRootRecord) -> EntityRef {
    let sname = server_name(ctx, r.backup_server_id);
    hierarchy_root_res(r).reference(ctx, vec![server_link(ctx, r.backup_server_id, sname)])
}

pub(super) fn hierarchy_root_entity(ctx: &Ctx, r: &HierarchyRootRecord) -> wire::HierarchyRoot {
    let res = hierarchy_root_res(r);
    let sname = server_name(ctx, r.backup_server_id);
    wire::HierarchyRoot {
        href: res.entity_href(ctx),
        name: r.name.clone(),
        uid: res.uid(),
        links: vec![
            server_link(ctx, r.backup_server_id, sname),
            res.alternate(ctx),
        ],
        hierarchy_root_id: r.id.to_string(),
        unique_id: r.unique_id.clone(),
        host_type: r.kind.host_type().to_string(),
    }
}

/// `GET /hierarchyRoots`.
pub(super) fn list_hierarchy_roots(ctx: &Ctx) -> Result<Reply, CoreError> {
    let v = ctx.core.infrastructure().hierarchy_roots()?;
    Ok(collection(
        ctx,
        &v,
        hierarchy_root_ref,
        hierarchy_root_entity,
    ))
}

/// `GET /hierarchyRoots/{ID}`.
pub(super) fn get_hierarchy_root(ctx: &Ctx, id: HierarchyRootId) -> Result<Reply, CoreError> {
    let r = ctx.core.infrastructure().hierarchy_root(id.0)?;
    Ok(single(ctx, &r, hierarchy_root_ref, hierarchy_root_entity))
}
