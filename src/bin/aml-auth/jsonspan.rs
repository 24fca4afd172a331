//! A span-tracking JSON scanner: finds the exact bytes of a member in a document so one value
//! can be replaced (or one member inserted) while every other byte of the file stays as written.

use std::fmt;

/// Deepest nesting accepted (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// A JSON value and the byte range `start..end` of its text.
#[derive(Debug)]
pub struct Node {
    /// Offset of the value's first byte.
    pub start: usize,
    /// Offset just past the value's last byte.
    pub end: usize,
    /// What the value is.
    pub kind: Kind,
}

/// The kinds of value the scanner tells apart.
#[derive(Debug)]
pub enum Kind {
    /// An object and its members in document order.
    Object(Vec<Member>),
    /// An array and its items.
    Array(Vec<Node>),
    /// A string, decoded.
    String(String),
    /// A number, `true`, `false` or `null`.
    Scalar,
}

/// One member of an object.
#[derive(Debug)]
pub struct Member {
    /// The member name, decoded.
    pub name: String,
    /// Offset just past the `{` or `,` before this member (where its leading whitespace starts).
    pub lead: usize,
    /// Offset of the name's opening quote.
    pub name_start: usize,
    /// Offset just past the name's closing quote.
    pub name_end: usize,
    /// The value.
    pub value: Node,
}

/// Why a document could not be scanned.
#[derive(Debug, PartialEq, Eq)]
pub struct ScanError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not valid JSON at line {} column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Scans a whole document: one value with optional whitespace around it.
pub fn scan(text: &str) -> Result<Node, ScanError> {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    s.skip_ws();
    let node = s.value(0)?;
    s.skip_ws();
    if s.pos != s.bytes.len() {
        return Err(s.error("unexpected text after the document"));
    }
    Ok(node)
}

impl Node {
    /// The members, when this is an object.
    pub fn members(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The decoded string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// A word for the value's type, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Object(_) => "an object",
            Kind::Array(_) => "an array",
            Kind::String(_) => "a string",
            Kind::Scalar => "a number, boolean or null",
        }
    }
}

/// The member called `name` of an object; an error when the name appears more than once, since
/// readers disagree about which one counts.
pub fn member<'a>(members: &'a [Member], name: &str) -> Result<Option<&'a Member>, String> {
    let mut found = members.iter().filter(|m| m.name == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(format!("member `{name}` appears more than once"));
    }
    Ok(first)
}

/// `text` with `start..end` replaced by `replacement`.
pub fn splice(text: &str, start: usize, end: usize, replacement: &str) -> Option<String> {
    let before = text.get(..start)?;
    let after = text.get(end..)?;
    Some(format!("{before}{replacement}{after}"))
}

/// `text` with a member `name: value_literal` added to `object`, right after `anchor` (or after
/// the last member), copying the anchor's indentation and the spacing around its colon.
pub fn insert_member(
    text: &str,
    object: &Node,
    anchor: Option<&Member>,
    name: &str,
    value_literal: &str,
) -> Option<String> {
    let members = object.members()?;
    let name_literal = serde_json::to_string(name).ok()?;
    match anchor.or(members.last()) {
        None => {
            let open = object.start.checked_add(1)?;
            splice(
                text,
                open,
                open,
                &format!("{name_literal}: {value_literal}"),
            )
        }
        Some(anchor) => {
            let indent = text.get(anchor.lead..anchor.name_start)?;
            let colon = text.get(anchor.name_end..anchor.value.start)?;
            let at = anchor.value.end;
            splice(
                text,
                at,
                at,
                &format!(",{indent}{name_literal}{colon}{value_literal}"),
            )
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn error(&self, message: &str) -> ScanError {
        let consumed = self.text.get(..self.pos).unwrap_or(self.text);
        let line = consumed.matches('\n').count() + 1;
        let line_start = consumed.rfind('\n').map_or(0, |i| i + 1);
        let column = consumed.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
        ScanError {
            line,
            column,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ScanError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ScanError> {
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') => self.literal("true")?,
            Some(b'f') => self.literal("false")?,
            Some(b'n') => self.literal("null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a value")),
            None => return Err(self.error("unexpected end of the document")),
        };
        Ok(Node {
            start,
            end: self.pos,
            kind,
        })
    }

    fn nest(&self, depth: usize) -> Result<usize, ScanError> {
        if depth >= MAX_DEPTH {
            Err(self.error("nested too deeply"))
        } else {
            Ok(depth + 1)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Kind, ScanError> {
        let depth = self.nest(depth)?;
        self.pos += 1;
        let mut members = Vec::new();
        let mut lead = self.pos;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Kind::Object(members));
        }
        loop {
            let name_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name in double quotes"));
            }
            let name = self.string()?;
            let name_end = self.pos;
            self.skip_ws();
            self.expect(b':', "`:` after a member name")?;
            self.skip_ws();
            let value = self.value(depth)?;
            members.push(Member {
                name,
                lead,
                name_start,
                name_end,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    lead = self.pos;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Kind::Object(members));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, ScanError> {
        let depth = self.nest(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Kind::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Kind::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn literal(&mut self, word: &str) -> Result<Kind, ScanError> {
        if self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word.as_bytes()))
        {
            self.pos += word.len();
            Ok(Kind::Scalar)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - from
    }

    fn number(&mut self) -> Result<Kind, ScanError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        Ok(Kind::Scalar)
    }

    fn hex4(&mut self) -> Result<u32, ScanError> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected 4 hexadecimal digits after `\\u`"))?;
        let value = u32::from_str_radix(hex, 16).map_err(|_| self.error("bad `\\u` escape"))?;
        self.pos += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, ScanError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, ScanError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                return self.unicode_escape();
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.pos += 1;
        Ok(c)
    }

    fn unicode_escape(&mut self) -> Result<char, ScanError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error("lone leading surrogate in `\\u` escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in `\\u` escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in `\\u` escape")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid `\\u` escape"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn value_text<'a>(text: &'a str, node: &Node) -> &'a str {
        &text[node.start..node.end]
    }

    #[test]
    fn spans_cover_exactly_the_value_text() {
        let text = " {\"a\" :\t[1, -2.5e+3, true, null, {\"b\":\"x\\\"y\"}] ,\r\n\"c\":{}} ";
        let root = scan(text).unwrap();
        assert_eq!(value_text(text, &root), text.trim());
        let members = root.members().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(
            value_text(text, &members[0].value),
            "[1, -2.5e+3, true, null, {\"b\":\"x\\\"y\"}]"
        );
        assert_eq!(&text[members[0].name_start..members[0].name_end], "\"a\"");
        assert_eq!(&text[members[1].lead..members[1].name_start], "\r\n");
        assert_eq!(value_text(text, &members[1].value), "{}");
        let Kind::Array(items) = &members[0].value.kind else {
            panic!("array expected")
        };
        let inner = items[4].members().unwrap();
        assert_eq!(inner[0].value.as_str(), Some("x\"y"));
    }

    #[test]
    fn strings_decode_escapes_and_unicode() {
        let cases: &[(&str, &str)] = &[
            (r#""plain""#, "plain"),
            (r#""a\"b\\c\/d""#, "a\"b\\c/d"),
            (r#""\b\f\n\r\t""#, "\u{8}\u{c}\n\r\t"),
            (r#""\u0041\u00e9""#, "Aé"),
            (r#""\ud83d\ude00""#, "😀"),
            ("\"naïve 😀\"", "naïve 😀"),
            (r#""primary\u005fkey""#, "primary_key"),
        ];
        for (text, want) in cases {
            assert_eq!(scan(text).unwrap().as_str(), Some(*want), "{text}");
        }
    }

    #[test]
    fn invalid_documents_are_refused_with_a_position() {
        let cases: &[(&str, &str)] = &[
            ("", "unexpected end"),
            ("{", "member name"),
            ("{\"a\" 1}", "`:`"),
            ("{\"a\":1,}", "member name"),
            ("[1,]", "expected a value"),
            ("[1 2]", "`,` or `]`"),
            ("{\"a\":1} x", "after the document"),
            ("\"a\nb\"", "control character"),
            ("\"abc", "unterminated"),
            ("\"\\x\"", "invalid escape"),
            ("\"\\ud800\"", "lone leading surrogate"),
            ("\"\\udc00\"", "lone trailing surrogate"),
            ("\"\\u12\"", "4 hexadecimal digits"),
            ("01", "after the document"),
            ("1.", "after `.`"),
            ("1e", "exponent"),
            ("-", "digit"),
            ("tru", "expected a value"),
            ("{'a':1}", "member name"),
        ];
        for (text, fragment) in cases {
            let err = scan(text).unwrap_err();
            assert!(err.message.contains(fragment), "{text:?}: {err}");
        }
        let err = scan("{\n  \"a\": x}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 8));
        assert!(scan(&"[".repeat(200))
            .unwrap_err()
            .message
            .contains("deeply"));
        assert!(scan(&format!("{}{}", "[".repeat(100), "]".repeat(100))).is_ok());
    }

    #[test]
    fn member_lookup_refuses_duplicates() {
        let root = scan(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        let members = root.members().unwrap();
        assert!(member(members, "b").unwrap().is_some());
        assert!(member(members, "z").unwrap().is_none());
        assert!(member(members, "a").unwrap_err().contains("more than once"));
    }

    #[test]
    fn replace_keeps_every_other_byte() {
        let cases: &[&str] = &[
            r#"{"primary_key":"old"}"#,
            "{\n  \"primary_key\" : \"o\\u006cd\",\n  \"x\": 1\n}\n",
            "\t{ \"x\":[\"primary_key\"], \"primary_key\":\"naïve😀\" }  ",
        ];
        for text in cases {
            let root = scan(text).unwrap();
            let m = member(root.members().unwrap(), "primary_key")
                .unwrap()
                .unwrap();
            let out = splice(text, m.value.start, m.value.end, "\"new\"").unwrap();
            assert_eq!(&out[..m.value.start], &text[..m.value.start]);
            assert_eq!(&out[m.value.start + 5..], &text[m.value.end..]);
            let again = scan(&out).unwrap();
            let m2 = member(again.members().unwrap(), "primary_key")
                .unwrap()
                .unwrap();
            assert_eq!(m2.value.as_str(), Some("new"));
        }
    }

    #[test]
    fn insertion_copies_the_surrounding_style() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (r#"{"a":1}"#, None, r#"{"a":1,"k":"v"}"#),
            (
                r#"{ "a": 1, "b": 2 }"#,
                None,
                r#"{ "a": 1, "b": 2, "k": "v" }"#,
            ),
            (
                "{\n    \"a\": 1,\n    \"b\": {\"c\": 2}\n}\n",
                None,
                "{\n    \"a\": 1,\n    \"b\": {\"c\": 2},\n    \"k\": \"v\"\n}\n",
            ),
            (
                "{\n  \"a\": 1,\n  \"b\": 2\n}",
                Some("a"),
                "{\n  \"a\": 1,\n  \"k\": \"v\",\n  \"b\": 2\n}",
            ),
            (
                "{\n\t\"a\" :\t1\n}",
                None,
                "{\n\t\"a\" :\t1,\n\t\"k\" :\t\"v\"\n}",
            ),
            ("{}", None, r#"{"k": "v"}"#),
            ("{ }", None, r#"{"k": "v" }"#),
        ];
        for (text, anchor, want) in cases {
            let root = scan(text).unwrap();
            let anchor = anchor.map(|a| member(root.members().unwrap(), a).unwrap().unwrap());
            let out = insert_member(text, &root, anchor, "k", "\"v\"").unwrap();
            assert_eq!(out, *want, "{text:?}");
            assert!(scan(&out).is_ok());
        }
    }

    #[test]
    fn insertion_into_a_nested_object() {
        let text = "{\"services\": [\n  {\"name\": \"a\", \"path_prefix\": \"/a\"},\n  {\"name\": \"b\",\n   \"path_prefix\": \"/b\"}\n]}";
        let root = scan(text).unwrap();
        let services = member(root.members().unwrap(), "services")
            .unwrap()
            .unwrap();
        let Kind::Array(items) = &services.value.kind else {
            panic!("array expected")
        };
        let out = insert_member(text, &items[1], None, "primary_key", "\"p\"").unwrap();
        assert_eq!(
            out,
            "{\"services\": [\n  {\"name\": \"a\", \"path_prefix\": \"/a\"},\n  {\"name\": \"b\",\n   \"path_prefix\": \"/b\",\n   \"primary_key\": \"p\"}\n]}"
        );
    }
}
