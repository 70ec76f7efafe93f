//! Why a query returned nothing, when we can tell: the metric does not
//! exist (with the nearest existing names, from a short-lived cached
//! metric list), a label value never occurs on it, or the time asked for
//! lies beyond the upstream's retention. Best effort: a lookup that fails
//! gives no hint, never an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_prometheus_layers::promql::{Expr, selectors};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use promql_parser::label::MatchOp;
use serde_json::Value;

use super::Target;
use crate::promtime::now_unix;
use crate::upstream::ApiCall;

/// How long a metric list is reused.
const NAMES_TTL: Duration = Duration::from_secs(60);
/// Metric lists kept (per upstream and tenant set).
const MAX_LISTS: usize = 64;
/// Selectors and matchers looked into per empty answer.
const MAX_SELECTORS: usize = 3;
const MAX_MATCHERS: usize = 2;
/// Names suggested for a missing metric.
const NEAREST: usize = 3;

/// A metric list and when it was read.
type Names = (Instant, Arc<Vec<String>>);

/// Metric names by upstream and tenant set, for a short while.
#[derive(Default)]
pub struct NameCache(Mutex<HashMap<String, Names>>);

impl NameCache {
    fn get(&self, key: &str) -> Option<Arc<Vec<String>>> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(at, _)| at.elapsed() < NAMES_TTL)
            .map(|(_, names)| names.clone())
    }

    fn put(&self, key: String, names: Arc<Vec<String>>) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= MAX_LISTS {
            map.retain(|_, (at, _)| at.elapsed() < NAMES_TTL);
            if map.len() >= MAX_LISTS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (Instant::now(), names));
    }
}

/// The hints for an empty answer to `expr` evaluated over `[start, end]`
/// (Unix seconds; an instant query has start = end).
pub async fn for_empty(
    cache: &NameCache,
    target: &Target,
    expr: &Expr,
    start: f64,
    end: f64,
) -> Vec<String> {
    let mut hints = Vec::new();
    for (selector, _) in selectors(expr).into_iter().take(MAX_SELECTORS) {
        let Some(metric) = &selector.name else {
            continue;
        };
        match exists(target, metric).await {
            Some(false) => {
                // The list may be cut to the answer budget: good enough for
                // suggestions, never for deciding existence.
                let near = metric_names(cache, target)
                    .await
                    .map(|names| nearest(metric, &names))
                    .unwrap_or_default();
                hints.push(if near.is_empty() {
                    format!("metric {metric} does not exist here; list_metrics lists the names")
                } else {
                    format!(
                        "metric {metric} does not exist here; did you mean {}?",
                        near.join(", ")
                    )
                });
                continue;
            }
            None => continue,
            Some(true) => {}
        }
        let equalities = selector.matchers.matchers.iter().filter(|m| {
            matches!(m.op, MatchOp::Equal) && m.name != "__name__" && !m.value.is_empty()
        });
        for matcher in equalities.take(MAX_MATCHERS) {
            if let Some(values) = label_values(target, &matcher.name, metric).await
                && !values.iter().any(|v| v == &matcher.value)
            {
                let shown: Vec<&str> = values.iter().take(5).map(String::as_str).collect();
                hints.push(format!(
                    "{metric} never has {}={:?} (it has {}{})",
                    matcher.name,
                    matcher.value,
                    shown.join(", "),
                    if values.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    if let Some(hint) = beyond_retention(target, start, end).await {
        hints.push(hint);
    }
    hints
}

/// Whether any series of `metric` exists (within the upstream's default
/// window), asked precisely: the names matching `{__name__="metric"}`.
async fn exists(target: &Target, metric: &str) -> Option<bool> {
    let escaped = metric.replace('\\', "\\\\").replace('"', "\\\"");
    let selector = format!("{{__name__=\"{escaped}\"}}");
    let answer = target
        .api::<Vec<String>>(values_call("__name__", vec![("match[]", selector)]))
        .await
        .ok()?;
    Some(!answer.data.is_empty())
}

async fn metric_names(cache: &NameCache, target: &Target) -> Option<Arc<Vec<String>>> {
    // A forwarding upstream answers each caller by its own credential:
    // its names are never shared between callers.
    let key = target
        .sharing_key()
        .map(|tenants| format!("{}\u{0}{tenants}", target.name()));
    if let Some(names) = key.as_deref().and_then(|key| cache.get(key)) {
        return Some(names);
    }
    let answer = target
        .api::<Vec<String>>(values_call("__name__", Vec::new()))
        .await
        .ok()?;
    let names = Arc::new(answer.data);
    if let Some(key) = key {
        cache.put(key, names.clone());
    }
    Some(names)
}

async fn label_values(target: &Target, label: &str, metric: &str) -> Option<Vec<String>> {
    let call = values_call(label, vec![("match[]", metric.to_owned())]);
    target.api::<Vec<String>>(call).await.ok().map(|a| a.data)
}

/// A label values request, named as the discovery tools name it.
fn values_call(label: &str, params: Vec<(&'static str, String)>) -> ApiCall {
    ApiCall {
        endpoint: "/api/v1/label/:name/values",
        path: format!(
            "/api/v1/label/{}/values",
            utf8_percent_encode(label, NON_ALPHANUMERIC)
        ),
        params,
        post: false,
        parsed: None,
    }
}

/// A hint when `start` lies beyond the upstream's retention (asked only
/// for times more than an hour ago).
async fn beyond_retention(target: &Target, start: f64, end: f64) -> Option<String> {
    let now = now_unix();
    if now - start < 3600.0 {
        return None;
    }
    let answer = target
        .api::<Value>(ApiCall::get("/api/v1/status/runtimeinfo"))
        .await
        .ok()?;
    let retention = answer.data.get("storageRetention")?.as_str()?;
    let seconds = retention_seconds(retention)?;
    (now - end > seconds).then(|| {
        format!("the time asked for is older than the upstream's retention ({retention}): ask for a more recent window")
    })
}

/// The time part of Prometheus's `storageRetention` ("15d", "15d or 10GiB").
fn retention_seconds(text: &str) -> Option<f64> {
    let first = text.split_whitespace().next()?;
    promql_parser::util::duration::parse_duration(first)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// Up to `NEAREST` names within a few edits of `metric`, closest first.
fn nearest(metric: &str, names: &[String]) -> Vec<String> {
    let budget = (metric.chars().count() / 3).clamp(2, 6);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .filter_map(|n| {
            let d = distance(metric, n, budget)?;
            Some((d, n))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(NEAREST)
        .map(|(_, n)| n.clone())
        .collect()
}

/// Levenshtein distance, or `None` once it is certainly above `max`.
fn distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        if current.iter().min().is_some_and(|m| *m > max) {
            return None;
        }
        previous = current;
    }
    previous.last().copied().filter(|d| *d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_by_edit_distance() {
        let names: Vec<String> = [
            "http_requests_total",
            "http_request_duration_seconds",
            "up",
            "node_load1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            nearest("http_request_total", &names),
            ["http_requests_total"]
        );
        assert!(nearest("completely_different", &names).is_empty());
        assert_eq!(distance("kitten", "sitting", 5), Some(3));
        assert_eq!(distance("a", "abcdefgh", 3), None);
    }

    #[test]
    fn retention_is_read_from_runtimeinfo() {
        assert_eq!(retention_seconds("15d"), Some(15.0 * 86400.0));
        assert_eq!(retention_seconds("15d or 10GiB"), Some(15.0 * 86400.0));
        assert_eq!(retention_seconds("10GiB"), None);
    }
}
