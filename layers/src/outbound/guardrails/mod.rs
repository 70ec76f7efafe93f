//! Outbound cost guardrails: every query the server sends (a tool's or the
//! passthrough's) is judged before it leaves, because one careless PromQL
//! expression — a bare metric with millions of series, `{__name__=~".+"}`,
//! `rate(x[1y])`, a 1s-resolution subquery — can cost the upstream more
//! than a day of ordinary traffic, and a model writes such queries without
//! knowing the data.
//!
//! The layer sits before the tenant layer, so it judges the caller's query
//! as written; its own pre-check requests go through the inner stack
//! (tenant header, credentials, metrics, timeout), so they count only what
//! the caller may read. Rules (`rules.rs`, `precheck.rs`), each named after
//! its limit's config key and switchable with `disabled_rules`:
//! `max_series_per_selector`, `unbounded_regex`, `max_range`, `max_points`,
//! `min_subquery_step`. In `warn` mode the request goes on and its answer
//! carries [`GuardrailDecisions`]; in `enforce` mode it is refused with a
//! [`GuardrailRefusal`] and nothing is sent (but the pre-check). A failed
//! pre-check never blocks. A query that does not parse passes untouched.

mod decision;
mod precheck;
mod request;
mod rules;
mod service;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower::Layer;

pub use decision::{
    GuardrailAction, GuardrailDecision, GuardrailDecisions, GuardrailRefusal, GuardrailRule,
};
pub use service::{Guardrails, GuardrailsFuture};

use crate::build::BuildCtx;
use crate::duration::ConfigDuration;
use decision::DecisionMetrics;
use precheck::Cache;
use rules::Limits;

/// Whether and how the guardrails act.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GuardrailMode {
    /// No layer at all.
    #[default]
    Off,
    /// Send, and tell the caller what the query broke.
    Warn,
    /// Refuse before anything is sent.
    Enforce,
}

/// `[layers.guardrails]` in TOML.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailsConfig {
    pub mode: GuardrailMode,
    /// Rules switched off, by name (the names of their limits below, and
    /// `unbounded_regex`).
    pub disabled_rules: Vec<GuardrailRule>,
    /// Series a selector naming only a metric may select.
    pub max_series_per_selector: u64,
    /// How long the series pre-checks of one request may take in all.
    pub precheck_timeout: ConfigDuration,
    /// How long a pre-check's count is reused.
    pub precheck_cache_ttl: ConfigDuration,
    /// Counts kept at most.
    pub precheck_cache_entries: usize,
    /// The longest range window: matrix selectors, subqueries, a range
    /// query's end - start.
    pub max_range: ConfigDuration,
    /// Points per series of a range query or subquery (Prometheus's own
    /// limit is 11000).
    pub max_points: u64,
    /// The finest subquery resolution.
    pub min_subquery_step: ConfigDuration,
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        Self {
            mode: GuardrailMode::Off,
            disabled_rules: Vec::new(),
            max_series_per_selector: 10_000,
            precheck_timeout: ConfigDuration::secs(2),
            precheck_cache_ttl: ConfigDuration::secs(60),
            precheck_cache_entries: 10_000,
            max_range: ConfigDuration::secs(31 * 86_400),
            max_points: 11_000,
            min_subquery_step: ConfigDuration::secs(10),
        }
    }
}

/// The longest pre-check wait accepted: a guardrail must stay cheap.
const MAX_PRECHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a count may be reused.
const MAX_CACHE_TTL: Duration = Duration::from_secs(86_400);
/// The most counts kept.
const MAX_CACHE_ENTRIES: usize = 1_000_000;
/// Ten years: longer than any retention.
const MAX_MAX_RANGE: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A guardrails config that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardrailsConfigError {
    #[error("`{key}` must be more than 0 and at most {max}, got {got}")]
    Duration {
        key: &'static str,
        max: String,
        got: String,
    },
    #[error("`{key}` must be at least 1 and at most {max}, got {got}")]
    Count {
        key: &'static str,
        max: u64,
        got: u64,
    },
    #[error("`min_subquery_step` ({step}) must not be longer than `max_range` ({range})")]
    StepAboveRange { step: String, range: String },
}

impl GuardrailsConfig {
    /// The layer, or `None` with `mode = "off"`; checks every limit and
    /// registers the decisions metric.
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<GuardrailsLayer>, GuardrailsConfigError> {
        if self.mode == GuardrailMode::Off {
            return Ok(None);
        }
        duration(
            "precheck_timeout",
            self.precheck_timeout,
            MAX_PRECHECK_TIMEOUT,
        )?;
        duration("precheck_cache_ttl", self.precheck_cache_ttl, MAX_CACHE_TTL)?;
        duration("max_range", self.max_range, MAX_MAX_RANGE)?;
        duration("min_subquery_step", self.min_subquery_step, MAX_MAX_RANGE)?;
        count(
            "max_series_per_selector",
            self.max_series_per_selector,
            u64::MAX,
        )?;
        count("max_points", self.max_points, u64::from(u32::MAX))?;
        count(
            "precheck_cache_entries",
            self.precheck_cache_entries as u64,
            MAX_CACHE_ENTRIES as u64,
        )?;
        if self.min_subquery_step.0 > self.max_range.0 {
            return Err(GuardrailsConfigError::StepAboveRange {
                step: rules::human(self.min_subquery_step.0),
                range: rules::human(self.max_range.0),
            });
        }
        Ok(Some(GuardrailsLayer {
            shared: Arc::new(Shared {
                enforce: self.mode == GuardrailMode::Enforce,
                limits: Limits {
                    max_range: self.max_range.0,
                    max_points: self.max_points,
                    min_subquery_step: self.min_subquery_step.0,
                    disabled: self.disabled_rules.clone(),
                },
                max_series: self.max_series_per_selector,
                precheck_timeout: self.precheck_timeout.0,
                cache: Cache::new(self.precheck_cache_ttl.0, self.precheck_cache_entries),
                metrics: ctx.register(DecisionMetrics::register),
            }),
        }))
    }
}

fn duration(
    key: &'static str,
    value: ConfigDuration,
    max: Duration,
) -> Result<(), GuardrailsConfigError> {
    if value.0.is_zero() || value.0 > max {
        return Err(GuardrailsConfigError::Duration {
            key,
            max: rules::human(max),
            got: rules::human(value.0),
        });
    }
    Ok(())
}

fn count(key: &'static str, value: u64, max: u64) -> Result<(), GuardrailsConfigError> {
    if value == 0 || value > max {
        return Err(GuardrailsConfigError::Count {
            key,
            max,
            got: value,
        });
    }
    Ok(())
}

/// What every service of the layer shares: the limits, the pre-check
/// cache (one per process, keyed by upstream) and the metric.
struct Shared {
    enforce: bool,
    limits: Limits,
    max_series: u64,
    precheck_timeout: Duration,
    cache: Cache,
    metrics: Arc<DecisionMetrics>,
}

/// Applies [`Guardrails`]; built by [`GuardrailsConfig::build`].
#[derive(Clone)]
pub struct GuardrailsLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GuardrailsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardrailsLayer")
            .field("enforce", &self.shared.enforce)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for GuardrailsLayer {
    type Service = Guardrails<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Guardrails::new(inner, self.shared.clone())
    }
}
