//! Coverage layers: for every imagery source, a vector tile layer of its scenes' footprints
//! with their ground resolution, date, sensor and source, so that an analyst can tell where the
//! imagery is coarse and how old it is. Served as the sibling source `{id}.coverage`.

use std::path::Path;
use std::sync::Arc;

use geo::Geometry;

use super::{SceneFacts, SceneOverrides, StacItems, read_facts};
use crate::source::{Backend, Catalog, LoadFailure, Source};
use crate::tile::MAX_ZOOM;
use crate::vector::{
    FieldType, MemoryFeature, PropertyValue, VectorError, VectorOptions, VectorSource,
};

/// The suffix of a coverage source's id after its imagery source's id.
pub const COVERAGE_SUFFIX: &str = ".coverage";

/// The MVT layer name of every coverage source.
pub const COVERAGE_LAYER: &str = "coverage";

/// The attributes of a footprint, in the order of their indexes in a feature.
const FIELDS: [(&str, FieldType); 8] = [
    ("file", FieldType::String),
    ("resolution_m", FieldType::Number),
    ("date", FieldType::String),
    ("date_origin", FieldType::String),
    ("sensor", FieldType::String),
    ("source", FieldType::String),
    ("enhanced_from_zoom", FieldType::Number),
    ("scene", FieldType::Number),
];

/// Returns the id of the imagery source whose coverage layer `source` is, or `None` for any
/// other source. A coverage source has the id `{imagery}.coverage` and one MVT layer named
/// `coverage`.
pub fn coverage_of(source: &Source) -> Option<&str> {
    let Backend::Vector(vector) = &source.backend else {
        return None;
    };
    let single_coverage_layer = matches!(vector.layers(), [layer] if layer.name == COVERAGE_LAYER);
    if single_coverage_layer {
        source.id.strip_suffix(COVERAGE_SUFFIX)
    } else {
        None
    }
}

/// Builds the coverage source of every imagery source in `catalog`: a file's own footprint,
/// or each scene of a collection. A single file's facts are read here, off the async runtime.
pub async fn coverage_sources(catalog: &Catalog) -> Vec<Result<Source, LoadFailure>> {
    let mut built = Vec::new();
    for source in catalog.iter() {
        if !matches!(source.backend, Backend::Raster(_) | Backend::Collection(_)) {
            continue;
        }
        let imagery = Arc::clone(source);
        let result = tokio::task::spawn_blocking(move || build_coverage(&imagery))
            .await
            .unwrap_or_else(|error| Err(format!("building the coverage layer panicked: {error}")));
        built.push(result.map_err(|reason| LoadFailure {
            path: source.path.clone(),
            reason,
        }));
    }
    built
}

/// Builds the coverage source of one imagery source. The error is a sentence for the start-up
/// report.
fn build_coverage(imagery: &Source) -> Result<Source, String> {
    let (vector, single_date) = match &imagery.backend {
        Backend::Raster(raster) => {
            let options = raster.options();
            let overrides = SceneOverrides {
                date: options.date,
                sensor: options.sensor.clone(),
                source: options.source.clone(),
            };
            let stac = raster
                .path()
                .parent()
                .map(StacItems::in_folder)
                .unwrap_or_default();
            let mut facts =
                read_facts(raster.path(), raster.info(), &overrides, &stac).map_err(|error| {
                    format!(
                        "reading the footprint of {} for its coverage layer failed: {error}",
                        raster.path().display()
                    )
                })?;
            facts.enhanced_from_zoom = raster.enhanced_from_zoom(256);
            let vector = coverage_source(&imagery.path, &[&facts], raster.maxzoom());
            (vector, facts.date)
        }
        Backend::Collection(collection) => {
            let facts: Vec<&SceneFacts> = collection.scenes().iter().map(|s| &s.facts).collect();
            let vector = coverage_source(&imagery.path, &facts, collection.maxzoom());
            (vector, None)
        }
        _ => return Err(format!("source {:?} is not imagery", imagery.id)),
    };
    let vector = vector.map_err(|error| {
        format!(
            "building the coverage layer of {:?} failed: {error}",
            imagery.id
        )
    })?;
    let dated = single_date.map_or_else(String::new, |date| format!(", dated {date}"));
    Ok(Source {
        id: format!("{}{COVERAGE_SUFFIX}", imagery.id),
        name: format!("{} coverage", imagery.name),
        attribution: imagery.attribution.clone(),
        description: Some(format!(
            "Footprints of the imagery of {:?}{dated}: ground resolution in metres per pixel, date, sensor, source, and the zoom from which tiles enlarge the imagery",
            imagery.id
        )),
        path: imagery.path.clone(),
        backend: Backend::Vector(vector),
        access: imagery.access.derived(&imagery.id),
        loaded_revision: imagery.revision(),
    })
}

/// Builds the coverage layer of the scenes in `facts`, served from zoom 0 to `maxzoom`.
/// `path` is the imagery's file or folder.
pub fn coverage_source(
    path: &Path,
    facts: &[&SceneFacts],
    maxzoom: u8,
) -> Result<VectorSource, VectorError> {
    let features = facts
        .iter()
        .enumerate()
        .map(|(index, facts)| footprint_feature(index, facts))
        .collect();
    let fields: Vec<(String, FieldType)> = FIELDS
        .iter()
        .map(|&(name, field_type)| (name.to_owned(), field_type))
        .collect();
    let options = VectorOptions {
        maxzoom: maxzoom.min(MAX_ZOOM),
        ..VectorOptions::default()
    };
    VectorSource::from_features(path, COVERAGE_LAYER, &fields, features, options)
}

fn footprint_feature(index: usize, facts: &SceneFacts) -> MemoryFeature {
    let text = |value: &str| Some(PropertyValue::String(value.to_owned()));
    let values = [
        text(&facts.file),
        Some(PropertyValue::Double(facts.resolution_m)),
        facts
            .date
            .map(|date| PropertyValue::String(date.to_string())),
        facts.date_origin.map(|origin| {
            let name = serde_json::to_value(origin)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            PropertyValue::String(name)
        }),
        facts.sensor.as_deref().and_then(text),
        text(&facts.source),
        facts
            .enhanced_from_zoom
            .map(|zoom| PropertyValue::Int(i64::from(zoom))),
        Some(PropertyValue::Int(index as i64)),
    ];
    MemoryFeature {
        id: Some(index as u64),
        properties: values
            .into_iter()
            .enumerate()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect(),
        geometry: Geometry::Polygon(facts.footprint.clone()),
    }
}
