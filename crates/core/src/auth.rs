//! Accounts and logon sessions. Passwords are stored as argon2id hashes; logon sessions live in
//! memory (a restart logs everyone out, as an Enterprise Manager service restart does) and expire
//! after an idle period (15 minutes by default, as http_authentication.md documents).
//!
//! Session IDs are 128 random bits from the OS, shown as a GUID (the wire token is base64 of
//! that GUID string, http_authentication.md). The table is keyed by the SHA-256 of the ID, not
//! the ID itself, so the time a lookup takes depends on a digest the client cannot steer bit by
//! bit; the stored ID is then compared with the presented one in constant time.

use crate::catalog::{AccountRow, Catalog};
use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Caller, LogonSessionRecord};
use crate::security::{self, Store};
use crate::throttle::{Throttle, ThrottleConfig};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Hash a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2_gated(|| {
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            argon2_gated(|| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .unwrap_or(false)
}

/// Argon2 computations running now, and a signal when one ends.
static ARGON2_BUSY: Mutex<usize> = Mutex::new(0);
static ARGON2_FREE: Condvar = Condvar::new();

/// Run an argon2 computation with at most one per core at a time. Each holds 19 MiB and a core
/// for tens of milliseconds: clients logging on at once (bench/load.sh) otherwise all ran on the
/// blocking pool, 19 MiB each, and none finished sooner.
fn argon2_gated<T>(f: impl FnOnce() -> T) -> T {
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            let mut busy = ARGON2_BUSY.lock().unwrap_or_else(|e| e.into_inner());
            *busy -= 1;
            ARGON2_FREE.notify_one();
        }
    }
    static MALLOC: std::sync::Once = std::sync::Once::new();
    MALLOC.call_once(|| {
        // glibc raises its mmap threshold to the size of the largest block freed, so after the
        // first argon2 run every thread kept its 19 MiB in its heap: 100 logons on 100 blocking
        // threads held 1.8 GiB (bench/load.sh). A fixed threshold keeps large blocks mmapped and
        // returns them on free.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes an allocator setting; it is called once, before argon2
        // allocates.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    });
    let limit = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut busy = ARGON2_BUSY.lock().unwrap_or_else(|e| e.into_inner());
    while *busy >= limit {
        busy = ARGON2_FREE.wait(busy).unwrap_or_else(|e| e.into_inner());
    }
    *busy += 1;
    drop(busy);
    let _slot = Slot;
    f()
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

/// A new session ID: 16 bytes from the OS's random source (all 128 bits random, unlike a
/// version-4 UUID's 122), formatted as a GUID.
pub fn new_session_id() -> Uuid {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    Uuid::from_bytes(b)
}

type Key = [u8; 32];

fn key_of(id: Uuid) -> Key {
    Sha256::digest(id.as_bytes()).into()
}

/// Constant-time equality of two IDs.
fn same_id(a: Uuid, b: Uuid) -> bool {
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Live logon sessions and logon throttling.
pub struct Sessions {
    idle: Duration,
    live: Mutex<HashMap<Key, LogonSessionRecord>>,
    throttle: Throttle,
    /// A hash to compare against when the user does not exist or has no password, so every
    /// refused logon costs one argon2 verification.
    dummy_hash: String,
}

fn unauthorized() -> CoreError {
    CoreError::Unauthorized(
        "The logon session is missing, unknown or expired. Log on again.".into(),
    )
}

impl Sessions {
    /// A session table with the given idle timeout and logon throttling.
    pub fn new(idle: Duration, throttle: ThrottleConfig) -> CoreResult<Sessions> {
        Ok(Sessions {
            idle,
            live: Mutex::new(HashMap::new()),
            throttle: Throttle::new(throttle),
            dummy_hash: hash_password("not a real password")?,
        })
    }

    fn live(&self) -> CoreResult<std::sync::MutexGuard<'_, HashMap<Key, LogonSessionRecord>>> {
        self.live
            .lock()
            .map_err(|_| CoreError::Internal("session table lock poisoned".into()))
    }

    /// Check credentials and open a session; refused while the name or address is locked out.
    pub fn logon(
        &self,
        catalog: &Catalog,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> CoreResult<LogonSessionRecord> {
        if let Err(retry_after) = self.throttle.check(user, address) {
            return Err(CoreError::TooManyAttempts { retry_after });
        }
        let account = catalog.account_by_name(user)?;
        let hash = account
            .as_ref()
            .map(|a| a.password_hash.as_str())
            .filter(|h| !h.is_empty())
            .unwrap_or(&self.dummy_hash);
        let ok = verify_password(password, hash);
        let account: AccountRow = match (ok, account) {
            (true, Some(a)) if !a.password_hash.is_empty() => a,
            _ => {
                self.throttle.failed(user, address);
                return Err(CoreError::Unauthorized(
                    "Invalid user name or password.".into(),
                ));
            }
        };
        self.throttle.succeeded(user, address);
        let now = now_millis();
        let record = LogonSessionRecord {
            id: new_session_id(),
            account_id: account.id,
            user_name: account.name,
            created: now,
            last_seen: now,
        };
        self.live()?.insert(key_of(record.id), record.clone());
        Ok(record)
    }

    /// Resolve a session id to its caller, refreshing its idle clock.
    pub fn caller(&self, catalog: &Catalog, id: Uuid) -> CoreResult<Caller> {
        let now = now_millis();
        let idle_ms = self.idle.as_millis() as i64;
        let record = {
            let mut live = self.live()?;
            live.retain(|_, s| now - s.last_seen <= idle_ms);
            let s = live.get_mut(&key_of(id)).ok_or_else(unauthorized)?;
            if !same_id(s.id, id) {
                return Err(unauthorized());
            }
            s.last_seen = now;
            s.clone()
        };
        let store = Store(catalog);
        let account = store.account(record.account_id)?.ok_or_else(unauthorized)?;
        let scopes = if account.allow_restore_all_vms {
            Vec::new()
        } else {
            store.scopes(account.id)?
        };
        Ok(Caller {
            account_id: account.id,
            user_name: account.name.clone(),
            session_id: record.id,
            scope: security::scope_of(&account, &scopes),
            roles: account.roles,
            address: None,
        })
    }

    /// Sessions the caller may see: all for an administrator, their own otherwise.
    pub fn list(&self, caller: &Caller) -> CoreResult<Vec<LogonSessionRecord>> {
        let mut v: Vec<_> = self
            .live()?
            .values()
            .filter(|s| caller.is_admin() || s.account_id == caller.account_id)
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.created, s.id));
        Ok(v)
    }

    /// One session: 404 when there is none, 403 when it is someone else's and the caller is
    /// not an administrator.
    pub fn get(&self, caller: &Caller, id: Uuid) -> CoreResult<LogonSessionRecord> {
        let s = self
            .live()?
            .get(&key_of(id))
            .filter(|s| same_id(s.id, id))
            .cloned()
            .ok_or_else(|| CoreError::not_found("Logon session", id))?;
        if caller.is_admin() || s.account_id == caller.account_id {
            Ok(s)
        } else {
            Err(CoreError::Forbidden(
                "Access denied: only a Portal Administrator may see or end another user's logon session".into(),
            ))
        }
    }

    /// End a session at once.
    pub fn logout(&self, caller: &Caller, id: Uuid) -> CoreResult<LogonSessionRecord> {
        let s = self.get(caller, id)?;
        self.live()?.remove(&key_of(id));
        Ok(s)
    }

    /// End every session of an account (it was deleted).
    pub fn end_all_of(&self, account: Uuid) -> CoreResult<()> {
        self.live()?.retain(|_, s| s.account_id != account);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_runs_at_most_one_computation_per_core() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let limit = std::thread::available_parallelism().map_or(2, |n| n.get());
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 * limit {
                s.spawn(|| {
                    argon2_gated(|| {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        // Overlap with the others (not a timing assertion).
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                });
            }
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=limit).contains(&peak), "{peak} at once, limit {limit}");
        // And the gate is free again.
        assert!(verify_password("pw", &hash_password("pw").unwrap()));
    }

    #[test]
    fn session_ids_use_all_128_bits() {
        // Over many IDs, the version and variant nibbles of a v4 UUID would be constant.
        let ids: Vec<Uuid> = (0..64).map(|_| new_session_id()).collect();
        let version_nibbles: std::collections::HashSet<u8> =
            ids.iter().map(|u| u.as_bytes()[6] >> 4).collect();
        let variant_bits: std::collections::HashSet<u8> =
            ids.iter().map(|u| u.as_bytes()[8] >> 6).collect();
        assert!(version_nibbles.len() > 1);
        assert!(variant_bits.len() > 1);
        assert!(same_id(ids[0], ids[0]));
        assert!(!same_id(ids[0], ids[1]));
    }
}
