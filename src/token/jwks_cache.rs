//! The JWKS lifecycle as a pure state machine: who fetches and when (lease, first fetch and
//! refresh with jitter, early refetch for an unknown `kid`, fallback sources, backoff with full
//! jitter, `Retry-After`, conditional requests), and how fresh the key set is. Time and
//! randomness are parameters. The host keeps [`Meta`] in proxy-wasm shared data and writes it
//! with compare-and-swap, so one fetch per period happens per Envoy process whatever the number
//! of workers.

use core::fmt::Write as _;

use serde_json::{Map, Value};

/// Shortest interval between two early refetches triggered by unknown `kid`s.
pub const EARLY_REFETCH_MIN_INTERVAL_MS: u64 = 30_000;
/// Longest interval between early refetches: the interval doubles after each early refetch
/// that found the same key set (the unknown `kid` really is not published), up to this.
pub const EARLY_REFETCH_MAX_INTERVAL_MS: u64 = 300_000;
/// First backoff step after a round in which every source failed on the network.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// Longest backoff step after network failures while a key set is held (also capped by the
/// refresh period).
pub const BACKOFF_CAP_MS: u64 = 300_000;
/// Longest backoff step after network failures while no key set was ever obtained: token
/// requests get 503 until one arrives, so retries stay frequent.
pub const BACKOFF_CAP_NO_KEYS_MS: u64 = 30_000;
/// First backoff step after a set refused for its content (too large, not a JWKS): the same
/// bytes would most likely be served again, so it backs off from here toward the refresh
/// period.
pub const CONTENT_BACKOFF_BASE_MS: u64 = 60_000;
/// Shortest delay after a set refused for its content (at most the backoff step): whatever the
/// jitter, such a source is not called again sooner.
pub const CONTENT_BACKOFF_FLOOR_MS: u64 = 30_000;
/// Longest delay a `Retry-After` may impose (also capped by the source's refresh period).
pub const RETRY_AFTER_CAP_MS: u64 = 3_600_000;
/// The first fetch of a new set of sources waits a random delay below this, so that proxies
/// started together do not fetch in step (a fresh proxy still gets keys within about 2 s).
pub const FIRST_FETCH_JITTER_MS: u64 = 1_500;
/// How long a lease outlives the fetch timeout, covering a worker that vanished mid-fetch.
pub const LEASE_MARGIN_MS: u64 = 2_000;

/// The validators of the stored key set, sent back as `If-None-Match` / `If-Modified-Since`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// Where the set was fetched: source index, authority and path (validators are only sent
    /// back to the same place).
    pub location: String,
    /// The response's `ETag`.
    pub etag: Option<String>,
    /// The response's `Last-Modified`.
    pub last_modified: Option<String>,
}

impl Validators {
    /// The location string of a key set call.
    pub fn location_of(source: usize, authority: &str, path: &str) -> String {
        format!("{source} {authority}{path}")
    }

    /// The conditional request headers for a call to `location`, when validators are held.
    pub fn headers_for(&self, location: &str) -> Vec<(&'static str, &str)> {
        if self.location != location {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(etag) = &self.etag {
            out.push(("if-none-match", etag.as_str()));
        }
        if let Some(lm) = &self.last_modified {
            out.push(("if-modified-since", lm.as_str()));
        }
        out
    }
}

/// The shared record of one JWKS configuration, as stored in shared data (JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Version of the stored key set; 0 while none was ever fetched. It changes only when the
    /// set's bytes change, so a refresh that finds the same set keeps every parsed copy and the
    /// verified-token cache.
    pub version: u64,
    /// When the stored key set was last confirmed by its source (ms since the Unix epoch).
    pub fetched_at_ms: u64,
    /// Index of the source the stored key set came from.
    pub fetched_from: usize,
    /// When the next fetch is due (ms).
    pub next_attempt_ms: u64,
    /// The refresh period `next_attempt_ms` was scheduled with after a success (0: none), so a
    /// reload that changes the period reschedules at once.
    pub scheduled_period_ms: u64,
    /// Index of the source the next fetch uses.
    pub attempt_source: usize,
    /// Consecutive rounds in which every source failed.
    pub failures: u32,
    /// Root context holding the fetch lease; 0 for none.
    pub lease_owner: u64,
    /// When the lease lapses (ms).
    pub lease_until_ms: u64,
    /// When the last early refetch started (ms).
    pub last_early_ms: u64,
    /// Whether the fetch under way is an early refetch.
    pub early_in_flight: bool,
    /// Consecutive early refetches that found the same key set.
    pub early_unchanged: u32,
    /// Per source: no call before this time (ms), from its `Retry-After`.
    pub throttled_until_ms: Vec<u64>,
    /// SHA-256 of the stored set's bytes (hex, 32 digits).
    pub digest: String,
    /// The stored set's validators.
    pub validators: Validators,
}

impl Meta {
    /// Encodes for shared data: a JSON object with one member per field, in field order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(384);
        let numbers = [
            ("version", self.version),
            ("fetched_at_ms", self.fetched_at_ms),
            ("fetched_from", self.fetched_from as u64),
            ("next_attempt_ms", self.next_attempt_ms),
            ("scheduled_period_ms", self.scheduled_period_ms),
            ("attempt_source", self.attempt_source as u64),
            ("failures", u64::from(self.failures)),
            ("lease_owner", self.lease_owner),
            ("lease_until_ms", self.lease_until_ms),
            ("last_early_ms", self.last_early_ms),
        ];
        let mut sep = '{';
        for (name, n) in numbers {
            let _ = write!(out, "{sep}\"{name}\":{n}");
            sep = ',';
        }
        let _ = write!(
            out,
            ",\"early_in_flight\":{},\"early_unchanged\":{},\"throttled_until_ms\":[",
            self.early_in_flight, self.early_unchanged
        );
        for (i, t) in self.throttled_until_ms.iter().enumerate() {
            let _ = write!(out, "{}{t}", if i == 0 { "" } else { "," });
        }
        let v = &self.validators;
        out.push_str("],\"digest\":");
        push_json_str(&mut out, Some(&self.digest));
        out.push_str(",\"validators\":{\"location\":");
        push_json_str(&mut out, Some(&v.location));
        out.push_str(",\"etag\":");
        push_json_str(&mut out, v.etag.as_deref());
        out.push_str(",\"last_modified\":");
        push_json_str(&mut out, v.last_modified.as_deref());
        out.push_str("}}");
        out.into_bytes()
    }

    /// Decodes from shared data; anything unreadable counts as no record. `scheduled_period_ms`,
    /// `early_in_flight`, `early_unchanged`, `throttled_until_ms`, `digest` and `validators` may
    /// be absent (a record of an earlier module); unknown members are ignored.
    pub fn decode(bytes: &[u8]) -> Option<Meta> {
        let doc = crate::token::strict_json::parse(bytes).ok()?.value;
        let o = doc.as_object()?;
        let validators = match o.get("validators") {
            None => Validators::default(),
            Some(v) => {
                let v = v.as_object()?;
                Validators {
                    location: v.get("location")?.as_str()?.to_owned(),
                    etag: optional_str(v, "etag")?,
                    last_modified: optional_str(v, "last_modified")?,
                }
            }
        };
        let throttled_until_ms = match o.get("throttled_until_ms") {
            None => Vec::new(),
            Some(v) => v
                .as_array()?
                .iter()
                .map(Value::as_u64)
                .collect::<Option<_>>()?,
        };
        let early_in_flight = match o.get("early_in_flight") {
            None => false,
            Some(v) => v.as_bool()?,
        };
        Some(Meta {
            version: number(o, "version", None)?,
            fetched_at_ms: number(o, "fetched_at_ms", None)?,
            fetched_from: usize::try_from(number(o, "fetched_from", None)?).ok()?,
            next_attempt_ms: number(o, "next_attempt_ms", None)?,
            scheduled_period_ms: number(o, "scheduled_period_ms", Some(0))?,
            attempt_source: usize::try_from(number(o, "attempt_source", None)?).ok()?,
            failures: u32::try_from(number(o, "failures", None)?).ok()?,
            lease_owner: number(o, "lease_owner", None)?,
            lease_until_ms: number(o, "lease_until_ms", None)?,
            last_early_ms: number(o, "last_early_ms", None)?,
            early_in_flight,
            early_unchanged: u32::try_from(number(o, "early_unchanged", Some(0))?).ok()?,
            throttled_until_ms,
            digest: optional_str(o, "digest")?.unwrap_or_default(),
            validators,
        })
    }

    /// The record of a new set of sources: its first fetch is due after `FIRST_FETCH_JITTER_MS`
    /// times `u` (in [0, 1)).
    pub fn first(now_ms: u64, u: f64) -> Meta {
        Meta {
            next_attempt_ms: now_ms.saturating_add(scale(FIRST_FETCH_JITTER_MS, u)),
            ..Meta::default()
        }
    }

    fn lease_active(&self, now_ms: u64) -> bool {
        self.lease_owner != 0 && now_ms < self.lease_until_ms
    }

    fn throttled(&self, source: usize, now_ms: u64) -> bool {
        self.throttled_until_ms
            .get(source)
            .is_some_and(|&until| now_ms < until)
    }

    /// The first source at or after `from` that is not throttled at `now_ms`.
    fn open_source(&self, from: usize, count: usize, now_ms: u64) -> Option<usize> {
        (from..count).find(|&s| !self.throttled(s, now_ms))
    }
}

/// Appends `s` as a JSON string, or `null`.
fn push_json_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => out.push_str(&Value::from(s).to_string()),
        None => out.push_str("null"),
    }
}

/// The unsigned integer member `name` of `o`; `absent` when it is missing.
fn number(o: &Map<String, Value>, name: &str, absent: Option<u64>) -> Option<u64> {
    match o.get(name) {
        None => absent,
        Some(v) => v.as_u64(),
    }
}

/// The string member `name` of `o`: `Some(None)` when it is missing or `null`, `None` when it is
/// not a string.
fn optional_str(o: &Map<String, Value>, name: &str) -> Option<Option<String>> {
    match o.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(v) => v.as_str().map(|s| Some(s.to_owned())),
    }
}

/// Timing of one JWKS source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceTiming {
    /// Timeout of one fetch (ms).
    pub timeout_ms: u64,
    /// Refresh period of a key set fetched from this source (ms).
    pub refresh_ms: u64,
    /// Age after which a key set fetched from this source is no longer used (ms).
    pub max_stale_ms: u64,
    /// HTTP calls one fetch makes in sequence, each with the timeout: 1, or 2 with discovery.
    pub calls: u64,
}

/// What a root context should do on this tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TickDecision {
    /// Nothing to fetch (not due, throttled, or another context holds the lease).
    Idle,
    /// Take the lease by writing `meta` with compare-and-swap, then fetch from `source`.
    Fetch {
        /// Index of the source to fetch from.
        source: usize,
        /// The record to write; a failed compare-and-swap means another context won.
        meta: Box<Meta>,
    },
}

/// When the next fetch is due under the current timing: a success's schedule is stretched or
/// shrunk to the current refresh period of its source (a reload applies at once), and a set
/// that went stale is due now.
pub fn due_ms(meta: &Meta, now_ms: u64, sources: &[SourceTiming]) -> u64 {
    if meta.version == 0 || meta.failures > 0 || meta.attempt_source != 0 {
        return meta.next_attempt_ms;
    }
    if freshness(meta, now_ms, sources) == Freshness::Stale {
        return now_ms.min(meta.next_attempt_ms);
    }
    let period = sources
        .get(meta.fetched_from)
        .or_else(|| sources.first())
        .map_or(meta.scheduled_period_ms, |t| t.refresh_ms);
    if meta.scheduled_period_ms == 0 || period == meta.scheduled_period_ms {
        return meta.next_attempt_ms;
    }
    let planned = meta.next_attempt_ms.saturating_sub(meta.fetched_at_ms);
    let rescaled = u128::from(planned) * u128::from(period) / u128::from(meta.scheduled_period_ms);
    meta.fetched_at_ms
        .saturating_add(u64::try_from(rescaled).unwrap_or(u64::MAX))
}

/// The interval early refetches must keep after `unchanged` early refetches that found the same
/// set: 30 s doubling, at most 300 s.
pub fn early_interval_ms(unchanged: u32) -> u64 {
    let shift = unchanged.min(16);
    EARLY_REFETCH_MIN_INTERVAL_MS
        .saturating_mul(1u64 << shift)
        .min(EARLY_REFETCH_MAX_INTERVAL_MS)
}

/// Decides whether this context should fetch now. `early_wanted` is set when a request carried
/// an unknown `kid` (or met a stale set) since the last tick. An early refetch needs a held key
/// set, no failure since its last success (failures keep their backoff), and the early
/// interval; no source is called while its `Retry-After` runs.
pub fn tick(
    meta: &Meta,
    now_ms: u64,
    me: u64,
    early_wanted: bool,
    sources: &[SourceTiming],
) -> TickDecision {
    if meta.lease_active(now_ms) {
        return TickDecision::Idle;
    }
    let scheduled = now_ms >= due_ms(meta, now_ms, sources);
    let early = early_wanted
        && meta.version > 0
        && meta.failures == 0
        && now_ms
            >= meta
                .last_early_ms
                .saturating_add(early_interval_ms(meta.early_unchanged));
    if !scheduled && !early {
        return TickDecision::Idle;
    }
    let from = if meta.attempt_source < sources.len() {
        meta.attempt_source
    } else {
        0
    };
    let Some(source) = meta.open_source(from, sources.len(), now_ms) else {
        return TickDecision::Idle;
    };
    let Some(timing) = sources.get(source) else {
        return TickDecision::Idle;
    };
    let mut next = meta.clone();
    next.attempt_source = source;
    next.lease_owner = me;
    next.lease_until_ms = now_ms
        .saturating_add(timing.timeout_ms.saturating_mul(timing.calls.max(1)))
        .saturating_add(LEASE_MARGIN_MS);
    next.early_in_flight = early && !scheduled;
    if next.early_in_flight {
        next.last_early_ms = now_ms;
    }
    TickDecision::Fetch {
        source,
        meta: Box::new(next),
    }
}

/// What a successful fetch brought.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Whether the set differs from the stored one (a new version); `false` for a 304 or a body
    /// with the stored digest.
    pub changed: bool,
    /// SHA-256 digest of the set's bytes.
    pub digest: String,
    /// The response's validators.
    pub validators: Validators,
}

/// The record after a successful fetch from `source`. `u` in [0, 1) spreads the next refresh
/// over ±10% of the period so a fleet of proxies does not fetch in step. An unchanged set keeps
/// its version (no VM re-parses it) and only has its age reset.
pub fn succeeded(
    meta: &Meta,
    now_ms: u64,
    source: usize,
    sources: &[SourceTiming],
    u: f64,
    fetched: Fetched,
) -> Meta {
    let refresh = sources.get(source).map_or(BACKOFF_CAP_MS, |t| t.refresh_ms);
    let changed = fetched.changed || meta.version == 0;
    let early_unchanged = match (meta.early_in_flight, changed) {
        (true, false) => meta.early_unchanged.saturating_add(1),
        (false, false) => meta.early_unchanged,
        (_, true) => 0,
    };
    let mut throttled = meta.throttled_until_ms.clone();
    if let Some(t) = throttled.get_mut(source) {
        *t = 0;
    }
    Meta {
        version: if changed {
            meta.version.saturating_add(1)
        } else {
            meta.version
        },
        fetched_at_ms: now_ms,
        fetched_from: source,
        next_attempt_ms: now_ms.saturating_add(jittered(refresh, u)),
        scheduled_period_ms: refresh,
        attempt_source: 0,
        failures: 0,
        lease_owner: 0,
        lease_until_ms: 0,
        last_early_ms: meta.last_early_ms,
        early_in_flight: false,
        early_unchanged,
        throttled_until_ms: throttled,
        digest: fetched.digest,
        validators: fetched.validators,
    }
}

/// The record after a failed fetch from `source`: the next source that is not throttled is
/// tried at once; when none is left, the round restarts from the first after a backoff step
/// with full jitter (`u` in [0, 1)). A `Retry-After` keeps its source uncalled for its
/// (bounded) delay. The stored key set is kept.
pub fn failed(
    meta: &Meta,
    now_ms: u64,
    source: usize,
    sources: &[SourceTiming],
    u: f64,
    failure: &FetchFailure,
) -> Meta {
    let mut next = meta.clone();
    next.lease_owner = 0;
    next.lease_until_ms = 0;
    next.early_in_flight = false;
    if let FetchFailure::Throttled { retry_after_ms } = failure {
        let refresh = sources.get(source).map_or(0, |t| t.refresh_ms);
        let delay = (*retry_after_ms).min(refresh).min(RETRY_AFTER_CAP_MS);
        if next.throttled_until_ms.len() < sources.len() {
            next.throttled_until_ms.resize(sources.len(), 0);
        }
        if let Some(t) = next.throttled_until_ms.get_mut(source) {
            *t = now_ms.saturating_add(delay);
        }
    }
    if let Some(following) = next.open_source(source.saturating_add(1), sources.len(), now_ms) {
        next.attempt_source = following;
        next.next_attempt_ms = now_ms;
        return next;
    }
    next.failures = meta.failures.saturating_add(1);
    next.attempt_source = 0;
    let refresh = sources.first().map_or(BACKOFF_CAP_MS, |t| t.refresh_ms);
    let content = failure.is_content();
    let usable = freshness(meta, now_ms, sources) == Freshness::Fresh;
    let step = backoff_ms(next.failures, refresh, content, usable);
    let floor = if content {
        CONTENT_BACKOFF_FLOOR_MS
    } else {
        BACKOFF_BASE_MS
    };
    let mut at = now_ms.saturating_add(full_jitter(step, floor, u));
    if usable {
        at = at.min(stale_at_ms(meta, sources).max(now_ms));
    }
    next.next_attempt_ms = at;
    next
}

/// When the stored key set turns stale (`fetched_at` plus its source's `max_stale_seconds`).
fn stale_at_ms(meta: &Meta, sources: &[SourceTiming]) -> u64 {
    let max_stale = sources
        .get(meta.fetched_from)
        .or_else(|| sources.first())
        .map_or(0, |t| t.max_stale_ms);
    meta.fetched_at_ms.saturating_add(max_stale)
}

/// The backoff step (before jitter) after `failures` consecutive failed rounds. Network
/// failures: 1 s doubling, at most 300 s while a usable (not stale) key set is held, at most
/// 30 s while token requests fail for want of one (none yet, or stale). A set refused for its
/// content: 60 s doubling, up to the refresh period. Never above the refresh period.
pub fn backoff_ms(failures: u32, refresh_ms: u64, content: bool, have_keys: bool) -> u64 {
    let (base, cap) = match (content, have_keys) {
        (true, _) => (CONTENT_BACKOFF_BASE_MS, refresh_ms),
        (false, true) => (BACKOFF_BASE_MS, BACKOFF_CAP_MS),
        (false, false) => (BACKOFF_BASE_MS, BACKOFF_CAP_NO_KEYS_MS),
    };
    let cap = cap.min(refresh_ms).max(BACKOFF_BASE_MS);
    let shift = failures.saturating_sub(1).min(24);
    base.saturating_mul(1u64 << shift).min(cap)
}

/// Full jitter: a delay uniform in [`floor_ms`, `step_ms`] for `u` in [0, 1) (the floor is at
/// most the step).
pub fn full_jitter(step_ms: u64, floor_ms: u64, u: f64) -> u64 {
    let floor = floor_ms.min(step_ms);
    floor.saturating_add(scale(step_ms.saturating_sub(floor), u))
}

/// `value` times `u` clamped to [0, 1]; a non-finite `u` counts as 0.
fn scale(value: u64, u: f64) -> u64 {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((value as f64) * u) as u64
}

/// The refresh period spread over ±10% by `u` in [0, 1) (0.5 is the period itself).
fn jittered(period_ms: u64, u: f64) -> u64 {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let value = (period_ms as f64) * (0.9 + 0.2 * u);
    if value < 1.0 {
        1
    } else {
        value as u64
    }
}

/// A small per-VM pseudo-random generator (SplitMix64) for jitter. It is seeded from whatever
/// the host offers (its random bytes, the clock's nanoseconds, the root context id), so a
/// failing host call costs randomness, never a trap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// Seeds from several sources, any of which may be 0.
    pub fn seeded(parts: &[u64]) -> Rng {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for &p in parts {
            rng.0 ^= p;
            rng.next_u64();
        }
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether the stored key set may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// No key set was ever fetched.
    Never,
    /// The key set is younger than its source's `max_stale_seconds`.
    Fresh,
    /// The key set is older than `max_stale_seconds`: token requests fail closed.
    Stale,
}

/// Freshness of the stored key set at `now_ms`.
pub fn freshness(meta: &Meta, now_ms: u64, sources: &[SourceTiming]) -> Freshness {
    if meta.version == 0 {
        return Freshness::Never;
    }
    if now_ms > stale_at_ms(meta, sources) {
        Freshness::Stale
    } else {
        Freshness::Fresh
    }
}

/// SHA-256 of a key set's bytes, as 32 hex digits (what decides whether a set changed).
pub fn digest(body: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(body);
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Encodes a fetched key set for shared data, tagged with its version so a reader never pairs
/// a record with the wrong body.
pub fn encode_keys(version: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len().saturating_add(24));
    out.extend_from_slice(version.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Decodes a stored key set: `Some(body)` when it carries `version`.
pub fn decode_keys(bytes: &[u8], version: u64) -> Option<&[u8]> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let (head, rest) = bytes.split_at(newline);
    let stored: u64 = core::str::from_utf8(head).ok()?.parse().ok()?;
    (stored == version).then(|| rest.get(1..).unwrap_or_default())
}

/// Shared-data key of the record of one set of sources (by fingerprint).
pub fn meta_key(fingerprint: &str) -> String {
    format!("aml_auth.jwks.{fingerprint}.meta")
}

/// Shared-data key of the key set of one set of sources (by fingerprint).
pub fn keys_key(fingerprint: &str) -> String {
    format!("aml_auth.jwks.{fingerprint}.keys")
}

/// Shared-data key of the [`Registry`].
pub const REGISTRY_KEY: &str = "aml_auth.jwks.registry";
/// How often a configuration in use marks its fingerprint as seen.
pub const REGISTRY_TOUCH_MS: u64 = 2_000;
/// A fingerprint nobody marked for this long belongs to a superseded configuration (every live
/// one marks its own every [`REGISTRY_TOUCH_MS`] from a 500 ms tick): its entries are dropped.
pub const REGISTRY_EVICT_MS: u64 = 30_000;
/// Most fingerprints tracked at once; beyond it the least recently seen are dropped first.
pub const REGISTRY_MAX: usize = 32;

/// The fingerprints whose entries live in shared data, with when each was last seen in use, so
/// that the entries of superseded sources (after a reload with other sources) are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    /// (fingerprint, last seen in ms), one entry per fingerprint.
    pub seen: Vec<(String, u64)>,
}

impl Registry {
    /// Encodes for shared data: one `<fingerprint> <ms>` line per entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for (fp, t) in &self.seen {
            out.push_str(fp);
            out.push(' ');
            out.push_str(&t.to_string());
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Decodes from shared data; unreadable lines are skipped.
    pub fn decode(bytes: &[u8]) -> Registry {
        let text = core::str::from_utf8(bytes).unwrap_or_default();
        let mut registry = Registry::default();
        for line in text.lines() {
            if let Some((fp, t)) = line.split_once(' ') {
                if let (false, Ok(t)) = (fp.is_empty(), t.parse()) {
                    registry.set(fp, t);
                }
            }
        }
        registry
    }

    /// When `fingerprint` was last seen.
    pub fn get(&self, fingerprint: &str) -> Option<u64> {
        self.seen
            .iter()
            .find(|(fp, _)| fp == fingerprint)
            .map(|(_, t)| *t)
    }

    fn set(&mut self, fingerprint: &str, t: u64) {
        match self.seen.iter_mut().find(|(fp, _)| fp == fingerprint) {
            Some(entry) => entry.1 = t,
            None => self.seen.push((fingerprint.to_string(), t)),
        }
    }

    fn remove(&mut self, fingerprint: &str) {
        self.seen.retain(|(fp, _)| fp != fingerprint);
    }
}

/// A registry to write and the fingerprints whose entries it drops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryUpdate {
    /// The registry to write (compare-and-swap).
    pub registry: Registry,
    /// Fingerprints whose meta and key set are to be emptied.
    pub evicted: Vec<String>,
}

/// What the configuration with fingerprint `mine` writes on this tick: `None` when its mark is
/// recent and nothing is due for eviction.
pub fn touch_registry(registry: &Registry, mine: &str, now_ms: u64) -> Option<RegistryUpdate> {
    let mine_recent = registry
        .get(mine)
        .is_some_and(|t| now_ms < t.saturating_add(REGISTRY_TOUCH_MS));
    let lapsed = |t: u64| now_ms.saturating_sub(t) > REGISTRY_EVICT_MS;
    let any_lapsed = registry.seen.iter().any(|(fp, t)| fp != mine && lapsed(*t));
    if mine_recent && !any_lapsed && registry.seen.len() <= REGISTRY_MAX {
        return None;
    }
    let mut next = registry.clone();
    next.set(mine, now_ms);
    let mut evicted: Vec<String> = next
        .seen
        .iter()
        .filter(|(fp, t)| fp.as_str() != mine && lapsed(*t))
        .map(|(fp, _)| fp.clone())
        .collect();
    for fp in &evicted {
        next.remove(fp);
    }
    while next.seen.len() > REGISTRY_MAX {
        let oldest = next
            .seen
            .iter()
            .filter(|(fp, _)| fp.as_str() != mine)
            .min_by_key(|(_, t)| *t)
            .map(|(fp, _)| fp.clone());
        let Some(oldest) = oldest else { break };
        next.remove(&oldest);
        evicted.push(oldest);
    }
    Some(RegistryUpdate {
        registry: next,
        evicted,
    })
}

/// Largest JWKS body accepted; a larger one is a failed fetch.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The host's status code for a call that failed after it started (`BrokenConnection`).
pub const HOST_BROKEN_CONNECTION: u32 = 11;
/// The host's status code for a call it refused to start (`BadArgument`): with the fixed
/// headers the filter sends, an unknown cluster.
pub const HOST_BAD_ARGUMENT: u32 = 2;

/// Why one fetch failed; each has a stable code, counted as `aml_auth.jwks.fetch_failure.<code>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchFailure {
    /// The host refused to start the call because it knows no such cluster (`BadArgument`).
    UnknownCluster,
    /// The host refused to start the call for another reason.
    DispatchFailed,
    /// No connection to the JWKS host: refused, unreachable, or a TLS handshake that failed
    /// (Envoy's own 503 with reset reason `remote connection failure` / `connection failure`).
    ConnectFailed,
    /// The cluster has no healthy endpoint (Envoy's own 503 `no healthy upstream`).
    NoHealthyUpstream,
    /// The connection was reset or closed before the response headers (Envoy's own 503 with any
    /// other reset reason), or broke after the response started: closed mid-body, a stall past
    /// the timeout once the response had started, a body over Envoy's buffer limit for a call.
    Reset,
    /// The call ended with no response and no reason from the host.
    NoResponse,
    /// 504: Envoy's own answer when the timeout passes before the response starts.
    Timeout,
    /// 429, or 503 with a `Retry-After`: the source asked to be called later.
    Throttled {
        /// The delay it asked for (0 when a 429 named none), before bounds.
        retry_after_ms: u64,
    },
    /// Any other status than 200 (and 304 to a conditional request).
    BadStatus,
    /// A 200 whose body is over [`MAX_JWKS_BYTES`].
    TooLarge,
    /// A 200 whose body the host could not hand over.
    BodyUnreadable,
    /// A body that is not a usable JWKS.
    Jwks(crate::token::jwks::JwksError),
    /// The source's discovery document could not be fetched (`content: false`) or was refused
    /// (`content: true`); its own reason is counted under
    /// `aml_auth.jwks.discovery.fetch_failure.<reason>`.
    Discovery {
        /// Whether the document was refused for what it says rather than not obtained.
        content: bool,
    },
}

/// Every code [`FetchFailure::code`] may return but the JWKS parse codes, for the docs check.
pub const FAILURE_CODES: [&str; 12] = [
    "unknown_cluster",
    "dispatch_failed",
    "connect_failed",
    "no_healthy_upstream",
    "reset",
    "no_response",
    "timeout",
    "throttled",
    "bad_status",
    "too_large",
    "body_unreadable",
    "discovery_failed",
];

impl FetchFailure {
    /// Short stable code for logs and stats.
    pub fn code(&self) -> &'static str {
        match self {
            FetchFailure::UnknownCluster => "unknown_cluster",
            FetchFailure::DispatchFailed => "dispatch_failed",
            FetchFailure::ConnectFailed => "connect_failed",
            FetchFailure::NoHealthyUpstream => "no_healthy_upstream",
            FetchFailure::Reset => "reset",
            FetchFailure::NoResponse => "no_response",
            FetchFailure::Timeout => "timeout",
            FetchFailure::Throttled { .. } => "throttled",
            FetchFailure::BadStatus => "bad_status",
            FetchFailure::TooLarge => "too_large",
            FetchFailure::BodyUnreadable => "body_unreadable",
            FetchFailure::Jwks(e) => e.as_str(),
            FetchFailure::Discovery { .. } => "discovery_failed",
        }
    }

    /// Whether the source answered with something refused for what it is (the same answer is
    /// likely again): such failures back off toward the refresh period.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            FetchFailure::TooLarge
                | FetchFailure::Jwks(_)
                | FetchFailure::Discovery { content: true }
        )
    }

    /// The failure of a call the host refused to start, from its status code.
    pub fn of_dispatch(host_status: u32) -> FetchFailure {
        if host_status == HOST_BAD_ARGUMENT {
            FetchFailure::UnknownCluster
        } else {
            FetchFailure::DispatchFailed
        }
    }
}

/// What the host reported for a finished call, each host call's failure kept as `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallHead<'a> {
    /// The response's `:status`, when the host has a response header map.
    pub status: Option<&'a [u8]>,
    /// The callback's host status: code and message (`Ok` is 0).
    pub host_status: Option<(u32, &'a [u8])>,
    /// Body size the host announced.
    pub body_size: usize,
    /// The response's `Retry-After`.
    pub retry_after: Option<&'a [u8]>,
    /// The body of a 503 (at most [`ERROR_BODY_BYTES`]), to tell Envoy's own replies apart.
    pub error_body: Option<&'a [u8]>,
    /// Whether the request carried validators (a 304 is then an answer).
    pub conditional: bool,
    /// Now (ms since the epoch), for a `Retry-After` date.
    pub now_ms: u64,
}

/// Most bytes of an error body read to classify it.
pub const ERROR_BODY_BYTES: usize = 1_024;

/// How a call's head reads when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// A 200: read the body.
    Body,
    /// A 304 to a conditional request: the stored set is current.
    NotModified,
}

/// Classifies a finished call before its body is read.
pub fn classify_head(head: &CallHead<'_>) -> Result<Head, FetchFailure> {
    let retry_after = || {
        head.retry_after
            .and_then(|v| parse_retry_after(v, head.now_ms))
    };
    match head.status {
        Some(b"200") if head.body_size > MAX_JWKS_BYTES => Err(FetchFailure::TooLarge),
        Some(b"200") => Ok(Head::Body),
        Some(b"304") if head.conditional => Ok(Head::NotModified),
        Some(b"504") => Err(FetchFailure::Timeout),
        Some(b"429") => Err(FetchFailure::Throttled {
            retry_after_ms: retry_after().unwrap_or(0),
        }),
        Some(b"503") => Err(match (retry_after(), head.error_body) {
            (Some(ms), _) => FetchFailure::Throttled { retry_after_ms: ms },
            (None, Some(body)) => envoy_reply_failure(body).unwrap_or(FetchFailure::BadStatus),
            (None, None) => FetchFailure::BadStatus,
        }),
        Some(_) => Err(FetchFailure::BadStatus),
        None => Err(match head.host_status {
            Some((HOST_BROKEN_CONNECTION, _)) => FetchFailure::Reset,
            Some((_, message)) if contains(message, b"reset") => FetchFailure::Reset,
            _ => FetchFailure::NoResponse,
        }),
    }
}

/// The failure Envoy's own 503 body names: `no healthy upstream`, or `upstream connect error
/// or disconnect/reset before headers. ... reset reason: <reason>`.
fn envoy_reply_failure(body: &[u8]) -> Option<FetchFailure> {
    if body == b"no healthy upstream" {
        return Some(FetchFailure::NoHealthyUpstream);
    }
    if !body.starts_with(b"upstream connect error or disconnect/reset before headers") {
        return None;
    }
    if contains(body, b"connection failure") {
        Some(FetchFailure::ConnectFailed)
    } else {
        Some(FetchFailure::Reset)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Reads a `Retry-After` value: delta-seconds, or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`) taken relative to `now_ms` (a past date is 0). `None` when it is neither.
pub fn parse_retry_after(value: &[u8], now_ms: u64) -> Option<u64> {
    let text = core::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = text.parse().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1_000));
    }
    let at = parse_imf_fixdate(text)?;
    Some(at.saturating_mul(1_000).saturating_sub(now_ms))
}

/// Seconds since the epoch of an IMF-fixdate (RFC 9110 section 5.6.7).
fn parse_imf_fixdate(text: &str) -> Option<u64> {
    let (weekday, rest) = text.split_once(", ")?;
    if !["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&weekday) {
        return None;
    }
    let mut parts = rest.split(' ');
    let (day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || zone != "GMT" || day.len() != 2 || year.len() != 4 {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let number = |s: &str| -> Option<u64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (day, year) = (number(day)?, number(year)?);
    let mut hms = time.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec) = (number(h)?, number(m)?, number(sec)?);
    if !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3_600 + m * 60 + sec)
}

/// Days from 1970-01-01 to a date (year >= 1970), Howard Hinnant's algorithm.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// Classifies the body of a 200: the parsed key set, or why it is not one.
pub fn classify_body(body: Option<&[u8]>) -> Result<crate::token::jwks::ParsedJwks, FetchFailure> {
    let body = body.ok_or(FetchFailure::BodyUnreadable)?;
    crate::token::jwks::parse_jwks(body).map_err(FetchFailure::Jwks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 11;
    const B: u64 = 22;
    const T: u64 = 1_700_000_000_000;

    fn sources(n: usize) -> Vec<SourceTiming> {
        (0..n)
            .map(|_| SourceTiming {
                timeout_ms: 5_000,
                refresh_ms: 600_000,
                max_stale_ms: 86_400_000,
                calls: 1,
            })
            .collect()
    }

    fn take(decision: TickDecision) -> (usize, Meta) {
        match decision {
            TickDecision::Fetch { source, meta } => (source, *meta),
            TickDecision::Idle => panic!("expected a fetch"),
        }
    }

    fn new_set(d: &str) -> Fetched {
        Fetched {
            changed: true,
            digest: d.into(),
            validators: Validators::default(),
        }
    }

    fn same_set(d: &str) -> Fetched {
        Fetched {
            changed: false,
            ..new_set(d)
        }
    }

    fn net() -> FetchFailure {
        FetchFailure::ConnectFailed
    }

    fn held(s: &[SourceTiming]) -> Meta {
        succeeded(&Meta::default(), T, 0, s, 0.5, new_set("d1"))
    }

    #[test]
    fn first_tick_fetches_and_the_lease_keeps_others_out() {
        let s = sources(1);
        let (source, leased) = take(tick(&Meta::default(), 1_000, A, false, &s));
        assert_eq!(source, 0);
        assert_eq!(leased.lease_owner, A);
        assert_eq!(leased.lease_until_ms, 1_000 + 5_000 + LEASE_MARGIN_MS);
        assert_eq!(tick(&leased, 1_001, B, false, &s), TickDecision::Idle);
        assert_eq!(tick(&leased, 7_999, B, true, &s), TickDecision::Idle);
        let (_, stolen) = take(tick(&leased, 8_000, B, false, &s));
        assert_eq!(stolen.lease_owner, B, "an expired lease is taken over");
        let two_calls = [SourceTiming { calls: 2, ..s[0] }];
        let (_, leased) = take(tick(&Meta::default(), 1_000, A, false, &two_calls));
        assert_eq!(
            leased.lease_until_ms,
            1_000 + 2 * 5_000 + LEASE_MARGIN_MS,
            "discovery and key set in one lease"
        );
    }

    #[test]
    fn the_first_fetch_is_jittered_below_one_and_a_half_seconds() {
        let s = sources(1);
        for (u, due) in [
            (0.0, T),
            (0.5, T + 750),
            (0.999_999, T + 1_499),
            (f64::NAN, T),
        ] {
            let first = Meta::first(T, u);
            assert_eq!(first.next_attempt_ms, due, "u={u}");
            assert_eq!(
                tick(&first, due.saturating_sub(1).max(T), A, true, &s) == TickDecision::Idle,
                due > T
            );
            assert!(matches!(
                tick(&first, due, A, false, &s),
                TickDecision::Fetch { .. }
            ));
        }
    }

    #[test]
    fn success_schedules_the_next_refresh_with_jitter() {
        let s = sources(1);
        let (_, leased) = take(tick(&Meta::default(), 1_000, A, false, &s));
        let table = [
            (0.5, 602_000),
            (1.0, 662_000),
            (0.0, 542_000),
            (f64::NAN, 602_000),
        ];
        for (u, next) in table {
            let done = succeeded(&leased, 2_000, 0, &s, u, new_set("d"));
            assert_eq!((done.version, done.fetched_at_ms), (1, 2_000));
            assert_eq!(done.next_attempt_ms, next, "u={u}");
            assert_eq!(done.lease_owner, 0);
        }
        let done = succeeded(&leased, 2_000, 0, &s, 0.5, new_set("d"));
        assert_eq!(tick(&done, 601_999, B, false, &s), TickDecision::Idle);
        assert!(matches!(
            tick(&done, 602_000, B, false, &s),
            TickDecision::Fetch { .. }
        ));
    }

    #[test]
    fn an_unchanged_set_keeps_its_version_and_only_resets_its_age() {
        let s = sources(1);
        let v1 = held(&s);
        let (_, leased) = take(tick(&v1, T + 600_000, A, false, &s));
        let same = succeeded(&leased, T + 600_100, 0, &s, 0.5, same_set("d1"));
        assert_eq!((same.version, same.fetched_at_ms), (1, T + 600_100));
        assert_eq!(same.next_attempt_ms, T + 1_200_100);
        let (_, leased) = take(tick(&same, T + 1_200_100, A, false, &s));
        let changed = succeeded(&leased, T + 1_200_200, 0, &s, 0.5, new_set("d2"));
        assert_eq!((changed.version, changed.digest.as_str()), (2, "d2"));
        let first = succeeded(&Meta::default(), T, 0, &s, 0.5, same_set(""));
        assert_eq!(first.version, 1, "a first set is always a new version");
    }

    #[test]
    fn failures_fall_back_through_sources_then_back_off() {
        let s = sources(2);
        let (src, leased) = take(tick(&Meta::default(), 0, A, false, &s));
        assert_eq!(src, 0);
        let after_first = failed(&leased, 100, 0, &s, 0.0, &net());
        assert_eq!(
            (after_first.attempt_source, after_first.next_attempt_ms),
            (1, 100)
        );
        assert_eq!(after_first.failures, 0);
        let (src, leased) = take(tick(&after_first, 100, B, false, &s));
        assert_eq!(src, 1, "the paired region is tried next");
        let round_failed = failed(&leased, 200, 1, &s, 0.0, &net());
        assert_eq!(round_failed.failures, 1);
        assert_eq!(round_failed.attempt_source, 0);
        assert_eq!(round_failed.next_attempt_ms, 200 + BACKOFF_BASE_MS);
        let ok = succeeded(&round_failed, 5_000, 0, &s, 0.5, new_set("d"));
        assert_eq!((ok.failures, ok.version), (0, 1));
    }

    #[test]
    fn backoff_steps_by_class() {
        let day = 86_400_000;
        let table = [
            // (failures, refresh, content, have_keys, step)
            (1, 600_000, false, true, 1_000),
            (2, 600_000, false, true, 2_000),
            (6, 600_000, false, true, 32_000),
            (9, 600_000, false, true, 256_000),
            (10, 600_000, false, true, 300_000),
            (u32::MAX, 600_000, false, true, 300_000),
            (10, 600_000, false, false, 30_000),
            (10, 5_000, false, true, 5_000),
            (10, 10, false, true, BACKOFF_BASE_MS),
            (1, 600_000, true, true, 60_000),
            (2, 600_000, true, true, 120_000),
            (4, 600_000, true, true, 480_000),
            (5, 600_000, true, true, 600_000),
            (9, day, true, true, 15_360_000),
            (40, day, true, false, day),
            (1, 20_000, true, true, 20_000),
        ];
        for (failures, refresh, content, keys, want) in table {
            assert_eq!(
                backoff_ms(failures, refresh, content, keys),
                want,
                "{failures} {refresh} {content} {keys}"
            );
        }
    }

    #[test]
    fn every_backoff_step_has_full_jitter() {
        let table = [
            (60_000, 1_000, 0.0, 1_000),
            (60_000, 1_000, 0.5, 30_500),
            (60_000, 1_000, 0.999_999, 59_999),
            (500, 1_000, 0.7, 500),
            (60_000, 1_000, f64::INFINITY, 1_000),
            (60_000, 30_000, 0.0, 30_000),
            (60_000, 30_000, 0.5, 45_000),
            (10_000, 30_000, 0.5, 10_000),
        ];
        for (step, floor, u, want) in table {
            assert_eq!(full_jitter(step, floor, u), want, "{step} {floor} {u}");
        }
        let s = sources(1);
        let v1 = held(&s);
        let (_, leased) = take(tick(&v1, T + 600_000, A, false, &s));
        let a = failed(&leased, T + 600_000, 0, &s, 0.1, &net());
        let b = failed(&leased, T + 600_000, 0, &s, 0.9, &net());
        assert_eq!(a.next_attempt_ms, T + 600_000 + 1_000);
        let c = failed(
            &Meta {
                failures: 5,
                ..leased.clone()
            },
            T + 600_000,
            0,
            &s,
            0.9,
            &net(),
        );
        assert_eq!(c.next_attempt_ms, T + 600_000 + 1_000 + 27_900);
        assert_eq!(
            b.next_attempt_ms, a.next_attempt_ms,
            "step 1 is 1 s whatever u"
        );
    }

    #[test]
    fn a_stale_set_backs_off_as_if_none_were_held_and_a_fresh_one_retries_by_its_stale_moment() {
        let s = vec![SourceTiming {
            timeout_ms: 5_000,
            refresh_ms: 600_000,
            max_stale_ms: 900_000,
            calls: 1,
        }];
        let v1 = held(&s);
        let deep = |now: u64| {
            let (_, leased) = take(tick(
                &Meta {
                    failures: 20,
                    ..v1.clone()
                },
                now,
                A,
                true,
                &s,
            ));
            failed(&leased, now, 0, &s, 0.999_999, &net())
        };
        let fresh = deep(T + 600_000);
        assert!(
            fresh.next_attempt_ms > T + 600_000 + 290_000,
            "held and fresh: the 300 s cap"
        );
        let near = deep(T + 800_000);
        assert_eq!(
            near.next_attempt_ms,
            T + 900_000,
            "no later than the stale moment"
        );
        let stale = deep(T + 950_000);
        assert!(
            stale.next_attempt_ms <= T + 950_000 + BACKOFF_CAP_NO_KEYS_MS,
            "stale: requests fail, so the 30 s cap"
        );
    }

    #[test]
    fn a_set_refused_for_its_content_backs_off_further_than_a_network_failure() {
        let s = sources(1);
        let v1 = held(&s);
        let (_, leased) = take(tick(&v1, T + 600_000, A, false, &s));
        let now = T + 600_000;
        let content = [
            FetchFailure::TooLarge,
            FetchFailure::Jwks(crate::token::jwks::JwksError::NotJson),
            FetchFailure::Discovery { content: true },
        ];
        for failure in &content {
            let next = failed(&leased, now, 0, &s, 0.5, failure);
            assert_eq!(next.next_attempt_ms, now + 45_000, "{failure:?}");
        }
        for failure in [
            net(),
            FetchFailure::Reset,
            FetchFailure::Timeout,
            FetchFailure::Discovery { content: false },
        ] {
            let next = failed(&leased, now, 0, &s, 0.5, &failure);
            assert_eq!(next.next_attempt_ms, now + 1_000, "{failure:?}");
        }
        let mut meta = v1;
        let mut delays = Vec::new();
        for _ in 0..8 {
            let at = meta.next_attempt_ms.max(now);
            let (_, l) = take(tick(&meta, at, A, false, &s));
            meta = failed(&l, at, 0, &s, 0.999, &FetchFailure::TooLarge);
            delays.push((meta.next_attempt_ms - at) / 1_000);
        }
        assert_eq!(
            delays,
            vec![59, 119, 239, 479, 599, 599, 599, 599],
            "toward the refresh period"
        );
    }

    #[test]
    fn retry_after_defers_only_its_source_and_is_bounded() {
        let s = sources(2);
        let v1 = held(&s);
        let now = T + 600_000;
        let (_, leased) = take(tick(&v1, now, A, false, &s));
        let throttled = failed(
            &leased,
            now,
            0,
            &s,
            0.0,
            &FetchFailure::Throttled {
                retry_after_ms: 120_000,
            },
        );
        assert_eq!(throttled.throttled_until_ms, vec![now + 120_000, 0]);
        assert_eq!(
            (throttled.attempt_source, throttled.failures),
            (1, 0),
            "the other source at once"
        );
        let (src, l) = take(tick(&throttled, now, A, false, &s));
        assert_eq!(src, 1);
        let round = failed(&l, now + 10, 1, &s, 0.0, &net());
        assert_eq!((round.failures, round.next_attempt_ms), (1, now + 1_010));
        let (src, l) = take(tick(&round, now + 1_010, A, false, &s));
        assert_eq!(
            src, 1,
            "the throttled source is skipped while its delay runs"
        );
        let round = failed(&l, now + 1_020, 1, &s, 0.0, &net());
        let (src, _) = take(tick(&round, now + 120_000, A, false, &s));
        assert_eq!(src, 0, "and called again once it passed");

        let one = sources(1);
        let v1 = held(&one);
        let (_, leased) = take(tick(&v1, now, A, false, &one));
        let table = [
            (300_000, 300_000),
            (25_000, 25_000),
            (0, 0),
            (7_200_000, 600_000),
            (u64::MAX, 600_000),
        ];
        for (asked, want) in table {
            let next = failed(
                &leased,
                now,
                0,
                &one,
                0.0,
                &FetchFailure::Throttled {
                    retry_after_ms: asked,
                },
            );
            assert_eq!(next.throttled_until_ms, vec![now + want], "{asked}");
            let quiet = (0..)
                .map(|k| now + k * 500)
                .find(|&t| tick(&next, t, A, true, &one) != TickDecision::Idle)
                .unwrap();
            assert_eq!(
                quiet,
                now + want.max(1_000),
                "{asked}: no call before it passed"
            );
        }
        let daily = [SourceTiming {
            refresh_ms: 2 * 86_400_000,
            max_stale_ms: 4 * 86_400_000,
            ..one[0]
        }];
        let v1 = held(&daily);
        let (_, leased) = take(tick(&v1, T + 2 * 86_400_000, A, false, &daily));
        let next = failed(
            &leased,
            now,
            0,
            &daily,
            0.0,
            &FetchFailure::Throttled {
                retry_after_ms: 36_000_000,
            },
        );
        assert_eq!(
            next.throttled_until_ms,
            vec![now + RETRY_AFTER_CAP_MS],
            "at most an hour"
        );
        let ok = succeeded(
            &next,
            now + RETRY_AFTER_CAP_MS,
            0,
            &daily,
            0.5,
            same_set("d1"),
        );
        assert_eq!(ok.throttled_until_ms, vec![0]);
    }

    #[test]
    fn retry_after_values_are_read() {
        let now = 784_111_777_000 - 60_000;
        let table: [(&[u8], Option<u64>); 22] = [
            (b"120", Some(120_000)),
            (b" 5 ", Some(5_000)),
            (b"0", Some(0)),
            (b"99999999999999999999999", Some(u64::MAX)),
            (b"Sun, 06 Nov 1994 08:49:37 GMT", Some(60_000)),
            (b"Sun, 06 Nov 1994 08:48:37 GMT", Some(0)),
            (b"Sunday, 06-Nov-94 08:49:37 GMT", None),
            (b"Sun, 06 Nov 1994 08:49:37 CET", None),
            (b"-5", None),
            (b"soon", None),
            (b"", None),
            (b"+5", None),
            (b"1.5", None),
            (b"0x10", None),
            ("\u{ff15}".as_bytes(), None),
            (b"\xff5", None),
            (b"5\r\nx-evil: 1", None),
            (
                b"Fri, 31 Dec 9999 23:59:59 GMT",
                Some(253_402_300_799_000 - now),
            ),
            (b"Sun, 00 Nov 1994 08:49:37 GMT", None),
            (b"Sun, 06 Nov 1969 08:49:37 GMT", None),
            (b"Sun, 06 Nov 1994 24:00:00 GMT", None),
            (b"Sun, 06 Nov 1994 08:49:37 GMT x", None),
        ];
        for (value, want) in table {
            assert_eq!(
                parse_retry_after(value, now),
                want,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
    }

    #[test]
    fn unknown_kid_refetches_stay_inside_the_backoff_and_slow_down_when_nothing_changed() {
        let s = sources(1);
        let v1 = held(&s);
        assert_eq!(tick(&v1, T + 1_000, A, false, &s), TickDecision::Idle);
        let (_, early) = take(tick(&v1, T + 1_000, A, true, &s));
        assert!(early.early_in_flight);
        assert_eq!(early.last_early_ms, T + 1_000);
        let same = succeeded(&early, T + 1_100, 0, &s, 0.5, same_set("d1"));
        assert_eq!((same.version, same.early_unchanged), (1, 1));
        assert_eq!(tick(&same, T + 60_999, A, true, &s), TickDecision::Idle);
        let (_, early) = take(tick(&same, T + 61_000, A, true, &s));
        let same = succeeded(&early, T + 61_100, 0, &s, 0.5, same_set("d1"));
        let intervals: Vec<u64> = (0..6).map(early_interval_ms).collect();
        assert_eq!(
            intervals,
            vec![30_000, 60_000, 120_000, 240_000, 300_000, 300_000]
        );
        assert_eq!(same.early_unchanged, 2);
        let (_, early) = take(tick(&same, T + 181_000, A, true, &s));
        let rotated = succeeded(&early, T + 181_100, 0, &s, 0.5, new_set("d2"));
        assert_eq!((rotated.version, rotated.early_unchanged), (2, 0));
        let (_, scheduled) = take(tick(&rotated, rotated.next_attempt_ms, A, false, &s));
        assert!(!scheduled.early_in_flight);
        let kept = succeeded(
            &scheduled,
            rotated.next_attempt_ms,
            0,
            &s,
            0.5,
            same_set("d2"),
        );
        assert_eq!(
            kept.early_unchanged, 0,
            "a scheduled refresh does not count"
        );

        let (_, early) = take(tick(&v1, T + 1_000, A, true, &s));
        let down = failed(&early, T + 1_100, 0, &s, 0.999, &net());
        assert!(!down.early_in_flight);
        let mut meta = down;
        for k in 0..7 {
            let at = meta.next_attempt_ms;
            assert_eq!(
                tick(&meta, at - 1, A, true, &s),
                TickDecision::Idle,
                "round {k}: an unknown kid waits for the backoff"
            );
            let (_, l) = take(tick(&meta, at, A, true, &s));
            meta = failed(&l, at, 0, &s, 0.999, &net());
        }
        let never = Meta {
            next_attempt_ms: 50_000,
            ..Meta::default()
        };
        assert_eq!(
            tick(&never, 40_000, A, true, &s),
            TickDecision::Idle,
            "before a first set, backoff rules"
        );
    }

    #[test]
    fn a_reload_applies_its_schedule_at_once() {
        let long = sources(1);
        let v1 = held(&long);
        assert_eq!(v1.next_attempt_ms, T + 600_000);
        let table = [
            // (refresh, max_stale, due)
            (600_000, 86_400_000, T + 600_000),
            (20_000, 86_400_000, T + 20_000),
            (1_200_000, 86_400_000, T + 1_200_000),
            (20_000, 30_000, T + 20_000),
        ];
        for (refresh, max_stale, due) in table {
            let s = [SourceTiming {
                refresh_ms: refresh,
                max_stale_ms: max_stale,
                ..long[0]
            }];
            assert_eq!(due_ms(&v1, T + 1, &s), due, "{refresh} {max_stale}");
            assert_eq!(tick(&v1, due - 1, A, false, &s), TickDecision::Idle);
            assert!(matches!(
                tick(&v1, due, A, false, &s),
                TickDecision::Fetch { .. }
            ));
        }
        let jittered = succeeded(&Meta::default(), T, 0, &long, 1.0, new_set("d"));
        let short = [SourceTiming {
            refresh_ms: 60_000,
            ..long[0]
        }];
        assert_eq!(
            due_ms(&jittered, T, &short),
            T + 66_000,
            "the jitter fraction is kept"
        );
        let shrunk = [SourceTiming {
            refresh_ms: 60_000,
            max_stale_ms: 60_000,
            ..long[0]
        }];
        assert_eq!(freshness(&jittered, T + 60_001, &shrunk), Freshness::Stale);
        assert_eq!(
            due_ms(&jittered, T + 60_001, &shrunk),
            T + 60_001,
            "a stale set is due now"
        );
        let failing = Meta {
            failures: 2,
            next_attempt_ms: T + 900_000,
            ..jittered
        };
        assert_eq!(
            due_ms(&failing, T + 60_001, &shrunk),
            T + 900_000,
            "a failing source keeps its backoff"
        );
    }

    #[test]
    fn failure_keeps_the_key_set() {
        let s = sources(1);
        let ok = succeeded(&Meta::default(), 1_000, 0, &s, 0.5, new_set("d"));
        let (_, leased) = take(tick(&ok, 700_000, A, false, &s));
        let bad = failed(&leased, 700_100, 0, &s, 0.0, &net());
        assert_eq!(
            (bad.version, bad.fetched_at_ms, bad.digest.as_str()),
            (1, 1_000, "d")
        );
    }

    #[test]
    fn freshness_follows_max_stale() {
        let s = vec![SourceTiming {
            timeout_ms: 1_000,
            refresh_ms: 10_000,
            max_stale_ms: 30_000,
            calls: 1,
        }];
        assert_eq!(freshness(&Meta::default(), 5, &s), Freshness::Never);
        let ok = succeeded(&Meta::default(), 1_000, 0, &s, 0.5, new_set("d"));
        assert_eq!(freshness(&ok, 31_000, &s), Freshness::Fresh);
        assert_eq!(freshness(&ok, 31_001, &s), Freshness::Stale);
    }

    #[test]
    fn meta_and_keys_round_trip() {
        let s = sources(1);
        let mut ok = succeeded(&Meta::default(), 1_000, 0, &s, 0.3, new_set("d"));
        ok.validators = Validators {
            location: Validators::location_of(0, "a", "/k"),
            etag: Some("\"x\"".into()),
            last_modified: None,
        };
        assert_eq!(Meta::decode(&ok.encode()), Some(ok));
        assert_eq!(Meta::decode(b"garbage"), None);
        let old = br#"{"version":3,"fetched_at_ms":5,"fetched_from":0,"next_attempt_ms":9,"attempt_source":0,"failures":0,"lease_owner":0,"lease_until_ms":0,"last_early_ms":0}"#;
        assert_eq!(
            Meta::decode(old).map(|m| m.version),
            Some(3),
            "a record of the previous module"
        );
        let full = Meta {
            version: 4,
            fetched_at_ms: 1,
            fetched_from: 1,
            next_attempt_ms: 2,
            scheduled_period_ms: 3,
            attempt_source: 1,
            failures: 5,
            lease_owner: 6,
            lease_until_ms: 7,
            last_early_ms: 8,
            early_in_flight: true,
            early_unchanged: 9,
            throttled_until_ms: vec![10, 11],
            digest: "ab".into(),
            validators: Validators {
                location: "1 idp/k".into(),
                etag: Some("W/\"x\\y\"".into()),
                last_modified: None,
            },
        };
        // The bytes the serde derive wrote (field order), so records survive a module update.
        let text = r#"{"version":4,"fetched_at_ms":1,"fetched_from":1,"next_attempt_ms":2,"scheduled_period_ms":3,"attempt_source":1,"failures":5,"lease_owner":6,"lease_until_ms":7,"last_early_ms":8,"early_in_flight":true,"early_unchanged":9,"throttled_until_ms":[10,11],"digest":"ab","validators":{"location":"1 idp/k","etag":"W/\"x\\y\"","last_modified":null}}"#;
        assert_eq!(String::from_utf8(full.encode()).unwrap(), text);
        assert_eq!(Meta::decode(text.as_bytes()), Some(full));
        let odd = br#"{"version":3,"fetched_at_ms":5,"fetched_from":0,"next_attempt_ms":9,"attempt_source":0,"failures":0,"lease_owner":0,"lease_until_ms":0,"last_early_ms":0,"later":[1]}"#;
        assert_eq!(
            Meta::decode(odd).map(|m| m.version),
            Some(3),
            "unknown members"
        );
        let wrong = br#"{"version":-3,"fetched_at_ms":5,"fetched_from":0,"next_attempt_ms":9,"attempt_source":0,"failures":0,"lease_owner":0,"lease_until_ms":0,"last_early_ms":0}"#;
        assert_eq!(Meta::decode(wrong), None);
        let stored = encode_keys(7, b"{\"keys\":[]}");
        assert_eq!(decode_keys(&stored, 7), Some(&b"{\"keys\":[]}"[..]));
        assert_eq!(decode_keys(&stored, 8), None);
        assert_eq!(decode_keys(b"nonsense", 7), None);
        assert_eq!(decode_keys(b"7\n", 7), Some(&b""[..]));
        assert_eq!(digest(b"abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn validators_go_back_only_to_where_they_came_from() {
        let v = Validators {
            location: Validators::location_of(0, "idp", "/keys"),
            etag: Some("W/\"1\"".into()),
            last_modified: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()),
        };
        assert_eq!(
            v.headers_for(&Validators::location_of(0, "idp", "/keys")),
            vec![
                ("if-none-match", "W/\"1\""),
                ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")
            ]
        );
        assert!(v
            .headers_for(&Validators::location_of(1, "idp", "/keys"))
            .is_empty());
        assert!(v
            .headers_for(&Validators::location_of(0, "idp", "/other"))
            .is_empty());
        assert!(Validators::default().headers_for("").is_empty());
    }

    #[test]
    fn the_generator_is_seeded_by_each_part() {
        let mut a = Rng::seeded(&[1, 2, 3]);
        let mut b = Rng::seeded(&[1, 2, 4]);
        let mut zero = Rng::seeded(&[0, 0, 0]);
        let (x, y, z) = (a.next_u64(), b.next_u64(), zero.next_u64());
        assert!(x != y && y != z && x != z);
        for _ in 0..1_000 {
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn call_outcomes_are_classified() {
        let base = CallHead {
            now_ms: T,
            ..CallHead::default()
        };
        let head = |status: Option<&'static [u8]>, host: Option<(u32, &'static [u8])>, size| {
            classify_head(&CallHead {
                status,
                host_status: host,
                body_size: size,
                ..base
            })
        };
        let refused: &[u8] = b"upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused";
        let reset_early: &[u8] = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination";
        let with = |status: &'static [u8],
                    retry: Option<&'static [u8]>,
                    body: Option<&'static [u8]>,
                    conditional| {
            classify_head(&CallHead {
                status: Some(status),
                retry_after: retry,
                error_body: body,
                conditional,
                ..base
            })
        };
        let table: Vec<(Result<Head, FetchFailure>, Result<Head, FetchFailure>)> = vec![
            (head(Some(b"200"), Some((0, b"")), 10), Ok(Head::Body)),
            (head(Some(b"200"), None, MAX_JWKS_BYTES), Ok(Head::Body)),
            (
                head(Some(b"200"), None, MAX_JWKS_BYTES + 1),
                Err(FetchFailure::TooLarge),
            ),
            (head(Some(b"504"), None, 24), Err(FetchFailure::Timeout)),
            (head(Some(b"503"), None, 0), Err(FetchFailure::BadStatus)),
            (head(Some(b"2000"), None, 0), Err(FetchFailure::BadStatus)),
            (head(Some(b"\xff"), None, 0), Err(FetchFailure::BadStatus)),
            (
                head(None, Some((11, b"reset")), 0),
                Err(FetchFailure::Reset),
            ),
            (head(None, Some((11, b"")), 0), Err(FetchFailure::Reset)),
            (
                head(None, Some((10, b"connection reset")), 0),
                Err(FetchFailure::Reset),
            ),
            (
                head(None, Some((10, b"upstream RESET")), 0),
                Err(FetchFailure::Reset),
            ),
            (head(None, Some((0, b"")), 0), Err(FetchFailure::NoResponse)),
            (head(None, None, 0), Err(FetchFailure::NoResponse)),
            (with(b"304", None, None, true), Ok(Head::NotModified)),
            (
                with(b"304", None, None, false),
                Err(FetchFailure::BadStatus),
            ),
            (
                with(b"429", Some(b"300"), None, false),
                Err(FetchFailure::Throttled {
                    retry_after_ms: 300_000,
                }),
            ),
            (
                with(b"429", None, None, false),
                Err(FetchFailure::Throttled { retry_after_ms: 0 }),
            ),
            (
                with(b"429", Some(b"later"), None, false),
                Err(FetchFailure::Throttled { retry_after_ms: 0 }),
            ),
            (
                with(b"503", Some(b"25"), None, false),
                Err(FetchFailure::Throttled {
                    retry_after_ms: 25_000,
                }),
            ),
            (
                with(b"503", Some(b"25"), Some(refused), false),
                Err(FetchFailure::Throttled {
                    retry_after_ms: 25_000,
                }),
            ),
            (
                with(b"503", None, Some(refused), false),
                Err(FetchFailure::ConnectFailed),
            ),
            (
                with(b"503", None, Some(reset_early), false),
                Err(FetchFailure::Reset),
            ),
            (
                with(b"503", None, Some(b"no healthy upstream"), false),
                Err(FetchFailure::NoHealthyUpstream),
            ),
            (
                with(b"503", None, Some(b"maintenance"), false),
                Err(FetchFailure::BadStatus),
            ),
            (
                with(b"500", Some(b"25"), Some(refused), false),
                Err(FetchFailure::BadStatus),
            ),
        ];
        for (i, (got, want)) in table.into_iter().enumerate() {
            assert_eq!(got, want, "row {i}");
        }
        assert_eq!(
            classify_body(None).unwrap_err(),
            FetchFailure::BodyUnreadable
        );
        assert_eq!(classify_body(Some(b"nope")).unwrap_err().code(), "not_json");
        assert_eq!(
            classify_body(Some(br#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#))
                .unwrap_err()
                .code(),
            "no_usable_keys"
        );
        assert_eq!(FetchFailure::of_dispatch(2), FetchFailure::UnknownCluster);
        assert_eq!(FetchFailure::of_dispatch(7), FetchFailure::DispatchFailed);
        let codes: Vec<&str> = [
            FetchFailure::UnknownCluster,
            FetchFailure::DispatchFailed,
            FetchFailure::ConnectFailed,
            FetchFailure::NoHealthyUpstream,
            FetchFailure::Reset,
            FetchFailure::NoResponse,
            FetchFailure::Timeout,
            FetchFailure::Throttled { retry_after_ms: 1 },
            FetchFailure::BadStatus,
            FetchFailure::TooLarge,
            FetchFailure::BodyUnreadable,
            FetchFailure::Discovery { content: false },
        ]
        .iter()
        .map(FetchFailure::code)
        .collect();
        assert_eq!(codes, FAILURE_CODES.to_vec());
    }

    /// Requests one proxy sends a source in an hour, simulated on 500 ms ticks: `down` answers
    /// with a connection failure, `kid_flood` asks for an early refetch on every tick.
    fn per_hour(down: bool, kid_flood: bool, seed: u64) -> usize {
        let s = sources(1);
        let mut rng = Rng::seeded(&[seed]);
        let mut meta = held(&s);
        let mut calls = 0;
        let mut now = T + 1_000;
        while now < T + 3_600_000 {
            if let TickDecision::Fetch { source, meta: l } = tick(&meta, now, A, kid_flood, &s) {
                let l = *l;
                calls += 1;
                meta = if down {
                    failed(&l, now, source, &s, rng.unit(), &net())
                } else {
                    succeeded(&l, now, source, &s, rng.unit(), same_set("d1"))
                };
            }
            now += 500;
        }
        calls
    }

    #[test]
    fn a_proxy_stays_a_polite_client() {
        let outage: Vec<usize> = (1..=5).map(|seed| per_hour(true, false, seed)).collect();
        let flood_up: Vec<usize> = (1..=5).map(|seed| per_hour(false, true, seed)).collect();
        let flood_down: Vec<usize> = (1..=5).map(|seed| per_hour(true, true, seed)).collect();
        let steady: Vec<usize> = (1..=5).map(|seed| per_hour(false, false, seed)).collect();
        eprintln!("per hour: steady {steady:?} outage {outage:?} kid flood {flood_up:?} both {flood_down:?}");
        assert!(steady.iter().all(|&n| (5..=7).contains(&n)), "{steady:?}");
        assert!(outage.iter().all(|&n| n <= 40), "{outage:?}");
        assert!(flood_up.iter().all(|&n| n <= 20), "{flood_up:?}");
        assert!(flood_down.iter().all(|&n| n <= 40), "{flood_down:?}");
    }

    #[test]
    fn superseded_fingerprints_are_dropped() {
        let t = 1_000_000;
        let first = touch_registry(&Registry::default(), "a", t).unwrap();
        assert!(first.evicted.is_empty());
        assert_eq!(first.registry.get("a"), Some(t));
        assert_eq!(touch_registry(&first.registry, "a", t + 1_999), None);
        let marked = touch_registry(&first.registry, "a", t + 2_000).unwrap();
        assert_eq!(marked.registry.get("a"), Some(t + 2_000));
        let reloaded = touch_registry(&marked.registry, "b", t + 3_000).unwrap();
        assert_eq!(reloaded.registry.seen.len(), 2);
        assert!(reloaded.evicted.is_empty(), "a may still be in use");
        let mut reg = reloaded.registry;
        for now in (t + 5_000..=t + 32_000).step_by(2_000) {
            if let Some(u) = touch_registry(&reg, "b", now) {
                assert!(u.evicted.is_empty(), "{now}");
                reg = u.registry;
            }
        }
        let dropped = touch_registry(&reg, "b", t + 32_001).unwrap();
        assert_eq!(dropped.evicted, vec!["a".to_string()]);
        assert_eq!(dropped.registry.seen, vec![("b".to_string(), t + 32_001)]);
        assert_eq!(
            touch_registry(&dropped.registry, "a", t + 32_002)
                .unwrap()
                .registry
                .seen
                .len(),
            2,
            "a configuration coming back registers again"
        );
    }

    #[test]
    fn the_registry_is_bounded() {
        let mut reg = Registry::default();
        for i in 0..(REGISTRY_MAX as u64 + 5) {
            if let Some(u) = touch_registry(&reg, &format!("fp{i}"), 1_000 + i) {
                reg = u.registry;
            }
        }
        assert_eq!(reg.seen.len(), REGISTRY_MAX);
        assert!(reg.get(&format!("fp{}", REGISTRY_MAX + 4)).is_some());
        assert!(
            reg.get("fp0").is_none(),
            "the least recently seen went first"
        );
        assert_eq!(Registry::decode(&reg.encode()), reg);
        assert_eq!(Registry::decode(b"junk"), Registry::default());
        assert_eq!(meta_key("f"), "aml_auth.jwks.f.meta");
        assert_eq!(keys_key("f"), "aml_auth.jwks.f.keys");
    }
}
