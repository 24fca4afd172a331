;; The smallest proxy-wasm module Envoy accepts as an HTTP filter: the benchmark's floor.
;; It exports only what Envoy needs to create the VM, configure the root context and call one
;; request callback, which lets every request continue. Assembled by `./build.sh bench`.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (i32.const 0))
  (func (export "proxy_on_context_create") (param $context i32) (param $parent i32))
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_request_headers")
    (param $context i32) (param $headers i32) (param $end_of_stream i32) (result i32)
    (i32.const 0)))
