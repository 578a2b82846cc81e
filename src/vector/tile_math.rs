//! Web Mercator tile bounds for the vector module.
//!
//! TODO: replace with `TileCoord::bounds_mercator`, `TileCoord::buffered_bounds_mercator`,
//! `Bbox::split_at_antimeridian_mercator` and `lonlat_to_mercator` from `crate::tile` once the
//! tile-maths branch is merged. These functions follow the same contracts.

use crate::tile::{Bbox, EARTH_RADIUS, MAX_LATITUDE, ORIGIN_SHIFT, TileCoord};

const WORLD_WIDTH: f64 = 2.0 * ORIGIN_SHIFT;

fn tile_width(z: u8) -> f64 {
    WORLD_WIDTH / f64::from(1_u32 << z)
}

/// Returns the tile's bounds in metres (EPSG:3857).
pub(super) fn bounds_mercator(tile: TileCoord) -> Bbox {
    let size = tile_width(tile.z);
    Bbox {
        min_x: -ORIGIN_SHIFT + f64::from(tile.x) * size,
        min_y: ORIGIN_SHIFT - f64::from(tile.y + 1) * size,
        max_x: -ORIGIN_SHIFT + f64::from(tile.x + 1) * size,
        max_y: ORIGIN_SHIFT - f64::from(tile.y) * size,
    }
}

/// Returns the tile's bounds in metres, grown on each side by `fraction` of the tile width
/// and not clamped to the world.
pub(super) fn buffered_bounds_mercator(tile: TileCoord, fraction: f64) -> Bbox {
    let bounds = bounds_mercator(tile);
    let buffer = fraction * tile_width(tile.z);
    Bbox {
        min_x: bounds.min_x - buffer,
        min_y: bounds.min_y - buffer,
        max_x: bounds.max_x + buffer,
        max_y: bounds.max_y + buffer,
    }
}

/// Splits a box that passes the antimeridian into parts inside the world, each with the x
/// offset to add to data found in that part. A box inside the world returns itself with
/// offset 0.
pub(super) fn split_at_antimeridian_mercator(bbox: &Bbox) -> Vec<(Bbox, f64)> {
    if !bbox.min_x.is_finite() || !bbox.max_x.is_finite() {
        return Vec::new();
    }
    if bbox.min_x >= -ORIGIN_SHIFT && bbox.max_x <= ORIGIN_SHIFT {
        return vec![(*bbox, 0.0)];
    }
    // World copy k spans [-ORIGIN_SHIFT + k * WORLD_WIDTH, ORIGIN_SHIFT + k * WORLD_WIDTH].
    let first = ((bbox.min_x + ORIGIN_SHIFT) / WORLD_WIDTH).floor() as i64;
    let last = (((bbox.max_x + ORIGIN_SHIFT) / WORLD_WIDTH).ceil() as i64 - 1).max(first);
    (first..=last)
        .map(|copy| {
            let offset = copy as f64 * WORLD_WIDTH;
            let part = Bbox {
                min_x: (bbox.min_x - offset).max(-ORIGIN_SHIFT),
                min_y: bbox.min_y,
                max_x: (bbox.max_x - offset).min(ORIGIN_SHIFT),
                max_y: bbox.max_y,
            };
            (part, offset)
        })
        .collect()
}

/// Converts degrees to Web Mercator metres, clamping latitude to ±`MAX_LATITUDE`.
pub(super) fn lonlat_to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE);
    let x = lon.to_radians() * EARTH_RADIUS;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * EARTH_RADIUS;
    (x, y)
}
