//! The built module exports exactly the callbacks `src/host/` implements (plus what every VM
//! needs): `./build.sh wasm` drops the proxy-wasm SDK's other exports, and Envoy silently skips a
//! callback that is not exported, so a callback added to `src/host/` without its export would never run.

mod common;

use std::collections::BTreeSet;

/// Exports every module needs, whatever `src/host/` implements: memory, the WASI reactor entry point,
/// the ABI version, the allocator Envoy writes into, context creation and deletion (the SDK frees
/// its per-request context there), VM start, configuration, and the request-headers callback.
const ALWAYS: &[&str] = &[
    "memory",
    "_initialize",
    "proxy_abi_version_0_2_1",
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_request_headers",
];

/// The export each SDK trait callback is called through.
const CALLBACKS: &[(&str, &str)] = &[
    ("on_vm_start", "proxy_on_vm_start"),
    ("on_configure", "proxy_on_configure"),
    ("on_tick", "proxy_on_tick"),
    ("on_queue_ready", "proxy_on_queue_ready"),
    ("on_done", "proxy_on_done"),
    ("on_log", "proxy_on_log"),
    ("on_http_call_response", "proxy_on_http_call_response"),
    ("on_grpc_call_response", "proxy_on_grpc_receive"),
    ("on_grpc_stream_message", "proxy_on_grpc_receive"),
    (
        "on_grpc_stream_initial_metadata",
        "proxy_on_grpc_receive_initial_metadata",
    ),
    (
        "on_grpc_stream_trailing_metadata",
        "proxy_on_grpc_receive_trailing_metadata",
    ),
    ("on_grpc_stream_close", "proxy_on_grpc_close"),
    ("on_foreign_function", "proxy_on_foreign_function"),
    ("on_http_request_headers", "proxy_on_request_headers"),
    ("on_http_request_body", "proxy_on_request_body"),
    ("on_http_request_trailers", "proxy_on_request_trailers"),
    ("on_http_response_headers", "proxy_on_response_headers"),
    ("on_http_response_body", "proxy_on_response_body"),
    ("on_http_response_trailers", "proxy_on_response_trailers"),
    ("on_new_connection", "proxy_on_new_connection"),
    ("on_downstream_data", "proxy_on_downstream_data"),
    (
        "on_downstream_close",
        "proxy_on_downstream_connection_close",
    ),
    ("on_upstream_data", "proxy_on_upstream_data"),
    ("on_upstream_close", "proxy_on_upstream_connection_close"),
];

/// Names of the `fn on_*` callbacks the files of `src/host/` define.
fn host_callbacks() -> BTreeSet<String> {
    let dir = common::repo_root().join("src/host");
    let mut source = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            source.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    assert!(
        source.contains("fn on_http_request_headers"),
        "no callbacks read from {dir:?}"
    );
    source
        .split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name.starts_with("on_").then_some(name)
        })
        .collect()
}

fn leb128(bytes: &[u8], at: &mut usize) -> u32 {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let b = bytes[*at];
        *at += 1;
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    value
}

/// The export names of a wasm binary (its export section, id 7).
fn exports(wasm: &[u8]) -> BTreeSet<String> {
    assert_eq!(&wasm[..8], b"\0asm\x01\0\0\0", "not a wasm module");
    let mut at = 8;
    let mut names = BTreeSet::new();
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb128(wasm, &mut at) as usize;
        let end = at + size;
        if id == 7 {
            let count = leb128(wasm, &mut at);
            for _ in 0..count {
                let len = leb128(wasm, &mut at) as usize;
                names.insert(String::from_utf8(wasm[at..at + len].to_vec()).unwrap());
                at += len;
                at += 1; // kind
                leb128(wasm, &mut at);
            }
        }
        at = end;
    }
    names
}

#[test]
fn module_exports_exactly_the_callbacks_host_rs_implements() {
    let mut wanted: BTreeSet<String> = ALWAYS.iter().map(|s| s.to_string()).collect();
    for callback in host_callbacks() {
        let export = CALLBACKS
            .iter()
            .find(|(name, _)| *name == callback)
            .map(|(_, export)| export.to_string())
            .unwrap_or_else(|| {
                panic!("src/host/ defines {callback}: add its export to CALLBACKS here and to WASM_EXPORTS in build.sh")
            });
        wanted.insert(export);
    }
    assert!(
        wanted.contains("proxy_on_http_call_response") && wanted.contains("proxy_on_tick"),
        "src/host/ callbacks not found: {wanted:?}"
    );
    let wasm = std::fs::read(common::wasm_path()).unwrap();
    assert_eq!(
        exports(&wasm),
        wanted,
        "exports of {}",
        common::wasm_path().display()
    );
}
