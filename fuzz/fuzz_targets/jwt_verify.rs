//! The token parser and validator on raw credential text: `jwt::verify` (fixed keys, policy and
//! time), `jwt::verify_jws`, and the whole decision (`policy::decide`) in token mode. Any panic,
//! overflow (debug assertions are on) or out-of-bounds access is a crash.
#![no_main]

use aml_auth_filter::config::{AuthMode, ServicePolicy, TokenService};
use aml_auth_filter::token::jwt::{verify, verify_jws};
use aml_auth_filter::request::policy::{decide, Keys, TokenInputs, Verdict};
use aml_auth_filter::token::claims::RequiredClaim;
use aml_auth_filter_fuzz::{keyset, policy, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes, when the input starts with `#`, pick the clock: extreme times included.
    let (now, rest) = match data.split_first() {
        Some((b'#', tail)) if tail.len() >= 8 => {
            let (clock, token) = tail.split_at(8);
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(clock);
            (i64::from_le_bytes(bytes), token)
        }
        _ => (NOW, data),
    };
    if let Ok(token) = std::str::from_utf8(rest) {
        let keys = keyset();
        if let Ok(v) = verify(token, keys, &policy(), now) {
            // A verified token must have a kid-selected or kidless key that admits its alg.
            assert!(keys.iter().any(|k| k.admits(v.alg())));
            let _ = v.claim_header_value("sub");
            let _ = v.claim_header_value("aud");
        }
        let _ = verify_jws(token, keys);
    }
    let service = ServicePolicy {
        name: "fuzz".to_string(),
        mode: AuthMode::Token(TokenService {
            policy: policy(),
            claim_to_headers: Vec::new(),
            required_claims: vec![RequiredClaim {
                claim: "roles".to_string(),
                allowed: vec!["Model.Score".to_string()],
                name_id: 0,
            }],
            principal_claim: "sub".to_string(),
        }),
        forward_authorization: false,
        expose_principal: true,
    };
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(rest);
    let headers = [("authorization", value.as_slice())];
    let verdict = decide(
        &service,
        headers,
        TokenInputs {
            now: Some(now),
            keys: Keys::Ready(keyset()),
            cache: None,
        },
    );
    if let Verdict::Deny(d) = verdict {
        assert!(matches!(d.http_status(), 401 | 403));
    }
});
