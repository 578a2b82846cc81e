//! Clipping of lines and polygons to the buffered tile, in tile coordinates.
//!
//! Lines are cut segment by segment (Liang–Barsky). Polygon rings are first cut with
//! Sutherland–Hodgman, which is exact and linear in the number of points, and the result then
//! goes through `geo`'s `BooleanOps` intersection with the rectangle. That second step removes
//! the zero-width bridges that Sutherland–Hodgman leaves along the rectangle where a concave
//! ring leaves and re-enters it, so every output polygon is valid. Running `BooleanOps` alone
//! on the full geometry would cost more, and its snapping grid scales with the input's extent,
//! which for a continent-sized polygon at zoom 22 is coarser than a tile unit.

use geo::{BooleanOps, BoundingRect, Coord, LineString, Polygon, Rect};

/// An axis-aligned clipping rectangle in tile coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ClipRect {
    pub(super) min: Coord<f64>,
    pub(super) max: Coord<f64>,
}

impl ClipRect {
    pub(super) fn contains(&self, coord: Coord<f64>) -> bool {
        coord.x >= self.min.x
            && coord.x <= self.max.x
            && coord.y >= self.min.y
            && coord.y <= self.max.y
    }

    fn contains_rect(&self, rect: &Rect<f64>) -> bool {
        self.contains(rect.min()) && self.contains(rect.max())
    }

    fn intersects_rect(&self, rect: &Rect<f64>) -> bool {
        rect.min().x <= self.max.x
            && rect.max().x >= self.min.x
            && rect.min().y <= self.max.y
            && rect.max().y >= self.min.y
    }

    fn to_polygon(self) -> Polygon<f64> {
        Rect::new(self.min, self.max).to_polygon()
    }
}

/// Returns the parts of a line inside the rectangle. A line that leaves and re-enters the
/// rectangle gives several parts.
pub(super) fn clip_line(line: &LineString<f64>, rect: &ClipRect) -> Vec<LineString<f64>> {
    if let Some(bounds) = line.bounding_rect() {
        if rect.contains_rect(&bounds) {
            return vec![line.clone()];
        }
        if !rect.intersects_rect(&bounds) {
            return Vec::new();
        }
    }
    let mut parts = Vec::new();
    let mut current: Vec<Coord<f64>> = Vec::new();
    for segment in line.lines() {
        let Some((start, end)) = clip_segment(segment.start, segment.end, rect) else {
            flush_part(&mut current, &mut parts);
            continue;
        };
        if current.last() != Some(&start) {
            flush_part(&mut current, &mut parts);
            current.push(start);
        }
        current.push(end);
        if end != segment.end {
            // The segment leaves the rectangle.
            flush_part(&mut current, &mut parts);
        }
    }
    flush_part(&mut current, &mut parts);
    parts
}

fn flush_part(current: &mut Vec<Coord<f64>>, parts: &mut Vec<LineString<f64>>) {
    if current.len() >= 2 {
        parts.push(LineString::new(std::mem::take(current)));
    } else {
        current.clear();
    }
}

/// Clips one segment with Liang–Barsky. Endpoints inside the rectangle are returned exactly,
/// so consecutive clipped segments join.
fn clip_segment(
    start: Coord<f64>,
    end: Coord<f64>,
    rect: &ClipRect,
) -> Option<(Coord<f64>, Coord<f64>)> {
    let delta = end - start;
    let mut enter = 0.0_f64;
    let mut leave = 1.0_f64;
    let edges = [
        (-delta.x, start.x - rect.min.x),
        (delta.x, rect.max.x - start.x),
        (-delta.y, start.y - rect.min.y),
        (delta.y, rect.max.y - start.y),
    ];
    for (direction, distance) in edges {
        if direction == 0.0 {
            if distance < 0.0 {
                return None;
            }
            continue;
        }
        let t = distance / direction;
        if direction < 0.0 {
            if t > leave {
                return None;
            }
            enter = enter.max(t);
        } else {
            if t < enter {
                return None;
            }
            leave = leave.min(t);
        }
    }
    let clipped_start = if enter > 0.0 {
        start + delta * enter
    } else {
        start
    };
    let clipped_end = if leave < 1.0 {
        start + delta * leave
    } else {
        end
    };
    Some((clipped_start, clipped_end))
}

/// Returns the parts of a polygon inside the rectangle, as valid polygons.
pub(super) fn clip_polygon(polygon: &Polygon<f64>, rect: &ClipRect) -> Vec<Polygon<f64>> {
    let Some(bounds) = polygon.exterior().bounding_rect() else {
        return Vec::new();
    };
    if rect.contains_rect(&bounds) {
        return vec![polygon.clone()];
    }
    if !rect.intersects_rect(&bounds) {
        return Vec::new();
    }
    let exterior = clip_ring(polygon.exterior(), rect);
    if exterior.0.len() < 4 {
        return Vec::new();
    }
    let holes = polygon
        .interiors()
        .iter()
        .map(|ring| clip_ring(ring, rect))
        .filter(|ring| ring.0.len() >= 4)
        .collect();
    Polygon::new(exterior, holes)
        .intersection(&rect.to_polygon())
        .0
}

/// Clips a closed ring with Sutherland–Hodgman. The result keeps the ring's orientation and is
/// closed, or is empty when nothing of the ring is inside.
fn clip_ring(ring: &LineString<f64>, rect: &ClipRect) -> LineString<f64> {
    // Work on the open ring: the closing point repeats the first.
    let mut points: Vec<Coord<f64>> = ring.0.clone();
    if points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    let edges = [
        Edge::West(rect.min.x),
        Edge::East(rect.max.x),
        Edge::South(rect.min.y),
        Edge::North(rect.max.y),
    ];
    for edge in edges {
        if points.is_empty() {
            break;
        }
        let mut output = Vec::with_capacity(points.len() + 4);
        let mut previous = points[points.len() - 1];
        for &current in &points {
            match (edge.keeps(previous), edge.keeps(current)) {
                (true, true) => output.push(current),
                (true, false) => output.push(edge.intersect(previous, current)),
                (false, true) => {
                    output.push(edge.intersect(previous, current));
                    output.push(current);
                }
                (false, false) => {}
            }
            previous = current;
        }
        points = output;
    }
    if points.len() < 3 {
        return LineString::new(Vec::new());
    }
    points.push(points[0]);
    LineString::new(points)
}

/// One side of the clipping rectangle, with its coordinate. "South" is the side with the
/// smaller y, whichever way y points.
#[derive(Debug, Clone, Copy)]
enum Edge {
    West(f64),
    East(f64),
    South(f64),
    North(f64),
}

impl Edge {
    /// Returns whether `coord` is on the rectangle's side of the edge.
    fn keeps(self, coord: Coord<f64>) -> bool {
        match self {
            Edge::West(x) => coord.x >= x,
            Edge::East(x) => coord.x <= x,
            Edge::South(y) => coord.y >= y,
            Edge::North(y) => coord.y <= y,
        }
    }

    /// Returns where the segment from `a` to `b` crosses the edge. The caller guarantees
    /// that the edge keeps exactly one of `a` and `b`.
    fn intersect(self, a: Coord<f64>, b: Coord<f64>) -> Coord<f64> {
        match self {
            Edge::West(x) | Edge::East(x) => {
                let t = (x - a.x) / (b.x - a.x);
                Coord {
                    x,
                    y: a.y + t * (b.y - a.y),
                }
            }
            Edge::South(y) | Edge::North(y) => {
                let t = (y - a.y) / (b.y - a.y);
                Coord {
                    x: a.x + t * (b.x - a.x),
                    y,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use geo::{Area, Validation, line_string, polygon};

    use super::*;

    const RECT: ClipRect = ClipRect {
        min: Coord { x: 0.0, y: 0.0 },
        max: Coord { x: 10.0, y: 10.0 },
    };

    #[test]
    fn clip_line_cases() {
        let cases: [(LineString<f64>, Vec<LineString<f64>>); 5] = [
            // Inside: unchanged.
            (
                line_string![(x: 1.0, y: 1.0), (x: 5.0, y: 5.0)],
                vec![line_string![(x: 1.0, y: 1.0), (x: 5.0, y: 5.0)]],
            ),
            // Outside: nothing.
            (line_string![(x: 20.0, y: 20.0), (x: 30.0, y: 20.0)], vec![]),
            // Crossing: cut at both edges.
            (
                line_string![(x: -5.0, y: 5.0), (x: 15.0, y: 5.0)],
                vec![line_string![(x: 0.0, y: 5.0), (x: 10.0, y: 5.0)]],
            ),
            // Leaving and re-entering: two parts.
            (
                line_string![(x: 2.0, y: 2.0), (x: 2.0, y: 20.0), (x: 8.0, y: 20.0), (x: 8.0, y: 2.0)],
                vec![
                    line_string![(x: 2.0, y: 2.0), (x: 2.0, y: 10.0)],
                    line_string![(x: 8.0, y: 10.0), (x: 8.0, y: 2.0)],
                ],
            ),
            // Entering and continuing inside: one part with the entry point.
            (
                line_string![(x: -10.0, y: 5.0), (x: 5.0, y: 5.0), (x: 5.0, y: 8.0)],
                vec![line_string![(x: 0.0, y: 5.0), (x: 5.0, y: 5.0), (x: 5.0, y: 8.0)]],
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(clip_line(&line, &RECT), expected, "line {line:?}");
        }
    }

    #[test]
    fn clip_polygon_covering_rect_gives_rect() {
        let big = polygon![(x: -100.0, y: -100.0), (x: 100.0, y: -100.0), (x: 100.0, y: 100.0), (x: -100.0, y: 100.0)];
        let clipped = clip_polygon(&big, &RECT);
        assert_eq!(clipped.len(), 1);
        assert!((clipped[0].unsigned_area() - 100.0).abs() < 1e-9);
        assert!(clipped[0].is_valid());
    }

    #[test]
    fn clip_polygon_splits_concave_ring() {
        // An arch whose top is outside: the part inside is the two legs, which
        // Sutherland–Hodgman alone would join with a bridge along y = 10.
        let arch = polygon![
            (x: 1.0, y: 5.0), (x: 3.0, y: 5.0), (x: 3.0, y: 12.0), (x: 7.0, y: 12.0),
            (x: 7.0, y: 5.0), (x: 9.0, y: 5.0), (x: 9.0, y: 15.0), (x: 1.0, y: 15.0),
        ];
        let clipped = clip_polygon(&arch, &RECT);
        assert_eq!(clipped.len(), 2, "{clipped:?}");
        for leg in &clipped {
            assert!((leg.unsigned_area() - 10.0).abs() < 1e-9, "{leg:?}");
            assert!(leg.is_valid());
        }
    }

    #[test]
    fn clip_polygon_keeps_connected_parts_together() {
        let cases = [
            // A C shape open to the right, cut through both arms.
            (
                polygon![
                    (x: 1.0, y: 1.0), (x: 15.0, y: 1.0), (x: 15.0, y: 3.0), (x: 3.0, y: 3.0),
                    (x: 3.0, y: 7.0), (x: 15.0, y: 7.0), (x: 15.0, y: 9.0), (x: 1.0, y: 9.0),
                ],
                9.0 * 2.0 * 2.0 + 2.0 * 4.0,
            ),
            // An L shape leaving through the left and the bottom edge.
            (
                polygon![
                    (x: -5.0, y: 2.0), (x: 2.0, y: 2.0), (x: 2.0, y: -5.0), (x: 4.0, y: -5.0),
                    (x: 4.0, y: 4.0), (x: -5.0, y: 4.0),
                ],
                4.0 * 2.0 + 2.0 * 2.0,
            ),
        ];
        for (polygon, area) in cases {
            let clipped = clip_polygon(&polygon, &RECT);
            assert_eq!(clipped.len(), 1, "{clipped:?}");
            assert!(clipped[0].is_valid(), "{clipped:?}");
            assert!(
                (clipped[0].unsigned_area() - area).abs() < 1e-9,
                "{clipped:?}"
            );
        }
    }

    #[test]
    fn clip_polygon_outside_gives_nothing() {
        let far = polygon![(x: 20.0, y: 20.0), (x: 30.0, y: 20.0), (x: 30.0, y: 30.0)];
        assert!(clip_polygon(&far, &RECT).is_empty());
    }

    #[test]
    fn clip_ring_keeps_orientation() {
        let clockwise = line_string![
            (x: -5.0, y: -5.0), (x: -5.0, y: 15.0), (x: 15.0, y: 15.0), (x: 15.0, y: -5.0), (x: -5.0, y: -5.0)
        ];
        let clipped = clip_ring(&clockwise, &RECT);
        let polygon = Polygon::new(clipped, vec![]);
        assert!(polygon.signed_area() < 0.0);
        assert!((polygon.unsigned_area() - 100.0).abs() < 1e-9);
    }
}
