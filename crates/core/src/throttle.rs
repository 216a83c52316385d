//! Brute-force protection for logon: after `max_failures` failed logons for one account name,
//! or from one address, within `window`, further attempts for that name or from that address
//! are refused for `lockout`, whether or not the password is right. The name is counted as
//! sent, so an unknown user is throttled exactly like a known one and the refusal says nothing
//! about which names exist.

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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Failure counters per account name and per address.
pub struct Throttle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 4096;

impl Throttle {
    /// Counters with these settings.
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, address: Option<IpAddr>) -> Vec<Key> {
        let mut k = vec![Key::Account(user.trim().to_lowercase())];
        if let Some(a) = address {
            k.push(Key::Address(a));
        }
        k
    }

    /// `Err(retry_after)` while the name or the address is locked out.
    pub fn check(&self, user: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        if self.config.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for k in Self::keys(user, address) {
            if let Some(e) = entries.get_mut(&k) {
                match e.locked_until {
                    Some(t) if t > now => wait = wait.max(t - now),
                    Some(_) => {
                        // The period is over: start counting afresh.
                        e.locked_until = None;
                        e.failures.clear();
                    }
                    None => {}
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Count a failed logon.
    pub fn failed(&self, user: &str, address: Option<IpAddr>) {
        if self.config.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SWEEP_AT {
            let window = self.config.window;
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|t| t > now)
                    || e.failures.back().is_some_and(|t| now - *t < window)
            });
        }
        for k in Self::keys(user, address) {
            let e = entries.entry(k).or_default();
            while e
                .failures
                .front()
                .is_some_and(|t| now - *t >= self.config.window)
            {
                e.failures.pop_front();
            }
            e.failures.push_back(now);
            if e.failures.len() >= self.config.max_failures as usize {
                e.locked_until = Some(now + self.config.lockout);
            }
        }
    }

    /// A successful logon clears the counters of its name and address.
    pub fn succeeded(&self, user: &str, address: Option<IpAddr>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for k in Self::keys(user, address) {
            entries.remove(&k);
        }
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

    #[test]
    fn engages_after_n_failures_for_a_name_whatever_its_case() {
        let t = Throttle::new(cfg(3, 60_000));
        for _ in 0..2 {
            t.failed("Alice", None);
        }
        assert!(t.check("alice", None).is_ok());
        t.failed("ALICE", None);
        assert!(t.check("alice", None).is_err());
        assert!(t.check("bob", None).is_ok());
    }

    #[test]
    fn engages_for_an_address_across_names() {
        let t = Throttle::new(cfg(3, 60_000));
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        t.failed("a", Some(a));
        t.failed("b", Some(a));
        t.failed("c", Some(a));
        assert!(t.check("d", Some(a)).is_err());
        assert!(t.check("d", Some("192.0.2.8".parse().unwrap())).is_ok());
    }

    #[test]
    fn releases_after_the_period_and_success_resets() {
        let t = Throttle::new(cfg(2, 1));
        t.failed("x", None);
        t.failed("x", None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(t.check("x", None).is_ok());
        t.failed("y", None);
        t.succeeded("y", None);
        t.failed("y", None);
        assert!(t.check("y", None).is_ok());
    }

    #[test]
    fn zero_turns_it_off() {
        let t = Throttle::new(cfg(0, 60_000));
        for _ in 0..10 {
            t.failed("x", None);
        }
        assert!(t.check("x", None).is_ok());
    }
}
