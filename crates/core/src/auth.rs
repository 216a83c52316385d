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
use crate::security::{self, EnterpriseRole, Store};
use crate::throttle::{Attempt, Throttle, ThrottleConfig};
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

/// The name an administrator sees a session by: half of the SHA-256 of its ID, in hex. It
/// reveals nothing of the ID, so it cannot be turned into the session's token.
pub fn handle_of(key: &Key) -> String {
    key[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The handle of a session ID (see [`handle_of`]).
pub fn handle_of_id(id: Uuid) -> String {
    handle_of(&key_of(id))
}

/// Constant-time equality of two IDs.
fn same_id(a: Uuid, b: Uuid) -> bool {
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A live session and the caller it last resolved to.
struct Live {
    record: LogonSessionRecord,
    /// Roles granted for this session on top of the account's own: a directory user's
    /// mapped groups at logon (directory.rs).
    granted: Vec<EnterpriseRole>,
    /// The caller as last loaded from the catalog, with the catalog's security generation at
    /// the time: a change to any account, role set, setting or scope bumps the generation, so
    /// the next request loads the caller again (bench/api.sh: resolving the caller took 3-4
    /// queries on every request).
    resolved: Option<(u64, Caller)>,
}

/// The session table and when expired sessions were last removed from it.
struct Table {
    live: HashMap<Key, Live>,
    swept: i64,
}

/// How often the table drops expired sessions (each is also refused on its own when used).
const SWEEP_MS: i64 = 1000;

/// Live logon sessions and logon throttling.
pub struct Sessions {
    idle: Duration,
    table: Mutex<Table>,
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
            table: Mutex::new(Table {
                live: HashMap::new(),
                swept: 0,
            }),
            throttle: Throttle::new(throttle),
            dummy_hash: hash_password("not a real password")?,
        })
    }

    fn table(&self) -> CoreResult<std::sync::MutexGuard<'_, Table>> {
        self.table
            .lock()
            .map_err(|_| CoreError::Internal("session table lock poisoned".into()))
    }

    /// Whether a session idle since `last_seen` has expired at `now`.
    fn expired(&self, last_seen: i64, now: i64) -> bool {
        now - last_seen > self.idle.as_millis() as i64
    }

    /// The live, unexpired session with this ID (compared in constant time).
    fn find<'t>(&self, table: &'t mut Table, id: Uuid, now: i64) -> Option<&'t mut Live> {
        if now - table.swept >= SWEEP_MS {
            table
                .live
                .retain(|_, s| !self.expired(s.record.last_seen, now));
            table.swept = now;
        }
        table
            .live
            .get_mut(&key_of(id))
            .filter(|s| same_id(s.record.id, id) && !self.expired(s.record.last_seen, now))
    }

    /// Check credentials and open a session; refused while the name or address is locked out.
    pub fn logon(
        &self,
        catalog: &Catalog,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> CoreResult<LogonSessionRecord> {
        // Reserved before the slow hash: concurrent attempts count while in flight.
        let attempt = self
            .throttle
            .reserve(user, address)
            .map_err(|retry_after| CoreError::TooManyAttempts { retry_after })?;
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
                attempt.failed();
                return Err(CoreError::Unauthorized(
                    "Invalid user name or password.".into(),
                ));
            }
        };
        attempt.succeeded();
        self.open(&account, Vec::new())
    }

    /// Admit a logon attempt for `user` from `address`, or refuse it while locked out.
    pub(crate) fn reserve(&self, user: &str, address: Option<IpAddr>) -> CoreResult<Attempt<'_>> {
        self.throttle
            .reserve(user, address)
            .map_err(|retry_after| CoreError::TooManyAttempts { retry_after })
    }

    /// Open a session for an authenticated account, with `granted` roles on top of its own.
    pub(crate) fn open(
        &self,
        account: &AccountRow,
        granted: Vec<EnterpriseRole>,
    ) -> CoreResult<LogonSessionRecord> {
        let now = now_millis();
        let record = LogonSessionRecord {
            id: new_session_id(),
            account_id: account.id,
            user_name: account.name.clone(),
            created: now,
            last_seen: now,
        };
        self.table()?.live.insert(
            key_of(record.id),
            Live {
                record: record.clone(),
                granted,
                resolved: None,
            },
        );
        Ok(record)
    }

    /// Resolve a session id to its caller, refreshing its idle clock. The caller is loaded
    /// from the catalog when the session is first used and again after any change to accounts,
    /// roles, settings or scopes; a deleted account answers 401.
    pub fn caller(&self, catalog: &Catalog, id: Uuid) -> CoreResult<Caller> {
        self.caller_at(catalog, id, now_millis())
    }

    fn caller_at(&self, catalog: &Catalog, id: Uuid, now: i64) -> CoreResult<Caller> {
        // Read before the lookup: a change committed while the caller loads below bumps it
        // again, so what is stored under this value is reloaded on the next request.
        let generation = catalog.security_generation();
        let (record, granted) = {
            let mut table = self.table()?;
            let s = self.find(&mut table, id, now).ok_or_else(unauthorized)?;
            s.record.last_seen = now;
            match &s.resolved {
                Some((g, caller)) if *g == generation => return Ok(caller.clone()),
                _ => (s.record.clone(), s.granted.clone()),
            }
        };
        let caller = load_caller(catalog, &record, &granted)?;
        let mut table = self.table()?;
        if let Some(s) = self.find(&mut table, id, now) {
            s.resolved = Some((generation, caller.clone()));
        }
        Ok(caller)
    }

    /// The caller's own sessions, its current one first: never another account's, whose
    /// SessionId is that account's token (base64 of it), administrator or not.
    pub fn list(&self, caller: &Caller) -> CoreResult<Vec<LogonSessionRecord>> {
        let now = now_millis();
        let mut v: Vec<_> = self
            .table()?
            .live
            .values()
            .map(|s| &s.record)
            .filter(|s| !self.expired(s.last_seen, now))
            .filter(|s| s.account_id == caller.account_id)
            .cloned()
            .collect();
        // The PyPI clients `veeam` and `veeam-exporter` log out by deleting the first one.
        v.sort_by_key(|s| (s.id != caller.session_id, s.created, s.id));
        Ok(v)
    }

    /// One session: 404 when there is none, 403 when it is someone else's and the caller is
    /// not an administrator.
    pub fn get(&self, caller: &Caller, id: Uuid) -> CoreResult<LogonSessionRecord> {
        let s = self
            .find(&mut *self.table()?, id, now_millis())
            .map(|s| s.record.clone())
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
        self.table()?.live.remove(&key_of(id));
        Ok(s)
    }

    /// Every live session with its handle, oldest first: for an administrator, through an
    /// extension that shows handles, never SessionIds (a SessionId is its owner's token).
    pub fn all(&self) -> CoreResult<Vec<(String, LogonSessionRecord)>> {
        let now = now_millis();
        let mut v: Vec<_> = self
            .table()?
            .live
            .iter()
            .filter(|(_, s)| !self.expired(s.record.last_seen, now))
            .map(|(k, s)| (handle_of(k), s.record.clone()))
            .collect();
        v.sort_by_key(|(h, s)| (s.created, h.clone()));
        Ok(v)
    }

    /// End the live session a handle names (see [`Sessions::all`]).
    pub fn end_by_handle(&self, handle: &str) -> CoreResult<LogonSessionRecord> {
        let now = now_millis();
        let mut table = self.table()?;
        let key = table
            .live
            .iter()
            .find(|(k, s)| {
                !self.expired(s.record.last_seen, now) && handle_of(k).eq_ignore_ascii_case(handle)
            })
            .map(|(k, _)| *k)
            .ok_or_else(|| CoreError::not_found("Logon session", crate::error::clip(handle, 80)))?;
        let live = table.live.remove(&key).ok_or_else(unauthorized)?;
        Ok(live.record)
    }

    /// End every session of an account (it was deleted).
    pub fn end_all_of(&self, account: Uuid) -> CoreResult<()> {
        self.table()?
            .live
            .retain(|_, s| s.record.account_id != account);
        Ok(())
    }
}

/// Load a session's caller from the catalog: its account (401 when it is gone), role set (with
/// the roles granted to the session) and restore scope.
fn load_caller(
    catalog: &Catalog,
    record: &LogonSessionRecord,
    granted: &[EnterpriseRole],
) -> CoreResult<Caller> {
    let store = Store(catalog);
    let mut account = store.account(record.account_id)?.ok_or_else(unauthorized)?;
    account.roles.extend_from_slice(granted);
    account.roles.sort();
    account.roles.dedup();
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

    /// A catalog with one account holding `role`, and a session table with the documented
    /// 15-minute idle timeout.
    fn setup(role: crate::security::EnterpriseRole) -> (tempfile::TempDir, Catalog, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db")).unwrap();
        let account = AccountRow {
            id: Uuid::new_v4(),
            name: "alice".into(),
            password_hash: hash_password("pw").unwrap(),
        };
        Store(&catalog).insert_account(&account, &[role]).unwrap();
        let sessions =
            Sessions::new(Duration::from_secs(15 * 60), ThrottleConfig::default()).unwrap();
        (dir, catalog, sessions)
    }

    #[test]
    fn a_cached_caller_still_expires_after_exactly_the_idle_period_since_its_last_use() {
        use crate::security::EnterpriseRole;
        let (_dir, catalog, sessions) = setup(EnterpriseRole::PortalAdministrator);
        let s = sessions.logon(&catalog, "alice", "pw", None).unwrap();
        let idle = 15 * 60 * 1000;
        // Each use restarts the idle clock, cached or not: the first loads, the rest hit.
        let mut t = s.last_seen;
        for _ in 0..3 {
            t += idle;
            assert!(sessions.caller_at(&catalog, s.id, t).is_ok());
        }
        // One millisecond past the idle period: gone, and it stays gone.
        let e = sessions
            .caller_at(&catalog, s.id, t + idle + 1)
            .unwrap_err();
        assert!(matches!(e, CoreError::Unauthorized(_)), "{e:?}");
        assert!(sessions.caller_at(&catalog, s.id, t + idle + 2).is_err());
        assert!(sessions.caller_at(&catalog, s.id, t).is_err());
    }

    #[test]
    fn a_cached_caller_is_reloaded_after_any_change_to_account_security() {
        use crate::security::EnterpriseRole;
        let (_dir, catalog, sessions) = setup(EnterpriseRole::PortalAdministrator);
        let s = sessions.logon(&catalog, "alice", "pw", None).unwrap();
        assert!(sessions.caller(&catalog, s.id).unwrap().is_admin());
        assert!(sessions.caller(&catalog, s.id).unwrap().is_admin());
        Store(&catalog)
            .save_roles(s.account_id, &[EnterpriseRole::PortalUser])
            .unwrap();
        let c = sessions.caller(&catalog, s.id).unwrap();
        assert!(!c.is_admin());
        assert_eq!(c.roles, [EnterpriseRole::PortalUser]);
        Store(&catalog).delete_account(s.account_id).unwrap();
        let e = sessions.caller(&catalog, s.id).unwrap_err();
        assert!(matches!(e, CoreError::Unauthorized(_)), "{e:?}");
    }
}
