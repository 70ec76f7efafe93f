//! The rewrite table: what each query becomes for a caller of tenant `a`,
//! and what is refused.

use super::matcher;
use crate::outbound::tenant_label::rewrite::{RewriteError, regex_escape};

/// (query, what is sent) for a caller of tenant `a`.
const SCOPED: &[(&str, &str)] = &[
    ("up", r#"up{tenant="a"}"#),
    (r#"{__name__=~".+"}"#, r#"{__name__=~".+",tenant="a"}"#),
    // the caller's own matcher on the label stays: both apply
    (r#"demo{tenant="b"}"#, r#"demo{tenant="a",tenant="b"}"#),
    (r#"demo{tenant!="a"}"#, r#"demo{tenant!="a",tenant="a"}"#),
    (r#"demo{tenant=~".*"}"#, r#"demo{tenant="a",tenant=~".*"}"#),
    (r#"demo{"tenant"="b"}"#, r#"demo{tenant="a",tenant="b"}"#),
    ("demo or vector(1)", r#"demo{tenant="a"} or vector(1)"#),
    (
        r#"label_replace(demo, "tenant", "b", "", "")"#,
        r#"label_replace(demo{tenant="a"}, "tenant", "b", "", "")"#,
    ),
    (
        r#"label_join(demo, "tenant", ",", "job")"#,
        r#"label_join(demo{tenant="a"}, "tenant", ",", "job")"#,
    ),
    (
        "rate(demo[5m] offset 1h)",
        r#"rate(demo{tenant="a"}[5m] offset 1h)"#,
    ),
    ("demo offset -5m", r#"demo{tenant="a"} offset -5m"#),
    ("demo @ end()", r#"demo{tenant="a"} @ end()"#),
    (
        "demo @ 1700000000.123",
        r#"demo{tenant="a"} @ 1700000000.123"#,
    ),
    (
        "max_over_time((demo @ end())[1h:1m])",
        r#"max_over_time((demo{tenant="a"} @ end())[1h:1m])"#,
    ),
    ("demo[5m:] offset 1m", r#"demo{tenant="a"}[5m:] offset 1m"#),
    (
        r#"absent(demo{tenant="b"})"#,
        r#"absent(demo{tenant="a",tenant="b"})"#,
    ),
    (
        r#"count_values("tenant", demo)"#,
        r#"count_values("tenant", demo{tenant="a"})"#,
    ),
    (
        "demo * on() group_left() other",
        r#"demo{tenant="a"} * on () group_left () other{tenant="a"}"#,
    ),
    (
        "demo / ignoring(tenant) group_right(tenant) other",
        r#"demo{tenant="a"} / ignoring (tenant) group_right (tenant) other{tenant="a"}"#,
    ),
    (
        "vector(1) and on() demo",
        r#"vector(1) and on () demo{tenant="a"}"#,
    ),
    (
        "sum without (tenant) (demo)",
        r#"sum without (tenant) (demo{tenant="a"})"#,
    ),
    (
        "topk(scalar(demo), other)",
        r#"topk(scalar(demo{tenant="a"}), other{tenant="a"})"#,
    ),
    (
        "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
        r#"histogram_quantile(0.9, sum by (le) (rate(h_bucket{tenant="a"}[5m])))"#,
    ),
    // `or` inside braces: ours joins every group
    (
        r#"{a="1" or tenant="b"}"#,
        r#"{a="1", tenant="a" or tenant="b", tenant="a"}"#,
    ),
    (
        r#"demo{x="1", a="2" or b="3"}"#,
        r#"demo{x="1", a="2", tenant="a" or b="3", tenant="a"}"#,
    ),
    // strings and escapes survive
    (
        r#"demo{job="x\"y\\z\n"}"#,
        r#"demo{job="x\"y\\z\n",tenant="a"}"#,
    ),
    (r#"demo{job="é😀"}"#, r#"demo{job="é😀",tenant="a"}"#),
    (r#"demo{job='single'}"#, r#"demo{job="single",tenant="a"}"#),
    (
        r#"demo{job=~"a\\.b{2}"}"#,
        r#"demo{job=~"a\\.b{2}",tenant="a"}"#,
    ),
    ("-(demo)", r#"-(demo{tenant="a"})"#),
    (
        r#"info(demo, {tenant="b"})"#,
        r#"info(demo{tenant="a"}, {tenant="a",tenant="b"})"#,
    ),
    // durations are printed in their canonical form, meaning the same
    ("rate(demo[90s])", r#"rate(demo{tenant="a"}[1m30s])"#),
    ("demo[1d] offset 1w", r#"demo{tenant="a"}[1d] offset 1w"#),
    (
        r#"label_replace(demo, "x", "a\"b$1", "job", "(.*)")"#,
        r#"label_replace(demo{tenant="a"}, "x", "a\"b$1", "job", "(.*)")"#,
    ),
    // nothing to scope
    ("1 + 2", "1 + 2"),
    ("time()", "time()"),
    // a comment is not sent
    ("up # and a comment", r#"up{tenant="a"}"#),
];

#[test]
fn the_table_of_scoped_queries() {
    let a = matcher(&["a"]);
    for (query, sent) in SCOPED {
        let got = a
            .rewrite_query(query, None)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(&got, sent, "{query}");
    }
    assert!(SCOPED.len() >= 25);
}

#[test]
fn refused_rather_than_sent_changed() {
    let a = matcher(&["a"]);
    let lossy = ["demo @ -100", "sum by () (demo)", "demo + ignoring() other"];
    for query in lossy {
        let err = a.rewrite_query(query, None).expect_err(query);
        assert!(matches!(err, RewriteError::Lossy { .. }), "{query}: {err}");
        assert!(err.to_string().contains("sent as"), "{err}");
    }
    for invalid in [
        "demo{",
        "",
        r#"demo{job=`raw\d`}"#,
        "holt_winters(demo[5m], 0.5, 0.5)",
    ] {
        let err = a.rewrite_query(invalid, None).expect_err(invalid);
        assert!(matches!(err, RewriteError::Promql(_)), "{invalid}: {err}");
    }
    // Prometheus looks up a one-argument info()'s target_info series by job
    // and instance alone: no tenant matcher reaches that lookup.
    for query in ["info(demo)", "sum(info(rate(demo[5m])))"] {
        let err = a.rewrite_query(query, None).expect_err(query);
        assert!(
            matches!(err, RewriteError::UnscopableInfo),
            "{query}: {err}"
        );
    }
    let two = a
        .rewrite_query("info(demo, target_info{env=\"prod\"})", None)
        .expect("the second argument is scoped");
    assert_eq!(two.matches("tenant=\"a\"").count(), 2, "{two}");
}

#[test]
fn several_tenants_are_an_anchored_escaped_alternation() {
    let m = matcher(&["a", "b.c", "d*e(f)", "g!h'i-j_k"]);
    let sent = m.rewrite_query("up", None).expect("scoped");
    assert_eq!(
        sent,
        r#"up{tenant=~"^(?:a|b\\.c|d\\*e\\(f\\)|g!h'i-j_k)$"}"#
    );
    let matcher = m.matcher();
    for tenant in ["a", "b.c", "d*e(f)", "g!h'i-j_k"] {
        assert!(matcher.is_match(tenant), "{tenant}");
    }
    for other in ["b", "bxc", "ddde(f)", "d*ef", "a|b", "", "ab", "a\n", "A"] {
        assert!(!matcher.is_match(other), "{other:?}");
    }
    assert_eq!(regex_escape("x.*()"), r"x\.\*\(\)");
}

#[test]
fn a_tools_parse_is_used_for_the_same_text() {
    let a = matcher(&["a"]);
    let tools = crate::promql::parse("other").expect("valid");
    assert_eq!(
        a.rewrite_query("up", Some(&tools)).expect("scoped"),
        r#"other{tenant="a"}"#,
        "the parse travels with its text; the layer matches them before using it"
    );
}

#[test]
fn series_selectors() {
    let a = matcher(&["a"]);
    assert_eq!(a.selector(), r#"{tenant="a"}"#);
    assert_eq!(matcher(&["a", "b"]).selector(), r#"{tenant=~"^(?:a|b)$"}"#);
    for (selector, sent) in [
        ("demo", r#"demo{tenant="a"}"#),
        (
            r#"{__name__=~"demo.*"}"#,
            r#"{__name__=~"demo.*",tenant="a"}"#,
        ),
        (r#"demo{tenant="b"}"#, r#"demo{tenant="a",tenant="b"}"#),
        (
            r#"{job="x" or tenant="b"}"#,
            r#"{job="x", tenant="a" or tenant="b", tenant="a"}"#,
        ),
    ] {
        assert_eq!(a.rewrite_selector(selector).expect(selector), sent);
    }
    for bad in [
        "demo offset 5m",
        "demo @ end()",
        "demo or other",
        "rate(demo[5m])",
        "demo[5m]",
        "1",
        "{",
    ] {
        let err = a.rewrite_selector(bad).expect_err(bad);
        assert!(matches!(err, RewriteError::NotASelector(_)), "{bad}: {err}");
    }
}
