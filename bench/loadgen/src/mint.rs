//! An ES256 key, its JWKS and a token, for the auth-cost runs.

#[allow(unused_imports)]
use super::*;

/// A fresh ES256 key: its JWKS and one signed token.
pub(crate) fn mint(
    out_dir: &str,
    iss: &str,
    aud: &str,
    groups: &str,
    lifetime: u64,
) -> Result<(), Error> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| "key generation failed")?;
    let point = kp.public_key().as_ref(); // 0x04 || X || Y
    if point.len() != 65 {
        return Err("unexpected public key encoding".into());
    }
    let kid = "loadgen-bench";
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64.encode(&point[1..33]),
        "y": b64.encode(&point[33..65]), "kid": kid, "alg": "ES256", "use": "sig"}]});
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let groups: Vec<&str> = groups.split(',').filter(|g| !g.is_empty()).collect();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let claims = json!({"iss": iss, "sub": "loadgen", "aud": aud, "iat": now, "nbf": now - 5,
        "exp": now + lifetime, "groups": groups});
    let input = format!(
        "{}.{}",
        b64.encode(serde_json::to_vec(&header)?),
        b64.encode(serde_json::to_vec(&claims)?)
    );
    let sig = kp
        .sign(&rng, input.as_bytes())
        .map_err(|_| "signing failed")?;
    let token = format!("{input}.{}", b64.encode(sig.as_ref()));
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(format!("{out_dir}/jwks.json"), serde_json::to_vec(&jwks)?)?;
    std::fs::write(format!("{out_dir}/token"), token)?;
    Ok(())
}
