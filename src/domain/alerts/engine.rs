//! The rules' incremental state, fed one log entry at a time in `seq` order: a few map
//! lookups and counter updates per entry, no I/O. The entries' own times drive it, so the
//! same log always gives the same findings (which is how the state is rebuilt after a
//! restart). The two rules that need the records (did the system record an involvement?)
//! hand out what to check: [`Engine::due`] for break-glass deadlines, and
//! [`involvement_window`] when an involvement's end is recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::domain::Role;
use crate::domain::alerts::clock::{UkLocal, format_utc, parse_utc};
use crate::domain::alerts::rules::{AlertRule, AlertRules};
use crate::domain::ledger::{Decision, Entry, EntryKind};

/// A pattern a rule found: an alert to raise, unless one with its key exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: AlertRule,
    /// What the alert is about: one alert per key, whichever process finds it.
    pub key: String,
    /// When the pattern was complete (seconds since the epoch).
    pub at_secs: i64,
    pub agency: String,
    pub system_id: String,
    pub practitioner_id: String,
    pub role: String,
    /// What happened and why it matters, in words; ids and counts, never personal data.
    pub summary: String,
    /// The disclosure-log entries it rests on.
    pub entry_ids: Vec<String>,
}

/// A break-glass disclosure waiting for its system to record an involvement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBreakGlass {
    pub entry_id: String,
    pub seq: u64,
    pub at_secs: i64,
    pub deadline_secs: i64,
    pub agency: String,
    pub system_id: String,
    pub practitioner_id: String,
    pub role: String,
    /// The subject and the persons the answer joined to them by identity links.
    pub persons: Vec<String>,
}

/// A fact by which a system worked with a person, whose end was just recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedInvolvement {
    pub record_id: String,
    pub category: String,
    pub system_id: String,
    /// When the system recorded the fact (not the start date it gave).
    pub opened_secs: i64,
    /// When the system recorded its end.
    pub ended_secs: i64,
    pub persons: Vec<String>,
}

/// A query entry of a system about a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAt {
    pub entry_id: String,
    pub at_secs: i64,
    pub agency: String,
    pub practitioner_id: String,
    pub role: String,
}

/// One practitioner's counters.
#[derive(Debug, Default)]
struct Practitioner {
    /// The UK local day being counted, and its queries so far.
    day: i64,
    today: u32,
    /// The first query entry of the day.
    first_today: String,
    /// Above this many queries today, the volume rule fires.
    threshold: f64,
    /// How the threshold was set, for the alert's words.
    usual: Option<(f64, usize)>,
    /// Earlier days with queries in the baseline window: (day, queries).
    history: VecDeque<(i64, u32)>,
    volume_alerted: i64,
    out_of_hours_alerted: i64,
    /// Recent counted refusals: (time, entry id).
    refusals: VecDeque<(i64, String)>,
}

/// The rules' state over the log so far.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<AlertRules>,
    /// By system, then practitioner: lookups by `&str`, no key built per entry.
    practitioners: HashMap<String, HashMap<String, Practitioner>>,
    /// Break-glass disclosures by deadline.
    pending: BTreeMap<(i64, u64), PendingBreakGlass>,
    evaluated_seq: u64,
}

/// Whether an entry is a practitioner asking about someone: a query, an explain, or a
/// refused query.
fn is_question(entry: &Entry) -> bool {
    match entry.kind {
        EntryKind::Query | EntryKind::Explain => true,
        EntryKind::Refusal => entry.rpc.starts_with("safegate.v1.QueryService/"),
        _ => false,
    }
}

impl Engine {
    pub fn new(rules: Arc<AlertRules>) -> Self {
        Engine {
            rules,
            practitioners: HashMap::new(),
            pending: BTreeMap::new(),
            evaluated_seq: 0,
        }
    }

    /// Takes entries up to `seq` as already observed (the state is rebuilt from there).
    pub fn resume_after(&mut self, seq: u64) {
        self.evaluated_seq = seq;
    }

    /// The rules the engine applies.
    pub fn rules(&self) -> &AlertRules {
        &self.rules
    }

    /// The last `seq` observed.
    pub fn evaluated_seq(&self) -> u64 {
        self.evaluated_seq
    }

    /// Break-glass disclosures still waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes the entry at `seq` into the state; appends what it completes to `found`.
    /// Entries at or before the last observed `seq` are ignored.
    pub fn observe(&mut self, seq: u64, entry: &Entry, found: &mut Vec<Finding>) {
        if seq <= self.evaluated_seq {
            return;
        }
        self.evaluated_seq = seq;
        if entry.practitioner_id.is_empty() || entry.system_id.is_empty() {
            return;
        }
        let question = is_question(entry);
        let refusal = entry.kind == EntryKind::Refusal;
        if !question && !refusal {
            return;
        }
        let Some(at) = parse_utc(&entry.recorded_at) else {
            return;
        };
        let local = UkLocal::at(at);
        let rules = Arc::clone(&self.rules);
        let by_system = match self.practitioners.get_mut(entry.system_id.as_str()) {
            Some(map) => map,
            None => self
                .practitioners
                .entry(entry.system_id.clone())
                .or_default(),
        };
        let state = match by_system.get_mut(entry.practitioner_id.as_str()) {
            Some(state) => state,
            None => by_system.entry(entry.practitioner_id.clone()).or_default(),
        };
        if question {
            volume(&rules, state, local, entry, at, found);
            out_of_hours(&rules, state, local, entry, at, found);
        }
        if refusal {
            refusals(&rules, state, entry, at, found);
        }
        if entry.kind == EntryKind::Query
            && entry.decision == Decision::Released
            && entry.break_glass
        {
            let deadline =
                at + i64::from(rules.break_glass_without_involvement.deadline_hours) * 3_600;
            let mut persons: Vec<String> = std::iter::once(entry.subject_person_id.clone())
                .chain(
                    entry
                        .identity_links
                        .iter()
                        .flat_map(|l| [l.person_id.clone(), l.other_person_id.clone()]),
                )
                .filter(|p| !p.is_empty())
                .collect();
            persons.sort_unstable();
            persons.dedup();
            self.pending.insert(
                (deadline, seq),
                PendingBreakGlass {
                    entry_id: entry.entry_id.clone(),
                    seq,
                    at_secs: at,
                    deadline_secs: deadline,
                    agency: entry.agency.clone(),
                    system_id: entry.system_id.clone(),
                    practitioner_id: entry.practitioner_id.clone(),
                    role: entry.role.clone(),
                    persons,
                },
            );
        }
    }

    /// Takes out the break-glass disclosures whose deadline has passed at `now_secs`:
    /// each is a finding unless its system recorded an involvement in time.
    pub fn due(&mut self, now_secs: i64) -> Vec<PendingBreakGlass> {
        let later = self.pending.split_off(&(now_secs.saturating_add(1), 0));
        std::mem::replace(&mut self.pending, later)
            .into_values()
            .collect()
    }
}

fn volume(
    rules: &AlertRules,
    state: &mut Practitioner,
    local: UkLocal,
    entry: &Entry,
    at: i64,
    found: &mut Vec<Finding>,
) {
    let rule = &rules.volume_above_usual;
    // A new day (an entry a moment older, from a concurrent append, counts as today).
    if local.day > state.day || state.first_today.is_empty() {
        if state.today > 0 {
            state.history.push_back((state.day, state.today));
        }
        let oldest = local.day - i64::from(rule.baseline_days);
        while state.history.front().is_some_and(|(day, _)| *day < oldest) {
            state.history.pop_front();
        }
        state.day = local.day;
        state.today = 0;
        state.first_today = entry.entry_id.clone();
        let active = state.history.len();
        if active >= rule.min_active_days as usize {
            let mean = state
                .history
                .iter()
                .map(|(_, n)| f64::from(*n))
                .sum::<f64>()
                / active as f64;
            state.threshold = (mean * rule.factor).max(mean + f64::from(rule.min_excess));
            state.usual = Some((mean, active));
        } else {
            state.threshold = f64::from(rule.new_practitioner_daily_limit);
            state.usual = None;
        }
    }
    state.today += 1;
    if f64::from(state.today) > state.threshold && state.volume_alerted != state.day {
        state.volume_alerted = state.day;
        let date = local.date();
        let what = match state.usual {
            Some((mean, days)) => format!(
                "Practitioner {} of system {} made {} queries on {date} (UK), more than {:.0}: \
                 {} times their own usual of {mean:.1} a day over their {days} working days \
                 in the last {} days",
                entry.practitioner_id,
                entry.system_id,
                state.today,
                state.threshold,
                rule.factor,
                rule.baseline_days
            ),
            None => format!(
                "Practitioner {} of system {} made {} queries on {date} (UK): a new practitioner \
                 (fewer than {} working days on record) over the new-practitioner limit of {} a day",
                entry.practitioner_id,
                entry.system_id,
                state.today,
                rule.min_active_days,
                rule.new_practitioner_daily_limit
            ),
        };
        found.push(finding(
            rules,
            AlertRule::VolumeAboveUsual,
            format!(
                "{}:{}:{}:{date}",
                AlertRule::VolumeAboveUsual,
                entry.system_id,
                entry.practitioner_id
            ),
            at,
            entry,
            what,
            vec![state.first_today.clone(), entry.entry_id.clone()],
        ));
    }
}

fn out_of_hours(
    rules: &AlertRules,
    state: &mut Practitioner,
    local: UkLocal,
    entry: &Entry,
    at: i64,
    found: &mut Vec<Finding>,
) {
    let rule = &rules.out_of_hours;
    let Some(role) = Role::parse(&entry.role) else {
        return;
    };
    if !rule.role_set.contains(&role) {
        return;
    }
    let in_hours = (rule.start_minute..rule.end_minute).contains(&local.minute)
        && !(rule.weekdays_only && local.weekend);
    if in_hours || state.out_of_hours_alerted == local.day {
        return;
    }
    state.out_of_hours_alerted = local.day;
    let date = local.date();
    let weekend = if rule.weekdays_only && local.weekend {
        ", a weekend day"
    } else {
        ""
    };
    let what = format!(
        "Practitioner {} ({}) of system {} asked about a person at {} UK time on {date}{weekend}, \
         outside working hours {}-{} (the first such question that day)",
        entry.practitioner_id,
        entry.role,
        entry.system_id,
        local.time(),
        rule.start,
        rule.end
    );
    found.push(finding(
        rules,
        AlertRule::OutOfHours,
        format!(
            "{}:{}:{}:{date}",
            AlertRule::OutOfHours,
            entry.system_id,
            entry.practitioner_id
        ),
        at,
        entry,
        what,
        vec![entry.entry_id.clone()],
    ));
}

fn refusals(
    rules: &AlertRules,
    state: &mut Practitioner,
    entry: &Entry,
    at: i64,
    found: &mut Vec<Finding>,
) {
    let rule = &rules.repeated_refusals;
    let counted = rule.counted_rules.is_empty()
        || entry
            .rule_ids
            .first()
            .is_some_and(|r| rule.counted_rules.iter().any(|c| c == r));
    if !counted {
        return;
    }
    let window = i64::from(rule.window_minutes) * 60;
    while state
        .refusals
        .front()
        .is_some_and(|(t, _)| at - *t > window)
    {
        state.refusals.pop_front();
    }
    state.refusals.push_back((at, entry.entry_id.clone()));
    if state.refusals.len() < rule.refusals as usize {
        return;
    }
    let run: Vec<(i64, String)> = state.refusals.drain(..).collect();
    let span = match (at - run[0].0).div_euclid(60) {
        0 => "under a minute".to_owned(),
        1 => "1 minute".to_owned(),
        minutes => format!("{minutes} minutes"),
    };
    let what = format!(
        "Practitioner {} of system {} was refused {} times in {span} (at most {} \
         within {} minutes is ordinary)",
        entry.practitioner_id,
        entry.system_id,
        run.len(),
        rule.refusals - 1,
        rule.window_minutes
    );
    found.push(finding(
        rules,
        AlertRule::RepeatedRefusals,
        format!(
            "{}:{}:{}:{}",
            AlertRule::RepeatedRefusals,
            entry.system_id,
            entry.practitioner_id,
            run[0].1
        ),
        at,
        entry,
        what,
        run.into_iter().map(|(_, id)| id).collect(),
    ));
}

fn finding(
    rules: &AlertRules,
    rule: AlertRule,
    key: String,
    at_secs: i64,
    entry: &Entry,
    what: String,
    entry_ids: Vec<String>,
) -> Finding {
    Finding {
        rule,
        key,
        at_secs,
        agency: entry.agency.clone(),
        system_id: entry.system_id.clone(),
        practitioner_id: entry.practitioner_id.clone(),
        role: entry.role.clone(),
        summary: format!("{what}. {}", rules.why(rule)),
        entry_ids,
    }
}

/// Rule 1, at the deadline: the finding for a break-glass disclosure whose system
/// recorded no involvement with the person in time (`involved` says whether it did).
pub fn break_glass_unexplained(
    rules: &AlertRules,
    pending: &PendingBreakGlass,
    involved: bool,
) -> Option<Finding> {
    if involved {
        return None;
    }
    let rule = AlertRule::BreakGlassWithoutInvolvement;
    let what = format!(
        "Break-glass disclosure {} to practitioner {} of system {} at {} was not followed by any \
         involvement with the person recorded by that system within {} hours",
        pending.entry_id,
        pending.practitioner_id,
        pending.system_id,
        format_utc(pending.at_secs),
        rules.break_glass_without_involvement.deadline_hours
    );
    Some(Finding {
        rule,
        key: format!("{rule}:{}", pending.entry_id),
        at_secs: pending.deadline_secs,
        agency: pending.agency.clone(),
        system_id: pending.system_id.clone(),
        practitioner_id: pending.practitioner_id.clone(),
        role: pending.role.clone(),
        summary: format!("{what}. {}", rules.why(rule)),
        entry_ids: vec![pending.entry_id.clone()],
    })
}

/// Rule 2, when an involvement's end is recorded: the finding if the system queried a
/// person of it within the window after recording it and ended it soon after that
/// query. `queries` are the system's queries about the persons while it stood.
pub fn involvement_window(
    rules: &AlertRules,
    ended: &EndedInvolvement,
    queries: &[QueryAt],
) -> Option<Finding> {
    let rule = &rules.involvement_window;
    let before = i64::from(rule.opened_before_query_minutes) * 60;
    let after = i64::from(rule.ended_after_query_hours) * 3_600;
    let query = queries.iter().find(|q| {
        q.at_secs >= ended.opened_secs
            && q.at_secs - ended.opened_secs <= before
            && ended.ended_secs >= q.at_secs
            && ended.ended_secs - q.at_secs <= after
    })?;
    let id = AlertRule::InvolvementWindow;
    let what = format!(
        "System {} recorded {} {} at {}, asked about the person {} minutes later (entry {}) and \
         recorded its end {:.1} hours after that question",
        ended.system_id,
        ended.category,
        ended.record_id,
        format_utc(ended.opened_secs),
        (query.at_secs - ended.opened_secs).div_euclid(60),
        query.entry_id,
        (ended.ended_secs - query.at_secs) as f64 / 3_600.0
    );
    Some(Finding {
        rule: id,
        key: format!("{id}:{}", ended.record_id),
        at_secs: ended.ended_secs,
        agency: query.agency.clone(),
        system_id: ended.system_id.clone(),
        practitioner_id: query.practitioner_id.clone(),
        role: query.role.clone(),
        summary: format!("{what}. {}", rules.why(id)),
        entry_ids: vec![query.entry_id.clone()],
    })
}
