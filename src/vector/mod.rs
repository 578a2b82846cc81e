//! Vector sources: OGR datasets in an R-tree, encoded as Mapbox Vector Tiles.
//!
//! [`VectorSource::open`] reads every layer of a dataset that GDAL's OGR reads (GeoJSON,
//! GeoPackage, Shapefile, KML, FlatGeobuf, …). It reprojects the features to lon/lat, repairs
//! or skips invalid geometries, and keeps them in Web Mercator metres with an R-tree of their
//! envelopes per layer. No GDAL handle outlives `open`, so a source is `Send + Sync`.
//! [`VectorSource::tile`] finds the features whose envelopes touch the buffered tile, clips
//! and simplifies them and encodes them as MVT 2.1, one MVT layer per OGR layer.

mod clip;
mod encode;
mod error;
mod fields;
mod geojson;
mod index;
mod load;
mod repair;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use error::VectorError;
pub use fields::PropertyValue;
pub use geojson::FeatureRef;

use crate::tile::{Bbox, MAX_LATITUDE, MAX_ZOOM, TileCoord};
use index::LayerData;

/// Options of a vector source. Options missing from a configuration take their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VectorOptions {
    /// Lowest zoom served.
    pub minzoom: u8,
    /// Highest zoom served. Tiles at this zoom are not simplified, so clients that zoom in
    /// further (overzoom) get the full detail.
    pub maxzoom: u8,
    /// Margin around each tile that features are kept in, in tile units: 64 of an extent of
    /// 4096 is 1/64 of the tile width. The margin lets lines and polygon edges continue across
    /// tile seams, and draws point symbols near an edge in both tiles.
    pub buffer: u32,
    /// Size of the tile's coordinate grid along each side.
    pub extent: u32,
    /// Whether lines and polygons are simplified below `maxzoom`, with a tolerance of one tile
    /// unit.
    pub simplify: bool,
    /// Maximum number of features in one tile, over all its layers. Beyond it the features with the
    /// largest bounding-box diagonal are kept (file order among equals), and the tile
    /// response's `Tessera-Dropped-Features` header counts the others.
    pub max_features_per_tile: usize,
}

impl Default for VectorOptions {
    fn default() -> Self {
        Self {
            minzoom: 0,
            maxzoom: 22,
            buffer: 64,
            extent: 4096,
            simplify: true,
            max_features_per_tile: DEFAULT_MAX_FEATURES_PER_TILE,
        }
    }
}

/// The response header that counts the features a tile left out because of
/// `max_features_per_tile`. A tile without it has every feature that touches it.
pub const DROPPED_FEATURES_HEADER: &str = "tessera-dropped-features";

/// Default of [`VectorOptions::max_features_per_tile`]. NOTE: an estimate of what a
/// browser still draws smoothly, not measured; MVT itself sets no limit.
pub const DEFAULT_MAX_FEATURES_PER_TILE: usize = 20_000;

impl VectorOptions {
    fn validate(&self) -> Result<(), VectorError> {
        let invalid = |option, value: u32, reason: String| {
            Err(VectorError::InvalidOption {
                option,
                value: value.to_string(),
                reason,
            })
        };
        if self.maxzoom > MAX_ZOOM {
            return invalid(
                "maxzoom",
                self.maxzoom.into(),
                format!("the deepest zoom served is {MAX_ZOOM}"),
            );
        }
        if self.minzoom > self.maxzoom {
            return invalid(
                "minzoom",
                self.minzoom.into(),
                format!("it must not exceed maxzoom ({})", self.maxzoom),
            );
        }
        // Tile coordinates, buffer included, are i32 in MVT.
        let max_extent = i32::MAX as u32 / 4;
        if self.extent == 0 || self.extent > max_extent {
            return invalid(
                "extent",
                self.extent,
                format!("it must be between 1 and {max_extent} (4096 is usual)"),
            );
        }
        if self.max_features_per_tile == 0 {
            return Err(VectorError::InvalidOption {
                option: "max_features_per_tile",
                value: "0".to_owned(),
                reason: "it must be at least 1".to_owned(),
            });
        }
        if self.buffer > self.extent {
            return invalid(
                "buffer",
                self.buffer,
                format!("it must not exceed the extent ({})", self.extent),
            );
        }
        Ok(())
    }
}

/// Attribute types as TileJSON 3.0 `vector_layers` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum FieldType {
    String,
    Number,
    Boolean,
}

impl FieldType {
    /// Returns the name that TileJSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::Number => "Number",
            Self::Boolean => "Boolean",
        }
    }
}

/// Description of one MVT layer of a source, for TileJSON and for reports on the data.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    /// MVT layer name: the OGR layer name, or the file stem for a file with one layer.
    pub name: String,
    /// Attribute names and types. Dates and times are ISO 8601 strings, OGR lists and JSON
    /// fields are their JSON text, and binary fields are left out.
    pub fields: BTreeMap<String, FieldType>,
    /// `Point`, `LineString` or `Polygon` when all features have that type (multi-types
    /// included), or else `Unknown`.
    pub geometry_type: String,
    /// Features served.
    pub feature_count: usize,
    /// Features left out because their geometry is missing, empty, has NaN or out-of-range
    /// coordinates, failed to reproject, or has no area or length left after repair.
    pub skipped: usize,
    /// Served features whose geometry was changed to make it valid: rings closed, invalid
    /// polygons rebuilt by OGR's `make_valid`, or degenerate parts dropped. Rings with the
    /// wrong winding are not counted, because every tile sets the winding anyway.
    pub repaired: usize,
}

/// A feature made in memory for [`VectorSource::from_features`].
#[derive(Debug, Clone)]
pub struct MemoryFeature {
    pub id: Option<u64>,
    /// Attribute values by index into the source's fields, without nulls.
    pub properties: Vec<(usize, PropertyValue)>,
    /// Geometry in Web Mercator metres.
    pub geometry: geo::Geometry<f64>,
}

/// A vector dataset loaded into memory and indexed for tile requests.
#[derive(Debug)]
pub struct VectorSource {
    path: PathBuf,
    options: VectorOptions,
    infos: Vec<LayerInfo>,
    layers: Vec<LayerData>,
    bounds_lonlat: Bbox,
}

impl VectorSource {
    /// Loads every layer of the OGR dataset at `path`.
    ///
    /// Features that cannot be served are skipped with a warning that names the file, layer,
    /// feature and reason, and counted in [`LayerInfo::skipped`]. Layers without a geometry
    /// column are left out. The dataset fails to open only when GDAL cannot open it, it has no
    /// layer with a geometry column, or a layer's CRS cannot be transformed.
    pub fn open(path: &Path, options: VectorOptions) -> Result<VectorSource, VectorError> {
        options.validate()?;
        let loaded = load::load_dataset(path)?;
        let bounds_lonlat = loaded.bounds_lonlat.unwrap_or(Bbox {
            min_x: -180.0,
            min_y: -MAX_LATITUDE,
            max_x: 180.0,
            max_y: MAX_LATITUDE,
        });
        Ok(VectorSource {
            path: path.to_owned(),
            options,
            infos: loaded.infos,
            layers: loaded.layers,
            bounds_lonlat,
        })
    }

    /// Builds a one-layer source from features made in memory, with geometries in Web
    /// Mercator metres. `path` names the file they were derived from, for logs. Properties
    /// are `(index into fields, value)` pairs, in the order of `fields`.
    pub fn from_features(
        path: &Path,
        layer: &str,
        fields: &[(String, FieldType)],
        features: Vec<MemoryFeature>,
        options: VectorOptions,
    ) -> Result<VectorSource, VectorError> {
        options.validate()?;
        let mut bounds: Option<geo::Rect<f64>> = None;
        for feature in &features {
            if let Some(rect) = geo::BoundingRect::bounding_rect(&feature.geometry) {
                bounds = Some(bounds.map_or(rect, |b| {
                    geo::Rect::new(
                        geo::coord! { x: b.min().x.min(rect.min().x), y: b.min().y.min(rect.min().y) },
                        geo::coord! { x: b.max().x.max(rect.max().x), y: b.max().y.max(rect.max().y) },
                    )
                }));
            }
        }
        let bounds_lonlat = bounds.map_or(
            Bbox::new(-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE),
            |rect| {
                let (min_x, min_y) = crate::tile::mercator_to_lonlat(rect.min().x, rect.min().y);
                let (max_x, max_y) = crate::tile::mercator_to_lonlat(rect.max().x, rect.max().y);
                Bbox::new(min_x, min_y, max_x, max_y)
            },
        );
        let info = LayerInfo {
            name: layer.to_owned(),
            fields: fields.iter().cloned().collect(),
            geometry_type: geometry_type_name(&features).to_owned(),
            feature_count: features.len(),
            skipped: 0,
            repaired: 0,
        };
        let stored = features
            .into_iter()
            .map(|feature| index::StoredFeature {
                id: feature.id,
                properties: feature.properties,
                geometry: feature.geometry,
            })
            .collect();
        let keys = fields.iter().map(|(name, _)| name.clone()).collect();
        Ok(VectorSource {
            path: path.to_owned(),
            options,
            infos: vec![info],
            layers: vec![LayerData::new(layer.to_owned(), keys, stored)],
            bounds_lonlat,
        })
    }

    pub fn layers(&self) -> &[LayerInfo] {
        &self.infos
    }

    /// Returns the bounds of all served features in degrees, as in the data (not clamped to
    /// Web Mercator's latitude limit), or the whole Web Mercator world when no feature is
    /// served.
    pub fn bounds_lonlat(&self) -> Bbox {
        self.bounds_lonlat
    }

    pub fn options(&self) -> &VectorOptions {
        &self.options
    }

    /// Encodes a tile as uncompressed MVT bytes, or returns `None` when no feature touches
    /// the buffered tile.
    ///
    /// Tiles at the western and eastern edge of the world also contain the features across
    /// the antimeridian that fall in their buffer.
    pub fn tile(&self, tile: TileCoord) -> Result<Option<Vec<u8>>, VectorError> {
        self.tile_counted(tile).map(|encoded| encoded.bytes)
    }

    /// Encodes a tile like [`VectorSource::tile`] and also returns how many features beyond
    /// `max_features_per_tile` were left out.
    pub fn tile_counted(&self, tile: TileCoord) -> Result<EncodedTile, VectorError> {
        if tile.z < self.options.minzoom || tile.z > self.options.maxzoom {
            return Err(VectorError::ZoomOutOfRange {
                z: tile.z,
                minzoom: self.options.minzoom,
                maxzoom: self.options.maxzoom,
            });
        }
        let size = 1_u64 << tile.z;
        if u64::from(tile.x) >= size || u64::from(tile.y) >= size {
            return Err(VectorError::TileOutOfRange {
                z: tile.z,
                x: tile.x,
                y: tile.y,
                size,
            });
        }
        let _span = tracing::debug_span!(
            "vector_tile",
            file = %self.path.display(),
            tile.z = tile.z,
            tile.x = tile.x,
            tile.y = tile.y
        )
        .entered();
        encode::encode_tile(&self.layers, tile, &self.options)
    }
}

/// Returns `Point`, `LineString` or `Polygon` when every feature has that type (multi-types
/// included), or else `Unknown`.
fn geometry_type_name(features: &[MemoryFeature]) -> &'static str {
    let name = |geometry: &geo::Geometry<f64>| match geometry {
        geo::Geometry::Point(_) | geo::Geometry::MultiPoint(_) => "Point",
        geo::Geometry::LineString(_) | geo::Geometry::MultiLineString(_) => "LineString",
        geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_) => "Polygon",
        _ => "Unknown",
    };
    let mut names = features.iter().map(|feature| name(&feature.geometry));
    let first = names.next().unwrap_or("Unknown");
    if names.all(|other| other == first) {
        first
    } else {
        "Unknown"
    }
}

/// The MVT bytes of a tile, or `None` when it is empty, and the count of features left out
/// because of `max_features_per_tile`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedTile {
    pub bytes: Option<Vec<u8>>,
    pub dropped_features: usize,
}

/// Compresses tile bytes with gzip at the fastest level, for clients that accept gzip.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 64),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}
