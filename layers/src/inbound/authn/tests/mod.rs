//! The authn layer against tokens minted here (ES256 keys generated per
//! test), with the key set served by an in-memory fetcher.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Request;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

use super::*;
use crate::BoxError;
use crate::build::BuildCtx;
use crate::fetch::Fetch;
use prometheus_client::registry::Registry;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "https://mcp.example/mcp";

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn es256_key(kid: &str) -> Key {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("pair");
    let point = pair.public_key().as_ref();
    let (x, y) = point[1..].split_at(32);
    Key {
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
    }
}

/// Serves a key set from memory and counts fetches.
struct MemoryJwks {
    keys: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
}

impl Fetch for MemoryJwks {
    fn fetch<'a>(
        &'a self,
        _url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, BoxError>> + Send + 'a>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let keys = self.keys.lock().expect("lock").clone();
        Box::pin(async move {
            // A network's worth of delay, so concurrent requests overlap.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Bytes::from(json!({ "keys": keys }).to_string()))
        })
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 300,
           "groups": ["team-b", "team-a"], "scope": "mcp:read openid", "azp": "client-1"})
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    encode(&header, claims, &key.encoding).expect("signs")
}

struct Harness {
    layer: AuthnLayer,
    jwks: Arc<MemoryJwks>,
    registry: Registry,
}

fn harness(keys: &[&Key], configure: impl FnOnce(&mut AuthnConfig)) -> Harness {
    harness_with(keys, configure, None)
}

fn harness_with(
    keys: &[&Key],
    configure: impl FnOnce(&mut AuthnConfig),
    revocations: Option<Arc<dyn RevocationCheck>>,
) -> Harness {
    let jwks = Arc::new(MemoryJwks {
        keys: Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()),
        fetches: AtomicUsize::new(0),
    });
    let mut issuer = IssuerConfig::new(ISSUER);
    issuer.jwks_url = Some("https://issuer.example/keys".into());
    issuer.jwks_min_refetch_interval = crate::duration::ConfigDuration(Duration::from_secs(60));
    let mut config = AuthnConfig {
        enabled: true,
        issuers: vec![issuer],
        ..AuthnConfig::default()
    };
    configure(&mut config);
    let ctx = BuildCtx {
        token_audiences: vec![AUDIENCE.into()],
        resource_metadata_url: Some(
            "https://mcp.example/.well-known/oauth-protected-resource/mcp".into(),
        ),
        revocations,
        key_sources: config
            .issuers
            .iter()
            .map(|i| (i.issuer.clone(), jwks.clone() as Arc<dyn Fetch>))
            .collect(),
        ..BuildCtx::default()
    };
    let layer = config.build(&ctx).expect("builds").expect("enabled");
    Harness {
        layer,
        jwks,
        registry: ctx.into_registry(),
    }
}

/// Sends a request with `header: value`; returns the status, the
/// `WWW-Authenticate` header and the principal the inner service saw.
async fn send(h: &Harness, header: &str, value: &str) -> (StatusCode, String, Option<Principal>) {
    let svc = h
        .layer
        .layer(tower::service_fn(|req: Request<()>| async move {
            let principal = req.extensions().get::<Principal>().cloned();
            let body = serde_json::to_string(
                &principal.map(|p| (p.subject, p.groups, p.scopes, p.client)),
            )
            .expect("json");
            Ok::<_, Infallible>(Response::new(body))
        }));
    let mut req = Request::new(());
    if !header.is_empty() {
        req.headers_mut().insert(
            HeaderName::try_from(header).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    let response = svc.oneshot(req).await.expect("infallible");
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let principal = if status == StatusCode::OK {
        let (subject, groups, scopes, client): (String, Vec<String>, Vec<String>, Option<String>) =
            serde_json::from_str(response.body()).expect("principal");
        Some(Principal {
            subject,
            groups,
            scopes,
            issuer: ISSUER.into(),
            client,
            audiences: vec![],
            session: None,
        })
    } else {
        None
    };
    (status, challenge, principal)
}

/// Sends `claims` signed by `key` as `Authorization: Bearer`.
async fn send_bearer(
    h: &Harness,
    key: &Key,
    claims: &Value,
) -> (StatusCode, String, Option<Principal>) {
    send(h, "authorization", &format!("Bearer {}", sign(key, claims))).await
}

#[tokio::test]
async fn valid_token_becomes_a_principal() {
    let key = es256_key("k1");
    let h = harness(&[&key], |_| {});
    let (status, _, principal) = send_bearer(&h, &key, &claims()).await;
    assert_eq!(status, StatusCode::OK);
    let principal = principal.expect("principal");
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.groups, ["team-a", "team-b"]);
    assert_eq!(principal.scopes, ["mcp:read", "openid"]);
    assert_eq!(principal.client.as_deref(), Some("client-1"));
}

#[tokio::test]
async fn missing_token_gets_a_challenge_without_error() {
    let h = harness(&[], |_| {});
    let (status, challenge, _) = send(&h, "", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        "Bearer resource_metadata=\"https://mcp.example/.well-known/oauth-protected-resource/mcp\""
    );
}

async fn refused(h: &Harness, token: &str, needle: &str) {
    let (status, challenge, _) = send(h, "authorization", &format!("Bearer {token}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{needle}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains(needle), "{needle}: {challenge}");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let key = es256_key("k1");
    let other = es256_key("k1");
    let h = harness(&[&key], |_| {});
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    refused(&h, &sign(&key, &expired), "expired").await;
    let mut future = claims();
    future["nbf"] = json!(now() + 3600);
    refused(&h, &sign(&key, &future), "not valid yet").await;
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("https://other.example");
    refused(&h, &sign(&key, &wrong_aud), "audience").await;
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.example");
    refused(&h, &sign(&key, &wrong_iss), "not trusted").await;
    refused(&h, &sign(&other, &claims()), "signature").await;
    refused(&h, "not.a.jwt", "well-formed").await;
    let mut no_sub = claims();
    no_sub.as_object_mut().expect("object").remove("sub");
    refused(&h, &sign(&key, &no_sub), "sub").await;
}

#[tokio::test]
async fn tampered_payload_fails_the_signature() {
    let key = es256_key("k1");
    let h = harness(&[&key], |_| {});
    let token = sign(&key, &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["groups"] = json!(["admins"]);
    let payload = URL_SAFE_NO_PAD.encode(forged.to_string());
    parts[1] = &payload;
    refused(&h, &parts.join("."), "signature").await;
}

#[tokio::test]
async fn alg_none_and_unconfigured_hmac_are_refused() {
    let key = es256_key("k1");
    let h = harness(&[&key], |_| {});
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    refused(&h, &format!("{header}.{payload}."), "well-formed").await;
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"guess"),
    )
    .expect("signs");
    refused(&h, &hs, "algorithm").await;
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_parsing() {
    let h = harness(&[], |c| c.max_token_bytes = 100);
    refused(&h, &"a".repeat(101), "larger than 100").await;
    assert_eq!(h.jwks.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn custom_header_and_claim_path() {
    let key = es256_key("k1");
    let h = harness(&[&key], |c| {
        c.issuers[0].header = "Teleport-Jwt-Assertion".into();
        c.issuers[0].groups_claim = "traits.groups".into();
    });
    let mut teleport = claims();
    teleport["traits"] = json!({"groups": ["ops"], "logins": ["root"]});
    let token = sign(&key, &teleport);
    let (status, _, principal) = send(&h, "teleport-jwt-assertion", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(principal.expect("principal").groups, ["ops"]);
    let (status, _, _) = send(&h, "authorization", &format!("Bearer {token}")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a token in another header is not looked at"
    );
}

#[tokio::test]
async fn missing_scope_is_forbidden() {
    let key = es256_key("k1");
    let h = harness(&[&key], |c| c.required_scopes = vec!["mcp:admin".into()]);
    let (status, challenge, _) = send_bearer(&h, &key, &claims()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:admin\""), "{challenge}");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &h.registry).expect("encodes");
    assert!(text.contains("reason=\"insufficient_scope\""), "{text}");
}

#[test]
fn hmac_needs_an_explicit_secret() {
    let mut config = AuthnConfig {
        enabled: true,
        issuers: vec![IssuerConfig::new(ISSUER)],
        ..AuthnConfig::default()
    };
    config.issuers[0].algorithms = vec![Algorithm::HS256];
    let err = config
        .build(&BuildCtx {
            resource_metadata_url: Some(String::new()),
            ..BuildCtx::default()
        })
        .expect_err("refused");
    assert!(err.to_string().contains("hmac_secret_file"), "{err}");
}

#[tokio::test]
async fn verified_tokens_are_reused_but_only_in_their_header() {
    let key = es256_key("k1");
    let h = harness(&[&key], |c| {
        let mut teleport = IssuerConfig::new(ISSUER);
        teleport.jwks_url = Some("https://issuer.example/keys".into());
        teleport.header = "Teleport-Jwt-Assertion".into();
        let mut other = IssuerConfig::new("https://other.example");
        other.jwks_url = Some("https://other.example/keys".into());
        c.issuers = vec![other, teleport];
    });
    let token = sign(&key, &claims());
    let (status, _, _) = send(&h, "teleport-jwt-assertion", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&h, "teleport-jwt-assertion", &token).await;
    assert_eq!(status, StatusCode::OK, "served from the cache");
    assert_eq!(h.jwks.fetches.load(Ordering::SeqCst), 1);
    let (status, _, _) = send(&h, "authorization", &format!("Bearer {token}")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a cached token is not accepted in another header"
    );
}

mod keys;
mod revocation;

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(300))]

    /// Any token text, and JWT-shaped junk with arbitrary JSON header and
    /// payload, is refused with 401; never a panic, never a principal.
    #[test]
    fn junk_tokens_are_refused(
        raw in "\\PC{0,300}",
        header in "\\PC{0,80}",
        payload in "\\PC{0,200}",
        alg in proptest::sample::select(vec!["none", "HS256", "RS256", "ES256", "EdDSA", "x"]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let key = es256_key("k1");
        let h = harness(&[&key], |_| {});
        let shaped = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k1",{header}}}"#)),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(raw.as_bytes()),
        );
        for token in [raw.as_str(), shaped.as_str()] {
            let (status, _, principal) =
                runtime.block_on(send(&h, "authorization", &format!("Bearer {token}")));
            proptest::prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
            proptest::prop_assert!(principal.is_none());
        }
    }
}
