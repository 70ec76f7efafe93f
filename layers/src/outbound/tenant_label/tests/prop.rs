//! Property tests: for any tenant set and any of a corpus of queries, the
//! scoped query parses and every selector carries the tenant matcher, which
//! matches exactly the caller's tenants.

use proptest::prelude::*;

use crate::identity::TenantSet;
use crate::outbound::tenant_label::rewrite::TenantMatcher;
use crate::promql;

const QUERIES: &[&str] = &[
    "up",
    r#"{__name__=~".+"}"#,
    r#"demo{tenant!="a"} or vector(1)"#,
    r#"sum by (job) (rate(demo{tenant=~".*"}[5m] offset 1h)) / on (job) group_left count(other)"#,
    r#"label_replace(demo, "tenant", "b", "", "") and absent(x{tenant="b"})"#,
    "max_over_time((demo @ end())[1h:1m]) + topk(scalar(e), f)",
    r#"{a="1" or tenant="b"} * on () {c="2"}"#,
    r#"count_values("tenant", demo) unless ignoring (tenant) demo"#,
    r#"histogram_quantile(0.9, sum by (le) (rate(h_bucket{job="x\"y"}[5m])))"#,
];

/// Tenant IDs as Mimir allows them, regex metacharacters included.
fn tenant() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9!_.*'()-]{1,12}".prop_filter("reserved", |t| t != "." && t != "..")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_selector_carries_exactly_the_callers_tenants(
        tenants in prop::collection::btree_set(tenant(), 1..6),
        query in prop::sample::select(QUERIES),
        others in prop::collection::vec("[a-zA-Z0-9!_.*'()|-]{0,14}", 0..8),
    ) {
        let set = TenantSet::new(tenants.iter().cloned());
        let matcher = TenantMatcher::new("tenant", &set).expect("valid tenants");
        let sent = matcher.rewrite_query(query, None).expect("scoped");
        let parsed = promql::parse(&sent).expect("the sent query parses");
        let selectors = promql::selectors(&parsed);
        prop_assert!(!selectors.is_empty());
        for (vs, _) in selectors {
            prop_assert!(matcher.scopes(vs), "{sent}");
        }
        for t in &tenants {
            prop_assert!(matcher.matcher().is_match(t), "{t} in {sent}");
        }
        for other in others.iter().filter(|o| !tenants.contains(*o)) {
            prop_assert!(!matcher.matcher().is_match(other), "{other} matched {sent}");
        }
        let selector = matcher.rewrite_selector("demo").expect("scoped");
        prop_assert!(promql::parse(&selector).is_ok(), "{selector}");
    }
}
