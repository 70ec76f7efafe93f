//! Revocation of tokens that verify: an authorization server of ours that
//! revokes a whole login (a refresh family) tells the layer, so the
//! login's access tokens stop working within seconds instead of living on
//! until they expire.

use std::future::Future;
use std::pin::Pin;

use crate::identity::Principal;

/// Says whether a verified principal's login was revoked. Asked on every
/// request (the verified-token cache does not skip it), so answers should
/// come from a short local cache.
pub trait RevocationCheck: Send + Sync + 'static {
    /// `Ok(true)`: refuse the token. `Err`: the answer is unknown, and the
    /// token is refused too (fail closed).
    fn is_revoked<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;
}
