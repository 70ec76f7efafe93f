//! PromQL, parsed once before anything is sent: the shared parse with an
//! error a model can act on (where, what, how to fix), and walkers over the
//! parsed expression for the layers that inspect it (guardrails) or
//! rewrite it (label tenancy). Crate `promql-parser` (GreptimeDB's port of
//! Prometheus's grammar).

mod error;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use error::PromqlError;
pub use promql_parser::parser::Expr;
use promql_parser::parser::VectorSelector;

/// The longest query parsed (Prometheus's own form limit is larger, but a
/// model's query is never this long; the parser's cost grows with it).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// The deepest nesting parsed: the parser, the printer and the walkers
/// recurse once per level, so a query nested thousands deep would
/// overflow a worker's stack and abort the process.
pub const MAX_DEPTH: usize = 128;

/// Parses `query`, or says where and why it is not PromQL.
pub fn parse(query: &str) -> Result<Expr, PromqlError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(PromqlError::too_long(query.len()));
    }
    if query.trim().is_empty() {
        return Err(PromqlError::empty());
    }
    if let Some(at) = too_deep(query) {
        return Err(PromqlError::too_deep(query, at));
    }
    promql_parser::parser::parse(query).map_err(|message| PromqlError::new(query, &message))
}

/// The character position where brackets or signs nest deeper than
/// [`MAX_DEPTH`], if they do (counted outside strings; a run of unary
/// signs counts as nesting too).
fn too_deep(query: &str) -> Option<usize> {
    let (mut depth, mut signs) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, ch) in query.chars().enumerate() {
        if let Some(q) = quote {
            match ch {
                '\\' if q != '`' && !escaped => escaped = true,
                c if c == q && !escaped => quote = None,
                _ => escaped = false,
            }
            continue;
        }
        match ch {
            '"' | '\'' | '`' => quote = Some(ch),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '-' | '+' => signs += 1,
            c if c.is_whitespace() => {}
            _ => signs = 0,
        }
        if depth > MAX_DEPTH || signs > MAX_DEPTH {
            return Some(i + 1);
        }
    }
    None
}

/// A query as a tool parsed it, carried on its upstream request so the
/// outbound layers work on the same parse instead of parsing again.
#[derive(Clone, Debug)]
pub struct ParsedQuery {
    /// The text as sent in the request's `query` parameter.
    pub text: Arc<str>,
    pub expr: Arc<Expr>,
}

impl ParsedQuery {
    /// `text`, parsed.
    pub fn parse(text: &str) -> Result<Self, PromqlError> {
        Ok(Self {
            text: text.into(),
            expr: Arc::new(parse(text)?),
        })
    }
}

/// Every node of `expr`, outer before inner (a matrix selector's vector
/// selector is not a node of its own: look into `MatrixSelector::vs`).
pub fn walk<'e>(expr: &'e Expr, visit: &mut impl FnMut(&'e Expr)) {
    visit(expr);
    match expr {
        Expr::Aggregate(agg) => {
            walk(&agg.expr, visit);
            if let Some(param) = &agg.param {
                walk(param, visit);
            }
        }
        Expr::Unary(unary) => walk(&unary.expr, visit),
        Expr::Binary(binary) => {
            walk(&binary.lhs, visit);
            walk(&binary.rhs, visit);
        }
        Expr::Paren(paren) => walk(&paren.expr, visit),
        Expr::Subquery(sub) => walk(&sub.expr, visit),
        Expr::Call(call) => {
            for arg in &call.args.args {
                walk(arg, visit);
            }
        }
        Expr::Extension(ext) => {
            for child in ext.expr.children() {
                walk(child, visit);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => {}
    }
}

/// Every selector of `expr` (a matrix selector's included), mutably: the
/// one place a rewrite reaches them all (subqueries, function arguments,
/// both sides of binary operations, aggregation parameters).
///
/// Fails on an extension node, whose children cannot be reached mutably:
/// the parser never makes one, so a query carrying one is refused rather
/// than passed unrewritten.
pub fn selectors_mut(
    expr: &mut Expr,
    visit: &mut impl FnMut(&mut VectorSelector),
) -> Result<(), UnreachableNode> {
    match expr {
        Expr::VectorSelector(vs) => visit(vs),
        Expr::MatrixSelector(ms) => visit(&mut ms.vs),
        Expr::Aggregate(agg) => {
            selectors_mut(&mut agg.expr, visit)?;
            if let Some(param) = &mut agg.param {
                selectors_mut(param, visit)?;
            }
        }
        Expr::Unary(unary) => selectors_mut(&mut unary.expr, visit)?,
        Expr::Binary(binary) => {
            selectors_mut(&mut binary.lhs, visit)?;
            selectors_mut(&mut binary.rhs, visit)?;
        }
        Expr::Paren(paren) => selectors_mut(&mut paren.expr, visit)?,
        Expr::Subquery(sub) => selectors_mut(&mut sub.expr, visit)?,
        Expr::Call(call) => {
            for arg in &mut call.args.args {
                selectors_mut(arg, visit)?;
            }
        }
        Expr::Extension(_) => return Err(UnreachableNode),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
    Ok(())
}

/// An expression node whose selectors cannot be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the query holds an expression node this server cannot rewrite")]
pub struct UnreachableNode;

/// Every selector of `expr` (vector and matrix), with the range of a
/// matrix selector.
pub fn selectors(expr: &Expr) -> Vec<(&VectorSelector, Option<std::time::Duration>)> {
    let mut found = Vec::new();
    walk(expr, &mut |node| match node {
        Expr::VectorSelector(vs) => found.push((vs, None)),
        Expr::MatrixSelector(ms) => found.push((&ms.vs, Some(ms.range))),
        _ => {}
    });
    found
}
