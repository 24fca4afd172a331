//! A header map as the host serialises it (`proxy_get_header_map_pairs`), read in place: one
//! buffer and one list of positions, no allocation per header.
// Untrusted lengths flow through this module: every arithmetic operation is checked.
#![deny(clippy::arithmetic_side_effects)]

use core::ops::Range;

/// The pairs of one header map, names lowercase as Envoy hands them over, in the host's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl HeaderMap {
    /// Reads the proxy-wasm map serialisation: a count, (name length, value length) per pair,
    /// then each name and value followed by a NUL. Empty bytes are an empty map; `None` for
    /// anything malformed.
    pub fn parse(bytes: Vec<u8>) -> Option<Self> {
        if bytes.is_empty() {
            return Some(HeaderMap::default());
        }
        let word = |at: usize| -> Option<usize> {
            let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
            usize::try_from(u32::from_le_bytes(b)).ok()
        };
        let count = word(0)?;
        let mut at = count.checked_mul(8)?.checked_add(4)?;
        if at > bytes.len() {
            return None;
        }
        let mut pairs = Vec::with_capacity(count);
        for i in 0..count {
            let sizes = i.checked_mul(8)?.checked_add(4)?;
            let (n, v) = (word(sizes)?, word(sizes.checked_add(4)?)?);
            let name = at..at.checked_add(n)?;
            at = name.end.checked_add(1)?;
            let value = at..at.checked_add(v)?;
            at = value.end.checked_add(1)?;
            bytes.get(name.clone())?;
            bytes.get(value.clone())?;
            pairs.push((name, value));
        }
        Some(HeaderMap { bytes, pairs })
    }

    /// Every pair, name and value as bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.pairs.iter().map(|(n, v)| {
            (
                self.bytes.get(n.clone()).unwrap_or_default(),
                self.bytes.get(v.clone()).unwrap_or_default(),
            )
        })
    }

    /// Every pair whose name is UTF-8 (Envoy never passes another), as the decision reads them.
    pub fn utf8_pairs(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.iter()
            .filter_map(|(n, v)| core::str::from_utf8(n).ok().map(|n| (n, v)))
    }

    /// The first value of header `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// Keeps only the pairs whose name `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let bytes = &self.bytes;
        self.pairs
            .retain(|(n, _)| keep(bytes.get(n.clone()).unwrap_or_default()));
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the map has no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// A map of these pairs, serialised as the host does (for tests and fakes).
    pub fn of(pairs: &[(&str, &[u8])]) -> Self {
        let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        let mut out = Vec::new();
        out.extend_from_slice(&len32(pairs.len()));
        for (n, v) in pairs {
            out.extend_from_slice(&len32(n.len()));
            out.extend_from_slice(&len32(v.len()));
        }
        for (n, v) in pairs {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        HeaderMap::parse(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_host_serialisation_in_place() {
        let pairs: &[(&str, &[u8])] = &[
            (":authority", b"h"),
            (":path", b"/x?y"),
            ("authorization", b"Bearer k"),
            ("x-empty", b""),
            ("authorization", b"Bearer j"),
        ];
        let map = HeaderMap::of(pairs);
        assert_eq!(map.len(), 5);
        let read: Vec<(&[u8], &[u8])> = map.iter().collect();
        let want: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), *v)).collect();
        assert_eq!(read, want);
        assert_eq!(map.get("authorization"), Some(&b"Bearer k"[..]));
        assert_eq!(map.get("x-empty"), Some(&b""[..]));
        assert_eq!(map.get("x-absent"), None);
        let mut map = map;
        map.retain(|n| n != b"authorization");
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("authorization"), None);
        assert_eq!(map.get(":path"), Some(&b"/x?y"[..]));
    }

    #[test]
    fn malformed_serialisations_are_refused() {
        assert_eq!(HeaderMap::parse(Vec::new()), Some(HeaderMap::default()));
        let good = {
            let mut b = 1u32.to_le_bytes().to_vec();
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(b"a\0bc\0");
            b
        };
        assert_eq!(HeaderMap::parse(good.clone()).map(|m| m.len()), Some(1));
        for cut in 1..good.len() - 1 {
            assert_eq!(
                HeaderMap::parse(good.get(..cut).unwrap().to_vec()),
                None,
                "cut at {cut}"
            );
        }
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        assert_eq!(HeaderMap::parse(huge), None);
        assert!(HeaderMap::of(&[]).is_empty());
    }

    #[test]
    fn a_name_that_is_not_utf8_is_skipped_by_the_decision() {
        let mut b = 2u32.to_le_bytes().to_vec();
        for (n, v) in [(2u32, 1u32), (13, 1)] {
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(b"\xff\xfe\0v\0authorization\0w\0");
        let map = HeaderMap::parse(b).unwrap();
        assert_eq!(map.len(), 2);
        let read: Vec<(&str, &[u8])> = map.utf8_pairs().collect();
        assert_eq!(read, [("authorization", &b"w"[..])]);
    }
}
