//! Upstream calls against a local HTTP server: what reaches the upstream,
//! and how each kind of bad answer is reported.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;
use mcp_prometheus_layers::outbound::upstream_metrics::UpstreamMetrics;
use mcp_prometheus_layers::secret::Secret;
use prometheus_client::registry::Registry;
use serde_json::Value;

use super::{ApiCall, Upstream, UpstreamError};
use crate::config::{ConfigDuration, UpstreamConfig};
use crate::stack::Outbound;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::outbound::guardrails::{
    GuardrailAction, GuardrailMode, GuardrailRule, GuardrailsConfig,
};
use mcp_prometheus_layers::outbound::tenant_header::TenantLayer;
use mcp_prometheus_layers::outbound::truncate::{TruncateConfig, TruncateLayer};

type Seen = Arc<Mutex<Vec<(String, HeaderMap)>>>;

async fn serve_fake() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = |seen: Seen, path: &'static str| {
        move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push((path.to_owned(), headers));
            }
        }
    };
    let ok = r#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["w1"]}"#;
    let router = Router::new()
        .route(
            "/prefix/api/v1/query",
            post({
                let record = record(seen.clone(), "/prefix/api/v1/query");
                move |headers: HeaderMap| async move {
                    record(headers).await;
                    ok
                }
            }),
        )
        .route(
            "/prefix/api/v1/bad_data",
            get(|| async {
                (
                    http::StatusCode::BAD_REQUEST,
                    r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
                )
            }),
        )
        .route(
            "/prefix/api/v1/500",
            get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/prefix/api/v1/garbage",
            get(|| async { "<html>not json</html>" }),
        )
        .route("/prefix/api/v1/big", get(|| async { "x".repeat(10_000) }))
        .route(
            "/prefix/api/v1/cut",
            get(|| async {
                // Headers and a start, then the connection breaks.
                let pieces: Vec<Result<&'static str, std::io::Error>> = vec![
                    Ok(r#"{"status":"success","data":["#),
                    Err(std::io::Error::other("cut")),
                ];
                let paced = futures_util::StreamExt::then(
                    futures_util::stream::iter(pieces),
                    |piece| async move {
                        if piece.is_err() {
                            // Let the start reach the client first.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        piece
                    },
                );
                axum::body::Body::from_stream(paced)
            }),
        )
        .route(
            "/prefix/api/v1/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/prefix/"), seen)
}

fn upstream(url: &str, configure: impl FnOnce(&mut UpstreamConfig)) -> Upstream {
    guarded(url, GuardrailMode::Off, configure)
}

/// An upstream whose stacks have the guardrails in `mode`.
fn guarded(
    url: &str,
    mode: GuardrailMode,
    configure: impl FnOnce(&mut UpstreamConfig),
) -> Upstream {
    let mut config = UpstreamConfig::new("fake", url);
    config.timeout = ConfigDuration(Duration::from_millis(500));
    config.max_response_bytes = 4096;
    configure(&mut config);
    let outbound = Outbound {
        metrics: UpstreamMetrics::register(&mut Registry::default()),
        tenant: TenantLayer::new(false, 16),
        label: None,
        truncate: TruncateLayer::calls_only(&TruncateConfig::default()),
        guardrails: GuardrailsConfig {
            mode,
            ..GuardrailsConfig::default()
        }
        .build(&BuildCtx::default())
        .expect("valid"),
        propagate_trace: true,
    };
    Upstream::new(
        &config,
        outbound
            .stack(&BuildCtx::default(), 0, &config)
            .expect("builds"),
    )
}

#[tokio::test]
async fn request_carries_prefix_credentials_tenant_and_user_agent() {
    let (url, seen) = serve_fake().await;
    let upstream = upstream(&url, |c| {
        c.org_id = Some("team-a".into());
        c.auth = UpstreamAuthConfig::Bearer {
            token: Some(Secret::new("s3cret")),
            token_file: None,
        };
        c.headers.insert("X-Extra".into(), Secret::new("1"));
    });
    let answer = upstream
        .api::<Value>(
            ApiCall {
                endpoint: "/api/v1/query",
                path: "/api/v1/query".into(),
                params: vec![("query", "up".into())],
                post: true,
                parsed: None,
            },
            &CallScope::default(),
        )
        .await
        .expect("success");
    assert_eq!(answer.notes.warnings, vec!["w1".to_owned()]);
    let seen = seen.lock().expect("lock");
    let (path, headers) = &seen[0];
    assert_eq!(path, "/prefix/api/v1/query");
    assert_eq!(headers["authorization"], "Bearer s3cret");
    assert_eq!(headers["x-scope-orgid"], "team-a");
    assert_eq!(headers["x-extra"], "1");
    assert!(
        headers["user-agent"]
            .to_str()
            .expect("ascii")
            .starts_with("mcp-prometheus/")
    );
}

async fn error_of(path: &'static str) -> UpstreamError {
    let (url, _) = serve_fake().await;
    upstream(&url, |_| {})
        .api::<Value>(ApiCall::get(path), &CallScope::default())
        .await
        .err()
        .expect("must fail")
}

#[tokio::test]
async fn an_answer_that_breaks_off_says_so() {
    let error = error_of("/api/v1/cut").await;
    assert!(
        matches!(error, UpstreamError::BrokenAnswer { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("broke off"), "{error}");
}

#[tokio::test]
async fn prometheus_errors_keep_type_and_message() {
    let error = error_of("/api/v1/bad_data").await;
    assert_eq!(
        error.to_string(),
        "Prometheus error (bad_data): parse error"
    );
}

#[tokio::test]
async fn http_errors_name_the_status() {
    let error = error_of("/api/v1/500").await.to_string();
    assert!(
        error.contains("HTTP 500") && error.contains("boom"),
        "{error}"
    );
}

#[tokio::test]
async fn garbage_is_not_valid_json() {
    let error = error_of("/api/v1/garbage").await.to_string();
    assert!(error.contains("not valid Prometheus API JSON"), "{error}");
}

#[tokio::test]
async fn a_parser_message_quoting_the_upstream_is_cut() {
    let (url, _) = serve_fake().await;
    let quoted = format!("invalid value: string \"{}\"", "é".repeat(100_000));
    let error = upstream(&url, |_| {})
        .invalid_json("/api/v1/query_range", quoted)
        .to_string();
    assert!(error.len() < 1_000, "{} bytes", error.len());
    assert!(
        error.contains("invalid value: string") && error.contains('…'),
        "{error}"
    );
}

#[tokio::test]
async fn oversized_answers_are_refused_with_advice() {
    let error = error_of("/api/v1/big").await;
    assert!(
        matches!(error, UpstreamError::TooLarge { limit: 4096, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn slow_upstream_times_out() {
    let error = error_of("/api/v1/slow").await;
    assert!(matches!(error, UpstreamError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("timed out"));
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let error = upstream(&format!("http://{addr}"), |_| {})
        .api::<Value>(ApiCall::get("/api/v1/query"), &CallScope::default())
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(error, UpstreamError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("refused"), "{error}");
}

#[tokio::test]
async fn readiness_falls_back_to_mimir_path() {
    let router = Router::new().route("/p/ready", get(|| async { "ready" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let readiness = upstream(&format!("http://{addr}/p"), |_| {})
        .readiness()
        .await;
    assert!(readiness.ready);
    assert_eq!(readiness.endpoint, "/ready");
}

fn query(promql: &str) -> ApiCall {
    ApiCall::post("/api/v1/query", vec![("query", promql.to_owned())])
}

#[tokio::test]
async fn an_enforced_guardrail_refuses_before_sending() {
    let (url, seen) = serve_fake().await;
    let upstream = guarded(&url, GuardrailMode::Enforce, |_| {});
    let error = upstream
        .api::<Value>(query(r#"rate(x{job="a"}[90d])"#), &CallScope::default())
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, UpstreamError::Guardrail { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("not sent") && text.contains("max_range") && text.contains("≤31d"),
        "{text}"
    );
    assert!(seen.lock().expect("lock").is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_guardrail_warning_travels_with_the_answer() {
    let (url, seen) = serve_fake().await;
    let upstream = guarded(&url, GuardrailMode::Warn, |_| {});
    let answer = upstream
        .api::<Value>(query(r#"{__name__=~".+"}"#), &CallScope::default())
        .await
        .expect("sent");
    let decisions = &answer.notes.guardrails;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(
        (decisions[0].rule, decisions[0].action),
        (GuardrailRule::UnboundedRegex, GuardrailAction::Warn)
    );
    assert_eq!(seen.lock().expect("lock").len(), 1);
}
