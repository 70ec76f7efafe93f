//! What every layer builder gets besides its own `[layers.*]` table.
//!
//! Every layer config has the same shape, `XConfig::build(&self,
//! &BuildCtx) -> Result<Option<XLayer>, XConfigError>` (`None`: switched
//! off), and that builder is the one place its settings are checked: the
//! server's stack module calls it at start-up and `check-config` calls the
//! very same code. What one layer needs to know of the server or of another
//! layer (our audiences, the trusted client IDs, a tenant resolver) travels
//! here, decided once by the assembly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::fetch::Fetch;
use crate::inbound::authn::RevocationCheck;
use crate::inbound::tenancy::TenantResolver;
use crate::trace::SpanHook;

/// One tool of the catalogue policy rules are written against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolEntry {
    /// The name without the configured prefix (`get_config`).
    pub name: String,
    /// Its family, a shorthand rules may use (`status`).
    pub family: String,
}

/// The server-wide facts layer builders read; see the module docs.
#[derive(Default)]
pub struct BuildCtx {
    /// Where builders register their metric families (through
    /// [`BuildCtx::register`]).
    pub registry: RefCell<Registry>,
    /// The MCP route (`server.mcp_path`): the HTTP metrics' fixed `route`
    /// label of the authenticated stack.
    pub mcp_route: String,
    /// The tool names we serve (with the configured prefix): the only
    /// values a metric's `tool` label takes besides `unknown` and `other`.
    pub tool_names: Vec<String>,
    /// Every tool we serve, unprefixed, with its family (`query`,
    /// `discovery`, `status`, `alerting`): what policy rules name.
    pub tool_catalogue: Vec<ToolEntry>,
    /// The largest request body any layer reads (`layers.limits.max_body_bytes`,
    /// applied even when the limits layer is off).
    pub max_body_bytes: usize,
    /// Audiences that mean "a token for this server": `layers.authn.audiences`
    /// when set, else our resource and public URLs.
    pub token_audiences: Vec<String>,
    /// Client IDs the audience layer trusts (empty when it is off): authn
    /// accepts them as audiences too.
    pub trusted_audiences: Vec<String>,
    /// RFC 9728 metadata URL sent in every authn challenge; `None` when
    /// `server.public_url` is unset.
    pub resource_metadata_url: Option<String>,
    /// The headers authn verifies a token in (empty when it is off): the
    /// only ones a `forward` upstream may pass on without
    /// `forward_unverified`.
    pub verified_headers: Vec<http::HeaderName>,
    /// Every issuer authn accepts tokens from (ours included), as in `iss`.
    pub issuers: Vec<String>,
    /// Issuers whose groups tenancy also matches by their bare names
    /// (`groups_for_tenancy`; the only issuer by default). Every issuer's
    /// groups match as `<issuer>#<group>`.
    pub bare_group_issuers: Vec<String>,
    /// Whether `[layers.authn]` is on (audience and group-based tenancy
    /// need a verified caller).
    pub authn_enabled: bool,
    /// Our own authorization server's issuer, when `[oauth]` runs: authn
    /// accepts its ES256 tokens.
    pub own_issuer: Option<String>,
    /// Where an issuer's keys come from instead of the guarded network
    /// fetcher (our own keys, in process), by issuer.
    pub key_sources: HashMap<String, Arc<dyn Fetch>>,
    /// Revocations of logins of our own authorization server.
    pub revocations: Option<Arc<dyn RevocationCheck>>,
    /// Resolves tenants for modes the layer cannot on its own
    /// (grafana-organization).
    pub tenant_resolver: Option<Arc<dyn TenantResolver>>,
    /// Links request spans to the exporter's trace, when spans are exported.
    pub span_hook: Option<SpanHook>,
}

impl BuildCtx {
    /// A context whose builders register their metrics in `registry`.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry: RefCell::new(registry),
            ..Self::default()
        }
    }

    /// Lets a builder register its metric families.
    pub fn register<T>(&self, register: impl FnOnce(&mut Registry) -> T) -> T {
        register(&mut self.registry.borrow_mut())
    }

    /// The registry with every family the builders registered.
    pub fn into_registry(self) -> Registry {
        self.registry.into_inner()
    }
}
