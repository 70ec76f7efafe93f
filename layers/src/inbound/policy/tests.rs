use std::convert::Infallible;

use http::Request;
use tower::{Layer, ServiceExt};

use super::*;

const TOOLS: &[(&str, &str)] = &[
    ("execute_query", "query"),
    ("execute_range_query", "query"),
    ("list_metrics", "discovery"),
    ("list_label_values", "discovery"),
    ("find_series", "discovery"),
    ("get_config", "status"),
    ("get_flags", "status"),
    ("get_build_info", "status"),
    ("get_alerts", "alerting"),
];

fn ctx() -> BuildCtx {
    BuildCtx {
        authn_enabled: true,
        issuers: vec!["https://dex".into()],
        bare_group_issuers: vec!["https://dex".into()],
        tool_catalogue: TOOLS
            .iter()
            .map(|(name, family)| ToolEntry {
                name: name.to_string(),
                family: family.to_string(),
            })
            .collect(),
        ..BuildCtx::default()
    }
}

fn config(toml_text: &str) -> PolicyConfig {
    #[derive(Deserialize)]
    struct Wrapper {
        policy: PolicyConfig,
    }
    toml::from_str::<Wrapper>(toml_text).expect("toml").policy
}

const ISSUE_EXAMPLE: &str = r#"
[policy]
enabled = true
default = "deny"
[[policy.rules]]
groups = ["team-dev"]
allow = ["execute_query", "execute_range_query", "list_*", "find_series"]
[[policy.rules]]
groups = ["sre"]
allow = ["*"]
deny = ["get_config", "get_flags"]
"#;

fn layer(toml_text: &str) -> PolicyLayer {
    config(toml_text).build(&ctx()).expect("valid").expect("on")
}

fn principal(subject: &str, groups: &[&str]) -> Principal {
    Principal {
        subject: subject.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        scopes: vec![],
        issuer: "https://dex".into(),
        client: None,
        audiences: vec![],
        session: None,
    }
}

fn allowed(layer: &PolicyLayer, who: Option<&Principal>) -> Vec<&'static str> {
    let permissions = layer.gate().permissions(who);
    TOOLS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| permissions.allows(name))
        .collect()
}

#[test]
fn the_issue_example_per_group() {
    let policy = layer(ISSUE_EXAMPLE);
    assert_eq!(
        allowed(&policy, Some(&principal("d", &["team-dev"]))),
        [
            "execute_query",
            "execute_range_query",
            "list_metrics",
            "list_label_values",
            "find_series"
        ]
    );
    assert_eq!(
        allowed(&policy, Some(&principal("s", &["sre"]))),
        [
            "execute_query",
            "execute_range_query",
            "list_metrics",
            "list_label_values",
            "find_series",
            "get_build_info",
            "get_alerts"
        ],
        "deny beats the allow of *"
    );
    assert!(
        allowed(&policy, Some(&principal("x", &["sales"]))).is_empty(),
        "default deny"
    );
    assert!(allowed(&policy, None).is_empty(), "anonymous: default deny");
}

#[test]
fn rules_combine_and_deny_wins_across_rules() {
    let policy = layer(
        r#"
[policy]
enabled = true
[[policy.rules]]
groups = ["a"]
allow = ["query", "status"]
[[policy.rules]]
subjects = ["carol"]
deny = ["get_build_info"]
"#,
    );
    let carol = principal("carol", &["a"]);
    assert_eq!(
        allowed(&policy, Some(&carol)),
        [
            "execute_query",
            "execute_range_query",
            "get_config",
            "get_flags"
        ]
    );
}

#[test]
fn default_allow_and_no_rules() {
    let open = layer("[policy]\nenabled = true\n");
    assert_eq!(allowed(&open, None).len(), TOOLS.len(), "no rules: allow");
    let lenient = layer(
        "[policy]\nenabled = true\ndefault = \"allow\"\n[[policy.rules]]\ngroups = [\"x\"]\ndeny = [\"status\"]\n",
    );
    assert_eq!(
        allowed(&lenient, Some(&principal("y", &[]))).len(),
        TOOLS.len()
    );
    assert_eq!(
        allowed(&lenient, Some(&principal("y", &["x"]))).len(),
        0,
        "matched a deny-only rule: nothing allowed"
    );
}

#[test]
fn permit_counts_denials_by_tool() {
    let policy = layer(ISSUE_EXAMPLE);
    let dev = policy
        .gate()
        .permissions(Some(&principal("d", &["team-dev"])));
    assert!(dev.permit("execute_query").is_ok());
    assert_eq!(dev.permit("get_config"), Err(PolicyDenied));
    assert_eq!(dev.permit("no_such_tool"), Err(PolicyDenied));
    let shared = &policy.gate().shared;
    assert_eq!(
        shared
            .denials
            .get_or_create(&vec![("tool", "get_config".to_owned())])
            .get(),
        1
    );
    assert_eq!(
        shared
            .denials
            .get_or_create(&vec![("tool", "unknown".to_owned())])
            .get(),
        1
    );
}

#[test]
fn bad_configs_name_the_key() {
    let typo = config(
        "[policy]\nenabled = true\n[[policy.rules]]\ngroups = [\"a\"]\nallow = [\"get_confg\"]\n",
    );
    let err = typo.build(&ctx()).expect_err("typo").to_string();
    assert!(
        err.contains("rules[0].allow") && err.contains("get_confg"),
        "{err}"
    );
    let nobody = config("[policy]\nenabled = true\n[[policy.rules]]\nallow = [\"*\"]\n");
    assert!(
        nobody
            .build(&ctx())
            .expect_err("no selector")
            .to_string()
            .contains("rules[0]")
    );
    let no_authn = BuildCtx {
        authn_enabled: false,
        issuers: vec![],
        ..ctx()
    };
    let err = config(ISSUE_EXAMPLE)
        .build(&no_authn)
        .expect_err("no identity")
        .to_string();
    assert!(err.contains("layers.authn"), "{err}");
}

#[tokio::test]
async fn the_layer_puts_the_decision_in_the_extensions() {
    let service =
        layer(ISSUE_EXAMPLE).layer(tower::service_fn(|request: Request<()>| async move {
            let permissions = request.extensions().get::<ToolPermissions>().cloned();
            Ok::<_, Infallible>(Response::new(
                permissions.map_or("none".to_owned(), |p| format!("{}", p.allows("get_config"))),
            ))
        }));
    let mut request = Request::new(());
    request.extensions_mut().insert(principal("s", &["sre"]));
    let response = service.oneshot(request).await.expect("infallible");
    assert_eq!(response.body(), "false");
}
