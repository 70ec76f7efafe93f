//! The chart in words, one paragraph, for models that cannot see images
//! (and for the ones that can, to read exact figures).

use super::legend::cut;
use super::series::Series;
use super::units::{self, Unit};
use crate::tools::query::Window;
use crate::tools::render::count;

/// Longest query quoted in the summary.
const QUERY_CHARS: usize = 200;
/// Longest series name in the summary.
const NAME_CHARS: usize = 80;

/// What the paragraph tells.
pub struct Facts<'a> {
    pub query: &'a str,
    pub window: Window,
    /// Series the upstream had (a lower bound when `at_least`).
    pub total: usize,
    pub at_least: bool,
    pub series: &'a [Series],
    pub entries: &'a [String],
    pub common: &'a str,
    pub unit: Option<Unit>,
}

/// `Chart of up from … to … (UTC), step 15s: 3 series, all drawn. Shared
/// labels: job="api". Per series: {instance="a"} min 0, max 1, last 1; …`
pub fn paragraph(facts: &Facts<'_>) -> String {
    let window = facts.window;
    let drawn = facts.series.len();
    let mut text = format!(
        "Chart of `{}` from {} to {} (UTC), step {}s: ",
        cut(facts.query, QUERY_CHARS),
        time(window.start),
        time(window.end),
        units::short(window.step),
    );
    let at_least = if facts.at_least { "at least " } else { "" };
    let total = count(facts.total, "series", "series");
    if facts.total == 0 {
        text.push_str("no series; the image says \"no data\".");
        return text;
    }
    if drawn >= facts.total {
        text.push_str(&format!("{total}, all drawn."));
    } else {
        let more = facts.total - drawn;
        text.push_str(&format!(
            "{at_least}{total}, the first {drawn} drawn, {at_least}{more} more not drawn (aggregate with sum/avg by, or use topk to choose)."
        ));
    }
    if !facts.common.is_empty() {
        text.push_str(&format!(" Shared labels: {}.", facts.common));
    }
    if let Some(unit) = facts.unit {
        text.push_str(&format!(" Values in {}.", unit.name()));
    }
    text.push_str(" Per series:");
    let mut skipped = 0;
    for (i, (series, entry)) in facts.series.iter().zip(facts.entries).enumerate() {
        skipped += series.skipped;
        let separator = if i == 0 { " " } else { "; " };
        let figures = series.stats.map_or_else(
            || "no numeric samples".to_owned(),
            |s| {
                let f = |v| units::format(v, facts.unit);
                format!("min {}, max {}, last {}", f(s.min), f(s.max), f(s.last))
            },
        );
        text.push_str(&format!("{separator}{} {figures}", cut(entry, NAME_CHARS)));
    }
    text.push('.');
    if skipped > 0 {
        text.push_str(&format!(
            " {} not drawn (NaN, ±Inf, unparsable or outside the window).",
            count(skipped, "sample was", "samples were")
        ));
    }
    text
}

fn time(at: f64) -> String {
    crate::tools::render::timestamp(&serde_json::json!(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::chart::series::Stats;
    use crate::tools::chart::units::Kind;

    const WINDOW: Window = Window {
        start: 1_767_362_645.0,
        end: 1_767_366_245.0,
        step: 30.0,
    };

    fn series(stats: Option<Stats>, skipped: usize) -> Series {
        Series {
            stats,
            skipped,
            ..Series::default()
        }
    }

    #[test]
    fn says_the_window_the_counts_and_the_figures() {
        let list = [
            series(
                Some(Stats {
                    min: 0.0,
                    max: 2048.0,
                    last: 1024.0,
                }),
                0,
            ),
            series(None, 3),
        ];
        let entries = [
            r#"{instance="a"}"#.to_owned(),
            r#"{instance="b"}"#.to_owned(),
        ];
        let text = paragraph(&Facts {
            query: "process_resident_memory_bytes",
            window: WINDOW,
            total: 5,
            at_least: false,
            series: &list,
            entries: &entries,
            common: r#"job="api""#,
            unit: Some(Unit {
                kind: Kind::Bytes,
                per_second: false,
            }),
        });
        assert!(
            text.starts_with("Chart of `process_resident_memory_bytes` from 2026-01-02T14:04:05Z to 2026-01-02T15:04:05Z (UTC), step 30s: 5 series, the first 2 drawn, 3 more not drawn"),
            "{text}"
        );
        assert!(text.contains(r#"Shared labels: job="api"."#), "{text}");
        assert!(text.contains("Values in bytes."), "{text}");
        assert!(
            text.contains(
                r#"{instance="a"} min 0 B, max 2 KiB, last 1 KiB; {instance="b"} no numeric samples."#
            ),
            "{text}"
        );
        assert!(text.contains("3 samples were not drawn"), "{text}");
        assert!(!text.contains('\n'), "one paragraph: {text}");
    }

    #[test]
    fn empty_and_lower_bound_answers_say_so() {
        let facts = |total, at_least, series: &'static [Series]| {
            paragraph(&Facts {
                query: "up",
                window: WINDOW,
                total,
                at_least,
                series,
                entries: &[],
                common: "",
                unit: None,
            })
        };
        assert!(facts(0, false, &[]).ends_with("no series; the image says \"no data\"."));
        let text = facts(7, true, &[]);
        assert!(
            text.contains("at least 7 series, the first 0 drawn, at least 7 more"),
            "{text}"
        );
    }
}
