//! `<JobScheduleOptions>` ↔ `core::schedule::Schedule` (jobscheduleoptions.md,
//! put_jobs_id_actionedit.md). Spellings are checked here, each refusal naming its element;
//! what a schedule means is core's (`schedule.rs`, `scheduler.rs`).
//!
//! An edit sends "all resource properties or only those that you want to edit": options left
//! out keep their current value, so `<RetryOptions><RetryTimes>5</RetryTimes></RetryOptions>`
//! alone changes the retries of the schedule the job has.

use emrest_core::schedule::{
    self, month_named, parse_offset, parse_time, weekday_named, DailyKind, HourGrid, MonthDay,
    Recurrence, Retry, Schedule, MONTHS, WEEKDAYS,
};
use emrest_core::CoreError;
use emrest_wire as wire;

fn invalid(element: &str, message: impl Into<String>) -> CoreError {
    CoreError::invalid(element, message)
}

fn shown(v: &str) -> String {
    format!("{:?}", wire::clip(v, 40))
}

fn weekday(element: &str, name: &str) -> Result<u8, CoreError> {
    weekday_named(name).ok_or_else(|| {
        invalid(
            element,
            format!(
                "{element}: {} is not a day of the week (Sunday … Saturday)",
                shown(name)
            ),
        )
    })
}

/// The clock time of a daily or monthly option and the offset it implies: the `Time`'s own
/// offset, else `TimeOffsetUtc` (hours or ±hh:mm), else the current offset.
fn time_and_offset(
    time: &Option<String>,
    offset: &Option<String>,
    current: i32,
) -> Result<(u32, i32), CoreError> {
    let Some(t) = time else {
        return Err(invalid(
            "Time",
            "Time is required when the option is enabled (e.g. 22:00:00)",
        ));
    };
    let (minute, own) = parse_time("Time", t)?;
    let offset = match (own, offset) {
        (Some(o), _) => o,
        (None, Some(o)) => parse_offset("TimeOffsetUtc", o)?,
        (None, None) => current,
    };
    Ok((minute, offset))
}

fn grid(element: &str, days: &[wire::DayHours]) -> Result<HourGrid, CoreError> {
    let mut g = HourGrid::default();
    for d in days {
        let day = weekday("Day", &d.name)?;
        g.0[usize::from(day)] = HourGrid::parse_row(element, &d.value)?;
    }
    Ok(g)
}

fn recurrence(
    o: &wire::JobScheduleOptions,
    offset: i32,
) -> Result<Option<(Recurrence, i32)>, CoreError> {
    let mut found: Vec<(&str, Recurrence, i32)> = Vec::new();
    if let Some(d) = o.options_daily.as_ref().filter(|d| d.enabled) {
        let all: Vec<u8> = (0..7).collect();
        let (kind, days) = match d.kind.as_deref() {
            Some(k) if k.eq_ignore_ascii_case("Everyday") => (DailyKind::Everyday, all),
            Some(k) if k.eq_ignore_ascii_case("WeekDays") => {
                (DailyKind::WeekDays, vec![1, 2, 3, 4, 5])
            }
            Some(k) if k.eq_ignore_ascii_case("SelectedDays") => {
                let days = d
                    .days
                    .iter()
                    .map(|n| weekday("Days", n))
                    .collect::<Result<Vec<_>, _>>()?;
                if days.is_empty() {
                    return Err(invalid("Days", "SelectedDays needs at least one of Days"));
                }
                (DailyKind::SelectedDays, days)
            }
            Some(k) => {
                return Err(invalid(
                    "Kind",
                    format!(
                        "OptionsDaily Kind {} is not one of Everyday, WeekDays, SelectedDays",
                        shown(k)
                    ),
                ))
            }
            None => (DailyKind::Everyday, all),
        };
        let (minute, offset) = time_and_offset(&d.time, &d.time_offset_utc, offset)?;
        found.push((
            "OptionsDaily",
            Recurrence::Daily { kind, days, minute },
            offset,
        ));
    }
    if let Some(m) = o.options_monthly.as_ref().filter(|m| m.enabled) {
        let number = m.day_number_in_month.as_deref().unwrap_or("OnDay");
        let nth = ["First", "Second", "Third", "Fourth"]
            .iter()
            .position(|n| n.eq_ignore_ascii_case(number));
        let day_of_week = || {
            m.day_of_week
                .as_deref()
                .ok_or_else(|| {
                    invalid(
                        "DayOfWeek",
                        format!("DayNumberInMonth {number} needs DayOfWeek"),
                    )
                })
                .and_then(|d| weekday("DayOfWeek", d))
        };
        let day = if let Some(n) = nth {
            MonthDay::Nth(n as u8 + 1, day_of_week()?)
        } else if number.eq_ignore_ascii_case("Last") {
            MonthDay::Last(day_of_week()?)
        } else if number.eq_ignore_ascii_case("OnDay") {
            let n = m.day_of_month.ok_or_else(|| {
                invalid(
                    "DayOfMonth",
                    "DayNumberInMonth OnDay needs DayOfMonth (1–31)",
                )
            })?;
            if !(1..=31).contains(&n) {
                return Err(invalid("DayOfMonth", format!("DayOfMonth {n} is not 1–31")));
            }
            MonthDay::OnDay(n as u8)
        } else {
            return Err(invalid(
                "DayNumberInMonth",
                format!(
                    "DayNumberInMonth {} is not one of First, Second, Third, Fourth, Last, OnDay",
                    shown(number)
                ),
            ));
        };
        let mut months = m
            .months
            .iter()
            .map(|n| {
                month_named(n).ok_or_else(|| {
                    invalid(
                        "Months",
                        format!("Months: {} is not a month (January … December)", shown(n)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if months.is_empty() {
            months = (0..12).collect();
        }
        let (minute, offset) = time_and_offset(&m.time, &m.time_offset_utc, offset)?;
        found.push((
            "OptionsMonthly",
            Recurrence::Monthly {
                day,
                months,
                minute,
            },
            offset,
        ));
    }
    if let Some(p) = o.options_periodically.as_ref().filter(|p| p.enabled) {
        let hours = match p.kind.as_deref() {
            None => true,
            Some(k) if k.eq_ignore_ascii_case("Hours") => true,
            Some(k) if k.eq_ignore_ascii_case("Minutes") => false,
            Some(k) => {
                return Err(invalid(
                    "Kind",
                    format!(
                        "OptionsPeriodically Kind {} is not Hours or Minutes",
                        shown(k)
                    ),
                ))
            }
        };
        let n = p
            .full_period
            .ok_or_else(|| invalid("FullPeriod", "OptionsPeriodically needs FullPeriod"))?;
        // jobscheduleoptions.md: hours 1–24, minutes 1–60.
        let max = if hours { 24 } else { 60 };
        if !(1..=max).contains(&n) {
            return Err(invalid(
                "FullPeriod",
                format!(
                    "FullPeriod {n} is out of range: {} are 1–{max}",
                    if hours { "hours" } else { "minutes" }
                ),
            ));
        }
        let period_minutes = if hours { n * 60 } else { n } as u32;
        found.push((
            "OptionsPeriodically",
            Recurrence::Periodically {
                period_minutes,
                hours,
                grid: grid("Schedule", &p.schedule)?,
            },
            offset,
        ));
    }
    if o.options_continuous.as_ref().is_some_and(|c| c.enabled) {
        // put_jobs_id_actionedit.md: continuous scheduling is for immediate backup copy jobs.
        return Err(invalid(
            "OptionsContinuous",
            "OptionsContinuous: continuous scheduling is for immediate backup copy jobs; emrest's jobs are backup jobs",
        ));
    }
    if let Some(c) = o.options_daisy_chaining.as_ref().filter(|c| c.enabled) {
        let uid = c.previous_job_uid.as_deref().ok_or_else(|| {
            invalid(
                "PreviousJobUid",
                "OptionsDaisyChaining needs PreviousJobUid",
            )
        })?;
        let previous = wire::parse_id(uid, "Job").ok_or_else(|| {
            invalid(
                "PreviousJobUid",
                format!(
                    "PreviousJobUid {} is not a job UID like urn:veeam:Job:<uuid>",
                    shown(uid)
                ),
            )
        })?;
        found.push((
            "OptionsDaisyChaining",
            Recurrence::AfterJob { previous },
            offset,
        ));
    }
    if let [first, second, ..] = found.as_slice() {
        return Err(invalid(
            second.0,
            format!(
                "{} and {} are both enabled: a job runs by one schedule",
                first.0, second.0
            ),
        ));
    }
    Ok(found.pop().map(|(_, r, o)| (r, o)))
}

/// What an edit's options do to a job's schedule.
pub(super) enum ScheduleEdit {
    /// The job runs by this schedule.
    Set(Schedule),
    /// Every recurrence option sent is disabled: the job no longer runs on its own.
    Remove,
    /// Nothing to run by, before or now: the job stays without a schedule.
    Keep,
}

/// The schedule an edit leaves a job with: `current` changed by what `o` sends. Options left
/// out keep the current recurrence; options sent, all with `Enabled` false, remove it.
pub(super) fn schedule_from_wire(
    o: &wire::JobScheduleOptions,
    current: Option<&Schedule>,
) -> Result<ScheduleEdit, CoreError> {
    let offset = current.map(|c| c.offset_minutes).unwrap_or(0);
    let mentioned = o.options_daily.is_some()
        || o.options_monthly.is_some()
        || o.options_periodically.is_some()
        || o.options_continuous.is_some()
        || o.options_daisy_chaining.is_some();
    let (recurrence, offset) = match recurrence(o, offset)? {
        Some(r) => r,
        None if mentioned => return Ok(ScheduleEdit::Remove),
        None => match current {
            Some(c) => (c.recurrence.clone(), c.offset_minutes),
            None => return Ok(ScheduleEdit::Keep),
        },
    };
    let retry = match &o.retry_options {
        None => current.and_then(|c| c.retry),
        Some(r) if r.retry_specified == Some(false) => None,
        Some(r) => {
            let base = current.and_then(|c| c.retry).unwrap_or_default();
            let count = |element: &str, v: Option<i64>, keep: u32| -> Result<u32, CoreError> {
                match v {
                    None => Ok(keep),
                    Some(n) if (0..=1000).contains(&n) => Ok(n as u32),
                    Some(n) => Err(invalid(element, format!("{element} {n} is not 0–1000"))),
                }
            };
            Some(Retry {
                times: count("RetryTimes", r.retry_times, base.times)?,
                timeout_minutes: count("RetryTimeout", r.retry_timeout, base.timeout_minutes)?,
            })
        }
    };
    let window = match &o.options_backup_window {
        None => current.and_then(|c| c.window.clone()),
        Some(w) if !w.enabled => None,
        Some(w) => Some(grid("TimePeriods", &w.time_periods)?),
    };
    Ok(ScheduleEdit::Set(Schedule {
        recurrence,
        offset_minutes: offset,
        retry,
        window,
    }))
}

fn offset_text(minutes: i32) -> String {
    if minutes % 60 == 0 {
        (minutes / 60).to_string()
    } else {
        let sign = if minutes < 0 { "-" } else { "" };
        let m = minutes.unsigned_abs();
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

fn days_of(g: &HourGrid) -> Vec<wire::DayHours> {
    (0..7u8)
        .map(|d| wire::DayHours {
            name: WEEKDAYS[usize::from(d)].to_string(),
            value: g.row_text(d),
        })
        .collect()
}

/// The `<JobScheduleOptions>` of a job's schedule.
pub(super) fn schedule_to_wire(s: &Schedule) -> wire::JobScheduleOptions {
    let time = |minute: u32| Some(schedule::time_text(minute, s.offset_minutes));
    let offset = Some(offset_text(s.offset_minutes));
    let mut o = wire::JobScheduleOptions {
        retry_options: Some(match s.retry {
            Some(r) => wire::RetryOptions {
                retry_times: Some(i64::from(r.times)),
                retry_timeout: Some(i64::from(r.timeout_minutes)),
                retry_specified: Some(true),
            },
            None => wire::RetryOptions {
                retry_times: Some(0),
                retry_timeout: Some(0),
                retry_specified: Some(false),
            },
        }),
        options_backup_window: s.window.as_ref().map(|w| wire::OptionsBackupWindow {
            enabled: true,
            time_periods: days_of(w),
        }),
        ..wire::JobScheduleOptions::default()
    };
    match &s.recurrence {
        Recurrence::Daily { kind, days, minute } => {
            o.options_daily = Some(wire::OptionsDaily {
                enabled: true,
                kind: Some(
                    match kind {
                        DailyKind::Everyday => "Everyday",
                        DailyKind::WeekDays => "WeekDays",
                        DailyKind::SelectedDays => "SelectedDays",
                    }
                    .into(),
                ),
                days: days
                    .iter()
                    .map(|d| WEEKDAYS[usize::from(*d % 7)].to_string())
                    .collect(),
                time: time(*minute),
                time_offset_utc: offset,
            })
        }
        Recurrence::Monthly {
            day,
            months,
            minute,
        } => {
            let (number, weekday, day_of_month) = match *day {
                MonthDay::Nth(n, wd) => (
                    ["First", "Second", "Third", "Fourth"][usize::from(n.clamp(1, 4) - 1)],
                    Some(wd),
                    None,
                ),
                MonthDay::Last(wd) => ("Last", Some(wd), None),
                MonthDay::OnDay(n) => ("OnDay", None, Some(i64::from(n))),
            };
            o.options_monthly = Some(wire::OptionsMonthly {
                enabled: true,
                time: time(*minute),
                time_offset_utc: offset,
                day_number_in_month: Some(number.into()),
                day_of_week: weekday.map(|d| WEEKDAYS[usize::from(d % 7)].to_string()),
                months: months
                    .iter()
                    .map(|m| MONTHS[usize::from(*m % 12)].to_string())
                    .collect(),
                day_of_month,
            })
        }
        Recurrence::Periodically {
            period_minutes,
            hours,
            grid,
        } => {
            o.options_periodically = Some(wire::OptionsPeriodically {
                enabled: true,
                kind: Some(if *hours { "Hours" } else { "Minutes" }.into()),
                full_period: Some(i64::from(if *hours {
                    period_minutes / 60
                } else {
                    *period_minutes
                })),
                schedule: days_of(grid),
            })
        }
        Recurrence::AfterJob { previous } => {
            o.options_daisy_chaining = Some(wire::OptionsDaisyChaining {
                enabled: true,
                previous_job_uid: Some(wire::urn("Job", *previous)),
            })
        }
    }
    o
}
