//! What a token's claims do in a real Envoy: claim headers (stripped from every request on every
//! policy, copied losslessly), required claims per service (cache hits re-checked), several
//! issuers, the token size cap with a large Entra-style token, and the caller's identity as
//! filter state read back from the access-log file Envoy writes.

mod common;

use aml_auth_filter::signing::{jwks, SigningKey};
use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};

const V1_ISSUER: &str = "https://sts.windows.net/tenant-0000/";
const PRIMARY: &str = "claims-test-primary-0123456789";
const SECONDARY: &str = "claims-test-secondary-0123456789";

fn ed() -> SigningKey {
    signing_key("ed25519-a.pem")
}

fn plugin_config() -> Value {
    json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "expose_principal": true,
        "required_claims": {"roles": ["Model.Score"]},
        "token": {
            "issuer": [ISSUER, V1_ISSUER],
            "audiences": [AUDIENCE],
            "local_jwks": jwks(vec![ed().public_jwk("ed-a", Some("EdDSA"))]),
            "principal_claim": "oid",
            "claim_to_headers": [
                {"claim": "roles", "header": "x-roles"},
                {"claim": "oid", "header": "x-caller"},
                {"claim": "big", "header": "x-big"},
                {"claim": "name", "header": "x-name"},
                {"claim": "sub", "header": "x-aml-caller-oid"}
            ]
        },
        "services": [
            {"name": "keyed", "path_prefix": "/keyed/", "auth_enabled": true, "token_auth_enabled": false,
             "primary_key": PRIMARY, "secondary_key": SECONDARY},
            {"name": "open", "path_prefix": "/open/", "token_auth_enabled": false},
            {"name": "v1only", "path_prefix": "/v1/", "token": {"issuers": [V1_ISSUER]},
             "required_claims": {}, "claim_to_headers": [{"claim": "tid", "header": "x-tenant"}]},
            {"name": "scoped", "path_prefix": "/scoped/", "expose_principal": false,
             "required_claims": {"scp": ["model.score"], "tid": ["tenant-0000"]}}
        ]
    })
}

/// 2^70, written into the payload as an integer (a JSON value would hold it as an f64).
const TWO_POW_70: &str = "1180591620717411303424";

/// `claims` over the good claims (a `null` value removes the claim; the string `"2^70"` is
/// written as the integer [`TWO_POW_70`]).
fn token_with(claims: Value) -> String {
    let mut all = good_claims();
    all["oid"] = json!("oid-0001");
    all["roles"] = json!(["Model.Score"]);
    for (k, v) in claims.as_object().unwrap() {
        if v.is_null() {
            all.as_object_mut().unwrap().remove(k);
        } else {
            all[k] = v.clone();
        }
    }
    let payload = all.to_string().replace(r#""2^70""#, TWO_POW_70);
    ed().sign_raw("EdDSA", r#"{"alg":"EdDSA","kid":"ed-a"}"#, &payload)
        .unwrap()
}

/// The filter in front of a recording upstream, the HTTP connection manager writing an access
/// log of the two filter states to the returned file.
fn start() -> (Server, Envoy, PathBuf) {
    let upstream = Server::upstream();
    let log_dir = scratch_dir("claims-access-log");
    let mut boot = filter_in_front_of(&plugin_config(), &upstream);
    boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["access_log"] = json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": log_dir.join("access.log"),
            "log_format": {"text_format_source": {"inline_string":
                "%REQ(X-REQUEST-TAG)% %RESPONSE_CODE% principal=%FILTER_STATE(wasm.aml_auth_principal:PLAIN)% service=%FILTER_STATE(wasm.aml_auth_service:PLAIN)%\n"}}
        }
    }]);
    (upstream, Envoy::start(&boot), log_dir.join("access.log"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn claim_headers_are_stripped_everywhere_and_copied_losslessly() {
    let (upstream, envoy, _) = start();
    let forged = [
        ("x-roles", "Model.Admin"),
        ("x-caller", "forged"),
        ("x-tenant", "forged"),
        ("x-big", "1"),
        ("x-name", "forged"),
    ];
    let token = token_with(json!({
        "roles": ["a,b", "Model.Score"],
        "big": "2^70",
        "name": " leading space",
        "tid": "tenant-0000"
    }));
    let key = bearer(PRIMARY);
    let tok = bearer(&token);
    // (path, credential): key-mode, pass-through, the token-mode default, a token service.
    for (path, credential) in [
        ("/keyed/score", Some(key.as_str())),
        ("/open/score", None),
        ("/score", Some(tok.as_str())),
        ("/v1/score", None),
    ] {
        let mut headers: Vec<(&str, &str)> = forged.to_vec();
        if let Some(c) = credential {
            headers.push(("authorization", c));
        }
        upstream.clear();
        let resp = get(envoy.main(), path, &headers);
        if path == "/v1/score" {
            assert_eq!(resp.status, 401, "{path}: {}", resp.text());
            continue;
        }
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        let got = upstream.received();
        let req = got.last().unwrap();
        for (name, value) in forged {
            assert!(
                !req.header_values(name).contains(&value),
                "{path}: the client's {name} reached the upstream: {:?}",
                req.headers
            );
        }
        if path == "/score" {
            assert_eq!(req.header_values("x-roles"), [r#"["a,b","Model.Score"]"#]);
            assert_eq!(req.header_values("x-caller"), ["oid-0001"]);
            assert_eq!(req.header_values("x-big"), [TWO_POW_70]);
            assert!(req.header_values("x-name").is_empty(), "{:?}", req.headers);
            assert!(req.header_values("x-tenant").is_empty());
        } else {
            for (name, _) in forged {
                assert!(req.header_values(name).is_empty(), "{path}: {name}");
            }
        }
    }

    let joined = token_with(json!({"roles": ["a", "b", "Model.Score"]}));
    let split = token_with(json!({"roles": ["a,b", "Model.Score"]}));
    let mut seen = Vec::new();
    for token in [&joined, &split] {
        upstream.clear();
        assert_eq!(get_bearer(envoy.main(), "/score", token).status, 200);
        seen.push(
            upstream.received()[0]
                .header("x-roles")
                .unwrap()
                .to_string(),
        );
    }
    assert_ne!(
        seen[0], seen[1],
        "distinct arrays must give distinct headers"
    );

    let evil = token_with(json!({"oid": "a\r\nx-injected: 1", "name": "tab\there"}));
    upstream.clear();
    assert_eq!(get_bearer(envoy.main(), "/score", &evil).status, 200);
    let req = &upstream.received()[0];
    assert!(req.header("x-injected").is_none(), "{:?}", req.headers);
    assert!(req.header("x-caller").is_none(), "{:?}", req.headers);
    assert!(req.header("x-name").is_none(), "{:?}", req.headers);
}

#[test]
fn required_claims_issuers_and_the_size_cap() {
    let (upstream, envoy, _) = start();
    let no_role = token_with(
        json!({"roles": ["Model.Read"], "scp": "user.read model.score", "tid": "tenant-0000"}),
    );
    // The scoped service needs scp and tid, not roles: allowed there (and cached)...
    assert_eq!(
        get_bearer(envoy.main(), "/scoped/score", &no_role).status,
        200
    );
    assert_eq!(envoy.stat("aml_auth.token_cache.miss"), 1);
    // ...and the cached token is judged by the default policy's own rule.
    let resp = get_bearer(envoy.main(), "/score", &no_role);
    assert_eq!(resp.status, 403, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["reason"], "claim_not_allowed");
    assert_eq!(body["claim"], "roles");
    assert!(!resp.text().contains("Model.Read"), "{}", resp.text());
    let challenge = resp.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert_eq!(
        get_bearer(envoy.main(), "/scoped/score", &no_role).status,
        200
    );
    assert_eq!(envoy.stat("aml_auth.token_cache.hit"), 1);
    assert_eq!(envoy.stat("aml_auth.denied.claim_not_allowed"), 1);
    assert_eq!(
        envoy.stat("aml_auth.service.default.denied.claim_not_allowed"),
        1
    );

    let wrong_tenant = token_with(json!({"scp": "model.score", "tid": "tenant-9999"}));
    let resp = get_bearer(envoy.main(), "/scoped/score", &wrong_tenant);
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["claim"], "tid");
    assert!(!resp.text().contains("tenant-9999"));
    assert_eq!(
        get_bearer(envoy.main(), "/score", &wrong_tenant).status,
        200
    );

    let v1 = token_with(json!({"iss": V1_ISSUER}));
    let v2 = token_with(json!({}));
    assert_eq!(get_bearer(envoy.main(), "/score", &v1).status, 200);
    assert_eq!(get_bearer(envoy.main(), "/score", &v2).status, 200);
    assert_eq!(get_bearer(envoy.main(), "/v1/score", &v1).status, 200);
    let resp = get_bearer(envoy.main(), "/v1/score", &v2);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["reason"], "issuer_mismatch");
    let other = token_with(json!({"iss": "https://sts.windows.net/tenant-0000"}));
    assert_eq!(
        get_bearer(envoy.main(), "/score", &other).json()["reason"],
        "issuer_mismatch"
    );

    // An Entra ID style token with 200 group ids (and their display names): about 20 KiB.
    let groups: Vec<String> = (0..200)
        .map(|i| format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919))
        .collect();
    let names: Vec<String> = (0..200)
        .map(|i| format!("Contoso ML workspace readers, team {i:04}"))
        .collect();
    let large = token_with(json!({"groups": groups, "group_names": names}));
    assert!(
        (18 * 1024..24 * 1024).contains(&large.len()),
        "{}",
        large.len()
    );
    upstream.clear();
    let resp = get_bearer(envoy.main(), "/score", &large);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(upstream.count(), 1);

    let padding = "p".repeat(33 * 1024);
    let too_large = token_with(json!({"pad": padding}));
    let resp = get_bearer(envoy.main(), "/score", &too_large);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["reason"], "credential_too_long");
    // A key never exceeds 1024 bytes: a longer credential is refused unread in key mode.
    let resp = get_bearer(envoy.main(), "/keyed/score", &large);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["reason"], "credential_too_long");
    assert_eq!(upstream.count(), 1);
}

#[test]
fn the_principal_and_service_reach_the_access_log() {
    let (_upstream, envoy, log_file) = start();
    let access_log = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let token = token_with(json!({"scp": "model.score", "tid": "tenant-0000"}));
    let requests: Vec<(&str, &str, String)> = vec![
        ("token", "/score", bearer(&token)),
        ("primary", "/keyed/score", bearer(PRIMARY)),
        ("secondary", "/keyed/score", bearer(SECONDARY)),
        ("hidden", "/scoped/score", bearer(&token)),
        ("denied", "/keyed/score", bearer("wrong-key")),
        ("passed", "/open/score", String::new()),
    ];
    for (tag, path, credential) in &requests {
        let mut headers = vec![("x-request-tag", *tag)];
        if !credential.is_empty() {
            headers.push(("authorization", credential.as_str()));
        }
        get(envoy.main(), path, &headers);
    }
    let want = [
        "token 200 principal=oid-0001 service=default",
        "primary 200 principal=primary service=keyed",
        "secondary 200 principal=secondary service=keyed",
        "hidden 200 principal=- service=-",
        "denied 401 principal=- service=-",
        "passed 200 principal=- service=-",
    ];
    let complete = wait_until(DEADLINE, || access_log().lines().count() >= want.len());
    let log = access_log();
    assert!(complete, "access log:\n{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines, want, "access log:\n{log}");
    for secret in [PRIMARY, SECONDARY, token.as_str()] {
        assert!(!log.contains(secret));
    }
}

/// Every spelling of a claim header a server may read as that header: underscores for dashes
/// (WSGI and CGI fold both into one variable), dots (PHP's `$_SERVER` reads `HTTP_X.A` as
/// `HTTP_X_A`, and Caddy and FrankenPHP pass dots through), any case, in the headers or the trailers, over
/// HTTP/1.1 and HTTP/2, with Envoy left at its default `headers_with_underscores_action: ALLOW`
/// and trailers enabled both ways (HTTP/1.1 drops them otherwise).
#[test]
fn claim_header_spellings_and_trailers_never_reach_the_upstream() {
    for upstream_phase in [false, true] {
        spellings_and_trailers(upstream_phase);
    }
}

/// The filter in the listener's chain, or (`upstream_phase`) in the router's upstream filters.
fn spellings_and_trailers(upstream_phase: bool) {
    let upstream = Server::upstream();
    let mut boot = filter_in_front_of(&plugin_config(), &upstream);
    let hcm = &mut boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    if upstream_phase {
        let mut config = plugin_config();
        config["phase"] = json!("upstream");
        config["unmatched_routes"] = json!("top_level_policy");
        let mut routes = Vec::new();
        for service in config["services"].as_array_mut().unwrap() {
            let prefix = service["path_prefix"].as_str().unwrap().to_string();
            let name = service["name"].clone();
            let obj = service.as_object_mut().unwrap();
            obj.remove("path_prefix");
            obj.insert("route_names".into(), json!([name]));
            routes.push(json!({"name": name, "match": {"prefix": prefix},
                               "route": {"cluster": "upstream", "timeout": "30s"}}));
        }
        routes.push(route_to("upstream"));
        hcm["route_config"]["virtual_hosts"][0]["routes"] = json!(routes);
        let mut router = router_filter();
        router["typed_config"]["upstream_http_filters"] = json!([
            wasm_filter(&config),
            {"name": "envoy.filters.http.upstream_codec", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}
        ]);
        hcm["http_filters"] = json!([router]);
    }
    hcm["http_protocol_options"] = json!({"enable_trailers": true});
    hcm["common_http_protocol_options"] = json!({"headers_with_underscores_action": "ALLOW"});
    boot["static_resources"]["clusters"][0]["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
        }
    });
    let envoy = Envoy::start(&boot);
    let created = envoy.vm_created();
    let token = bearer(&token_with(json!({})));
    let key = bearer(PRIMARY);
    let spoofed: [(&str, &str); 9] = [
        ("x.aml.caller.oid", "forged-dots"),
        ("X.Tenant", "forged-mixed-dot"),
        ("x_caller", "forged-underscore"),
        ("X_Roles", "forged-mixed-underscore"),
        ("x_aml_caller_oid", "forged-all-underscores"),
        ("X-Aml_Caller-OID", "forged-mixed-spelling"),
        ("x-Tenant", "forged-mixed-case"),
        ("X_BIG", "forged-upper-underscore"),
        ("x_name", "forged-name"),
    ];
    let forged = |req: &Received| -> Vec<String> {
        req.headers
            .iter()
            .chain(&req.trailers)
            .filter(|(_, v)| v.starts_with("forged"))
            .map(|(n, v)| format!("{n}: {v}"))
            .collect()
    };
    let chunked = |path: &str, credential: &str, trailers: &[(&str, &str)]| -> Vec<u8> {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nhost: test.local\r\nconnection: close\r\nauthorization: {credential}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
        );
        for (n, v) in trailers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        raw.into_bytes()
    };
    let trailers: [(&str, &str); 5] = [
        ("x.caller", "forged-trailer-dot"),
        ("x-caller", "forged-trailer"),
        ("x_roles", "forged-trailer-underscore"),
        ("X-Tenant", "forged-trailer-mixed-case"),
        ("x-kept", "kept"),
    ];
    for (path, credential) in [
        ("/score", token.as_str()),
        ("/keyed/score", key.as_str()),
        ("/open/score", ""),
    ] {
        upstream.clear();
        let mut headers: Vec<(&str, &str)> = spoofed.to_vec();
        if !credential.is_empty() {
            headers.push(("authorization", credential));
        }
        let resp = get(envoy.main(), path, &headers);
        assert_eq!(
            resp.status,
            200,
            "upstream phase {upstream_phase}, HTTP/1.1 {path}: {}",
            resp.text()
        );
        let got = upstream.received();
        assert_eq!(got.len(), 1, "{path}");
        assert!(
            forged(&got[0]).is_empty(),
            "upstream phase {upstream_phase}, HTTP/1.1 {path}: {:?}",
            forged(&got[0])
        );

        upstream.clear();
        let resp = send_raw(envoy.main(), &chunked(path, credential, &trailers));
        assert_eq!(
            resp.status,
            200,
            "HTTP/1.1 trailers {path}: {}",
            resp.text()
        );
        let got = upstream.received();
        assert_eq!(got[0].body, b"hello", "{path}");
        assert_eq!(
            got[0].trailers,
            [("x-kept".to_string(), "kept".to_string())],
            "upstream phase {upstream_phase}, HTTP/1.1 trailers {path}"
        );

        upstream.clear();
        let mut h2: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", b"test.local"),
            (b":path", path.as_bytes()),
            (b"x_caller", b"forged-h2-underscore"),
            (b"x_tenant", b"forged-h2-underscore"),
            (b"x-aml_caller-oid", b"forged-h2-inner-underscore"),
            (b"x-aml.caller.oid", b"forged-h2-dots"),
        ];
        if !credential.is_empty() {
            h2.push((b"authorization", credential.as_bytes()));
        }
        let h2_trailers: [(&[u8], &[u8]); 4] = [
            (b"x.big", b"forged-h2-trailer-dot"),
            (b"x-caller", b"forged-h2-trailer"),
            (b"x_big", b"forged-h2-trailer-underscore"),
            (b"x-kept", b"kept"),
        ];
        let (status, _) = h2_request(envoy.main(), &h2, b"hello", &h2_trailers)
            .unwrap_or_else(|e| panic!("HTTP/2 {path}: {e}"));
        assert_eq!(status, 200, "HTTP/2 {path}");
        let got = upstream.received();
        assert_eq!(got.len(), 1, "{path}");
        assert!(
            forged(&got[0]).is_empty(),
            "upstream phase {upstream_phase}, HTTP/2 {path}: {:?}",
            forged(&got[0])
        );
        assert_eq!(
            got[0].trailers,
            [("x-kept".to_string(), "kept".to_string())],
            "upstream phase {upstream_phase}, HTTP/2 trailers {path}"
        );
    }
    // The token request still gets its own claim headers, set by the filter.
    upstream.clear();
    assert_eq!(
        get_bearer(envoy.main(), "/score", &token_with(json!({}))).status,
        200
    );
    assert_eq!(
        upstream.received()[0].header_values("x-caller"),
        ["oid-0001"]
    );
    envoy.assert_no_vm_restart(created);
}

/// The access-log format `envoy/envoy.yaml` ships (its one `inline_string`).
fn shipped_log_format() -> String {
    let yaml = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).unwrap();
    let line = yaml
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("inline_string: \"[%START_TIME%]")
        })
        .expect("envoy/envoy.yaml has no access-log inline_string");
    let quoted = line
        .trim_start()
        .trim_start_matches("inline_string:")
        .trim();
    serde_json::from_str(quoted).unwrap()
}

/// Envoy with the filter and the shipped access-log format, written to a file (the shipped
/// configuration logs to stdout).
fn start_with_shipped_log(boot_edit: impl FnOnce(&mut Value)) -> (Server, Envoy, PathBuf) {
    let upstream = Server::upstream();
    let log_dir = scratch_dir("claims-shipped-log");
    let mut boot = filter_in_front_of(&plugin_config(), &upstream);
    boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["access_log"] = json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": log_dir.join("access.log"),
            "log_format": {"text_format_source": {"inline_string": shipped_log_format()}}
        }
    }]);
    boot_edit(&mut boot);
    (upstream, Envoy::start(&boot), log_dir.join("access.log"))
}

/// Principals that would add a field or a record to the shipped log format, or make a huge line,
/// are withheld (logged as `-`, counted): each request logs exactly one line of the shipped
/// format's seven space-separated fields, with no Unicode line break anywhere.
#[test]
fn forged_principals_never_add_a_field_or_record_to_the_shipped_access_log() {
    let (upstream, envoy, log_file) = start_with_shipped_log(|_| {});
    let created = envoy.vm_created();
    let huge = "a".repeat(20 * 1024);
    let forged: Vec<&str> = vec![
        r#"mallory" 200 principal=admin"#,
        "mallory\u{2028}[2026-12-01T00:00:00.000Z] \"GET /admin HTTP/1.1\" 200 principal=admin service=admin",
        "mallory\u{2029}x",
        "mallory\u{85}x",
        "mallory\u{202e}nimda",
        "mallory\u{200b}",
        "mallory\u{a0}principal=admin",
        "mallory\u{3000}principal=admin",
        r"mallory\x",
        "mallory principal=admin",
        &huge,
    ];
    let good = "0b1c5f3e-0000-4000-8000-00000000c0de";
    let mut principals = forged.clone();
    principals.push(good);
    for (i, principal) in principals.iter().enumerate() {
        let token = token_with(json!({"oid": principal}));
        let resp = get_bearer(envoy.main(), &format!("/score/{i}"), &token);
        assert_eq!(resp.status, 200, "{principal:?}: {}", resp.text());
    }
    let read = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let complete = wait_until(DEADLINE, || read().lines().count() >= principals.len());
    let log = read();
    assert!(complete, "access log:\n{log}");
    for separator in ['\r', '\u{85}', '\u{2028}', '\u{2029}', '\u{b}', '\u{c}'] {
        assert!(!log.contains(separator), "{separator:?} in the log:\n{log}");
    }
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), principals.len(), "access log:\n{log}");
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 7, "line {i}: {line}");
        assert!(line.len() < 512, "line {i} is {} bytes", line.len());
        assert_eq!(fields[1], "\"GET");
        assert_eq!(fields[2], format!("/score/{i}"));
        assert_eq!(fields[4], "200");
        let want = if i < forged.len() { "-" } else { good };
        assert_eq!(fields[5], format!("principal={want}"), "line {i}: {line}");
        assert_eq!(fields[6], "service=default", "line {i}: {line}");
    }
    // U+0085 (a C1 control) is never copied by the claim-header rule: absent, not withheld.
    let withheld = forged.len() as i64 - 1;
    assert_eq!(envoy.stat("aml_auth.principal_withheld"), withheld);
    assert_eq!(
        envoy.stat("aml_auth.service.default.principal_withheld"),
        withheld
    );
    assert_eq!(upstream.count(), principals.len());
    envoy.assert_no_vm_restart(created);
}

/// The shipped format logs the path Envoy served, never one a client sends as
/// `x-envoy-original-path` (Envoy forwards that header from a client as it is).
#[test]
fn the_shipped_access_log_records_the_served_path() {
    let (upstream, envoy, log_file) = start_with_shipped_log(|_| {});
    let key = bearer(PRIMARY);
    let requests: [(&str, &[(&str, &str)]); 3] = [
        ("/keyed/score", &[("x-envoy-original-path", "/open/forged")]),
        (
            "/open/score?q=1",
            &[("x-envoy-original-path", "/keyed/forged")],
        ),
        ("/keyed/score", &[]),
    ];
    for (path, extra) in requests {
        let mut headers = extra.to_vec();
        if path.starts_with("/keyed/") {
            headers.push(("authorization", &key));
        }
        assert_eq!(get(envoy.main(), path, &headers).status, 200, "{path}");
    }
    let read = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let complete = wait_until(DEADLINE, || read().lines().count() >= requests.len());
    let log = read();
    assert!(complete, "access log:\n{log}");
    let paths: Vec<&str> = log
        .lines()
        .map(|l| l.split(' ').nth(2).unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        ["/keyed/score", "/open/score?q=1", "/keyed/score"],
        "access log:\n{log}"
    );
    assert!(!log.contains("forged"), "access log:\n{log}");
    assert_eq!(upstream.count(), 3);
}
