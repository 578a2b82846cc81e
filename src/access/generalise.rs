//! Generalisation of sensitive points: each point moves to the centre of its cell in a grid
//! of fixed ground size, so the same point always lands on the same spot and averaging many
//! responses recovers nothing finer than the cell.

use crate::tile::{self, Bbox};

/// Metres per degree of latitude (a sphere of the WGS 84 equatorial radius).
const METRES_PER_DEGREE: f64 = tile::EARTH_RADIUS * std::f64::consts::PI / 180.0;

/// Most grid rows that [`Grid::cover`] visits one by one.
const MAX_COVER_ROWS: f64 = 10_000.0;

/// A grid of cells about `cell_m` metres on a side: rows of equal latitude height, each cut
/// into columns whose width in degrees follows the latitude of the row's centre.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    cell_m: f64,
}

impl Grid {
    pub fn new(cell_m: f64) -> Self {
        Self {
            cell_m: cell_m.max(1.0),
        }
    }

    fn row_height(self) -> f64 {
        self.cell_m / METRES_PER_DEGREE
    }

    /// Returns the row of `lat` and the latitude of its centre.
    fn row(self, lat: f64) -> (f64, f64) {
        let height = self.row_height();
        let row = (lat / height).floor();
        (row, (row + 0.5) * height)
    }

    /// Returns the column width in degrees of the row centred at `centre_lat`.
    fn column_width(self, centre_lat: f64) -> f64 {
        let cos = centre_lat.to_radians().cos().max(1e-6);
        (self.cell_m / (METRES_PER_DEGREE * cos)).min(360.0)
    }

    /// Returns the centre of the cell that contains (`lon`, `lat`).
    pub fn snap(self, lon: f64, lat: f64) -> (f64, f64) {
        let (_, centre_lat) = self.row(lat);
        let width = self.column_width(centre_lat);
        let column = (lon / width).floor();
        let centre_lon = (column + 0.5) * width;
        (centre_lon, centre_lat.clamp(-90.0, 90.0))
    }

    /// Returns `bounds` grown to contain every whole cell it touches, so that the bounds of a
    /// single point reveal no more than its cell.
    pub fn cover(self, bounds: &Bbox) -> Bbox {
        let height = self.row_height();
        let first_row = (bounds.min_y / height).floor();
        let last_row = (bounds.max_y / height).floor();
        let min_y = (first_row * height).max(-90.0);
        let max_y = ((last_row + 1.0) * height).min(90.0);
        let (mut min_x, mut max_x) = (f64::INFINITY, f64::NEG_INFINITY);
        if last_row - first_row < MAX_COVER_ROWS {
            // Each row has its own column width: take the cells the box touches in every row.
            let mut row = first_row;
            while row <= last_row {
                let width = self.column_width((row + 0.5) * height);
                min_x = min_x.min((bounds.min_x / width).floor() * width);
                max_x = max_x.max(((bounds.max_x / width).floor() + 1.0) * width);
                row += 1.0;
            }
        } else {
            // Too many rows to visit: columns of the widest row, one more on each side, hold
            // every row's cells.
            let widest_lat = min_y.abs().max(max_y.abs()).min(89.0);
            let width = self.column_width(widest_lat);
            min_x = ((bounds.min_x / width).floor() - 1.0) * width;
            max_x = ((bounds.max_x / width).floor() + 2.0) * width;
        }
        Bbox::new(min_x.max(-180.0), min_y, max_x.min(180.0), max_y)
    }
}

/// Returns `bounds` as a response without a key may show it for a source with sensitive
/// points: grown to whole grid cells.
pub fn generalised_bounds(bounds: &Bbox, cell_m: f64) -> Bbox {
    Grid::new(cell_m).cover(bounds)
}

/// Snaps a point given in the pixel coordinates of an MVT tile (`extent` pixels a side) and
/// returns the snapped point in the same coordinates, rounded to whole pixels.
pub(super) fn snap_tile_point(
    grid: Grid,
    tile_bounds: &Bbox,
    extent: u32,
    x: i64,
    y: i64,
) -> (i64, i64) {
    let extent = f64::from(extent.max(1));
    let mx = tile_bounds.min_x + x as f64 / extent * tile_bounds.width();
    let my = tile_bounds.max_y - y as f64 / extent * tile_bounds.height();
    let (lon, lat) = tile::mercator_to_lonlat(mx, my);
    let (lon, lat) = grid.snap(lon, lat);
    let (mx, my) = tile::lonlat_to_mercator(lon, lat);
    let px = (mx - tile_bounds.min_x) / tile_bounds.width() * extent;
    let py = (tile_bounds.max_y - my) / tile_bounds.height() * extent;
    (px.round() as i64, py.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ground distance in metres between two points, by the haversine formula.
    fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
        let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (b.0 - a.0).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * tile::EARTH_RADIUS * h.sqrt().asin()
    }

    #[test]
    fn snap_is_deterministic_and_within_a_cell() {
        let grid = Grid::new(1000.0);
        let points = [
            (126.9780, 37.5665),
            (-99.16, 47.02),
            (0.0, 0.0),
            (179.99, -60.5),
        ];
        for point in points {
            let snapped = grid.snap(point.0, point.1);
            assert_eq!(snapped, grid.snap(point.0, point.1), "{point:?}");
            // Half the diagonal of a 1 km cell is about 707 m.
            assert!(
                distance_m(point, snapped) < 720.0,
                "{point:?} -> {snapped:?}"
            );
            assert_eq!(
                grid.snap(snapped.0, snapped.1),
                snapped,
                "centre of {point:?}"
            );
        }
    }

    #[test]
    fn nearby_points_share_a_cell() {
        let grid = Grid::new(2000.0);
        let (lon, lat) = grid.snap(126.5, 39.5);
        // Points 100 m apart inside one cell land on the same centre.
        let a = grid.snap(lon - 0.0005, lat - 0.0005);
        let b = grid.snap(lon + 0.0005, lat + 0.0005);
        assert_eq!(a, b);
    }

    #[test]
    fn cover_grows_a_point_to_a_cell() {
        let grid = Grid::new(2000.0);
        let point = Bbox::new(126.123_456, 39.654_321, 126.123_456, 39.654_321);
        let covered = grid.cover(&point);
        assert!(covered.min_x <= point.min_x, "{covered:?}");
        assert!(covered.max_x >= point.max_x, "{covered:?}");
        assert!(covered.min_y <= point.min_y, "{covered:?}");
        assert!(covered.max_y >= point.max_y, "{covered:?}");
        assert!(covered.height() > 0.015, "{covered:?}");
        // Any point of the same cell gives the same bounds.
        let snapped = grid.snap(point.min_x, point.min_y);
        let other = Bbox::new(snapped.0, snapped.1, snapped.0, snapped.1);
        let covered_other = grid.cover(&other);
        assert!((covered.min_y - covered_other.min_y).abs() < 1e-12);
        assert!((covered.min_x - covered_other.min_x).abs() < 1e-12);
    }

    #[test]
    fn cover_holds_the_cell_of_every_point_inside() {
        let grid = Grid::new(2000.0);
        let boxes = [
            Bbox::new(126.573, 39.7499, 126.574, 39.7509),
            Bbox::new(126.0, 39.0, 127.5, 40.5),
            Bbox::new(-70.01, 79.99, -69.99, 80.01),
        ];
        for bbox in boxes {
            let covered = grid.cover(&bbox);
            for (fx, fy) in [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5), (0.0, 1.0), (1.0, 0.0)] {
                let lon = bbox.min_x + fx * bbox.width();
                let lat = bbox.min_y + fy * bbox.height();
                // The corners of the point's cell lie in the cover.
                let (centre_lon, centre_lat) = grid.snap(lon, lat);
                let half_height = grid.row_height() / 2.0;
                let half_width = grid.column_width(centre_lat) / 2.0;
                assert!(
                    covered.min_x <= centre_lon - half_width + 1e-9,
                    "{bbox:?} {covered:?}"
                );
                assert!(
                    covered.max_x >= centre_lon + half_width - 1e-9,
                    "{bbox:?} {covered:?}"
                );
                assert!(
                    covered.min_y <= centre_lat - half_height + 1e-9,
                    "{bbox:?} {covered:?}"
                );
                assert!(
                    covered.max_y >= centre_lat + half_height - 1e-9,
                    "{bbox:?} {covered:?}"
                );
            }
        }
    }

    #[test]
    fn tile_point_snaps_to_cell_centre() {
        let grid = Grid::new(2000.0);
        let coord = tile::lonlat_to_tile(126.5, 39.5, 8);
        let bounds = coord.bounds_mercator();
        let (x, y) = snap_tile_point(grid, &bounds, 4096, 1000, 2000);
        let again = snap_tile_point(grid, &bounds, 4096, 1001, 2000);
        // 1 pixel at z8 is about 30 m: both points fall in one 2 km cell, or in neighbours.
        assert!(
            (x - again.0).abs() <= 140,
            "x moved from {x} to {}",
            again.0
        );
        assert!(
            (y - again.1).abs() <= 140,
            "y moved from {y} to {}",
            again.1
        );
        assert_eq!((x, y), snap_tile_point(grid, &bounds, 4096, 1000, 2000));
    }
}
