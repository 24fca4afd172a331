//! Credential extraction: the one Bearer credential of a request, or the precise reason there is none.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use crate::keys::{is_token68, MAX_KEY_LEN};
use crate::request::status::Denial;

/// Longest credential a key-mode policy reads: no configured plaintext key is longer, and a
/// `sha256:` digest stands for a key of the same bounds.
pub const MAX_KEY_CREDENTIAL_LEN: usize = MAX_KEY_LEN;

/// Bytes an Authorization value may hold beyond its credential (scheme and spaces) before it is
/// refused unread.
pub const MAX_SCHEME_OVERHEAD: usize = 64;

/// The credential carried by `Authorization: Bearer <credential>`; not yet judged.
#[derive(Debug, PartialEq, Eq)]
pub struct Credential<'a>(&'a [u8]);

impl<'a> Credential<'a> {
    /// The credential's bytes (RFC 6750 token68 characters only).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Whether the credential has the shape of a compact JWS (three dot-separated parts).
    pub fn looks_like_jwt(&self) -> bool {
        self.0.iter().filter(|&&c| c == b'.').count() == 2
    }
}

/// Finds the credential among all request headers (names lowercase, as Envoy hands them over).
/// Every Authorization header is counted: a second one is refused rather than ignored. A
/// credential longer than `max_len` bytes is [`Denial::CredentialTooLong`].
pub fn extract<'a, I>(headers: I, max_len: usize) -> Result<Credential<'a>, Denial>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut found: Option<&'a [u8]> = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("authorization") {
            if found.is_some() {
                return Err(Denial::MultipleAuthorization);
            }
            found = Some(value);
        }
    }
    match found {
        None => Err(Denial::MissingCredential),
        Some(value) => parse_authorization(value, max_len),
    }
}

/// Parses one Authorization header value: scheme `Bearer` (any case), one or more spaces, a token68
/// of at most `max_len` bytes (a longer value is refused before any other reading).
/// A comma means several credentials: Envoy's HTTP/1 codec joins repeated Authorization headers
/// into one value with commas, and a token68 never holds one.
pub fn parse_authorization(value: &[u8], max_len: usize) -> Result<Credential<'_>, Denial> {
    if value.len() > max_len.saturating_add(MAX_SCHEME_OVERHEAD) {
        return Err(Denial::CredentialTooLong);
    }
    if value.contains(&b',') {
        return Err(Denial::MultipleAuthorization);
    }
    let value = trim_ows(value);
    if value.is_empty() {
        return Err(Denial::MissingCredential);
    }
    let scheme_end = value
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Denial::WrongScheme);
    }
    if rest.first() == Some(&b'\t') {
        return Err(Denial::MalformedCredential);
    }
    let credential = trim_leading_spaces(rest);
    if credential.is_empty() {
        return Err(Denial::EmptyCredential);
    }
    if credential.len() > max_len {
        return Err(Denial::CredentialTooLong);
    }
    if !is_token68(credential) {
        return Err(Denial::MalformedCredential);
    }
    Ok(Credential(credential))
}

fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |i| i.saturating_add(1));
    value.get(start..end).unwrap_or_default()
}

fn trim_leading_spaces(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&c| c != b' ').unwrap_or(value.len());
    value.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &[u8]) -> Result<Vec<u8>, Denial> {
        extract([("authorization", value)], MAX_KEY_CREDENTIAL_LEN).map(|c| c.as_bytes().to_vec())
    }

    #[test]
    fn parse_table() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"Bearer abc", b"abc"),
            (b"bearer abc", b"abc"),
            (b"BEARER abc", b"abc"),
            (b"BeArEr    abc", b"abc"),
            (b"Bearer a.b.c", b"a.b.c"),
            (b"Bearer abc==", b"abc=="),
            (b"Bearer abc  ", b"abc"),
            (b"  Bearer abc", b"abc"),
        ];
        for (value, want) in ok {
            assert_eq!(
                one(value).as_deref(),
                Ok(*want),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let bad: &[(&[u8], Denial)] = &[
            (b"", Denial::MissingCredential),
            (b"   ", Denial::MissingCredential),
            (b"Bearer", Denial::EmptyCredential),
            (b"Bearer ", Denial::EmptyCredential),
            (b"Bearer    ", Denial::EmptyCredential),
            (b"Bearerabc", Denial::WrongScheme),
            (b"Basic YWxhZGRpbjpvcGVuc2VzYW1l", Denial::WrongScheme),
            (b"Digest username=\"a\"", Denial::WrongScheme),
            (b"abc", Denial::WrongScheme),
            (b"Bearer ab c", Denial::MalformedCredential),
            (b"Bearer ab\tc", Denial::MalformedCredential),
            (b"Bearer\tabc", Denial::MalformedCredential),
            (b"Bearer ab\r\nc", Denial::MalformedCredential),
            (b"Bearer a=b", Denial::MalformedCredential),
            (b"Bearer \xff\xfe", Denial::MalformedCredential),
            (b"Bearer \"abc\"", Denial::MalformedCredential),
            (b"Bearer abc,Bearer def", Denial::MultipleAuthorization),
            (b"Bearer abc, Bearer abc", Denial::MultipleAuthorization),
            (b"Basic x, Bearer abc", Denial::MultipleAuthorization),
        ];
        for (value, want) in bad {
            assert_eq!(
                one(value),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn the_credential_length_is_capped() {
        let credential = |len: usize, pad: usize| {
            let mut v = b"Bearer".to_vec();
            v.resize(6 + pad, b' ');
            v.resize(6 + pad + len, b'a');
            v
        };
        // (cap, credential length, spaces after the scheme, accepted)
        let cases: &[(usize, usize, usize, bool)] = &[
            (MAX_KEY_CREDENTIAL_LEN, MAX_KEY_CREDENTIAL_LEN, 1, true),
            (MAX_KEY_CREDENTIAL_LEN, MAX_KEY_CREDENTIAL_LEN + 1, 1, false),
            (MAX_KEY_CREDENTIAL_LEN, MAX_KEY_CREDENTIAL_LEN, 40, true),
            (
                MAX_KEY_CREDENTIAL_LEN,
                10,
                MAX_SCHEME_OVERHEAD + MAX_KEY_CREDENTIAL_LEN,
                false,
            ),
            (32_768, 32_768, 1, true),
            (32_768, 32_769, 1, false),
            (61_440, 61_440, 3, true),
        ];
        for (cap, len, pad, ok) in cases {
            let value = credential(*len, *pad);
            let got = extract([("authorization", value.as_slice())], *cap);
            if *ok {
                assert_eq!(
                    got.map(|c| c.as_bytes().len()),
                    Ok(*len),
                    "{cap} {len} {pad}"
                );
            } else {
                assert_eq!(got, Err(Denial::CredentialTooLong), "{cap} {len} {pad}");
            }
        }
        let mut junk = vec![b'\xff'; MAX_KEY_CREDENTIAL_LEN + MAX_SCHEME_OVERHEAD + 1];
        junk.splice(0..0, b"Basic ".iter().copied());
        assert_eq!(one(&junk), Err(Denial::CredentialTooLong));
    }

    #[test]
    fn header_counting() {
        let none: [(&str, &[u8]); 1] = [("x-other", b"Bearer abc")];
        assert_eq!(extract(none, 16), Err(Denial::MissingCredential));
        let two: [(&str, &[u8]); 3] = [
            ("authorization", b"Bearer abc"),
            ("x-other", b"1"),
            ("authorization", b"Bearer abc"),
        ];
        assert_eq!(extract(two, 16), Err(Denial::MultipleAuthorization));
        let upper: [(&str, &[u8]); 1] = [("Authorization", b"Bearer abc")];
        assert_eq!(extract(upper, 16).map(|c| c.as_bytes()), Ok(&b"abc"[..]));
    }

    #[test]
    fn jwt_shape() {
        assert!(one(b"Bearer a.b.c").is_ok());
        assert!(Credential(b"a.b.c").looks_like_jwt());
        assert!(!Credential(b"abc").looks_like_jwt());
        assert!(!Credential(b"a.b.c.d").looks_like_jwt());
    }
}
