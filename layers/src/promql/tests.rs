use super::*;

#[test]
fn errors_say_where_what_and_how() {
    let err = parse("sum(rate(http_requests_total[5m]) by (job)").expect_err("unclosed");
    assert_eq!(err.position, Some(4), "{err}");
    assert!(err.to_string().contains("near `sum(rate(http_"), "{err}");
    assert!(err.hint.contains("sum by (job)"), "{err}");
    let err = parse("up{job=\"a\"").expect_err("brace");
    assert_eq!(err.position, Some(3), "{err}");
    let err = parse("up{job=\"a}").expect_err("quote");
    assert_eq!(err.position, Some(8), "{err}");
    let err = parse("rate(up[5m]) + ").expect_err("dangling operator");
    assert!(err.to_string().starts_with("invalid PromQL"), "{err}");
    assert!(parse("   ").expect_err("empty").hint.contains("up"));
    assert!(parse(&"a".repeat(MAX_QUERY_BYTES + 1)).is_err());
    let err = parse("é(((").expect_err("unicode");
    assert!(
        err.to_string().contains('é'),
        "fragments cut on characters: {err}"
    );
}

#[test]
fn selectors_are_found_everywhere() {
    let expr = parse(
        "sum by (job) (rate(a_total{x=\"1\"}[5m] offset 1h)) / on (job) group_left \
         count_values(\"v\", b) or label_replace(c, \"t\", \"$1\", \"s\", \"(.*)\") \
         + max_over_time((d @ end())[1h:1m]) + topk(scalar(e), f)",
    )
    .expect("valid");
    let names: Vec<String> = selectors(&expr)
        .iter()
        .map(|(vs, range)| {
            format!(
                "{}{}",
                vs.name.clone().unwrap_or_default(),
                range.map_or("", |_| "[]")
            )
        })
        .collect();
    assert_eq!(
        names,
        ["a_total[]", "b", "c", "d", "f", "e"],
        "topk's parameter after its expression"
    );
}

#[test]
fn every_selector_is_reached_for_rewriting() {
    let mut expr =
        parse("a + on() sum(max_over_time(b[5m:1m])) or vector(1) and absent(c{x=~\"y\"})")
            .expect("valid");
    let mut seen = 0;
    selectors_mut(&mut expr, &mut |vs| {
        seen += 1;
        vs.offset = None;
    })
    .expect("no extension nodes");
    assert_eq!(seen, 3);
}

#[test]
fn nesting_is_bounded_before_the_parser_recurses() {
    let deep = format!("{}up{}", "(".repeat(5000), ")".repeat(5000));
    let err = parse(&deep).expect_err("too deep");
    assert!(err.message.contains("nest more than"), "{err}");
    let signs = format!("{}1", "-".repeat(5000));
    assert!(parse(&signs).is_err());
    let fine = format!("{}up{}", "(".repeat(50), ")".repeat(50));
    assert!(parse(&fine).is_ok());
    assert!(
        parse("up{job=\"((((((((((\"}").is_ok(),
        "brackets in strings do not count"
    );
}
