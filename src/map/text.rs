//! Fonts for static maps: font files read once, lines measured and turned into outlines with
//! `ttf-parser`. Text is laid out glyph by glyph with the font's advances, without shaping or
//! kerning, which suits Latin and Hangul labels but not scripts that need shaping.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tiny_skia::{Path as SkiaPath, PathBuilder};

use super::scene::{FontFace, TextAnchor};

/// The size of a line of text in page units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineMetrics {
    /// Sum of the glyph advances.
    pub width: f64,
    /// Height of the font's ascender above the baseline.
    pub ascent: f64,
    /// Depth of the font's descender below the baseline, positive.
    pub descent: f64,
}

impl LineMetrics {
    pub fn height(&self) -> f64 {
        self.ascent + self.descent
    }

    /// Returns the left end of the baseline for a line whose `anchor` point is at
    /// (`x`, `y`). The line's box is its advance width by ascent plus descent.
    pub fn baseline_origin(&self, anchor: TextAnchor, x: f64, y: f64) -> (f64, f64) {
        let left = match anchor {
            TextAnchor::Left | TextAnchor::TopLeft | TextAnchor::BottomLeft => x,
            TextAnchor::Right | TextAnchor::TopRight | TextAnchor::BottomRight => x - self.width,
            TextAnchor::Center | TextAnchor::Top | TextAnchor::Bottom => x - self.width / 2.0,
        };
        let top = match anchor {
            TextAnchor::Top | TextAnchor::TopLeft | TextAnchor::TopRight => y,
            TextAnchor::Bottom | TextAnchor::BottomLeft | TextAnchor::BottomRight => {
                y - self.height()
            }
            TextAnchor::Center | TextAnchor::Left | TextAnchor::Right => y - self.height() / 2.0,
        };
        (left, top + self.ascent)
    }
}

/// Font file contents by path; `None` for a file that could not be read.
type FontFiles = HashMap<std::path::PathBuf, Option<Arc<Vec<u8>>>>;

/// Font files read once per process and shared, keyed by path.
fn font_bytes(path: &Path) -> Option<Arc<Vec<u8>>> {
    static FILES: OnceLock<Mutex<FontFiles>> = OnceLock::new();
    let files = FILES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut files = files
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    files
        .entry(path.to_owned())
        .or_insert_with(|| match std::fs::read(path) {
            Ok(bytes) => Some(Arc::new(bytes)),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "font file not readable: its text is not drawn");
                None
            }
        })
        .clone()
}

fn with_face<T>(face: &FontFace, work: impl FnOnce(&ttf_parser::Face<'_>) -> T) -> Option<T> {
    let bytes = font_bytes(&face.path)?;
    match ttf_parser::Face::parse(&bytes, face.index) {
        Ok(parsed) => Some(work(&parsed)),
        Err(error) => {
            tracing::warn!(path = %face.path.display(), index = face.index, %error, "font face not readable");
            None
        }
    }
}

/// Measures one line of `text` at `size` (em height in page units), or `None` when the font
/// cannot be read.
pub fn measure(face: &FontFace, text: &str, size: f64) -> Option<LineMetrics> {
    with_face(face, |parsed| {
        let scale = size / f64::from(parsed.units_per_em());
        let width: f64 = text
            .chars()
            .map(|c| {
                parsed
                    .glyph_index(c)
                    .and_then(|glyph| parsed.glyph_hor_advance(glyph))
                    .map_or(0.0, f64::from)
            })
            .sum();
        LineMetrics {
            width: width * scale,
            ascent: f64::from(parsed.ascender()) * scale,
            descent: -f64::from(parsed.descender()) * scale,
        }
    })
}

/// Builds the outlines of one line of `text` with the left end of its baseline at
/// (`x`, `y`), in the units of `size`, or `None` when nothing has an outline.
pub fn outline(face: &FontFace, text: &str, size: f64, x: f64, y: f64) -> Option<SkiaPath> {
    with_face(face, |parsed| {
        let scale = size / f64::from(parsed.units_per_em());
        let mut builder = OutlineBuilder {
            path: PathBuilder::new(),
            scale,
            x,
            y,
        };
        for c in text.chars() {
            let Some(glyph) = parsed.glyph_index(c) else {
                continue;
            };
            parsed.outline_glyph(glyph, &mut builder);
            let advance = parsed.glyph_hor_advance(glyph).map_or(0.0, f64::from);
            builder.x += advance * scale;
        }
        builder.path.finish()
    })
    .flatten()
}

/// Collects glyph outlines into one path, flipping font units (y up) to page units (y down).
struct OutlineBuilder {
    path: PathBuilder,
    scale: f64,
    x: f64,
    y: f64,
}

impl OutlineBuilder {
    fn point(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (self.x + f64::from(x) * self.scale) as f32,
            (self.y - f64::from(y) * self.scale) as f32,
        )
    }
}

impl ttf_parser::OutlineBuilder for OutlineBuilder {
    fn move_to(&mut self, x: f32, y: f32) {
        let (x, y) = self.point(x, y);
        self.path.move_to(x, y);
    }

    fn line_to(&mut self, x: f32, y: f32) {
        let (x, y) = self.point(x, y);
        self.path.line_to(x, y);
    }

    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let (x1, y1) = self.point(x1, y1);
        let (x, y) = self.point(x, y);
        self.path.quad_to(x1, y1, x, y);
    }

    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let (x1, y1) = self.point(x1, y1);
        let (x2, y2) = self.point(x2, y2);
        let (x, y) = self.point(x, y);
        self.path.cubic_to(x1, y1, x2, y2, x, y);
    }

    fn close(&mut self) {
        self.path.close();
    }
}
