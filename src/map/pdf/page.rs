//! Page sizes and margins of PDF output, in PostScript points (1/72 inch).

use thiserror::Error;

/// Points per millimetre: 72 points per inch, 25.4 millimetres per inch.
const POINTS_PER_MM: f32 = 72.0 / 25.4;

/// Smallest page side accepted, in points (about 25 mm): room for a map and one text line.
const MIN_SIDE_POINTS: f32 = 72.0;

/// Largest page side accepted, in points: 200 inches, the largest page that PDF 1.7 readers
/// must support (ISO 32000-1, annex C).
const MAX_SIDE_POINTS: f32 = 14_400.0;

/// Largest margin accepted, in millimetres.
const MAX_MARGIN_MM: f32 = 100.0;

#[derive(Debug, Error, PartialEq)]
pub enum PageError {
    #[error(
        "invalid page size {0:?}: use a4, a3, a5, letter or legal, optionally with -landscape, \
         or WIDTHxHEIGHT with a unit mm, cm, in or pt, such as 210x297mm"
    )]
    Invalid(String),
    #[error(
        "page size {0:?} is {1:.0} x {2:.0} points; each side must be between 72 and 14400 \
         points (25 mm and 200 inches)"
    )]
    OutOfRange(String, f32, f32),
    #[error("invalid margin {0:?}: use a length from 0 to 100 mm, such as 12mm, 1.5cm or 0.5in")]
    InvalidMargin(String),
    #[error(
        "margins of {margin_mm} mm leave no room for a map on a {width:.0} x {height:.0} point \
         page; use a smaller margin or a larger page"
    )]
    MarginTooLarge {
        margin_mm: f32,
        width: f32,
        height: f32,
    },
}

/// A page's width and height in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageSize {
    pub width: f32,
    pub height: f32,
}

impl PageSize {
    /// ISO 216 A4, 210 x 297 mm, portrait.
    pub const A4: PageSize = PageSize::from_mm(210.0, 297.0);
    /// US Letter, 8.5 x 11 inches, portrait.
    pub const LETTER: PageSize = PageSize {
        width: 612.0,
        height: 792.0,
    };

    const fn from_mm(width: f32, height: f32) -> PageSize {
        PageSize {
            width: width * POINTS_PER_MM,
            height: height * POINTS_PER_MM,
        }
    }

    /// Parses `a4`, `a3`, `a5`, `letter` or `legal` with an optional `-landscape` or
    /// `-portrait` suffix, or a custom `WIDTHxHEIGHT` followed by `mm`, `cm`, `in` or `pt`.
    /// A custom size keeps the orientation its numbers give.
    pub fn parse(text: &str) -> Result<PageSize, PageError> {
        let lower = text.trim().to_ascii_lowercase();
        let invalid = || PageError::Invalid(text.to_string());
        let (name, landscape) = if let Some(name) = lower.strip_suffix("-landscape") {
            (name, Some(true))
        } else if let Some(name) = lower.strip_suffix("-portrait") {
            (name, Some(false))
        } else {
            (lower.as_str(), None)
        };
        let named = match name {
            "a3" => Some(PageSize::from_mm(297.0, 420.0)),
            "a4" => Some(PageSize::A4),
            "a5" => Some(PageSize::from_mm(148.0, 210.0)),
            "letter" => Some(PageSize::LETTER),
            "legal" => Some(PageSize {
                width: 612.0,
                height: 1008.0,
            }),
            _ => None,
        };
        let size = match (named, landscape) {
            (Some(size), Some(true)) => size.landscape(),
            (Some(size), _) => size,
            (None, Some(_)) => return Err(invalid()),
            (None, None) => parse_custom(name).ok_or_else(invalid)?,
        };
        let in_range = |side: f32| (MIN_SIDE_POINTS..=MAX_SIDE_POINTS).contains(&side);
        if !in_range(size.width) || !in_range(size.height) {
            return Err(PageError::OutOfRange(
                text.to_string(),
                size.width,
                size.height,
            ));
        }
        Ok(size)
    }

    /// Returns the page turned so that its longer side is horizontal.
    #[must_use]
    pub fn landscape(self) -> PageSize {
        PageSize {
            width: self.width.max(self.height),
            height: self.width.min(self.height),
        }
    }
}

/// Parses `WIDTHxHEIGHT` with a unit suffix into points.
fn parse_custom(text: &str) -> Option<PageSize> {
    let (numbers, points_per_unit) = split_unit(text)?;
    let (width, height) = numbers.split_once('x')?;
    let width: f32 = width.trim().parse().ok()?;
    let height: f32 = height.trim().parse().ok()?;
    if !width.is_finite() || !height.is_finite() {
        return None;
    }
    Some(PageSize {
        width: width * points_per_unit,
        height: height * points_per_unit,
    })
}

/// Splits a unit suffix (`mm`, `cm`, `in`, `pt`) off `text` and returns the points per unit.
fn split_unit(text: &str) -> Option<(&str, f32)> {
    [
        ("mm", POINTS_PER_MM),
        ("cm", 10.0 * POINTS_PER_MM),
        ("in", 72.0),
        ("pt", 1.0),
    ]
    .into_iter()
    .find_map(|(unit, factor)| text.strip_suffix(unit).map(|rest| (rest, factor)))
}

/// Parses a margin such as `12mm`, `1.5cm`, `0.5in` or `36pt` (a bare number is millimetres)
/// and returns it in points.
pub fn parse_margin(text: &str) -> Result<f32, PageError> {
    let invalid = || PageError::InvalidMargin(text.to_string());
    let lower = text.trim().to_ascii_lowercase();
    let (number, factor) = split_unit(&lower).unwrap_or((lower.as_str(), POINTS_PER_MM));
    let value: f32 = number.trim().parse().map_err(|_| invalid())?;
    let points = value * factor;
    if !(0.0..=MAX_MARGIN_MM * POINTS_PER_MM).contains(&points) {
        return Err(invalid());
    }
    Ok(points)
}

/// Converts millimetres to points.
pub fn mm(value: f32) -> f32 {
    value * POINTS_PER_MM
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 0.01
    }

    #[test]
    fn page_sizes_parse() {
        let cases = [
            ("a4", 595.28, 841.89),
            ("A4", 595.28, 841.89),
            ("a4-landscape", 841.89, 595.28),
            ("a4-portrait", 595.28, 841.89),
            ("letter", 612.0, 792.0),
            ("letter-landscape", 792.0, 612.0),
            ("legal", 612.0, 1008.0),
            ("a3", 841.89, 1190.55),
            ("a5", 419.53, 595.28),
            ("210x297mm", 595.28, 841.89),
            ("297x210mm", 841.89, 595.28),
            ("20x10cm", 566.93, 283.46),
            ("8.5x11in", 612.0, 792.0),
            ("400x300pt", 400.0, 300.0),
        ];
        for (text, width, height) in cases {
            let size = PageSize::parse(text).expect(text);
            assert!(close(size.width, width), "{text}: width {}", size.width);
            assert!(close(size.height, height), "{text}: height {}", size.height);
        }
    }

    #[test]
    fn invalid_page_sizes_rejected() {
        for text in [
            "",
            "a6",
            "210x297",
            "210mm",
            "x297mm",
            "NaNx297mm",
            "210x297mm-landscape",
        ] {
            assert_eq!(
                PageSize::parse(text),
                Err(PageError::Invalid(text.to_string())),
                "{text:?}"
            );
        }
        for text in ["10x10mm", "300x300in", "-210x297mm"] {
            assert!(
                matches!(PageSize::parse(text), Err(PageError::OutOfRange(..))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn margins_parse() {
        let cases = [
            ("12mm", mm(12.0)),
            ("12", mm(12.0)),
            ("1.5cm", mm(15.0)),
            ("0.5in", 36.0),
            ("36pt", 36.0),
            ("0", 0.0),
        ];
        for (text, points) in cases {
            let parsed = parse_margin(text).expect(text);
            assert!(close(parsed, points), "{text}: {parsed}");
        }
        for text in ["", "-1mm", "101mm", "wide", "infmm"] {
            assert!(parse_margin(text).is_err(), "{text:?}");
        }
    }
}
