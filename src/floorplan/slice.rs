//! Cutting triangles with a horizontal plane and joining the cut segments into outlines.
//!
//! Plan coordinates are model units with x east and y north: glTF's X and -Z, because glTF
//! is Y up and right-handed.

use std::collections::HashMap;

use geo::{Area, BooleanOps, Buffer, Contains, Coord, LineString, MultiPolygon, Polygon};

use super::model::Triangle;

/// A directed cut segment in plan coordinates. For a closed, outward-facing mesh the solid
/// lies on the left of the direction, so outer rings run counter-clockwise.
pub(crate) type Segment = [Coord<f64>; 2];

/// Returns the plan position of a model point: x east, y north.
pub(crate) fn plan(p: [f64; 3]) -> Coord<f64> {
    Coord { x: p[0], y: -p[2] }
}

/// Cuts `triangles` with the plane Y = `height`. A vertex exactly on the plane counts as
/// above it, so a triangle that only touches the plane gives no segment and a mesh edge on
/// the plane is cut once.
pub(crate) fn cut(triangles: &[Triangle], height: f64) -> Vec<Segment> {
    let mut segments = Vec::new();
    for triangle in triangles {
        let above = triangle.map(|p| p[1] >= height);
        if above.iter().all(|&a| a) || above.iter().all(|&a| !a) {
            continue;
        }
        let mut points = Vec::with_capacity(2);
        for i in 0..3 {
            let (a, b) = (triangle[i], triangle[(i + 1) % 3]);
            if above[i] != above[(i + 1) % 3] {
                let t = (height - a[1]) / (b[1] - a[1]);
                points.push(plan([
                    a[0] + t * (b[0] - a[0]),
                    height,
                    a[2] + t * (b[2] - a[2]),
                ]));
            }
        }
        let [p, q] = [points[0], points[1]];
        // The cut runs along normal × up; with plan y = -z that gives (n.z, n.x) in plan
        // coordinates, which keeps the solid on the left.
        let normal = face_normal(triangle);
        let along = Coord {
            x: normal[2],
            y: normal[0],
        };
        let d = q - p;
        if d.x * along.x + d.y * along.y >= 0.0 {
            segments.push([p, q]);
        } else {
            segments.push([q, p]);
        }
    }
    segments
}

fn face_normal(t: &Triangle) -> [f64; 3] {
    let u = [t[1][0] - t[0][0], t[1][1] - t[0][1], t[1][2] - t[0][2]];
    let v = [t[2][0] - t[0][0], t[2][1] - t[0][1], t[2][2] - t[0][2]];
    [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ]
}

/// Outlines joined from cut segments.
#[derive(Debug, Default)]
pub(crate) struct Outlines {
    /// Closed rings, each with its first point repeated at the end.
    pub(crate) rings: Vec<LineString<f64>>,
    /// Chains that did not close, for example the cut of a single-sided wall surface.
    pub(crate) open: Vec<LineString<f64>>,
}

/// Joins segments into rings. Endpoints closer than `tolerance` are merged first, which
/// closes the cracks and T-junctions of real meshes. A segment that appears twice in one
/// direction (a duplicated triangle) is kept once. Two segments in opposite directions cancel
/// out, because they are the shared inner face of two touching solids.
pub(crate) fn join(segments: &[Segment], tolerance: f64) -> Outlines {
    let mut snap = Snapper::new(tolerance);
    let mut edges: HashMap<(usize, usize), usize> = HashMap::new();
    for [a, b] in segments {
        let (a, b) = (snap.vertex(*a), snap.vertex(*b));
        if a == b {
            continue;
        }
        if let Some(count) = edges.get_mut(&(b, a)) {
            *count -= 1;
            if *count == 0 {
                edges.remove(&(b, a));
            }
            continue;
        }
        edges.entry((a, b)).or_insert(1);
    }
    let mut outgoing: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut sorted: Vec<(usize, usize)> = edges.keys().copied().collect();
    sorted.sort_unstable();
    for &(a, b) in &sorted {
        outgoing.entry(a).or_default().push(b);
    }
    let mut incoming: HashMap<usize, usize> = HashMap::new();
    for &(_, b) in &sorted {
        *incoming.entry(b).or_default() += 1;
    }

    let mut outlines = Outlines::default();
    // Chains start where no edge arrives, so open chains are walked from their start; the
    // rest are rings and start anywhere.
    let mut starts: Vec<usize> = sorted
        .iter()
        .map(|&(a, _)| a)
        .filter(|a| !incoming.contains_key(a))
        .collect();
    starts.extend(sorted.iter().map(|&(a, _)| a));
    for start in starts {
        while outgoing.get(&start).is_some_and(|next| !next.is_empty()) {
            let mut chain = vec![start];
            let mut at = start;
            while let Some(next) = outgoing.get_mut(&at).and_then(Vec::pop) {
                chain.push(next);
                at = next;
                if at == start {
                    break;
                }
            }
            let coords: Vec<Coord<f64>> = chain.iter().map(|&v| snap.points[v]).collect();
            if chain.len() >= 4 && at == start {
                outlines.rings.push(LineString::new(coords));
            } else if chain.len() >= 2 {
                outlines.open.push(LineString::new(coords));
            }
        }
    }
    outlines
}

/// Merges points closer than a tolerance, through a grid of cells of that size.
struct Snapper {
    tolerance: f64,
    points: Vec<Coord<f64>>,
    cells: HashMap<(i64, i64), Vec<usize>>,
}

impl Snapper {
    fn new(tolerance: f64) -> Self {
        Self {
            tolerance: tolerance.max(1e-9),
            points: Vec::new(),
            cells: HashMap::new(),
        }
    }

    fn cell(&self, p: Coord<f64>) -> (i64, i64) {
        (
            (p.x / self.tolerance).floor() as i64,
            (p.y / self.tolerance).floor() as i64,
        )
    }

    fn vertex(&mut self, p: Coord<f64>) -> usize {
        let (cx, cy) = self.cell(p);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for &index in self.cells.get(&(cx + dx, cy + dy)).into_iter().flatten() {
                    let q = self.points[index];
                    if (q.x - p.x).hypot(q.y - p.y) <= self.tolerance {
                        return index;
                    }
                }
            }
        }
        self.points.push(p);
        let index = self.points.len() - 1;
        self.cells.entry((cx, cy)).or_default().push(index);
        index
    }
}

/// Turns rings into polygons: counter-clockwise rings are outer boundaries and clockwise
/// rings are holes of the smallest outer ring that contains them. Rings smaller than
/// `min_area` are dropped.
///
/// Returns the polygons and the clockwise rings that no outer ring contains. Those come from
/// surfaces that face inwards, such as a room modelled as single-sided walls.
pub(crate) fn polygons(
    rings: &[LineString<f64>],
    min_area: f64,
) -> (MultiPolygon<f64>, Vec<LineString<f64>>) {
    let mut outers: Vec<Polygon<f64>> = Vec::new();
    let mut holes = Vec::new();
    for ring in rings {
        let area = Polygon::new(ring.clone(), Vec::new()).signed_area();
        if area.abs() < min_area {
            continue;
        }
        if area > 0.0 {
            outers.push(Polygon::new(ring.clone(), Vec::new()));
        } else {
            holes.push(ring.clone());
        }
    }
    let mut orphans = Vec::new();
    for hole in holes {
        let probe = hole.0[0];
        let owner = outers
            .iter_mut()
            .filter(|outer| {
                outer.contains(&geo::Point::from(probe))
                    || outer.exterior().contains(&geo::Point::from(probe))
            })
            .min_by(|a, b| a.unsigned_area().total_cmp(&b.unsigned_area()));
        match owner {
            Some(owner) => owner.interiors_push(hole),
            None => orphans.push(hole),
        }
    }
    // Overlapping outer rings (a wall modelled as several solids) are merged.
    let merged = outers
        .into_iter()
        .fold(MultiPolygon::new(Vec::new()), |merged, polygon| {
            merged.union(&MultiPolygon::new(vec![polygon]))
        });
    (merged, orphans)
}

/// Thickens open chains into wall polygons `thickness` wide.
pub(crate) fn thicken(chains: &[LineString<f64>], thickness: f64) -> MultiPolygon<f64> {
    chains
        .iter()
        .filter(|chain| chain.0.len() >= 2)
        .fold(MultiPolygon::new(Vec::new()), |merged, chain| {
            merged.union(&chain.buffer(thickness / 2.0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the 12 outward-facing triangles of an axis-aligned box.
    pub(crate) fn box_triangles(min: [f64; 3], max: [f64; 3]) -> Vec<Triangle> {
        let corner = |i: usize| {
            [
                if i & 1 == 0 { min[0] } else { max[0] },
                if i & 2 == 0 { min[1] } else { max[1] },
                if i & 4 == 0 { min[2] } else { max[2] },
            ]
        };
        // Faces as corner indices, counter-clockwise seen from outside.
        let faces = [
            [0, 4, 6, 2], // -X
            [1, 3, 7, 5], // +X
            [0, 1, 5, 4], // -Y
            [2, 6, 7, 3], // +Y
            [0, 2, 3, 1], // -Z
            [4, 5, 7, 6], // +Z
        ];
        faces
            .iter()
            .flat_map(|f| {
                [
                    [corner(f[0]), corner(f[1]), corner(f[2])],
                    [corner(f[0]), corner(f[2]), corner(f[3])],
                ]
            })
            .collect()
    }

    #[test]
    fn box_cut_gives_one_counter_clockwise_ring() {
        let triangles = box_triangles([0.0, 0.0, -3.0], [2.0, 2.5, 0.0]);
        let outlines = join(&cut(&triangles, 1.2), 0.001);
        assert_eq!(outlines.rings.len(), 1, "{outlines:?}");
        assert!(outlines.open.is_empty());
        let area = Polygon::new(outlines.rings[0].clone(), Vec::new()).signed_area();
        // 2 m east by 3 m north (z from -3 to 0).
        assert!((area - 6.0).abs() < 1e-9, "area {area}");
    }

    #[test]
    fn touching_boxes_merge_into_one_outline() {
        let mut triangles = box_triangles([0.0, 0.0, -1.0], [2.0, 2.0, 0.0]);
        triangles.extend(box_triangles([2.0, 0.0, -1.0], [4.0, 2.0, 0.0]));
        let outlines = join(&cut(&triangles, 1.0), 0.001);
        let (merged, orphans) = polygons(&outlines.rings, 0.0);
        assert!(orphans.is_empty());
        assert_eq!(merged.0.len(), 1);
        assert!((merged.unsigned_area() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn cracks_and_duplicates_within_tolerance_are_closed() {
        let mut triangles = box_triangles([0.0, 0.0, -1.0], [1.0, 2.0, 0.0]);
        // A duplicated face and a crack: one corner moved by 2 mm.
        triangles.push(triangles[0]);
        triangles[3][1][0] += 0.002;
        let outlines = join(&cut(&triangles, 1.0), 0.005);
        assert_eq!(outlines.rings.len(), 1, "{outlines:?}");
        assert!(outlines.open.is_empty(), "{outlines:?}");
    }

    #[test]
    fn t_junctions_join_into_one_ring() {
        // The +X face of a box split at a vertex in the middle of its lower edge, which the
        // -Y face does not have: a T-junction.
        let (min, max) = ([0.0, 0.0, -2.0], [3.0, 2.0, 0.0]);
        let mut triangles: Vec<Triangle> = box_triangles(min, max)
            .into_iter()
            .filter(|t| t.iter().any(|p| (p[0] - max[0]).abs() > 1e-9))
            .collect();
        let middle = [max[0], min[1], -1.0];
        let (a, b, c, d) = (
            [max[0], min[1], min[2]],
            [max[0], max[1], min[2]],
            [max[0], max[1], max[2]],
            [max[0], min[1], max[2]],
        );
        triangles.extend([[a, b, middle], [middle, b, c], [middle, c, d]]);
        let outlines = join(&cut(&triangles, 1.0), 0.001);
        assert_eq!(outlines.rings.len(), 1, "{outlines:?}");
        assert!(outlines.open.is_empty(), "{outlines:?}");
        let area = Polygon::new(outlines.rings[0].clone(), Vec::new()).signed_area();
        assert!((area - 6.0).abs() < 1e-9, "area {area}");
    }

    #[test]
    fn hollow_box_gives_a_hole() {
        // A room of 4 x 3 m inside walls 0.2 m thick: the outer box faces out and the inner
        // box faces in.
        let mut triangles = box_triangles([0.0, 0.0, -3.4], [4.4, 2.5, 0.0]);
        let inner = box_triangles([0.2, 0.0, -3.2], [4.2, 2.5, -0.2]);
        triangles.extend(inner.iter().map(|t| [t[0], t[2], t[1]]));
        let outlines = join(&cut(&triangles, 1.2), 0.001);
        let (walls, orphans) = polygons(&outlines.rings, 0.0);
        assert!(orphans.is_empty());
        assert_eq!(walls.0.len(), 1);
        assert_eq!(walls.0[0].interiors().len(), 1);
        let hole = Polygon::new(walls.0[0].interiors()[0].clone(), Vec::new());
        assert!((hole.unsigned_area() - 12.0).abs() < 1e-9);
    }

    #[test]
    fn inward_facing_shell_gives_an_orphan_ring() {
        // A room of 4 x 3 m drawn as single-sided walls that face into the room.
        let inner = box_triangles([0.0, 0.0, -3.0], [4.0, 2.5, 0.0]);
        let walls: Vec<Triangle> = inner
            .iter()
            .filter(|t| t.iter().any(|p| (p[1] - t[0][1]).abs() > 1e-9))
            .map(|t| [t[0], t[2], t[1]])
            .collect();
        let outlines = join(&cut(&walls, 1.2), 0.001);
        assert_eq!(outlines.rings.len(), 1);
        let (polygons, orphans) = polygons(&outlines.rings, 0.0);
        assert!(polygons.0.is_empty());
        assert_eq!(orphans.len(), 1);
        let thick = thicken(&orphans, 0.2);
        assert_eq!(thick.0.len(), 1);
        assert_eq!(
            thick.0[0].interiors().len(),
            1,
            "the thickened shell encloses the room"
        );
        let room = Polygon::new(thick.0[0].interiors()[0].clone(), Vec::new());
        // The inner half of the 0.2 m band takes 0.1 m off each side.
        assert!(
            (room.unsigned_area() - 3.8 * 2.8).abs() < 0.05,
            "{}",
            room.unsigned_area()
        );
    }

    #[test]
    fn open_chains_are_thickened() {
        // A single-sided wall: one quad from x = 0 to 3 at z = 0.
        let triangles = vec![
            [[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 2.0, 0.0]],
            [[0.0, 0.0, 0.0], [3.0, 2.0, 0.0], [0.0, 2.0, 0.0]],
        ];
        let outlines = join(&cut(&triangles, 1.0), 0.001);
        assert!(outlines.rings.is_empty());
        assert_eq!(outlines.open.len(), 1);
        let wall = thicken(&outlines.open, 0.2);
        // 3 m long, 0.2 m wide, with round caps of radius 0.1 m.
        let expected = 3.0 * 0.2 + std::f64::consts::PI * 0.01;
        assert!(
            (wall.unsigned_area() - expected).abs() < 0.01,
            "{}",
            wall.unsigned_area()
        );
    }
}
