//! Differential test of the policy applied against the route Envoy serves: routes that match on a
//! claim header the filter sets, on `authorization` (which the filter removes), on a header an
//! earlier Lua filter sets, Istio subset clusters, an internal redirect and a route no service
//! names, selected by route names and by clusters, over HTTP/1.1 and HTTP/2. Each upstream
//! cluster has its own server; whenever one serves a request, the request's credential must be
//! one the policy of the service owning that upstream accepts, and a protected service's valid
//! credential must reach it. The filter runs with `phase: upstream`, in the router's upstream
//! filter chain, where route and cluster are final.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use serde_json::{json, Value};

const TOP_KEY: &str = "top-level-key-0123456789";
const MODEL_KEY: &str = "model-service-key-0123456789";
const V1_KEY: &str = "model-v1-key-0123456789";
const V2_KEY: &str = "model-v2-key-0123456789";
const CHURN_KEY: &str = "churn-service-key-0123456789";
const CHURN: &str = "outbound|80||churn.models.svc.cluster.local";
const CHURN_V2: &str = "outbound|80|v2|churn.models.svc.cluster.local";

/// The upstream clusters and the service owning each (`None`: no service).
const CLUSTERS: [(&str, Option<&str>); 11] = [
    ("contoso", Some("contoso")),
    ("general", Some("general")),
    ("model", Some("model")),
    ("landing", Some("landing")),
    ("v1", Some("v1")),
    ("v2", Some("v2")),
    (CHURN, Some("churn")),
    (CHURN_V2, Some("churn")),
    ("redirector", Some("model")),
    ("flaky", Some("model")),
    ("nobody", None),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    Anonymous,
    Key(&'static str),
    /// A token with `tid: contoso`, with or without the role contoso requires.
    ContosoToken {
        role: bool,
    },
}

/// Whether the policy of `service` accepts `credential`.
fn accepts(service: &str, credential: Credential) -> bool {
    match (service, credential) {
        ("landing", _) => true,
        ("contoso", Credential::ContosoToken { role }) => role,
        ("general", Credential::ContosoToken { .. }) => true,
        ("model", Credential::Key(k)) => k == MODEL_KEY,
        ("v1", Credential::Key(k)) => k == V1_KEY,
        ("v2", Credential::Key(k)) => k == V2_KEY,
        ("churn", Credential::Key(k)) => k == CHURN_KEY,
        _ => false,
    }
}

fn plugin_config(by_cluster: bool) -> Value {
    let select = |routes: &[&str], clusters: &[&str]| {
        if by_cluster {
            json!({"clusters": clusters})
        } else {
            json!({"route_names": routes})
        }
    };
    let service = |name: &str, mut select: Value, policy: Value| {
        select["name"] = json!(name);
        for (k, v) in policy.as_object().unwrap() {
            select[k] = v.clone();
        }
        select
    };
    let token = json!({"auth_enabled": false, "token_auth_enabled": true});
    let mut contoso = token.clone();
    contoso["required_claims"] = json!({"roles": ["Model.Score"]});
    let mut services = vec![
        service("contoso", select(&["contoso"], &["contoso"]), contoso),
        service("general", select(&["general"], &["general"]), token),
        service(
            "model",
            select(
                &["model", "model-target", "redirect", "retry"],
                &["model", "redirector", "flaky"],
            ),
            json!({"primary_key": MODEL_KEY}),
        ),
        service(
            "landing",
            select(&["landing"], &["landing"]),
            json!({"auth_enabled": false}),
        ),
        service(
            "v1",
            select(&["v1"], &["v1"]),
            json!({"primary_key": V1_KEY}),
        ),
        service(
            "v2",
            select(&["v2"], &["v2"]),
            json!({"primary_key": V2_KEY}),
        ),
    ];
    if by_cluster {
        services.push(service(
            "churn",
            json!({"clusters": [CHURN]}),
            json!({"primary_key": CHURN_KEY}),
        ));
    }
    json!({
        "primary_key": TOP_KEY,
        "phase": "upstream",
        "token": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "remote_jwks": remote_source("jwks", 600, 86_400),
            "claim_to_headers": [{"claim": "tid", "header": "x-aml-tenant"}]
        },
        "services": services
    })
}

fn route(name: &str, prefix: &str, headers: Value, cluster: &str) -> Value {
    json!({"name": name, "match": {"prefix": prefix, "headers": headers},
           "route": {"cluster": cluster, "timeout": "30s"}})
}

fn bootstrap_for(by_cluster: bool, servers: &HashMap<&str, Server>, jwks: &Server) -> Value {
    let header =
        |name: &str, value: &str| json!([{"name": name, "string_match": {"exact": value}}]);
    let mut redirect = route("redirect", "/redirect", json!([]), "redirector");
    redirect["route"]["internal_redirect_policy"] =
        json!({"max_internal_redirects": 1, "allow_cross_scheme_redirect": true});
    let mut retry = route("retry", "/retry", json!([]), "flaky");
    retry["route"]["retry_policy"] = json!({"retry_on": "5xx", "num_retries": 1});
    let routes = vec![
        route(
            "contoso",
            "/score",
            header("x-aml-tenant", "contoso"),
            "contoso",
        ),
        route("general", "/score", json!([]), "general"),
        route(
            "model",
            "/model",
            json!([{"name": "authorization", "present_match": true}]),
            "model",
        ),
        route("landing", "/model", json!([]), "landing"),
        route("model-target", "/target/", json!([]), "model"),
        retry,
        route("v2", "/v", header("x-model-version", "2"), "v2"),
        route("v1", "/v", json!([]), "v1"),
        route("churn", "/churn/", json!([]), CHURN),
        route("churn-v2", "/churn-v2/", json!([]), CHURN_V2),
        redirect,
        route("nobody", "/nobody", json!([]), "nobody"),
    ];
    let lua = json!({
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string":
                "function envoy_on_request(h)\n  if string.find(h:headers():get(':path'), 'version=2', 1, true) then\n    h:headers():add('x-model-version', '2')\n  end\nend\n"}
        }
    });
    let mut router = router_filter();
    router["typed_config"]["upstream_http_filters"] = json!([
        wasm_filter(&plugin_config(by_cluster)),
        {"name": "envoy.filters.http.upstream_codec", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}
    ]);
    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "main",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [lua, router]
    });
    let listener = json!({
        "name": "main",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]
    });
    let mut clusters: Vec<Value> = CLUSTERS
        .iter()
        .map(|(name, _)| cluster(name, servers[name].addr))
        .collect();
    clusters.push(cluster("jwks", jwks.addr));
    bootstrap(vec![listener], clusters)
}

/// One request of the corpus: path, extra headers, credential, and the upstream a protected
/// service's valid credential must reach (`None`: no expectation beyond the invariant).
struct Case {
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    credential: Credential,
    must_reach: Option<&'static str>,
    /// Only with services selected by cluster.
    clusters_only: bool,
}

fn corpus() -> Vec<Case> {
    use Credential::*;
    let case = |path, headers, credential, must_reach| Case {
        path,
        headers,
        credential,
        must_reach,
        clusters_only: false,
    };
    let tenant: &'static [(&str, &str)] = &[("x-aml-tenant", "contoso")];
    let mut cases = vec![
        // Why 1: the claim header the filter sets must not re-route a judged request.
        case("/score", &[], ContosoToken { role: false }, Some("general")),
        case("/score", tenant, ContosoToken { role: false }, None),
        case(
            "/score",
            tenant,
            ContosoToken { role: true },
            Some("contoso"),
        ),
        case("/score", &[], ContosoToken { role: true }, Some("general")),
        case("/score", tenant, Key(TOP_KEY), None),
        // Why 2: removing Authorization must not send a valid key elsewhere.
        case("/model/score", &[], Key(MODEL_KEY), Some("model")),
        case("/model/score", &[], Anonymous, Some("landing")),
        case("/model/score", &[], Key(V1_KEY), None),
        // Why 3: an earlier Lua filter's edit selects the route that is judged.
        case("/v/score?version=2", &[], Key(V2_KEY), Some("v2")),
        case("/v/score?version=2", &[], Key(V1_KEY), None),
        case("/v/score", &[], Key(V1_KEY), Some("v1")),
        case("/v/score", &[], Key(V2_KEY), None),
        case(
            "/v/score",
            &[("x-model-version", "2")],
            Key(V2_KEY),
            Some("v2"),
        ),
        // Why 8: an internal redirect within the judged service reaches it (its Authorization
        // was removed); one to another service is refused.
        case("/redirect/score", &[], Key(MODEL_KEY), Some("model")),
        case("/redirect/elsewhere", &[], Key(MODEL_KEY), None),
        case("/redirect/score", &[], Anonymous, None),
        // A retry (the same, already edited headers sent again) is not judged again.
        case("/retry/score", &[], Key(MODEL_KEY), Some("flaky")),
        case("/retry/score", &[], Key(V1_KEY), None),
        // A route no service names.
        case("/nobody/score", &[], Key(TOP_KEY), None),
        case("/nobody/score", &[], Anonymous, None),
    ];
    for (credential, must_reach) in [
        (Key(CHURN_KEY), Some(CHURN)),
        (Key(TOP_KEY), None),
        (Key(MODEL_KEY), None),
    ] {
        for path in ["/churn/score", "/churn-v2/score"] {
            let reach = must_reach.map(|c| if path == "/churn/score" { c } else { CHURN_V2 });
            cases.push(Case {
                path,
                headers: &[],
                credential,
                must_reach: reach,
                clusters_only: true,
            });
        }
    }
    cases
}

fn token(role: bool) -> String {
    let mut claims = good_claims();
    claims["tid"] = json!("contoso");
    if role {
        claims["roles"] = json!(["Model.Score"]);
    }
    signing_key("rsa-a.pem")
        .sign("RS256", Some("rsa-a"), &claims)
        .unwrap()
}

/// Sends one case; returns the status and the name of the upstream that served it, if any.
fn send(
    envoy: &Envoy,
    case: &Case,
    h2: bool,
    tokens: &HashMap<bool, String>,
) -> (u16, Option<String>) {
    let authorization = match case.credential {
        Credential::Anonymous => None,
        Credential::Key(k) => Some(format!("Bearer {k}")),
        Credential::ContosoToken { role } => Some(format!("Bearer {}", tokens[&role])),
    };
    let mut headers: Vec<(&str, &str)> = case.headers.to_vec();
    if let Some(a) = &authorization {
        headers.push(("authorization", a));
    }
    let (status, body) = if h2 {
        let mut h2_headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", b"models.contoso.com"),
            (b":path", case.path.as_bytes()),
        ];
        h2_headers.extend(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        h2_get(envoy.main(), &h2_headers).unwrap_or_else(|e| panic!("{}: {e}", case.path))
    } else {
        let r = get(envoy.main(), case.path, &headers);
        (r.status, r.body)
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let served = text.strip_prefix("served-by:").map(str::to_string);
    (status, served)
}

fn run(by_cluster: bool) {
    let servers: HashMap<&str, Server> = CLUSTERS
        .iter()
        .map(|(name, _)| {
            let name = *name;
            let server = if name == "redirector" {
                Server::start(|r| {
                    let to = if r.path.contains("elsewhere") {
                        "http://models.contoso.com/model/elsewhere"
                    } else {
                        "http://models.contoso.com/target/score"
                    };
                    Reply::new(302, "").header("location", to)
                })
            } else if name == "flaky" {
                let attempts = AtomicUsize::new(0);
                Server::start(move |_| {
                    if attempts.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                        Reply::new(503, "try again")
                    } else {
                        Reply::new(200, "served-by:flaky")
                    }
                })
            } else {
                let body = format!("served-by:{name}");
                Server::start(move |_| Reply::new(200, body.clone()))
            };
            (name, server)
        })
        .collect();
    let keys = json!({"keys": [signing_key("rsa-a.pem").public_jwk("rsa-a", None)]});
    let jwks = jwks_server(&keys);
    let envoy = Envoy::start(&bootstrap_for(by_cluster, &servers, &jwks));
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no JWKS fetch:\n{}",
        envoy.log_tail(30)
    );
    let created = envoy.vm_created();
    let tokens: HashMap<bool, String> = [(false, token(false)), (true, token(true))].into();
    let owner: HashMap<&str, Option<&str>> = CLUSTERS.into_iter().collect();
    let mut failures = Vec::new();
    let mut served_count = 0;
    for case in corpus().iter().filter(|c| by_cluster || !c.clusters_only) {
        for h2 in [false, true] {
            let (status, served) = send(&envoy, case, h2, &tokens);
            let what = format!(
                "{} {:?} {:?} over {}: {status} served by {served:?}",
                case.path,
                case.headers,
                case.credential,
                if h2 { "HTTP/2" } else { "HTTP/1.1" }
            );
            if let Some(upstream) = &served {
                served_count += 1;
                match owner.get(upstream.as_str()).copied().flatten() {
                    Some(service) if accepts(service, case.credential) => {}
                    Some(service) => failures.push(format!(
                        "{what}: the policy of `{service}`, owning that upstream, refuses this credential"
                    )),
                    None => failures.push(format!("{what}: no service owns that upstream")),
                }
            }
            if let Some(want) = case.must_reach {
                if served.as_deref() != Some(want) {
                    failures.push(format!("{what}: a valid credential must reach {want}"));
                }
            }
            if case.path.starts_with("/nobody") && status != 403 {
                failures.push(format!("{what}: a route no service names must be refused"));
            }
            if case.path == "/redirect/elsewhere" && status != 403 {
                failures.push(format!(
                    "{what}: a redirect to another service must be refused"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "by {}:\n{}",
        if by_cluster { "cluster" } else { "route name" },
        failures.join("\n")
    );
    assert!(served_count > 10, "the corpus must reach the upstreams");
    assert!(envoy.stat("aml_auth.denied.no_service") >= 4);
    assert!(envoy.stat("aml_auth.denied.route_changed") >= 2);
    assert_eq!(
        servers["flaky"].count() % 2,
        0,
        "every retried request was tried twice"
    );
    envoy.assert_no_vm_restart(created);
}

#[test]
fn by_route_name_the_policy_applied_is_the_served_routes() {
    run(false);
}

#[test]
fn by_cluster_the_policy_applied_is_the_served_clusters() {
    run(true);
}

/// An internal redirect replays the request with the filter's edits made (`Authorization`
/// removed). In the router's upstream filters (`phase: upstream`) the judgement
/// (`wasm.aml_auth_judged`, living as long as the downstream request) serves it when the new
/// route belongs to the judged service and refuses it (`route_changed`) otherwise. In the
/// listener's chain (`phase: downstream`) the replay is judged again and, without its
/// credential, refused with 401 `missing_credential` (documented in docs/routing.md). Either way
/// no other service's upstream serves it, and an anonymous or wrong credential is refused
/// before any redirect. HTTP/1.1 and HTTP/2.
#[test]
fn an_internal_redirect_is_served_only_by_the_judged_service_in_either_phase() {
    let redirector = Server::start(|r| {
        let to = if r.path.contains("elsewhere") {
            "http://models.contoso.com/other/score"
        } else {
            "http://models.contoso.com/target/score"
        };
        Reply::new(302, "").header("location", to)
    });
    let model = Server::start(|_| Reply::new(200, "served-by:model"));
    let other = Server::start(|_| Reply::new(200, "served-by:other"));
    for upstream_phase in [false, true] {
        model.clear();
        let mut config = json!({
            "primary_key": TOP_KEY,
            "services": [
                {"name": "model", "route_names": ["redirect", "model-target"], "primary_key": MODEL_KEY},
                {"name": "other", "route_names": ["other"], "primary_key": V1_KEY}
            ]
        });
        let mut filters = vec![wasm_filter(&config)];
        let mut router = router_filter();
        if upstream_phase {
            config["phase"] = json!("upstream");
            filters.clear();
            router["typed_config"]["upstream_http_filters"] = json!([
                wasm_filter(&config),
                {"name": "envoy.filters.http.upstream_codec", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}
            ]);
        }
        let mut redirect = route("redirect", "/redirect", json!([]), "redirector");
        redirect["route"]["internal_redirect_policy"] =
            json!({"max_internal_redirects": 1, "allow_cross_scheme_redirect": true});
        let routes = vec![
            redirect,
            route("model-target", "/target/", json!([]), "model"),
            route("other", "/other/", json!([]), "other"),
        ];
        let mut main = listener("main", filters, routes);
        let hcm = &mut main["filter_chains"][0]["filters"][0]["typed_config"];
        let chain = hcm["http_filters"].as_array_mut().unwrap();
        *chain.last_mut().unwrap() = router;
        let envoy = Envoy::start(&bootstrap(
            vec![main],
            vec![
                cluster("redirector", redirector.addr),
                cluster("model", model.addr),
                cluster("other", other.addr),
            ],
        ));
        let created = envoy.vm_created();
        let model_key = format!("Bearer {MODEL_KEY}");
        let (redirected, elsewhere) = if upstream_phase {
            ((200, "served-by:model"), (403, "route_changed"))
        } else {
            ((401, "missing_credential"), (401, "missing_credential"))
        };
        let cases: [(&str, Option<&str>, (u16, &str)); 4] = [
            ("/redirect/score", Some(&model_key), redirected),
            ("/redirect/elsewhere", Some(&model_key), elsewhere),
            ("/redirect/score", None, (401, "missing_credential")),
            (
                "/redirect/score",
                Some("Bearer wrong-key"),
                (401, "invalid_key"),
            ),
        ];
        for (path, authorization, (want, body)) in cases {
            for h2 in [false, true] {
                let (status, got) = if h2 {
                    let mut headers: Vec<(&[u8], &[u8])> = vec![
                        (b":method", b"GET"),
                        (b":scheme", b"http"),
                        (b":authority", b"models.contoso.com"),
                        (b":path", path.as_bytes()),
                    ];
                    if let Some(a) = authorization {
                        headers.push((b"authorization", a.as_bytes()));
                    }
                    h2_get(envoy.main(), &headers).unwrap_or_else(|e| panic!("{path}: {e}"))
                } else {
                    let headers: Vec<(&str, &str)> = authorization
                        .map(|a| ("authorization", a))
                        .into_iter()
                        .collect();
                    let r = get(envoy.main(), path, &headers);
                    (r.status, r.body)
                };
                let text = String::from_utf8_lossy(&got).into_owned();
                let what = format!(
                    "upstream phase {upstream_phase}: {path} {authorization:?} over {}",
                    if h2 { "HTTP/2" } else { "HTTP/1.1" }
                );
                assert_eq!(status, want, "{what}: {text}");
                assert!(text.contains(body), "{what}: {text}");
            }
        }
        assert_eq!(
            model.count(),
            if upstream_phase { 2 } else { 0 },
            "upstream phase {upstream_phase}"
        );
        envoy.assert_no_vm_restart(created);
    }
    assert_eq!(
        other.count(),
        0,
        "another service's upstream served a redirect"
    );
}
