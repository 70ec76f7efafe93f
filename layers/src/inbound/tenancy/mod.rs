//! Inbound tenancy: the caller's [`Principal`] becomes the [`TenantSet`] it
//! may read, through a [`TenantResolver`], cached per group set. A caller
//! with no tenants gets 403 here, before any tool runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::request::Parts;
use http::{Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::build::BuildCtx;
use crate::duration::ConfigDuration;
use crate::identity::{Principal, TenancyEnforced, TenantSet};
use crate::inbound::gate::{Gate, GateLayer, GateService};
use crate::response::json_error;
use crate::tenant_id;

/// How tenants are found.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TenancyMode {
    /// Single-tenant Prometheus: no `X-Scope-OrgID`.
    #[default]
    None,
    /// The same tenants for everyone (works without authn).
    Static,
    /// Groups → tenants from `[layers.tenancy.groups]`.
    GroupMap,
    /// GrafanaOrganization resources in Kubernetes.
    GrafanaOrganization,
}

/// How the caller's tenants reach the upstream.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// `X-Scope-OrgID` (Mimir, Cortex, a tenant-routing proxy).
    #[default]
    Header,
    /// A matcher on a label in every selector, and answers filtered by it
    /// (one Prometheus or Thanos holding every tenant's series):
    /// [`crate::outbound::tenant_label`].
    Label,
}

/// `[layers.tenancy]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenancyConfig {
    pub enabled: bool,
    pub mode: TenancyMode,
    /// Static mode: everyone's tenants; also what stdio uses.
    pub tenants: Vec<String>,
    /// Group-map mode: group → tenants (`TENANCY_STATIC_GROUP_MAP`).
    pub groups: BTreeMap<String, Vec<String>>,
    /// Most tenants one upstream request may name.
    pub max_tenants_per_request: usize,
    /// How long a group set's tenants are cached.
    pub cache_ttl: ConfigDuration,
    /// grafana-organization mode: how long the last known resources keep
    /// being served while the Kubernetes API is unreachable; after that,
    /// requests are refused (fail closed).
    pub max_staleness: ConfigDuration,
    /// grafana-organization mode: the CRD version to watch (`v1alpha1` or
    /// `v1alpha2`; both tenant shapes are read either way).
    pub crd_version: String,
    /// Whether tenants travel as `X-Scope-OrgID` or as a label matcher.
    pub enforce: Enforcement,
    /// Label mode: the label that names a series' tenant (`tenant` when
    /// unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Label mode: tools (unprefixed) whose answers cannot be scoped by the
    /// label, allowed anyway; every other such tool is refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_unscoped_tools: Vec<String>,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: TenancyMode::None,
            tenants: Vec::new(),
            groups: BTreeMap::new(),
            max_tenants_per_request: 16,
            cache_ttl: ConfigDuration::secs(60),
            max_staleness: ConfigDuration::secs(300),
            crd_version: "v1alpha2".into(),
            enforce: Enforcement::Header,
            label: None,
            label_unscoped_tools: Vec::new(),
        }
    }
}

/// Why tenants could not be resolved; the request is refused (fail closed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// Turns a principal into its tenants. Implemented here for the static and
/// group-map modes, and by the Kubernetes resolver.
pub trait TenantResolver: Send + Sync + 'static {
    /// The tenants `groups` may read.
    fn resolve<'a>(
        &'a self,
        groups: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<TenantSet, ResolveError>> + Send + 'a>>;
}

/// Everyone gets the same tenants.
pub struct StaticResolver(pub TenantSet);

impl TenantResolver for StaticResolver {
    fn resolve<'a>(
        &'a self,
        _: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<TenantSet, ResolveError>> + Send + 'a>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

/// The union of the tenants mapped to each of the caller's groups.
pub struct GroupMapResolver(pub BTreeMap<String, Vec<String>>);

impl TenantResolver for GroupMapResolver {
    fn resolve<'a>(
        &'a self,
        groups: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<TenantSet, ResolveError>> + Send + 'a>> {
        let tenants = groups
            .iter()
            .filter_map(|g| self.0.get(g))
            .flatten()
            .cloned();
        Box::pin(std::future::ready(Ok(TenantSet::new(tenants))))
    }
}

/// A config that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum TenancyConfigError {
    #[error("layers.tenancy.{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> TenancyConfigError {
    TenancyConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl TenancyConfig {
    /// Checks tenant IDs and the mode's settings.
    fn check(&self, ctx: &BuildCtx) -> Result<(), TenancyConfigError> {
        if matches!(
            self.mode,
            TenancyMode::GroupMap | TenancyMode::GrafanaOrganization
        ) && !ctx.authn_enabled
        {
            return Err(invalid(
                "mode",
                "group-based tenancy needs [layers.authn] enabled: without a verified caller there are no groups (use mode = \"static\" for a fixed tenant list)",
            ));
        }
        if self.mode == TenancyMode::GrafanaOrganization
            && !matches!(self.crd_version.as_str(), "v1alpha1" | "v1alpha2")
        {
            return Err(invalid("crd_version", "must be v1alpha1 or v1alpha2"));
        }
        for tenant in &self.tenants {
            tenant_id::validate(tenant).map_err(|e| invalid("tenants", e.to_string()))?;
        }
        for (group, tenants) in &self.groups {
            for tenant in tenants {
                tenant_id::validate(tenant)
                    .map_err(|e| invalid(format!("groups.{group}"), e.to_string()))?;
            }
        }
        if self.max_tenants_per_request == 0 {
            return Err(invalid("max_tenants_per_request", "must be at least 1"));
        }
        groups::check(self, ctx)?;
        match self.mode {
            TenancyMode::Static if self.tenants.is_empty() => {
                Err(invalid("tenants", "static mode needs tenants = [\"…\"]"))
            }
            TenancyMode::GroupMap if self.groups.is_empty() => Err(invalid(
                "groups",
                "group-map mode needs a [layers.tenancy.groups] table (or TENANCY_STATIC_GROUP_MAP)",
            )),
            _ => Ok(()),
        }
    }

    /// The layer, or `None` when switched off or in mode `none`;
    /// `ctx.tenant_resolver` is required for modes not built in
    /// (grafana-organization).
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<TenancyLayer>, TenancyConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        self.check(ctx)?;
        let resolver: Arc<dyn TenantResolver> = match (self.mode, ctx.tenant_resolver.clone()) {
            (TenancyMode::None, _) => return Ok(None),
            (_, Some(resolver)) => resolver,
            (TenancyMode::Static, None) => {
                Arc::new(StaticResolver(TenantSet::new(self.tenants.clone())))
            }
            (TenancyMode::GroupMap, None) => Arc::new(GroupMapResolver(self.groups.clone())),
            (TenancyMode::GrafanaOrganization, None) => {
                return Err(invalid(
                    "mode",
                    "grafana-organization needs the Kubernetes resolver",
                ));
            }
        };
        let lookups = Family::<CacheLabels, Counter>::default();
        ctx.register(|registry| {
            registry.register(
                "mcp_prometheus_tenancy_cache_requests",
                "Tenant lookups by cache result",
                lookups.clone(),
            )
        });
        Ok(Some(GateLayer::new(TenantLookup {
            resolver,
            needs_principal: self.mode != TenancyMode::Static,
            bare_group_issuers: ctx.bare_group_issuers.iter().cloned().collect(),
            ttl: self.cache_ttl.0,
            cache: Mutex::new(HashMap::new()),
            lookups,
        })))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

/// Distinct group sets cached at most; the cache is cleared when full.
const CACHE_CAPACITY: usize = 10_000;

/// The tenancy decision: the caller's groups → the tenants it may read,
/// cached per group set.
pub struct TenantLookup {
    resolver: Arc<dyn TenantResolver>,
    needs_principal: bool,
    /// Issuers whose groups also count by their bare names.
    bare_group_issuers: HashSet<String>,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (Instant, TenantSet)>>,
    lookups: Family<CacheLabels, Counter>,
}

impl TenantLookup {
    async fn tenants(&self, groups: &[String]) -> Result<TenantSet, ResolveError> {
        let key = cache_key(groups);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, set)| set.clone());
        if let Some(set) = cached {
            self.lookups
                .get_or_create(&CacheLabels { result: "hit" })
                .inc();
            return Ok(set);
        }
        self.lookups
            .get_or_create(&CacheLabels { result: "miss" })
            .inc();
        let set = self.resolver.resolve(groups).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), set.clone()));
        Ok(set)
    }
}

/// The cache key of a group list: its SHA-256, so an entry costs the same
/// however many (and however long) groups a token carries.
fn cache_key(groups: &[String]) -> [u8; 32] {
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for group in groups {
        digest.update(&(group.len() as u64).to_be_bytes());
        digest.update(group.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    key
}

fn forbidden(description: String) -> Response<String> {
    json_error(StatusCode::FORBIDDEN, "forbidden", &description)
}

/// Resolves tenants for every request.
pub type TenancyLayer = GateLayer<TenantLookup>;

/// Service of [`TenancyLayer`].
pub type Tenancy<S> = GateService<TenantLookup, S>;

impl Gate for TenantLookup {
    async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
        let principal = parts.extensions.get::<Principal>();
        if self.needs_principal && principal.is_none() {
            return Err(forbidden(
                "tenancy needs an authenticated caller: enable [layers.authn]".into(),
            ));
        }
        let groups = principal.map(|p| p.groups.clone()).unwrap_or_default();
        let names = principal
            .map(|p| groups::lookup_names(p, &self.bare_group_issuers))
            .unwrap_or_default();
        let tenants = match self.tenants(&names).await {
            Ok(tenants) => tenants,
            Err(error) => return Err(forbidden(format!("cannot resolve tenants: {error}"))),
        };
        if tenants.is_empty() {
            let who = parts.extensions.get::<Principal>().map_or_else(
                || "the caller".to_owned(),
                |p| format!("user {:?}", p.subject),
            );
            return Err(forbidden(format!(
                "{who} has no access to any tenant (groups: {}); ask an administrator to map a group to a tenant",
                if groups.is_empty() {
                    "none".into()
                } else {
                    groups.join(", ")
                }
            )));
        }
        parts.extensions.insert(tenants);
        parts.extensions.insert(TenancyEnforced);
        Ok(())
    }
}

pub(crate) mod groups;

#[cfg(test)]
mod tests;
