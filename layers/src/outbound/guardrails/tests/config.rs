//! The builder refuses limits that cannot work, naming the key.

use super::*;

#[test]
fn config_is_checked_in_the_builder() {
    let ctx = BuildCtx::default();
    assert!(
        GuardrailsConfig::default()
            .build(&ctx)
            .expect("valid")
            .is_none(),
        "off by default"
    );
    let on = |tune: fn(&mut GuardrailsConfig)| {
        let mut config = GuardrailsConfig {
            mode: GuardrailMode::Warn,
            ..GuardrailsConfig::default()
        };
        tune(&mut config);
        config.build(&ctx).map(|layer| layer.is_some())
    };
    assert_eq!(on(|_| {}), Ok(true));
    for bad in [
        (|c: &mut GuardrailsConfig| c.max_points = 0) as fn(&mut GuardrailsConfig),
        |c| c.max_series_per_selector = 0,
        |c| c.precheck_timeout = ConfigDuration::secs(0),
        |c| c.precheck_timeout = ConfigDuration::secs(600),
        |c| c.precheck_cache_ttl = ConfigDuration::secs(0),
        |c| c.precheck_cache_entries = 0,
        |c| c.max_range = ConfigDuration::secs(0),
        |c| c.min_subquery_step = ConfigDuration::secs(86_400 * 40),
    ] {
        let error = on(bad).expect_err("refused");
        assert!(error.to_string().contains('`'), "names the key: {error}");
    }
    let parsed: GuardrailsConfig = toml::from_str(
        "mode = \"enforce\"\nmax_range = \"7d\"\ndisabled_rules = [\"unbounded_regex\"]",
    )
    .expect("parses");
    assert_eq!(parsed.max_range, ConfigDuration::secs(7 * 86_400));
    assert!(
        toml::from_str::<GuardrailsConfig>("max_rnage = \"7d\"").is_err(),
        "unknown keys"
    );
    assert!(toml::from_str::<GuardrailsConfig>("disabled_rules = [\"nope\"]").is_err());
}
