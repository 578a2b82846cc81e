//! Decoding of Mapbox Vector Tiles (specification 2.1) into Web Mercator features, for the
//! vector layers of archives in static maps.
//!
//! Written here rather than taken from geozero's MVT reader (0.15), which indexes the
//! geometry commands without checking their length and panics on a truncated geometry. An
//! archive may be damaged, and this decoder reports the byte where it fails instead.

use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use serde_json::{Map, Number, Value};
use thiserror::Error;

use crate::mvt_wire::{Reader, WireError};
use crate::tile::TileCoord;

#[derive(Debug, Error)]
pub enum MvtDecodeError {
    #[error(
        "the vector tile {tile} is malformed at byte {offset}: the archive may be damaged, so write it again"
    )]
    Malformed { tile: TileCoord, offset: usize },
}

/// One feature of a decoded tile.
#[derive(Debug, Clone, PartialEq)]
pub struct TileFeature {
    /// The name of the tile layer the feature is in.
    pub layer: String,
    pub id: Option<u64>,
    pub properties: Map<String, Value>,
    /// Geometry in Web Mercator metres.
    pub geometry: Geometry<f64>,
}

/// Decodes every feature of an uncompressed MVT tile, in layer and feature order. Features
/// with an unknown geometry type or an empty geometry are left out.
pub fn decode_tile(bytes: &[u8], tile: TileCoord) -> Result<Vec<TileFeature>, MvtDecodeError> {
    let malformed = |error: WireError| MvtDecodeError::Malformed {
        tile,
        offset: error.0,
    };
    let mut features = Vec::new();
    let mut reader = Reader::new(bytes, 0);
    while let Some((field, wire)) = reader.key().map_err(malformed)? {
        if field == 3 && wire == 2 {
            let (layer, offset) = reader.bytes().map_err(malformed)?;
            decode_layer(layer, offset, tile, &mut features).map_err(malformed)?;
        } else {
            reader.skip(wire).map_err(malformed)?;
        }
    }
    Ok(features)
}

/// A feature as stored, before its tags and geometry are resolved.
struct RawFeature {
    id: Option<u64>,
    tags: Vec<u32>,
    kind: u64,
    commands: Vec<u32>,
}

fn decode_layer(
    bytes: &[u8],
    base: usize,
    tile: TileCoord,
    out: &mut Vec<TileFeature>,
) -> Result<(), WireError> {
    let mut name = String::new();
    let mut keys = Vec::new();
    let mut values = Vec::new();
    let mut raw = Vec::new();
    let mut extent = 4096_u32;
    let mut reader = Reader::new(bytes, base);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, 2) => name = String::from_utf8_lossy(reader.bytes()?.0).into_owned(),
            (2, 2) => {
                let (feature, offset) = reader.bytes()?;
                raw.push(read_feature(feature, offset)?);
            }
            (3, 2) => keys.push(String::from_utf8_lossy(reader.bytes()?.0).into_owned()),
            (4, 2) => {
                let (value, offset) = reader.bytes()?;
                values.push(read_value(value, offset)?);
            }
            (5, 0) => extent = u32::try_from(reader.varint()?).unwrap_or(4096).max(1),
            _ => reader.skip(wire)?,
        }
    }
    let transform = TileTransform::new(tile, extent);
    for feature in raw {
        let mut properties = Map::new();
        for pair in feature.tags.chunks_exact(2) {
            let key = keys.get(pair[0] as usize);
            let value = values.get(pair[1] as usize);
            if let (Some(key), Some(value)) = (key, value) {
                properties.insert(key.clone(), value.clone());
            }
        }
        let Some(geometry) = decode_geometry(feature.kind, &feature.commands, &transform) else {
            continue;
        };
        out.push(TileFeature {
            layer: name.clone(),
            id: feature.id,
            properties,
            geometry,
        });
    }
    Ok(())
}

fn read_feature(bytes: &[u8], base: usize) -> Result<RawFeature, WireError> {
    let mut feature = RawFeature {
        id: None,
        tags: Vec::new(),
        kind: 0,
        commands: Vec::new(),
    };
    let mut reader = Reader::new(bytes, base);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, 0) => feature.id = Some(reader.varint()?),
            (2, 2) => feature.tags = reader.packed()?,
            (3, 0) => feature.kind = reader.varint()?,
            (4, 2) => feature.commands = reader.packed()?,
            _ => reader.skip(wire)?,
        }
    }
    Ok(feature)
}

fn read_value(bytes: &[u8], base: usize) -> Result<Value, WireError> {
    let mut value = Value::Null;
    let mut reader = Reader::new(bytes, base);
    while let Some((field, wire)) = reader.key()? {
        value = match (field, wire) {
            (1, 2) => Value::String(String::from_utf8_lossy(reader.bytes()?.0).into_owned()),
            (2, 5) => number(f64::from(f32::from_le_bytes(reader.fixed::<4>()?))),
            (3, 1) => number(f64::from_le_bytes(reader.fixed::<8>()?)),
            (4, 0) => Value::from(reader.varint()?.cast_signed()),
            (5, 0) => Value::from(reader.varint()?),
            (6, 0) => Value::from(unzigzag(reader.varint()?)),
            (7, 0) => Value::Bool(reader.varint()? != 0),
            _ => {
                reader.skip(wire)?;
                value
            }
        };
    }
    Ok(value)
}

fn number(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1).cast_signed() ^ -(value & 1).cast_signed()
}

/// Converts tile coordinates (0 to `extent`, y down) to Web Mercator metres.
struct TileTransform {
    min_x: f64,
    max_y: f64,
    scale_x: f64,
    scale_y: f64,
}

impl TileTransform {
    fn new(tile: TileCoord, extent: u32) -> Self {
        let bounds = tile.bounds_mercator();
        Self {
            min_x: bounds.min_x,
            max_y: bounds.max_y,
            scale_x: (bounds.max_x - bounds.min_x) / f64::from(extent),
            scale_y: (bounds.max_y - bounds.min_y) / f64::from(extent),
        }
    }

    fn apply(&self, x: i64, y: i64) -> Coord<f64> {
        Coord {
            x: self.min_x + x as f64 * self.scale_x,
            y: self.max_y - y as f64 * self.scale_y,
        }
    }
}

/// Reads the command stream into paths of tile coordinates: one path per `MoveTo`, with a
/// flag for the ones a `ClosePath` ended.
fn read_paths(commands: &[u32]) -> Vec<(Vec<(i64, i64)>, bool)> {
    let mut paths: Vec<(Vec<(i64, i64)>, bool)> = Vec::new();
    let (mut x, mut y) = (0_i64, 0_i64);
    let mut index = 0;
    while index < commands.len() {
        let command = commands[index] & 0x7;
        let count = (commands[index] >> 3) as usize;
        index += 1;
        match command {
            1 | 2 => {
                for _ in 0..count {
                    let (Some(&dx), Some(&dy)) = (commands.get(index), commands.get(index + 1))
                    else {
                        return paths;
                    };
                    index += 2;
                    x += unzigzag(u64::from(dx));
                    y += unzigzag(u64::from(dy));
                    if command == 1 || paths.is_empty() {
                        paths.push((Vec::new(), false));
                    }
                    if let Some((path, _)) = paths.last_mut() {
                        path.push((x, y));
                    }
                }
            }
            7 => {
                if let Some((_, closed)) = paths.last_mut() {
                    *closed = true;
                }
            }
            _ => return paths,
        }
    }
    paths
}

/// Builds the geometry of a feature of type 1 (points), 2 (lines) or 3 (polygons).
fn decode_geometry(
    kind: u64,
    commands: &[u32],
    transform: &TileTransform,
) -> Option<Geometry<f64>> {
    let paths = read_paths(commands);
    let line = |path: &[(i64, i64)]| {
        LineString::new(path.iter().map(|&(x, y)| transform.apply(x, y)).collect())
    };
    match kind {
        1 => {
            let points: Vec<Point<f64>> = paths
                .iter()
                .flat_map(|(path, _)| path.iter())
                .map(|&(x, y)| Point::from(transform.apply(x, y)))
                .collect();
            match points.len() {
                0 => None,
                1 => Some(Geometry::Point(points[0])),
                _ => Some(Geometry::MultiPoint(MultiPoint::new(points))),
            }
        }
        2 => {
            let mut lines: Vec<LineString<f64>> = paths
                .iter()
                .filter(|(path, _)| path.len() >= 2)
                .map(|(path, _)| line(path))
                .collect();
            match lines.len() {
                0 => None,
                1 => lines.pop().map(Geometry::LineString),
                _ => Some(Geometry::MultiLineString(MultiLineString::new(lines))),
            }
        }
        3 => polygons(&paths, &line),
        _ => None,
    }
}

/// Groups rings into polygons: a ring whose area by the surveyor's formula has the sign of the
/// first ring's starts a polygon, and the rings of the other sign after it are its holes.
/// Specification 2.1 makes exterior rings positive in tile coordinates (y down), and taking
/// the sign from the first ring also reads tiles written with the opposite winding.
fn polygons(
    paths: &[(Vec<(i64, i64)>, bool)],
    line: &impl Fn(&[(i64, i64)]) -> LineString<f64>,
) -> Option<Geometry<f64>> {
    let mut polygons: Vec<Polygon<f64>> = Vec::new();
    let mut exterior_sign = 0;
    for (path, _) in paths.iter().filter(|(path, _)| path.len() >= 3) {
        let area = signed_area(path);
        if area == 0 {
            continue;
        }
        if exterior_sign == 0 {
            exterior_sign = area.signum();
        }
        let mut ring = line(path);
        ring.close();
        if area.signum() == exterior_sign {
            polygons.push(Polygon::new(ring, Vec::new()));
        } else if let Some(polygon) = polygons.last_mut() {
            polygon.interiors_push(ring);
        }
    }
    match polygons.len() {
        0 => None,
        1 => polygons.pop().map(Geometry::Polygon),
        _ => Some(Geometry::MultiPolygon(MultiPolygon::new(polygons))),
    }
}

/// Twice the signed area of a ring in tile coordinates; positive for an exterior ring.
fn signed_area(path: &[(i64, i64)]) -> i64 {
    let mut sum = 0_i64;
    for (index, &(x0, y0)) in path.iter().enumerate() {
        let (x1, y1) = path[(index + 1) % path.len()];
        sum += x0 * y1 - x1 * y0;
    }
    sum
}

#[cfg(test)]
mod tests {
    use mvt::{GeomEncoder, GeomType};

    use super::*;

    const TILE: TileCoord = TileCoord { z: 1, x: 1, y: 0 };

    /// Encodes one layer with one feature through the `mvt` crate.
    fn encoded(kind: GeomType, points: &[(f64, f64)], close_ring: bool) -> Vec<u8> {
        let mut tile = mvt::Tile::new(4096);
        let layer = tile.create_layer("places");
        let mut encoder = GeomEncoder::new(kind);
        for &(x, y) in points {
            encoder = encoder.point(x, y).expect("a point");
        }
        if close_ring {
            encoder = encoder.complete().expect("a closed ring");
        }
        let mut feature = layer.into_feature(encoder.encode().expect("a geometry"));
        feature.set_id(7);
        feature.add_tag_string("name", "Yodok");
        feature.add_tag_uint("cells", 3);
        feature.add_tag_bool("open", false);
        feature.add_tag_double("area", 1.5);
        tile.add_layer(feature.into_layer()).expect("a layer");
        tile.to_bytes().expect("tile bytes")
    }

    #[test]
    fn decodes_properties_and_id() {
        let bytes = encoded(GeomType::Point, &[(2048.0, 2048.0)], false);
        let features = decode_tile(&bytes, TILE).expect("a valid tile");
        assert_eq!(features.len(), 1);
        let feature = &features[0];
        assert_eq!(feature.layer, "places");
        assert_eq!(feature.id, Some(7));
        assert_eq!(feature.properties["name"], "Yodok");
        assert_eq!(feature.properties["cells"], 3);
        assert_eq!(feature.properties["open"], false);
        assert_eq!(feature.properties["area"], 1.5);
    }

    #[test]
    fn decodes_geometry_in_mercator() {
        let bounds = TILE.bounds_mercator();
        let centre = Coord {
            x: f64::midpoint(bounds.min_x, bounds.max_x),
            y: f64::midpoint(bounds.min_y, bounds.max_y),
        };
        let square = [(0.0, 0.0), (4096.0, 0.0), (4096.0, 4096.0), (0.0, 4096.0)];
        let cases = [
            (GeomType::Point, &[(2048.0, 2048.0)][..], false, "Point"),
            (GeomType::Linestring, &square[..2], false, "LineString"),
            (GeomType::Polygon, &square[..], true, "Polygon"),
        ];
        for (kind, points, close, expected) in cases {
            let bytes = encoded(kind, points, close);
            let features = decode_tile(&bytes, TILE).expect("a valid tile");
            let geometry = &features[0].geometry;
            let name = match geometry {
                Geometry::Point(point) => {
                    assert!((point.x() - centre.x).abs() < 1e-6, "{point:?}");
                    assert!((point.y() - centre.y).abs() < 1e-6, "{point:?}");
                    "Point"
                }
                Geometry::LineString(line) => {
                    assert_eq!(
                        line.0[0],
                        Coord {
                            x: bounds.min_x,
                            y: bounds.max_y
                        }
                    );
                    "LineString"
                }
                Geometry::Polygon(polygon) => {
                    use geo::Area;
                    let tile_area = (bounds.max_x - bounds.min_x) * (bounds.max_y - bounds.min_y);
                    assert!((polygon.unsigned_area() - tile_area).abs() < 1.0);
                    "Polygon"
                }
                _ => "other",
            };
            assert_eq!(name, expected);
        }
    }

    /// A ring of absolute tile coordinates, closed implicitly.
    type Ring<'a> = &'a [(i64, i64)];

    /// Encodes closed rings as an MVT command stream.
    fn ring_commands(rings: &[Ring<'_>]) -> Vec<u32> {
        let zigzag = |value: i64| ((value << 1) ^ (value >> 63)) as u32;
        let mut commands = Vec::new();
        let (mut x, mut y) = (0, 0);
        for ring in rings {
            for (index, &(next_x, next_y)) in ring.iter().enumerate() {
                if index == 0 {
                    commands.push(1 | (1 << 3));
                } else if index == 1 {
                    commands.push(2 | ((ring.len() as u32 - 1) << 3));
                }
                commands.push(zigzag(next_x - x));
                commands.push(zigzag(next_y - y));
                (x, y) = (next_x, next_y);
            }
            commands.push(7 | (1 << 3));
        }
        commands
    }

    #[test]
    fn polygon_rings_by_winding() {
        let outer: Ring<'_> = &[(0, 0), (10, 0), (10, 10), (0, 10)];
        let hole: Ring<'_> = &[(3, 3), (3, 7), (7, 7), (7, 3)];
        let reversed_outer: Ring<'_> = &[(0, 0), (0, 10), (10, 10), (10, 0)];
        let reversed_hole: Ring<'_> = &[(3, 3), (7, 3), (7, 7), (3, 7)];
        let second: Ring<'_> = &[(20, 20), (30, 20), (30, 30), (20, 30)];
        // Rings, then the holes of each polygon expected.
        let cases: [(&[Ring<'_>], &[usize]); 4] = [
            (&[outer], &[0]),
            (&[outer, hole], &[1]),
            (&[reversed_outer, reversed_hole], &[1]),
            (&[outer, hole, second], &[1, 0]),
        ];
        let transform = TileTransform::new(TILE, 4096);
        for (rings, expected) in cases {
            let geometry = decode_geometry(3, &ring_commands(rings), &transform);
            let holes: Vec<usize> = match geometry {
                Some(Geometry::Polygon(polygon)) => vec![polygon.interiors().len()],
                Some(Geometry::MultiPolygon(polygons)) => polygons
                    .iter()
                    .map(|polygon| polygon.interiors().len())
                    .collect(),
                other => panic!("not a polygon: {other:?}"),
            };
            assert_eq!(holes, expected, "{rings:?}");
        }
    }

    #[test]
    fn rejects_truncated_tile() {
        let bytes = encoded(GeomType::Point, &[(1.0, 1.0)], false);
        let cut = &bytes[..bytes.len() - 3];
        assert!(decode_tile(cut, TILE).is_err());
    }

    #[test]
    fn unzigzag_values() {
        let cases = [
            (0, 0),
            (1, -1),
            (2, 1),
            (3, -2),
            (4_294_967_294, 2_147_483_647),
        ];
        for (encoded, expected) in cases {
            assert_eq!(unzigzag(encoded), expected, "{encoded}");
        }
    }
}
