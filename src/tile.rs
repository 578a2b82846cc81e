//! Tile maths for the OGC WebMercatorQuad tile matrix set (EPSG:3857).

use thiserror::Error;

/// The deepest zoom level served.
pub const MAX_ZOOM: u8 = 24;
/// The latitude at which Web Mercator is cut off so that the world is square.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;
/// Semi-major axis of WGS 84, the sphere radius of Web Mercator, in metres.
pub const EARTH_RADIUS: f64 = 6_378_137.0;
/// Half the width of the Web Mercator world, in metres.
pub const ORIGIN_SHIFT: f64 = std::f64::consts::PI * EARTH_RADIUS;

#[derive(Debug, Error, PartialEq)]
pub enum TileError {
    #[error("zoom {0} is out of range: WebMercatorQuad has zooms 0 to 24")]
    ZoomOutOfRange(u32),
    #[error("{axis} = {value} is out of range at zoom {z}: it must be below {limit}")]
    CoordOutOfRange { axis: char, value: u64, z: u8, limit: u64 },
}

/// A tile in XYZ addressing: `y` counts rows from the north.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

/// An axis-aligned box, in metres (EPSG:3857) or degrees (EPSG:4326) as its use says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

// TODO: implemented on the tile-maths branch.
