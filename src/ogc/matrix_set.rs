//! The tile matrix sets that Tessera serves: WebMercatorQuad (OGC 17-083r2) and
//! GoogleMapsCompatible (the WMTS 1.0.0 well-known scale set). Both are the XYZ grid of
//! `crate::tile`: EPSG:3857, 256-pixel tiles, `2^z` columns and rows at zoom `z`, row 0 at the
//! north edge, with scale denominators for 0.28 mm pixels.

use serde_json::{Value, json};

use crate::tile::{MAX_ZOOM, ORIGIN_SHIFT, TileCoord, resolution, scale_denominator};

/// Tile width and height in pixels.
pub const TILE_SIZE: u32 = 256;

/// The identifiers of the tile matrix sets served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixSet {
    WebMercatorQuad,
    GoogleMapsCompatible,
}

impl MatrixSet {
    pub const ALL: [MatrixSet; 2] = [MatrixSet::WebMercatorQuad, MatrixSet::GoogleMapsCompatible];

    pub fn identifier(self) -> &'static str {
        match self {
            Self::WebMercatorQuad => "WebMercatorQuad",
            Self::GoogleMapsCompatible => "GoogleMapsCompatible",
        }
    }

    /// Finds a matrix set by its identifier, which is case-sensitive as in the standards.
    pub fn from_identifier(identifier: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|set| set.identifier() == identifier)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::WebMercatorQuad => "Google Maps Compatible for the World",
            Self::GoogleMapsCompatible => {
                "Google Maps Compatible (WMTS 1.0.0 well-known scale set)"
            }
        }
    }

    /// Returns the URI that OGC API – Tiles uses for the set.
    pub fn uri(self) -> &'static str {
        "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    }

    /// Returns the WMTS 1.0.0 well-known scale set URN, which only GoogleMapsCompatible names.
    pub fn well_known_scale_set(self) -> Option<&'static str> {
        match self {
            Self::WebMercatorQuad => None,
            Self::GoogleMapsCompatible => Some("urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"),
        }
    }
}

/// The CRS of both sets, as WMTS 1.0.0 `SupportedCRS` names it.
pub const CRS_URN: &str = "urn:ogc:def:crs:EPSG::3857";
/// The CRS of both sets, as OGC API – Tiles names it.
pub const CRS_URI: &str = "http://www.opengis.net/def/crs/EPSG/0/3857";

/// One zoom level of the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileMatrix {
    pub zoom: u8,
    pub scale_denominator: f64,
    /// Metres per pixel at the equator.
    pub cell_size: f64,
    /// Columns and rows, `2^zoom`.
    pub matrix_size: u32,
}

/// Returns the tile matrices of zoom 0 to [`MAX_ZOOM`].
pub fn tile_matrices() -> impl Iterator<Item = TileMatrix> {
    (0..=MAX_ZOOM).map(|zoom| TileMatrix {
        zoom,
        scale_denominator: scale_denominator(zoom, TILE_SIZE),
        cell_size: resolution(zoom, TILE_SIZE),
        matrix_size: TileCoord::matrix_size(zoom),
    })
}

/// Builds the OGC Two Dimensional Tile Matrix Set (17-083r4) JSON description of `set`.
pub fn to_json(set: MatrixSet) -> Value {
    let matrices: Vec<Value> = tile_matrices()
        .map(|matrix| {
            json!({
                "id": matrix.zoom.to_string(),
                "scaleDenominator": matrix.scale_denominator,
                "cellSize": matrix.cell_size,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-ORIGIN_SHIFT, ORIGIN_SHIFT],
                "tileWidth": TILE_SIZE,
                "tileHeight": TILE_SIZE,
                "matrixWidth": matrix.matrix_size,
                "matrixHeight": matrix.matrix_size,
            })
        })
        .collect();
    let mut document = json!({
        "id": set.identifier(),
        "title": set.title(),
        "uri": set.uri(),
        "crs": CRS_URI,
        "orderedAxes": ["E", "N"],
        "tileMatrices": matrices,
    });
    if let Some(scale_set) = set.well_known_scale_set() {
        document["wellKnownScaleSet"] = json!(scale_set);
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_denominators_match_the_standard() {
        // Values from the WebMercatorQuad definition in OGC 17-083r2, Annex E.
        let expected = [
            (0, 559_082_264.028_717_2),
            (1, 279_541_132.014_358_6),
            (10, 545_978.773_465_544_1),
            (18, 2_132.729_583_849_784),
            (24, 33.323_899_747_652_88),
        ];
        let matrices: Vec<TileMatrix> = tile_matrices().collect();
        assert_eq!(matrices.len(), 25);
        for (zoom, denominator) in expected {
            let matrix = matrices[zoom];
            let relative = (matrix.scale_denominator - denominator).abs() / denominator;
            assert!(
                relative < 1e-9,
                "zoom {zoom}: {} against {denominator}",
                matrix.scale_denominator
            );
        }
    }

    #[test]
    fn identifiers_round_trip() {
        for set in MatrixSet::ALL {
            assert_eq!(MatrixSet::from_identifier(set.identifier()), Some(set));
        }
        assert_eq!(MatrixSet::from_identifier("webmercatorquad"), None);
        assert_eq!(MatrixSet::from_identifier("EPSG:4326"), None);
    }

    #[test]
    fn json_description_has_every_matrix() {
        let document = to_json(MatrixSet::WebMercatorQuad);
        assert_eq!(document["id"], "WebMercatorQuad");
        assert_eq!(document["crs"], CRS_URI);
        let matrices = document["tileMatrices"].as_array().expect("tileMatrices");
        assert_eq!(matrices.len(), 25);
        assert_eq!(matrices[3]["matrixWidth"], 8);
        assert_eq!(matrices[0]["pointOfOrigin"][0], -ORIGIN_SHIFT);
        assert!(document.get("wellKnownScaleSet").is_none());
        assert_eq!(
            to_json(MatrixSet::GoogleMapsCompatible)["wellKnownScaleSet"],
            "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
        );
    }
}
