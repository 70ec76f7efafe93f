//! Who is calling and which tenants they may read: the request extensions
//! that flow from the inbound layers to the tools and the outbound layers.

use std::sync::Arc;

/// An authenticated caller, inserted by the authn layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// Groups (or roles) from the configured claim, sorted and deduplicated.
    pub groups: Vec<String>,
    /// OAuth scopes from `scope` (space-separated) or `scp`.
    pub scopes: Vec<String>,
    /// The token's `iss`.
    pub issuer: String,
    /// The OAuth client the token was issued to (`client_id`, `azp`), if any.
    pub client: Option<String>,
    /// The token's audiences.
    pub audiences: Vec<String>,
    /// The login the token belongs to (`sid`), which its issuer may revoke.
    pub session: Option<String>,
}

/// The tenants a request may read, inserted by the tenancy layer and, in
/// narrowed form, by a tool on its upstream request. Sorted, deduplicated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantSet(Arc<[String]>);

impl TenantSet {
    /// A set from any list of tenant IDs (sorted and deduplicated here).
    pub fn new(tenants: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut list: Vec<String> = tenants.into_iter().map(Into::into).collect();
        list.sort();
        list.dedup();
        Self(list.into())
    }

    /// The tenants, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tenant` is one of them.
    pub fn contains(&self, tenant: &str) -> bool {
        self.0.binary_search_by(|t| t.as_str().cmp(tenant)).is_ok()
    }

    /// The `X-Scope-OrgID` value: the tenants joined with `|`.
    pub fn header_value(&self) -> String {
        self.0.join("|")
    }
}

/// Marks a request on which tenancy is enforced, so the outbound tenant
/// layer can fail closed when a request carries no [`TenantSet`].
#[derive(Clone, Copy, Debug)]
pub struct TenancyEnforced;

/// Marks a request whose tenants the caller chose with `org_id` while
/// tenancy is off: the tenant layer sends them only to an upstream that
/// allows it (`allow_org_id_override`), never over a fixed `org_id`.
#[derive(Clone, Copy, Debug)]
pub struct CallerChosenTenants;

/// Marks an upstream readiness probe: it reads no tenant data and acts for
/// no caller, so the tenant layer lets it through without a [`TenantSet`]
/// and a forwarding upstream auth layer sends it without a credential.
/// Only our own code sets request extensions; callers cannot.
#[derive(Clone, Copy, Debug)]
pub struct Probe;

/// The TCP peer of the connection a request came on (inserted by the
/// listener): what per-address limits count against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The header whose token authn verified on this request (set by authn
/// only): a `forward` upstream passes on only that one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCredential(pub http::HeaderName);

/// The inbound request's headers, attached to upstream requests so the
/// upstream auth layer's `forward` mode can pass the caller's credential on.
/// Only the header the operator named is ever copied out of it.
#[derive(Clone, Debug, Default)]
pub struct InboundHeaders {
    pub headers: Arc<http::HeaderMap>,
    /// The header authn verified the caller's token in, if it did.
    pub verified: Option<http::HeaderName>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_sets_are_sorted_and_unique() {
        let set = TenantSet::new(["b", "a", "b"]);
        assert_eq!(set.as_slice(), ["a", "b"]);
        assert!(set.contains("a") && !set.contains("c"));
        assert_eq!(set.header_value(), "a|b");
    }
}
