//! The scheduler: a pass over the jobs whose schedule is on, made every few seconds by a
//! background thread of the server (or step by step by a test), that starts the runs due
//! through the same path as `POST /jobs/{ID}?action=start`.
//!
//! Time comes from a [`Clock`]: the system clock in production, a [`ManualClock`] in tests, so
//! a test drives weeks of schedule in milliseconds. Rules (README.md "Schedules"):
//! - A run is due at the job's recorded next run; the pass starts it and records the next one
//!   after the pass's time. A job with none recorded (new or edited schedule) gets one and
//!   does not run.
//! - Missed runs: a next run that fell due while the server was down is started once by the
//!   first pass after start-up, then the schedule goes on from then (Enterprise Manager starts
//!   a missed run once at start-up); the other missed runs are skipped.
//! - A run due while the job still runs is skipped; one due outside the backup window too.
//! - Backup window: a run still going when the window closes is stopped (as Enterprise Manager
//!   terminates a job that does not complete within its window); it then counts as failed.
//! - Retries: a scheduled run that ends Failed is retried (only its failed VMs, as
//!   `?action=retry`) `RetryTimeout` minutes after the pass that sees it end, up to
//!   `RetryTimes` times.
//! - Chaining: a job scheduled after another starts when a run of that job ends (whatever its
//!   result, retries included), once per run.

use crate::error::CoreResult;
use crate::jobs::Actor;
use crate::model::{Millis, SessionResult};
use crate::runner::Work;
use crate::schedule::{self, Recurrence};
use crate::Core;
use crate::Jobs;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Where the scheduler reads the time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the epoch.
    fn now(&self) -> Millis;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        crate::model::now_millis()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: Millis) -> ManualClock {
        ManualClock(AtomicI64::new(at))
    }
    /// Set the time.
    pub fn set(&self, at: Millis) {
        self.0.store(at, Ordering::SeqCst);
    }
    /// Move the time on.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            by.as_millis().min(i64::MAX as u128) as i64,
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a pass did to one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fired {
    /// A scheduled run was started.
    Started { job: Uuid, at: Millis },
    /// The first pass after start-up started a run that fell due while the server was down.
    MissedStarted { job: Uuid, due: Millis, at: Millis },
    /// A failed scheduled run was retried (`attempt` counts from 1).
    Retried { job: Uuid, attempt: u32, at: Millis },
    /// A chained job was started after a run of the previous one.
    Chained { job: Uuid, after: Uuid, at: Millis },
    /// A run fell due while the job was still running.
    SkippedRunning { job: Uuid, at: Millis },
    /// A run fell due outside the backup window.
    SkippedOutsideWindow { job: Uuid, at: Millis },
    /// A run still going when the backup window closed was stopped.
    StoppedByWindow { job: Uuid, at: Millis },
    /// Starting a run failed (the message says why).
    Failed {
        job: Uuid,
        at: Millis,
        message: String,
    },
}

/// The scheduled run a job is following, for its retries.
#[derive(Debug)]
struct Follow {
    session: Uuid,
    /// Retries made so far.
    attempt: u32,
    /// When the next retry is due, once the run has failed.
    retry_at: Option<Millis>,
}

/// The scheduler of one `Core` (passed to each [`Scheduler::pass`]).
pub struct Scheduler {
    clock: Arc<dyn Clock>,
    follows: Mutex<HashMap<Uuid, Follow>>,
    passed: AtomicBool,
}

impl Scheduler {
    /// A scheduler reading `clock`; its runs are made as the built-in administrator (looked up
    /// at each pass: a pass while that account is missing starts nothing and fails).
    pub fn new(_core: &Core, clock: Arc<dyn Clock>) -> CoreResult<Scheduler> {
        Ok(Scheduler {
            clock,
            follows: Mutex::new(HashMap::new()),
            passed: AtomicBool::new(false),
        })
    }

    /// Make one pass at the clock's time; returns what it did.
    pub fn pass(&self, core: &Arc<Core>) -> CoreResult<Vec<Fired>> {
        let now = self.clock.now();
        let actor = core.jobs().local_actor(None)?;
        let first = !self.passed.swap(true, Ordering::SeqCst);
        let mut fired = Vec::new();
        let mut follows = self
            .follows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for job in core.everything().jobs()? {
            let Some(s) = job.schedule.clone().filter(|_| job.schedule_enabled) else {
                follows.remove(&job.id);
                continue;
            };
            let id = job.id;
            let running = core.jobs().job_running(id);
            if running && !schedule::in_window(&s, now) {
                if let Some(ctl) = core.runner.control(Work::Job(id)) {
                    if !ctl.cancelled.load(Ordering::SeqCst) {
                        ctl.cancel("the backup window closing");
                        fired.push(Fired::StoppedByWindow { job: id, at: now });
                    }
                }
            }
            // Retries of the scheduled run being followed.
            if let Some(f) = follows.get_mut(&id) {
                if f.retry_at.is_none() && !running {
                    let s_rec = core.everything().backup_session(f.session).ok();
                    let retries = s.retry.map(|r| r.times).unwrap_or(0);
                    match s_rec {
                        Some(r)
                            if r.ended.is_some()
                                && r.result == SessionResult::Failed
                                && f.attempt < retries =>
                        {
                            let minutes = s.retry.map(|r| r.timeout_minutes).unwrap_or(0);
                            f.retry_at = Some(now + Millis::from(minutes) * 60_000);
                        }
                        Some(r) if r.ended.is_none() => {}
                        _ => {
                            follows.remove(&id);
                        }
                    }
                }
            }
            if let Some(f) = follows.get_mut(&id) {
                if f.retry_at.is_some_and(|t| t <= now) && !running {
                    match core.jobs().retry_job(&actor, id) {
                        Ok((_, session)) => {
                            f.attempt += 1;
                            f.retry_at = None;
                            f.session = session;
                            fired.push(Fired::Retried {
                                job: id,
                                attempt: f.attempt,
                                at: now,
                            });
                        }
                        Err(e) => {
                            follows.remove(&id);
                            fired.push(Fired::Failed {
                                job: id,
                                at: now,
                                message: e.to_string(),
                            });
                        }
                    }
                    continue;
                }
            }
            let running = core.jobs().job_running(id);
            match s.recurrence {
                Recurrence::AfterJob { previous } => {
                    let last_end = core
                        .catalog()
                        .backup_sessions(Some(previous))?
                        .iter()
                        .filter_map(|r| r.ended)
                        .max();
                    let mark = core.catalog().job_chain_mark(id)?;
                    match (mark, last_end) {
                        // Newly chained: follow the previous job's next runs, not its past.
                        (None, end) => core.catalog().set_job_chain_mark(id, end.unwrap_or(0))?,
                        (Some(m), Some(end)) if end > m => {
                            core.catalog().set_job_chain_mark(id, end)?;
                            if running || core.jobs().job_running(previous) {
                                fired.push(Fired::SkippedRunning { job: id, at: now });
                                continue;
                            }
                            Self::start(
                                core,
                                &actor,
                                &mut follows,
                                &mut fired,
                                id,
                                now,
                                |job, at| Fired::Chained {
                                    job,
                                    after: previous,
                                    at,
                                },
                            );
                        }
                        _ => {}
                    }
                }
                _ => {
                    let Some(due) = job.next_run else {
                        let next = schedule::next_run(&s, now);
                        core.catalog().set_job_next_run(id, next)?;
                        continue;
                    };
                    if due > now {
                        continue;
                    }
                    core.catalog()
                        .set_job_next_run(id, schedule::next_run(&s, now))?;
                    if running {
                        fired.push(Fired::SkippedRunning { job: id, at: now });
                    } else if !schedule::in_window(&s, now) {
                        fired.push(Fired::SkippedOutsideWindow { job: id, at: now });
                    } else if first && due < now {
                        Self::start(
                            core,
                            &actor,
                            &mut follows,
                            &mut fired,
                            id,
                            now,
                            |job, at| Fired::MissedStarted { job, due, at },
                        );
                    } else {
                        Self::start(
                            core,
                            &actor,
                            &mut follows,
                            &mut fired,
                            id,
                            now,
                            |job, at| Fired::Started { job, at },
                        );
                    }
                }
            }
        }
        Ok(fired)
    }

    fn start(
        core: &Arc<Core>,
        actor: &Actor,
        follows: &mut HashMap<Uuid, Follow>,
        fired: &mut Vec<Fired>,
        id: Uuid,
        now: Millis,
        what: impl FnOnce(Uuid, Millis) -> Fired,
    ) {
        match core.jobs().start_job(actor, id) {
            Ok((_, session)) => {
                follows.insert(
                    id,
                    Follow {
                        session,
                        attempt: 0,
                        retry_at: None,
                    },
                );
                fired.push(what(id, now));
            }
            Err(e) => fired.push(Fired::Failed {
                job: id,
                at: now,
                message: e.to_string(),
            }),
        }
    }
}

impl Jobs<'_> {
    /// Run the scheduler every `every` on a background thread for as long as this `Core`
    /// lives, reading `clock`.
    pub fn start_scheduler(&self, clock: Arc<dyn Clock>, every: Duration) -> CoreResult<()> {
        let scheduler = Scheduler::new(self, clock)?;
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || loop {
                // The Core is held only during a pass, so dropping it ends the thread.
                {
                    let Some(core) = weak.upgrade() else { return };
                    match scheduler.pass(&core) {
                        Ok(fired) => {
                            for f in fired {
                                tracing::info!("scheduler: {f:?}");
                            }
                        }
                        Err(e) => tracing::warn!("scheduler pass failed: {e}"),
                    }
                }
                std::thread::sleep(every);
            })
            .map(|_| ())
            .map_err(|e| crate::CoreError::Internal(format!("cannot start the scheduler: {e}")))
    }
}
