//! The metric catalog of an upstream as a paged resource:
//! `prometheus://upstreams/{name}/metrics?cursor=…`.
//!
//! `resources/read` has no pagination of its own (only the list methods
//! do), and clients read any URI they are given, so each page is its own
//! URI: the page names the next one (`next_uri`) and the template
//! declares `{?cursor}`. The cursor is the last name of the page before,
//! so a page stays right when names come and go in between.
//!
//! Names come from `/api/v1/label/__name__/values` and type, help and
//! unit from `/api/v1/metadata`, both through the tools' [`Target`]: the
//! caller's tenants, the guardrails, the upstream's credential, timeout
//! and truncation apply exactly as to `list_metrics`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_prometheus_layers::inbound::ratelimit::CHARGED_RESOURCE_PREFIX;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use super::resources::catalog_uri;
use crate::tools::{Target, ToolError};
use crate::upstream::ApiCall;

/// Names on one page.
pub const PAGE_SIZE: usize = 500;
/// The longest catalog URI read (a name and a cursor fit well within).
const MAX_URI_BYTES: usize = 1024;

/// One catalog page asked for: the upstream and where the page starts.
#[derive(Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub upstream: String,
    /// The last name of the page before (none: the first page).
    pub after: Option<String>,
}

/// A catalog URI that cannot be read; says what to send instead.
#[derive(Debug, PartialEq, Eq)]
pub struct BadCatalogUri(pub String);

/// The page `uri` asks for; `Ok(None)` when `uri` is not a catalog URI.
pub fn parse(uri: &str) -> Result<Option<PageRequest>, BadCatalogUri> {
    let Some(rest) = uri.strip_prefix(CHARGED_RESOURCE_PREFIX) else {
        return Ok(None);
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let Some(name) = path.strip_suffix("/metrics") else {
        return Ok(None);
    };
    if uri.len() > MAX_URI_BYTES {
        return Err(BadCatalogUri(format!(
            "the URI is {} bytes, more than the {MAX_URI_BYTES} a catalog URI may have; send prometheus://upstreams/<name>/metrics and the next_uri each page gives",
            uri.len()
        )));
    }
    let upstream = percent_decode_str(name)
        .decode_utf8()
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            BadCatalogUri(
                "the upstream name is empty or not UTF-8; send a name from prometheus://upstreams"
                    .into(),
            )
        })?
        .into_owned();
    let mut after = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "cursor" || after.is_some() {
            return Err(BadCatalogUri(format!(
                "unexpected query parameter {:?}; a catalog URI takes one `cursor`, the next_cursor of the page before",
                key.chars().take(32).collect::<String>()
            )));
        }
        after = Some(decode_cursor(&value, &upstream)?);
    }
    Ok(Some(PageRequest { upstream, after }))
}

fn decode_cursor(cursor: &str, upstream: &str) -> Result<String, BadCatalogUri> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            BadCatalogUri(format!(
                "cursor {:?} is not one this server gave; read {} for the first page and follow next_uri",
                cursor.chars().take(32).collect::<String>(),
                catalog_uri(upstream)
            ))
        })
}

/// The URI of the page after the one ending with `last`.
pub fn next_uri(upstream: &str, last: &str) -> (String, String) {
    let cursor = URL_SAFE_NO_PAD.encode(last);
    (format!("{}?cursor={cursor}", catalog_uri(upstream)), cursor)
}

/// One page of the catalog as the JSON a client reads. `names` at most
/// `cap` (the largest list a tool may return); `metadata`: the type, help
/// and unit per name when the caller may read them (`Err`: why not).
pub async fn page(
    target: Target,
    request: &PageRequest,
    cap: usize,
    metadata: Result<(), String>,
) -> Result<(Value, usize), ToolError> {
    let names_target = target.clone().with_budget(cap, false);
    let answer = names_target
        .api::<Value>(ApiCall {
            endpoint: "/api/v1/label/:name/values",
            path: "/api/v1/label/__name__/values".into(),
            params: Vec::new(),
            post: false,
            parsed: None,
        })
        .await?;
    let mut names: Vec<String> = answer
        .data
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    names.sort_unstable();
    names.dedup();
    // The truncate layer reports on every answer it read; only a cut one
    // is incomplete.
    let complete = !answer
        .notes
        .truncation
        .as_ref()
        .is_some_and(|t| t.truncated);
    let start = request
        .after
        .as_deref()
        .map_or(0, |after| names.partition_point(|n| n.as_str() <= after));
    let page: Vec<&String> = names.iter().skip(start).take(PAGE_SIZE).collect();
    let more = start + page.len() < names.len();
    let (described, metadata_note) = match metadata {
        Ok(()) => match describe(target.clone().with_budget(cap, false)).await {
            Ok(described) => (described, None),
            Err(error) => (
                Map::new(),
                Some(format!("type, help and unit left out: {error}")),
            ),
        },
        Err(why) => (Map::new(), Some(why)),
    };
    let metrics: Vec<Value> = page
        .iter()
        .map(|name| {
            let entry = described
                .get(name.as_str())
                .and_then(Value::as_array)
                .and_then(|entries| entries.first());
            let field = |key: &str| entry.and_then(|e| e.get(key)).cloned();
            let mut metric = Map::new();
            metric.insert("name".into(), json!(name));
            for key in ["type", "help", "unit"] {
                if let Some(value) =
                    field(key).filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                {
                    metric.insert(key.into(), value);
                }
            }
            Value::Object(metric)
        })
        .collect();
    let returned = metrics.len();
    let mut body = json!({
        "upstream": target.name(),
        "metrics": metrics,
        "returned": returned,
        "names_total": answer.notes.items_total(names.len()),
        "complete": complete,
    });
    if let (true, Some(last)) = (more, page.last()) {
        let (uri, cursor) = next_uri(&request.upstream, last);
        body["next_cursor"] = json!(cursor);
        body["next_uri"] = json!(uri);
    }
    if !complete {
        body["note"] = json!(format!(
            "the upstream has more than {cap} metric names; the catalog lists the first {cap}. Use list_metrics with matches to narrow"
        ));
    }
    if let Some(note) = metadata_note {
        body["metadata"] = json!(note);
    }
    Ok((body, returned))
}

/// Type, help and unit of every metric the upstream knows.
async fn describe(target: Target) -> Result<Map<String, Value>, ToolError> {
    Ok(target
        .api::<Map<String, Value>>(ApiCall::get("/api/v1/metadata"))
        .await?
        .data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_uris_round_trip_and_bad_ones_say_what_to_send() {
        assert_eq!(parse("prometheus://docs/promql-cheatsheet"), Ok(None));
        assert_eq!(parse("prometheus://upstreams"), Ok(None));
        assert_eq!(
            parse("prometheus://upstreams/b%2Fc/metrics"),
            Ok(Some(PageRequest {
                upstream: "b/c".into(),
                after: None
            }))
        );
        let (next, _) = next_uri("b/c", "go_gc_duration_seconds");
        assert_eq!(
            parse(&next),
            Ok(Some(PageRequest {
                upstream: "b/c".into(),
                after: Some("go_gc_duration_seconds".into())
            }))
        );
        let bad = parse("prometheus://upstreams/local/metrics?cursor=!!").expect_err("bad");
        assert!(
            bad.0.contains("read prometheus://upstreams/local/metrics"),
            "{}",
            bad.0
        );
        let bad = parse("prometheus://upstreams/local/metrics?page=2").expect_err("bad");
        assert!(bad.0.contains("takes one `cursor`"), "{}", bad.0);
        let long = format!("prometheus://upstreams/{}/metrics", "a".repeat(2000));
        assert!(parse(&long).expect_err("long").0.contains("1024"));
        assert!(parse("prometheus://upstreams//metrics").is_err());
    }
}
