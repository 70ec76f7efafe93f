//! Builds the authn layer from `[layers.authn]`: the one place its settings
//! are checked (start-up and `check-config` alike), every secret file read
//! once.

use std::sync::Arc;

use http::HeaderName;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use prometheus_client::metrics::family::Family;

use super::{Authenticator, AuthnConfig, AuthnLayer, IssuerConfig, IssuerVerifier, JwksCache};
use super::{JwksSource, VerifiedCache, Verifier};
use crate::build::BuildCtx;
use crate::fetch::{Fetch, FetchPolicy, SafeFetcher};
use crate::inbound::gate::GateLayer;

/// A config that cannot work; each names the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthnConfigError {
    #[error(
        "server.public_url: authn needs the URL clients reach us at (our token audience and metadata URL), e.g. \"https://mcp.example.com\""
    )]
    NoPublicUrl,
    #[error(
        "layers.authn.issuers: add at least one [[layers.authn.issuers]] with issuer = \"https://…\""
    )]
    NoIssuer,
    #[error("layers.authn.issuers[{0}].{1}: {2}")]
    IssuerUrl(usize, &'static str, String),
    #[error("layers.authn.issuers[{0}].header: {1:?} is not a header name")]
    Header(usize, String),
    #[error("layers.authn.issuers[{0}].algorithms: {1}")]
    Algorithms(usize, String),
    #[error("layers.authn.issuers[{0}].hmac_secret_file: {1}")]
    Secret(usize, String),
    #[error("layers.authn.issuers[{0}]: {1}")]
    Fetcher(usize, String),
}

impl AuthnConfig {
    /// The layer, or `None` when switched off. Keys of our own issuer and
    /// of any issuer in `ctx.key_sources` come from there; every other
    /// issuer's go through a [`SafeFetcher`].
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<AuthnLayer>, AuthnConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let resource_metadata_url = ctx
            .resource_metadata_url
            .clone()
            .ok_or(AuthnConfigError::NoPublicUrl)?;
        let mut configured = self.issuers.clone();
        if let Some(own) = &ctx.own_issuer {
            // Our own tokens: ES256, verified against our key in process.
            let mut issuer = IssuerConfig::new(own);
            issuer.jwks_url = Some(format!("{own}/oauth/jwks"));
            issuer.algorithms = vec![Algorithm::ES256];
            issuer.allow_private_urls = true;
            configured.push(issuer);
        }
        if configured.is_empty() {
            return Err(AuthnConfigError::NoIssuer);
        }
        let mut issuers = Vec::new();
        for (i, issuer) in configured.iter().enumerate() {
            let fetcher = match ctx.key_sources.get(&issuer.issuer) {
                Some(keys) => keys.clone(),
                None => guarded_fetcher(i, issuer)?,
            };
            issuers.push(verifier_of(i, issuer, fetcher)?);
        }
        let mut audiences = if self.audiences.is_empty() {
            ctx.token_audiences.clone()
        } else {
            self.audiences.clone()
        };
        audiences.extend(ctx.trusted_audiences.iter().cloned());
        let mut headers: Vec<HeaderName> = Vec::new();
        for issuer in &issuers {
            if !headers.contains(&issuer.header) {
                headers.push(issuer.header.clone());
            }
        }
        let failures = Family::default();
        ctx.register(|registry| {
            registry.register(
                "mcp_prometheus_authn_failures",
                "Requests refused by the authn layer, by reason",
                failures.clone(),
            )
        });
        Ok(Some(GateLayer::new(Authenticator {
            verifier: Verifier {
                issuers,
                audiences,
                leeway: self.leeway.0.as_secs(),
                max_token_bytes: self.max_token_bytes,
                cache: VerifiedCache::default(),
            },
            headers,
            required_scopes: self.required_scopes.clone(),
            resource_metadata_url,
            revocations: ctx.revocations.clone(),
            failures,
        })))
    }
}

/// Keys come from `jwks_url`, or are discovered under the issuer (which
/// then must be a URL); either must be https unless private URLs are
/// allowed (a local test issuer).
fn check_key_url(i: usize, issuer: &IssuerConfig) -> Result<(), AuthnConfigError> {
    let (key, fetched) = match &issuer.jwks_url {
        Some(jwks) => ("jwks_url", jwks),
        None => ("issuer", &issuer.issuer),
    };
    let url = url::Url::parse(fetched).map_err(|e| {
        AuthnConfigError::IssuerUrl(
            i,
            key,
            format!(
                "{fetched:?} is not a URL ({e}); give jwks_url when the issuer is not one (Teleport)"
            ),
        )
    })?;
    if url.scheme() != "https" && !(url.scheme() == "http" && issuer.allow_private_urls) {
        return Err(AuthnConfigError::IssuerUrl(
            i,
            key,
            "must be https (or http with allow_private_urls = true for a local test issuer)".into(),
        ));
    }
    Ok(())
}

/// The fetcher an external issuer's discovery and keys go through.
fn guarded_fetcher(i: usize, issuer: &IssuerConfig) -> Result<Arc<dyn Fetch>, AuthnConfigError> {
    check_key_url(i, issuer)?;
    let fetcher = SafeFetcher::new(FetchPolicy {
        allow_private: issuer.allow_private_urls,
        tls: issuer.tls.clone(),
        ..FetchPolicy::default()
    })
    .map_err(|e| AuthnConfigError::Fetcher(i, e.to_string()))?;
    Ok(Arc::new(fetcher))
}

/// One issuer's verifier: its header, algorithms, HMAC secret (read here,
/// once) and key cache.
fn verifier_of(
    i: usize,
    issuer: &IssuerConfig,
    fetcher: Arc<dyn Fetch>,
) -> Result<IssuerVerifier, AuthnConfigError> {
    let header = HeaderName::try_from(issuer.header.as_str())
        .map_err(|_| AuthnConfigError::Header(i, issuer.header.clone()))?;
    if issuer.algorithms.is_empty() {
        return Err(AuthnConfigError::Algorithms(
            i,
            "list at least one algorithm".into(),
        ));
    }
    let wants_hmac = issuer
        .algorithms
        .iter()
        .any(|a| a.family() == AlgorithmFamily::Hmac);
    let hmac = match (&issuer.hmac_secret_file, wants_hmac) {
        (Some(path), true) => {
            let secret = std::fs::read(path)
                .map_err(|e| AuthnConfigError::Secret(i, format!("{}: {e}", path.display())))?;
            let secret = secret.trim_ascii();
            if secret.len() < 32 {
                return Err(AuthnConfigError::Secret(
                    i,
                    "an HMAC secret needs at least 32 bytes".into(),
                ));
            }
            Some(Arc::new(DecodingKey::from_secret(secret)))
        }
        (None, true) => {
            return Err(AuthnConfigError::Algorithms(
                i,
                "HS256/HS384/HS512 need hmac_secret_file (published RSA/EC keys are never HMAC secrets)".into(),
            ));
        }
        (Some(_), false) => {
            return Err(AuthnConfigError::Secret(
                i,
                "list an HS* algorithm to use the secret".into(),
            ));
        }
        (None, false) => None,
    };
    let source = match &issuer.jwks_url {
        Some(url) => JwksSource::Url(url.clone()),
        None => JwksSource::Discover {
            issuer: issuer.issuer.clone(),
        },
    };
    Ok(IssuerVerifier {
        issuer: issuer.issuer.clone(),
        header,
        algorithms: issuer.algorithms.clone(),
        groups_claim: issuer.groups_claim.split('.').map(str::to_owned).collect(),
        hmac,
        jwks: JwksCache::new(
            source,
            fetcher,
            issuer.jwks_refresh_interval.0,
            issuer.jwks_min_refetch_interval.0,
        ),
    })
}
