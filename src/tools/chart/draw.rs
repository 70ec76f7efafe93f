//! Drawing the chart: plotters draws the frame, grid and lines into an RGB
//! buffer, [`super::text`] sets every text in the bundled font (no system
//! fonts, no fontconfig: the same picture on every machine), then PNG.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde::Serialize;

use super::axis::{caption, tick_scale, time_ticks, value_range, value_ticks};
use super::legend::cut;
use super::text::{self, Align, Canvas};
use super::units::{self, Unit};
use crate::tools::query::Window;

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
const INK: [u8; 3] = [30, 30, 30];
const MUTED: [u8; 3] = [100, 100, 100];
/// Text sizes, in pixels.
const TITLE: f32 = 15.0;
const LABEL: f32 = 12.0;
const LEGEND_ROW: u32 = 18;
/// Narrowest legend column, in pixels.
const LEGEND_COLUMN: u32 = 250;
/// Average advance of a 12 px DejaVu Sans character, for cutting text.
const CHAR_PX: u32 = 7;
/// Room below the plot for the time labels and the axis caption.
const X_AXIS: u32 = 44;

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
    /// The first column of the plot (the start of the window).
    pub left: i32,
    /// The first row of the plot (`y_max`).
    pub top: i32,
    /// One past the last column (the end of the window).
    pub right: i32,
    /// One past the last row (`y_min`).
    pub bottom: i32,
    /// The value at the bottom edge.
    pub y_min: f64,
    /// The value at the top edge.
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

/// A linear axis whose ticks are chosen here (round UTC times, round
/// values in the unit), not by plotters.
struct Axis {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
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

/// Draws `picture` as a PNG of its size.
pub fn draw(picture: &Picture) -> Result<Drawn, ChartError> {
    let font = text::font().ok_or(ChartError::Font)?;
    let (width, height) = (picture.width, picture.height);
    let mut buffer = vec![0u8; width as usize * height as usize * 3];
    let (area, texts) = paint(picture, font, &mut buffer)?;
    let mut canvas = Canvas {
        pixels: &mut buffer,
        width,
        height,
        font,
    };
    for t in &texts {
        canvas.text(&t.text, t.x, t.top, t.size, t.color, t.align);
    }
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

/// A text to set once plotters is done with the buffer.
struct Text {
    text: String,
    x: f32,
    top: f32,
    size: f32,
    color: [u8; 3],
    align: Align,
}

fn label(text: String, x: i32, top: i32, align: Align) -> Text {
    Text {
        text,
        x: x as f32,
        top: top as f32,
        size: LABEL,
        color: INK,
        align,
    }
}

fn paint(
    picture: &Picture,
    font: &ab_glyph::FontRef<'static>,
    buffer: &mut [u8],
) -> Result<(PlotArea, Vec<Text>), ChartError> {
    let (width, height) = (picture.width, picture.height);
    let mut texts = Vec::new();
    let root = BitMapBackend::with_buffer(buffer, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;

    let columns = ((width.saturating_sub(20)) / LEGEND_COLUMN).clamp(1, 4) as usize;
    let max_rows = ((height * 3 / 10) / LEGEND_ROW).max(1) as usize;
    let entries = legend_entries(picture, max_rows * columns);
    let rows = entries.len().div_ceil(columns);
    let legend_top = height.saturating_sub(rows as u32 * LEGEND_ROW + 8);
    let (upper, lower) = root.split_vertically(legend_top);

    let (window, unit) = (picture.window, picture.unit);
    let (y_min, y_max) = value_range(
        picture
            .lines
            .iter()
            .flat_map(|l| l.segments.iter().flatten().map(|p| p.1)),
    );
    let top_margin = if unit.is_some() { 48 } else { 34 };
    // a tick every 40 px or so of the plot's height
    let y_count = (legend_top.saturating_sub(top_margin + X_AXIS) / 40).clamp(2, 10) as usize;
    let y_ticks = value_ticks(y_min, y_max, y_count, tick_scale(unit, y_min, y_max));
    let y_labels: Vec<String> = y_ticks.iter().map(|v| units::format(*v, unit)).collect();
    let widest = y_labels
        .iter()
        .map(|l| text::width(font, l, LABEL))
        .fold(0.0, f32::max);
    let y_area = (widest.ceil() as u32 + 14).clamp(30, width / 3);
    let x_ticks = time_ticks(
        window.start,
        window.end,
        (width / 110).clamp(2, 12) as usize,
    );
    let x_end = if window.end > window.start {
        window.end
    } else {
        window.start + 1.0
    };
    let x_axis = Axis {
        linear: (window.start..x_end).into(),
        ticks: x_ticks.iter().map(|t| t.at).collect(),
    };
    let y_axis = Axis {
        linear: (y_min..y_max).into(),
        ticks: y_ticks.clone(),
    };
    let mut chart = ChartBuilder::on(&upper)
        .margin_top(top_margin)
        .margin_left(8)
        .margin_right(24)
        .x_label_area_size(X_AXIS)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x_axis, y_axis)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|_| String::new())
        // plotters without a font feature cannot set text; a transparent
        // label is skipped before it tries (ours are set afterwards)
        .label_style(TextStyle::from(("sans-serif", LABEL).into_font()).color(&TRANSPARENT))
        .bold_line_style(GRID)
        .light_line_style(GRID)
        .draw()
        .map_err(draw_error)?;
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

    let title = cut(&picture.title, (width.saturating_sub(40) / 8) as usize);
    texts.push(Text {
        size: TITLE,
        ..label(title, width as i32 / 2, 8, Align::Center)
    });
    if let Some(unit) = unit {
        texts.push(Text {
            color: MUTED,
            ..label(unit.name().into(), 8, ys.start - 22, Align::Left)
        });
    }
    for (tick, text) in y_ticks.iter().zip(y_labels) {
        let (_, y) = chart.backend_coord(&(window.start, *tick));
        texts.push(label(text, xs.start - 8, y - 8, Align::Right));
    }
    for tick in x_ticks {
        let (x, _) = chart.backend_coord(&(tick.at, y_min));
        texts.push(label(tick.label, x, ys.end + 8, Align::Center));
    }
    let caption = caption(window.start, window.end);
    texts.push(label(
        caption,
        (xs.start + xs.end) / 2,
        ys.end + 26,
        Align::Center,
    ));
    if picture.lines.iter().all(|l| l.segments.is_empty()) {
        texts.push(Text {
            size: 20.0,
            color: MUTED,
            ..label(
                "no data".into(),
                (xs.start + xs.end) / 2,
                (ys.start + ys.end) / 2 - 10,
                Align::Center,
            )
        });
    }

    let column_width = width.saturating_sub(20) / columns as u32;
    let label_chars = (column_width.saturating_sub(30) / CHAR_PX) as usize;
    for (i, (entry, color)) in entries.iter().enumerate() {
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
        texts.push(Text {
            color: if color.is_some() { INK } else { MUTED },
            ..label(
                cut(entry, label_chars),
                x + 22,
                legend_top as i32 + y,
                Align::Left,
            )
        });
    }
    root.present().map_err(draw_error)?;
    let area = PlotArea {
        left: xs.start,
        top: ys.start,
        right: xs.end,
        bottom: ys.end,
        y_min,
        y_max,
    };
    Ok((area, texts))
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
