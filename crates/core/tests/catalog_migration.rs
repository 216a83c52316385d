//! A data folder made before roles were sets keeps working: opening it gives each account the
//! role of the old `accounts.role` column as its role set, once, and drops the column.

use emrest_core::security::{self, EnterpriseRole, Permission};
use emrest_core::{Core, CoreConfig, Owner};
use emrest_repo::Durability;
use rusqlite::Connection;
use std::path::Path;

fn open(dir: &Path) -> Owner {
    let cfg = CoreConfig {
        durability: Durability::NoSync,
        ..CoreConfig::new(dir)
    };
    Core::open(cfg).expect("open core").0
}

/// A catalog of the old shape: `accounts.role` holds each account's one role.
fn old_catalog(dir: &Path, with_role_sets: bool) {
    let c = Connection::open(dir.join("catalog.db")).expect("sqlite");
    c.execute_batch(
        "CREATE TABLE accounts (
            id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash TEXT NOT NULL, role TEXT NOT NULL, created INTEGER NOT NULL);",
    )
    .expect("accounts");
    let hash = emrest_core::auth::hash_password("pw").expect("hash");
    let accounts = [
        (
            "11111111-1111-1111-1111-111111111111",
            "admin",
            "PortalAdministrator",
        ),
        (
            "22222222-2222-2222-2222-222222222222",
            "op",
            "RestoreOperator",
        ),
        (
            "33333333-3333-3333-3333-333333333333",
            "viewer",
            "PortalUser",
        ),
        (
            "44444444-4444-4444-4444-444444444444",
            "changed",
            "PortalUser",
        ),
    ];
    for (id, name, role) in accounts {
        c.execute(
            "INSERT INTO accounts (id, name, password_hash, role, created) VALUES (?1, ?2, ?3, ?4, 1)",
            [id, name, &hash, role],
        )
        .expect("account");
    }
    if with_role_sets {
        // An account whose roles were changed through the API after roles became sets: its
        // rows win over the column.
        c.execute_batch(
            "CREATE TABLE account_roles (
                account_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (account_id, role));
             INSERT INTO account_roles VALUES ('44444444-4444-4444-4444-444444444444', 'FileRestoreOperator');
             INSERT INTO account_roles VALUES ('44444444-4444-4444-4444-444444444444', 'PortalUser');",
        )
        .expect("account_roles");
    }
}

fn roles_of(core: &Owner, name: &str) -> Vec<EnterpriseRole> {
    core.account_named(name).expect("account").roles
}

fn has_role_column(dir: &Path) -> bool {
    let c = Connection::open(dir.join("catalog.db")).expect("sqlite");
    c.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('accounts') WHERE name = 'role'",
        [],
        |r| r.get(0),
    )
    .expect("table_info")
}

#[test]
fn an_old_catalog_gets_role_sets_from_the_role_column_and_loses_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    old_catalog(dir.path(), true);
    let core = open(dir.path());
    assert!(!has_role_column(dir.path()));
    assert_eq!(
        roles_of(&core, "admin"),
        [EnterpriseRole::PortalAdministrator]
    );
    assert_eq!(roles_of(&core, "op"), [EnterpriseRole::VmRestoreOperator]);
    assert_eq!(roles_of(&core, "viewer"), [EnterpriseRole::PortalUser]);
    assert_eq!(
        roles_of(&core, "changed"),
        [
            EnterpriseRole::PortalUser,
            EnterpriseRole::FileRestoreOperator
        ]
    );

    // The migrated roles are what the checks see.
    let op = core
        .logons()
        .caller(core.logons().logon("op", "pw").expect("logon").id)
        .expect("caller");
    assert!(security::authorize(&op, Permission::RestoreVm).is_ok());
    assert!(security::authorize(&op, Permission::StartJob).is_err());
    assert!(!op.is_admin());
    let admin = core
        .logons()
        .caller(core.logons().logon("admin", "pw").expect("logon").id)
        .expect("caller");
    assert!(admin.is_admin());

    // Opening again changes nothing, and a role change sticks.
    core.change_role_local("op", EnterpriseRole::PortalUser, true)
        .expect("add role");
    drop(core);
    let core = open(dir.path());
    assert_eq!(
        roles_of(&core, "op"),
        [
            EnterpriseRole::PortalUser,
            EnterpriseRole::VmRestoreOperator
        ]
    );
    assert_eq!(core.accounts_local().expect("accounts").len(), 4);
}

#[test]
fn a_catalog_from_before_role_sets_existed_is_migrated_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    old_catalog(dir.path(), false);
    let core = open(dir.path());
    assert!(!has_role_column(dir.path()));
    assert_eq!(roles_of(&core, "op"), [EnterpriseRole::VmRestoreOperator]);
    // No second administrator was made: the old one is still the only one.
    let admins: Vec<String> = core
        .accounts_local()
        .expect("accounts")
        .into_iter()
        .filter(|a| a.roles.contains(&EnterpriseRole::PortalAdministrator))
        .map(|a| a.name)
        .collect();
    assert_eq!(admins, ["admin"]);
}

#[test]
fn a_new_data_folder_gives_the_first_administrator_the_role_in_its_role_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = open(dir.path());
    assert!(!has_role_column(dir.path()));
    let admins: Vec<_> = core
        .accounts_local()
        .expect("accounts")
        .into_iter()
        .filter(|a| a.roles == [EnterpriseRole::PortalAdministrator])
        .collect();
    assert_eq!(admins.len(), 1);
}
