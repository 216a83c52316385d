//! `/restorePoints` (restorepoints.md).

use super::*;

pub(super) fn restore_point_name(p: &RestorePointRecord) -> String {
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
