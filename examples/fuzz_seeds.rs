//! Writes the fuzz seed corpus: `cargo run --example fuzz_seeds -- fuzz/corpus` (done by
//! `./build.sh fuzz`). Seeds come from the test keys and the shapes the tests use: valid tokens of
//! every algorithm (valid at the fuzz targets' fixed time), hostile variants, JWKS documents,
//! plugin configurations and Authorization headers. The corpus directory is not committed.

use std::path::{Path, PathBuf};

use aml_auth_filter::signing::{jwks, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

const ISSUER: &str = "https://login.microsoftonline.com/tenant-0000/v2.0";
const AUDIENCE: &str = "https://ml.azure.com";
const NOW: i64 = 1_700_000_000;

fn key(name: &str) -> Result<SigningKey, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    SigningKey::from_pem(&pem).map_err(|e| format!("{name}: {e}"))
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join(name), bytes).map_err(|e| format!("{name}: {e}"))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn run(out: &Path) -> Result<usize, String> {
    let rsa_a = key("rsa-a.pem")?;
    let rsa_b = key("rsa-b.pem")?;
    let p256 = key("p256-a.pem")?;
    let ed = key("ed25519-a.pem")?;
    let weak = key("rsa-1024.pem")?;
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": NOW, "nbf": NOW, "exp": NOW + 600});
    let sign = |k: &SigningKey, alg: &str, kid: Option<&str>, c: &Value| {
        k.sign(alg, kid, c).map_err(|e| e.to_string())
    };
    let mut tokens: Vec<(String, String)> = vec![
        (
            "rs256".into(),
            sign(&rsa_a, "RS256", Some("rsa-a"), &claims)?,
        ),
        (
            "rs384".into(),
            sign(&rsa_a, "RS384", Some("rsa-a"), &claims)?,
        ),
        (
            "ps256".into(),
            sign(&rsa_a, "PS256", Some("rsa-a"), &claims)?,
        ),
        (
            "rs256-b".into(),
            sign(&rsa_b, "RS256", Some("rsa-b"), &claims)?,
        ),
        (
            "es256".into(),
            sign(&p256, "ES256", Some("p256-a"), &claims)?,
        ),
        ("eddsa".into(), sign(&ed, "EdDSA", Some("ed-a"), &claims)?),
        ("es256-nokid".into(), sign(&p256, "ES256", None, &claims)?),
        ("weak".into(), sign(&weak, "RS256", Some("rsa-a"), &claims)?),
        (
            "expired".into(),
            sign(
                &p256,
                "ES256",
                Some("p256-a"),
                &json!({"iss": ISSUER, "aud": AUDIENCE, "exp": NOW - 3600}),
            )?,
        ),
        (
            "float-times".into(),
            sign(
                &p256,
                "ES256",
                Some("p256-a"),
                &json!({"iss": ISSUER, "aud": AUDIENCE, "iat": 1.7e9, "exp": 1.7e9 + 600.5}),
            )?,
        ),
        (
            "aud-array".into(),
            sign(
                &ed,
                "EdDSA",
                Some("ed-a"),
                &json!({"iss": ISSUER, "aud": ["x", AUDIENCE], "exp": NOW + 60}),
            )?,
        ),
    ];
    let payload = claims.to_string();
    let hostile_headers = [
        ("none", r#"{"alg":"none"}"#),
        ("hs256", r#"{"alg":"HS256","kid":"rsa-a"}"#),
        (
            "crit",
            r#"{"alg":"ES256","kid":"p256-a","crit":["b64"],"b64":false}"#,
        ),
        ("cty", r#"{"alg":"ES256","kid":"p256-a","cty":"JWT"}"#),
        ("dup", r#"{"alg":"ES256","kid":"p256-a","alg":"none"}"#),
        (
            "jku",
            r#"{"alg":"RS256","kid":"rsa-a","jku":"http://x/jwks","jwk":{"kty":"RSA"}}"#,
        ),
        ("kidnum", r#"{"alg":"ES256","kid":7}"#),
    ];
    for (name, header) in hostile_headers {
        let input = format!("{}.{}", b64(header), b64(&payload));
        tokens.push((
            format!("hostile-{name}"),
            format!("{input}.{}", b64([0u8; 64])),
        ));
    }
    let mut count = 0;
    for (name, token) in &tokens {
        write(out, "jwt_verify", name, token.as_bytes())?;
        let mut clocked = b"#".to_vec();
        clocked.extend_from_slice(&i64::MAX.to_le_bytes());
        clocked.extend_from_slice(token.as_bytes());
        write(out, "jwt_verify", &format!("{name}-clock"), &clocked)?;
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let decode = |t: &str| URL_SAFE_NO_PAD.decode(t).unwrap_or_default();
        let mut structured = decode(h);
        structured.push(b'\n');
        structured.extend_from_slice(&decode(p));
        structured.push(b'\n');
        structured.extend_from_slice(&decode(s));
        write(out, "jwt_json", name, &structured)?;
        write(
            out,
            "credential",
            &format!("bearer-{name}"),
            format!("Bearer {token}").as_bytes(),
        )?;
        count += 4;
    }

    let good = vec![
        rsa_a.public_jwk("rsa-a", None),
        rsa_b.public_jwk("rsa-b", Some("RS256")),
        p256.public_jwk("p256-a", Some("ES256")),
        ed.public_jwk("ed-a", Some("EdDSA")),
    ];
    let mut with_bad = good.clone();
    with_bad.extend([
        weak.public_jwk("weak", None),
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQ", "kid": "tiny"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "short"}),
        json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
        json!({"kty": "RSA", "use": "enc", "key_ops": ["encrypt"], "d": "AA"}),
    ]);
    let jwks_docs = [
        ("good", jwks(good.clone()).to_string()),
        ("mixed", jwks(with_bad).to_string()),
        ("empty", r#"{"keys":[]}"#.to_string()),
        ("not-array", r#"{"keys":{"kty":"RSA"}}"#.to_string()),
        (
            "dup-keys",
            r#"{"keys":[],"keys":[{"kty":"EC"}]}"#.to_string(),
        ),
        (
            "nested",
            format!("{{\"keys\":[{}{}]}}", "[".repeat(200), "]".repeat(200)),
        ),
    ];
    for (name, doc) in &jwks_docs {
        write(out, "jwks_parse", name, doc.as_bytes())?;
        count += 1;
    }

    // verify_diff: [alg, mode, key scalar or seed, message length, message, signature or mask].
    // Mode 1 with a zero mask is the reference's own (valid) signature; mode 5 also drops the
    // coordinates' leading zeros; mode 0 judges the tail as the signature; mode 0x13 truncates.
    let message = b"header.payload";
    for (name, alg, key_len, sig_len) in [
        ("es256", 0u8, 32usize, 64usize),
        ("es384", 1, 48, 96),
        ("es512", 2, 66, 132),
        ("eddsa", 3, 32, 64),
        ("rs256", 4, 0, 256),
        ("ps384", 19, 0, 256),
        ("ps512", 24, 0, 256),
    ] {
        for mode in [0u8, 1, 5, 0x13] {
            let mut seed = vec![alg, mode];
            seed.extend((1..=key_len).map(|i| i as u8));
            seed.push(message.len() as u8);
            seed.extend_from_slice(message);
            seed.extend(std::iter::repeat_n(0u8, sig_len));
            write(out, "verify_diff", &format!("{name}-{mode}"), &seed)?;
            count += 1;
        }
    }

    let configs = [
        (
            "key",
            json!({"primary_key": "pk-0123456789", "secondary_key": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}),
        ),
        (
            "env",
            json!({"primary_key": "env:AML_FUZZ_KEY", "secondary_key": "env:AML_FUZZ_DIGEST", "realm": "scoring"}),
        ),
        ("off", json!({"auth_enabled": false})),
        (
            "token-remote",
            json!({"auth_enabled": false, "token_auth_enabled": true, "token": {
            "issuer": ISSUER, "audiences": [AUDIENCE], "clock_skew_seconds": 60, "max_lifetime_seconds": 3600,
            "remote_jwks": [{"cluster": "aad", "uri": "https://login.microsoftonline.com/tenant/discovery/v2.0/keys", "timeout_seconds": 5, "refresh_interval_seconds": 600, "max_stale_seconds": 86400},
                            {"cluster": "aad2", "uri": "http://paired.example?x=1"}],
            "claim_to_headers": [{"claim": "sub", "header": "x-aml-user"}]}}),
        ),
        (
            "token-local",
            json!({"auth_enabled": false, "token_auth_enabled": true, "token": {"issuer": ISSUER, "local_jwks": jwks(good)}}),
        ),
        (
            "services",
            json!({"primary_key": "pk-0123456789", "token": {"issuer": ISSUER, "remote_jwks": {"cluster": "c", "uri": "https://h/keys"}},
            "services": [
                {"name": "a", "path_prefix": "/api/v1/service/a/", "hosts": ["Example.com", "example.com:8080"]},
                {"name": "b", "path_prefix": "/api/v1/service/b/", "auth_enabled": false, "token_auth_enabled": true, "token": {"audiences": ["x"]}},
                {"name": "c", "path_prefix": "/", "auth_enabled": false}
            ]}),
        ),
    ];
    for (name, config) in &configs {
        write(out, "config_parse", name, config.to_string().as_bytes())?;
        count += 1;
    }

    let headers: [(&str, &[u8]); 10] = [
        ("key", b"Bearer pk-0123456789"),
        ("spaces", b"bearer    abc=="),
        ("basic", b"Basic dXNlcjpwYXNz"),
        ("digest", b"Digest username=\"u\", realm=\"r\""),
        ("empty", b"Bearer "),
        ("tab", b"Bearer\tabc"),
        ("comma", b"Bearer a, Bearer b"),
        ("high", b"Bearer \xff\xfe"),
        (
            "lines",
            b"x-other:1\nauthorization:Bearer abc\nAuthorization:Bearer def",
        ),
        ("one-line", b"authorization:Bearer fuzz-key"),
    ];
    for (name, value) in headers {
        write(out, "credential", name, value)?;
        count += 1;
    }
    Ok(count)
}

fn main() -> std::process::ExitCode {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"));
    match run(&out) {
        Ok(n) => {
            println!("wrote {n} seeds under {}", out.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fuzz_seeds: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
