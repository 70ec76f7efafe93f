//! Property tests: whatever arguments a model or a stranger sends to any
//! tool (any JSON: odd Unicode, NUL, huge strings, numbers beyond i64 and
//! f64, deep nesting), the call ends in a result or a typed error, quickly,
//! never a panic. The upstream is a closed port, so valid arguments fail
//! fast at the connection.

use std::time::Duration;

use proptest::prelude::*;
use rmcp::model::JsonObject;
use serde_json::{Number, Value};

use super::ToolContext;
use super::registry::{TOOL_NAMES, call};
use crate::config::{Config, STANDALONE_TOML};
use crate::stack::{Outbound, build_ctx};
use crate::upstream::Upstreams;

/// Every argument name the tools take, and one nobody takes.
const KEYS: &[&str] = &[
    "query",
    "time",
    "start",
    "end",
    "step",
    "timeout",
    "limit",
    "stats",
    "lookback_delta",
    "unlimited",
    "upstream",
    "org_id",
    "matches",
    "label",
    "metric",
    "match_target",
    "state",
    "rule_type",
    "rule_name",
    "rule_group",
    "file",
    "health",
    "scrape_pool",
    "type",
    "x",
];

/// Text a tired model or an attacker sends.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        Just("now\u{2212}1h".to_owned()),
        Just("\u{202e}up\u{200f}".to_owned()),
        Just("up\u{0}{job=\"a\"}".to_owned()),
        Just("😀".repeat(50)),
        Just("x".repeat(300_000)),
        "[0-9]{1,40}(ms|s|m|h|d|y)?",
        Just("a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q".to_owned()),
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(1e308)),
        Just(Value::from(-1e308)),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        hostile_text().prop_map(Value::String),
        hostile_number(),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hostile_arguments() -> impl Strategy<Value = JsonObject> {
    prop::collection::btree_map(prop::sample::select(KEYS), hostile_value(), 0..6)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Tools over one upstream on a closed port (connection refused at once).
fn context() -> ToolContext {
    let mut config = Config::parse(STANDALONE_TOML).expect("standalone parses");
    config.upstreams.truncate(1);
    config.upstreams[0].url = "http://127.0.0.1:1".into();
    config.upstreams[0].timeout = crate::config::ConfigDuration(Duration::from_millis(500));
    let ctx = build_ctx(&config, prometheus_client::registry::Registry::default());
    let outbound = Outbound::from_config(&config, &ctx).expect("outbound");
    let upstreams = Upstreams::new(&config.upstreams, &outbound, &ctx).expect("upstreams");
    ToolContext::new(upstreams, config.tools.clone(), false, 16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_arguments_to_any_tool_end_in_a_result_or_a_typed_error(
        tool in prop::sample::select(TOOL_NAMES),
        arguments in hostile_arguments(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let outcome = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), call(context(), tool, arguments)).await
        });
        let finished = outcome.expect("every call ends within 5 s");
        prop_assert!(finished.is_some(), "{tool} is a tool");
    }
}
