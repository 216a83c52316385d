//! The one task runner. Every long operation — a restore, a run of a backup job, garbage
//! collection — is admitted here, runs here, and leaves here:
//!
//! - **admission** decides what may run beside what: one run per backup job, garbage collection
//!   never beside a job's run (a run writes indexes before the catalog knows them);
//! - **execution** puts a run on a worker thread of its own (restores wait for one of a bounded
//!   number of slots) or runs it in the caller's thread; the engine sees only its
//!   [`RunControl`] (cancel, progress), never HTTP or the catalog's bookkeeping;
//! - **clean-up** happens whatever the engine does: a panic becomes the failed outcome its
//!   engine records (`the restore worker panicked`), and the run leaves the table when its
//!   worker ends, so a cancel or a progress query never meets a stale entry.
//!
//! Recovery at start (tasks and sessions left Running by a crash are marked failed) is
//! `Core::open`'s: nothing can run before it.

use crate::metrics::Metrics;
use crate::restore::RunControl;
use crate::{CoreError, CoreResult};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use uuid::Uuid;

/// What a run is, and so what it excludes and whether it waits for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Work {
    /// A restore, by its restore session; waits for one of the restore slots. Admitted
    /// before its task and session are recorded, so a full queue records nothing.
    Restore(Uuid),
    /// A run of a backup job, by the job: one at a time per job.
    Job(Uuid),
    /// Garbage collection: never beside a job's run.
    Gc,
}

impl Work {
    /// What the metrics call it.
    fn kind(self) -> &'static str {
        match self {
            Work::Restore(_) => "restore",
            Work::Job(_) => "backup",
            Work::Gc => "gc",
        }
    }
}

/// Why a run was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The same work is running, in this session when it has one.
    Busy { session: Option<Uuid> },
    /// Garbage collection runs: no backup job starts meanwhile.
    Gc,
    /// A backup job runs: garbage collection waits for it.
    Job,
    /// As many restores as may run and wait are admitted already.
    Full { admitted: usize },
}

/// An engine the runner executes: its work, then the recording of the outcome.
pub(crate) trait Engine {
    /// What the engine's result is.
    type Output;
    /// What a panic message calls the worker ("restore" gives "the restore worker panicked").
    const WHAT: &'static str;
    /// The worker thread's name.
    fn thread_name(&self) -> String;
    /// The work itself.
    fn run(&mut self) -> CoreResult<Self::Output>;
    /// Records the outcome (a panic in `run` arrives here as an `Internal` error). Runs before
    /// the run leaves the table and gives its slot back.
    fn finish(self, outcome: CoreResult<Self::Output>);
    /// The result the metrics count the run under: `success`, `warning` or `failed`.
    fn result(&self, outcome: &CoreResult<Self::Output>) -> &'static str {
        if outcome.is_ok() {
            "success"
        } else {
            "failed"
        }
    }
}

/// A run in the table.
struct Entry {
    session: Option<Uuid>,
    ctl: Arc<RunControl>,
}

/// The runs in flight and the restore slots.
pub(crate) struct Runner {
    runs: Mutex<HashMap<Work, Entry>>,
    slots: Slots,
    /// Restores admitted at once: running and waiting for a slot.
    max_restores: usize,
    /// Restore slots in all.
    workers: usize,
    /// Runs started and finished, and their durations, are counted here.
    metrics: Arc<Metrics>,
}

impl Runner {
    /// A runner that lets `restore_workers` restores (at least one) run at once and
    /// `restore_queue` more wait for a slot.
    pub(crate) fn new(
        restore_workers: usize,
        restore_queue: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Runner> {
        let workers = restore_workers.max(1);
        Arc::new(Runner {
            runs: Mutex::new(HashMap::new()),
            slots: Slots {
                free: Mutex::new(workers),
                cv: Condvar::new(),
            },
            max_restores: workers.saturating_add(restore_queue),
            workers,
            metrics,
        })
    }

    /// Restores running, restores waiting for a slot, and backup job runs in flight now.
    pub(crate) fn levels(&self) -> (u64, u64, u64) {
        let (restores, jobs) = self.table().keys().fold((0u64, 0u64), |(r, j), w| match w {
            Work::Restore(_) => (r + 1, j),
            Work::Job(_) => (r, j + 1),
            Work::Gc => (r, j),
        });
        let free = *self
            .slots
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let running = (self.workers.saturating_sub(free) as u64).min(restores);
        (running, restores - running, jobs)
    }

    fn table(&self) -> MutexGuard<'_, HashMap<Work, Entry>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits `work` into the table, or says why not. It stays there, cancellable through
    /// `ctl` and showing its progress, until the returned admission is dropped or its run
    /// ends.
    pub(crate) fn admit(
        self: &Arc<Self>,
        work: Work,
        session: Option<Uuid>,
        ctl: Arc<RunControl>,
    ) -> Result<Admission, Refusal> {
        let mut runs = self.table();
        if let Some(e) = runs.get(&work) {
            return Err(Refusal::Busy { session: e.session });
        }
        let gc = runs.contains_key(&Work::Gc);
        if let Work::Restore(_) = work {
            let admitted = runs
                .keys()
                .filter(|w| matches!(w, Work::Restore(_)))
                .count();
            if admitted >= self.max_restores {
                return Err(Refusal::Full { admitted });
            }
        }
        match work {
            Work::Job(_) if gc => return Err(Refusal::Gc),
            Work::Gc if runs.keys().any(|w| matches!(w, Work::Job(_))) => return Err(Refusal::Job),
            _ => {}
        }
        runs.insert(work, Entry { session, ctl });
        Ok(Admission {
            runner: Arc::clone(self),
            work,
        })
    }

    /// The control of a run in flight (to cancel it).
    pub(crate) fn control(&self, work: Work) -> Option<Arc<RunControl>> {
        self.table().get(&work).map(|e| e.ctl.clone())
    }

    /// The session of a run in flight.
    pub(crate) fn session(&self, work: Work) -> Option<Uuid> {
        self.table().get(&work).and_then(|e| e.session)
    }

    /// The control of the run of `work` that works for `session`, if that one runs.
    pub(crate) fn control_in_session(&self, work: Work, session: Uuid) -> Option<Arc<RunControl>> {
        self.table()
            .get(&work)
            .filter(|e| e.session == Some(session))
            .map(|e| e.ctl.clone())
    }

    /// Whether `work` is running.
    pub(crate) fn is_running(&self, work: Work) -> bool {
        self.table().contains_key(&work)
    }

    /// Percent done of the run working for `session`, if one is.
    pub(crate) fn progress_of_session(&self, session: Uuid) -> Option<u8> {
        self.table()
            .values()
            .find(|e| e.session == Some(session))
            .map(|e| e.ctl.percent())
    }

    /// Whether no restore runs.
    pub(crate) fn no_restores(&self) -> bool {
        !self.table().keys().any(|w| matches!(w, Work::Restore(_)))
    }

    /// Whether no backup job runs.
    pub(crate) fn no_jobs(&self) -> bool {
        !self.table().keys().any(|w| matches!(w, Work::Job(_)))
    }
}

/// A run admitted into the table; dropping it takes the run out.
pub(crate) struct Admission {
    runner: Arc<Runner>,
    work: Work,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.runner.table().remove(&self.work);
    }
}

impl Admission {
    /// Runs `engine` on a worker thread of its own and returns at once. When no thread can be
    /// started, nothing ran: the run leaves the table and the error says so; recording that is
    /// the caller's.
    pub(crate) fn spawn<E: Engine + Send + 'static>(self, engine: E) -> CoreResult<()> {
        std::thread::Builder::new()
            .name(engine.thread_name())
            .spawn(move || self.execute(engine))
            .map(|_| ())
            .map_err(|e| CoreError::Internal(format!("cannot start a {} worker: {e}", E::WHAT)))
    }

    /// Runs `engine` to the end in this thread.
    pub(crate) fn run<E: Engine>(self, engine: E) {
        self.execute(engine)
    }

    /// Runs `work` to the end in this thread and returns what it returned (a panic becomes an
    /// `Internal` error naming `what`).
    pub(crate) fn run_here<T>(
        self,
        what: &str,
        work: impl FnOnce() -> CoreResult<T>,
    ) -> CoreResult<T> {
        let metrics = &self.runner.metrics;
        let kind = self.work.kind();
        metrics.run_started(kind);
        let started = std::time::Instant::now();
        let outcome = caught(what, work);
        let result = if outcome.is_ok() { "success" } else { "failed" };
        metrics.run_finished(kind, result, started.elapsed());
        outcome
    }

    fn execute<E: Engine>(self, mut engine: E) {
        let slot = matches!(self.work, Work::Restore(_)).then(|| self.runner.slots.acquire());
        let metrics = Arc::clone(&self.runner.metrics);
        let kind = self.work.kind();
        metrics.run_started(kind);
        let started = std::time::Instant::now();
        let outcome = caught(E::WHAT, || engine.run());
        let result = engine.result(&outcome);
        engine.finish(outcome);
        metrics.run_finished(kind, result, started.elapsed());
        // Out of the table first, then the slot back: a restore waiting for the slot finds the
        // table without this one.
        let runner = Arc::clone(&self.runner);
        drop(self);
        if slot.is_some() {
            runner.slots.release();
        }
    }
}

/// Runs `work`, turning a panic into an `Internal` error: a worker's panic fails its task
/// rather than losing it.
fn caught<T>(what: &str, work: impl FnOnce() -> CoreResult<T>) -> CoreResult<T> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(CoreError::Internal(format!("the {what} worker panicked"))))
}

/// The counting gate of the restore slots.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
    }

    fn release(&self) {
        *self.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cv.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn admit(r: &Arc<Runner>, w: Work) -> Result<Admission, Refusal> {
        r.admit(w, None, Arc::default())
    }

    #[test]
    fn one_run_per_job_and_gc_never_beside_a_job() {
        let r = Runner::new(1, 8, Arc::default());
        let job = Uuid::new_v4();
        let run = r
            .admit(Work::Job(job), Some(job), Arc::default())
            .expect("job");
        assert_eq!(
            admit(&r, Work::Job(job)).err(),
            Some(Refusal::Busy { session: Some(job) })
        );
        assert_eq!(admit(&r, Work::Gc).err(), Some(Refusal::Job));
        // Another job and a restore may run beside it.
        let other = admit(&r, Work::Job(Uuid::new_v4())).expect("other job");
        let restore = admit(&r, Work::Restore(Uuid::new_v4())).expect("restore");
        drop((run, other));
        let gc = admit(&r, Work::Gc).expect("gc once no job runs");
        assert_eq!(admit(&r, Work::Job(job)).err(), Some(Refusal::Gc));
        drop(gc);
        assert!(r.no_jobs() && !r.no_restores());
        drop(restore);
        assert!(r.no_restores());
    }

    struct Panics;
    impl Engine for Panics {
        type Output = ();
        const WHAT: &'static str = "test";
        fn thread_name(&self) -> String {
            "panics".into()
        }
        fn run(&mut self) -> CoreResult<()> {
            panic!("boom")
        }
        fn finish(self, outcome: CoreResult<()>) {
            assert!(
                matches!(outcome, Err(CoreError::Internal(m)) if m == "the test worker panicked")
            );
        }
    }

    #[test]
    fn restores_past_the_workers_and_the_queue_are_refused() {
        let r = Runner::new(2, 3, Arc::default());
        let admitted: Vec<Admission> = (0..5)
            .map(|_| admit(&r, Work::Restore(Uuid::new_v4())).expect("admitted"))
            .collect();
        assert_eq!(
            admit(&r, Work::Restore(Uuid::new_v4())).err(),
            Some(Refusal::Full { admitted: 5 })
        );
        drop(admitted);
        assert!(admit(&r, Work::Restore(Uuid::new_v4())).is_ok());
    }

    #[test]
    fn a_panic_reaches_finish_as_a_failure_and_the_run_leaves_the_table() {
        let r = Runner::new(1, 8, Arc::default());
        admit(&r, Work::Job(Uuid::nil()))
            .expect("admit")
            .run(Panics);
        assert!(r.no_jobs());
    }

    /// Holds its slot until told to go, and counts how many hold one at once.
    struct Holds {
        go: mpsc::Receiver<()>,
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        done: mpsc::Sender<()>,
    }
    impl Engine for Holds {
        type Output = ();
        const WHAT: &'static str = "test";
        fn thread_name(&self) -> String {
            "holds".into()
        }
        fn run(&mut self) -> CoreResult<()> {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(n, Ordering::SeqCst);
            let _ = self.go.recv();
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
        fn finish(self, _: CoreResult<()>) {
            let _ = self.done.send(());
        }
    }

    #[test]
    fn restores_run_through_the_bounded_slots() {
        let r = Runner::new(2, 8, Arc::default());
        let (now, most) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());
        let (done_tx, done_rx) = mpsc::channel();
        let mut gos = Vec::new();
        for i in 0..4 {
            let (go, rx) = mpsc::channel();
            gos.push(go);
            let engine = Holds {
                go: rx,
                now: Arc::clone(&now),
                most: Arc::clone(&most),
                done: done_tx.clone(),
            };
            admit(&r, Work::Restore(Uuid::from_u128(i)))
                .expect("admit")
                .spawn(engine)
                .expect("spawn");
        }
        // Two hold their slots; the others wait. (The pause gives a third the chance to enter
        // if the slots did not hold it back; it times nothing.)
        while now.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(now.load(Ordering::SeqCst), 2);
        for go in &gos {
            let _ = go.send(());
        }
        for _ in 0..4 {
            done_rx.recv().expect("a restore ended");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // finish ran before each left the table; wait for the last to leave.
        while !r.no_restores() {
            std::thread::yield_now();
        }
    }
}
