//! The benchmark spec the driver reads and the results it writes.

#[allow(unused_imports)]
use super::*;

pub(crate) const MODERN: &str = "2026-07-28";
pub(crate) const LEGACY: &str = "2025-11-25";

#[derive(Deserialize)]
pub(crate) struct Spec {
    pub(crate) scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) rounds: usize,
    pub(crate) concurrency: usize,
    /// Timed requests per target per round (all clients together).
    pub(crate) requests: usize,
    /// Untimed requests per target per round before the timed ones.
    #[serde(default)]
    pub(crate) warmup: usize,
    /// A phase stops issuing requests after this long, whatever `requests` says.
    #[serde(default = "default_max_seconds")]
    pub(crate) max_seconds: f64,
    pub(crate) targets: Vec<Target>,
}

pub(crate) fn default_max_seconds() -> f64 {
    30.0
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// GET url?params against Prometheus's HTTP API.
    Direct,
    /// One stateless 2026-07-28 tools/call per request.
    McpStateless,
    /// initialize + session (2025-11-25) per client, then tools/call.
    McpLegacy,
    /// One 2025-11-25 session per phase, shared by every client (each on its
    /// own connection), then tools/call: the load of one busy agent.
    McpLegacyShared,
}

#[derive(Deserialize, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) params: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) tool: String,
    #[serde(default)]
    pub(crate) arguments: Value,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

#[derive(Serialize, Default)]
pub(crate) struct Phase {
    pub(crate) round: usize,
    pub(crate) position: usize,
    pub(crate) n: usize,
    pub(crate) errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
    pub(crate) wall_s: f64,
    pub(crate) rps: f64,
    pub(crate) median_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
    pub(crate) min_us: f64,
    pub(crate) max_us: f64,
    /// Mean body bytes per answer.
    pub(crate) bytes: f64,
}

#[derive(Serialize)]
pub(crate) struct ScenarioResult {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) requests: usize,
    pub(crate) rounds: usize,
    pub(crate) targets: BTreeMap<String, Vec<Phase>>,
}
