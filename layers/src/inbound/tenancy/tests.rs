use super::*;
use http::Request;
use std::convert::Infallible;
use tower::Layer;
use tower::ServiceExt;

fn principal(groups: &[&str]) -> Principal {
    Principal {
        subject: "alice".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        scopes: vec![],
        issuer: "i".into(),
        client: None,
        audiences: vec![],
        session: None,
    }
}

fn group_map() -> TenancyConfig {
    TenancyConfig {
        enabled: true,
        mode: TenancyMode::GroupMap,
        groups: BTreeMap::from([
            ("team-a".into(), vec!["tenant-a".into()]),
            ("team-b".into(), vec!["tenant-b".into(), "tenant-c".into()]),
        ]),
        ..TenancyConfig::default()
    }
}

/// A build context as the server makes it with authn on and one issuer
/// (`i`, the test principals').
fn with_authn() -> BuildCtx {
    BuildCtx {
        authn_enabled: true,
        bare_group_issuers: vec!["i".into()],
        ..BuildCtx::default()
    }
}

async fn run(config: &TenancyConfig, principal: Option<Principal>) -> (StatusCode, String) {
    let layer = config
        .build(&with_authn())
        .expect("valid")
        .expect("a layer");
    through(&layer, principal).await
}

/// The status and the tenants `layer` gives `principal`.
async fn through(layer: &TenancyLayer, principal: Option<Principal>) -> (StatusCode, String) {
    let svc = layer.layer(tower::service_fn(|req: Request<()>| async move {
        let tenants = req
            .extensions()
            .get::<TenantSet>()
            .map(TenantSet::header_value);
        Ok::<_, Infallible>(Response::new(tenants.unwrap_or_default()))
    }));
    let mut req = Request::new(());
    if let Some(principal) = principal {
        req.extensions_mut().insert(principal);
    }
    let response = svc.oneshot(req).await.expect("infallible");
    (response.status(), response.into_body())
}

#[tokio::test]
async fn groups_map_to_the_union_of_tenants() {
    let (status, tenants) = run(&group_map(), Some(principal(&["team-a", "team-b", "x"]))).await;
    assert_eq!(
        (status, tenants.as_str()),
        (StatusCode::OK, "tenant-a|tenant-b|tenant-c")
    );
}

#[tokio::test]
async fn no_tenants_is_forbidden_with_a_reason() {
    let (status, body) = run(&group_map(), Some(principal(&["nobody"]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("has no access to any tenant"), "{body}");
    let (status, body) = run(&group_map(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("authn"), "{body}");
}

#[tokio::test]
async fn static_mode_needs_no_principal() {
    let config = TenancyConfig {
        enabled: true,
        mode: TenancyMode::Static,
        tenants: vec!["b".into(), "a".into()],
        ..TenancyConfig::default()
    };
    let (status, tenants) = run(&config, None).await;
    assert_eq!((status, tenants.as_str()), (StatusCode::OK, "a|b"));
}

#[tokio::test]
async fn cache_hits_are_counted() {
    let ctx = with_authn();
    let layer = group_map().build(&ctx).expect("valid").expect("layer");
    for _ in 0..3 {
        let svc = layer.layer(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let mut req = Request::new(());
        req.extensions_mut().insert(principal(&["team-a"]));
        svc.oneshot(req).await.expect("infallible");
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &ctx.into_registry()).expect("encodes");
    assert!(
        text.contains("mcp_prometheus_tenancy_cache_requests_total{result=\"hit\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("mcp_prometheus_tenancy_cache_requests_total{result=\"miss\"} 1"),
        "{text}"
    );
}

#[test]
fn bad_tenant_ids_in_config_are_refused() {
    let mut config = group_map();
    config.groups.insert("evil".into(), vec!["a|b".into()]);
    let err = config.build(&with_authn()).expect_err("refused");
    assert!(err.to_string().contains("groups.evil"), "{err}");
    let none = TenancyConfig {
        enabled: true,
        mode: TenancyMode::None,
        ..TenancyConfig::default()
    };
    assert!(none.build(&with_authn()).expect("valid").is_none());
}

/// Dex and Teleport both have a `team-a`: with only Dex opted in, a
/// Teleport `team-a` reads nothing, unless the map names it qualified.
#[tokio::test]
async fn groups_are_bound_to_their_issuer() {
    let two_issuers = BuildCtx {
        authn_enabled: true,
        bare_group_issuers: vec!["https://dex".into()],
        issuers: vec!["https://dex".into(), "https://teleport".into()],
        ..BuildCtx::default()
    };
    let mut config = group_map();
    config
        .groups
        .insert("https://teleport#ops".into(), vec!["tenant-ops".into()]);
    let layer = config.build(&two_issuers).expect("valid").expect("layer");
    let call = |issuer: &'static str, groups: &'static [&'static str]| {
        let principal = Principal {
            issuer: issuer.into(),
            ..principal(groups)
        };
        let layer = layer.clone();
        async move { through(&layer, Some(principal)).await }
    };
    assert_eq!(
        call("https://dex", &["team-a"]).await,
        (StatusCode::OK, "tenant-a".into())
    );
    assert_eq!(
        call("https://teleport", &["team-a"]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call("https://teleport", &["ops", "team-a"]).await,
        (StatusCode::OK, "tenant-ops".into())
    );
    let nobody_opted_in = BuildCtx {
        authn_enabled: true,
        ..BuildCtx::default()
    };
    let err = group_map()
        .build(&nobody_opted_in)
        .expect_err("unbound names");
    assert!(err.to_string().contains("groups_for_tenancy"), "{err}");
    let mut stranger = group_map();
    stranger
        .groups
        .insert("https://elsewhere#ops".into(), vec!["t".into()]);
    let err = stranger.build(&two_issuers).expect_err("unknown issuer");
    assert!(err.to_string().contains("not a configured issuer"), "{err}");
}

#[test]
fn group_modes_need_authn() {
    let err = group_map()
        .build(&BuildCtx::default())
        .expect_err("refused");
    assert!(err.to_string().contains("needs [layers.authn]"), "{err}");
}
