//! The read APIs the passthrough serves, and nothing else.
//!
//! An allow list, matched on the raw (still percent-encoded) path by exact
//! comparison: whatever is not one of these paths is refused before
//! anything is sent, so write and admin APIs (`/api/v1/write`,
//! `/api/v1/admin/tsdb/*`, `otlp`, `import`), endpoints the tools do not
//! offer either (`status/config`), and every spelling that could mean
//! something else once decoded or normalised (`..`, `%2F`, a trailing
//! slash) never reach an upstream. Each API maps to the MCP tool that
//! reads the same data, so a tool policy covers both ways in.

use http::Method;

/// One allowed Prometheus read API.
#[derive(Debug, PartialEq, Eq)]
pub struct Api {
    /// The path under the prefix and under the upstream's base URL;
    /// `{name}` stands for a label name.
    pub path: &'static str,
    /// The MCP tool that reads the same data (without `server.tool_prefix`).
    pub tool: &'static str,
    /// Whether Prometheus also takes it as a POST with a form body (the
    /// others answer GET only).
    pub post: bool,
}

impl Api {
    /// The methods this API answers, for a 405's `Allow`.
    pub fn allow(&self) -> &'static str {
        if self.post { "GET, POST" } else { "GET" }
    }

    /// Whether `method` is one this API answers.
    pub fn allows(&self, method: &Method) -> bool {
        *method == Method::GET || (self.post && *method == Method::POST)
    }
}

/// `/api/v1/label/{name}/values`: the one path with a parameter.
pub const LABEL_VALUES: &str = "/api/v1/label/{name}/values";

/// Every API the passthrough forwards; the label-values path's `{name}` is
/// checked by [`check_label_name`].
pub const APIS: &[Api] = &[
    api("/api/v1/query", "execute_query", true),
    api("/api/v1/query_range", "execute_range_query", true),
    api("/api/v1/series", "find_series", true),
    api("/api/v1/labels", "list_label_names", true),
    api(LABEL_VALUES, "list_label_values", false),
    api("/api/v1/metadata", "get_metric_metadata", false),
    api("/api/v1/query_exemplars", "query_exemplars", true),
    api("/api/v1/rules", "get_rules", false),
    api("/api/v1/alerts", "get_alerts", false),
    api("/api/v1/status/buildinfo", "get_build_info", false),
];

const fn api(path: &'static str, tool: &'static str, post: bool) -> Api {
    Api { path, tool, post }
}

/// Longest label name accepted in a label-values path.
const MAX_LABEL_NAME: usize = 1024;

/// An API request path, resolved: the API and the path to send upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub api: &'static Api,
    /// The path under the upstream's base URL (equal to the request's).
    pub upstream_path: String,
}

/// Why a path is refused (all answered 404).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("{0} is not served here")]
    NotServed(String),
    #[error(
        "label name {0:?} in {LABEL_VALUES}: give a Prometheus label name (letters, digits and _, not starting with a digit; a UTF-8 name in its U__ escaped form)"
    )]
    BadLabelName(String),
}

/// The API `path` (the raw request path after the prefix) names, or why it
/// names none.
pub fn resolve(path: &str) -> Result<Resolved, PathError> {
    if let Some(api) = APIS
        .iter()
        .find(|api| api.path != LABEL_VALUES && api.path == path)
    {
        return Ok(Resolved {
            api,
            upstream_path: path.to_owned(),
        });
    }
    let name = path
        .strip_prefix("/api/v1/label/")
        .and_then(|rest| rest.strip_suffix("/values"))
        .ok_or_else(|| PathError::NotServed(path.to_owned()))?;
    check_label_name(name)?;
    let api = APIS
        .iter()
        .find(|api| api.path == LABEL_VALUES)
        .ok_or_else(|| PathError::NotServed(path.to_owned()))?;
    // The name is letters, digits and `_` only: unreserved characters,
    // so it needs no percent-encoding upstream and cannot carry a `/`, a
    // `..` or an escape that an upstream would decode differently.
    Ok(Resolved {
        api,
        upstream_path: format!("/api/v1/label/{name}/values"),
    })
}

/// A label name as Prometheus's legacy rules allow (`[a-zA-Z_][a-zA-Z0-9_]*`),
/// which also covers the `U__` escaping of UTF-8 names; checked on the
/// raw path segment, so any `%`, `.` or `/` is refused.
pub fn check_label_name(name: &str) -> Result<(), PathError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok
        && name.len() <= MAX_LABEL_NAME
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(PathError::BadLabelName(name.chars().take(100).collect()))
    }
}

/// The MCP tool a request path (after the prefix) corresponds to: the name
/// a tool policy decides on. `None` for a path that is not served.
pub fn tool_for_path(path_after_prefix: &str) -> Option<&'static str> {
    resolve(path_after_prefix).ok().map(|r| r.api.tool)
}

/// The served paths, for a 404's message.
pub fn served_list() -> String {
    APIS.iter()
        .map(|api| api.path)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_api_maps_to_its_tool() {
        let cases = [
            ("/api/v1/query", "execute_query"),
            ("/api/v1/query_range", "execute_range_query"),
            ("/api/v1/series", "find_series"),
            ("/api/v1/labels", "list_label_names"),
            ("/api/v1/label/job/values", "list_label_values"),
            ("/api/v1/label/__name__/values", "list_label_values"),
            ("/api/v1/label/U__a_2e_b/values", "list_label_values"),
            ("/api/v1/metadata", "get_metric_metadata"),
            ("/api/v1/query_exemplars", "query_exemplars"),
            ("/api/v1/rules", "get_rules"),
            ("/api/v1/alerts", "get_alerts"),
            ("/api/v1/status/buildinfo", "get_build_info"),
        ];
        for (path, tool) in cases {
            assert_eq!(tool_for_path(path), Some(tool), "{path}");
        }
        for api in APIS {
            assert!(
                crate::tools::registry::TOOL_NAMES.contains(&api.tool),
                "{} is a tool",
                api.tool
            );
        }
    }

    #[test]
    fn label_tenancy_knows_every_served_api() {
        use mcp_prometheus_layers::outbound::tenant_label::{Scoping, scoping};
        for api in APIS {
            let path = api.path.replace("{name}", "job");
            match scoping(api.path, &format!("/prefix{path}")) {
                None => panic!("{} is unknown to label tenancy", api.path),
                Some(Scoping::Unscoped { tool }) => {
                    assert_eq!(tool, api.tool, "one opt-in covers both ways in");
                }
                Some(_) => {}
            }
        }
        for tool in mcp_prometheus_layers::outbound::tenant_label::unscoped_tools() {
            assert!(crate::tools::registry::TOOL_NAMES.contains(&tool), "{tool}");
        }
    }

    #[test]
    fn write_admin_and_unlisted_apis_are_not_served() {
        for path in [
            "",
            "/",
            "/api/v1",
            "/api/v1/",
            "/api/v1/write",
            "/api/v1/otlp/v1/metrics",
            "/api/v1/import/prometheus",
            "/api/v1/admin/tsdb/delete_series",
            "/api/v1/admin/tsdb/snapshot",
            "/api/v1/admin/tsdb/clean_tombstones",
            "/api/v1/status/config",
            "/api/v1/status/flags",
            "/api/v1/targets",
            "/api/v1/query/",
            "/api/v1/QUERY",
            "/api/v2/query",
            "/api/v1/query;x",
            "/api/v1/label/job/values/",
            "/-/quit",
            "/federate",
        ] {
            assert!(
                matches!(resolve(path), Err(PathError::NotServed(_))),
                "{path}"
            );
            assert_eq!(tool_for_path(path), None, "{path}");
        }
    }

    #[test]
    fn traversal_and_escapes_are_refused() {
        for path in [
            "/api/v1/../v1/query",
            "/api/v1/./query",
            "/api/v1//query",
            "/api/v1/quer%79",
            "/api/v1/query%2F",
            "/api/v1%2Fquery",
            "/api/v1/label/../values",
            "/api/v1/label/./values",
            "/api/v1/label//values",
            "/api/v1/label/%2E%2E/values",
            "/api/v1/label/a%2Fb/values",
            "/api/v1/label/a%2fb/values",
            "/api/v1/label/job/../../admin/tsdb/snapshot/values",
            "/api/v1/label/a/b/values",
            "/api/v1/label/a b/values",
            "/api/v1/label/1abc/values",
            "/api/v1/label/jöb/values",
            "/api/v1/label/a.b/values",
            "/api/v1/label/a\\b/values",
        ] {
            assert!(resolve(path).is_err(), "{path}");
        }
        let long = format!("/api/v1/label/{}/values", "a".repeat(MAX_LABEL_NAME + 1));
        assert!(matches!(resolve(&long), Err(PathError::BadLabelName(_))));
    }

    #[test]
    fn the_upstream_path_is_the_checked_path() {
        let resolved = resolve("/api/v1/label/job/values").expect("served");
        assert_eq!(resolved.upstream_path, "/api/v1/label/job/values");
        assert_eq!(resolved.api.path, LABEL_VALUES);
        let resolved = resolve("/api/v1/query_range").expect("served");
        assert_eq!(resolved.upstream_path, "/api/v1/query_range");
    }

    #[test]
    fn methods_follow_prometheus() {
        let query = resolve("/api/v1/query").expect("served").api;
        assert!(query.allows(&Method::GET) && query.allows(&Method::POST));
        assert_eq!(query.allow(), "GET, POST");
        let rules = resolve("/api/v1/rules").expect("served").api;
        assert!(rules.allows(&Method::GET) && !rules.allows(&Method::POST));
        assert_eq!(rules.allow(), "GET");
        for method in [
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
            Method::CONNECT,
        ] {
            assert!(!query.allows(&method), "{method}");
        }
        let series = resolve("/api/v1/series").expect("served").api;
        assert!(!series.allows(&Method::DELETE), "DELETE /series deletes");
    }

    proptest::proptest! {
        /// Whatever the path, a served one is exactly a listed path or a
        /// label-values path with a plain label name: never a `.`, `%` or
        /// extra `/` upstream.
        #[test]
        fn resolved_paths_are_listed_or_plain(path in "(/api/v1/)?[a-z_./%0-9A-F]{0,30}(/values)?") {
            if let Ok(resolved) = resolve(&path) {
                let upstream = &resolved.upstream_path;
                proptest::prop_assert!(!upstream.contains('%') && !upstream.contains(".."));
                proptest::prop_assert!(
                    APIS.iter().any(|api| api.path == upstream)
                        || check_label_name(
                            upstream
                                .trim_start_matches("/api/v1/label/")
                                .trim_end_matches("/values")
                        ).is_ok()
                );
            }
        }
    }
}
