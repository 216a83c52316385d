//! The catalog's schema, as numbered migrations applied in order. Each runs in one
//! transaction of its own together with the row that records it in `schema_version`, so a
//! catalog is always at a version it names; opening applies those it lacks.
//!
//! Catalogs written before versions were recorded hold tables but no `schema_version`: they
//! count as version 0. Migration 1 is the schema of the last release without versions, written
//! with `IF NOT EXISTS` so that it completes any older shape and changes nothing in the last
//! one; migration 2 turns the old one-role column into role sets when it is still there. A new
//! change to the schema is a new migration at the end, never an edit of one already released.

use super::Dialect;
use crate::error::{CoreError, CoreResult};
use crate::model::now_millis;
use crate::security::EnterpriseRole;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use uuid::Uuid;

/// What one migration does.
enum Step {
    /// Statements run as one batch.
    Sql(&'static str),
    /// Code, for changes that move data.
    Code(fn(&Transaction) -> rusqlite::Result<()>),
}

/// One numbered change to the schema.
struct Migration {
    version: u32,
    /// What it brings, for the log.
    what: &'static str,
    step: Step,
}

/// Every migration, in order; versions run 1, 2, … without gaps.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "the tables and indexes of the last release without schema versions",
        step: Step::Sql(SCHEMA_1),
    },
    Migration {
        version: 2,
        what: "one role per account (accounts.role) becomes a role set (account_roles)",
        step: Step::Code(roles_become_sets),
    },
    Migration {
        version: 3,
        what: "job schedules: options, enabled flag, the next run due and the chain mark",
        step: Step::Sql(JOB_SCHEDULES_3),
    },
    Migration {
        version: 4,
        what: "a million VM restore points: their count kept by triggers, and a covering index by VM name",
        step: Step::Sql(POINT_COUNT_4),
    },
];

/// The version a catalog is at once [`migrate`] has run.
pub(crate) const LATEST: u32 = 4;

/// The number of VM restore points, kept by triggers, so that an unfiltered listing is counted
/// without reading a million index entries (catalog/query.rs `lean_count`); and the index by VM
/// name made covering for the filters and orders of the query service (`point_type` for `Type`,
/// `id` for the order's tie-break), so that a query on a few VMs reads no table rows.
const POINT_COUNT_4: &str = "
CREATE TABLE row_counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO row_counts (name, n) SELECT 'vm_restore_points', count(*) FROM vm_restore_points;
CREATE TRIGGER vm_restore_points_counted_in AFTER INSERT ON vm_restore_points
  BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'vm_restore_points'; END;
CREATE TRIGGER vm_restore_points_counted_out AFTER DELETE ON vm_restore_points
  BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'vm_restore_points'; END;
DROP INDEX IF EXISTS vm_restore_points_vm_name;
CREATE INDEX vm_restore_points_vm_name_cover
  ON vm_restore_points(vm_name COLLATE NOCASE, created, point_type, id);
";

/// A job's schedule (`schedule`: the JSON of `core::schedule::Schedule`, NULL for none),
/// whether it is enabled (toggleScheduleEnabled), the instant its next run is due (NULL: to be
/// computed by the scheduler from its clock), and the end of the previous job's run a chained
/// job last ran after; and the job a task made (a clone).
const JOB_SCHEDULES_3: &str = "
ALTER TABLE jobs ADD COLUMN schedule TEXT;
ALTER TABLE jobs ADD COLUMN schedule_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN next_run INTEGER;
ALTER TABLE jobs ADD COLUMN chain_mark INTEGER;
ALTER TABLE tasks ADD COLUMN related_job_id TEXT;
";

/// The table that records the migrations applied (absent in catalogs from before versions).
const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)";

/// The schema of the last release without recorded versions. An account without a row in
/// `account_settings` is a `User` allowed to restore every VM; its roles are its rows in
/// `account_roles`, the only record of them. The `vm_restore_points_*` and
/// `restore_points_created` indexes keep the query service's filtered, sorted, paged queries
/// over many restore points fast.
const SCHEMA_1: &str = r#"
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
CREATE TABLE IF NOT EXISTS account_settings (
    account_id TEXT PRIMARY KEY, account_type TEXT NOT NULL,
    allow_restore_all_vms INTEGER NOT NULL,
    flr_inplace_only INTEGER, flr_extensions TEXT, sql_deny_in_place INTEGER);
CREATE TABLE IF NOT EXISTS account_roles (
    account_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (account_id, role));
CREATE TABLE IF NOT EXISTS account_scopes (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, obj_ref TEXT NOT NULL, name TEXT NOT NULL,
    created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS vm_restore_points_order ON vm_restore_points(created DESC, vm_name, id);
CREATE INDEX IF NOT EXISTS vm_restore_points_vm_name ON vm_restore_points(vm_name COLLATE NOCASE, created);
CREATE INDEX IF NOT EXISTS vm_restore_points_point ON vm_restore_points(restore_point_id);
CREATE INDEX IF NOT EXISTS restore_points_created ON restore_points(created);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    backup_server_id TEXT NOT NULL REFERENCES backup_servers(id), platform TEXT NOT NULL,
    description TEXT NOT NULL, retain_cycles INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS job_objects (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), ordinal INTEGER NOT NULL,
    vm_root TEXT NOT NULL, vm_ref TEXT NOT NULL, obj_ref TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backup_sessions (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), created INTEGER NOT NULL,
    ended INTEGER, state TEXT NOT NULL, result TEXT NOT NULL, progress INTEGER NOT NULL,
    failure_message TEXT, is_retry INTEGER NOT NULL, restore_point_id TEXT);
CREATE TABLE IF NOT EXISTS backup_task_sessions (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES backup_sessions(id),
    ordinal INTEGER NOT NULL, vm_root TEXT NOT NULL, vm_ref TEXT NOT NULL, obj_ref TEXT NOT NULL,
    vm_name TEXT NOT NULL, created INTEGER NOT NULL, ended INTEGER, state TEXT NOT NULL,
    result TEXT NOT NULL, reason TEXT NOT NULL, total_size INTEGER NOT NULL,
    bytes_read INTEGER NOT NULL, bytes_transferred INTEGER NOT NULL, chunks_new INTEGER NOT NULL,
    vm_restore_point_id TEXT);
CREATE TABLE IF NOT EXISTS damaged_points (
    vm_restore_point_id TEXT PRIMARY KEY, reason TEXT NOT NULL, found INTEGER NOT NULL);
"#;

/// The version recorded in the catalog: 0 for a new one or one from before versions.
pub(crate) fn version(c: &Connection) -> rusqlite::Result<u32> {
    c.execute_batch(VERSION_TABLE)?;
    c.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

/// Apply the migrations the catalog lacks, in order, each in one transaction with its record.
/// Several processes may open one catalog at once: each migration takes the write lock first
/// and is skipped when another process recorded it meanwhile.
pub(crate) fn migrate(c: &mut Connection, dialect: Dialect) -> CoreResult<u32> {
    // The steps are written in SQLite's SQL; a second dialect brings its own text for each.
    let Dialect::Sqlite = dialect;
    let found = version(c)?;
    if found > LATEST {
        return Err(CoreError::Internal(format!(
            "the catalog is at schema version {found}, newer than this emrest knows ({LATEST}); \
             use a newer emrest"
        )));
    }
    if found == 0 && table_exists(c, "accounts")? {
        tracing::info!("catalog from before schema versions: bringing it to version {LATEST}");
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if version(&tx)? >= m.version {
            continue;
        }
        match m.step {
            Step::Sql(sql) => tx.execute_batch(sql)?,
            Step::Code(f) => f(&tx)?,
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied) VALUES (?1, ?2)",
            (m.version, now_millis()),
        )?;
        tx.commit()?;
        tracing::debug!("catalog schema version {}: {}", m.version, m.what);
    }
    Ok(version(c)?)
}

fn table_exists(c: &Connection, name: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )
}

/// Migration 2. A catalog from before role sets keeps one role per account in `accounts.role`
/// (`PortalAdministrator`, `RestoreOperator` or `PortalUser`), with rows in `account_roles`
/// only for accounts whose roles were changed since. Each account without rows gets the role
/// of its column, then the column is dropped: the role set is the only record left. A value no
/// role is known by gives no role, as it gave none before. Without the column, nothing to do.
fn roles_become_sets(tx: &Transaction) -> rusqlite::Result<()> {
    let has_column: bool = tx.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('accounts') WHERE name = 'role'",
        [],
        |r| r.get(0),
    )?;
    if !has_column {
        return Ok(());
    }
    let legacy: Vec<(Uuid, String)> = {
        let mut st = tx.prepare(
            "SELECT id, role FROM accounts WHERE id NOT IN (SELECT account_id FROM account_roles)",
        )?;
        let rows = st.query_map([], |r| Ok((super::uuid_col(r, 0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, role) in legacy {
        if let Some(role) = EnterpriseRole::parse(&role) {
            super::accounts::write_roles(tx, id, &[role])?;
        }
    }
    // DROP COLUMN needs SQLite 3.35; rusqlite's bundled SQLite is newer.
    tx.execute_batch("ALTER TABLE accounts DROP COLUMN role")
}
