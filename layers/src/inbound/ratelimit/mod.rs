//! Rate limits per caller: a token bucket per subject (or per tenant set)
//! for tool calls, its rate chosen by the first rule that matches the
//! caller (rules match as the policy's do), and a bucket per client
//! address for requests that carry no credential, checked before authn.
//!
//! Over the limit, an HTTP request that carries a tool call gets `429`
//! with `Retry-After` and a JSON-RPC error body ([`service`]); a call with
//! no HTTP request of its own (stdio) gets an `isError` result from the
//! MCP service, which asks [`RateLimits::check`]. One caller's flood
//! drains only its own bucket.

mod address;
mod buckets;
mod service;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};

use crate::build::BuildCtx;
use crate::identity::{PeerAddr, Principal, TenantSet};
use crate::inbound::selector::{PrincipalSelector, SelectorError};
pub use address::{AddressLimit, AddressLimitLayer, AddressLimited};
use buckets::{Buckets, Rate, retry_after_secs};
pub use service::{CHARGED_RESOURCE_PREFIX, RateLimit, RateLimitLayer};

/// `[layers.ratelimit]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Buckets kept per rule; beyond it, newcomers share one.
    pub max_keys: usize,
    /// Count requests against the last `X-Forwarded-For` address (set
    /// only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    /// Requests without a credential, per client address, before authn.
    pub unauthenticated: Option<RateConfig>,
    /// Callers no rule matches; unset: they are not limited.
    pub default: Option<RateConfig>,
    pub rules: Vec<RateLimitRule>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_keys: 100_000,
            trust_forwarded_for: false,
            unauthenticated: Some(RateConfig {
                per_second: 1.0,
                burst: 20,
            }),
            default: None,
            rules: Vec::new(),
        }
    }
}

/// A steady rate and a burst.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub per_second: f64,
    pub burst: u32,
}

/// What one bucket is shared by.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BucketKey {
    /// Each caller (issuer and subject) has its own.
    #[default]
    Subject,
    /// Every caller reading the same set of tenants shares one (callers
    /// whose sets differ do not).
    Tenant,
}

/// `[[layers.ratelimit.rules]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// The `rule` label of the metric and the name in refusals
    /// (default `rules[<index>]`).
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub issuers: Vec<String>,
    pub per_second: f64,
    pub burst: u32,
    #[serde(default)]
    pub per: BucketKey,
}

/// A rate-limit config that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitConfigError {
    #[error("layers.ratelimit.rules[{index}] {source}")]
    Selector { index: usize, source: SelectorError },
    #[error(
        "layers.ratelimit.{key}: per_second must be between {min} (one a day) and {max}, burst between 1 and {max}, and burst / per_second (the time a drained bucket takes to refill) at most a year",
        min = Rate::MIN_PER_SECOND,
        max = Rate::MAX
    )]
    Rate { key: String },
    #[error("layers.ratelimit.rules[{0}].name: use 1 to 64 letters, digits, '-', '_' or '.'")]
    Name(usize),
    #[error("layers.ratelimit.max_keys: must be between 1 and 1000000")]
    MaxKeys,
    #[error(
        "layers.ratelimit.rules: rules match callers by identity, which needs [layers.authn] enabled (under stdio, set server.local_principal); without identity use only `default` (per client address)"
    )]
    NoIdentity,
}

impl RateLimitConfig {
    /// The two layers (per caller after tenancy, per address before
    /// authn), or `None` when switched off.
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<RateLimitLayers>, RateLimitConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        if !(1..=1_000_000).contains(&self.max_keys) {
            return Err(RateLimitConfigError::MaxKeys);
        }
        let buckets = |key: String, rate: RateConfig| {
            let rate = Rate {
                per_second: rate.per_second,
                burst: rate.burst,
            };
            let buckets = rate.is_valid().then(|| Buckets::new(rate, self.max_keys));
            buckets
                .flatten()
                .map(|b| (rate, b))
                .ok_or(RateLimitConfigError::Rate { key })
        };
        if !self.rules.is_empty() && !ctx.authn_enabled && ctx.issuers.is_empty() {
            return Err(RateLimitConfigError::NoIdentity);
        }
        let mut rules = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let selector = PrincipalSelector::new(&rule.groups, &rule.subjects, &rule.issuers, ctx)
                .map_err(|source| RateLimitConfigError::Selector { index, source })?;
            let name = match &rule.name {
                Some(name) if valid_name(name) => name.clone(),
                Some(_) => return Err(RateLimitConfigError::Name(index)),
                None => format!("rules[{index}]"),
            };
            let rate = RateConfig {
                per_second: rule.per_second,
                burst: rule.burst,
            };
            let (rate, buckets) = buckets(format!("rules[{index}]"), rate)?;
            rules.push(Limit {
                selector: Some(selector),
                name,
                rate,
                per: rule.per,
                buckets,
            });
        }
        if let Some(rate) = self.default {
            let (rate, buckets) = buckets("default".into(), rate)?;
            rules.push(Limit {
                selector: None,
                name: "default".into(),
                rate,
                per: BucketKey::Subject,
                buckets,
            });
        }
        let limited = Family::default();
        ctx.register(|registry| {
            registry.register(
                "mcp_prometheus_ratelimit_limited",
                "Requests and tool calls refused by a rate limit, by rule",
                limited.clone(),
            )
        });
        let address = match self.unauthenticated {
            Some(rate) if ctx.authn_enabled => {
                let (rate, buckets) = buckets("unauthenticated".into(), rate)?;
                Some(AddressLimitLayer::new(AddressLimit::new(
                    rate,
                    buckets,
                    self.max_keys,
                    self.trust_forwarded_for,
                    ctx.verified_headers.clone(),
                    limited.clone(),
                )))
            }
            _ => None,
        };
        let limits = Arc::new(RateLimits { rules, limited });
        Ok(Some(RateLimitLayers {
            by_caller: RateLimitLayer::new(limits, ctx.max_body_bytes.max(1024)),
            by_address: address,
        }))
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What `[layers.ratelimit]` builds.
#[derive(Clone, Debug)]
pub struct RateLimitLayers {
    /// After tenancy: tool calls per caller.
    pub by_caller: RateLimitLayer,
    /// Before authn: requests without a credential per client address
    /// (`None` when authn is off or `unauthenticated` is unset).
    pub by_address: Option<AddressLimitLayer>,
}

/// One rule (or the default), with its buckets.
#[derive(Debug)]
struct Limit {
    /// `None`: the default, for callers no rule matches.
    selector: Option<PrincipalSelector>,
    name: String,
    rate: Rate,
    per: BucketKey,
    buckets: Buckets,
}

/// The per-caller limits: which rule applies to a caller, and its bucket.
#[derive(Debug)]
pub struct RateLimits {
    rules: Vec<Limit>,
    limited: Family<Vec<(&'static str, String)>, Counter>,
}

/// A call refused by a rate limit: which limit, and when to come back.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "rate limit {rule:?} reached ({per_second} calls per second, bursts of {burst}); retry after {retry_after_secs} s"
)]
pub struct Limited {
    pub rule: String,
    pub per_second: f64,
    pub burst: u32,
    pub retry_after_secs: u64,
}

impl RateLimits {
    /// Takes a token for one call of this caller, or says which limit
    /// refused it (counted in the metric). A caller no rule matches, with
    /// no default, is not limited; a caller without identity (authn off)
    /// counts against its address.
    pub fn check(
        &self,
        principal: Option<&Principal>,
        tenants: Option<&TenantSet>,
        peer: Option<&PeerAddr>,
    ) -> Result<(), Limited> {
        let Some(limit) = self.rules.iter().find(|limit| match &limit.selector {
            None => true,
            Some(selector) => principal.is_some_and(|p| selector.matches(p)),
        }) else {
            return Ok(());
        };
        let key = match (limit.per, tenants, principal) {
            (BucketKey::Tenant, Some(tenants), _) => format!("t\u{0}{}", tenants.header_value()),
            (_, _, Some(p)) => format!("s\u{0}{}\u{0}{}", p.issuer, p.subject),
            (_, _, None) => peer.map_or_else(
                || "anonymous".to_owned(),
                |peer| format!("a\u{0}{}", peer.0.ip()),
            ),
        };
        limit.buckets.take(&key, 1).map_err(|wait| {
            self.limited
                .get_or_create(&vec![("rule", limit.name.clone())])
                .inc();
            limited(&limit.name, limit.rate, wait)
        })
    }
}

fn limited(rule: &str, rate: Rate, wait: Duration) -> Limited {
    Limited {
        rule: rule.to_owned(),
        per_second: rate.per_second,
        burst: rate.burst,
        retry_after_secs: retry_after_secs(wait),
    }
}

#[cfg(test)]
mod tests;
