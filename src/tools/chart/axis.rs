//! The time axis: ticks on round UTC times (every 5 minutes, every hour,
//! every day…) and labels as short as the spacing allows.

use chrono::DateTime;

use super::units::{Kind, Unit};

/// Tick spacings, in seconds, from a second to a year.
const STEPS: &[f64] = &[
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10_800.0,
    21_600.0,
    43_200.0,
    86_400.0,
    172_800.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
    7_776_000.0,
    31_536_000.0,
];
const DAY: f64 = 86_400.0;

/// One labelled tick of the time axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// Unix seconds.
    pub at: f64,
    pub label: String,
}

/// The ticks between `start` and `end` (Unix seconds), at most `max` of
/// them, on multiples of a round spacing.
pub fn time_ticks(start: f64, end: f64, max: usize) -> Vec<Tick> {
    let max = max.max(1);
    let span = end - start;
    if !span.is_finite() || span <= 0.0 {
        return vec![Tick {
            at: start,
            label: label(start, 60.0, 0.0),
        }];
    }
    let step = STEPS
        .iter()
        .copied()
        .find(|step| span / step < max as f64)
        .unwrap_or_else(|| {
            let year = STEPS.last().copied().unwrap_or(DAY);
            year * (span / year / max as f64).ceil()
        });
    let first = (start / step).ceil() * step;
    (0..max)
        .map(|i| first + i as f64 * step)
        .take_while(|t| *t <= end)
        .map(|at| Tick {
            at,
            label: label(at, step, span),
        })
        .collect()
}

/// `15:04`, `15:04:05`, `01-02 15:04` or `2026-01-02`, as the spacing and
/// the span need.
fn label(at: f64, step: f64, span: f64) -> String {
    let format = if step >= DAY {
        "%Y-%m-%d"
    } else if span > DAY {
        "%m-%d %H:%M"
    } else if step < 60.0 {
        "%H:%M:%S"
    } else {
        "%H:%M"
    };
    utc(at).map_or_else(|| at.to_string(), |t| t.format(format).to_string())
}

fn utc(at: f64) -> Option<DateTime<chrono::Utc>> {
    if !at.is_finite() || at.abs() > 1e15 {
        return None;
    }
    DateTime::from_timestamp_millis((at * 1000.0).round() as i64)
}

/// Round values from `min` to `max`, at most `count` + 1 of them: multiples of
/// 1, 2, 2.5 or 5 × 10^k times `scale` (1024^k for bytes, so that ticks fall on
/// whole KiB, MiB…).
pub fn value_ticks(min: f64, max: f64, count: usize, scale: f64) -> Vec<f64> {
    let count = count.max(2);
    let (low, high) = (min / scale, max / scale);
    let span = high - low;
    if !span.is_finite() || span <= 0.0 || !scale.is_normal() {
        return vec![min];
    }
    let magnitude = 10f64.powf((span / count as f64).log10().floor());
    let Some(step) = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| span / step <= count as f64)
        .filter(|step| step.is_normal())
    else {
        return vec![min];
    };
    let first = (low / step).ceil();
    (0..=count)
        .map(|i| (first + i as f64) * step)
        .take_while(|v| *v <= high + step * 1e-9)
        .map(|v| {
            if v.abs() < step * 1e-9 {
                0.0
            } else {
                v * scale
            }
        })
        .collect()
}

/// The value range: the data's, padded by 5 % (a flat line gets room
/// around it), from 0 when the data is all positive and near it.
pub fn value_range(mut values: impl Iterator<Item = f64>) -> (f64, f64) {
    let Some(first) = values.next() else {
        return (0.0, 1.0);
    };
    let (min, max) = values.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = if max > min {
        (max - min) * 0.05
    } else if min == 0.0 {
        1.0
    } else {
        min.abs() * 0.1
    };
    let low = if min >= 0.0 && min - pad < 0.0 {
        0.0
    } else {
        min - pad
    };
    (low, max + pad)
}

/// The value ticks' scale: whole KiB, MiB… for bytes.
pub fn tick_scale(unit: Option<Unit>, low: f64, high: f64) -> f64 {
    if unit.map(|u| u.kind) != Some(Kind::Bytes) {
        return 1.0;
    }
    let largest = low.abs().max(high.abs());
    let mut scale = 1.0;
    while scale * 1024.0 <= largest && scale < 1e18 {
        scale *= 1024.0;
    }
    scale
}

/// The axis caption: `time (UTC), 2026-01-02` for a window within one day,
/// `time (UTC), 2026-01-02 – 2026-01-05` otherwise.
pub fn caption(start: f64, end: f64) -> String {
    let day = |t: f64| utc(t).map_or_else(|| t.to_string(), |t| t.format("%Y-%m-%d").to_string());
    let (first, last) = (day(start), day(end));
    if first == last {
        format!("time (UTC), {first}")
    } else {
        format!("time (UTC), {first} – {last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-02T15:04:05Z.
    const T: f64 = 1_767_366_245.0;

    fn labels(ticks: &[Tick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn an_hour_gets_ticks_on_round_minutes() {
        let ticks = time_ticks(T, T + 3600.0, 8);
        assert_eq!(
            labels(&ticks),
            ["15:10", "15:20", "15:30", "15:40", "15:50", "16:00"]
        );
        assert!(ticks.iter().all(|t| t.at % 600.0 == 0.0));
    }

    #[test]
    fn spans_over_a_day_name_the_day() {
        let ticks = time_ticks(T, T + 3.0 * DAY, 8);
        assert_eq!(ticks.first().map(|t| t.label.as_str()), Some("01-03 00:00"));
        assert!(ticks.len() <= 8);
        let weeks = time_ticks(T, T + 60.0 * DAY, 6);
        assert!(
            weeks.iter().all(|t| t.label.len() == "2026-01-02".len()),
            "{weeks:?}"
        );
    }

    #[test]
    fn short_windows_show_seconds() {
        let ticks = time_ticks(T, T + 60.0, 6);
        assert_eq!(labels(&ticks)[..2], ["15:04:15", "15:04:30"]);
    }

    #[test]
    fn absurd_windows_stay_bounded() {
        assert_eq!(time_ticks(T, T, 6).len(), 1);
        assert_eq!(time_ticks(T, T - 10.0, 6).len(), 1);
        assert!(time_ticks(0.0, 1e14, 6).len() <= 6);
        assert!(time_ticks(0.0, f64::INFINITY, 6).len() == 1);
        let far = time_ticks(1e16, 1e16 + 100.0, 6);
        assert!(!far.is_empty() && far.len() <= 6, "{far:?}");
    }

    #[test]
    fn value_ticks_are_round() {
        assert_eq!(
            value_ticks(0.0, 10.5, 6, 1.0),
            [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(value_ticks(-3.0, 3.0, 3, 1.0), [-2.0, 0.0, 2.0]);
        assert_eq!(
            value_ticks(11.0, 23.5, 7, 1.0),
            [12.0, 14.0, 16.0, 18.0, 20.0, 22.0]
        );
        assert_eq!(
            value_ticks(11.0, 23.5, 6, 1.0),
            [12.5, 15.0, 17.5, 20.0, 22.5]
        );
        let mib = 1024.0 * 1024.0;
        let ticks = value_ticks(45.0 * mib, 54.0 * mib, 6, mib);
        assert!(ticks.iter().all(|t| (t / mib).fract() == 0.0), "{ticks:?}");
        assert_eq!(value_ticks(5.0, 5.0, 6, 1.0), [5.0]);
        assert!(value_ticks(-1e300, 1e300, 6, 1.0).len() <= 7);
        assert_eq!(value_ticks(0.0, 1e-320, 6, 1.0), [0.0]);
        assert_eq!(value_ticks(0.0, f64::INFINITY, 6, 1.0), [0.0]);
    }

    #[test]
    fn value_ranges_pad_and_keep_flat_lines_visible() {
        assert_eq!(value_range([0.0, 10.0].into_iter()), (0.0, 10.5));
        assert_eq!(value_range([5.0, 5.0].into_iter()), (4.5, 5.5));
        assert_eq!(value_range([0.0].into_iter()), (0.0, 1.0));
        assert_eq!(value_range([-2.0, -1.0].into_iter()), (-2.05, -0.95));
        assert_eq!(value_range(std::iter::empty()), (0.0, 1.0));
        let (low, high) = value_range([-1e300, 1e300].into_iter());
        assert!(low.is_finite() && high.is_finite());
    }

    #[test]
    fn captions_name_the_days() {
        assert_eq!(caption(T, T + 60.0), "time (UTC), 2026-01-02");
        assert_eq!(
            caption(T, T + 2.0 * DAY),
            "time (UTC), 2026-01-02 – 2026-01-04"
        );
    }
}
