//! The series pre-check: counted through the inner service, cached per
//! tenant set, and never blocking when it fails.

use super::*;

#[tokio::test]
async fn a_bare_metric_is_counted_through_the_inner_service_and_cached() {
    let h = harness(GuardrailMode::Enforce, |_| {});
    let query = [("query", "sum(rate(http_requests_total[5m] offset 1h))")];
    let error = h
        .send(post("/api/v1/query", &query), Upstream::Series(250))
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("max_series_per_selector") && text.contains("250 series"),
        "{text}"
    );
    let seen = h.seen();
    assert_eq!(seen.len(), 1, "only the pre-check was sent: {seen:?}");
    assert!(
        seen[0].0.starts_with(
            "http://mimir:8080/prometheus/api/v1/query?query=count%28http_requests_total%29"
        ),
        "{seen:?}"
    );
    // The second call is judged from the cache: no pre-check, no request.
    h.send(get("/api/v1/query", &query), Upstream::Series(250))
        .await
        .expect_err("refused again");
    assert_eq!(h.seen().len(), 1, "{:?}", h.seen());
    assert_eq!(h.layer.shared.cache.len(), 1);
    // A small metric passes, counted once and then from the cache.
    let small = [("query", "up")];
    for _ in 0..2 {
        let response = h
            .send(get("/api/v1/query", &small), Upstream::Series(3))
            .await
            .expect("sent");
        assert!(decisions(&response).is_empty());
    }
    assert_eq!(
        h.seen().len(),
        4,
        "one pre-check and two queries: {:?}",
        h.seen()
    );
}

#[tokio::test]
async fn counts_are_kept_per_tenant_set() {
    let h = harness(GuardrailMode::Warn, |_| {});
    for tenants in [["a"], ["b"], ["a"]] {
        let mut request = get("/api/v1/query", &[("query", "up")]);
        request.extensions_mut().insert(TenantSet::new(tenants));
        h.send(request, Upstream::Series(1)).await.expect("sent");
    }
    let prechecks = h
        .seen()
        .iter()
        .filter(|(uri, _)| uri.contains("count%28"))
        .count();
    assert_eq!(prechecks, 2, "{:?}", h.seen());
}

#[tokio::test(start_paused = true)]
async fn a_failed_or_slow_precheck_warns_and_never_blocks() {
    for upstream in [Upstream::Fails, Upstream::Hangs] {
        let h = harness(GuardrailMode::Enforce, |_| {});
        let response = h
            .send(get("/api/v1/query", &[("query", "up")]), upstream)
            .await
            .expect("sent anyway");
        let decisions = decisions(&response);
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        assert_eq!(decisions[0].action, GuardrailAction::PrecheckFailed);
        assert!(
            decisions[0].detail.contains("sent unchecked"),
            "{}",
            decisions[0].detail
        );
        assert_eq!(
            h.seen()
                .iter()
                .filter(|(uri, _)| !uri.contains("count%28"))
                .count(),
            1
        );
        assert!(
            h.metrics()
                .contains(r#"rule="max_series_per_selector",action="precheck_failed"} 1"#)
        );
    }
}

#[tokio::test]
async fn the_tools_parse_is_used_when_it_is_the_query_sent() {
    let h = harness(GuardrailMode::Enforce, |_| {});
    let mut request = get("/api/v1/query", &[("query", r#"rate(x{job="a"}[5m])"#)]);
    // A parse of another text is ignored (the text sent is what counts).
    request
        .extensions_mut()
        .insert(ParsedQuery::parse(r#"rate(x{job="a"}[90d])"#).expect("valid"));
    h.send(request, Upstream::Series(0))
        .await
        .expect("the query sent is fine");
    let mut request = get("/api/v1/query", &[("query", r#"rate(x{job="a"}[90d])"#)]);
    request
        .extensions_mut()
        .insert(ParsedQuery::parse(r#"rate(x{job="a"}[90d])"#).expect("valid"));
    h.send(request, Upstream::Series(0))
        .await
        .expect_err("refused");
}

#[tokio::test]
async fn an_enforced_query_already_broken_is_refused_without_a_precheck() {
    let h = harness(GuardrailMode::Enforce, |_| {});
    let query = [("query", "rate(http_requests_total[90d])")];
    let error = h
        .send(get("/api/v1/query", &query), Upstream::Series(250))
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("max_range"), "{error}");
    assert!(h.seen().is_empty(), "{:?}", h.seen());
}
