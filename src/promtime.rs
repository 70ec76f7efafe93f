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
        // Models print the minus sign (U+2212) and dashes for "-".
        let mut chars = rest.chars();
        let sign = match chars.next() {
            Some('-' | '\u{2212}' | '\u{2013}' | '\u{2014}') => -1.0,
            Some('+') => 1.0,
            _ => return Err(bad()),
        };
        let offset = parse_duration(chars.as_str().trim()).map_err(|_| bad())?;
        let time = now + sign * offset.as_secs_f64();
        return if time.is_finite() && time >= 0.0 {
            Ok(time)
        } else {
            Err(bad())
        };
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
    // Whole seconds (most times and steps) skip the float formatting.
    if seconds.fract() == 0.0 && seconds.abs() < 1e15 {
        return (seconds as i64).to_string();
    }
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
    fn the_minus_signs_models_print_are_minus() {
        for minus in ["now\u{2212}1h", "now\u{2013}1h", "now \u{2014} 1h"] {
            assert_eq!(parse_time(minus, NOW), Ok(NOW - 3600.0), "{minus}");
        }
        for bad in [
            "now\u{2212}",
            "now\u{1F600}1h",
            "now\u{200F}-1h",
            "now-99999999999999y",
            "now\u{0}",
        ] {
            assert!(parse_time(bad, NOW).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]

        /// Any text is a time or a typed error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,40}", prefixed in "now\\PC{0,12}") {
            for input in [&text, &prefixed] {
                if let Ok(time) = parse_time(input, NOW) {
                    proptest::prop_assert!(time.is_finite() && time >= 0.0);
                }
            }
        }

        /// Any text is a duration or a typed error, never a panic.
        #[test]
        fn any_text_is_a_duration_or_refused(text in "\\PC{0,40}", units in "[0-9]{1,25}(ms|s|m|h|d|w|y){0,3}") {
            let _ = parse_duration(&text);
            let _ = parse_duration(&units);
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
