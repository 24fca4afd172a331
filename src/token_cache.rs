//! A bounded cache of verified tokens, so a token presented again skips parsing and the signature.
//!
//! - Entries are keyed by HMAC-SHA256 of the token under a key drawn once per cache (per VM): the
//!   cache holds no token, and a client cannot aim collisions at the map, which therefore hashes
//!   the already-uniform key with a trivial hasher.
//! - Only tokens that passed [`crate::jwt::verify`] are stored. A hit still goes through
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

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::jwt::VerifiedToken;

/// Entries kept by default: far more than the distinct tokens one worker sees within a token
/// lifetime from a few hundred clients, about 1 KB each.
pub const DEFAULT_CAPACITY: usize = 2048;

type Digest = [u8; 32];

/// Hashes an HMAC output by taking its first eight bytes (they are uniformly distributed).
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (8 * i);
        }
    }
}

struct Entry {
    token: Rc<VerifiedToken>,
    exp: i64,
    seq: u64,
}

struct Inner {
    generation: Option<u64>,
    map: HashMap<Digest, Entry, BuildHasherDefault<PrefixHasher>>,
    order: VecDeque<(Digest, u64)>,
    next_seq: u64,
}

/// The cache. Interior mutability lets a shared reference travel in
/// [`crate::policy::TokenInputs`].
pub struct TokenCache {
    /// The keyed MAC; `None` only if HMAC refused the key, which it never does: the cache then
    /// stays empty.
    mac: Option<Hmac<Sha256>>,
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
    /// A cache of at most `capacity` tokens keyed under `secret` (random, per VM).
    pub fn new(secret: &[u8; 32], capacity: usize) -> Self {
        TokenCache {
            mac: Hmac::<Sha256>::new_from_slice(secret).ok(),
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

    fn digest(&self, token: &str) -> Option<Digest> {
        let mut mac = self.mac.clone()?;
        mac.update(token.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// The verified token cached for `token`, unless absent or expired at `now` (an expired
    /// entry is dropped). The caller must still run [`VerifiedToken::check_policy`].
    pub fn get(&self, token: &str, now: i64) -> Option<Rc<VerifiedToken>> {
        let key = self.digest(token)?;
        let mut inner = self.inner.borrow_mut();
        match inner.map.get(&key) {
            Some(entry) if now < entry.exp => Some(Rc::clone(&entry.token)),
            Some(_) => {
                inner.map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Caches a token that [`crate::jwt::verify`] accepted; tokens without `exp` are not cached.
    pub fn insert(&self, token: &str, verified: Rc<VerifiedToken>) {
        let Some(exp) = verified.exp() else {
            return;
        };
        if self.capacity == 0 {
            return;
        }
        let Some(key) = self.digest(token) else {
            return;
        };
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
    use crate::jwks::testkit::{mint, standard_keyset};
    use crate::jwt::{self, TokenPolicy};
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
        assert!(a.digest("x.y.z").is_some());
        assert_ne!(a.digest("x.y.z"), b.digest("x.y.z"));
        assert_eq!(a.digest("x.y.z"), a.digest("x.y.z"));
        assert_ne!(a.digest("x.y.z"), a.digest("x.y.zz"));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = TokenCache::new(&[1; 32], 0);
        let (token, v) = verified(Some(NOW + 100), 0);
        cache.insert(&token, v);
        assert!(cache.is_empty());
    }
}
