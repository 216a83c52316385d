//! Accounts and logon sessions. Passwords are stored as argon2id hashes; logon sessions live in
//! memory (a restart logs everyone out, as an Enterprise Manager service restart does) and expire
//! after an idle period (15 minutes by default, as logon_sessions_intro.md documents).

use crate::catalog::{AccountRow, Catalog};
use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Caller, LogonSessionRecord, Role};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// Hash a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fresh random password for the first administrator.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Live logon sessions.
pub struct Sessions {
    idle: Duration,
    live: Mutex<HashMap<Uuid, LogonSessionRecord>>,
    /// A hash to compare against when the user does not exist, so both paths cost the same.
    dummy_hash: String,
}

fn unauthorized() -> CoreError {
    CoreError::Unauthorized(
        "The logon session is missing, unknown or expired. Log on again.".into(),
    )
}

impl Sessions {
    /// A session table with the given idle timeout.
    pub fn new(idle: Duration) -> CoreResult<Sessions> {
        Ok(Sessions {
            idle,
            live: Mutex::new(HashMap::new()),
            dummy_hash: hash_password("not a real password")?,
        })
    }

    fn live(&self) -> CoreResult<std::sync::MutexGuard<'_, HashMap<Uuid, LogonSessionRecord>>> {
        self.live
            .lock()
            .map_err(|_| CoreError::Internal("session table lock poisoned".into()))
    }

    /// Check credentials and open a session.
    pub fn logon(
        &self,
        catalog: &Catalog,
        user: &str,
        password: &str,
    ) -> CoreResult<LogonSessionRecord> {
        let account = catalog.account_by_name(user)?;
        let hash = account
            .as_ref()
            .map(|a| a.password_hash.as_str())
            .unwrap_or(&self.dummy_hash);
        let ok = verify_password(password, hash);
        let account: AccountRow = match (ok, account) {
            (true, Some(a)) => a,
            _ => {
                return Err(CoreError::Unauthorized(
                    "Invalid user name or password.".into(),
                ))
            }
        };
        let now = now_millis();
        let record = LogonSessionRecord {
            id: Uuid::new_v4(),
            account_id: account.id,
            user_name: account.name,
            created: now,
            last_seen: now,
        };
        self.live()?.insert(record.id, record.clone());
        Ok(record)
    }

    /// Resolve a session id to its caller, refreshing its idle clock.
    pub fn caller(&self, catalog: &Catalog, id: Uuid) -> CoreResult<Caller> {
        let now = now_millis();
        let idle_ms = self.idle.as_millis() as i64;
        let record = {
            let mut live = self.live()?;
            live.retain(|_, s| now - s.last_seen <= idle_ms);
            let s = live.get_mut(&id).ok_or_else(unauthorized)?;
            s.last_seen = now;
            s.clone()
        };
        let account = catalog
            .account_by_name(&record.user_name)?
            .filter(|a| a.id == record.account_id)
            .ok_or_else(unauthorized)?;
        Ok(Caller {
            account_id: account.id,
            user_name: account.name,
            role: account.role,
            session_id: record.id,
        })
    }

    /// Sessions the caller may see: all for an administrator, their own otherwise.
    pub fn list(&self, caller: &Caller) -> CoreResult<Vec<LogonSessionRecord>> {
        let mut v: Vec<_> = self
            .live()?
            .values()
            .filter(|s| {
                caller.role == Role::PortalAdministrator || s.account_id == caller.account_id
            })
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.created, s.id));
        Ok(v)
    }

    /// One session the caller may see.
    pub fn get(&self, caller: &Caller, id: Uuid) -> CoreResult<LogonSessionRecord> {
        self.list(caller)?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| CoreError::not_found("Logon session", id))
    }

    /// End a session at once.
    pub fn logout(&self, caller: &Caller, id: Uuid) -> CoreResult<()> {
        self.get(caller, id)?;
        self.live()?.remove(&id);
        Ok(())
    }
}
