//! Brute-force protection for logon. Failed logons are counted three ways within `window`:
//!
//! - for one account name from one address: `max_failures` engage the lockout for that pair;
//! - for one account name from any address: `ACCOUNT_FACTOR` times as many lock the name;
//! - from one address for any names: `ADDRESS_FACTOR` times as many lock the address.
//!
//! So one client cannot keep an account (`admin` included) locked for everyone with a few bad
//! passwords, yet a spray across names or addresses still meets a limit. A locked key refuses
//! every attempt for `lockout`, right password or not. An attempt is reserved before the slow
//! password hash, and counts against the limits while it is in flight: requests sent together
//! cannot all pass the check before any failure is counted. The name is counted as sent, so an
//! unknown user is throttled exactly like a known one.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Logon throttling settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures that engage the lockout; 0 turns throttling off.
    pub max_failures: u32,
    /// How far back failures are counted.
    pub window: Duration,
    /// How long further attempts are refused once engaged.
    pub lockout: Duration,
}

impl Default for ThrottleConfig {
    /// 5 failures within 15 minutes lock the name (or address) out for 15 minutes.
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// How many times `max_failures` lock a name from any address.
pub const ACCOUNT_FACTOR: u32 = 4;
/// How many times `max_failures` lock an address for any names.
pub const ADDRESS_FACTOR: u32 = 4;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, Option<IpAddr>),
    Account(String),
    Address(IpAddr),
}

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    in_flight: u32,
    locked_until: Option<Instant>,
}

impl Entry {
    fn is_stale(&self, now: Instant, window: Duration) -> bool {
        self.in_flight == 0
            && self.locked_until.is_none_or(|t| t <= now)
            && self.failures.back().is_none_or(|t| now - *t >= window)
    }
}

/// Failure counters per (name, address), per name and per address.
pub struct Throttle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 4096;

/// A logon attempt admitted by [`Throttle::reserve`]: it counts against the limits until it is
/// told how it ended; dropped untold (an error before the password was checked), it counts
/// for nothing.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<(Key, u32)>,
}

impl Throttle {
    /// Counters with these settings.
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Each key an attempt counts against, with the failures that lock it.
    fn keys(&self, user: &str, address: Option<IpAddr>) -> Vec<(Key, u32)> {
        let name = user.trim().to_lowercase();
        let n = self.config.max_failures;
        let mut k = vec![
            (Key::Pair(name.clone(), address), n),
            (Key::Account(name), n.saturating_mul(ACCOUNT_FACTOR)),
        ];
        if let Some(a) = address {
            k.push((Key::Address(a), n.saturating_mul(ADDRESS_FACTOR)));
        }
        k
    }

    /// Admits an attempt, or `Err(retry_after)` while a key is locked out or as many attempts
    /// as would lock it are failures or in flight.
    pub fn reserve(&self, user: &str, address: Option<IpAddr>) -> Result<Attempt<'_>, Duration> {
        if self.config.max_failures == 0 {
            return Ok(Attempt {
                throttle: self,
                keys: Vec::new(),
            });
        }
        let now = Instant::now();
        let window = self.config.window;
        let keys = self.keys(user, address);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SWEEP_AT {
            entries.retain(|_, e| !e.is_stale(now, window));
        }
        let mut wait = Duration::ZERO;
        for (k, limit) in &keys {
            let Some(e) = entries.get_mut(k) else {
                continue;
            };
            match e.locked_until {
                Some(t) if t > now => wait = wait.max(t - now),
                Some(_) => {
                    // The period is over: start counting afresh.
                    e.locked_until = None;
                    e.failures.clear();
                }
                None => {}
            }
            while e.failures.front().is_some_and(|t| now - *t >= window) {
                e.failures.pop_front();
            }
            // In flight counts: the attempts admitted now could all fail.
            if e.failures.len() as u64 + u64::from(e.in_flight) >= u64::from(*limit) {
                // Refused until the oldest counted failure leaves the window, or the attempts
                // in flight end (then a second is a fair wait).
                let until_window = e.failures.front().map(|t| window.saturating_sub(now - *t));
                wait = wait.max(
                    until_window
                        .unwrap_or(Duration::from_secs(1))
                        .max(Duration::from_secs(1)),
                );
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (k, _) in &keys {
            entries.entry(k.clone()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys,
        })
    }

    fn settle(&self, keys: &[(Key, u32)], failed: bool) {
        if keys.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for (k, limit) in keys {
            let Some(e) = entries.get_mut(k) else {
                continue;
            };
            e.in_flight = e.in_flight.saturating_sub(1);
            if failed {
                e.failures.push_back(now);
                if e.failures.len() as u64 >= u64::from(*limit) {
                    e.locked_until = Some(now + self.config.lockout);
                }
            }
        }
    }
}

impl Attempt<'_> {
    /// The password was wrong (or the name unknown): count a failure.
    pub fn failed(mut self) {
        let keys = std::mem::take(&mut self.keys);
        self.throttle.settle(&keys, true);
    }

    /// The logon succeeded: the pair's failures are forgotten (the name's and the address's,
    /// which others share, are kept).
    pub fn succeeded(mut self) {
        let keys = std::mem::take(&mut self.keys);
        self.throttle.settle(&keys, false);
        let mut entries = self
            .throttle
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (k, _) in &keys {
            if matches!(k, Key::Pair(..)) {
                if let Some(e) = entries.get_mut(k) {
                    if e.in_flight == 0 {
                        entries.remove(k);
                    } else {
                        e.failures.clear();
                    }
                }
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        self.throttle.settle(&keys, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: u32, lockout_ms: u64) -> ThrottleConfig {
        ThrottleConfig {
            max_failures: n,
            window: Duration::from_secs(60),
            lockout: Duration::from_millis(lockout_ms),
        }
    }

    fn fail(t: &Throttle, user: &str, a: Option<IpAddr>) {
        t.reserve(user, a).expect("admitted").failed();
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("address"))
    }

    #[test]
    fn engages_after_n_failures_for_a_name_whatever_its_case() {
        let t = Throttle::new(cfg(3, 60_000));
        fail(&t, "Alice", None);
        fail(&t, "Alice", None);
        assert!(t.reserve("alice", None).is_ok());
        fail(&t, "ALICE", None);
        assert!(t.reserve("alice", None).is_err());
        assert!(t.reserve("bob", None).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_so_concurrent_ones_cannot_all_pass() {
        let t = Throttle::new(cfg(3, 60_000));
        let held: Vec<Attempt<'_>> = (0..3)
            .map(|_| t.reserve("admin", ip("192.0.2.1")).expect("admitted"))
            .collect();
        assert!(
            t.reserve("admin", ip("192.0.2.1")).is_err(),
            "a fourth waits"
        );
        // Ending without a verdict (an error before the hash) frees the place.
        drop(held);
        let a = t.reserve("admin", ip("192.0.2.1")).expect("admitted again");
        a.succeeded();
    }

    #[test]
    fn one_address_cannot_lock_an_account_for_everyone() {
        let t = Throttle::new(cfg(3, 60_000));
        for _ in 0..3 {
            fail(&t, "admin", ip("192.0.2.66"));
        }
        assert!(t.reserve("admin", ip("192.0.2.66")).is_err());
        assert!(
            t.reserve("admin", ip("192.0.2.1")).is_ok(),
            "another address logs on"
        );
        // Failures from many addresses do lock the name, at the softer account-wide limit.
        for n in 0..(3 * ACCOUNT_FACTOR - 3) {
            fail(&t, "admin", ip(&format!("198.51.100.{n}")));
        }
        assert!(t.reserve("admin", ip("192.0.2.1")).is_err());
    }

    #[test]
    fn engages_for_an_address_across_names_at_the_softer_limit() {
        let t = Throttle::new(cfg(3, 60_000));
        let a = ip("192.0.2.7");
        for n in 0..(3 * ADDRESS_FACTOR) {
            fail(&t, &format!("user{n}"), a);
        }
        assert!(t.reserve("d", a).is_err());
        assert!(t.reserve("d", ip("192.0.2.8")).is_ok());
    }

    #[test]
    fn releases_after_the_period_and_success_resets() {
        let t = Throttle::new(cfg(2, 1));
        fail(&t, "x", None);
        fail(&t, "x", None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.reserve("x", None).is_ok());
        fail(&t, "y", None);
        t.reserve("y", None).expect("admitted").succeeded();
        fail(&t, "y", None);
        assert!(t.reserve("y", None).is_ok());
    }

    #[test]
    fn zero_turns_it_off() {
        let t = Throttle::new(cfg(0, 60_000));
        for _ in 0..10 {
            fail(&t, "x", None);
        }
        assert!(t.reserve("x", None).is_ok());
    }
}
