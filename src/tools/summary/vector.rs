//! The summary of an instant vector over many series: how many, the top
//! and bottom values, and how the labels spread.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use super::number::short;
use super::samples::parse_value;
use crate::tools::render::series_name;

/// A vector with more series than this is summarized in the text.
pub const LIST_UP_TO: usize = 20;
/// Series shown at each end of the ranking.
const RANKED: usize = 5;
/// Most common values named per label.
const COMMON_VALUES: usize = 3;

/// The summary of a vector (structured content: `data.summary`).
#[derive(Debug, Serialize)]
pub struct VectorSummary {
    /// Series summarized (those returned).
    pub count: usize,
    /// Highest values first.
    pub top: Vec<Ranked>,
    /// Lowest values first.
    pub bottom: Vec<Ranked>,
    /// Per label name: how many distinct values, and the most common.
    pub labels: BTreeMap<String, LabelSpread>,
}

/// One series and its value.
#[derive(Debug, Serialize)]
pub struct Ranked {
    pub series: String,
    pub value: f64,
}

/// How one label's values spread over the series.
#[derive(Debug, Serialize)]
pub struct LabelSpread {
    pub distinct: usize,
    /// `[value, series]`, most common first.
    pub common: Vec<(String, usize)>,
}

/// Summarizes the series of a vector result (`[{metric, value}]`).
pub fn summarize(items: &[Value]) -> VectorSummary {
    let mut ranked: Vec<Ranked> = Vec::with_capacity(items.len());
    let mut spread: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    let empty = Map::new();
    for item in items {
        let labels = item
            .get("metric")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (name, value) in labels {
            if let Some(value) = value.as_str() {
                *spread.entry(name).or_default().entry(value).or_default() += 1;
            }
        }
        let value = item
            .get("value")
            .and_then(|v| v.get(1))
            .and_then(Value::as_str)
            .and_then(parse_value)
            .filter(|v| v.is_finite());
        if let Some(value) = value {
            ranked.push(Ranked {
                series: series_name(labels),
                value,
            });
        }
    }
    ranked.sort_by(|a, b| b.value.total_cmp(&a.value));
    let per_side = RANKED.min(ranked.len() / 2);
    let bottom: Vec<Ranked> = ranked
        .split_off(ranked.len() - per_side)
        .into_iter()
        .rev()
        .collect();
    ranked.truncate(per_side);
    let labels = spread
        .into_iter()
        .map(|(name, values)| {
            let distinct = values.len();
            let mut common: Vec<(String, usize)> =
                values.into_iter().map(|(v, n)| (v.to_owned(), n)).collect();
            common.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            common.truncate(COMMON_VALUES);
            (name.to_owned(), LabelSpread { distinct, common })
        })
        .collect();
    VectorSummary {
        count: items.len(),
        top: ranked,
        bottom,
        labels,
    }
}

impl VectorSummary {
    /// The lines a model reads after the header.
    pub fn text(&self) -> String {
        let list = |items: &[Ranked]| {
            items
                .iter()
                .map(|r| format!("{} {}", r.series, short(r.value)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut text = format!("top {}: {}", self.top.len(), list(&self.top));
        text.push_str(&format!(
            "\nbottom {}: {}",
            self.bottom.len(),
            list(&self.bottom)
        ));
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(name, spread)| {
                let common: Vec<String> = spread
                    .common
                    .iter()
                    .map(|(value, n)| format!("{value:?}×{n}"))
                    .collect();
                format!("{name} {} ({})", spread.distinct, common.join(", "))
            })
            .collect();
        text.push_str(&format!(
            "\nlabels (distinct values): {}",
            labels.join("; ")
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranks_and_spreads() {
        let items: Vec<Value> = (0..30)
            .map(|i| {
                json!({"metric": {"__name__": "x", "code": if i % 3 == 0 {"500"} else {"200"}, "i": i.to_string()},
                       "value": [1767366245, i.to_string()]})
            })
            .chain([json!({"metric": {"__name__": "x"}, "value": [1767366245, "NaN"]})])
            .collect();
        let summary = summarize(&items);
        assert_eq!(summary.count, 31);
        assert_eq!(summary.top.len(), 5);
        assert_eq!(summary.top[0].value, 29.0);
        assert_eq!(summary.bottom[0].value, 0.0);
        assert_eq!(summary.bottom[4].value, 4.0);
        assert_eq!(summary.labels["code"].distinct, 2);
        assert_eq!(summary.labels["code"].common[0], ("200".to_owned(), 20));
        assert_eq!(summary.labels["i"].distinct, 30);
        assert_eq!(summary.labels["i"].common.len(), 3);
        let text = summary.text();
        assert!(
            text.contains(r#"top 5: x{code="200", i="29"} 29"#),
            "{text}"
        );
        assert!(text.contains(r#"code 2 ("200"×20, "500"×10)"#), "{text}");
    }

    #[test]
    fn one_series_has_no_ranking() {
        let summary = summarize(&[json!({"metric": {}, "value": [1, "1"]})]);
        assert!(summary.top.is_empty() && summary.bottom.is_empty());
    }
}
