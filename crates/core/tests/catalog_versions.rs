//! The catalog records its schema version: a catalog written by the last release without
//! versions (tables, no record) opens, is brought to the current version and keeps its rows;
//! opening again changes nothing.

use emrest_core::catalog::Catalog;
use emrest_core::{Core, CoreConfig, Owner, SessionResult, TaskState};
use emrest_repo::Durability;
use rusqlite::Connection;
use std::path::Path;
use uuid::Uuid;

/// The schema the last release without versions created on every open, copied verbatim from
/// it (catalog.rs, security.rs, query.rs and jobs.rs, in the order they ran). Kept here, not
/// taken from the code, so that a change to the migrations cannot change the fixture too.
const PREVIOUS_RELEASE_SCHEMA: &str = r#"
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

const ACCOUNT: &str = "11111111-1111-1111-1111-111111111111";
const SERVER: &str = "22222222-2222-2222-2222-222222222222";
const BACKUP: &str = "33333333-3333-3333-3333-333333333333";
const POINT: &str = "44444444-4444-4444-4444-444444444444";
const FILE: &str = "55555555-5555-5555-5555-555555555555";
const VM_POINT: &str = "66666666-6666-6666-6666-666666666666";
const SESSION: &str = "77777777-7777-7777-7777-777777777777";
const JOB: &str = "88888888-8888-8888-8888-888888888888";
const JOB_SESSION: &str = "99999999-9999-9999-9999-999999999999";

/// A data folder whose catalog the previous release wrote: its schema and a row or more in
/// the tables a restore and a backup job touch.
fn previous_release_catalog(dir: &Path) {
    let c = Connection::open(dir.join("catalog.db")).expect("sqlite");
    c.execute_batch(PREVIOUS_RELEASE_SCHEMA).expect("schema");
    let hash = emrest_core::auth::hash_password("pw").expect("hash");
    c.execute(
        "INSERT INTO accounts (id, name, password_hash, created) VALUES (?1, 'admin', ?2, 1)",
        [ACCOUNT, &hash],
    )
    .expect("account");
    c.execute_batch(&format!(
        "INSERT INTO account_roles VALUES ('{ACCOUNT}', 'PortalAdministrator');
         INSERT INTO meta VALUES ('repository_id', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
         INSERT INTO backup_servers VALUES ('{SERVER}', 'server', 'old', 9392, '12');
         INSERT INTO backups VALUES ('{BACKUP}', 'Nightly', 'VC', '{SERVER}', 1000);
         INSERT INTO restore_points VALUES ('{POINT}', '{BACKUP}', 2000, 'Full');
         INSERT INTO backup_files VALUES ('{FILE}', '{POINT}', 'Nightly.vbk', 10, 20, 2000);
         INSERT INTO vm_restore_points VALUES ('{VM_POINT}', '{POINT}', '{SERVER}', 'vm-1',
             'VC', 'web', 'ds1', NULL, 'PoweredOn', 2000, 'Full', 'urn:VMware:Vm:{SERVER}.vm-1');
         INSERT INTO point_disks VALUES ('{VM_POINT}', 0, 'disk0', 4096, 'idx-0');
         INSERT INTO restore_sessions (id, vm_restore_point_id, vm_name, state, result, progress,
             created, ended, account_id)
             VALUES ('{SESSION}', '{VM_POINT}', 'web', 'Stopped', 'Success', 100, 3000, 4000, '{ACCOUNT}');
         INSERT INTO restore_log VALUES ('{SESSION}', 1, 3000, 'started');
         INSERT INTO restore_log VALUES ('{SESSION}', 2, 4000, 'done');
         INSERT INTO tasks (operation, state, success, message, restore_session_id, account_id, created)
             VALUES ('RestoreVm', 'Finished', 1, 'ok', '{SESSION}', '{ACCOUNT}', 3000);
         INSERT INTO jobs VALUES ('{JOB}', 'Nightly', '{SERVER}', 'VC', 'every night', 3, 500);
         INSERT INTO job_objects VALUES ('cccccccc-cccc-cccc-cccc-cccccccccccc', '{JOB}', 0,
             '{SERVER}', 'vm-1', 'urn:VMware:Vm:{SERVER}.vm-1', 'web');
         INSERT INTO backup_sessions VALUES ('{JOB_SESSION}', '{JOB}', 1500, 2500, 'Stopped',
             'Success', 100, NULL, 0, '{POINT}');"
    ))
    .expect("rows");
}

fn open_core(dir: &Path) -> Owner {
    Core::open(CoreConfig {
        durability: Durability::NoSync,
        ..CoreConfig::new(dir)
    })
    .expect("open core")
    .0
}

/// The schema as SQLite keeps it: every table and index with its statement, by name.
fn schema_of(path: &Path) -> Vec<(String, String)> {
    let c = Connection::open(path).expect("sqlite");
    let mut st = c
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn versions_recorded(path: &Path) -> Vec<u32> {
    let c = Connection::open(path).expect("sqlite");
    let mut st = c
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .expect("prepare");
    st.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn assert_rows_kept(core: &Owner) {
    let cat = core.catalog();
    let server: Uuid = SERVER.parse().expect("uuid");
    let servers = cat.backup_servers().expect("servers");
    assert_eq!(servers.len(), 1);
    assert_eq!(
        (servers[0].id, servers[0].description.as_str()),
        (server, "old")
    );
    let points = cat.vm_restore_points(None).expect("points");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].id, VM_POINT.parse::<Uuid>().expect("uuid"));
    assert_eq!(points[0].vm_name, "web");
    assert_eq!(points[0].backup_file_name, "Nightly.vbk");
    assert_eq!(points[0].disks.len(), 1);
    assert_eq!(points[0].disks[0].index, "idx-0");
    let tasks = cat.tasks(None).expect("tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].state, TaskState::Finished);
    assert_eq!(tasks[0].result, Some((true, "ok".to_string())));
    let session: Uuid = SESSION.parse().expect("uuid");
    assert_eq!(tasks[0].restore_session_id, Some(session));
    let s = cat
        .restore_session(session)
        .expect("session")
        .expect("exists");
    assert_eq!(s.result, SessionResult::Success);
    let log: Vec<String> = cat
        .session_log(session)
        .expect("log")
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(log, ["started", "done"]);
    let jobs = core.view().jobs().expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].name.as_str(), jobs[0].retention), ("Nightly", 3));
    assert_eq!(jobs[0].objects.len(), 1);
    let sessions = core
        .view()
        .backup_sessions(Some(JOB.parse().expect("uuid")))
        .expect("backup sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].restore_point_id,
        Some(POINT.parse().expect("uuid"))
    );
    let admin = core.account_named("admin").expect("admin");
    assert_eq!(admin.id, ACCOUNT.parse::<Uuid>().expect("uuid"));
    assert!(core.logons().logon("admin", "pw").is_ok());
}

#[test]
fn a_catalog_of_the_previous_release_gets_its_version_recorded_and_keeps_its_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    previous_release_catalog(dir.path());
    let core = open_core(dir.path());
    let latest = core.catalog().schema_version().expect("version");
    assert!(latest >= 2, "{latest}");
    assert_eq!(
        versions_recorded(&dir.path().join("catalog.db")),
        (1..=latest).collect::<Vec<_>>()
    );
    assert_rows_kept(&core);
    core.catalog().integrity_check().expect("intact");

    // Brought forward, it has the shape of a catalog made new.
    let fresh = tempfile::tempdir().expect("tempdir");
    drop(Catalog::open(&fresh.path().join("catalog.db")).expect("new catalog"));
    assert_eq!(
        schema_of(&dir.path().join("catalog.db")),
        schema_of(&fresh.path().join("catalog.db"))
    );
}

#[test]
fn opening_a_catalog_again_applies_no_migration_twice_and_changes_no_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    previous_release_catalog(dir.path());
    let path = dir.path().join("catalog.db");
    drop(open_core(dir.path()));
    let schema = schema_of(&path);
    let versions = versions_recorded(&path);
    for _ in 0..2 {
        let core = open_core(dir.path());
        assert_rows_kept(&core);
        drop(core);
        assert_eq!(versions_recorded(&path), versions);
        assert_eq!(schema_of(&path), schema);
    }
    // A new catalog too: the second open finds every migration recorded.
    let fresh = tempfile::tempdir().expect("tempdir");
    let fresh_path = fresh.path().join("catalog.db");
    let first = Catalog::open(&fresh_path)
        .expect("open")
        .schema_version()
        .expect("version");
    let second = Catalog::open(&fresh_path)
        .expect("reopen")
        .schema_version()
        .expect("version");
    assert_eq!(first, second);
    assert_eq!(
        versions_recorded(&fresh_path),
        (1..=first).collect::<Vec<_>>()
    );
}
