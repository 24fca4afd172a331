//! Unit tests of the configuration: every field compiled, every refusal naming its field.

use super::*;
use crate::keys::KeyDigest;

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
    assert!(!cfg.default_policy.forward_authorization);
    let AuthMode::Key(pair) = &cfg.default_policy.mode else {
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
    let AuthMode::Key(pair) = &cfg.default_policy.mode else {
        panic!("expected key mode")
    };
    assert!(pair.check(b"from-env").is_some());
    assert!(pair.check(b"hashed-key").is_some());
    assert!(pair.check(digest.as_bytes()).is_none());
}

#[test]
fn pass_through_when_both_modes_off() {
    let cfg = parse_str(r#"{"auth_enabled":false}"#).unwrap();
    assert_eq!(cfg.default_policy.mode, AuthMode::PassThrough);
}

#[test]
fn phase_and_unmatched_routes() {
    use crate::config::{Phase, Unmatched};
    let by_route = r#""services":[{"name":"a","route_names":["a"]}]"#;
    let table: &[(&str, Phase, Unmatched)] = &[
        ("", Phase::Downstream, Unmatched::Refuse),
        (
            r#""phase":"downstream","#,
            Phase::Downstream,
            Unmatched::Refuse,
        ),
        (r#""phase":"upstream","#, Phase::Upstream, Unmatched::Refuse),
        (
            r#""unmatched_routes":"refuse","#,
            Phase::Downstream,
            Unmatched::Refuse,
        ),
        (
            r#""phase":"upstream","unmatched_routes":"top_level_policy","#,
            Phase::Upstream,
            Unmatched::TopLevelPolicy,
        ),
    ];
    for (fields, phase, unmatched) in table {
        let c = parse_str(&format!(r#"{{"primary_key":"k",{fields}{by_route}}}"#)).unwrap();
        assert_eq!(
            (c.phase, c.unmatched_routes),
            (*phase, *unmatched),
            "{fields}"
        );
    }
    let by_prefix =
        parse_str(r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a/"}]}"#).unwrap();
    assert_eq!(by_prefix.phase, Phase::Downstream);
}

#[test]
fn refusals_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("{", "", "not valid JSON"),
        ("[]", "", "must be a JSON object"),
        ("", "", "the configuration is empty"),
        (" \n\t", "", "the configuration is empty"),
        (
            "{}",
            "primary_key",
            "auth_enabled is true (the default) but neither primary_key nor secondary_key",
        ),
        (
            r#"{"auth_enabled":true}"#,
            "primary_key",
            "auth_enabled is true but neither",
        ),
        (
            r#"{"auth_enabled":true,"services":[{"name":"a","path_prefix":"/a"}]}"#,
            "primary_key",
            "auth_enabled is true but neither",
        ),
        (
            r#"{"auth_enabled":true,"primary_key":"k","services":[{"name":"a","path_prefix":"/a","primary_key":"env:UNSET_HERE_X"}]}"#,
            "services[0].primary_key",
            "is not set",
        ),
        (
            r#"{"auth_enabled":false,"primary_key":"abc"}"#,
            "primary_key",
            "no policy uses it",
        ),
        (
            r#"{"auth_enabled":false,"secondary_key":"abc","services":[{"name":"a","path_prefix":"/a","auth_enabled":true,"primary_key":"p","secondary_key":"s"}]}"#,
            "secondary_key",
            "no policy uses it",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"score"}]}"#,
            "services[0].path_prefix",
            "must start with `/` (found `score`): a request path always does, so write `/score`",
        ),
        (
            r#"{"primary_key":"k","auth_enabeld":true}"#,
            "auth_enabeld",
            "did you mean `auth_enabled`?",
        ),
        (
            r#"{"primary_key":"k","Secondary-Key":"x"}"#,
            "Secondary-Key",
            "did you mean `secondary_key`?",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a","path_prefx":"/a"}]}"#,
            "services[0].path_prefx",
            "did you mean `path_prefix`?",
        ),
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
            "needs the top-level `token` settings",
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
        (
            r#"{"primary_key":"k","phase":"upstream"}"#,
            "phase",
            "needs services selected by route_names or clusters",
        ),
        (
            r#"{"primary_key":"k","phase":"upstream","services":[{"name":"a","path_prefix":"/a/"}]}"#,
            "phase",
            "needs services selected by route_names or clusters",
        ),
        (
            r#"{"primary_key":"k","phase":"Upstream","services":[{"name":"a","route_names":["a"]}]}"#,
            "phase",
            "must be `downstream` or `upstream`",
        ),
        (
            r#"{"primary_key":"k","phase":true}"#,
            "phase",
            "must be a string",
        ),
        (
            r#"{"primary_key":"k","unmatched_routes":"top_level_policy"}"#,
            "unmatched_routes",
            "only when services select by route_names or clusters",
        ),
        (
            r#"{"primary_key":"k","unmatched_routes":"allow","services":[{"name":"a","clusters":["a"]}]}"#,
            "unmatched_routes",
            "must be `refuse` or `top_level_policy`",
        ),
    ];
    let far = parse_str(r#"{"primary_key":"k","colour":"red"}"#).unwrap_err();
    assert!(!far.message.contains("did you mean"), "{far}");
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

const TOKEN: &str = r#""token":{"issuer":"https://iss","audiences":["aud-1"],
    "remote_jwks":[{"cluster":"region","uri":"https://region.example/keys?x=1"},
                   {"cluster":"paired","uri":"http://paired.example","timeout_seconds":2.0}],
    "claim_to_headers":[{"claim":"sub","header":"X-Caller"}]}"#;

#[test]
fn token_settings_and_services_compile() {
    let json = format!(
        r#"{{"primary_key":"top","auth_enabled":true,{TOKEN},"services":[
            {{"name":"k","path_prefix":"/k/"}},
            {{"name":"t","path_prefix":"/t/","hosts":["A.example"],"auth_enabled":false,
              "token_auth_enabled":true,"token":{{"audiences":["aud-2"]}}}}]}}"#
    );
    let cfg = parse_str(&json).unwrap();
    let token = cfg.token.as_ref().unwrap();
    assert_eq!(token.remote.len(), 2);
    assert_eq!(token.remote[0].authority, "region.example");
    assert_eq!(token.remote[0].path, "/keys?x=1");
    assert_eq!(token.remote[1].path, "/");
    assert_eq!(token.remote[1].timing.timeout_ms, 2_000);
    assert_eq!(token.remote[0].timing.refresh_ms, 600_000);
    assert_eq!(token.remote[0].timing.max_stale_ms, 86_400_000);
    assert_eq!(token.fingerprint.len(), 16);
    assert!(matches!(cfg.services[0].policy.mode, AuthMode::Key(_)));
    assert_eq!(cfg.services[1].hosts, vec!["a.example".to_string()]);
    let AuthMode::Token(svc) = &cfg.services[1].policy.mode else {
        panic!("expected token mode")
    };
    assert_eq!(svc.policy.audiences, Some(vec!["aud-2".to_string()]));
    assert_eq!(svc.policy.clock_skew_seconds, 60);
    assert!(svc.policy.require_expiration);
    assert_eq!(svc.claim_to_headers[0].header, "x-caller");
}

#[test]
fn fingerprint_follows_the_sources() {
    let a = parse_str(&format!(r#"{{"auth_enabled":false,{TOKEN}}}"#)).unwrap();
    let other = TOKEN.replace("region.example", "elsewhere.example");
    let b = parse_str(&format!(r#"{{"auth_enabled":false,{other}}}"#)).unwrap();
    assert_ne!(a.token.unwrap().fingerprint, b.token.unwrap().fingerprint);
}

#[test]
fn token_and_service_refusals_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"auth_enabled":false,"token":{"issuer":""}}"#,
            "token.issuer",
            "required",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","audiences":[]}}"#,
            "token.audiences",
            "at least one",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","audiences":[""]}}"#,
            "token.audiences[0]",
            "non-empty",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":[]}}"#,
            "token.remote_jwks",
            "at least one",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":"x"}}"#,
            "token.remote_jwks",
            "an object or an array",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"uri":"https://h/"}}}"#,
            "token.remote_jwks.cluster",
            "required",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://u@h/"}}}"#,
            "token.remote_jwks.uri",
            "absolute",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/","timeout_seconds":0}}}"#,
            "token.remote_jwks.timeout_seconds",
            "from 1 to 60",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/","refresh_interval_seconds":1.5}}}"#,
            "token.remote_jwks.refresh_interval_seconds",
            "whole number",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/","refresh_interval_seconds":20,"max_stale_seconds":5}}}"#,
            "token.remote_jwks.max_stale_seconds",
            "is 5 s, below `refresh_interval_seconds` (20 s): the key set would go stale before its next refresh",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/","max_stale_seconds":599}}}"#,
            "token.remote_jwks.max_stale_seconds",
            "is 599 s, below `refresh_interval_seconds` (600 s, its default)",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":[{"cluster":"c","uri":"https://h/"},{"cluster":"d","uri":"https://h/","refresh_interval_seconds":90000}]}}"#,
            "token.remote_jwks[1].max_stale_seconds",
            "is 86400 s, its default, below `refresh_interval_seconds` (90000 s)",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":[{"cluster":"c","uri":"https://h/","nope":1}]}}"#,
            "token.remote_jwks[0].nope",
            "unknown field",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":[]}}"#,
            "token.local_jwks",
            "JWKS object",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":{"keys":[]}}}"#,
            "token.local_jwks",
            "no usable key",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":{"keys":[]},"claim_to_headers":[{"claim":"sub","header":"Authorization"}]}}"#,
            "token.local_jwks",
            "no usable key",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"sub","header":"Authorization"}]}}"#,
            "token.claim_to_headers[0].header",
            "pseudo-header",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"a","header":"x"},{"claim":"b","header":"X"}]}}"#,
            "token.claim_to_headers[1].header",
            "two claims",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"a","header":"Content_Type"}]}}"#,
            "token.claim_to_headers[0].header",
            "pseudo-header",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"a","header":"transfer.encoding"}]}}"#,
            "token.claim_to_headers[0].header",
            "pseudo-header",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"a","header":"x-a_b"},{"claim":"b","header":"X.A-b"}]}}"#,
            "token.claim_to_headers[1].header",
            "two claims",
        ),
        (
            r#"{"primary_key":"k","services":{}}"#,
            "services",
            "an array",
        ),
        (
            r#"{"primary_key":"k","services":[{"path_prefix":"/"}]}"#,
            "services[0].name",
            "needs a name",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"default","path_prefix":"/"}]}"#,
            "services[0].name",
            "reserved",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a"}]}"#,
            "services[0].path_prefix",
            "needs a path_prefix",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a?b"}]}"#,
            "services[0].path_prefix",
            "could never match",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a","hosts":[]}]}"#,
            "services[0].hosts",
            "at least one host",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a","hosts":["a b"]}]}"#,
            "services[0].hosts[0]",
            "host name",
        ),
        (
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a","token":{"issuer":"x"}}]}"#,
            "services[0].token.issuer",
            "unknown field",
        ),
    ];
    for (json, field, fragment) in cases {
        let err = parse_str(json).unwrap_err();
        assert_eq!(err.field, *field, "{json}: {err}");
        assert!(err.message.contains(fragment), "{json}: {err}");
    }
}

#[test]
fn duplicate_members_are_refused_at_any_depth_with_their_path() {
    let token = r#""token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"}}"#;
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"auth_enabled":true,"primary_key":"K","auth_enabled":false}"#.into(),
            "auth_enabled",
        ),
        (
            r#"{"primary_key":"K","services":[{"name":"a","path_prefix":"/a/"}],"services":[]}"#
                .into(),
            "services",
        ),
        (r#"{"primary_key":"K","primary\u005fkey":"L"}"#.into(), "primary_key"),
        (
            r#"{"primary_key":"K","services":[{"name":"a","path_prefix":"/a/"},{"name":"b","path_prefix":"/b/","name":"c"}]}"#
                .into(),
            "services[1].name",
        ),
        (
            format!(
                r#"{{"auth_enabled":false,{}}}"#,
                token.replace(r#""cluster":"c""#, r#""cluster":"c","clu\u0073ter":"d""#)
            ),
            "token.remote_jwks.cluster",
        ),
        (
            r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","use":"enc","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}}"#
                .into(),
            "token.local_jwks.keys[0].use",
        ),
        (
            r#"{"primary_key":"K","realm":"a","x":{"y":1,"y":2}}"#.into(),
            "x.y",
        ),
    ];
    for (json, field) in &cases {
        let err = parse_str(json).unwrap_err();
        assert_eq!(err.field, *field, "{json}: {err}");
        assert!(err.message.contains("appears twice"), "{json}: {err}");
    }
}

#[test]
fn nesting_past_64_levels_is_refused() {
    let nested = |levels: usize| {
        format!(
            r#"{{"primary_key":"K","realm":{}"a"{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let err = parse_str(&nested(64)).unwrap_err();
    assert_eq!(err.field, "");
    assert!(err.message.contains("deeper than 64"), "{err}");
    // 63 levels inside the document is within the cap: the realm type is what is refused.
    assert_eq!(parse_str(&nested(63)).unwrap_err().field, "realm");
}

const TOKEN_MODE: &str = r#""auth_enabled":false,"token_auth_enabled":true"#;
const LOCAL: &str = r#""local_jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

fn token_config(top: &str, token: &str, services: &str) -> String {
    format!(r#"{{{TOKEN_MODE}{top},"token":{{{LOCAL}{token}}},"services":[{services}]}}"#)
}

fn token_service(cfg: &FilterConfig, i: usize) -> &TokenService {
    let policy = cfg
        .services
        .get(i)
        .map_or(&cfg.default_policy, |s| &s.policy);
    match &policy.mode {
        AuthMode::Token(t) => t,
        other => panic!("{}: {other:?}", policy.name),
    }
}

#[test]
fn issuers_max_token_bytes_principal_and_rules_compile() {
    let json = token_config(
        r#","max_token_bytes":20480,"expose_principal":true,"required_claims":{"roles":["Model.Score"],"tid":["t1","t2"]}"#,
        r#","issuer":["https://sts.windows.net/t/","https://login.microsoftonline.com/t/v2.0"],"principal_claim":"oid","claim_to_headers":[{"claim":"oid","header":"x-oid"}]"#,
        r#"{"name":"v1","path_prefix":"/v1/","token":{"issuers":["https://sts.windows.net/t/"]},"expose_principal":false},
           {"name":"open","path_prefix":"/open/","required_claims":{},"claim_to_headers":[{"claim":"sub","header":"x-sub"}]},
           {"name":"scoped","path_prefix":"/s/","required_claims":{"scp":["model.score"]}},
           {"name":"keyed","path_prefix":"/k/","auth_enabled":true,"token_auth_enabled":false,"primary_key":"K","claim_to_headers":[{"claim":"a","header":"x-keyed"}]}"#,
    );
    let cfg = parse_str(&json).unwrap();
    let token = cfg.token.as_ref().unwrap();
    assert_eq!(
        token.issuers,
        [
            "https://sts.windows.net/t/",
            "https://login.microsoftonline.com/t/v2.0"
        ]
    );
    let top = token_service(&cfg, usize::MAX);
    assert_eq!(top.policy.issuers, token.issuers);
    assert_eq!(top.policy.max_token_bytes, 20_480);
    assert_eq!(top.principal_claim, "oid");
    assert!(cfg.default_policy.expose_principal);
    let names: Vec<(&str, Vec<&str>)> = top
        .required_claims
        .iter()
        .map(|r| {
            (
                cfg.required_claim_name(r.name_id).unwrap(),
                r.allowed.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("roles", vec!["Model.Score"]), ("tid", vec!["t1", "t2"])]
    );
    let v1 = token_service(&cfg, 0);
    assert_eq!(v1.policy.issuers, ["https://sts.windows.net/t/"]);
    assert_eq!(v1.required_claims, top.required_claims);
    assert!(!cfg.services[0].policy.expose_principal);
    assert!(token_service(&cfg, 1).required_claims.is_empty());
    let scoped = &token_service(&cfg, 2).required_claims;
    assert_eq!(cfg.required_claim_name(scoped[0].name_id), Some("scp"));
    assert!(cfg.services[3].policy.expose_principal);
    assert_eq!(cfg.claim_headers, ["x-keyed", "x-oid", "x-sub"]);

    let plain = parse_str(&token_config("", r#","issuer":"https://one""#, "")).unwrap();
    let policy = &token_service(&plain, usize::MAX).policy;
    assert_eq!(policy.issuers, ["https://one"]);
    assert_eq!(policy.max_token_bytes, 32_768);
    assert_eq!(token_service(&plain, usize::MAX).principal_claim, "sub");
    assert!(!plain.default_policy.expose_principal);
    assert!(plain.claim_headers.is_empty());
}

#[test]
fn new_field_refusals_name_the_field() {
    let iss = r#","issuer":"https://a""#;
    let svc = |extra: &str| format!(r#"{{"name":"s","path_prefix":"/s/"{extra}}}"#);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            token_config(r#","max_token_bytes":1023"#, iss, ""),
            "max_token_bytes",
            "from 1024 to 61440",
        ),
        (
            token_config(r#","max_token_bytes":61441"#, iss, ""),
            "max_token_bytes",
            "from 1024 to 61440",
        ),
        (
            token_config(r#","max_token_bytes":"4096""#, iss, ""),
            "max_token_bytes",
            "whole number",
        ),
        (
            token_config("", r#","issuer":[]"#, ""),
            "token.issuer",
            "at least one",
        ),
        (
            token_config("", r#","issuer":["a",""]"#, ""),
            "token.issuer[1]",
            "non-empty",
        ),
        (
            token_config("", r#","issuer":["a","a"]"#, ""),
            "token.issuer[1]",
            "twice",
        ),
        (
            token_config("", r#","issuer":7"#, ""),
            "token.issuer",
            "a string or an array",
        ),
        (token_config("", "", ""), "token.issuer", "required"),
        (
            token_config("", &format!(r#"{iss},"principal_claim":"""#), ""),
            "token.principal_claim",
            "must name",
        ),
        (
            token_config("", iss, &svc(r#","token":{"issuers":["https://b"]}"#)),
            "services[0].token.issuers[0]",
            "not one of the issuers",
        ),
        (
            token_config("", iss, &svc(r#","token":{"issuers":[]}"#)),
            "services[0].token.issuers",
            "at least one",
        ),
        (
            token_config(r#","required_claims":{"roles":[]}"#, iss, ""),
            "required_claims.roles",
            "at least one",
        ),
        (
            token_config(r#","required_claims":{"roles":"Model.Score"}"#, iss, ""),
            "required_claims.roles",
            "an array",
        ),
        (
            token_config(r#","required_claims":{"roles":[1]}"#, iss, ""),
            "required_claims.roles[0]",
            "non-empty string",
        ),
        (
            token_config(r#","required_claims":{"":["x"]}"#, iss, ""),
            "required_claims.",
            "must not be empty",
        ),
        (
            token_config(r#","required_claims":["roles"]"#, iss, ""),
            "required_claims",
            "JSON object",
        ),
        (
            token_config("", iss, &svc(r#","required_claims":{"scp":["a b"]}"#)),
            "services[0].required_claims.scp[0]",
            "word by word",
        ),
        (
            token_config(
                "",
                iss,
                &svc(
                    r#","auth_enabled":true,"token_auth_enabled":false,"primary_key":"K","required_claims":{"roles":["r"]}"#,
                ),
            ),
            "services[0].required_claims",
            "only checked in token mode",
        ),
        (
            token_config(
                "",
                iss,
                &svc(r#","token_auth_enabled":false,"required_claims":{"roles":["r"]}"#),
            ),
            "services[0].required_claims",
            "only checked in token mode",
        ),
        (
            r#"{"primary_key":"K","required_claims":{"roles":["r"]}}"#.to_string(),
            "required_claims",
            "no token-mode policy inherits",
        ),
        (
            token_config("", iss, &svc(r#","expose_principal":"yes""#)),
            "services[0].expose_principal",
            "true or false",
        ),
        (
            token_config(
                "",
                r#","issuer":"https://a","cache_max_bytes":1073741825"#,
                "",
            ),
            "token.cache_max_bytes",
            "from 0 to 1073741824",
        ),
        (
            token_config("", r#","issuer":"https://a","cache_max_bytes":-1"#, ""),
            "token.cache_max_bytes",
            "from 0 to 1073741824",
        ),
        (
            token_config("", r#","issuer":"https://a","cache_max_bytes":1.5"#, ""),
            "token.cache_max_bytes",
            "from 0 to 1073741824",
        ),
        (
            token_config("", r#","issuer":"https://a","cache_max_bytes":"8MiB""#, ""),
            "token.cache_max_bytes",
            "whole number",
        ),
        (
            token_config("", iss, &svc(r#","token":{"cache_max_bytes":1024}"#)),
            "services[0].token.cache_max_bytes",
            "unknown",
        ),
    ];
    for (json, field, fragment) in &cases {
        let err = parse_str(json).unwrap_err();
        assert_eq!(err.field, *field, "{json}: {err}");
        assert!(err.message.contains(fragment), "{json}: {err}");
    }
}

#[test]
fn prefixes_that_can_never_match_are_refused() {
    for prefix in [
        "/api/v1/service/mod\\u00e8le/",
        "/my%2dmodel/",
        "/a//b/",
        "//",
        "/a/./b/",
        "/a/../b/",
        "/a/.",
        "/a/..",
        "/a\\\\b/",
        "/a;b/",
        "/a b/",
        "/a\\tb/",
        "/a\\u200bb/",
        "/a\\ufeff/",
        "/a?b",
        "/a#b",
        "a/",
        "",
    ] {
        let json = format!(
            r#"{{"primary_key":"k","services":[{{"name":"a","path_prefix":"{prefix}"}}]}}"#
        );
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.field, "services[0].path_prefix", "{prefix}: {err}");
    }
    for prefix in [
        "/",
        "/api/v1/service/fraud/",
        "/v1/models/m:predict",
        "/a.b/..c/~x/",
    ] {
        let json = format!(
            r#"{{"primary_key":"k","services":[{{"name":"a","path_prefix":"{prefix}"}}]}}"#
        );
        assert_eq!(parse_str(&json).unwrap().services[0].path_prefix, prefix);
    }
}

#[test]
fn hosts_are_canonical_or_refused() {
    let parsed = parse_str(
        r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a/",
            "hosts":["Models.Contoso.com.","models.contoso.com.:0443","[0::1]:80","XN--MODLE-6RA.example"]}]}"#,
    )
    .unwrap();
    assert_eq!(
        parsed.services[0].hosts,
        [
            "models.contoso.com",
            "models.contoso.com:443",
            "[::1]:80",
            "xn--modle-6ra.example"
        ]
    );
    for host in [
        "models.contoso.com:",
        "models.contoso.com:443:443",
        "models.contoso.com:abc",
        "models.contoso.com..",
        "mod\\u00e8le.example",
        "a\\u200b.example",
        "*.example",
        "user@h",
        "",
    ] {
        let json = format!(
            r#"{{"primary_key":"k","services":[{{"name":"a","path_prefix":"/a/","hosts":["{host}"]}}]}}"#
        );
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.field, "services[0].hosts[0]", "{host}: {err}");
    }
    let err = parse_str(
        r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/A/","hosts":["h"]},
            {"name":"b","path_prefix":"/a/","hosts":["H."]}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.field, "services[1].path_prefix", "{err}");
}

#[test]
fn route_selection_is_all_or_nothing() {
    let parsed = parse_str(
        r#"{"primary_key":"k","services":[
            {"name":"a","route_names":["fraud","fraud-v2"]},
            {"name":"b","clusters":["outbound|80||b.svc"],"allow_path_parameters":true}]}"#,
    )
    .unwrap();
    assert_eq!(parsed.services[0].route_names, ["fraud", "fraud-v2"]);
    assert!(parsed.services[0].path_prefix.is_empty());
    assert_eq!(parsed.services[1].clusters, ["outbound|80||b.svc"]);
    assert!(parsed.services[1].allow_path_parameters);
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"[{"name":"a","route_names":["r"],"path_prefix":"/a/"}]"#,
            "services[0].path_prefix",
            "can't also have",
        ),
        (
            r#"[{"name":"a","clusters":["c"],"hosts":["h"]}]"#,
            "services[0].path_prefix",
            "can't also have",
        ),
        (
            r#"[{"name":"a","route_names":["r"]},{"name":"b","path_prefix":"/b/"}]"#,
            "services[1].path_prefix",
            "every service must select the same way",
        ),
        (
            r#"[{"name":"a","path_prefix":"/a/"},{"name":"b","route_names":["r"]}]"#,
            "services[1].route_names",
            "every service must select the same way",
        ),
        (
            r#"[{"name":"a","route_names":["r"]},{"name":"b","route_names":["r"]}]"#,
            "services[1].route_names[0]",
            "more than one service",
        ),
        (
            r#"[{"name":"a","clusters":["c","c"]}]"#,
            "services[0].clusters[1]",
            "more than one service",
        ),
        (
            r#"[{"name":"a","route_names":[]}]"#,
            "services[0].route_names",
            "at least one",
        ),
        (
            r#"[{"name":"a","route_names":["a\nb"]}]"#,
            "services[0].route_names[0]",
            "control",
        ),
        (
            r#"[{"name":"a","path_prefix":"/a/","allow_path_parameters":"yes"}]"#,
            "services[0].allow_path_parameters",
            "",
        ),
    ];
    for (services, field, fragment) in cases {
        let json = format!(r#"{{"primary_key":"k","services":{services}}}"#);
        let err = parse_str(&json).unwrap_err();
        assert_eq!(err.field, *field, "{json}: {err}");
        assert!(err.message.contains(fragment), "{json}: {err}");
    }
}

#[test]
fn the_token_cache_budget_defaults_and_is_configurable() {
    let iss = r#","issuer":"https://a""#;
    let budget = |token: &str| {
        parse_str(&token_config("", token, ""))
            .unwrap()
            .token
            .unwrap()
            .cache_max_bytes
    };
    assert_eq!(budget(iss), crate::token::token_cache::DEFAULT_MAX_BYTES);
    for (given, want) in [("0", 0), ("65536", 65_536), ("1073741824", 1 << 30)] {
        assert_eq!(budget(&format!(r#"{iss},"cache_max_bytes":{given}"#)), want);
    }
}

#[test]
fn at_most_max_services_are_accepted_and_the_refusal_names_field_and_limit() {
    let services = |n: usize| {
        let list: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"name":"s{i}","path_prefix":"/s{i}/"}}"#))
            .collect();
        format!(r#"{{"primary_key":"K","services":[{}]}}"#, list.join(","))
    };
    assert_eq!(
        parse_str(&services(MAX_SERVICES)).unwrap().services.len(),
        MAX_SERVICES
    );
    let err = parse_str(&services(MAX_SERVICES + 1)).unwrap_err();
    assert_eq!(err.field, "services");
    assert!(err.message.contains("10000"), "{err}");
    assert!(err.message.contains("10001"), "{err}");
}
