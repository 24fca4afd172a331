//! The Istio manifests in `envoy/istio/`, checked without a cluster.
//!
//! - Every document of every `*.yaml` there is read as kubectl reads it: YAML 1.1, where a plain
//!   `0000`, `on`, `yes`, `0777` or `1:30` is a number or a boolean, not a string. The resolution
//!   is PyYAML's safe loader plus go-yaml v2's `y`/`n` booleans (a python3 with PyYAML:
//!   `AML_PYTHON`, else `python3`, else `.venv/bin/python3`; `./build.sh test` provides one;
//!   none fails the tests). Each document is
//!   matched by apiVersion and kind to its CustomResourceDefinition in
//!   `tests/data/k8s/istio-crds.yaml` (a missing file fails the tests), then validated against
//!   that CRD version's `openAPIV3Schema` with a JSON Schema validator.
//! - The schema is made strict before use. The API server prunes unknown fields from structural
//!   schemas instead of refusing them, so a misspelt field would silently vanish; here every
//!   object schema that has `properties` and no `x-kubernetes-preserve-unknown-fields` gets
//!   `additionalProperties: false`, so an unknown field under `spec` fails. `pluginConfig`
//!   (preserve-unknown-fields) stays open: the filter's own parser judges it. `nullable: true`
//!   becomes a `null` alternative of the type. `apiVersion`, `kind` and `metadata` (implicit in
//!   CRD schemas) are added to the root. The `x-kubernetes-validations` CEL rules the CRDs carry
//!   are evaluated by a small table below; a rule the table does not know fails the test, so a
//!   new CRD cannot go unchecked.
//! - ServiceEntry and DestinationRule are not in the CRD file; they get a structural check
//!   (apiVersion, kind, required fields, enum values) and a cross-check that every JWKS cluster
//!   the plugins name exists as `outbound|443||HOST` with TLS origination to HOST.
//! - Every `pluginConfig` is accepted by the filter's parser (`aml_auth_filter::config::parse`),
//!   with `env:` values supplied only for variables the plugin's `vmConfig.env` declares, and is
//!   loaded by the real Envoy (`--mode validate`) as the equivalent wasm filter with static
//!   clusters named like Istio's.
//! - Broken copies (made by mutating the parsed manifests) must fail the same checks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;
use serde_json::{json, Map, Value};

const CRD_FILE: &str = "tests/data/k8s/istio-crds.yaml";
const MANIFEST_DIR: &str = "envoy/istio";

// ---------------------------------------------------------------------------------------------
// Loading

/// One YAML document of a manifest file.
#[derive(Clone, Debug)]
struct Doc {
    file: String,
    index: usize,
    value: Value,
}

impl Doc {
    fn label(&self) -> String {
        format!(
            "{}#{} ({} {})",
            self.file,
            self.index,
            self.value["kind"].as_str().unwrap_or("?"),
            self.value["metadata"]["name"].as_str().unwrap_or("?")
        )
    }

    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    /// The Wasm settings: `spec` of a WasmPlugin, `spec.wasm` of a TrafficExtension.
    fn wasm(&self) -> Option<&Value> {
        match self.kind() {
            "WasmPlugin" => Some(&self.value["spec"]),
            "TrafficExtension" => self.value["spec"].get("wasm"),
            _ => None,
        }
    }
}

/// A python3 that has PyYAML.
fn python_with_yaml() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("AML_PYTHON")
            .map(PathBuf::from)
            .into_iter()
            .chain([
                PathBuf::from("python3"),
                repo_root().join(".venv/bin/python3"),
            ])
            .collect();
        candidates
            .iter()
            .find(|py| {
                std::process::Command::new(py)
                    .args(["-c", "import yaml"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no python3 with PyYAML among {candidates:?}: the manifests are read as kubectl \
                     reads them (YAML 1.1) through PyYAML; run ./build.sh test, which installs it, \
                     or set AML_PYTHON"
                )
            })
    })
}

/// The documents of a YAML stream resolved as YAML 1.1 the way kubectl (go-yaml v2) does, as
/// JSON; empty documents dropped. PyYAML's safe loader, plus `y`/`Y`/`n`/`N` as booleans, which
/// go-yaml v2 reads so and PyYAML does not.
fn yaml_documents(text: &str, what: &str) -> Vec<Value> {
    use std::io::Write as _;
    const LOAD: &str = r#"
import json, re, sys, yaml
class Kubectl(yaml.SafeLoader):
    bool_values = dict(yaml.SafeLoader.bool_values, y=True, n=False)
Kubectl.yaml_implicit_resolvers = {k: list(v) for k, v in Kubectl.yaml_implicit_resolvers.items()}
Kubectl.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
docs = [d for d in yaml.load_all(sys.stdin, Loader=Kubectl) if d is not None]
json.dump(docs, sys.stdout, default=str, allow_nan=False)
"#;
    let mut child = std::process::Command::new(python_with_yaml())
        .args(["-c", LOAD])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: not valid YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(docs)) => docs,
        other => panic!("{what}: PyYAML gave {other:?}"),
    }
}

fn manifest_files() -> Vec<PathBuf> {
    let dir = repo_root().join(MANIFEST_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

fn manifests() -> Vec<Doc> {
    let mut docs = Vec::new();
    for path in manifest_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let values = yaml_documents(&text, &file);
        assert!(!values.is_empty(), "{file}: no documents");
        docs.extend(values.into_iter().enumerate().map(|(index, value)| Doc {
            file: file.clone(),
            index,
            value,
        }));
    }
    docs
}

fn docs_in(file: &str) -> Vec<Doc> {
    let docs: Vec<Doc> = manifests().into_iter().filter(|d| d.file == file).collect();
    assert!(!docs.is_empty(), "no documents in {MANIFEST_DIR}/{file}");
    docs
}

/// A served CRD version: `(group, version, kind)` and its `openAPIV3Schema`.
type CrdVersions = BTreeMap<(String, String, String), Value>;

fn crds() -> &'static CrdVersions {
    static CRDS: OnceLock<CrdVersions> = OnceLock::new();
    CRDS.get_or_init(|| {
        let path = repo_root().join(CRD_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the Istio CRD file {} is part of the test data (tests/data/k8s, see SOURCE.md \
                 there) and must exist ({e})",
                path.display()
            )
        });
        let mut out = CrdVersions::new();
        for crd in yaml_documents(&text, CRD_FILE) {
            assert_eq!(crd["kind"], "CustomResourceDefinition", "{CRD_FILE}");
            let spec = &crd["spec"];
            let group = spec["group"].as_str().unwrap().to_string();
            let kind = spec["names"]["kind"].as_str().unwrap().to_string();
            for v in spec["versions"].as_array().unwrap() {
                if v["served"] != true {
                    continue;
                }
                let schema = v["schema"]["openAPIV3Schema"].clone();
                assert!(schema.is_object(), "{kind}: no openAPIV3Schema");
                let name = v["name"].as_str().unwrap().to_string();
                out.insert((group.clone(), name, kind.clone()), schema);
            }
        }
        assert!(!out.is_empty(), "{CRD_FILE}: no CRDs");
        out
    })
}

/// The CRD schema for a document's apiVersion and kind, if the CRD file has one.
fn crd_schema(doc: &Value) -> Option<&'static Value> {
    let (group, version) = doc["apiVersion"].as_str()?.split_once('/')?;
    let kind = doc["kind"].as_str()?;
    crds().get(&(group.to_string(), version.to_string(), kind.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Schema validation

/// The CRD schema as a strict JSON Schema (see the module comment).
fn strict_schema(crd: &Value) -> Value {
    fn walk(node: &mut Value) {
        let Some(obj) = node.as_object_mut() else {
            return;
        };
        if obj.get("nullable") == Some(&Value::Bool(true)) {
            if let Some(Value::String(t)) = obj.get("type").cloned() {
                obj.insert("type".into(), json!([t, "null"]));
            }
        }
        let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if obj.contains_key("properties") && !preserve && !obj.contains_key("additionalProperties")
        {
            obj.insert("additionalProperties".into(), Value::Bool(false));
        }
        for (key, child) in obj.iter_mut() {
            match key.as_str() {
                "properties" => {
                    if let Some(props) = child.as_object_mut() {
                        props.values_mut().for_each(walk);
                    }
                }
                "items" | "additionalProperties" | "not" => walk(child),
                "allOf" | "anyOf" | "oneOf" => {
                    if let Some(list) = child.as_array_mut() {
                        list.iter_mut().for_each(walk);
                    }
                }
                _ => {}
            }
        }
    }
    let mut schema = crd.clone();
    let props = schema["properties"].as_object_mut().unwrap();
    props.insert("apiVersion".into(), json!({"type": "string"}));
    props.insert("kind".into(), json!({"type": "string"}));
    props.insert(
        "metadata".into(),
        json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 253},
                "namespace": {"type": "string", "minLength": 1, "maxLength": 63},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        }),
    );
    walk(&mut schema);
    schema
}

/// Evaluates one of the CEL rules the CRDs use; `None` for a rule this table does not know.
fn eval_cel(rule: &str, value: &Value) -> Option<bool> {
    let has = |field: &str| value.get(field).is_some();
    let keys = || value.as_object().into_iter().flat_map(|m| m.keys());
    let text = value.as_str();
    // `(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) ... <= 1`: at most one of the fields.
    if rule.ends_with("<= 1") && rule.contains("? 1 : 0") {
        let present = rule
            .split("has(self.")
            .skip(1)
            .filter_map(|s| s.split(')').next())
            .filter(|f| has(f))
            .count();
        return Some(present <= 1);
    }
    // The url rule: a scheme, if any, from the list in the rule.
    if rule.starts_with("isURL(self)") {
        let list = rule.split('[').nth(1)?.split(']').next()?;
        let allowed: Vec<&str> = list
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .collect();
        let url = text?;
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        return Some(allowed.contains(&scheme));
    }
    Some(match rule {
        "has(self.wasm) != has(self.lua)" => has("wasm") != has("lua"),
        r#"self.all(key, !key.contains("*"))"# => keys().all(|k| !k.contains('*')),
        "self.all(key, key.size() != 0)" => keys().all(|k| !k.is_empty()),
        r#"!self.contains("*")"# => !text?.contains('*'),
        "self.size() == 0" => text?.is_empty(),
        r#"(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)"# => {
            value["valueFrom"] != "HOST" || !has("value")
        }
        _ => return None,
    })
}

/// Walks the CRD schema along the document, evaluating every `x-kubernetes-validations` rule.
fn cel_errors(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let text = rule["rule"].as_str().unwrap_or("");
        let normalized = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match eval_cel(&normalized, value) {
            Some(true) => {}
            Some(false) => out.push(format!("{path}: {}", rule["message"])),
            None => out.push(format!(
                "{path}: CEL rule not implemented by tests/manifests.rs: {normalized}"
            )),
        }
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let sub = schema["properties"]
                    .get(key)
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
                if let Some(sub) = sub {
                    cel_errors(sub, child, &format!("{path}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    cel_errors(sub, child, &format!("{path}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

fn schema_errors(crd: &Value, doc: &Value) -> Vec<String> {
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&strict_schema(crd))
        .unwrap_or_else(|e| panic!("CRD schema does not compile: {e}"));
    let mut errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    cel_errors(crd, doc, "", &mut errors);
    errors
}

/// Structural check of the networking resources that are not in the CRD file.
fn networking_errors(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let spec = &doc["spec"];
    let nonempty_str = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    // Unknown fields, as for the CRD kinds: the fields of the networking.istio.io API.
    let mut only = |value: &Value, path: &str, known: &[&str]| {
        for key in value.as_object().into_iter().flat_map(|m| m.keys()) {
            if !known.contains(&key.as_str()) {
                errors.push(format!("{path}.{key}: unknown field"));
            }
        }
    };
    only(doc, "", &["apiVersion", "kind", "metadata", "spec"]);
    only(
        &doc["metadata"],
        "metadata",
        &["name", "namespace", "labels", "annotations"],
    );
    match doc["kind"].as_str() {
        Some("ServiceEntry") => only(
            spec,
            "spec",
            &[
                "hosts",
                "addresses",
                "ports",
                "location",
                "resolution",
                "endpoints",
                "workloadSelector",
                "exportTo",
                "subjectAltNames",
            ],
        ),
        _ => {
            only(
                spec,
                "spec",
                &[
                    "host",
                    "trafficPolicy",
                    "subsets",
                    "exportTo",
                    "workloadSelector",
                ],
            );
            only(
                &spec["trafficPolicy"]["tls"],
                "spec.trafficPolicy.tls",
                &[
                    "mode",
                    "clientCertificate",
                    "privateKey",
                    "caCertificates",
                    "credentialName",
                    "subjectAltNames",
                    "sni",
                    "insecureSkipVerify",
                    "caCrl",
                ],
            );
        }
    }
    let mut need = |ok: bool, what: &str| {
        if !ok {
            errors.push(what.to_string());
        }
    };
    need(nonempty_str(&doc["metadata"]["name"]), "metadata.name");
    match doc["kind"].as_str() {
        Some("ServiceEntry") => {
            let hosts = spec["hosts"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            need(!hosts.is_empty(), "spec.hosts: at least one host");
            need(hosts.iter().all(nonempty_str), "spec.hosts: strings");
            let ports = spec["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            need(!ports.is_empty(), "spec.ports: at least one port");
            for p in ports {
                need(
                    p["number"]
                        .as_u64()
                        .is_some_and(|n| (1..=65535).contains(&n)),
                    "spec.ports[].number: 1..65535",
                );
                need(nonempty_str(&p["name"]), "spec.ports[].name");
                need(
                    [
                        "HTTP", "HTTPS", "HTTP2", "GRPC", "TLS", "TCP", "MONGO", "UDP",
                    ]
                    .iter()
                    .any(|k| p["protocol"] == *k),
                    "spec.ports[].protocol: a known protocol",
                );
            }
            need(
                ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]
                    .iter()
                    .any(|r| spec["resolution"] == *r),
                "spec.resolution: NONE, STATIC, DNS or DNS_ROUND_ROBIN",
            );
            need(
                spec.get("location")
                    .is_none_or(|l| l == "MESH_EXTERNAL" || l == "MESH_INTERNAL"),
                "spec.location: MESH_EXTERNAL or MESH_INTERNAL",
            );
        }
        Some("DestinationRule") => {
            need(nonempty_str(&spec["host"]), "spec.host");
            if let Some(tls) = spec["trafficPolicy"].get("tls") {
                need(
                    ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]
                        .iter()
                        .any(|m| tls["mode"] == *m),
                    "spec.trafficPolicy.tls.mode: DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL",
                );
            }
        }
        other => errors.push(format!("unexpected networking kind {other:?}")),
    }
    errors
}

/// Every problem with one document: schema and CEL rules for CRD kinds, structure for the
/// networking kinds, an error for anything else.
fn check(doc: &Value) -> Vec<String> {
    if let Some(crd) = crd_schema(doc) {
        return schema_errors(crd, doc);
    }
    match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
        (Some("networking.istio.io/v1" | "networking.istio.io/v1beta1"), Some(_)) => {
            networking_errors(doc)
        }
        (api, kind) => vec![format!(
            "no CRD for apiVersion {api:?} kind {kind:?} in {CRD_FILE}, and not a networking kind"
        )],
    }
}

// ---------------------------------------------------------------------------------------------
// Plugin configurations

/// The Wasm VM environment a plugin declares: INLINE values as given, HOST variables (the
/// istio-proxy container's, set from a Secret in a real pod) with a test value.
fn vm_env(wasm: &Value) -> BTreeMap<String, String> {
    wasm["vmConfig"]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["value"].as_str() {
                Some(v) if e["valueFrom"] != "HOST" => v.to_string(),
                _ => format!("test-value-of-{name}"),
            };
            (name, value)
        })
        .collect()
}

/// Every plugin document in a file with its pluginConfig.
fn plugins_in(file: &str) -> Vec<(Doc, Value)> {
    let plugins: Vec<(Doc, Value)> = docs_in(file)
        .into_iter()
        .filter_map(|d| {
            let config = d.wasm()?.get("pluginConfig")?.clone();
            Some((d, config))
        })
        .collect();
    assert!(!plugins.is_empty(), "{file}: no plugin with a pluginConfig");
    plugins
}

fn assert_parser_accepts(file: &str) {
    for (doc, config) in plugins_in(file) {
        let env = vm_env(doc.wasm().unwrap());
        let lookup = |name: &str| env.get(name).cloned();
        let bytes = serde_json::to_vec(&config).unwrap();
        if let Err(e) = aml_auth_filter::config::parse(&bytes, &lookup) {
            panic!("{}: the filter refuses its pluginConfig: {e}", doc.label());
        }
    }
}

/// The `remote_jwks` sources of a plugin configuration (one object or an array).
fn remote_jwks(config: &Value) -> Vec<Value> {
    match &config["token"]["remote_jwks"] {
        Value::Array(list) => list.clone(),
        Value::Object(_) => vec![config["token"]["remote_jwks"].clone()],
        _ => Vec::new(),
    }
}

/// The host of an https URI.
fn uri_host(uri: &str) -> &str {
    let rest = uri.strip_prefix("https://").unwrap_or_else(|| {
        panic!("JWKS uri {uri} is not https (the DestinationRule originates TLS)")
    });
    let authority = rest.split('/').next().unwrap();
    authority.split(':').next().unwrap()
}

/// The Envoy bootstrap equivalent to what Istio gives the proxy for this plugin: the wasm filter
/// with the pluginConfig as its `configuration`, the declared VM environment, and a static
/// cluster named `outbound|443||HOST` with TLS to HOST for every JWKS source.
fn envoy_equivalent(wasm: &Value, config: &Value) -> Value {
    let env: Map<String, Value> = vm_env(wasm)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let filter = wasm_filter_with(
        config,
        json!({"environment_variables": {"key_values": env}}),
    );
    let mut clusters = vec![cluster("model", "127.0.0.1:1".parse().unwrap())];
    for source in remote_jwks(config) {
        let name = source["cluster"].as_str().unwrap();
        let host = uri_host(source["uri"].as_str().unwrap());
        assert_eq!(
            name,
            format!("outbound|443||{host}"),
            "Istio's cluster name"
        );
        let mut c = cluster(name, "127.0.0.1:443".parse().unwrap());
        c["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host
            }
        });
        clusters.push(c);
    }
    bootstrap(
        vec![listener("main", vec![filter], vec![route_to("model")])],
        clusters,
    )
}

fn assert_envoy_loads(file: &str) {
    for (doc, config) in plugins_in(file) {
        let result = validate(&envoy_equivalent(doc.wasm().unwrap(), &config));
        assert!(
            result.ok,
            "{}: envoy --mode validate refused the equivalent config:\n{}",
            doc.label(),
            result.output
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_manifest_matches_its_schema() {
    let docs = manifests();
    let mut kinds = Vec::new();
    for doc in &docs {
        let errors = check(&doc.value);
        assert!(
            errors.is_empty(),
            "{}:\n  {}",
            doc.label(),
            errors.join("\n  ")
        );
        kinds.push(doc.kind().to_string());
    }
    for kind in [
        "WasmPlugin",
        "TrafficExtension",
        "ServiceEntry",
        "DestinationRule",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} in {MANIFEST_DIR}"
        );
    }
}

#[test]
fn every_plugin_fails_closed_and_pins_its_image() {
    let mut plugins = 0;
    for doc in manifests() {
        let Some(wasm) = doc.wasm() else { continue };
        plugins += 1;
        let label = doc.label();
        assert_eq!(wasm["failStrategy"], "FAIL_CLOSE", "{label}");
        assert_eq!(doc.value["spec"]["phase"], "AUTHN", "{label}");
        assert!(
            wasm["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("oci://")),
            "{label}"
        );
        let sha = wasm["sha256"].as_str().unwrap_or("");
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{label}: sha256 must pin the image"
        );
        assert!(wasm["pluginConfig"].is_object(), "{label}: no pluginConfig");
    }
    assert!(
        plugins >= 4,
        "expected the sidecar, ingress and TrafficExtension plugins"
    );
    // No manifest names a fail-open strategy at all, even in a comment.
    for path in manifest_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let fail = ["FAIL", "_OPEN"].concat();
        assert!(!text.contains(&fail), "{}", path.display());
    }
}

#[test]
fn sidecar_key_mode_uses_digests_and_declared_environment() {
    let plugins = plugins_in("wasmplugin-sidecar-key.yaml");
    let mut digest_form = false;
    let mut env_form = false;
    for (doc, config) in &plugins {
        assert!(
            doc.value["spec"]["selector"]["matchLabels"]["app"].is_string(),
            "{}: select the model deployment by its app label",
            doc.label()
        );
        for key in ["primary_key", "secondary_key"] {
            let value = config[key].as_str().unwrap();
            digest_form |= value.starts_with("sha256:");
            if let Some(name) = value.strip_prefix("env:") {
                env_form = true;
                let declared = &doc.wasm().unwrap()["vmConfig"]["env"];
                assert!(
                    declared
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e["name"] == name && e["valueFrom"] == "HOST"),
                    "{}: {name} must be passed from the istio-proxy container (valueFrom: HOST)",
                    doc.label()
                );
            }
        }
    }
    assert!(
        digest_form && env_form,
        "show both the sha256: and env: forms"
    );
}

#[test]
fn ingress_plugin_and_traffic_extension_carry_the_same_config() {
    let (plugin, config) = plugins_in("wasmplugin-ingress.yaml").remove(0);
    let (extension, ext_config) = plugins_in("trafficextension-ingress.yaml").remove(0);
    assert_eq!(config, ext_config, "pluginConfig differs");
    for doc in [&plugin, &extension] {
        assert_eq!(
            doc.value["spec"]["selector"]["matchLabels"]["istio"],
            "ingressgateway",
            "{}",
            doc.label()
        );
    }
    for field in [
        "url",
        "sha256",
        "pluginName",
        "failStrategy",
        "imagePullSecret",
    ] {
        assert_eq!(
            plugin.wasm().unwrap()[field],
            extension.wasm().unwrap()[field],
            "{field}"
        );
    }
    // Several services, in both modes; JWKS from two regions, tried in order.
    let services = config["services"].as_array().unwrap();
    let token_mode = |s: &Value| {
        s.get("token_auth_enabled")
            .unwrap_or(&config["token_auth_enabled"])
            == true
    };
    assert!(services.iter().any(token_mode), "a token-mode service");
    assert!(
        services.iter().any(|s| !token_mode(s)),
        "a key-mode service"
    );
    assert_eq!(remote_jwks(&config).len(), 2, "workspace and paired region");
}

#[test]
fn jwks_clusters_have_a_service_entry_and_tls_origination() {
    let docs = docs_in("jwks-serviceentry.yaml");
    let mut sources = Vec::new();
    for file in ["wasmplugin-ingress.yaml", "trafficextension-ingress.yaml"] {
        for (_, config) in plugins_in(file) {
            sources.extend(remote_jwks(&config));
        }
    }
    assert!(
        !sources.is_empty(),
        "the ingress plugins name no remote_jwks"
    );
    for source in sources {
        let cluster = source["cluster"].as_str().unwrap();
        let host = uri_host(source["uri"].as_str().unwrap());
        assert_eq!(cluster, format!("outbound|443||{host}"));
        let entry = docs.iter().find(|d| {
            d.kind() == "ServiceEntry"
                && d.value["spec"]["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h == host)
        });
        let entry = entry.unwrap_or_else(|| panic!("no ServiceEntry for {host}"));
        assert!(
            entry.value["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["number"] == 443),
            "{host}: ServiceEntry port 443"
        );
        let rule = docs
            .iter()
            .find(|d| d.kind() == "DestinationRule" && d.value["spec"]["host"] == host)
            .unwrap_or_else(|| panic!("no DestinationRule for {host}"));
        let tls = &rule.value["spec"]["trafficPolicy"]["tls"];
        assert_eq!(tls["mode"], "SIMPLE", "{host}");
        assert_eq!(tls["sni"], host, "{host}");
        for doc in [entry, rule] {
            assert_eq!(
                doc.value["metadata"]["namespace"],
                "istio-system",
                "{}: beside the gateway",
                doc.label()
            );
        }
    }
}

#[test]
fn broken_manifests_fail_the_same_check() {
    let mut checked = 0;
    for doc in manifests() {
        assert!(check(&doc.value).is_empty(), "{}", doc.label());
        let label = doc.label();
        let broken = |mutate: &dyn Fn(&mut Value), expect: &str| {
            let mut value = doc.value.clone();
            mutate(&mut value);
            let errors = check(&value);
            assert!(
                errors.iter().any(|e| e.contains(expect)),
                "{label}: mutation not caught (want an error mentioning {expect:?}), got {errors:?}"
            );
        };
        broken(&|v| v["spec"]["colour"] = json!("red"), "colour");
        match doc.kind() {
            "WasmPlugin" | "TrafficExtension" => {
                let strategy = if doc.kind() == "WasmPlugin" {
                    "/spec/failStrategy"
                } else {
                    "/spec/wasm/failStrategy"
                };
                broken(
                    &|v| *v.pointer_mut(strategy).unwrap() = json!("FAIL_SOMETIMES"),
                    "FAIL_SOMETIMES",
                );
                broken(
                    &|v| v["spec"]["selector"]["matchLablels"] = json!({"app": "x"}),
                    "matchLablels",
                );
                broken(
                    &|v| v["spec"]["targetRefs"] = json!([{"kind": "Gateway", "name": "g"}]),
                    "only one of",
                );
                let url = strategy.replace("failStrategy", "url");
                broken(
                    &|v| *v.pointer_mut(&url).unwrap() = json!("ftp://registry/x"),
                    "url must have schema",
                );
                broken(&|v| v["metadata"]["nmae"] = json!("x"), "nmae");
            }
            "DestinationRule" => {
                broken(
                    &|v| v["spec"]["trafficPolicy"]["tls"]["snii"] = json!("x"),
                    "snii",
                );
                broken(
                    &|v| v["spec"]["trafficPolicy"]["tls"]["mode"] = json!("SIMPLEST"),
                    "tls.mode",
                );
                broken(
                    &|v| {
                        v["spec"].as_object_mut().unwrap().remove("host");
                    },
                    "spec.host",
                );
            }
            "ServiceEntry" => {
                broken(
                    &|v| v["spec"]["resolution"] = json!("SOMETIMES"),
                    "resolution",
                );
            }
            other => panic!("{label}: unexpected kind {other}"),
        }
        checked += 1;
    }
    assert!(checked >= 6, "checked only {checked} documents");
}

#[test]
fn unknown_fields_are_refused_but_plugin_config_is_left_to_the_filter() {
    let mut doc = docs_in("wasmplugin-ingress.yaml").remove(0).value;
    // pluginConfig preserves unknown fields: the schema lets it through, the filter judges it.
    doc["spec"]["pluginConfig"]["colour"] = json!("red");
    assert_eq!(check(&doc), Vec::<String>::new());
    let bytes = serde_json::to_vec(&doc["spec"]["pluginConfig"]).unwrap();
    let err = aml_auth_filter::config::parse(&bytes, &|_| None).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    // A kind with no CRD and no structural check is refused, not skipped.
    doc["kind"] = json!("WasmPlugins");
    assert!(check(&doc)[0].contains("no CRD"), "{:?}", check(&doc));
}

#[test]
fn cel_rules_unknown_to_the_table_fail() {
    let schema = json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.size() > 3", "message": "m"}
    ]});
    let mut errors = Vec::new();
    cel_errors(&schema, &json!({}), "", &mut errors);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("not implemented"), "{errors:?}");
}

#[test]
fn sidecar_plugin_configs_are_accepted_by_the_filter() {
    assert_parser_accepts("wasmplugin-sidecar-key.yaml");
}

#[test]
fn ingress_plugin_configs_are_accepted_by_the_filter() {
    assert_parser_accepts("wasmplugin-ingress.yaml");
    assert_parser_accepts("trafficextension-ingress.yaml");
}

#[test]
fn env_keys_not_declared_in_vm_config_are_refused() {
    let (doc, config) = plugins_in("wasmplugin-sidecar-key.yaml")
        .into_iter()
        .find(|(_, c)| c["primary_key"].as_str().unwrap().starts_with("env:"))
        .expect("a plugin using env: keys");
    let mut wasm = doc.wasm().unwrap().clone();
    wasm["vmConfig"]["env"] = json!([]);
    let env = vm_env(&wasm);
    let bytes = serde_json::to_vec(&config).unwrap();
    let err = aml_auth_filter::config::parse(&bytes, &|n| env.get(n).cloned()).unwrap_err();
    assert!(err.to_string().contains("not set"), "{err}");
}

#[test]
fn sidecar_plugin_configs_load_in_envoy() {
    assert_envoy_loads("wasmplugin-sidecar-key.yaml");
}

#[test]
fn ingress_plugin_configs_load_in_envoy() {
    assert_envoy_loads("wasmplugin-ingress.yaml");
    assert_envoy_loads("trafficextension-ingress.yaml");
}

/// The manifests are read with YAML 1.1 scalar resolution, as kubectl reads them: plain
/// scalars that YAML 1.2 (and serde_yaml) keep as strings are numbers and booleans here.
#[test]
fn yaml_is_resolved_as_kubectl_reads_it() {
    let text = "a: 0000\nb: on\nc: yes\nd: Off\ne: '0000'\nf: 0777\ng: 1:30\nh: 1_000\n\
                i: ~\nj: \"on\"\nk: 0x1F\nl: 1.5e+3\nm: 12e3\n---\n---\n- n\n";
    let docs = yaml_documents(text, "inline");
    assert_eq!(
        docs[0],
        json!({"a": 0, "b": true, "c": true, "d": false, "e": "0000", "f": 511, "g": 90,
               "h": 1000, "i": null, "j": "on", "k": 31, "l": 1500.0, "m": "12e3"})
    );
    assert_eq!(docs[1], json!([false]), "empty documents are dropped");
    assert_eq!(docs.len(), 2);
}

/// Issue 12: the placeholder `sha256: 0000...0` read as the integer 0 and the API server
/// refused the resource. Unquoting it in any shipped manifest must fail the schema check.
#[test]
fn an_unquoted_sha256_placeholder_fails_the_schema() {
    let mut mutated = 0;
    for path in manifest_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let zeros = format!("\"{}\"", "0".repeat(64));
        if !text.contains(&zeros) {
            continue;
        }
        let unquoted = text.replace(&zeros, &"0".repeat(64));
        let errors: Vec<String> = yaml_documents(&unquoted, &file)
            .iter()
            .flat_map(check)
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("sha256") && e.contains("is not of type \"string\"")),
            "{file}: an unquoted placeholder passed: {errors:?}"
        );
        mutated += 1;
    }
    assert!(
        mutated >= 3,
        "expected the placeholder in the plugin manifests"
    );
}
