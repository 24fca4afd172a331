//! Key sets combined key by key: each document parsed on its own, with its own cap and its own
//! dropped keys, then layered.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use serde_json::json;

use super::testkit::*;
use super::*;

fn parsed(keys: &[serde_json::Value]) -> KeySet {
    parse_jwks(&jwks_body(keys)).unwrap().keys
}

#[test]
fn a_large_remote_set_never_hides_local_keys() {
    let mut remote = vec![rsa_jwk(Some("remote-good"), None)];
    remote.extend((0..299).map(|i| json!({"kty": "oct", "kid": format!("oct-{i}"), "k": "AAAA"})));
    let remote = parse_jwks(&jwks_body(&remote)).unwrap();
    assert_eq!(remote.keys.len(), 1);
    let local = parsed(&[
        ec_jwk(Some("local-ec"), None),
        ed_jwk(Some("local-ed"), None),
    ]);
    let merged = KeySet::merged(&remote.keys, &local);
    assert!(merged.get("remote-good").is_some());
    assert!(merged.get("local-ec").unwrap().admits(Alg::Es256));
    assert!(merged.get("local-ed").unwrap().admits(Alg::EdDsa));
    assert_eq!(merged.len(), 3);
}

#[test]
fn a_remote_key_with_a_duplicate_member_stays_dropped_beside_local_keys() {
    let good = rsa_jwk(Some("good"), None).to_string();
    let ec = ec_jwk(None, None);
    let dup = format!(
        r#"{{"kty":"EC","crv":"P-256","x":{},"y":{},"kid":"dup","use":"enc","use":"sig"}}"#,
        ec["x"], ec["y"]
    );
    let body = format!(r#"{{"keys":[{good},{dup}]}}"#);
    let remote = parse_jwks(body.as_bytes()).unwrap();
    assert_eq!(remote.dropped[0].reason, DropReason::DuplicateMember);
    let local = parsed(&[ed_jwk(Some("local"), None)]);
    for set in [remote.keys.clone(), KeySet::merged(&remote.keys, &local)] {
        assert!(set.get("dup").is_none());
        assert!(set.get("good").is_some());
    }
}

#[test]
fn a_kid_in_both_resolves_to_the_first_set() {
    let remote = parsed(&[ec_jwk(Some("same"), None), rsa_jwk(None, None)]);
    let local = parsed(&[rsa_jwk(Some("same"), None), ed_jwk(None, None)]);
    let merged = KeySet::merged(&remote, &local);
    assert!(merged.get("same").unwrap().admits(Alg::Es256));
    assert!(!merged.get("same").unwrap().admits(Alg::Rs256));
    assert_eq!(merged.len(), 3, "the shadowed local key is not listed");
    assert_eq!(merged.without_kid().count(), 2);
    let kids: Vec<Option<&str>> = merged.iter().map(Jwk::kid).collect();
    assert_eq!(kids, vec![Some("same"), None, None]);
    assert!(!merged.is_empty());
}

#[test]
fn each_set_keeps_its_own_cap() {
    let many = |prefix: &str| -> Vec<serde_json::Value> {
        (0..MAX_KEYS)
            .map(|i| ed_jwk(Some(&format!("{prefix}-{i}")), None))
            .collect()
    };
    let remote = parsed(&many("r"));
    let local = parsed(&many("l"));
    let merged = KeySet::merged(&remote, &local);
    assert_eq!(merged.len(), 2 * MAX_KEYS);
    assert!(merged.get(&format!("l-{}", MAX_KEYS - 1)).is_some());
}
