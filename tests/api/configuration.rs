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
