//! What a verified token's claims grant: the required-claim rules of a service, and the text a
//! claim is copied as into a request header (or the principal filter state).
//!
//! Copy rule (lossless, or nothing):
//! - a string claim is copied as it is, unless it starts or ends with a space or tab (HTTP drops
//!   those) or holds a control character (CR, LF, NUL, TAB, DEL, C1): then it is not copied;
//! - any other claim (number, boolean, null, array, object) is copied as its compact JSON text,
//!   spelled as in the token: `["a,b","c"]` and `["a","b","c"]` stay distinct, and
//!   `1180591620717411303424` (2^70) keeps every digit; a value whose text holds a control
//!   character is not copied;
//! - a claim that is not copied leaves no header: incoming copies are always removed first.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use serde_json::{Map, Value};

use super::strict_json::{self, compact};

/// The claim whose string value is a space-separated list (OAuth 2.0 delegated scopes).
pub const SPACE_SEPARATED_CLAIM: &str = "scp";

/// One claim a service requires: present, and holding at least one of `allowed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredClaim {
    /// Top-level claim name.
    pub claim: String,
    /// Values that satisfy the rule (any one suffices).
    pub allowed: Vec<String>,
    /// Index of the claim name in the configuration's list of required claim names, carried by
    /// the denial so the reply can name the claim.
    pub name_id: u32,
}

impl RequiredClaim {
    /// Whether `claims` satisfy this rule: the claim is a string equal to an allowed value (for
    /// [`SPACE_SEPARATED_CLAIM`], one of its space-separated words), or an array with such a
    /// string among its items.
    pub fn is_met(&self, claims: &Map<String, Value>) -> bool {
        let allowed = |v: &str| self.allowed.iter().any(|a| a == v);
        match claims.get(&self.claim) {
            Some(Value::String(s)) if self.claim == SPACE_SEPARATED_CLAIM => {
                s.split(' ').any(allowed)
            }
            Some(Value::String(s)) => allowed(s),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(allowed),
            _ => false,
        }
    }
}

/// The first rule `claims` do not meet, in configuration order (AND across rules).
pub fn first_unmet<'r>(
    claims: &Map<String, Value>,
    rules: &'r [RequiredClaim],
) -> Option<&'r RequiredClaim> {
    rules.iter().find(|rule| !rule.is_met(claims))
}

/// The text a claim is copied as (see the module's copy rule), or `None` when it is not copied.
///
/// `raw_payload` is the payload's JSON text, needed only when a number in it is not an exact
/// 64-bit integer (then the parsed value is an approximation and the text is read instead).
pub fn header_value(
    claims: &Map<String, Value>,
    raw_payload: Option<&[u8]>,
    claim: &str,
) -> Option<String> {
    let rendered = match claims.get(claim)? {
        Value::String(s) => {
            if s.starts_with([' ', '\t']) || s.ends_with([' ', '\t']) {
                return None;
            }
            s.clone()
        }
        other => match raw_payload {
            Some(raw) => raw_member(raw, claim)?,
            None => serde_json::to_string(other).ok()?,
        },
    };
    if rendered.chars().any(char::is_control) {
        return None;
    }
    Some(rendered)
}

/// The longest principal exposed as filter state, in bytes.
pub const MAX_PRINCIPAL_BYTES: usize = 256;

/// Whether a principal may be exposed as filter state, where text access logs print it as it
/// is: 1 to [`MAX_PRINCIPAL_BYTES`] bytes of visible ASCII other than `"` and `\`. So no space,
/// quote, backslash, control character or non-ASCII character (Unicode line and paragraph
/// separators, spaces, format characters such as bidi overrides) can add a field or a record
/// to a log line, and no principal can make a long one.
pub fn is_log_safe(principal: &str) -> bool {
    (1..=MAX_PRINCIPAL_BYTES).contains(&principal.len())
        && principal
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// The one spelling a header name stands for in [`is_claim_header_spelling`]: ASCII lowercase,
/// `_` and `.` read as `-`.
pub fn canonical_spelling(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'_' | b'.' => '-',
            other => char::from(other.to_ascii_lowercase()),
        })
        .collect()
}

/// Whether a request header or trailer `name` is a spelling of one of `claim_headers`: equal
/// after ASCII lowercasing and reading `_` and `.` as `-`, the folding servers apply when they
/// turn a header into a variable: WSGI and CGI (`x_aml_caller_oid` lands where
/// `x-aml-caller-oid` does), and PHP, whose `$_SERVER` reads a `.` as `_` (Caddy's FastCGI and
/// FrankenPHP pass `x.aml.caller.oid` on as `HTTP_X.AML.CALLER.OID`).
pub fn is_claim_header_spelling(claim_headers: &[String], name: &str) -> bool {
    let fold = |b: u8| {
        if b == b'_' || b == b'.' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        }
    };
    claim_headers
        .iter()
        .any(|h| h.len() == name.len() && h.bytes().map(fold).eq(name.bytes().map(fold)))
}

/// The compact text of the top-level member `name` of the JSON object `raw`, which was parsed
/// before (so it is valid JSON): a scan for the member's key and the extent of its value, with
/// no serde visitor (whose error paths link float formatting into the module).
fn raw_member(raw: &[u8], name: &str) -> Option<String> {
    const WS: &[char] = &[' ', '\t', '\n', '\r'];
    let mut rest = core::str::from_utf8(raw)
        .ok()?
        .trim_start_matches(WS)
        .strip_prefix('{')?;
    loop {
        let (key, after) = split_token(rest.trim_start_matches(WS))?;
        let (value, after) = split_token(after.trim_start_matches(WS).strip_prefix(':')?)?;
        if key_is(key, name) {
            return Some(compact(value));
        }
        rest = after.trim_start_matches(WS).strip_prefix(',')?;
    }
}

/// Splits the JSON value at the start of `text` from what follows it: the value ends at the
/// first `,`, `}` or `]` outside strings and outside the value's own brackets.
fn split_token(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if depth == 0 {
                    return text.split_at_checked(i.saturating_add(1));
                }
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth = depth.saturating_add(1),
            '}' | ']' | ',' if depth == 0 => return text.split_at_checked(i),
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Some((text, ""))
}

/// Whether the JSON string `key` (quotes included) reads `name` once unescaped.
fn key_is(key: &str, name: &str) -> bool {
    match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
        Some(plain) if !plain.contains('\\') => plain == name,
        _ => strict_json::parse(key.as_bytes())
            .is_ok_and(|checked| checked.value.as_str() == Some(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::strict_json;
    use serde_json::json;

    fn rule(claim: &str, allowed: &[&str]) -> RequiredClaim {
        RequiredClaim {
            claim: claim.to_string(),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            name_id: 0,
        }
    }

    #[test]
    fn required_claim_table() {
        let claims = json!({
            "roles": ["Model.Read", "Model.Score"],
            "scp": "user.read  model.score",
            "tid": "tenant-1",
            "n": 5,
            "mixed": [1, "ok", null],
            "spaced": "a b",
        });
        let claims = claims.as_object().unwrap();
        let cases: &[(&str, &[&str], bool)] = &[
            ("roles", &["Model.Score"], true),
            ("roles", &["Model.Admin", "Model.Read"], true),
            ("roles", &["model.score"], false),
            ("roles", &["Model.Score "], false),
            ("scp", &["model.score"], true),
            ("scp", &["user.read"], true),
            ("scp", &["user.read  model.score"], false),
            ("scp", &["user"], false),
            ("spaced", &["a"], false),
            ("spaced", &["a b"], true),
            ("tid", &["tenant-1"], true),
            ("tid", &["tenant-2"], false),
            ("n", &["5"], false),
            ("mixed", &["ok"], true),
            ("mixed", &["1"], false),
            ("absent", &["x"], false),
        ];
        for (claim, allowed, want) in cases {
            assert_eq!(
                rule(claim, allowed).is_met(claims),
                *want,
                "{claim} {allowed:?}"
            );
        }
        let rules = [
            rule("tid", &["tenant-1"]),
            rule("roles", &["Nope"]),
            rule("n", &["x"]),
        ];
        assert_eq!(
            first_unmet(claims, &rules).map(|r| r.claim.as_str()),
            Some("roles")
        );
        assert_eq!(first_unmet(claims, &rules[..1]), None);
        assert_eq!(first_unmet(claims, &[]), None);
    }

    #[test]
    fn log_safe_principals() {
        let long_ok = "a".repeat(MAX_PRINCIPAL_BYTES);
        let too_long = "a".repeat(MAX_PRINCIPAL_BYTES + 1);
        let cases: &[(&str, bool)] = &[
            ("0b1c5f3e-0000-4000-8000-00000000c0de", true),
            ("user@contoso.com", true),
            ("primary", true),
            ("a=b,c;d[e]{f}'g'", true),
            ("5", true),
            (&long_ok, true),
            (&too_long, false),
            ("", false),
            ("mallory\" 200 principal=admin", false),
            ("a b", false),
            ("a\"b", false),
            ("a\\b", false),
            ("a\tb", false),
            ("a\nb", false),
            ("a\u{7f}b", false),
            ("a\u{85}b", false),
            ("a\u{a0}b", false),
            ("a\u{2028}b", false),
            ("a\u{2029}b", false),
            ("a\u{202e}b", false),
            ("a\u{200b}b", false),
            ("a\u{feff}b", false),
            ("a\u{3000}b", false),
            ("é", false),
            (r#"["a","b"]"#, false),
        ];
        for (principal, want) in cases {
            assert_eq!(is_log_safe(principal), *want, "{principal:?}");
        }
    }

    #[test]
    fn claim_header_spellings() {
        let configured = ["x-aml-caller-oid".to_string(), "x_tenant".to_string()];
        let cases: &[(&str, bool)] = &[
            ("x-aml-caller-oid", true),
            ("x_aml_caller_oid", true),
            ("X-Aml_Caller-OID", true),
            ("x-aml_caller-oid", true),
            ("x-tenant", true),
            ("X_TENANT", true),
            ("x-aml-caller-oid2", false),
            ("x-aml-caller.oid", true),
            ("X.AML.CALLER.OID", true),
            ("x.tenant", true),
            ("x-aml-caller,oid", false),
            ("x-aml-caller~oid", false),
            ("x--aml-caller-oid", false),
            ("x-aml-caller-oi", false),
            ("xaml-caller-oid", false),
            ("x-tenant ", false),
            ("", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_claim_header_spelling(&configured, name), *want, "{name}");
            assert!(
                is_claim_header_spelling(&[canonical_spelling(name)], name),
                "{name}"
            );
            assert_eq!(
                configured
                    .iter()
                    .any(|c| canonical_spelling(c) == canonical_spelling(name)),
                *want,
                "{name}"
            );
        }
        assert!(!is_claim_header_spelling(&[], "x-tenant"));
    }

    #[test]
    fn raw_member_matches_serde_json_raw_values() {
        let payloads = [
            r#"{"a":1,"b":[1,{"a":2},"]}\"x"],"c":{"d":{"e":[]}},"\u0061b":"a\"b","f":-0.5e-3}"#,
            " {\n \"k\" :\t[ 1 , 2 ] ,\r\"s\":\"\\\\\" , \"t\" : true , \"z\":null } ",
            r#"{"é":{"\"":"}"},"x":"{[,"}"#,
        ];
        for payload in payloads {
            let members: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
                serde_json::from_str(payload).unwrap();
            assert!(!members.is_empty());
            for (name, raw) in &members {
                assert_eq!(
                    raw_member(payload.as_bytes(), name),
                    Some(compact(raw.get())),
                    "{name} in {payload}"
                );
            }
            assert_eq!(raw_member(payload.as_bytes(), "absent"), None);
        }
    }

    #[test]
    fn header_values_are_lossless_or_absent() {
        let payload = r#"{"s":"as is, with commas","lead":" x","trail":"x\t","inner":"a  b",
            "crlf":"a\r\nx-evil: 1","nul":"a\u0000b","del":"a\u007fb","c1":"a\u0085b","utf":"é ü",
            "split":["a,b","c"],"joined":["a","b","c"],"big":1180591620717411303424,
            "float":1.50e3,"int":-7,"t":true,"z":null,"obj":{ "k" : [1, "v"] },
            "esc":["x\ny"],"empty":"", "n\u0065sted" : { "float": 2 } , "last"  :  2.5e0 }"#;
        let checked = strict_json::parse(payload.as_bytes()).unwrap();
        assert!(checked.inexact_number);
        let claims = checked.value.as_object().unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("s", Some("as is, with commas")),
            ("lead", None),
            ("trail", None),
            ("inner", Some("a  b")),
            ("crlf", None),
            ("nul", None),
            ("del", None),
            ("c1", None),
            ("utf", Some("é ü")),
            ("split", Some(r#"["a,b","c"]"#)),
            ("joined", Some(r#"["a","b","c"]"#)),
            ("big", Some("1180591620717411303424")),
            ("float", Some("1.50e3")),
            ("int", Some("-7")),
            ("t", Some("true")),
            ("z", Some("null")),
            ("obj", Some(r#"{"k":[1,"v"]}"#)),
            ("esc", Some(r#"["x\ny"]"#)),
            ("empty", Some("")),
            ("nested", Some(r#"{"float":2}"#)),
            ("last", Some("2.5e0")),
            ("absent", None),
        ];
        for (claim, want) in cases {
            assert_eq!(
                header_value(claims, Some(payload.as_bytes()), claim).as_deref(),
                *want,
                "{claim}"
            );
        }
        let exact = json!({"split": ["a,b", "c"], "n": 18446744073709551615_u64, "o": {"k": 1}});
        let exact = exact.as_object().unwrap();
        assert_eq!(
            header_value(exact, None, "split").as_deref(),
            Some(r#"["a,b","c"]"#)
        );
        assert_eq!(
            header_value(exact, None, "n").as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(
            header_value(exact, None, "o").as_deref(),
            Some(r#"{"k":1}"#)
        );
    }
}
