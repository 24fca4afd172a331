//! API keys: parsing the configured forms and checking a presented key in constant time.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use sha2::{Digest, Sha256};

/// The SHA-256 digest of an API key; the only form in which a key is kept after configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyDigest([u8; 32]);

impl core::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

/// Which configured key a presented credential matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySlot {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

impl KeySlot {
    /// Lowercase name used in stats and command-line arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Primary => "primary",
            KeySlot::Secondary => "secondary",
        }
    }
}

/// Why a configured key value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFormatError {
    /// The value is empty.
    Empty,
    /// `sha256:` is not followed by exactly 64 lowercase hexadecimal digits.
    MalformedDigest,
    /// The plaintext key has a character a client could not send as a Bearer credential
    /// (RFC 6750 token68: letters, digits, `-._~+/`, trailing `=`).
    NotToken68,
    /// The plaintext key is longer than [`MAX_KEY_LEN`] bytes.
    TooLong,
}

impl core::fmt::Display for KeyFormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyFormatError::Empty => "the key is empty",
            KeyFormatError::MalformedDigest => {
                "`sha256:` must be followed by exactly 64 lowercase hexadecimal digits"
            }
            KeyFormatError::NotToken68 => {
                "the key may only contain letters, digits, `-._~+/` and trailing `=` (RFC 6750 token68)"
            }
            KeyFormatError::TooLong => "the key is longer than 1024 bytes",
        })
    }
}

/// Longest plaintext key accepted in configuration.
pub const MAX_KEY_LEN: usize = 1024;

const DIGEST_PREFIX: &str = "sha256:";

impl KeyDigest {
    /// Digest of a presented or plaintext key.
    pub fn of(key: &[u8]) -> Self {
        KeyDigest(Sha256::digest(key).into())
    }

    /// Parses a configured key: `sha256:` and 64 lowercase hex digits, or the plaintext key itself.
    pub fn parse_configured(value: &str) -> Result<Self, KeyFormatError> {
        if value.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        if let Some(hex) = value.strip_prefix(DIGEST_PREFIX) {
            return parse_hex32(hex)
                .map(KeyDigest)
                .ok_or(KeyFormatError::MalformedDigest);
        }
        if value.len() > MAX_KEY_LEN {
            return Err(KeyFormatError::TooLong);
        }
        if !is_token68(value.as_bytes()) {
            return Err(KeyFormatError::NotToken68);
        }
        Ok(KeyDigest::of(value.as_bytes()))
    }

    /// The `sha256:<hex>` form of this digest.
    pub fn to_configured(&self) -> String {
        let mut out = String::with_capacity(DIGEST_PREFIX.len().saturating_add(64));
        out.push_str(DIGEST_PREFIX);
        for b in self.0 {
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0x0f));
        }
        out
    }

    /// Whether a configured value is in digest form rather than plaintext.
    pub fn is_digest_form(value: &str) -> bool {
        value.starts_with(DIGEST_PREFIX)
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(
        b"0123456789abcdef"
            .get(usize::from(nibble))
            .copied()
            .unwrap_or(b'0'),
    )
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_value(*hi)?, hex_value(*lo)?),
            _ => return None,
        };
        *slot = (hi << 4) | lo;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => c.checked_sub(b'0'),
        b'a'..=b'f' => c.checked_sub(b'a').and_then(|v| v.checked_add(10)),
        _ => None,
    }
}

/// A new random key: 32 bytes from the OS's generator, URL-safe base64 without padding.
pub fn generate_key() -> Result<String, getrandom::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_token68(value: &[u8]) -> bool {
    let body_len = value
        .iter()
        .rposition(|&c| c != b'=')
        .map_or(0, |i| i.saturating_add(1));
    body_len > 0
        && value.iter().take(body_len).all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The primary and secondary key of one service, as digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    primary: Option<KeyDigest>,
    secondary: Option<KeyDigest>,
}

impl KeyPair {
    /// A pair with at least one key; `None` when both are absent.
    pub fn new(primary: Option<KeyDigest>, secondary: Option<KeyDigest>) -> Option<Self> {
        if primary.is_none() && secondary.is_none() {
            return None;
        }
        Some(KeyPair { primary, secondary })
    }

    /// Which key `presented` is, if any. The presented key is hashed once and compared against
    /// both digests in full, without short-circuit, so timing says nothing about either key.
    pub fn check(&self, presented: &[u8]) -> Option<KeySlot> {
        let digest = KeyDigest::of(presented);
        let primary = matches_slot(&digest, self.primary.as_ref());
        let secondary = matches_slot(&digest, self.secondary.as_ref());
        if primary {
            Some(KeySlot::Primary)
        } else if secondary {
            Some(KeySlot::Secondary)
        } else {
            None
        }
    }
}

fn matches_slot(presented: &KeyDigest, configured: Option<&KeyDigest>) -> bool {
    const ABSENT: KeyDigest = KeyDigest([0u8; 32]);
    let (target, present) = match configured {
        Some(d) => (d, 1u8),
        None => (&ABSENT, 0u8),
    };
    let diff = presented
        .0
        .iter()
        .zip(target.0.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    core::hint::black_box(diff) == 0 && present == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_forms() {
        let plain = KeyDigest::parse_configured("abcDEF123-._~+/==").unwrap();
        assert_eq!(plain, KeyDigest::of(b"abcDEF123-._~+/=="));
        let digest_form = plain.to_configured();
        assert!(KeyDigest::is_digest_form(&digest_form));
        assert_eq!(KeyDigest::parse_configured(&digest_form).unwrap(), plain);
        let cases: &[(&str, KeyFormatError)] = &[
            ("", KeyFormatError::Empty),
            ("sha256:", KeyFormatError::MalformedDigest),
            ("sha256:abc", KeyFormatError::MalformedDigest),
            (
                "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                KeyFormatError::MalformedDigest,
            ),
            (
                "sha256:gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
                KeyFormatError::MalformedDigest,
            ),
            ("has space", KeyFormatError::NotToken68),
            ("=abc", KeyFormatError::NotToken68),
            ("ab=c", KeyFormatError::NotToken68),
            ("===", KeyFormatError::NotToken68),
            ("naïve", KeyFormatError::NotToken68),
        ];
        for (value, want) in cases {
            assert_eq!(
                KeyDigest::parse_configured(value).unwrap_err(),
                *want,
                "{value:?}"
            );
        }
        assert_eq!(
            KeyDigest::parse_configured(&"a".repeat(MAX_KEY_LEN + 1)).unwrap_err(),
            KeyFormatError::TooLong
        );
    }

    #[test]
    fn generated_keys_are_fresh_valid_keys() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(KeyDigest::parse_configured(&a).is_ok());
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            KeyDigest::of(b"abc").to_configured(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn check_matches_either_key_and_nothing_else() {
        let pair = KeyPair::new(
            Some(KeyDigest::of(b"primary-key")),
            Some(KeyDigest::of(b"secondary-key")),
        )
        .unwrap();
        assert_eq!(pair.check(b"primary-key"), Some(KeySlot::Primary));
        assert_eq!(pair.check(b"secondary-key"), Some(KeySlot::Secondary));
        for wrong in [&b"primary-ke"[..], b"primary-key2", b"", b"PRIMARY-KEY"] {
            assert_eq!(pair.check(wrong), None, "{wrong:?}");
        }
        let only_secondary = KeyPair::new(None, Some(KeyDigest::of(b"s"))).unwrap();
        assert_eq!(only_secondary.check(b"s"), Some(KeySlot::Secondary));
        assert_eq!(only_secondary.check(b""), None);
        assert!(KeyPair::new(None, None).is_none());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let pair = KeyPair::new(Some(KeyDigest::of(b"secret")), None).unwrap();
        assert!(!format!("{pair:?}").contains(&KeyDigest::of(b"secret").to_configured()[7..]));
    }
}
