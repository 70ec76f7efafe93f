//! Arbitrary text as a caller's PromQL: parsing never panics or recurses
//! without bound, and whatever the label tenancy rewrite agrees to send
//! parses back with the tenant matcher in every selector.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::outbound::tenant_label::rewrite::TenantMatcher;
use mcp_prometheus_layers::promql::{parse, selectors};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse(query);
    let Ok(matcher) = TenantMatcher::new("tenant", &TenantSet::new(["a", "b.c"])) else {
        return;
    };
    let Ok(sent) = matcher.rewrite_query(query, None) else {
        return;
    };
    let expr = parse(&sent).expect("what is sent parses");
    for (selector, _) in selectors(&expr) {
        assert!(matcher.scopes(selector), "unscoped selector in {sent:?}");
    }
});
