//! The sharing policy in `policies/` decides exactly what `tests/data/sharing_matrix.csv`
//! says for every system, role, category and purpose: a change to any cell of the policy
//! fails here until the table changes with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use safegate::domain::policy::{Level, PURPOSE_NOT_PERMITTED_RULE, Policy};
use safegate::domain::records::Category;
use safegate::domain::{Purpose, Role};
use safegate::error::Error;

const TABLE: &str = "tests/data/sharing_matrix.csv";

/// What the table expects for one (system, role, purpose) row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Refused,
    /// One level per category, in `Category::ALL` order.
    Levels(Vec<Level>),
}

type RowKey = (String, Role, Purpose);

/// Reads the table; a malformed table is a test failure naming the line.
fn read_table(text: &str) -> Vec<(usize, RowKey, Expected)> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let (header_line, header) = lines.next().expect("the table has a header");
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    assert_eq!(
        header[..3],
        ["system", "role", "purpose"],
        "{TABLE} line {header_line}: header"
    );
    // Columns may be in any order, but each category exactly once.
    let columns: Vec<Category> = header[3..]
        .iter()
        .map(|word| {
            Category::parse(word)
                .unwrap_or_else(|| panic!("{TABLE} line {header_line}: `{word}` is not a category"))
        })
        .collect();
    let distinct: BTreeSet<Category> = columns.iter().copied().collect();
    assert_eq!(
        (distinct.len(), columns.len()),
        (Category::ALL.len(), Category::ALL.len()),
        "{TABLE} line {header_line}: one column for each of {}",
        Category::expected()
    );

    lines
        .map(|(line, row)| {
            let cells: Vec<&str> = row.split(',').map(str::trim).collect();
            assert_eq!(cells.len(), header.len(), "{TABLE} line {line}: cell count");
            let role = Role::parse(cells[1])
                .unwrap_or_else(|| panic!("{TABLE} line {line}: unknown role `{}`", cells[1]));
            let purpose = Purpose::parse(cells[2])
                .unwrap_or_else(|| panic!("{TABLE} line {line}: unknown purpose `{}`", cells[2]));
            let marks = &cells[3..];
            let expected = if marks.iter().all(|mark| *mark == "R") {
                Expected::Refused
            } else {
                let mut levels = vec![Level::Nothing; Category::ALL.len()];
                for (category, mark) in columns.iter().zip(marks) {
                    levels[*category as usize] = match *mark {
                        "D" => Level::Detail,
                        "I" => Level::Indicator,
                        "-" => Level::Nothing,
                        other => panic!(
                            "{TABLE} line {line}: `{other}` is not D, I or - \
                             (R only for a whole refused row)"
                        ),
                    };
                }
                Expected::Levels(levels)
            };
            (line, (cells[0].to_owned(), role, purpose), expected)
        })
        .collect()
}

/// What the policy decides for one row.
fn decide(policy: &Policy, system: &str, role: Role, purpose: Purpose) -> Expected {
    match policy.purpose(system, role, purpose) {
        Ok(_) => Expected::Levels(
            Category::ALL
                .iter()
                .map(|category| policy.level(system, role, *category).level)
                .collect(),
        ),
        Err(Error::PermissionDenied { rule, .. }) if rule == PURPOSE_NOT_PERMITTED_RULE => {
            Expected::Refused
        }
        Err(other) => panic!("{system} {role} {purpose}: unexpected error {other}"),
    }
}

fn show(expected: &Expected) -> String {
    match expected {
        Expected::Refused => "refused".to_owned(),
        Expected::Levels(levels) => Category::ALL
            .iter()
            .zip(levels)
            .map(|(category, level)| format!("{category}={level}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Every difference between the policy and the table, every repeated row, and every
/// combination the table misses, one message each.
fn disagreements(policy: &Policy, table: &str) -> Vec<String> {
    let rows = read_table(table);
    let mut problems = Vec::new();
    let mut seen: BTreeMap<RowKey, usize> = BTreeMap::new();
    for (line, key, expected) in &rows {
        if let Some(first) = seen.insert(key.clone(), *line) {
            problems.push(format!(
                "line {line}: {} {} {} repeats line {first}",
                key.0, key.1, key.2
            ));
            continue;
        }
        let (system, role, purpose) = key;
        let actual = decide(policy, system, *role, *purpose);
        if actual != *expected {
            problems.push(format!(
                "line {line}: {system} {role} {purpose}\n    table:  {}\n    policy: {}",
                show(expected),
                show(&actual)
            ));
        }
    }

    // Every role and purpose for the default scope and for every system with local rules.
    for system in std::iter::once("*").chain(policy.local_systems()) {
        for role in Role::ALL {
            for purpose in Purpose::ALL {
                if !seen.contains_key(&(system.to_owned(), *role, *purpose)) {
                    problems.push(format!("missing row: {system} {role} {purpose}"));
                }
            }
        }
    }
    problems
}

async fn repository_policy_and_table() -> (Policy, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = Policy::load(&root.join("policies"))
        .await
        .unwrap_or_else(|e| panic!("policies/ must load: {e}"));
    let table = std::fs::read_to_string(root.join(TABLE)).expect("read the table");
    (policy, table)
}

#[tokio::test]
async fn the_policy_decides_every_combination_as_the_table_says() {
    let (policy, table) = repository_policy_and_table().await;
    let problems = disagreements(&policy, &table);
    assert!(
        problems.is_empty(),
        "{TABLE} and policies/ disagree ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The default scope alone is every role, category and purpose: 40 rows of 11 cells.
    let default_rows = read_table(&table)
        .into_iter()
        .filter(|(_, key, _)| key.0 == "*")
        .count();
    assert_eq!(default_rows, Role::ALL.len() * Purpose::ALL.len());
}

#[tokio::test]
async fn a_changed_cell_a_missing_row_and_a_repeated_row_are_each_caught() {
    let (policy, table) = repository_policy_and_table().await;
    let row = |role: &str, purpose: &str| {
        table
            .lines()
            .find(|line| {
                let cells: Vec<&str> = line.split(',').map(str::trim).collect();
                cells.len() > 3 && cells[0] == "*" && cells[1] == role && cells[2] == purpose
            })
            .unwrap_or_else(|| panic!("{role} {purpose} row"))
            .to_owned()
    };

    // gp sees only an indicator of IOM; the table now claims detail.
    let gp = row("gp", "child_safeguarding");
    let mut cells: Vec<String> = gp.split(',').map(|c| c.trim().to_owned()).collect();
    assert_eq!(cells[3 + Category::Iom as usize], "I");
    cells[3 + Category::Iom as usize] = "D".to_owned();
    let changed = table.replace(&gp, &cells.join(", "));
    let problems = disagreements(&policy, &changed);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("* gp child_safeguarding"),
        "{problems:?}"
    );

    // A refused purpose written as permitted.
    let refused = row("gp", "offender_management");
    let permitted = table.replace(
        &refused,
        &gp.replace("child_safeguarding", "offender_management"),
    );
    let problems = disagreements(&policy, &permitted);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("table:  person=detail"),
        "{problems:?}"
    );
    assert!(problems[0].contains("policy: refused"), "{problems:?}");

    let ig_audit = row("ig_officer", "audit");
    let missing = table.replace(&ig_audit, "");
    assert_eq!(
        disagreements(&policy, &missing),
        ["missing row: * ig_officer audit"]
    );
    let repeated = format!("{table}{ig_audit}\n");
    let problems = disagreements(&policy, &repeated);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("* ig_officer audit repeats line"),
        "{problems:?}"
    );

    // A local agreement needs rows of its own for every role and purpose.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let dir = std::env::temp_dir().join(format!("safegate-matrix-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(root.join("sharing.conf"), dir.join("sharing.conf")).expect("copy model");
    let rules = std::fs::read_to_string(root.join("sharing.csv")).expect("rules");
    let local_rule = "p, matrix.school_dsl.iom@nursery, nursery, school_dsl, iom, indicator\n";
    std::fs::write(dir.join("sharing.csv"), format!("{rules}{local_rule}")).expect("write");
    let local = Policy::load(&dir).await.expect("loads");
    std::fs::remove_dir_all(&dir).ok();
    let problems = disagreements(&local, &table);
    assert_eq!(
        problems.len(),
        Role::ALL.len() * Purpose::ALL.len(),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .all(|p| p.starts_with("missing row: nursery ")),
        "{problems:?}"
    );
}
