//! The verified-token cache allocates nothing on a hit, counted by a global allocator that tallies
//! this thread's allocations (native, no Envoy: what runs per request in the VM is the same code).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;

use aml_auth_filter::signing::{jwks, SigningKey};
use aml_auth_filter::token::jwks::parse_jwks;
use aml_auth_filter::token::jwt::{self, TokenPolicy};
use aml_auth_filter::token::token_cache::{TokenCache, DEFAULT_MAX_BYTES, MAX_ENTRIES};
use serde_json::json;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn a_hit_allocates_nothing_and_moves_the_entry_without_allocating() {
    const ISS: &str = "https://login.example.com/tenant/v2.0";
    const NOW: i64 = 1_700_000_000;
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ed25519-a.pem"),
    )
    .unwrap();
    let key = SigningKey::from_pem(&pem).unwrap();
    let keys = parse_jwks(
        jwks(vec![key.public_jwk("ed", Some("EdDSA"))])
            .to_string()
            .as_bytes(),
    )
    .unwrap()
    .keys;
    let policy = TokenPolicy::new(vec![ISS.to_owned()]);
    let cache = TokenCache::new(&[5; 32], DEFAULT_MAX_BYTES, MAX_ENTRIES);
    cache.use_key_set(1);
    let tokens: Vec<String> = (0..50)
        .map(|n| {
            let claims = json!({"iss": ISS, "sub": format!("u{n}"), "iat": NOW, "exp": NOW + 600});
            key.sign("EdDSA", Some("ed"), &claims).unwrap()
        })
        .collect();
    let inserted = allocations_during(|| {
        for token in &tokens {
            let verified = jwt::verify(token, &keys, &policy, NOW).unwrap();
            cache.insert(token, Rc::new(verified));
        }
    });
    assert!(inserted > 0, "the counter sees allocations");
    // Hits in an order that moves entries from the tail, the middle and the head of the list.
    let hits = allocations_during(|| {
        for round in 0..20 {
            for token in tokens.iter().rev().step_by(1 + round % 3) {
                let hit = cache.get(token, NOW + 1);
                assert!(hit.is_some());
            }
        }
    });
    assert_eq!(hits, 0, "allocations during 20 rounds of hits");
}
