//! The token validator on structured input: the fuzzer writes the header JSON, the payload JSON
//! and the signature bytes (separated by `\n`, the signature part optional), which are base64url
//! encoded into a compact token, so mutations reach the JSON and claim checks instead of dying
//! in base64 decoding.
#![no_main]

use aml_auth_filter::token::jwt::verify;
use aml_auth_filter_fuzz::{keyset, policy, NOW};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let signature = parts.next().unwrap_or(&[0u8; 64]);
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    );
    let _ = verify(&token, keyset(), &policy(), NOW);
});
