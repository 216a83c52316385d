//! The catalog: every durable record of backups, points, tasks, sessions and accounts, in
//! SQLite (WAL mode, so the CLI can read while the server writes). One writing connection
//! behind a mutex; every statement is short. Hot read paths (resolving a caller, reading a task
//! or the restore points) use a small pool of read-only connections instead: in WAL mode readers
//! see the last committed state and never wait for the writer (bench/api.sh profile: requests
//! queued on the one mutex).

use crate::error::{CoreError, CoreResult};
use crate::model::*;
use emrest_platform::{PlatformKind, PowerState, VmKey};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Read-only connections beside the writer: enough for the request threads of a small machine
/// to read at once; more only cost file descriptors and page caches.
const READERS: usize = 4;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS backup_servers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
    port INTEGER NOT NULL, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hierarchy_roots (
    id TEXT PRIMARY KEY, backup_server_id TEXT NOT NULL REFERENCES backup_servers(id));
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, platform TEXT NOT NULL,
    backup_server_id TEXT NOT NULL REFERENCES backup_servers(id), created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS restore_points (
    id TEXT PRIMARY KEY, backup_id TEXT NOT NULL REFERENCES backups(id),
    created INTEGER NOT NULL, point_type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backup_files (
    id TEXT PRIMARY KEY, restore_point_id TEXT NOT NULL UNIQUE REFERENCES restore_points(id),
    file_name TEXT NOT NULL, backup_size INTEGER NOT NULL, data_size INTEGER NOT NULL,
    created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vm_restore_points (
    id TEXT PRIMARY KEY, restore_point_id TEXT NOT NULL REFERENCES restore_points(id),
    vm_root TEXT NOT NULL, vm_ref TEXT NOT NULL, platform TEXT NOT NULL, vm_name TEXT NOT NULL,
    datastore TEXT NOT NULL, storage_profile TEXT, power TEXT NOT NULL,
    created INTEGER NOT NULL, point_type TEXT NOT NULL, obj_ref TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS vm_restore_points_vm ON vm_restore_points(vm_root, vm_ref, created);
CREATE TABLE IF NOT EXISTS point_disks (
    vm_restore_point_id TEXT NOT NULL REFERENCES vm_restore_points(id), ordinal INTEGER NOT NULL,
    name TEXT NOT NULL, size INTEGER NOT NULL, index_name TEXT NOT NULL,
    PRIMARY KEY (vm_restore_point_id, ordinal));
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, operation TEXT NOT NULL, state TEXT NOT NULL,
    success INTEGER, message TEXT, restore_session_id TEXT, account_id TEXT NOT NULL,
    created INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS restore_sessions (
    id TEXT PRIMARY KEY, vm_restore_point_id TEXT NOT NULL, vm_name TEXT NOT NULL,
    state TEXT NOT NULL, result TEXT NOT NULL, progress INTEGER NOT NULL,
    created INTEGER NOT NULL, ended INTEGER, restored_obj_ref TEXT, failure_message TEXT,
    account_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS restore_log (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (session_id, seq));
"#;

/// The SQLite catalog.
pub struct Catalog {
    conn: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// Where the next reader search starts, so that threads spread over the pool.
    next_reader: AtomicUsize,
    /// Bumped after every change to accounts, their roles, settings or scopes (security.rs):
    /// cached callers loaded under an older value are stale (auth.rs).
    security_generation: AtomicU64,
    /// A read-only connection that only asks `PRAGMA data_version` ([`Catalog::data_version`]):
    /// it never commits, so every commit of any other connection changes its answer.
    watch: Mutex<Connection>,
}

/// A stored account, with its password hash (its roles are in `account_roles`, security.rs).
#[derive(Clone, Debug)]
pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub password_hash: String,
}

pub(crate) fn uuid_col(row: &Row, i: usize) -> rusqlite::Result<Uuid> {
    // Parsed from SQLite's own text, without a String of its own (bench/api.sh profile).
    let s = row.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Uuid::parse_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

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

pub(crate) const RP_SELECT: &str =
    "SELECT r.id, r.backup_id, b.name, b.backup_server_id, r.created, r.point_type
   FROM restore_points r JOIN backups b ON b.id = r.backup_id";

pub(crate) const FILE_SELECT: &str = "SELECT f.id, r.backup_id, b.name, b.backup_server_id, f.restore_point_id, f.file_name,
        f.backup_size, f.data_size, f.created
   FROM backup_files f JOIN restore_points r ON r.id = f.restore_point_id JOIN backups b ON b.id = r.backup_id";

// LEFT JOINs: a restore session outlives the point it used when retention removes that point.
pub(crate) const SESSION_SELECT: &str = "SELECT s.id, s.vm_restore_point_id, COALESCE(v.vm_name, s.vm_name), COALESCE(v.created, s.created),
        COALESCE(b.backup_server_id, (SELECT id FROM backup_servers ORDER BY name LIMIT 1)), s.vm_name, s.state,
        s.result, s.progress, s.created, s.ended, s.restored_obj_ref, s.failure_message, s.account_id
   FROM restore_sessions s LEFT JOIN vm_restore_points v ON v.id = s.vm_restore_point_id
   LEFT JOIN restore_points r ON r.id = v.restore_point_id LEFT JOIN backups b ON b.id = r.backup_id";

pub(crate) const TASK_SELECT: &str = "SELECT id, operation, state, success, message, restore_session_id, account_id, created FROM tasks";

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

pub(crate) fn session_row(row: &Row) -> rusqlite::Result<RestoreSessionRecord> {
    let point_vm: String = row.get(2)?;
    let point_created: Millis = row.get(3)?;
    Ok(RestoreSessionRecord {
        id: uuid_col(row, 0)?,
        vm_restore_point_id: uuid_col(row, 1)?,
        vm_restore_point_name: vm_point_name(&point_vm, point_created),
        backup_server_id: uuid_col(row, 4)?,
        vm_name: row.get(5)?,
        state: SessionState::parse(&row.get::<_, String>(6)?),
        result: SessionResult::parse(&row.get::<_, String>(7)?),
        progress: row.get::<_, i64>(8)?.clamp(0, 100) as u8,
        created: row.get(9)?,
        ended: row.get(10)?,
        restored_obj_ref: row.get(11)?,
        failure_message: row.get(12)?,
        account_id: uuid_col(row, 13)?,
    })
}

pub(crate) fn task_row(row: &Row) -> rusqlite::Result<TaskRecord> {
    let state: String = row.get(2)?;
    let success: Option<bool> = row.get(3)?;
    let message: Option<String> = row.get(4)?;
    let session: Option<String> = row.get(5)?;
    Ok(TaskRecord {
        id: TaskId(row.get(0)?),
        operation: row.get(1)?,
        state: if state == "Running" {
            TaskState::Running
        } else {
            TaskState::Finished
        },
        result: success.map(|s| (s, message.unwrap_or_default())),
        restore_session_id: session.and_then(|s| Uuid::parse_str(&s).ok()),
        account_id: uuid_col(row, 6)?,
        created: row.get(7)?,
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
    /// Open (or create) the catalog file and bring its schema up to date.
    pub fn open(path: &Path) -> CoreResult<Catalog> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Every request runs the same few statements: parse each once (bench/api.sh profile).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::security::SCHEMA)?;
        crate::security::migrate_legacy_roles(&conn)?;
        conn.execute_batch(crate::query::QUERY_SCHEMA)?;
        conn.execute_batch(crate::jobs::SCHEMA)?;
        let readers = (0..READERS)
            .map(|_| Self::open_reader(path).map(Mutex::new))
            .collect::<CoreResult<Vec<_>>>()?;
        Ok(Catalog {
            conn: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
            security_generation: AtomicU64::new(0),
            watch: Mutex::new(Self::open_reader(path)?),
        })
    }

    fn open_reader(path: &Path) -> CoreResult<Connection> {
        use rusqlite::OpenFlags;
        let c = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    }

    /// Run read statements on a read-only connection of the pool: a free one when there is
    /// one, else wait for one. Sees every change committed before the call.
    pub(crate) fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> CoreResult<T> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let free = (0..n).find_map(|i| self.readers[(start + i) % n].try_lock().ok());
        let guard = match free {
            Some(g) => g,
            None => self.readers[start % n]
                .lock()
                .map_err(|_| CoreError::Internal("catalog reader lock poisoned".into()))?,
        };
        Ok(f(&guard)?)
    }

    /// A version of the whole catalog: it changes whenever a change is committed, by this
    /// process (its writing connection) or by another process on the same file. Equal values
    /// read before two reads mean no commit came between them (SQLite's `PRAGMA data_version`,
    /// asked on a connection of its own that never writes). Answers computed from the catalog
    /// may be kept under the value read before they were computed (the server's reply cache).
    pub fn data_version(&self) -> CoreResult<u64> {
        let c = self
            .watch
            .lock()
            .map_err(|_| CoreError::Internal("catalog watch lock poisoned".into()))?;
        let v: i64 = c
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        Ok(v as u64)
    }

    /// The current account-security generation (see the field).
    pub(crate) fn security_generation(&self) -> u64 {
        self.security_generation.load(Ordering::SeqCst)
    }

    /// Record that accounts, roles, settings or scopes changed (after the change committed).
    pub(crate) fn security_changed(&self) {
        self.security_generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn conn(&self) -> CoreResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| CoreError::Internal("catalog lock poisoned".into()))
    }

    /// Run statements of another core module (which owns its own tables) on the connection.
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> CoreResult<T> {
        Ok(f(&*self.conn()?)?)
    }

    /// SQLite's own consistency check; `Ok(())` when it answers "ok".
    pub fn integrity_check(&self) -> CoreResult<()> {
        let c = self.conn()?;
        let r: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if r == "ok" {
            Ok(())
        } else {
            Err(CoreError::Internal(format!("catalog integrity check: {r}")))
        }
    }

    // ---- accounts ----

    /// Number of accounts.
    pub fn account_count(&self) -> CoreResult<i64> {
        Ok(self
            .conn()?
            .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))?)
    }

    /// Replace an account's password hash.
    pub fn set_password(&self, name: &str, hash: &str) -> CoreResult<bool> {
        Ok(self.conn()?.execute(
            "UPDATE accounts SET password_hash = ?2 WHERE name = ?1",
            params![name, hash],
        )? > 0)
    }

    /// Look up an account by name (case-insensitive, as Windows account names are).
    pub fn account_by_name(&self, name: &str) -> CoreResult<Option<AccountRow>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT id, name, password_hash FROM accounts WHERE name = ?1",
                [name],
                |r| {
                    Ok(AccountRow {
                        id: uuid_col(r, 0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

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
        let sql = format!(
            "{RP_SELECT} WHERE (?1 IS NULL OR r.backup_id = ?1) ORDER BY r.created DESC, r.id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([backup.map(|b| b.to_string())], rp_row)?;
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
        let sql = format!(
            "{FILE_SELECT} WHERE (?1 IS NULL OR f.restore_point_id = ?1) ORDER BY f.created DESC, f.id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([point.map(|b| b.to_string())], file_row)?;
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
        let sql = format!(
            "{VM_POINT_SELECT} WHERE (?1 IS NULL OR v.restore_point_id = ?1) ORDER BY v.created DESC, v.vm_name, v.id"
        );
        self.with_reader(|c| {
            // One read transaction: the points and their disks from the same commit.
            let tx = c.unchecked_transaction()?;
            let point = point.map(|b| b.to_string());
            let mut points = {
                let mut st = tx.prepare_cached(&sql)?;
                let rows = st.query_map([&point], vm_point_row)?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            // The disks of all of them in one statement, not one per point.
            let at: std::collections::HashMap<Uuid, usize> =
                points.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
            let mut st = tx.prepare_cached(
                "SELECT d.vm_restore_point_id, d.name, d.size, d.index_name
                   FROM point_disks d JOIN vm_restore_points v ON v.id = d.vm_restore_point_id
                  WHERE (?1 IS NULL OR v.restore_point_id = ?1)
                  ORDER BY d.vm_restore_point_id, d.ordinal",
            )?;
            let mut rows = st.query([&point])?;
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

    // ---- tasks ----

    /// Create a running task.
    pub fn insert_task(
        &self,
        operation: &str,
        restore_session: Option<Uuid>,
        account: Uuid,
        now: Millis,
    ) -> CoreResult<TaskRecord> {
        let c = self.conn()?;
        c.execute(
            "INSERT INTO tasks (operation, state, restore_session_id, account_id, created) VALUES (?1, 'Running', ?2, ?3, ?4)",
            params![operation, restore_session.map(|s| s.to_string()), account.to_string(), now],
        )?;
        let id = c.last_insert_rowid();
        Ok(TaskRecord {
            id: TaskId(id),
            operation: operation.to_string(),
            state: TaskState::Running,
            result: None,
            restore_session_id: restore_session,
            account_id: account,
            created: now,
        })
    }

    /// Finish a task with a result.
    pub fn finish_task(&self, id: TaskId, success: bool, message: &str) -> CoreResult<()> {
        finish_task_on(&*self.conn()?, id, success, message)
    }

    /// Hide a task from listings (DELETE /tasks/{ID}).
    pub fn delete_task(&self, id: TaskId) -> CoreResult<()> {
        self.conn()?
            .execute("UPDATE tasks SET deleted = 1 WHERE id = ?1", [id.0])?;
        Ok(())
    }

    /// Visible tasks, oldest first; of one account when given.
    pub fn tasks(&self, account: Option<Uuid>) -> CoreResult<Vec<TaskRecord>> {
        let c = self.conn()?;
        let sql = format!(
            "{TASK_SELECT} WHERE deleted = 0 AND (?1 IS NULL OR account_id = ?1) ORDER BY id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([account.map(|a| a.to_string())], task_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One visible task.
    pub fn task(&self, id: TaskId) -> CoreResult<Option<TaskRecord>> {
        self.with_reader(|c| {
            c.prepare_cached(&format!("{TASK_SELECT} WHERE deleted = 0 AND id = ?1"))?
                .query_row([id.0], task_row)
                .optional()
        })
    }

    // ---- restore sessions ----

    /// Record a new restore session in state Starting.
    pub fn insert_restore_session(
        &self,
        id: Uuid,
        point: Uuid,
        vm_name: &str,
        account: Uuid,
        now: Millis,
    ) -> CoreResult<()> {
        self.conn()?.execute(
            "INSERT INTO restore_sessions (id, vm_restore_point_id, vm_name, state, result, progress, created, account_id)
             VALUES (?1, ?2, ?3, 'Starting', 'None', 0, ?4, ?5)",
            params![id.to_string(), point.to_string(), vm_name, now, account.to_string()],
        )?;
        Ok(())
    }

    /// Move a session to another state, with progress.
    pub fn update_session(&self, id: Uuid, state: SessionState, progress: u8) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE restore_sessions SET state = ?2, progress = ?3 WHERE id = ?1",
            params![id.to_string(), state.as_str(), progress],
        )?;
        Ok(())
    }

    /// Close a session with its result.
    pub fn finish_session(
        &self,
        id: Uuid,
        result: SessionResult,
        restored: Option<&str>,
        failure: Option<&str>,
        now: Millis,
    ) -> CoreResult<()> {
        finish_session_on(&*self.conn()?, id, result, restored, failure, now)
    }

    /// Mark a restore session Working and log `text`, in one transaction (one commit).
    pub fn start_restore(&self, session: Uuid, text: &str, now: Millis) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE restore_sessions SET state = ?2, progress = 0 WHERE id = ?1",
            params![session.to_string(), SessionState::Working.as_str()],
        )?;
        append_log_on(&tx, session, text, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Close a restore session and finish its task in one transaction, so a crash between the
    /// two never leaves a successful session behind a task marked interrupted. `log`, when
    /// given, is the session's last log line, written in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_restore(
        &self,
        session: Uuid,
        task: TaskId,
        result: SessionResult,
        restored: Option<&str>,
        message: &str,
        log: Option<&str>,
        now: Millis,
    ) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        if let Some(text) = log {
            append_log_on(&tx, session, text, now)?;
        }
        let success = result == SessionResult::Success;
        let failure = (!success).then_some(message);
        finish_session_on(&tx, session, result, restored, failure, now)?;
        finish_task_on(&tx, task, success, message)?;
        tx.commit()?;
        Ok(())
    }

    /// Restore sessions, oldest first; of one account when given.
    pub fn restore_sessions(&self, account: Option<Uuid>) -> CoreResult<Vec<RestoreSessionRecord>> {
        let c = self.conn()?;
        let sql = format!(
            "{SESSION_SELECT} WHERE (?1 IS NULL OR s.account_id = ?1) ORDER BY s.created, s.id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([account.map(|a| a.to_string())], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One restore session.
    pub fn restore_session(&self, id: Uuid) -> CoreResult<Option<RestoreSessionRecord>> {
        let c = self.conn()?;
        let sql = format!("{SESSION_SELECT} WHERE s.id = ?1");
        let row = c
            .prepare_cached(&sql)?
            .query_row([id.to_string()], session_row)
            .optional()?;
        Ok(row)
    }

    /// Append a line to a session's log.
    pub fn append_log(&self, session: Uuid, text: &str, now: Millis) -> CoreResult<()> {
        append_log_on(&*self.conn()?, session, text, now)
    }

    /// A session's log, in order.
    pub fn session_log(&self, session: Uuid) -> CoreResult<Vec<LogLine>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(
            "SELECT time, text FROM restore_log WHERE session_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([session.to_string()], |r| {
            Ok(LogLine {
                time: r.get(0)?,
                text: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// After a crash: every task still Running failed, every open session with it.
    /// Returns the number of tasks marked.
    pub fn fail_interrupted(&self, now: Millis) -> CoreResult<usize> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let msg = "Interrupted: the server stopped while this task was running";
        let n = tx.execute(
            "UPDATE tasks SET state = 'Finished', success = 0, message = ?1 WHERE state = 'Running'",
            [msg],
        )?;
        tx.execute(
            "UPDATE restore_sessions SET state = 'Stopped', result = 'Failed', ended = ?1, failure_message = ?2
             WHERE state != 'Stopped'",
            params![now, msg],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

fn append_log_on(c: &Connection, session: Uuid, text: &str, now: Millis) -> CoreResult<()> {
    c.execute(
        "INSERT INTO restore_log (session_id, seq, time, text)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM restore_log WHERE session_id = ?1), ?2, ?3)",
        params![session.to_string(), now, text],
    )?;
    Ok(())
}

fn finish_task_on(c: &Connection, id: TaskId, success: bool, message: &str) -> CoreResult<()> {
    c.execute(
        "UPDATE tasks SET state = 'Finished', success = ?2, message = ?3 WHERE id = ?1",
        params![id.0, success, message],
    )?;
    Ok(())
}

fn finish_session_on(
    c: &Connection,
    id: Uuid,
    result: SessionResult,
    restored: Option<&str>,
    failure: Option<&str>,
    now: Millis,
) -> CoreResult<()> {
    let progress = if result == SessionResult::Success {
        100
    } else {
        0
    };
    c.execute(
        "UPDATE restore_sessions SET state = 'Stopped', result = ?2, ended = ?3,
                 restored_obj_ref = COALESCE(?4, restored_obj_ref), failure_message = ?5,
                 progress = CASE WHEN ?6 = 100 THEN 100 ELSE progress END
             WHERE id = ?1",
        params![
            id.to_string(),
            result.as_str(),
            now,
            restored,
            failure,
            progress
        ],
    )?;
    Ok(())
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
