//! Reading an OGR dataset into indexed layers.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Layer, LayerAccess, OGRwkbGeometryType, geometry_type_flatten};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use geo::{BoundingRect, Coord, Geometry, MapCoords, Rect};

use super::fields::{FieldReader, feature_id, field_readers, integer_id_field};
use super::index::{LayerData, StoredFeature};
use super::repair::prepare_geometry;
use super::{LayerInfo, VectorError};
use crate::tile::{Bbox, lonlat_to_mercator};

/// Features of one layer that are logged one by one when skipped or repaired. Later ones are
/// logged at debug level and counted in the layer's summary.
const LOGGED_FEATURES_PER_LAYER: usize = 20;

/// The layers of a dataset, ready to serve.
#[derive(Debug)]
pub(super) struct LoadedDataset {
    pub(super) layers: Vec<LayerData>,
    pub(super) infos: Vec<LayerInfo>,
    /// Bounds of all served features in degrees, or `None` when no feature was served.
    pub(super) bounds_lonlat: Option<Bbox>,
}

/// Reads every layer of an OGR dataset. Features that cannot be served are skipped and
/// counted, but a layer that cannot be read fails the whole dataset.
pub(super) fn load_dataset(path: &Path) -> Result<LoadedDataset, VectorError> {
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
        ..DatasetOptions::default()
    };
    let dataset = Dataset::open_ex(path, options).map_err(|source| VectorError::Open {
        path: path.to_owned(),
        source,
    })?;
    let layer_count = dataset.layer_count();

    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned());
    let mut used_names = HashSet::new();
    let mut loaded = LoadedDataset {
        layers: Vec::with_capacity(layer_count),
        infos: Vec::with_capacity(layer_count),
        bounds_lonlat: None,
    };
    for mut layer in dataset.layers() {
        if layer.defn().geom_fields().count() == 0 {
            tracing::info!(file = %path.display(), layer = layer.name(), "layer without a geometry column left out");
            continue;
        }
        let name = match &stem {
            Some(stem) if layer_count == 1 => stem.clone(),
            _ => layer.name(),
        };
        let name = unique_name(&name, &mut used_names);
        let (data, info, bounds) = load_layer(path, name, &mut layer)?;
        if let Some(bounds) = bounds {
            loaded.bounds_lonlat = Some(match loaded.bounds_lonlat {
                Some(total) => union(&total, &bounds),
                None => bounds,
            });
        }
        loaded.layers.push(data);
        loaded.infos.push(info);
    }
    if loaded.layers.is_empty() {
        return Err(VectorError::NoLayers {
            path: path.to_owned(),
        });
    }
    Ok(loaded)
}

/// Returns `name`, or `name_2`, `name_3`, … when an earlier layer already has it, because MVT
/// layer names in a tile must be unique.
fn unique_name(name: &str, used: &mut HashSet<String>) -> String {
    let mut unique = name.to_owned();
    let mut suffix = 2;
    while used.contains(&unique) {
        unique = format!("{name}_{suffix}");
        suffix += 1;
    }
    if unique != name {
        tracing::warn!(
            layer = name,
            renamed = unique,
            "duplicate layer name renamed"
        );
    }
    used.insert(unique.clone());
    unique
}

fn union(a: &Bbox, b: &Bbox) -> Bbox {
    Bbox {
        min_x: a.min_x.min(b.min_x),
        min_y: a.min_y.min(b.min_y),
        max_x: a.max_x.max(b.max_x),
        max_y: a.max_y.max(b.max_y),
    }
}

/// Counts of what happened to the features of one layer.
#[derive(Debug, Default)]
struct LayerCounts {
    skipped: usize,
    repaired: usize,
}

fn load_layer(
    path: &Path,
    name: String,
    layer: &mut Layer<'_>,
) -> Result<(LayerData, LayerInfo, Option<Bbox>), VectorError> {
    let transform = lonlat_transform(layer).map_err(|source| VectorError::Transform {
        path: path.to_owned(),
        layer: name.clone(),
        source,
    })?;
    if layer.spatial_ref().is_none() {
        tracing::debug!(file = %path.display(), layer = name, "layer has no CRS: reading its coordinates as lon/lat");
    }
    let readers = field_readers(layer.defn());
    let id_field = integer_id_field(layer.defn());
    let declared_type = layer.defn().geometry_type();

    let mut features = Vec::new();
    let mut counts = LayerCounts::default();
    let mut bounds: Option<Rect<f64>> = None;
    let mut kinds = GeometryKinds::default();
    for (index, feature) in layer.features().enumerate() {
        let fid = feature.fid();
        let label = fid.map_or_else(|| format!("index {index}"), |fid| format!("FID {fid}"));
        // `Feature::geometry` wraps a NULL handle for a feature without geometry, which
        // `geometry_by_index` reports as an error instead.
        let geometry = feature.geometry_by_index(0).ok();
        let prepared = match prepare_geometry(geometry, transform.as_ref()) {
            Ok(prepared) => prepared,
            Err(reason) => {
                counts.skipped += 1;
                if counts.skipped <= LOGGED_FEATURES_PER_LAYER {
                    tracing::warn!(file = %path.display(), layer = name, feature = label, reason, "skipped feature");
                } else {
                    tracing::debug!(file = %path.display(), layer = name, feature = label, reason, "skipped feature");
                }
                continue;
            }
        };
        if !prepared.repairs.is_empty() {
            counts.repaired += 1;
            let repairs = prepared.repairs.join("; ");
            if counts.repaired <= LOGGED_FEATURES_PER_LAYER {
                tracing::warn!(file = %path.display(), layer = name, feature = label, repairs, "repaired feature");
            } else {
                tracing::debug!(file = %path.display(), layer = name, feature = label, repairs, "repaired feature");
            }
        }
        if let Some(rect) = prepared.geometry.bounding_rect() {
            bounds = Some(bounds.map_or(rect, |total| merge_rects(total, rect)));
        }
        kinds.add(&prepared.geometry);
        features.push(StoredFeature {
            id: feature_id(&feature, id_field),
            properties: read_properties(&readers, &feature),
            geometry: to_mercator(&prepared.geometry),
        });
    }

    if counts.skipped > 0 || counts.repaired > 0 {
        tracing::warn!(
            file = %path.display(),
            layer = name,
            served = features.len(),
            skipped = counts.skipped,
            repaired = counts.repaired,
            "layer loaded with skipped or repaired features (the first {LOGGED_FEATURES_PER_LAYER} of each are logged as warnings)"
        );
    } else {
        tracing::info!(file = %path.display(), layer = name, served = features.len(), "layer loaded");
    }

    let info = LayerInfo {
        name: name.clone(),
        fields: readers
            .iter()
            .map(|reader| (reader.name().to_owned(), reader.field_type()))
            .collect::<BTreeMap<_, _>>(),
        geometry_type: kinds.name(declared_type).to_owned(),
        feature_count: features.len(),
        skipped: counts.skipped,
        repaired: counts.repaired,
    };
    let keys = readers
        .iter()
        .map(|reader| reader.name().to_owned())
        .collect();
    let bounds = bounds.map(|rect| Bbox {
        min_x: rect.min().x,
        min_y: rect.min().y,
        max_x: rect.max().x,
        max_y: rect.max().y,
    });
    Ok((LayerData::new(name, keys, features), info, bounds))
}

/// Returns the transformation from the layer's CRS to WGS 84 in lon/lat order, or `None` when
/// the layer is already in it or declares no CRS.
fn lonlat_transform(layer: &Layer<'_>) -> gdal::errors::Result<Option<CoordTransform>> {
    let Some(source) = layer.spatial_ref() else {
        return Ok(None);
    };
    // OGR drivers set the layer's data axis mapping, so lat/lon data such as GML in
    // EPSG:4326 compares unequal and is transformed.
    let mut target = SpatialRef::from_epsg(4326)?;
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    if source == target {
        return Ok(None);
    }
    CoordTransform::new(&source, &target).map(Some)
}

fn read_properties(
    readers: &[FieldReader],
    feature: &gdal::vector::Feature<'_>,
) -> Vec<(usize, super::fields::PropertyValue)> {
    readers
        .iter()
        .enumerate()
        .filter_map(|(key, reader)| reader.read(feature).map(|value| (key, value)))
        .collect()
}

fn merge_rects(a: Rect<f64>, b: Rect<f64>) -> Rect<f64> {
    Rect::new(
        Coord {
            x: a.min().x.min(b.min().x),
            y: a.min().y.min(b.min().y),
        },
        Coord {
            x: a.max().x.max(b.max().x),
            y: a.max().y.max(b.max().y),
        },
    )
}

fn to_mercator(geometry: &Geometry<f64>) -> Geometry<f64> {
    geometry.map_coords(|Coord { x, y }| {
        let (x, y) = lonlat_to_mercator(x, y);
        Coord { x, y }
    })
}

/// The MVT geometry types that the features of a layer have.
#[derive(Debug, Default)]
struct GeometryKinds {
    point: bool,
    line: bool,
    polygon: bool,
}

impl GeometryKinds {
    fn add(&mut self, geometry: &Geometry<f64>) {
        match geometry {
            Geometry::Point(_) | Geometry::MultiPoint(_) => self.point = true,
            Geometry::Line(_) | Geometry::LineString(_) | Geometry::MultiLineString(_) => {
                self.line = true;
            }
            Geometry::Polygon(_)
            | Geometry::MultiPolygon(_)
            | Geometry::Rect(_)
            | Geometry::Triangle(_) => self.polygon = true,
            Geometry::GeometryCollection(members) => {
                for member in members {
                    self.add(member);
                }
            }
        }
    }

    /// Returns the TileJSON geometry type: the one type of all features, or for a layer
    /// without features the type that OGR declares, or else `Unknown`.
    fn name(&self, declared: OGRwkbGeometryType::Type) -> &'static str {
        match (self.point, self.line, self.polygon) {
            (true, false, false) => "Point",
            (false, true, false) => "LineString",
            (false, false, true) => "Polygon",
            (false, false, false) => match geometry_type_flatten(declared) {
                OGRwkbGeometryType::wkbPoint | OGRwkbGeometryType::wkbMultiPoint => "Point",
                OGRwkbGeometryType::wkbLineString | OGRwkbGeometryType::wkbMultiLineString => {
                    "LineString"
                }
                OGRwkbGeometryType::wkbPolygon | OGRwkbGeometryType::wkbMultiPolygon => "Polygon",
                _ => "Unknown",
            },
            _ => "Unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_name_appends_suffixes() {
        let mut used = HashSet::new();
        let names: Vec<String> = ["a", "b", "a", "a"]
            .into_iter()
            .map(|name| unique_name(name, &mut used))
            .collect();
        assert_eq!(names, ["a", "b", "a_2", "a_3"]);
    }
}
