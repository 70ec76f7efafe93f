//! The passthrough against a recording local upstream: what is served,
//! what is refused before anything is sent, and which headers cross.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request as AxumRequest;
use http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::identity::{TenancyEnforced, TenantSet};
use mcp_prometheus_layers::outbound::tenant_header::TenantLayer;
use mcp_prometheus_layers::outbound::truncate::{TruncateConfig, TruncateLayer};
use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;
use mcp_prometheus_layers::outbound::upstream_metrics::UpstreamMetrics;
use mcp_prometheus_layers::secret::Secret;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::config::{STANDALONE_TOML, UpstreamConfig};
use crate::stack::Outbound;

/// What the upstream received: method, path and query, headers, body.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A recording upstream: answers every request with a small success, a
/// cookie and a hop-by-hop header the caller must not get.
async fn upstream() -> (String, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let router = Router::new().fallback(move |request: AxumRequest| {
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            seen.lock().expect("lock").push(Seen {
                method: parts.method,
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body,
            });
            http::Response::builder()
                .header(CONTENT_TYPE, "application/json")
                .header(SET_COOKIE, "session=upstream")
                .header("x-upstream-private", "1")
                .body(Body::from(r#"{"status":"success","data":[]}"#))
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/base"), log)
}

/// The passthrough over one upstream at `url`; `enforce` switches tenancy on.
fn passthrough(url: &str, enforce: bool, auth: UpstreamAuthConfig) -> Router {
    let mut config = UpstreamConfig::new("mimir", url);
    config.auth = auth;
    let outbound = Outbound {
        metrics: UpstreamMetrics::register(&mut Registry::default()),
        tenant: TenantLayer::new(enforce, 16),
        label: None,
        truncate: TruncateLayer::calls_only(&TruncateConfig::default()),
        guardrails: None,
        propagate_trace: false,
    };
    let stacks = outbound
        .stack(&BuildCtx::default(), 0, &config)
        .expect("builds");
    Passthrough {
        prefix: "/prometheus".into(),
        upstream: Arc::new(Upstream::new(&config, stacks)),
        hosts: AllowedHosts::new(&["localhost".into()]),
        max_body_bytes: 4096,
        audit: None,
    }
    .router()
}

/// A request as the inbound stack hands it on: under tenancy, with the
/// caller's tenants in its extensions.
fn request(method: Method, uri: &str, tenants: Option<&[&str]>) -> http::request::Builder {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, "localhost:8080");
    if let Some(tenants) = tenants {
        builder = builder
            .extension(TenancyEnforced)
            .extension(TenantSet::new(tenants.iter().copied()));
    }
    builder
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

#[tokio::test]
async fn a_query_is_forwarded_with_the_callers_tenants_and_nothing_else_of_theirs() {
    let (url, log) = upstream().await;
    let router = passthrough(&url, true, UpstreamAuthConfig::None);
    let req = request(
        Method::GET,
        "/prometheus/api/v1/query?query=up&time=1",
        Some(&["a", "b"]),
    )
    .header(AUTHORIZATION, "Bearer caller-token")
    .header(COOKIE, "c=1")
    .header("x-forwarded-for", "10.0.0.1")
    .body(Body::empty())
    .expect("request");
    let (status, headers, json) = send(&router, req).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "success");
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert!(headers.get(SET_COOKIE).is_none() && headers.get("x-upstream-private").is_none());
    let seen = log.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/base/api/v1/query?query=up&time=1");
    assert_eq!(seen[0].headers["x-scope-orgid"], "a|b");
    for private in [AUTHORIZATION, COOKIE] {
        assert!(seen[0].headers.get(&private).is_none(), "{private}");
    }
    assert!(seen[0].headers.get("x-forwarded-for").is_none());
}

#[tokio::test]
async fn a_callers_org_id_narrows_and_never_widens() {
    let (url, log) = upstream().await;
    let router = passthrough(&url, true, UpstreamAuthConfig::None);
    let narrowed = request(Method::GET, "/prometheus/api/v1/labels", Some(&["a", "b"]))
        .header("x-scope-orgid", "b")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&router, narrowed).await.0, StatusCode::OK);
    assert_eq!(log.lock().expect("lock")[0].headers["x-scope-orgid"], "b");
    for (org_id, status) in [("c", StatusCode::FORBIDDEN), ("a|c", StatusCode::FORBIDDEN)] {
        let widened = request(Method::GET, "/prometheus/api/v1/labels", Some(&["a", "b"]))
            .header("x-scope-orgid", org_id)
            .body(Body::empty())
            .expect("request");
        let (got, _, json) = send(&router, widened).await;
        assert_eq!(got, status, "{json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("X-Scope-OrgID: tenant"), "{error}");
    }
    let twice = request(Method::GET, "/prometheus/api/v1/labels", Some(&["a", "b"]))
        .header("x-scope-orgid", "a")
        .header("x-scope-orgid", "b")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&router, twice).await.0, StatusCode::BAD_REQUEST);
    let without_tenants = request(Method::GET, "/prometheus/api/v1/labels", None)
        .body(Body::empty())
        .expect("request");
    let (status, _, json) = send(&router, without_tenants).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "fail closed: {json}");
    assert_eq!(log.lock().expect("lock").len(), 1, "only the narrowed one");
}

#[tokio::test]
async fn unlisted_paths_methods_and_oversized_queries_send_nothing() {
    let (url, log) = upstream().await;
    let router = passthrough(&url, false, UpstreamAuthConfig::None);
    let long = format!("/api/v1/query?query={}", "x".repeat(MAX_QUERY_BYTES));
    let cases = [
        (Method::GET, "", 404),
        (Method::GET, "/", 404),
        (Method::POST, "/api/v1/admin/tsdb/snapshot", 404),
        (Method::POST, "/api/v1/write", 404),
        (Method::GET, "/api/v1/status/config", 404),
        (Method::GET, "/api/v1/label/../values", 404),
        (Method::GET, "/api/v1/label/a%2Fb/values", 404),
        (Method::PUT, "/api/v1/query", 405),
        (Method::DELETE, "/api/v1/series", 405),
        (Method::POST, "/api/v1/rules", 405),
        (Method::GET, &long, 414),
    ];
    for (method, path, expected) in cases {
        let uri = format!("/prometheus{path}");
        let req = request(method.clone(), &uri, None)
            .body(Body::empty())
            .expect("request");
        let (status, headers, json) = send(&router, req).await;
        assert_eq!(status.as_u16(), expected, "{method} {uri}: {json}");
        assert_eq!(json["status"], "error", "{method} {uri}");
        if status == StatusCode::NOT_FOUND {
            assert_eq!(json["errorType"], "not_found");
            let error = json["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("only these read APIs are served: /api/v1/query"),
                "{error}"
            );
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(headers.get(ALLOW).is_some(), "{method} {uri}");
        }
    }
    assert!(
        log.lock().expect("lock").is_empty(),
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn a_foreign_host_is_refused() {
    let (url, log) = upstream().await;
    let router = passthrough(&url, false, UpstreamAuthConfig::None);
    let mut req = request(Method::GET, "/prometheus/api/v1/query?query=up", None)
        .body(Body::empty())
        .expect("request");
    req.headers_mut().insert(
        http::header::HOST,
        "rebound.evil.example".parse().expect("value"),
    );
    let (status, _, json) = send(&router, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert!(log.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_post_form_is_forwarded_and_other_bodies_are_refused() {
    let (url, log) = upstream().await;
    let router = passthrough(&url, false, UpstreamAuthConfig::None);
    let form = request(Method::POST, "/prometheus/api/v1/query_range", None)
        .header(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(Body::from("query=up&start=1&end=2&step=1"))
        .expect("request");
    assert_eq!(send(&router, form).await.0, StatusCode::OK);
    let json = request(Method::POST, "/prometheus/api/v1/query", None)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"query":"up"}"#))
        .expect("request");
    assert_eq!(
        send(&router, json).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = request(Method::POST, "/prometheus/api/v1/query", None)
        .header(CONTENT_TYPE, FORM)
        .body(Body::from(format!("query={}", "x".repeat(5000))))
        .expect("request");
    assert_eq!(send(&router, big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let seen = log.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].uri, "/base/api/v1/query_range");
    assert_eq!(seen[0].headers[CONTENT_TYPE], FORM);
    assert_eq!(&seen[0].body[..], b"query=up&start=1&end=2&step=1");
}

#[tokio::test]
async fn the_upstream_gets_the_operators_credential_not_the_callers() {
    let (url, log) = upstream().await;
    let bearer = UpstreamAuthConfig::Bearer {
        token: Some(Secret::new("operator")),
        token_file: None,
    };
    let router = passthrough(&url, false, bearer);
    let req = request(Method::GET, "/prometheus/api/v1/label/job/values", None)
        .header(AUTHORIZATION, "Bearer caller")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&router, req).await.0, StatusCode::OK);
    let seen = log.lock().expect("lock").clone();
    assert_eq!(seen[0].uri, "/base/api/v1/label/job/values");
    assert_eq!(seen[0].headers[AUTHORIZATION], "Bearer operator");
}

fn config(enabled: bool, prefix: &str, upstream: Option<&str>) -> Config {
    let mut config = Config::parse(STANDALONE_TOML).expect("parses");
    config.upstreams = vec![
        UpstreamConfig::new("first", "http://127.0.0.1:9090"),
        UpstreamConfig::new("second", "http://127.0.0.1:9091"),
    ];
    config.passthrough = PassthroughConfig {
        enabled,
        prefix: prefix.into(),
        upstream: upstream.map(str::to_owned),
    };
    config
}

#[test]
fn off_by_default_and_the_default_upstream_is_the_first() {
    let defaults = Config::parse(STANDALONE_TOML).expect("parses");
    assert!(!defaults.passthrough.enabled);
    assert_eq!(defaults.passthrough.prefix, "/prometheus");
    assert_eq!(defaults.passthrough.build(&defaults).expect("valid"), None);
    let on = config(true, "/prometheus", None);
    let settings = on.passthrough.build(&on).expect("valid").expect("on");
    assert_eq!(settings.upstream, "first");
    let named = config(true, "/api/prom", Some("second"));
    let settings = named.passthrough.build(&named).expect("valid").expect("on");
    assert_eq!(settings.upstream, "second");
    assert!(Config::parse("[passthrough]\nenabled = true\nprefx = \"/p\"\n").is_err());
}

#[test]
fn bad_prefixes_and_unknown_upstreams_are_refused_by_check_config() {
    for (prefix, needle) in [
        ("prometheus", "start with '/'"),
        ("/", "below '/'"),
        ("/prometheus/", "trailing slash"),
        ("/a//b", "segments"),
        ("/a/../b", "segments"),
        ("/{x}", "segments"),
        ("/a%2Fb", "segments"),
        ("/mcp", "MCP endpoint"),
        ("/mcp/prometheus", "MCP endpoint"),
        ("/oauth", "own routes"),
        ("/.well-known/prometheus", "own routes"),
        ("/sse", "own routes"),
        ("/message", "own routes"),
    ] {
        let config = config(true, prefix, None);
        let error = crate::stack::check(&config).expect_err(prefix).to_string();
        assert!(
            error.contains("passthrough.prefix") && error.contains(needle),
            "{prefix}: {error}"
        );
    }
    let mut root_mcp = config(true, "/prometheus", None);
    root_mcp.server.mcp_path = "/prometheus/mcp".into();
    assert!(
        crate::stack::check(&root_mcp).is_err(),
        "the MCP path under the prefix"
    );
    let unknown = config(true, "/prometheus", Some("third"));
    let error = crate::stack::check(&unknown)
        .expect_err("unknown")
        .to_string();
    assert!(
        error.contains("\"third\"") && error.contains("\"first\", \"second\""),
        "{error}"
    );
    assert!(crate::stack::check(&config(true, "/prom.v1/a-b_c~d", None)).is_ok());
    assert!(
        crate::stack::check(&config(false, "nonsense", None)).is_ok(),
        "off: unchecked"
    );
}
