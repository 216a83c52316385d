//! `/backupServers` (backupservers.md).

use super::*;

pub(super) fn backup_server_res(s: &BackupServerRecord) -> Res<'_> {
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
        links: vec![
            r.alternate(ctx),
            Link::new(
                "Down",
                ctx.url(&format!("{}/backups", r.path())),
                None,
                Some("BackupReferenceList"),
            ),
        ],
        description: s.description.clone(),
        port: i64::from(s.port),
        version: s.version.clone(),
        wcf_port: None,
        vbr_certificate_thumbprint: None,
    }
}
