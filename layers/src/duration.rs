//! Durations as operators and models write them: Prometheus forms (`30s`,
//! `5m`, `1h30m`, `500ms`, `1d`, `1w`, `1y`) or a plain number of seconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that is not a duration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a duration: send a Prometheus duration (30s, 5m, 1h30m, 1d) or a number of seconds"
)]
pub struct DurationError(pub String);

/// Parses a duration: Prometheus units, or a plain number of seconds.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    let bad = || DurationError(input.to_owned());
    if let Ok(seconds) = text.parse::<f64>() {
        return duration_from_seconds(seconds).ok_or_else(bad);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let value: u128 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(bad)?;
    }
    u64::try_from(total_ms)
        .map(Duration::from_millis)
        .map_err(|_| bad())
}

/// A non-negative, finite number of seconds as a [`Duration`].
pub fn duration_from_seconds(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

/// A duration written the Prometheus way in TOML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// Whole seconds.
    pub const fn secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(f64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => parse_duration(&text)
                .map(Self)
                .map_err(serde::de::Error::custom),
            Raw::Seconds(seconds) => duration_from_seconds(seconds).map(Self).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{seconds} is not a duration: send \"30s\", \"5m\" or a non-negative number of seconds"
                ))
            }),
        }
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let millis = self.0.as_millis();
        let text = if millis.is_multiple_of(1000) {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        };
        serializer.serialize_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_form() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_what_to_send() {
        for bad in ["", "m", "5x", "-5s", "-1", "1.5h", "99999999999999999999y"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.to_string().contains("Prometheus duration"), "{err}");
        }
    }

    #[test]
    fn config_durations_from_toml_forms() {
        let d: ConfigDuration = serde_json::from_str("\"1h30m\"").expect("text");
        assert_eq!(d.0, Duration::from_secs(5400));
        let d: ConfigDuration = serde_json::from_str("15").expect("number");
        assert_eq!(d.0, Duration::from_secs(15));
        assert_eq!(
            serde_json::to_string(&ConfigDuration(Duration::from_millis(1500))).expect("ser"),
            "\"1500ms\""
        );
        assert!(serde_json::from_str::<ConfigDuration>("\"soon\"").is_err());
    }
}
