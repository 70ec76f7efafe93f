use super::super::{Config, STANDALONE_TOML};
use proptest::strategy::Strategy;

/// What `check-config` says: the config's own checks, then the stacks'
/// builders.
fn check(text: &str) -> Result<(), String> {
    let config = Config::parse(text).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    crate::stack::check(&config).map_err(|e| e.to_string())
}

fn error_of(extra: &str) -> String {
    match check(&format!("{STANDALONE_TOML}\n{extra}")) {
        Ok(()) => panic!("accepted: {extra}"),
        Err(e) => e,
    }
}

/// Each `(extra config, needle)` is refused with an error naming `needle`.
fn assert_each_refused(cases: &[(&str, &str)]) {
    for (extra, needle) in cases {
        let err = error_of(extra);
        assert!(err.contains(needle), "{extra}: {err}");
    }
}

#[test]
fn standalone_is_valid() {
    Config::parse(STANDALONE_TOML)
        .expect("parses")
        .validate()
        .expect("valid");
}

#[test]
fn unknown_key_is_named() {
    let err =
        Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n").expect_err("unknown");
    assert!(err.to_string().contains("bogus"), "{err}");
    assert!(
        err.to_string().contains("mcp_path"),
        "lists what is allowed: {err}"
    );
}

#[test]
fn bad_upstreams_are_named() {
    let cases = [
        (
            "[[upstreams]]\nname = \"local\"\nurl = \"http://x\"\n",
            "used twice",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"ftp://x\"\n",
            "upstreams[1].url",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"http://u:p@x\"\n",
            "credentials",
        ),
        (
            "[[upstreams]]\nname = \"b c\"\nurl = \"http://x\"\n",
            "upstreams[1].name",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"http://x\"\ntimeout = \"0s\"\n",
            "timeout",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"http://x\"\norg_id = \"a|b\"\n",
            "org_id",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"http://x\"\nheaders = { Authorization = \"x\" }\n",
            "through auth",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"http://x\"\nauth = { kind = \"bearer\" }\n",
            "exactly one",
        ),
        (
            "[[upstreams]]\nname = \"b\"\nurl = \"http://x\"\nauth = { kind = \"digest\" }\n",
            "digest",
        ),
    ];
    assert_each_refused(&cases);
}

#[test]
fn unsafe_combinations_are_refused_with_a_fix() {
    let cases = [
        (
            "[layers.tenancy]\nenabled = true\nmode = \"group-map\"\n[layers.tenancy.groups]\na = [\"t\"]\n",
            "needs [layers.authn]",
        ),
        (
            "[layers.audience]\nenabled = true\ntrusted = [\"c\"]\n",
            "need [layers.authn]",
        ),
        ("[layers.authn]\nenabled = true\n", "server.public_url"),
        (
            "[[upstreams]]\nname = \"g\"\nurl = \"http://grafana.example\"\nauth = { kind = \"forward\", header = \"X-Token\" }\n",
            "plain http",
        ),
        (
            "[layers.tenancy]\nenabled = true\nmode = \"static\"\n",
            "static mode needs tenants",
        ),
        (
            "[layers.tenancy]\nenabled = true\nmode = \"static\"\ntenants = [\"a|b\"]\n",
            "layers.tenancy",
        ),
    ];
    assert_each_refused(&cases);
}

#[test]
fn stdio_has_no_identity_for_group_tenancy() {
    let group_map = "[layers.authn]\nenabled = true\n[[layers.authn.issuers]]\nissuer = \"https://dex.example\"\n[layers.tenancy]\nenabled = true\nmode = \"group-map\"\n[layers.tenancy.groups]\na = [\"t\"]\n";
    let stdio = format!("{STANDALONE_TOML}\n{group_map}")
        .replacen(
            "transport = \"streamable-http\"",
            "transport = \"stdio\"",
            1,
        )
        .replacen(
            "[server]\n",
            "[server]\npublic_url = \"https://mcp.example\"\n",
            1,
        );
    let err = check(&stdio).expect_err("no identity under stdio");
    assert!(
        err.contains("layers.tenancy.mode") && err.contains("stdio"),
        "{err}"
    );
    let listed = stdio.replacen(
        "mode = \"group-map\"\n",
        "mode = \"group-map\"\ntenants = [\"t\"]\n",
        1,
    );
    assert!(check(&listed).is_ok(), "stdio tenants listed");
}

/// The shipped config with `lines` added to its `[server]` table.
fn with_server_lines(lines: &str) -> Result<(), String> {
    check(&STANDALONE_TOML.replacen("[server]\n", &format!("[server]\n{lines}\n"), 1))
}

#[test]
fn legacy_sse_settings_are_bounded() {
    assert!(
        with_server_lines("legacy_sse = true\nsse_max_sessions = 1\nsse_idle_timeout = \"1s\"")
            .is_ok()
    );
    let cases = [
        ("sse_max_sessions = 0", "server.sse_max_sessions"),
        ("max_sessions = 0", "server.max_sessions"),
        ("sse_idle_timeout = \"500ms\"", "server.sse_idle_timeout"),
        ("sse_idle_timeout = \"25h\"", "between 1s and 24h"),
        (
            "legacy_sse = true\nmcp_path = \"/sse\"",
            "legacy SSE transport's paths",
        ),
    ];
    for (lines, needle) in cases {
        // The standalone file sets mcp_path itself: drop it for the override.
        let text = STANDALONE_TOML
            .replacen("mcp_path = \"/mcp\"\n", "", 1)
            .replacen("[server]\n", &format!("[server]\n{lines}\n"), 1);
        let err = check(&text).expect_err(lines);
        assert!(err.contains(needle), "{lines}: {err}");
    }
    // Without the SSE routes, /message is an ordinary path.
    let text = STANDALONE_TOML.replacen("mcp_path = \"/mcp\"", "mcp_path = \"/message\"", 1);
    assert!(check(&text).is_ok());
    let sse = text.replacen("transport = \"streamable-http\"", "transport = \"sse\"", 1);
    assert!(
        check(&sse)
            .expect_err("collides")
            .contains("server.mcp_path")
    );
}

#[test]
fn authn_issuers_must_be_fetchable_safely() {
    let base = "[server]\npublic_url = \"https://mcp.example\"\n";
    let text = |issuer: &str| {
        format!(
            "{base}[layers.authn]\nenabled = true\n[[layers.authn.issuers]]\n{issuer}\n[[upstreams]]\nname = \"l\"\nurl = \"http://127.0.0.1:9090\"\n"
        )
    };
    let check = |issuer: &str| self::check(&text(issuer));
    assert!(check("issuer = \"https://dex.example\"").is_ok());
    let err = check("issuer = \"http://dex.example\"").expect_err("plain http");
    assert!(err.contains("allow_private_urls"), "{err}");
    assert!(check("issuer = \"http://127.0.0.1:5556\"\nallow_private_urls = true").is_ok());
    let err = check("issuer = \"teleport.example\"").expect_err("not a URL");
    assert!(err.contains("jwks_url"), "{err}");
    assert!(check("issuer = \"teleport.example\"\njwks_url = \"https://teleport.example/.well-known/jwks.json\"").is_ok());
}

/// An `[oauth]` table that passes, plus `extra` lines.
fn oauth_error_of(extra: &str) -> String {
    let base = "[oauth]\nenabled = true\nencryption_key = \"8f3c2a9b1e7d4c6a0b5f9e2d3c8a7b6f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b\"\nregistration = \"public\"\n";
    let provider = "[oauth.provider]\nissuer_url = \"https://dex.example\"\nclient_id = \"mcp\"\n";
    let text = format!("{STANDALONE_TOML}\n{base}{extra}\n{provider}").replacen(
        "[server]\n",
        "[server]\npublic_url = \"https://mcp.example\"\n",
        1,
    );
    match Config::parse(&text).and_then(|c| c.validate()) {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn oauth_bounds_and_scopes_are_checked() {
    assert_eq!(oauth_error_of(""), "", "the base table is valid");
    assert!(oauth_error_of("max_pending_logins = 0").contains("max_pending_logins"));
    assert!(oauth_error_of("max_pending_logins_per_address = 0").contains("at least 1"));
    assert!(oauth_error_of("scopes = [\"openid\", \"two words\"]").contains("oauth.scopes"));
    assert!(oauth_error_of("refresh_token_max_lifetime = \"0s\"").contains("more than 0s"));
    assert!(
        oauth_error_of("client_metadata_allowed_hosts = [\"https://app.example\"]")
            .contains("not a host name")
    );
    assert_eq!(
        oauth_error_of(
            "scopes = [\"openid\", \"prometheus:read\"]\nconsent_ttl = \"0s\"\npreapproved_clients = [\"https://app.example/client.json\"]\nclient_metadata_allowed_hosts = [\"app.example\"]"
        ),
        ""
    );
}

#[test]
fn storage_passwords_inside_the_url_are_redacted() {
    let mut config = Config::parse(STANDALONE_TOML).expect("parses");
    config.oauth.storage.url = "redis://:hunter2@valkey:6379/0".into();
    let printed = config.to_redacted_toml();
    assert!(!printed.contains("hunter2"), "{printed}");
    let debugged = format!("{:?}", config.oauth.storage);
    assert!(!debugged.contains("hunter2"), "{debugged}");
    config.oauth.storage.url = "redis://:hunter2@[bad".into();
    assert!(!config.to_redacted_toml().contains("hunter2"));
    assert!(
        printed.contains("redis://:%3Credacted%3E@valkey:6379/0") || printed.contains("<redacted>"),
        "{printed}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(256))]

    /// Any text is a config or a typed error.
    #[test]
    fn any_text_is_a_config_or_an_error(text in "\\PC{0,200}") {
        let _ = check(&text);
    }

    /// The shipped config with one line's value replaced by anything: the
    /// checks and the stack builders answer, never panic.
    #[test]
    fn any_value_in_any_line_is_checked(
        line in 0usize..200,
        value in proptest::prop_oneof![
            "\\PC{0,40}".prop_map(|t| format!("{t:?}")),
            proptest::num::i64::ANY.prop_map(|n| n.to_string()),
            "[0-9]{1,30}(ms|s|m|h|d)?".prop_map(|t| format!("{t:?}")),
            proptest::prelude::Just("[\"a|b\", \"\\u0000\"]".to_owned()),
        ],
    ) {
        let mut lines: Vec<String> = STANDALONE_TOML.lines().map(str::to_owned).collect();
        let index = line % lines.len();
        if let Some((key, _)) = lines[index].split_once(" = ") {
            lines[index] = format!("{key} = {value}");
        }
        let _ = check(&lines.join("\n"));
    }
}

#[test]
fn a_sidecar_listening_on_its_upstream_port_is_refused() {
    let sidecar = include_str!("../../../config/sidecar.toml");
    assert!(check(sidecar).is_ok(), "{:?}", check(sidecar));
    let clash = sidecar.replace("0.0.0.0:8090", "0.0.0.0:8080");
    let err = check(&clash).expect_err("queries itself");
    assert!(
        err.contains("upstreams[0].url") && err.contains("own listener"),
        "{err}"
    );
    let elsewhere = clash.replace("http://localhost:8080", "http://mimir:8080");
    assert!(
        check(&elsewhere).is_ok(),
        "another host on the same port is fine"
    );
}

#[test]
fn policy_ratelimit_and_audit_are_checked_by_check_config() {
    assert_each_refused(&[
        (
            "[layers.policy]\nenabled = true\n[[layers.policy.rules]]\ngroups = [\"a\"]\nallow = [\"get_confg\"]\n",
            "layers.policy",
        ),
        (
            "[layers.ratelimit]\nenabled = true\ndefault = { per_second = -1.0, burst = 1 }\n",
            "layers.ratelimit.default",
        ),
        (
            "[layers.ratelimit]\nenabled = true\n[[layers.ratelimit.rules]]\nsubjects = [\"a\"]\nper_second = 1.0\nburst = 1\n",
            "needs [layers.authn]",
        ),
        ("[audit]\nenabled = true\nsink = \"file\"\n", "audit.path"),
        (
            "[audit]\nenabled = true\nsink = \"file\"\npath = \"/no/such/dir/audit.jsonl\"\n",
            "does not exist",
        ),
    ]);
}

#[test]
fn label_tenancy_is_checked_by_check_config() {
    let label = "[layers.tenancy]\nenabled = true\nmode = \"static\"\ntenants = [\"a\"]\nenforce = \"label\"\n";
    check(&format!("{STANDALONE_TOML}\n{label}")).expect("label mode with static tenants");
    check(&format!(
        "{STANDALONE_TOML}\n{label}label = \"team\"\nlabel_unscoped_tools = [\"get_targets\", \"get_tsdb_stats\"]\n"
    ))
    .expect("a label of one's own, two opted-in tools");
    assert_each_refused(&[
        (
            "[layers.tenancy]\nenforce = \"label\"\n",
            "needs tenancy on",
        ),
        (
            "[layers.tenancy]\nenabled = true\nmode = \"static\"\ntenants = [\"a\"]\nlabel = \"team\"\n",
            "only with enforce = \"label\"",
        ),
        (
            &format!("{label}label = \"__name__\"\n"),
            "layers.tenancy.label",
        ),
        (
            &format!("{label}label = \"a-b\"\n"),
            "not a Prometheus label name",
        ),
        (
            &format!("{label}label_unscoped_tools = [\"get_everything\"]\n"),
            "\"get_everything\" is not a tool",
        ),
        (
            &format!("{label}label_unscoped_tools = [\"execute_query\"]\n"),
            "always scoped",
        ),
        (&format!("{label}enforce = \"both\"\n"), "enforce"),
    ]);
}
