//! Statistics of one series' samples: what a model reads instead of the
//! samples themselves.

use serde::Serialize;

/// One sample: Unix seconds and value (NaN and ±Inf kept, counted apart).
pub type Sample = (f64, f64);

/// The summary of one series' samples. Statistics cover the finite values
/// only; a series without any has none of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeriesStats {
    /// Samples received, finite or not.
    pub points: usize,
    /// Timestamp of the first sample (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<f64>,
    /// Timestamp of the last sample (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// The last finite value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
    /// 95th percentile, interpolated linearly between the closest ranks
    /// (as numpy's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    /// Last finite value minus the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Least-squares slope of value over time, per hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend_per_hour: Option<f64>,
    /// NaN samples (e.g. a division by zero).
    pub nan: usize,
    /// ±Inf samples.
    pub inf: usize,
}

/// `Some(x)` when `x` is finite: what JSON can carry and a model can use.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl SeriesStats {
    /// Summarizes `samples` (in time order, as Prometheus sends them).
    pub fn of(samples: &[Sample]) -> Self {
        let mut stats = Self {
            points: samples.len(),
            first_timestamp: samples.first().and_then(|s| finite(s.0)),
            last_timestamp: samples.last().and_then(|s| finite(s.0)),
            ..Self::default()
        };
        let mut values = Vec::with_capacity(samples.len());
        let mut sum = 0.0;
        for &(_, value) in samples {
            if value.is_nan() {
                stats.nan += 1;
            } else if value.is_infinite() {
                stats.inf += 1;
            } else {
                values.push(value);
                sum += value;
            }
        }
        let finite_samples = || samples.iter().filter(|s| s.1.is_finite());
        let (Some(first), Some(last)) = (finite_samples().next(), finite_samples().next_back())
        else {
            return stats;
        };
        stats.last = Some(last.1);
        stats.delta = finite(last.1 - first.1);
        stats.mean = finite(mean(sum, &values));
        stats.trend_per_hour = slope(finite_samples()).map(|s| s * 3600.0).and_then(finite);
        stats.min = values.iter().copied().min_by(f64::total_cmp);
        stats.max = values.iter().copied().max_by(f64::total_cmp);
        stats.p95 = quantile(&mut values, 0.95);
        stats
    }
}

/// The mean of `values` from their `sum`; when the sum overflowed (values
/// near `f64::MAX`), a running mean, which cannot.
fn mean(sum: f64, values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if (sum / n).is_finite() {
        return sum / n;
    }
    let mut mean = 0.0;
    for (i, &value) in values.iter().enumerate() {
        let n = (i + 1) as f64;
        mean += value / n - mean / n;
    }
    mean
}

/// The `q` quantile of `values` (reordered), interpolated linearly between
/// the closest ranks; found by selection, not by sorting.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    let rank = q.clamp(0.0, 1.0) * last as f64;
    let below = (rank.floor() as usize).min(last);
    let (_, &mut low, above) = values.select_nth_unstable_by(below, f64::total_cmp);
    let high = match rank > below as f64 {
        true => above.iter().copied().min_by(f64::total_cmp).unwrap_or(low),
        false => low,
    };
    finite(low + (high - low) * (rank - below as f64))
}

/// Least-squares slope of value over time (per second), with times taken
/// from the first sample so that Unix seconds keep their precision.
fn slope<'a>(samples: impl Iterator<Item = &'a Sample> + Clone) -> Option<f64> {
    let origin = samples.clone().next()?.0;
    let (mut n, mut sum_t, mut sum_v) = (0.0, 0.0, 0.0);
    for &(t, v) in samples.clone() {
        n += 1.0;
        sum_t += t - origin;
        sum_v += v;
    }
    if n < 2.0 {
        return None;
    }
    let (mut mean_t, mut mean_v) = (sum_t / n, sum_v / n);
    if !(mean_t.is_finite() && mean_v.is_finite()) {
        // Sums of values near `f64::MAX` overflow; running means do not.
        (mean_t, mean_v, n) = (0.0, 0.0, 0.0);
        for &(t, v) in samples.clone() {
            n += 1.0;
            mean_t += (t - origin) / n - mean_t / n;
            mean_v += v / n - mean_v / n;
        }
    }
    let (mut covariance, mut variance) = (0.0, 0.0);
    for &(t, v) in samples {
        let dt = (t - origin) - mean_t;
        covariance += dt * (v - mean_v);
        variance += dt * dt;
    }
    (variance > 0.0)
        .then(|| covariance / variance)
        .and_then(finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (1_767_366_000.0 + 15.0 * i as f64, *v))
            .collect()
    }

    #[test]
    fn a_rising_line() {
        let stats = SeriesStats::of(&series(&[0.0, 1.0, 2.0, 3.0, 4.0]));
        assert_eq!(stats.points, 5);
        assert_eq!(
            (stats.min, stats.max, stats.last),
            (Some(0.0), Some(4.0), Some(4.0))
        );
        assert_eq!(stats.mean, Some(2.0));
        assert_eq!(stats.delta, Some(4.0));
        // One per 15 s is 240 per hour.
        let trend = stats.trend_per_hour.expect("a trend");
        assert!((trend - 240.0).abs() < 1e-9, "{trend}");
        // numpy.percentile([0,1,2,3,4], 95) == 3.8
        let p95 = stats.p95.expect("p95");
        assert!((p95 - 3.8).abs() < 1e-12, "{p95}");
        assert_eq!(stats.first_timestamp, Some(1_767_366_000.0));
        assert_eq!(stats.last_timestamp, Some(1_767_366_060.0));
    }

    #[test]
    fn non_finite_values_are_counted_not_averaged() {
        let stats = SeriesStats::of(&series(&[
            f64::NAN,
            2.0,
            f64::INFINITY,
            4.0,
            f64::NEG_INFINITY,
        ]));
        assert_eq!((stats.nan, stats.inf), (1, 2));
        assert_eq!(stats.mean, Some(3.0));
        assert_eq!(stats.delta, Some(2.0));
        assert_eq!(stats.last, Some(4.0));
    }

    #[test]
    fn nothing_finite_means_no_statistics() {
        let stats = SeriesStats::of(&series(&[f64::NAN, f64::NAN]));
        assert_eq!(stats.nan, 2);
        assert_eq!(
            (stats.min, stats.mean, stats.p95, stats.trend_per_hour),
            (None, None, None, None)
        );
        let json = serde_json::to_value(&stats).expect("serializes");
        assert!(json.get("mean").is_none(), "{json}");
    }

    #[test]
    fn huge_values_do_not_overflow_into_infinity() {
        let stats = SeriesStats::of(&series(&[f64::MAX, f64::MAX, -f64::MAX]));
        assert!(stats.mean.is_some_and(f64::is_finite));
        assert_eq!(stats.delta, None, "MAX - -MAX is not finite");
        let json = serde_json::to_string(&stats).expect("serializes");
        assert!(!json.contains("null"), "{json}");
    }

    #[test]
    fn one_point_has_no_trend() {
        let stats = SeriesStats::of(&series(&[7.0]));
        assert_eq!(
            (stats.p95, stats.trend_per_hour, stats.delta),
            (Some(7.0), None, Some(0.0))
        );
    }

    #[test]
    fn an_empty_series_is_all_none() {
        assert_eq!(SeriesStats::of(&[]), SeriesStats::default());
    }

    proptest::proptest! {
        /// Selection gives the quantile sorting gives.
        #[test]
        fn quantile_by_selection_is_quantile_of_the_sorted(
            values in proptest::collection::vec(-1e9f64..1e9, 1..300),
            q in 0.0f64..=1.0,
        ) {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let last = sorted.len() - 1;
            let rank = q * last as f64;
            let (below, above) = (rank.floor() as usize, rank.ceil() as usize);
            let want = sorted[below] + (sorted[above] - sorted[below]) * (rank - below as f64);
            let mut reordered = values;
            proptest::prop_assert_eq!(quantile(&mut reordered, q), Some(want));
        }
    }
}
