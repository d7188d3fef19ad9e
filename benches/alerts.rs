//! Privacy alerts: recall and precision against planted truth, and what evaluating the
//! rules costs per appended entry against the append's own cost, in the same run.
//!
//! (1) In memory: a log of 1,000,000 entries (`SAFEGATE_BENCH_ALERT_ENTRIES`) of ordinary
//!     traffic (practitioners asking at their own daily rates in working hours, police
//!     round the clock, scattered refusals, break-glass followed by an involvement,
//!     involvements that last weeks) with misuse planted at known places, fed through the
//!     gateway's own engine in `seq` order; the two record-dependent rules answered from
//!     in-memory records through the same `AlertSources` trait the store implements.
//!     Prints each rule's recall and precision, and the alerts raised on ordinary traffic
//!     per 1,000 ordinary disclosures.
//! (2) On the real store (SQLite, or PostgreSQL with `SAFEGATE_BENCH_DATABASE_URL`): the
//!     same appends through `Ledger::append` with and without the evaluator subscribed,
//!     alternating, and the engine's own time per entry against the append's.
//!     Generating 1M real appends takes long on this machine, so (2) runs 20,000
//!     (`SAFEGATE_BENCH_ALERT_APPENDS`).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use safegate::domain::alerts::clock::{UkLocal, days_from_civil, format_utc};
use safegate::domain::alerts::{
    AlertEvaluator, AlertRule, AlertRules, AlertSources, EndedInvolvement, Engine, Finding,
    QueryAt, check_break_glass, check_ended,
};
use safegate::domain::ledger::{CheckpointSigner, Decision, Entry, EntryKind, Ledger};
use safegate::error::Error;
use safegate::store::Store;

const RULES: &str = include_str!("../policies/alerts.toml");
/// Each planted pattern, per rule.
const PLANTED: usize = 100;

fn number(var: &str, default: usize) -> Result<usize> {
    match std::env::var(var) {
        Ok(v) => v.parse().with_context(|| format!("{var} must be a number")),
        Err(_) => Ok(default),
    }
}

/// A small deterministic generator (SplitMix64), so every run plants the same log.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Query {
        break_glass: bool,
    },
    Refusal,
    /// Not a log entry: a system ends an involvement (rule 2's trigger).
    Ended {
        involvement: usize,
    },
}

#[derive(Clone, Copy)]
struct Event {
    at: i64,
    practitioner: u32,
    subject: u32,
    what: What,
    /// Which planted case this is part of: (rule, case number).
    planted: Option<(AlertRule, u32)>,
}

struct Practitioner {
    id: String,
    system: String,
    agency: &'static str,
    role: &'static str,
    office_hours: bool,
    daily: u32,
}

/// The records the record-dependent rules ask about, in memory.
#[derive(Default)]
struct Records {
    /// (system, subject) -> times involvements were recorded.
    recorded: HashMap<(String, String), Vec<i64>>,
    /// (system, subject) -> queries.
    queries: HashMap<(String, String), Vec<QueryAt>>,
}

impl AlertSources for Records {
    async fn works_with_recorded(
        &self,
        system: &str,
        persons: &[String],
        from: i64,
        to: i64,
    ) -> Result<bool, Error> {
        Ok(persons.iter().any(|p| {
            self.recorded
                .get(&(system.to_owned(), p.clone()))
                .is_some_and(|times| times.iter().any(|t| (from..=to).contains(t)))
        }))
    }
    async fn works_with_ended_since(&self, _since: i64) -> Result<Vec<EndedInvolvement>, Error> {
        Ok(Vec::new())
    }
    async fn queries_about(
        &self,
        system: &str,
        persons: &[String],
        from: i64,
        to: i64,
    ) -> Result<Vec<QueryAt>, Error> {
        Ok(persons
            .iter()
            .flat_map(|p| {
                self.queries
                    .get(&(system.to_owned(), p.clone()))
                    .into_iter()
                    .flatten()
                    .filter(|q| (from..=to).contains(&q.at_secs))
                    .cloned()
            })
            .collect())
    }
}

fn practitioners(random: &mut Random) -> Vec<Practitioner> {
    let kinds: [(&str, &str, &str, bool); 6] = [
        ("health-visiting", "health", "health_visitor", true),
        ("gp-practice", "health", "gp", true),
        (
            "childrens-services",
            "childrens_services",
            "social_worker",
            true,
        ),
        ("nursery", "education", "school_dsl", true),
        ("police-iom", "police", "iom_officer", false),
        ("probation", "probation", "offender_manager", false),
    ];
    (0..1_500)
        .map(|i| {
            let (system, agency, role, office) = kinds[i % kinds.len()];
            Practitioner {
                id: format!("P-{i:05}"),
                system: system.into(),
                agency,
                role,
                office_hours: office,
                daily: 3 + random.below(30) as u32,
            }
        })
        .collect()
}

/// Seconds of a UK local time (01:00-23:00 so BST edges never matter) on `day`.
fn local(day: i64, minute: i64) -> i64 {
    let guess = day * 86_400 + minute * 60;
    let offset = if safegate::domain::alerts::clock::is_bst(guess) {
        3_600
    } else {
        0
    };
    guess - offset
}

struct Log {
    /// How many cases of each rule were planted (rules 1, 2, 3, 4, 5).
    planted: [u32; 5],
    events: Vec<Event>,
    involvements: Vec<(u32, u32, i64, i64)>,
    people: Vec<Practitioner>,
}

/// The log's events in time order, ordinary and planted, until `entries` log entries.
fn generate(entries: usize) -> Log {
    let mut random = Random(13);
    let people = practitioners(&mut random);
    let start = days_from_civil(2025, 1, 6);
    let mut events: Vec<Event> = Vec::with_capacity(entries + entries / 50);
    let mut involvements: Vec<(u32, u32, i64, i64)> = Vec::new();
    let mut day = start;
    let mut subject = 0u32;
    let mut case = [0u32; 5];
    let mut count = 0usize;
    // Practitioners whose day is a planted spike, so their ordinary day is not counted twice.
    while count < entries {
        let when = UkLocal::at(day * 86_400 + 12 * 3_600);
        let days_in = day - start;
        for (p, person) in people.iter().enumerate() {
            let p = p as u32;
            if person.office_hours && when.weekend {
                continue;
            }
            // Own rate, +-30% day to day.
            let mut n = person.daily * (70 + random.below(61) as u32) / 100;
            let mut planted = None;
            if days_in >= 14 && case[2] < PLANTED as u32 && random.below(300) == 0 {
                // Rule 3: a day far above this practitioner's own usual.
                n = person.daily * 4 + 25;
                planted = Some((AlertRule::VolumeAboveUsual, case[2]));
                case[2] += 1;
            }
            for _ in 0..n {
                let minute = if person.office_hours {
                    8 * 60 + random.below(10 * 60) as i64
                } else {
                    60 + random.below(22 * 60) as i64
                };
                subject += 1;
                events.push(Event {
                    at: local(day, minute),
                    practitioner: p,
                    subject: subject % 200_000,
                    what: What::Query { break_glass: false },
                    planted,
                });
            }
            count += n as usize;
            // An ordinary refusal now and then.
            if random.below(40) == 0 {
                events.push(Event {
                    at: local(day, 9 * 60 + random.below(8 * 60) as i64),
                    practitioner: p,
                    subject: random.below(200_000) as u32,
                    what: What::Refusal,
                    planted: None,
                });
                count += 1;
            }
            // Ordinary break-glass, followed by the system recording an involvement.
            if random.below(400) == 0 {
                let at = local(day, 10 * 60 + random.below(6 * 60) as i64);
                let s = 300_000 + random.below(100_000) as u32;
                events.push(Event {
                    at,
                    practitioner: p,
                    subject: s,
                    what: What::Query { break_glass: true },
                    planted: None,
                });
                involvements.push((p, s, at + 3_600 + random.below(40 * 3_600) as i64, i64::MAX));
                count += 1;
            }
            // Ordinary involvements: recorded, queried within the hour, open for weeks.
            if random.below(200) == 0 {
                let opened = local(day, 9 * 60 + random.below(7 * 60) as i64);
                let s = 400_000 + random.below(100_000) as u32;
                let asked = opened + 600 + random.below(3_000) as i64;
                let ended = asked + (7 + random.below(50) as i64) * 86_400;
                involvements.push((p, s, opened, ended));
                events.push(Event {
                    at: asked,
                    practitioner: p,
                    subject: s,
                    what: What::Query { break_glass: false },
                    planted: None,
                });
                events.push(Event {
                    at: ended,
                    practitioner: p,
                    subject: s,
                    what: What::Ended {
                        involvement: involvements.len() - 1,
                    },
                    planted: None,
                });
                count += 1;
            }
        }
        // The planted misuse of the day.
        let working = !when.weekend;
        // Four of each pattern a day from the second week, until each has its hundred.
        for _ in 0..if days_in >= 7 { 4 } else { 0 } {
            let pick = |office: bool, random: &mut Random| loop {
                let p = random.below(people.len() as u64) as u32;
                if people[p as usize].office_hours == office {
                    return p;
                }
            };
            if case[0] < PLANTED as u32 && working {
                // Rule 1: break-glass and no involvement.
                let p = pick(true, &mut random);
                events.push(Event {
                    at: local(day, 11 * 60 + random.below(300) as i64),
                    practitioner: p,
                    subject: 600_000 + case[0],
                    what: What::Query { break_glass: true },
                    planted: Some((AlertRule::BreakGlassWithoutInvolvement, case[0])),
                });
                case[0] += 1;
                count += 1;
            }
            if case[1] < PLANTED as u32 && working {
                // Rule 2: an involvement for one question, ended soon after.
                let p = pick(true, &mut random);
                let s = 700_000 + case[1];
                let opened = local(day, 9 * 60 + random.below(300) as i64);
                let asked = opened + 300 + random.below(3_000) as i64;
                let ended = asked + 3_600 + random.below(20 * 3_600) as i64;
                involvements.push((p, s, opened, ended));
                let planted = Some((AlertRule::InvolvementWindow, case[1]));
                events.push(Event {
                    at: asked,
                    practitioner: p,
                    subject: s,
                    what: What::Query { break_glass: false },
                    planted,
                });
                events.push(Event {
                    at: ended,
                    practitioner: p,
                    subject: s,
                    what: What::Ended {
                        involvement: involvements.len() - 1,
                    },
                    planted,
                });
                case[1] += 1;
                count += 1;
            }
            if case[3] < PLANTED as u32 && working {
                // Rule 4: six refusals in half an hour.
                let p = pick(true, &mut random);
                let at = local(day, 13 * 60 + random.below(120) as i64);
                for k in 0..6 {
                    events.push(Event {
                        at: at + k * 300,
                        practitioner: p,
                        subject: 800_000 + random.below(1_000) as u32,
                        what: What::Refusal,
                        planted: Some((AlertRule::RepeatedRefusals, case[3])),
                    });
                }
                case[3] += 1;
                count += 6;
            }
            if case[4] < PLANTED as u32 {
                // Rule 5: a question at 23:10 local from an office-hours role.
                let p = pick(true, &mut random);
                events.push(Event {
                    at: local(day, 23 * 60 + 10),
                    practitioner: p,
                    subject: random.below(200_000) as u32,
                    what: What::Query { break_glass: false },
                    planted: Some((AlertRule::OutOfHours, case[4])),
                });
                case[4] += 1;
                count += 1;
            }
        }
        day += 1;
    }
    events.sort_by_key(|e| e.at);
    Log {
        events,
        involvements,
        people,
        planted: case,
    }
}

fn entry(seq: u64, event: &Event, people: &[Practitioner]) -> Entry {
    let person = &people[event.practitioner as usize];
    let (kind, decision) = match event.what {
        What::Refusal => (EntryKind::Refusal, Decision::Refused),
        _ => (EntryKind::Query, Decision::Released),
    };
    let mut entry = Entry::new(kind, decision);
    entry.entry_id = format!("e{seq}");
    entry.recorded_at = format_utc(event.at);
    entry.rpc = "safegate.v1.QueryService/Query".into();
    entry.agency = person.agency.into();
    entry.system_id = person.system.clone();
    entry.practitioner_id = person.id.clone();
    entry.role = person.role.into();
    entry.purpose = "child_safeguarding".into();
    entry.subject_person_id = format!("s{}", event.subject);
    entry.break_glass = matches!(event.what, What::Query { break_glass: true });
    if event.what == What::Refusal {
        entry.rule_ids = vec!["query.no_legitimate_relationship".into()];
    }
    entry
}

struct Scored {
    found: Vec<Finding>,
    observe: Duration,
    observed: u64,
    ordinary: u64,
    planted_seqs: HashMap<u64, (AlertRule, u32)>,
}

async fn evaluate(log: &Log, rules: Arc<AlertRules>) -> Result<Scored> {
    let mut engine = Engine::new(Arc::clone(&rules));
    let mut records = Records::default();
    for &(p, s, opened, _) in &log.involvements {
        records
            .recorded
            .entry((log.people[p as usize].system.clone(), format!("s{s}")))
            .or_default()
            .push(opened);
    }
    let watched: HashSet<u32> = log.involvements.iter().map(|i| i.1).collect();
    let mut found = Vec::new();
    let mut observe = Duration::ZERO;
    let mut planted_seqs = HashMap::new();
    let (mut seq, mut ordinary) = (0u64, 0u64);
    let mut chunk: Vec<(u64, Entry)> = Vec::with_capacity(10_000);
    let mut chunk_end = 0i64;
    for (i, event) in log.events.iter().enumerate() {
        if let What::Ended { involvement } = event.what {
            let (p, s, opened, ended) = log.involvements[involvement];
            let finding = check_ended(
                &records,
                &rules,
                &EndedInvolvement {
                    record_id: format!("r{involvement}"),
                    category: "involvement".into(),
                    system_id: log.people[p as usize].system.clone(),
                    opened_secs: opened,
                    ended_secs: ended,
                    persons: vec![format!("s{s}")],
                },
            )
            .await?;
            found.extend(finding);
        } else {
            seq += 1;
            if let Some(planted) = event.planted {
                planted_seqs.insert(seq, planted);
            } else {
                ordinary += 1;
            }
            let entry = entry(seq, event, &log.people);
            if watched.contains(&event.subject) {
                records
                    .queries
                    .entry((entry.system_id.clone(), entry.subject_person_id.clone()))
                    .or_default()
                    .push(QueryAt {
                        entry_id: entry.entry_id.clone(),
                        at_secs: event.at,
                        agency: entry.agency.clone(),
                        practitioner_id: entry.practitioner_id.clone(),
                        role: entry.role.clone(),
                    });
            }
            chunk.push((seq, entry));
            chunk_end = event.at;
        }
        if chunk.len() == 10_000 || i + 1 == log.events.len() {
            // Only the engine's own work is timed: observing, and taking out deadlines.
            let started = Instant::now();
            for (seq, entry) in &chunk {
                engine.observe(*seq, entry, &mut found);
            }
            let due = engine.due(chunk_end);
            observe += started.elapsed();
            for pending in &due {
                found.extend(check_break_glass(&records, &rules, pending).await?);
            }
            chunk.clear();
        }
    }
    for pending in engine.due(i64::MAX) {
        found.extend(check_break_glass(&records, &rules, &pending).await?);
    }
    Ok(Scored {
        found,
        observe,
        observed: seq,
        ordinary,
        planted_seqs,
    })
}

fn report(scored: &Scored, planted: [u32; 5]) -> bool {
    let mut met = true;
    let mut false_alerts = 0usize;
    println!(
        "  {:<40} {:>7} {:>7} {:>9} {:>8} {:>10}",
        "rule", "planted", "alerts", "true", "recall", "precision"
    );
    for rule in AlertRule::ALL {
        let alerts: Vec<&Finding> = scored.found.iter().filter(|f| f.rule == *rule).collect();
        let mut caught: HashSet<u32> = HashSet::new();
        let mut true_alerts = 0usize;
        for alert in &alerts {
            let hit = alert.entry_ids.iter().find_map(|id| {
                let seq: u64 = id.trim_start_matches('e').parse().ok()?;
                scored
                    .planted_seqs
                    .get(&seq)
                    .filter(|(r, _)| r == rule)
                    .map(|(_, case)| *case)
            });
            if let Some(case) = hit {
                caught.insert(case);
                true_alerts += 1;
            }
        }
        false_alerts += alerts.len() - true_alerts;
        let planted = planted[AlertRule::ALL.iter().position(|r| r == rule).unwrap_or(0)];
        let recall = caught.len() as f64 / f64::from(planted.max(1));
        let precision = if alerts.is_empty() {
            0.0
        } else {
            true_alerts as f64 / alerts.len() as f64
        };
        met &= recall >= 1.0;
        println!(
            "  {:<40} {:>7} {:>7} {:>9} {:>8.3} {:>10.3}",
            rule.as_str(),
            planted,
            alerts.len(),
            true_alerts,
            recall,
            precision
        );
    }
    let per_thousand = false_alerts as f64 * 1_000.0 / scored.ordinary as f64;
    met &= per_thousand <= 1.0;
    println!(
        "  alerts on ordinary traffic: {false_alerts} over {} ordinary entries = {per_thousand:.4} \
         per 1,000 (goal at most 1)",
        common::thousands(scored.ordinary as f64)
    );
    met
}

/// Appends `n` entries through `ledger` from `tasks` concurrent tasks; the time taken.
async fn appends(ledger: &Ledger, n: usize, tasks: usize, offset: usize) -> Result<Duration> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let ledger = ledger.clone();
        set.spawn(async move {
            for i in (t..n).step_by(tasks) {
                let mut entry = Entry::new(EntryKind::Query, Decision::Released);
                entry.rpc = "safegate.v1.QueryService/Query".into();
                entry.agency = "police".into();
                entry.system_id = "police-iom".into();
                // One entry per practitioner and a round-the-clock role: ordinary traffic
                // that raises nothing, so both runs write the same entries.
                entry.practitioner_id = format!("IOM-{:07}", i + offset);
                entry.role = "iom_officer".into();
                entry.purpose = "child_safeguarding".into();
                entry.subject_person_id = format!("p-{}", (i + offset) % 50_000);
                ledger.append(entry).await?;
            }
            Ok::<(), Error>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done.context("append task")??;
    }
    Ok(started.elapsed())
}

async fn real_store(rules: Arc<AlertRules>, engine_ns: f64) -> Result<bool> {
    let n = number("SAFEGATE_BENCH_ALERT_APPENDS", 20_000)?;
    let tasks = 32;
    let work = std::env::temp_dir().join(format!("safegate-bench-alerts-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let database = common::BenchDatabase::create(&work, "alerts").await?;
    safegate::pki::write_checkpoint_key(&work).context("checkpoint key")?;
    let store = Store::connect(&database.url(), 8).await.context("store")?;
    store.migrate().await.context("migrate")?;
    let plain = Ledger::start(
        store.clone(),
        CheckpointSigner::load(&work.join("checkpoint.key"))?,
        safegate::startup::bound_tables(&store),
    );
    let watched = Ledger::start(
        store.clone(),
        CheckpointSigner::load(&work.join("checkpoint.key"))?,
        safegate::startup::bound_tables(&store),
    );
    let evaluator = AlertEvaluator::start(
        watched.clone(),
        std::sync::Arc::new(store.clone()),
        rules,
        Vec::new(),
    );
    evaluator.sync(None).await.context("evaluator leads")?;
    println!();
    println!("== (2) appends on the real store, with and without the evaluator subscribed ==");
    println!("  database : {}", database.describe());
    println!(
        "  {n} appends per run through Ledger::append from {tasks} tasks; runs alternate, 3 each"
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..3 {
        without.push(appends(&plain, n, tasks, round * 2 * n).await?);
        with.push(appends(&watched, n, tasks, (round * 2 + 1) * n).await?);
        evaluator.sync(None).await.context("evaluation caught up")?;
    }
    let best = |runs: &[Duration]| runs.iter().min().copied().unwrap_or_default();
    let (a, b) = (best(&without), best(&with));
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "  without evaluator: {:.1} us per append ({} appends/s), best of 3",
        per(a),
        common::thousands(n as f64 / a.as_secs_f64())
    );
    println!(
        "  with evaluator   : {:.1} us per append ({} appends/s), best of 3; ratio {:.3}",
        per(b),
        common::thousands(n as f64 / b.as_secs_f64()),
        b.as_secs_f64() / a.as_secs_f64()
    );
    let share = engine_ns / 1_000.0 / per(a);
    println!(
        "  the engine's own evaluation, {:.0} ns per entry (from (1)), is {:.2}% of one append \
         ({:.1} us) (goal under 5%)",
        engine_ns,
        share * 100.0,
        per(a)
    );
    evaluator.stop().await;
    store.close().await;
    database.drop_database().await?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(share < 0.05)
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let entries = number("SAFEGATE_BENCH_ALERT_ENTRIES", 1_000_000)?;
        let rules = Arc::new(AlertRules::parse(RULES)?);
        println!("alerts bench: {}", common::command("alerts"));
        println!("rules policies/alerts.toml, version {}", rules.version());
        println!();
        println!(
            "== (1) the rules over a generated log of {} entries, in memory ==",
            common::thousands(entries as f64)
        );
        let started = Instant::now();
        let log = generate(entries);
        println!(
            "  generated in {:.1} s: {} practitioners, {} involvements; planted {:?} (rules 1-5)",
            started.elapsed().as_secs_f64(),
            log.people.len(),
            log.involvements.len(),
            log.planted
        );
        let scored = evaluate(&log, Arc::clone(&rules)).await?;
        let engine_ns = scored.observe.as_secs_f64() * 1e9 / scored.observed as f64;
        println!(
            "  {} entries observed in {:.2} s of engine time: {engine_ns:.0} ns per entry",
            common::thousands(scored.observed as f64),
            scored.observe.as_secs_f64()
        );
        let quality = report(&scored, log.planted);
        drop(log);
        let cost = real_store(rules, engine_ns).await?;
        println!();
        println!(
            "goals: recall 1.0 and at most 1 alert per 1,000 ordinary: {}; evaluation under 5% of an append: {}",
            if quality { "met" } else { "NOT met" },
            if cost { "met" } else { "NOT met" }
        );
        Ok(())
    })
}
