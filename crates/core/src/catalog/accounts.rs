//! Accounts, their role sets, settings and restore scopes: statements and row mapping.

use super::{uuid_col, Catalog};
use crate::error::CoreResult;
use crate::model::now_millis;
use crate::security::{
    AccountRecord, AccountType, EnterpriseRole, FlrSettings, ScopeRecord, SqlSettings,
};
use emrest_platform::{parse_hierarchy_obj_ref, ObjRef};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

/// A stored account, with its password hash (its roles are in `account_roles`, security.rs).
#[derive(Clone, Debug)]
pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub password_hash: String,
}

impl Catalog {
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
}

/// Reads and writes accounts, roles, settings and scopes (security.rs holds the rules).
pub(crate) struct Store<'a>(pub &'a Catalog);

impl Store<'_> {
    /// Run a change to accounts, roles, settings or scopes, then mark cached callers stale
    /// (also after a failure: a partial change must not be served from a cache either).
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> CoreResult<T> {
        let r = self.0.with_conn(f);
        self.0.security_changed();
        r
    }

    /// Every account, by name.
    pub fn accounts(&self) -> CoreResult<Vec<AccountRecord>> {
        let rows: Vec<(Uuid, String, String)> = self.0.with_reader(|c| {
            let mut st =
                c.prepare_cached("SELECT id, name, password_hash FROM accounts ORDER BY name")?;
            let rows = st.query_map([], |r| Ok((uuid_col(r, 0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(id, name, hash)| self.complete(id, name, !hash.is_empty()))
            .collect()
    }

    /// One account by ID.
    pub fn account(&self, id: Uuid) -> CoreResult<Option<AccountRecord>> {
        let row: Option<(String, String)> = self.0.with_reader(|c| {
            c.prepare_cached("SELECT name, password_hash FROM accounts WHERE id = ?1")?
                .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })?;
        row.map(|(name, hash)| self.complete(id, name, !hash.is_empty()))
            .transpose()
    }

    fn complete(&self, id: Uuid, name: String, has_password: bool) -> CoreResult<AccountRecord> {
        let key = id.to_string();
        let (settings, roles) = self.0.with_reader(|c| {
            let settings = c
                .prepare_cached(
                    "SELECT account_type, allow_restore_all_vms, flr_inplace_only, flr_extensions, sql_deny_in_place FROM account_settings WHERE account_id = ?1",
                )?
                .query_row(
                    [&key],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, Option<bool>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<bool>>(4)?,
                        ))
                    },
                )
                .optional()?;
            let mut st = c.prepare_cached("SELECT role FROM account_roles WHERE account_id = ?1")?;
            let roles = st
                .query_map([&key], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((settings, roles))
        })?;
        let mut roles: Vec<EnterpriseRole> = roles
            .iter()
            .filter_map(|r| EnterpriseRole::parse(r))
            .collect();
        roles.sort();
        roles.dedup();
        let (account_type, allow_all, flr, sql) = match settings {
            Some((t, allow, flr_only, flr_ext, sql_deny)) => (
                AccountType::parse(&t).unwrap_or(AccountType::User),
                allow,
                flr_only.map(|inplace_only| FlrSettings {
                    inplace_only,
                    extensions: flr_ext,
                }),
                sql_deny.map(|deny_in_place_restore| SqlSettings {
                    deny_in_place_restore,
                }),
            ),
            None => (AccountType::User, true, None, None),
        };
        Ok(AccountRecord {
            id,
            name,
            account_type,
            roles,
            allow_restore_all_vms: allow_all,
            flr,
            sql,
            has_password,
        })
    }

    /// Write an account's settings row.
    pub fn save_settings(&self, a: &AccountRecord) -> CoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT OR REPLACE INTO account_settings (account_id, account_type, allow_restore_all_vms, flr_inplace_only, flr_extensions, sql_deny_in_place) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.id.to_string(),
                    a.account_type.as_str(),
                    a.allow_restore_all_vms,
                    a.flr.as_ref().map(|f| f.inplace_only),
                    a.flr.as_ref().and_then(|f| f.extensions.clone()),
                    a.sql.as_ref().map(|s| s.deny_in_place_restore),
                ],
            )
            .map(|_| ())
        })
    }

    /// Store a new account with its roles, in one transaction: an account is never seen
    /// without the roles it was made with.
    pub fn insert_account(&self, a: &AccountRow, roles: &[EnterpriseRole]) -> CoreResult<()> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO accounts (id, name, password_hash, created) VALUES (?1, ?2, ?3, ?4)",
                params![a.id.to_string(), a.name, a.password_hash, now_millis()],
            )?;
            write_roles(&tx, a.id, roles)?;
            tx.commit()
        })
    }

    /// Replace an account's role set.
    pub fn save_roles(&self, id: Uuid, roles: &[EnterpriseRole]) -> CoreResult<()> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            write_roles(&tx, id, roles)?;
            tx.commit()
        })
    }

    /// Remove an account with its roles, scopes and settings.
    pub fn delete_account(&self, id: Uuid) -> CoreResult<()> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            let k = id.to_string();
            tx.execute("DELETE FROM account_scopes WHERE account_id = ?1", [&k])?;
            tx.execute("DELETE FROM account_roles WHERE account_id = ?1", [&k])?;
            tx.execute("DELETE FROM account_settings WHERE account_id = ?1", [&k])?;
            tx.execute("DELETE FROM accounts WHERE id = ?1", [&k])?;
            tx.commit()
        })
    }

    /// An account's scope objects, oldest first (root names are filled in by the caller).
    pub fn scopes(&self, account: Uuid) -> CoreResult<Vec<ScopeRecord>> {
        let rows: Vec<(Uuid, String, String)> = self.0.with_reader(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, obj_ref, name FROM account_scopes WHERE account_id = ?1 ORDER BY created, rowid",
            )?;
            let rows = st.query_map([account.to_string()], |r| {
                Ok((uuid_col(r, 0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, r, name)| {
                parse_hierarchy_obj_ref(&r).ok().map(|obj_ref| ScopeRecord {
                    id,
                    account_id: account,
                    obj_ref,
                    name,
                    root_name: String::new(),
                })
            })
            .collect())
    }

    /// Add scope objects; one already in the scope (same reference) is kept, not doubled.
    pub fn add_scopes(&self, account: Uuid, items: &[(ObjRef, String)]) -> CoreResult<()> {
        let existing: Vec<String> = self
            .scopes(account)?
            .iter()
            .map(|s| s.obj_ref.to_string().to_ascii_lowercase())
            .collect();
        let now = now_millis();
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            for (o, name) in items {
                let text = o.to_string();
                if existing.contains(&text.to_ascii_lowercase()) {
                    continue;
                }
                tx.execute(
                    "INSERT INTO account_scopes (id, account_id, obj_ref, name, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![Uuid::new_v4().to_string(), account.to_string(), text, name, now],
                )?;
            }
            tx.commit()
        })
    }

    /// Remove one scope object; false when the account has no such scope.
    pub fn delete_scope(&self, account: Uuid, scope: Uuid) -> CoreResult<bool> {
        self.write(|c| {
            c.execute(
                "DELETE FROM account_scopes WHERE account_id = ?1 AND id = ?2",
                params![account.to_string(), scope.to_string()],
            )
            .map(|n| n > 0)
        })
    }
}

/// Replace an account's role set (inside the caller's transaction).
pub(crate) fn write_roles(
    c: &rusqlite::Connection,
    id: Uuid,
    roles: &[EnterpriseRole],
) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM account_roles WHERE account_id = ?1",
        [id.to_string()],
    )?;
    for r in roles {
        c.execute(
            "INSERT INTO account_roles (account_id, role) VALUES (?1, ?2)",
            params![id.to_string(), r.key()],
        )?;
    }
    Ok(())
}
