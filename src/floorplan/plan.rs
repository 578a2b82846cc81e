//! Floorplans of a model: levels, and the walls, rooms and openings cut at each level.

use std::collections::BTreeMap;

use geo::algorithm::buffer::{BufferStyle, LineJoin};
use geo::{Area, BooleanOps, Buffer, Contains, LineString, MultiPolygon, Polygon};

use super::model::{Part, Triangle};
use super::names::RoomNames;
use super::slice;

/// Corners sharper than this angle, in radians, are cut off when walls are grown to close
/// gaps, so that a needle-thin wall end does not grow a long spike.
const MITER_MIN_ANGLE: f64 = 0.2;

/// The role of a part of the model in a floorplan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Wall,
    Room,
    Opening,
    /// Left out of the floorplan (furniture, stairs, a roof).
    Ignore,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wall => "wall",
            Self::Room => "room",
            Self::Opening => "opening",
            Self::Ignore => "ignore",
        }
    }

    /// Guesses the kind from a node or mesh name: doors, windows and openings are openings,
    /// names that start with "room" or "space" are rooms, and the rest are walls.
    pub fn from_name(name: &str) -> Self {
        let name = name.to_lowercase();
        if ["door", "window", "opening"]
            .iter()
            .any(|w| name.contains(w))
        {
            Self::Opening
        } else if name.starts_with("room") || name.starts_with("space") {
            Self::Room
        } else {
            Self::Wall
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_lowercase().as_str() {
            "wall" => Some(Self::Wall),
            "room" | "space" => Some(Self::Room),
            "opening" | "door" | "window" => Some(Self::Opening),
            "ignore" | "none" => Some(Self::Ignore),
            _ => None,
        }
    }
}

/// One storey of a model, in model units along Y.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Level {
    pub index: usize,
    /// Height of the floor.
    pub elevation: f64,
    /// Height of the next floor, or of the model's top for the last level.
    pub top: f64,
    pub name: Option<String>,
}

/// A feature of a floorplan in plan coordinates (model units, x east, y north).
#[derive(Debug, Clone)]
pub(crate) struct PlanFeature {
    pub level: usize,
    pub kind: Kind,
    pub name: Option<String>,
    /// Bottom and top of the feature in model units along Y.
    pub base: f64,
    pub top: f64,
    pub geometry: MultiPolygon<f64>,
}

/// Settings of the cut, in model units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CutSettings {
    /// Height of the cut above each floor.
    pub cut_height: f64,
    /// Endpoints closer than this are merged.
    pub tolerance: f64,
    /// Width given to walls that are single surfaces.
    pub wall_thickness: f64,
    /// Rooms and outlines smaller than this (in square model units) are dropped.
    pub min_area: f64,
    /// Thickness of the slab that rooms are drawn as in 3D.
    pub room_slab: f64,
}

/// A part of the model with its kind and name settled.
#[derive(Debug)]
pub(crate) struct ClassifiedPart<'a> {
    pub part: &'a Part,
    pub kind: Kind,
    pub name: String,
    min_y: f64,
    max_y: f64,
}

impl<'a> ClassifiedPart<'a> {
    pub(crate) fn new(part: &'a Part, kind: Kind, name: String) -> Self {
        let ys = part.triangles.iter().flat_map(|t| t.iter().map(|p| p[1]));
        let (min_y, max_y) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        Self {
            part,
            kind,
            name,
            min_y,
            max_y,
        }
    }
}

/// Settles the kind and name of every part: from the side file, else the part's
/// `extras.kind`, else its name.
pub(crate) fn classify<'a>(parts: &'a [Part], names: &RoomNames) -> Vec<ClassifiedPart<'a>> {
    parts
        .iter()
        .map(|part| {
            let settings = names.parts.get(&part.name);
            let kind = settings
                .and_then(|s| s.kind)
                .or_else(|| part.kind.as_deref().and_then(Kind::parse))
                .unwrap_or_else(|| Kind::from_name(&part.name));
            let name = settings
                .and_then(|s| s.name.clone())
                .unwrap_or_else(|| part.name.clone());
            ClassifiedPart::new(part, kind, name)
        })
        .collect()
}

impl ClassifiedPart<'_> {
    /// Returns the highest point of the part, in model units.
    pub(crate) fn top(&self) -> f64 {
        self.max_y
    }
}

/// Returns the heights of floors: heights where upward-facing surfaces of at least `min_area`
/// square model units lie, binned by `bin` and at least `min_gap` apart (the larger surface
/// wins). Upward-facing means a normal within about 11° of +Y.
pub(crate) fn detect_floors(
    triangles: &[&Triangle],
    min_area: f64,
    bin: f64,
    min_gap: f64,
) -> Vec<f64> {
    let mut areas: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for t in triangles {
        let u = [t[1][0] - t[0][0], t[1][1] - t[0][1], t[1][2] - t[0][2]];
        let v = [t[2][0] - t[0][0], t[2][1] - t[0][1], t[2][2] - t[0][2]];
        let normal = [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ];
        let length = normal.iter().map(|n| n * n).sum::<f64>().sqrt();
        if length == 0.0 || normal[1] / length < 0.98 {
            continue;
        }
        let y = (t[0][1] + t[1][1] + t[2][1]) / 3.0;
        let entry = areas.entry((y / bin).round() as i64).or_insert((0.0, 0.0));
        // Area of the triangle, and the area-weighted height.
        entry.0 += length / 2.0;
        entry.1 += y * length / 2.0;
    }
    let mut candidates: Vec<(f64, f64)> = areas
        .values()
        .filter(|(area, _)| *area >= min_area)
        .map(|(area, weighted)| (weighted / area, *area))
        .collect();
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut floors: Vec<(f64, f64)> = Vec::new();
    for (height, area) in candidates {
        match floors.last_mut() {
            Some(last) if height - last.0 < min_gap => {
                if area > last.1 {
                    *last = (height, area);
                }
            }
            _ => floors.push((height, area)),
        }
    }
    floors.into_iter().map(|(height, _)| height).collect()
}

/// Builds levels from floor heights, each reaching up to the next, the last to `model_top`.
pub(crate) fn levels(floors: &[f64], model_top: f64, names: &[String]) -> Vec<Level> {
    let mut sorted = floors.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .iter()
        .enumerate()
        .map(|(index, &elevation)| Level {
            index,
            elevation,
            top: sorted
                .get(index + 1)
                .copied()
                .unwrap_or(model_top.max(elevation)),
            name: names.get(index).cloned(),
        })
        .collect()
}

/// Cuts every part at one level and returns its walls, openings and rooms.
pub(crate) fn slice_level(
    level: &Level,
    parts: &[ClassifiedPart<'_>],
    settings: &CutSettings,
    room_names: &RoomNames,
) -> Vec<PlanFeature> {
    let height = level.elevation + settings.cut_height;
    let mut features = Vec::new();
    let mut solids = MultiPolygon::new(Vec::new());
    let mut room_volumes = Vec::new();
    for part in parts {
        if part.kind == Kind::Ignore || part.max_y < height || part.min_y > height {
            continue;
        }
        let outlines = slice::join(
            &slice::cut(&part.part.triangles, height),
            settings.tolerance,
        );
        let (mut geometry, orphans) = slice::polygons(&outlines.rings, settings.min_area);
        if part.kind == Kind::Room {
            // A room volume whose faces point inwards gives clockwise rings: its outline all
            // the same.
            let inverted: Vec<Polygon<f64>> = orphans
                .into_iter()
                .map(|ring| Polygon::new(ring, Vec::new()))
                .collect();
            geometry = geometry.union(&MultiPolygon::new(inverted));
        } else {
            // Single-sided walls, open or closed around a room, get a thickness.
            let surfaces: Vec<LineString<f64>> =
                outlines.open.iter().cloned().chain(orphans).collect();
            if !surfaces.is_empty() {
                geometry = geometry.union(&slice::thicken(&surfaces, settings.wall_thickness));
            }
        }
        if part.kind == Kind::Room && !outlines.open.is_empty() {
            tracing::debug!(part = %part.name, chains = outlines.open.len(), "open outline of a room left out");
        }
        if geometry.0.is_empty() {
            continue;
        }
        let (base, top) = match part.kind {
            Kind::Room => (level.elevation, level.elevation + settings.room_slab),
            _ => (part.min_y.max(level.elevation), part.max_y.min(level.top)),
        };
        if part.kind == Kind::Room {
            room_volumes.push(geometry.clone());
        } else {
            solids = solids.union(&geometry);
        }
        features.push(PlanFeature {
            level: level.index,
            kind: part.kind,
            name: Some(part.name.clone()),
            base,
            top,
            geometry,
        });
    }
    // Without room volumes, rooms are the spaces that walls and openings enclose.
    if room_volumes.is_empty() {
        for room in enclosed_spaces(&solids, settings.tolerance, settings.min_area) {
            let name = room_names.name_for(level.index, &room);
            features.push(PlanFeature {
                level: level.index,
                kind: Kind::Room,
                name,
                base: level.elevation,
                top: level.elevation + settings.room_slab,
                geometry: MultiPolygon::new(vec![room]),
            });
        }
    } else {
        for feature in features.iter_mut().filter(|f| f.kind == Kind::Room) {
            let side_name = feature
                .geometry
                .0
                .first()
                .and_then(|polygon| room_names.name_for(level.index, polygon));
            if side_name.is_some() {
                feature.name = side_name;
            }
        }
    }
    features
}

/// Returns the holes of the walls' union: the spaces they enclose. Gaps between walls up to
/// twice `gap` wide are closed first (a morphological closing: grow by `gap`, then shrink),
/// so walls of separate parts that almost meet still enclose a room.
fn enclosed_spaces(solids: &MultiPolygon<f64>, gap: f64, min_area: f64) -> Vec<Polygon<f64>> {
    // Mitred joins keep the corners of rooms sharp; rounded ones would add arcs of vertices.
    let style = |distance| BufferStyle::new(distance).line_join(LineJoin::Miter(MITER_MIN_ANGLE));
    let closed = solids
        .buffer_with_style(style(gap))
        .buffer_with_style(style(-gap));
    let mut spaces: Vec<Polygon<f64>> = closed
        .0
        .iter()
        .flat_map(|polygon| polygon.interiors().iter().cloned())
        .map(|ring| Polygon::new(ring, Vec::new()))
        .filter(|space| space.unsigned_area() >= min_area)
        .collect();
    // A free-standing wall inside a room is a polygon inside the hole: cut it out.
    for space in &mut spaces {
        let inside: Vec<Polygon<f64>> = solids
            .0
            .iter()
            .filter(|solid| space.contains(*solid))
            .cloned()
            .collect();
        if !inside.is_empty() {
            let cut = MultiPolygon::new(vec![space.clone()]).difference(&MultiPolygon::new(inside));
            if let Some(largest) = cut
                .0
                .into_iter()
                .max_by(|a, b| a.unsigned_area().total_cmp(&b.unsigned_area()))
            {
                *space = largest;
            }
        }
    }
    spaces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_names() {
        let cases = [
            ("Door 1", Kind::Opening),
            ("Fenster / Window 3", Kind::Opening),
            ("wall opening", Kind::Opening),
            ("Room 12", Kind::Room),
            ("space: kitchen", Kind::Room),
            ("Wall south", Kind::Wall),
            ("Bedroom_Bedroom_0", Kind::Wall),
            ("Cube.003", Kind::Wall),
        ];
        for (name, kind) in cases {
            assert_eq!(Kind::from_name(name), kind, "{name}");
        }
    }

    #[test]
    fn kinds_parse_from_extras() {
        let cases = [
            ("wall", Some(Kind::Wall)),
            ("Room", Some(Kind::Room)),
            ("space", Some(Kind::Room)),
            ("door", Some(Kind::Opening)),
            ("IGNORE", Some(Kind::Ignore)),
            ("furniture", None),
        ];
        for (text, kind) in cases {
            assert_eq!(Kind::parse(text), kind, "{text}");
        }
    }

    #[test]
    fn floors_merge_within_a_storey() {
        // Horizontal squares: 25 m² at 0 m, 3 m² at 0.9 m (a table), 25 m² at 3.0 m and
        // 30 m² at 3.2 m (a raised floor, which wins), all facing up, and a ceiling of 40 m² at
        // 6 m facing down.
        let square = |y: f64, side: f64| -> [Triangle; 2] {
            [
                [[0.0, y, 0.0], [side, y, -side], [0.0, y, -side]],
                [[0.0, y, 0.0], [side, y, 0.0], [side, y, -side]],
            ]
        };
        let triangles: Vec<Triangle> = [
            (0.0, 5.0),
            (0.9, 3.0_f64.sqrt()),
            (3.0, 5.0),
            (3.2, 30.0_f64.sqrt()),
        ]
        .into_iter()
        .flat_map(|(y, side)| square(y, side))
        .collect();
        let ceiling = square(6.0, 40.0_f64.sqrt()).map(|t| [t[0], t[2], t[1]]);
        let triangles: Vec<Triangle> = triangles.into_iter().chain(ceiling).collect();
        let references: Vec<&Triangle> = triangles.iter().collect();
        let floors = detect_floors(&references, 4.0, 0.05, 2.0);
        assert_eq!(floors.len(), 2, "{floors:?}");
        assert!(floors[0].abs() < 1e-9, "{floors:?}");
        assert!((floors[1] - 3.2).abs() < 1e-9, "{floors:?}");
    }
}
