//! The drawing as a reader sees it: decode the PNG and look at the pixels.

use super::draw::{Drawn, Line, PALETTE, Picture, PlotArea, draw};
use super::*;
use crate::tools::query::Window;

const WINDOW: Window = Window {
    start: 1_767_362_645.0,
    end: 1_767_366_245.0,
    step: 60.0,
};

fn picture(lines: Vec<Line>, more: usize) -> Picture {
    Picture {
        title: "step_function".into(),
        lines,
        more,
        more_at_least: false,
        window: WINDOW,
        unit: None,
        width: 800,
        height: 400,
    }
}

/// 0 for the first half hour, 10 for the second.
fn step_line() -> Line {
    let points = (0..=60)
        .map(|i| {
            let t = WINDOW.start + f64::from(i) * 60.0;
            (t, if i < 30 { 0.0 } else { 10.0 })
        })
        .collect();
    Line {
        label: "{}".into(),
        segments: vec![points],
    }
}

fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    (info.width, info.height, buffer)
}

fn pixel(image: &(u32, u32, Vec<u8>), x: i32, y: i32) -> [u8; 3] {
    let i = (y as usize * image.0 as usize + x as usize) * 3;
    [image.2[i], image.2[i + 1], image.2[i + 2]]
}

/// Whether a pixel of `color` is within 2 px of (x, y).
fn near(image: &(u32, u32, Vec<u8>), x: i32, y: i32, color: [u8; 3]) -> bool {
    (-2..=2).any(|dx| (-2..=2).any(|dy| pixel(image, x + dx, y + dy) == color))
}

fn to_pixels(area: &PlotArea, t: f64, v: f64) -> (i32, i32) {
    let fx = (t - WINDOW.start) / (WINDOW.end - WINDOW.start);
    let fy = (v - area.y_min) / (area.y_max - area.y_min);
    (
        area.left + (fx * f64::from(area.right - area.left - 1)) as i32,
        area.bottom - 1 - (fy * f64::from(area.bottom - area.top - 1)) as i32,
    )
}

#[test]
fn the_plotted_pixels_follow_a_step_function() {
    let Drawn { png, area } = draw(&picture(vec![step_line()], 0)).expect("draws");
    if let Ok(path) = std::env::var("CHART_TEST_PNG") {
        std::fs::write(path, &png).expect("writes");
    }
    let image = decode(&png);
    assert_eq!((image.0, image.1), (800, 400));
    let blue = [PALETTE[0].0, PALETTE[0].1, PALETTE[0].2];
    for minute in [2, 10, 20, 28, 32, 40, 50, 58] {
        let t = WINDOW.start + f64::from(minute) * 60.0;
        let value = if minute < 30 { 0.0 } else { 10.0 };
        let (x, y) = to_pixels(&area, t, value);
        assert!(
            near(&image, x, y, blue),
            "no line at minute {minute} ({x}, {y})"
        );
        let (_, other_y) = to_pixels(&area, t, 10.0 - value);
        assert!(
            !near(&image, x, other_y, blue),
            "line at the wrong level at minute {minute}"
        );
    }
    // The jump: the line crosses the middle level between minutes 29 and 30.
    let (x, low) = to_pixels(&area, WINDOW.start + 1770.0, 0.0);
    let (_, high) = to_pixels(&area, WINDOW.start + 1770.0, 10.0);
    let middle = (low + high) / 2;
    assert!(near(&image, x, middle, blue), "no jump at half time");
}

#[test]
fn a_flat_line_is_drawn_inside_the_area() {
    let flat = Line {
        label: "{}".into(),
        segments: vec![vec![(WINDOW.start, 5.0), (WINDOW.end, 5.0)]],
    };
    let Drawn { png, area } = draw(&picture(vec![flat], 0)).expect("draws");
    assert!(area.y_min < 5.0 && area.y_max > 5.0, "{area:?}");
    let image = decode(&png);
    let (x, y) = to_pixels(&area, WINDOW.start + 1800.0, 5.0);
    assert!(near(
        &image,
        x,
        y,
        [PALETTE[0].0, PALETTE[0].1, PALETTE[0].2]
    ));
}

#[test]
fn empty_and_many_series_still_draw() {
    let Drawn { png, area } = draw(&picture(Vec::new(), 0)).expect("draws");
    assert_eq!((area.y_min, area.y_max), (0.0, 1.0));
    assert_eq!(decode(&png).0, 800);
    let lines = (0..50).map(|_| step_line()).collect();
    let Drawn { png, .. } = draw(&picture(lines, 4950)).expect("draws");
    assert_eq!(decode(&png).1, 400);
}

#[test]
fn extreme_values_and_sizes_draw() {
    let wild = Line {
        label: "x".repeat(5000),
        segments: vec![vec![(WINDOW.start, -1e300), (WINDOW.end, 1e300)]],
    };
    let mut small = picture(vec![wild], 0);
    small.title = "q".repeat(10_000);
    small.width = CHART_MIN_WIDTH;
    small.height = CHART_MIN_HEIGHT;
    let Drawn { png, .. } = draw(&small).expect("draws");
    assert_eq!(decode(&png).0, CHART_MIN_WIDTH);
}

#[test]
fn sides_are_checked_with_a_clear_message() {
    assert_eq!(side("width", None, 800, 320, 1600).ok(), Some(800));
    assert_eq!(side("width", None, 800, 320, 600).ok(), Some(600));
    assert_eq!(side("width", Some(1600), 800, 320, 1600).ok(), Some(1600));
    let error = side("width", Some(5000), 800, 320, 1600)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("width: 5000 pixels is outside"), "{error}");
    assert!(error.contains("320 to 1600"), "{error}");
    assert!(side("height", Some(0), 400, 200, 1000).is_err());
}
