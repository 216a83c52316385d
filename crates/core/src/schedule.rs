//! A job's schedule (em_rest/jobscheduleoptions.md, put_jobs_id_actionedit.md) and the one pure
//! rule that says when it next runs: [`next_run`]. The scheduler (`scheduler.rs`) applies it;
//! the API and the CLI only fill in a [`Schedule`].
//!
//! Rules chosen where the reference is silent (README.md "Schedules"):
//! - Times are local to a fixed UTC offset (`offset_minutes`), no daylight saving: the offset
//!   a daily or monthly `Time` carries (`22:00:00-07:00`), else `TimeOffsetUtc` (hours, or
//!   `[-]hh:mm`), else UTC. The periodic grid and the backup window are read in the same offset.
//! - Periodic runs fall on multiples of the period counted from local midnight (every 6 hours:
//!   00:00, 06:00, 12:00, 18:00), kept only in permitted hours of the grid.
//! - Monthly on a day number that a month lacks (the 31st in April) runs on its last day.

use crate::error::{CoreError, CoreResult};
use crate::model::Millis;
use serde::{Deserialize, Serialize};

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// Days of the week, Sunday first as the reference lists them.
pub const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Months, January first.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Day of the week, 0 = Sunday … 6 = Saturday.
pub type Weekday = u8;

/// The index of a weekday name (any case), Sunday = 0.
pub fn weekday_named(name: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .position(|d| {
            d.eq_ignore_ascii_case(name.trim()) || d[..3].eq_ignore_ascii_case(name.trim())
        })
        .map(|i| i as Weekday)
}

/// The index of a month name (any case), January = 0.
pub fn month_named(name: &str) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| {
            m.eq_ignore_ascii_case(name.trim()) || m[..3].eq_ignore_ascii_case(name.trim())
        })
        .map(|i| i as u8)
}

/// A 7 × 24 grid of permitted hours (`<Day Name="Sunday">1,1,…</Day>`), Sunday first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourGrid(pub Vec<Vec<bool>>);

impl Default for HourGrid {
    fn default() -> Self {
        HourGrid(vec![vec![true; 24]; 7])
    }
}

impl HourGrid {
    /// Whether the hour `hour` of weekday `day` is permitted.
    pub fn allows(&self, day: Weekday, hour: u32) -> bool {
        self.0
            .get(usize::from(day))
            .and_then(|h| h.get(hour as usize))
            .copied()
            .unwrap_or(false)
    }

    /// Parse one day's `1,0,…` row of 24 values; `element` names the day in errors.
    pub fn parse_row(element: &str, text: &str) -> CoreResult<Vec<bool>> {
        let row: Vec<bool> = text
            .split(',')
            .map(|v| match v.trim() {
                "1" => Ok(true),
                "0" => Ok(false),
                other => Err(CoreError::invalid(
                    element,
                    format!(
                        "an hour is 1 or 0, found {:?}",
                        crate::error::clip(other, 20)
                    ),
                )),
            })
            .collect::<CoreResult<_>>()?;
        if row.len() != 24 {
            return Err(CoreError::invalid(
                element,
                format!("{element}: a day has 24 hours, found {} values", row.len()),
            ));
        }
        Ok(row)
    }

    /// One day's row as the wire writes it: `1,1,0,…`.
    pub fn row_text(&self, day: Weekday) -> String {
        self.0
            .get(usize::from(day))
            .map(|r| {
                r.iter()
                    .map(|b| if *b { "1" } else { "0" })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }
}

/// OptionsDaily Kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DailyKind {
    Everyday,
    WeekDays,
    SelectedDays,
}

/// Which day of a month (OptionsMonthly DayNumberInMonth, DayOfWeek, DayOfMonth).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonthDay {
    /// The n-th (1–4) weekday of the month.
    Nth(u8, Weekday),
    /// The last weekday of the month.
    Last(Weekday),
    /// A day number, 1–31 (the last day in shorter months).
    OnDay(u8),
}

/// How often a job runs: the one enabled kind of OptionsDaily, OptionsMonthly,
/// OptionsPeriodically or OptionsDaisyChaining.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recurrence {
    /// At `minute` of the day on the given weekdays.
    Daily {
        kind: DailyKind,
        days: Vec<Weekday>,
        minute: u32,
    },
    /// At `minute` of the day on one day of the listed months (0 = January).
    Monthly {
        day: MonthDay,
        months: Vec<u8>,
        minute: u32,
    },
    /// Every `period_minutes`, counted from local midnight, in permitted hours.
    Periodically {
        period_minutes: u32,
        /// Whether the period was given in hours (for the wire's Kind).
        hours: bool,
        grid: HourGrid,
    },
    /// After each run of another job.
    AfterJob { previous: uuid::Uuid },
}

/// Retry options (RetryOptions): minutes between retries of a failed scheduled run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub times: u32,
    pub timeout_minutes: u32,
}

impl Default for Retry {
    fn default() -> Self {
        // Enterprise Manager's defaults (resource_representation_for_ke.md shows 3 and 10).
        Retry {
            times: 3,
            timeout_minutes: 10,
        }
    }
}

/// A job's schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub recurrence: Recurrence,
    /// Minutes east of UTC the schedule's clock times and grids are read in.
    pub offset_minutes: i32,
    /// Retries of a failed scheduled run; `None` for none (RetrySpecified false).
    pub retry: Option<Retry>,
    /// Hours a run may be in (OptionsBackupWindow); a run still going when it closes stops.
    pub window: Option<HourGrid>,
}

/// Local (offset) calendar fields of an instant.
struct Local {
    /// Local midnight of the day, as offset-shifted millis (not a real instant).
    day_start: Millis,
    weekday: Weekday,
    year: i64,
    month: u32,
    day: u32,
}

fn local(shifted: Millis) -> Local {
    let day_start = shifted.div_euclid(DAY) * DAY;
    let (year, month, day, ..) = crate::time::civil(shifted);
    // 1970-01-01 was a Thursday (4).
    let weekday = ((shifted.div_euclid(DAY) + 4).rem_euclid(7)) as Weekday;
    Local {
        day_start,
        weekday,
        year,
        month,
        day,
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since the epoch of a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day of `month` (1–12) of `year` that `day` names.
fn month_day(year: i64, month: u32, day: MonthDay) -> u32 {
    let len = days_in_month(year, month);
    let first_weekday = ((days_from_civil(year, month, 1) + 4).rem_euclid(7)) as u32;
    let first_of = |wd: Weekday| 1 + (u32::from(wd) + 7 - first_weekday) % 7;
    match day {
        MonthDay::OnDay(n) => u32::from(n).clamp(1, len),
        MonthDay::Nth(n, wd) => first_of(wd) + 7 * (u32::from(n.clamp(1, 4)) - 1),
        MonthDay::Last(wd) => {
            let f = first_of(wd);
            f + 7 * ((len - f) / 7)
        }
    }
}

/// The first instant strictly after `after` at which a schedule starts its job, or `None` when
/// it never does on its own (chained after another job, or no day selected). A backup window
/// does not move it: a start outside the window is skipped by the scheduler.
pub fn next_run(s: &Schedule, after: Millis) -> Option<Millis> {
    let offset = Millis::from(s.offset_minutes) * MINUTE;
    let shifted = after + offset;
    let found = match &s.recurrence {
        Recurrence::AfterJob { .. } => None,
        Recurrence::Daily { days, minute, .. } => {
            let today = local(shifted);
            (0..8).find_map(|i| {
                let start = today.day_start + i * DAY;
                let at = start + Millis::from(*minute) * MINUTE;
                let wd = local(start).weekday;
                (at > shifted && days.contains(&wd)).then_some(at)
            })
        }
        Recurrence::Monthly {
            day,
            months,
            minute,
        } => {
            let now = local(shifted);
            (0..14).find_map(|i| {
                let m0 = i64::from(now.month - 1) + i;
                let (year, month) = (now.year + m0.div_euclid(12), (m0.rem_euclid(12) + 1) as u32);
                if !months.contains(&((month - 1) as u8)) {
                    return None;
                }
                let d = month_day(year, month, *day);
                let at = days_from_civil(year, month, d) * DAY + Millis::from(*minute) * MINUTE;
                (at > shifted).then_some(at)
            })
        }
        Recurrence::Periodically {
            period_minutes,
            grid,
            ..
        } => {
            let period = Millis::from((*period_minutes).max(1)) * MINUTE;
            let today = local(shifted).day_start;
            // Slots restart at each local midnight; look a week and a day ahead.
            (0..8).find_map(|i| {
                let start = today + i * DAY;
                let wd = local(start).weekday;
                let mut at = start;
                if at <= shifted {
                    at = start + ((shifted - start) / period + 1) * period;
                }
                while at < start + DAY {
                    let hour = ((at - start) / HOUR) as u32;
                    if grid.allows(wd, hour) {
                        return Some(at);
                    }
                    // Skip to the first slot of the next hour.
                    let next_hour = start + Millis::from(hour + 1) * HOUR;
                    at += ((next_hour - at + period - 1) / period).max(1) * period;
                }
                None
            })
        }
    };
    found.map(|at| at - offset)
}

/// Whether instant `at` lies in the schedule's backup window (always, without one).
pub fn in_window(s: &Schedule, at: Millis) -> bool {
    let Some(w) = &s.window else { return true };
    let shifted = at + Millis::from(s.offset_minutes) * MINUTE;
    let l = local(shifted);
    w.allows(l.weekday, ((shifted - l.day_start) / HOUR) as u32)
}

/// The calendar date of `at` in the schedule's offset: (year, month 1–12, day 1–31).
pub fn local_date(s: &Schedule, at: Millis) -> (i64, u32, u32) {
    let l = local(at + Millis::from(s.offset_minutes) * MINUTE);
    (l.year, l.month, l.day)
}

/// The weekday of `at` in the schedule's offset.
pub fn local_weekday(s: &Schedule, at: Millis) -> Weekday {
    local(at + Millis::from(s.offset_minutes) * MINUTE).weekday
}

/// Parse a clock time `hh:mm[:ss[.fffffff]][Z|±hh:mm]` (also the date-time form
/// `2019-10-23T14:00:00`): the minute of the day and the offset it carries, if any.
pub fn parse_time(element: &str, text: &str) -> CoreResult<(u32, Option<i32>)> {
    let bad = || {
        CoreError::invalid(
            element,
            format!(
                "{element}: expected a time of day such as 22:00:00 or 22:00:00.0000000-07:00, found {:?}",
                crate::error::clip(text, 40)
            ),
        )
    };
    let t = text.trim();
    let t = match t.find('T') {
        Some(i) => &t[i + 1..],
        None => t,
    };
    let (clock, offset) = if let Some(c) = t.strip_suffix('Z') {
        (c, Some(0))
    } else if let Some(i) = t.rfind(['+', '-']).filter(|i| *i > 0) {
        (&t[..i], Some(parse_offset(element, &t[i..])?))
    } else {
        (t, None)
    };
    let mut parts = clock.split(':');
    let h: u32 = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let m: u32 = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    if let Some(sec) = parts.next() {
        sec.split('.')
            .next()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|s| *s < 60)
            .ok_or_else(bad)?;
    }
    if parts.next().is_some() || h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h * 60 + m, offset))
}

/// Parse a UTC offset: whole hours (`2`, `-7`) or `[±]hh:mm[:ss]`; in minutes.
pub fn parse_offset(element: &str, text: &str) -> CoreResult<i32> {
    let bad = || {
        CoreError::invalid(
            element,
            format!(
                "{element}: expected a UTC offset in hours (2, -7) or as ±hh:mm, found {:?}",
                crate::error::clip(text, 40)
            ),
        )
    };
    let t = text.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let mut parts = rest.split(':');
    let h: i32 = parts.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let m: i32 = match parts.next() {
        Some(v) => v
            .parse()
            .ok()
            .filter(|m| (0..60).contains(m))
            .ok_or_else(bad)?,
        None => 0,
    };
    if h > 14 || (h == 14 && m > 0) {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

/// `22:00:00.0000000+02:00`: how the wire writes a schedule's time.
pub fn time_text(minute: u32, offset_minutes: i32) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let o = offset_minutes.unsigned_abs();
    format!(
        "{:02}:{:02}:00.0000000{sign}{:02}:{:02}",
        minute / 60,
        minute % 60,
        o / 60,
        o % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-01T00:00:00Z, a Sunday.
    const MARCH_1: Millis = 1_772_323_200_000;

    fn at(day: i64, hour: i64, minute: i64) -> Millis {
        MARCH_1 + (day - 1) * DAY + hour * HOUR + minute * MINUTE
    }

    fn daily(days: &[Weekday], minute: u32, offset: i32) -> Schedule {
        Schedule {
            recurrence: Recurrence::Daily {
                kind: DailyKind::SelectedDays,
                days: days.to_vec(),
                minute,
            },
            offset_minutes: offset,
            retry: None,
            window: None,
        }
    }

    fn runs(s: &Schedule, from: Millis, to: Millis) -> Vec<Millis> {
        let mut v = Vec::new();
        let mut t = from;
        while let Some(n) = next_run(s, t) {
            if n >= to {
                break;
            }
            v.push(n);
            t = n;
        }
        v
    }

    #[test]
    fn march_first_2026_is_a_sunday() {
        assert_eq!(crate::time::session_stamp(MARCH_1), "2026-03-01 00:00:00");
        assert_eq!(local(MARCH_1).weekday, 0);
        assert_eq!(days_from_civil(2026, 3, 1) * DAY, MARCH_1);
    }

    #[test]
    fn every_day_at_22_runs_31_times_in_march() {
        let s = daily(&[0, 1, 2, 3, 4, 5, 6], 22 * 60, 0);
        let v = runs(&s, MARCH_1, at(32, 0, 0));
        assert_eq!(v.len(), 31);
        assert_eq!(v[0], at(1, 22, 0));
        assert_eq!(v[30], at(31, 22, 0));
        // Strictly after: at 22:00 itself the next run is tomorrow's.
        assert_eq!(next_run(&s, at(1, 22, 0)), Some(at(2, 22, 0)));
    }

    #[test]
    fn selected_days_run_only_on_those_days() {
        // Monday, Wednesday, Friday at 01:30 in March 2026: five Mondays, four of each other.
        let s = daily(&[1, 3, 5], 90, 0);
        let v = runs(&s, MARCH_1, at(32, 0, 0));
        assert_eq!(v.len(), 13);
        assert_eq!(v[0], at(2, 1, 30));
        assert!(v.iter().all(|t| [1, 3, 5].contains(&local(*t).weekday)));
    }

    #[test]
    fn a_negative_offset_moves_the_utc_instant_later() {
        // 22:00 at UTC-07:00 is 05:00 UTC the next day: midnight UTC is still 28 February
        // there, so the first run is that evening's.
        let s = daily(&[0, 1, 2, 3, 4, 5, 6], 22 * 60, -7 * 60);
        assert_eq!(next_run(&s, MARCH_1), Some(at(1, 5, 0)));
        // Only Sundays, local: Sunday 22:00 -07:00 is Monday 05:00 UTC.
        let s = daily(&[0], 22 * 60, -7 * 60);
        assert_eq!(next_run(&s, MARCH_1), Some(at(2, 5, 0)));
        assert_eq!(next_run(&s, at(2, 5, 0)), Some(at(9, 5, 0)));
    }

    #[test]
    fn monthly_on_the_fourth_saturday_and_on_a_day_number() {
        let s = Schedule {
            recurrence: Recurrence::Monthly {
                day: MonthDay::Nth(4, 6),
                months: (0..12).collect(),
                minute: 22 * 60,
            },
            offset_minutes: 0,
            retry: None,
            window: None,
        };
        // March 2026: Saturdays 7, 14, 21, 28.
        assert_eq!(next_run(&s, MARCH_1), Some(at(28, 22, 0)));
        let mut s2 = s.clone();
        s2.recurrence = Recurrence::Monthly {
            day: MonthDay::Last(1),
            months: vec![2],
            minute: 0,
        };
        // The last Monday of March 2026 is the 30th.
        assert_eq!(next_run(&s2, MARCH_1), Some(at(30, 0, 0)));
        s2.recurrence = Recurrence::Monthly {
            day: MonthDay::OnDay(31),
            months: vec![3],
            minute: 60,
        };
        // April has 30 days: the 31st becomes the 30th.
        assert_eq!(next_run(&s2, MARCH_1), Some(at(31, 0, 0) + 30 * DAY + HOUR));
        // A year of runs on the 15th: twelve.
        s2.recurrence = Recurrence::Monthly {
            day: MonthDay::OnDay(15),
            months: (0..12).collect(),
            minute: 0,
        };
        assert_eq!(runs(&s2, MARCH_1, MARCH_1 + 365 * DAY).len(), 12);
    }

    #[test]
    fn every_six_hours_in_permitted_hours_only() {
        // Weekdays 08:00–19:59 permitted: slots 12:00 and 18:00 each weekday.
        let mut grid = HourGrid(vec![vec![false; 24]; 7]);
        for d in 1..=5 {
            for h in 8..20 {
                grid.0[d][h] = true;
            }
        }
        let s = Schedule {
            recurrence: Recurrence::Periodically {
                period_minutes: 360,
                hours: true,
                grid,
            },
            offset_minutes: 0,
            retry: None,
            window: None,
        };
        let v = runs(&s, MARCH_1, at(32, 0, 0));
        // 22 weekdays in March 2026, two slots each.
        assert_eq!(v.len(), 44);
        assert_eq!(v[0], at(2, 12, 0));
        assert_eq!(v[1], at(2, 18, 0));
        // Every 45 minutes through a full grid: 32 slots a day (00:00 … 23:15).
        let s = Schedule {
            recurrence: Recurrence::Periodically {
                period_minutes: 45,
                hours: false,
                grid: HourGrid::default(),
            },
            ..s
        };
        assert_eq!(runs(&s, MARCH_1 - 1, MARCH_1 + DAY - 1).len(), 32);
    }

    #[test]
    fn a_chained_schedule_never_runs_on_its_own() {
        let s = Schedule {
            recurrence: Recurrence::AfterJob {
                previous: uuid::Uuid::nil(),
            },
            offset_minutes: 0,
            retry: None,
            window: None,
        };
        assert_eq!(next_run(&s, MARCH_1), None);
    }

    #[test]
    fn times_and_offsets_parse_as_the_reference_writes_them() {
        assert_eq!(
            parse_time("Time", "22:00:00.0000000-07:00").unwrap(),
            (22 * 60, Some(-420))
        );
        assert_eq!(
            parse_time("Time", "2019-10-23T14:00:00").unwrap(),
            (840, None)
        );
        assert_eq!(parse_time("Time", "06:30").unwrap(), (390, None));
        assert!(parse_time("Time", "25:00").is_err());
        assert_eq!(parse_offset("TimeOffsetUtc", "2").unwrap(), 120);
        assert_eq!(parse_offset("TimeOffsetUtc", "-05:30").unwrap(), -330);
        assert!(parse_offset("TimeOffsetUtc", "x").is_err());
        assert_eq!(time_text(22 * 60, -420), "22:00:00.0000000-07:00");
        assert!(HourGrid::parse_row("Day", "1,0").is_err());
    }

    #[test]
    fn the_window_is_read_in_local_hours() {
        let mut grid = HourGrid(vec![vec![false; 24]; 7]);
        grid.0[0][22] = true;
        let mut s = daily(&[0], 22 * 60, 60);
        s.window = Some(grid);
        // Sunday 22:30 local (+01:00) is 21:30 UTC.
        assert!(in_window(&s, at(1, 21, 30)));
        assert!(!in_window(&s, at(1, 22, 30)));
    }
}
