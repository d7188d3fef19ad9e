//! The rules on a controlled clock: each fires on its planted pattern and stays quiet on
//! ordinary traffic. Entries carry the times the test gives them.

use std::sync::Arc;

use crate::domain::alerts::clock::{days_from_civil, format_utc};
use crate::domain::alerts::engine::{
    EndedInvolvement, Engine, Finding, QueryAt, break_glass_unexplained, involvement_window,
};
use crate::domain::alerts::rules::{AlertRule, AlertRules};
use crate::domain::ledger::{Decision, Entry, EntryKind};

const RULES: &str = include_str!("../../../policies/alerts.toml");

fn rules() -> Arc<AlertRules> {
    Arc::new(AlertRules::parse(RULES).expect("the reviewed rules parse"))
}

/// Seconds of a UTC time on a date.
fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64) -> i64 {
    days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60
}

fn query(at: i64, practitioner: &str, role: &str) -> Entry {
    let mut entry = Entry::new(EntryKind::Query, Decision::Released);
    entry.recorded_at = format_utc(at);
    entry.rpc = "safegate.v1.QueryService/Query".into();
    entry.agency = "health".into();
    entry.system_id = "health-visiting".into();
    entry.practitioner_id = practitioner.into();
    entry.role = role.into();
    entry.subject_person_id = "p-1".into();
    entry
}

fn refusal(at: i64, practitioner: &str, rule: &str) -> Entry {
    let mut entry = query(at, practitioner, "school_dsl");
    entry.kind = EntryKind::Refusal;
    entry.decision = Decision::Refused;
    entry.system_id = "primary-school".into();
    entry.rule_ids = vec![rule.into()];
    entry
}

struct Feed {
    engine: Engine,
    seq: u64,
    found: Vec<Finding>,
}

impl Feed {
    fn new() -> Self {
        Feed {
            engine: Engine::new(rules()),
            seq: 0,
            found: Vec::new(),
        }
    }

    fn push(&mut self, entry: &Entry) {
        self.seq += 1;
        self.engine.observe(self.seq, entry, &mut self.found);
    }

    fn of(&self, rule: AlertRule) -> Vec<&Finding> {
        self.found.iter().filter(|f| f.rule == rule).collect()
    }
}

/// A weekday of ordinary work for a practitioner: `n` queries between 09:00 and 16:00.
fn ordinary_day(feed: &mut Feed, day: (i64, u32, u32), practitioner: &str, n: u32) {
    for i in 0..n {
        let minute = 9 * 60 + i64::from(i) * 420 / i64::from(n.max(1));
        feed.push(&query(
            utc(day.0, day.1, day.2, 0, minute),
            practitioner,
            "health_visitor",
        ));
    }
}

#[test]
fn the_reviewed_rules_file_names_each_rule_and_has_a_version() {
    let rules = rules();
    assert_eq!(rules.version().len(), 64);
    for rule in AlertRule::ALL {
        assert!(!rules.why(*rule).trim().is_empty(), "{rule} says why");
    }
    let broken = RULES.replace("factor = 3.0", "factor = 0.5");
    let error = AlertRules::parse(&broken).expect_err("a factor below 1 is refused");
    assert!(error.to_string().contains("volume_above_usual"), "{error}");
    let renamed = RULES.replace("alerts.out_of_hours", "alerts.night");
    assert!(AlertRules::parse(&renamed).is_err());
}

#[test]
fn volume_far_above_a_practitioners_own_usual_fires_once_that_day() {
    let mut feed = Feed::new();
    // Two weeks of weekdays at 10 a day (January: GMT).
    for day in [6, 7, 8, 9, 10, 13, 14, 15, 16, 17] {
        ordinary_day(&mut feed, (2025, 1, day), "HV-0001", 10);
    }
    assert!(feed.of(AlertRule::VolumeAboveUsual).is_empty());
    // Usual 10: threshold max(30, 30) = 30; the 31st query of the day fires.
    ordinary_day(&mut feed, (2025, 1, 20), "HV-0001", 30);
    assert!(
        feed.of(AlertRule::VolumeAboveUsual).is_empty(),
        "30 is not above 30"
    );
    feed.push(&query(
        utc(2025, 1, 20, 16, 30),
        "HV-0001",
        "health_visitor",
    ));
    feed.push(&query(
        utc(2025, 1, 20, 16, 40),
        "HV-0001",
        "health_visitor",
    ));
    let found = feed.of(AlertRule::VolumeAboveUsual);
    assert_eq!(found.len(), 1, "once a day");
    assert!(
        found[0].summary.contains("their own usual of 10.0"),
        "{}",
        found[0].summary
    );
    assert_eq!(
        found[0].key,
        "alerts.volume_above_usual:health-visiting:HV-0001:2025-01-20"
    );
}

#[test]
fn a_busy_practitioners_ordinary_day_is_not_above_their_usual() {
    let mut feed = Feed::new();
    // 50 a day is this practitioner's usual: far above a colleague's, not their own.
    for day in [6, 7, 8, 9, 10, 13, 14] {
        ordinary_day(&mut feed, (2025, 1, day), "HV-0002", 50);
        ordinary_day(&mut feed, (2025, 1, day), "HV-0003", 5);
    }
    ordinary_day(&mut feed, (2025, 1, 15), "HV-0002", 95);
    ordinary_day(&mut feed, (2025, 1, 15), "HV-0003", 20);
    assert!(feed.of(AlertRule::VolumeAboveUsual).is_empty());
}

#[test]
fn a_new_practitioner_is_held_to_the_new_practitioner_limit() {
    let mut feed = Feed::new();
    ordinary_day(&mut feed, (2025, 1, 6), "HV-0100", 60);
    assert!(feed.of(AlertRule::VolumeAboveUsual).is_empty());
    feed.push(&query(utc(2025, 1, 6, 16, 5), "HV-0100", "health_visitor"));
    let found = feed.of(AlertRule::VolumeAboveUsual);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].summary.contains("new practitioner"),
        "{}",
        found[0].summary
    );
}

#[test]
fn repeated_refusals_within_the_window_fire_and_scattered_ones_do_not() {
    let mut feed = Feed::new();
    let rule = "query.no_legitimate_relationship";
    // Four refusals a day apart: ordinary mistakes.
    for day in 6..10 {
        feed.push(&refusal(utc(2025, 1, day, 10, 0), "DSL-0900", rule));
    }
    // Refusals by rules that are not counted.
    for i in 0..6 {
        feed.push(&refusal(
            utc(2025, 1, 10, 10, i),
            "DSL-0900",
            "break_glass.justification_required",
        ));
    }
    assert!(feed.of(AlertRule::RepeatedRefusals).is_empty());
    // Five in twenty minutes: probing.
    for i in 0..5 {
        feed.push(&refusal(utc(2025, 1, 13, 11, i * 5), "DSL-0900", rule));
    }
    let found = feed.of(AlertRule::RepeatedRefusals);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entry_ids.len(), 5);
    assert!(
        found[0].summary.contains("refused 5 times in 20 minutes"),
        "{}",
        found[0].summary
    );
}

#[test]
fn a_burst_of_refusals_is_said_to_be_under_a_minute() {
    let mut feed = Feed::new();
    for _ in 0..5 {
        feed.push(&refusal(
            utc(2025, 1, 13, 11, 0),
            "DSL-0901",
            "query.no_legitimate_relationship",
        ));
    }
    let found = feed.of(AlertRule::RepeatedRefusals);
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .summary
            .contains("refused 5 times in under a minute"),
        "{}",
        found[0].summary
    );
}

#[test]
fn out_of_hours_follows_uk_local_time_with_summer_time() {
    let mut feed = Feed::new();
    // 06:30 UTC in July is 07:30 BST: in hours. 06:30 UTC in January is 06:30 GMT: out.
    feed.push(&query(utc(2025, 7, 14, 6, 30), "HV-0001", "health_visitor"));
    assert!(
        feed.of(AlertRule::OutOfHours).is_empty(),
        "07:30 BST is in hours"
    );
    feed.push(&query(utc(2025, 1, 14, 6, 30), "HV-0001", "health_visitor"));
    assert_eq!(
        feed.of(AlertRule::OutOfHours).len(),
        1,
        "06:30 GMT is out of hours"
    );
    // 19:30 UTC in July is 20:30 BST: out.
    feed.push(&query(
        utc(2025, 7, 15, 19, 30),
        "HV-0001",
        "health_visitor",
    ));
    // A second out-of-hours question the same night adds no second alert.
    feed.push(&query(
        utc(2025, 7, 15, 19, 45),
        "HV-0001",
        "health_visitor",
    ));
    assert_eq!(feed.of(AlertRule::OutOfHours).len(), 2);
    // Police work round the clock: not in the rule's roles.
    feed.push(&query(utc(2025, 1, 14, 2, 0), "IOM-0001", "iom_officer"));
    // Saturday midday.
    feed.push(&query(utc(2025, 1, 18, 12, 0), "GP-0001", "gp"));
    let found = feed.of(AlertRule::OutOfHours);
    assert_eq!(found.len(), 3);
    assert!(
        found[2].summary.contains("a weekend day"),
        "{}",
        found[2].summary
    );
    assert!(found.iter().all(|f| f.practitioner_id != "IOM-0001"));
}

#[test]
fn break_glass_waits_for_its_deadline_then_needs_an_involvement() {
    let mut feed = Feed::new();
    let at = utc(2025, 1, 14, 10, 0);
    let mut glass = query(at, "HV-0001", "health_visitor");
    glass.break_glass = true;
    feed.push(&glass);
    feed.push(&query(at + 60, "HV-0001", "health_visitor"));
    assert_eq!(feed.engine.pending(), 1);
    let deadline = at + 72 * 3_600;
    assert!(
        feed.engine.due(deadline - 1).is_empty(),
        "not before the deadline"
    );
    let due = feed.engine.due(deadline);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].persons, vec!["p-1".to_owned()]);
    let rules = rules();
    assert!(break_glass_unexplained(&rules, &due[0], true).is_none());
    let finding = break_glass_unexplained(&rules, &due[0], false).expect("unexplained");
    assert_eq!(finding.entry_ids, vec![glass.entry_id.clone()]);
    assert!(
        feed.engine.due(deadline + 10_000).is_empty(),
        "checked once"
    );
}

#[test]
fn an_involvement_opened_for_a_query_and_ended_soon_after_fires() {
    let rules = rules();
    let opened = utc(2025, 1, 14, 10, 0);
    let ended = |after: i64| EndedInvolvement {
        record_id: "r-1".into(),
        category: "involvement".into(),
        system_id: "health-visiting".into(),
        opened_secs: opened,
        ended_secs: opened + after,
        persons: vec!["p-1".into()],
    };
    let asked = |after: i64| QueryAt {
        entry_id: "e-1".into(),
        at_secs: opened + after,
        agency: "health".into(),
        practitioner_id: "HV-0001".into(),
        role: "health_visitor".into(),
    };
    // Opened, queried 10 minutes later, ended 2 hours after that.
    let found = involvement_window(&rules, &ended(600 + 7_200), &[asked(600)]).expect("fires");
    assert_eq!(found.key, "alerts.involvement_window:r-1");
    assert_eq!(found.practitioner_id, "HV-0001");
    // Queried three hours after opening: ordinary work.
    assert!(involvement_window(&rules, &ended(10_800 + 600), &[asked(10_800)]).is_none());
    // Queried soon after opening, ended a month later: ordinary work.
    assert!(involvement_window(&rules, &ended(30 * 86_400), &[asked(600)]).is_none());
    // Never queried.
    assert!(involvement_window(&rules, &ended(3_600), &[]).is_none());
}

#[test]
fn ordinary_entries_of_other_kinds_never_fire() {
    let mut feed = Feed::new();
    let at = utc(2025, 1, 14, 2, 0);
    for kind in [
        EntryKind::Notification,
        EntryKind::LogRead,
        EntryKind::Export,
        EntryKind::Alert,
    ] {
        let mut entry = query(at, "HV-0001", "health_visitor");
        entry.kind = kind;
        for _ in 0..100 {
            feed.push(&entry);
        }
    }
    assert!(feed.found.is_empty());
}
