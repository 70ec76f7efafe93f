//! The chart caps of `[tools]`: one drawing's memory is width × height × 3
//! bytes, so the sizes are bounded here, once, at start-up and by
//! `check-config`.

use super::{ConfigError, invalid};
use crate::config::ToolsConfig;

/// Narrowest chart: room for the value axis, a title and a legend.
pub const CHART_MIN_WIDTH: u32 = 320;
/// Shortest chart: room for the time axis, a title and a legend row.
pub const CHART_MIN_HEIGHT: u32 = 200;
/// No side above this, whatever the config says (4096² × 3 bytes = 48 MiB).
pub const CHART_MAX_SIDE: u32 = 4096;
/// Most lines one chart may be configured to draw: past this a legend is
/// unreadable.
pub const CHART_MAX_SERIES: usize = 50;

impl ToolsConfig {
    /// Checks `chart_max_width`, `chart_max_height` and `chart_max_series`.
    pub(super) fn validate_chart(&self) -> Result<(), ConfigError> {
        for (key, value, min) in [
            (
                "tools.chart_max_width",
                self.chart_max_width,
                CHART_MIN_WIDTH,
            ),
            (
                "tools.chart_max_height",
                self.chart_max_height,
                CHART_MIN_HEIGHT,
            ),
        ] {
            if !(min..=CHART_MAX_SIDE).contains(&value) {
                return Err(invalid(
                    key,
                    format!(
                        "{value} pixels is out of range: write a number between {min} and {CHART_MAX_SIDE}"
                    ),
                ));
            }
        }
        let series = self.chart_max_series;
        let most = CHART_MAX_SERIES.min(self.max_limit);
        if series == 0 || series > most {
            return Err(invalid(
                "tools.chart_max_series",
                format!(
                    "{series} is out of range: write a number between 1 and {most} (at most {CHART_MAX_SERIES}, and not above tools.max_limit)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const UPSTREAM: &str = "[[upstreams]]\nname = \"local\"\nurl = \"http://127.0.0.1:9090\"\n";

    fn error(toml: &str) -> String {
        let config = Config::parse(&format!("{toml}{UPSTREAM}")).expect("parses");
        match config.validate() {
            Ok(()) => String::new(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(error(""), "");
        let tools = Config::parse("").expect("parses").tools;
        assert_eq!(
            (
                tools.chart_max_width,
                tools.chart_max_height,
                tools.chart_max_series
            ),
            (1600, 1000, 10)
        );
    }

    #[test]
    fn sizes_outside_the_bounds_are_refused_with_the_range() {
        let message = error("[tools]\nchart_max_width = 0\n");
        assert!(message.contains("tools.chart_max_width"), "{message}");
        assert!(message.contains("between 320 and 4096"), "{message}");
        let message = error("[tools]\nchart_max_height = 100000\n");
        assert!(message.contains("tools.chart_max_height"), "{message}");
        assert_eq!(error("[tools]\nchart_max_height = 4096\n"), "");
    }

    #[test]
    fn series_cap_is_bounded_by_max_limit_too() {
        let message = error("[tools]\nchart_max_series = 0\n");
        assert!(message.contains("tools.chart_max_series"), "{message}");
        let message = error("[tools]\nchart_max_series = 51\n");
        assert!(message.contains("between 1 and 50"), "{message}");
        let message = error("[tools]\ndefault_limit = 5\nmax_limit = 5\nchart_max_series = 6\n");
        assert!(message.contains("between 1 and 5"), "{message}");
    }
}
