//! Tenants from GrafanaOrganization resources (`observability.giantswarm.io`,
//! cluster-scoped), kept current by a watch-driven reflector instead of a
//! list per request. A caller's tenants are the union of the tenants of
//! every organization whose `spec.rbac.admins/editors/viewers` names one of
//! its groups exactly. While the API server is unreachable the last state is
//! served for at most `max_staleness`; then requests are refused.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::inbound::tenancy::{ResolveError, TenantResolver};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::time::Instant;

/// How often the API server is probed (a one-item metadata list).
const PROBE_EVERY: Duration = Duration::from_secs(10);

/// The CRD's API group and kind.
pub const GROUP: &str = "observability.giantswarm.io";
pub const KIND: &str = "GrafanaOrganization";

#[derive(Default)]
struct Sync {
    synced: bool,
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

struct Metrics {
    objects: Gauge,
    errors: Counter,
    failing_seconds: Gauge,
}

/// The resolver; cheap to share.
pub struct GrafanaOrgResolver {
    store: Store<DynamicObject>,
    sync: Arc<Mutex<Sync>>,
    max_staleness: Duration,
    metrics: Arc<Metrics>,
}

impl GrafanaOrgResolver {
    /// Starts watching GrafanaOrganizations of `version` through `client`.
    pub fn start(
        client: kube::Client,
        version: &str,
        max_staleness: Duration,
        registry: &mut Registry,
    ) -> Arc<Self> {
        Self::start_probing(client, version, max_staleness, registry, PROBE_EVERY)
    }

    /// As [`Self::start`], probing the API every `probe_every`: an idle
    /// watch yields no events, so only a probe shows the API is back.
    fn start_probing(
        client: kube::Client,
        version: &str,
        max_staleness: Duration,
        registry: &mut Registry,
        probe_every: Duration,
    ) -> Arc<Self> {
        let gvk = GroupVersionKind::gvk(GROUP, version, KIND);
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let probe_api = api.clone();
        let writer = reflector::store::Writer::new(resource);
        let store = writer.as_reader();
        let metrics = Arc::new(Metrics {
            objects: Gauge::default(),
            errors: Counter::default(),
            failing_seconds: Gauge::default(),
        });
        registry.register(
            "mcp_prometheus_grafana_organizations",
            "GrafanaOrganization resources known to the tenancy resolver",
            metrics.objects.clone(),
        );
        registry.register(
            "mcp_prometheus_grafana_organization_watch_errors",
            "Errors watching GrafanaOrganization resources",
            metrics.errors.clone(),
        );
        registry.register(
            "mcp_prometheus_grafana_organization_stale_seconds",
            "How long the Kubernetes watch has been failing (0 when healthy)",
            metrics.failing_seconds.clone(),
        );
        let sync = Arc::new(Mutex::new(Sync::default()));
        let resolver = Arc::new(Self {
            store: store.clone(),
            sync: sync.clone(),
            max_staleness,
            metrics: metrics.clone(),
        });
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let task_sync = sync.clone();
        let task_metrics = metrics.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let mut state = task_sync.lock().unwrap_or_else(|p| p.into_inner());
                match event {
                    Ok(event) => {
                        state.failing_since = None;
                        state.last_error = None;
                        if matches!(event, watcher::Event::InitDone) {
                            state.synced = true;
                        }
                        task_metrics.objects.set(store.state().len() as i64);
                    }
                    Err(error) => {
                        task_metrics.errors.inc();
                        tracing::warn!(%error, "watching GrafanaOrganizations failed");
                        state.failing_since.get_or_insert_with(Instant::now);
                        state.last_error = Some(error.to_string());
                    }
                }
            }
        });
        let tick = Arc::downgrade(&resolver);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(probe_every);
            while let Some(resolver) = {
                interval.tick().await;
                tick.upgrade()
            } {
                let probe = probe_api
                    .list_metadata(&kube::api::ListParams::default().limit(1))
                    .await;
                let mut state = resolver.sync.lock().unwrap_or_else(|p| p.into_inner());
                match probe {
                    Ok(_) => {
                        state.failing_since = None;
                        state.last_error = None;
                    }
                    Err(error) => {
                        state.failing_since.get_or_insert_with(Instant::now);
                        state.last_error = Some(error.to_string());
                    }
                }
                drop(state);
                let _ = resolver.health();
            }
        });
        resolver
    }

    /// `Ok` once the first list arrived and while the state is fresh
    /// enough; the error says why not (for `/readyz` and refusals).
    pub fn health(&self) -> Result<(), String> {
        let state = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        let failing = state.failing_since.map(|t| t.elapsed()).unwrap_or_default();
        self.metrics.failing_seconds.set(failing.as_secs() as i64);
        if !state.synced {
            return Err(format!(
                "GrafanaOrganizations not synced yet{}",
                state
                    .last_error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        if failing > self.max_staleness {
            return Err(format!(
                "the Kubernetes API has been unreachable for {}s (more than max_staleness {:?}): {}",
                failing.as_secs(),
                self.max_staleness,
                state.last_error.clone().unwrap_or_default()
            ));
        }
        Ok(())
    }

    fn tenants_of(&self, groups: &[String]) -> TenantSet {
        let mut tenants = BTreeSet::new();
        for org in self.store.state() {
            let spec = org.data.get("spec");
            let rbac = spec.and_then(|s| s.get("rbac"));
            let member = ["admins", "editors", "viewers"].iter().any(|role| {
                rbac.and_then(|r| r.get(role))
                    .and_then(Value::as_array)
                    .is_some_and(|names| {
                        names
                            .iter()
                            .filter_map(Value::as_str)
                            .any(|n| groups.iter().any(|g| g == n))
                    })
            });
            if !member {
                continue;
            }
            for tenant in spec
                .and_then(|s| s.get("tenants"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // v1alpha1: "name"; v1alpha2: {"name": …, "types": […]}
                let name = tenant
                    .as_str()
                    .or_else(|| tenant.get("name").and_then(Value::as_str));
                if let Some(name) =
                    name.filter(|n| mcp_prometheus_layers::tenant_id::validate(n).is_ok())
                {
                    tenants.insert(name.to_owned());
                }
            }
        }
        TenantSet::new(tenants)
    }
}

impl TenantResolver for GrafanaOrgResolver {
    fn resolve<'a>(
        &'a self,
        groups: &'a [String],
    ) -> Pin<Box<dyn std::future::Future<Output = Result<TenantSet, ResolveError>> + Send + 'a>>
    {
        let result = self
            .health()
            .map_err(ResolveError)
            .map(|()| self.tenants_of(groups));
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests;
