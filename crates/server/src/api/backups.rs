//! `/backups` (backups.md).

use super::*;

pub(super) fn backup_res(b: &BackupRecord) -> Res<'_> {
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
