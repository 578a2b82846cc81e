//! Mapbox Vector Tile encoding: clipping, simplification, quantisation, winding and
//! attributes of the features that touch a tile.

use geo::{BoundingRect, Coord, Geometry, LineString, MapCoords, Polygon, Simplify};
use mvt::{GeomData, GeomEncoder, GeomType};

use super::clip::{ClipRect, clip_line, clip_polygon};
use super::fields::PropertyValue;
use super::index::{LayerData, StoredFeature};
use super::{EncodedTile, VectorError, VectorOptions};
use crate::tile::{Bbox, TileCoord};

/// Douglas–Peucker tolerance in tile units (1/4096 of the tile side at the default extent):
/// one unit of the grid that coordinates are rounded to anyway.
const SIMPLIFY_TOLERANCE: f64 = 1.0;

/// A point on the tile's integer grid: x to the right, y down, 0 to `extent` inside the tile.
type TilePoint = (i32, i32);

/// Encodes the features of `layers` that touch the buffered tile, or returns `None` when no
/// feature has anything inside it.
pub(super) fn encode_tile(
    layers: &[LayerData],
    tile: TileCoord,
    options: &VectorOptions,
) -> Result<EncodedTile, VectorError> {
    let encode_error = |source| VectorError::Encode {
        z: tile.z,
        x: tile.x,
        y: tile.y,
        source,
    };
    let fraction = f64::from(options.buffer) / f64::from(options.extent);
    let queries = tile
        .buffered_bounds_mercator(fraction)
        .split_at_antimeridian_mercator();
    let frame = TileFrame::new(&tile.bounds_mercator(), options);
    let tolerance = (options.simplify && tile.z < options.maxzoom).then_some(SIMPLIFY_TOLERANCE);

    // A feature near the antimeridian can be found in two parts of the query, each with
    // its own offset. Its copies are merged into one MVT feature.
    let mut layer_hits: Vec<Vec<(usize, f64)>> = layers
        .iter()
        .map(|layer| {
            let mut hits: Vec<(usize, f64)> = queries
                .iter()
                .flat_map(|(bbox, offset)| {
                    layer.features_in(bbox).map(move |index| (index, *offset))
                })
                .collect();
            hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            hits
        })
        .collect();
    let dropped_features = keep_largest(layers, &mut layer_hits, options.max_features_per_tile);

    let mut mvt_tile = mvt::Tile::new(options.extent);
    for (layer, hits) in layers.iter().zip(&layer_hits) {
        if hits.is_empty() {
            continue;
        }

        let mut mvt_layer = mvt_tile.create_layer(&layer.name);
        for copies in hits.chunk_by(|a, b| a.0 == b.0) {
            let feature = &layer.features[copies[0].0];
            let mut parts = TileGeometry::default();
            for &(_, offset) in copies {
                parts.add(&feature.geometry, &frame.with_offset(offset), tolerance);
            }
            mvt_layer = write_feature(mvt_layer, layer, feature, &parts).map_err(encode_error)?;
        }
        if mvt_layer.num_features() > 0 {
            mvt_tile.add_layer(mvt_layer).map_err(encode_error)?;
        }
    }
    let bytes = if mvt_tile.num_layers() == 0 {
        None
    } else {
        Some(mvt_tile.to_bytes().map_err(encode_error)?)
    };
    Ok(EncodedTile {
        bytes,
        dropped_features,
    })
}

/// Leaves at most `max_features` distinct features in `layer_hits`, those with the largest
/// bounding-box diagonal in Web Mercator metres, and returns how many were removed. Equal
/// sizes (every point is 0) keep the earlier layer, then the earlier feature in the file, so
/// the same tile always keeps the same features.
fn keep_largest(
    layers: &[LayerData],
    layer_hits: &mut [Vec<(usize, f64)>],
    max_features: usize,
) -> usize {
    let distinct = |hits: &[(usize, f64)]| hits.chunk_by(|a, b| a.0 == b.0).count();
    let total: usize = layer_hits.iter().map(|hits| distinct(hits)).sum();
    if total <= max_features {
        return 0;
    }
    let mut ranked: Vec<(f64, usize, usize)> = Vec::with_capacity(total);
    for (layer_index, hits) in layer_hits.iter().enumerate() {
        for copies in hits.chunk_by(|a, b| a.0 == b.0) {
            let feature = &layers[layer_index].features[copies[0].0];
            let diagonal = feature
                .geometry
                .bounding_rect()
                .map_or(0.0, |rect| rect.width().hypot(rect.height()));
            ranked.push((diagonal, layer_index, copies[0].0));
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut kept: Vec<Vec<usize>> = vec![Vec::new(); layer_hits.len()];
    for &(_, layer_index, feature_index) in &ranked[..max_features] {
        kept[layer_index].push(feature_index);
    }
    for (hits, kept) in layer_hits.iter_mut().zip(&mut kept) {
        kept.sort_unstable();
        hits.retain(|(index, _)| kept.binary_search(index).is_ok());
    }
    total - max_features
}

/// The mapping from Web Mercator metres to tile coordinates, and the clipping rectangle.
#[derive(Debug, Clone, Copy)]
struct TileFrame {
    min_x: f64,
    max_y: f64,
    /// Tile units per metre.
    scale: f64,
    /// Metres added to x before mapping, to move features from another copy of the world.
    offset: f64,
    clip: ClipRect,
}

impl TileFrame {
    fn new(bounds: &Bbox, options: &VectorOptions) -> Self {
        let extent = f64::from(options.extent);
        let buffer = f64::from(options.buffer);
        Self {
            min_x: bounds.min_x,
            max_y: bounds.max_y,
            scale: extent / bounds.width(),
            offset: 0.0,
            clip: ClipRect {
                min: Coord {
                    x: -buffer,
                    y: -buffer,
                },
                max: Coord {
                    x: extent + buffer,
                    y: extent + buffer,
                },
            },
        }
    }

    fn with_offset(self, offset: f64) -> Self {
        Self { offset, ..self }
    }

    fn tile_coord(&self, coord: Coord<f64>) -> Coord<f64> {
        Coord {
            x: (coord.x + self.offset - self.min_x) * self.scale,
            y: (self.max_y - coord.y) * self.scale,
        }
    }
}

/// The parts of one feature inside a tile, on the tile's integer grid.
#[derive(Debug, Default)]
struct TileGeometry {
    points: Vec<TilePoint>,
    lines: Vec<Vec<TilePoint>>,
    /// Polygons as rings: the exterior first (positive area by the MVT formula), then the
    /// holes (negative area).
    polygons: Vec<Vec<Vec<TilePoint>>>,
}

impl TileGeometry {
    /// Adds the parts of `geometry` (in metres) that are inside the frame's clipping
    /// rectangle, simplified with `tolerance` tile units when it is given.
    fn add(&mut self, geometry: &Geometry<f64>, frame: &TileFrame, tolerance: Option<f64>) {
        match geometry {
            Geometry::Point(point) => self.add_point(point.0, frame),
            Geometry::MultiPoint(points) => {
                for point in points {
                    self.add_point(point.0, frame);
                }
            }
            Geometry::Line(line) => self.add_line(&LineString::from(*line), frame, tolerance),
            Geometry::LineString(line) => self.add_line(line, frame, tolerance),
            Geometry::MultiLineString(lines) => {
                for line in lines {
                    self.add_line(line, frame, tolerance);
                }
            }
            Geometry::Polygon(polygon) => self.add_polygon(polygon, frame, tolerance),
            Geometry::MultiPolygon(polygons) => {
                for polygon in polygons {
                    self.add_polygon(polygon, frame, tolerance);
                }
            }
            Geometry::Rect(rect) => self.add_polygon(&rect.to_polygon(), frame, tolerance),
            Geometry::Triangle(triangle) => {
                self.add_polygon(&triangle.to_polygon(), frame, tolerance);
            }
            Geometry::GeometryCollection(members) => {
                for member in members {
                    self.add(member, frame, tolerance);
                }
            }
        }
    }

    fn add_point(&mut self, coord: Coord<f64>, frame: &TileFrame) {
        let coord = frame.tile_coord(coord);
        if frame.clip.contains(coord) {
            self.points.push(round(coord));
        }
    }

    fn add_line(&mut self, line: &LineString<f64>, frame: &TileFrame, tolerance: Option<f64>) {
        let line = line.map_coords(|coord| frame.tile_coord(coord));
        for part in clip_line(&line, &frame.clip) {
            let simplified = tolerance.map(|tolerance| quantise_line(&part.simplify(tolerance)));
            // Simplification never removes a part that survives without it.
            let quantised = match simplified {
                Some(points) if points.len() >= 2 => points,
                _ => quantise_line(&part),
            };
            if quantised.len() >= 2 {
                self.lines.push(quantised);
            }
        }
    }

    fn add_polygon(&mut self, polygon: &Polygon<f64>, frame: &TileFrame, tolerance: Option<f64>) {
        let polygon = polygon.map_coords(|coord| frame.tile_coord(coord));
        for part in clip_polygon(&polygon, &frame.clip) {
            // `Polygon::simplify` keeps every ring and at least 4 points in each.
            let simplified = tolerance.map(|tolerance| part.simplify(tolerance));
            let ring = |index: usize| {
                let original = ring_at(&part, index);
                simplified
                    .as_ref()
                    .and_then(|simplified| quantise_ring(ring_at(simplified, index)))
                    .or_else(|| quantise_ring(original))
            };
            // A part smaller than a tile unit has no area on the grid and is dropped.
            let Some(mut exterior) = ring(0) else {
                continue;
            };
            if ring_area(&exterior) < 0 {
                exterior.reverse();
            }
            let mut rings = vec![exterior];
            for index in 1..=part.interiors().len() {
                if let Some(mut hole) = ring(index) {
                    if ring_area(&hole) > 0 {
                        hole.reverse();
                    }
                    rings.push(hole);
                }
            }
            self.polygons.push(rings);
        }
    }
}

/// Returns ring `index` of a polygon: 0 is the exterior, 1 and up the holes.
fn ring_at(polygon: &Polygon<f64>, index: usize) -> &LineString<f64> {
    match index {
        0 => polygon.exterior(),
        _ => &polygon.interiors()[index - 1],
    }
}

fn round(coord: Coord<f64>) -> TilePoint {
    (coord.x.round() as i32, coord.y.round() as i32)
}

/// Rounds a line to the grid and drops points that repeat the previous one.
fn quantise_line(line: &LineString<f64>) -> Vec<TilePoint> {
    let mut points: Vec<TilePoint> = Vec::with_capacity(line.0.len());
    for &coord in &line.0 {
        let point = round(coord);
        if points.last() != Some(&point) {
            points.push(point);
        }
    }
    points
}

/// Rounds a closed ring to the grid and returns it open (without the closing point), or
/// `None` when it has no area left.
fn quantise_ring(ring: &LineString<f64>) -> Option<Vec<TilePoint>> {
    let mut points = quantise_line(ring);
    while points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    (points.len() >= 3 && ring_area(&points) != 0).then_some(points)
}

/// Returns twice the signed area of an open ring by the MVT 2.1 formula (the surveyor's
/// formula in tile coordinates, y down). Exterior rings must be positive, which looks
/// clockwise on screen.
fn ring_area(ring: &[TilePoint]) -> i64 {
    let mut sum = 0_i64;
    for (index, &(x0, y0)) in ring.iter().enumerate() {
        let (x1, y1) = ring[(index + 1) % ring.len()];
        sum += i64::from(x0) * i64::from(y1) - i64::from(x1) * i64::from(y0);
    }
    sum
}

/// Adds the feature's parts to the layer: one MVT feature per geometry type, each with the
/// feature's id and attributes.
fn write_feature(
    mut layer: mvt::Layer,
    data: &LayerData,
    feature: &StoredFeature,
    parts: &TileGeometry,
) -> Result<mvt::Layer, mvt::Error> {
    let mut geometries = Vec::with_capacity(1);
    if !parts.points.is_empty() {
        geometries.push(encode_points(&parts.points)?);
    }
    if !parts.lines.is_empty() {
        geometries.push(encode_lines(&parts.lines)?);
    }
    if !parts.polygons.is_empty() {
        geometries.push(encode_polygons(&parts.polygons)?);
    }
    for geometry in geometries {
        let mut mvt_feature = layer.into_feature(geometry);
        if let Some(id) = feature.id {
            mvt_feature.set_id(id);
        }
        for (key, value) in &feature.properties {
            let key = &data.keys[*key];
            match value {
                PropertyValue::String(text) => mvt_feature.add_tag_string(key, text),
                PropertyValue::Int(number) => match u64::try_from(*number) {
                    Ok(unsigned) => mvt_feature.add_tag_uint(key, unsigned),
                    Err(_) => mvt_feature.add_tag_sint(key, *number),
                },
                PropertyValue::Double(number) => mvt_feature.add_tag_double(key, *number),
                PropertyValue::Bool(flag) => mvt_feature.add_tag_bool(key, *flag),
            }
        }
        layer = mvt_feature.into_layer();
    }
    Ok(layer)
}

fn encode_points(points: &[TilePoint]) -> Result<GeomData, mvt::Error> {
    let mut encoder = GeomEncoder::new(GeomType::Point);
    for &(x, y) in points {
        encoder.add_point(x, y)?;
    }
    encoder.encode()
}

fn encode_lines(lines: &[Vec<TilePoint>]) -> Result<GeomData, mvt::Error> {
    // mvt 0.15's GeomEncoder writes a line that starts where the previous one ended without
    // a MoveTo, continuing the previous line. Joining such lines here gives the same shape
    // with well-formed commands.
    let mut joined: Vec<Vec<TilePoint>> = Vec::with_capacity(lines.len());
    for line in lines {
        match joined.last_mut() {
            Some(previous) if previous.last() == line.first() => {
                previous.extend_from_slice(&line[1..]);
            }
            _ => joined.push(line.clone()),
        }
    }
    let mut encoder = GeomEncoder::new(GeomType::Linestring);
    for line in &joined {
        for &(x, y) in line {
            encoder.add_point(x, y)?;
        }
        encoder.complete_geom()?;
    }
    encoder.encode()
}

fn encode_polygons(polygons: &[Vec<Vec<TilePoint>>]) -> Result<GeomData, mvt::Error> {
    let mut encoder = GeomEncoder::new(GeomType::Polygon);
    let mut last_written: Option<TilePoint> = None;
    for ring in polygons.iter().flatten() {
        // mvt 0.15's GeomEncoder omits the MoveTo of a ring whose first point equals the
        // last point written, which breaks the ring. Starting at the next point avoids it:
        // consecutive points of a quantised ring differ.
        let start = usize::from(last_written == Some(ring[0]));
        for step in 0..ring.len() {
            let (x, y) = ring[(start + step) % ring.len()];
            encoder.add_point(x, y)?;
        }
        encoder.complete_geom()?;
        last_written = Some(ring[(start + ring.len() - 1) % ring.len()]);
    }
    encoder.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_area_sign_follows_mvt() {
        // Clockwise on screen (y down): right along the top, then down.
        let clockwise = [(0, 0), (10, 0), (10, 10), (0, 10)];
        assert!(ring_area(&clockwise) > 0);
        let counter_clockwise = [(0, 0), (0, 10), (10, 10), (10, 0)];
        assert!(ring_area(&counter_clockwise) < 0);
    }

    #[test]
    fn quantise_ring_drops_collapsed_rings() {
        let cases: [(LineString<f64>, bool); 3] = [
            (
                LineString::from(vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 0.0)]),
                true,
            ),
            // Smaller than a unit: all points round to the same one.
            (
                LineString::from(vec![(0.1, 0.1), (0.3, 0.1), (0.3, 0.3), (0.1, 0.1)]),
                false,
            ),
            // A sliver that rounds onto one line.
            (
                LineString::from(vec![(0.0, 0.0), (10.0, 0.2), (20.0, 0.0), (0.0, 0.0)]),
                false,
            ),
        ];
        for (ring, kept) in cases {
            assert_eq!(quantise_ring(&ring).is_some(), kept, "ring {ring:?}");
        }
    }

    /// Counts the MoveTo commands of encoded geometry, by writing it into a tile and decoding
    /// that.
    fn count_move_to(geometry: GeomData) -> usize {
        use geozero::mvt::{Message, Tile};

        let mut tile = mvt::Tile::new(4096);
        let layer = tile
            .create_layer("test")
            .into_feature(geometry)
            .into_layer();
        tile.add_layer(layer).expect("add layer");
        let bytes = tile.to_bytes().expect("encode tile");
        let decoded = Tile::decode(bytes.as_slice()).expect("decode tile");
        let commands = &decoded.layers[0].features[0].geometry;
        let mut count = 0;
        let mut index = 0;
        while index < commands.len() {
            let (id, repeat) = (commands[index] & 7, (commands[index] >> 3) as usize);
            if id == 1 {
                count += repeat;
            }
            index += 1 + if id == 7 { 0 } else { 2 * repeat };
        }
        count
    }

    #[test]
    fn encode_polygons_starts_every_ring_with_move_to() {
        // The second square starts where the first one's ring ends.
        let first = vec![(0, 0), (10, 0), (10, 10), (0, 10)];
        let second = vec![(0, 10), (10, 10), (10, 20), (0, 20)];
        let data = encode_polygons(&[vec![first], vec![second]]).expect("encodes");
        assert_eq!(count_move_to(data), 2);
    }

    #[test]
    fn encode_lines_joins_continuing_lines() {
        let lines = vec![
            vec![(0, 0), (5, 0)],
            vec![(5, 0), (5, 5)],
            vec![(9, 9), (8, 8)],
        ];
        let data = encode_lines(&lines).expect("encodes");
        // MoveTo(1) x y LineTo(2) 4 coordinates, MoveTo(1) x y LineTo(1) x y.
        assert_eq!(data.len(), 3 + 1 + 4 + 3 + 3);
    }
}
