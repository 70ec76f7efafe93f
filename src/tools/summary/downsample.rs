//! Fewer samples, same shape: per bucket the lowest and the highest
//! sample, in time order, so that spikes and dips survive.

use serde_json::Value;

use super::samples::parse_value;

/// Keeps at most `max_points` (≥ 2) of a series' `[timestamp, "value"]`
/// samples; returns whether any were dropped. A bucket without a finite
/// value keeps its first sample, so gaps stay visible.
pub fn min_max_per_bucket(values: &mut Vec<Value>, max_points: usize) -> bool {
    let buckets = (max_points / 2).max(1);
    if values.len() <= max_points {
        return false;
    }
    let size = values.len().div_ceil(buckets);
    let mut keep: Vec<usize> = Vec::with_capacity(2 * buckets);
    for (bucket, chunk) in values.chunks(size).enumerate() {
        let offset = bucket * size;
        let mut lowest: Option<(usize, f64)> = None;
        let mut highest: Option<(usize, f64)> = None;
        for (i, sample) in chunk.iter().enumerate() {
            let Some(value) = sample_value(sample).filter(|v| v.is_finite()) else {
                continue;
            };
            if lowest.is_none_or(|(_, low)| value < low) {
                lowest = Some((offset + i, value));
            }
            if highest.is_none_or(|(_, high)| value > high) {
                highest = Some((offset + i, value));
            }
        }
        match (lowest, highest) {
            (Some((low, _)), Some((high, _))) => {
                keep.push(low.min(high));
                if low != high {
                    keep.push(low.max(high));
                }
            }
            _ => keep.push(offset),
        }
    }
    let mut index = 0;
    let mut next = keep.into_iter().peekable();
    values.retain(|_| {
        let kept = next.next_if_eq(&index).is_some();
        index += 1;
        kept
    });
    true
}

fn sample_value(sample: &Value) -> Option<f64> {
    match sample.get(1)? {
        Value::String(text) => parse_value(text),
        other => other.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn samples(values: &[&str]) -> Vec<Value> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| json!([i, v]))
            .collect()
    }

    fn kept(values: &[Value]) -> Vec<(u64, String)> {
        values
            .iter()
            .map(|v| {
                (
                    v[0].as_u64().unwrap_or_default(),
                    v[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_spike_survives() {
        let mut values = samples(&["1", "1", "1", "9", "1", "1", "1", "1", "0", "1", "1", "1"]);
        assert!(min_max_per_bucket(&mut values, 4));
        // Two buckets of six: each keeps its lowest and highest, in order.
        assert_eq!(
            kept(&values),
            vec![
                (0, "1".into()),
                (3, "9".into()),
                (6, "1".into()),
                (8, "0".into())
            ]
        );
    }

    #[test]
    fn short_series_are_untouched() {
        let mut values = samples(&["1", "2", "3"]);
        assert!(!min_max_per_bucket(&mut values, 3));
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn never_more_than_asked_and_gaps_stay() {
        let mut values = samples(&["NaN"; 101]);
        assert!(min_max_per_bucket(&mut values, 10));
        assert!(values.len() <= 10, "{}", values.len());
        let mut values: Vec<Value> = (0..10_001).map(|i| json!([i, i.to_string()])).collect();
        assert!(min_max_per_bucket(&mut values, 7));
        assert!(values.len() <= 7, "{}", values.len());
        let times: Vec<u64> = values.iter().filter_map(|v| v[0].as_u64()).collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "in time order: {times:?}"
        );
    }
}
