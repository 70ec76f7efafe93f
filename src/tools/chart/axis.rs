//! The time axis: ticks on round UTC times (every 5 minutes, every hour,
//! every day…) and labels as short as the spacing allows.

use chrono::DateTime;

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
    fn captions_name_the_days() {
        assert_eq!(caption(T, T + 60.0), "time (UTC), 2026-01-02");
        assert_eq!(
            caption(T, T + 2.0 * DAY),
            "time (UTC), 2026-01-02 – 2026-01-04"
        );
    }
}
