//! Authorization header extraction: `credential::parse_authorization` on the raw value, and
//! `credential::extract` on a header list (lines `name:value`), then the key-mode decision.
#![no_main]

use aml_auth_filter::request::credential::{extract, parse_authorization, MAX_KEY_CREDENTIAL_LEN};
use aml_auth_filter::keys::{is_token68, KeyDigest, KeyPair};
use aml_auth_filter::request::status::Denial;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_authorization(data, MAX_KEY_CREDENTIAL_LEN) {
        Ok(c) => {
            assert!(c.as_bytes().len() <= MAX_KEY_CREDENTIAL_LEN);
            assert!(is_token68(c.as_bytes()), "a credential is always token68");
            assert!(!c.as_bytes().is_empty());
        }
        Err(Denial::CredentialTooLong) => assert!(data.len() > MAX_KEY_CREDENTIAL_LEN),
        Err(_) => {}
    }
    let lines: Vec<(&str, &[u8])> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            Some((
                std::str::from_utf8(name).ok()?,
                value.get(1..).unwrap_or_default(),
            ))
        })
        .collect();
    if let Ok(c) = extract(lines.iter().copied(), MAX_KEY_CREDENTIAL_LEN) {
        let pair = KeyPair::new(Some(KeyDigest::of(b"fuzz-key")), None);
        if let Some(pair) = pair {
            let _ = pair.check(c.as_bytes());
        }
        let _ = c.looks_like_jwt();
    }
});
