//! `emrest job schedule`: the arguments that describe a schedule, turned into a
//! `core::schedule::Schedule`. What a schedule means lives in core (`schedule.rs`).

use anyhow::{bail, Context, Result};
use clap::Args;
/// The examples and rules `emrest job schedule --help` ends with.
pub const EXAMPLES: &str = "\
Give one of --daily, --monthly, --every or --after (or --clear to remove the schedule);
--enable or --disable alone switch the schedule on or off. Times, days and hours are read
in the --offset given (UTC by default). A run missed while the server was down starts once
when it starts again; a run due while the job still runs is skipped (README.md, Schedules).

Examples:
  emrest job schedule Web --daily 22:00
  emrest job schedule Web --daily 01:30 --days Mon,Wed,Fri --offset -07:00
  emrest job schedule Web --daily 22:00 --days weekdays --retries 3 --retry-wait 10
  emrest job schedule DB --monthly 22:00 --week fourth --weekday Sat
  emrest job schedule DB --monthly 03:00 --day 15 --months Jan,Apr,Jul,Oct
  emrest job schedule Logs --every 6h --hours 8-20 --days weekdays
  emrest job schedule Copy --after Web --window 20-6
  emrest job schedule Web --disable";

use emrest_core::schedule::{
    month_named, parse_offset, parse_time, weekday_named, DailyKind, HourGrid, MonthDay,
    Recurrence, Retry, Schedule,
};

/// How a job runs on its own (examples: [`EXAMPLES`]).
#[derive(Args, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ScheduleArgs {
    /// Run every day (or on --days) at HH:MM.
    #[arg(long, value_name = "HH:MM", group = "recurrence")]
    pub daily: Option<String>,
    /// Run once a month at HH:MM, on --day N or on the --week/--weekday.
    #[arg(long, value_name = "HH:MM", group = "recurrence")]
    pub monthly: Option<String>,
    /// Run every N hours (6h) or minutes (45m), counted from midnight, within --hours.
    #[arg(long, value_name = "PERIOD", group = "recurrence")]
    pub every: Option<String>,
    /// Run after each run of another job (by name).
    #[arg(long, value_name = "JOB", group = "recurrence")]
    pub after: Option<String>,
    /// Remove the schedule: the job runs only when started.
    #[arg(long, group = "recurrence")]
    pub clear: bool,
    /// Days for --daily and --every: names (Mon,Tue or Monday,…), `weekdays` or `everyday`.
    #[arg(long, value_name = "DAYS")]
    pub days: Option<String>,
    /// --monthly on this day of the month (1–31; the last day in shorter months).
    #[arg(long, value_name = "N")]
    pub day: Option<u8>,
    /// --monthly on the first, second, third, fourth or last --weekday of the month.
    #[arg(long, value_name = "WHICH")]
    pub week: Option<String>,
    /// The weekday for --week.
    #[arg(long, value_name = "DAY")]
    pub weekday: Option<String>,
    /// Months for --monthly (Jan,Apr,… or full names); all by default.
    #[arg(long, value_name = "MONTHS")]
    pub months: Option<String>,
    /// Hours --every may run in, as FROM-TO (8-20: 08:00 to 19:59; 22-6 wraps midnight).
    #[arg(long, value_name = "FROM-TO")]
    pub hours: Option<String>,
    /// UTC offset the times, days and hours are read in (+02:00, -7); UTC by default.
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Retry a failed scheduled run this many times.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Minutes between retries (with --retries; 10 by default).
    #[arg(long, value_name = "MINUTES")]
    pub retry_wait: Option<u32>,
    /// Backup window, FROM-TO hours every day: a run outside it does not start, and one still
    /// going when it closes is stopped.
    #[arg(long, value_name = "FROM-TO")]
    pub window: Option<String>,
    /// Switch the schedule on.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Switch the schedule off (it stays, and --enable brings it back).
    #[arg(long)]
    pub disable: bool,
}

fn days(text: &str) -> Result<(DailyKind, Vec<u8>)> {
    match text.trim().to_ascii_lowercase().as_str() {
        "everyday" | "all" => return Ok((DailyKind::Everyday, (0..7).collect())),
        "weekdays" => return Ok((DailyKind::WeekDays, vec![1, 2, 3, 4, 5])),
        _ => {}
    }
    let v = text
        .split(',')
        .map(|d| {
            weekday_named(d).with_context(|| format!("--days: '{d}' is not a day of the week"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((DailyKind::SelectedDays, v))
}

/// `8-20` → hours 8..20; `22-6` wraps midnight.
fn hour_range(flag: &str, text: &str) -> Result<Vec<bool>> {
    let (a, b) = text
        .split_once('-')
        .with_context(|| format!("{flag}: expected FROM-TO hours such as 8-20, found '{text}'"))?;
    let parse = |v: &str| -> Result<usize> {
        let h: usize = v
            .trim()
            .parse()
            .with_context(|| format!("{flag}: '{v}' is not an hour"))?;
        if h > 24 {
            bail!("{flag}: hour {h} is not 0–24");
        }
        Ok(h)
    };
    let (from, to) = (parse(a)?, parse(b)?);
    if from == to {
        bail!("{flag}: {text} is an empty range");
    }
    Ok((0..24)
        .map(|h| {
            if from < to {
                (from..to).contains(&h)
            } else {
                h >= from || h < to
            }
        })
        .collect())
}

fn clock(flag: &str, text: &str) -> Result<u32> {
    let (minute, offset) = parse_time(flag, text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if offset.is_some() {
        bail!("{flag}: give the time without an offset and the offset with --offset");
    }
    Ok(minute)
}

impl ScheduleArgs {
    /// Whether any argument describes a schedule (not only --enable/--disable).
    fn describes(&self) -> bool {
        self.daily.is_some()
            || self.monthly.is_some()
            || self.every.is_some()
            || self.after.is_some()
    }

    /// The schedule change: `None` to keep the current one, `Some(None)` to remove it.
    /// `previous` resolves --after's job name to its ID.
    pub fn schedule(
        &self,
        previous: impl Fn(&str) -> Result<uuid::Uuid>,
    ) -> Result<Option<Option<Schedule>>> {
        if self.clear {
            return Ok(Some(None));
        }
        if !self.describes() {
            if self.enable || self.disable {
                return Ok(None);
            }
            bail!("give one of --daily, --monthly, --every, --after or --clear (or --enable/--disable); see --help");
        }
        let offset_minutes = match &self.offset {
            Some(o) => parse_offset("--offset", o).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => 0,
        };
        let recurrence = if let Some(t) = &self.daily {
            let (kind, days) = match &self.days {
                Some(d) => days(d)?,
                None => (DailyKind::Everyday, (0..7).collect()),
            };
            Recurrence::Daily {
                kind,
                days,
                minute: clock("--daily", t)?,
            }
        } else if let Some(t) = &self.monthly {
            let day = match (self.day, &self.week, &self.weekday) {
                (Some(n), None, None) if (1..=31).contains(&n) => MonthDay::OnDay(n),
                (Some(n), None, None) => bail!("--day: {n} is not 1–31"),
                (None, Some(w), Some(d)) => {
                    let wd = weekday_named(d)
                        .with_context(|| format!("--weekday: '{d}' is not a day of the week"))?;
                    match w.to_ascii_lowercase().as_str() {
                        "first" => MonthDay::Nth(1, wd),
                        "second" => MonthDay::Nth(2, wd),
                        "third" => MonthDay::Nth(3, wd),
                        "fourth" => MonthDay::Nth(4, wd),
                        "last" => MonthDay::Last(wd),
                        _ => bail!("--week: '{w}' is not first, second, third, fourth or last"),
                    }
                }
                _ => bail!("--monthly needs --day N, or --week WHICH with --weekday DAY"),
            };
            let months = match &self.months {
                None => (0..12).collect(),
                Some(m) => m
                    .split(',')
                    .map(|n| {
                        month_named(n).with_context(|| format!("--months: '{n}' is not a month"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            };
            Recurrence::Monthly {
                day,
                months,
                minute: clock("--monthly", t)?,
            }
        } else if let Some(p) = &self.every {
            let p = p.trim().to_ascii_lowercase();
            let (n, hours) = if let Some(h) = p.strip_suffix('h') {
                (h, true)
            } else if let Some(m) = p.strip_suffix('m') {
                (m, false)
            } else {
                bail!("--every: expected hours (6h) or minutes (45m), found '{p}'");
            };
            let n: u32 = n
                .parse()
                .with_context(|| format!("--every: '{p}' is not a period"))?;
            let max = if hours { 24 } else { 60 };
            if !(1..=max).contains(&n) {
                bail!("--every: {p} is out of range (1–24 hours or 1–60 minutes)");
            }
            let row = match &self.hours {
                Some(h) => hour_range("--hours", h)?,
                None => vec![true; 24],
            };
            let (_, on) = match &self.days {
                Some(d) => days(d)?,
                None => (DailyKind::Everyday, (0..7).collect()),
            };
            let grid = HourGrid(
                (0..7u8)
                    .map(|d| {
                        if on.contains(&d) {
                            row.clone()
                        } else {
                            vec![false; 24]
                        }
                    })
                    .collect(),
            );
            Recurrence::Periodically {
                period_minutes: if hours { n * 60 } else { n },
                hours,
                grid,
            }
        } else if let Some(job) = &self.after {
            Recurrence::AfterJob {
                previous: previous(job)?,
            }
        } else {
            bail!("no schedule given");
        };
        let retry = self.retries.map(|times| Retry {
            times,
            timeout_minutes: self.retry_wait.unwrap_or(10),
        });
        let window = match &self.window {
            Some(w) => Some(HourGrid(vec![hour_range("--window", w)?; 7])),
            None => None,
        };
        Ok(Some(Some(Schedule {
            recurrence,
            offset_minutes,
            retry,
            window,
        })))
    }

    /// `Some(true)` for --enable, `Some(false)` for --disable.
    pub fn enabled(&self) -> Option<bool> {
        match (self.enable, self.disable) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// A schedule in a few words, for `job list` and `job schedule`.
pub fn describe(s: &Schedule, job_name: impl Fn(uuid::Uuid) -> String) -> String {
    use emrest_core::schedule::{MONTHS, WEEKDAYS};
    let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let day_names = |d: &[u8]| {
        d.iter()
            .map(|d| &WEEKDAYS[usize::from(*d % 7)][..3])
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = match &s.recurrence {
        Recurrence::Daily { kind, days, minute } => match kind {
            DailyKind::Everyday => format!("daily {}", hm(*minute)),
            DailyKind::WeekDays => format!("weekdays {}", hm(*minute)),
            DailyKind::SelectedDays => format!("{} {}", day_names(days), hm(*minute)),
        },
        Recurrence::Monthly {
            day,
            months,
            minute,
        } => {
            let which = match day {
                MonthDay::OnDay(n) => format!("day {n}"),
                MonthDay::Nth(n, wd) => format!(
                    "{} {}",
                    ["first", "second", "third", "fourth"][usize::from(n.clamp(&1, &4) - 1)],
                    &WEEKDAYS[usize::from(*wd % 7)][..3]
                ),
                MonthDay::Last(wd) => format!("last {}", &WEEKDAYS[usize::from(*wd % 7)][..3]),
            };
            let months = if months.len() == 12 {
                String::new()
            } else {
                format!(
                    " of {}",
                    months
                        .iter()
                        .map(|m| &MONTHS[usize::from(*m % 12)][..3])
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            format!("monthly {which}{months} {}", hm(*minute))
        }
        Recurrence::Periodically {
            period_minutes,
            hours,
            ..
        } => {
            if *hours {
                format!("every {}h", period_minutes / 60)
            } else {
                format!("every {period_minutes}m")
            }
        }
        Recurrence::AfterJob { previous } => format!("after {}", job_name(*previous)),
    };
    if s.offset_minutes != 0 {
        let o = s.offset_minutes;
        out.push_str(&format!(
            " {}{:02}:{:02}",
            if o < 0 { '-' } else { '+' },
            o.unsigned_abs() / 60,
            o.unsigned_abs() % 60
        ));
    }
    out
}
