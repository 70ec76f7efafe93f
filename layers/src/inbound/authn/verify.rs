//! Token verification: from a raw JWT to a [`Principal`].

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::JwksCache;
use crate::correlation::correlation_id;
use crate::identity::Principal;

/// Why a token was refused; the text goes to the client in
/// `error_description`, the [`AuthError::reason`] label to metrics.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's issuer {0:?} is not trusted here")]
    UnknownIssuer(String),
    #[error("the token's algorithm {0:?} is not accepted for this issuer")]
    Algorithm(String),
    #[error("no signing key matches the token's key id")]
    UnknownKey,
    /// The detail (URLs, addresses) is logged with the id, never told to
    /// an unauthenticated caller.
    #[error("the signing keys are unavailable right now; try again shortly (correlation id {0})")]
    KeysUnavailable(String),
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's audience is not this server")]
    Audience,
    #[error("the token was revoked: log in again")]
    Revoked,
    #[error("cannot check whether the token was revoked; try again")]
    RevocationUnknown,
    #[error("the token lacks a required claim: {0}")]
    MissingClaim(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl AuthError {
    /// Low-cardinality label for `mcp_prometheus_authn_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::TooLarge(_) => "too_large",
            Self::Malformed => "malformed",
            Self::UnknownIssuer(_) => "unknown_issuer",
            Self::Algorithm(_) => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable(_) => "keys_unavailable",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Audience => "audience",
            Self::Revoked => "revoked",
            Self::RevocationUnknown => "revocation_unknown",
            Self::MissingClaim(_) => "missing_claim",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// One trusted issuer, ready to verify.
pub struct IssuerVerifier {
    pub issuer: String,
    pub header: http::HeaderName,
    pub algorithms: Vec<Algorithm>,
    pub groups_claim: Vec<String>,
    pub hmac: Option<Arc<DecodingKey>>,
    pub jwks: Arc<JwksCache>,
}

/// Everything needed to verify tokens from any trusted issuer.
pub struct Verifier {
    pub issuers: Vec<IssuerVerifier>,
    pub audiences: Vec<String>,
    pub leeway: u64,
    pub max_token_bytes: usize,
    /// Tokens verified lately, so a client's every request does not pay a
    /// signature check again; see [`VerifiedCache`].
    pub cache: VerifiedCache,
}

/// Verified tokens and their principals, kept until the token expires or
/// for at most [`VerifiedCache::MAX_AGE`] (so a key removed from the JWKS
/// stops working within that time), keyed by header and whole token.
#[derive(Default)]
pub struct VerifiedCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Principal)>>,
}

impl VerifiedCache {
    /// The longest a verification is reused.
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);
    const CAPACITY: usize = 10_000;

    fn get(&self, token: &str) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(token)
            .filter(|(until, _)| *until > std::time::Instant::now())
            .map(|(_, principal)| principal.clone())
    }

    fn put(&self, token: &str, principal: &Principal, exp: Option<u64>) {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let remaining = exp.map_or(0, |exp| exp.saturating_sub(now_unix));
        let keep = Self::MAX_AGE.min(std::time::Duration::from_secs(remaining));
        if keep.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::CAPACITY {
            let now = std::time::Instant::now();
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            token.to_owned(),
            (std::time::Instant::now() + keep, principal.clone()),
        );
    }
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

impl Verifier {
    /// Verifies `token`, which arrived in header `header`.
    pub async fn verify(
        &self,
        header: &http::HeaderName,
        token: &str,
    ) -> Result<Principal, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TooLarge(self.max_token_bytes));
        }
        // The header is part of the key: a token is valid only in the
        // header its issuer is configured for.
        let cache_key = format!("{header}\n{token}");
        if let Some(principal) = self.cache.get(&cache_key) {
            return Ok(principal);
        }
        let jwt_header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        let issuer = peek_issuer(token)?;
        let trusted = self
            .issuers
            .iter()
            .find(|i| i.issuer == issuer && i.header == *header)
            .ok_or_else(|| AuthError::UnknownIssuer(issuer.clone()))?;
        let alg = jwt_header.alg;
        if !trusted.algorithms.contains(&alg) {
            return Err(AuthError::Algorithm(format!("{alg:?}")));
        }
        let keys: Vec<Arc<DecodingKey>> = if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
            // Only the configured secret: never a published RSA/EC key.
            trusted.hmac.clone().into_iter().collect()
        } else {
            trusted
                .jwks
                .keys_for(jwt_header.kid.as_deref())
                .await
                .map_err(|error| {
                    let id = correlation_id();
                    tracing::warn!(correlation_id = %id, issuer = %trusted.issuer, %error, "cannot get the issuer's signing keys");
                    AuthError::KeysUnavailable(id)
                })?
                .into_iter()
                .filter(|k| k.family() == alg.family())
                .collect()
        };
        if keys.is_empty() {
            return Err(match alg.family() {
                jsonwebtoken::AlgorithmFamily::Hmac => AuthError::Algorithm(format!("{alg:?}")),
                _ => AuthError::UnknownKey,
            });
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&trusted.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let mut last = AuthError::Signature;
        for key in keys {
            match decode::<Map<String, Value>>(token, &key, &validation) {
                Ok(data) => {
                    let exp = data.claims.get("exp").and_then(Value::as_u64);
                    let principal = principal(&trusted.groups_claim, data.claims)?;
                    self.cache.put(&cache_key, &principal, exp);
                    return Ok(principal);
                }
                Err(error) => last = classify(error),
            }
            if !matches!(last, AuthError::Signature) {
                break;
            }
        }
        Err(last)
    }
}

fn peek_issuer(token: &str) -> Result<String, AuthError> {
    jsonwebtoken::dangerous::insecure_decode_claims::<Peek>(token)
        .map_err(|_| AuthError::Malformed)?
        .iss
        .ok_or_else(|| AuthError::MissingClaim("iss".into()))
}

fn classify(error: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::InvalidIssuer => AuthError::UnknownIssuer("mismatch".into()),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::Algorithm("mismatch".into())
        }
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::Malformed,
        other => AuthError::Invalid(format!("{other:?}")),
    }
}

/// Builds the principal from verified claims.
fn principal(groups_claim: &[String], claims: Map<String, Value>) -> Result<Principal, AuthError> {
    let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
    let subject = text("sub").ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
    let mut groups = strings(claim_at(&claims, groups_claim));
    groups.sort();
    groups.dedup();
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_owned).collect(),
        (_, Some(scp)) => strings(Some(scp)),
        _ => Vec::new(),
    };
    Ok(Principal {
        subject,
        groups,
        scopes,
        issuer: text("iss").unwrap_or_default(),
        client: text("client_id").or_else(|| text("azp")),
        audiences: strings(claims.get("aud")),
        session: text("sid"),
    })
}

/// Follows a dotted claim path (`traits.groups`).
fn claim_at<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.get(segment)?;
    }
    Some(value)
}

/// A string or an array of strings as a list.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Scopes in `required` that `principal` lacks.
pub fn missing_scopes<'a>(principal: &Principal, required: &'a [String]) -> Vec<&'a str> {
    let have: HashSet<&str> = principal.scopes.iter().map(String::as_str).collect();
    required
        .iter()
        .map(String::as_str)
        .filter(|s| !have.contains(s))
        .collect()
}
