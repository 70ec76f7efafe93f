//! A range query's matrix as lines to draw. Upstream answers are not
//! trusted: a sample that is not a finite number (NaN, ±Inf, a string that
//! does not parse) is a gap, timestamps may come in any order or outside
//! the window, and a series may carry more points than a picture can show.

use serde_json::{Map, Value};

use crate::tools::query::Window;

/// Points drawn per series at most; a longer series is thinned evenly (its
/// min, max and last still come from every point).
pub const MAX_DRAWN_POINTS: usize = 20_000;

/// Values are drawn within ±this, so that a span between two extreme
/// values stays a finite number.
const DRAW_LIMIT: f64 = 1e300;

/// One series of the answer, ready to draw and to summarize.
#[derive(Debug, Default)]
pub struct Series {
    /// Its labels, as sent.
    pub labels: Map<String, Value>,
    /// Unbroken runs of finite points, by time: a line breaks at a sample
    /// that is not a number and where a step is missing.
    pub segments: Vec<Vec<(f64, f64)>>,
    /// Smallest, largest and latest finite value, if there is one.
    pub stats: Option<Stats>,
    /// Samples left out: not a finite number, or outside the window.
    pub skipped: usize,
}

/// What the text summary says of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    /// The value at the latest time (not the last to arrive).
    pub last: f64,
}

impl Series {
    /// How many finite points the series has in the window.
    #[cfg(test)]
    pub fn points(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }
}

/// The series of a matrix `result` (anything else yields none).
pub fn parse_matrix(result: &Value, window: Window) -> Vec<Series> {
    result
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| parse_series(item, window))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_series(item: &Value, window: Window) -> Series {
    let labels = item
        .get("metric")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let raw = item
        .get("values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // A sample a little outside the window (rounding) still belongs to it.
    let slack = window.step.max(0.0) / 2.0;
    let mut samples: Vec<(f64, Option<f64>)> = Vec::with_capacity(raw.len());
    let mut skipped = 0;
    for point in raw {
        match sample(point) {
            Some((t, value)) if t >= window.start - slack && t <= window.end + slack => {
                if value.is_none() {
                    skipped += 1;
                }
                samples.push((t, value));
            }
            _ => skipped += 1,
        }
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    samples.dedup_by(|later, earlier| later.0 == earlier.0);
    let stats = stats(&samples);
    let (drawn, every) = thin(samples);
    Series {
        labels,
        segments: segments(&drawn, window.step * every as f64),
        stats,
        skipped,
    }
}

/// `[time, "value"]`: the time (a number, or a numeric string) and the
/// value if it is a finite number.
fn sample(point: &Value) -> Option<(f64, Option<f64>)> {
    let pair = point.as_array()?;
    let time = match pair.first()? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    if !time.is_finite() {
        return None;
    }
    let value = match pair.get(1) {
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    Some((time, value.filter(|v| v.is_finite())))
}

fn stats(samples: &[(f64, Option<f64>)]) -> Option<Stats> {
    let mut values = samples.iter().filter_map(|(_, v)| *v);
    let first = values.next()?;
    let mut stats = Stats {
        min: first,
        max: first,
        last: first,
    };
    for value in values {
        stats.min = stats.min.min(value);
        stats.max = stats.max.max(value);
        stats.last = value;
    }
    Some(stats)
}

/// Every k-th sample when there are more than [`MAX_DRAWN_POINTS`] (the
/// last one always kept), and k.
fn thin(samples: Vec<(f64, Option<f64>)>) -> (Vec<(f64, Option<f64>)>, usize) {
    if samples.len() <= MAX_DRAWN_POINTS {
        return (samples, 1);
    }
    let every = samples.len().div_ceil(MAX_DRAWN_POINTS);
    let last = samples.len() - 1;
    let kept = samples
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == last)
        .map(|(_, sample)| sample)
        .collect();
    (kept, every)
}

/// Splits at gaps: a value that is not a number, or more than 1.5 steps
/// without a sample (Prometheus leaves out the steps of an absent series).
fn segments(samples: &[(f64, Option<f64>)], step: f64) -> Vec<Vec<(f64, f64)>> {
    let max_gap = if step > 0.0 {
        step * 1.5
    } else {
        f64::INFINITY
    };
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for &(t, value) in samples {
        let Some(value) = value else {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        };
        if let Some(&(previous, _)) = current.last()
            && t - previous > max_gap
        {
            runs.push(std::mem::take(&mut current));
        }
        current.push((t, value.clamp(-DRAW_LIMIT, DRAW_LIMIT)));
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WINDOW: Window = Window {
        start: 1000.0,
        end: 1100.0,
        step: 10.0,
    };

    fn one(values: Value) -> Series {
        let result = json!([{"metric": {"job": "a"}, "values": values}]);
        let mut series = parse_matrix(&result, WINDOW);
        assert_eq!(series.len(), 1);
        series.remove(0)
    }

    #[test]
    fn not_a_number_breaks_the_line_and_is_counted() {
        let s = one(json!([
            [1000, "1"],
            [1010, "NaN"],
            [1020, "+Inf"],
            [1030, "2"],
            [1040, "-Inf"],
            [1050, "banana"],
            [1060, "3"]
        ]));
        assert_eq!(
            s.segments,
            vec![
                vec![(1000.0, 1.0)],
                vec![(1030.0, 2.0)],
                vec![(1060.0, 3.0)]
            ]
        );
        assert_eq!(s.skipped, 4);
        assert_eq!(
            s.stats,
            Some(Stats {
                min: 1.0,
                max: 3.0,
                last: 3.0
            })
        );
    }

    #[test]
    fn timestamps_out_of_order_are_sorted_and_duplicates_dropped() {
        let s = one(json!([[1020, "3"], [1000, "1"], [1010, "2"], [1010, "9"]]));
        assert_eq!(
            s.segments,
            vec![vec![(1000.0, 1.0), (1010.0, 2.0), (1020.0, 3.0)]]
        );
        assert_eq!(s.stats.map(|s| s.last), Some(3.0));
    }

    #[test]
    fn missing_steps_break_the_line() {
        let s = one(json!([[1000, "1"], [1010, "1"], [1050, "1"], [1060, "1"]]));
        assert_eq!(s.segments.len(), 2);
        assert_eq!(s.points(), 4);
    }

    #[test]
    fn samples_outside_the_window_or_without_a_time_are_skipped() {
        let s = one(json!([
            [1, "1"],
            [1000, "1"],
            ["1010", "2"],
            [null, "3"],
            ["soon", "4"],
            [99999, "5"],
            "x",
            []
        ]));
        assert_eq!(s.segments, vec![vec![(1000.0, 1.0), (1010.0, 2.0)]]);
        assert_eq!(s.skipped, 6);
    }

    #[test]
    fn extreme_values_stay_drawable() {
        let s = one(json!([[1000, "-1.7e308"], [1010, "1.7e308"]]));
        let drawn: Vec<f64> = s.segments[0].iter().map(|p| p.1).collect();
        assert_eq!(drawn, vec![-DRAW_LIMIT, DRAW_LIMIT]);
        assert!((drawn[1] - drawn[0]).is_finite());
        assert_eq!(s.stats.map(|s| s.max), Some(1.7e308));
    }

    #[test]
    fn garbage_shapes_give_empty_series_not_panics() {
        assert!(parse_matrix(&json!({"not": "a list"}), WINDOW).is_empty());
        let series = parse_matrix(&json!([1, "x", {"metric": 3, "values": {}}]), WINDOW);
        assert_eq!(series.len(), 3);
        assert!(
            series
                .iter()
                .all(|s| s.segments.is_empty() && s.stats.is_none())
        );
    }

    #[test]
    fn long_series_are_thinned_but_keep_their_stats() {
        let window = Window {
            start: 0.0,
            end: 50_000.0,
            step: 1.0,
        };
        let values: Vec<Value> = (0..50_000).map(|t| json!([t, t.to_string()])).collect();
        let series = parse_matrix(&json!([{"metric": {}, "values": values}]), window);
        let s = &series[0];
        assert!(s.points() <= MAX_DRAWN_POINTS, "{}", s.points());
        assert_eq!(s.segments.len(), 1, "thinning is not a gap");
        assert_eq!(s.stats.map(|s| (s.min, s.max)), Some((0.0, 49_999.0)));
        assert_eq!(
            s.segments.last().and_then(|r| r.last()),
            Some(&(49_999.0, 49_999.0))
        );
    }
}
