//! The server instructions a client shows its model at initialize,
//! generated from the tools this server serves (with their prefix) so they
//! never name a tool that is not there. Kept under 1 KiB: clients put them
//! in every conversation.

use crate::tools::registry::family;

/// The most bytes the instructions may take.
pub const MAX_INSTRUCTIONS_BYTES: usize = 1024;

/// Instructions naming the `enabled` tools (unprefixed) as `prefix` serves
/// them; a family none of whose tools is enabled is left out.
/// Arguments in `hidden` (left out of `tools/list` by the deployment) are
/// not mentioned.
pub fn instructions(prefix: &str, enabled: &[&str], hidden: &[&str]) -> String {
    let has = |tool: &str| enabled.contains(&tool);
    let name = |tool: &str| format!("{prefix}{tool}");
    let named = |tools: &[&str]| {
        tools
            .iter()
            .filter(|t| has(t))
            .map(|t| name(t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let in_family = |wanted: &str| {
        enabled
            .iter()
            .filter(|t| family(t) == wanted)
            .copied()
            .collect::<Vec<_>>()
    };
    let mut text = String::from("Read-only access to Prometheus-compatible metrics.");
    let discovery = named(&["list_metrics", "find_series", "get_metric_metadata"]);
    if !discovery.is_empty() {
        text.push_str(&format!(" Discover names and labels with {discovery}."));
    }
    let query = named(&[
        "execute_query",
        "execute_range_query",
        "render_range_query",
        "validate_query",
    ]);
    if !query.is_empty() {
        text.push_str(&format!(" Query with {query}."));
    }
    let alerting = in_family("alerting");
    if !alerting.is_empty() {
        text.push_str(&format!(" Alerts and rules: {}.", named(&alerting)));
    }
    let status = named(&["get_targets", "get_tsdb_stats", "check_ready"]);
    if !status.is_empty() {
        text.push_str(&format!(" Server state: {status}."));
    }
    if !enabled.is_empty() {
        let offered = |argument: &str| !hidden.contains(&argument);
        match (offered("upstream"), offered("org_id")) {
            (true, true) => text.push_str(
                " Tools take `upstream` (default: the first) and `org_id` (tenants a|b).",
            ),
            (true, false) => text.push_str(" Tools take `upstream` (default: the first)."),
            (false, true) => text.push_str(" Tools take `org_id` (tenants a|b)."),
            (false, false) => {}
        }
        text.push_str(
            " Results are cut to `limit` (`unlimited` lifts it where allowed); when `truncated` \
             is true, follow the hint to narrow the request. Times: RFC 3339, Unix seconds or \
             now-1h; durations 30s, 5m, 1h (`step`, `timeout`, `lookback_delta`). \
             Prompts and the resource prometheus://docs/promql-cheatsheet guide common tasks.",
        );
    } else {
        text.push_str(" No tools are enabled for you.");
    }
    if text.len() > MAX_INSTRUCTIONS_BYTES {
        // A long tool prefix: the names would not fit, tools/list has them.
        return "Read-only access to Prometheus-compatible metrics. tools/list names the tools: \
                discover names and labels first, then query. Results are cut to a limit; when \
                `truncated` is true, follow the hint to narrow the request."
            .into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::registry::TOOL_NAMES;

    #[test]
    fn every_tool_family_is_named_with_its_prefix_within_a_kib() {
        let text = instructions("mcp_prometheus_", TOOL_NAMES, &[]);
        assert!(text.len() < MAX_INSTRUCTIONS_BYTES, "{} bytes", text.len());
        for tool in [
            "mcp_prometheus_list_metrics",
            "mcp_prometheus_execute_query",
            "mcp_prometheus_get_alerts",
            "mcp_prometheus_get_rules",
            "mcp_prometheus_get_tsdb_stats",
        ] {
            assert!(text.contains(tool), "{tool} in {text}");
        }
    }

    #[test]
    fn absent_tools_and_families_are_not_named() {
        let text = instructions("", &["execute_query", "list_metrics"], &[]);
        assert!(text.contains("Query with execute_query."), "{text}");
        assert!(text.contains("with list_metrics."), "{text}");
        for absent in [
            "execute_range_query",
            "get_alerts",
            "Alerts",
            "Server state",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        assert!(instructions("", &[], &[]).contains("No tools are enabled"));
    }

    #[test]
    fn a_long_prefix_still_fits() {
        let prefix = "a_very_long_operator_chosen_prefix_for_every_tool_".repeat(2);
        let text = instructions(&prefix, TOOL_NAMES, &[]);
        assert!(text.len() <= MAX_INSTRUCTIONS_BYTES, "{} bytes", text.len());
        assert!(text.contains("tools/list names the tools"), "{text}");
    }

    #[test]
    fn hidden_arguments_are_not_mentioned() {
        let text = instructions("", TOOL_NAMES, &["upstream", "org_id"]);
        assert!(
            !text.contains("`upstream`") && !text.contains("`org_id`"),
            "{text}"
        );
        let text = instructions("", TOOL_NAMES, &["upstream"]);
        assert!(
            !text.contains("`upstream`") && text.contains("`org_id`"),
            "{text}"
        );
        assert!(text.contains("render_range_query"), "{text}");
    }
}
