//! `/backupFiles` (backupfiles.md).

use super::{collection, server_link, server_name, single, Ctx, Res};
use crate::ids::BackupFileId;
use crate::reply::Reply;
use emrest_core::{BackupFileRecord, Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};

fn backup_file_res(f: &BackupFileRecord) -> Res<'_> {
    Res {
        kind: "BackupFile",
        collection: "backupFiles",
        id: f.id,
        name: &f.file_name,
    }
}

fn backup_file_up(ctx: &Ctx, f: &BackupFileRecord) -> Vec<Link> {
    let sname = server_name(ctx, f.backup_server_id);
    vec![
        server_link(ctx, f.backup_server_id, sname),
        Link::fixed(
            "Up",
            ctx.href(format_args!("/backups/{}", f.backup_id)),
            Some(&f.backup_name),
            Some("BackupReference"),
        ),
    ]
}

pub(super) fn backup_file_ref(ctx: &Ctx, f: &BackupFileRecord) -> EntityRef {
    backup_file_res(f).reference(ctx, backup_file_up(ctx, f))
}

pub(super) fn backup_file_entity(ctx: &Ctx, f: &BackupFileRecord) -> wire::BackupFile {
    let r = backup_file_res(f);
    let mut links = backup_file_up(ctx, f);
    links.push(r.alternate(ctx));
    links.push(Link::fixed(
        "Related",
        ctx.href(format_args!("/restorePoints/{}", f.restore_point_id)),
        None,
        Some("RestorePointReference"),
    ));
    let ratio = |a: u64, b: u64| {
        if a == 0 {
            1.0
        } else {
            (b as f64 / a as f64 * 100.0).round() / 100.0
        }
    };
    wire::BackupFile {
        href: r.entity_href(ctx),
        name: f.file_name.clone(),
        uid: r.uid(),
        links,
        file_path: format!("repo/{}/{}", f.backup_name, f.file_name),
        backup_size: f.backup_size as i64,
        data_size: f.data_size as i64,
        deduplication_ratio: 1.0,
        compress_ratio: ratio(f.backup_size, f.data_size),
        creation_time_utc: wire::UtcTime::from_unix_millis(f.created),
        file_type: f.file_name.rsplit('.').next().unwrap_or("vbk").to_string(),
    }
}

/// `GET /backupFiles`: the backup files the caller may see.
pub(super) fn list_backup_files(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).backup_files(None)?;
    Ok(collection(ctx, &v, backup_file_ref, backup_file_entity))
}

/// `GET /backupFiles/{ID}`.
pub(super) fn get_backup_file(
    ctx: &Ctx,
    caller: &Caller,
    id: BackupFileId,
) -> Result<Reply, CoreError> {
    let f = ctx.core.as_caller(caller).backup_file(id.0)?;
    Ok(single(ctx, &f, backup_file_ref, backup_file_entity))
}
