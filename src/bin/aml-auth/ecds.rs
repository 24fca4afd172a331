//! Envoy ECDS resource files: the plugin configuration text of every Wasm filter resource is
//! replaced and `version_info` bumped, so an Envoy watching the file applies a new key live.

use serde_json::{json, Map, Value};

/// `@type` of the Wasm HTTP filter's configuration.
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// `@type` of the `configuration` field holding the plugin configuration as text.
pub const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// The rewritten document.
#[derive(Debug)]
pub struct Rewritten {
    /// The new file text (pretty JSON, newline at the end).
    pub text: String,
    /// The new `version_info`.
    pub version: String,
    /// How many Wasm resources were updated.
    pub resources: usize,
    /// Whether some resource held a configuration other than `previous_config` before.
    pub diverged: bool,
}

/// Sets `configuration.value` of the one resource of `ecds`, which must be this filter's Wasm
/// resource, to `plugin_config` and bumps `version_info`. `previous_config` is the configuration
/// file's text before the change. The resource counts as this filter's when it has no plugin
/// configuration yet, holds `previous_config`, or holds a configuration `is_ours` accepts (the
/// filter's own parser): an unrelated plugin is never overwritten.
pub fn rewrite(
    ecds: &str,
    plugin_config: &str,
    previous_config: &str,
    is_ours: &dyn Fn(&str) -> bool,
) -> Result<Rewritten, String> {
    let mut doc: Value = serde_json::from_str(ecds).map_err(|e| format!("not valid JSON: {e}"))?;
    let root = doc
        .as_object_mut()
        .ok_or("not a JSON object (expected an ECDS discovery response)")?;
    let version = bump_version(root.get("version_info"));
    let resources = root
        .get_mut("resources")
        .and_then(Value::as_array_mut)
        .ok_or("has no `resources` array")?;
    if resources.len() != 1 {
        return Err(format!(
            "has {} resources; an ECDS file for this filter holds exactly one (Envoy refuses a file with several), its Wasm resource",
            resources.len()
        ));
    }
    let mut updated = 0;
    let mut diverged = false;
    for (i, resource) in resources.iter_mut().enumerate() {
        let Some(config) = wasm_config(resource) else {
            continue;
        };
        let held = config
            .get("configuration")
            .and_then(|c| c.get("value"))
            .and_then(Value::as_str);
        if let Some(held) = held {
            if held != previous_config && !is_ours(held) {
                return Err(format!(
                    "resources[{i}] holds a plugin configuration this filter refuses: it is not aml-auth-filter's (or it is broken); not overwritten"
                ));
            }
        }
        let configuration = config
            .entry("configuration")
            .or_insert_with(|| json!({ "@type": STRING_VALUE_TYPE }));
        let configuration = configuration.as_object_mut().ok_or_else(|| {
            format!("resources[{i}].typed_config.config.configuration is not an object")
        })?;
        match configuration.get("@type").and_then(Value::as_str) {
            Some(STRING_VALUE_TYPE) => {}
            None if !configuration.contains_key("@type") => {
                configuration.insert("@type".into(), json!(STRING_VALUE_TYPE));
            }
            _ => {
                return Err(format!(
                    "resources[{i}].typed_config.config.configuration is not a {STRING_VALUE_TYPE}"
                ))
            }
        }
        let old = configuration.insert("value".into(), json!(plugin_config));
        diverged |= old.as_ref().and_then(Value::as_str) != Some(previous_config);
        updated += 1;
    }
    if updated == 0 {
        return Err(format!(
            "has no resource whose typed_config is the Wasm filter ({WASM_TYPE})"
        ));
    }
    root.insert("version_info".into(), json!(version));
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(Rewritten {
        text,
        version,
        resources: updated,
        diverged,
    })
}

/// The Wasm filter's `config` object of one resource, creating an empty one when absent.
fn wasm_config(resource: &mut Value) -> Option<&mut Map<String, Value>> {
    let typed = resource.get_mut("typed_config")?.as_object_mut()?;
    if typed.get("@type").and_then(Value::as_str) != Some(WASM_TYPE) {
        return None;
    }
    typed
        .entry("config")
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

/// The next `version_info`: the old one plus one when it is a decimal integer string, else "1".
pub fn bump_version(old: Option<&Value>) -> String {
    old.and_then(Value::as_str)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
        .and_then(|v| v.checked_add(1))
        .map_or_else(|| "1".to_string(), |v| v.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn version_bumps() {
        let cases: &[(Option<Value>, &str)] = &[
            (Some(json!("7")), "8"),
            (Some(json!("0")), "1"),
            (Some(json!("009")), "10"),
            (Some(json!("18446744073709551614")), "18446744073709551615"),
            (Some(json!("18446744073709551615")), "1"),
            (Some(json!("99999999999999999999999")), "1"),
            (Some(json!("+5")), "1"),
            (Some(json!("-5")), "1"),
            (Some(json!(" 5")), "1"),
            (Some(json!("v3")), "1"),
            (Some(json!("")), "1"),
            (Some(json!(7)), "1"),
            (Some(Value::Null), "1"),
            (None, "1"),
        ];
        for (old, want) in cases {
            assert_eq!(bump_version(old.as_ref()), *want, "{old:?}");
        }
    }

    fn ours(text: &str) -> bool {
        text.contains("primary_key")
    }

    fn ecds(version: Option<&str>) -> Value {
        let mut doc = json!({
            "resources": [
                {"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                 "name": "aml_auth",
                 "typed_config": {"@type": WASM_TYPE, "config": {
                     "name": "aml_auth", "root_id": "aml_auth", "failure_policy": "FAIL_RELOAD",
                     "vm_config": {"runtime": "envoy.wasm.runtime.v8"},
                     "configuration": {"@type": STRING_VALUE_TYPE, "value": "{\"primary_key\":\"old\"}"}}}}
            ]
        });
        if let Some(v) = version {
            doc["version_info"] = json!(v);
        }
        doc
    }

    #[test]
    fn rewrite_sets_the_value_and_bumps_the_version() {
        let before = ecds(Some("7"));
        let out = rewrite(
            &before.to_string(),
            "{\"primary_key\":\"new\"}\n",
            "{\"primary_key\":\"old\"}",
            &ours,
        )
        .unwrap();
        assert_eq!(
            (out.version.as_str(), out.resources, out.diverged),
            ("8", 1, false)
        );
        assert!(out.text.ends_with("}\n"));
        let after: Value = serde_json::from_str(&out.text).unwrap();
        let mut expected = before;
        expected["version_info"] = json!("8");
        expected["resources"][0]["typed_config"]["config"]["configuration"]["value"] =
            json!("{\"primary_key\":\"new\"}\n");
        assert_eq!(after, expected);
    }

    #[test]
    fn rewrite_notices_a_diverged_file_and_fills_missing_parts() {
        let mut before = ecds(None);
        before["resources"][0]["typed_config"]["config"]
            .as_object_mut()
            .unwrap()
            .remove("configuration");
        let out = rewrite(&before.to_string(), "new", "old", &ours).unwrap();
        assert_eq!(out.version, "1");
        assert!(out.diverged);
        let after: Value = serde_json::from_str(&out.text).unwrap();
        assert_eq!(
            after["resources"][0]["typed_config"]["config"]["configuration"],
            json!({"@type": STRING_VALUE_TYPE, "value": "new"})
        );
    }

    #[test]
    fn rewrite_refusals() {
        let mut no_wasm = ecds(Some("1"));
        no_wasm["resources"][0]["typed_config"] =
            json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"});
        let mut struct_config = ecds(Some("1"));
        struct_config["resources"][0]["typed_config"]["config"]["configuration"]["@type"] =
            json!("type.googleapis.com/google.protobuf.Struct");
        let mut two = ecds(Some("1"));
        let copy = two["resources"][0].clone();
        two["resources"].as_array_mut().unwrap().push(copy);
        let mut none = ecds(Some("1"));
        none["resources"] = json!([]);
        let mut foreign = ecds(Some("1"));
        foreign["resources"][0]["typed_config"]["config"]["configuration"]["value"] =
            json!("{\"rate_limit\": 5}");
        let cases: &[(String, &str)] = &[
            ("{".into(), "not valid JSON"),
            ("[]".into(), "not a JSON object"),
            ("{}".into(), "no `resources` array"),
            (
                no_wasm.to_string(),
                "no resource whose typed_config is the Wasm filter",
            ),
            (
                struct_config.to_string(),
                "is not a type.googleapis.com/google.protobuf.StringValue",
            ),
            (two.to_string(), "has 2 resources"),
            (none.to_string(), "has 0 resources"),
            (foreign.to_string(), "is not aml-auth-filter's"),
        ];
        for (text, fragment) in cases {
            let err = rewrite(text, "new", "old", &ours).unwrap_err();
            assert!(err.contains(fragment), "{text}: {err}");
        }
    }
}
