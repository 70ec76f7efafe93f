//! Bearer tokens: any header value is refused (401) or, never here, a
//! principal; never a panic. Keys come from a fixed in-memory JWKS.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use mcp_prometheus_layers::BoxError;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::fetch::Fetch;
use mcp_prometheus_layers::inbound::authn::{AuthnConfig, IssuerConfig};
use tower::{Layer, ServiceExt};

/// A JWKS with one EC key the fuzzer cannot sign with.
struct Keys;

impl Fetch for Keys {
    fn fetch<'a>(
        &'a self,
        _url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, BoxError>> + Send + 'a>> {
        Box::pin(async {
            Ok(Bytes::from_static(br#"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#))
        })
    }
}

fuzz_target!(|token: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(token) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut issuer = IssuerConfig::new("https://issuer.example");
    issuer.jwks_url = Some("https://issuer.example/keys".into());
    let config = AuthnConfig {
        enabled: true,
        issuers: vec![issuer],
        ..AuthnConfig::default()
    };
    let ctx = BuildCtx {
        token_audiences: vec!["https://mcp.example/mcp".into()],
        resource_metadata_url: Some("https://mcp.example/.well-known/oauth-protected-resource/mcp".into()),
        key_sources: [("https://issuer.example".to_owned(), Arc::new(Keys) as Arc<dyn Fetch>)].into(),
        ..BuildCtx::default()
    };
    let layer = config.build(&ctx).expect("valid").expect("enabled");
    let service = layer.layer(tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let mut request = Request::new(());
    request.headers_mut().insert(http::header::AUTHORIZATION, value);
    let response = runtime.block_on(service.oneshot(request)).expect("infallible");
    assert_ne!(response.status(), StatusCode::OK);
});
