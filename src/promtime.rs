//! Times and durations as people and models write them, turned into what
//! the Prometheus HTTP API accepts.
//!
//! Times: RFC 3339 (`2026-11-21T10:00:00Z`), Unix seconds (`1732183200`,
//! `1732183200.5`) and relative forms (`now`, `now-1h`, `now+5m`).
//! Durations: Prometheus forms (`30s`, `5m`, `1h30m`, `500ms`, `1d`, `1w`,
//! `1y`) and plain seconds (`90`, `1.5`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use mcp_prometheus_layers::duration::{duration_from_seconds, parse_duration};

/// A time or duration argument that could not be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimeError {
    #[error(
        "{0:?} is not a time: send RFC 3339 (2026-01-02T15:04:05Z), Unix seconds (1767366245) or a relative time (now, now-1h, now-30m)"
    )]
    BadTime(String),
}

/// Seconds since the Unix epoch, as Prometheus takes them.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Parses a time relative to `now` (Unix seconds) into Unix seconds.
pub fn parse_time(input: &str, now: f64) -> Result<f64, TimeError> {
    let text = input.trim();
    let bad = || TimeError::BadTime(input.to_owned());
    if let Some(rest) = text.strip_prefix("now") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(now);
        }
        let (sign, amount) = match rest.split_at(1) {
            ("-", amount) => (-1.0, amount),
            ("+", amount) => (1.0, amount),
            _ => return Err(bad()),
        };
        let offset = parse_duration(amount.trim()).map_err(|_| bad())?;
        return Ok(now + sign * offset.as_secs_f64());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() && seconds >= 0.0 {
            Ok(seconds)
        } else {
            Err(bad())
        };
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .map_err(|_| bad())
}

/// Formats Unix seconds the way Prometheus parses them back (millisecond
/// precision, no exponent).
pub fn format_unix(seconds: f64) -> String {
    let formatted = format!("{seconds:.3}");
    formatted
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// Formats a duration as seconds, which every Prometheus duration parameter
/// accepts.
pub fn format_seconds(duration: Duration) -> String {
    format_unix(duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_767_366_245.0;

    #[test]
    fn times_in_every_form() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("now-1h", NOW), Ok(NOW - 3600.0));
        assert_eq!(parse_time("now - 30m", NOW), Ok(NOW - 1800.0));
        assert_eq!(parse_time("now+5m", NOW), Ok(NOW + 300.0));
        assert_eq!(parse_time("1767366245", NOW), Ok(1_767_366_245.0));
        assert_eq!(parse_time("1767366245.5", NOW), Ok(1_767_366_245.5));
        assert_eq!(parse_time("2026-01-02T15:04:05Z", NOW), Ok(1_767_366_245.0));
        assert_eq!(
            parse_time("2026-01-02T16:04:05+01:00", NOW),
            Ok(1_767_366_245.0)
        );
    }

    #[test]
    fn bad_times_say_what_to_send() {
        for bad in [
            "",
            "yesterday",
            "now*2",
            "now-",
            "now-1x",
            "-5",
            "NaN",
            "inf",
        ] {
            let err = parse_time(bad, NOW).expect_err(bad);
            assert!(err.to_string().contains("RFC 3339"), "{err}");
        }
    }

    #[test]
    fn formats_round_trip_for_prometheus() {
        assert_eq!(format_unix(1_767_366_245.0), "1767366245");
        assert_eq!(format_unix(1_767_366_245.25), "1767366245.25");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(format_seconds(Duration::from_secs(60)), "60");
    }
}
