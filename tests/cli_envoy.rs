//! `aml-auth keys regen --envoy-ecds` against a real Envoy that takes the filter from an ECDS
//! file through `path_config_source` + `watched_directory`: the new key works and the old one
//! stops working without a restart, while the untouched key keeps working throughout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;
use std::process::Command;

use common::*;

const PATH: &str = "/api/v1/service/demo/score";

#[test]
fn regen_through_ecds_applies_live() {
    let upstream = Server::upstream();
    let dir = scratch_dir("cli-ecds-live");
    let config_text =
        "{\n  \"primary_key\": \"old-primary\",\n  \"secondary_key\": \"kept-secondary\"\n}\n";
    let config = dir.join("config.json");
    fs::write(&config, config_text).unwrap();
    let (discovered, ecds) = ecds_filter(&dir, config_text);
    let envoy = Envoy::start(&bootstrap(
        vec![listener(
            "main",
            vec![discovered],
            vec![route_to("upstream")],
        )],
        vec![cluster("upstream", upstream.addr)],
    ));
    let status = |key: &str| get_bearer(envoy.main(), PATH, key).status;
    assert!(
        wait_until(DEADLINE, || status("old-primary") == 200),
        "old key never accepted:\n{}",
        envoy.log_tail(40)
    );
    assert_eq!(status("not-a-key"), 401);

    let out = Command::new(env!("CARGO_BIN_EXE_aml-auth"))
        .args(["keys", "regen", "primary", "--hashed", "--config"])
        .arg(&config)
        .arg("--envoy-ecds")
        .arg(&ecds)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();

    assert!(
        wait_until(DEADLINE, || status(&key) == 200
            && status("old-primary") == 401),
        "the new key was not applied from the ECDS file:\n{}",
        envoy.log_tail(40)
    );
    assert_eq!(status("kept-secondary"), 200);
}
