//! Secrets at rest: the encryption key, sealing with AES-256-GCM (with
//! associated data binding each sealed value to its purpose), hashing of
//! token values for store keys, random tokens, constant-time comparison.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Why a key or sealed value is unusable.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the encryption key must be 64 hex characters or base64 of 32 bytes (generate one with `openssl rand -hex 32`)"
    )]
    KeyFormat,
    #[error(
        "the encryption key has too little entropy (repeated or sequential bytes); generate one with `openssl rand -hex 32`"
    )]
    WeakKey,
    #[error("a sealed value could not be opened (wrong key or tampered)")]
    Open,
    #[error("the system random generator failed")]
    Random,
}

/// The AES-256-GCM key protecting upstream tokens and the signing key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

/// Parses a key given as 64 hex characters or base64 (standard or URL-safe)
/// of exactly 32 bytes, and refuses keys with visibly low entropy.
pub fn parse_key(text: &str) -> Result<[u8; 32], CryptoError> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| CryptoError::KeyFormat)?
    } else {
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| CryptoError::KeyFormat)?
    };
    let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyFormat)?;
    let mut distinct = key.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let sequential = key.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    if distinct.len() < 12 || sequential {
        return Err(CryptoError::WeakKey);
    }
    Ok(key)
}

impl Sealer {
    /// A sealer over a parsed key.
    pub fn new(key: &[u8; 32]) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError::KeyFormat)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `plain`, bound to `purpose` (e.g. `refresh:<hash>`): a sealed
    /// value moved to another record does not open.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut buffer = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| CryptoError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts a value sealed for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let raw = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| CryptoError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buffer = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buffer)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }
}

/// A URL-safe random token with `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> Result<String, CryptoError> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .map_err(|_| CryptoError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

/// SHA-256 of a secret, hex: what store keys are made of, never the secret.
pub fn hash(secret: &str) -> String {
    digest(&SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()).as_ref())
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8f3c2a9b1e7d4c6a0b5f9e2d3c8a7b6f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b";

    #[test]
    fn keys_in_hex_and_base64() {
        let key = parse_key(HEX).expect("hex");
        assert_eq!(parse_key(&STANDARD.encode(key)).expect("base64"), key);
        assert_eq!(
            parse_key(&URL_SAFE_NO_PAD.encode(key)).expect("base64url"),
            key
        );
        assert!(matches!(parse_key("abc"), Err(CryptoError::KeyFormat)));
        assert!(matches!(
            parse_key(&"00".repeat(32)),
            Err(CryptoError::WeakKey)
        ));
        assert!(matches!(
            parse_key(&STANDARD.encode([7u8; 32])),
            Err(CryptoError::WeakKey)
        ));
        let sequential: Vec<u8> = (0..32).collect();
        assert!(matches!(
            parse_key(&STANDARD.encode(sequential)),
            Err(CryptoError::WeakKey)
        ));
    }

    #[test]
    fn sealed_values_open_only_for_their_purpose() {
        let sealer = Sealer::new(&parse_key(HEX).expect("key")).expect("sealer");
        let sealed = sealer.seal("refresh:abc", b"dex-token").expect("seals");
        assert_eq!(
            sealer.open("refresh:abc", &sealed).expect("opens"),
            b"dex-token"
        );
        assert!(sealer.open("refresh:other", &sealed).is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open("refresh:abc", &String::from_utf8(tampered).expect("ascii"))
                .is_err()
        );
    }

    #[test]
    fn pkce_matches_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(constant_time_eq("a", "a") && !constant_time_eq("a", "b"));
        assert_eq!(hash("x").len(), 64);
    }
}
