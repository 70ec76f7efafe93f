//! One series of a matrix read from the front of a byte slice: by hand in
//! Prometheus's canonical shape, by serde in any other.

use std::collections::BTreeMap;

use super::samples::{RangeSeries, SampleStats, parse_value};
use super::stats::{Sample, SeriesStats};

/// More digits than this in a timestamp go to serde: below it the digits
/// fit an f64 exactly, so the hand-read value is serde's to the bit.
const MAX_TIMESTAMP_DIGITS: usize = 15;

/// Exact powers of ten, as serde_json divides by them.
const POW10: [f64; MAX_TIMESTAMP_DIGITS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A series read from the front of a slice, and how many bytes it took.
pub type Parsed = (RangeSeries, usize);

/// Reads the series at the start of `bytes` (`None`: it goes on past the
/// slice's end); `samples` is scratch space. An error says what in the
/// series is not a matrix series.
pub fn read_series(bytes: &[u8], samples: &mut Vec<Sample>) -> Result<Option<Parsed>, String> {
    let mut cursor = Cursor { bytes, at: 0 };
    samples.clear();
    match cursor.series(samples) {
        Ok(metric) => {
            let series = RangeSeries {
                metric,
                values: SampleStats(SeriesStats::of(samples)),
                histograms: None,
            };
            Ok(Some((series, cursor.at)))
        }
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Odd) => by_serde(bytes),
    }
}

/// The general reader, for a series the hand reader does not take.
fn by_serde(bytes: &[u8]) -> Result<Option<Parsed>, String> {
    let mut series = serde_json::Deserializer::from_slice(bytes).into_iter::<RangeSeries>();
    match series.next() {
        Some(Ok(read)) => Ok(Some((read, series.byte_offset()))),
        Some(Err(error)) if error.is_eof() => Ok(None),
        Some(Err(error)) => Err(format!("a series of the result list: {error}")),
        None => Ok(None),
    }
}

/// Why the hand reader stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// The slice ended first.
    Incomplete,
    /// Not the canonical shape: serde reads it (or says what is wrong).
    Odd,
}

/// `-12.345` and the like with at most 15 digits: the digits as an exact
/// integer divided by an exact power of ten, one correctly rounded
/// division, so the value `str::parse` gives (its own fast path).
fn short_decimal(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut significand: u64 = 0;
    let (mut count, mut fraction) = (0usize, None::<usize>);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                significand = significand * 10 + u64::from(b - b'0');
                count += 1;
                if count > MAX_TIMESTAMP_DIGITS {
                    return None;
                }
                if let Some(n) = fraction.as_mut() {
                    *n += 1;
                }
            }
            b'.' if fraction.is_none() && count > 0 => fraction = Some(0),
            _ => return None,
        }
    }
    if count == 0 || fraction == Some(0) {
        return None;
    }
    let value = significand as f64 / POW10.get(fraction.unwrap_or(0)).copied()?;
    Some(if negative { -value } else { value })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// `{"metric":{…},"values":[…]}`, the samples into `samples`.
    fn series(&mut self, samples: &mut Vec<Sample>) -> Result<BTreeMap<String, String>, Stop> {
        self.expect(br#"{"metric":{"#)?;
        let metric = self.labels()?;
        if self.next()? == b'}' {
            return Ok(metric);
        }
        self.at -= 1;
        self.expect(br#","values":["#)?;
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                samples.push(self.sample()?);
                match self.next()? {
                    b',' => {}
                    b']' => break,
                    _ => return Err(Stop::Odd),
                }
            }
        }
        self.expect(b"}")?;
        Ok(metric)
    }

    /// The labels after `{`, through the closing `}`.
    fn labels(&mut self) -> Result<BTreeMap<String, String>, Stop> {
        let mut labels = BTreeMap::new();
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(labels);
        }
        loop {
            self.expect(b"\"")?;
            let name = self.string()?;
            self.expect(b":\"")?;
            let value = self.string()?;
            labels.insert(name.to_owned(), value.to_owned());
            match self.next()? {
                b',' => {}
                b'}' => return Ok(labels),
                _ => return Err(Stop::Odd),
            }
        }
    }

    /// `[1767366000.5,"1.25"]`.
    fn sample(&mut self) -> Result<Sample, Stop> {
        self.expect(b"[")?;
        let time = self.timestamp()?;
        self.expect(b",\"")?;
        let text = self.string()?;
        let value = short_decimal(text.as_bytes())
            .or_else(|| parse_value(text))
            .ok_or(Stop::Odd)?;
        self.expect(b"]")?;
        Ok((time, value))
    }

    /// A non-negative decimal without exponent, computed as serde_json
    /// computes it (digits as an integer, divided by a power of ten).
    /// One pass that stops at the delimiter, not a scan for the end and
    /// then [`short_decimal`]: the two passes cost 18M instructions per
    /// 1,000 × 120 answer (141M → 159M, `bench/instructions.py`).
    fn timestamp(&mut self) -> Result<f64, Stop> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let mut significand: u64 = 0;
        let mut digits = 0;
        let mut fraction: Option<usize> = None;
        let mut len = 0;
        for &b in rest {
            match b {
                b'0'..=b'9' => {
                    significand = significand * 10 + u64::from(b - b'0');
                    digits += 1;
                    if let Some(n) = fraction.as_mut() {
                        *n += 1;
                    }
                    if digits > MAX_TIMESTAMP_DIGITS {
                        return Err(Stop::Odd);
                    }
                }
                b'.' if fraction.is_none() && digits > 0 => fraction = Some(0),
                b',' | b']' => break,
                _ => return Err(Stop::Odd),
            }
            len += 1;
        }
        if len == rest.len() {
            return Err(Stop::Incomplete);
        }
        let leading_zero =
            rest.first() == Some(&b'0') && rest.get(1).is_some_and(u8::is_ascii_digit);
        if digits == 0 || fraction == Some(0) || leading_zero {
            return Err(Stop::Odd);
        }
        self.at += len;
        let value = significand as f64;
        Ok(match fraction {
            Some(n) => value / POW10.get(n).copied().ok_or(Stop::Odd)?,
            None => value,
        })
    }

    /// A string's contents after its opening quote, through the closing
    /// one; one with escapes or control bytes is left to serde.
    fn string(&mut self) -> Result<&'a str, Stop> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        // Label and sample strings are short: a plain loop beats `memchr`'s
        // set-up, and checks for control bytes on the way.
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or(Stop::Incomplete)?;
        let (text, after) = rest.split_at(end);
        if after.first() != Some(&b'"') {
            return Err(Stop::Odd);
        }
        let text = std::str::from_utf8(text).map_err(|_| Stop::Odd)?;
        self.at += end + 1;
        Ok(text)
    }

    fn expect(&mut self, literal: &[u8]) -> Result<(), Stop> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        if rest.starts_with(literal) {
            self.at += literal.len();
            Ok(())
        } else if literal.starts_with(rest) {
            Err(Stop::Incomplete)
        } else {
            Err(Stop::Odd)
        }
    }

    fn peek(&self) -> Result<u8, Stop> {
        self.bytes.get(self.at).copied().ok_or(Stop::Incomplete)
    }

    fn next(&mut self) -> Result<u8, Stop> {
        let b = self.peek()?;
        self.at += 1;
        Ok(b)
    }
}
