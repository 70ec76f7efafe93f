//! The PromQL half of label tenancy: the caller's tenants as one matcher,
//! added to every selector of a query or a series selector.
//!
//! Why it is sound: Prometheus ANDs the matchers of a selector, so adding
//! ours can only narrow what a selector reads; a caller's own matcher on the
//! label stays and is intersected with ours (`tenant="b"` by a caller of `a`
//! selects nothing). The one construct where matchers are not ANDed is an
//! `or` inside the braces (`{a="1" or b="2"}`): there ours joins every
//! group. What is sent is the expression's text as `promql-parser` prints
//! it, and only after that text parses back to the very same expression
//! with our matcher in every selector: a construct the printer would
//! render differently (a negative `@`, an empty `by ()`) is refused rather
//! than sent changed.

use promql_parser::label::Matcher;
use promql_parser::parser::{Expr, VectorSelector};

use crate::identity::TenantSet;
use crate::promql::{self, PromqlError, UnreachableNode};
use crate::tenant_id::{self, TenantIdError};

/// Why a query or selector cannot be scoped.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error(transparent)]
    Promql(#[from] PromqlError),
    #[error(transparent)]
    Unreachable(#[from] UnreachableNode),
    #[error(
        "a selector mixes plain matchers with `or` groups in a way this server cannot scope; write each `or` group in full"
    )]
    MixedOrGroups,
    #[error(
        "this query cannot be sent exactly as written once scoped to your tenants (it would be sent as `{sent}`); write it in that form, or avoid the construct that changes (an empty `by ()`, `ignoring ()`, a negative `@` time)"
    )]
    Lossy { sent: String },
    #[error(
        "the query scoped to your tenants is no longer valid PromQL ({0}); shorten or simplify it"
    )]
    Reparse(PromqlError),
    #[error(
        "a series selector is a metric name and/or label matchers in braces, e.g. up{{job=\"api\"}}, without offset or @; {0:?} is not one"
    )]
    NotASelector(String),
    #[error(
        "info() with one argument looks up target_info series by their job and instance alone, which no tenant matcher can scope; give the info series selector as its second argument: info(x, target_info{{…}})"
    )]
    UnscopableInfo,
    #[error(transparent)]
    Tenant(#[from] TenantIdError),
    #[error("internal: the tenant matcher could not be built")]
    Matcher,
}

/// The caller's tenants as a matcher on the tenant label: `label="a"` for
/// one tenant, `label=~"^(?:a|b)$"` for several (IDs regex-escaped).
#[derive(Clone, Debug)]
pub struct TenantMatcher {
    matcher: Matcher,
}

impl TenantMatcher {
    /// The matcher for `tenants` (validated tenant IDs, at least one) on
    /// `label` (a validated label name). Built by parsing its own text, so
    /// it is exactly what the parser makes of the text we send.
    pub fn new(label: &str, tenants: &TenantSet) -> Result<Self, RewriteError> {
        for tenant in tenants.as_slice() {
            tenant_id::validate(tenant)?;
        }
        let selector = match tenants.as_slice() {
            [] => return Err(RewriteError::Matcher),
            [one] => format!("{{{label}=\"{}\"}}", quote(one)),
            several => {
                let alternatives: Vec<String> = several.iter().map(|t| regex_escape(t)).collect();
                format!(
                    "{{{label}=~\"{}\"}}",
                    quote(&format!("^(?:{})$", alternatives.join("|")))
                )
            }
        };
        match promql::parse(&selector)? {
            Expr::VectorSelector(VectorSelector {
                name: None,
                matchers,
                ..
            }) if matchers.or_matchers.is_empty() && matchers.matchers.len() == 1 => matchers
                .matchers
                .into_iter()
                .next()
                .map(|matcher| Self { matcher })
                .ok_or(RewriteError::Matcher),
            _ => Err(RewriteError::Matcher),
        }
    }

    /// The matcher itself.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// A series selector of only this matcher (`{tenant="a"}`): the
    /// `match[]` added where a request has none.
    pub fn selector(&self) -> String {
        VectorSelector::new(
            None,
            promql_parser::label::Matchers::one(self.matcher.clone()),
        )
        .to_string()
    }

    /// Adds the matcher to one selector: to its matchers, or to each of its
    /// `or` groups.
    fn scope(&self, vs: &mut VectorSelector) -> Result<(), RewriteError> {
        let matchers = &mut vs.matchers;
        if matchers.or_matchers.is_empty() {
            matchers.matchers.push(self.matcher.clone());
        } else if matchers.matchers.is_empty() {
            for group in &mut matchers.or_matchers {
                group.push(self.matcher.clone());
            }
        } else {
            return Err(RewriteError::MixedOrGroups);
        }
        Ok(())
    }

    /// Whether `vs` carries the matcher in every alternative it selects.
    pub fn scopes(&self, vs: &VectorSelector) -> bool {
        let matchers = &vs.matchers;
        if matchers.or_matchers.is_empty() {
            matchers.matchers.contains(&self.matcher)
        } else {
            matchers.matchers.is_empty()
                && matchers
                    .or_matchers
                    .iter()
                    .all(|group| group.contains(&self.matcher))
        }
    }

    /// `query` with the matcher in every selector. `parsed` is the tool's
    /// parse of the same text, when it made one.
    pub fn rewrite_query(
        &self,
        query: &str,
        parsed: Option<&Expr>,
    ) -> Result<String, RewriteError> {
        let mut expr = match parsed {
            Some(expr) => expr.clone(),
            None => promql::parse(query)?,
        };
        // Prometheus evaluates a one-argument info() with a Select of its
        // own (`target_info` by job and instance): tenants cannot scope it.
        let mut unscopable = false;
        promql::walk(&expr, &mut |node| {
            if let Expr::Call(call) = node
                && call.func.name == "info"
                && call.args.args.len() < 2
            {
                unscopable = true;
            }
        });
        if unscopable {
            return Err(RewriteError::UnscopableInfo);
        }
        let mut failed = None;
        promql::selectors_mut(&mut expr, &mut |vs| {
            if let Err(error) = self.scope(vs) {
                failed.get_or_insert(error);
            }
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
        self.emit(&expr)
    }

    /// A series selector (`match[]`) with the matcher added.
    pub fn rewrite_selector(&self, selector: &str) -> Result<String, RewriteError> {
        let not_one = || RewriteError::NotASelector(selector.chars().take(200).collect());
        let mut expr = promql::parse(selector).map_err(|_| not_one())?;
        match &mut expr {
            Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => self.scope(vs)?,
            _ => return Err(not_one()),
        }
        self.emit(&expr)
    }

    /// The text of `expr`, once it is known to parse back to `expr` itself
    /// with the matcher in every selector.
    fn emit(&self, expr: &Expr) -> Result<String, RewriteError> {
        let text = expr.to_string();
        let again = promql::parse(&text).map_err(RewriteError::Reparse)?;
        let scoped = promql::selectors(&again)
            .iter()
            .all(|(vs, _)| self.scopes(vs));
        if !scoped || normalized(again)? != normalized(expr.clone())? {
            return Err(RewriteError::Lossy { sent: text });
        }
        Ok(text)
    }
}

/// `expr` with each selector's plain matchers in the order the printer
/// writes them (sorted by their text): the one difference between an
/// expression and its printed text parsed again that changes nothing
/// (matchers are ANDed). `or` groups are printed in order and stay so.
fn normalized(mut expr: Expr) -> Result<Expr, RewriteError> {
    promql::selectors_mut(&mut expr, &mut |vs| {
        vs.matchers
            .matchers
            .sort_by_cached_key(|matcher| matcher.to_string());
    })?;
    Ok(expr)
}

/// `id` as a literal in a regular expression (RE2 and Rust's `regex` read
/// these escapes alike). Tenant IDs are letters, digits and `! - _ . * ' ( )`
/// (validated before); every other character is escaped too, so an ID that
/// slipped past validation still matches only itself.
pub fn regex_escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len() * 2);
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '!' | '\'') {
            out.push(c);
        } else if c.is_ascii_punctuation() {
            out.push('\\');
            out.push(c);
        } else {
            // Not ASCII punctuation: a literal in both engines as it is
            // (validation refuses these IDs before they get here).
            out.push(c);
        }
    }
    out
}

/// `text` inside a double-quoted PromQL string.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
