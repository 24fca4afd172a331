//! `./build.sh demo` end to end: the demo script starts, prints its lines, the printed curl
//! commands answer 200 with either key or a token and 401 without, and the printed regen command
//! rotates a key in the running Envoy.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// Stops the demo (as Ctrl-C would) even when an assertion fails first.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.0.to_string())
            .status();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn demo_prints_working_lines() {
    let mut child = Command::new("bash")
        .arg(repo_root().join("envoy/demo.sh"))
        .arg(envoy_bin())
        .arg(wasm_path())
        .arg(env!("CARGO_BIN_EXE_aml-auth"))
        .env("AML_DEMO_PORT", free_port().to_string())
        .env("AML_DEMO_MODEL_PORT", free_port().to_string())
        .env("AML_DEMO_ADMIN_PORT", free_port().to_string())
        .env("AML_DEMO_WORKSPACE_PORT", free_port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _stop = StopOnDrop(child.id());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let done = line.starts_with("# Envoy log");
        eprintln!("demo: {line}");
        lines.push(line);
        if done {
            break;
        }
    }
    let value = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= line in {lines:#?}"))
            .to_string()
    };
    let uri = value("SCORING_URI");
    assert!(uri.ends_with("/api/v1/service/demo/score"), "{uri}");
    let (primary, secondary) = (value("PRIMARY_KEY"), value("SECONDARY_KEY"));
    assert_ne!(primary, secondary);
    assert_eq!(primary.len(), 43);
    let token = value("TOKEN");
    assert_eq!(token.split('.').count(), 3);
    assert!(value("TOKEN_SCORING_URI").ends_with("/api/v1/service/demo-token/score"));
    let run = |cmd: &str| {
        let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let curls: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(curls.len(), 6, "{lines:#?}");
    let statuses: Vec<String> = curls
        .iter()
        .map(|cmd| run(cmd).rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    let regen = lines
        .iter()
        .find(|l| l.contains(" keys regen primary "))
        .unwrap_or_else(|| panic!("no regen command in {lines:#?}"))
        .clone();
    let new_primary = run(&regen).lines().last().unwrap_or_default().to_string();
    let status_with = |key: &str| {
        run(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {key}' {uri}"
        ))
    };
    let rotated = wait_until(Duration::from_secs(10), || {
        status_with(&new_primary) == "200" && status_with(&primary) == "401"
    });
    let secondary_still = status_with(&secondary);
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let exited = wait_until(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    assert_eq!(
        statuses,
        vec!["200", "200", "401", "200", "200", "401"],
        "{lines:#?}"
    );
    assert_eq!(new_primary.len(), 43, "regen printed {new_primary:?}");
    assert!(
        rotated,
        "the printed regen command did not rotate the primary key"
    );
    assert_eq!(
        secondary_still, "200",
        "the secondary key must survive a primary regen"
    );
    assert!(exited, "the demo did not stop on Ctrl-C");
}
