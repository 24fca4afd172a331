//! OpenID Connect discovery, pure: reads a discovery document and decides where the key set is.

use serde_json::Value;

use crate::config::split_uri;

/// Where the key set of a discovery source lives, as read from its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksLocation {
    /// `jwks_uri` as published.
    pub uri: String,
    /// `:authority` to send.
    pub authority: String,
    /// `:path` to send.
    pub path: String,
}

/// Why a discovery document was refused; each has a stable code, counted as
/// `aml_auth.jwks.discovery.fetch_failure.<code>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Not a JSON object (syntax, nesting, or a repeated member anywhere).
    NotJson,
    /// `issuer` missing, not a string, or not one of the configured issuers.
    IssuerMismatch,
    /// No `jwks_uri` string.
    MissingJwksUri,
    /// `jwks_uri` is not an absolute http(s) URL with a host.
    BadJwksUri,
    /// `jwks_uri` names another authority than the document's, and the source has no
    /// `jwks_cluster` for it.
    AuthorityMismatch,
}

impl DiscoveryError {
    /// Short stable code for logs and stats.
    pub fn code(self) -> &'static str {
        match self {
            DiscoveryError::NotJson => "not_json",
            DiscoveryError::IssuerMismatch => "issuer_mismatch",
            DiscoveryError::MissingJwksUri => "missing_jwks_uri",
            DiscoveryError::BadJwksUri => "bad_jwks_uri",
            DiscoveryError::AuthorityMismatch => "authority_mismatch",
        }
    }
}

/// Lowercase host with the scheme's default port removed, for comparing authorities.
fn canonical_authority(uri: &str, authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    let default_port = if uri.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    lower
        .strip_suffix(default_port)
        .map_or(lower.clone(), str::to_string)
}

/// Reads a discovery document fetched from `document_uri` (whose authority is
/// `document_authority`): its `issuer` must be one of `issuers`, and its `jwks_uri` must be an
/// http(s) URL on the document's authority unless `own_cluster` (the source names a
/// `jwks_cluster` for it).
pub fn read_document(
    body: &[u8],
    document_uri: &str,
    document_authority: &str,
    issuers: &[String],
    own_cluster: bool,
) -> Result<JwksLocation, DiscoveryError> {
    let checked = crate::token::strict_json::parse(body).map_err(|_| DiscoveryError::NotJson)?;
    if checked.duplicate.is_some() {
        return Err(DiscoveryError::NotJson);
    }
    let doc = match checked.value {
        Value::Object(map) => map,
        _ => return Err(DiscoveryError::NotJson),
    };
    match doc.get("issuer") {
        Some(Value::String(iss)) if issuers.iter().any(|i| i == iss) => {}
        _ => return Err(DiscoveryError::IssuerMismatch),
    }
    let uri = match doc.get("jwks_uri") {
        Some(Value::String(uri)) => uri.as_str(),
        _ => return Err(DiscoveryError::MissingJwksUri),
    };
    let (authority, path) = split_uri(uri).ok_or(DiscoveryError::BadJwksUri)?;
    if !own_cluster
        && canonical_authority(uri, &authority)
            != canonical_authority(document_uri, document_authority)
    {
        return Err(DiscoveryError::AuthorityMismatch);
    }
    Ok(JwksLocation {
        uri: uri.to_string(),
        authority,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_URI: &str = "https://login.example.com/tenant/v2.0/.well-known/openid-configuration";
    const ISS: &str = "https://login.example.com/tenant/v2.0";

    fn read(body: &str, own_cluster: bool) -> Result<JwksLocation, DiscoveryError> {
        read_document(
            body.as_bytes(),
            DOC_URI,
            "login.example.com",
            &[
                ISS.to_string(),
                "https://sts.example.net/tenant/".to_string(),
            ],
            own_cluster,
        )
    }

    #[test]
    fn documents_are_read_strictly() {
        let ok = read(
            &format!(
                r#"{{"issuer":"{ISS}","jwks_uri":"https://login.example.com/tenant/keys?v=2"}}"#
            ),
            false,
        )
        .unwrap();
        assert_eq!(ok.authority, "login.example.com");
        assert_eq!(ok.path, "/tenant/keys?v=2");
        let table: Vec<(String, bool, Result<(), DiscoveryError>)> = vec![
            (
                r#"{"issuer":"https://sts.example.net/tenant/","jwks_uri":"https://LOGIN.example.com:443/k"}"#.into(),
                false,
                Ok(()),
            ),
            (
                format!(r#"{{"issuer":"{ISS}","jwks_uri":"https://keys.example.org/k"}}"#),
                false,
                Err(DiscoveryError::AuthorityMismatch),
            ),
            (
                format!(r#"{{"issuer":"{ISS}","jwks_uri":"https://keys.example.org/k"}}"#),
                true,
                Ok(()),
            ),
            (
                format!(r#"{{"issuer":"{ISS}","jwks_uri":"https://login.example.com:8443/k"}}"#),
                false,
                Err(DiscoveryError::AuthorityMismatch),
            ),
            (
                format!(r#"{{"issuer":"{ISS}/","jwks_uri":"https://login.example.com/k"}}"#),
                false,
                Err(DiscoveryError::IssuerMismatch),
            ),
            (
                r#"{"jwks_uri":"https://login.example.com/k"}"#.into(),
                false,
                Err(DiscoveryError::IssuerMismatch),
            ),
            (
                format!(r#"{{"issuer":["{ISS}"],"jwks_uri":"https://login.example.com/k"}}"#),
                false,
                Err(DiscoveryError::IssuerMismatch),
            ),
            (
                format!(r#"{{"issuer":"{ISS}"}}"#),
                false,
                Err(DiscoveryError::MissingJwksUri),
            ),
            (
                format!(r#"{{"issuer":"{ISS}","jwks_uri":7}}"#),
                false,
                Err(DiscoveryError::MissingJwksUri),
            ),
            (
                format!(r#"{{"issuer":"{ISS}","jwks_uri":"ftp://login.example.com/k"}}"#),
                false,
                Err(DiscoveryError::BadJwksUri),
            ),
            (
                format!(r#"{{"issuer":"{ISS}","jwks_uri":"https://u@login.example.com/k"}}"#),
                false,
                Err(DiscoveryError::BadJwksUri),
            ),
            (
                format!(
                    r#"{{"issuer":"{ISS}","jwks_uri":"https://login.example.com/k","jwks_uri":"https://evil.example/k"}}"#
                ),
                true,
                Err(DiscoveryError::NotJson),
            ),
            (
                format!(r#"{{"issuer":"x","issuer":"{ISS}","jwks_uri":"https://login.example.com/k"}}"#),
                false,
                Err(DiscoveryError::NotJson),
            ),
            ("[]".into(), false, Err(DiscoveryError::NotJson)),
            ("not json".into(), false, Err(DiscoveryError::NotJson)),
        ];
        for (i, (body, own, want)) in table.iter().enumerate() {
            assert_eq!(read(body, *own).map(|_| ()), *want, "row {i}: {body}");
        }
        let codes: std::collections::HashSet<&str> = [
            DiscoveryError::NotJson,
            DiscoveryError::IssuerMismatch,
            DiscoveryError::MissingJwksUri,
            DiscoveryError::BadJwksUri,
            DiscoveryError::AuthorityMismatch,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes.len(), 5);
    }
}
