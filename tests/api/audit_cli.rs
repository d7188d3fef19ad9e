//! `safegate audit list | verify | export | sar` against a running gateway's database:
//! each command answers from the database and writes its own use to the disclosure log
//! as the operator (system `cli`), through the same append path, so the log still
//! verifies; a tampered log is named and exits 3.

use safegate::api::proto::ListEntriesRequest;

use crate::helpers::{TestDatabase, TestGateway, temp_dir};
use crate::ig_support::{
    audit_cli, break_glass_query, list, police_query, public_key, refusals, safegate, stderr,
    stdout, with_case,
};

async fn cli_entries(gateway: &TestGateway) -> Vec<safegate::api::proto::LogEntry> {
    list(
        gateway,
        ListEntriesRequest {
            system_id: "cli".into(),
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn each_cli_command_answers_and_is_logged_as_the_operator() {
    let (gateway, case) = with_case().await;
    let dean = case.persons["Dean"].clone();
    let police = police_query(&gateway).await;
    let school = break_glass_query(&gateway).await;

    let listed = audit_cli(&gateway, &["list", "--person", &dean, "--kind", "query"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(text.starts_with("seq\trecorded_at\tkind"), "{text}");
    assert!(text.contains(&police) && text.contains(&school), "{text}");
    assert!(
        text.contains("unreviewed"),
        "the break-glass entry shows it: {text}"
    );
    assert_eq!(
        text.lines().count(),
        3,
        "header and the two queries: {text}"
    );

    let verified = audit_cli(&gateway, &["verify"]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).starts_with("OK: "),
        "{}",
        stdout(&verified)
    );
    let with_key = audit_cli(&gateway, &["verify", "--public-key", &public_key(&gateway)]);
    assert!(with_key.status.success(), "{}", stdout(&with_key));

    let sar = audit_cli(&gateway, &["sar", "--person", &dean]);
    assert!(sar.status.success(), "{}", stderr(&sar));
    let text = stdout(&sar);
    assert!(
        text.contains("1 law-enforcement entries held back"),
        "{text}"
    );
    assert!(text.contains(&school) && !text.contains(&police), "{text}");

    let out = temp_dir("cli-export").join("log.jsonl");
    let exported = audit_cli(
        &gateway,
        &[
            "export",
            "--format",
            "jsonl",
            "--out",
            out.to_str().expect("path"),
        ],
    );
    assert!(exported.status.success(), "{}", stderr(&exported));
    let offline = safegate(&[
        "audit",
        "verify",
        "--export",
        out.to_str().expect("path"),
        "--public-key",
        &public_key(&gateway),
    ]);
    assert!(
        offline.status.success(),
        "{}{}",
        stdout(&offline),
        stderr(&offline)
    );

    let logged = cli_entries(&gateway).await;
    let commands: Vec<&str> = logged.iter().map(|e| e.rpc.as_str()).collect();
    assert_eq!(
        commands,
        [
            "safegate audit list",
            "safegate audit verify",
            "safegate audit verify",
            "safegate audit sar",
            "safegate audit export",
        ]
    );
    assert!(
        logged
            .iter()
            .all(|e| e.practitioner_id == "test-operator" && e.purpose == "audit")
    );
    assert_eq!(logged[0].subject_person_id, dean);
    assert_eq!(logged[4].kind, "export");

    // The CLI's appends kept the chain, the tree and the checkpoints exact.
    let again = audit_cli(&gateway, &["verify"]);
    assert!(again.status.success(), "{}", stdout(&again));
}

#[tokio::test]
async fn a_tampered_log_is_named_and_exits_3() {
    let gateway = crate::helpers::spawn_gateway().await;
    refusals(&gateway, 4).await;
    let pool = gateway.database_pool().await;
    let (off, on): (&[&str], &[&str]) = match gateway.database {
        TestDatabase::Postgres { .. } => (
            &["ALTER TABLE disclosure_log DISABLE TRIGGER ALL"],
            &["ALTER TABLE disclosure_log ENABLE TRIGGER ALL"],
        ),
        TestDatabase::Sqlite { .. } => (&["DROP TRIGGER disclosure_log_no_update"], &[]),
    };
    let edit = "UPDATE disclosure_log SET entry = REPLACE(entry, 'DSL-2', 'DSL-9') WHERE seq = 3";
    for sql in off.iter().chain(&[edit]).chain(on) {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;
    let entry_3 = list(&gateway, ListEntriesRequest::default())
        .await
        .into_iter()
        .find(|e| e.seq == 3)
        .expect("entry 3")
        .entry_id;
    let caught = audit_cli(&gateway, &["verify"]);
    assert_eq!(caught.status.code(), Some(3), "{}", stderr(&caught));
    let said = stdout(&caught);
    assert!(said.starts_with("FAILED: entry 3"), "{said}");
    assert!(said.contains(&entry_3), "{said}");
}

#[test]
fn offline_verification_needs_the_public_key() {
    let refused = safegate(&["audit", "verify", "--export", "some.jsonl"]);
    assert_eq!(refused.status.code(), Some(2), "clap usage error");
    assert!(
        stderr(&refused).contains("--public-key"),
        "{}",
        stderr(&refused)
    );
}

/// Runs `safegate ARGS` with a pseudo-terminal as its stdout and stderr (util-linux
/// `script`), and returns everything the terminal showed.
fn on_a_terminal(args: &[&str]) -> String {
    let quote = |arg: &str| format!("'{}'", arg.replace('\'', r"'\''"));
    let line = std::iter::once(env!("CARGO_BIN_EXE_safegate"))
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = std::process::Command::new("script");
    for (name, _) in std::env::vars() {
        if name.starts_with("SAFEGATE_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("USER", "test-operator")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("util-linux `script` runs");
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{line}:\n{shown}");
    shown
}

#[tokio::test]
async fn progress_is_drawn_on_a_terminal_and_never_into_a_pipe() {
    let gateway = crate::helpers::spawn_gateway().await;
    refusals(&gateway, 30).await;
    let out = temp_dir("cli-progress").join("log.jsonl");
    let out = out.to_str().expect("path");
    let key = public_key(&gateway);
    let offline = ["audit", "verify", "--export", out, "--public-key", &key];
    let is_progress = |text: &str| text.contains("entries/s") || text.contains('\r');

    // Piped (as every Command's output is here): the results alone.
    let exported = audit_cli(&gateway, &["export", "--format", "jsonl", "--out", out]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    for output in [
        audit_cli(&gateway, &["verify"]),
        safegate(&offline),
        exported,
    ] {
        assert!(output.status.success(), "{}", stderr(&output));
        for text in [stdout(&output), stderr(&output)] {
            assert!(
                !is_progress(&text),
                "progress text in piped output: {text:?}"
            );
            assert!(!text.contains('\u{1b}'), "terminal control codes: {text:?}");
        }
    }

    // On a terminal: entries done of the total, the rate, and the line cleared after.
    let url = gateway.database.url();
    let signing = gateway.pki.dir.join("checkpoint.key");
    let signing = signing.to_str().expect("path");
    let access = ["--database-url", url.as_str(), "--checkpoint-key", signing];
    let online = on_a_terminal(&[&["audit", "verify"][..], &access].concat());
    assert!(online.contains("verify: "), "{online:?}");
    assert!(online.contains(" entries (100%), "), "{online:?}");
    assert!(online.contains("entries/s"), "{online:?}");
    assert!(online.contains("\r\u{1b}[K"), "{online:?}");
    assert!(online.contains("OK: "), "{online:?}");
    let offline = on_a_terminal(&offline);
    assert!(offline.contains("verify: "), "{offline:?}");
    assert!(offline.contains("entries/s"), "{offline:?}");
    let other = temp_dir("cli-progress-tty").join("log.jsonl");
    let export = [
        &["audit", "export", "--format", "jsonl", "--out"][..],
        &[other.to_str().expect("path")],
        &access,
    ]
    .concat();
    let exported = on_a_terminal(&export);
    assert!(exported.contains("export: "), "{exported:?}");
    assert!(exported.contains("entries/s"), "{exported:?}");
}
