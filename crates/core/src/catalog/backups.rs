//! Backup servers, hierarchy roots, backups, restore points, backup files, VM restore points
//! and their disks: statements and row mapping.

use super::{uuid_col, Catalog};
use crate::error::CoreResult;
use crate::model::*;
use emrest_platform::{PlatformKind, PowerState, VmKey};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

fn platform_str(p: PlatformKind) -> &'static str {
    p.host_type()
}

fn platform_col(row: &Row, i: usize) -> rusqlite::Result<PlatformKind> {
    let s: String = row.get(i)?;
    PlatformKind::from_host_type(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown platform {s}").into(),
        )
    })
}

fn power_str(p: PowerState) -> &'static str {
    match p {
        PowerState::PoweredOn => "PoweredOn",
        PowerState::PoweredOff => "PoweredOff",
    }
}

pub(crate) const VM_POINT_SELECT: &str = "SELECT v.id, v.restore_point_id, r.backup_id, b.backup_server_id, f.id, f.file_name, r.created,
        v.vm_root, v.vm_ref, v.platform, v.vm_name, v.datastore, v.storage_profile, v.power,
        v.created, v.point_type, v.obj_ref
   FROM vm_restore_points v JOIN restore_points r ON r.id = v.restore_point_id
   JOIN backups b ON b.id = r.backup_id JOIN backup_files f ON f.restore_point_id = r.id";

/// How many VM restore points there are: kept by triggers (migration 4), no row is read.
pub(crate) const VM_POINT_COUNT: &str = "SELECT n FROM row_counts WHERE name = 'vm_restore_points'";

pub(crate) const RP_SELECT: &str =
    "SELECT r.id, r.backup_id, b.name, b.backup_server_id, r.created, r.point_type
   FROM restore_points r JOIN backups b ON b.id = r.backup_id";

pub(crate) const FILE_SELECT: &str = "SELECT f.id, r.backup_id, b.name, b.backup_server_id, f.restore_point_id, f.file_name,
        f.backup_size, f.data_size, f.created
   FROM backup_files f JOIN restore_points r ON r.id = f.restore_point_id JOIN backups b ON b.id = r.backup_id";

/// ` WHERE col = ?1` and its argument when a parent is named, nothing otherwise: a listing of
/// one parent's children then uses the parent's index (`?1 IS NULL OR col = ?1` reads every
/// row of a million-point catalog to list a hundred).
fn one_of(parent: Option<Uuid>, col: &str) -> (String, Vec<String>) {
    match parent {
        Some(id) => (format!(" WHERE {col} = ?1"), vec![id.to_string()]),
        None => (String::new(), Vec::new()),
    }
}

/// Name of a VM restore point as Enterprise Manager shows it: `vm@yyyy-mm-dd hh:mm:ss`.
pub fn vm_point_name(vm_name: &str, created: Millis) -> String {
    format!("{vm_name}@{}", crate::time::session_stamp(created))
}

pub(crate) fn vm_point_row(row: &Row) -> rusqlite::Result<VmRestorePointRecord> {
    let storage_profile: Option<String> = row.get(12)?;
    let power: String = row.get(13)?;
    Ok(VmRestorePointRecord {
        id: uuid_col(row, 0)?,
        restore_point_id: uuid_col(row, 1)?,
        backup_id: uuid_col(row, 2)?,
        backup_server_id: uuid_col(row, 3)?,
        backup_file_id: uuid_col(row, 4)?,
        backup_file_name: row.get(5)?,
        restore_point_created: row.get(6)?,
        vm: VmKey {
            root: uuid_col(row, 7)?,
            object_ref: row.get(8)?,
        },
        platform: platform_col(row, 9)?,
        vm_name: row.get(10)?,
        datastore: row.get(11)?,
        storage_profile,
        power: if power == "PoweredOn" {
            PowerState::PoweredOn
        } else {
            PowerState::PoweredOff
        },
        created: row.get(14)?,
        point_type: PointType::from_db(row.get(15)?),
        hierarchy_obj_ref: row.get(16)?,
        disks: Vec::new(),
    })
}

pub(crate) fn rp_row(row: &Row) -> rusqlite::Result<RestorePointRecord> {
    Ok(RestorePointRecord {
        id: uuid_col(row, 0)?,
        backup_id: uuid_col(row, 1)?,
        backup_name: row.get(2)?,
        backup_server_id: uuid_col(row, 3)?,
        created: row.get(4)?,
        point_type: PointType::from_db(row.get(5)?),
    })
}

pub(crate) fn file_row(row: &Row) -> rusqlite::Result<BackupFileRecord> {
    Ok(BackupFileRecord {
        id: uuid_col(row, 0)?,
        backup_id: uuid_col(row, 1)?,
        backup_name: row.get(2)?,
        backup_server_id: uuid_col(row, 3)?,
        restore_point_id: uuid_col(row, 4)?,
        file_name: row.get(5)?,
        backup_size: row.get::<_, i64>(6)? as u64,
        data_size: row.get::<_, i64>(7)? as u64,
        created: row.get(8)?,
    })
}

/// A new VM restore point to record, with its disks.
pub struct NewVmPoint {
    pub id: Uuid,
    pub vm: VmKey,
    pub platform: PlatformKind,
    pub vm_name: String,
    pub datastore: String,
    pub storage_profile: Option<String>,
    pub power: PowerState,
    pub obj_ref: String,
    pub disks: Vec<PointDisk>,
}

impl Catalog {
    // ---- backup servers and hierarchy roots ----

    /// Register a backup server.
    pub fn insert_backup_server(&self, s: &BackupServerRecord) -> CoreResult<()> {
        self.conn()?.execute(
            "INSERT INTO backup_servers (id, name, description, port, version) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.id.to_string(), s.name, s.description, s.port, s.version],
        )?;
        Ok(())
    }

    /// All backup servers, by name.
    pub fn backup_servers(&self) -> CoreResult<Vec<BackupServerRecord>> {
        self.with_reader(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, name, description, port, version FROM backup_servers ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                Ok(BackupServerRecord {
                    id: uuid_col(r, 0)?,
                    name: r.get(1)?,
                    description: r.get(2)?,
                    port: r.get(3)?,
                    version: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Attach a hierarchy root of the inventory to a backup server.
    pub fn insert_hierarchy_root(&self, root: Uuid, backup_server: Uuid) -> CoreResult<()> {
        self.conn()?.execute(
            "INSERT OR IGNORE INTO hierarchy_roots (id, backup_server_id) VALUES (?1, ?2)",
            params![root.to_string(), backup_server.to_string()],
        )?;
        Ok(())
    }

    /// (root id, backup server id) pairs.
    pub fn hierarchy_roots(&self) -> CoreResult<Vec<(Uuid, Uuid)>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached("SELECT id, backup_server_id FROM hierarchy_roots")?;
        let rows = st.query_map([], |r| Ok((uuid_col(r, 0)?, uuid_col(r, 1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- backups, restore points, files ----

    /// Find or create the backup a job writes into.
    pub fn ensure_backup(
        &self,
        name: &str,
        platform: PlatformKind,
        backup_server: Uuid,
        now: Millis,
    ) -> CoreResult<BackupRecord> {
        let c = self.conn()?;
        c.execute(
            "INSERT OR IGNORE INTO backups (id, name, platform, backup_server_id, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![Uuid::new_v4().to_string(), name, platform_str(platform), backup_server.to_string(), now],
        )?;
        Ok(c.query_row(
            "SELECT id, name, platform, backup_server_id, created FROM backups WHERE name = ?1",
            [name],
            backup_row,
        )?)
    }

    /// All backups, by name.
    pub fn backups(&self) -> CoreResult<Vec<BackupRecord>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(
            "SELECT id, name, platform, backup_server_id, created FROM backups ORDER BY name",
        )?;
        let rows = st.query_map([], backup_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Record one restore point with its backup file and VM points, in one transaction.
    pub fn insert_restore_point(
        &self,
        rp: &RestorePointRecord,
        file: &BackupFileRecord,
        vms: &[NewVmPoint],
    ) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO restore_points (id, backup_id, created, point_type) VALUES (?1, ?2, ?3, ?4)",
            params![rp.id.to_string(), rp.backup_id.to_string(), rp.created, rp.point_type.as_str()],
        )?;
        tx.execute(
            "INSERT INTO backup_files (id, restore_point_id, file_name, backup_size, data_size, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![file.id.to_string(), rp.id.to_string(), file.file_name, file.backup_size as i64, file.data_size as i64, file.created],
        )?;
        for v in vms {
            tx.execute(
                "INSERT INTO vm_restore_points (id, restore_point_id, vm_root, vm_ref, platform, vm_name, datastore, storage_profile, power, created, point_type, obj_ref)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![v.id.to_string(), rp.id.to_string(), v.vm.root.to_string(), v.vm.object_ref, platform_str(v.platform),
                        v.vm_name, v.datastore, v.storage_profile, power_str(v.power), rp.created, rp.point_type.as_str(), v.obj_ref],
            )?;
            for (i, d) in v.disks.iter().enumerate() {
                tx.execute(
                    "INSERT INTO point_disks (vm_restore_point_id, ordinal, name, size, index_name) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![v.id.to_string(), i as i64, d.name, d.size as i64, d.index],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Restore points, newest first; of one backup when given.
    pub fn restore_points(&self, backup: Option<Uuid>) -> CoreResult<Vec<RestorePointRecord>> {
        let c = self.conn()?;
        let (filter, args) = one_of(backup, "r.backup_id");
        let sql = format!("{RP_SELECT}{filter} ORDER BY r.created DESC, r.id");
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), rp_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One restore point.
    pub fn restore_point(&self, id: Uuid) -> CoreResult<Option<RestorePointRecord>> {
        let c = self.conn()?;
        let sql = format!("{RP_SELECT} WHERE r.id = ?1");
        let row = c
            .prepare_cached(&sql)?
            .query_row([id.to_string()], rp_row)
            .optional()?;
        Ok(row)
    }

    /// Backup files, newest first; of one restore point when given.
    pub fn backup_files(&self, point: Option<Uuid>) -> CoreResult<Vec<BackupFileRecord>> {
        let c = self.conn()?;
        let (filter, args) = one_of(point, "f.restore_point_id");
        let sql = format!("{FILE_SELECT}{filter} ORDER BY f.created DESC, f.id");
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), file_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One backup file.
    pub fn backup_file(&self, id: Uuid) -> CoreResult<Option<BackupFileRecord>> {
        let c = self.conn()?;
        let sql = format!("{FILE_SELECT} WHERE f.id = ?1");
        let row = c
            .prepare_cached(&sql)?
            .query_row([id.to_string()], file_row)
            .optional()?;
        Ok(row)
    }

    fn with_disks(
        c: &Connection,
        mut points: Vec<VmRestorePointRecord>,
    ) -> rusqlite::Result<Vec<VmRestorePointRecord>> {
        let mut st = c.prepare_cached(
            "SELECT name, size, index_name FROM point_disks WHERE vm_restore_point_id = ?1 ORDER BY ordinal",
        )?;
        for p in &mut points {
            let rows = st.query_map([p.id.to_string()], |r| {
                Ok(PointDisk {
                    name: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    index: r.get(2)?,
                })
            })?;
            p.disks = rows.collect::<Result<_, _>>()?;
        }
        Ok(points)
    }

    /// VM restore points, newest first; of one restore point when given.
    pub fn vm_restore_points(&self, point: Option<Uuid>) -> CoreResult<Vec<VmRestorePointRecord>> {
        let (filter, args) = one_of(point, "v.restore_point_id");
        let sql = format!("{VM_POINT_SELECT}{filter} ORDER BY v.created DESC, v.vm_name, v.id");
        self.with_reader(|c| {
            // One read transaction: the points and their disks from the same commit.
            let tx = c.unchecked_transaction()?;
            let mut points = {
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map(rusqlite::params_from_iter(args.iter()), vm_point_row)?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            // The disks of all of them in one statement, not one per point.
            let at: std::collections::HashMap<Uuid, usize> =
                points.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
            let mut st = tx.prepare_cached(&format!(
                "SELECT d.vm_restore_point_id, d.name, d.size, d.index_name
                   FROM point_disks d JOIN vm_restore_points v ON v.id = d.vm_restore_point_id{filter}
                  ORDER BY d.vm_restore_point_id, d.ordinal"
            ))?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                if let Some(&i) = at.get(&uuid_col(r, 0)?) {
                    points[i].disks.push(PointDisk {
                        name: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        index: r.get(3)?,
                    });
                }
            }
            Ok(points)
        })
    }

    /// The newest VM restore point of every VM that has one, with how many points the VM has:
    /// what the first point of each VM in [`Catalog::vm_restore_points`]'s order is (ties on
    /// the creation time go to the smaller name, then ID). Counted on the VM index alone, then
    /// one indexed read per VM: no pass over every point.
    pub fn newest_vm_points(&self) -> CoreResult<Vec<(VmRestorePointRecord, u64)>> {
        let newest = format!(
            "{VM_POINT_SELECT} WHERE v.vm_root = ?1 AND v.vm_ref = ?2 AND v.created = ?3
              ORDER BY v.vm_name, v.id LIMIT 1"
        );
        self.with_reader(|c| {
            // One read transaction: the counts and the points from the same commit.
            let tx = c.unchecked_transaction()?;
            let vms: Vec<(String, String, i64, i64)> = tx
                .prepare_cached(
                    "SELECT vm_root, vm_ref, count(*), max(created) FROM vm_restore_points
                      GROUP BY vm_root, vm_ref",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            let mut st = tx.prepare_cached(&newest)?;
            let mut points = Vec::with_capacity(vms.len());
            let mut counts = Vec::with_capacity(vms.len());
            for (root, object_ref, count, created) in vms {
                if let Some(p) = st
                    .query_row(params![root, object_ref, created], vm_point_row)
                    .optional()?
                {
                    points.push(p);
                    counts.push(count.max(0) as u64);
                }
            }
            drop(st);
            let points = Self::with_disks(&tx, points)?;
            Ok(points.into_iter().zip(counts).collect())
        })
    }

    /// How many VM restore points the catalog holds (kept by triggers: no scan).
    pub fn vm_restore_point_count(&self) -> CoreResult<u64> {
        self.with_reader(|c| {
            c.prepare_cached(VM_POINT_COUNT)?
                .query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| n.max(0) as u64)
    }

    /// [`Catalog::vm_restore_points`] a batch of at most `batch` at a time, in the same order,
    /// for a listing of any size in bounded memory. Each batch is read in its own short read
    /// transaction from where the last one ended (a range of the listing's order index, not an
    /// OFFSET), so no connection is held between batches; a point added or removed meanwhile
    /// shows or not as it would in a later listing. `each` answers whether to go on.
    pub fn vm_restore_points_by_batch(
        &self,
        point: Option<Uuid>,
        batch: usize,
        each: &mut dyn FnMut(Vec<VmRestorePointRecord>) -> CoreResult<bool>,
    ) -> CoreResult<()> {
        let parent = match point {
            Some(_) => "v.restore_point_id = ?1 AND ",
            None => "",
        };
        let first = format!(
            "{VM_POINT_SELECT} WHERE {parent}1 = 1 ORDER BY v.created DESC, v.vm_name, v.id LIMIT {batch}"
        );
        let next = format!(
            "{VM_POINT_SELECT} WHERE {parent}(v.created < ?{c} OR (v.created = ?{c} AND (v.vm_name > ?{n}
                OR (v.vm_name = ?{n} AND v.id > ?{i})))) ORDER BY v.created DESC, v.vm_name, v.id LIMIT {batch}",
            c = 1 + usize::from(point.is_some()),
            n = 2 + usize::from(point.is_some()),
            i = 3 + usize::from(point.is_some()),
        );
        let mut after: Option<(Millis, String, Uuid)> = None;
        loop {
            let points = self.with_reader(|c| {
                let tx = c.unchecked_transaction()?;
                let mut args: Vec<rusqlite::types::Value> = Vec::new();
                if let Some(p) = point {
                    args.push(p.to_string().into());
                }
                let sql = match &after {
                    None => &first,
                    Some((created, name, id)) => {
                        args.extend([
                            (*created).into(),
                            name.clone().into(),
                            id.to_string().into(),
                        ]);
                        &next
                    }
                };
                let points = {
                    let mut st = tx.prepare_cached(sql)?;
                    let rows = st.query_map(rusqlite::params_from_iter(args), vm_point_row)?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                Self::with_disks(&tx, points)
            })?;
            let Some(last) = points.last() else {
                return Ok(());
            };
            let full = points.len() == batch;
            after = Some((last.created, last.vm_name.clone(), last.id));
            if !each(points)? || !full {
                return Ok(());
            }
        }
    }

    /// One VM restore point with its disks.
    pub fn vm_restore_point(&self, id: Uuid) -> CoreResult<Option<VmRestorePointRecord>> {
        let sql = format!("{VM_POINT_SELECT} WHERE v.id = ?1");
        self.with_reader(|c| {
            let tx = c.unchecked_transaction()?;
            let point = tx
                .prepare_cached(&sql)?
                .query_row([id.to_string()], vm_point_row)
                .optional()?;
            Ok(match point {
                Some(p) => Self::with_disks(&tx, vec![p])?.pop(),
                None => None,
            })
        })
    }

    /// The newest VM restore point of a VM, if any.
    pub fn latest_vm_point(&self, vm: &VmKey) -> CoreResult<Option<VmRestorePointRecord>> {
        let c = self.conn()?;
        let sql = format!(
            "{VM_POINT_SELECT} WHERE v.vm_root = ?1 AND v.vm_ref = ?2 ORDER BY v.created DESC LIMIT 1"
        );
        let point = c
            .prepare_cached(&sql)?
            .query_row(params![vm.root.to_string(), vm.object_ref], vm_point_row)
            .optional()?;
        Ok(match point {
            Some(p) => Self::with_disks(&c, vec![p])?.pop(),
            None => None,
        })
    }

    /// Every index name any restore point references (for gc and verify).
    pub fn all_index_names(&self) -> CoreResult<Vec<(Uuid, String)>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached("SELECT vm_restore_point_id, index_name FROM point_disks")?;
        let rows = st.query_map([], |r| Ok((uuid_col(r, 0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

pub(crate) fn backup_row(r: &Row) -> rusqlite::Result<BackupRecord> {
    Ok(BackupRecord {
        id: uuid_col(r, 0)?,
        name: r.get(1)?,
        platform: platform_col(r, 2)?,
        backup_server_id: uuid_col(r, 3)?,
        created: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disks(tag: &str, n: usize) -> Vec<PointDisk> {
        (0..n)
            .map(|i| PointDisk {
                name: format!("{tag}-disk{i}"),
                size: (i as u64 + 1) * 1024,
                index: format!("{tag}-index{i}"),
            })
            .collect()
    }

    /// Two restore points of VMs with 0, 1 and 3 disks each.
    fn catalog_with_points() -> (tempfile::TempDir, Catalog, Vec<Uuid>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Catalog::open(&dir.path().join("catalog.db")).expect("open");
        let server = Uuid::new_v4();
        catalog
            .insert_backup_server(&BackupServerRecord {
                id: server,
                name: "server".into(),
                description: String::new(),
                port: 9392,
                version: "12".into(),
            })
            .expect("server");
        let backup = catalog
            .ensure_backup("job", PlatformKind::VMware, server, 0)
            .expect("backup");
        let mut rps = Vec::new();
        for (k, created) in [1_000i64, 2_000].into_iter().enumerate() {
            let rp = RestorePointRecord {
                id: Uuid::new_v4(),
                backup_id: backup.id,
                backup_name: backup.name.clone(),
                backup_server_id: server,
                created,
                point_type: PointType::Full,
            };
            let file = BackupFileRecord {
                id: Uuid::new_v4(),
                backup_id: backup.id,
                backup_name: backup.name.clone(),
                backup_server_id: server,
                restore_point_id: rp.id,
                file_name: format!("f{k}.vbk"),
                backup_size: 1,
                data_size: 1,
                created,
            };
            let vms: Vec<NewVmPoint> = [0usize, 1, 3]
                .into_iter()
                .map(|n| NewVmPoint {
                    id: Uuid::new_v4(),
                    vm: VmKey {
                        root: server,
                        object_ref: format!("vm-{n}"),
                    },
                    platform: PlatformKind::VMware,
                    vm_name: format!("vm{n}"),
                    datastore: "ds".into(),
                    storage_profile: None,
                    power: PowerState::PoweredOn,
                    obj_ref: format!("urn:VMware:Vm:{server}.vm-{n}"),
                    disks: disks(&format!("rp{k}-vm{n}"), n),
                })
                .collect();
            catalog
                .insert_restore_point(&rp, &file, &vms)
                .expect("insert");
            rps.push(rp.id);
        }
        (dir, catalog, rps)
    }

    fn disk_names(p: &VmRestorePointRecord) -> Vec<(String, u64, String)> {
        p.disks
            .iter()
            .map(|d| (d.name.clone(), d.size, d.index.clone()))
            .collect()
    }

    #[test]
    fn the_newest_point_of_each_vm_is_the_first_of_it_in_the_listing() {
        let (_dir, catalog, _) = catalog_with_points();
        let all = catalog.vm_restore_points(None).expect("list");
        let mut expected: Vec<(Uuid, u64)> = Vec::new();
        let mut seen: Vec<VmKey> = Vec::new();
        for p in &all {
            if !seen.contains(&p.vm) {
                seen.push(p.vm.clone());
                let n = all.iter().filter(|q| q.vm == p.vm).count() as u64;
                expected.push((p.id, n));
            }
        }
        let mut got: Vec<(Uuid, u64)> = catalog
            .newest_vm_points()
            .expect("newest")
            .iter()
            .map(|(p, n)| {
                let listed = all.iter().find(|q| q.id == p.id).expect("listed");
                assert_eq!(disk_names(p), disk_names(listed));
                (p.id, *n)
            })
            .collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn points_read_by_batch_are_the_listing_in_its_order() {
        let (_dir, catalog, rps) = catalog_with_points();
        for parent in [None, Some(rps[1])] {
            let all = catalog.vm_restore_points(parent).expect("list");
            // Batch edges fall between points of the same creation time (ties broken by name
            // and ID) and between restore points.
            for batch in 1..=all.len() + 1 {
                let mut got = Vec::new();
                let mut calls = 0;
                catalog
                    .vm_restore_points_by_batch(parent, batch, &mut |v| {
                        assert!(!v.is_empty() && v.len() <= batch);
                        calls += 1;
                        got.extend(v);
                        Ok(true)
                    })
                    .expect("by batch");
                let ids = |v: &[VmRestorePointRecord]| v.iter().map(|p| p.id).collect::<Vec<_>>();
                assert_eq!(ids(&got), ids(&all), "batch {batch}, parent {parent:?}");
                for (a, b) in got.iter().zip(&all) {
                    assert_eq!(disk_names(a), disk_names(b));
                }
                assert_eq!(calls, all.len().div_ceil(batch), "batch {batch}");
            }
            // Answering false stops the reading.
            let mut calls = 0;
            catalog
                .vm_restore_points_by_batch(parent, 1, &mut |_| {
                    calls += 1;
                    Ok(false)
                })
                .expect("stopped");
            assert_eq!(calls, 1);
        }
        assert_eq!(catalog.vm_restore_point_count().expect("count"), 6);
    }

    #[test]
    fn listed_points_carry_the_same_disks_as_each_point_read_alone() {
        let (_dir, catalog, rps) = catalog_with_points();
        let all = catalog.vm_restore_points(None).expect("list");
        assert_eq!(all.len(), 6);
        let one_rp = catalog
            .vm_restore_points(Some(rps[0]))
            .expect("list of one");
        assert_eq!(one_rp.len(), 3);
        assert!(one_rp.iter().all(|p| p.restore_point_id == rps[0]));
        for p in all.iter().chain(&one_rp) {
            let alone = catalog
                .vm_restore_point(p.id)
                .expect("read")
                .expect("exists");
            assert_eq!(disk_names(p), disk_names(&alone), "{}", p.vm_name);
            // In ordinal order, as recorded.
            let n: usize = p.vm_name[2..].parse().expect("vm number");
            assert_eq!(p.disks.len(), n);
            for (i, d) in p.disks.iter().enumerate() {
                assert!(d.name.ends_with(&format!("-disk{i}")), "{}", d.name);
            }
        }
    }
}
