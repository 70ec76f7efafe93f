//! Label tenancy as assembled: the tools' stack (with truncation above the
//! tenant label layer) and the passthrough's, against a local upstream
//! that records what it was asked.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use axum::routing::get;
use bytes::Bytes;
use http::Method;
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::inbound::tenancy::Enforcement;
use prometheus_client::registry::Registry;
use serde_json::Value;

use super::{Outbound, build_ctx};
use crate::config::{Config, STANDALONE_TOML, TenancyMode, UpstreamConfig};
use crate::upstream::{ApiCall, Forward, Upstream, UpstreamError};

type Seen = Arc<Mutex<Vec<(Option<String>, HeaderMap)>>>;

const ALERTS: &str = r#"{"status":"success","data":{"alerts":[
  {"labels":{"alertname":"X","tenant":"b"},"state":"firing","value":"202"},
  {"labels":{"alertname":"X","tenant":"b"},"state":"firing","value":"203"},
  {"labels":{"alertname":"X","tenant":"a"},"state":"firing","value":"101"}]}}"#;

async fn serve() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let router = Router::new()
        .route(
            "/base/api/v1/query",
            get(move |RawQuery(query): RawQuery, headers: HeaderMap| {
                let record = record.clone();
                async move {
                    record.lock().expect("lock").push((query, headers));
                    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
                }
            }),
        )
        .route("/base/api/v1/alerts", get(|| async { ALERTS }))
        .route("/base/api/v1/targets", get(|| async { "{}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/base"), seen)
}

fn upstream(url: &str) -> Upstream {
    let mut config = Config::parse(STANDALONE_TOML).expect("parses");
    // Guardrails (warn in standalone.toml) would pre-check bare selectors
    // upstream; these tests count what the label layer alone lets through.
    config.layers.guardrails = Default::default();
    let tenancy = &mut config.layers.tenancy;
    tenancy.enabled = true;
    tenancy.mode = TenancyMode::Static;
    tenancy.tenants = vec!["a".into(), "b".into()];
    tenancy.enforce = Enforcement::Label;
    let mut upstream = UpstreamConfig::new("prom", url);
    upstream.org_id = Some("platform".into());
    let ctx = build_ctx(&config, Registry::default());
    let outbound = Outbound::from_config(&config, &ctx).expect("label mode builds");
    Upstream::new(
        &upstream,
        outbound.stack(&ctx, 0, &upstream).expect("stack"),
    )
}

fn scope(tenants: &[&str]) -> CallScope {
    CallScope {
        tenants: Some(TenantSet::new(tenants.iter().copied())),
        enforced: true,
        ..CallScope::default()
    }
}

fn decoded(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn the_passthrough_sends_the_scoped_query_and_only_the_fixed_org_id() {
    let (url, seen) = serve().await;
    let forward = Forward {
        method: Method::GET,
        endpoint: "/api/v1/query",
        path: "/api/v1/query".into(),
        query: Some("query=sum(up%7Btenant%3D%22c%22%7D)&time=1".into()),
        accept: None,
        form: None,
    };
    let answer = upstream(&url)
        .forward(forward, &scope(&["a"]))
        .await
        .expect("forwarded");
    assert!(answer.status().is_success());
    let seen = seen.lock().expect("lock");
    let (query, headers) = &seen[0];
    assert_eq!(
        decoded(query.as_deref().unwrap_or_default()),
        [
            ("query".into(), r#"sum(up{tenant="a",tenant="c"})"#.into()),
            ("time".into(), "1".into())
        ]
    );
    assert_eq!(
        headers["x-scope-orgid"], "platform",
        "the upstream's own org_id"
    );
}

#[tokio::test]
async fn alerts_are_filtered_before_truncation_counts_them() {
    let (url, _) = serve().await;
    let upstream = upstream(&url);
    let mut narrow = scope(&["a"]);
    narrow.budget = Some(mcp_prometheus_layers::outbound::truncate::TruncateBudget {
        max_items: Some(1),
        ..Default::default()
    });
    let answer = upstream
        .api::<Value>(ApiCall::get("/api/v1/alerts"), &narrow)
        .await
        .expect("filtered");
    let alerts = answer.data["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["value"], "101", "tenant a's, not the first one");
    assert!(
        answer.notes.truncation.is_none(),
        "nothing of another tenant's counted as dropped: {:?}",
        answer.notes.truncation
    );
    let forwarded = upstream
        .forward(
            Forward {
                method: Method::GET,
                endpoint: "/api/v1/alerts",
                path: "/api/v1/alerts".into(),
                query: None,
                accept: None,
                form: None,
            },
            &scope(&["b"]),
        )
        .await
        .expect("forwarded");
    let body: Bytes = http_body_util::BodyExt::collect(forwarded.into_body())
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("202") && text.contains("203") && !text.contains("101"),
        "{text}"
    );
}

#[tokio::test]
async fn unscoped_and_unscopable_requests_are_refused_as_such() {
    let (url, seen) = serve().await;
    let upstream = upstream(&url);
    let error = upstream
        .api::<Value>(ApiCall::get("/api/v1/targets"), &scope(&["a"]))
        .await
        .err()
        .expect("unscoped");
    assert!(matches!(error, UpstreamError::Refused { .. }), "{error}");
    assert!(
        error.to_string().contains("label_unscoped_tools"),
        "{error}"
    );
    let error = upstream
        .api::<Value>(
            ApiCall::get_with("/api/v1/query", vec![("query", "sum by () (up)".into())]),
            &scope(&["a"]),
        )
        .await
        .err()
        .expect("lossy");
    assert!(matches!(error, UpstreamError::BadRequest { .. }), "{error}");
    let error = upstream
        .api::<Value>(
            ApiCall::get_with("/api/v1/query", vec![("query", "up".into())]),
            &CallScope::default(),
        )
        .await
        .err()
        .expect("no tenants");
    assert!(error.to_string().contains("no tenant scope"), "{error}");
    assert!(
        seen.lock().expect("lock").is_empty(),
        "nothing reached the upstream"
    );
}
