//! A small worker pool: scoped threads pulling item numbers from a shared counter.
//!
//! The first error (or a cancellation seen through [`Control`]) stops every
//! worker before its next item and is the one returned.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;

use crate::{Control, RepoError};

/// Workers for `items` items: the machine's parallelism clamped to 2..=8, never more than `items`.
pub(crate) fn worker_count(items: usize) -> usize {
    let cpus = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    cpus.min(items).max(1)
}

/// Runs `work(state, i)` for every `i` in `0..count` on worker threads.
///
/// Each worker builds its own state with `init` (buffers, codecs) and reuses it.
/// Returns the per-item results in item order and the final worker states.
pub(crate) fn run<W, T>(
    count: usize,
    ctl: &dyn Control,
    init: impl Fn() -> Result<W, RepoError> + Sync,
    work: impl Fn(&mut W, usize) -> Result<T, RepoError> + Sync,
) -> Result<(Vec<T>, Vec<W>), RepoError>
where
    W: Send,
    T: Send,
{
    run_on(worker_count(count), count, ctl, init, work)
}

/// Like [`run`] on `workers` threads (at least one, never more than `count`): for work that
/// waits on the device (synchronous direct writes) more threads than cores keep both busy.
pub(crate) fn run_on<W, T>(
    workers: usize,
    count: usize,
    ctl: &dyn Control,
    init: impl Fn() -> Result<W, RepoError> + Sync,
    work: impl Fn(&mut W, usize) -> Result<T, RepoError> + Sync,
) -> Result<(Vec<T>, Vec<W>), RepoError>
where
    W: Send,
    T: Send,
{
    if count == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<RepoError>> = Mutex::new(None);
    let fail = |e: RepoError| {
        let mut slot = first_error.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(e);
        }
        stop.store(true, Ordering::Relaxed);
    };

    let outputs: Vec<(W, Vec<(usize, T)>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers.clamp(1, count.max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut state = match init() {
                        Ok(st) => st,
                        Err(e) => {
                            fail(e);
                            return None;
                        }
                    };
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        if ctl.cancelled() {
                            fail(RepoError::Cancelled);
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        match work(&mut state, i) {
                            Ok(t) => done.push((i, t)),
                            Err(e) => {
                                fail(e);
                                break;
                            }
                        }
                    }
                    Some((state, done))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });

    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(e);
    }
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut states = Vec::with_capacity(outputs.len());
    for (state, done) in outputs {
        for (i, t) in done {
            slots[i] = Some(t);
        }
        states.push(state);
    }
    // Without an error every item was processed exactly once.
    Ok((slots.into_iter().flatten().collect(), states))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoControl;

    #[test]
    fn results_come_back_in_item_order() {
        let (out, states) = run(
            1000,
            &NoControl,
            || Ok(0u32),
            |n, i| {
                *n += 1;
                Ok(i * 2)
            },
        )
        .unwrap();
        assert_eq!(out, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(states.iter().sum::<u32>(), 1000);
    }

    #[test]
    fn first_error_is_returned() {
        let r = run(
            100,
            &NoControl,
            || Ok(()),
            |_, i| {
                if i == 37 {
                    Err(RepoError::Cancelled)
                } else {
                    Ok(i)
                }
            },
        );
        assert!(matches!(r, Err(RepoError::Cancelled)));
    }
}
