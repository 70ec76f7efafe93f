//! A range query's answer summarized while it arrives (see
//! [`crate::upstream::StreamDecoder`]): each series is read and reduced to
//! its statistics as soon as its bytes are in, so memory holds one series
//! and the answer's tail, not the answer.
//!
//! Prometheus (and Thanos, Mimir) write a matrix in one canonical shape,
//! `{"metric":{…},"values":[[1767366000,"1.5"],…]}` without whitespace;
//! that shape is read by hand at a few instructions a byte. Any other
//! series (escapes in labels, native histograms, bare numbers, spaces) is
//! read by serde into the same types, and an answer that does not start
//! like a matrix is decoded whole, as before: the result is the same
//! whichever way a series was read.

use serde::Deserialize;

use super::samples::{RangeData, RangeSeries};
use super::stream_series::read_series;
use crate::tools::summary::stats::Sample;
use crate::upstream::{Decoded, StreamDecoder};

/// How a matrix answer begins, up to its first series.
const HEAD: &[u8] = br#"{"status":"success","data":{"resultType":"matrix","result":["#;

/// Where the decoder stands in the answer.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Fewer bytes than [`HEAD`] seen, all matching it.
    Head,
    /// Inside the result list, after a series (or at its start).
    Series { first: bool },
    /// After the result list: the envelope's rest, read at the end.
    Tail,
    /// Not a matrix answer as Prometheus writes it: kept whole.
    Whole,
}

/// Summarizes a range query's answer series by series as it arrives.
#[derive(Debug)]
pub struct RangeStream {
    state: State,
    /// Bytes not read yet: part of a series, the head or the tail (or the
    /// whole answer, for one read whole).
    held: Vec<u8>,
    series: Vec<RangeSeries>,
    /// One series' samples, reused from series to series.
    samples: Vec<Sample>,
}

impl Default for RangeStream {
    fn default() -> Self {
        Self {
            state: State::Head,
            held: Vec::new(),
            series: Vec::new(),
            samples: Vec::new(),
        }
    }
}

impl StreamDecoder for RangeStream {
    type Output = RangeData;

    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self.state {
            State::Head => {
                self.held.extend_from_slice(bytes);
                if self.held.len() < HEAD.len() {
                    if !HEAD.starts_with(&self.held) {
                        self.state = State::Whole;
                    }
                    return Ok(());
                }
                if !self.held.starts_with(HEAD) {
                    self.state = State::Whole;
                    return Ok(());
                }
                self.state = State::Series { first: true };
                let rest = self.held.split_off(HEAD.len());
                self.held.clear();
                self.read(&rest)
            }
            State::Series { .. } if self.held.is_empty() => self.read(bytes),
            State::Series { .. } => {
                let mut joined = std::mem::take(&mut self.held);
                joined.extend_from_slice(bytes);
                self.read(&joined)
            }
            State::Tail | State::Whole => {
                self.held.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<Decoded<RangeData>, String> {
        match self.state {
            State::Head | State::Whole => Ok(Decoded::Whole(self.held.into())),
            State::Series { .. } => Err("the answer ended inside its result list".into()),
            State::Tail => {
                let rest = Rest::read(&self.held)?;
                Ok(Decoded::Data {
                    data: RangeData {
                        result_type: "matrix".into(),
                        result: self.series,
                    },
                    warnings: rest.warnings,
                    infos: rest.infos,
                })
            }
        }
    }
}

impl RangeStream {
    /// Reads the series in `bytes` (the start of what is unread) and holds
    /// back an incomplete last one.
    fn read(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while let State::Series { first } = self.state {
            let Some(&next) = bytes.get(at) else {
                break;
            };
            match next {
                b' ' | b'\n' | b'\r' | b'\t' => at += 1,
                b',' if !first => {
                    // The comma is taken with the series after it, so that
                    // a series held back starts at its comma.
                    match read_series(bytes.get(at + 1..).unwrap_or_default(), &mut self.samples)? {
                        Some((series, len)) => {
                            self.series.push(series);
                            at += 1 + len;
                        }
                        None => break,
                    }
                }
                b']' => {
                    self.state = State::Tail;
                    self.held = bytes.get(at + 1..).unwrap_or_default().to_vec();
                    return Ok(());
                }
                _ if first => {
                    match read_series(bytes.get(at..).unwrap_or_default(), &mut self.samples)? {
                        Some((series, len)) => {
                            self.series.push(series);
                            self.state = State::Series { first: false };
                            at += len;
                        }
                        None => break,
                    }
                }
                other => {
                    return Err(format!(
                        "expected `,` or `]` after a series of the result list, found {:?}",
                        char::from(other)
                    ));
                }
            }
        }
        self.held = bytes.get(at..).unwrap_or_default().to_vec();
        Ok(())
    }
}

/// The envelope after the result list: `data`'s other members (read and
/// ignored, as serde ignores them in a whole answer) and the notes.
#[derive(Deserialize)]
struct Rest {
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

impl Rest {
    /// Reads the rest by closing the head's open result list in front of
    /// it: `HEAD` + `]` + rest is the answer with its series left out.
    fn read(rest: &[u8]) -> Result<Self, String> {
        let mut document = Vec::with_capacity(HEAD.len() + 1 + rest.len());
        document.extend_from_slice(HEAD);
        document.push(b']');
        document.extend_from_slice(rest);
        serde_json::from_slice(&document).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
impl RangeStream {
    /// Bytes held back, for the memory tests.
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }
}
