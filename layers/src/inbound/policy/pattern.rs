//! The tool names a policy list entry stands for, resolved once against
//! the catalogue: a literal name, a family (`query`, `discovery`,
//! `status`, `alerting`), a glob (`get_*`, `list_?abel*`) or an anchored
//! regex (`^(get|list)_.*$`). Every entry must name at least one tool, so
//! a typo or a prefixed name fails `check-config` instead of silently
//! allowing or denying nothing.

use regex::Regex;

use crate::build::ToolEntry;

/// The longest pattern accepted: entries are names, not programs.
const MAX_PATTERN_LEN: usize = 256;

/// A set of tools, one bit per catalogue entry (the catalogue has fewer
/// than 64 tools; the builder checks).
pub type ToolMask = u64;

/// Why a list entry names no tool.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("{0:?} is not a valid regex: {1}")]
    Regex(String, regex::Error),
    #[error(
        "{0:?} is longer than {MAX_PATTERN_LEN} characters: list tool names, families, globs or ^regex$"
    )]
    TooLong(String),
    #[error(
        "{entry:?} matches no tool: write names without the configured prefix ({known}), a family (query, discovery, status, alerting), a glob like get_* or an anchored regex like ^(get|list)_.*$"
    )]
    NoMatch { entry: String, known: String },
}

/// The tools `entry` stands for, as a mask over `catalogue`.
pub fn resolve(entry: &str, catalogue: &[ToolEntry]) -> Result<ToolMask, PatternError> {
    if entry.len() > MAX_PATTERN_LEN {
        return Err(PatternError::TooLong(entry.to_owned()));
    }
    let matcher = Matcher::parse(entry)?;
    let mask = catalogue
        .iter()
        .enumerate()
        .filter(|(_, tool)| matcher.matches(tool))
        .fold(0, |mask, (bit, _)| mask | (1 << bit));
    if mask == 0 {
        let known: Vec<&str> = catalogue.iter().map(|t| t.name.as_str()).collect();
        return Err(PatternError::NoMatch {
            entry: entry.to_owned(),
            known: known.join(", "),
        });
    }
    Ok(mask)
}

/// How one entry is read.
enum Matcher<'a> {
    /// A name or a family.
    Literal(&'a str),
    /// A glob or an anchored regex, compiled.
    Regex(Regex),
}

impl<'a> Matcher<'a> {
    fn parse(entry: &'a str) -> Result<Self, PatternError> {
        let regex = if let Some(inner) = entry
            .strip_prefix('^')
            .and_then(|rest| rest.strip_suffix('$'))
        {
            // `^a|b$` anchors only a and b's outer ends: group the whole.
            format!("^(?:{inner})$")
        } else if entry.contains(['*', '?']) {
            glob_regex(entry)
        } else {
            return Ok(Self::Literal(entry));
        };
        Regex::new(&regex)
            .map(Self::Regex)
            .map_err(|error| PatternError::Regex(entry.to_owned(), error))
    }

    fn matches(&self, tool: &ToolEntry) -> bool {
        match self {
            Self::Literal(name) => tool.name == *name || tool.family == *name,
            Self::Regex(regex) => regex.is_match(&tool.name),
        }
    }
}

/// `*` is any run of characters, `?` one character; the rest is literal.
fn glob_regex(glob: &str) -> String {
    let mut regex = String::from("^");
    for ch in glob.chars() {
        match ch {
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex.push('$');
    regex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Vec<ToolEntry> {
        [
            ("execute_query", "query"),
            ("list_metrics", "discovery"),
            ("list_label_names", "discovery"),
            ("get_config", "status"),
            ("get_flags", "status"),
            ("get_rules", "alerting"),
        ]
        .iter()
        .map(|(name, family)| ToolEntry {
            name: name.to_string(),
            family: family.to_string(),
        })
        .collect()
    }

    fn names(mask: ToolMask) -> Vec<String> {
        catalogue()
            .into_iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1 << bit) != 0)
            .map(|(_, tool)| tool.name)
            .collect()
    }

    #[test]
    fn literals_families_globs_and_regexes() {
        let c = catalogue();
        assert_eq!(
            names(resolve("get_config", &c).expect("ok")),
            ["get_config"]
        );
        assert_eq!(
            names(resolve("status", &c).expect("ok")),
            ["get_config", "get_flags"]
        );
        assert_eq!(
            names(resolve("list_*", &c).expect("ok")),
            ["list_metrics", "list_label_names"]
        );
        assert_eq!(names(resolve("get_?ules", &c).expect("ok")), ["get_rules"]);
        assert_eq!(
            names(resolve("^(get|list)_l.*$", &c).expect("ok")),
            ["list_label_names"]
        );
        assert_eq!(names(resolve("*", &c).expect("ok")).len(), 6);
    }

    #[test]
    fn globs_are_anchored_and_dots_literal() {
        let c = catalogue();
        assert!(resolve("config", &c).is_err(), "no substring matches");
        assert!(
            resolve("get.config", &c).is_err(),
            "a dot is a dot in a literal"
        );
        assert!(resolve("get_conf", &c).is_err());
    }

    #[test]
    fn entries_naming_nothing_are_refused_with_the_names() {
        let c = catalogue();
        let err = resolve("mcp_get_config", &c).expect_err("prefixed");
        assert!(
            err.to_string().contains("without the configured prefix"),
            "{err}"
        );
        assert!(err.to_string().contains("get_config"), "{err}");
        assert!(matches!(
            resolve("^(unclosed$", &c),
            Err(PatternError::Regex(..))
        ));
        assert!(matches!(
            resolve(&"a".repeat(300), &c),
            Err(PatternError::TooLong(_))
        ));
    }
}
