//! What a range query's answer reads like: a table of statistics per
//! series by default, or the samples (thinned out on request) with one
//! line per series.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Window;
use crate::tools::json_text::JsonText;
use crate::tools::render::{count, series_name_of, timestamp};
use crate::tools::summary::downsample::min_max_per_bucket;
use crate::tools::summary::matrix::{self, SeriesSummary, step_text};
use crate::tools::summary::number::short_or_dash;
use crate::tools::summary::samples::{RangeData, parse_value};
use crate::tools::{Family, ToolOutput};
use crate::upstream::Notes;

/// The summary answer: `data = {resultType, format, window, series}`.
pub fn summary(upstream: &str, data: RangeData, window: &Window, notes: &Notes) -> ToolOutput {
    let returned = data.result.len();
    let total = notes.items_total(returned);
    let series = matrix::summarize(data.result);
    let mut text = format!(
        "{} ({}) {}..{} step {}",
        count(total, "series", "series"),
        data.result_type,
        timestamp(&json!(window.start)),
        timestamp(&json!(window.end)),
        step_text(window.step),
    );
    if !series.is_empty() {
        text.push_str("; statistics per series (format=\"samples\" returns the points):\n");
        matrix::write_table(&mut text, &series, series_name_of);
    }
    // Written as JSON straight from the summaries: a `Value` tree of 10k
    // series would take several times the memory of their text.
    let data = SummaryData {
        result_type: &data.result_type,
        format: "summary",
        window: WindowJson {
            start: window.start,
            end: window.end,
            step: window.step,
        },
        series: &series,
    };
    let output = match JsonText::of(&data) {
        Ok(raw) => ToolOutput::new(Family::Query, upstream, Value::Null, text).with_raw_data(raw),
        Err(_) => {
            let data = serde_json::to_value(&data).unwrap_or_default();
            ToolOutput::new(Family::Query, upstream, data, text)
        }
    };
    output.counted(returned, total)
}

/// A summary's `data`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryData<'a> {
    result_type: &'a str,
    format: &'static str,
    window: WindowJson,
    series: &'a [SeriesSummary],
}

#[derive(Serialize)]
struct WindowJson {
    start: f64,
    end: f64,
    step: f64,
}

/// The samples answer: Prometheus's data, each series thinned to
/// `max_points` when given; the text says per series what it holds.
pub fn samples(
    upstream: &str,
    mut data: Map<String, Value>,
    max_points: Option<usize>,
    notes: &Notes,
) -> ToolOutput {
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let mut thinned = false;
    let items = match data.get_mut("result") {
        Some(Value::Array(items)) => items,
        _ => {
            let text = format!("{result_type}: no result");
            return ToolOutput::new(Family::Query, upstream, Value::Object(data), text);
        }
    };
    if let Some(max) = max_points {
        for item in items.iter_mut() {
            if let Some(Value::Array(values)) = item.get_mut("values") {
                thinned |= min_max_per_bucket(values, max);
            }
        }
    }
    let returned = items.len();
    let total = notes.items_total(returned);
    let mut text = format!("{} ({result_type})", count(total, "series", "series"));
    for item in items.iter() {
        text.push('\n');
        text.push_str(&crate::tools::render::series_at(item, "metric"));
        match item.get("values").and_then(Value::as_array) {
            Some(points) => text.push_str(&points_line(points)),
            None if item.get("histograms").is_some() => {
                text.push_str(": native histograms (see structured content)")
            }
            None => text.push_str(": no points"),
        }
    }
    let mut output = ToolOutput::new(Family::Query, upstream, Value::Object(data), text)
        .counted(returned, total);
    if thinned {
        output.infos.push(format!(
            "series with more than {} points were thinned to the lowest and highest sample per bucket",
            max_points.unwrap_or_default()
        ));
    }
    output
}

/// `: 120 points 10:00..11:00, last 3, min 1, max 7`.
fn points_line(points: &[Value]) -> String {
    let values: Vec<f64> = points
        .iter()
        .filter_map(|p| parse_value(p.get(1)?.as_str()?))
        .filter(|v| v.is_finite())
        .collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return ": no points".into();
    };
    let finite = |x: f64| x.is_finite().then_some(x);
    let min = finite(values.iter().copied().fold(f64::INFINITY, f64::min));
    let max = finite(values.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let at = |point: &Value| point.get(0).map(timestamp).unwrap_or_default();
    format!(
        ": {} {}..{}, last {}, min {}, max {}",
        count(points.len(), "point", "points"),
        at(first),
        at(last),
        last.get(1).and_then(Value::as_str).unwrap_or_default(),
        short_or_dash(min),
        short_or_dash(max),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            start: 1_767_366_000.0,
            end: 1_767_366_030.0,
            step: 15.0,
        }
    }

    #[test]
    fn summaries_replace_the_samples() {
        let data: RangeData = serde_json::from_value(json!({"resultType": "matrix", "result": [
            {"metric": {"job": "a"}, "values": [[1767366000, "1"], [1767366015, "7"], [1767366030, "3"]]},
        ]}))
        .expect("parses");
        let mut output = summary("local", data, &window(), &Notes::default());
        assert_eq!((output.returned, output.total), (Some(1), Some(1)));
        assert!(
            output
                .text
                .contains("| {job=\"a\"} | 3 | 1 | 7 | 3.667 | 3 | 6.6 | 2 | 240 |  |"),
            "{}",
            output.text
        );
        // Written as JSON text: the same structured content either way.
        let json = output.take_structured_json().expect("written as JSON");
        let structured: Value = serde_json::from_str(json.as_str()).expect("JSON");
        let data = &structured["data"];
        assert_eq!(
            data["window"],
            json!({"start": 1_767_366_000.0, "end": 1_767_366_030.0, "step": 15.0})
        );
        assert_eq!(
            (data["resultType"].as_str(), data["format"].as_str()),
            (Some("matrix"), Some("summary"))
        );
        let series = &data["series"][0];
        assert_eq!(series["labels"], json!({"job": "a"}));
        assert_eq!(series["max"], 7.0);
        assert!(data.to_string().len() < 400, "{data}");
        assert_eq!(
            (
                structured["returned"].as_u64(),
                structured["total"].as_u64()
            ),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn samples_are_kept_and_thinned_on_request() {
        let values: Vec<Value> = (0..100)
            .map(|i| json!([1767366000 + i, i.to_string()]))
            .collect();
        let data =
            json!({"resultType": "matrix", "result": [{"metric": {"job": "a"}, "values": values}]});
        let output = samples(
            "local",
            data.as_object().cloned().expect("object"),
            Some(10),
            &Notes::default(),
        );
        let kept = output.data["result"][0]["values"]
            .as_array()
            .map_or(0, Vec::len);
        assert!((2..=10).contains(&kept), "{kept}");
        assert!(
            output.text.contains(&format!("{kept} points")),
            "{}",
            output.text
        );
        assert!(output.text.contains("min 0, max 99"), "{}", output.text);
        assert_eq!(output.infos.len(), 1);
    }
}
