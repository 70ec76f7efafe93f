//! What one call carries from its inbound request to its upstream
//! requests: the caller's tenants (narrowed by `org_id`), the inbound
//! headers a forwarding upstream may need, the trace, and the truncation
//! budget. Made once per call from what the inbound layers decided, then
//! attached to each outbound request, where the outbound layers read it:
//! identity flows one way.

use std::sync::Arc;

use crate::identity::{
    CallerChosenTenants, InboundHeaders, TenancyEnforced, TenantSet, VerifiedCredential,
};
use crate::outbound::truncate::TruncateBudget;
use crate::tenant_id::{self, TenantIdError};
use crate::trace::TraceContext;

/// Why `org_id` cannot narrow a call's tenants; the text is the caller's
/// error message.
#[derive(Debug, thiserror::Error)]
pub enum NarrowError {
    #[error("org_id: {0}")]
    Invalid(#[from] TenantIdError),
    #[error("org_id: tenant {denied:?} is not allowed for you; allowed tenants: {allowed}")]
    NotAllowed { denied: String, allowed: String },
    #[error(
        "org_id: tenancy is enforced but this call has no tenants (no caller identity); the operator must list the tenants for this transport"
    )]
    NoTenants,
    #[error(
        "org_id: this call would ask {count} tenants one by one, more than max_tenants_per_request ({max}); narrow org_id to at most {max} tenants (a|b)"
    )]
    TooManyTenants { count: usize, max: usize },
}

/// Per-call request context; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CallScope {
    /// The tenants this call may read; `None` when tenancy is off.
    pub tenants: Option<TenantSet>,
    /// Tenancy is enforced on this call: without tenants it reads nothing.
    pub enforced: bool,
    /// `tenants` came from the caller's `org_id` with tenancy off.
    pub caller_chosen: bool,
    pub inbound: Option<InboundHeaders>,
    pub trace: Option<TraceContext>,
    pub budget: Option<TruncateBudget>,
}

impl CallScope {
    /// The scope of a call that arrived over HTTP (rmcp hands us the
    /// request's parts). Under tenancy the tenancy layer has put a
    /// [`TenantSet`] there; without one the call is refused later, in the
    /// outbound tenant layer (fail closed). The inbound headers are kept
    /// only when some upstream forwards a caller credential (`forward`).
    pub fn from_parts(parts: &http::request::Parts, keep_headers: bool) -> Self {
        let enforced = parts.extensions.get::<TenancyEnforced>().is_some();
        Self {
            tenants: parts
                .extensions
                .get::<TenantSet>()
                .cloned()
                .filter(|_| enforced),
            enforced,
            caller_chosen: false,
            inbound: keep_headers.then(|| InboundHeaders {
                headers: Arc::new(parts.headers.clone()),
                verified: parts
                    .extensions
                    .get::<VerifiedCredential>()
                    .map(|v| v.0.clone()),
            }),
            trace: parts.extensions.get::<TraceContext>().copied(),
            budget: None,
        }
    }

    /// The scope of a stdio call: the configured tenants; `enforced` when
    /// tenancy is on (then a call without tenants reads nothing).
    pub fn stdio(default_tenants: Option<TenantSet>, enforced: bool) -> Self {
        Self {
            tenants: default_tenants,
            enforced,
            ..Self::default()
        }
    }

    /// Narrows the tenants to `org_id` (`a|b`: split, trimmed,
    /// deduplicated; every one must be allowed). Without tenancy, `org_id`
    /// is the caller's choice, marked so: the outbound tenant layer sends it
    /// only to an upstream that allows that (`allow_org_id_override`).
    pub fn narrow(&self, org_id: Option<&str>) -> Result<Self, NarrowError> {
        let Some(org_id) = org_id else {
            return Ok(self.clone());
        };
        let requested: Vec<&str> = org_id.split('|').map(str::trim).collect();
        for id in &requested {
            tenant_id::validate(id)?;
        }
        match &self.tenants {
            None if self.enforced => return Err(NarrowError::NoTenants),
            Some(allowed) => {
                if let Some(denied) = requested.iter().find(|id| !allowed.contains(id)) {
                    return Err(NarrowError::NotAllowed {
                        denied: (*denied).to_owned(),
                        allowed: allowed.as_slice().join(", "),
                    });
                }
            }
            None => {}
        }
        Ok(Self {
            caller_chosen: self.tenants.is_none(),
            tenants: Some(TenantSet::new(requested)),
            ..self.clone()
        })
    }

    /// One scope per tenant, for endpoints that refuse several tenants at
    /// once (Mimir's ruler); a single scope when there is at most one. More
    /// than `max` tenants is refused, as it is for one request.
    pub fn per_tenant(&self, max: usize) -> Result<Vec<(Option<String>, Self)>, NarrowError> {
        let count = self.tenants.as_ref().map_or(0, |set| set.as_slice().len());
        if count > max {
            return Err(NarrowError::TooManyTenants { count, max });
        }
        Ok(match &self.tenants {
            Some(set) if set.as_slice().len() > 1 => set
                .as_slice()
                .iter()
                .map(|tenant| {
                    (
                        Some(tenant.clone()),
                        Self {
                            tenants: Some(TenantSet::new([tenant.clone()])),
                            ..self.clone()
                        },
                    )
                })
                .collect(),
            Some(set) => vec![(set.as_slice().first().cloned(), self.clone())],
            None => vec![(None, self.clone())],
        })
    }

    /// Attaches this scope to an upstream request.
    pub fn apply<B>(&self, request: &mut http::Request<B>) {
        let extensions = request.extensions_mut();
        if let Some(tenants) = &self.tenants {
            extensions.insert(tenants.clone());
        }
        if self.caller_chosen {
            extensions.insert(CallerChosenTenants);
        }
        if let Some(inbound) = &self.inbound {
            extensions.insert(inbound.clone());
        }
        if let Some(trace) = self.trace {
            extensions.insert(trace);
        }
        if let Some(budget) = self.budget {
            extensions.insert(budget);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(tenants: &[&str]) -> CallScope {
        CallScope {
            tenants: Some(TenantSet::new(tenants.iter().copied())),
            ..CallScope::default()
        }
    }

    #[test]
    fn narrowing_normalizes_and_checks() {
        let bob = scope(&["tenant-b", "tenant-c"]);
        let narrowed = bob
            .narrow(Some(" tenant-c | tenant-b | tenant-c "))
            .expect("allowed");
        assert_eq!(
            narrowed.tenants.expect("set").header_value(),
            "tenant-b|tenant-c"
        );
        let err = bob
            .narrow(Some("tenant-b|tenant-a"))
            .expect_err("not allowed")
            .to_string();
        assert!(
            err.contains("\"tenant-a\"") && err.contains("tenant-b, tenant-c"),
            "{err}"
        );
        for bad in ["", "a\r\nb", "a b", "ténant", &"x".repeat(151), "tenant-b|"] {
            assert!(bob.narrow(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn without_tenancy_org_id_is_validated_and_marked_as_the_callers() {
        let open = CallScope::default();
        let chosen = open.narrow(Some("team-a")).expect("valid");
        assert!(chosen.caller_chosen);
        assert_eq!(chosen.tenants.expect("set").header_value(), "team-a");
        assert!(open.narrow(Some("a\nb")).is_err());
        assert!(open.narrow(None).expect("nothing").tenants.is_none());
        assert!(
            !scope(&["a"])
                .narrow(Some("a"))
                .expect("allowed")
                .caller_chosen
        );
    }

    #[test]
    fn enforced_without_tenants_fails_closed() {
        let stdio = CallScope::stdio(None, true);
        let err = stdio.narrow(Some("any-tenant")).expect_err("no identity");
        assert!(matches!(err, NarrowError::NoTenants), "{err}");
    }

    #[test]
    fn fan_out_splits_several_tenants() {
        let parts = scope(&["a", "b"]).per_tenant(16).expect("within the limit");
        let tenants: Vec<_> = parts
            .iter()
            .map(|(t, _)| t.clone().expect("named"))
            .collect();
        assert_eq!(tenants, ["a", "b"]);
        assert_eq!(scope(&["a"]).per_tenant(16).expect("one").len(), 1);
        let err = scope(&["a", "b", "c"]).per_tenant(2).expect_err("too many");
        assert!(
            matches!(err, NarrowError::TooManyTenants { count: 3, max: 2 }),
            "{err}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(1000))]

        /// Any `org_id` narrows to valid tenant IDs within the allowed
        /// ones, or is refused; never a panic, never an ID that could
        /// smuggle a header or a second tenant.
        #[test]
        fn any_org_id_narrows_safely_or_is_refused(org_id in "\\PC{0,60}|[a-c|]{0,9}") {
            let bob = scope(&["a", "b"]);
            if let Ok(narrowed) = bob.narrow(Some(&org_id)) {
                let tenants = narrowed.tenants.expect("narrowed");
                proptest::prop_assert!(!tenants.is_empty());
                for tenant in tenants.as_slice() {
                    proptest::prop_assert!(["a", "b"].contains(&tenant.as_str()));
                }
            }
            if let Ok(open) = CallScope::default().narrow(Some(&org_id)) {
                for tenant in open.tenants.expect("chosen").as_slice() {
                    proptest::prop_assert!(tenant_id::validate(tenant).is_ok());
                    proptest::prop_assert!(!tenant.contains(['|', '\r', '\n']));
                }
            }
        }
    }
}
