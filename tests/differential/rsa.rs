//! RSA (RS256/384/512 PKCS#1 v1.5, PS256/384/512 PSS) against the `rsa` crate.
//!
//! Encoded messages are built here byte by byte and raised to the private exponent (CRT), so
//! each structural defect is exactly the one named; the e = 3 forgeries need no private key:
//! their signature is a (modular) cube root chosen so that s^3, below n, has the forged shape.

use aml_auth_filter::token::jwks::Alg;
use num_bigint::BigUint;
use rand_chacha::rand_core::RngCore;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use serde_json::json;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::{b64, be, big, random_bytes, rng, OurKey, Tally};

const ALGS: [&str; 6] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

/// DER DigestInfo prefixes (with the NULL parameters) of SHA-256, SHA-384, SHA-512.
fn digest_info(hash: &str) -> Vec<u8> {
    let (oid_last, len) = match hash {
        "256" => (1u8, 32u8),
        "384" => (2, 48),
        _ => (3, 64),
    };
    vec![
        0x30,
        17 + len,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        oid_last,
        0x05,
        0x00,
        0x04,
        len,
    ]
}

fn digest(hash: &str, data: &[u8]) -> Vec<u8> {
    match hash {
        "256" => Sha256::digest(data).to_vec(),
        "384" => Sha384::digest(data).to_vec(),
        _ => Sha512::digest(data).to_vec(),
    }
}

fn to_big(x: &rsa::BigUint) -> BigUint {
    big(&x.to_bytes_be())
}

/// A key pair: the public parts both sides read, the private parts for raw signatures.
struct Key {
    private: rsa::RsaPrivateKey,
    n: BigUint,
    e: BigUint,
    /// Bytes of n.
    k: usize,
    ours: OurKey,
}

impl Key {
    fn new(private: rsa::RsaPrivateKey) -> Key {
        let n = to_big(private.n());
        let e = to_big(private.e());
        let ours = OurKey::parse(
            json!({"kty": "RSA", "n": b64(&n.to_bytes_be()), "e": b64(&e.to_bytes_be())}),
        );
        assert!(ours.accepted());
        Key {
            k: n.to_bytes_be().len(),
            private,
            n,
            e,
            ours,
        }
    }

    /// em^d mod n by CRT.
    fn raw_sign(&self, em: &[u8]) -> Vec<u8> {
        let primes = self.private.primes();
        let (p, q) = (to_big(&primes[0]), to_big(&primes[1]));
        let d = to_big(self.private.d());
        let m = big(em);
        let m1 = m.modpow(&(&d % (&p - 1u32)), &p);
        let m2 = m.modpow(&(&d % (&q - 1u32)), &q);
        let h = (q.modinv(&p).unwrap() * ((&m1 + &p - (&m2 % &p)) % &p)) % &p;
        be(&(m2 + h * q), self.k)
    }

    fn reference(&self, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(pk) = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&self.n.to_bytes_be()),
            rsa::BigUint::from_bytes_be(&self.e.to_bytes_be()),
        ) else {
            return false;
        };
        let hashed = digest(&alg[2..], msg);
        let scheme_ok = match alg {
            "RS256" => pk.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &hashed, sig),
            "RS384" => pk.verify(rsa::Pkcs1v15Sign::new::<Sha384>(), &hashed, sig),
            "RS512" => pk.verify(rsa::Pkcs1v15Sign::new::<Sha512>(), &hashed, sig),
            "PS256" => pk.verify(rsa::Pss::new::<Sha256>(), &hashed, sig),
            "PS384" => pk.verify(rsa::Pss::new::<Sha384>(), &hashed, sig),
            _ => pk.verify(rsa::Pss::new::<Sha512>(), &hashed, sig),
        };
        scheme_ok.is_ok()
    }

    fn judge(&self, t: &mut Tally, class: &str, alg: &str, msg: &[u8], sig: &[u8]) -> (bool, bool) {
        let ours = self.ours.verify(Alg::from_name(alg).unwrap(), msg, sig);
        let reference = self.reference(alg, msg, sig);
        t.check(class, &alg, ours, reference, None);
        (ours, reference)
    }

    /// The reference crate's signature (PSS with a seeded salt).
    fn sign(&self, alg: &str, msg: &[u8], g: &mut rand_chacha::ChaCha8Rng) -> Vec<u8> {
        let key = self.private.clone();
        match alg {
            "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
                .sign(msg)
                .to_vec(),
            "RS384" => rsa::pkcs1v15::SigningKey::<Sha384>::new(key)
                .sign(msg)
                .to_vec(),
            "RS512" => rsa::pkcs1v15::SigningKey::<Sha512>::new(key)
                .sign(msg)
                .to_vec(),
            "PS256" => rsa::pss::SigningKey::<Sha256>::new(key)
                .sign_with_rng(g, msg)
                .to_vec(),
            "PS384" => rsa::pss::SigningKey::<Sha384>::new(key)
                .sign_with_rng(g, msg)
                .to_vec(),
            _ => rsa::pss::SigningKey::<Sha512>::new(key)
                .sign_with_rng(g, msg)
                .to_vec(),
        }
    }
}

fn pem_key(name: &str) -> Key {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    Key::new(rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap())
}

/// Seeded random messages under every algorithm, signed by the reference: valid, a flipped
/// bit, another message, the same signature under the other scheme and another hash.
fn random(t: &mut Tally, key: &Key, g: &mut rand_chacha::ChaCha8Rng) {
    for alg in ALGS {
        for _ in 0..2 {
            let len = (g.next_u32() % 300) as usize;
            let msg = random_bytes(g, len);
            let sig = key.sign(alg, &msg, g);
            let (o, r) = key.judge(t, "random", alg, &msg, &sig);
            assert!(o && r, "{alg}");
            let mut bad = sig.clone();
            let bit = g.next_u32() as usize % (8 * bad.len());
            bad[bit / 8] ^= 1 << (bit % 8);
            key.judge(t, "random: flipped bit", alg, &msg, &bad);
            key.judge(
                t,
                "random: other message",
                alg,
                &[&msg[..], b"!"].concat(),
                &sig,
            );
            for other in ALGS.iter().filter(|a| **a != alg) {
                key.judge(t, "random: another algorithm", other, &msg, &sig);
            }
        }
    }
}

/// PKCS#1 v1.5 encodings with one defect each (built raw, signed with the private key), and
/// signature values out of range or of the wrong length.
fn pkcs1_structure(t: &mut Tally, key: &Key, g: &mut rand_chacha::ChaCha8Rng) {
    let em = |t_part: &[u8], block: u8| {
        let ps = key.k - 3 - t_part.len();
        [vec![0, block], vec![0xff; ps], vec![0], t_part.to_vec()].concat()
    };
    let msg = b"pkcs1 structure";
    for hash in ["256", "384", "512"] {
        let alg = format!("RS{hash}");
        let h = digest(hash, msg);
        let di = [digest_info(hash), h.clone()].concat();
        let mut no_null = digest_info(hash);
        no_null.drain(15..17);
        no_null[1] -= 2;
        no_null[3] -= 2;
        let other_hash = if hash == "256" { "384" } else { "256" };
        let mut zero_in_ps = em(&di, 1);
        zero_in_ps[5] = 0;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("well formed", em(&di, 1)),
            (
                "DigestInfo without NULL parameters",
                em(&[no_null, h.clone()].concat(), 1),
            ),
            ("block type 2", em(&di, 2)),
            ("zero byte inside the padding", zero_in_ps),
            ("bare digest, no DigestInfo", em(&h, 1)),
            (
                "another hash's DigestInfo",
                em(
                    &[digest_info(other_hash), digest(other_hash, msg)].concat(),
                    1,
                ),
            ),
        ];
        for (name, encoded) in cases {
            let sig = key.raw_sign(&encoded);
            let (o, r) = key.judge(t, &format!("pkcs1: {name}"), &alg, msg, &sig);
            if name == "well formed" {
                let back = big(&sig).modpow(&key.e, &key.n);
                assert!(
                    o && r,
                    "{alg} ours {o} reference {r} {}",
                    be(&back, key.k) == encoded
                );
            }
        }
    }
    let n = &key.n;
    for (name, v) in [
        ("0", BigUint::ZERO),
        ("1", BigUint::from(1u32)),
        ("n - 1", n - 1u32),
        ("n", n.clone()),
        ("n + 1", n + 1u32),
    ] {
        key.judge(
            t,
            &format!("signature value {name}"),
            "RS256",
            msg,
            &be(&v, key.k),
        );
    }
    key.judge(
        t,
        "signature value all ones",
        "RS256",
        msg,
        &vec![0xff; key.k],
    );
    for alg in ["RS256", "PS384", "PS512"] {
        let (msg, sig) = (0u32..)
            .map(|i| {
                let msg = format!("short {i}").into_bytes();
                let sig = key.sign(alg, &msg, g);
                (msg, sig)
            })
            .find(|(_, sig)| sig[0] == 0)
            .unwrap();
        let (o, r) = key.judge(t, "signature with a leading zero byte", alg, &msg, &sig);
        assert!(o && r);
        key.judge(
            t,
            "signature one byte short (leading zero dropped)",
            alg,
            &msg,
            &sig[1..],
        );
        key.judge(
            t,
            "signature one byte long (zero byte prepended)",
            alg,
            &msg,
            &[&[0u8][..], &sig].concat(),
        );
    }
}

/// Cube root mod 2^m of an odd c (cubing permutes the odd residues mod 2^m).
fn cbrt_mod_pow2(c: &BigUint, m: usize) -> BigUint {
    let modulus = BigUint::from(1u32) << m;
    let order = BigUint::from(1u32) << (m - 2);
    let inv3 = BigUint::from(3u32).modinv(&order).unwrap();
    c.modpow(&inv3, &modulus)
}

/// s whose cube (over the integers) begins with the bytes `high` and ends with the bytes `low`
/// (on k bytes), the middle being whatever the cube gives: high by a real cube root, low by a
/// cube root mod 2^(8·|low|), which only moves bits far below `high`; `None` when no cube has
/// that shape near the root (a high part over about a third of k: SHA-512 after the hash).
fn forge(k: usize, high: &[u8], low: &[u8]) -> Option<Vec<u8>> {
    let shift = 8 * (k - high.len());
    let target = (big(high) << shift) + (BigUint::from(1u32) << (shift - 1));
    let mut s = target.cbrt();
    if !low.is_empty() {
        let m = 8 * low.len();
        s = ((s >> m) << m) + cbrt_mod_pow2(&big(low), m);
    }
    let cube = &s * &s * &s;
    let bytes = be(&cube, k);
    (bytes.starts_with(high) && bytes.ends_with(low)).then(|| be(&s, k))
}

/// The e = 3 PKCS#1 v1.5 forgeries (Bleichenbacher 2006 and its variants), under a real 2048-bit
/// e = 3 key (whose own signatures both accept): the DigestInfo and hash right after a short
/// padding with garbage after the hash (for 1 and 8 0xff bytes); garbage in the padding with the
/// hash at the very end (00 01 garbage 00 DigestInfo hash); garbage inside the DigestInfo's
/// parameters (a long-form NULL holding 188 bytes, BERserk), hash at the end. Each cube is
/// checked to have its shape before both verifiers see it (SHA-512 right after a 1- or 8-byte
/// padding is over a third of 2048 bits: no such cube exists, that shape is skipped, as is
/// the parameters one, whose 66-byte low part disturbs the high part at this size).
fn e3_forgeries(t: &mut Tally, key: &Key, g: &mut rand_chacha::ChaCha8Rng) {
    for alg in ["RS256", "RS384", "RS512"] {
        let msg = b"e = 3";
        let sig = key.sign(alg, msg, g);
        let (o, r) = key.judge(t, "e = 3: genuine signature", alg, msg, &sig);
        assert!(o && r);
        let hash = &alg[2..];
        let (msg, h) = (0u32..)
            .map(|i| {
                let m = format!("forge {i}").into_bytes();
                let h = digest(hash, &m);
                (m, h)
            })
            .find(|(_, h)| h[h.len() - 1] & 1 == 1)
            .unwrap();
        let di = [digest_info(hash), h.clone()].concat();
        for ffs in [1usize, 8] {
            let high = [vec![0u8, 1], vec![0xff; ffs], vec![0], di.clone()].concat();
            let Some(sig) = forge(key.k, &high, &[]) else {
                assert_eq!(alg, "RS512", "forgeable at 2048 bits");
                continue;
            };
            key.judge(t, "e = 3 forgery: garbage after the hash", alg, &msg, &sig);
        }
        let sig = forge(key.k, &[0, 1], &[vec![0u8], di.clone()].concat()).unwrap();
        key.judge(t, "e = 3 forgery: garbage in the padding", alg, &msg, &sig);
        let info = digest_info(hash);
        let hlen = h.len();
        let garbage = key.k - 11 - 4 - 4 - 11 - 4 - 2 - hlen;
        let alg_len = 11 + 4 + garbage;
        let di_len = 4 + alg_len + 2 + hlen;
        let be16 = |v: usize| [(v >> 8) as u8, v as u8];
        let high = [
            vec![0u8, 1],
            vec![0xff; 8],
            vec![0, 0x30, 0x82],
            be16(di_len).to_vec(),
            vec![0x30, 0x82],
            be16(alg_len).to_vec(),
            info[4..15].to_vec(),
            vec![0x05, 0x82],
            be16(garbage).to_vec(),
        ]
        .concat();
        assert_eq!(high.len() + garbage + 2 + hlen, key.k);
        let Some(sig) = forge(key.k, &high, &[vec![0x04, hlen as u8], h.clone()].concat()) else {
            assert_eq!(alg, "RS512", "forgeable at 2048 bits");
            continue;
        };
        key.judge(
            t,
            "e = 3 forgery: garbage in the DigestInfo parameters",
            alg,
            &msg,
            &sig,
        );
    }
}

fn mgf1(hash: &str, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for counter in 0u32.. {
        if out.len() >= len {
            break;
        }
        out.extend(digest(hash, &[seed, &counter.to_be_bytes()].concat()));
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE with knobs for each defect.
struct Pss<'a> {
    hash: &'a str,
    salt_len: usize,
    mgf_hash: &'a str,
    m_hash: &'a str,
    trailer: u8,
    separator: u8,
    ps_byte: u8,
    top_bit: bool,
}

impl Pss<'_> {
    fn encode(&self, key: &Key, msg: &[u8], salt_seed: u8) -> Vec<u8> {
        let em_len = key.k;
        let h_len = digest(self.hash, b"").len();
        let m_hash = digest(self.m_hash, msg);
        let salt = vec![salt_seed; self.salt_len];
        let h = digest(self.hash, &[&[0u8; 8][..], &m_hash, &salt].concat());
        let ps_len = em_len - self.salt_len - h_len - 2;
        let mut ps = vec![0u8; ps_len];
        if let Some(b) = ps.last_mut() {
            *b = self.ps_byte;
        }
        let db = [ps, vec![self.separator], salt].concat();
        let mask = mgf1(self.mgf_hash, &h, db.len());
        let mut masked: Vec<u8> = db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
        masked[0] &= 0x7f;
        if self.top_bit {
            masked[0] |= 0x80;
        }
        [masked, h, vec![self.trailer]].concat()
    }
}

/// PSS encodings with one defect each, for SHA-256, SHA-384 and SHA-512 (built raw, signed with
/// the private key): salt lengths other than the hash length (0, h - 1, h + 1, the maximum),
/// trailer 0xbb, the top bit set, separator 0x02, a non-zero byte in PS, MGF1 over another
/// hash, the message digested with another hash.
fn pss_structure(t: &mut Tally, key: &Key) {
    let msg = b"pss structure";
    for hash in ["256", "384", "512"] {
        let alg = format!("PS{hash}");
        let h_len = digest(hash, b"").len();
        let other = if hash == "512" { "384" } else { "512" };
        let good = Pss {
            hash,
            salt_len: h_len,
            mgf_hash: hash,
            m_hash: hash,
            trailer: 0xbc,
            separator: 1,
            ps_byte: 0,
            top_bit: false,
        };
        let cases: Vec<(&str, Pss)> = vec![
            ("well formed", Pss { ..good }),
            (
                "salt 0",
                Pss {
                    salt_len: 0,
                    ..good
                },
            ),
            (
                "salt h - 1",
                Pss {
                    salt_len: h_len - 1,
                    ..good
                },
            ),
            (
                "salt h + 1",
                Pss {
                    salt_len: h_len + 1,
                    ..good
                },
            ),
            (
                "salt maximal",
                Pss {
                    salt_len: key.k - h_len - 2,
                    ..good
                },
            ),
            (
                "trailer 0xbb",
                Pss {
                    trailer: 0xbb,
                    ..good
                },
            ),
            (
                "top bit set",
                Pss {
                    top_bit: true,
                    ..good
                },
            ),
            (
                "separator 0x02",
                Pss {
                    separator: 2,
                    ..good
                },
            ),
            ("non-zero byte in PS", Pss { ps_byte: 7, ..good }),
            (
                "MGF1 over another hash",
                Pss {
                    mgf_hash: other,
                    ..good
                },
            ),
            (
                "message digested with another hash",
                Pss {
                    m_hash: other,
                    ..good
                },
            ),
        ];
        for (name, pss) in cases {
            if name == "salt maximal" && pss.salt_len + h_len + 2 > key.k {
                continue;
            }
            let sig = key.raw_sign(&pss.encode(key, msg, 0x5a));
            let (o, r) = key.judge(t, &format!("pss: {name}"), &alg, msg, &sig);
            if name == "well formed" {
                assert!(o && r, "{alg}");
            }
        }
    }
}

/// A 1024-bit key: the reference verifies its signatures, the JWKS parse drops it (key policy).
fn key_policy(t: &mut Tally) {
    let path = format!("{}/tests/data/rsa-1024.pem", env!("CARGO_MANIFEST_DIR"));
    let private =
        rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
    let n = to_big(private.n()).to_bytes_be();
    let e = to_big(private.e()).to_bytes_be();
    let ours = OurKey::parse(json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)}));
    assert!(!ours.accepted());
    let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(private.clone())
        .sign(b"weak")
        .to_vec();
    let reference = rsa::RsaPublicKey::from(&private)
        .verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"weak"),
            &sig,
        )
        .is_ok();
    let o = ours.verify(Alg::Rs256, b"weak", &sig);
    t.check(
        "key policy: 1024-bit modulus",
        &"RS256",
        o,
        reference,
        Some("rsa-key-policy"),
    );
}

pub fn run(t: &mut Tally) {
    let mut g = rng(200);
    key_policy(t);
    let a = pem_key("rsa-a.pem");
    random(t, &a, &mut g);
    pkcs1_structure(t, &a, &mut g);
    pss_structure(t, &a);
    let e3 = Key::new(
        rsa::RsaPrivateKey::new_with_exp(&mut g, 2048, &rsa::BigUint::from(3u32)).unwrap(),
    );
    e3_forgeries(t, &e3, &mut g);
}
