//! The strict object walker: reads one JSON object's fields by type, refuses unknown ones, and
//! names every refusal by its field path.

use serde_json::{Map, Value};

use super::{ConfigError, EnvLookup};
use crate::keys::KeyDigest;

/// A JSON object being compiled, with its path for error messages.
pub(super) struct Obj<'a> {
    pub(super) path: String,
    pub(super) map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    pub(super) fn new(path: &str, value: &'a Value) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Obj {
                path: path.to_string(),
                map,
            }),
            other => Err(ConfigError::new(
                path,
                format!("must be a JSON object, found {}", kind(other)),
            )),
        }
    }

    pub(super) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn only(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::new(
                self.path(unknown),
                match did_you_mean(unknown, allowed) {
                    Some(near) => format!(
                        "unknown field; did you mean `{near}`? (expected one of: {})",
                        allowed.join(", ")
                    ),
                    None => format!("unknown field; expected one of: {}", allowed.join(", ")),
                },
            )),
        }
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    pub(super) fn object(&self, key: &str) -> Result<Option<Obj<'a>>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => Obj::new(&self.path(key), v).map(Some),
        }
    }

    pub(super) fn array(&self, key: &str) -> Result<Option<&'a [Value]>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.as_slice())),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    pub(super) fn u64(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match whole_number(n) {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ConfigError::new(
                    self.path(key),
                    format!("must be a whole number from {min} to {max}, found {n}"),
                )),
            },
            Some(other) => Err(self.wrong_type(key, "a whole number", other)),
        }
    }

    /// A non-empty array of non-empty strings.
    pub(super) fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        if items.is_empty() {
            return Err(ConfigError::new(
                self.path(key),
                "must hold at least one value when present",
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(ConfigError::new(
                    format!("{}[{i}]", self.path(key)),
                    format!("must be a non-empty string, found {}", kind(other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A key field: plaintext, `sha256:<hex>`, or `env:NAME` naming a VM environment variable
    /// that holds either of those. `inherited` is the top-level value a service falls back to.
    pub(super) fn key(
        &self,
        key: &str,
        inherited: Option<&str>,
        env: EnvLookup<'_>,
    ) -> Result<Option<KeyDigest>, ConfigError> {
        let Some(raw) = self.string(key)?.or(inherited) else {
            return Ok(None);
        };
        let field = self.path(key);
        let (value, origin) = match raw.strip_prefix("env:") {
            None => (raw.to_string(), String::new()),
            Some(name) => {
                if !is_env_name(name) {
                    return Err(ConfigError::new(
                        field,
                        format!("`env:{name}` does not name a valid environment variable"),
                    ));
                }
                let value = env(name).ok_or_else(|| {
                    ConfigError::new(
                        &field,
                        format!("environment variable {name} is not set in the Wasm VM (vm_config.environment_variables / vmConfig.env)"),
                    )
                })?;
                (value, format!(" (from environment variable {name})"))
            }
        };
        KeyDigest::parse_configured(&value)
            .map(Some)
            .map_err(|e| ConfigError::new(field, format!("{e}{origin}")))
    }

    pub(super) fn wrong_type(&self, key: &str, want: &str, found: &Value) -> ConfigError {
        ConfigError::new(
            self.path(key),
            format!("must be {want}, found {}", kind(found)),
        )
    }
}

/// A non-negative whole number; `5.0` counts as 5 because Istio hands `pluginConfig` over as a
/// protobuf Struct, where every number is a double.
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && (0.0..=9.0e15).contains(&f)).then_some(f as u64)
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The allowed name closest to `unknown` (case folded, `-` read as `_`), when it is close
/// enough to be a typo: at most one edit in 4 characters, and at least one.
pub(super) fn did_you_mean<'n>(unknown: &str, allowed: &[&'n str]) -> Option<&'n str> {
    let folded: String = unknown
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let limit = (folded.chars().count() / 4).max(1);
    allowed
        .iter()
        .map(|name| (edit_distance(&folded, name), *name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein distance, with a transposition of two neighbours counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let get = |v: &Vec<usize>, i: usize, j: usize| {
                v.get(at(i, j)).copied().unwrap_or(usize::MAX / 2)
            };
            let same = a.get(i - 1) == b.get(j - 1);
            let mut best = (get(&d, i - 1, j) + 1)
                .min(get(&d, i, j - 1) + 1)
                .min(get(&d, i - 1, j - 1) + usize::from(!same));
            if i > 1 && j > 1 && a.get(i - 1) == b.get(j - 2) && a.get(i - 2) == b.get(j - 1) {
                best = best.min(get(&d, i - 2, j - 2) + 1);
            }
            if let Some(cell) = d.get_mut(at(i, j)) {
                *cell = best;
            }
        }
    }
    d.last().copied().unwrap_or(0)
}
