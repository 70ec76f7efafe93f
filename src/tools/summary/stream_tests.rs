//! The streamed summary against serde reading the whole answer: the same
//! series, statistics and notes for every shape and every chunking, and
//! the same refusals.

use proptest::prelude::*;
use serde::Deserialize;

use super::samples::RangeData;
use super::stream::RangeStream;
use crate::upstream::{Decoded, StreamDecoder};

/// What serde makes of a whole answer: data, warnings, infos.
#[derive(Deserialize)]
struct Whole {
    data: RangeData,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

type Read = (String, Vec<String>, Vec<String>);

fn by_serde(body: &[u8]) -> Result<Read, String> {
    let whole: Whole = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok((format!("{:?}", whole.data), whole.warnings, whole.infos))
}

/// `body` fed in pieces cut at `cuts` (offsets, any order).
fn streamed(body: &[u8], cuts: &[usize]) -> Result<Option<Read>, String> {
    let mut offsets: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    offsets.push(body.len());
    offsets.sort_unstable();
    let mut decoder = RangeStream::default();
    let mut from = 0;
    for to in offsets {
        decoder.feed(&body[from..to])?;
        from = to;
    }
    Ok(match decoder.finish()? {
        Decoded::Data {
            data,
            warnings,
            infos,
        } => Some((format!("{data:?}"), warnings, infos)),
        Decoded::Whole(_) => None,
    })
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{1,8}",
        1 => Just("with \"quote\" and \\ and é".to_owned()),
        1 => Just("line\nbreak".to_owned()),
        1 => Just(String::new()),
    ]
}

fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1_600_000_000u64..1_900_000_000).prop_map(|t| t.to_string()),
        2 => (1_600_000_000u64..1_900_000_000, 0u32..1000).prop_map(|(t, ms)| format!("{t}.{ms:03}")),
        1 => (1_600_000_000u64..1_900_000_000, 1u32..10).prop_map(|(t, f)| format!("{t}.{f}")),
        1 => Just("1.5e9".to_owned()),
        1 => Just("1234567890123456.5".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<f64>().prop_map(|v| format!("\"{v}\"")),
        2 => (-1000i64..1000).prop_map(|v| format!("\"{v}\"")),
        1 => Just("\"NaN\"".to_owned()),
        1 => Just("\"+Inf\"".to_owned()),
        1 => Just("\"-Inf\"".to_owned()),
        1 => Just("\"1e308\"".to_owned()),
        1 => Just("2.5".to_owned()),
    ]
}

fn series() -> impl Strategy<Value = String> {
    let labels = proptest::collection::btree_map(label(), label(), 0..4);
    let samples = proptest::collection::vec((timestamp(), value()), 0..12);
    (labels, samples, 0..8u8).prop_map(|(labels, samples, shape)| {
        let metric = serde_json::to_string(&labels).unwrap_or_default();
        let values: Vec<String> = samples.iter().map(|(t, v)| format!("[{t},{v}]")).collect();
        let values = values.join(",");
        match shape {
            0 => format!(r#"{{"metric":{metric},"histograms":[[1700000000,{{"count":"3"}}]]}}"#),
            1 => format!(r#"{{"values":[{values}],"metric":{metric}}}"#),
            2 => format!(r#"{{ "metric": {metric}, "values": [{values}] }}"#),
            3 => format!(r#"{{"metric":{metric}}}"#),
            _ => format!(r#"{{"metric":{metric},"values":[{values}]}}"#),
        }
    })
}

fn answer() -> impl Strategy<Value = String> {
    let tails = prop_oneof![
        Just(String::new()),
        Just(r#","warnings":["PromQL info: metric might not be a counter"]"#.to_owned()),
        Just(r#","warnings":["w"],"infos":["i1","i2"]"#.to_owned()),
    ];
    (proptest::collection::vec(series(), 0..6), tails, any::<bool>()).prop_map(
        |(series, tail, stats)| {
            let stats = if stats { r#","stats":{"timings":{"a":1}}"# } else { "" };
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]{stats}}}{tail}}}"#,
                series.join(",")
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// The short-decimal reading of sample values is `str::parse`'s.
    #[test]
    fn short_decimals_read_as_parse_reads_them(
        int in 0u64..10_000_000, frac in 0u64..100_000_000, width in 0usize..9, negative in any::<bool>(),
    ) {
        let sign = if negative { "-" } else { "" };
        let text = if width == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac:0width$}") };
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[[1,"{text}"]]}}]}}}}"#
        );
        let read = streamed(body.as_bytes(), &[]).map_err(TestCaseError::fail)?;
        let want: f64 = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(read.is_some_and(|(data, _, _)| data.contains(&format!("last: Some({want:?})"))), "{text}");
    }

    /// Whatever the shape of each series and wherever the chunks break,
    /// the streamed read is serde's read of the whole answer, or both
    /// refuse it.
    #[test]
    fn streamed_equals_whole(body in answer(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let whole = by_serde(body.as_bytes());
        let stream = streamed(body.as_bytes(), &cuts);
        match (whole, stream) {
            (Ok(whole), Ok(Some(stream))) => prop_assert_eq!(whole, stream),
            (Err(_), Err(_)) => {}
            (whole, stream) => prop_assert!(false, "{body}\nwhole: {whole:?}\nstreamed: {stream:?}"),
        }
    }
}

#[test]
fn hostile_series_are_refused_as_serde_refuses_them() {
    for series in [
        r#"{"metric":{},"values":[[1]]}"#,
        r#"{"metric":{},"values":[[1,"x"]]}"#,
        r#"{"metric":{},"values":[[1,"2",3]]}"#,
        r#"{"metric":{"a":1},"values":[]}"#,
        r#"{"metric":{},"values":{"a":1}}"#,
        r#"{"metric":{},"values":[[01,"2"]]}"#,
        r#"{"metric":{},"values":[[1.,"2"]]}"#,
        r#"{"metric":{},"values":[[-,"2"]]}"#,
        "{\"metric\":{\"a\":\"b\x01\"},\"values\":[]}",
        r#"{"metric":{},"values":[],"values":[]}"#,
        r#"5"#,
        r#"{"metric":{}"#,
    ] {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{series}]}}}}"#
        );
        assert!(by_serde(body.as_bytes()).is_err(), "serde took {series}");
        assert!(
            streamed(body.as_bytes(), &[]).is_err(),
            "stream took {series}"
        );
        assert!(
            streamed(body.as_bytes(), &[70, 90]).is_err(),
            "stream took {series} in pieces"
        );
    }
}

#[test]
fn answers_not_shaped_like_a_matrix_are_handed_back_whole() {
    for body in [
        r#"{"data":{"resultType":"matrix","result":[]},"status":"success"}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        r#"{ "status": "success" }"#,
        r#"{"status":"success","#,
        "",
    ] {
        let mut decoder = RangeStream::default();
        decoder.feed(body.as_bytes()).expect("held");
        match decoder.finish() {
            Ok(Decoded::Whole(bytes)) => assert_eq!(bytes, body.as_bytes()),
            Ok(Decoded::Data { .. }) => panic!("read as a matrix: {body}"),
            Err(error) => panic!("{body}: {error}"),
        }
    }
}

#[test]
fn an_answer_that_stops_inside_its_series_is_an_error() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]},"#;
    let error = streamed(body.as_bytes(), &[]).expect_err("incomplete");
    assert!(error.contains("ended inside its result list"), "{error}");
    let tail = r#"{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":[1]}"#;
    assert!(
        streamed(tail.as_bytes(), &[]).is_err(),
        "a bad tail is refused"
    );
}

#[test]
fn one_series_is_held_at_a_time() {
    let one = r#"{"metric":{"job":"a"},"values":[[1767366000,"1"],[1767366015,"2"]]}"#;
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
        vec![one; 2000].join(",")
    );
    let mut decoder = RangeStream::default();
    for piece in body.as_bytes().chunks(1000) {
        decoder.feed(piece).expect("reads");
        assert!(decoder.held() < 2 * one.len(), "held {}", decoder.held());
    }
    match decoder.finish() {
        Ok(Decoded::Data { data, .. }) => assert_eq!(data.result.len(), 2000),
        _ => panic!("not read"),
    }
}
