//! UK local time (Europe/London) for the rules that speak of days and working hours. The
//! `time` crate has no time-zone database, and the UK rule is small and settled since
//! 1996 (EU Directive 2000/84/EC, kept in UK law by the Summer Time Order 2002): British
//! Summer Time, UTC+1, runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on
//! the last Sunday of October; otherwise Greenwich Mean Time, UTC+0.

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 0 for Sunday ... 6 for Saturday.
fn weekday_from_sunday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The day number of the last Sunday of `month` in `year`.
fn last_sunday(year: i64, month: u32) -> i64 {
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    let last = next - 1;
    last - weekday_from_sunday(last)
}

/// Whether British Summer Time is in force at `utc_secs` (seconds since the epoch).
pub fn is_bst(utc_secs: i64) -> bool {
    let (year, _, _) = civil_from_days(utc_secs.div_euclid(86_400));
    let start = last_sunday(year, 3) * 86_400 + 3_600;
    let end = last_sunday(year, 10) * 86_400 + 3_600;
    (start..end).contains(&utc_secs)
}

/// A moment as UK local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UkLocal {
    /// The local date, as days from 1970-01-01.
    pub day: i64,
    /// Minutes after local midnight.
    pub minute: u32,
    /// Saturday or Sunday.
    pub weekend: bool,
}

impl UkLocal {
    pub fn at(utc_secs: i64) -> Self {
        let local = utc_secs + if is_bst(utc_secs) { 3_600 } else { 0 };
        let day = local.div_euclid(86_400);
        let weekday = weekday_from_sunday(day);
        UkLocal {
            day,
            minute: (local.rem_euclid(86_400) / 60) as u32,
            weekend: weekday == 0 || weekday == 6,
        }
    }

    /// The local date as `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        let (y, m, d) = civil_from_days(self.day);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The local time as `HH:MM`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}", self.minute / 60, self.minute % 60)
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time as the log writes it
/// (`YYYY-MM-DDTHH:MM:SS[.ffffff]Z`); other offsets go through the `time` crate.
pub fn parse_utc(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| -> Option<i64> {
        let mut n = 0i64;
        for &c in b.get(from..to)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    };
    let fast = (|| {
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || *b.last()? != b'Z'
        {
            return None;
        }
        let (y, mo, d) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
        let (h, mi, s) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3_600 + mi * 60 + s)
    })();
    fast.or_else(|| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    })
}

/// RFC 3339 UTC (seconds) of `utc_secs`, as the log writes times.
pub fn format_utc(utc_secs: i64) -> String {
    let (y, m, d) = civil_from_days(utc_secs.div_euclid(86_400));
    let s = utc_secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000Z",
        s / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_utc(text).expect("a valid time")
    }

    #[test]
    fn summer_time_starts_and_ends_at_one_utc_on_the_last_sundays() {
        // 2025: BST from Sunday 30 March 01:00 UTC to Sunday 26 October 01:00 UTC.
        assert!(!is_bst(at("2025-03-30T00:59:59Z")));
        assert!(is_bst(at("2025-03-30T01:00:00Z")));
        assert!(is_bst(at("2025-10-26T00:59:59Z")));
        assert!(!is_bst(at("2025-10-26T01:00:00Z")));
        // 2024: 31 March and 27 October.
        assert!(!is_bst(at("2024-03-31T00:30:00Z")));
        assert!(is_bst(at("2024-03-31T01:30:00Z")));
        assert!(is_bst(at("2024-10-27T00:30:00Z")));
        assert!(!is_bst(at("2024-10-27T01:30:00Z")));
    }

    #[test]
    fn local_time_is_an_hour_ahead_in_summer_only() {
        let summer = UkLocal::at(at("2025-07-14T06:30:00.000000Z"));
        assert_eq!(
            (summer.date(), summer.time()),
            ("2025-07-14".into(), "07:30".into())
        );
        let winter = UkLocal::at(at("2025-01-14T06:30:00.000000Z"));
        assert_eq!(
            (winter.date(), winter.time()),
            ("2025-01-14".into(), "06:30".into())
        );
        // 23:30 UTC on a summer Friday is 00:30 on Saturday in London.
        let late = UkLocal::at(at("2025-07-18T23:30:00Z"));
        assert_eq!(late.date(), "2025-07-19");
        assert!(late.weekend);
        assert!(!UkLocal::at(at("2025-07-18T12:00:00Z")).weekend);
    }

    #[test]
    fn dates_round_trip_and_other_offsets_parse() {
        for days in [-1, 0, 59, 19_000, 20_000, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("2025-01-01T01:00:00+01:00"), at("2025-01-01T00:00:00Z"));
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(at(&format_utc(1_750_000_000)), 1_750_000_000);
    }
}
