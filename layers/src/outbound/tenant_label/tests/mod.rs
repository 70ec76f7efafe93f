//! Tests of label tenancy: the rewrite table (attack shapes included),
//! requests through the layer (GET, POST form, `match[]`, refusals), the
//! alerts and rules filter, and property tests.

mod config;
mod filter;
mod layer;
mod prop;
mod rewrite;
mod support;

use super::rewrite::TenantMatcher;
use crate::identity::TenantSet;

/// The matcher for `tenants` on the label `tenant`.
fn matcher(tenants: &[&str]) -> TenantMatcher {
    TenantMatcher::new("tenant", &TenantSet::new(tenants.iter().copied())).expect("valid tenants")
}
