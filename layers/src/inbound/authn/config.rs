//! `[layers.authn]`: which issuers we trust and how their tokens look.

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use crate::duration::ConfigDuration;
use crate::tls::TlsConfig;

/// Resource-server authentication: bearer JWTs from configured issuers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthnConfig {
    pub enabled: bool,
    /// Accepted `aud` values; empty means our resource URL
    /// (`server.public_url` + `server.mcp_path`) and `server.public_url`.
    pub audiences: Vec<String>,
    /// Scopes every token must carry; a token without them gets 403
    /// `insufficient_scope`.
    pub required_scopes: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: ConfigDuration,
    /// Longer tokens are refused before any parsing.
    pub max_token_bytes: usize,
    pub issuers: Vec<IssuerConfig>,
}

impl Default for AuthnConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            audiences: Vec::new(),
            required_scopes: Vec::new(),
            leeway: ConfigDuration::secs(30),
            max_token_bytes: 8192,
            issuers: Vec::new(),
        }
    }
}

/// One trusted token issuer (Dex, Keycloak, Teleport, our own OAuth server).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Must equal the token's `iss`.
    pub issuer: String,
    /// Where the signing keys are; discovered from
    /// `{issuer}/.well-known/openid-configuration` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Accepted signature algorithms. `none` does not exist here; HMAC
    /// algorithms only work with `hmac_secret_file`.
    #[serde(default = "asymmetric_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Claim holding the caller's groups; a dotted path reaches into
    /// objects (`traits.groups` for Teleport).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Header carrying the token: `Authorization` (as `Bearer <jwt>`) or a
    /// header carrying the bare JWT, such as `Teleport-Jwt-Assertion`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Allow discovery and JWKS on loopback or private addresses.
    #[serde(default)]
    pub allow_private_urls: bool,
    #[serde(default)]
    pub tls: TlsConfig,
    /// A shared secret enabling HS256/384/512 for this issuer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_file: Option<PathBuf>,
    /// How often the key set is refreshed in the background of requests.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_interval: ConfigDuration,
    /// An unknown `kid` triggers a refetch at most this often.
    #[serde(default = "default_min_refetch")]
    pub jwks_min_refetch_interval: ConfigDuration,
    /// Whether tenancy matches this issuer's groups by their bare names
    /// (`team-a`) as well as qualified (`<issuer>#team-a`). Default: true
    /// when it is the only issuer, else false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_for_tenancy: Option<bool>,
}

fn asymmetric_algorithms() -> Vec<Algorithm> {
    use Algorithm::*;
    vec![
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
    ]
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_header() -> String {
    "Authorization".into()
}

fn default_refresh() -> ConfigDuration {
    ConfigDuration::secs(600)
}

fn default_min_refetch() -> ConfigDuration {
    ConfigDuration::secs(30)
}

impl IssuerConfig {
    /// An issuer with defaults for everything but its URL.
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_url: None,
            algorithms: asymmetric_algorithms(),
            groups_claim: default_groups_claim(),
            header: default_header(),
            allow_private_urls: false,
            tls: TlsConfig::default(),
            hmac_secret_file: None,
            jwks_refresh_interval: default_refresh(),
            jwks_min_refetch_interval: default_min_refetch(),
            groups_for_tenancy: None,
        }
    }
}
