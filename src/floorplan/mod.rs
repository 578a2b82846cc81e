//! Floorplans of facilities from their 3D models.
//!
//! [`FloorplanSource::open`] reads a glTF 2.0 model (`model`) and places it on the Earth with
//! its georeference (`georef`). It takes the levels from the configuration or finds them from
//! large horizontal surfaces (`plan::detect_floors`). Then it cuts every level at a height
//! above its floor (`slice`) and keeps the walls, rooms and openings as a `floorplan` vector
//! layer, whose tiles come from the vector module's R-tree and MVT encoder. The model itself
//! is kept as GLB for `/models/{id}.glb`.

mod accessor;
mod draco;
mod error;
mod georef;
mod glb;
mod model;
mod names;
mod plan;
mod slice;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use geo::{Coord, MapCoords, MultiPolygon};
use serde::Deserialize;
use serde_json::{Value, json};

pub use error::FloorplanError;
pub use georef::Georeference;
pub use plan::{Kind, Level};

use crate::vector::{FieldType, MemoryFeature, PropertyValue, VectorOptions, VectorSource};

/// Name of the MVT layer of every floorplan source.
pub const LAYER: &str = "floorplan";

/// Options of a model source, from its `[sources.ID]` table or its `STEM.toml` side file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloorplanOptions {
    /// Longitude and latitude of the model's origin, in degrees. Required.
    pub anchor: Option<[f64; 2]>,
    /// Angle from true north to the model's north axis (glTF -Z), clockwise, in degrees.
    pub rotation: f64,
    /// Metres per model unit.
    pub scale: f64,
    /// Height of the model's origin above sea level, in metres, for 3D viewers.
    pub elevation: f64,
    /// Heights of the floors in metres above the model's origin; found from large horizontal
    /// surfaces when absent.
    pub floors: Option<Vec<f64>>,
    /// Names of the levels, from the lowest up.
    pub level_names: Vec<String>,
    /// Height of the cut above each floor, in metres.
    pub cut_height: f64,
    /// Distance in metres within which cut endpoints are merged, closing cracks in the mesh.
    pub tolerance: f64,
    /// Width in metres given to walls modelled as single surfaces.
    pub wall_thickness: f64,
    /// Smallest horizontal surface, in square metres, that floor detection takes as a floor.
    pub min_floor_area: f64,
    /// Largest model file, with its buffers, in MiB.
    pub max_file_mb: u64,
    /// Most triangles read from a model.
    pub max_triangles: u64,
    pub minzoom: u8,
    pub maxzoom: u8,
}

impl Default for FloorplanOptions {
    fn default() -> Self {
        Self {
            anchor: None,
            rotation: 0.0,
            scale: 1.0,
            elevation: 0.0,
            floors: None,
            level_names: Vec::new(),
            cut_height: 1.2,
            tolerance: 0.01,
            wall_thickness: 0.1,
            min_floor_area: 4.0,
            max_file_mb: 64,
            max_triangles: 2_000_000,
            minzoom: 16,
            maxzoom: 22,
        }
    }
}

/// Smallest room or wall outline kept, in square metres.
const MIN_OUTLINE_AREA_M2: f64 = 0.01;
/// Thickness of the floor slab that rooms are drawn as in 3D, in metres.
const ROOM_SLAB_M: f64 = 0.1;
/// Height of the bins that floor detection sums horizontal surfaces in, in metres.
const FLOOR_BIN_M: f64 = 0.05;
/// Floors found closer than this, in metres, are one floor.
const MIN_STOREY_HEIGHT_M: f64 = 2.0;

/// The attributes of the `floorplan` layer, in the order of their indices.
const FIELDS: [(&str, FieldType); 5] = [
    ("level", FieldType::Number),
    ("kind", FieldType::String),
    ("name", FieldType::String),
    ("height", FieldType::Number),
    ("base_height", FieldType::Number),
];

/// A model served as floorplan vector tiles and as GLB.
#[derive(Debug)]
pub struct FloorplanSource {
    path: PathBuf,
    georeference: Georeference,
    levels: Vec<Level>,
    vector: VectorSource,
    glb: bytes::Bytes,
    /// Strong ETag of `glb`, computed once because models can be megabytes.
    glb_etag: String,
    triangles: usize,
    draco: bool,
}

impl FloorplanSource {
    /// Reads, georeferences and slices the model at `path`.
    pub fn open(path: &Path, options: &FloorplanOptions) -> Result<Self, FloorplanError> {
        let sliced = slice_model(path, options)?;
        let georeference = sliced.georeference;
        let memory = sliced
            .features
            .iter()
            .enumerate()
            .map(|(id, feature)| memory_feature(id, feature, &georeference))
            .collect();
        let fields: Vec<(String, FieldType)> = FIELDS
            .iter()
            .map(|(name, field)| ((*name).to_owned(), *field))
            .collect();
        let vector_options = VectorOptions {
            minzoom: options.minzoom,
            maxzoom: options.maxzoom,
            ..VectorOptions::default()
        };
        let vector = VectorSource::from_features(path, LAYER, &fields, memory, vector_options)?;
        let triangles = sliced.model.triangle_count();
        tracing::info!(
            model = %path.display(),
            triangles,
            levels = sliced.levels.len(),
            features = sliced.features.len(),
            draco = sliced.model.draco,
            "floorplan sliced"
        );
        Ok(Self {
            path: path.to_owned(),
            georeference,
            levels: sliced.levels,
            vector,
            triangles,
            draco: sliced.model.draco,
            glb_etag: format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&sliced.model.glb)),
            glb: sliced.model.glb.into(),
        })
    }

    pub fn vector(&self) -> &VectorSource {
        &self.vector
    }

    pub fn georeference(&self) -> &Georeference {
        &self.georeference
    }

    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Returns the model as GLB bytes.
    pub fn glb(&self) -> &bytes::Bytes {
        &self.glb
    }

    /// Returns the strong ETag of [`Self::glb`], quoted.
    pub fn glb_etag(&self) -> &str {
        &self.glb_etag
    }

    /// Returns TileJSON's `vector_layers` for the `floorplan` layer.
    pub fn vector_layers_json(&self, minzoom: u8, maxzoom: u8) -> Value {
        let fields: serde_json::Map<String, Value> = FIELDS
            .iter()
            .map(|(name, field)| ((*name).to_owned(), json!(field.as_str())))
            .collect();
        let count = self
            .vector
            .layers()
            .first()
            .map_or(0, |layer| layer.feature_count);
        json!([{
            "id": LAYER,
            "description": "walls, rooms and openings of each level; heights in metres above the model's origin",
            "fields": fields,
            "minzoom": minzoom,
            "maxzoom": maxzoom,
            "geometry_type": "Polygon",
            "feature_count": count,
        }])
    }

    /// Returns the levels as TileJSON and `/models/{id}.json` list them: index, name, and
    /// floor and ceiling heights in metres above the model's origin.
    pub fn levels_json(&self) -> Value {
        let scale = self.georeference.scale;
        Value::Array(
            self.levels
                .iter()
                .map(|level| {
                    json!({
                        "level": level.index,
                        "name": level.name,
                        "base_height": level.elevation * scale,
                        "height": level.top * scale,
                    })
                })
                .collect(),
        )
    }

    /// Builds the document of `/models/{id}.json`: the georeference, the levels and the
    /// model's URL, for 3D viewers.
    pub fn model_json(&self, id: &str, base_url: &str) -> Value {
        let georeference = &self.georeference;
        json!({
            "id": id,
            "model": format!("{base_url}/models/{id}.glb"),
            "tilejson": format!("{base_url}/tiles/{id}.json"),
            "anchor": georeference.anchor,
            "rotation": georeference.rotation,
            "scale": georeference.scale,
            "elevation": georeference.elevation,
            "axes": "glTF Y up; -Z points to `rotation` degrees clockwise from true north; +X to its right",
            "levels": self.levels_json(),
            "triangles": self.triangles,
            "draco": self.draco,
            "file": self.path.file_name().map(|n| n.to_string_lossy().into_owned()),
        })
    }
}

/// A model with its levels and floorplan features in plan coordinates.
#[derive(Debug)]
struct Sliced {
    model: model::Model,
    georeference: Georeference,
    levels: Vec<Level>,
    features: Vec<plan::PlanFeature>,
}

/// Reads the model at `path` and cuts its levels.
fn slice_model(path: &Path, options: &FloorplanOptions) -> Result<Sliced, FloorplanError> {
    let georeference = validate(path, options)?;
    let limits = model::ReadLimits {
        max_bytes: options.max_file_mb.saturating_mul(1 << 20),
        max_triangles: options.max_triangles,
    };
    let model = model::read(path, limits)?;
    let names = names::RoomNames::load(path, &model.parts)?;
    let parts = plan::classify(&model.parts, &names);

    // Options are in metres; the model is in its own units.
    let unit = 1.0 / georeference.scale;
    let model_top = parts
        .iter()
        .map(plan::ClassifiedPart::top)
        .fold(f64::NEG_INFINITY, f64::max);
    let floors = if let Some(floors) = &options.floors {
        floors.iter().map(|f| f * unit).collect()
    } else {
        // Slabs are often marked `ignore` for the cut but are the floors to find. The upper
        // faces of room volumes are ceilings, so rooms are left out.
        let triangles: Vec<_> = parts
            .iter()
            .filter(|p| p.kind != Kind::Room)
            .flat_map(|p| p.part.triangles.iter())
            .collect();
        plan::detect_floors(
            &triangles,
            options.min_floor_area * unit * unit,
            FLOOR_BIN_M * unit,
            MIN_STOREY_HEIGHT_M * unit,
        )
    };
    if floors.is_empty() {
        return Err(FloorplanError::NoFloors {
            path: path.to_owned(),
            min_area: options.min_floor_area,
        });
    }
    let settings = plan::CutSettings {
        cut_height: options.cut_height * unit,
        tolerance: options.tolerance * unit,
        wall_thickness: options.wall_thickness * unit,
        min_area: MIN_OUTLINE_AREA_M2 * unit * unit,
        room_slab: ROOM_SLAB_M * unit,
    };
    let slice_all = |levels: &[Level]| -> Vec<plan::PlanFeature> {
        levels
            .iter()
            .flat_map(|level| plan::slice_level(level, &parts, &settings, &names))
            .collect()
    };
    let mut levels = plan::levels(&floors, model_top, &options.level_names);
    let mut features = slice_all(&levels);
    // Detected floors without walls above them (a roof, the ground around the building)
    // are not levels.
    if options.floors.is_none() {
        let floors_with_walls: Vec<f64> = levels
            .iter()
            .filter(|level| {
                features
                    .iter()
                    .any(|f| f.level == level.index && f.kind == Kind::Wall)
            })
            .map(|level| level.elevation)
            .collect();
        if floors_with_walls.len() < levels.len() && !floors_with_walls.is_empty() {
            levels = plan::levels(&floors_with_walls, model_top, &options.level_names);
            features = slice_all(&levels);
        }
    }
    if features.is_empty() {
        return Err(FloorplanError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Sliced {
        model,
        georeference,
        levels,
        features,
    })
}

/// Checks the options and returns the georeference.
fn validate(path: &Path, options: &FloorplanOptions) -> Result<Georeference, FloorplanError> {
    let invalid = |option, value: String, reason: &str| FloorplanError::InvalidOption {
        path: path.to_owned(),
        option,
        value,
        reason: reason.to_owned(),
    };

    let Some(anchor) = options.anchor else {
        return Err(FloorplanError::MissingGeoreference {
            path: path.to_owned(),
            side: path.with_extension("toml"),
        });
    };

    let [lon, lat] = anchor;
    let lon_valid = lon.is_finite() && (-180.0..=180.0).contains(&lon);
    let lat_valid =
        lat.is_finite() && (-crate::tile::MAX_LATITUDE..=crate::tile::MAX_LATITUDE).contains(&lat);
    if !(lon_valid && lat_valid) {
        return Err(invalid(
            "anchor",
            format!("{anchor:?}"),
            "use [longitude, latitude] in degrees, latitude within Web Mercator's ±85.05°",
        ));
    }

    let positive = [
        ("scale", options.scale),
        ("cut_height", options.cut_height),
        ("tolerance", options.tolerance),
        ("wall_thickness", options.wall_thickness),
    ];
    for (option, value) in positive {
        if !(value.is_finite() && value > 0.0) {
            return Err(invalid(option, value.to_string(), "use a number above 0"));
        }
    }

    for (option, value) in [
        ("rotation", options.rotation),
        ("elevation", options.elevation),
        ("min_floor_area", options.min_floor_area),
    ] {
        if !value.is_finite() {
            return Err(invalid(option, value.to_string(), "use a finite number"));
        }
    }

    if let Some(floors) = &options.floors
        && (floors.is_empty() || floors.iter().any(|f| !f.is_finite()))
    {
        return Err(invalid(
            "floors",
            format!("{floors:?}"),
            "list at least one floor height in metres, or leave floors out to detect them",
        ));
    }

    if options.minzoom > options.maxzoom || options.maxzoom > 24 {
        return Err(invalid(
            "minzoom",
            format!("{} to {}", options.minzoom, options.maxzoom),
            "use minzoom <= maxzoom <= 24",
        ));
    }

    Ok(Georeference {
        anchor,
        rotation: options.rotation,
        scale: options.scale,
        elevation: options.elevation,
    })
}

fn memory_feature(
    id: usize,
    feature: &plan::PlanFeature,
    georeference: &Georeference,
) -> MemoryFeature {
    let scale = georeference.scale;
    let mut properties = vec![
        (0, PropertyValue::Int(feature.level as i64)),
        (1, PropertyValue::String(feature.kind.as_str().to_owned())),
    ];
    if let Some(name) = &feature.name {
        properties.push((2, PropertyValue::String(name.clone())));
    }
    // NOTE: heights are measured from the model's origin, not from the ground, so a model whose
    // origin is not at ground level extrudes above or below the map by that offset.
    properties.push((3, PropertyValue::Double(round_cm(feature.top * scale))));
    properties.push((4, PropertyValue::Double(round_cm(feature.base * scale))));
    let geometry: MultiPolygon<f64> = feature
        .geometry
        .map_coords(|c: Coord<f64>| georeference.mercator(c));
    MemoryFeature {
        id: Some(id as u64),
        properties,
        geometry: geometry.into(),
    }
}

fn round_cm(metres: f64) -> f64 {
    (metres * 100.0).round() / 100.0
}
