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
//! - An entry is dropped at the token's `exp` (tokens without `exp` are not cached).
//! - The cache is bounded in bytes (each entry costs its token, its parsed claims and a fixed
//!   overhead) and in entries; when either bound is reached the least recently used entry is
//!   evicted first. Entries live in a slab linked in recency order, so a lookup, an insertion and
//!   an eviction are O(1), and a hit allocates nothing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::token::jwt::VerifiedToken;

/// Bytes of memory the cache may account for by default (per VM): about 1,350 typical Entra ID
/// tokens (1.8 KB of text, about 6 KB with their parsed claims), or about 100 tokens of 30 KB
/// carrying a thousand group ids.
pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Most entries, whatever their size: bounds the map and the slab for tiny tokens.
pub const MAX_ENTRIES: usize = 4096;

/// Bytes counted per entry besides the token and its claims: the slab node, the map slot, the
/// shared verification's header and the allocator's rounding.
pub const ENTRY_OVERHEAD_BYTES: usize = 160;

/// SipHash-2-4 (Aumasson and Bernstein) of `data` under the 128-bit key (`k0`, `k1`).
fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    #[inline(always)]
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
    #[inline(always)]
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

/// No slot: the end of the recency list.
const NIL: u32 = u32::MAX;

struct Node {
    /// The keyed digest the map files this entry under.
    digest: u64,
    /// The token itself: a hit must match it in full.
    raw: Box<str>,
    token: Rc<VerifiedToken>,
    exp: i64,
    /// Bytes this entry accounts for.
    cost: usize,
    /// Neighbour used more recently ([`NIL`] at the head).
    newer: u32,
    /// Neighbour used less recently ([`NIL`] at the tail).
    older: u32,
}

struct Inner {
    generation: Option<u64>,
    /// Digest to slot.
    map: HashMap<u64, u32, BuildHasherDefault<DigestHasher>>,
    slots: Vec<Option<Node>>,
    /// Slots emptied by removals, reused first.
    free: Vec<u32>,
    /// Most recently used slot.
    head: u32,
    /// Least recently used slot: evicted first.
    tail: u32,
    /// Sum of the entries' costs.
    bytes: usize,
}

impl Inner {
    fn node(&self, slot: u32) -> Option<&Node> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, slot: u32) -> Option<&mut Node> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    fn clear(&mut self) {
        self.map.clear();
        self.slots.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.bytes = 0;
    }

    /// Takes `slot` out of the recency list (it stays in its slot).
    fn unlink(&mut self, slot: u32) {
        let Some((newer, older)) = self.node(slot).map(|n| (n.newer, n.older)) else {
            return;
        };
        match self.node_mut(newer) {
            Some(n) => n.older = older,
            None => self.head = older,
        }
        match self.node_mut(older) {
            Some(n) => n.newer = newer,
            None => self.tail = newer,
        }
    }

    /// Puts `slot` at the head of the recency list.
    fn push_front(&mut self, slot: u32) {
        let old_head = self.head;
        if let Some(n) = self.node_mut(slot) {
            n.newer = NIL;
            n.older = old_head;
        }
        match self.node_mut(old_head) {
            Some(n) => n.newer = slot,
            None => self.tail = slot,
        }
        self.head = slot;
    }

    /// Marks `slot` as the most recently used.
    fn touch(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    /// Removes the entry in `slot` from the list, the map and the byte count.
    fn remove(&mut self, slot: u32) {
        self.unlink(slot);
        let Some(node) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        if self.map.get(&node.digest) == Some(&slot) {
            self.map.remove(&node.digest);
        }
        self.bytes = self.bytes.saturating_sub(node.cost);
        self.free.push(slot);
    }

    /// Stores `node` in a free slot and makes it the most recently used; `None` when no slot
    /// number is left (never below [`MAX_ENTRIES`]).
    fn add(&mut self, node: Node) -> Option<u32> {
        let (digest, cost) = (node.digest, node.cost);
        let slot = match self.free.pop() {
            Some(slot) => {
                let place = self.slots.get_mut(slot as usize)?;
                *place = Some(node);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).ok().filter(|s| *s != NIL)?;
                self.slots.push(Some(node));
                slot
            }
        };
        self.push_front(slot);
        self.map.insert(digest, slot);
        self.bytes = self.bytes.saturating_add(cost);
        Some(slot)
    }
}

/// The cache. Interior mutability lets a shared reference travel in
/// [`crate::request::policy::TokenInputs`].
pub struct TokenCache {
    /// The SipHash key, drawn per VM.
    key: (u64, u64),
    max_bytes: usize,
    max_entries: usize,
    inner: RefCell<Inner>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl TokenCache {
    /// A cache accounting for at most `max_bytes` (see [`TokenCache::cost`]) in at most
    /// `max_entries` tokens, keyed under `secret` (random, per VM; its first 16 bytes key
    /// SipHash, the rest is folded in so that every byte counts).
    pub fn new(secret: &[u8; 32], max_bytes: usize, max_entries: usize) -> Self {
        let mut words = [0u64; 4];
        for (word, bytes) in words.iter_mut().zip(secret.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *word = u64::from_le_bytes(b);
        }
        let [a, b, c, d] = words;
        TokenCache {
            key: (a ^ c.rotate_left(29), b ^ d.rotate_left(31)),
            max_bytes,
            max_entries: max_entries.min(NIL as usize),
            inner: RefCell::new(Inner {
                generation: None,
                map: HashMap::default(),
                slots: Vec::new(),
                free: Vec::new(),
                head: NIL,
                tail: NIL,
                bytes: 0,
            }),
        }
    }

    /// Declares the key set that verifies tokens from now on; a different generation than the
    /// last one empties the cache.
    pub fn use_key_set(&self, generation: u64) {
        let mut inner = self.inner.borrow_mut();
        if inner.generation != Some(generation) {
            inner.generation = Some(generation);
            inner.clear();
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

    /// Bytes the cached entries account for (at most the budget).
    pub fn bytes(&self) -> usize {
        self.inner.borrow().bytes
    }

    /// What caching `token` (verified as `verified`) costs against the byte budget: the token's
    /// text, its parsed claims and [`ENTRY_OVERHEAD_BYTES`].
    pub fn cost(token: &str, verified: &VerifiedToken) -> usize {
        token
            .len()
            .saturating_add(verified.heap_bytes())
            .saturating_add(ENTRY_OVERHEAD_BYTES)
    }

    fn digest(&self, token: &str) -> u64 {
        siphash24(self.key.0, self.key.1, token.as_bytes())
    }

    /// The verified token cached for `token`, unless absent or expired at `now` (an expired
    /// entry is dropped); a hit becomes the most recently used entry. The caller must still run
    /// [`VerifiedToken::check_policy`].
    pub fn get(&self, token: &str, now: i64) -> Option<Rc<VerifiedToken>> {
        let digest = self.digest(token);
        let mut inner = self.inner.borrow_mut();
        let slot = *inner.map.get(&digest)?;
        let (same, live) = {
            let node = inner.node(slot)?;
            (*node.raw == *token, now < node.exp)
        };
        if !same {
            return None;
        }
        if !live {
            inner.remove(slot);
            return None;
        }
        let hit = inner.node(slot).map(|n| Rc::clone(&n.token))?;
        inner.touch(slot);
        Some(hit)
    }

    /// Caches a token that [`crate::token::jwt::verify`] accepted, as the most recently used,
    /// evicting the least recently used entries until it fits. Tokens without `exp` are not
    /// cached, nor a token costing more than the whole budget (it would empty the cache). A
    /// token whose digest collides with a cached one replaces it.
    pub fn insert(&self, token: &str, verified: Rc<VerifiedToken>) {
        let Some(exp) = verified.exp() else {
            return;
        };
        let cost = Self::cost(token, &verified);
        if self.max_entries == 0 || cost > self.max_bytes {
            return;
        }
        let digest = self.digest(token);
        let mut inner = self.inner.borrow_mut();
        if let Some(slot) = inner.map.get(&digest).copied() {
            inner.remove(slot);
        }
        while inner.map.len() >= self.max_entries
            || inner.bytes.saturating_add(cost) > self.max_bytes
        {
            let tail = inner.tail;
            if tail == NIL {
                break;
            }
            inner.remove(tail);
        }
        let _ = inner.add(Node {
            digest,
            raw: token.into(),
            token: verified,
            exp,
            cost,
            newer: NIL,
            older: NIL,
        });
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
        let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 8);
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
        let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 8);
        let (token, v) = verified(None, 0);
        cache.insert(&token, v);
        assert!(cache.get(&token, NOW).is_none());
    }

    #[test]
    fn another_key_set_empties_the_cache() {
        let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 8);
        cache.use_key_set(1);
        let (token, v) = verified(Some(NOW + 100), 0);
        cache.insert(&token, v);
        cache.use_key_set(1);
        assert!(cache.get(&token, NOW).is_some());
        cache.use_key_set(2);
        assert!(cache.get(&token, NOW).is_none());
    }

    /// A verified token whose `pad` claim holds `pad` bytes (a large token: many groups, say).
    fn verified_padded(n: usize, pad: usize) -> (String, Rc<VerifiedToken>) {
        let keys = standard_keyset();
        let claims = json!({
            "iss": ISS, "sub": format!("u{n}"), "iat": NOW - 10, "exp": NOW + 100,
            "pad": "g".repeat(pad),
        });
        let token = mint(&json!({"alg": "EdDSA", "kid": "ed"}), &claims);
        let v = jwt::verify(&token, &keys, &policy(), NOW).unwrap();
        (token, Rc::new(v))
    }

    /// The cached tokens from the most to the least recently used, checking on the way that the
    /// list, the map and the byte count agree.
    fn order(cache: &TokenCache) -> Vec<String> {
        let inner = cache.inner.borrow();
        let (mut out, mut bytes, mut slot, mut newer) = (Vec::new(), 0, inner.head, NIL);
        while slot != NIL {
            let node = inner.node(slot).unwrap();
            assert_eq!(node.newer, newer);
            assert_eq!(inner.map.get(&node.digest), Some(&slot));
            out.push(node.raw.to_string());
            bytes += node.cost;
            (newer, slot) = (slot, node.older);
        }
        assert_eq!(inner.tail, newer);
        assert_eq!(out.len(), inner.map.len());
        assert_eq!(bytes, inner.bytes);
        out
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let tokens: Vec<_> = (0..6).map(|n| verified(Some(NOW + 100), n)).collect();
        // Operations on a cache of 3 entries (`i`: insert, `g`: get), then the tokens cached from
        // the most to the least recently used.
        let table: &[(&str, &[usize])] = &[
            ("i0 i1 i2", &[2, 1, 0]),
            ("i0 i1 i2 i3", &[3, 2, 1]),
            ("i0 i1 i2 g0 i3", &[3, 0, 2]),
            ("i0 i1 i2 g0 g1 i3", &[3, 1, 0]),
            ("i0 i1 i2 g2 g2 i3 i4", &[4, 3, 2]),
            ("i0 i1 i2 g0 i3 g0 i4 g0 i5", &[5, 0, 4]),
            ("i0 i1 i2 i1 i3", &[3, 1, 2]),
            ("i0 g1 i1 g5 i2 g0 i3", &[3, 0, 2]),
            ("i0", &[0]),
            ("", &[]),
        ];
        for (ops, want) in table {
            let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 3);
            for op in ops.split_whitespace() {
                let (t, v) = &tokens[op[1..].parse::<usize>().unwrap()];
                match &op[..1] {
                    "i" => cache.insert(t, Rc::clone(v)),
                    _ => drop(cache.get(t, NOW)),
                }
            }
            let want: Vec<String> = want.iter().map(|&n| tokens[n].0.clone()).collect();
            assert_eq!(order(&cache), want, "{ops}");
        }
    }

    #[test]
    fn large_tokens_are_accounted_by_their_size() {
        let (small, small_v) = verified(Some(NOW + 100), 0);
        let (large, large_v) = verified_padded(1, 22_000);
        assert!(large.len() > 29_000, "{}", large.len());
        let small_cost = TokenCache::cost(&small, &small_v);
        let large_cost = TokenCache::cost(&large, &large_v);
        // A large token costs its text and its parsed claims: more than twice the padding.
        assert!(large_cost > large.len() + 22_000, "{large_cost}");
        assert!(small_cost < 2_000, "{small_cost}");
        // Budget for the small token and two large ones (each one byte longer than `large`): the
        // third evicts the least recently used one, whatever the entry cap.
        let budget = small_cost + 2 * (large_cost + 1);
        let cache = TokenCache::new(&[1; 32], budget, 100);
        let larges: Vec<String> = (0..3).map(|n| format!("{large}{n}")).collect();
        cache.insert(&small, Rc::clone(&small_v));
        cache.insert(&larges[0], Rc::clone(&large_v));
        assert_eq!(cache.bytes(), small_cost + large_cost + 1);
        cache.insert(&larges[1], Rc::clone(&large_v));
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&small, NOW).is_some());
        cache.insert(&larges[2], Rc::clone(&large_v));
        assert_eq!(
            order(&cache),
            [larges[2].clone(), small.clone(), larges[1].clone()]
        );
        assert_eq!(cache.bytes(), budget);
        // A token costing more than the whole budget is not cached and evicts nothing.
        let tight = TokenCache::new(&[1; 32], large_cost - 1, 100);
        tight.insert(&small, Rc::clone(&small_v));
        tight.insert(&large, Rc::clone(&large_v));
        assert_eq!(order(&tight), [small.clone()]);
        // Emptied by a new key set: nothing left to account for.
        cache.use_key_set(7);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert!(order(&cache).is_empty());
    }

    #[test]
    fn a_hot_entry_survives_a_flood_of_distinct_large_tokens() {
        let (hot, hot_v) = verified(Some(NOW + 100), 0);
        let (large, large_v) = verified_padded(1, 22_000);
        let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, MAX_ENTRIES);
        cache.insert(&hot, Rc::clone(&hot_v));
        let mut peak = 0;
        for n in 0..2_100 {
            cache.insert(&format!("{large}{n}"), Rc::clone(&large_v));
            if n % 20 == 19 {
                assert!(
                    cache.get(&hot, NOW).is_some(),
                    "hot token evicted after {n}"
                );
            }
            peak = peak.max(cache.bytes());
        }
        assert!(peak <= DEFAULT_MAX_BYTES, "{peak}");
        let cached = order(&cache);
        assert!(cached.len() < 400, "{}", cached.len());
        assert!(cached.contains(&hot));
        // Without hits the hot token ages out like any other.
        for n in 0..2_100 {
            cache.insert(&format!("{large}x{n}"), Rc::clone(&large_v));
        }
        assert!(cache.get(&hot, NOW).is_none());
    }

    #[test]
    fn the_entry_cap_holds_for_tiny_tokens_and_slots_are_reused() {
        let (t, v) = verified(Some(NOW + 100), 0);
        let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 5);
        for n in 0..50 {
            cache.insert(&format!("{t}{n}"), Rc::clone(&v));
            let _ = cache.get(&format!("{t}{}", n / 2), NOW + (n % 3) * 1_000);
        }
        assert!(cache.len() <= 5);
        assert!(cache.inner.borrow().slots.len() <= 5);
        assert_eq!(order(&cache).len(), cache.len());
    }

    #[test]
    fn different_secrets_give_different_keys() {
        let a = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 1);
        let b = TokenCache::new(&[2; 32], DEFAULT_MAX_BYTES, 1);
        let mut c_secret = [1; 32];
        c_secret[31] = 7;
        let c = TokenCache::new(&c_secret, DEFAULT_MAX_BYTES, 1);
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
        let cache = TokenCache::new(&[3; 32], DEFAULT_MAX_BYTES, 8);
        let (stored, v) = verified(Some(NOW + 100), 0);
        let (other, _) = verified(Some(NOW + 100), 1);
        // Plant `stored`'s entry under `other`'s digest: what a collision would look like.
        cache.inner.borrow_mut().add(Node {
            digest: cache.digest(&other),
            raw: stored.as_str().into(),
            token: Rc::clone(&v),
            exp: NOW + 100,
            cost: 1,
            newer: NIL,
            older: NIL,
        });
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
        let cache = TokenCache::new(&[4; 32], DEFAULT_MAX_BYTES, 8);
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
        let cache = TokenCache::new(&[1; 32], DEFAULT_MAX_BYTES, 0);
        let (token, v) = verified(Some(NOW + 100), 0);
        cache.insert(&token, v);
        assert!(cache.is_empty());
    }

    /// Random operations (insert, get at an advancing time, a key-set change) on caches bounded
    /// in bytes and entries, against a plain recency list: the same hits, the same order, the
    /// same byte count, whatever the sizes, expiries, re-insertions and evictions.
    #[test]
    fn random_operations_match_a_plain_recency_list() {
        let keys = standard_keyset();
        let tokens: Vec<(String, Rc<VerifiedToken>)> = (0..24)
            .map(|n| {
                let mut claims = json!({"iss": ISS, "sub": format!("u{n}"), "iat": NOW - 10,
                    "pad": "g".repeat((n * 397) % 3000)});
                if n % 7 != 3 {
                    claims["exp"] = json!(NOW + 5 + (n as i64 * 13) % 60);
                }
                let token = mint(&json!({"alg": "EdDSA", "kid": "ed"}), &claims);
                let v = jwt::verify(&token, &keys, &policy(), NOW).unwrap();
                (token, Rc::new(v))
            })
            .collect();
        let costs: Vec<usize> = tokens.iter().map(|(t, v)| TokenCache::cost(t, v)).collect();
        let typical = costs.iter().sum::<usize>() / costs.len();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        for (max_bytes, max_entries) in [
            (0, 8),
            (typical * 3, 5),
            (typical * 8, 3),
            (DEFAULT_MAX_BYTES, 1),
            (usize::MAX, 6),
            (costs[5], 4),
        ] {
            let cache = TokenCache::new(&[9; 32], max_bytes, max_entries);
            let mut model: Vec<usize> = Vec::new();
            let mut now = NOW;
            let mut generation = 0;
            let (mut hits, mut evictions) = (0, 0);
            cache.use_key_set(generation);
            for _ in 0..3000 {
                let t = next(tokens.len());
                match next(10) {
                    0..=3 => {
                        let (token, v) = &tokens[t];
                        cache.insert(token, Rc::clone(v));
                        if let (Some(_), true, true) =
                            (v.exp(), costs[t] <= max_bytes, max_entries > 0)
                        {
                            model.retain(|m| *m != t);
                            while model.len() >= max_entries
                                || model.iter().map(|m| costs[*m]).sum::<usize>() + costs[t]
                                    > max_bytes
                            {
                                if model.pop().is_none() {
                                    break;
                                }
                                evictions += 1;
                            }
                            model.insert(0, t);
                        }
                    }
                    4..=7 => {
                        let hit = cache.get(&tokens[t].0, now);
                        let want = match model.iter().position(|m| *m == t) {
                            Some(i) if now < tokens[t].1.exp().unwrap() => {
                                model.remove(i);
                                model.insert(0, t);
                                true
                            }
                            Some(i) => {
                                model.remove(i);
                                false
                            }
                            None => false,
                        };
                        assert_eq!(hit.is_some(), want, "token {t} at {now}");
                        if let Some(hit) = hit {
                            assert!(Rc::ptr_eq(&hit, &tokens[t].1));
                            hits += 1;
                        }
                    }
                    8 => now += next(4) as i64,
                    _ => {
                        if next(8) == 0 {
                            generation ^= 1;
                            model.clear();
                            now = NOW;
                        }
                        cache.use_key_set(generation);
                    }
                }
                let want: Vec<String> = model.iter().map(|m| tokens[*m].0.clone()).collect();
                assert_eq!(
                    order(&cache),
                    want,
                    "budget {max_bytes}, entries {max_entries}"
                );
                assert!(cache.bytes() <= max_bytes);
            }
            assert!(
                max_bytes == 0 || (hits > 20 && evictions > 20),
                "{hits} {evictions}"
            );
        }
    }
}
