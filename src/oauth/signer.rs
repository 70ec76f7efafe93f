//! Our access tokens: short-lived ES256 JWTs, signed by a key every replica
//! shares (configured, or created once and kept sealed in the store), and
//! the JWKS that publishes it.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use super::crypto::{Sealer, hash};
use super::store::Store;

/// How long the shared signing key is kept without a replica starting or
/// renewing it ([`Signer::renew`]).
pub const SIGNING_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(400 * 24 * 3600);

/// Why the signing key is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("signing key: {0}")]
    Key(String),
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
}

/// The claims of an access token we issue.
#[derive(Debug, Serialize)]
pub struct AccessClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    /// The refresh family (login) the token belongs to: revoking the
    /// family stops its access tokens too.
    pub sid: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
}

/// Signs access tokens.
pub struct Signer {
    kid: String,
    encoding: EncodingKey,
    jwks: Value,
    /// The key as sealed in the store (not for a configured key file).
    sealed: Option<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The configured key file, or the key shared through the store
    /// (created by whichever replica comes first).
    pub async fn load(
        file: Option<&Path>,
        store: &dyn Store,
        sealer: &Sealer,
    ) -> Result<Self, SignerError> {
        let mut sealed_copy = None;
        let pkcs8 = match file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| SignerError::Key(format!("{}: {e}", path.display())))?;
                match rustls_pemfile::private_key(&mut pem.as_slice()) {
                    Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(der))) => {
                        der.secret_pkcs8_der().to_vec()
                    }
                    _ => {
                        return Err(SignerError::Key(format!(
                            "{}: not a PKCS#8 PEM private key",
                            path.display()
                        )));
                    }
                }
            }
            None => {
                let fresh = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| SignerError::Key("cannot generate a key".into()))?;
                let sealed = sealer
                    .seal("signing-key", fresh.as_ref())
                    .map_err(|e| SignerError::Key(e.to_string()))?;
                let stored = store
                    .get_or_init_singleton("signing-key", &sealed, SIGNING_KEY_TTL)
                    .await?;
                let key = sealer.open("signing-key", &stored).map_err(|_| {
                    SignerError::Key(
                        "the stored signing key does not open with this encryption key".into(),
                    )
                })?;
                sealed_copy = Some(stored);
                key
            }
        };
        let mut signer = Self::from_pkcs8(&pkcs8)?;
        signer.sealed = sealed_copy;
        Ok(signer)
    }

    /// Keeps the shared key in the store for another [`SIGNING_KEY_TTL`]
    /// (every key there expires; this one must not while replicas run).
    pub async fn renew(&self, store: &dyn Store) -> Result<(), SignerError> {
        if let Some(sealed) = &self.sealed {
            store
                .get_or_init_singleton("signing-key", sealed, SIGNING_KEY_TTL)
                .await?;
        }
        Ok(())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SignerError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| SignerError::Key("not a P-256 key".into()))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(SignerError::Key("unexpected public key encoding".into()));
        }
        let (x, y) = point[1..].split_at(32);
        let kid = hash(&URL_SAFE_NO_PAD.encode(point))[..16].to_owned();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]});
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ec_der(pkcs8),
            jwks,
            sealed: None,
        })
    }

    /// The published key set.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs an access token.
    pub fn sign(&self, claims: &AccessClaims<'_>) -> Result<String, SignerError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| SignerError::Key(e.to_string()))
    }
}
