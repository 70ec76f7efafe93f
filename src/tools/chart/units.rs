//! The value axis's unit, read from metric names (`_seconds`, `_bytes`,
//! `_ratio`, Prometheus's naming conventions), and numbers written short in
//! that unit. A unit is shown only when the query cannot have changed it:
//! any function or operator outside a known list (a division, `count`,
//! `changes`…) means no unit rather than a wrong one.

use mcp_prometheus_layers::promql::walk;
use promql_parser::parser::Expr;
use serde_json::{Map, Value};

/// What a metric name says its values measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `_seconds`: durations, written ms, s, min, h, d.
    Seconds,
    /// `_bytes`: sizes, written in KiB, MiB… (1024).
    Bytes,
    /// `_ratio`: 0..1, written as a percentage.
    Ratio,
}

/// The unit of the plotted values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub kind: Kind,
    /// Per second (under `rate`, `irate` or `deriv`).
    pub per_second: bool,
}

/// Aggregations whose result has the unit of their input.
const KEEPING_AGGREGATIONS: &[&str] = &[
    "sum", "avg", "min", "max", "topk", "bottomk", "quantile", "stddev", "limitk",
];
/// Functions whose result has the unit of their input (the rate family
/// adds "per second", `histogram_quantile` takes it away again).
const KEEPING_FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "deriv",
    "increase",
    "delta",
    "idelta",
    "histogram_quantile",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "last_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "predict_linear",
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
];
const PER_SECOND: &[&str] = &["rate", "irate", "deriv"];

/// The unit of a chart's values: from the series' own `__name__` when
/// every one has it, else from the query's metric names, when all agree.
pub fn detect(labels: &[&Map<String, Value>], expr: &Expr) -> Option<Unit> {
    let names: Option<Vec<&str>> = labels
        .iter()
        .map(|l| l.get("__name__").and_then(Value::as_str))
        .collect();
    match names {
        Some(names) if !names.is_empty() => agree(names.into_iter().map(|n| of_name(n, false))),
        _ => from_query(expr),
    }
}

fn agree(mut kinds: impl Iterator<Item = Option<Kind>>) -> Option<Unit> {
    let first = kinds.next()??;
    kinds.all(|k| k == Some(first)).then_some(Unit {
        kind: first,
        per_second: false,
    })
}

fn from_query(expr: &Expr) -> Option<Unit> {
    let mut keeps = true;
    let (mut quantile, mut rate) = (false, false);
    let mut names: Vec<Option<&str>> = Vec::new();
    walk(expr, &mut |node| match node {
        Expr::Aggregate(agg) => {
            keeps &= KEEPING_AGGREGATIONS.contains(&agg.op.to_string().as_str());
        }
        Expr::Call(call) => {
            let name = call.func.name;
            keeps &= KEEPING_FUNCTIONS.contains(&name);
            quantile |= name == "histogram_quantile";
            rate |= PER_SECOND.contains(&name);
        }
        Expr::Binary(binary) => {
            let op = binary.op.to_string();
            keeps &= matches!(op.as_str(), "+" | "-" | "and" | "or" | "unless")
                || (binary.op.is_comparison_operator() && !binary.return_bool());
        }
        Expr::VectorSelector(vs) => names.push(vs.name.as_deref()),
        Expr::MatrixSelector(ms) => names.push(ms.vs.name.as_deref()),
        _ => {}
    });
    if !keeps || names.is_empty() {
        return None;
    }
    let unit = agree(
        names
            .into_iter()
            .map(|n| n.and_then(|n| of_name(n, quantile))),
    )?;
    let per_second = rate && !quantile;
    (!(per_second && unit.kind == Kind::Ratio)).then_some(Unit { per_second, ..unit })
}

/// `http_request_duration_seconds_total` → seconds; `_bucket` only under
/// `histogram_quantile`, `_count` never.
fn of_name(name: &str, quantile: bool) -> Option<Kind> {
    let name = name
        .strip_suffix("_total")
        .or_else(|| name.strip_suffix("_sum"))
        .or_else(|| quantile.then(|| name.strip_suffix("_bucket")).flatten())
        .unwrap_or(name);
    if name.ends_with("_seconds") {
        Some(Kind::Seconds)
    } else if name.ends_with("_bytes") {
        Some(Kind::Bytes)
    } else if name.ends_with("_ratio") {
        Some(Kind::Ratio)
    } else {
        None
    }
}

impl Unit {
    /// How the axis names it.
    pub fn name(self) -> &'static str {
        match (self.kind, self.per_second) {
            (Kind::Seconds, false) => "seconds",
            (Kind::Seconds, true) => "seconds per second",
            (Kind::Bytes, false) => "bytes",
            (Kind::Bytes, true) => "bytes per second",
            (Kind::Ratio, _) => "percent",
        }
    }
}

/// `v` written short in `unit`: `1.5 MiB/s`, `250 ms`, `12%`, `3.2k`.
pub fn format(v: f64, unit: Option<Unit>) -> String {
    let Some(unit) = unit else {
        return scaled(v, 1000.0, &["", "k", "M", "G", "T", "P", "E"], "");
    };
    let text = match unit.kind {
        Kind::Bytes => scaled(
            v,
            1024.0,
            &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
            " ",
        ),
        Kind::Ratio => format!("{}%", short(v * 100.0)),
        Kind::Seconds => seconds(v),
    };
    if unit.per_second {
        format!("{text}/s")
    } else {
        text
    }
}

fn scaled(v: f64, base: f64, prefixes: &[&str], space: &str) -> String {
    let mut scaled = v;
    let mut prefix = prefixes.first().copied().unwrap_or_default();
    for p in prefixes.iter().skip(1) {
        if scaled.abs() < base {
            break;
        }
        scaled /= base;
        prefix = p;
    }
    if prefix.is_empty() {
        short(scaled)
    } else {
        format!("{}{space}{prefix}", short(scaled))
    }
}

fn seconds(v: f64) -> String {
    let a = v.abs();
    let (divisor, suffix) = match a {
        _ if a == 0.0 => (1.0, "s"),
        _ if a >= 86_400.0 => (86_400.0, "d"),
        _ if a >= 3600.0 => (3600.0, "h"),
        _ if a >= 60.0 => (60.0, "min"),
        _ if a >= 1.0 => (1.0, "s"),
        _ if a >= 1e-3 => (1e-3, "ms"),
        _ if a >= 1e-6 => (1e-6, "µs"),
        _ => (1e-9, "ns"),
    };
    format!("{} {suffix}", short(v / divisor))
}

/// Three significant digits, no trailing zeros; exponents for the very
/// large and very small.
pub fn short(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-4..1e15).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unit_of(query: &str) -> Option<Unit> {
        let expr = promql_parser::parser::parse(query).expect("parses");
        detect(&[], &expr)
    }

    fn seconds(per_second: bool) -> Option<Unit> {
        Some(Unit {
            kind: Kind::Seconds,
            per_second,
        })
    }

    #[test]
    fn units_come_from_metric_names_the_query_keeps() {
        assert_eq!(unit_of("go_gc_duration_seconds"), seconds(false));
        assert_eq!(
            unit_of("sum by (job) (rate(process_cpu_seconds_total[5m]))"),
            seconds(true)
        );
        assert_eq!(
            unit_of(
                "histogram_quantile(0.9, sum by (le) (rate(http_duration_seconds_bucket[5m])))"
            ),
            seconds(false)
        );
        assert_eq!(
            unit_of("max_over_time(process_resident_memory_bytes[1h])").map(|u| u.kind),
            Some(Kind::Bytes)
        );
        assert_eq!(
            unit_of("cache_hit_ratio > 0.5").map(|u| u.kind),
            Some(Kind::Ratio)
        );
    }

    #[test]
    fn no_unit_when_the_query_may_have_changed_it() {
        for query in [
            "up",
            "rate(a_seconds_sum[5m]) / rate(a_seconds_count[5m])",
            "count(process_resident_memory_bytes)",
            "changes(process_start_time_seconds[1h])",
            "a_bytes + b_seconds",
            "a_bytes > bool 3",
            "rate(a_seconds_bucket[5m])",
            "rate(a_seconds_count[5m])",
            "{__name__=\"a_bytes\"}",
            "rate(cache_hit_ratio[5m])",
        ] {
            assert_eq!(unit_of(query), None, "{query}");
        }
    }

    #[test]
    fn series_names_win_over_the_query() {
        let expr = promql_parser::parser::parse("{job=\"a\"}").expect("parses");
        let a = json!({"__name__": "a_bytes"});
        let b = json!({"__name__": "b_bytes"});
        let c = json!({"__name__": "c_seconds"});
        let (a, b, c) = (
            a.as_object().expect("map"),
            b.as_object().expect("map"),
            c.as_object().expect("map"),
        );
        assert_eq!(detect(&[a, b], &expr).map(|u| u.kind), Some(Kind::Bytes));
        assert_eq!(detect(&[a, c], &expr), None);
    }

    #[test]
    fn numbers_are_short_and_scaled() {
        assert_eq!(short(0.30000000000000004), "0.3");
        assert_eq!(short(123.456), "123");
        assert_eq!(short(0.001234), "0.00123");
        assert_eq!(short(-2.0), "-2");
        assert_eq!(short(1.5e20), "1.50e20");
        assert_eq!(short(f64::NAN), "NaN");
        assert_eq!(format(1500.0, None), "1.5k");
        assert_eq!(format(999.0, None), "999");
        assert_eq!(format(f64::MAX, None), "1.80e290E");
        let bytes = Some(Unit {
            kind: Kind::Bytes,
            per_second: true,
        });
        assert_eq!(format(1.5 * 1024.0 * 1024.0, bytes), "1.5 MiB/s");
        assert_eq!(format(0.25, seconds(false)), "250 ms");
        assert_eq!(format(90.0, seconds(false)), "1.5 min");
        assert_eq!(format(0.0, seconds(false)), "0 s");
        let ratio = Some(Unit {
            kind: Kind::Ratio,
            per_second: false,
        });
        assert_eq!(format(0.125, ratio), "12.5%");
    }
}
