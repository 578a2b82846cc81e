//! Tile maths for the OGC `WebMercatorQuad` tile matrix set (EPSG:3857).
//!
//! Zoom `z` has `2^z × 2^z` tiles. Tiles are addressed XYZ-style: `x` counts columns from the
//! west edge (longitude -180°) and `y` counts rows from the north edge (latitude
//! [`MAX_LATITUDE`]). TMS addressing counts rows from the south, and [`TileCoord::from_tms`]
//! and [`TileCoord::tms_y`] convert between the two.
//!
//! Projected coordinates are in metres on the Web Mercator sphere of radius [`EARTH_RADIUS`],
//! with the world spanning `-ORIGIN_SHIFT..=ORIGIN_SHIFT` on both axes. Geographic coordinates
//! are in degrees, longitude first. The documentation of each function states which of the
//! two it takes and returns.
//!
//! Tile size in pixels does not change the grid: a 512-pixel tile at zoom `z` covers the same
//! ground as a 256-pixel tile at zoom `z`, with twice the pixels along each side. Only the
//! resolution changes, which is why [`resolution`] and [`scale_denominator`] take the tile size.

use std::fmt;
use std::ops::RangeInclusive;

use thiserror::Error;

/// The deepest zoom level served.
pub const MAX_ZOOM: u8 = 24;
/// The latitude at which Web Mercator is cut off so that the world is square.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;
/// Semi-major axis of WGS 84, the sphere radius of Web Mercator, in metres.
pub const EARTH_RADIUS: f64 = 6_378_137.0;
/// Half the width of the Web Mercator world, in metres.
pub const ORIGIN_SHIFT: f64 = std::f64::consts::PI * EARTH_RADIUS;

/// The width of the Web Mercator world, in metres.
const WORLD_WIDTH: f64 = 2.0 * ORIGIN_SHIFT;
/// The width of an OGC standardized rendering pixel, in metres (0.28 mm).
const OGC_PIXEL_SIZE: f64 = 0.000_28;
/// Distance from a tile edge, in metres on the ground, within which a position is snapped
/// onto that edge. Converting tile edges to degrees and back moved them by up to 3.4e-8 m in a
/// sample of 20,000 rows at zoom 24 (the same formulas in Python's `math`), and the snap maps
/// such boxes back onto whole tiles.
const EDGE_SNAP_METRES: f64 = 1e-6;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TileError {
    /// A zoom above [`MAX_ZOOM`].
    #[error("zoom {0} is out of range: use a zoom from 0 to 24, the levels of WebMercatorQuad")]
    ZoomOutOfRange(u32),
    /// A column or row at or beyond `limit`, the matrix size `2^z` at that zoom.
    #[error(
        "tile {axis} = {value} is out of range at zoom {z}: use a value from 0 to {}",
        limit - 1
    )]
    CoordOutOfRange {
        axis: char,
        value: u64,
        z: u8,
        limit: u64,
    },
}

/// A tile in XYZ addressing: `y` counts rows from the north.
///
/// [`TileCoord::new`] and [`TileCoord::from_tms`] check that `z <= MAX_ZOOM` and
/// `x, y < 2^z`. The fields are public, so a value built by hand may break these bounds. The
/// methods assume that they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

/// An axis-aligned box, in metres (EPSG:3857) or degrees (EPSG:4326) depending on its use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bbox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl TileCoord {
    /// Creates an XYZ tile, checking that `z <= MAX_ZOOM` and that `x` and `y` are below `2^z`.
    pub fn new(z: u32, x: u64, y: u64) -> Result<TileCoord, TileError> {
        let z = check_zoom(z)?;
        let x = check_coord('x', x, z)?;
        let y = check_coord('y', y, z)?;
        Ok(TileCoord { z, x, y })
    }

    /// Creates a tile from TMS addressing, where `y_tms` counts rows from the south.
    pub fn from_tms(z: u32, x: u64, y_tms: u64) -> Result<TileCoord, TileError> {
        let z = check_zoom(z)?;
        let x = check_coord('x', x, z)?;
        let y_tms = check_coord('y', y_tms, z)?;
        Ok(TileCoord {
            z,
            x,
            y: Self::matrix_size(z) - 1 - y_tms,
        })
    }

    /// Returns the row in TMS addressing, counted from the south.
    pub fn tms_y(self) -> u32 {
        Self::matrix_size(self.z) - 1 - self.y
    }

    /// Returns the number of tiles along each side of the matrix at zoom `z`, `2^z`.
    ///
    /// # Panics
    ///
    /// Panics if `z > 31`, because `2^32` does not fit in `u32`.
    pub fn matrix_size(z: u8) -> u32 {
        assert!(
            z < 32,
            "zoom {z} has 2^{z} tiles per side, which does not fit in u32"
        );
        1 << z
    }

    /// Returns the tile's bounds in metres (EPSG:3857).
    pub fn bounds_mercator(self) -> Bbox {
        let size = tile_width_mercator(self.z);
        Bbox {
            min_x: -ORIGIN_SHIFT + f64::from(self.x) * size,
            min_y: ORIGIN_SHIFT - f64::from(self.y + 1) * size,
            max_x: -ORIGIN_SHIFT + f64::from(self.x + 1) * size,
            max_y: ORIGIN_SHIFT - f64::from(self.y) * size,
        }
    }

    /// Returns the tile's bounds in degrees (EPSG:4326).
    pub fn bounds_lonlat(self) -> Bbox {
        bbox_mercator_to_lonlat(&self.bounds_mercator())
    }

    /// Returns the tile's bounds in metres, grown on each side by `fraction` of the tile width.
    ///
    /// The result is not clamped to the world, so along the edges of the matrix it passes
    /// `±ORIGIN_SHIFT`, and [`Bbox::split_at_antimeridian_mercator`] maps it back. A negative
    /// `fraction` shrinks the box.
    pub fn buffered_bounds_mercator(self, fraction: f64) -> Bbox {
        let bounds = self.bounds_mercator();
        let buffer = fraction * tile_width_mercator(self.z);
        Bbox {
            min_x: bounds.min_x - buffer,
            min_y: bounds.min_y - buffer,
            max_x: bounds.max_x + buffer,
            max_y: bounds.max_y + buffer,
        }
    }

    /// Returns the tile one zoom up that contains this one, or `None` at zoom 0.
    pub fn parent(self) -> Option<TileCoord> {
        let z = self.z.checked_sub(1)?;
        Some(TileCoord {
            z,
            x: self.x / 2,
            y: self.y / 2,
        })
    }

    /// Returns the four tiles one zoom down: north-west, north-east, south-west, south-east.
    ///
    /// NOTE: at [`MAX_ZOOM`] the children are at zoom 25, which [`TileCoord::new`] rejects.
    /// A caller that descends must stop at `MAX_ZOOM`.
    pub fn children(self) -> [TileCoord; 4] {
        let z = self.z + 1;
        let (x, y) = (self.x * 2, self.y * 2);
        [
            TileCoord { z, x, y },
            TileCoord { z, x: x + 1, y },
            TileCoord { z, x, y: y + 1 },
            TileCoord {
                z,
                x: x + 1,
                y: y + 1,
            },
        ]
    }

    /// Returns the tile's centre as (longitude, latitude) in degrees.
    ///
    /// The centre is taken in Web Mercator, so its latitude is not the mean of the latitudes
    /// of the north and south edges.
    pub fn center_lonlat(self) -> (f64, f64) {
        let bounds = self.bounds_mercator();
        mercator_to_lonlat(
            bounds.min_x.midpoint(bounds.max_x),
            bounds.min_y.midpoint(bounds.max_y),
        )
    }
}

impl fmt::Display for TileCoord {
    /// Formats the tile as `z/x/y`, the order of XYZ tile URLs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

fn check_zoom(z: u32) -> Result<u8, TileError> {
    match u8::try_from(z) {
        Ok(zoom) if zoom <= MAX_ZOOM => Ok(zoom),
        _ => Err(TileError::ZoomOutOfRange(z)),
    }
}

fn check_coord(axis: char, value: u64, z: u8) -> Result<u32, TileError> {
    let limit = u64::from(TileCoord::matrix_size(z));
    if value < limit {
        // `limit` is at most 2^24, so the value fits.
        Ok(value as u32)
    } else {
        Err(TileError::CoordOutOfRange {
            axis,
            value,
            z,
            limit,
        })
    }
}

/// Returns the width (and height) of one tile at zoom `z`, in metres.
fn tile_width_mercator(z: u8) -> f64 {
    WORLD_WIDTH / f64::from(TileCoord::matrix_size(z))
}

impl Bbox {
    /// Builds a box from its west, south, east and north edges.
    pub const fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Self {
        Self {
            min_x,
            min_y,
            max_x,
            max_y,
        }
    }

    /// Returns whether the boxes overlap. Boxes that share only an edge or a corner intersect.
    pub fn intersects(&self, other: &Bbox) -> bool {
        self.min_x <= other.max_x
            && other.min_x <= self.max_x
            && self.min_y <= other.max_y
            && other.min_y <= self.max_y
    }

    /// Returns the overlap of the two boxes, or `None` if they do not intersect.
    /// Boxes that share only an edge give a box of zero width or height.
    pub fn intersection(&self, other: &Bbox) -> Option<Bbox> {
        if !self.intersects(other) {
            return None;
        }
        Some(Bbox {
            min_x: self.min_x.max(other.min_x),
            min_y: self.min_y.max(other.min_y),
            max_x: self.max_x.min(other.max_x),
            max_y: self.max_y.min(other.max_y),
        })
    }

    /// Returns `max_x - min_x`, in the box's units.
    pub fn width(&self) -> f64 {
        self.max_x - self.min_x
    }

    /// Returns `max_y - min_y`, in the box's units.
    pub fn height(&self) -> f64 {
        self.max_y - self.min_y
    }

    /// Splits a Web Mercator box that passes the antimeridian (`min_x < -ORIGIN_SHIFT` or
    /// `max_x > ORIGIN_SHIFT`) into parts inside the world. Each part comes with the x offset,
    /// a multiple of `2 * ORIGIN_SHIFT`, to ADD to data coordinates found in that part so they
    /// line up with the original box. A box inside the world returns itself with offset 0.
    ///
    /// The parts go from west to east, one for each copy of the world the box touches, so a
    /// box wider than the world yields three or more parts. Only x is split: `min_y` and
    /// `max_y` are kept as they are. A box with a non-finite x yields no parts.
    pub fn split_at_antimeridian_mercator(&self) -> Vec<(Bbox, f64)> {
        if !self.min_x.is_finite() || !self.max_x.is_finite() {
            return Vec::new();
        }
        if self.min_x >= -ORIGIN_SHIFT && self.max_x <= ORIGIN_SHIFT {
            return vec![(*self, 0.0)];
        }

        // World copy k spans [-ORIGIN_SHIFT + k * WORLD_WIDTH, ORIGIN_SHIFT + k * WORLD_WIDTH].
        // A box that ends exactly on a copy's west edge does not reach into that copy.
        let first = ((self.min_x + ORIGIN_SHIFT) / WORLD_WIDTH).floor() as i64;
        let last = (((self.max_x + ORIGIN_SHIFT) / WORLD_WIDTH).ceil() as i64 - 1).max(first);
        (first..=last)
            .map(|copy| {
                let offset = copy as f64 * WORLD_WIDTH;
                let part = Bbox {
                    min_x: (self.min_x - offset).max(-ORIGIN_SHIFT),
                    min_y: self.min_y,
                    max_x: (self.max_x - offset).min(ORIGIN_SHIFT),
                    max_y: self.max_y,
                };
                (part, offset)
            })
            .collect()
    }
}

/// Converts degrees (longitude, latitude) to Web Mercator metres (x, y).
///
/// Latitude is clamped to ±[`MAX_LATITUDE`], so the poles map to the edges of the world at
/// `y = ±ORIGIN_SHIFT`. Longitude is not wrapped: 190° gives an x beyond `ORIGIN_SHIFT`.
pub fn lonlat_to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE);
    let x = lon.to_radians() * EARTH_RADIUS;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * EARTH_RADIUS;
    (x, y)
}

/// Converts Web Mercator metres (x, y) to degrees (longitude, latitude).
///
/// Neither axis is clamped or wrapped: an x beyond `ORIGIN_SHIFT` gives a longitude beyond
/// 180°.
pub fn mercator_to_lonlat(x: f64, y: f64) -> (f64, f64) {
    let lon = (x / EARTH_RADIUS).to_degrees();
    let lat = (y / EARTH_RADIUS).sinh().atan().to_degrees();
    (lon, lat)
}

/// Converts a box in degrees to metres, corner by corner, clamping latitudes as
/// [`lonlat_to_mercator`] does. A box with `min_x > max_x` stays that way.
pub fn bbox_lonlat_to_mercator(b: &Bbox) -> Bbox {
    let (min_x, min_y) = lonlat_to_mercator(b.min_x, b.min_y);
    let (max_x, max_y) = lonlat_to_mercator(b.max_x, b.max_y);
    Bbox {
        min_x,
        min_y,
        max_x,
        max_y,
    }
}

/// Converts a box in metres to degrees, corner by corner.
pub fn bbox_mercator_to_lonlat(b: &Bbox) -> Bbox {
    let (min_x, min_y) = mercator_to_lonlat(b.min_x, b.min_y);
    let (max_x, max_y) = mercator_to_lonlat(b.max_x, b.max_y);
    Bbox {
        min_x,
        min_y,
        max_x,
        max_y,
    }
}

/// Returns the tile at zoom `z` that contains the point at (lon, lat) in degrees.
///
/// Longitude is wrapped into [-180, 180), so 180° and -180° both give column 0. Latitude is
/// clamped to ±[`MAX_LATITUDE`], so the poles give the top and bottom rows. A point on a tile
/// edge, or within a micrometre of it, belongs to the tile east or south of the edge.
/// A NaN coordinate gives column or row 0.
///
/// # Panics
///
/// Panics if `z > 31`, as [`TileCoord::matrix_size`] does.
pub fn lonlat_to_tile(lon: f64, lat: f64, z: u8) -> TileCoord {
    let size = TileCoord::matrix_size(z);
    let lon = (lon + 180.0).rem_euclid(360.0) - 180.0;
    TileCoord {
        z,
        x: floor_index(column_position(lon, size), size),
        y: floor_index(row_position(lat, size), size),
    }
}

/// Tiles at zoom z that touch a lon/lat box. A box with `min_x > max_x` crosses the antimeridian
/// and yields tiles at both ends of the row. Bounded: returns an iterator, never allocates 2^24
/// rows.
///
/// Tiles come row by row from the north, west to east within a row (for a crossing box, the
/// eastern tiles first). Longitudes are clamped to [-180, 180] and latitudes to
/// ±[`MAX_LATITUDE`]. A box edge that lies on a tile edge does not pull in the tile beyond it,
/// so the bounds of a tile yield that tile alone. A box with `min_y > max_y` yields nothing.
///
/// # Panics
///
/// Panics if `z > 31`, as [`TileCoord::matrix_size`] does.
pub fn tiles_in_bbox(b: &Bbox, z: u8) -> impl Iterator<Item = TileCoord> + use<> {
    let size = TileCoord::matrix_size(z);
    let rows = (b.min_y <= b.max_y).then(|| {
        index_range(
            row_position(b.max_y, size),
            row_position(b.min_y, size),
            size,
        )
    });

    let west = column_position(b.min_x, size);
    let east = column_position(b.max_x, size);
    let columns = if b.min_x <= b.max_x {
        [Some(index_range(west, east, size)), None]
    } else {
        // The box runs from min_x east to 180° and on from -180° to max_x.
        let eastern = index_range(west, f64::from(size), size);
        let western = index_range(0.0, east, size);
        if western.end() >= eastern.start() {
            [Some(0..=size - 1), None]
        } else {
            [Some(eastern), Some(western)]
        }
    };

    rows.into_iter().flatten().flat_map(move |y| {
        columns
            .clone()
            .into_iter()
            .flatten()
            .flatten()
            .map(move |x| TileCoord { z, x, y })
    })
}

/// Tile range (`min_x`, `min_y`, `max_x`, `max_y`) inclusive at zoom z for a lon/lat box that does not
/// cross.
///
/// Edges are treated as in [`tiles_in_bbox`]: longitudes are clamped to [-180, 180], so 180°
/// gives the last column, and a box edge on a tile edge does not pull in the tile beyond it. A
/// box with `min_x > max_x` gives `min_x > max_x` here too: use [`tiles_in_bbox`] for those.
///
/// # Panics
///
/// Panics if `z > 31`, as [`TileCoord::matrix_size`] does.
pub fn tile_range(b: &Bbox, z: u8) -> (u32, u32, u32, u32) {
    let size = TileCoord::matrix_size(z);
    let columns = index_range(
        column_position(b.min_x, size),
        column_position(b.max_x, size),
        size,
    );
    let rows = index_range(
        row_position(b.max_y, size),
        row_position(b.min_y, size),
        size,
    );
    (*columns.start(), *rows.start(), *columns.end(), *rows.end())
}

/// Returns the ground size of one pixel at the equator at zoom `z`, in metres per pixel, for
/// tiles of `tile_size` pixels.
pub fn resolution(z: u8, tile_size: u32) -> f64 {
    WORLD_WIDTH / (f64::from(tile_size) * 2f64.powi(i32::from(z)))
}

/// Returns the fractional zoom at which tiles of `tile_size` pixels have the given resolution
/// at the equator, in metres per pixel. The inverse of [`resolution`]: it may be negative, or
/// beyond [`MAX_ZOOM`], and is infinite or NaN for a resolution that is not positive.
pub fn zoom_for_resolution(metres_per_pixel: f64, tile_size: u32) -> f64 {
    (WORLD_WIDTH / (f64::from(tile_size) * metres_per_pixel)).log2()
}

/// Returns the OGC scale denominator at zoom `z` for tiles of `tile_size` pixels: the
/// resolution divided by the standardized rendering pixel size of 0.28 mm.
pub fn scale_denominator(z: u8, tile_size: u32) -> f64 {
    resolution(z, tile_size) / OGC_PIXEL_SIZE
}

/// Returns the fractional column of a longitude in degrees, clamped to [-180, 180].
fn column_position(lon: f64, size: u32) -> f64 {
    let lon = lon.clamp(-180.0, 180.0);
    snap_to_edge((lon + 180.0) / 360.0 * f64::from(size), size)
}

/// Returns the fractional row, counted from the north, of a latitude in degrees.
fn row_position(lat: f64, size: u32) -> f64 {
    let (_, y) = lonlat_to_mercator(0.0, lat);
    snap_to_edge((ORIGIN_SHIFT - y) / WORLD_WIDTH * f64::from(size), size)
}

/// Moves a fractional tile position onto the nearest tile edge if it lies within
/// [`EDGE_SNAP_METRES`] of it.
fn snap_to_edge(position: f64, size: u32) -> f64 {
    let tolerance = EDGE_SNAP_METRES * f64::from(size) / WORLD_WIDTH;
    let edge = position.round();
    if (position - edge).abs() < tolerance {
        edge
    } else {
        position
    }
}

/// Returns the tile index that contains a fractional position, clamped into the matrix.
/// `as u32` saturates, so negative positions and NaN give 0.
fn floor_index(position: f64, size: u32) -> u32 {
    (position.floor() as u32).min(size - 1)
}

/// Returns the tile indices that a span from `start` to `end` (fractional positions) touches.
///
/// An `end` on a tile edge excludes the tile that starts there, unless the span is empty.
/// When `end < start`, the range is empty unless both lie in the same tile.
fn index_range(start: f64, end: f64, size: u32) -> RangeInclusive<u32> {
    let first = floor_index(start, size);
    let last = if end > start {
        floor_index(end.ceil() - 1.0, size)
    } else {
        floor_index(end, size)
    };
    first..=last
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "tile edges are compared exactly where adjacent tiles and parts must meet"
)]
mod tests {
    use super::*;

    /// Tolerance for metres compared with GDAL output, which prints 15 significant digits.
    const GDAL_METRES: f64 = 1e-6;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} differs from {expected} by more than {tolerance}"
        );
    }

    fn assert_bbox_close(actual: &Bbox, expected: &Bbox, tolerance: f64) {
        assert_close(actual.min_x, expected.min_x, tolerance);
        assert_close(actual.min_y, expected.min_y, tolerance);
        assert_close(actual.max_x, expected.max_x, tolerance);
        assert_close(actual.max_y, expected.max_y, tolerance);
    }

    fn tile(z: u32, x: u64, y: u64) -> TileCoord {
        TileCoord::new(z, x, y).expect("test tile is inside the matrix")
    }

    fn bbox(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Bbox {
        Bbox::new(min_x, min_y, max_x, max_y)
    }

    #[test]
    fn zoom_0_bounds_are_the_world() {
        let bounds = tile(0, 0, 0).bounds_mercator();
        assert_eq!(bounds.min_x, -20_037_508.342_789_244);
        assert_eq!(bounds.min_y, -20_037_508.342_789_244);
        assert_eq!(bounds.max_x, 20_037_508.342_789_244);
        assert_eq!(bounds.max_y, 20_037_508.342_789_244);

        let degrees = tile(0, 0, 0).bounds_lonlat();
        assert_bbox_close(
            &degrees,
            &bbox(-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE),
            1e-12,
        );
    }

    #[test]
    fn tile_1_0_0_bounds() {
        let bounds = tile(1, 0, 0).bounds_mercator();
        assert_eq!(bounds, bbox(-ORIGIN_SHIFT, 0.0, 0.0, ORIGIN_SHIFT));

        let degrees = tile(1, 0, 0).bounds_lonlat();
        assert_bbox_close(&degrees, &bbox(-180.0, 0.0, 0.0, MAX_LATITUDE), 1e-12);
    }

    #[test]
    fn tile_2_3_0_bounds_match_gdal() {
        // `gdaltransform -s_srs EPSG:4326 -t_srs EPSG:3857 -output_xy` (GDAL 3.6.2) maps
        // 180 66.51326044311186 to 20037508.3427892 10018754.1713946.
        let bounds = tile(2, 3, 0).bounds_mercator();
        assert_close(bounds.max_x, 20_037_508.342_789_2, GDAL_METRES);
        assert_close(bounds.min_y, 10_018_754.171_394_6, GDAL_METRES);

        let degrees = tile(2, 3, 0).bounds_lonlat();
        assert_close(degrees.min_x, 90.0, 1e-12);
        assert_close(degrees.min_y, 66.513_260_443_111_86, 1e-12);
    }

    #[test]
    fn lonlat_to_mercator_matches_gdal() {
        // From `gdaltransform -s_srs EPSG:4326 -t_srs EPSG:3857 -output_xy` (GDAL 3.6.2).
        let cases = [
            (
                (125.7625, 39.0392),
                (13_999_817.460_889_1, 4_727_288.192_698_02),
            ),
            ((180.0, 0.0), (20_037_508.342_789_2, 0.0)),
            (
                (-180.0, 85.051_128_779_806_6),
                (-20_037_508.342_789_2, 20_037_508.342_789_2),
            ),
            ((0.0, -85.051_128_779_806_6), (0.0, -20_037_508.342_789_2)),
            ((13.4, 52.52), (1_491_681.176_629_87, 6_894_699.801_282_42)),
            (
                (-73.985, 40.758),
                (-8_235_972.526_340_34, 4_976_711.982_333_66),
            ),
        ];
        for ((lon, lat), (x, y)) in cases {
            let (actual_x, actual_y) = lonlat_to_mercator(lon, lat);
            assert_close(actual_x, x, GDAL_METRES);
            assert_close(actual_y, y, GDAL_METRES);
        }
    }

    #[test]
    fn mercator_to_lonlat_matches_gdal() {
        // From `gdaltransform -s_srs EPSG:3857 -t_srs EPSG:4326 -output_xy` (GDAL 3.6.2).
        let cases = [
            ((ORIGIN_SHIFT, ORIGIN_SHIFT), (180.0, 85.051_128_779_806_6)),
            ((0.0, 0.0), (0.0, 0.0)),
            (
                (10_000_000.0, 5_000_000.0),
                (89.831_528_411_952_1, 40.916_274_470_675_8),
            ),
        ];
        for ((x, y), (lon, lat)) in cases {
            let (actual_lon, actual_lat) = mercator_to_lonlat(x, y);
            assert_close(actual_lon, lon, 1e-12);
            assert_close(actual_lat, lat, 1e-12);
        }
    }

    #[test]
    fn lonlat_mercator_round_trip() {
        for lon in [
            -180.0,
            -179.999_999,
            -123.456,
            -0.5,
            0.0,
            1e-7,
            45.0,
            125.7625,
            180.0,
        ] {
            for lat in [-MAX_LATITUDE, -85.0, -45.5, -1e-7, 0.0, 39.0392, 66.5, 85.0] {
                let (x, y) = lonlat_to_mercator(lon, lat);
                let (round_lon, round_lat) = mercator_to_lonlat(x, y);
                assert_close(round_lon, lon, 1e-9);
                assert_close(round_lat, lat, 1e-9);
            }
        }
    }

    #[test]
    fn bbox_conversion_round_trip() {
        let degrees = bbox(124.0, 37.5, 131.0, 43.0);
        let metres = bbox_lonlat_to_mercator(&degrees);
        assert_close(metres.min_x, 124.0 / 180.0 * ORIGIN_SHIFT, 1e-6);
        assert_bbox_close(&bbox_mercator_to_lonlat(&metres), &degrees, 1e-9);
    }

    #[test]
    fn lonlat_to_tile_pyongyang_z10() {
        // Pyongyang, 125.7625 E 39.0392 N. Column (125.7625 + 180) / 360 * 1024 = 869.72;
        // row (ORIGIN_SHIFT - 4727288.19269802) / (2 * ORIGIN_SHIFT) * 1024 = 391.21, with y in
        // metres from gdaltransform (GDAL 3.6.2).
        let expected = tile(10, 869, 391);
        assert_eq!(lonlat_to_tile(125.7625, 39.0392, 10), expected);
        assert_eq!(expected.to_string(), "10/869/391");
    }

    #[test]
    fn lonlat_to_tile_inside_own_bounds() {
        for z in [0, 1, 7, 15, 24] {
            let (lon, lat) = (-73.985, 40.758);
            let found = lonlat_to_tile(lon, lat, z);
            let bounds = found.bounds_lonlat();
            assert!(
                bounds.min_x <= lon && lon < bounds.max_x,
                "{found} misses lon {lon}"
            );
            assert!(
                bounds.min_y < lat && lat <= bounds.max_y,
                "{found} misses lat {lat}"
            );
        }
    }

    #[test]
    fn lonlat_to_tile_edge_goes_east_and_south() {
        // 0°, 0° is the corner of the four middle tiles at zoom 1.
        assert_eq!(lonlat_to_tile(0.0, 0.0, 1), tile(1, 1, 1));
    }

    #[test]
    fn lonlat_to_tile_nan_gives_zero() {
        assert_eq!(lonlat_to_tile(f64::NAN, f64::NAN, 5), tile(5, 0, 0));
    }

    #[test]
    fn tms_flip_both_ways() {
        let cases = [
            (0, 0, 0),
            (1, 0, 1),
            (1, 1, 0),
            (3, 2, 5),
            (24, 0, (1 << 24) - 1),
            (24, (1 << 24) - 1, 0),
        ];
        for (z, y, y_tms) in cases {
            let xyz = tile(z, 0, y);
            assert_eq!(u64::from(xyz.tms_y()), y_tms, "tms_y of {xyz}");
            let from_tms = TileCoord::from_tms(z, 0, y_tms).expect("TMS row is inside the matrix");
            assert_eq!(from_tms, xyz, "from_tms({z}, 0, {y_tms})");
        }
    }

    #[test]
    fn poles_clamp_to_edges() {
        let (_, north) = lonlat_to_mercator(10.0, 90.0);
        let (_, south) = lonlat_to_mercator(10.0, -90.0);
        assert_close(north, ORIGIN_SHIFT, 1e-6);
        assert_close(south, -ORIGIN_SHIFT, 1e-6);

        let (_, north_lat) = mercator_to_lonlat(0.0, north);
        assert_close(north_lat, MAX_LATITUDE, 1e-12);

        for z in [0, 1, 10, 24] {
            let last_row = TileCoord::matrix_size(z) - 1;
            assert_eq!(lonlat_to_tile(10.0, 90.0, z).y, 0, "north pole at zoom {z}");
            assert_eq!(
                lonlat_to_tile(10.0, -90.0, z).y,
                last_row,
                "south pole at zoom {z}"
            );
            assert_eq!(lonlat_to_tile(10.0, 89.0, z).y, 0, "89° N at zoom {z}");
        }
    }

    #[test]
    fn antimeridian_longitudes_map_to_column_0() {
        for z in [0, 3, 24] {
            assert_eq!(lonlat_to_tile(180.0, 0.0, z).x, 0, "180° at zoom {z}");
            assert_eq!(lonlat_to_tile(-180.0, 0.0, z).x, 0, "-180° at zoom {z}");
            assert_eq!(lonlat_to_tile(540.0, 0.0, z).x, 0, "540° at zoom {z}");
        }
        assert_eq!(lonlat_to_tile(179.9, 0.0, 3).x, 7);
        assert_eq!(lonlat_to_tile(-190.0, 0.0, 3).x, 7);
    }

    #[test]
    fn tiles_in_bbox_across_antimeridian() {
        // 170° E to 170° W, 10° S to 10° N: the equator is the edge between rows 3 and 4.
        let crossing = bbox(170.0, -10.0, -170.0, 10.0);
        let tiles: Vec<TileCoord> = tiles_in_bbox(&crossing, 3).collect();
        let expected = vec![tile(3, 7, 3), tile(3, 0, 3), tile(3, 7, 4), tile(3, 0, 4)];
        assert_eq!(tiles, expected);
    }

    #[test]
    fn crossing_box_covers_row_once() {
        // 175° E eastward to 172° E covers all but 3° of the row.
        let crossing = bbox(175.0, 1.0, 172.0, 2.0);
        let columns: Vec<u32> = tiles_in_bbox(&crossing, 3).map(|t| t.x).collect();
        assert_eq!(columns, (0..8).collect::<Vec<u32>>());
    }

    #[test]
    fn tiles_in_bbox_world() {
        let world = bbox(-180.0, -90.0, 180.0, 90.0);
        assert_eq!(
            tiles_in_bbox(&world, 0).collect::<Vec<_>>(),
            vec![tile(0, 0, 0)]
        );
        assert_eq!(tiles_in_bbox(&world, 3).count(), 64);
        assert_eq!(tile_range(&world, 3), (0, 0, 7, 7));
    }

    #[test]
    fn tiles_in_bbox_is_lazy_at_zoom_24() {
        let world = bbox(-180.0, -90.0, 180.0, 90.0);
        let first: Vec<TileCoord> = tiles_in_bbox(&world, 24).take(3).collect();
        assert_eq!(first, vec![tile(24, 0, 0), tile(24, 1, 0), tile(24, 2, 0)]);
    }

    #[test]
    fn tiles_in_bbox_inverted_latitudes_yield_nothing() {
        let inverted = bbox(0.0, 10.0, 1.0, 5.0);
        assert_eq!(tiles_in_bbox(&inverted, 4).count(), 0);
    }

    #[test]
    fn tile_bounds_give_that_tile_alone() {
        let size_24 = u64::from(TileCoord::matrix_size(24));
        let tiles = [
            tile(0, 0, 0),
            tile(1, 1, 0),
            tile(5, 31, 31),
            tile(10, 869, 391),
            tile(24, size_24 - 1, 0),
            tile(24, 12_345_678, 6_543_210),
        ];
        // Rows next to the poles, where a latitude step moves y the most.
        let near_poles = (0..50).chain(size_24 - 50..size_24).map(|y| tile(24, 5, y));
        for expected in tiles.into_iter().chain(near_poles) {
            let bounds = expected.bounds_lonlat();
            let (x, y) = (expected.x, expected.y);
            assert_eq!(
                tile_range(&bounds, expected.z),
                (x, y, x, y),
                "range of {expected}"
            );
            let found: Vec<TileCoord> = tiles_in_bbox(&bounds, expected.z).collect();
            assert_eq!(found, vec![expected], "tiles in the bounds of {expected}");
        }
    }

    #[test]
    fn tile_range_keeps_overlap_beyond_snap() {
        // 1e-7° south of the equator is about 1.1 cm, far more than the edge snap.
        let just_south = bbox(10.0, -1e-7, 20.0, 10.0);
        assert_eq!(tile_range(&just_south, 1), (1, 0, 1, 1));
        let on_equator = bbox(10.0, 0.0, 20.0, 10.0);
        assert_eq!(tile_range(&on_equator, 1), (1, 0, 1, 0));
    }

    #[test]
    fn tile_range_of_point_box() {
        let point = bbox(125.7625, 39.0392, 125.7625, 39.0392);
        assert_eq!(tile_range(&point, 10), (869, 391, 869, 391));
    }

    #[test]
    fn zoom_24_limits_and_out_of_range() {
        let last = (1u64 << 24) - 1;
        assert!(TileCoord::new(24, last, last).is_ok());
        assert!(TileCoord::from_tms(24, last, last).is_ok());

        let cases = [
            (25, 0, 0, TileError::ZoomOutOfRange(25)),
            (256, 0, 0, TileError::ZoomOutOfRange(256)),
            (
                24,
                last + 1,
                0,
                TileError::CoordOutOfRange {
                    axis: 'x',
                    value: last + 1,
                    z: 24,
                    limit: last + 1,
                },
            ),
            (
                3,
                0,
                8,
                TileError::CoordOutOfRange {
                    axis: 'y',
                    value: 8,
                    z: 3,
                    limit: 8,
                },
            ),
            (
                0,
                u64::MAX,
                0,
                TileError::CoordOutOfRange {
                    axis: 'x',
                    value: u64::MAX,
                    z: 0,
                    limit: 1,
                },
            ),
        ];
        for (z, x, y, expected) in cases {
            assert_eq!(
                TileCoord::new(z, x, y),
                Err(expected.clone()),
                "new({z}, {x}, {y})"
            );
            assert_eq!(
                TileCoord::from_tms(z, x, y),
                Err(expected),
                "from_tms({z}, {x}, {y})"
            );
        }
    }

    #[test]
    fn error_messages_name_the_valid_range() {
        let zoom = TileCoord::new(25, 0, 0).expect_err("zoom 25 is out of range");
        assert_eq!(
            zoom.to_string(),
            "zoom 25 is out of range: use a zoom from 0 to 24, the levels of WebMercatorQuad"
        );
        let column = TileCoord::new(3, 8, 0).expect_err("x = 8 is out of range at zoom 3");
        assert_eq!(
            column.to_string(),
            "tile x = 8 is out of range at zoom 3: use a value from 0 to 7"
        );
    }

    #[test]
    fn parent_and_children() {
        assert_eq!(tile(0, 0, 0).parent(), None);
        assert_eq!(
            tile(0, 0, 0).children(),
            [tile(1, 0, 0), tile(1, 1, 0), tile(1, 0, 1), tile(1, 1, 1)]
        );

        let parent = tile(10, 869, 391);
        let children = parent.children();
        for child in children {
            assert_eq!(child.parent(), Some(parent), "parent of {child}");
        }

        let bounds = parent.bounds_mercator();
        let north_west = children[0].bounds_mercator();
        let south_east = children[3].bounds_mercator();
        assert_eq!(north_west.min_x, bounds.min_x);
        assert_eq!(north_west.max_y, bounds.max_y);
        assert_eq!(south_east.max_x, bounds.max_x);
        assert_eq!(south_east.min_y, bounds.min_y);
    }

    #[test]
    fn center_lonlat_of_tiles() {
        let (lon, lat) = tile(0, 0, 0).center_lonlat();
        assert_close(lon, 0.0, 1e-12);
        assert_close(lat, 0.0, 1e-12);

        // The centre of 1/0/0 lies at y = ORIGIN_SHIFT / 2, the north edge of row 1 at zoom 2.
        let (lon, lat) = tile(1, 0, 0).center_lonlat();
        assert_close(lon, -90.0, 1e-12);
        assert_close(lat, 66.513_260_443_111_86, 1e-12);
    }

    #[test]
    fn buffered_bounds_grow_each_side() {
        let width = ORIGIN_SHIFT / 4.0;
        let buffered = tile(3, 7, 3).buffered_bounds_mercator(0.25);
        let expected = bbox(
            ORIGIN_SHIFT - 1.25 * width,
            -0.25 * width,
            ORIGIN_SHIFT + 0.25 * width,
            1.25 * width,
        );
        assert_bbox_close(&buffered, &expected, 1e-6);
        assert_eq!(
            tile(3, 7, 3).buffered_bounds_mercator(0.0),
            tile(3, 7, 3).bounds_mercator()
        );
    }

    #[test]
    fn split_buffered_tile_at_east_edge() {
        let width = ORIGIN_SHIFT / 4.0;
        let parts = tile(3, 7, 3)
            .buffered_bounds_mercator(0.25)
            .split_at_antimeridian_mercator();
        assert_eq!(parts.len(), 2);

        let (east, east_offset) = parts[0];
        assert_eq!(east_offset, 0.0);
        assert_close(east.min_x, ORIGIN_SHIFT - 1.25 * width, 1e-6);
        assert_eq!(east.max_x, ORIGIN_SHIFT);

        let (west, west_offset) = parts[1];
        assert_eq!(west_offset, 2.0 * ORIGIN_SHIFT);
        assert_eq!(west.min_x, -ORIGIN_SHIFT);
        assert_close(west.max_x, -ORIGIN_SHIFT + 0.25 * width, 1e-6);
        assert_close(west.min_y, -0.25 * width, 1e-6);
        assert_close(west.max_y, 1.25 * width, 1e-6);
    }

    #[test]
    fn split_buffered_tile_at_west_edge() {
        let width = ORIGIN_SHIFT / 4.0;
        let parts = tile(3, 0, 3)
            .buffered_bounds_mercator(0.25)
            .split_at_antimeridian_mercator();
        let offsets: Vec<f64> = parts.iter().map(|(_, offset)| *offset).collect();
        assert_eq!(offsets, vec![-2.0 * ORIGIN_SHIFT, 0.0]);
        assert_close(parts[0].0.min_x, ORIGIN_SHIFT - 0.25 * width, 1e-6);
        assert_eq!(parts[0].0.max_x, ORIGIN_SHIFT);
        assert_eq!(parts[1].0.min_x, -ORIGIN_SHIFT);
        assert_close(parts[1].0.max_x, -ORIGIN_SHIFT + 1.25 * width, 1e-6);
    }

    #[test]
    fn split_box_wider_than_world() {
        let parts = tile(0, 0, 0)
            .buffered_bounds_mercator(0.1)
            .split_at_antimeridian_mercator();
        let offsets: Vec<f64> = parts.iter().map(|(_, offset)| *offset).collect();
        assert_eq!(offsets, vec![-2.0 * ORIGIN_SHIFT, 0.0, 2.0 * ORIGIN_SHIFT]);
        assert_close(parts[0].0.min_x, 0.8 * ORIGIN_SHIFT, 1e-6);
        assert_eq!(parts[1].0.min_x, -ORIGIN_SHIFT);
        assert_eq!(parts[1].0.max_x, ORIGIN_SHIFT);
        assert_close(parts[2].0.max_x, -0.8 * ORIGIN_SHIFT, 1e-6);
    }

    #[test]
    fn split_inside_world_returns_itself() {
        for inside in [
            tile(0, 0, 0).bounds_mercator(),
            tile(3, 7, 3).bounds_mercator(),
        ] {
            assert_eq!(inside.split_at_antimeridian_mercator(), vec![(inside, 0.0)]);
        }
    }

    #[test]
    fn split_non_finite_box_yields_nothing() {
        let infinite = bbox(f64::NEG_INFINITY, 0.0, 0.0, 1.0);
        assert!(infinite.split_at_antimeridian_mercator().is_empty());
    }

    #[test]
    fn bbox_intersection_cases() {
        let unit = bbox(0.0, 0.0, 1.0, 1.0);
        let cases = [
            (bbox(0.5, 0.5, 2.0, 2.0), Some(bbox(0.5, 0.5, 1.0, 1.0))),
            (bbox(0.2, 0.2, 0.4, 0.4), Some(bbox(0.2, 0.2, 0.4, 0.4))),
            (bbox(1.0, 0.0, 2.0, 1.0), Some(bbox(1.0, 0.0, 1.0, 1.0))),
            (bbox(1.5, 0.0, 2.0, 1.0), None),
            (bbox(0.0, -2.0, 1.0, -0.5), None),
        ];
        for (other, expected) in cases {
            assert_eq!(
                unit.intersects(&other),
                expected.is_some(),
                "{other:?} intersects"
            );
            assert_eq!(
                unit.intersection(&other),
                expected,
                "intersection with {other:?}"
            );
            assert_eq!(
                other.intersection(&unit),
                expected,
                "{other:?} intersection"
            );
        }
        assert_eq!(unit.width(), 1.0);
        assert_eq!(bbox(0.0, -2.0, 1.0, -0.5).height(), 1.5);
    }

    #[test]
    fn resolution_at_zoom_0() {
        assert_close(resolution(0, 256), 156_543.033_928_040_97, 1e-9);
        assert_close(resolution(0, 512), 78_271.516_964_020_48, 1e-9);
        for z in 0..MAX_ZOOM {
            // A 512-pixel tile at z has the pixel size of a 256-pixel tile at z + 1.
            assert_close(resolution(z, 512), resolution(z + 1, 256), 1e-12);
        }
    }

    #[test]
    fn zoom_for_resolution_inverts_resolution() {
        for tile_size in [256, 512] {
            for z in [0, 1, 10, 18, 24] {
                let zoom = zoom_for_resolution(resolution(z, tile_size), tile_size);
                assert_close(zoom, f64::from(z), 1e-9);
            }
        }
        // 1 m per pixel falls between zoom 17 (1.19 m) and zoom 18 (0.60 m) for 256 pixels.
        assert_close(zoom_for_resolution(1.0, 256), 17.256_199_785_269_995, 1e-9);
    }

    #[test]
    fn scale_denominator_at_zoom_0() {
        assert_close(scale_denominator(0, 256), 559_082_264.028_717_8, 1e-6);
        assert_close(scale_denominator(0, 512), 279_541_132.014_358_9, 1e-6);
    }
}
