//! The prompts (`prompts/list`, `prompts/get`): guided investigations
//! written against this server's tools. A prompt is offered only to a
//! caller who may call every tool it names: a prompt that sends the model
//! to refused tools would waste its turns.

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};

use super::prompt_args::{self, ArgumentError, PromptArgs};
use super::prompt_text::{self, Slo, Speaker};
use mcp_prometheus_layers::promql::{Expr, parse};

/// One prompt: its name, what it is for, its arguments and the tools
/// (unprefixed) its text sends the model to.
pub struct PromptSpec {
    pub name: &'static str,
    title: &'static str,
    description: &'static str,
    /// (name, description, required)
    arguments: &'static [(&'static str, &'static str, bool)],
    pub needs: &'static [&'static str],
}

const UPSTREAM: (&str, &str, bool) = ("upstream", "Upstream name (default: the first).", false);

/// The prompts, in `prompts/list` order.
pub const PROMPTS: &[PromptSpec] = &[
    PromptSpec {
        name: "investigate_alert",
        title: "Investigate an alert",
        description: "Given an alert name, a guided sequence of tool calls: its state, its rule, its history and the series behind it.",
        arguments: &[
            ("alertname", "The alert's name, e.g. HighErrorRate.", true),
            UPSTREAM,
        ],
        needs: &[
            "get_alerts",
            "get_rules",
            "execute_query",
            "execute_range_query",
            "find_series",
        ],
    },
    PromptSpec {
        name: "cardinality_audit",
        title: "Cardinality audit",
        description: "Which metrics and labels drive the series count, from TSDB stats, label names and counting queries.",
        arguments: &[
            (
                "metric",
                "Focus on this metric name (default: the top metrics).",
                false,
            ),
            UPSTREAM,
        ],
        needs: &["get_tsdb_stats", "list_label_names", "execute_query"],
    },
    PromptSpec {
        name: "slo_burn_rate",
        title: "SLO burn rate",
        description: "Multi-window, multi-burn-rate checks of an availability SLO from an error counter and a total counter.",
        arguments: &[
            (
                "error_metric",
                "Counter of failed events, e.g. http_requests_errors_total.",
                true,
            ),
            (
                "total_metric",
                "Counter of all events, e.g. http_requests_total.",
                true,
            ),
            ("objective", "Objective in per cent, e.g. 99.9.", true),
            ("window", "SLO period, 7d to 366d (default 30d).", false),
            (
                "matchers",
                "Label matchers for both counters, e.g. job=\"api\".",
                false,
            ),
            UPSTREAM,
        ],
        needs: &["validate_query", "execute_query", "execute_range_query"],
    },
];

/// Why `prompts/get` gave no prompt; the message says what to send.
#[derive(Debug)]
pub enum PromptError {
    Unknown(String),
    Denied(&'static str, Vec<&'static str>),
    Argument(ArgumentError),
}

impl From<ArgumentError> for PromptError {
    fn from(error: ArgumentError) -> Self {
        Self::Argument(error)
    }
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(name) => write!(
                f,
                "unknown prompt {:?}; the prompts are {} (prompts/list describes them)",
                name.chars().take(64).collect::<String>(),
                PROMPTS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Denied(name, tools) => write!(
                f,
                "prompt {name:?} uses tools you may not call ({}); prompts/list shows the prompts you may use",
                tools.join(", ")
            ),
            Self::Argument(error) => error.fmt(f),
        }
    }
}

/// The `prompts/list` entry of `spec`.
pub fn listed(spec: &PromptSpec) -> Prompt {
    let arguments = spec
        .arguments
        .iter()
        .map(|(name, description, required)| {
            PromptArgument::new(*name)
                .with_description(*description)
                .with_required(*required)
        })
        .collect();
    Prompt::new(spec.name, Some(spec.description), Some(arguments)).with_title(spec.title)
}

/// The prompt `name` with `arguments` for a caller who may call a tool
/// when `allows` says so; `upstreams` are the configured names (an
/// `upstream` argument must be one of them).
pub fn get(
    name: &str,
    arguments: Option<rmcp::model::JsonObject>,
    prefix: &str,
    upstreams: &[String],
    allows: impl Fn(&str) -> bool,
) -> Result<GetPromptResult, PromptError> {
    let spec = PROMPTS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| PromptError::Unknown(name.to_owned()))?;
    let refused: Vec<&'static str> = spec.needs.iter().copied().filter(|t| !allows(t)).collect();
    if !refused.is_empty() {
        return Err(PromptError::Denied(spec.name, refused));
    }
    let known: Vec<&str> = spec.arguments.iter().map(|(n, _, _)| *n).collect();
    let args = PromptArgs::new(spec.name, &known, arguments)?;
    let upstream = args
        .optional("upstream")
        .map(|u| {
            upstreams
                .iter()
                .find(|known| known.as_str() == u)
                .map(String::as_str)
                .ok_or_else(|| {
                    ArgumentError(format!(
                        "upstream: {:?} is not a configured upstream; send one of {}",
                        u.chars().take(64).collect::<String>(),
                        upstreams.join(", ")
                    ))
                })
        })
        .transpose()?;
    let speaker = Speaker { prefix, upstream };
    let text = match spec.name {
        "investigate_alert" => {
            let alert = args.required("alertname", "HighErrorRate")?;
            let literal = prompt_args::string_literal("alertname", alert)?;
            prompt_text::investigate_alert(&speaker, alert, &literal)
        }
        "cardinality_audit" => {
            let metric = args
                .optional("metric")
                .map(|m| prompt_args::metric_name("metric", m))
                .transpose()?;
            prompt_text::cardinality_audit(&speaker, metric)
        }
        _ => {
            let errors = args.required("error_metric", "http_requests_errors_total")?;
            let total = args.required("total_metric", "http_requests_total")?;
            let slo = Slo {
                errors: prompt_args::metric_name("error_metric", errors)?,
                total: prompt_args::metric_name("total_metric", total)?,
                matchers: args.optional("matchers").map(matchers).transpose()?,
                budget: prompt_args::error_budget(
                    "objective",
                    args.required("objective", "99.9")?,
                )?,
                window: prompt_args::window("window", args.optional("window").unwrap_or("30d"))?,
            };
            prompt_text::slo_burn_rate(&speaker, &slo)
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(spec.description),
    )
}

/// Checks that `value` is label matchers only (`job="api",code=~"5.."`):
/// wrapped in braces it must parse as a selector without a metric name,
/// so that after a metric name it stays one selector.
fn matchers(value: &str) -> Result<&str, ArgumentError> {
    let bad = |why: &str| {
        ArgumentError(format!(
            "matchers: {why}; send label matchers only, e.g. job=\"api\",instance=~\"web-.*\""
        ))
    };
    // A `#` would comment out the rest of the line the matchers go into.
    if value.contains(['#', '\n', '\r']) {
        return Err(bad("no comments or line breaks"));
    }
    match parse(&format!("{{{value}}}")) {
        Ok(Expr::VectorSelector(selector))
            if selector.name.is_none() && selector.matchers.or_matchers.is_empty() =>
        {
            if selector
                .matchers
                .matchers
                .iter()
                .any(|m| m.name == "__name__")
            {
                return Err(bad("__name__ is set by error_metric and total_metric"));
            }
            Ok(value)
        }
        Ok(_) => Err(bad("this is not a list of label matchers")),
        Err(error) => Err(bad(&format!("does not parse ({error})"))),
    }
}

#[cfg(test)]
#[path = "prompts_tests.rs"]
mod tests;
