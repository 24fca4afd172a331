//! The attack matrix as data: every hostile request as a named row with the status and reason
//! the filter must answer. Shared by `tests/attack_matrix.rs` (one request per row against a real
//! Envoy) and `tests/soak.rs` (a million of them, mixed with valid requests and random bytes).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use aml_auth_filter::signing::{jwks, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

use crate::common::{signing_key, unix_now, AUDIENCE, ISSUER};

/// Keys of the key-mode service.
pub const PRIMARY: &str = "primary-Key_0123456789abcdefghij";
/// Secondary key of the key-mode service.
pub const SECONDARY: &str = "secondary-Key~9876543210zyxwvuts";

/// Clock skew configured in token mode (seconds).
pub const SKEW: i64 = 60;
/// Maximum token lifetime configured in token mode (seconds).
pub const MAX_LIFETIME: i64 = 3_600;

/// How the request carries its credential.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No Authorization header.
    Absent,
    /// One Authorization header with exactly these value bytes.
    One(Vec<u8>),
    /// Several Authorization headers.
    Many(Vec<Vec<u8>>),
}

/// One hostile (or, for the few documented acceptances, valid) request and its expected answer.
#[derive(Clone, Debug)]
pub struct Case {
    /// Row name, as listed in the proof table of `docs/security.md`.
    pub name: String,
    /// The credential.
    pub auth: Auth,
    /// Expected status.
    pub status: u16,
    /// Expected body `reason`; `None` when Envoy's codec answers (no body from the filter) or for 200.
    pub reason: Option<&'static str>,
}

impl Case {
    fn new(name: impl Into<String>, auth: Auth, status: u16, reason: Option<&'static str>) -> Case {
        Case {
            name: name.into(),
            auth,
            status,
            reason,
        }
    }

    /// A row refused by the filter with 401 and `reason`.
    pub fn refused(name: impl Into<String>, auth: Auth, reason: &'static str) -> Case {
        Case::new(name, auth, 401, Some(reason))
    }

    /// A row whose credential is `Bearer <token>`.
    pub fn token(name: impl Into<String>, token: &str, status: u16, reason: &'static str) -> Case {
        Case::new(name, bearer(token), status, Some(reason))
    }

    /// A row that must be forwarded (documented acceptance).
    pub fn accepted(name: impl Into<String>, token: &str) -> Case {
        Case::new(name, bearer(token), 200, None)
    }

    /// A row Envoy's HTTP codec refuses before any filter runs.
    pub fn codec(name: impl Into<String>, auth: Auth, status: u16) -> Case {
        Case::new(name, auth, status, None)
    }
}

/// `Authorization: Bearer <credential>`.
pub fn bearer(credential: &str) -> Auth {
    Auth::One(format!("Bearer {credential}").into_bytes())
}

/// The raw HTTP/1.1 request for a case.
pub fn request_bytes(path: &str, auth: &Auth, keep_alive: bool) -> Vec<u8> {
    let mut out = format!("GET {path} HTTP/1.1\r\nhost: test.local\r\n").into_bytes();
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let values: Vec<&Vec<u8>> = match auth {
        Auth::Absent => Vec::new(),
        Auth::One(v) => vec![v],
        Auth::Many(vs) => vs.iter().collect(),
    };
    for v in values {
        out.extend_from_slice(b"authorization: ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// The signing keys of the token-mode tests and the JWKS that trusts some of them.
pub struct Kit {
    /// Trusted, kid `rsa-a`, no `alg` (admits every RSA algorithm).
    pub rsa_a: SigningKey,
    /// Trusted, kid `rsa-b`, `alg: RS256` only.
    pub rsa_b: SigningKey,
    /// Trusted, kid `p256-a`, ES256.
    pub p256: SigningKey,
    /// Trusted, kid `ed-a`, EdDSA.
    pub ed: SigningKey,
    /// Never trusted: the attacker's own key (RSA-1024).
    pub attacker: SigningKey,
    /// When the tokens were minted.
    pub now: i64,
}

impl Kit {
    /// Loads the test keys; `now` is the minting time.
    pub fn new() -> Kit {
        Kit {
            rsa_a: signing_key("rsa-a.pem"),
            rsa_b: signing_key("rsa-b.pem"),
            p256: signing_key("p256-a.pem"),
            ed: signing_key("ed25519-a.pem"),
            attacker: signing_key("rsa-1024.pem"),
            now: unix_now(),
        }
    }

    /// The JWKS the token-mode service fetches.
    pub fn jwks(&self) -> Value {
        jwks(vec![
            self.rsa_a.public_jwk("rsa-a", None),
            self.rsa_b.public_jwk("rsa-b", Some("RS256")),
            self.p256.public_jwk("p256-a", Some("ES256")),
            self.ed.public_jwk("ed-a", Some("EdDSA")),
        ])
    }

    /// Claims of a valid token: 30 minutes left, well inside the lifetime cap.
    pub fn claims(&self) -> Value {
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": self.now, "nbf": self.now, "exp": self.now + 1_800})
    }

    /// The claims with members replaced (`null` removes a member).
    pub fn claims_with(&self, patch: Value) -> Value {
        let mut claims = self.claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    /// A valid ES256 token.
    pub fn valid(&self) -> String {
        self.es(&self.claims())
    }

    /// A valid token for every algorithm, for the soak's accepted traffic.
    pub fn valid_all(&self) -> Vec<String> {
        let c = self.claims();
        vec![
            self.rsa_a.sign("RS256", Some("rsa-a"), &c).unwrap(),
            self.rsa_a.sign("PS256", Some("rsa-a"), &c).unwrap(),
            self.rsa_b.sign("RS256", Some("rsa-b"), &c).unwrap(),
            self.p256.sign("ES256", Some("p256-a"), &c).unwrap(),
            self.ed.sign("EdDSA", Some("ed-a"), &c).unwrap(),
        ]
    }

    /// ES256 under kid `p256-a` with these claims.
    pub fn es(&self, claims: &Value) -> String {
        self.p256.sign("ES256", Some("p256-a"), claims).unwrap()
    }

    /// ES256 with these exact header and payload texts.
    pub fn es_raw(&self, header: &str, payload: &str) -> String {
        self.p256.sign_raw("ES256", header, payload).unwrap()
    }

    fn es_header(&self) -> String {
        r#"{"alg":"ES256","typ":"JWT","kid":"p256-a"}"#.to_string()
    }

    /// A token over raw header and payload bytes (not necessarily UTF-8), signed by `key`.
    pub fn sign_bytes(&self, key: &SigningKey, alg: &str, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = key.sign_bytes(alg, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig))
    }

    /// Replaces the signature part of `token` with these bytes.
    fn with_sig(token: &str, sig: &[u8]) -> String {
        let (input, _) = token.rsplit_once('.').unwrap();
        format!("{input}.{}", b64(sig))
    }

    fn hs256(&self, header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(mac.finalize().into_bytes()))
    }
}

impl Default for Kit {
    fn default() -> Self {
        Kit::new()
    }
}

/// Header rows shared by both modes (the credential is refused before any key or token logic).
/// `joined` is the reason for the credential Envoy forwards when it drops a bare CR (the two
/// copies of `valid` joined into one).
fn credential_rows(valid: &str, joined: &'static str) -> Vec<Case> {
    let long = format!("Bearer {}", "a".repeat(40 * 1024));
    vec![
        Case::refused("headers: no credential", Auth::Absent, "missing_credential"),
        Case::refused(
            "headers: empty credential (`Bearer`)",
            Auth::One(b"Bearer".to_vec()),
            "empty_credential",
        ),
        Case::refused(
            "headers: empty credential (`Bearer` and spaces)",
            Auth::One(b"Bearer    ".to_vec()),
            "empty_credential",
        ),
        Case::refused(
            "headers: empty Authorization value",
            Auth::One(Vec::new()),
            "missing_credential",
        ),
        Case::refused(
            "headers: `Bearer` with no space",
            Auth::One(format!("Bearer{valid}").into_bytes()),
            "wrong_scheme",
        ),
        Case::refused(
            "headers: two Authorization headers, both valid",
            Auth::Many(vec![
                format!("Bearer {valid}").into_bytes(),
                format!("Bearer {valid}").into_bytes(),
            ]),
            "multiple_authorization",
        ),
        Case::refused(
            "headers: two credentials joined by a comma",
            Auth::One(format!("Bearer {valid}, Bearer {valid}").into_bytes()),
            "multiple_authorization",
        ),
        Case::refused(
            "headers: Basic scheme",
            Auth::One(format!("Basic {}", b64(format!("user:{valid}"))).into_bytes()),
            "wrong_scheme",
        ),
        Case::refused(
            "headers: Digest scheme",
            Auth::One(b"Digest username=\"u\", realm=\"aml\", nonce=\"n\"".to_vec()),
            "multiple_authorization",
        ),
        Case::refused(
            "headers: Digest scheme without commas",
            Auth::One(b"Digest username=\"u\"".to_vec()),
            "wrong_scheme",
        ),
        Case::refused(
            "headers: inner space in the credential",
            Auth::One(format!("Bearer {valid} {valid}").into_bytes()),
            "malformed_credential",
        ),
        Case::refused(
            "headers: inner tab in the credential",
            Auth::One(format!("Bearer {valid}\t{valid}").into_bytes()),
            "malformed_credential",
        ),
        Case::refused(
            "headers: tab between scheme and credential",
            Auth::One(format!("Bearer\t{valid}").into_bytes()),
            "malformed_credential",
        ),
        Case::refused(
            "headers: non-ASCII bytes (invalid UTF-8) in the credential",
            Auth::One(b"Bearer abc\xff\xfedef".to_vec()),
            "malformed_credential",
        ),
        Case::refused(
            "headers: quoted credential",
            Auth::One(format!("Bearer \"{valid}\"").into_bytes()),
            "malformed_credential",
        ),
        Case::codec(
            "headers: CR LF inside the credential, then a line without a colon (codec)",
            Auth::One(format!("Bearer {valid}\r\n{valid}").into_bytes()),
            400,
        ),
        Case::refused(
            "headers: CR LF SP inside the credential (obs-fold, unfolded to a space by Envoy)",
            Auth::One(format!("Bearer {valid}\r\n {valid}").into_bytes()),
            "malformed_credential",
        ),
        Case::refused(
            "headers: bare CR inside the credential (dropped by Envoy's codec)",
            Auth::One(format!("Bearer {valid}\r{valid}").into_bytes()),
            joined,
        ),
        Case::codec(
            "headers: bare LF inside the credential (codec)",
            Auth::One(format!("Bearer {valid}\n{valid}").into_bytes()),
            400,
        ),
        Case::codec(
            "headers: NUL inside the credential (codec)",
            Auth::One(format!("Bearer {valid}\0{valid}").into_bytes()),
            400,
        ),
        Case::codec(
            "headers: control byte 0x01 inside the credential (codec)",
            Auth::One(format!("Bearer {valid}\u{1}{valid}").into_bytes()),
            400,
        ),
        Case::codec(
            "headers: DEL inside the credential (codec)",
            Auth::One(format!("Bearer {valid}\u{7f}{valid}").into_bytes()),
            400,
        ),
        Case::refused(
            "headers: credential of 40 KiB (over max_token_bytes and any key)",
            Auth::One(long.into_bytes()),
            "credential_too_long",
        ),
    ]
}

/// Rows for the key-mode service.
pub fn key_mode_rows(kit: &Kit) -> Vec<Case> {
    let mut rows = credential_rows(PRIMARY, "invalid_key");
    let prefix = &PRIMARY[..PRIMARY.len() - 1];
    rows.extend([
        Case::refused("headers: wrong key", bearer("wrong-key"), "invalid_key"),
        Case::refused(
            "headers: a prefix of the primary key",
            bearer(prefix),
            "invalid_key",
        ),
        Case::refused(
            "headers: the primary key extended by one character",
            bearer(&format!("{PRIMARY}x")),
            "invalid_key",
        ),
        Case::refused(
            "headers: both keys concatenated",
            bearer(&format!("{PRIMARY}{SECONDARY}")),
            "invalid_key",
        ),
        Case::refused(
            "headers: the primary key's sha256 digest",
            bearer(&aml_auth_filter::keys::KeyDigest::of(PRIMARY.as_bytes()).to_configured()[7..]),
            "invalid_key",
        ),
        Case::refused(
            "headers: key-mode service given a valid token",
            bearer(&kit.valid()),
            "invalid_key",
        ),
    ]);
    rows
}

/// Header rows for the token-mode service.
pub fn token_header_rows(kit: &Kit) -> Vec<Case> {
    let mut rows = credential_rows(&kit.valid(), "malformed_token");
    rows.push(Case::refused(
        "headers: token-mode service given a valid key",
        bearer(PRIMARY),
        "malformed_token",
    ));
    rows.push(Case::refused(
        "headers: token-mode service given a key that has two dots",
        bearer("abc.def.ghi"),
        "bad_base64",
    ));
    rows
}

/// Structure rows (token mode).
pub fn structure_rows(kit: &Kit) -> Vec<Case> {
    let t = kit.valid();
    let p: Vec<&str> = t.split('.').collect();
    let (h, pl, s) = (p[0], p[1], p[2]);
    let claims = kit.claims().to_string();
    let hdr = kit.es_header();
    let trailing = {
        // 64 signature bytes: 86 characters, the last one carries 4 unused bits.
        let mut chars: Vec<char> = s.chars().collect();
        let last = chars.pop().unwrap();
        let alphabet: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect();
        let v = alphabet.iter().position(|c| *c == last).unwrap();
        chars.push(alphabet[(v & !0xf) | 0x1]);
        chars.into_iter().collect::<String>()
    };
    let json_serialization = format!(r#"{{"payload":"{pl}","protected":"{h}","signature":"{s}"}}"#);
    let flattened_no_commas = format!(r#"{{"payload":"{pl}"}}"#);
    let mut bad_utf8_header = br#"{"alg":"ES256","kid":"p256-a","x":""#.to_vec();
    bad_utf8_header.extend_from_slice(b"\xff\xfe\"}");
    let mut bad_utf8_payload = claims.as_bytes()[..claims.len() - 1].to_vec();
    bad_utf8_payload.extend_from_slice(b",\"x\":\"\xc3\x28\"}");
    let deep = format!(
        r#"{{"iss":"{ISSUER}","x":{}{}}}"#,
        "[".repeat(1_000),
        "]".repeat(1_000)
    );
    let dup_payload = |member: &str, value: &str| {
        format!("{},\"{member}\":{value}}}", &claims[..claims.len() - 1])
    };
    let plus = format!("{h}.{pl}.{}+{}", &s[..10], &s[11..]);
    let slash = format!("{h}.{pl}.{}/{}", &s[..10], &s[11..]);
    vec![
        Case::token(
            "structure: two parts",
            &format!("{h}.{pl}"),
            401,
            "malformed_token",
        ),
        Case::token(
            "structure: four parts",
            &format!("{t}.{s}"),
            401,
            "malformed_token",
        ),
        Case::token(
            "structure: five parts (JWE shape)",
            &format!("{t}.a.b"),
            401,
            "malformed_token",
        ),
        Case::token(
            "structure: empty signature part",
            &format!("{h}.{pl}."),
            401,
            "malformed_token",
        ),
        Case::token("structure: only dots", "..", 401, "malformed_token"),
        Case::token(
            "structure: `=` padding on the signature",
            &format!("{t}="),
            401,
            "bad_base64",
        ),
        Case::token(
            "structure: `==` padding on the signature",
            &format!("{t}=="),
            401,
            "bad_base64",
        ),
        Case::refused(
            "structure: `=` padding on the header (not token68)",
            bearer(&format!("{h}=.{pl}.{s}")),
            "malformed_credential",
        ),
        Case::token("structure: `+` in the signature", &plus, 401, "bad_base64"),
        Case::token("structure: `/` in the signature", &slash, 401, "bad_base64"),
        Case::token(
            "structure: non-zero trailing bits in the signature",
            &format!("{h}.{pl}.{trailing}"),
            401,
            "bad_base64",
        ),
        Case::refused(
            "structure: JWS JSON serialization (commas)",
            bearer(&json_serialization),
            "multiple_authorization",
        ),
        Case::refused(
            "structure: JWS flattened JSON serialization, one member",
            bearer(&flattened_no_commas),
            "malformed_credential",
        ),
        Case::token(
            "structure: header is a JSON array",
            &kit.es_raw("[]", &claims),
            401,
            "malformed_header",
        ),
        Case::token(
            "structure: header is a JSON string",
            &kit.es_raw("\"ES256\"", &claims),
            401,
            "malformed_header",
        ),
        Case::token(
            "structure: header is not JSON",
            &kit.es_raw("alg=ES256", &claims),
            401,
            "malformed_header",
        ),
        Case::token(
            "structure: payload is a JSON array",
            &kit.es_raw(&hdr, "[1]"),
            401,
            "malformed_payload",
        ),
        Case::token(
            "structure: payload is a JSON number",
            &kit.es_raw(&hdr, "42"),
            401,
            "malformed_payload",
        ),
        Case::token(
            "structure: payload is not JSON",
            &kit.es_raw(&hdr, "iss=x"),
            401,
            "malformed_payload",
        ),
        Case::token(
            "structure: header is invalid UTF-8",
            &kit.sign_bytes(&kit.p256, "ES256", &bad_utf8_header, claims.as_bytes()),
            401,
            "malformed_header",
        ),
        Case::token(
            "structure: payload is invalid UTF-8",
            &kit.sign_bytes(&kit.p256, "ES256", hdr.as_bytes(), &bad_utf8_payload),
            401,
            "malformed_payload",
        ),
        Case::token(
            "structure: payload nested 1000 deep",
            &kit.es_raw(&hdr, &deep),
            401,
            "malformed_payload",
        ),
        Case::token(
            "structure: payload nested 65 levels (cap 64)",
            &kit.es_raw(
                &hdr,
                &format!(
                    r#"{{"iss":"{ISSUER}","x":{}{}}}"#,
                    "[".repeat(64),
                    "]".repeat(64)
                ),
            ),
            401,
            "malformed_payload",
        ),
        Case::token(
            "structure: duplicate `alg`",
            &kit.es_raw(r#"{"alg":"ES256","kid":"p256-a","alg":"ES256"}"#, &claims),
            401,
            "duplicate_member",
        ),
        Case::token(
            "structure: duplicate `alg`, second is none",
            &kit.es_raw(r#"{"alg":"ES256","kid":"p256-a","alg":"none"}"#, &claims),
            401,
            "duplicate_member",
        ),
        Case::token(
            "structure: duplicate `kid`",
            &kit.es_raw(r#"{"alg":"ES256","kid":"p256-a","kid":"rsa-a"}"#, &claims),
            401,
            "duplicate_member",
        ),
        Case::token(
            "structure: duplicate `exp`",
            &kit.es_raw(&hdr, &dup_payload("exp", &(kit.now + 99_999).to_string())),
            401,
            "duplicate_member",
        ),
        Case::token(
            "structure: duplicate `aud`",
            &kit.es_raw(&hdr, &dup_payload("aud", "\"https://other.example\"")),
            401,
            "duplicate_member",
        ),
    ]
}

/// JOSE header rows (token mode). `attacker_url` is a server that must never be contacted.
pub fn header_rows(kit: &Kit, attacker_url: &str) -> Vec<Case> {
    let claims = kit.claims().to_string();
    let fake_sig = b64([7u8; 64]);
    let unsigned = |header: &str| format!("{}.{}.", b64(header), b64(&claims));
    let with_fake = |header: &str| format!("{}.{}.{fake_sig}", b64(header), b64(&claims));
    let SigningKey::Rsa(rsa_a) = &kit.rsa_a else {
        panic!("rsa-a.pem is not RSA")
    };
    let public = rsa_a.to_public_key();
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let der = public.to_public_key_der().unwrap();
    let n = public.n().to_bytes_be();
    let hs = r#"{"alg":"HS256","typ":"JWT","kid":"rsa-a"}"#;
    let attacker_sign = |header: Value| {
        kit.attacker
            .sign_raw("RS256", &header.to_string(), &claims)
            .unwrap()
    };
    let attacker_jwk = kit.attacker.public_jwk("attacker", Some("RS256"));
    let kid_40k = "k".repeat(40 * 1024);
    let kid_300 = "k".repeat(300);
    let es_with = |extra: Value| {
        let mut header = json!({"alg": "ES256", "typ": "JWT", "kid": "p256-a"});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        kit.es_raw(&header.to_string(), &claims)
    };
    vec![
        Case::token(
            "header: alg none, empty signature",
            &unsigned(r#"{"alg":"none"}"#),
            401,
            "malformed_token",
        ),
        Case::token(
            "header: alg None, empty signature",
            &unsigned(r#"{"alg":"None"}"#),
            401,
            "malformed_token",
        ),
        Case::token(
            "header: alg NONE, empty signature",
            &unsigned(r#"{"alg":"NONE"}"#),
            401,
            "malformed_token",
        ),
        Case::token(
            "header: alg none with a signature",
            &with_fake(r#"{"alg":"none","kid":"rsa-a"}"#),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: alg None with a signature",
            &with_fake(r#"{"alg":"None"}"#),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: alg NONE with a signature",
            &with_fake(r#"{"alg":"NONE"}"#),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: HS256 keyed with the RSA public key PEM",
            &kit.hs256(hs, &claims, pem.as_bytes()),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: HS256 keyed with the RSA public key DER",
            &kit.hs256(hs, &claims, der.as_bytes()),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: HS256 keyed with the RSA modulus bytes",
            &kit.hs256(hs, &claims, &n),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: lowercase rs256",
            &kit.rsa_a
                .sign_raw("RS256", r#"{"alg":"rs256","kid":"rsa-a"}"#, &claims)
                .unwrap(),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: unsupported alg ES256K",
            &with_fake(r#"{"alg":"ES256K","kid":"p256-a"}"#),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: ES384 under the kid of a P-256 key",
            &with_fake(r#"{"alg":"ES384","kid":"p256-a"}"#),
            401,
            "key_alg_mismatch",
        ),
        Case::token(
            "header: unsupported alg RSA1_5",
            &with_fake(r#"{"alg":"RSA1_5","kid":"rsa-a"}"#),
            401,
            "unsupported_alg",
        ),
        Case::token(
            "header: alg missing",
            &with_fake(r#"{"kid":"rsa-a"}"#),
            401,
            "malformed_header",
        ),
        Case::token(
            "header: alg not a string",
            &with_fake(r#"{"alg":256,"kid":"rsa-a"}"#),
            401,
            "malformed_header",
        ),
        Case::token(
            "header: PS256 under a JWK restricted to RS256",
            &kit.rsa_b
                .sign("PS256", Some("rsa-b"), &kit.claims())
                .unwrap(),
            401,
            "key_alg_mismatch",
        ),
        Case::token(
            "header: ES256 under the kid of an RSA key",
            &kit.p256
                .sign("ES256", Some("rsa-a"), &kit.claims())
                .unwrap(),
            401,
            "key_alg_mismatch",
        ),
        Case::token(
            "header: RS256 under the kid of the EdDSA key",
            &kit.rsa_a
                .sign("RS256", Some("ed-a"), &kit.claims())
                .unwrap(),
            401,
            "key_alg_mismatch",
        ),
        Case::token(
            "header: kid unknown",
            &es_with(json!({"kid": "no-such-kid"})),
            401,
            "unknown_kid",
        ),
        Case::accepted(
            "header: kid empty (no kid: the one ES256 key is tried)",
            &es_with(json!({"kid": ""})),
        ),
        Case::token(
            "header: kid differs in case",
            &es_with(json!({"kid": "P256-A"})),
            401,
            "unknown_kid",
        ),
        Case::token(
            "header: kid 40 KB long (credential over max_token_bytes)",
            &es_with(json!({ "kid": kid_40k })),
            401,
            "credential_too_long",
        ),
        Case::token(
            "header: kid 300 bytes long",
            &es_with(json!({ "kid": kid_300 })),
            401,
            "invalid_kid",
        ),
        Case::token(
            "header: kid path traversal",
            &es_with(json!({"kid": "../../../../etc/passwd"})),
            401,
            "unknown_kid",
        ),
        Case::token(
            "header: kid with NUL",
            &es_with(json!({"kid": "p256-a\u{0}"})),
            401,
            "unknown_kid",
        ),
        Case::token(
            "header: kid a number",
            &es_with(json!({"kid": 1})),
            401,
            "invalid_kid",
        ),
        Case::token(
            "header: kid an object",
            &es_with(json!({"kid": {"k": "p256-a"}})),
            401,
            "invalid_kid",
        ),
        Case::token(
            "header: jku to the attacker's JWKS",
            &attacker_sign(
                json!({"alg": "RS256", "kid": "rsa-a", "jku": format!("{attacker_url}/jwks")}),
            ),
            401,
            "invalid_signature",
        ),
        Case::token(
            "header: jku with the attacker's kid",
            &attacker_sign(
                json!({"alg": "RS256", "kid": "attacker", "jku": format!("{attacker_url}/jwks")}),
            ),
            401,
            "unknown_kid",
        ),
        Case::token(
            "header: x5u to the attacker's certificate",
            &attacker_sign(
                json!({"alg": "RS256", "kid": "rsa-a", "x5u": format!("{attacker_url}/cert.pem")}),
            ),
            401,
            "invalid_signature",
        ),
        Case::token(
            "header: embedded attacker jwk, no kid",
            &attacker_sign(json!({"alg": "RS256", "jwk": attacker_jwk})),
            401,
            "invalid_signature",
        ),
        Case::token(
            "header: embedded attacker jwk, kid of a trusted key",
            &attacker_sign(json!({"alg": "RS256", "kid": "rsa-a", "jwk": attacker_jwk})),
            401,
            "invalid_signature",
        ),
        Case::token(
            "header: x5c attacker chain",
            &attacker_sign(json!({"alg": "RS256", "kid": "rsa-a", "x5c": [b64(der.as_bytes())]})),
            401,
            "invalid_signature",
        ),
        Case::accepted(
            "header: jku/x5u on a genuinely signed token are ignored, never fetched",
            &es_with(
                json!({"jku": format!("{attacker_url}/jwks"), "x5u": format!("{attacker_url}/x")}),
            ),
        ),
        Case::token(
            "header: crit present",
            &es_with(json!({"crit": ["exp"], "exp": 1})),
            401,
            "crit_not_supported",
        ),
        Case::token(
            "header: crit empty array",
            &es_with(json!({"crit": []})),
            401,
            "crit_not_supported",
        ),
        Case::token(
            "header: cty JWT (nested token)",
            &es_with(json!({"cty": "JWT"})),
            401,
            "nested_token",
        ),
        Case::token(
            "header: cty jwt lowercase",
            &es_with(json!({"cty": "jwt"})),
            401,
            "nested_token",
        ),
    ]
}

/// P-256 group order n, big-endian.
pub const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Signature rows (token mode).
pub fn signature_rows(kit: &Kit) -> Vec<Case> {
    let t = kit.es_raw(&kit.es_header(), &kit.claims().to_string());
    let sig = unb64(t.rsplit_once('.').unwrap().1);
    assert_eq!(sig.len(), 64);
    let (r, s) = sig.split_at(32);
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    let der = p256::ecdsa::Signature::from_slice(&sig)
        .unwrap()
        .to_der()
        .as_bytes()
        .to_vec();
    let mut flipped_sig = sig.clone();
    flipped_sig[10] ^= 0x01;
    let header_flipped = kit.es_header().replace("JWT", "JWU");
    let payload_flipped = kit.claims().to_string().replace("user-1", "user-0");
    let (_, rest) = t.split_once('.').unwrap();
    let (payload_b64, sig_b64) = rest.split_once('.').unwrap();
    let (header_b64, _) = t.split_once('.').unwrap();
    let rs = kit
        .rsa_a
        .sign("RS256", Some("rsa-a"), &kit.claims())
        .unwrap();
    let mut rs_sig = unb64(rs.rsplit_once('.').unwrap().1);
    rs_sig[100] ^= 0x80;
    let with_sig = Kit::with_sig;
    vec![
        Case::token(
            "signature: ES256 r=s=0 (CVE-2022-21449)",
            &with_sig(&t, &[0; 64]),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 r=0",
            &with_sig(&t, &cat(&[0; 32], s)),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 s=0",
            &with_sig(&t, &cat(r, &[0; 32])),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 r=n",
            &with_sig(&t, &cat(&P256_N, s)),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 s=n",
            &with_sig(&t, &cat(r, &P256_N)),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 r=s=n",
            &with_sig(&t, &cat(&P256_N, &P256_N)),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 DER-encoded",
            &with_sig(&t, &der),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 63 bytes",
            &with_sig(&t, &sig[..63]),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: ES256 65 bytes",
            &with_sig(&t, &cat(&sig, &[0])),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: flipped bit in the header",
            &format!("{}.{payload_b64}.{sig_b64}", b64(&header_flipped)),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: flipped bit in the payload",
            &format!("{header_b64}.{}.{sig_b64}", b64(&payload_flipped)),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: flipped bit in the ES256 signature",
            &with_sig(&t, &flipped_sig),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: flipped bit in an RS256 signature",
            &with_sig(&rs, &rs_sig),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: RS256 by an untrusted key under a trusted kid",
            &kit.attacker
                .sign("RS256", Some("rsa-a"), &kit.claims())
                .unwrap(),
            401,
            "invalid_signature",
        ),
        Case::token(
            "signature: EdDSA signature truncated",
            &{
                let e = kit.ed.sign("EdDSA", Some("ed-a"), &kit.claims()).unwrap();
                let esig = unb64(e.rsplit_once('.').unwrap().1);
                with_sig(&e, &esig[..63])
            },
            401,
            "invalid_signature",
        ),
    ]
}

/// Claim rows (token mode; skew [`SKEW`], lifetime cap [`MAX_LIFETIME`]).
pub fn claim_rows(kit: &Kit) -> Vec<Case> {
    let now = kit.now;
    let c = |name: &str, patch: Value, status: u16, reason: &'static str| {
        Case::token(name, &kit.es(&kit.claims_with(patch)), status, reason)
    };
    let ok = |name: &str, patch: Value| Case::accepted(name, &kit.es(&kit.claims_with(patch)));
    let bad = "invalid_time_claim";
    let kind = "invalid_claim_type";
    let mut exp_null = kit.claims();
    exp_null["exp"] = Value::Null;
    vec![
        c(
            "claims: exp missing",
            json!({"exp": null}),
            401,
            "missing_exp",
        ),
        c(
            "claims: exp past beyond skew",
            json!({"exp": now - 3_600, "iat": now - 4_000, "nbf": null}),
            401,
            "token_expired",
        ),
        c(
            "claims: exp exactly at the skew boundary (now = exp + skew)",
            json!({"exp": now - SKEW}),
            401,
            "token_expired",
        ),
        c(
            "claims: nbf in the future beyond skew",
            json!({"nbf": now + 3_600}),
            401,
            "token_not_yet_valid",
        ),
        c(
            "claims: iat in the future beyond skew",
            json!({"iat": now + 3_600}),
            401,
            "iat_in_future",
        ),
        c(
            "claims: exp a string",
            json!({"exp": (now + 600).to_string()}),
            401,
            kind,
        ),
        c("claims: exp a bool", json!({"exp": true}), 401, kind),
        Case::token("claims: exp null", &kit.es(&exp_null), 401, kind),
        c(
            "claims: exp an array",
            json!({"exp": [now + 600]}),
            401,
            kind,
        ),
        c("claims: nbf a string", json!({"nbf": "0"}), 401, kind),
        c("claims: nbf a bool", json!({"nbf": false}), 401, kind),
        c("claims: iat a string", json!({"iat": "now"}), 401, kind),
        c("claims: iat a bool", json!({"iat": true}), 401, kind),
        c("claims: sub a number", json!({"sub": 123}), 401, kind),
        c("claims: sub true", json!({"sub": true}), 401, kind),
        c(
            "claims: jti an object",
            json!({"jti": {"id": 1}}),
            401,
            kind,
        ),
        c("claims: iss an array", json!({"iss": [ISSUER]}), 401, kind),
        ok(
            "claims: exp a float (allowed, truncated)",
            json!({"exp": now as f64 + 600.7}),
        ),
        ok(
            "claims: nbf a float (allowed, truncated)",
            json!({"nbf": now as f64 - 0.5}),
        ),
        ok(
            "claims: iat a float (allowed, truncated)",
            json!({"iat": now as f64 - 0.25}),
        ),
        c("claims: exp negative", json!({"exp": -1}), 401, bad),
        c("claims: nbf negative", json!({"nbf": -100}), 401, bad),
        c("claims: iat negative", json!({"iat": -5}), 401, bad),
        c("claims: exp 1e20", json!({"exp": 1e20}), 401, bad),
        c("claims: nbf 1e20", json!({"nbf": 1e20}), 401, bad),
        c("claims: iat 1e20", json!({"iat": 1e20}), 401, bad),
        c("claims: exp u64::MAX", json!({"exp": u64::MAX}), 401, bad),
        c("claims: exp i64::MIN", json!({"exp": i64::MIN}), 401, bad),
        c(
            "claims: nbf -8334601228800",
            json!({"nbf": -8_334_601_228_800_i64}),
            401,
            bad,
        ),
        c(
            "claims: iat -8334601228800",
            json!({"iat": -8_334_601_228_800_i64}),
            401,
            bad,
        ),
        c(
            "claims: aud empty array",
            json!({"aud": []}),
            401,
            "invalid_audience",
        ),
        c("claims: aud a number", json!({"aud": 42}), 401, kind),
        c(
            "claims: aud mixed array",
            json!({"aud": [AUDIENCE, 1]}),
            401,
            kind,
        ),
        c(
            "claims: aud missing",
            json!({"aud": null}),
            401,
            "invalid_audience",
        ),
        c(
            "claims: aud not allowed (valid token)",
            json!({"aud": "https://other.example"}),
            403,
            "audience_not_allowed",
        ),
        c(
            "claims: aud differs only in case",
            json!({"aud": AUDIENCE.to_uppercase()}),
            403,
            "audience_not_allowed",
        ),
        c(
            "claims: iss differs only in case",
            json!({"iss": ISSUER.replace("login", "LOGIN")}),
            401,
            "issuer_mismatch",
        ),
        c(
            "claims: iss missing",
            json!({"iss": null}),
            401,
            "issuer_mismatch",
        ),
        c(
            "claims: lifetime over max_lifetime_seconds",
            json!({"exp": now + MAX_LIFETIME + 600}),
            401,
            "lifetime_too_long",
        ),
        c(
            "claims: lifetime over the cap without iat (counted from now)",
            json!({"iat": null, "exp": now + MAX_LIFETIME + 600}),
            401,
            "lifetime_too_long",
        ),
    ]
}
