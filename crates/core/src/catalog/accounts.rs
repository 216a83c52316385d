//! Accounts: statements and row mapping.

use super::{uuid_col, Catalog};
use crate::error::CoreResult;
use crate::security::EnterpriseRole;
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
