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

/// Issue 11: `envoy --mode validate` does not load ECDS, so the shipped ECDS-based
/// `envoy/envoy.yaml` passed with any plugin configuration. `./build.sh validate` also validates
/// its inline twin (the ECDS resource inlined). Issue 20: it runs `aml-auth config check` first
/// (a refused configuration never reaches Envoy), says which plugin configuration it checked,
/// fails cleanly on a missing file (defect 4), and passes an exported `env:` variable of any
/// name to the twin's VM (defect 6).
#[test]
fn build_sh_validate_really_loads_the_plugin_configuration() {
    let validate = |extra: Option<&std::path::Path>, env: &[(&str, &str)]| {
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("build.sh")).arg("validate");
        if let Some(path) = extra {
            cmd.arg(path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, log) = validate(None, &[]);
    assert_eq!(code, Some(0), "{log}");
    for want in [
        "aml-auth config check envoy/envoy.yaml: plugin configuration aml_auth from ecds/aml_auth.json",
        "envoy/envoy.yaml (filter `aml_auth`): valid",
        "aml-auth config check envoy/envoy-entra.yaml: plugin configuration inline in envoy/envoy-entra.yaml",
        "envoy/envoy.yaml (inline twin: aml_auth from ecds/aml_auth.json): OK",
    ] {
        assert!(log.contains(want), "{want:?} not in:\n{log}");
    }

    let dir = scratch_dir("cli-validate-twin");
    let missing = dir.join("nope.json");
    let (code, log) = validate(Some(&missing), &[]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(&format!("{}: no such file", missing.display())),
        "{log}"
    );
    assert!(!log.contains("OK") && !log.contains("Traceback"), "{log}");

    let shipped = fs::read_to_string(repo_root().join("envoy/plugin-config.json")).unwrap();
    let refused_offline = [
        (
            "typo",
            shipped.replacen("\"auth_enabled\"", "\"auth_enabeld\"", 1),
            "did you mean `auth_enabled`?",
        ),
        (
            "both-modes",
            shipped.replacen(
                "\"auth_enabled\": true",
                "\"auth_enabled\": true, \"token_auth_enabled\": true",
                1,
            ),
            "token_auth_enabled",
        ),
        ("garbage", "garbage{".to_string(), "not valid JSON"),
    ];
    for (name, text, fragment) in refused_offline {
        assert_ne!(text, shipped, "{name}: the edit did not apply");
        let path = dir.join(format!("{name}.json"));
        fs::write(&path, &text).unwrap();
        let (code, log) = validate(Some(&path), &[]);
        assert_eq!(code, Some(1), "{name}: {log}");
        assert!(
            log.contains(&format!(
                "aml-auth config check {} (the plugin configuration checked)",
                path.display()
            )),
            "{name}: {log}"
        );
        assert!(log.contains(fragment), "{name}: {log}");
        assert!(log.contains("Envoy not started"), "{name}: {log}");
        assert!(!log.contains("envoy --mode validate"), "{name}: {log}");
    }

    // Any exported env: name reaches the twin's VM; an unset one passes the offline check (it is
    // the proxy's) with a warning, and the real Envoy refuses it: the twin really is loaded.
    let renamed = shipped
        .replace("AML_DEMO_PRIMARY_KEY", "MY_PRIMARY")
        .replace("AML_DEMO_SECONDARY_KEY", "AML_TEST_VALIDATE_SECONDARY");
    let path = dir.join("renamed-env.json");
    fs::write(&path, &renamed).unwrap();
    let env = [
        ("MY_PRIMARY", "an-exported-primary-key-value"),
        (
            "AML_TEST_VALIDATE_SECONDARY",
            "an-exported-secondary-key-value",
        ),
    ];
    let (code, log) = validate(Some(&path), &env);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!(
            "aml-auth config check envoy/envoy.yaml: plugin configuration {} (given, in place of what aml_auth from ecds/aml_auth.json holds)",
            path.display()
        )),
        "{log}"
    );
    assert!(
        log.contains("envoy/envoy.yaml (inline twin: aml_auth from ecds/aml_auth.json): OK"),
        "{log}"
    );
    let (code, log) = validate(Some(&path), &env[..1]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("warning: env:AML_TEST_VALIDATE_SECONDARY is not set in this environment"),
        "{log}"
    );
    assert!(
        log.contains("(inline twin: aml_auth from ecds/aml_auth.json): FAILED"),
        "{log}"
    );
    assert!(log.contains("AML_TEST_VALIDATE_SECONDARY"), "{log}");
}

/// Issue 20, defect 9: while a demo runs (it holds dist/.demo.lock), a second `./build.sh demo`
/// is refused before it rebuilds dist/aml_auth_filter.wasm, the module the running demo's ECDS
/// names.
#[test]
fn a_second_demo_is_refused_before_rebuilding_the_module() {
    use std::os::unix::io::AsRawFd as _;
    let dist = repo_root().join("dist");
    fs::create_dir_all(&dist).unwrap();
    let wasm = dist.join("aml_auth_filter.wasm");
    assert!(wasm.exists(), "run ./build.sh wasm first");
    let before = fs::metadata(&wasm).unwrap().modified().unwrap();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dist.join(".demo.lock"))
        .unwrap();
    // SAFETY: flock on a file descriptor this test owns; released when `lock` is dropped.
    let held = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(
        held, 0,
        "a demo is running from this checkout: stop it first"
    );
    let out = Command::new("bash")
        .arg(repo_root().join("build.sh"))
        .arg("demo")
        .output()
        .unwrap();
    drop(lock);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("another ./build.sh demo is running"), "{log}");
    assert!(!log.contains("building wasm32"), "{log}");
    assert_eq!(fs::metadata(&wasm).unwrap().modified().unwrap(), before);
}
