//! `token issue` and `jwks`: signing tokens the filter's token auth accepts, and publishing the
//! matching public keys. Every key is first checked the way the filter would check its JWK.

use std::fs;
use std::path::Path;

use aml_auth_filter::signing::{self, SigningKey};
use aml_auth_filter::token::jwks::{parse_jwks, Alg};
use serde_json::{json, Map, Value};

use crate::CliError;

/// Longest `--ttl`: 30 days.
pub const MAX_TTL: u64 = 86_400 * 30;

/// Claims set from their own flags, which `--claim` may not override.
const REGISTERED: [&str; 5] = ["iss", "aud", "iat", "nbf", "exp"];

/// What `token issue` was asked to do.
pub struct Issue<'a> {
    /// PKCS#8 PEM private key file.
    pub signing_key: &'a Path,
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub audience: &'a str,
    /// Lifetime in seconds.
    pub ttl: u64,
    /// Extra claims, already parsed.
    pub claims: Map<String, Value>,
    /// `kid` header; the key's thumbprint when `None`.
    pub kid: Option<&'a str>,
    /// Algorithm; the key's default when `None`.
    pub alg: Option<Alg>,
    /// `sub`.
    pub subject: Option<&'a str>,
}

/// A signed token and when to renew it.
#[derive(Debug)]
pub struct Issued {
    /// The compact JWS.
    pub token: String,
    /// Unix time after which clients should get a new token (`iat + ttl*3/4`).
    pub refresh_by: i64,
}

/// Parses `--ttl`.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    Some(text)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| (1..=MAX_TTL).contains(t))
        .ok_or_else(|| {
            format!("--ttl: `{text}` is not a whole number of seconds from 1 to {MAX_TTL}")
        })
}

/// Parses `--alg`.
pub fn parse_alg(text: &str) -> Result<Alg, String> {
    Alg::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        format!(
            "--alg: unsupported algorithm `{text}` (one of {})",
            names.join(", ")
        )
    })
}

/// Collects `--claim k=v` (string values) and `--claim-json k=JSON` into one claims object.
pub fn parse_claims(strings: &[&str], jsons: &[&str]) -> Result<Map<String, Value>, String> {
    let mut claims = Map::new();
    let tagged = strings
        .iter()
        .map(|c| ("--claim", *c))
        .chain(jsons.iter().map(|c| ("--claim-json", *c)));
    for (flag, arg) in tagged {
        let (name, raw) = arg
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| format!("{flag} `{arg}`: expected NAME=VALUE"))?;
        if REGISTERED.contains(&name) {
            return Err(format!(
                "{flag} `{name}`: {name} is set by --issuer, --audience or --ttl and cannot be overridden"
            ));
        }
        if name == "sub" {
            return Err(format!("{flag} `sub`: use --subject"));
        }
        let value = if flag == "--claim" {
            Value::String(raw.to_string())
        } else {
            serde_json::from_str(raw)
                .map_err(|e| format!("{flag} `{name}`: the value is not valid JSON: {e}"))?
        };
        if claims.insert(name.to_string(), value).is_some() {
            return Err(format!("{flag} `{name}`: claim given more than once"));
        }
    }
    Ok(claims)
}

/// Reads a signing key and its public JWK, refusing keys the filter would not use.
fn load_key(
    path: &Path,
    alg: Option<Alg>,
    kid: Option<&str>,
) -> Result<(SigningKey, Value, Alg, String), CliError> {
    let shown = path.display();
    let pem = fs::read_to_string(path)
        .map_err(|e| CliError::fail(format!("cannot read --signing-key {shown}: {e}")))?;
    let key = SigningKey::from_pem(&pem).map_err(|e| {
        CliError::fail(format!(
            "--signing-key {shown}: {e}{}",
            pem_hint(&pem, path)
        ))
    })?;
    let alg = match alg {
        Some(a) => a,
        None => parse_alg(key.default_alg()).map_err(CliError::fail)?,
    };
    let fits = match &key {
        SigningKey::Rsa(_) => alg.as_str().starts_with(['R', 'P']),
        SigningKey::P256(_) => alg == Alg::Es256,
        SigningKey::P384(_) => alg == Alg::Es384,
        SigningKey::P521(_) => alg == Alg::Es512,
        SigningKey::Ed25519(_) => alg == Alg::EdDsa,
    };
    if !fits {
        return Err(CliError::fail(format!(
            "--alg {alg} does not fit the key in --signing-key {shown} (its algorithm is {})",
            key.default_alg()
        )));
    }
    let kid = kid.map_or_else(|| key.thumbprint(), str::to_string);
    let jwk = key.public_jwk(&kid, Some(alg.as_str()));
    let set = signing::jwks(vec![jwk.clone()]);
    let bytes = serde_json::to_vec(&set).map_err(|e| CliError::fail(e.to_string()))?;
    if let Err(e) = parse_jwks(&bytes) {
        let reason = match &e {
            aml_auth_filter::token::jwks::JwksError::NoUsableKeys { dropped } => dropped
                .first()
                .map_or("no usable key", |d| d.reason.as_str()),
            other => other.as_str(),
        };
        return Err(CliError::fail(format!(
            "--signing-key {shown}: the filter would refuse this key with {alg} ({reason})"
        )));
    }
    Ok((key, jwk, alg, kid))
}

/// What to do with a PEM private key in another form than PKCS#8.
fn pem_hint(pem: &str, path: &Path) -> String {
    let shown = path.display();
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----")
        || pem.contains("-----BEGIN EC PRIVATE KEY-----")
    {
        let form = if pem.contains("BEGIN RSA") {
            "PKCS#1"
        } else {
            "SEC1"
        };
        format!(
            " (this is a {form} key: convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in {shown} -out {shown}.pkcs8`)"
        )
    } else if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        format!(
            " (this key is encrypted: write an unencrypted copy with `openssl pkcs8 -in {shown} -out {shown}.pkcs8`, which asks for the passphrase)"
        )
    } else {
        String::new()
    }
}

/// Signs a token at `now` (Unix seconds).
pub fn issue(req: &Issue<'_>, now: i64) -> Result<Issued, CliError> {
    let (key, _, alg, kid) = load_key(req.signing_key, req.alg, req.kid)?;
    let ttl = i64::try_from(req.ttl).map_err(|e| CliError::fail(e.to_string()))?;
    let exp = now.saturating_add(ttl);
    let mut claims = req.claims.clone();
    claims.insert("iss".into(), json!(req.issuer));
    claims.insert("aud".into(), json!(req.audience));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(exp));
    if let Some(sub) = req.subject {
        claims.insert("sub".into(), json!(sub));
    }
    let token = key
        .sign(alg.as_str(), Some(&kid), &Value::Object(claims))
        .map_err(|e| CliError::fail(format!("--signing-key {}: {e}", req.signing_key.display())))?;
    Ok(Issued {
        token,
        refresh_by: now.saturating_add(ttl.saturating_mul(3) / 4),
    })
}

/// The public JWKS of these key files, each with kid = its thumbprint. EC and Ed25519 keys carry
/// their one `alg`; RSA keys carry none, so they admit every RSA algorithm `token issue` signs
/// with (RS256/384/512, PS256/384/512), as Entra ID's published keys do.
pub fn jwks(paths: &[&Path]) -> Result<Value, CliError> {
    let mut keys: Vec<Value> = Vec::with_capacity(paths.len());
    let mut kids: Vec<(String, &Path)> = Vec::new();
    for path in paths {
        let (key, mut jwk, _, kid) = load_key(path, None, None)?;
        if let (SigningKey::Rsa(_), Value::Object(members)) = (&key, &mut jwk) {
            members.remove("alg");
        }
        if let Some((_, first)) = kids.iter().find(|(k, _)| *k == kid) {
            return Err(CliError::fail(format!(
                "--signing-key {} holds the same key as {}",
                path.display(),
                first.display()
            )));
        }
        kids.push((kid, path));
        keys.push(jwk);
    }
    Ok(signing::jwks(keys))
}

/// `2024-05-01T12:00:00Z` for a Unix time (proleptic Gregorian, UTC).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ];
        for (unix, want) in cases {
            assert_eq!(rfc3339(*unix), *want, "{unix}");
        }
    }

    #[test]
    fn ttl_and_alg_arguments() {
        assert_eq!(parse_ttl("1").unwrap(), 1);
        assert_eq!(parse_ttl("2592000").unwrap(), MAX_TTL);
        for bad in ["0", "2592001", "-5", "1.5", "", "ten", "+5"] {
            assert!(parse_ttl(bad).unwrap_err().contains("--ttl"), "{bad}");
        }
        assert_eq!(parse_alg("ES256").unwrap(), Alg::Es256);
        for bad in ["none", "HS256", "es256", ""] {
            assert!(
                parse_alg(bad)
                    .unwrap_err()
                    .contains("unsupported algorithm"),
                "{bad}"
            );
        }
    }

    #[test]
    fn claims_arguments() {
        let claims = parse_claims(
            &["role=admin", "eq=a=b", "empty="],
            &["n=5", "o={\"a\":[1]}"],
        )
        .unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"role": "admin", "eq": "a=b", "empty": "", "n": 5, "o": {"a": [1]}})
        );
        let cases: &[(&[&str], &[&str], &str)] = &[
            (&["novalue"], &[], "expected NAME=VALUE"),
            (&["=x"], &[], "expected NAME=VALUE"),
            (&["iss=x"], &[], "cannot be overridden"),
            (&[], &["exp=1"], "cannot be overridden"),
            (&["aud=x"], &[], "cannot be overridden"),
            (&["sub=x"], &[], "use --subject"),
            (&["a=1", "a=2"], &[], "more than once"),
            (&["a=1"], &["a=2"], "more than once"),
            (&[], &["a=nope"], "not valid JSON"),
        ];
        for (strings, jsons, fragment) in cases {
            let err = parse_claims(strings, jsons).unwrap_err();
            assert!(err.contains(fragment), "{strings:?} {jsons:?}: {err}");
        }
    }
}
