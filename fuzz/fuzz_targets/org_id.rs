//! `org_id` narrowing: anything narrows to allowed, valid tenant IDs or is
//! refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::tenant_id;

fuzz_target!(|org_id: &str| {
    let scope = CallScope {
        tenants: Some(TenantSet::new(["a", "b"])),
        enforced: true,
        ..CallScope::default()
    };
    if let Ok(narrowed) = scope.narrow(Some(org_id)) {
        for tenant in narrowed.tenants.expect("narrowed").as_slice() {
            assert!(tenant == "a" || tenant == "b");
        }
    }
    if let Ok(chosen) = CallScope::default().narrow(Some(org_id)) {
        for tenant in chosen.tenants.expect("chosen").as_slice() {
            assert!(tenant_id::validate(tenant).is_ok());
        }
    }
});
