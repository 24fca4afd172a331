//! The JWKS lifecycle as a pure state machine: who fetches and when (lease, refresh with jitter,
//! early refetch for an unknown `kid`, fallback sources, capped backoff), and how fresh the key
//! set is. The host keeps [`Meta`] in proxy-wasm shared data and writes it with compare-and-swap,
//! so one fetch per period happens per Envoy process whatever the number of workers.

use serde::{Deserialize, Serialize};

/// Shortest interval between two early refetches triggered by unknown `kid`s.
pub const EARLY_REFETCH_MIN_INTERVAL_MS: u64 = 30_000;
/// First retry delay after a round in which every source failed.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// Longest retry delay after failures (also capped by the refresh interval).
pub const BACKOFF_CAP_MS: u64 = 60_000;
/// How long a lease outlives the fetch timeout, covering a worker that vanished mid-fetch.
pub const LEASE_MARGIN_MS: u64 = 2_000;

/// The shared record of one JWKS configuration, as stored in shared data (JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Version of the stored key set; 0 while none was ever fetched.
    pub version: u64,
    /// When the stored key set was fetched (ms since the Unix epoch).
    pub fetched_at_ms: u64,
    /// Index of the source the stored key set came from.
    pub fetched_from: usize,
    /// When the next fetch is due (ms).
    pub next_attempt_ms: u64,
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
}

impl Meta {
    /// Encodes for shared data.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes from shared data; anything unreadable counts as no record.
    pub fn decode(bytes: &[u8]) -> Option<Meta> {
        serde_json::from_slice(bytes).ok()
    }

    fn lease_active(&self, now_ms: u64) -> bool {
        self.lease_owner != 0 && now_ms < self.lease_until_ms
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
    /// Nothing to fetch (not due, or another context holds the lease).
    Idle,
    /// Take the lease by writing `meta` with compare-and-swap, then fetch from `source`.
    Fetch {
        /// Index of the source to fetch from.
        source: usize,
        /// The record to write; a failed compare-and-swap means another context won.
        meta: Meta,
    },
}

/// Decides whether this context should fetch now. `early_wanted` is set when a request carried
/// an unknown `kid` since the last tick.
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
    let scheduled = now_ms >= meta.next_attempt_ms;
    let early = early_wanted
        && meta.version > 0
        && now_ms
            >= meta
                .last_early_ms
                .saturating_add(EARLY_REFETCH_MIN_INTERVAL_MS);
    if !scheduled && !early {
        return TickDecision::Idle;
    }
    let source = if meta.attempt_source < sources.len() {
        meta.attempt_source
    } else {
        0
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
    if early && !scheduled {
        next.last_early_ms = now_ms;
    }
    TickDecision::Fetch { source, meta: next }
}

/// The record after a successful fetch from `source`. `jitter` in [-1, 1] spreads the next
/// refresh over ±10% of the period so a fleet of proxies does not fetch in step.
pub fn succeeded(
    meta: &Meta,
    now_ms: u64,
    source: usize,
    sources: &[SourceTiming],
    jitter: f64,
) -> Meta {
    let refresh = sources.get(source).map_or(BACKOFF_CAP_MS, |t| t.refresh_ms);
    Meta {
        version: meta.version.saturating_add(1),
        fetched_at_ms: now_ms,
        fetched_from: source,
        next_attempt_ms: now_ms.saturating_add(jittered(refresh, jitter)),
        attempt_source: 0,
        failures: 0,
        lease_owner: 0,
        lease_until_ms: 0,
        last_early_ms: meta.last_early_ms,
    }
}

/// The record after a failed fetch from `source`: the next source is tried at once; when the
/// last one failed, the round restarts from the first after a capped exponential backoff. The
/// stored key set is kept.
pub fn failed(
    meta: &Meta,
    now_ms: u64,
    source: usize,
    sources: &[SourceTiming],
    jitter: f64,
) -> Meta {
    let mut next = meta.clone();
    next.lease_owner = 0;
    next.lease_until_ms = 0;
    if source.saturating_add(1) < sources.len() {
        next.attempt_source = source.saturating_add(1);
        next.next_attempt_ms = now_ms;
        return next;
    }
    next.failures = meta.failures.saturating_add(1);
    next.attempt_source = 0;
    let refresh = sources.first().map_or(BACKOFF_CAP_MS, |t| t.refresh_ms);
    next.next_attempt_ms =
        now_ms.saturating_add(jittered(backoff_ms(next.failures, refresh), jitter));
    next
}

/// Delay before retrying after `failures` consecutive failed rounds: 1 s doubling, capped at
/// 60 s and at the refresh period.
pub fn backoff_ms(failures: u32, refresh_ms: u64) -> u64 {
    let cap = BACKOFF_CAP_MS.min(refresh_ms).max(BACKOFF_BASE_MS);
    let shift = failures.saturating_sub(1).min(16);
    BACKOFF_BASE_MS.saturating_mul(1u64 << shift).min(cap)
}

fn jittered(period_ms: u64, jitter: f64) -> u64 {
    let j = if jitter.is_finite() {
        jitter.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let delta = (period_ms as f64) * 0.1 * j;
    let value = (period_ms as f64) + delta;
    if value < 1.0 {
        1
    } else {
        value as u64
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
    let max_stale = sources
        .get(meta.fetched_from)
        .or_else(|| sources.first())
        .map_or(0, |t| t.max_stale_ms);
    if now_ms.saturating_sub(meta.fetched_at_ms) > max_stale {
        Freshness::Stale
    } else {
        Freshness::Fresh
    }
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

/// Why one fetch failed; each has a stable code, counted as `aml_auth.jwks.fetch_failure.<code>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchFailure {
    /// The host refused to start the call (unknown cluster, bad headers).
    DispatchFailed,
    /// The call broke before the whole response arrived: connection refused or reset, closed
    /// mid-body, a stall past the timeout once the response had started, or a body over Envoy's
    /// buffer limit for a call (Envoy 1.40 reports all of these as `reset`).
    Reset,
    /// The call ended with no response and no reason from the host.
    NoResponse,
    /// 504: Envoy's own answer when the timeout passes before the response starts.
    Timeout,
    /// A status other than 200.
    BadStatus,
    /// A 200 whose body is over [`MAX_JWKS_BYTES`].
    TooLarge,
    /// A 200 whose body the host could not hand over.
    BodyUnreadable,
    /// A body that is not a usable JWKS.
    Jwks(crate::token::jwks::JwksError),
    /// The source's discovery document could not be fetched or was refused (its own reason is
    /// counted under `aml_auth.jwks.discovery.fetch_failure.<reason>`).
    Discovery,
}

impl FetchFailure {
    /// Short stable code for logs and stats.
    pub fn code(&self) -> &'static str {
        match self {
            FetchFailure::DispatchFailed => "dispatch_failed",
            FetchFailure::Reset => "reset",
            FetchFailure::NoResponse => "no_response",
            FetchFailure::Timeout => "timeout",
            FetchFailure::BadStatus => "bad_status",
            FetchFailure::TooLarge => "too_large",
            FetchFailure::BodyUnreadable => "body_unreadable",
            FetchFailure::Jwks(e) => e.as_str(),
            FetchFailure::Discovery => "discovery_failed",
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
}

/// Classifies a finished call before its body is read: `Ok` means read the body.
pub fn classify_head(head: &CallHead<'_>) -> Result<(), FetchFailure> {
    match head.status {
        Some(b"200") if head.body_size > MAX_JWKS_BYTES => Err(FetchFailure::TooLarge),
        Some(b"200") => Ok(()),
        Some(b"504") => Err(FetchFailure::Timeout),
        Some(_) => Err(FetchFailure::BadStatus),
        None => Err(match head.host_status {
            Some((HOST_BROKEN_CONNECTION, _)) => FetchFailure::Reset,
            Some((_, message)) if contains(message, b"reset") => FetchFailure::Reset,
            _ => FetchFailure::NoResponse,
        }),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
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
            TickDecision::Fetch { source, meta } => (source, meta),
            TickDecision::Idle => panic!("expected a fetch"),
        }
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
    fn success_schedules_the_next_refresh_with_jitter() {
        let s = sources(1);
        let (_, leased) = take(tick(&Meta::default(), 1_000, A, false, &s));
        let done = succeeded(&leased, 2_000, 0, &s, 0.0);
        assert_eq!(done.version, 1);
        assert_eq!(done.fetched_at_ms, 2_000);
        assert_eq!(done.next_attempt_ms, 602_000);
        assert_eq!(done.lease_owner, 0);
        assert_eq!(
            succeeded(&leased, 2_000, 0, &s, 1.0).next_attempt_ms,
            662_000
        );
        assert_eq!(
            succeeded(&leased, 2_000, 0, &s, -1.0).next_attempt_ms,
            542_000
        );
        assert_eq!(
            succeeded(&leased, 2_000, 0, &s, f64::NAN).next_attempt_ms,
            602_000
        );
        assert_eq!(tick(&done, 601_999, B, false, &s), TickDecision::Idle);
        assert!(matches!(
            tick(&done, 602_000, B, false, &s),
            TickDecision::Fetch { .. }
        ));
    }

    #[test]
    fn failures_fall_back_through_sources_then_back_off() {
        let s = sources(2);
        let (src, leased) = take(tick(&Meta::default(), 0, A, false, &s));
        assert_eq!(src, 0);
        let after_first = failed(&leased, 100, 0, &s, 0.0);
        assert_eq!(
            (after_first.attempt_source, after_first.next_attempt_ms),
            (1, 100)
        );
        assert_eq!(after_first.failures, 0);
        let (src, leased) = take(tick(&after_first, 100, B, false, &s));
        assert_eq!(src, 1, "the paired region is tried next");
        let round_failed = failed(&leased, 200, 1, &s, 0.0);
        assert_eq!(round_failed.failures, 1);
        assert_eq!(round_failed.attempt_source, 0);
        assert_eq!(round_failed.next_attempt_ms, 200 + BACKOFF_BASE_MS);
        let ok = succeeded(&round_failed, 5_000, 0, &s, 0.0);
        assert_eq!((ok.failures, ok.version), (0, 1));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let table = [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (6, 32_000),
            (7, 60_000),
            (40, 60_000),
            (u32::MAX, 60_000),
        ];
        for (failures, want) in table {
            assert_eq!(backoff_ms(failures, 600_000), want, "{failures}");
        }
        assert_eq!(backoff_ms(10, 5_000), 5_000, "capped by the refresh period");
        assert_eq!(backoff_ms(10, 10), BACKOFF_BASE_MS);
    }

    #[test]
    fn failure_keeps_the_key_set() {
        let s = sources(1);
        let ok = succeeded(&Meta::default(), 1_000, 0, &s, 0.0);
        let (_, leased) = take(tick(&ok, 700_000, A, false, &s));
        let bad = failed(&leased, 700_100, 0, &s, 0.0);
        assert_eq!((bad.version, bad.fetched_at_ms), (1, 1_000));
    }

    #[test]
    fn early_refetch_is_rate_limited() {
        let s = sources(1);
        let t = 1_700_000_000_000;
        let ok = succeeded(&Meta::default(), t, 0, &s, 0.0);
        assert_eq!(tick(&ok, t + 1_000, A, false, &s), TickDecision::Idle);
        let (_, early) = take(tick(&ok, t + 1_000, A, true, &s));
        assert_eq!(early.last_early_ms, t + 1_000);
        let done = succeeded(&early, t + 1_100, 0, &s, 0.0);
        assert_eq!(done.last_early_ms, t + 1_000);
        assert_eq!(tick(&done, t + 30_999, A, true, &s), TickDecision::Idle);
        assert!(matches!(
            tick(&done, t + 31_000, A, true, &s),
            TickDecision::Fetch { .. }
        ));
        let never_fetched = Meta {
            next_attempt_ms: 50_000,
            ..Meta::default()
        };
        assert_eq!(
            tick(&never_fetched, 40_000, A, true, &s),
            TickDecision::Idle,
            "before a first set exists, backoff rules, not kid misses"
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
        let ok = succeeded(&Meta::default(), 1_000, 0, &s, 0.0);
        assert_eq!(freshness(&ok, 31_000, &s), Freshness::Fresh);
        assert_eq!(freshness(&ok, 31_001, &s), Freshness::Stale);
    }

    #[test]
    fn meta_and_keys_round_trip() {
        let s = sources(1);
        let ok = succeeded(&Meta::default(), 1_000, 0, &s, 0.3);
        assert_eq!(Meta::decode(&ok.encode()), Some(ok));
        assert_eq!(Meta::decode(b"garbage"), None);
        let stored = encode_keys(7, b"{\"keys\":[]}");
        assert_eq!(decode_keys(&stored, 7), Some(&b"{\"keys\":[]}"[..]));
        assert_eq!(decode_keys(&stored, 8), None);
        assert_eq!(decode_keys(b"nonsense", 7), None);
        assert_eq!(decode_keys(b"7\n", 7), Some(&b""[..]));
    }

    #[test]
    fn call_outcomes_are_classified() {
        let head = |status: Option<&'static [u8]>, host: Option<(u32, &'static [u8])>, size| {
            classify_head(&CallHead {
                status,
                host_status: host,
                body_size: size,
            })
        };
        let table: Vec<(Result<(), FetchFailure>, Result<(), FetchFailure>)> = vec![
            (head(Some(b"200"), Some((0, b"")), 10), Ok(())),
            (head(Some(b"200"), None, MAX_JWKS_BYTES), Ok(())),
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
