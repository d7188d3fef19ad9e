//! Counts over the disclosure log for the IG office's charts: disclosures and refusals
//! per agency per week, and how often queries broke the glass. Counts only, no entry's
//! contents; reading them is still a read of the log, and logged.

use std::collections::BTreeMap;

use time::{Date, Duration, OffsetDateTime};

use crate::domain::ledger::{Entry, Ledger};
use crate::error::Error;

/// Most weeks one chart covers.
pub const WEEKS_MAX: u32 = 52;

/// One agency's entries in one week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgencyWeek {
    /// Answers, notifications and exports that released data.
    pub disclosures: u64,
    /// Requests refused.
    pub refusals: u64,
}

/// The queries of one week, and how many of them broke the glass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryWeek {
    pub queries: u64,
    pub break_glass: u64,
}

impl QueryWeek {
    /// Break-glass queries per 100 queries, or none in a week without queries.
    pub fn rate_percent(&self) -> Option<f64> {
        (self.queries > 0).then(|| 100.0 * self.break_glass as f64 / self.queries as f64)
    }
}

/// The counts of `weeks` weeks, oldest first, each week starting on a Monday (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    /// Each week's Monday, `YYYY-MM-DD`.
    pub weeks: Vec<String>,
    /// The agencies with any entry in the period, sorted.
    pub agencies: Vec<String>,
    /// By agency, then week (index into `weeks`).
    pub by_agency: BTreeMap<String, Vec<AgencyWeek>>,
    pub queries: Vec<QueryWeek>,
}

/// The Monday of the week `day` is in.
pub fn week_of(day: Date) -> Date {
    day - Duration::days(i64::from(day.weekday().number_days_from_monday()))
}

fn parse_day(day: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(day, &format).ok()
}

fn format_day(day: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    day.format(&format).unwrap_or_default()
}

impl Ledger {
    /// The counts of the last `weeks` weeks (this one included); `read` describes the
    /// reader and is logged before the counts are returned.
    pub async fn statistics(&self, mut read: Entry, weeks: u32) -> Result<Statistics, Error> {
        if weeks == 0 || weeks > WEEKS_MAX {
            return Err(Error::invalid(
                "weeks",
                format!("must be from 1 to {WEEKS_MAX}"),
            ));
        }
        let this_week = week_of(OffsetDateTime::now_utc().date());
        let first = this_week - Duration::weeks(i64::from(weeks) - 1);
        let days = self.store().daily_counts(&format_day(first)).await?;
        let week_starts: Vec<Date> = (0..weeks)
            .map(|i| first + Duration::weeks(i64::from(i)))
            .collect();
        let mut by_agency: BTreeMap<String, Vec<AgencyWeek>> = BTreeMap::new();
        let mut queries = vec![QueryWeek::default(); week_starts.len()];
        for count in days {
            let Some(day) = parse_day(&count.day) else {
                continue;
            };
            let Some(index) = week_starts.iter().position(|w| *w == week_of(day)) else {
                continue;
            };
            let disclosure = matches!(count.kind.as_str(), "query" | "notification" | "export")
                && count.decision == "released";
            let refusal = count.decision == "refused";
            if (disclosure || refusal) && !count.agency.is_empty() {
                let weeks = by_agency
                    .entry(count.agency.clone())
                    .or_insert_with(|| vec![AgencyWeek::default(); week_starts.len()]);
                if disclosure {
                    weeks[index].disclosures += count.entries;
                } else {
                    weeks[index].refusals += count.entries;
                }
            }
            if count.kind == "query" && count.decision == "released" {
                queries[index].queries += count.entries;
                if count.break_glass {
                    queries[index].break_glass += count.entries;
                }
            }
        }
        read.reason = format!(
            "statistics: entries counted per agency per week for {weeks} weeks from {}",
            format_day(first)
        );
        self.record_read(read, &[]).await?;
        Ok(Statistics {
            weeks: week_starts.into_iter().map(format_day).collect(),
            agencies: by_agency.keys().cloned().collect(),
            by_agency,
            queries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        let thursday = parse_day("2026-12-03").expect("day");
        assert_eq!(format_day(week_of(thursday)), "2026-11-30");
        let monday = parse_day("2026-11-30").expect("day");
        assert_eq!(week_of(monday), monday);
        let sunday = parse_day("2026-12-06").expect("day");
        assert_eq!(format_day(week_of(sunday)), "2026-11-30");
    }

    #[test]
    fn the_rate_is_per_hundred_queries() {
        let week = QueryWeek {
            queries: 40,
            break_glass: 3,
        };
        assert_eq!(week.rate_percent(), Some(7.5));
        assert_eq!(QueryWeek::default().rate_percent(), None);
    }
}
