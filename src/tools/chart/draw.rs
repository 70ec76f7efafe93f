//! Drawing the chart with plotters into an RGB buffer, then PNG. Text is
//! set in the bundled DejaVu Sans through ab_glyph: no system fonts, no
//! fontconfig, the same picture on every machine.

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use serde::Serialize;

use super::axis::{caption, time_ticks};
use super::legend::cut;
use super::units::{self, Unit};
use crate::tools::query::Window;

/// DejaVu Sans 2.37 (Debian fonts-dejavu-core; Bitstream Vera license,
/// assets/fonts/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Line colours (Tableau 10), in series order.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GRID: RGBColor = RGBColor(225, 225, 225);
const MUTED: RGBColor = RGBColor(90, 90, 90);
const LEGEND_ROW: u32 = 18;
/// Narrowest legend column, in pixels.
const LEGEND_COLUMN: u32 = 250;
/// Average advance of a 12 px DejaVu Sans character, for cutting text.
const CHAR_PX: u32 = 7;

/// What to draw: everything owned, so that drawing can run off the async
/// runtime.
pub struct Picture {
    pub title: String,
    pub lines: Vec<Line>,
    /// Series that were not drawn (counted in the legend), and whether
    /// that count is a lower bound.
    pub more: usize,
    pub more_at_least: bool,
    pub window: Window,
    pub unit: Option<Unit>,
    pub width: u32,
    pub height: u32,
}

/// One series: its legend entry and its unbroken runs of points.
pub struct Line {
    pub label: String,
    pub segments: Vec<Vec<(f64, f64)>>,
}

/// Where the data went: the plotting area in pixels and the value range it
/// spans (so a reader, or a test, can map values to pixels).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PlotArea {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
    pub y_min: f64,
    pub y_max: f64,
}

/// A drawn chart.
pub struct Drawn {
    pub png: Vec<u8>,
    pub area: PlotArea,
}

/// Why a chart could not be drawn (the tool then answers with text only).
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the bundled font does not load")]
    Font,
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
}

fn draw_error(error: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(error.to_string())
}

fn font() -> Result<(), ChartError> {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let loaded = *LOADED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if loaded {
        Ok(())
    } else {
        Err(ChartError::Font)
    }
}

/// The time axis: linear, with ticks on round UTC times.
struct TimeAxis {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for TimeAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
    fn range(&self) -> Range<f64> {
        self.linear.range()
    }
}

/// The value range: the data's, padded by 5 % (a flat line gets room
/// around it), from 0 when the data is all positive and near it.
pub fn value_range(lines: &[Line]) -> (f64, f64) {
    let mut values = lines
        .iter()
        .flat_map(|l| l.segments.iter().flatten().map(|p| p.1));
    let Some(first) = values.next() else {
        return (0.0, 1.0);
    };
    let (min, max) = values.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = if max > min {
        (max - min) * 0.05
    } else if min == 0.0 {
        1.0
    } else {
        min.abs() * 0.1
    };
    let low = if min >= 0.0 && min - pad < 0.0 {
        0.0
    } else {
        min - pad
    };
    (low, max + pad)
}

/// Draws `picture` as a PNG of its size.
pub fn draw(picture: &Picture) -> Result<Drawn, ChartError> {
    font()?;
    let (width, height) = (picture.width, picture.height);
    let mut buffer = vec![0u8; width as usize * height as usize * 3];
    let area = paint(picture, &mut buffer)?;
    let mut png = Vec::with_capacity(buffer.len() / 8);
    {
        let mut encoder = png::Encoder::new(&mut png, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&buffer)?;
        writer.finish()?;
    }
    Ok(Drawn { png, area })
}

fn paint(picture: &Picture, buffer: &mut [u8]) -> Result<PlotArea, ChartError> {
    let (width, height) = (picture.width, picture.height);
    let root = BitMapBackend::with_buffer(buffer, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;

    let columns = ((width.saturating_sub(20)) / LEGEND_COLUMN).clamp(1, 4) as usize;
    let max_rows = ((height * 3 / 10) / LEGEND_ROW).max(1) as usize;
    let entries = legend_entries(picture, max_rows * columns);
    let rows = entries.len().div_ceil(columns);
    let legend_height = rows as u32 * LEGEND_ROW + 8;
    let (upper, lower) = root.split_vertically(height.saturating_sub(legend_height));

    let window = picture.window;
    let (y_min, y_max) = value_range(&picture.lines);
    let ticks = time_ticks(
        window.start,
        window.end,
        (width / 110).clamp(2, 12) as usize,
    );
    let x_end = if window.end > window.start {
        window.end
    } else {
        window.start + 1.0
    };
    let axis = TimeAxis {
        linear: (window.start..x_end).into(),
        ticks: ticks.iter().map(|t| t.at).collect(),
    };
    let title = cut(&picture.title, (width.saturating_sub(40) / 8) as usize);
    let unit = picture.unit;
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, (FAMILY, 15))
        .margin_top(6)
        .margin_left(8)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(if unit.is_some() { 96 } else { 72 })
        .build_cartesian_2d(axis, y_min..y_max)
        .map_err(draw_error)?;
    let x_label = |at: &f64| {
        ticks
            .iter()
            .find(|t| t.at == *at)
            .map(|t| t.label.clone())
            .unwrap_or_default()
    };
    let y_label = |v: &f64| units::format(*v, unit);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_label)
        .y_labels(6)
        .y_label_formatter(&y_label)
        .x_desc(caption(window.start, window.end))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 12))
        .bold_line_style(GRID)
        .light_line_style(WHITE);
    if let Some(unit) = unit {
        mesh.y_desc(unit.name());
    }
    mesh.draw().map_err(draw_error)?;

    for (line, color) in picture.lines.iter().zip(PALETTE.iter().cycle()) {
        for segment in &line.segments {
            if let [point] = segment.as_slice() {
                chart
                    .draw_series(std::iter::once(Circle::new(*point, 2, color.filled())))
                    .map_err(draw_error)?;
            } else {
                chart
                    .draw_series(LineSeries::new(
                        segment.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(draw_error)?;
            }
        }
    }
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    if picture.lines.iter().all(|l| l.segments.is_empty()) {
        let style = TextStyle::from((FAMILY, 20).into_font()).color(&MUTED);
        let at = ((xs.start + xs.end) / 2 - 40, (ys.start + ys.end) / 2 - 10);
        root.draw_text("no data", &style, at).map_err(draw_error)?;
    }

    let column_width = width.saturating_sub(20) / columns as u32;
    let label_chars = (column_width.saturating_sub(30) / CHAR_PX) as usize;
    let style = TextStyle::from((FAMILY, 12).into_font());
    for (i, (label, color)) in entries.iter().enumerate() {
        let x = 10 + (i % columns) as i32 * column_width as i32;
        let y = 4 + (i / columns) as i32 * LEGEND_ROW as i32;
        if let Some(color) = color {
            lower
                .draw(&Rectangle::new(
                    [(x, y + 6), (x + 16, y + 9)],
                    color.filled(),
                ))
                .map_err(draw_error)?;
        }
        let text_style = if color.is_some() {
            style.clone()
        } else {
            style.color(&MUTED)
        };
        lower
            .draw_text(&cut(label, label_chars), &text_style, (x + 22, y))
            .map_err(draw_error)?;
    }
    root.present().map_err(draw_error)?;
    Ok(PlotArea {
        left: xs.start,
        top: ys.start,
        right: xs.end,
        bottom: ys.end,
        y_min,
        y_max,
    })
}

/// The legend's entries with their colours, and `+N more` (no colour) for
/// the series not drawn or that found no room (at most `room` entries).
fn legend_entries(picture: &Picture, room: usize) -> Vec<(String, Option<RGBColor>)> {
    let room = room.max(1);
    let lines = picture.lines.len();
    let shown = if lines + usize::from(picture.more > 0) <= room {
        lines
    } else {
        room - 1
    };
    let mut entries: Vec<(String, Option<RGBColor>)> = picture
        .lines
        .iter()
        .zip(PALETTE.iter().cycle())
        .take(shown)
        .map(|(line, color)| (line.label.clone(), Some(*color)))
        .collect();
    let more = picture.more + (lines - shown);
    if more > 0 {
        let at_least = if picture.more_at_least {
            "at least "
        } else {
            ""
        };
        entries.push((format!("+{at_least}{more} more"), None));
    }
    entries
}
