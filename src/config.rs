//! Plugin configuration: the JSON object is parsed, then compiled into a validated [`FilterConfig`];
//! every refusal is a [`ConfigError`] naming the field.

use serde_json::{Map, Value};

use crate::keys::{KeyDigest, KeyPair};

/// A refused configuration: the path of the offending field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the field, e.g. `primary_key` or `services[2].token.audiences`; empty for the document.
    pub field: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid plugin configuration: {}", self.message)
        } else {
            write!(
                f,
                "invalid plugin configuration: field `{}`: {}",
                self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Default realm in `WWW-Authenticate` challenges.
pub const DEFAULT_REALM: &str = "aml";

/// How a service's requests are judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Neither key nor token auth: requests pass through untouched.
    PassThrough,
    /// Key auth: the credential must be the primary or the secondary key.
    Key(KeyPair),
}

/// The policy applied to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePolicy {
    /// Service name, used in stats.
    pub name: String,
    /// Key, token, or no auth.
    pub mode: AuthMode,
    /// Whether the Authorization header travels upstream after a successful check.
    pub forward_authorization: bool,
}

/// A validated plugin configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterConfig {
    /// Realm named in `WWW-Authenticate` challenges.
    pub realm: String,
    /// The policy for every request.
    pub policy: ServicePolicy,
}

/// Looks up an environment variable of the VM (for `env:NAME` key values).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses and validates a plugin configuration. An empty document means all defaults, which
/// is refused because key auth is on by default and needs a key.
pub fn parse(json: &[u8], env: EnvLookup<'_>) -> Result<FilterConfig, ConfigError> {
    let trimmed = json.iter().all(u8::is_ascii_whitespace);
    let value: Value = if trimmed {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(json)
            .map_err(|e| ConfigError::new("", format!("not valid JSON: {e}")))?
    };
    let root = Obj::new("", &value)?;
    root.only(&[
        "auth_enabled",
        "primary_key",
        "secondary_key",
        "token_auth_enabled",
        "forward_authorization",
        "realm",
    ])?;
    let realm = match root.string("realm")? {
        None => DEFAULT_REALM.to_string(),
        Some(r) => validate_realm(&root.path("realm"), r)?,
    };
    let policy = compile_policy(&root, "default", env)?;
    Ok(FilterConfig { realm, policy })
}

fn compile_policy(
    obj: &Obj<'_>,
    name: &str,
    env: EnvLookup<'_>,
) -> Result<ServicePolicy, ConfigError> {
    let auth_enabled = obj.bool("auth_enabled")?.unwrap_or(true);
    let token_auth_enabled = obj.bool("token_auth_enabled")?.unwrap_or(false);
    let forward_authorization = obj.bool("forward_authorization")?.unwrap_or(false);
    let primary = obj.key("primary_key", env)?;
    let secondary = obj.key("secondary_key", env)?;
    if auth_enabled && token_auth_enabled {
        return Err(ConfigError::new(
            obj.path("token_auth_enabled"),
            "token authentication can't be used at the same time as key-based authentication: set auth_enabled to false to use token_auth_enabled",
        ));
    }
    let mode = if auth_enabled {
        let pair = KeyPair::new(primary, secondary).ok_or_else(|| {
            ConfigError::new(
                obj.path("primary_key"),
                "auth_enabled is true (the default) but neither primary_key nor secondary_key is set",
            )
        })?;
        AuthMode::Key(pair)
    } else if token_auth_enabled {
        return Err(ConfigError::new(
            obj.path("token_auth_enabled"),
            "token authentication needs the `token` settings (issuer and a JWKS source)",
        ));
    } else {
        AuthMode::PassThrough
    };
    Ok(ServicePolicy {
        name: name.to_string(),
        mode,
        forward_authorization,
    })
}

fn validate_realm(field: &str, realm: &str) -> Result<String, ConfigError> {
    let ok = !realm.is_empty()
        && realm.len() <= 128
        && realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(realm.to_string())
    } else {
        Err(ConfigError::new(
            field,
            "must be 1 to 128 printable ASCII characters without `\"` or `\\`",
        ))
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A JSON object being compiled, with its path for error messages.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(path: &str, value: &'a Value) -> Result<Self, ConfigError> {
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

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn only(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::new(
                self.path(unknown),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// A key field: plaintext, `sha256:<hex>`, or `env:NAME` naming a VM environment variable
    /// that holds either of those.
    fn key(&self, key: &str, env: EnvLookup<'_>) -> Result<Option<KeyDigest>, ConfigError> {
        let Some(raw) = self.string(key)? else {
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

    fn wrong_type(&self, key: &str, want: &str, found: &Value) -> ConfigError {
        ConfigError::new(
            self.path(key),
            format!("must be {want}, found {}", kind(found)),
        )
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_str(json: &str) -> Result<FilterConfig, ConfigError> {
        parse(json.as_bytes(), &no_env)
    }

    #[test]
    fn key_mode_defaults() {
        let cfg = parse_str(r#"{"primary_key":"p-key","secondary_key":"s-key"}"#).unwrap();
        assert_eq!(cfg.realm, DEFAULT_REALM);
        assert!(!cfg.policy.forward_authorization);
        let AuthMode::Key(pair) = &cfg.policy.mode else {
            panic!("expected key mode")
        };
        assert!(pair.check(b"p-key").is_some());
        assert!(pair.check(b"s-key").is_some());
    }

    #[test]
    fn digest_keys_and_env_keys() {
        let digest = KeyDigest::of(b"hashed-key").to_configured();
        let env = |name: &str| (name == "AML_PRIMARY").then(|| "from-env".to_string());
        let json = format!(r#"{{"primary_key":"env:AML_PRIMARY","secondary_key":"{digest}"}}"#);
        let cfg = parse(json.as_bytes(), &env).unwrap();
        let AuthMode::Key(pair) = &cfg.policy.mode else {
            panic!("expected key mode")
        };
        assert!(pair.check(b"from-env").is_some());
        assert!(pair.check(b"hashed-key").is_some());
        assert!(pair.check(digest.as_bytes()).is_none());
    }

    #[test]
    fn pass_through_when_both_modes_off() {
        let cfg = parse_str(r#"{"auth_enabled":false}"#).unwrap();
        assert_eq!(cfg.policy.mode, AuthMode::PassThrough);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("{", "", "not valid JSON"),
            ("[]", "", "must be a JSON object"),
            ("", "primary_key", "neither primary_key nor secondary_key"),
            ("{}", "primary_key", "neither primary_key nor secondary_key"),
            (
                r#"{"primary_key":"k","colour":"red"}"#,
                "colour",
                "unknown field",
            ),
            (
                r#"{"primary_key":"k","auth_enabled":"yes"}"#,
                "auth_enabled",
                "true or false",
            ),
            (r#"{"primary_key":7}"#, "primary_key", "must be a string"),
            (
                r#"{"primary_key":"sha256:abcd"}"#,
                "primary_key",
                "64 lowercase",
            ),
            (
                r#"{"primary_key":"k","secondary_key":""}"#,
                "secondary_key",
                "empty",
            ),
            (r#"{"primary_key":"k y"}"#, "primary_key", "token68"),
            (
                r#"{"primary_key":"env:NOPE"}"#,
                "primary_key",
                "NOPE is not set",
            ),
            (
                r#"{"primary_key":"env:1x"}"#,
                "primary_key",
                "valid environment variable",
            ),
            (
                r#"{"primary_key":"k","token_auth_enabled":true}"#,
                "token_auth_enabled",
                "can't be used at the same time",
            ),
            (
                r#"{"auth_enabled":false,"token_auth_enabled":true}"#,
                "token_auth_enabled",
                "needs the `token` settings",
            ),
            (
                r#"{"primary_key":"k","realm":"a\"b"}"#,
                "realm",
                "printable ASCII",
            ),
            (
                r#"{"primary_key":"k","forward_authorization":null}"#,
                "forward_authorization",
                "found null",
            ),
        ];
        for (json, field, fragment) in cases {
            let err = parse_str(json).unwrap_err();
            assert_eq!(err.field, *field, "{json}: {err}");
            assert!(err.message.contains(fragment), "{json}: {err}");
            assert!(err.to_string().contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn env_value_is_never_echoed() {
        let env = |_: &str| Some("bad value with spaces".to_string());
        let err = parse(br#"{"primary_key":"env:K"}"#, &env).unwrap_err();
        assert!(!err.to_string().contains("bad value"));
        assert!(err.to_string().contains("environment variable K"));
    }
}
