//! The summary of a range query: per series its statistics, the series
//! that stand out marked, and a compact table for the model.

use std::collections::BTreeMap;

use serde::Serialize;

use super::number::{short, short_or_dash};
use super::samples::RangeSeries;
use super::stats::SeriesStats;

/// How many series each mark goes to at most.
const MARKED_PER_KIND: usize = 3;

/// One summarized series.
#[derive(Debug, Serialize)]
pub struct SeriesSummary {
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub stats: SeriesStats,
    /// Native histogram samples (not summarized).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histograms: Option<usize>,
    /// Why the series stands out: `highest_mean`, `lowest_mean`,
    /// `largest_increase`, `largest_decrease`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<&'static str>,
}

/// Summarizes every series and marks those that stand out.
pub fn summarize(series: Vec<RangeSeries>) -> Vec<SeriesSummary> {
    let mut summaries: Vec<SeriesSummary> = series
        .into_iter()
        .map(|s| SeriesSummary {
            stats: s.values.0,
            labels: s.metric,
            histograms: s.histograms.map(|c| c.0),
            marks: Vec::new(),
        })
        .collect();
    mark(
        &mut summaries,
        |s| s.stats.mean,
        ("highest_mean", "lowest_mean"),
        false,
    );
    mark(
        &mut summaries,
        |s| s.stats.delta,
        ("largest_increase", "largest_decrease"),
        true,
    );
    summaries
}

/// Marks the top and bottom series by `key`: at most a third of them each
/// way (so that top and bottom never meet), none when all are equal; with
/// `signed`, only a positive value is a top and a negative one a bottom (a
/// flat series is no "largest decrease").
fn mark(
    summaries: &mut [SeriesSummary],
    key: impl Fn(&SeriesSummary) -> Option<f64>,
    (top, bottom): (&'static str, &'static str),
    signed: bool,
) {
    let mut ranked: Vec<(usize, f64)> = summaries
        .iter()
        .enumerate()
        .filter_map(|(i, s)| key(s).map(|k| (i, k)))
        .collect();
    let per_side = (ranked.len() / 3).clamp(1, MARKED_PER_KIND);
    if ranked.len() < 2 {
        return;
    }
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (Some(highest), Some(lowest)) = (ranked.first(), ranked.last()) else {
        return;
    };
    if highest.1 == lowest.1 {
        return;
    }
    let (high, low) = (highest.1, lowest.1);
    for &(i, value) in ranked.iter().take(per_side) {
        if value > low && (!signed || value > 0.0) {
            summaries[i].marks.push(top);
        }
    }
    for &(i, value) in ranked.iter().rev().take(per_side) {
        if value < high && (!signed || value < 0.0) {
            summaries[i].marks.push(bottom);
        }
    }
}

/// A markdown table of the summaries, one row per series.
#[cfg(test)]
pub fn table(
    summaries: &[SeriesSummary],
    name: impl Fn(&BTreeMap<String, String>) -> String,
) -> String {
    let mut text = String::new();
    write_table(&mut text, summaries, name);
    text
}

/// Appends a markdown table of the summaries to `text`, one row per series.
pub fn write_table(
    text: &mut String,
    summaries: &[SeriesSummary],
    name: impl Fn(&BTreeMap<String, String>) -> String,
) {
    use std::fmt::Write as _;
    text.reserve(128 + 120 * summaries.len());
    text.push_str(
        "| series | points | min | max | mean | last | p95 | delta | trend/h | notes |\n|---|---|---|---|---|---|---|---|---|---|",
    );
    for s in summaries {
        let stats = &s.stats;
        text.push_str("\n| ");
        text.push_str(&name(&s.labels));
        let _ = write!(text, " | {}", stats.points);
        for value in [
            stats.min,
            stats.max,
            stats.mean,
            stats.last,
            stats.p95,
            stats.delta,
            stats.trend_per_hour,
        ] {
            text.push_str(" | ");
            text.push_str(&short_or_dash(value));
        }
        text.push_str(" | ");
        let mut notes = s
            .marks
            .iter()
            .map(|m| m.replace('_', " "))
            .collect::<Vec<_>>();
        if stats.nan > 0 {
            notes.push(format!("{} NaN", stats.nan));
        }
        if stats.inf > 0 {
            notes.push(format!("{} Inf", stats.inf));
        }
        if let Some(histograms) = s.histograms {
            notes.push(format!("{histograms} native histogram samples"));
        }
        text.push_str(&notes.join(", "));
        text.push_str(" |");
    }
}

/// `short` for the step of a window.
pub fn step_text(step: f64) -> String {
    format!("{}s", short(step))
}

#[cfg(test)]
mod tests {
    use super::super::samples::{RangeSeries, SampleStats};
    use super::*;

    fn series(job: &str, values: &[f64]) -> RangeSeries {
        RangeSeries {
            metric: BTreeMap::from([("job".to_owned(), job.to_owned())]),
            values: SampleStats(SeriesStats::of(
                &values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (15.0 * i as f64, *v))
                    .collect::<Vec<_>>(),
            )),
            histograms: None,
        }
    }

    fn marks_of(summaries: &[SeriesSummary], job: &str) -> Vec<&'static str> {
        summaries
            .iter()
            .find(|s| s.labels["job"] == job)
            .map(|s| s.marks.clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_series_that_stand_out_are_marked() {
        let summaries = summarize(vec![
            series("flat", &[5.0, 5.0, 5.0]),
            series("high", &[100.0, 100.0, 100.0]),
            series("rising", &[0.0, 10.0, 20.0]),
            series("falling", &[9.0, 5.0, 1.0]),
            series("low", &[0.0, 0.0, 0.0]),
            series("mid", &[7.0, 7.0, 7.0]),
        ]);
        // Six series: two marked each way, and only a real rise or fall.
        assert_eq!(marks_of(&summaries, "high"), vec!["highest_mean"]);
        assert_eq!(
            marks_of(&summaries, "rising"),
            vec!["highest_mean", "largest_increase"]
        );
        assert_eq!(marks_of(&summaries, "low"), vec!["lowest_mean"]);
        assert!(marks_of(&summaries, "falling").contains(&"largest_decrease"));
        assert!(marks_of(&summaries, "mid").is_empty());
        let decreases = summaries
            .iter()
            .filter(|s| s.marks.contains(&"largest_decrease"))
            .count();
        assert_eq!(decreases, 1, "flat series are not decreases");
        let table = table(&summaries, |l| l["job"].clone());
        assert!(
            table.contains("| high | 3 | 100 | 100 | 100 | 100 | 100 | 0 | 0 | highest mean |"),
            "{table}"
        );
    }

    #[test]
    fn equal_series_and_single_series_get_no_marks() {
        let same = summarize(vec![series("a", &[1.0]), series("b", &[1.0])]);
        assert!(same.iter().all(|s| s.marks.is_empty()));
        let one = summarize(vec![series("a", &[1.0, 2.0])]);
        assert!(one[0].marks.is_empty());
    }

    #[test]
    fn two_series_split_top_and_bottom() {
        let two = summarize(vec![series("a", &[1.0, 3.0]), series("b", &[5.0, 5.0])]);
        assert_eq!(marks_of(&two, "b"), vec!["highest_mean"]);
        assert_eq!(marks_of(&two, "a"), vec!["lowest_mean", "largest_increase"]);
    }
}
