//! One call to a Prometheus API endpoint, as the tools describe it.

use mcp_prometheus_layers::promql::ParsedQuery;

/// A call to a Prometheus API endpoint.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// Low-cardinality name for metrics, e.g. `/api/v1/label/:name/values`.
    pub endpoint: &'static str,
    /// Path under the upstream's base URL, already percent-encoded.
    pub path: String,
    pub params: Vec<(&'static str, String)>,
    /// POST sends the parameters as a form (no URL length limit); the
    /// query, series and labels endpoints accept it.
    pub post: bool,
    /// The `query` parameter as the tool parsed it, for the outbound
    /// layers that inspect or rewrite it.
    pub parsed: Option<ParsedQuery>,
}

impl ApiCall {
    /// A GET of `path` with no parameters.
    pub fn get(path: &'static str) -> Self {
        Self::get_with(path, Vec::new())
    }

    /// A GET of `path` with query parameters.
    pub fn get_with(path: &'static str, params: Vec<(&'static str, String)>) -> Self {
        Self {
            endpoint: path,
            path: path.to_owned(),
            params,
            post: false,
            parsed: None,
        }
    }

    /// A POST of `path` with its parameters as a form.
    pub fn post(path: &'static str, params: Vec<(&'static str, String)>) -> Self {
        Self {
            endpoint: path,
            path: path.to_owned(),
            params,
            post: true,
            parsed: None,
        }
    }

    /// The same call, carrying its parsed `query`.
    pub fn with_parsed(self, parsed: ParsedQuery) -> Self {
        Self {
            parsed: Some(parsed),
            ..self
        }
    }
}
