//! Legend entries that say only what tells the lines apart: labels whose
//! values are the same on every plotted series go to the summary once
//! (`job="api"`), not into every entry. Label text comes from the upstream:
//! control characters are replaced and every text is cut to a bound.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::tools::render::series_name;

/// The legend entry of each series, and the labels all of them share.
#[derive(Debug, PartialEq)]
pub struct Legend {
    pub entries: Vec<String>,
    /// `job="api", instance="a:9090"`, or "" when nothing is shared.
    pub common: String,
}

/// Entries from the labels that differ between `labels`; with a single
/// series (or identical label sets) each entry is the full series name.
pub fn legend(labels: &[&Map<String, Value>], max_chars: usize) -> Legend {
    let keys: BTreeSet<&str> = labels
        .iter()
        .flat_map(|l| l.keys().map(String::as_str))
        .collect();
    let (differing, shared): (Vec<&str>, Vec<&str>) = keys
        .into_iter()
        .partition(|key| labels.windows(2).any(|w| w[0].get(*key) != w[1].get(*key)));
    let common = labels.first().map_or_else(String::new, |first| {
        let shared: Map<String, Value> = shared
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), first.get(*k)?.clone())))
            .collect();
        cut(&braces(&series_name(&shared)), max_chars.saturating_mul(2))
    });
    let entries = labels
        .iter()
        .map(|l| {
            let name = if differing.is_empty() {
                series_name(l)
            } else {
                let picked: Map<String, Value> = differing
                    .iter()
                    .filter_map(|k| Some(((*k).to_owned(), l.get(*k)?.clone())))
                    .collect();
                series_name(&picked)
            };
            let name = if name.is_empty() || name == "{}" {
                "{}".to_owned()
            } else {
                name
            };
            cut(&name, max_chars)
        })
        .collect();
    Legend { entries, common }
}

/// `{a="1"}` → `a="1"` (the summary lists shared labels without braces).
fn braces(name: &str) -> String {
    match name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
        Some(inner) => inner.to_owned(),
        None => name.to_owned(),
    }
}

/// `text` on one line (control characters become spaces, runs of
/// whitespace one space), at most `max` characters with `…` at the cut.
pub fn cut(text: &str, max: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max * 4 + 4));
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && (space || count == 0) {
            continue;
        }
        space = c == ' ';
        if count == max {
            if clean.ends_with(' ') {
                clean.pop();
            }
            clean.push('…');
            return clean;
        }
        clean.push(c);
        count += 1;
    }
    clean.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn maps(values: &[Value]) -> Vec<&Map<String, Value>> {
        values.iter().filter_map(Value::as_object).collect()
    }

    #[test]
    fn only_differing_labels_are_shown() {
        let series = [
            json!({"__name__": "up", "job": "api", "instance": "a:1"}),
            json!({"__name__": "up", "job": "api", "instance": "b:1"}),
        ];
        let legend = legend(&maps(&series), 40);
        assert_eq!(
            legend.entries,
            [r#"{instance="a:1"}"#, r#"{instance="b:1"}"#]
        );
        assert_eq!(legend.common, r#"up{job="api"}"#);
    }

    #[test]
    fn a_label_missing_on_one_series_distinguishes_it() {
        let series = [json!({"job": "a", "mode": "x"}), json!({"job": "a"})];
        let legend = legend(&maps(&series), 40);
        assert_eq!(legend.entries, [r#"{mode="x"}"#, "{}"]);
        assert_eq!(legend.common, r#"job="a""#);
    }

    #[test]
    fn one_series_is_named_in_full() {
        let series = [json!({"__name__": "up", "job": "api"})];
        let legend = legend(&maps(&series), 40);
        assert_eq!(legend.entries, [r#"up{job="api"}"#]);
        let empty = [json!({})];
        assert_eq!(super::legend(&maps(&empty), 40).entries, ["{}"]);
    }

    #[test]
    fn hostile_label_values_are_cut_and_kept_on_one_line() {
        let long = "x".repeat(10_000);
        let series = [json!({"a": long}), json!({"a": "line\nbreak\u{7}bell"})];
        let legend = legend(&maps(&series), 30);
        assert_eq!(legend.entries[0].chars().count(), 31);
        assert!(legend.entries[0].ends_with('…'));
        assert_eq!(legend.entries[1], r#"{a="line\nbreak\u{7}bell"}"#);
    }

    #[test]
    fn cut_bounds_collapses_and_marks() {
        assert_eq!(cut("rate(x[5m])", 40), "rate(x[5m])");
        assert_eq!(
            cut("sum by (job)\n  (rate(x[5m]))", 40),
            "sum by (job) (rate(x[5m]))"
        );
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("ab cdef", 3), "ab…");
        assert_eq!(cut("\t\u{0}", 3), "");
        assert_eq!(cut("ééééé", 2), "éé…");
    }
}
