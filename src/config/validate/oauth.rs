//! Validation of `[oauth]`: what the authorization server needs to start,
//! including that the encryption key parses and is not weak.

use super::{ConfigError, invalid};
use crate::config::Config;

impl Config {
    /// The authorization server's settings, including that the encryption
    /// key parses and is not weak.
    pub(super) fn validate_oauth(&self) -> Result<(), ConfigError> {
        let oauth = &self.oauth;
        if !oauth.enabled {
            return Ok(());
        }
        if self.server.public_url.is_none() {
            return Err(invalid(
                "server.public_url",
                "the OAuth server needs the URL clients reach us at (its issuer), e.g. \"https://mcp.example.com\"",
            ));
        }
        let key = crate::oauth::config::secret_value(&oauth.encryption_key, &oauth.encryption_key_file)
            .map_err(|e| invalid("oauth.encryption_key_file", e.to_string()))?
            .ok_or_else(|| {
                invalid(
                    "oauth.encryption_key",
                    "set encryption_key_file (or MCP_OAUTH_ENCRYPTION_KEY) to 64 hex characters or base64 of 32 bytes",
                )
            })?;
        crate::oauth::check_encryption_key(&key).map_err(|e| invalid("oauth.encryption_key", e))?;
        let provider = &oauth.provider;
        if provider.issuer_url.is_empty() || provider.client_id.is_empty() {
            return Err(invalid(
                "oauth.provider",
                "set issuer_url and client_id of the OIDC provider (Dex) users log in with",
            ));
        }
        let issuer = url::Url::parse(&provider.issuer_url)
            .map_err(|e| invalid("oauth.provider.issuer_url", e.to_string()))?;
        if issuer.scheme() != "https" && !oauth.allow_private_urls {
            return Err(invalid(
                "oauth.provider.issuer_url",
                "must be https (or set allow_private_urls = true for a local provider)",
            ));
        }
        if oauth.storage.kind == crate::oauth::config::StorageKind::Valkey
            && oauth.storage.url.is_empty()
        {
            return Err(invalid(
                "oauth.storage.url",
                "valkey storage needs url = \"redis://…\" (or VALKEY_URL)",
            ));
        }
        if oauth.registration == crate::oauth::config::RegistrationPolicy::Token
            && oauth.registration_token.is_none()
            && oauth.registration_token_file.is_none()
        {
            return Err(invalid(
                "oauth.registration_token",
                "registration = \"token\" needs registration_token_file; or registration = \"off\" / \"public\"",
            ));
        }
        if oauth.access_token_ttl.0.is_zero()
            || oauth.code_ttl.0.is_zero()
            || oauth.refresh_token_ttl.0.is_zero()
            || oauth.refresh_token_max_lifetime.0.is_zero()
            || oauth.client_idle_ttl.0.is_zero()
        {
            return Err(invalid(
                "oauth",
                "token, refresh family and client lifetimes must be more than 0s",
            ));
        }
        if oauth.code_ttl.0 > std::time::Duration::from_secs(600) {
            return Err(invalid(
                "oauth.code_ttl",
                "at most 10m (RFC 6749 §4.1.2): codes are exchanged at once",
            ));
        }
        let public_url = self.server.public_url.as_deref().unwrap_or_default();
        let issuer = oauth.issuer.as_deref().unwrap_or(public_url);
        let callback = provider.redirect_url.as_deref().unwrap_or(public_url);
        let origin = |url: &str| url::Url::parse(url).map(|u| u.origin().ascii_serialization());
        match (origin(issuer), origin(callback)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => {
                return Err(invalid(
                    "oauth.provider.redirect_url",
                    format!(
                        "{callback:?} must be on our issuer's origin ({issuer:?}): the login cookie set at /oauth/authorize must come back to /oauth/callback"
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    "oauth.issuer",
                    "the issuer, public_url and provider.redirect_url must be absolute URLs",
                ));
            }
        }
        if oauth.max_pending_logins == 0 || oauth.max_pending_logins_per_address == 0 {
            return Err(invalid(
                "oauth.max_pending_logins",
                "max_pending_logins and max_pending_logins_per_address must be at least 1",
            ));
        }
        if let Some(bad) = oauth.scopes.iter().find(|s| {
            s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        }) {
            return Err(invalid(
                "oauth.scopes",
                format!("{bad:?} is not a scope: one token each, no spaces or quotes"),
            ));
        }
        if let Some(bad) = oauth
            .client_metadata_allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains(['/', ':', '@', ' ']) || h.contains(".."))
        {
            return Err(invalid(
                "oauth.client_metadata_allowed_hosts",
                format!("{bad:?} is not a host name: list hosts such as \"app.example.com\""),
            ));
        }
        Ok(())
    }
}
