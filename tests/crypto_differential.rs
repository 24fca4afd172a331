//! The own verifiers (`crypto/src/`) against the reference crates in the tree (`p256`, `p384`,
//! `p521`, `rsa`, `ed25519-compact`), through the filter's public path: a JWK read by
//! `parse_jwks`, then `verify_signature`. Seeded random cases (the same on every run) and the
//! crafted classes that reach the verifiers' rare branches (each generator's doc says how).
//! Ours never accepts what the reference refuses; it refuses what the reference accepts only
//! in the by-design classes of `differential::BY_DESIGN`. `--nocapture` prints the counts.

mod differential;

use differential::Tally;

#[test]
fn ecdsa_agrees_with_the_rustcrypto_curves() {
    let mut t = Tally::default();
    differential::ecdsa::run(&mut t);
    t.report("ECDSA");
    assert!(t.by_design.is_empty(), "ECDSA has no by-design refusal");
}

#[test]
fn ed25519_agrees_with_ed25519_compact() {
    let mut t = Tally::default();
    differential::ed25519::run(&mut t);
    t.report("Ed25519");
    assert!(
        t.by_design.contains_key("ed25519-cofactored-only"),
        "the cofactored-only class was reached"
    );
}

#[test]
fn rsa_agrees_with_the_rsa_crate() {
    let mut t = Tally::default();
    differential::rsa::run(&mut t);
    t.report("RSA");
}
