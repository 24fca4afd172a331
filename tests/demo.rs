//! `./build.sh demo` end to end: the demo script starts, prints its lines, its start-up leaves no
//! request counted in the stats, a second start is refused without touching the running demo,
//! the printed curl commands answer as their headings say, the printed regen command rotates a
//! key in the running Envoy, and a taken port is refused naming its `AML_DEMO_*_PORT` variable.

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

/// The demo script with these ports (`AML_DEMO_*` variables).
fn demo_command(ports: &[(&str, u16)]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("envoy/demo.sh"))
        .arg(envoy_bin())
        .arg(wasm_path())
        .arg(env!("CARGO_BIN_EXE_aml-auth"))
        .stdin(Stdio::null());
    for (name, port) in ports {
        cmd.env(name, port.to_string());
    }
    cmd
}

fn fresh_ports() -> Vec<(&'static str, u16)> {
    [
        "AML_DEMO_PORT",
        "AML_DEMO_MODEL_PORT",
        "AML_DEMO_ADMIN_PORT",
        "AML_DEMO_WORKSPACE_PORT",
    ]
    .into_iter()
    .map(|name| (name, free_port()))
    .collect()
}

/// What a running demo left in dist/demo that a second start must not touch.
fn demo_files() -> (String, String, u64) {
    let run = repo_root().join("dist/demo");
    (
        std::fs::read_to_string(run.join("plugin-config.json")).unwrap(),
        std::fs::read_to_string(run.join("ecds/aml_auth.json")).unwrap(),
        std::fs::metadata(run.join("envoy.log")).unwrap().len(),
    )
}

/// Starts the demo a second time and expects a refusal naming `fragment`, with nothing of the
/// first demo touched.
fn assert_second_demo_refused(ports: &[(&str, u16)], fragment: &str) {
    let before = demo_files();
    let out = demo_command(ports).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "second demo: {stderr}");
    assert!(stderr.contains(fragment), "second demo: {stderr}");
    let after = demo_files();
    assert_eq!((&before.0, &before.1), (&after.0, &after.1), "{stderr}");
    assert!(
        after.2 >= before.2,
        "the first demo's envoy.log was truncated"
    );
}

#[test]
fn demo_prints_working_lines() {
    let ports = fresh_ports();
    let admin = ports
        .iter()
        .find(|(n, _)| *n == "AML_DEMO_ADMIN_PORT")
        .unwrap()
        .1;
    let mut child = demo_command(&ports)
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
    let stats = run(&format!(
        "curl -s http://127.0.0.1:{admin}/stats?filter=aml_auth"
    ));
    let counted: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("wasmcustom.") && !l.contains(".jwks.") && !l.ends_with(": 0"))
        .collect();
    assert!(
        counted.is_empty(),
        "the demo's start-up left request counts in the stats: {counted:?}"
    );
    let yaml = std::fs::read_to_string(repo_root().join("dist/demo/envoy.yaml")).unwrap();
    assert!(
        !yaml.contains("0.0.0.0"),
        "the demo listener must bind 127.0.0.1 only"
    );
    assert_second_demo_refused(&ports, "another ./build.sh demo is running");
    assert_second_demo_refused(&fresh_ports(), "another ./build.sh demo is running");
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

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut busy = fresh_ports();
    busy[2].1 = taken.local_addr().unwrap().port();
    assert_second_demo_refused(&busy, "AML_DEMO_ADMIN_PORT");
}
