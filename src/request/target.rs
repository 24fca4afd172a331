//! The request target read once, one way: `:authority` canonicalised to a host and port, `:path`
//! to the form services are matched on; any spelling that more than one reading could give a
//! different meaning is refused with its own [`TargetError`].
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use std::borrow::Cow;

/// Why a request's Host or path cannot be read one way. Each reason has a stable code (the
/// `reason` of the 400 reply and the `aml_auth.denied.<code>` stat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetError {
    /// No `:authority` (Host), or an empty one.
    MissingHost,
    /// Host bytes that are not valid UTF-8.
    NonUtf8Host,
    /// A Host that is not `name[:port]` or `[ipv6][:port]`: other characters, empty labels, a
    /// port that is not 1-5 digits up to 65535, more than one `:`.
    InvalidHost,
    /// `:path` bytes (query included) that are not valid UTF-8.
    NonUtf8Path,
    /// A path that is not origin-form (`/...`), holds a raw space, control or non-ASCII byte, a
    /// fragment, a malformed or control-character escape.
    InvalidPath,
    /// `%2F` or `%5C` (any case) in the path.
    EncodedSlash,
    /// A raw `\` in the path.
    Backslash,
    /// A `.` or `..` segment, raw or encoded (`%2e`), also before a `;` parameter.
    DotSegment,
    /// An empty segment (`//`).
    EmptySegment,
    /// A `;` path parameter, where the service does not allow them or readings with and without
    /// the parameters select different services.
    PathParameter,
    /// The path selects another service when read case-insensitively.
    AmbiguousCase,
    /// An `access_token` query parameter on a request the filter authenticates.
    AccessTokenInQuery,
    /// When services are selected by Envoy's route: an escape of a character that needs none
    /// (`%66`), which Envoy's route match reads raw and an upstream reads decoded.
    EncodedCharacter,
}

/// Every [`TargetError`], for tests and stat tables.
pub const TARGET_ERRORS: [TargetError; 13] = [
    TargetError::MissingHost,
    TargetError::NonUtf8Host,
    TargetError::InvalidHost,
    TargetError::NonUtf8Path,
    TargetError::InvalidPath,
    TargetError::EncodedSlash,
    TargetError::Backslash,
    TargetError::DotSegment,
    TargetError::EmptySegment,
    TargetError::PathParameter,
    TargetError::AmbiguousCase,
    TargetError::AccessTokenInQuery,
    TargetError::EncodedCharacter,
];

impl TargetError {
    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            TargetError::MissingHost => "missing_host",
            TargetError::NonUtf8Host => "non_utf8_host",
            TargetError::InvalidHost => "invalid_host",
            TargetError::NonUtf8Path => "non_utf8_path",
            TargetError::InvalidPath => "invalid_path",
            TargetError::EncodedSlash => "encoded_slash",
            TargetError::Backslash => "backslash_in_path",
            TargetError::DotSegment => "dot_segment",
            TargetError::EmptySegment => "empty_segment",
            TargetError::PathParameter => "path_parameter",
            TargetError::AmbiguousCase => "ambiguous_path_case",
            TargetError::AccessTokenInQuery => "access_token_in_query",
            TargetError::EncodedCharacter => "encoded_path_character",
        }
    }

    /// A short sentence for the reply body; never contains request data.
    pub fn message(self) -> &'static str {
        match self {
            TargetError::MissingHost => "the request has no Host",
            TargetError::NonUtf8Host => "the Host is not valid UTF-8",
            TargetError::InvalidHost => "the Host is not a host name or IP literal with an optional port",
            TargetError::NonUtf8Path => "the path is not valid UTF-8",
            TargetError::InvalidPath => "the path is not an origin-form path of printable ASCII",
            TargetError::EncodedSlash => "the path holds an encoded slash or backslash",
            TargetError::Backslash => "the path holds a backslash",
            TargetError::DotSegment => "the path holds a dot segment",
            TargetError::EmptySegment => "the path holds an empty segment",
            TargetError::PathParameter => "the path holds a ; parameter",
            TargetError::AmbiguousCase => "the path selects another service when read case-insensitively",
            TargetError::EncodedCharacter => {
                "the path encodes a character that needs no encoding"
            }
            TargetError::AccessTokenInQuery => {
                "credentials are accepted in the Authorization header only, not as access_token in the query"
            }
        }
    }
}

/// A canonical host: lowercase name without trailing dot (IPv6 literals in brackets, RFC 5952
/// form), and the port when one was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host<'a> {
    /// Lowercase name, or `[v6]`.
    pub name: Cow<'a, str>,
    /// The port, when the authority had one.
    pub port: Option<u16>,
}

/// Longest host name accepted (RFC 1035 253, plus a trailing dot).
const MAX_NAME: usize = 254;

/// Canonicalises an `:authority` (or a configured host). `host.`, `HOST` and `host.:443` read
/// as `host`; `host:`, `host:443:443`, `host:abc`, `host..`, `.host`, `user@host` are refused.
pub fn host(raw: &[u8]) -> Result<Host<'_>, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::MissingHost);
    }
    let text = core::str::from_utf8(raw).map_err(|_| TargetError::NonUtf8Host)?;
    if !text.is_ascii() {
        return Err(TargetError::InvalidHost);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (literal, after) = rest.split_once(']').ok_or(TargetError::InvalidHost)?;
        if !literal
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(TargetError::InvalidHost);
        }
        let groups = ipv6_groups(literal).ok_or(TargetError::InvalidHost)?;
        let port = match after {
            "" => None,
            _ => Some(port(
                after.strip_prefix(':').ok_or(TargetError::InvalidHost)?,
            )?),
        };
        return Ok(Host {
            name: Cow::Owned(ipv6_canonical(&groups)),
            port,
        });
    }
    let (name, port) = match text.split_once(':') {
        None => (text, None),
        Some((name, p)) => (name, Some(port(p)?)),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(is_label_byte))
    {
        return Err(TargetError::InvalidHost);
    }
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    Ok(Host { name, port })
}

/// The eight groups of an IPv6 literal (hex groups, one `::`, an optional dotted IPv4 tail).
fn ipv6_groups(text: &str) -> Option<[u16; 8]> {
    fn parse_side(side: &str, out: &mut Vec<u16>, tail_allowed: bool) -> Option<()> {
        if side.is_empty() {
            return Some(());
        }
        let parts: Vec<&str> = side.split(':').collect();
        let last = parts.len().checked_sub(1)?;
        for (i, part) in parts.iter().enumerate() {
            if i == last && tail_allowed && part.contains('.') {
                let octets: Vec<u8> = part
                    .split('.')
                    .map(|o| {
                        (!o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit()))
                            .then(|| o.parse::<u8>().ok())
                            .flatten()
                    })
                    .collect::<Option<_>>()?;
                let [a, b, c, d] = octets.as_slice() else {
                    return None;
                };
                out.push(u16::from_be_bytes([*a, *b]));
                out.push(u16::from_be_bytes([*c, *d]));
            } else {
                if part.is_empty() || part.len() > 4 {
                    return None;
                }
                out.push(u16::from_str_radix(part, 16).ok()?);
            }
        }
        Some(())
    }
    let mut head = Vec::with_capacity(8);
    let mut tail = Vec::with_capacity(8);
    match text.split_once("::") {
        None => {
            parse_side(text, &mut head, true)?;
            if head.len() != 8 {
                return None;
            }
        }
        Some((h, t)) => {
            if t.contains("::") {
                return None;
            }
            parse_side(h, &mut head, false)?;
            parse_side(t, &mut tail, true)?;
            if head.len().checked_add(tail.len())? > 7 {
                return None;
            }
        }
    }
    let mut groups = [0u16; 8];
    for (slot, g) in groups.iter_mut().zip(head.iter()) {
        *slot = *g;
    }
    for (slot, g) in groups.iter_mut().rev().zip(tail.iter().rev()) {
        *slot = *g;
    }
    Some(groups)
}

/// RFC 5952 text of an IPv6 address in brackets: lowercase hex without leading zeros, the
/// first longest run of two or more zero groups as `::` (an IPv4 tail is written in hex too).
fn ipv6_canonical(groups: &[u16; 8]) -> String {
    let (mut best, mut run) = ((0usize, 0usize), (0usize, 0usize));
    for (i, g) in groups.iter().enumerate() {
        if *g == 0 {
            run = if run.1 == 0 {
                (i, 1)
            } else {
                (run.0, run.1.saturating_add(1))
            };
            if run.1 > best.1 {
                best = run;
            }
        } else {
            run = (0, 0);
        }
    }
    let mut out = String::with_capacity(41);
    out.push('[');
    let mut i = 0usize;
    while let Some(g) = groups.get(i) {
        if best.1 >= 2 && i == best.0 {
            out.push_str("::");
            i = i.saturating_add(best.1);
            continue;
        }
        if i > 0 && !out.ends_with(':') {
            out.push(':');
        }
        let mut started = false;
        for shift in [12u32, 8, 4, 0] {
            let nibble = (g.wrapping_shr(shift) & 0xf) as u8;
            if nibble != 0 || started || shift == 0 {
                started = true;
                out.push(char::from(if nibble < 10 {
                    b'0'.saturating_add(nibble)
                } else {
                    b'a'.saturating_add(nibble.saturating_sub(10))
                }));
            }
        }
        i = i.saturating_add(1);
    }
    out.push(']');
    out
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn port(digits: &str) -> Result<u16, TargetError> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TargetError::InvalidHost);
    }
    digits.parse().map_err(|_| TargetError::InvalidHost)
}

/// A path in the form services are matched on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path<'a> {
    /// The path without its query, escapes of prefix characters decoded.
    pub matching: Cow<'a, str>,
    /// The query after `?`, untouched (empty when there is none).
    pub query: &'a str,
    /// Whether a segment holds a `;` parameter.
    pub has_parameters: bool,
    /// Whether `matching` decoded an escape (it then differs from the raw path).
    pub decoded: bool,
}

/// Whether a configured `path_prefix` may hold this byte besides `/`: RFC 3986 unreserved
/// characters, `:`, `@` and the sub-delimiters but `;`. An escape of such a byte is decoded for
/// matching, so a prefix and a request meet the way an upstream that decodes every escape reads it.
pub fn is_prefix_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => b.checked_sub(b'0'),
        b'a'..=b'f' => b.checked_sub(b'a' - 10),
        b'A'..=b'F' => b.checked_sub(b'A' - 10),
        _ => None,
    }
}

/// Canonicalises a `:path`: refuses what cannot be read one way, decodes escapes of the bytes a
/// prefix may hold, and keeps the query apart (it is not part of matching).
pub fn path(raw: &[u8]) -> Result<Path<'_>, TargetError> {
    let text = core::str::from_utf8(raw).map_err(|_| TargetError::NonUtf8Path)?;
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    if !path.starts_with('/') || text.contains('#') {
        return Err(TargetError::InvalidPath);
    }
    let bytes = path.as_bytes();
    let mut decoded: Option<Vec<u8>> = None;
    let mut has_parameters = false;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let mut out = b;
        let mut width = 1usize;
        match b {
            b'\\' => return Err(TargetError::Backslash),
            b';' => has_parameters = true,
            b'%' => {
                let hi = bytes.get(i.saturating_add(1)).copied().and_then(hex);
                let lo = bytes.get(i.saturating_add(2)).copied().and_then(hex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(TargetError::InvalidPath);
                };
                let v = hi.wrapping_shl(4) | lo;
                if v == b'/' || v == b'\\' {
                    return Err(TargetError::EncodedSlash);
                }
                if v < 0x20 || v == 0x7f {
                    return Err(TargetError::InvalidPath);
                }
                if is_prefix_byte(v) {
                    out = v;
                    width = 3;
                }
            }
            0x21..=0x7e => {}
            _ => return Err(TargetError::InvalidPath),
        }
        if width == 3 && decoded.is_none() {
            decoded = Some(bytes.get(..i).unwrap_or_default().to_vec());
        }
        if let Some(d) = decoded.as_mut() {
            if width == 3 {
                d.push(out);
            } else {
                d.extend_from_slice(bytes.get(i..i.saturating_add(width)).unwrap_or_default());
            }
        }
        i = i.saturating_add(width);
    }
    let was_decoded = decoded.is_some();
    let matching = match decoded {
        None => Cow::Borrowed(path),
        Some(d) => Cow::Owned(String::from_utf8(d).map_err(|_| TargetError::InvalidPath)?),
    };
    check_segments(&matching)?;
    Ok(Path {
        matching,
        query,
        has_parameters,
        decoded: was_decoded,
    })
}

/// Refuses empty and dot segments, also as the part of a segment before its `;` parameter.
fn check_segments(path: &str) -> Result<(), TargetError> {
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        let name = segment.split(';').next().unwrap_or_default();
        if matches!(name, "." | "..") {
            return Err(TargetError::DotSegment);
        }
        if name.is_empty() && !(last && segment.is_empty()) {
            return Err(TargetError::EmptySegment);
        }
    }
    Ok(())
}

/// The path as a server that drops `;` parameters reads it (`/a;x=1/b` is `/a/b`).
pub fn without_parameters(path: &str) -> String {
    path.split('/')
        .map(|s| s.split(';').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/")
}

/// The query of a raw `:path` (after the first `?`; empty when none).
pub fn raw_query(path: &[u8]) -> &[u8] {
    path.iter()
        .position(|b| *b == b'?')
        .and_then(|i| path.get(i.saturating_add(1)..))
        .unwrap_or_default()
}

/// Whether a query names `access_token`, the parameter RFC 6750 lets a client put a bearer token
/// in, in any spelling a server reads as that name: escapes decoded, any case, PHP's folding
/// (see [`php_parameter_name`]), Rack's and Node qs's brackets (see [`rack_parameter_key`]) and
/// ASP.NET's `%uXXXX` escapes.
pub fn query_has_access_token(query: &[u8]) -> bool {
    const NAME: &[u8] = b"access_token";
    if query.is_empty() {
        return false;
    }
    query.split(|b| *b == b'&' || *b == b';').any(|pair| {
        let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
        let decoded = url_decoded(name, false);
        php_parameter_name(&decoded) == NAME
            || rack_parameter_key(&decoded) == Some(NAME)
            || url_decoded(name, true) == NAME
    })
}

/// A raw query parameter name lowercased, with `%XX` escapes decoded and `+` read as a space;
/// with `u_escapes`, also ASP.NET's `%uXXXX` below U+0080 (its `HttpUtility.UrlDecode`).
fn url_decoded(raw: &[u8], u_escapes: bool) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(raw.len().min(64));
    let mut i = 0usize;
    let at = |i: usize, k: usize| raw.get(i.saturating_add(k)).copied();
    while let Some(b) = at(i, 0) {
        let (c, width) = match (b, at(i, 1)) {
            (b'%', Some(b'u' | b'U')) if u_escapes => {
                let digits = [at(i, 2), at(i, 3), at(i, 4), at(i, 5)];
                match digits.iter().try_fold(0u32, |v, d| {
                    d.and_then(hex).map(|h| v.wrapping_shl(4) | u32::from(h))
                }) {
                    Some(v) => (u8::try_from(v).ok().filter(u8::is_ascii).unwrap_or(b'%'), 6),
                    None => (b, 1),
                }
            }
            (b'%', _) => match (at(i, 1).and_then(hex), at(i, 2).and_then(hex)) {
                (Some(hi), Some(lo)) => (hi.wrapping_shl(4) | lo, 3),
                _ => (b, 1),
            },
            (b'+', _) => (b' ', 1),
            _ => (b, 1),
        };
        decoded.push(c.to_ascii_lowercase());
        i = i.saturating_add(width);
    }
    decoded
}

/// A decoded query parameter name as PHP reads it: cut at the first NUL (PHP registers the
/// name as a C string, so `access_token%00x` is `access_token`); leading spaces dropped; an
/// array suffix (`[` with a `]` after it: `name[]`, `name[k]`) dropped; every other space, `.`
/// and `[` read as `_`. So `access.token`, `access+token`, `access%20token`, `access[token` and
/// `access_token[]` all read as `access_token`. (PHP stops folding after an unmatched `[`;
/// folding on is wider, so never misses a name PHP reads as `access_token`.)
fn php_parameter_name(decoded: &[u8]) -> Vec<u8> {
    let decoded = decoded.split(|b| *b == 0).next().unwrap_or_default();
    let start = decoded
        .iter()
        .position(|b| *b != b' ')
        .unwrap_or(decoded.len());
    let name = decoded.get(start..).unwrap_or_default();
    let mut out = Vec::with_capacity(name.len());
    for (j, &c) in name.iter().enumerate() {
        match c {
            b'[' if name
                .get(j.saturating_add(1)..)
                .is_some_and(|rest| rest.contains(&b']')) =>
            {
                break
            }
            b' ' | b'.' | b'[' => out.push(b'_'),
            other => out.push(other),
        }
    }
    out
}

/// The key a decoded query parameter name fills in Rack 2 (`Rack::Utils.normalize_params`:
/// `name =~ /\A[\[\]]*([^\[\]]+)\]*/`, so `access_token]`, `[access_token]` and
/// `]access_token[]` all fill `params["access_token"]`), unless the rest is a lone `[`; Node's
/// `qs` (Express) also reads `[access_token]` as `access_token`.
fn rack_parameter_key(decoded: &[u8]) -> Option<&[u8]> {
    let bracket = |b: &u8| *b == b'[' || *b == b']';
    let start = decoded.iter().position(|b| !bracket(b))?;
    let rest = decoded.get(start..)?;
    let end = rest.iter().position(bracket).unwrap_or(rest.len());
    let (key, after) = rest.split_at(end);
    let after_close = after.iter().position(|b| *b != b']').unwrap_or(after.len());
    (after.get(after_close..) != Some(b"[")).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(raw: &str) -> Result<(String, Option<u16>), TargetError> {
        host(raw.as_bytes()).map(|h| (h.name.into_owned(), h.port))
    }

    #[test]
    fn host_spellings() {
        use TargetError::*;
        let ok = |name: &str, port: Option<u16>| Ok((name.to_string(), port));
        let table: &[(&str, Result<(String, Option<u16>), TargetError>)] = &[
            ("models.contoso.com", ok("models.contoso.com", None)),
            ("Models.Contoso.COM", ok("models.contoso.com", None)),
            ("models.contoso.com.", ok("models.contoso.com", None)),
            (
                "models.contoso.com:443",
                ok("models.contoso.com", Some(443)),
            ),
            (
                "models.contoso.com.:443",
                ok("models.contoso.com", Some(443)),
            ),
            (
                "models.contoso.com:00443",
                ok("models.contoso.com", Some(443)),
            ),
            (
                "models.contoso.com:65535",
                ok("models.contoso.com", Some(65535)),
            ),
            ("xn--modle-6ra.example", ok("xn--modle-6ra.example", None)),
            (
                "XN--MODLE-6RA.example:8080",
                ok("xn--modle-6ra.example", Some(8080)),
            ),
            ("svc_1.internal", ok("svc_1.internal", None)),
            ("127.0.0.1:10000", ok("127.0.0.1", Some(10000))),
            ("[::1]", ok("[::1]", None)),
            ("[::1]:80", ok("[::1]", Some(80))),
            ("[0:0:0:0:0:0:0:1]:80", ok("[::1]", Some(80))),
            ("[2001:DB8::A]", ok("[2001:db8::a]", None)),
            ("[::ffff:127.0.0.1]", ok("[::ffff:7f00:1]", None)),
            ("[::FFFF:7F00:1]:1", ok("[::ffff:7f00:1]", Some(1))),
            ("[1:0:0:2:0:0:0:3]", ok("[1:0:0:2::3]", None)),
            ("[1:0:0:2:0:0:3:4]", ok("[1::2:0:0:3:4]", None)),
            ("[1:2:3:4:5:6:7:8]", ok("[1:2:3:4:5:6:7:8]", None)),
            ("[1:2:3:4:5:6:7::]", ok("[1:2:3:4:5:6:7:0]", None)),
            ("[::]", ok("[::]", None)),
            ("[0001:0:0:0:0:0:0:0]", ok("[1::]", None)),
            ("[1::2::3]", Err(InvalidHost)),
            ("[1:2:3:4:5:6:7:8:9]", Err(InvalidHost)),
            ("[1:2:3:4:5:6:7]", Err(InvalidHost)),
            ("[12345::]", Err(InvalidHost)),
            ("[::1.2.3]", Err(InvalidHost)),
            ("[::256.0.0.1]", Err(InvalidHost)),
            ("[1.2.3.4::]", Err(InvalidHost)),
            ("[:1]", Err(InvalidHost)),
            ("[]", Err(InvalidHost)),
            ("", Err(MissingHost)),
            ("models.contoso.com:", Err(InvalidHost)),
            ("models.contoso.com:443:443", Err(InvalidHost)),
            ("models.contoso.com:abc", Err(InvalidHost)),
            ("models.contoso.com:443.", Err(InvalidHost)),
            ("models.contoso.com:65536", Err(InvalidHost)),
            ("models.contoso.com:123456", Err(InvalidHost)),
            ("models.contoso.com:+443", Err(InvalidHost)),
            ("models.contoso.com..", Err(InvalidHost)),
            (".models.contoso.com", Err(InvalidHost)),
            ("models..contoso.com", Err(InvalidHost)),
            (".", Err(InvalidHost)),
            (":443", Err(InvalidHost)),
            ("user@models.contoso.com", Err(InvalidHost)),
            ("models.contoso.com/x", Err(InvalidHost)),
            ("models contoso.com", Err(InvalidHost)),
            ("models.contoso.com%2e", Err(InvalidHost)),
            ("modèle.example", Err(InvalidHost)),
            ("models.contoso.com\u{200b}", Err(InvalidHost)),
            ("[::1", Err(InvalidHost)),
            ("[::1]x", Err(InvalidHost)),
            ("[::1]:", Err(InvalidHost)),
            ("[::1]:80:80", Err(InvalidHost)),
            ("[fe80::1%25eth0]", Err(InvalidHost)),
            ("[not-v6]", Err(InvalidHost)),
            ("::1", Err(InvalidHost)),
        ];
        for (raw, want) in table {
            assert_eq!(&h(raw), want, "{raw:?}");
        }
        assert_eq!(host(b"models.contoso.com\xff"), Err(NonUtf8Host));
        assert_eq!(host(b"\xc3\xa8.example"), Err(InvalidHost));
        let long = format!("{}.example", "a".repeat(250));
        assert_eq!(h(&long), Err(InvalidHost));
    }

    #[test]
    fn ipv6_agrees_with_std() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut groups = [0u16; 8];
            for g in groups.iter_mut() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *g = match x >> 62 {
                    0 | 1 => 0,
                    2 => (x >> 40) as u16 & 0xf,
                    _ => (x >> 32) as u16,
                };
            }
            let addr = std::net::Ipv6Addr::from(groups);
            if addr.to_ipv4_mapped().is_some() {
                continue;
            }
            let full = groups.map(|g| format!("{g:04X}")).join(":");
            for spelling in [addr.to_string(), full] {
                let parsed = ipv6_groups(&spelling).unwrap();
                assert_eq!(parsed, groups, "{spelling}");
                assert_eq!(ipv6_canonical(&parsed), format!("[{addr}]"), "{spelling}");
            }
        }
    }

    fn p(raw: &str) -> Result<String, TargetError> {
        path(raw.as_bytes()).map(|p| p.matching.into_owned())
    }

    #[test]
    fn path_spellings() {
        use TargetError::*;
        let ok = |s: &str| Ok(s.to_string());
        let table: &[(&str, Result<String, TargetError>)] = &[
            (
                "/api/v1/service/fraud/score",
                ok("/api/v1/service/fraud/score"),
            ),
            ("/api/v1/service/fraud/", ok("/api/v1/service/fraud/")),
            ("/", ok("/")),
            (
                "/api/v1/service/fraud/score?x=1&y=%2F",
                ok("/api/v1/service/fraud/score"),
            ),
            (
                "/api/v1/service/%66raud/score",
                ok("/api/v1/service/fraud/score"),
            ),
            (
                "/api/v1/service/fr%61ud/score",
                ok("/api/v1/service/fraud/score"),
            ),
            (
                "/api/v1/service/fr%41ud/score",
                ok("/api/v1/service/frAud/score"),
            ),
            ("/v1/models/m%3Apredict", ok("/v1/models/m:predict")),
            ("/a%7eb%2D%5f%2e", ok("/a~b-_.")),
            ("/a%20b", ok("/a%20b")),
            ("/a%25b", ok("/a%25b")),
            ("/a%3Bb", ok("/a%3Bb")),
            ("/a%3Fb", ok("/a%3Fb")),
            ("/a%C3%A8", ok("/a%C3%A8")),
            ("/a;b=1/c", ok("/a;b=1/c")),
            ("/a/b..c/.d/..e", ok("/a/b..c/.d/..e")),
            ("", Err(InvalidPath)),
            ("*", Err(InvalidPath)),
            (
                "http://models.contoso.com/api/v1/service/fraud/score",
                Err(InvalidPath),
            ),
            ("api/v1", Err(InvalidPath)),
            ("?x=1", Err(InvalidPath)),
            ("/a#frag", Err(InvalidPath)),
            ("/a?x#frag", Err(InvalidPath)),
            ("/a b", Err(InvalidPath)),
            ("/a\tb", Err(InvalidPath)),
            ("/mod\u{e8}le/", Err(InvalidPath)),
            ("/a\u{200b}/", Err(InvalidPath)),
            ("/a%", Err(InvalidPath)),
            ("/a%2", Err(InvalidPath)),
            ("/a%zz", Err(InvalidPath)),
            ("/a%00b", Err(InvalidPath)),
            ("/a%0a", Err(InvalidPath)),
            ("/a%7F", Err(InvalidPath)),
            ("/api/v1/service/fraud%2Fscore", Err(EncodedSlash)),
            ("/api/v1/service%2ffraud%2fscore", Err(EncodedSlash)),
            ("/public/..%2fprivate/score", Err(EncodedSlash)),
            ("/a%5Cb", Err(EncodedSlash)),
            ("/a%5cb", Err(EncodedSlash)),
            ("/a\\b", Err(Backslash)),
            ("/public/..\\private", Err(Backslash)),
            ("/public/../api/v1/service/fraud/score", Err(DotSegment)),
            ("/public/./x", Err(DotSegment)),
            ("/public/.", Err(DotSegment)),
            ("/public/..", Err(DotSegment)),
            ("/public/%2e%2e/private", Err(DotSegment)),
            ("/public/%2E%2e/private", Err(DotSegment)),
            ("/public/.%2E/private", Err(DotSegment)),
            ("/public/%2e/private", Err(DotSegment)),
            ("/public/..;x/private", Err(DotSegment)),
            ("/public/.;x/private", Err(DotSegment)),
            ("//api/v1/service/fraud/score", Err(EmptySegment)),
            ("/api//v1", Err(EmptySegment)),
            ("/api/v1//", Err(EmptySegment)),
            ("/api/;x/v1", Err(EmptySegment)),
        ];
        for (raw, want) in table {
            assert_eq!(&p(raw), want, "{raw:?}");
        }
        assert_eq!(
            path(b"/api/v1/service/fraud/score?x=\xff"),
            Err(NonUtf8Path)
        );
        assert_eq!(path(b"/api/\xff/score"), Err(NonUtf8Path));
        let parsed = path(b"/a;b/c?q=%2F&r").unwrap();
        assert!(parsed.has_parameters);
        assert_eq!(parsed.query, "q=%2F&r");
        assert!(!path(b"/a/c?x=;").unwrap().has_parameters);
    }

    #[test]
    fn unchanged_paths_borrow() {
        assert!(matches!(
            path(b"/api/v1/service/fraud/score?x=1").unwrap().matching,
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            host(b"models.example").unwrap().name,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn parameters_dropped() {
        assert_eq!(without_parameters("/a;x=1/b;y/c"), "/a/b/c");
        assert_eq!(without_parameters("/a/b/"), "/a/b/");
    }

    #[test]
    fn access_token_in_query() {
        for q in [
            "access_token=x",
            "a=1&access_token=x",
            "access_token",
            "ACCESS_TOKEN=x",
            "access%5Ftoken=x",
            "%61ccess_token=x",
            "a=1;access_token=x",
            "access.token=x",
            "access+token=x",
            "access%20token=x",
            "access[token=x",
            "access_token[]=x",
            "access_token[0]=x",
            "access_token[a][b]=x",
            "access_token%5B%5D=x",
            "access%2Etoken=x",
            "access%5Btoken=x",
            "ACCESS.TOKEN=x",
            "+access_token=x",
            "%20%20access.token",
            "a=1&access token=x",
            "access_token%00=x",
            "access_token%00junk=x",
            "access.token%00[=x",
            "ACCESS%2eTOKEN%00%00=x",
            "access_token]=x",
            "[access_token]=x",
            "]]access_token=x",
            "%5Baccess_token%5D=x",
            "[access_token][]=x",
            "access_token]]x=1",
            "%u0061ccess_token=x",
            "access%U005Ftoken=x",
            "%u0041CCESS_TOKEN=x",
        ] {
            assert!(query_has_access_token(q.as_bytes()), "{q}");
        }
        for q in [
            "",
            "x=access_token",
            "access_tokens=x",
            "my_access_token=1",
            "access=1&token=2",
            "access_token[=x",
            "access]token=x",
            "access-token=x",
            "access__token=x",
            "accesstoken=x",
            "x[access_token]=1",
            "access_token_=x",
            "access%3Dtoken=x",
            "%00access_token=x",
            "access%00_token=x",
            "[access]token=x",
            "[x]access_token=x",
            "access%u005token=x",
            "access%u015Ftoken=x",
            "%uzz61ccess_token=x",
        ] {
            assert!(!query_has_access_token(q.as_bytes()), "{q}");
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<&str> = TARGET_ERRORS.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TARGET_ERRORS.len());
    }
}
