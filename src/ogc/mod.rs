//! OGC standards: WMTS 1.0.0 capabilities and requests, the WebMercatorQuad and
//! GoogleMapsCompatible tile matrix sets, the documents of OGC API – Tiles and OGC API –
//! Features, and those of OSGeo's Tile Map Service.
//!
//! The functions here build documents from [`LayerDescription`]s and parse requests. The HTTP
//! routes that serve them are in `server::ogc`.

pub mod features;
pub mod matrix_set;
pub mod tiles_api;
pub mod tms;
pub mod wmts;

use crate::format::TileFormat;
use crate::source::{Source, SourceKind};
use crate::tile::Bbox;

/// A served source as the OGC documents describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDescription {
    /// Source id, used as the WMTS layer identifier and the OGC API collection id.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub attribution: Option<String>,
    pub kind: SourceKind,
    /// Formats that tiles can be requested in, the advertised format first.
    pub formats: Vec<TileFormat>,
    /// Bounds in degrees, longitude first, clamped to the Web Mercator world.
    pub bounds: Bbox,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// Dates of dated imagery (ISO 8601), oldest first, or empty.
    pub dates: Vec<String>,
}

impl LayerDescription {
    pub fn from_source(source: &Source) -> Self {
        let advertised = source.format();
        let mut formats = vec![advertised];
        formats.extend(
            [
                TileFormat::Png,
                TileFormat::Jpeg,
                TileFormat::Webp,
                TileFormat::Mvt,
            ]
            .into_iter()
            .filter(|format| *format != advertised && source.serves_format(*format)),
        );
        let (minzoom, maxzoom) = source.zoom_range();
        Self {
            id: source.id.clone(),
            title: source.name.clone(),
            description: source.description.clone(),
            attribution: source.attribution.clone(),
            kind: source.kind(),
            formats,
            bounds: clamp_bounds(&source.bounds_lonlat()),
            minzoom,
            maxzoom,
            dates: source.dates(),
        }
    }
}

/// Clamps bounds in degrees to the Web Mercator world. A box that crosses the antimeridian
/// (`min_x > max_x`) becomes the full width, because WMTS limits and OGC API extents here are
/// one box each.
fn clamp_bounds(bounds: &Bbox) -> Bbox {
    let max_lat = crate::tile::MAX_LATITUDE;
    let (min_x, max_x) = if bounds.min_x > bounds.max_x {
        (-180.0, 180.0)
    } else {
        (
            bounds.min_x.clamp(-180.0, 180.0),
            bounds.max_x.clamp(-180.0, 180.0),
        )
    };
    Bbox::new(
        min_x,
        bounds.min_y.clamp(-max_lat, max_lat),
        max_x,
        bounds.max_y.clamp(-max_lat, max_lat),
    )
}

/// Escapes text for XML element content and attribute values.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 forbids most control characters even as references.
            c if c.is_control() && !matches!(c, '\n' | '\r' | '\t') => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_clamped_to_the_world() {
        let cases = [
            (
                Bbox::new(124.0, 38.0, 130.0, 43.0),
                Bbox::new(124.0, 38.0, 130.0, 43.0),
            ),
            (
                Bbox::new(-200.0, -90.0, 200.0, 90.0),
                Bbox::new(
                    -180.0,
                    -crate::tile::MAX_LATITUDE,
                    180.0,
                    crate::tile::MAX_LATITUDE,
                ),
            ),
            (
                Bbox::new(170.0, -10.0, -170.0, 10.0),
                Bbox::new(-180.0, -10.0, 180.0, 10.0),
            ),
        ];
        for (bounds, expected) in cases {
            assert_eq!(clamp_bounds(&bounds), expected, "{bounds:?}");
        }
    }

    #[test]
    fn xml_escape_replaces_markup() {
        let cases = [
            ("plain", "plain"),
            ("a & b", "a &amp; b"),
            ("<Layer>", "&lt;Layer&gt;"),
            ("\"it's\"", "&quot;it&apos;s&quot;"),
            ("bell\u{7}", "bell"),
            ("정치범수용소", "정치범수용소"),
        ];
        for (text, expected) in cases {
            assert_eq!(xml_escape(text), expected, "{text:?}");
        }
    }
}
