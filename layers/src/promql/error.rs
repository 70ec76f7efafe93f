//! A PromQL syntax error as a model can act on it: the parser's message,
//! where it went wrong (character position and the fragment around it,
//! when a scan of brackets and quotes can tell) and a hint.

use std::fmt;

/// Characters of context shown on each side of the position.
const CONTEXT: usize = 20;

/// Why a query is not PromQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromqlError {
    /// The parser's message.
    pub message: String,
    /// Character (not byte) position, counted from 1, when known.
    pub position: Option<usize>,
    /// The query around the position (or its start).
    pub fragment: String,
    pub hint: String,
}

impl std::error::Error for PromqlError {}

impl fmt::Display for PromqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PromQL")?;
        if let Some(position) = self.position {
            write!(f, " at character {position}")?;
        }
        if !self.fragment.is_empty() {
            write!(f, " (near `{}`)", self.fragment)?;
        }
        write!(f, ": {}; {}", self.message, self.hint)
    }
}

impl PromqlError {
    pub(super) fn too_long(len: usize) -> Self {
        Self {
            message: format!("the query is {len} bytes long"),
            position: None,
            fragment: String::new(),
            hint: format!(
                "queries are limited to {} bytes: split it, or aggregate before combining",
                super::MAX_QUERY_BYTES
            ),
        }
    }

    pub(super) fn too_deep(query: &str, at: usize) -> Self {
        Self {
            message: format!("brackets or signs nest more than {} deep", super::MAX_DEPTH),
            position: Some(at),
            fragment: fragment(query, Some(at)),
            hint: "flatten the expression: no real query nests this deep".into(),
        }
    }

    pub(super) fn empty() -> Self {
        Self {
            message: "the query is empty".into(),
            position: None,
            fragment: String::new(),
            hint: "send a PromQL expression, e.g. up or rate(http_requests_total[5m])".into(),
        }
    }

    pub(super) fn new(query: &str, message: &str) -> Self {
        let position = unbalanced(query).or_else(|| {
            message
                .contains("end of input")
                .then(|| query.chars().count())
        });
        Self {
            message: message.to_owned(),
            position,
            fragment: fragment(query, position),
            hint: hint(message).to_owned(),
        }
    }
}

/// The first bracket that is never closed or closes nothing, or a quote
/// that is never closed (character position from 1).
fn unbalanced(query: &str) -> Option<usize> {
    let mut open: Vec<(char, usize)> = Vec::new();
    let mut chars = query.chars().enumerate();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' | '\'' | '`' => {
                let quote = ch;
                let mut closed = false;
                while let Some((_, next)) = chars.next() {
                    if next == '\\' && quote != '`' {
                        chars.next();
                    } else if next == quote {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Some(i + 1);
                }
            }
            '#' => {
                // A comment runs to the end of the line.
                for (_, next) in chars.by_ref() {
                    if next == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => open.push((ch, i + 1)),
            ')' | ']' | '}' => {
                let want = match ch {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match open.pop() {
                    Some((opened, _)) if opened == want => {}
                    _ => return Some(i + 1),
                }
            }
            _ => {}
        }
    }
    open.first().map(|(_, at)| *at)
}

/// Up to `CONTEXT` characters each side of `position` (the start when
/// unknown), on character boundaries.
fn fragment(query: &str, position: Option<usize>) -> String {
    let chars: Vec<char> = query.chars().collect();
    let at = position.map_or(0, |p| p.saturating_sub(1)).min(chars.len());
    let start = at.saturating_sub(CONTEXT);
    let end = (at + CONTEXT).min(chars.len());
    chars.get(start..end).unwrap_or_default().iter().collect()
}

/// What to do about the parser's complaint.
fn hint(message: &str) -> &'static str {
    let message = message.to_ascii_lowercase();
    if message.contains("parenthes") {
        "check that every ( has its ); a grouping clause goes right after the aggregation: sum by (job) (rate(x[5m]))"
    } else if message.contains("brace") {
        "close the label matchers with }: metric{label=\"value\"}"
    } else if message.contains("bracket")
        || message.contains("range")
        || message.contains("duration")
    {
        "a range is a duration in brackets after a selector: rate(x_total[5m]); a subquery is (expr)[1h:1m]"
    } else if message.contains("string") || message.contains("quot") {
        "quote label values with \" and escape inner quotes: {path=\"/api\"}"
    } else if message.contains("function") {
        "check the function's name and arguments: rate(x[5m]), histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"
    } else {
        "check operators and operands: both sides of + - * / need an expression, and aggregations wrap theirs in parentheses"
    }
}
