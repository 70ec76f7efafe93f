//! Endpoints that cannot be scoped, probes, and the checks of the label
//! settings in `[layers.tenancy]`.

use http::{Method, StatusCode};

use super::support::{ctx, label_config, layer, refused, request, send, value};
use crate::identity::Probe;
use crate::inbound::tenancy::{TenancyConfig, TenancyMode};
use crate::outbound::tenant_label::{TenantLabelConfigError, TenantLabelError, TenantLabelLayer};

#[tokio::test]
async fn a_probe_passes_without_tenants() {
    let mut probe = request(Method::GET, "http://p/-/ready", "", "/-/ready", None);
    probe.extensions_mut().insert(Probe);
    let (result, seen) = send(&layer(&[]), probe, StatusCode::OK, "ready").await;
    assert_eq!(result.expect("passed").1, "ready");
    assert!(seen.is_some());
}

#[tokio::test]
async fn unscoped_endpoints_are_refused_unless_opted_in() {
    let req = || {
        request(
            Method::GET,
            "http://p/api/v1/targets?state=active",
            "",
            "/api/v1/targets",
            Some(&["a"]),
        )
    };
    let err = refused(&layer(&[]), req()).await;
    let text = err.to_string();
    assert!(
        text.contains("get_targets")
            && text.contains("/api/v1/targets")
            && text.contains("layers.tenancy.label_unscoped_tools = [\"get_targets\"]"),
        "{text}"
    );
    let (result, seen) = send(&layer(&["get_targets"]), req(), StatusCode::OK, "{}").await;
    result.expect("opted in");
    assert_eq!(value(&seen.expect("sent").query, "state"), ["active"]);
    let config = || {
        request(
            Method::GET,
            "http://p/api/v1/status/config",
            "",
            "/api/v1/status/config",
            Some(&["a"]),
        )
    };
    assert!(matches!(
        refused(&layer(&["get_targets"]), config()).await,
        TenantLabelError::Unscoped {
            tool: "get_config",
            ..
        }
    ));
    let build = request(
        Method::GET,
        "http://p/api/v1/status/buildinfo",
        "",
        "/api/v1/status/buildinfo",
        Some(&["a"]),
    );
    send(&layer(&[]), build, StatusCode::OK, "{}")
        .await
        .0
        .expect("harmless");
}

#[test]
fn config_is_checked() {
    let build = |config: &TenancyConfig| {
        TenantLabelLayer::from_config(config, &ctx()).map(|l| l.map(|l| l.label().to_owned()))
    };
    assert_eq!(build(&label_config()), Ok(Some("tenant".into())));
    assert_eq!(
        build(&TenancyConfig::default()),
        Ok(None),
        "header mode by default"
    );
    let header_with = TenancyConfig {
        label: Some("team".into()),
        ..TenancyConfig::default()
    };
    assert_eq!(
        build(&header_with),
        Err(TenantLabelConfigError::HeaderMode { key: "label" })
    );
    let header_with = TenancyConfig {
        label_unscoped_tools: vec!["get_targets".into()],
        ..TenancyConfig::default()
    };
    assert_eq!(
        build(&header_with),
        Err(TenantLabelConfigError::HeaderMode {
            key: "label_unscoped_tools"
        })
    );
    for off in [
        TenancyConfig {
            enabled: false,
            ..label_config()
        },
        TenancyConfig {
            mode: TenancyMode::None,
            ..label_config()
        },
    ] {
        assert_eq!(build(&off), Err(TenantLabelConfigError::NoTenancy));
    }
    for bad in ["", "1x", "a-b", "__name__", "__tenant", "ténant", "a b"] {
        let config = TenancyConfig {
            label: Some(bad.into()),
            ..label_config()
        };
        assert_eq!(
            build(&config),
            Err(TenantLabelConfigError::BadLabel(bad.into())),
            "{bad:?}"
        );
    }
    let config = TenancyConfig {
        label: Some("org_1".into()),
        ..label_config()
    };
    assert_eq!(build(&config), Ok(Some("org_1".into())));
    let config = TenancyConfig {
        label_unscoped_tools: vec!["get_everything".into()],
        ..label_config()
    };
    let err = build(&config).expect_err("unknown");
    assert!(
        err.to_string().contains("get_everything") && err.to_string().contains("execute_query"),
        "{err}"
    );
    let config = TenancyConfig {
        label_unscoped_tools: vec!["execute_query".into()],
        ..label_config()
    };
    let err = build(&config).expect_err("always scoped");
    assert!(
        matches!(err, TenantLabelConfigError::AlwaysScoped { .. })
            && err.to_string().contains("get_targets"),
        "{err}"
    );
}
