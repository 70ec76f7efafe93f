//! A range query's `data`, read sample by sample into compact series: no
//! JSON value per sample, so a summary costs what the numbers weigh.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::stats::{Sample, SeriesStats};

/// Prometheus's `data` of a range query.
#[derive(Debug, Deserialize)]
pub struct RangeData {
    #[serde(rename = "resultType")]
    pub result_type: String,
    #[serde(default)]
    pub result: Vec<RangeSeries>,
}

/// One series of a matrix: its labels and samples; native histogram
/// samples are counted, not read.
#[derive(Debug, Deserialize)]
pub struct RangeSeries {
    #[serde(default)]
    pub metric: BTreeMap<String, String>,
    /// Summarized as each series is read: its samples live only while
    /// their statistics are computed, so memory holds one series' samples,
    /// not the whole matrix.
    #[serde(default)]
    pub values: SampleStats,
    #[serde(default)]
    pub histograms: Option<Counted>,
}

/// Float samples in the order received.
#[derive(Debug, Default)]
pub struct Samples(pub Vec<Sample>);

/// The statistics of a series' float samples, read and summarized in one
/// go.
#[derive(Debug, Default)]
pub struct SampleStats(pub SeriesStats);

impl<'de> Deserialize<'de> for SampleStats {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Samples(samples) = Samples::deserialize(deserializer)?;
        Ok(Self(SeriesStats::of(&samples)))
    }
}

/// The length of an array whose items are skipped.
#[derive(Debug, Default)]
pub struct Counted(pub usize);

impl<'de> Deserialize<'de> for Samples {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SamplesVisitor;
        impl<'de> Visitor<'de> for SamplesVisitor {
            type Value = Samples;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of [timestamp, \"value\"] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Samples, A::Error> {
                // The hint is the upstream's word: trusted only up to a bound.
                let mut samples = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(11_000));
                while let Some(SamplePair(time, value)) = seq.next_element()? {
                    samples.push((time, value));
                }
                Ok(Samples(samples))
            }
        }
        deserializer.deserialize_seq(SamplesVisitor)
    }
}

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Counted;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Counted, A::Error> {
                let mut count = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Counted(count))
            }
        }
        deserializer.deserialize_seq(CountVisitor)
    }
}

/// `[1767366245.123, "0.5"]`: Prometheus sends values as strings so that
/// NaN and ±Inf survive JSON.
struct SamplePair(f64, f64);

impl<'de> Deserialize<'de> for SamplePair {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairVisitor;
        impl<'de> Visitor<'de> for PairVisitor {
            type Value = SamplePair;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [timestamp, \"value\"] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SamplePair, A::Error> {
                let time: f64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let SampleValue(value) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(SamplePair(time, value))
            }
        }
        deserializer.deserialize_seq(PairVisitor)
    }
}

/// A sample value: Prometheus's string (`"1.5"`, `"NaN"`, `"+Inf"`), or a
/// bare number from a lenient upstream.
struct SampleValue(f64);

impl<'de> Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = SampleValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sample value such as \"1.5\", \"NaN\" or \"+Inf\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SampleValue, E> {
                parse_value(text)
                    .map(SampleValue)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<SampleValue, E> {
                Ok(SampleValue(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<SampleValue, E> {
                Ok(SampleValue(value as f64))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<SampleValue, E> {
                Ok(SampleValue(value as f64))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Parses Prometheus's text form of a float.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_matrix_without_a_value_per_sample() {
        let data: RangeData = serde_json::from_str(
            r#"{"resultType":"matrix","result":[
                {"metric":{"__name__":"up","job":"a"},"values":[[1767366000,"1"],[1767366015.5,"NaN"],[1767366030,"+Inf"],[1767366045,"-Inf"]]},
                {"metric":{},"histograms":[[1767366000,{"count":"3"}]]}
            ]}"#,
        )
        .expect("parses");
        assert_eq!(data.result_type, "matrix");
        let stats = &data.result[0].values.0;
        assert_eq!(stats.points, 4);
        assert_eq!(stats.first_timestamp, Some(1_767_366_000.0));
        assert_eq!(stats.last_timestamp, Some(1_767_366_045.0));
        assert_eq!(
            (stats.min, stats.max, stats.last),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        assert_eq!((stats.nan, stats.inf), (1, 2));
        assert_eq!(data.result[1].histograms.as_ref().map(|c| c.0), Some(1));
    }

    #[test]
    fn hostile_samples_are_errors_not_panics() {
        for body in [
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1]]}]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2",3]]}]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{"a":1},"values":[]}]}"#,
            r#"{"resultType":"matrix","result":[{"metric":{},"values":{"a":1}}]}"#,
        ] {
            assert!(serde_json::from_str::<RangeData>(body).is_err(), "{body}");
        }
    }
}
