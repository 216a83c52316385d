//! `/hierarchyRoots` (hierarchyroots.md).

use super::*;

pub(super) fn hierarchy_root_res(r: &HierarchyRootRecord) -> Res<'_> {
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
