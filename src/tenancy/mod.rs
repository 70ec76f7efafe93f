//! Tenant resolvers that need more than the layers crate knows: the
//! Kubernetes GrafanaOrganization resolver.

pub mod grafana_org;
