//! Logons wait their turn here before their password hash runs, a few at a time and taking
//! turns between client addresses. A logon costs an argon2 hash (tens of milliseconds of a
//! core); 500 clients logging on at once used to start 500 hashes on the blocking pool, which
//! shared the cores among all of them, so every logon — an administrator's from another
//! address too — took as long as the whole storm (bench/load.sh: p50 11.5 s). Now at most one
//! hash per core runs, and each freed slot goes to the next address in turn: a storm from one
//! address delays another address's logon by about one hash, and the blocking pool is left to
//! the requests that need it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

#[derive(Default)]
struct State {
    /// Hashes running (slots handed out).
    running: usize,
    /// Addresses with logons waiting, in the order their turns come.
    turns: VecDeque<Option<IpAddr>>,
    /// The logons waiting, per address, oldest first.
    waiting: HashMap<Option<IpAddr>, VecDeque<oneshot::Sender<()>>>,
}

/// The gate: `slots` logons hash at once.
pub(crate) struct LogonGate {
    slots: usize,
    state: Mutex<State>,
}

/// A slot; dropping it hands the slot to the next address in turn.
pub(crate) struct Slot {
    gate: Arc<LogonGate>,
}

impl LogonGate {
    /// One slot per core.
    pub(crate) fn new() -> Arc<LogonGate> {
        let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(LogonGate {
            slots,
            state: Mutex::new(State::default()),
        })
    }

    /// Wait for a slot for a logon from `address`.
    pub(crate) async fn enter(self: &Arc<Self>, address: Option<IpAddr>) -> Slot {
        let rx = {
            let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let s = &mut *guard;
            if s.running < self.slots && s.turns.is_empty() {
                s.running += 1;
                return Slot { gate: self.clone() };
            }
            let (tx, rx) = oneshot::channel();
            let queue = s.waiting.entry(address).or_default();
            if queue.is_empty() {
                s.turns.push_back(address);
            }
            queue.push_back(tx);
            rx
        };
        // The slot is handed over with the message; a closed channel cannot happen while the
        // gate lives (it holds the sender until it sends).
        let _ = rx.await;
        Slot { gate: self.clone() }
    }

    /// Hand a freed slot to the next waiting logon, taking turns between addresses; logons whose
    /// client went away are skipped.
    fn release(&self) {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let s = &mut *guard;
        while let Some(address) = s.turns.pop_front() {
            let Some(queue) = s.waiting.get_mut(&address) else {
                continue;
            };
            let next = queue.pop_front();
            if queue.is_empty() {
                s.waiting.remove(&address);
            } else {
                s.turns.push_back(address);
            }
            if let Some(tx) = next {
                if tx.send(()).is_ok() {
                    // The slot passes on: `running` is unchanged.
                    return;
                }
            }
        }
        s.running = s.running.saturating_sub(1);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
    }

    #[tokio::test]
    async fn a_second_address_gets_the_next_slot_ahead_of_a_storm_from_the_first() {
        let gate = Arc::new(LogonGate {
            slots: 1,
            state: Mutex::new(State::default()),
        });
        let first = gate.enter(ip(1)).await;
        // Ten logons from address 1 queue, then one from address 2.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..10u8 {
            let (g, o) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = g.enter(ip(1)).await;
                o.lock().unwrap().push(n);
            }));
            tokio::task::yield_now().await;
        }
        let (g, o) = (gate.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = g.enter(ip(2)).await;
            o.lock().unwrap().push(100);
        }));
        // Let every task reach the gate.
        while gate
            .state
            .lock()
            .unwrap()
            .waiting
            .values()
            .map(VecDeque::len)
            .sum::<usize>()
            < 11
        {
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // Address 1's oldest waiter, then address 2, then the rest of address 1 in order.
        assert_eq!(order, [0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(gate.state.lock().unwrap().running, 0);
    }

    #[tokio::test]
    async fn a_logon_whose_client_went_away_passes_its_turn_on() {
        let gate = Arc::new(LogonGate {
            slots: 1,
            state: Mutex::new(State::default()),
        });
        let first = gate.enter(ip(1)).await;
        let g = gate.clone();
        let gone = tokio::spawn(async move {
            let _slot = g.enter(ip(2)).await;
        });
        while gate.state.lock().unwrap().turns.is_empty() {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        let g = gate.clone();
        let next = tokio::spawn(async move {
            let _slot = g.enter(ip(3)).await;
        });
        while gate.state.lock().unwrap().turns.len() < 2 {
            tokio::task::yield_now().await;
        }
        drop(first);
        next.await.unwrap();
        assert_eq!(gate.state.lock().unwrap().running, 0);
    }
}
