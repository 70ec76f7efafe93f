//! Text on the chart, set with ab_glyph in the bundled DejaVu Sans. Not
//! through plotters: its ab_glyph renderer places each glyph without its
//! side bearing, so letters collide ("MiB" printed as "MB"). Coverage is
//! blended into the RGB buffer, clipped to it.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};

/// DejaVu Sans 2.37 (Debian fonts-dejavu-core; Bitstream Vera license,
/// assets/fonts/DejaVuSans-LICENSE.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The bundled font, parsed once (`None` if it did not parse).
pub fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// The advance of `text` at `size` pixels.
pub fn width(font: &FontRef<'static>, text: &str, size: f32) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// Where a text's x coordinate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// An RGB buffer of `width` × `height` pixels to write text on.
pub struct Canvas<'a> {
    pub pixels: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub font: &'a FontRef<'static>,
}

impl Canvas<'_> {
    /// Writes `text` with its top at `top`, aligned on `x`.
    pub fn text(&mut self, text: &str, x: f32, top: f32, size: f32, color: [u8; 3], align: Align) {
        let scale = PxScale::from(size);
        let font = self.font.as_scaled(scale);
        let mut pen = match align {
            Align::Left => x,
            Align::Center => x - width(self.font, text, size) / 2.0,
            Align::Right => x - width(self.font, text, size),
        };
        let baseline = top + font.ascent();
        let mut previous = None;
        for c in text.chars() {
            if pen > self.width as f32 {
                break;
            }
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                pen += font.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(scale, point(pen, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
                outline.draw(|gx, gy, coverage| {
                    self.blend(left + i64::from(gx), top + i64::from(gy), color, coverage);
                });
            }
            pen += font.h_advance(id);
            previous = Some(id);
        }
    }

    fn blend(&mut self, x: i64, y: i64, color: [u8; 3], coverage: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        let alpha = coverage.clamp(0.0, 1.0);
        if let Some(pixel) = self.pixels.get_mut(at..at + 3) {
            for (channel, ink) in pixel.iter_mut().zip(color) {
                let mixed = f32::from(*channel) * (1.0 - alpha) + f32::from(ink) * alpha;
                *channel = mixed.round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inked_columns(pixels: &[u8], width: u32, height: u32) -> Vec<u32> {
        (0..width)
            .filter(|x| (0..height).any(|y| pixels[((y * width + x) * 3) as usize] < 128))
            .collect()
    }

    #[test]
    fn letters_do_not_collide_and_width_matches_the_ink() {
        let font = font().expect("the bundled font parses");
        let (width, height) = (200, 30);
        let mut pixels = vec![255; (width * height * 3) as usize];
        let mut canvas = Canvas {
            pixels: &mut pixels,
            width,
            height,
            font,
        };
        let advance = super::width(font, "MiB", 20.0);
        canvas.text("MiB", 10.0, 2.0, 20.0, [0, 0, 0], Align::Left);
        let inked = inked_columns(&pixels, width, height);
        let (first, last) = (inked[0], inked[inked.len() - 1]);
        let ink = f64::from(last - first + 1);
        assert!(
            ink <= f64::from(advance) && ink > f64::from(advance) - 6.0,
            "ink {ink}, advance {advance}"
        );
        // three letters, two gaps of paper between them
        let gaps = inked.windows(2).filter(|w| w[1] > w[0] + 1).count();
        assert_eq!(gaps, 2, "columns with ink: {inked:?}");
    }

    #[test]
    fn text_off_the_canvas_is_clipped_not_a_panic() {
        let font = font().expect("font");
        let mut pixels = vec![255; 10 * 10 * 3];
        let mut canvas = Canvas {
            pixels: &mut pixels,
            width: 10,
            height: 10,
            font,
        };
        canvas.text("wide text 中文", -30.0, -5.0, 40.0, [0, 0, 0], Align::Right);
        canvas.text(&"x".repeat(10_000), 5.0, 5.0, 12.0, [0, 0, 0], Align::Left);
    }
}
