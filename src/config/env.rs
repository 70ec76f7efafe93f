//! Environment variables of the Go mcp-prometheus, so its manifests keep
//! working: each overrides a key of the default (first) upstream.

use std::path::PathBuf;

use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;
use mcp_prometheus_layers::secret::Secret;

use std::collections::BTreeMap;

use super::{Config, ConfigError, TenancyMode, UpstreamConfig};

/// Applies `PROMETHEUS_*` overrides read through `lookup` (the process
/// environment in production, a map in tests). Empty values count as unset,
/// as in the Go server; so does a `${user_config.…}` placeholder that an MCP
/// Bundle host left in place for an optional field the user did not fill
/// (never a real URL or token: sending it would be a bogus credential).
pub fn apply_env_overrides(
    config: &mut Config,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let get =
        |name: &str| lookup(name).filter(|v| !v.trim().is_empty() && !is_bundle_placeholder(v));
    apply_layer_overrides(config, &get)?;
    crate::oauth::config::apply_env(&mut config.oauth, &get).map_err(|message| {
        ConfigError::Invalid {
            key: "environment".into(),
            message,
        }
    })?;
    // For the Go server MCP_OAUTH_ISSUER *is* the URL clients reach it at.
    if config.server.public_url.is_none()
        && let Some(issuer) = get("MCP_OAUTH_ISSUER")
    {
        config.server.public_url = Some(issuer.trim().trim_end_matches('/').to_owned());
    }
    let url = get("PROMETHEUS_URL");
    if config.upstreams.is_empty() {
        if let Some(url) = &url {
            config.upstreams.push(UpstreamConfig::new("default", url));
        } else {
            return Ok(());
        }
    }
    let upstream = &mut config.upstreams[0];
    if let Some(url) = url {
        upstream.url = url;
    }
    if let Some(org_id) = get("PROMETHEUS_ORGID") {
        upstream.org_id = Some(org_id);
    }
    if let Some(token) = get("PROMETHEUS_TOKEN") {
        upstream.auth = UpstreamAuthConfig::Bearer {
            token: Some(Secret::new(token)),
            token_file: None,
        };
    } else if let Some(path) = get("PROMETHEUS_TOKEN_FILE") {
        upstream.auth = UpstreamAuthConfig::Bearer {
            token: None,
            token_file: Some(PathBuf::from(path)),
        };
    } else if let Some(username) = get("PROMETHEUS_USERNAME") {
        let password_file = get("PROMETHEUS_PASSWORD_FILE").map(PathBuf::from);
        let password = match password_file {
            Some(_) => None,
            None => Some(Secret::new(get("PROMETHEUS_PASSWORD").unwrap_or_default())),
        };
        upstream.auth = UpstreamAuthConfig::Basic {
            username,
            password,
            password_file,
        };
    }
    if let Some(value) = get("PROMETHEUS_TLS_SKIP_VERIFY") {
        upstream.tls.insecure_skip_verify = parse_bool("PROMETHEUS_TLS_SKIP_VERIFY", &value)?;
    }
    if let Some(path) = get("PROMETHEUS_TLS_CA_CERT") {
        upstream.tls.ca_file = Some(PathBuf::from(path));
    }
    Ok(())
}

/// `OAUTH_TRUSTED_AUDIENCES` and `TENANCY_STATIC_GROUP_MAP`, as the Go
/// server reads them.
fn apply_layer_overrides(
    config: &mut Config,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(list) = get("OAUTH_TRUSTED_AUDIENCES") {
        let trusted: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let audience = &mut config.layers.audience;
        audience.enabled = !trusted.is_empty();
        audience.trusted = trusted;
    }
    if let Some(json) = get("TENANCY_STATIC_GROUP_MAP") {
        let groups: BTreeMap<String, Vec<String>> = serde_json::from_str(&json).map_err(|e| ConfigError::Invalid {
            key: "TENANCY_STATIC_GROUP_MAP".into(),
            message: format!("{e}: send a JSON object of group to tenant list, e.g. {{\"team-a\":[\"tenant-a\"]}}"),
        })?;
        let tenancy = &mut config.layers.tenancy;
        tenancy.enabled = true;
        tenancy.mode = TenancyMode::GroupMap;
        tenancy.groups = groups;
    }
    Ok(())
}

/// `${user_config.NAME}` exactly: an unsubstituted MCP Bundle variable.
fn is_bundle_placeholder(value: &str) -> bool {
    value
        .trim()
        .strip_prefix("${user_config.")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|name| !name.is_empty() && !name.contains(['{', '}']))
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid {
            key: name.into(),
            message: format!("{value:?} is not a boolean: send true or false"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut config = Config::parse(super::super::STANDALONE_TOML)?;
        apply_env_overrides(&mut config, |name| env.get(name).cloned())?;
        Ok(config)
    }

    /// `name=value` is refused with an error that names the variable.
    fn refused_naming(name: &str, value: &str) {
        let err = with_env(&[(name, value)]).expect_err("refused");
        assert!(err.to_string().contains(name), "{err}");
    }

    #[test]
    fn url_and_tenant_override_the_default_upstream() {
        let config = with_env(&[
            ("PROMETHEUS_URL", "https://mimir.example/prometheus"),
            ("PROMETHEUS_ORGID", "team-a"),
        ])
        .expect("valid");
        assert_eq!(config.upstreams[0].url, "https://mimir.example/prometheus");
        assert_eq!(config.upstreams[0].org_id.as_deref(), Some("team-a"));
    }

    #[test]
    fn token_wins_over_basic() {
        let config = with_env(&[
            ("PROMETHEUS_USERNAME", "u"),
            ("PROMETHEUS_PASSWORD", "p"),
            ("PROMETHEUS_TOKEN", "t"),
        ])
        .expect("valid");
        assert!(matches!(
            &config.upstreams[0].auth,
            UpstreamAuthConfig::Bearer { token: Some(t), .. } if t.expose() == "t"
        ));
    }

    #[test]
    fn basic_from_username_and_password() {
        let config =
            with_env(&[("PROMETHEUS_USERNAME", "u"), ("PROMETHEUS_PASSWORD", "p")]).expect("valid");
        assert!(matches!(
            &config.upstreams[0].auth,
            UpstreamAuthConfig::Basic { username, password: Some(p), .. }
                if username == "u" && p.expose() == "p"
        ));
    }

    #[test]
    fn tls_switches() {
        let config = with_env(&[
            ("PROMETHEUS_TLS_SKIP_VERIFY", "true"),
            ("PROMETHEUS_TLS_CA_CERT", "/etc/ca.pem"),
        ])
        .expect("valid");
        assert!(config.upstreams[0].tls.insecure_skip_verify);
        assert_eq!(
            config.upstreams[0].tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        refused_naming("PROMETHEUS_TLS_SKIP_VERIFY", "maybe");
    }

    #[test]
    fn trusted_audiences_and_group_map_from_env() {
        let config = with_env(&[
            ("OAUTH_TRUSTED_AUDIENCES", "muster, other ,"),
            (
                "TENANCY_STATIC_GROUP_MAP",
                r#"{"team-a":["tenant-a"],"team-b":["b","c"]}"#,
            ),
        ])
        .expect("valid");
        assert!(config.layers.audience.enabled);
        assert_eq!(config.layers.audience.trusted, ["muster", "other"]);
        assert_eq!(config.layers.tenancy.mode, TenancyMode::GroupMap);
        assert_eq!(config.layers.tenancy.groups["team-b"], ["b", "c"]);
        refused_naming("TENANCY_STATIC_GROUP_MAP", "[1]");
    }

    #[test]
    fn oauth_issuer_is_the_public_url_unless_the_file_sets_one() {
        let config = with_env(&[("MCP_OAUTH_ISSUER", "https://mcp.example.com/")]).expect("valid");
        assert_eq!(
            config.server.public_url.as_deref(),
            Some("https://mcp.example.com")
        );
        assert_eq!(
            config.oauth.issuer.as_deref(),
            Some("https://mcp.example.com/")
        );
        let env: HashMap<String, String> = [(
            "MCP_OAUTH_ISSUER".to_owned(),
            "https://other.example".to_owned(),
        )]
        .into();
        let mut config =
            Config::parse("[server]\npublic_url = \"https://file.example\"\n").expect("parses");
        apply_env_overrides(&mut config, |name| env.get(name).cloned()).expect("valid");
        assert_eq!(
            config.server.public_url.as_deref(),
            Some("https://file.example")
        );
    }

    #[test]
    fn unsubstituted_bundle_variables_are_ignored() {
        let config = with_env(&[
            ("PROMETHEUS_URL", "${user_config.prometheus_url}"),
            ("PROMETHEUS_TOKEN", " ${user_config.prometheus_token} "),
        ])
        .expect("valid");
        assert_eq!(config.upstreams[0].url, "http://127.0.0.1:9090");
        assert!(matches!(config.upstreams[0].auth, UpstreamAuthConfig::None));
        // Anything else is a value, even with a dollar sign in it.
        let config = with_env(&[("PROMETHEUS_TOKEN", "${user_config.}x")]).expect("valid");
        assert!(matches!(
            &config.upstreams[0].auth,
            UpstreamAuthConfig::Bearer { token: Some(t), .. } if t.expose() == "${user_config.}x"
        ));
    }

    #[test]
    fn empty_values_are_ignored() {
        let config = with_env(&[("PROMETHEUS_URL", "")]).expect("valid");
        assert_eq!(config.upstreams[0].url, "http://127.0.0.1:9090");
    }
}
