//! Strict JSON and base64url, shared by every parse of untrusted or reviewed JSON (token header
//! and payload, JWKS, plugin configuration): repeated member names are recorded (at any depth,
//! compared after unescaping, so `primary\u005fkey` repeats `primary_key`), nesting is capped at
//! [`MAX_DEPTH`] objects and arrays, and base64url is the strict unpadded alphabet.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Strict base64url: URL-safe alphabet, no padding, no whitespace, canonical trailing bits only.
pub const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Deepest nesting of objects and arrays accepted (the outermost one is level 1). jwt_authn's
/// protobuf parser refuses past 100; 64 leaves room and no real document comes near it.
pub const MAX_DEPTH: usize = 64;

const TOO_DEEP: &str = "nesting deeper than 64 levels";

/// One step of a [`JsonPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object member, by its (unescaped) name.
    Member(String),
    /// An array item, by position.
    Index(usize),
}

/// Where a value sits in a document, outermost step first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Step>);

impl fmt::Display for JsonPath {
    /// `services[2].primary_key` style; empty for the document itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Member(name) if i == 0 => f.write_str(name)?,
                Step::Member(name) => write!(f, ".{name}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A JSON value as parsed, with what a strict reader must know about it.
#[derive(Debug)]
pub struct Checked {
    /// The value; of repeated members only the first is kept.
    pub value: Value,
    /// The first repeated member name found, when there is one: its path (the repeated name last).
    pub duplicate: Option<JsonPath>,
    /// Whether some number is not an exact 64-bit integer (a fraction, an exponent, or out of
    /// range), so that [`Value`] holds only an `f64` approximation of its text.
    pub inexact_number: bool,
}

/// Why bytes are not one strict JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrictError {
    /// Not JSON (syntax, UTF-8, trailing data); the parser's message.
    Syntax(String),
    /// Objects and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::Syntax(message) => f.write_str(message),
            StrictError::TooDeep => f.write_str(TOO_DEEP),
        }
    }
}

impl std::error::Error for StrictError {}

fn classify(e: &serde_json::Error) -> StrictError {
    let message = e.to_string();
    if message.starts_with(TOO_DEEP) {
        StrictError::TooDeep
    } else {
        StrictError::Syntax(message)
    }
}

/// Parses `bytes` as exactly one JSON value under the strict rules.
pub fn parse(bytes: &[u8]) -> Result<Checked, StrictError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let checked = ValueSeed { depth: 1 }
        .deserialize(&mut de)
        .map_err(|e| classify(&e))?;
    de.end().map_err(|e| classify(&e))?;
    Ok(checked)
}

/// Maps a serde_json error from a parse that used this module's seeds to a [`StrictError`].
pub fn error_of(e: &serde_json::Error) -> StrictError {
    classify(e)
}

fn too_deep<E: de::Error>(depth: usize) -> Result<(), E> {
    if depth > MAX_DEPTH {
        Err(E::custom(TOO_DEEP))
    } else {
        Ok(())
    }
}

/// Reads one value at nesting level `depth` (1 for a document) as a [`Checked`].
#[derive(Clone, Copy)]
pub struct ValueSeed {
    /// Nesting level of the value about to be read.
    pub depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Checked;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(self)
    }
}

fn plain(value: Value) -> Checked {
    Checked {
        value,
        duplicate: None,
        inexact_number: false,
    }
}

fn prefixed(step: Step, mut path: JsonPath) -> JsonPath {
    path.0.insert(0, step);
    path
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Checked, E> {
        Ok(plain(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Checked, E> {
        Ok(plain(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Checked, E> {
        Ok(plain(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Checked, E> {
        let number =
            serde_json::Number::from_f64(v).ok_or_else(|| E::custom("non-finite number"))?;
        Ok(Checked {
            value: Value::Number(number),
            duplicate: None,
            inexact_number: true,
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Checked, E> {
        Ok(plain(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Checked, E> {
        Ok(plain(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(plain(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        too_deep(self.depth)?;
        let inner = ValueSeed {
            depth: self.depth.saturating_add(1),
        };
        let mut items = Vec::new();
        let mut duplicate = None;
        let mut inexact_number = false;
        while let Some(item) = seq.next_element_seed(inner)? {
            if duplicate.is_none() {
                duplicate = item
                    .duplicate
                    .map(|p| prefixed(Step::Index(items.len()), p));
            }
            inexact_number |= item.inexact_number;
            items.push(item.value);
        }
        Ok(Checked {
            value: Value::Array(items),
            duplicate,
            inexact_number,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        too_deep(self.depth)?;
        let inner = ValueSeed {
            depth: self.depth.saturating_add(1),
        };
        let mut members = Map::new();
        let mut duplicate = None;
        let mut inexact_number = false;
        while let Some(name) = map.next_key::<String>()? {
            let item = map.next_value_seed(inner)?;
            inexact_number |= item.inexact_number;
            if members.contains_key(&name) {
                if duplicate.is_none() {
                    duplicate = Some(JsonPath(vec![Step::Member(name)]));
                }
            } else {
                if duplicate.is_none() {
                    duplicate = item
                        .duplicate
                        .map(|p| prefixed(Step::Member(name.clone()), p));
                }
                members.insert(name, item.value);
            }
        }
        Ok(Checked {
            value: Value::Object(members),
            duplicate,
            inexact_number,
        })
    }
}

/// Skips one value at nesting level `depth`, refusing nesting deeper than [`MAX_DEPTH`] like
/// [`ValueSeed`] without building anything.
#[derive(Clone, Copy)]
pub struct SkipSeed {
    /// Nesting level of the value about to be skipped.
    pub depth: usize,
}

impl<'de> DeserializeSeed<'de> for SkipSeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SkipSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        too_deep(self.depth)?;
        let inner = SkipSeed {
            depth: self.depth.saturating_add(1),
        };
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        too_deep(self.depth)?;
        let inner = SkipSeed {
            depth: self.depth.saturating_add(1),
        };
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// `text` (valid JSON) without the whitespace between tokens: the value's own spelling, numbers
/// and string escapes exactly as written.
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_at_any_depth_with_their_path() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"a":1,"b":2}"#, None),
            (r#"{"a":1,"a":2}"#, Some("a")),
            (
                r#"{"primary_key":1,"primary\u005fkey":2}"#,
                Some("primary_key"),
            ),
            (
                r#"{"s":[{"n":1},{"n":1,"x":{"y":1,"y":2}}]}"#,
                Some("s[1].x.y"),
            ),
            (r#"[{"k":1,"k":1}]"#, Some("[0].k")),
            (r#"{"a":{"b":1,"b":1},"a":2}"#, Some("a.b")),
            (r#"{"a":{"b":1},"c":{"d":1,"d":1}}"#, Some("c.d")),
        ];
        for (json, want) in cases {
            let checked = parse(json.as_bytes()).unwrap();
            assert_eq!(
                checked.duplicate.map(|p| p.to_string()).as_deref(),
                *want,
                "{json}"
            );
        }
        let first = parse(br#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(first.value["a"], 1);
    }

    #[test]
    fn nesting_is_capped_at_64() {
        for (depth, ok) in [(1, true), (63, true), (64, true), (65, false), (200, false)] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            for doc in [arrays, objects] {
                let got = parse(doc.as_bytes());
                if ok {
                    assert!(got.is_ok(), "depth {depth}");
                } else {
                    assert_eq!(got.unwrap_err(), StrictError::TooDeep, "depth {depth}");
                }
            }
        }
    }

    #[test]
    fn skip_seed_caps_nesting_too() {
        for (depth, ok) in [(64, true), (65, false)] {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let mut de = serde_json::Deserializer::from_slice(doc.as_bytes());
            let got = SkipSeed { depth: 1 }.deserialize(&mut de);
            assert_eq!(got.is_ok(), ok, "depth {depth}");
            if let Err(e) = got {
                assert_eq!(error_of(&e), StrictError::TooDeep);
            }
        }
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_refused() {
        for bad in ["", "{", r#"{"a":1} x"#, r#"{"a":01}"#, "[1,]", "\u{feff}{}"] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(StrictError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn inexact_numbers_are_flagged() {
        let cases: &[(&str, bool)] = &[
            ("[1, -5, 18446744073709551615]", false),
            ("[1.5]", true),
            ("[1180591620717411303424]", true),
            (r#"{"a":{"b":1e3}}"#, true),
            (r#"{"a":"1.5"}"#, false),
        ];
        for (json, want) in cases {
            assert_eq!(
                parse(json.as_bytes()).unwrap().inexact_number,
                *want,
                "{json}"
            );
        }
    }

    #[test]
    fn compact_keeps_strings_and_numbers_as_written() {
        let cases: &[(&str, &str)] = &[
            (r#" [ "a,b" , "c" ] "#, r#"["a,b","c"]"#),
            ("1180591620717411303424", "1180591620717411303424"),
            ("{ \"k\" :\n\t1.50e3 }", r#"{"k":1.50e3}"#),
            (r#"[" a \" b ", "\\"]"#, r#"[" a \" b ","\\"]"#),
        ];
        for (text, want) in cases {
            assert_eq!(compact(text), *want, "{text}");
        }
    }
}
