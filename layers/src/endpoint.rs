//! Request-extension types that name what an outbound request is for.

use std::sync::Arc;

/// Which configured upstream and which Prometheus API endpoint a request
/// targets. Set by the caller that builds the request; read by layers that
/// label metrics and errors, so they never have to parse URLs.
#[derive(Clone, Debug)]
pub struct UpstreamEndpoint {
    /// The operator's name for the upstream (`[[upstreams]] name`).
    pub upstream: Arc<str>,
    /// A low-cardinality endpoint label such as `/api/v1/query`.
    pub endpoint: &'static str,
}
