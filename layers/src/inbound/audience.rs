//! Trusted audiences: accept ID tokens minted for listed client IDs (an
//! aggregator forwarding its users' tokens), still bound to the trusted
//! issuers and their signatures.
//!
//! The authn layer verifies signature, issuer and expiry and accepts these
//! client IDs as audiences (the assembly passes them in); this layer then
//! checks that a token admitted only through a trusted client ID comes from
//! an issuer allowed for forwarding, and marks the request as forwarded.

use http::request::Parts;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::build::BuildCtx;
use crate::identity::Principal;
use crate::inbound::gate::{Gate, GateLayer, GateService};
use crate::response::json_error;

/// `[layers.audience]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudienceConfig {
    pub enabled: bool,
    /// Client IDs whose ID tokens are accepted (`OAUTH_TRUSTED_AUDIENCES`).
    pub trusted: Vec<String>,
    /// Issuers whose forwarded tokens are accepted; empty means every
    /// issuer of the authn layer.
    pub issuers: Vec<String>,
}

/// A request authenticated by a token minted for a trusted client ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedFrom(pub String);

/// A config that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum AudienceConfigError {
    #[error(
        "layers.audience: trusted audiences need [layers.authn] enabled (tokens must still be verified)"
    )]
    NoAuthn,
    #[error("layers.audience.trusted: list the client IDs whose tokens are accepted")]
    NoneTrusted,
}

impl AudienceConfig {
    /// The layer, or `None` when switched off; `ctx.token_audiences` are
    /// the audiences that mean "a token for this server".
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<AudienceLayer>, AudienceConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        if !ctx.authn_enabled {
            return Err(AudienceConfigError::NoAuthn);
        }
        if self.trusted.is_empty() {
            return Err(AudienceConfigError::NoneTrusted);
        }
        Ok(Some(GateLayer::new(AudienceCheck {
            trusted: self.trusted.clone(),
            issuers: self.issuers.clone(),
            resource: ctx.token_audiences.clone(),
        })))
    }
}

/// The audience decision: whose tokens this server accepts, and from
/// which issuers a forwarded one may come.
#[derive(Debug)]
pub struct AudienceCheck {
    trusted: Vec<String>,
    issuers: Vec<String>,
    resource: Vec<String>,
}

impl AudienceCheck {
    /// `Ok(None)`: a token for this server; `Ok(Some(client))`: forwarded.
    fn check(&self, principal: &Principal) -> Result<Option<String>, String> {
        if principal
            .audiences
            .iter()
            .any(|a| self.resource.contains(a))
        {
            return Ok(None);
        }
        let Some(client) = principal
            .audiences
            .iter()
            .find(|a| self.trusted.contains(a))
        else {
            return Err("the token's audience is not this server nor a trusted client".into());
        };
        if !self.issuers.is_empty() && !self.issuers.contains(&principal.issuer) {
            return Err(format!(
                "tokens forwarded for {client:?} are accepted only from the configured issuers"
            ));
        }
        Ok(Some(client.clone()))
    }
}

/// Applies [`AudienceConfig`].
pub type AudienceLayer = GateLayer<AudienceCheck>;

/// Service of [`AudienceLayer`].
pub type Audience<S> = GateService<AudienceCheck, S>;

impl Gate for AudienceCheck {
    async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
        let verdict = parts.extensions.get::<Principal>().map(|p| self.check(p));
        match verdict {
            Some(Err(message)) => Err(json_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                &message,
            )),
            Some(Ok(Some(client))) => {
                parts.extensions.insert(ForwardedFrom(client));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;
    use std::convert::Infallible;
    use tower::{Layer, ServiceExt};

    fn principal(aud: &str, iss: &str) -> Principal {
        Principal {
            subject: "alice".into(),
            groups: vec![],
            scopes: vec![],
            issuer: iss.into(),
            client: None,
            audiences: vec![aud.into()],
            session: None,
        }
    }

    async fn run(
        config: &AudienceConfig,
        principal: Principal,
    ) -> (StatusCode, Option<ForwardedFrom>) {
        let ctx = BuildCtx {
            token_audiences: vec!["https://mcp.example/mcp".into()],
            authn_enabled: true,
            ..BuildCtx::default()
        };
        let layer = config.build(&ctx).expect("valid").expect("enabled");
        let svc = layer.layer(tower::service_fn(|req: Request<()>| async move {
            let forwarded = req.extensions().get::<ForwardedFrom>().cloned();
            let mut response = Response::new(String::new());
            response.extensions_mut().insert(forwarded);
            Ok::<_, Infallible>(response)
        }));
        let mut req = Request::new(());
        req.extensions_mut().insert(principal);
        let response = svc.oneshot(req).await.expect("infallible");
        let forwarded = response
            .extensions()
            .get::<Option<ForwardedFrom>>()
            .cloned()
            .flatten();
        (response.status(), forwarded)
    }

    /// Trusts the client ID `muster`, forwarded from `issuers`.
    fn trusting_muster(issuers: &[&str]) -> AudienceConfig {
        AudienceConfig {
            enabled: true,
            trusted: vec!["muster".into()],
            issuers: issuers.iter().map(|i| i.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn own_audience_passes_unmarked() {
        let config = trusting_muster(&[]);
        let (status, forwarded) =
            run(&config, principal("https://mcp.example/mcp", "https://dex")).await;
        assert_eq!((status, forwarded), (StatusCode::OK, None));
    }

    #[tokio::test]
    async fn trusted_client_is_marked_forwarded() {
        let config = trusting_muster(&[]);
        let (status, forwarded) = run(&config, principal("muster", "https://dex")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(forwarded, Some(ForwardedFrom("muster".into())));
    }

    #[tokio::test]
    async fn forwarded_tokens_stay_bound_to_the_issuers() {
        let config = trusting_muster(&["https://dex"]);
        let (status, _) = run(&config, principal("muster", "https://keycloak")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = run(&config, principal("other-client", "https://dex")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn needs_authn_and_a_trusted_client() {
        let config = trusting_muster(&[]);
        let err = config.build(&BuildCtx::default()).expect_err("no authn");
        assert!(err.to_string().contains("need [layers.authn]"), "{err}");
        let none = AudienceConfig {
            trusted: vec![],
            ..config
        };
        let ctx = BuildCtx {
            authn_enabled: true,
            ..BuildCtx::default()
        };
        let err = none.build(&ctx).expect_err("nobody trusted");
        assert!(err.to_string().contains("layers.audience.trusted"), "{err}");
        let off = AudienceConfig::default();
        assert!(off.build(&BuildCtx::default()).expect("off").is_none());
    }
}
