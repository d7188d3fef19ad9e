//! Sharing-policy decision speed: `Policy::level` and `Policy::purpose` on a policy of
//! 10,000 rule lines (the repository's matrix and purposes plus local agreements for 1,000
//! synthetic agency systems), against a plain `HashMap<(String, String, String), u8>`
//! holding the same decisions, over the same shuffled keys, in the same run.
//!
//! ```sh
//! cargo bench --bench policy
//! ```
//!
//! The generated policy goes through the same `Policy::load` as the real one (casbin
//! reads it, every line is validated, casbin's answers are cross-checked). The two sides
//! are measured in alternating rounds for about 1.5 s each, so drift on a busy machine
//! hits both alike; the best round of each is reported.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use safegate::domain::policy::{Level, Policy};
use safegate::domain::records::Category;
use safegate::domain::{Purpose, Role};

const RULE_LINES: usize = 10_000;
const LOCAL_SYSTEMS: usize = 1_000;
/// Systems with no local rule, which fall back to the partnership-wide rules.
const OTHER_SYSTEMS: usize = 100;
const QUESTIONS: usize = 200_000;
const MEASURE_FOR: Duration = Duration::from_millis(1500);
/// Goal: a policy decision costs at most this many times a plain map lookup.
const GOAL_RATIO: f64 = 20.0;

/// One question a request asks of the policy.
#[derive(Clone, Copy)]
enum Question {
    Level(usize, Role, Category),
    Purpose(usize, Role, Purpose),
}

/// xorshift64*: deterministic, so every run benchmarks the same policy and keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The roles a synthetic system of kind `index % 4` asserts, as in a real partnership
/// where most local agreements are GP practices and schools.
fn system_roles(index: usize) -> (&'static str, &'static [Role]) {
    match index % 4 {
        0 | 1 => ("gp-practice", &[Role::Gp]),
        2 => ("school", &[Role::SchoolDsl, Role::SchoolNurse]),
        _ => ("police-unit", &[Role::PoliceOfficer, Role::IomOfficer]),
    }
}

fn system_id(index: usize) -> String {
    if index < LOCAL_SYSTEMS {
        format!("{}-{index:04}", system_roles(index).0)
    } else {
        format!("unlisted-{index:04}")
    }
}

/// Writes the repository's model and rules plus local rules up to `RULE_LINES` lines.
fn write_policy(dir: &Path, rng: &mut Rng) -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::create_dir_all(dir)?;
    std::fs::copy(repo.join("sharing.conf"), dir.join("sharing.conf"))?;
    let mut rules = std::fs::read_to_string(repo.join("sharing.csv"))?;
    let existing = rules
        .lines()
        .filter(|line| line.starts_with("p,") || line.starts_with("p2,"))
        .count();
    let needed = RULE_LINES - existing;
    rules.push_str("\n# Synthetic local agreements (benchmark only).\n");
    for index in 0..LOCAL_SYSTEMS {
        let count = needed / LOCAL_SYSTEMS + usize::from(index < needed % LOCAL_SYSTEMS);
        let system = system_id(index);
        let roles = system_roles(index).1;
        let mut written = std::collections::HashSet::new();
        while written.len() < count {
            let role = rng.pick(roles);
            if rng.below(4) == 0 {
                let purpose = rng.pick(Purpose::ALL);
                if written.insert((role, Err(purpose))) {
                    if rng.below(2) == 0 {
                        writeln!(
                            rules,
                            "p2, purpose.{role}.{purpose}@{system}, {system}, {role}, {purpose}, \
                             permit, local information-sharing agreement {index}"
                        )?;
                    } else {
                        writeln!(
                            rules,
                            "p2, purpose.{role}.{purpose}@{system}, {system}, {role}, {purpose}, refuse, -"
                        )?;
                    }
                }
            } else {
                let category = rng.pick(Category::ALL);
                if written.insert((role, Ok(category))) {
                    let level = rng.pick(Level::ALL);
                    writeln!(
                        rules,
                        "p, matrix.{role}.{category}@{system}, {system}, {role}, {category}, {level}"
                    )?;
                }
            }
        }
    }
    std::fs::write(dir.join("sharing.csv"), rules)?;
    Ok(())
}

fn questions(rng: &mut Rng) -> Vec<Question> {
    (0..QUESTIONS)
        .map(|_| {
            let system = rng.below(LOCAL_SYSTEMS + OTHER_SYSTEMS);
            // Mostly the roles the system asserts; sometimes any role.
            let role = if system < LOCAL_SYSTEMS && rng.below(4) != 0 {
                rng.pick(system_roles(system).1)
            } else {
                rng.pick(Role::ALL)
            };
            if rng.below(2) == 0 {
                Question::Level(system, role, rng.pick(Category::ALL))
            } else {
                Question::Purpose(system, role, rng.pick(Purpose::ALL))
            }
        })
        .collect()
}

/// The decision as one byte: a level 0-2, or 3 for a permitted and 4 for a refused purpose.
fn decide(policy: &Policy, systems: &[String], question: Question) -> u8 {
    match question {
        Question::Level(system, role, category) => {
            policy.level(&systems[system], role, category).level as u8
        }
        Question::Purpose(system, role, purpose) => {
            if policy.purpose(&systems[system], role, purpose).is_ok() {
                3
            } else {
                4
            }
        }
    }
}

fn map_key(systems: &[String], question: Question) -> (String, String, String) {
    match question {
        Question::Level(system, role, category) => (
            systems[system].clone(),
            role.as_str().to_owned(),
            category.as_str().to_owned(),
        ),
        Question::Purpose(system, role, purpose) => (
            systems[system].clone(),
            role.as_str().to_owned(),
            purpose.as_str().to_owned(),
        ),
    }
}

/// Best ns per decision of each side over alternating rounds.
fn measure(
    mut policy_round: impl FnMut() -> u64,
    mut map_round: impl FnMut() -> u64,
) -> (f64, f64) {
    let per_decision = |elapsed: Duration| elapsed.as_nanos() as f64 / QUESTIONS as f64;
    let (mut best_policy, mut best_map) = (f64::MAX, f64::MAX);
    let (mut spent_policy, mut spent_map) = (Duration::ZERO, Duration::ZERO);
    while spent_policy < MEASURE_FOR || spent_map < MEASURE_FOR {
        let started = Instant::now();
        black_box(policy_round());
        let elapsed = started.elapsed();
        spent_policy += elapsed;
        best_policy = best_policy.min(per_decision(elapsed));

        let started = Instant::now();
        black_box(map_round());
        let elapsed = started.elapsed();
        spent_map += elapsed;
        best_map = best_map.min(per_decision(elapsed));
    }
    (best_policy, best_map)
}

fn main() -> Result<()> {
    let mut rng = Rng(0x5afe_9a7e_2024_0001);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("safegate-bench-policy-{}", uuid::Uuid::new_v4()));
    write_policy(&dir, &mut rng).context("write the generated policy")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let loaded = runtime.block_on(Policy::load(&dir));
    let load_time = started.elapsed();
    std::fs::remove_dir_all(&dir).ok();
    let policy = loaded.context("load the generated policy")?;
    ensure!(
        policy.rule_count() == RULE_LINES,
        "generated {} rules",
        policy.rule_count()
    );
    ensure!(
        policy.local_systems().len() == LOCAL_SYSTEMS,
        "local systems"
    );

    let systems: Vec<String> = (0..LOCAL_SYSTEMS + OTHER_SYSTEMS).map(system_id).collect();
    let questions = questions(&mut rng);
    let map_keys: Vec<(String, String, String)> =
        questions.iter().map(|q| map_key(&systems, *q)).collect();
    let map: HashMap<(String, String, String), u8> = questions
        .iter()
        .zip(&map_keys)
        .map(|(q, key)| (key.clone(), decide(&policy, &systems, *q)))
        .collect();
    let refused = questions
        .iter()
        .filter(|q| decide(&policy, &systems, **q) == 4)
        .count();

    let (policy_ns, map_ns) = measure(
        || {
            questions
                .iter()
                .map(|q| u64::from(decide(&policy, &systems, black_box(*q))))
                .sum()
        },
        || {
            map_keys
                .iter()
                .map(|key| u64::from(*map.get(black_box(key)).expect("every key is in the map")))
                .sum()
        },
    );
    // Both sides answered the same questions the same way.
    let policy_sum: u64 = questions
        .iter()
        .map(|q| u64::from(decide(&policy, &systems, *q)))
        .sum();
    let map_sum: u64 = map_keys.iter().map(|key| u64::from(map[key])).sum();
    ensure!(policy_sum == map_sum, "the policy and the map disagree");

    let ratio = policy_ns / map_ns;
    println!(
        "policy: {} rule lines, {} local systems, version {}, loaded in {:.0} ms",
        policy.rule_count(),
        policy.local_systems().len(),
        &policy.version()[..12],
        load_time.as_secs_f64() * 1e3
    );
    println!(
        "questions: {QUESTIONS} shuffled ({} distinct keys; half levels, half purposes, {:.0}% refusals)",
        map.len(),
        refused as f64 * 100.0 / QUESTIONS as f64
    );
    println!(
        "Policy::level + Policy::purpose: {policy_ns:>7.1} ns/decision ({:>6.2} M decisions/s)",
        1e3 / policy_ns
    );
    println!(
        "HashMap<(String, String, String), u8>: {map_ns:>7.1} ns/decision ({:>6.2} M decisions/s)",
        1e3 / map_ns
    );
    println!(
        "ratio: {ratio:.2}x the plain map (goal: at most {GOAL_RATIO}x): {}",
        if ratio <= GOAL_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
