#!/usr/bin/env python3
"""Writes the ECDS resource that carries aml-auth-filter's plugin configuration to Envoy.

usage: make-ecds.py PLUGIN_CONFIG_JSON WASM_PATH OUT_JSON [ENV_KEY...]
The plugin configuration file is embedded verbatim as the filter's `configuration` string; ENV_KEYs
are passed from Envoy's environment into the Wasm VM (for `env:NAME` key values).

usage: make-ecds.py --inline ENVOY_YAML OUT [PLUGIN_CONFIG_JSON]
Writes the inline twin of an Envoy configuration: every HTTP filter taken from an ECDS file
(`config_discovery` with `path_config_source`) gets that file's resource of the same name as its
`typed_config`, with the plugin configuration replaced by PLUGIN_CONFIG_JSON when given (its `env:NAME` keys
are added to the VM's host_env_keys, so a variable exported to Envoy reaches the filter).
`envoy --mode validate` does not load ECDS, so only the twin proves the plugin configuration
Envoy will get (run it from ENVOY_YAML's directory: paths stay relative to it). Needs PyYAML.
"""
import json
import os
import sys


def env_key_names(plugin_config: str) -> "list[str]":
    """The NAMEs of `env:NAME` keys in a plugin configuration (top level and services)."""
    try:
        doc = json.loads(plugin_config)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    policies = [doc] + [s for s in doc.get("services") or [] if isinstance(s, dict)]
    names = []
    for policy in policies:
        for field in ("primary_key", "secondary_key"):
            value = policy.get(field)
            if isinstance(value, str) and value.startswith("env:") and value[4:] not in names:
                names.append(value[4:])
    return names


def inline_twin(envoy_yaml: str, out: str, plugin_config_path: "str | None") -> None:
    import yaml  # only this mode needs PyYAML

    base = os.path.dirname(os.path.abspath(envoy_yaml))
    with open(envoy_yaml, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    plugin_config = None
    if plugin_config_path:
        with open(plugin_config_path, encoding="utf-8") as f:
            plugin_config = f.read()
    inlined = []

    def resource_for(flt: dict) -> dict:
        source = flt["config_discovery"]["config_source"]["path_config_source"]["path"]
        with open(os.path.join(base, source), encoding="utf-8") as f:
            ecds = json.load(f)
        found = [r for r in ecds.get("resources", []) if r.get("name") == flt["name"]]
        if len(found) != 1:
            sys.exit(f"make-ecds.py: {source} has {len(found)} resources named {flt['name']!r}")
        typed = found[0]["typed_config"]
        if plugin_config is not None:
            typed["config"]["configuration"]["value"] = plugin_config
            names = env_key_names(plugin_config)
            if names:
                env = typed["config"].setdefault("vm_config", {}).setdefault("environment_variables", {})
                keys = env.setdefault("host_env_keys", [])
                keys.extend(n for n in names if n not in keys)
        inlined.append(f"{flt['name']} from {source}")
        return typed

    def walk(node):
        if isinstance(node, dict):
            for flt in node.get("http_filters", []) or []:
                discovery = flt.get("config_discovery") if isinstance(flt, dict) else None
                if discovery and "path_config_source" in discovery.get("config_source", {}):
                    flt["typed_config"] = resource_for(flt)
                    del flt["config_discovery"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    if not inlined:
        sys.exit(f"make-ecds.py: {envoy_yaml} takes no filter from an ECDS file")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print("; ".join(inlined))


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--inline":
        if len(sys.argv) not in (4, 5):
            sys.exit(__doc__)
        inline_twin(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else None)
        return
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    config_path, wasm, out = sys.argv[1:4]
    env_keys = sys.argv[4:]
    with open(config_path, encoding="utf-8") as f:
        plugin_config = f.read()
    json.loads(plugin_config)
    vm_config = {
        "vm_id": "aml_auth",
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": wasm}},
    }
    if env_keys:
        vm_config["environment_variables"] = {"host_env_keys": env_keys}
    resource = {
        "version_info": "1",
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "aml_auth",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "aml_auth",
                    "root_id": "aml_auth",
                    "failure_policy": "FAIL_RELOAD",
                    "vm_config": vm_config,
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": plugin_config,
                    },
                },
            },
        }],
    }
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(resource, f, indent=2)
        f.write("\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
