//! A bounded cache of verified tokens, so a token presented again skips parsing and the signature.
//!
//! - Entries are found by SipHash-2-4 of the token under a key drawn once per cache (per VM), so a
//!   client cannot aim collisions at the map; a hit also compares the whole token with the one
//!   stored, so even a collision never returns another token's verification. The map then hashes
//!   the already-keyed 64-bit digest with a trivial hasher.
//! - Only tokens that passed [`crate::token::jwt::verify`] are stored. A hit still goes through
//!   [`VerifiedToken::check_policy`] (issuer, time, audience) under the caller's policy, so one
//!   entry serves every service and expiry is exact; claim headers are rendered by the caller.
//! - Entries belong to one key set: [`TokenCache::use_key_set`] with another generation empties
//!   the cache, so a removed or rotated key never keeps a token alive.
//! - An entry is dropped at the token's `exp` (tokens without `exp` are not cached), and the
//!   cache holds at most its capacity: the oldest insertion is evicted first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::token::jwt::VerifiedToken;

/// Entries kept by default: far more than the distinct tokens one worker sees within a token
/// lifetime from a few hundred clients, about 2 KB each (the token and its claims).
pub const DEFAULT_CAPACITY: usize = 2048;

/// SipHash-2-4 (Aumasson and Bernstein) of `data` under the 128-bit key (`k0`, `k1`).
fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        let [mut v0, mut v1, mut v2, mut v3] = *v;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        *v = [v0, v1, v2, v3];
    }
    fn absorb(v: &mut [u64; 4], m: u64) {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    }
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut m = [0u8; 8];
        m.copy_from_slice(word);
        absorb(&mut v, u64::from_le_bytes(m));
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    for (slot, byte) in last.iter_mut().zip(tail) {
        *slot = *byte;
    }
    // The length byte: SipHash takes the input length modulo 256.
    last[7] = data.len() as u8;
    absorb(&mut v, u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Hashes a keyed digest by passing it through (it is already uniformly distributed).
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (8 * i);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry {
    /// The token itself: a hit must match it in full.
    raw: Box<str>,
    token: Rc<VerifiedToken>,
    exp: i64,
    seq: u64,
}

struct Inner {
    generation: Option<u64>,
    map: HashMap<u64, Entry, BuildHasherDefault<DigestHasher>>,
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
}

/// The cache. Interior mutability lets a shared reference travel in
/// [`crate::request::policy::TokenInputs`].
pub struct TokenCache {
    /// The SipHash key, drawn per VM.
    key: (u64, u64),
    capacity: usize,
    inner: RefCell<Inner>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens keyed under `secret` (random, per VM; its first 16
    /// bytes key SipHash, the rest is folded in so that every byte counts).
    pub fn new(secret: &[u8; 32], capacity: usize) -> Self {
        let mut words = [0u64; 4];
        for (word, bytes) in words.iter_mut().zip(secret.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *word = u64::from_le_bytes(b);
        }
        let [a, b, c, d] = words;
        TokenCache {
            key: (a ^ c.rotate_left(29), b ^ d.rotate_left(31)),
            capacity,
            inner: RefCell::new(Inner {
                generation: None,
                map: HashMap::default(),
                order: VecDeque::new(),
                next_seq: 0,
            }),
        }
    }

    /// Declares the key set that verifies tokens from now on; a different generation than the
    /// last one empties the cache.
    pub fn use_key_set(&self, generation: u64) {
        let mut inner = self.inner.borrow_mut();
        if inner.generation != Some(generation) {
            inner.generation = Some(generation);
            inner.map.clear();
            inner.order.clear();
        }
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.inner.borrow().map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn digest(&self, token: &str) -> u64 {
        siphash24(self.key.0, self.key.1, token.as_bytes())
    }

    /// The verified token cached for `token`, unless absent or expired at `now` (an expired
    /// entry is dropped). The caller must still run [`VerifiedToken::check_policy`].
    pub fn get(&self, token: &str, now: i64) -> Option<Rc<VerifiedToken>> {
        let key = self.digest(token);
        let mut inner = self.inner.borrow_mut();
        match inner.map.get(&key) {
            Some(entry) if *entry.raw != *token => None,
            Some(entry) if now < entry.exp => Some(Rc::clone(&entry.token)),
            Some(_) => {
                inner.map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Caches a token that [`crate::token::jwt::verify`] accepted; tokens without `exp` are not cached.
    /// A token whose digest collides with a cached one replaces it.
    pub fn insert(&self, token: &str, verified: Rc<VerifiedToken>) {
        let Some(exp) = verified.exp() else {
            return;
        };
        if self.capacity == 0 {
            return;
        }
        let key = self.digest(token);
        let mut inner = self.inner.borrow_mut();
        while inner.order.len() >= self.capacity {
            let Some((old, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.map.get(&old).is_some_and(|e| e.seq == seq) {
                inner.map.remove(&old);
            }
        }
        let seq = inner.next_seq;
        inner.next_seq = seq.wrapping_add(1);
        inner.order.push_back((key, seq));
        inner.map.insert(
            key,
            Entry {
                raw: token.into(),
                token: verified,
                exp,
                seq,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::jwks::testkit::{mint, standard_keyset};
    use crate::token::jwt::{self, TokenPolicy};
    use serde_json::json;

    const ISS: &str = "https://login.example.com/tenant/v2.0";
    const NOW: i64 = 1_700_000_000;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            clock_skew_seconds: 0,
            require_expiration: false,
            ..TokenPolicy::new(vec![ISS.to_owned()])
        }
    }

    fn verified(exp: Option<i64>, n: usize) -> (String, Rc<VerifiedToken>) {
        let keys = standard_keyset();
        let mut claims = json!({"iss": ISS, "sub": format!("u{n}"), "iat": NOW - 10});
        if let Some(exp) = exp {
            claims["exp"] = json!(exp);
        }
        let token = mint(&json!({"alg": "EdDSA", "kid": "ed"}), &claims);
        let v = jwt::verify(&token, &keys, &policy(), NOW).unwrap();
        (token, Rc::new(v))
    }

    #[test]
    fn hit_until_exp_then_dropped() {
        let cache = TokenCache::new(&[1; 32], 8);
        cache.use_key_set(1);
        let (token, v) = verified(Some(NOW + 100), 0);
        assert!(cache.get(&token, NOW).is_none());
        cache.insert(&token, v);
        assert!(cache.get(&token, NOW).is_some());
        assert!(cache.get(&token, NOW + 99).is_some());
        assert!(cache.get(&token, NOW + 100).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn tokens_without_exp_are_not_cached() {
        let cache = TokenCache::new(&[1; 32], 8);
        let (token, v) = verified(None, 0);
        cache.insert(&token, v);
        assert!(cache.get(&token, NOW).is_none());
    }

    #[test]
    fn another_key_set_empties_the_cache() {
        let cache = TokenCache::new(&[1; 32], 8);
        cache.use_key_set(1);
        let (token, v) = verified(Some(NOW + 100), 0);
        cache.insert(&token, v);
        cache.use_key_set(1);
        assert!(cache.get(&token, NOW).is_some());
        cache.use_key_set(2);
        assert!(cache.get(&token, NOW).is_none());
    }

    #[test]
    fn oldest_insertion_is_evicted_and_size_stays_bounded() {
        let cache = TokenCache::new(&[1; 32], 3);
        let tokens: Vec<_> = (0..5).map(|n| verified(Some(NOW + 100), n)).collect();
        for (t, v) in &tokens {
            cache.insert(t, Rc::clone(v));
        }
        assert_eq!(cache.len(), 3);
        let present: Vec<bool> = tokens
            .iter()
            .map(|(t, _)| cache.get(t, NOW).is_some())
            .collect();
        assert_eq!(present, [false, false, true, true, true]);
        // Reinserting and expiring entries never grows the bookkeeping past the capacity.
        for _ in 0..10 {
            for (t, v) in &tokens {
                cache.insert(t, Rc::clone(v));
                let _ = cache.get(t, NOW + 1_000);
            }
        }
        assert!(cache.inner.borrow().order.len() <= 3);
        assert!(cache.len() <= 3);
    }

    #[test]
    fn different_secrets_give_different_keys() {
        let a = TokenCache::new(&[1; 32], 1);
        let b = TokenCache::new(&[2; 32], 1);
        let mut c_secret = [1; 32];
        c_secret[31] = 7;
        let c = TokenCache::new(&c_secret, 1);
        assert_ne!(a.digest("x.y.z"), b.digest("x.y.z"));
        assert_ne!(a.digest("x.y.z"), c.digest("x.y.z"));
        assert_eq!(a.digest("x.y.z"), a.digest("x.y.z"));
        assert_ne!(a.digest("x.y.z"), a.digest("x.y.zz"));
    }

    #[test]
    #[allow(deprecated)]
    fn siphash_is_siphash_2_4() {
        // The reference vector of the SipHash paper's appendix: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &message), 0xa129_ca61_49be_45e5);
        // And std's SipHash-2-4 for every length up to a few blocks and a long token.
        let data: Vec<u8> = (0..700u32).map(|i| (i * 131 % 251) as u8).collect();
        for len in (0..70).chain([645, 700]) {
            let mut std_hasher = std::hash::SipHasher::new_with_keys(k0 ^ 0x55, k1);
            std_hasher.write(&data[..len]);
            assert_eq!(
                siphash24(k0 ^ 0x55, k1, &data[..len]),
                std_hasher.finish(),
                "length {len}"
            );
        }
    }

    #[test]
    fn a_colliding_digest_never_returns_another_tokens_entry() {
        let cache = TokenCache::new(&[3; 32], 8);
        let (stored, v) = verified(Some(NOW + 100), 0);
        let (other, _) = verified(Some(NOW + 100), 1);
        // Plant `stored`'s entry under `other`'s digest: what a collision would look like.
        cache.inner.borrow_mut().map.insert(
            cache.digest(&other),
            Entry {
                raw: stored.as_str().into(),
                token: Rc::clone(&v),
                exp: NOW + 100,
                seq: 0,
            },
        );
        assert!(cache.get(&other, NOW).is_none());
        // Inserting the colliding token replaces the entry; both then resolve to their own.
        let (_, w) = verified(Some(NOW + 100), 1);
        cache.insert(&other, Rc::clone(&w));
        assert!(Rc::ptr_eq(&cache.get(&other, NOW).unwrap(), &w));
        assert!(cache.get(&stored, NOW).is_none());
        cache.insert(&stored, Rc::clone(&v));
        assert!(Rc::ptr_eq(&cache.get(&stored, NOW).unwrap(), &v));
        assert!(Rc::ptr_eq(&cache.get(&other, NOW).unwrap(), &w));
    }

    #[test]
    fn a_hit_returns_the_inserted_verification_and_a_near_miss_does_not() {
        let cache = TokenCache::new(&[4; 32], 8);
        let (token, v) = verified(Some(NOW + 100), 0);
        cache.insert(&token, Rc::clone(&v));
        assert!(Rc::ptr_eq(&cache.get(&token, NOW).unwrap(), &v));
        let mut altered = token.clone();
        altered.pop();
        assert!(cache.get(&altered, NOW).is_none());
        altered.push('A');
        if altered != token {
            assert!(cache.get(&altered, NOW).is_none());
        }
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = TokenCache::new(&[1; 32], 0);
        let (token, v) = verified(Some(NOW + 100), 0);
        cache.insert(&token, v);
        assert!(cache.is_empty());
    }
}
