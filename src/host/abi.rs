//! Every proxy-wasm host call the filter makes besides `dispatch_http_call`, declared here against the ABI itself: the
//! SDK's wrappers (`proxy_wasm::hostcalls`, and the trait methods over them) panic on any host
//! status they did not foresee, and a panic traps the VM. Every function here returns the host's
//! status as an error instead, whatever its value.
#![allow(unsafe_code)]

use core::ptr::{null, null_mut};

use crate::request::headers::HeaderMap;

/// A host status other than `Ok` (0), as the host returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostStatus(pub u32);

/// `NotFound`: the key, header or buffer does not exist.
const NOT_FOUND: u32 = 1;

/// Request headers of the current stream.
pub const HTTP_REQUEST_HEADERS: u32 = 0;
/// Request trailers of the current stream.
pub const HTTP_REQUEST_TRAILERS: u32 = 1;
/// Header map of an HTTP call's response.
pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
/// Body of an HTTP call's response.
pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
/// The plugin configuration.
pub const PLUGIN_CONFIGURATION: u32 = 7;

// Same imports the SDK declares, with the status as a plain integer so that no value the host
// returns is ever read as an invalid enum.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        return_results_data: *mut *mut u8,
        return_results_size: *mut usize,
    ) -> u32;
    fn proxy_get_status(
        return_code: *mut u32,
        return_message_data: *mut *mut u8,
        return_message_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate` (the SDK's
/// allocator hands out exactly `size` bytes).
///
/// # Safety
/// `data` is null or was returned by the host for this call with this `size`.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

fn check(status: u32) -> Result<(), HostStatus> {
    match status {
        0 => Ok(()),
        other => Err(HostStatus(other)),
    }
}

/// Sets the root context's tick period.
pub fn set_tick_period_ms(period_ms: u32) -> Result<(), HostStatus> {
    // SAFETY: plain integer argument.
    check(unsafe { proxy_set_tick_period_milliseconds(period_ms) })
}

/// Reads up to `max_size` bytes of a host buffer; `Ok(None)` when the host has none.
pub fn get_buffer(
    buffer_type: u32,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, HostStatus> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the out-pointers are valid for writes; the returned buffer is ours.
    let status =
        unsafe { proxy_get_buffer_bytes(buffer_type, start, max_size, &mut data, &mut size) };
    match status {
        0 => Ok(Some(unsafe { owned(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// One header of a header map, as bytes; `Ok(None)` when absent.
pub fn get_header(map_type: u32, name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: `name` outlives the call; the out-pointers are valid; the returned buffer is ours.
    let status = unsafe {
        proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status {
        0 => Ok(Some(unsafe { owned(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// A stream property (`["xds", "route_name"]`...); `Ok(None)` when the host has none.
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
    let serialized = path.join("\0");
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: `serialized` outlives the call; the out-pointers are valid; the buffer is ours.
    let status =
        unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    match status {
        0 => Ok(Some(unsafe { owned(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// A shared-data value and its compare-and-swap token; `(None, None)` when the key is absent.
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostStatus> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: `key` outlives the call; the out-pointers are valid; the returned buffer is ours.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        0 => {
            let value = (!data.is_null()).then(|| unsafe { owned(data, size) });
            Ok((value, (cas != 0).then_some(cas)))
        }
        NOT_FOUND => Ok((None, None)),
        other => Err(HostStatus(other)),
    }
}

/// Writes a shared-data value; with `cas`, only if nobody wrote it since that token was read
/// (else the host's `CasMismatch`, 8).
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostStatus> {
    // SAFETY: `key` and `value` outlive the call.
    check(unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            if value.is_empty() {
                null()
            } else {
                value.as_ptr()
            },
            value.len(),
            cas.unwrap_or(0),
        )
    })
}

/// The status the host attached to the current callback (for an HTTP call's response: `Ok`, or
/// the failure code and message such as `reset`).
pub fn get_status() -> Result<(u32, Vec<u8>), HostStatus> {
    let mut code: u32 = 0;
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the out-pointers are valid for writes; the returned buffer is ours.
    let status = unsafe { proxy_get_status(&mut code, &mut data, &mut size) };
    check(status)?;
    Ok((code, unsafe { owned(data, size) }))
}

/// Logs a message at `level` (proxy-wasm levels: 0 trace .. 5 critical).
pub fn log(level: u32, message: &str) -> Result<(), HostStatus> {
    // SAFETY: `message` outlives the call.
    check(unsafe { proxy_log(level, message.as_ptr(), message.len()) })
}

/// The host's wall clock, in nanoseconds since the Unix epoch.
pub fn current_time_ns() -> Result<u64, HostStatus> {
    let mut ns: u64 = 0;
    // SAFETY: the out-pointer is valid for writes.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut ns) })?;
    Ok(ns)
}

/// Defines (or finds) a metric: 0 counter, 1 gauge, 2 histogram.
pub fn define_metric(metric_type: u32, name: &str) -> Result<u32, HostStatus> {
    let mut id: u32 = 0;
    // SAFETY: `name` outlives the call; the out-pointer is valid.
    check(unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `offset` to a counter.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), HostStatus> {
    // SAFETY: plain integer arguments.
    check(unsafe { proxy_increment_metric(id, offset) })
}

/// Sets a gauge.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostStatus> {
    // SAFETY: plain integer arguments.
    check(unsafe { proxy_record_metric(id, value) })
}

/// Every pair of a header map, names and values as bytes, in the host's order, read in place.
pub fn get_header_pairs(map_type: u32) -> Result<HeaderMap, HostStatus> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the out-pointers are valid; the returned buffer is ours.
    check(unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) })?;
    let bytes = unsafe { owned(data, size) };
    HeaderMap::parse(bytes).ok_or(HostStatus(SERIALIZATION_FAILURE))
}

/// `SerializationFailure`: the host's serialised map could not be read.
const SERIALIZATION_FAILURE: u32 = 3;

/// Replaces a header (or adds it).
pub fn replace_header(map_type: u32, name: &str, value: &str) -> Result<(), HostStatus> {
    // SAFETY: `name` and `value` outlive the call.
    check(unsafe {
        proxy_replace_header_map_value(
            map_type,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Sets a property of the current stream; a one-segment `name` becomes Envoy filter state
/// `wasm.<name>`.
pub fn set_property(name: &str, value: &[u8]) -> Result<(), HostStatus> {
    // SAFETY: `name` and `value` outlive the call.
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Calls an Envoy foreign function; its result bytes (empty when it returns none).
pub fn call_foreign_function(name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: `name` and `arguments` outlive the call; the host writes a buffer it allocated
    // through `proxy_on_memory_allocate` (or nothing) into `data`/`size`.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut data,
            &mut size,
        )
    };
    check(status)?;
    // SAFETY: the host returned this buffer for this call.
    Ok(unsafe { owned(data, size) })
}

/// Removes every value of a header.
pub fn remove_header(map_type: u32, name: &str) -> Result<(), HostStatus> {
    // SAFETY: `name` outlives the call.
    check(unsafe { proxy_remove_header_map_value(map_type, name.as_ptr(), name.len()) })
}

/// Answers the current request with a local reply.
pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostStatus> {
    let map = encode_pairs(headers);
    // SAFETY: `map` and `body` outlive the call.
    check(unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            if body.is_empty() {
                null()
            } else {
                body.as_ptr()
            },
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    })
}

/// The proxy-wasm map serialisation: a count, (name length, value length) per pair, then each
/// name and value followed by a NUL.
fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&len32(pairs.len()));
    for (n, v) in pairs {
        out.extend_from_slice(&len32(n.len()));
        out.extend_from_slice(&len32(v.len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}
