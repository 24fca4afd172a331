#!/usr/bin/env python3
"""Writes the ECDS resource that carries aml-auth-filter's plugin configuration to Envoy.

usage: make-ecds.py PLUGIN_CONFIG_JSON WASM_PATH OUT_JSON [ENV_KEY...]
The plugin configuration file is embedded verbatim as the filter's `configuration` string; ENV_KEYs
are passed from Envoy's environment into the Wasm VM (for `env:NAME` key values).
"""
import json
import os
import sys


def main() -> None:
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
