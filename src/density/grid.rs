//! Aggregation cells laid out in Web Mercator pixels, so a cell has the same size on screen
//! at every zoom.
//!
//! H3 (the `h3o` crate) was the alternative. Its resolutions step by a factor of about 2.65
//! in edge length, not the factor 2 of a zoom level, and its cells change shape and
//! on-screen size with latitude in Web Mercator. A grid laid out in the zoom's own pixel
//! space instead follows the zoom exactly, and lines up across tile borders because every
//! tile of a zoom uses the same global grid.
//!
//! Coordinates here are global pixels of the zoom: `x = fraction * 256 * 2^z`, y down.

use super::options::GridShape;

const SQRT_3: f64 = 1.732_050_807_568_877_2;

/// A cell grid at one zoom.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    shape: GridShape,
    /// Cell width in pixels: the side of a square, or the flat-to-flat width of a hexagon.
    width: f64,
}

/// A cell by its integer coordinates: column and row for squares, axial (q, r) for hexagons.
pub(super) type Cell = (i64, i64);

impl Grid {
    pub(super) fn new(shape: GridShape, cell_size: u32) -> Self {
        Self {
            shape,
            width: f64::from(cell_size),
        }
    }

    /// Distance from a cell's centre to its farthest point, in pixels.
    pub(super) fn circumradius(&self) -> f64 {
        match self.shape {
            GridShape::Square => self.width * std::f64::consts::FRAC_1_SQRT_2,
            // Pointy-top hexagons: flat-to-flat width is sqrt(3) times the circumradius.
            GridShape::Hexagon => self.width / SQRT_3,
        }
    }

    /// Returns the cell that contains the pixel position: the cell with the nearest centre.
    pub(super) fn cell_at(&self, x: f64, y: f64) -> Cell {
        match self.shape {
            GridShape::Square => (
                (x / self.width).floor() as i64,
                (y / self.width).floor() as i64,
            ),
            GridShape::Hexagon => {
                let size = self.circumradius();
                let q = (SQRT_3 / 3.0 * x - y / 3.0) / size;
                let r = (2.0 / 3.0 * y) / size;
                cube_round(q, r)
            }
        }
    }

    /// Returns the centre of a cell in pixels.
    pub(super) fn centre(&self, cell: Cell) -> (f64, f64) {
        let (a, b) = (cell.0 as f64, cell.1 as f64);
        match self.shape {
            GridShape::Square => ((a + 0.5) * self.width, (b + 0.5) * self.width),
            GridShape::Hexagon => {
                let size = self.circumradius();
                (size * SQRT_3 * (a + b / 2.0), size * 1.5 * b)
            }
        }
    }

    /// Returns the corners of a cell in pixels, clockwise on screen (y down).
    pub(super) fn corners(&self, cell: Cell) -> Vec<(f64, f64)> {
        let (cx, cy) = self.centre(cell);
        match self.shape {
            GridShape::Square => {
                let h = self.width / 2.0;
                vec![
                    (cx - h, cy - h),
                    (cx + h, cy - h),
                    (cx + h, cy + h),
                    (cx - h, cy + h),
                ]
            }
            GridShape::Hexagon => {
                let size = self.circumradius();
                (0..6)
                    .map(|k| {
                        let angle = (60.0 * f64::from(k) - 90.0).to_radians();
                        (cx + size * angle.cos(), cy + size * angle.sin())
                    })
                    .collect()
            }
        }
    }
}

/// Rounds fractional axial coordinates to the hexagon that contains them.
fn cube_round(q: f64, r: f64) -> Cell {
    let s = -q - r;
    let (mut rq, mut rr, rs) = (q.round(), r.round(), s.round());
    let (dq, dr, ds) = ((rq - q).abs(), (rr - r).abs(), (rs - s).abs());
    if dq > dr && dq > ds {
        rq = -rr - rs;
    } else if dr > ds {
        rr = -rq - rs;
    }
    (rq as i64, rr as i64)
}

/// Packs a cell into a feature id that is the same in every tile the cell appears in.
pub(super) fn cell_id(cell: Cell) -> u64 {
    let q = (cell.0 + (1 << 31)) as u64 & 0xFFFF_FFFF;
    let r = (cell.1 + (1 << 31)) as u64 & 0xFFFF_FFFF;
    (q << 32) | r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
        (a.0 - b.0).hypot(a.1 - b.1)
    }

    #[test]
    fn points_go_to_the_nearest_centre() {
        for shape in [GridShape::Hexagon, GridShape::Square] {
            let grid = Grid::new(shape, 32);
            for i in 0..2000 {
                let x = f64::from(i * 37 % 1000) + f64::from(i) * 0.013;
                let y = f64::from(i * 91 % 1000) + f64::from(i) * 0.007;
                let cell = grid.cell_at(x, y);
                let own = distance((x, y), grid.centre(cell));
                assert!(
                    own <= grid.circumradius() + 1e-9,
                    "{shape:?} ({x}, {y}) is {own} from its centre"
                );
                if shape == GridShape::Hexagon {
                    for (dq, dr) in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)] {
                        let other = distance((x, y), grid.centre((cell.0 + dq, cell.1 + dr)));
                        assert!(own <= other + 1e-9, "({x}, {y}) is nearer a neighbour");
                    }
                }
            }
        }
    }

    #[test]
    fn corners_surround_the_centre() {
        let grid = Grid::new(GridShape::Hexagon, 30);
        let cell = (3, 5);
        let centre = grid.centre(cell);
        for corner in grid.corners(cell) {
            assert!((distance(corner, centre) - grid.circumradius()).abs() < 1e-9);
        }
        let square = Grid::new(GridShape::Square, 16);
        assert_eq!(square.centre((0, 1)), (8.0, 24.0));
        assert_eq!(square.cell_at(15.9, 16.0), (0, 1));
    }

    #[test]
    fn cell_ids_are_distinct() {
        let ids: std::collections::HashSet<u64> =
            [(0, 0), (-1, 0), (0, -1), (1, 0), (0, 1), (-5, 7)]
                .into_iter()
                .map(cell_id)
                .collect();
        assert_eq!(ids.len(), 6);
    }
}
