//! Tool policy: which tools a caller may see and call (Teleport's
//! semantics). Rules match callers by group, subject or issuer and carry
//! `allow` and `deny` lists; a caller's allowed tools are the union of the
//! allows of every rule that matches, minus the union of their denies
//! (deny wins). A caller no rule matches gets `default`.
//!
//! The decision is made here, once per request, and travels as a
//! [`ToolPermissions`] extension: the MCP service hides what it does not
//! allow from `tools/list` and refuses a call to it before any upstream
//! request; the passthrough route asks it for the tool an API path stands
//! for. No request is refused at the HTTP level: a caller allowed nothing
//! still lists (zero) tools and reads why a call fails.

mod pattern;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use http::Response;
use http::request::Parts;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};

use crate::build::{BuildCtx, ToolEntry};
use crate::identity::Principal;
use crate::inbound::gate::{Gate, GateLayer, GateService};
use crate::inbound::selector::{PrincipalSelector, SelectorError};
pub use pattern::PatternError;
use pattern::{ToolMask, resolve};

/// `[layers.policy]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub enabled: bool,
    /// What a caller no rule matches gets; `deny` when rules exist and
    /// this is unset, `allow` when there are none.
    pub default: Option<PolicyDefault>,
    pub rules: Vec<PolicyRule>,
}

/// The verdict for callers no rule matches.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PolicyDefault {
    Allow,
    Deny,
}

/// `[[layers.policy.rules]]`: whom it is about, what it allows and denies.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyRule {
    /// Groups (bare, or `<issuer>#<group>`), as in tenancy.
    pub groups: Vec<String>,
    /// Token subjects (`sub`).
    pub subjects: Vec<String>,
    /// Token issuers (`iss`).
    pub issuers: Vec<String>,
    /// Tool names without the prefix, families, globs or `^regex$`.
    pub allow: Vec<String>,
    /// The same shapes; a tool denied by any matching rule is denied.
    pub deny: Vec<String>,
}

/// A policy that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum PolicyConfigError {
    #[error("layers.policy.rules[{index}] {source}")]
    Selector { index: usize, source: SelectorError },
    #[error("layers.policy.rules[{index}].{list}: {source}")]
    Pattern {
        index: usize,
        list: &'static str,
        source: PatternError,
    },
    #[error("layers.policy.rules[{0}] allows and denies nothing: give it allow or deny")]
    NoTools(usize),
    #[error(
        "layers.policy: rules match callers by identity, which needs [layers.authn] enabled (under stdio, set server.local_principal)"
    )]
    NoIdentity,
    #[error("layers.policy: {0} tools is more than the policy's 64-tool mask")]
    TooManyTools(usize),
}

impl PolicyConfig {
    /// The layer, or `None` when switched off.
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<PolicyLayer>, PolicyConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let catalogue = &ctx.tool_catalogue;
        if catalogue.len() > ToolMask::BITS as usize {
            return Err(PolicyConfigError::TooManyTools(catalogue.len()));
        }
        if !self.rules.is_empty() && !ctx.authn_enabled && ctx.issuers.is_empty() {
            return Err(PolicyConfigError::NoIdentity);
        }
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| compile(index, rule, catalogue, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        let default = self.default.unwrap_or(if self.rules.is_empty() {
            PolicyDefault::Allow
        } else {
            PolicyDefault::Deny
        });
        let everything: ToolMask = if catalogue.len() == ToolMask::BITS as usize {
            ToolMask::MAX
        } else {
            (1 << catalogue.len()) - 1
        };
        let denials = Family::default();
        ctx.register(|registry| {
            registry.register(
                "mcp_prometheus_policy_denials",
                "Tool calls refused by the tool policy, by tool",
                denials.clone(),
            )
        });
        Ok(Some(GateLayer::new(PolicyGate {
            rules,
            default_mask: match default {
                PolicyDefault::Allow => everything,
                PolicyDefault::Deny => 0,
            },
            shared: Arc::new(Shared {
                catalogue: catalogue.clone(),
                denials,
            }),
        })))
    }
}

fn compile(
    index: usize,
    rule: &PolicyRule,
    catalogue: &[ToolEntry],
    ctx: &BuildCtx,
) -> Result<CompiledRule, PolicyConfigError> {
    let selector = PrincipalSelector::new(&rule.groups, &rule.subjects, &rule.issuers, ctx)
        .map_err(|source| PolicyConfigError::Selector { index, source })?;
    if rule.allow.is_empty() && rule.deny.is_empty() {
        return Err(PolicyConfigError::NoTools(index));
    }
    let mask = |list: &'static str, entries: &[String]| {
        entries.iter().try_fold(0, |mask, entry| {
            resolve(entry, catalogue)
                .map(|bits| mask | bits)
                .map_err(|source| PolicyConfigError::Pattern {
                    index,
                    list,
                    source,
                })
        })
    };
    Ok(CompiledRule {
        selector,
        allow: mask("allow", &rule.allow)?,
        deny: mask("deny", &rule.deny)?,
    })
}

/// One rule, its lists resolved against the catalogue.
#[derive(Debug)]
struct CompiledRule {
    selector: PrincipalSelector,
    allow: ToolMask,
    deny: ToolMask,
}

/// What every caller's permissions share.
#[derive(Debug)]
struct Shared {
    catalogue: Vec<ToolEntry>,
    denials: Family<Vec<(&'static str, String)>, Counter>,
}

/// The policy decision: the rules, compiled.
#[derive(Debug)]
pub struct PolicyGate {
    rules: Vec<CompiledRule>,
    default_mask: ToolMask,
    shared: Arc<Shared>,
}

impl PolicyGate {
    /// The tools `principal` (none: an anonymous caller) may use.
    pub fn permissions(&self, principal: Option<&Principal>) -> ToolPermissions {
        let matched = principal.map(|p| self.rules.iter().filter(|rule| rule.selector.matches(p)));
        let (mut allow, mut deny, mut any) = (0, 0, false);
        for rule in matched.into_iter().flatten() {
            allow |= rule.allow;
            deny |= rule.deny;
            any = true;
        }
        let allowed = if any {
            allow & !deny
        } else {
            self.default_mask
        };
        ToolPermissions {
            allowed,
            shared: self.shared.clone(),
        }
    }
}

/// Applies [`PolicyConfig`].
pub type PolicyLayer = GateLayer<PolicyGate>;

/// Service of [`PolicyLayer`].
pub type Policy<S> = GateService<PolicyGate, S>;

impl Gate for PolicyGate {
    async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
        let permissions = self.permissions(parts.extensions.get::<Principal>());
        parts.extensions.insert(permissions);
        Ok(())
    }
}

/// The tools one caller may use, decided by the policy layer.
#[derive(Clone, Debug)]
pub struct ToolPermissions {
    allowed: ToolMask,
    shared: Arc<Shared>,
}

/// A call the policy refuses (counted in the denial metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyDenied;

impl ToolPermissions {
    /// Whether `tool` (unprefixed) is allowed; an unknown name is not.
    pub fn allows(&self, tool: &str) -> bool {
        self.shared
            .catalogue
            .iter()
            .position(|entry| entry.name == tool)
            .is_some_and(|bit| self.allowed & (1 << bit) != 0)
    }

    /// Admits a call of `tool` (unprefixed), or counts and refuses it.
    pub fn permit(&self, tool: &str) -> Result<(), PolicyDenied> {
        if self.allows(tool) {
            return Ok(());
        }
        let label = self
            .shared
            .catalogue
            .iter()
            .find(|entry| entry.name == tool)
            .map_or("unknown", |entry| entry.name.as_str());
        self.shared
            .denials
            .get_or_create(&vec![("tool", label.to_owned())])
            .inc();
        Err(PolicyDenied)
    }
}
