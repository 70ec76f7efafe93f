//! What label tenancy does with each Prometheus API endpoint, decided by
//! the [`UpstreamEndpoint`](crate::endpoint::UpstreamEndpoint) the caller
//! set and checked against the request's path: an endpoint not listed here
//! is refused (fail closed), so a new tool or passthrough API cannot read
//! unscoped data by being forgotten.

/// How a request to one endpoint is scoped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoping {
    /// Its `query` parameters get the tenant matcher on every selector.
    Query,
    /// Its `match[]` series selectors get the matcher; one is added when
    /// there is none.
    Match,
    /// Its answer keeps only alerts of the caller's tenants.
    Alerts,
    /// Its answer keeps only rules of the caller's tenants.
    Rules,
    /// Reads no tenant data (build information, readiness).
    Harmless,
    /// Answers about the whole Prometheus, which no label can narrow:
    /// refused unless the operator lists `tool` in `label_unscoped_tools`.
    Unscoped { tool: &'static str },
}

/// The label-values path as the tools name it and as the passthrough does.
const LABEL_VALUES: [&str; 2] = ["/api/v1/label/:name/values", "/api/v1/label/{name}/values"];

/// Endpoints whose answers cannot be scoped by a label, each with the tool
/// that reads it: the only names `label_unscoped_tools` accepts.
pub const UNSCOPED: &[(&str, &str)] = &[
    ("/api/v1/metadata", "get_metric_metadata"),
    ("/api/v1/targets", "get_targets"),
    ("/api/v1/targets/metadata", "get_targets_metadata"),
    ("/api/v1/status/tsdb", "get_tsdb_stats"),
    ("/api/v1/status/config", "get_config"),
    ("/api/v1/status/flags", "get_flags"),
    ("/api/v1/status/runtimeinfo", "get_runtime_info"),
    ("/api/v1/alertmanagers", "get_alertmanagers"),
];

/// How `endpoint` is scoped, or `None` when it is not known here. `path`
/// is the request's URI path: it must end in the endpoint's path (after
/// the upstream's base path), so a request cannot name one endpoint and go
/// to another.
pub fn scoping(endpoint: &str, path: &str) -> Option<Scoping> {
    if LABEL_VALUES.contains(&endpoint) {
        return is_label_values_path(path).then_some(Scoping::Match);
    }
    if !path.ends_with(endpoint) {
        return None;
    }
    let scoping = match endpoint {
        "/api/v1/query" | "/api/v1/query_range" | "/api/v1/query_exemplars" => Scoping::Query,
        "/api/v1/series" | "/api/v1/labels" => Scoping::Match,
        "/api/v1/alerts" => Scoping::Alerts,
        "/api/v1/rules" => Scoping::Rules,
        "/api/v1/status/buildinfo" | "/-/ready" | "/ready" => Scoping::Harmless,
        _ => {
            let (_, tool) = UNSCOPED.iter().find(|(path, _)| *path == endpoint)?;
            Scoping::Unscoped { tool }
        }
    };
    Some(scoping)
}

/// `…/api/v1/label/<one segment>/values`.
fn is_label_values_path(path: &str) -> bool {
    path.strip_suffix("/values")
        .and_then(|rest| rest.rsplit_once("/api/v1/label/"))
        .is_some_and(|(_, name)| !name.is_empty() && !name.contains('/'))
}

/// The tools `label_unscoped_tools` may name.
pub fn unscoped_tools() -> impl Iterator<Item = &'static str> {
    UNSCOPED.iter().map(|(_, tool)| *tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_match_their_path() {
        assert_eq!(
            scoping("/api/v1/query", "/prometheus/api/v1/query"),
            Some(Scoping::Query)
        );
        assert_eq!(scoping("/api/v1/query", "/api/v1/targets"), None);
        assert_eq!(
            scoping("/api/v1/label/:name/values", "/api/v1/label/job/values"),
            Some(Scoping::Match)
        );
        assert_eq!(
            scoping(
                "/api/v1/label/{name}/values",
                "/x/api/v1/label/__name__/values"
            ),
            Some(Scoping::Match)
        );
        assert_eq!(
            scoping("/api/v1/label/:name/values", "/api/v1/label//values"),
            None
        );
        assert_eq!(
            scoping("/api/v1/label/:name/values", "/api/v1/targets"),
            None
        );
        assert_eq!(
            scoping("/api/v1/targets", "/api/v1/targets"),
            Some(Scoping::Unscoped {
                tool: "get_targets"
            })
        );
        assert_eq!(
            scoping("/api/v1/admin/tsdb/snapshot", "/api/v1/admin/tsdb/snapshot"),
            None
        );
        assert_eq!(scoping("/-/ready", "/-/ready"), Some(Scoping::Harmless));
    }
}
