//! The binary's start-up: bad configuration exits non-zero naming the key; SIGTERM
//! drains and exits cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{TestPki, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_safegate");
const REGISTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/registry.toml");

fn safegate(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command.envs(env.iter().copied());
    command
}

#[test]
fn a_bad_environment_value_exits_non_zero_naming_the_key() {
    let output = safegate(&["serve"], &[("SAFEGATE_LISTEN_ADDR", "not-an-address")])
        .output()
        .expect("run safegate");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`listen_addr`"), "{stderr}");
    assert!(stderr.contains("SAFEGATE_LISTEN_ADDR"), "{stderr}");
}

#[test]
fn a_bad_file_value_exits_non_zero_naming_the_key_and_file() {
    let dir = temp_dir("config");
    let file = dir.join("safegate.toml");
    std::fs::write(&file, "log_format = \"xml\"\n").expect("write config");
    let output = safegate(&["--config", file.to_str().expect("utf-8"), "serve"], &[])
        .output()
        .expect("run safegate");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`log_format`"), "{stderr}");
    assert!(stderr.contains("safegate.toml"), "{stderr}");
}

#[test]
fn a_missing_server_certificate_exits_non_zero_naming_the_key() {
    let pki = TestPki::new();
    std::fs::remove_file(pki.dir.join("server.pem")).expect("remove server cert");
    let data = temp_dir("nocert");
    let output = safegate(
        &[
            "serve",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--registry",
            REGISTRY,
            "--listen",
            "127.0.0.1:0",
        ],
        &[("SAFEGATE_PKI_DIR", pki.dir.to_str().expect("utf-8"))],
    )
    .output()
    .expect("run safegate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`tls_cert`"), "{stderr}");
    assert!(stderr.contains("server.pem"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn sigterm_drains_and_exits_cleanly() {
    let pki = TestPki::new();
    let data = temp_dir("sigterm");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = safegate(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--pki-dir",
            pki.dir.to_str().expect("utf-8"),
            "--registry",
            REGISTRY,
        ],
        &[],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn safegate");
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(&listen).is_ok()
    });
    assert!(up, "gateway never listened on {listen}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exited = (0..200).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        child.try_wait().expect("wait")
    });
    let status = exited.expect("gateway did not exit within 10 s of SIGTERM");
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("gateway stopped"), "{stderr}");
}

/// Runs `safegate demo` from `cwd` until it has played the walk-through, then stops it;
/// returns what it printed.
fn demo_until_ready(cwd: &std::path::Path, data_dir: &std::path::Path) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = safegate(
        &[
            "demo",
            "--data-dir",
            data_dir.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .current_dir(cwd)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                if line.contains("Press Ctrl-C to stop.") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    printed
}

#[test]
fn the_demo_runs_from_any_directory_and_says_which_policies_it_uses() {
    let elsewhere = temp_dir("elsewhere");
    let data = elsewhere.join("data");
    let printed = demo_until_ready(&elsewhere, &data);
    assert!(
        printed.contains("using the demo's registry and policies in")
            && printed.contains("built-in copies written now"),
        "{printed}"
    );
    assert!(data.join("policies/registry.toml").exists());
    assert!(data.join("policies/matching.toml").exists());
    assert!(
        printed.contains("confirmed by the MASH identity steward"),
        "{printed}"
    );
    assert!(
        printed.contains("6. The IG officer"),
        "the walk-through finished: {printed}"
    );

    // A dev PKI made before a system joined the registry gets that system's certificate,
    // and the policies written the first time are used as they are now.
    std::fs::remove_file(data.join("pki/mash.pem")).expect("remove");
    std::fs::remove_file(data.join("pki/mash.key")).expect("remove");
    let again = demo_until_ready(&elsewhere, &data);
    assert!(
        again.contains("issued client certificates from the dev CA") && again.contains("mash"),
        "{again}"
    );
    assert!(again.contains("as an earlier demo wrote them"), "{again}");
    assert!(again.contains("6. The IG officer"), "{again}");

    // Step 8's probing raises one privacy alert per data directory: the second run finds
    // the first run's alert rather than probing again.
    let alert_of = |printed: &str| {
        let line = printed
            .lines()
            .find(|l| l.contains("The privacy alerts raise a case for the IG office"))
            .unwrap_or_else(|| panic!("step 8 raised no alert: {printed}"))
            .to_owned();
        assert!(line.contains("refused 5 times"), "{line}");
        line.split("alert ")
            .nth(1)
            .map(|rest| rest[..36].to_owned())
    };
    let first = alert_of(&printed);
    assert!(first.is_some(), "{printed}");
    assert_eq!(first, alert_of(&again), "{again}");
}
