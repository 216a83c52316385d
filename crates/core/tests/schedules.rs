//! The scheduler driven by a manual clock: a month of daily, selected-days, monthly and
//! periodic schedules starts exactly the runs due (counted, at their instants); a failed run is
//! retried RetryTimes times RetryTimeout apart; a run still going when the backup window closes
//! is stopped; a chained job runs after its previous job; a run missed while the server was
//! down starts once at start-up; the background thread makes the passes on its own.

use emrest_core::job_admin::JobChanges;
use emrest_core::jobs::Actor;
use emrest_core::schedule::{DailyKind, HourGrid, MonthDay, Recurrence, Retry, Schedule};
use emrest_core::scheduler::{Fired, ManualClock, Scheduler};
use emrest_core::{Millis, Owner, SessionResult};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

mod common;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;
/// 2026-03-01T00:00:00Z, a Sunday.
const MARCH_1: Millis = 1_772_323_200_000;

fn at(day: i64, hour: i64, minute: i64) -> Millis {
    MARCH_1 + (day - 1) * DAY + hour * HOUR + minute * MINUTE
}

fn actor(core: &Owner) -> Actor {
    core.jobs().local_actor(None).expect("actor")
}

fn schedule(recurrence: Recurrence) -> Schedule {
    Schedule {
        recurrence,
        offset_minutes: 0,
        retry: None,
        window: None,
    }
}

fn new_job(core: &Owner, name: &str, vm: &str, s: Schedule) -> Uuid {
    let job = core
        .jobs()
        .create_job(name, &[vm.into()], 3, "")
        .expect("create");
    let changes = JobChanges {
        schedule: Some(Some(s)),
        ..JobChanges::default()
    };
    core.jobs()
        .edit_job(&actor(core), job.id, changes)
        .expect("edit");
    job.id
}

/// Make passes every `step` from `from` (inclusive) to `to` (exclusive), letting each run
/// finish before the next pass; returns what the passes did.
fn drive(
    core: &Owner,
    sched: &Scheduler,
    clock: &ManualClock,
    from: Millis,
    to: Millis,
    step: Millis,
) -> Vec<Fired> {
    let mut all = Vec::new();
    let mut t = from;
    while t < to {
        clock.set(t);
        let fired = sched.pass(core).expect("pass");
        if !fired.is_empty() {
            assert!(
                core.jobs().wait_jobs_idle(Duration::from_secs(120)),
                "runs end"
            );
        }
        all.extend(fired);
        t += step;
    }
    all
}

fn started(fired: &[Fired], job: Uuid) -> Vec<Millis> {
    fired
        .iter()
        .filter_map(|f| match f {
            Fired::Started { job: j, at } if *j == job => Some(*at),
            _ => None,
        })
        .collect()
}

/// Move a VM's disk images away (so its backups fail) or back.
fn hide_disks(dir: &std::path::Path, vm: &str, hide: bool) {
    fn walk(p: &std::path::Path, vm: &str, hide: bool) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            let config = std::fs::read_to_string(path.join("vm.json")).unwrap_or_default();
            if !config.contains(&format!("\"{vm}\"")) {
                walk(&path, vm, hide);
                continue;
            }
            for f in std::fs::read_dir(&path).expect("vm folder").flatten() {
                let name = f.path().to_string_lossy().to_string();
                if hide && name.ends_with(".img") {
                    std::fs::rename(&name, format!("{name}.hidden")).expect("hide");
                } else if !hide && name.ends_with(".hidden") {
                    std::fs::rename(&name, name.trim_end_matches(".hidden")).expect("show");
                }
            }
        }
    }
    walk(dir, vm, hide);
}

#[test]
fn a_simulated_month_starts_exactly_the_runs_each_schedule_names() {
    let (_dir, core, _) = common::world(1, 2);
    let every_day = new_job(
        &core,
        "Daily",
        "web01",
        schedule(Recurrence::Daily {
            kind: DailyKind::Everyday,
            days: (0..7).collect(),
            minute: 22 * 60,
        }),
    );
    let mon_wed_fri = new_job(
        &core,
        "MonWedFri",
        "db01",
        schedule(Recurrence::Daily {
            kind: DailyKind::SelectedDays,
            days: vec![1, 3, 5],
            minute: 90,
        }),
    );
    let fourth_saturday = new_job(
        &core,
        "Monthly",
        "app01",
        schedule(Recurrence::Monthly {
            day: MonthDay::Nth(4, 6),
            months: (0..12).collect(),
            minute: 22 * 60,
        }),
    );
    let mut office = HourGrid(vec![vec![false; 24]; 7]);
    for d in 1..=5 {
        for h in 8..20 {
            office.0[d][h] = true;
        }
    }
    let six_hourly = new_job(
        &core,
        "SixHourly",
        "file01",
        schedule(Recurrence::Periodically {
            period_minutes: 360,
            hours: true,
            grid: office,
        }),
    );
    let clock = Arc::new(ManualClock::new(MARCH_1 - HOUR));
    let sched = Scheduler::new(&core, clock.clone()).expect("scheduler");
    // The first pass only computes the next runs.
    assert!(sched.pass(&core).expect("pass").is_empty());
    let fired = drive(&core, &sched, &clock, MARCH_1, at(32, 0, 0), 30 * MINUTE);
    assert!(
        !fired.iter().any(|f| matches!(f, Fired::Failed { .. })),
        "{fired:?}"
    );

    let daily = started(&fired, every_day);
    assert_eq!(daily, (1..=31).map(|d| at(d, 22, 0)).collect::<Vec<_>>());
    let mwf = started(&fired, mon_wed_fri);
    let expected: Vec<Millis> = [2, 4, 6, 9, 11, 13, 16, 18, 20, 23, 25, 27, 30]
        .iter()
        .map(|d| at(*d, 1, 30))
        .collect();
    assert_eq!(mwf, expected);
    assert_eq!(started(&fired, fourth_saturday), vec![at(28, 22, 0)]);
    let periodic = started(&fired, six_hourly);
    assert_eq!(periodic.len(), 44, "22 weekdays × 12:00 and 18:00");
    assert!(periodic
        .iter()
        .all(|t| [12, 18].contains(&((t - MARCH_1).rem_euclid(DAY) / HOUR))));

    // Every start made a backup session that succeeded.
    let mut counts = BTreeMap::new();
    for (job, n) in [
        (every_day, 31),
        (mon_wed_fri, 13),
        (fourth_saturday, 1),
        (six_hourly, 44),
    ] {
        let sessions = core.view().backup_sessions(Some(job)).expect("sessions");
        assert!(sessions.iter().all(|s| s.result == SessionResult::Success));
        counts.insert(core.view().job(job).expect("job").name, sessions.len());
        assert_eq!(sessions.len(), n);
    }
    // The job shows its next run: 1 April 22:00.
    assert_eq!(
        core.view().job(every_day).expect("job").next_run,
        Some(at(32, 22, 0))
    );
}

#[test]
fn a_failed_run_is_retried_retry_times_retry_timeout_apart_then_left() {
    let (dir, core, _) = common::world(1, 2);
    let mut s = schedule(Recurrence::Daily {
        kind: DailyKind::Everyday,
        days: (0..7).collect(),
        minute: 22 * 60,
    });
    s.retry = Some(Retry {
        times: 2,
        timeout_minutes: 10,
    });
    let job = new_job(&core, "Flaky", "web01", s);
    hide_disks(dir.path(), "web01", true);
    let clock = Arc::new(ManualClock::new(at(1, 21, 0)));
    let sched = Scheduler::new(&core, clock.clone()).expect("scheduler");
    sched.pass(&core).expect("pass");
    let fired = drive(&core, &sched, &clock, at(1, 22, 0), at(2, 0, 0), 5 * MINUTE);
    let retries: Vec<(u32, Millis)> = fired
        .iter()
        .filter_map(|f| match f {
            Fired::Retried {
                job: j,
                attempt,
                at,
            } if *j == job => Some((*attempt, *at)),
            _ => None,
        })
        .collect();
    // 22:00 fails; the 22:05 pass sees it, the retry is due 22:15; and again 22:30.
    assert_eq!(retries, vec![(1, at(1, 22, 15)), (2, at(1, 22, 30))]);
    let sessions = core.view().backup_sessions(Some(job)).expect("sessions");
    assert_eq!(sessions.len(), 3);
    assert!(sessions.iter().all(|s| s.result == SessionResult::Failed));
    assert_eq!(sessions.iter().filter(|s| s.is_retry).count(), 2);
    // Once the VM is back, the next day's run succeeds and is not retried.
    hide_disks(dir.path(), "web01", false);
    let fired = drive(
        &core,
        &sched,
        &clock,
        at(2, 21, 55),
        at(3, 0, 0),
        5 * MINUTE,
    );
    assert_eq!(started(&fired, job), vec![at(2, 22, 0)]);
    assert!(!fired.iter().any(|f| matches!(f, Fired::Retried { .. })));
    let sessions = core.view().backup_sessions(Some(job)).expect("sessions");
    assert_eq!(sessions.len(), 4);
    assert_eq!(
        sessions.iter().max_by_key(|s| s.created).map(|s| s.result),
        Some(SessionResult::Success)
    );
}

#[test]
fn a_chained_job_runs_after_each_run_of_its_previous_job() {
    let (_dir, core, _) = common::world(1, 2);
    let parent = new_job(
        &core,
        "Parent",
        "web01",
        schedule(Recurrence::Daily {
            kind: DailyKind::Everyday,
            days: (0..7).collect(),
            minute: 22 * 60,
        }),
    );
    let child = new_job(
        &core,
        "Child",
        "db01",
        schedule(Recurrence::AfterJob { previous: parent }),
    );
    let clock = Arc::new(ManualClock::new(at(1, 12, 0)));
    let sched = Scheduler::new(&core, clock.clone()).expect("scheduler");
    let fired = drive(&core, &sched, &clock, at(1, 12, 0), at(4, 0, 0), 5 * MINUTE);
    let chained: Vec<Millis> = fired
        .iter()
        .filter_map(|f| match f {
            Fired::Chained { job, after, at } if *job == child && *after == parent => Some(*at),
            _ => None,
        })
        .collect();
    assert_eq!(started(&fired, parent).len(), 3);
    // The pass after each parent run (22:00) starts the child: 22:05.
    assert_eq!(
        chained,
        vec![at(1, 22, 5), at(2, 22, 5), at(3, 22, 5)],
        "{fired:?}"
    );
    let parent_runs = core.view().backup_sessions(Some(parent)).expect("sessions");
    let child_runs = core.view().backup_sessions(Some(child)).expect("sessions");
    assert_eq!(child_runs.len(), 3);
    for (p, c) in parent_runs.iter().zip(&child_runs) {
        assert!(
            c.created >= p.ended.expect("ended"),
            "the child starts after"
        );
    }
    // A chain that would loop is refused.
    let loop_back = JobChanges {
        schedule: Some(Some(schedule(Recurrence::AfterJob { previous: child }))),
        ..JobChanges::default()
    };
    assert!(core
        .jobs()
        .edit_job(&actor(&core), parent, loop_back)
        .is_err());
}

#[test]
fn a_run_still_going_when_the_backup_window_closes_is_stopped() {
    let (_dir, core, _) = common::world(1, 2);
    // A VM big enough (2 GiB, sparse) that the run is still reading at the next pass.
    let root = core.infrastructure().hierarchy_roots().expect("roots")[0].id;
    let ds = core.inventory().datastores(root).expect("ds")[0]
        .object_ref
        .clone();
    let vm = core
        .inventory()
        .create_vm(
            root,
            &ds,
            "big01",
            &[emrest_platform::DiskInfo {
                name: "disk-0".into(),
                size: 2 << 30,
            }],
            emrest_platform::PowerState::PoweredOn,
        )
        .expect("vm");
    let mut window = HourGrid(vec![vec![false; 24]; 7]);
    for day in &mut window.0 {
        day[22] = true;
    }
    let mut s = schedule(Recurrence::Periodically {
        period_minutes: 60,
        hours: true,
        grid: HourGrid::default(),
    });
    s.window = Some(window);
    let job = core
        .jobs()
        .create_job("Windowed", &[vm.hierarchy_obj_ref()], 3, "")
        .expect("create")
        .id;
    let changes = JobChanges {
        schedule: Some(Some(s)),
        ..JobChanges::default()
    };
    core.jobs()
        .edit_job(&actor(&core), job, changes)
        .expect("edit");
    let clock = Arc::new(ManualClock::new(at(1, 20, 30)));
    let sched = Scheduler::new(&core, clock.clone()).expect("scheduler");
    sched.pass(&core).expect("pass");
    // 21:00 is outside the window: skipped.
    clock.set(at(1, 21, 0));
    assert_eq!(
        sched.pass(&core).expect("pass"),
        vec![Fired::SkippedOutsideWindow {
            job,
            at: at(1, 21, 0)
        }]
    );
    clock.set(at(1, 22, 0));
    assert_eq!(
        sched.pass(&core).expect("pass"),
        vec![Fired::Started {
            job,
            at: at(1, 22, 0)
        }]
    );
    // 23:00: the window has closed while the run reads; the pass stops it (and skips the
    // 23:00 run, due while it still runs).
    clock.set(at(1, 23, 0));
    let fired = sched.pass(&core).expect("pass");
    assert!(
        fired.contains(&Fired::StoppedByWindow {
            job,
            at: at(1, 23, 0)
        }),
        "{fired:?}"
    );
    assert!(core.jobs().wait_jobs_idle(Duration::from_secs(120)));
    let s = &core.view().backup_sessions(Some(job)).expect("sessions")[0];
    assert_eq!(s.result, SessionResult::Failed);
    assert!(
        s.failure_message
            .as_deref()
            .unwrap_or("")
            .contains("backup window"),
        "{:?}",
        s.failure_message
    );
    assert!(s.restore_point_id.is_none());
}

#[test]
fn a_run_missed_while_the_server_was_down_starts_once_at_start_up() {
    let (_dir, core, _) = common::world(1, 2);
    let job = new_job(
        &core,
        "Nightly",
        "web01",
        schedule(Recurrence::Daily {
            kind: DailyKind::Everyday,
            days: (0..7).collect(),
            minute: 22 * 60,
        }),
    );
    let clock = Arc::new(ManualClock::new(at(1, 12, 0)));
    let before = Scheduler::new(&core, clock.clone()).expect("scheduler");
    before.pass(&core).expect("pass");
    assert_eq!(
        core.view().job(job).expect("job").next_run,
        Some(at(1, 22, 0))
    );
    drop(before);
    // The server was down from 1 March 12:00 to 4 March 09:00: three runs missed.
    clock.set(at(4, 9, 0));
    let after = Scheduler::new(&core, clock.clone()).expect("scheduler");
    let fired = drive(
        &core,
        &after,
        &clock,
        at(4, 9, 0),
        at(4, 12, 0),
        30 * MINUTE,
    );
    assert_eq!(
        fired,
        vec![Fired::MissedStarted {
            job,
            due: at(1, 22, 0),
            at: at(4, 9, 0)
        }]
    );
    assert_eq!(
        core.view()
            .backup_sessions(Some(job))
            .expect("sessions")
            .len(),
        1
    );
    assert_eq!(
        core.view().job(job).expect("job").next_run,
        Some(at(4, 22, 0))
    );
}

#[test]
fn a_switched_off_schedule_starts_nothing() {
    let (_dir, core, _) = common::world(1, 2);
    let job = new_job(
        &core,
        "Off",
        "web01",
        schedule(Recurrence::Daily {
            kind: DailyKind::Everyday,
            days: (0..7).collect(),
            minute: 60,
        }),
    );
    core.jobs()
        .toggle_job_schedule(&actor(&core), job)
        .expect("toggle");
    assert!(!core.view().job(job).expect("job").schedule_enabled);
    let clock = Arc::new(ManualClock::new(MARCH_1));
    let sched = Scheduler::new(&core, clock.clone()).expect("scheduler");
    let fired = drive(&core, &sched, &clock, MARCH_1, at(4, 0, 0), HOUR);
    assert!(fired.is_empty(), "{fired:?}");
    core.jobs()
        .toggle_job_schedule(&actor(&core), job)
        .expect("toggle");
    let fired = drive(&core, &sched, &clock, at(4, 0, 0), at(5, 0, 0), HOUR);
    assert_eq!(started(&fired, job), vec![at(4, 1, 0)]);
}

#[test]
fn the_background_scheduler_starts_a_due_run_on_its_own() {
    let (_dir, core, _) = common::world(1, 2);
    let job = new_job(
        &core,
        "Background",
        "web01",
        schedule(Recurrence::Daily {
            kind: DailyKind::Everyday,
            days: (0..7).collect(),
            minute: 22 * 60,
        }),
    );
    let clock = Arc::new(ManualClock::new(at(1, 21, 0)));
    core.jobs()
        .start_scheduler(clock.clone(), Duration::from_millis(20))
        .expect("scheduler");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // The thread's first pass records the next run; nothing runs before 22:00.
    while core.view().job(job).expect("job").next_run.is_none() {
        assert!(std::time::Instant::now() < deadline, "no pass");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        core.view().job(job).expect("job").next_run,
        Some(at(1, 22, 0))
    );
    assert!(core
        .view()
        .backup_sessions(Some(job))
        .expect("sessions")
        .is_empty());
    clock.set(at(1, 22, 0));
    while core
        .view()
        .backup_sessions(Some(job))
        .expect("sessions")
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the due run did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(core.jobs().wait_jobs_idle(Duration::from_secs(60)));
    assert_eq!(
        core.view().job(job).expect("job").next_run,
        Some(at(2, 22, 0))
    );
    assert_eq!(
        core.view()
            .backup_sessions(Some(job))
            .expect("sessions")
            .len(),
        1
    );
}
