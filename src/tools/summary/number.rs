//! Numbers for a model to read: four significant digits, no noise.

/// `x` with about four significant digits: `0.1235`, `1235`, `1.235e7`.
pub fn short(x: f64) -> String {
    if !x.is_finite() {
        return match x {
            x if x.is_nan() => "NaN".into(),
            x if x > 0.0 => "+Inf".into(),
            _ => "-Inf".into(),
        };
    }
    let abs = x.abs();
    if abs == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e6).contains(&abs) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - abs.log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `short` of an optional value, `-` when there is none.
pub fn short_or_dash(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_significant_digits() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(0.123456), "0.1235");
        assert_eq!(short(1234.5678), "1235");
        assert_eq!(short(-12.5), "-12.5");
        assert_eq!(short(999_999.0), "999999");
        assert_eq!(short(12_345_678.0), "1.235e7");
        assert_eq!(short(0.000_012_3), "1.230e-5");
        assert_eq!(short(f64::NAN), "NaN");
        assert_eq!(short(f64::NEG_INFINITY), "-Inf");
        assert_eq!(short_or_dash(None), "-");
    }
}
