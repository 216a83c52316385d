//! UTC timestamps in the forms Enterprise Manager writes them.
//!
//! The civil-date conversion is hand-rolled (days ↔ proleptic Gregorian date, after
//! Howard Hinnant's `chrono`-compatible algorithms) to keep the crate free of a
//! date library.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i64 = 86_400_000;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC instant with millisecond precision, stored as milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(pub i64);

/// A broken-down UTC date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

impl UtcTime {
    /// The instant `millis` milliseconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_millis(millis: i64) -> Self {
        UtcTime(millis)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub fn unix_millis(self) -> i64 {
        self.0
    }

    /// The current time (the epoch if the system clock is before it).
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        UtcTime(ms)
    }

    /// The UTC instant of the given civil date and time, if it is a valid one.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        millis: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
            || millis > 999
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let ms = days
            .checked_mul(MS_PER_DAY)?
            .checked_add(i64::from(hour) * 3_600_000 + i64::from(minute) * 60_000)?
            .checked_add(i64::from(second) * 1000 + i64::from(millis))?;
        Some(UtcTime(ms))
    }

    fn civil(self) -> Civil {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // ms_of_day < 86_400_000, so every part below fits in u32.
        let ms = ms_of_day as u32;
        Civil {
            year,
            month,
            day,
            hour: ms / 3_600_000,
            minute: ms / 60_000 % 60,
            second: ms / 1000 % 60,
            millis: ms % 1000,
        }
    }

    /// ISO-8601 UTC, fraction trimmed of trailing zeros and omitted when zero:
    /// `2013-08-26T08:31:22Z`, `2013-08-26T08:31:22.45Z` (JSON.md A9, the .NET
    /// round-trip form that v10/v12 write).
    pub fn to_wire(self) -> String {
        let c = self.civil();
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        if c.millis != 0 {
            let frac = format!("{:03}", c.millis);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push('Z');
        s
    }

    /// `2013-08-26 08:31:22`, the time part of session and VM restore point names
    /// such as `vm@2013-08-26 08:31:22` (JSON.md A9, em_rest/restoresessions_id.md).
    pub fn session_name_part(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }

    /// SQL-style restore point name `Aug 26 2013  8:31AM`: day and 12-hour clock
    /// hour are space-padded to two characters (JSON.md A9,
    /// em_rest/vmrestorepoints_id.md shows `Oct  6 2016  1:59PM`).
    pub fn restore_point_name(self) -> String {
        let c = self.civil();
        let (h12, ampm) = match c.hour {
            0 => (12, "AM"),
            1..=11 => (c.hour, "AM"),
            12 => (12, "PM"),
            h => (h - 12, "PM"),
        };
        let month = MONTHS[(c.month - 1) as usize];
        format!(
            "{} {:>2} {:04} {:>2}:{:02}{}",
            month, c.day, c.year, h12, c.minute, ampm
        )
    }

    /// Parses an ISO-8601 date-time: `YYYY-MM-DD[(T| )hh:mm:ss[.fraction]][Z|±hh:mm]`.
    /// A value without a zone is UTC (filters send `CreationTime>="2026-06-14T21:07:25"`,
    /// JSON.md C7); fractions beyond milliseconds are truncated.
    pub fn parse_wire(s: &str) -> Option<Self> {
        let b = s.trim().as_bytes();
        let num = |from: usize, len: usize| -> Option<u32> {
            let part = b.get(from..from + len)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            part.iter()
                .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
        };
        let year = num(0, 4)?;
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let month = num(5, 2)?;
        let day = num(8, 2)?;
        if b.len() == 10 {
            return Self::from_civil(i64::from(year), month, day, 0, 0, 0, 0);
        }
        if !matches!(b.get(10), Some(b'T' | b't' | b' '))
            || b.get(13) != Some(&b':')
            || b.get(16) != Some(&b':')
        {
            return None;
        }
        let hour = num(11, 2)?;
        let minute = num(14, 2)?;
        let second = num(17, 2)?;
        let mut i = 19;
        let mut millis = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 3 {
                    millis = millis * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - start;
            if digits == 0 {
                return None;
            }
            for _ in digits..3 {
                millis *= 10;
            }
        }
        let offset_minutes: i64 = match b.get(i) {
            None => 0,
            Some(b'Z' | b'z') if b.len() == i + 1 => 0,
            Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
                let oh = num(i + 1, 2)?;
                let om = num(i + 4, 2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let m = i64::from(oh * 60 + om);
                if *sign == b'+' {
                    m
                } else {
                    -m
                }
            }
            _ => return None,
        };
        let local = Self::from_civil(i64::from(year), month, day, hour, minute, second, millis)?;
        Some(UtcTime(local.0.checked_sub(offset_minutes * 60_000)?))
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl From<UtcTime> for crate::node::Scalar<'_> {
    fn from(t: UtcTime) -> Self {
        crate::node::Scalar::Str(t.to_wire().into())
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and positive by construction.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> UtcTime {
        UtcTime::from_civil(y, mo, d, h, mi, s, ms).unwrap()
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(t(1970, 1, 1, 0, 0, 0, 0).0, 0);
        // 2000-03-01 is day 11017.
        assert_eq!(t(2000, 3, 1, 0, 0, 0, 0).0, 11_017 * MS_PER_DAY);
        assert_eq!(UtcTime(-1).to_wire(), "1969-12-31T23:59:59.999Z");
        assert_eq!(t(1753, 1, 1, 0, 0, 0, 0).to_wire(), "1753-01-01T00:00:00Z");
    }

    #[test]
    fn every_day_round_trips_through_civil() {
        for days in -800_000..800_000i64 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn wire_form_trims_fraction() {
        assert_eq!(t(2019, 7, 3, 4, 5, 6, 0).to_wire(), "2019-07-03T04:05:06Z");
        assert_eq!(
            t(2019, 7, 3, 4, 5, 6, 450).to_wire(),
            "2019-07-03T04:05:06.45Z"
        );
        assert_eq!(
            t(2019, 7, 3, 4, 5, 6, 7).to_wire(),
            "2019-07-03T04:05:06.007Z"
        );
        assert_eq!(
            t(2019, 7, 3, 4, 5, 6, 700).to_wire(),
            "2019-07-03T04:05:06.7Z"
        );
    }

    #[test]
    fn session_name_part_has_no_fraction() {
        assert_eq!(
            t(2021, 11, 9, 7, 8, 9, 999).session_name_part(),
            "2021-11-09 07:08:09"
        );
    }

    #[test]
    fn restore_point_name_is_sql_style() {
        assert_eq!(
            t(2021, 3, 4, 7, 5, 0, 0).restore_point_name(),
            "Mar  4 2021  7:05AM"
        );
        assert_eq!(
            t(2021, 12, 24, 22, 41, 59, 0).restore_point_name(),
            "Dec 24 2021 10:41PM"
        );
        assert_eq!(
            t(2021, 1, 15, 0, 1, 0, 0).restore_point_name(),
            "Jan 15 2021 12:01AM"
        );
        assert_eq!(
            t(2021, 1, 15, 12, 30, 0, 0).restore_point_name(),
            "Jan 15 2021 12:30PM"
        );
    }

    #[test]
    fn parses_wire_forms() {
        let base = t(2022, 2, 28, 23, 59, 58, 0);
        assert_eq!(UtcTime::parse_wire("2022-02-28T23:59:58Z"), Some(base));
        assert_eq!(UtcTime::parse_wire("2022-02-28T23:59:58"), Some(base));
        assert_eq!(UtcTime::parse_wire("2022-02-28 23:59:58"), Some(base));
        assert_eq!(
            UtcTime::parse_wire("2022-02-28T23:59:58.1234567Z"),
            Some(UtcTime(base.0 + 123))
        );
        assert_eq!(UtcTime::parse_wire("2022-03-01T01:59:58+02:00"), Some(base));
        assert_eq!(UtcTime::parse_wire("2022-02-28T22:59:58-01:00"), Some(base));
        assert_eq!(
            UtcTime::parse_wire("2022-02-28"),
            Some(t(2022, 2, 28, 0, 0, 0, 0))
        );
        for bad in [
            "",
            "2022-02-29T00:00:00Z",
            "2022-13-01T00:00:00Z",
            "2022-02-28T24:00:00Z",
            "2022-02-28T23:59:58.Z",
            "2022-02-28T23:59:58ZZ",
            "22-02-28",
            "2022-02-28T23:59",
            "2022-02-28T23:59:58+0200",
            "２０２２-02-28",
        ] {
            assert_eq!(UtcTime::parse_wire(bad), None, "{bad}");
        }
    }

    #[test]
    fn wire_form_round_trips() {
        for ms in [
            0,
            1,
            999,
            1_377_505_882_453,
            -62_135_596_800_000,
            253_402_300_799_999,
        ] {
            let v = UtcTime(ms);
            assert_eq!(
                UtcTime::parse_wire(&v.to_wire()),
                Some(v),
                "{}",
                v.to_wire()
            );
        }
    }
}
