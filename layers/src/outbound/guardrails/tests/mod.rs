//! Every rule in `warn` and `enforce` mode against a recording inner
//! service: refused requests never reach it, warned ones do and their
//! answer carries the decision. The pre-check, its cache and its failure
//! are in `precheck.rs`, the builder's checks in `config.rs`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use prometheus_client::encoding::text::encode;
use tower::{Layer, ServiceExt};

use super::*;
use crate::BoxError;
use crate::endpoint::UpstreamEndpoint;
use crate::identity::TenantSet;
use crate::promql::ParsedQuery;

/// What the inner service saw: method, path and query, and form body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// How the fake upstream answers a pre-check.
#[derive(Clone, Copy)]
enum Upstream {
    Series(u64),
    Fails,
    Hangs,
}

struct Harness {
    layer: GuardrailsLayer,
    seen: Seen,
    ctx: BuildCtx,
}

fn harness(mode: GuardrailMode, tune: impl FnOnce(&mut GuardrailsConfig)) -> Harness {
    let mut config = GuardrailsConfig {
        mode,
        max_series_per_selector: 100,
        ..GuardrailsConfig::default()
    };
    tune(&mut config);
    let ctx = BuildCtx::default();
    let layer = config.build(&ctx).expect("valid").expect("on");
    Harness {
        layer,
        seen: Seen::default(),
        ctx,
    }
}

impl Harness {
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        upstream: Upstream,
    ) -> Result<Response<Full<Bytes>>, BoxError> {
        let seen = self.seen.clone();
        let inner = tower::service_fn(move |req: Request<Full<Bytes>>| {
            let seen = seen.clone();
            async move {
                let uri = req.uri().to_string();
                let body = req.into_body().collect().await?.to_bytes();
                seen.lock()
                    .expect("lock")
                    .push((uri.clone(), String::from_utf8_lossy(&body).into()));
                let answer = if uri.contains("count%28") {
                    match upstream {
                        Upstream::Series(n) => format!(
                            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{n}"]}}]}}}}"#
                        ),
                        Upstream::Fails => {
                            let mut response = Response::new(Full::new(Bytes::from("overloaded")));
                            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            return Ok::<_, Infallible>(response);
                        }
                        Upstream::Hangs => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            String::new()
                        }
                    }
                } else {
                    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.to_owned()
                };
                Ok(Response::new(Full::new(Bytes::from(answer))))
            }
        });
        self.layer.layer(inner).oneshot(request).await
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("lock").clone()
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.ctx.registry.borrow()).expect("encodes");
        text
    }
}

fn get(path: &str, params: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut request = Request::get(format!("http://mimir:8080/prometheus{path}?{query}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    request.extensions_mut().insert(UpstreamEndpoint {
        upstream: "mimir".into(),
        endpoint: if path.starts_with("/api/v1/label/") {
            "/api/v1/label/:name/values"
        } else {
            static_path(path)
        },
    });
    request.extensions_mut().insert(TenantSet::new(["team-a"]));
    request
}

fn static_path(path: &str) -> &'static str {
    [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/query_exemplars",
        "/api/v1/series",
        "/api/v1/labels",
    ]
    .into_iter()
    .find(|p| *p == path)
    .unwrap_or("/api/v1/other")
}

fn post(path: &str, params: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let (mut parts, _) = get(path, &[]).into_parts();
    parts.method = http::Method::POST;
    parts.uri = format!("http://mimir:8080/prometheus{path}")
        .parse()
        .expect("uri");
    parts.headers.insert(
        CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().expect("value"),
    );
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Request::from_parts(parts, Full::new(Bytes::from(form)))
}

fn decisions(response: &Response<Full<Bytes>>) -> Vec<GuardrailDecision> {
    response
        .extensions()
        .get::<GuardrailDecisions>()
        .map(|d| d.0.clone())
        .unwrap_or_default()
}

/// One case per rule: a request that breaks it, as GET or POST.
fn cases() -> Vec<(GuardrailRule, Request<Full<Bytes>>, &'static str)> {
    let day = |days: u64| (days * 86_400).to_string();
    vec![
        (
            GuardrailRule::UnboundedRegex,
            get("/api/v1/query", &[("query", r#"count({__name__=~".+"})"#)]),
            "label matcher",
        ),
        (
            GuardrailRule::UnboundedRegex,
            post(
                "/api/v1/series",
                &[("match[]", r#"{__name__=~"(.+)", job=~".*"}"#)],
            ),
            "label matcher",
        ),
        (
            GuardrailRule::MaxRange,
            post("/api/v1/query", &[("query", r#"rate(x{job="a"}[90d])"#)]),
            "≤31d",
        ),
        (
            GuardrailRule::MaxRange,
            get(
                "/api/v1/query",
                &[("query", r#"max_over_time(x{job="a"}[40d:1h])"#)],
            ),
            "≤31d",
        ),
        (
            GuardrailRule::MaxRange,
            get(
                "/api/v1/query_range",
                &[
                    ("query", r#"x{job="a"}"#),
                    ("start", "0"),
                    ("end", &day(40)),
                    ("step", "1d"),
                ],
            ),
            "≤31d",
        ),
        (
            GuardrailRule::MaxPoints,
            post(
                "/api/v1/query_range",
                &[
                    ("query", r#"x{job="a"}"#),
                    ("start", "0"),
                    ("end", &day(1)),
                    ("step", "1s"),
                ],
            ),
            "raise the step to ≥8s",
        ),
        (
            GuardrailRule::MinSubqueryStep,
            get(
                "/api/v1/query",
                &[("query", r#"max_over_time(x{job="a"}[1h:1s])"#)],
            ),
            "coarser subquery resolution",
        ),
        (
            GuardrailRule::MinSubqueryStep,
            get(
                "/api/v1/query",
                &[("query", r#"max_over_time(x{job="a"}[30d:10s])"#)],
            ),
            "coarser subquery resolution",
        ),
    ]
}

#[tokio::test]
async fn enforce_refuses_every_rule_before_anything_is_sent() {
    for (rule, request, fix) in cases() {
        let h = harness(GuardrailMode::Enforce, |_| {});
        let error = h
            .send(request, Upstream::Series(0))
            .await
            .expect_err("refused");
        let refusal = error
            .downcast_ref::<GuardrailRefusal>()
            .expect("typed refusal");
        assert_eq!(refusal.0[0].rule, rule, "{refusal}");
        assert_eq!(refusal.0[0].action, GuardrailAction::Refuse);
        let text = refusal.to_string();
        assert!(text.contains(rule.as_str()) && text.contains(fix), "{text}");
        assert!(
            h.seen().is_empty(),
            "{rule}: the inner service saw {:?}",
            h.seen()
        );
        let metric = format!(
            r#"mcp_prometheus_guardrail_decisions_total{{rule="{rule}",action="refuse"}} 1"#
        );
        assert!(h.metrics().contains(&metric), "{}", h.metrics());
    }
}

#[tokio::test]
async fn warn_sends_every_rule_and_records_the_decision() {
    for (rule, request, fix) in cases() {
        let h = harness(GuardrailMode::Warn, |_| {});
        let response = h.send(request, Upstream::Series(0)).await.expect("sent");
        let decisions = decisions(&response);
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        assert_eq!(
            (decisions[0].rule, decisions[0].action),
            (rule, GuardrailAction::Warn)
        );
        assert!(decisions[0].detail.contains(fix), "{}", decisions[0].detail);
        assert_eq!(
            h.seen().len(),
            1,
            "{rule}: sent once, no pre-check: {:?}",
            h.seen()
        );
        let metric =
            format!(r#"mcp_prometheus_guardrail_decisions_total{{rule="{rule}",action="warn"}} 1"#);
        assert!(h.metrics().contains(&metric), "{}", h.metrics());
    }
}

#[tokio::test]
async fn disabled_rules_and_good_queries_pass_untouched() {
    let h = harness(GuardrailMode::Enforce, |c| {
        c.disabled_rules = vec![GuardrailRule::MaxRange]
    });
    let response = h
        .send(
            get("/api/v1/query", &[("query", r#"rate(x{job="a"}[90d])"#)]),
            Upstream::Series(0),
        )
        .await;
    assert!(decisions(&response.expect("sent")).is_empty());
    for query in [
        r#"sum by (job) (rate(x{job="a"}[5m]))"#,
        "vector(1)",
        r#"max_over_time(x{job="a"}[1h:1m])"#,
    ] {
        let response = h
            .send(
                get("/api/v1/query", &[("query", query)]),
                Upstream::Series(0),
            )
            .await;
        assert!(decisions(&response.expect("sent")).is_empty(), "{query}");
    }
    let response = h
        .send(get("/api/v1/targets", &[]), Upstream::Series(0))
        .await;
    assert!(decisions(&response.expect("sent")).is_empty());
    assert_eq!(
        h.seen().len(),
        5,
        "no pre-check for narrowed selectors: {:?}",
        h.seen()
    );
}

mod config;
mod precheck;

#[test]
fn review_cases_first_value_unreadable_and_too_many_selectors() {
    use crate::outbound::guardrails::request::read;
    // Prometheus reads the first start (a POST form's before the URL's).
    let mut req =
        http::Request::post("http://p/api/v1/query_range?start=1700000000&end=1700003600&step=60")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"query=up&start=0",
            )))
            .expect("request");
    let query = read(&mut req).expect("a query");
    assert_eq!(
        query.window.map(|w| w.as_secs()),
        Some(1_700_003_600),
        "the form's start=0 is what Prometheus reads"
    );
    // What does not parse is not passed as if absent.
    let mut req = http::Request::get("http://p/api/v1/query?query=sum(up")
        .body(http_body_util::Full::default())
        .expect("request");
    let query = read(&mut req).expect("judged");
    assert!(
        query.exprs.is_empty() && query.unreadable.len() == 1,
        "{:?}",
        query.unreadable
    );
    let mut req =
        http::Request::get("http://p/api/v1/query_range?query=up&start=0x0p0&end=10&step=1")
            .body(http_body_util::Full::default())
            .expect("request");
    let query = read(&mut req).expect("judged");
    assert!(
        query.unreadable.iter().any(|u| u.starts_with("start")),
        "{:?}",
        query.unreadable
    );
}
