//! EC JWK coordinates without their leading zero bytes, end to end: google/jwt_verify_lib's own
//! ES512 test key has a 65-byte `y`, and native jwt_authn (BoringSSL) reads it as the same point.
//! A key like it, derived here from the first scalar whose public `y` starts with a zero byte,
//! verifies its ES512 tokens in Envoy (fetched from a JWKS server); the same key with a zero byte
//! added in front is dropped.

mod common;

use aml_auth_filter::signing::{jwks, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

/// A P-521 key whose public `y` has a leading zero byte, with its (x, y).
fn key_with_short_y() -> (p521::ecdsa::SigningKey, Vec<u8>, Vec<u8>) {
    (1u8..)
        .find_map(|k| {
            let mut scalar = [0u8; 66];
            scalar[65] = k;
            let sk = p521::ecdsa::SigningKey::from_slice(&scalar).unwrap();
            let p = p521::ecdsa::VerifyingKey::from(&sk).to_encoded_point(false);
            let (x, y) = (p.x().unwrap().to_vec(), p.y().unwrap().to_vec());
            (y[0] == 0).then_some((sk, x, y))
        })
        .unwrap()
}

fn ec_jwk(kid: &str, x: &[u8], y: &[u8]) -> Value {
    json!({
        "kty": "EC", "crv": "P-521", "kid": kid, "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    })
}

#[test]
fn an_es512_key_with_a_65_byte_y_verifies_its_tokens() {
    let (sk, x, y) = key_with_short_y();
    let y65 = &y[1..];
    assert_eq!(y65.len(), 65);
    let y67 = [&[0u8][..], &y].concat();
    let upstream = Server::upstream();
    let server = jwks_server(&jwks(vec![
        ec_jwk("short", &x, y65),
        ec_jwk("long", &x, &y67),
        signing_key("p256-a.pem").public_jwk("p256-a", Some("ES256")),
    ]));
    let envoy = Envoy::start(&filter_with_clusters(
        &token_config(remote_source("jwks", 600, 86_400)),
        &upstream,
        &[("jwks", &server)],
    ));
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no JWKS fetch succeeded:\n{}",
        envoy.log_tail(30)
    );
    let vm_created = envoy.vm_created();
    let other = signing_key("p256-a.pem")
        .sign("ES256", Some("p256-a"), &good_claims())
        .unwrap();
    assert_eq!(get_bearer(envoy.main(), "/score", &other).status, 200);
    let signer = SigningKey::P521(sk);
    let short = signer.sign("ES512", Some("short"), &good_claims()).unwrap();
    let resp = get_bearer(envoy.main(), "/score", &short);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(upstream.count(), 2);
    let long = signer.sign("ES512", Some("long"), &good_claims()).unwrap();
    let resp = get_bearer(envoy.main(), "/score", &long);
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert_eq!(resp.json()["reason"], "unknown_kid", "{}", resp.text());
    assert_eq!(upstream.count(), 2);
    envoy.assert_no_vm_restart(vm_created);
}
