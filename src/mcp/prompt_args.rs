//! The arguments of `prompts/get`, checked before they reach a prompt's
//! text: every value ends up inside PromQL or a tool call the model will
//! make, so names must be names, literals are escaped, numbers are in
//! range, and every value is bounded in length.

use std::time::Duration;

use rmcp::model::JsonObject;

use crate::promtime::parse_duration;

/// The longest value any prompt argument may have.
pub const MAX_ARGUMENT_BYTES: usize = 256;

/// A bad `prompts/get` argument: the message says what was wrong and what
/// to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError(pub String);

impl std::fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The string arguments of one `prompts/get`, checked against the
/// prompt's declared argument names.
pub struct PromptArgs {
    prompt: &'static str,
    values: Vec<(String, String)>,
}

impl PromptArgs {
    /// Takes `arguments` for `prompt`, whose arguments are `known`: an
    /// unknown name, a value that is not a string or one longer than
    /// [`MAX_ARGUMENT_BYTES`] is refused.
    pub fn new(
        prompt: &'static str,
        known: &[&str],
        arguments: Option<JsonObject>,
    ) -> Result<Self, ArgumentError> {
        let mut values = Vec::new();
        for (name, value) in arguments.unwrap_or_default() {
            if !known.contains(&name.as_str()) {
                return Err(ArgumentError(format!(
                    "prompt {prompt:?} has no argument {:?}; its arguments are {}",
                    cut(&name),
                    known.join(", ")
                )));
            }
            let text = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Number(number) => number.to_string(),
                other => {
                    return Err(ArgumentError(format!(
                        "{name}: send a string, not {}",
                        kind(&other)
                    )));
                }
            };
            if text.len() > MAX_ARGUMENT_BYTES {
                return Err(ArgumentError(format!(
                    "{name}: {} bytes is longer than the {MAX_ARGUMENT_BYTES} bytes an argument may have",
                    text.len()
                )));
            }
            values.push((name, text));
        }
        Ok(Self { prompt, values })
    }

    /// The value of `name`, if given and not blank.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be given.
    pub fn required(&self, name: &str, example: &str) -> Result<&str, ArgumentError> {
        self.optional(name).ok_or_else(|| {
            ArgumentError(format!(
                "prompt {:?} needs the argument {name:?}, e.g. {example}",
                self.prompt
            ))
        })
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
        _ => "a string",
    }
}

/// At most 64 characters of a caller's text, for an error message.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Checks that `value` is a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`),
/// which PromQL takes bare: anything else could change the query.
pub fn metric_name<'a>(argument: &str, value: &'a str) -> Result<&'a str, ArgumentError> {
    let mut chars = value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if valid {
        Ok(value)
    } else {
        Err(ArgumentError(format!(
            "{argument}: {:?} is not a metric name; send one such as http_requests_total (letters, digits, _ and :, not starting with a digit)",
            cut(value)
        )))
    }
}

/// `value` as a PromQL double-quoted string literal (quotes included):
/// backslashes and quotes escaped; control characters are refused, since
/// no alert or label value needs them.
pub fn string_literal(argument: &str, value: &str) -> Result<String, ArgumentError> {
    if value.chars().any(char::is_control) {
        return Err(ArgumentError(format!(
            "{argument}: control characters (newlines, tabs…) are not allowed; send the name as shown by get_alerts"
        )));
    }
    let mut literal = String::with_capacity(value.len() + 2);
    literal.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            literal.push('\\');
        }
        literal.push(c);
    }
    literal.push('"');
    Ok(literal)
}

/// An availability objective in per cent, strictly between 0 and 100
/// (`99.9` or `99.9%`), returned as the error budget fraction
/// (`0.001`).
pub fn error_budget(argument: &str, value: &str) -> Result<f64, ArgumentError> {
    let number = value.trim().trim_end_matches('%').trim();
    let bad = || {
        ArgumentError(format!(
            "{argument}: {:?} is not an objective; send a percentage strictly between 0 and 100, e.g. 99.9",
            cut(value)
        ))
    };
    let objective: f64 = number.parse().map_err(|_| bad())?;
    if !(objective.is_finite() && objective > 0.0 && objective < 100.0) {
        return Err(bad());
    }
    // Rounded to 12 decimals: 100 - 99.9 is not exactly 0.1 in binary.
    let budget = ((100.0 - objective) / 100.0 * 1e12).round() / 1e12;
    if budget <= 0.0 {
        return Err(bad());
    }
    Ok(budget)
}

/// The shortest and longest SLO window accepted: the longest alert window
/// (3d) must fit in it well, and a year is the longest anyone reports on.
pub const MIN_WINDOW: Duration = Duration::from_secs(7 * 86_400);
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);

/// An SLO window such as `30d` or `4w`, whole minutes, within
/// [`MIN_WINDOW`]..=[`MAX_WINDOW`].
pub fn window(argument: &str, value: &str) -> Result<Duration, ArgumentError> {
    let duration = parse_duration(value)
        .map_err(|error| ArgumentError(format!("{argument}: {error}, e.g. 30d")))?;
    if duration < MIN_WINDOW || duration > MAX_WINDOW || !duration.as_secs().is_multiple_of(60) {
        return Err(ArgumentError(format!(
            "{argument}: {:?} is outside 7d..366d (in whole minutes); send the SLO period, e.g. 30d or 28d",
            cut(value)
        )));
    }
    Ok(duration)
}

/// `duration` as a PromQL duration in its largest whole unit (`30d`,
/// `90m`).
pub fn promql_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A number for PromQL: at most 12 decimals, no trailing zeros
/// (`0.0144`, `14.4`, `1`).
pub fn number(value: f64) -> String {
    let text = format!("{value:.12}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".into()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: serde_json::Value) -> Option<JsonObject> {
        value.as_object().cloned()
    }

    #[test]
    fn unknown_long_and_non_string_arguments_are_refused() {
        let known = ["alertname", "upstream"];
        let error = PromptArgs::new("p", &known, args(json!({"alert": "x"})))
            .err()
            .expect("refused");
        assert!(error.0.contains("alertname, upstream"), "{error}");
        let long = "a".repeat(MAX_ARGUMENT_BYTES + 1);
        let error = PromptArgs::new("p", &known, args(json!({"alertname": long})))
            .err()
            .expect("refused");
        assert!(error.0.contains("longer than the 256 bytes"), "{error}");
        let error = PromptArgs::new("p", &known, args(json!({"alertname": ["x"]})))
            .err()
            .expect("refused");
        assert!(error.0.contains("not an array"), "{error}");
        let given = PromptArgs::new("p", &known, args(json!({"alertname": " A "}))).expect("ok");
        assert_eq!(given.required("alertname", "X"), Ok("A"));
        let missing = given
            .required("upstream", "\"mimir\"")
            .expect_err("missing");
        assert!(missing.0.contains("needs the argument \"upstream\""));
    }

    #[test]
    fn metric_names_are_checked() {
        assert!(metric_name("m", "http_requests_total").is_ok());
        assert!(metric_name("m", "job:up:sum").is_ok());
        for bad in [
            "",
            "9lives",
            "up}",
            "up{job=\"x\"}",
            "a b",
            "rate(x[5m])",
            "é",
        ] {
            assert!(metric_name("m", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn literals_escape_quotes_and_refuse_control_characters() {
        assert_eq!(
            string_literal("a", r#"Foo"} or vector(1) #\"#).expect("ok"),
            r#""Foo\"} or vector(1) #\\""#
        );
        assert!(string_literal("a", "two\nlines").is_err());
    }

    #[test]
    fn objectives_become_budgets() {
        assert_eq!(error_budget("o", "99.9"), Ok(0.001));
        assert_eq!(error_budget("o", "99.95%"), Ok(0.0005));
        assert_eq!(error_budget("o", "50"), Ok(0.5));
        for bad in ["100", "0", "-1", "101", "NaN", "inf", "abc", ""] {
            assert!(error_budget("o", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_and_numbers() {
        assert_eq!(
            window("w", "30d").map(promql_duration),
            Ok("30d".to_owned())
        );
        assert_eq!(window("w", "4w").map(promql_duration), Ok("28d".to_owned()));
        assert!(window("w", "1h").is_err());
        assert!(window("w", "400d").is_err());
        assert!(window("w", "soon").is_err());
        assert_eq!(promql_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(number(14.4 * 0.001), "0.0144");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.1 * 720.0 / 72.0), "1");
    }
}
