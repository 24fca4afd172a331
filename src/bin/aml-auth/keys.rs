//! `keys regen` and `keys list`: editing one key of a plugin configuration file in place, and
//! describing how each policy's keys are stored without showing them.

use std::fs;
use std::path::{Path, PathBuf};

use aml_auth_filter::config::{self, AuthMode, FilterConfig, ServicePolicy, DEFAULT_SERVICE};
use aml_auth_filter::keys::{generate_key, KeyDigest, KeySlot};
use serde_json::Value;

use crate::jsonspan::{self, Kind, Member, Node};
use crate::{ecds, fsio, CliError};

/// What `keys regen` was asked to do.
pub struct Regen<'a> {
    /// Which key.
    pub slot: KeySlot,
    /// The plugin configuration file.
    pub config: &'a Path,
    /// The service whose key changes; `None` for the top-level key.
    pub service: Option<&'a str>,
    /// Store the `sha256:` digest rather than the key.
    pub hashed: bool,
    /// An Envoy ECDS resource file to update too.
    pub envoy_ecds: Option<&'a Path>,
}

/// The edited configuration text, before anything is written.
#[derive(Debug, PartialEq, Eq)]
pub struct Edit {
    /// The whole new document.
    pub text: String,
    /// Path of the field written, e.g. `services[1].primary_key`.
    pub field: String,
    /// Notes for the operator (stderr).
    pub notes: Vec<String>,
}

/// Replaces (or adds) the key field in `text`, storing `stored` as a JSON string.
pub fn edit(
    text: &str,
    slot: KeySlot,
    service: Option<&str>,
    stored: &str,
) -> Result<Edit, String> {
    let root = jsonspan::scan(text).map_err(|e| e.to_string())?;
    let root_members = root
        .members()
        .ok_or_else(|| format!("the document is {}, not an object", root.kind_name()))?;
    let name = field_name(slot);
    let (object, field) = match service {
        None => (&root, name.to_string()),
        Some(service) => {
            let (index, node) = find_service(root_members, service)?;
            (node, format!("services[{index}].{name}"))
        }
    };
    let members = object.members().unwrap_or_default();
    let literal = serde_json::to_string(stored).map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let text = match jsonspan::member(members, name).map_err(|e| format!("`{field}`: {e}"))? {
        Some(m) => {
            let old = m
                .value
                .as_str()
                .ok_or_else(|| format!("`{field}` is {}, not a string", m.value.kind_name()))?;
            if let Some(var) = old.strip_prefix("env:") {
                return Err(format!(
                    "`{field}` is `env:{var}`: the key lives in environment variable {var}, not in this file; set a new key there (e.g. from `aml-auth keys generate`) and restart the proxies"
                ));
            }
            if KeyDigest::is_digest_form(old) != KeyDigest::is_digest_form(stored) {
                notes.push(if KeyDigest::is_digest_form(stored) {
                    format!("`{field}` held the plaintext key; it now holds the sha256: digest")
                } else {
                    format!("`{field}` held a sha256: digest; it now holds the plaintext key (add --hashed to store the digest)")
                });
            }
            jsonspan::splice(text, m.value.start, m.value.end, &literal)
        }
        None => {
            if let Some(svc) = service {
                if jsonspan::member(root_members, name)
                    .map_err(|e| format!("`{name}`: {e}"))?
                    .is_some()
                {
                    notes.push(format!(
                        "service `{svc}` inherited the top-level {name}; it now has its own and no longer inherits it"
                    ));
                }
            }
            let sibling = jsonspan::member(members, field_name(other(slot))).ok().flatten();
            jsonspan::insert_member(text, object, sibling, name, &literal)
        }
    }
    .ok_or("internal error: a span fell outside the document")?;
    Ok(Edit { text, field, notes })
}

fn find_service<'a>(root: &'a [Member], service: &str) -> Result<(usize, &'a Node), String> {
    let services = jsonspan::member(root, "services")?.ok_or_else(|| {
        format!("no service named `{service}`: the configuration has no `services`")
    })?;
    let Kind::Array(items) = &services.value.kind else {
        return Err(format!(
            "`services` is {}, not an array",
            services.value.kind_name()
        ));
    };
    let mut names = Vec::new();
    let mut found = None;
    for (i, item) in items.iter().enumerate() {
        let Some(members) = item.members() else {
            continue;
        };
        let Some(item_name) = jsonspan::member(members, "name")
            .map_err(|e| format!("`services[{i}]`: {e}"))?
            .and_then(|m| m.value.as_str())
        else {
            continue;
        };
        if item_name == service {
            if found.is_some() {
                return Err(format!("service name `{service}` is used twice"));
            }
            found = Some((i, item));
        }
        names.push(item_name);
    }
    found.ok_or_else(|| {
        format!(
            "no service named `{service}` (services: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    })
}

fn field_name(slot: KeySlot) -> &'static str {
    match slot {
        KeySlot::Primary => "primary_key",
        KeySlot::Secondary => "secondary_key",
    }
}

fn other(slot: KeySlot) -> KeySlot {
    match slot {
        KeySlot::Primary => KeySlot::Secondary,
        KeySlot::Secondary => KeySlot::Primary,
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn read_text(path: &Path, what: &str) -> Result<String, CliError> {
    let bytes = fs::read(path)
        .map_err(|e| CliError::fail(format!("cannot read {what} {}: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::fail(format!("{what} {} is not UTF-8 text", path.display())))
}

/// The policies that use the key in `slot` of `service` (or of the top level, which services
/// without their own key inherit).
fn key_users<'a>(
    cfg: &'a FilterConfig,
    text: &str,
    slot: KeySlot,
    service: Option<&str>,
) -> Vec<&'a ServicePolicy> {
    let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let own_key = |name: &str| {
        doc.get("services")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            })
            .is_some_and(|s| s.get(field_name(slot)).is_some())
    };
    let services = cfg.services.iter().map(|s| &s.policy);
    match service {
        Some(name) => services.filter(|p| p.name == name).collect(),
        None => std::iter::once(&cfg.default_policy)
            .chain(services.filter(|p| !own_key(&p.name)))
            .collect(),
    }
}

/// Runs `keys regen`; returns the new plaintext key.
pub fn regen(req: &Regen<'_>) -> Result<String, CliError> {
    let config_path = fs::canonicalize(req.config).map_err(|e| {
        CliError::fail(format!(
            "cannot read --config {}: {e}",
            req.config.display()
        ))
    })?;
    let shown = req.config.display();
    let _lock = fsio::lock_beside(&config_path).map_err(|e| {
        CliError::fail(format!(
            "cannot lock --config {shown} (lock file beside it): {e}; file left unchanged"
        ))
    })?;
    let config_keep = fsio::writable(&config_path)
        .map_err(|e| CliError::fail(format!("--config {shown}: {e}; file left unchanged")))?;
    let before = read_text(&config_path, "--config")?;

    let key = generate_key()
        .map_err(|e| CliError::fail(format!("cannot read random bytes from the OS: {e}")))?;
    let stored = if req.hashed {
        KeyDigest::of(key.as_bytes()).to_configured()
    } else {
        key.clone()
    };
    let edit = edit(&before, req.slot, req.service, &stored)
        .map_err(|e| CliError::fail(format!("{shown}: {e}; file left unchanged")))?;
    let cfg = config::parse(edit.text.as_bytes(), &process_env).map_err(|e| {
        let hint = if e.message.contains("no policy uses it") && req.service.is_none() {
            " (the top-level policy is not in key mode and no key-mode service inherits its keys: give --service NAME to regenerate a key-mode service's key)"
        } else if e.message.contains("is not set in the Wasm VM") {
            " (aml-auth checks env: keys against its own environment: export the variable here too)"
        } else if let Some(hint) = ecds_hint(&before) {
            return CliError::fail(format!("{shown}: {hint}; file left unchanged"));
        } else {
            ""
        };
        CliError::fail(format!(
            "{shown}: the edited configuration would be refused by the filter, file left unchanged: {e}{hint}"
        ))
    })?;
    let slot_name = req.slot.as_str();
    let target = req.service.unwrap_or(DEFAULT_SERVICE);
    let mut notes = edit.notes;
    let users = key_users(&cfg, &edit.text, req.slot, req.service);
    if users.iter().any(|p| match &p.mode {
        AuthMode::Key(pair) => pair.check(key.as_bytes()) != Some(req.slot),
        _ => false,
    }) {
        return Err(CliError::fail(format!(
            "{shown}: after the edit the filter would not accept the new key as the {slot_name} key of `{target}`; file left unchanged"
        )));
    }
    if !users.iter().any(|p| matches!(p.mode, AuthMode::Key(_))) {
        notes.push(
            "no policy using this key has key auth on (auth_enabled is false): the new key takes effect only once one does"
                .to_string(),
        );
    }
    if req.envoy_ecds.is_none() {
        notes.extend(ecds_beside(&config_path, &before).into_iter().map(|path| {
            format!(
                "{} (an Envoy ECDS file beside it) holds this configuration as it was: without --envoy-ecds, an Envoy reading that file keeps the old key; give --envoy-ecds {} to change both",
                path.display(),
                path.display()
            )
        }));
    }
    let ecds_staged = match req.envoy_ecds {
        None => None,
        Some(path) => Some(stage_ecds(path, &edit.text, &before)?),
    };
    let config_staged =
        fsio::stage(&config_path, edit.text.as_bytes(), &config_keep).map_err(|e| {
            CliError::fail(format!(
                "cannot write beside --config {shown}: {e}; file left unchanged"
            ))
        })?;
    config_staged.commit().map_err(|e| {
        CliError::fail(format!(
            "cannot replace --config {shown}: {e}; files left unchanged"
        ))
    })?;
    for note in &notes {
        crate::note(&format!("note: {note}"));
    }
    let form = if req.hashed {
        "sha256: digest"
    } else {
        "plaintext key"
    };
    crate::note(&format!(
        "{shown}: new {slot_name} key of `{target}` written to `{}` as its {form}",
        edit.field
    ));
    if let Some((staged, path, rewritten)) = ecds_staged {
        staged.commit().map_err(|e| {
            CliError::fail(format!(
                "--config {shown} was updated but --envoy-ecds {} could not be replaced: {e}; rerun with the same --envoy-ecds after fixing it, or copy the configuration by hand",
                path.display()
            ))
        })?;
        if rewritten.diverged {
            crate::note(&format!(
                "note: --envoy-ecds {} held a plugin configuration other than --config's; it now holds --config's",
                path.display()
            ));
        }
        crate::note(&format!(
            "{}: {} Wasm resource(s) updated, version_info {}",
            path.display(),
            rewritten.resources,
            rewritten.version
        ));
    }
    Ok(key)
}

fn stage_ecds(
    path: &Path,
    new_config: &str,
    old_config: &str,
) -> Result<(fsio::Staged, PathBuf, ecds::Rewritten), CliError> {
    let shown = path.display();
    let meta = fs::symlink_metadata(path).map_err(|e| {
        CliError::fail(format!(
            "cannot read --envoy-ecds {shown}: {e}; files left unchanged"
        ))
    })?;
    if meta.file_type().is_symlink() {
        return Err(CliError::fail(format!(
            "--envoy-ecds {shown} is a symbolic link: Envoy watches the directory for a file renamed onto that path, so give the real file; files left unchanged"
        )));
    }
    let keep = fsio::writable(path)
        .map_err(|e| CliError::fail(format!("--envoy-ecds {shown}: {e}; files left unchanged")))?;
    let text = read_text(path, "--envoy-ecds")?;
    let is_ours = |held: &str| config::parse(held.as_bytes(), &placeholder_env).is_ok();
    let rewritten = ecds::rewrite(&text, new_config, old_config, &is_ours)
        .map_err(|e| CliError::fail(format!("--envoy-ecds {shown}: {e}; files left unchanged")))?;
    let staged = fsio::stage(path, rewritten.text.as_bytes(), &keep).map_err(|e| {
        CliError::fail(format!(
            "cannot write beside --envoy-ecds {shown}: {e}; files left unchanged"
        ))
    })?;
    Ok((staged, path.to_path_buf(), rewritten))
}

/// ECDS files next to the configuration (in its directory or its `ecds/` subdirectory) whose
/// Wasm resource holds `text`: what an Envoy may be reading instead of the file being edited.
fn ecds_beside(config: &Path, text: &str) -> Vec<PathBuf> {
    let Some(dir) = config.parent() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for d in [dir.to_path_buf(), dir.join("ecds")] {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path == config || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let holds = fs::read(&path)
                .ok()
                .and_then(|bytes| crate::config_check::ecds_configs(&bytes))
                .is_some_and(|configs| configs.iter().any(|(_, held)| held == text));
            if holds {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// How one key of one policy is stored.
fn storage(own: Option<&Value>, top: Option<&Value>, is_service: bool) -> String {
    match (own, top) {
        (Some(Value::String(s)), _) => match s.strip_prefix("env:") {
            Some(var) => format!("env:{var}"),
            None if KeyDigest::is_digest_form(s) => "hashed".to_string(),
            None => "plaintext".to_string(),
        },
        (Some(_), _) => "invalid".to_string(),
        (None, Some(_)) if is_service => "inherited".to_string(),
        (None, _) => "absent".to_string(),
    }
}

fn mode_name(mode: &AuthMode) -> &'static str {
    match mode {
        AuthMode::Key(_) => "key",
        AuthMode::Token(_) => "token",
        AuthMode::PassThrough => "none",
    }
}

/// The lines of `keys list` for a configuration text already accepted as `cfg`.
pub fn list_lines(cfg: &FilterConfig, text: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let top_p = doc.get("primary_key");
    let top_s = doc.get("secondary_key");
    let empty = Vec::new();
    let raw_services = doc
        .get("services")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut rows = vec![[
        DEFAULT_SERVICE.to_string(),
        "-".to_string(),
        mode_name(&cfg.default_policy.mode).to_string(),
        format!("primary={}", storage(top_p, None, false)),
        format!("secondary={}", storage(top_s, None, false)),
    ]];
    for route in &cfg.services {
        let raw = raw_services
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(route.policy.name.as_str()));
        let own = |k: &str| raw.and_then(|r| r.get(k));
        let keyed = matches!(route.policy.mode, AuthMode::Key(_));
        let cell = |own: Option<&Value>, top: Option<&Value>| {
            if keyed {
                storage(own, top, true)
            } else {
                "n/a".to_string()
            }
        };
        rows.push([
            route.policy.name.clone(),
            if route.path_prefix.is_empty() {
                "-".to_string()
            } else {
                route.path_prefix.clone()
            },
            mode_name(&route.policy.mode).to_string(),
            format!("primary={}", cell(own("primary_key"), top_p)),
            format!("secondary={}", cell(own("secondary_key"), top_s)),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// The process environment, with a placeholder for variables unset here (they are the proxy's).
fn placeholder_env(name: &str) -> Option<String> {
    Some(std::env::var(name).unwrap_or_else(|_| ENV_PLACEHOLDER.to_string()))
}

/// When `text` is an Envoy ECDS file rather than a plugin configuration, what to do instead.
fn ecds_hint(text: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(text).ok()?;
    let looks_like_ecds = doc.get("resources").is_some_and(Value::is_array)
        && doc.get("primary_key").is_none()
        && doc.get("services").is_none();
    looks_like_ecds.then(|| {
        "this is an Envoy ECDS file, not a plugin configuration: give the plugin configuration (JSON) as --config and this file as --envoy-ecds".to_string()
    })
}

/// Runs `keys list`.
pub fn list(config_path: &Path) -> Result<Vec<String>, CliError> {
    let text = read_text(config_path, "--config")?;
    let cfg = config::parse(text.as_bytes(), &placeholder_env).map_err(|e| {
        let hint = ecds_hint(&text).map_or_else(String::new, |h| format!(" ({h})"));
        CliError::fail(format!("{}: {e}{hint}", config_path.display()))
    })?;
    Ok(list_lines(&cfg, &text))
}

/// Stands in for `env:` variables unset in this shell: they are the proxy's, not the operator's.
const ENV_PLACEHOLDER: &str = "unset-in-this-shell";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const NEW: &str = "NEWKEY";

    #[test]
    fn edits_follow_the_path_and_touch_only_the_value() {
        let cases: &[(&str, KeySlot, Option<&str>, &str, &str)] = &[
            (
                r#"{"primary_key":"old","secondary_key":"s"}"#,
                KeySlot::Primary,
                None,
                r#"{"primary_key":"NEWKEY","secondary_key":"s"}"#,
                "primary_key",
            ),
            (
                "{\n  \"primary_key\": \"p\",\n  \"secondary_key\" :  \"o\\u006cd\"\n}\n",
                KeySlot::Secondary,
                None,
                "{\n  \"primary_key\": \"p\",\n  \"secondary_key\" :  \"NEWKEY\"\n}\n",
                "secondary_key",
            ),
            (
                r#"{"primary_key":"top","services":[{"name":"a","path_prefix":"/a","primary_key":"x"},{"name":"b","path_prefix":"/b","primary_key":"ÿ😀"}]}"#,
                KeySlot::Primary,
                Some("b"),
                r#"{"primary_key":"top","services":[{"name":"a","path_prefix":"/a","primary_key":"x"},{"name":"b","path_prefix":"/b","primary_key":"NEWKEY"}]}"#,
                "services[1].primary_key",
            ),
            (
                r#"{"services":[{"name":"x","primary_key":"decoy","path_prefix":"/"},{"path_prefix":"/b","nam\u0065":"b","token":{"primary_key":1},"primary_key":"old"}]}"#,
                KeySlot::Primary,
                Some("b"),
                r#"{"services":[{"name":"x","primary_key":"decoy","path_prefix":"/"},{"path_prefix":"/b","nam\u0065":"b","token":{"primary_key":1},"primary_key":"NEWKEY"}]}"#,
                "services[1].primary_key",
            ),
            (
                "{\"primary_key\": \"p\",\n \"services\": [\n    {\n        \"name\": \"a\",\n        \"path_prefix\": \"/a\"\n    }\n]}",
                KeySlot::Secondary,
                Some("a"),
                "{\"primary_key\": \"p\",\n \"services\": [\n    {\n        \"name\": \"a\",\n        \"path_prefix\": \"/a\",\n        \"secondary_key\": \"NEWKEY\"\n    }\n]}",
                "services[0].secondary_key",
            ),
            (
                r#"{"services":[{"name":"a","primary_key":"p","path_prefix":"/a"}]}"#,
                KeySlot::Secondary,
                Some("a"),
                r#"{"services":[{"name":"a","primary_key":"p","secondary_key":"NEWKEY","path_prefix":"/a"}]}"#,
                "services[0].secondary_key",
            ),
            (
                r#"{"services":[]}"#,
                KeySlot::Primary,
                None,
                r#"{"services":[],"primary_key":"NEWKEY"}"#,
                "primary_key",
            ),
        ];
        for (text, slot, service, want, field) in cases {
            let out = edit(text, *slot, *service, NEW).unwrap();
            assert_eq!(out.text, *want, "{text}");
            assert_eq!(out.field, *field, "{text}");
        }
    }

    #[test]
    fn notes_say_when_inheritance_or_storage_changes() {
        let out = edit(
            r#"{"primary_key":"top","services":[{"name":"a","path_prefix":"/a"}]}"#,
            KeySlot::Primary,
            Some("a"),
            NEW,
        )
        .unwrap();
        assert!(
            out.notes[0].contains("no longer inherits"),
            "{:?}",
            out.notes
        );
        let digest = KeyDigest::of(b"x").to_configured();
        let out = edit(
            &format!(r#"{{"primary_key":"{digest}"}}"#),
            KeySlot::Primary,
            None,
            NEW,
        )
        .unwrap();
        assert!(out.notes[0].contains("--hashed"), "{:?}", out.notes);
        let out = edit(r#"{"primary_key":"old"}"#, KeySlot::Primary, None, &digest).unwrap();
        assert!(
            out.notes[0].contains("now holds the sha256"),
            "{:?}",
            out.notes
        );
        let out = edit(r#"{"primary_key":"old"}"#, KeySlot::Primary, None, NEW).unwrap();
        assert!(out.notes.is_empty());
    }

    #[test]
    fn edit_refusals_name_the_problem() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                r#"{"primary_key":"env:AML_P"}"#,
                None,
                "environment variable AML_P",
            ),
            (r#"{"primary_key":7}"#, None, "`primary_key` is a number"),
            (
                r#"{"primary_key":"a","primary_key":"b"}"#,
                None,
                "more than once",
            ),
            (r#"{"primary_key":"a"}"#, Some("churn"), "no `services`"),
            (r#"{"services":{}}"#, Some("churn"), "not an array"),
            (
                r#"{"services":[{"name":"a"},{"name":"b"}]}"#,
                Some("churn"),
                "no service named `churn` (services: a, b)",
            ),
            (
                r#"{"services":[{"name":"a"},{"name":"a"}]}"#,
                Some("a"),
                "used twice",
            ),
            ("[1]", None, "not an object"),
            ("{\"primary_key\":\"a\"", None, "line 1"),
        ];
        for (text, service, fragment) in cases {
            let err = edit(text, KeySlot::Primary, *service, NEW).unwrap_err();
            assert!(err.contains(fragment), "{text}: {err}");
        }
    }

    #[test]
    fn list_describes_storage_never_values() {
        let digest = KeyDigest::of(b"hashed-key").to_configured();
        let text = format!(
            r#"{{"primary_key":"plain-key","secondary_key":"{digest}",
                "token":{{"issuer":"iss","local_jwks":{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}]}}}},
                "services":[
                  {{"name":"churn","path_prefix":"/churn","secondary_key":"env:AML_S"}},
                  {{"name":"fraud","path_prefix":"/fraud","auth_enabled":false,"token_auth_enabled":true}},
                  {{"name":"open","path_prefix":"/open","auth_enabled":false}}]}}"#
        );
        let env = |_: &str| Some("from-env".to_string());
        let cfg = config::parse(text.as_bytes(), &env).unwrap();
        let lines = list_lines(&cfg, &text);
        let words: Vec<Vec<&str>> = lines
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            words,
            [
                vec![
                    "default",
                    "-",
                    "key",
                    "primary=plaintext",
                    "secondary=hashed"
                ],
                vec![
                    "churn",
                    "/churn",
                    "key",
                    "primary=inherited",
                    "secondary=env:AML_S"
                ],
                vec!["fraud", "/fraud", "token", "primary=n/a", "secondary=n/a"],
                vec!["open", "/open", "none", "primary=n/a", "secondary=n/a"],
            ]
        );
        let all = lines.join("\n");
        assert!(!all.contains("plain-key") && !all.contains(&digest[7..]));
        let cfg = config::parse(br#"{"secondary_key":"k"}"#, &env).unwrap();
        assert_eq!(
            list_lines(&cfg, r#"{"secondary_key":"k"}"#),
            ["default  -  key  primary=absent  secondary=plaintext"]
        );
    }
}
