//! PromQL checked before it is sent: a query that does not parse, or a
//! `matches` entry that is not a series selector, is this call's error
//! (where, what, how to fix) and the upstream sees nothing. The parse
//! travels on the upstream request ([`ParsedQuery`]) for the outbound
//! layers that inspect or rewrite it.

use mcp_prometheus_layers::promql::{Expr, ParsedQuery, PromqlError, parse};

use super::ToolError;

/// `query`, parsed; `argument` names it in the error.
pub fn query(argument: &str, query: &str) -> Result<ParsedQuery, ToolError> {
    ParsedQuery::parse(query).map_err(|error| ToolError::Promql {
        argument: argument.to_owned(),
        error,
    })
}

/// Checks that each of `selectors` is a series selector
/// (`up{job="api"}`), as `match[]` and `match_target` must be.
pub fn series_selectors<'a>(
    argument: &str,
    selectors: impl IntoIterator<Item = &'a String>,
) -> Result<(), ToolError> {
    for (index, selector) in selectors.into_iter().enumerate() {
        let argument = format!("{argument}[{index}]");
        series_selector(&argument, selector)?;
    }
    Ok(())
}

/// Checks that `selector` is one series selector.
pub fn series_selector(argument: &str, selector: &str) -> Result<(), ToolError> {
    match parse(selector) {
        Ok(Expr::VectorSelector(_)) => Ok(()),
        Ok(other) => Err(ToolError::InvalidArguments(format!(
            "{argument}: {selector:?} is an expression, not a series selector; give a metric name and/or label matchers such as up{{job=\"api\"}} (a {} is not one)",
            kind(&other)
        ))),
        Err(error) => Err(ToolError::Promql {
            argument: argument.to_owned(),
            error: PromqlError {
                hint: "a series selector is a metric name and/or label matchers: up{job=\"api\"}"
                    .into(),
                ..error
            },
        }),
    }
}

fn kind(expr: &Expr) -> &'static str {
    match expr {
        Expr::Aggregate(_) => "aggregation",
        Expr::Unary(_) | Expr::Binary(_) => "operation",
        Expr::Paren(_) => "parenthesised expression",
        Expr::Subquery(_) => "subquery",
        Expr::NumberLiteral(_) => "number",
        Expr::StringLiteral(_) => "string",
        Expr::MatrixSelector(_) => "range selector",
        Expr::Call(_) => "function call",
        Expr::VectorSelector(_) | Expr::Extension(_) => "selector",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_argument_and_the_place() {
        let err = query("query", "sum(rate(x[5m])").expect_err("unclosed");
        assert_eq!(err.kind(), "invalid_promql");
        let text = err.to_string();
        assert!(
            text.starts_with("query: invalid PromQL at character 4"),
            "{text}"
        );
        assert!(query("query", "sum by (job) (rate(x_total[5m]))").is_ok());
    }

    #[test]
    fn matches_must_be_series_selectors() {
        let ok = ["up".to_owned(), "{job=\"a\"}".to_owned()];
        assert!(series_selectors("matches", &ok).is_ok());
        let bad = ["up".to_owned(), "rate(up[5m])".to_owned()];
        let err = series_selectors("matches", &bad).expect_err("expression");
        assert!(
            err.to_string().contains("matches[1]") && err.to_string().contains("function call"),
            "{err}"
        );
        let broken = ["up{".to_owned()];
        let err = series_selectors("matches", &broken).expect_err("syntax");
        assert!(
            err.to_string().contains("matches[0]: invalid PromQL"),
            "{err}"
        );
    }
}
