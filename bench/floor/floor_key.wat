;; The floor module plus the host work key mode cannot avoid on every request: read the
;; Authorization header (Envoy copies it into memory it asks this module to allocate), remove
;; it, and increment one counter defined at configure time. Assembled by `./build.sh bench`.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value"
    (func $remove_header (param i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric"
    (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric"
    (func $increment_metric (param i32 i64) (result i32)))
  (memory (export "memory") 2)
  ;; 16: the header name (13 bytes); 32: the counter name (14 bytes); 48: the counter id;
  ;; 56, 60: where Envoy writes the header value's address and size; 1024..: the value.
  (data (i32.const 16) "authorization")
  (data (i32.const 32) "floor.requests")
  (global $counter (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  ;; One buffer reused by every call (a request reads one value and drops it); a larger
  ;; request grows the memory and hands out the new pages, 0 if that fails.
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $old i32)
    (if (i32.le_u (local.get $size) (i32.const 64512))
      (then (return (i32.const 1024))))
    (local.set $old
      (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))
    (if (i32.eq (local.get $old) (i32.const -1))
      (then (return (i32.const 0))))
    (i32.shl (local.get $old) (i32.const 16)))
  (func (export "proxy_on_context_create") (param $context i32) (param $parent i32))
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (i32.const 1))
  ;; Counter (metric type 0) floor.requests, seen by Envoy as wasmcustom.floor.requests.
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.ne (call $define_metric (i32.const 0) (i32.const 32) (i32.const 14) (i32.const 48))
                (i32.const 0))
      (then (return (i32.const 0))))
    (global.set $counter (i32.load (i32.const 48)))
    (i32.const 1))
  ;; Map type 0 is the request headers.
  (func (export "proxy_on_request_headers")
    (param $context i32) (param $headers i32) (param $end_of_stream i32) (result i32)
    (drop (call $get_header (i32.const 0) (i32.const 16) (i32.const 13) (i32.const 56) (i32.const 60)))
    (drop (call $remove_header (i32.const 0) (i32.const 16) (i32.const 13)))
    (drop (call $increment_metric (global.get $counter) (i64.const 1)))
    (i32.const 0)))
