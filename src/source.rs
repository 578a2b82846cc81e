//! The catalog: every served source, whatever its backend, with its TileJSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::archive::Archive;
use crate::collection::{Collection, CollectionKind, CollectionOptions};
use crate::config::{self, Config, SourceConfig};
use crate::density::{DensityOptions, DensitySource};
use crate::floorplan::{FloorplanOptions, FloorplanSource};
use crate::format::TileFormat;
use crate::postgis::{PostgisOptions, PostgisSource};
use crate::raster::{RasterOptions, RasterSource};
use crate::tile::{self, Bbox, TileCoord};
use crate::vector::{VectorOptions, VectorSource};

/// The kind of tiles a source serves, as `/catalog` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Raster,
    Vector,
    /// Points served as aggregation (MVT) and heat-map (PNG) tiles.
    Density,
}

/// The backend that produces a source's tiles.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per source, built once at start-up"
)]
pub enum Backend {
    Raster(RasterSource),
    Vector(VectorSource),
    Archive(Archive),
    Floorplan(FloorplanSource),
    Collection(Collection),
    Density(DensitySource),
    /// A table or function of a PostGIS database.
    Postgis(PostgisSource),
}

/// A served source: its id, descriptive metadata and backend.
#[derive(Debug)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub attribution: Option<String>,
    pub description: Option<String>,
    pub path: PathBuf,
    pub backend: Backend,
    /// Access rules: visibility, key groups, private attributes and sensitive points.
    pub access: crate::access::SourceAccess,
    /// The state (path, size, modification time) of the file when it was read, for sources
    /// held in memory from start-up; see [`Source::revision`].
    pub loaded_revision: u64,
}

/// A file that could not be served, reported at start-up.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub reason: String,
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match &self.backend {
            Backend::Raster(_) | Backend::Collection(_) => SourceKind::Raster,
            Backend::Vector(_) | Backend::Floorplan(_) | Backend::Postgis(_) => SourceKind::Vector,
            Backend::Archive(archive) => {
                if archive.metadata().format == TileFormat::Mvt {
                    SourceKind::Vector
                } else {
                    SourceKind::Raster
                }
            }
            Backend::Density(_) => SourceKind::Density,
        }
    }

    /// Returns the format that TileJSON advertises.
    pub fn format(&self) -> TileFormat {
        match &self.backend {
            Backend::Raster(raster) => raster.options().format,
            Backend::Vector(_)
            | Backend::Floorplan(_)
            | Backend::Density(_)
            | Backend::Postgis(_) => TileFormat::Mvt,
            Backend::Archive(archive) => archive.metadata().format,
            Backend::Collection(collection) => collection.format(),
        }
    }

    /// Returns whether a tile can be requested in `format`: imagery in every raster format, vectors
    /// and archives only in their own.
    pub fn serves_format(&self, format: TileFormat) -> bool {
        match &self.backend {
            Backend::Raster(_) | Backend::Collection(_) => format.is_raster(),
            Backend::Vector(_) | Backend::Floorplan(_) | Backend::Postgis(_) => {
                format == TileFormat::Mvt
            }
            Backend::Archive(archive) => archive.metadata().format == format,
            // Aggregation in MVT; heat maps need alpha, which JPEG lacks.
            Backend::Density(_) => {
                matches!(format, TileFormat::Mvt | TileFormat::Png | TileFormat::Webp)
            }
        }
    }

    pub fn zoom_range(&self) -> (u8, u8) {
        match &self.backend {
            Backend::Raster(raster) => (raster.minzoom(), raster.maxzoom()),
            Backend::Vector(vector) => (vector.options().minzoom, vector.options().maxzoom),
            Backend::Archive(archive) => (archive.metadata().minzoom, archive.metadata().maxzoom),
            Backend::Floorplan(plan) => {
                let options = plan.vector().options();
                (options.minzoom, options.maxzoom)
            }
            Backend::Collection(collection) => (collection.minzoom(), collection.maxzoom()),
            Backend::Density(density) => (density.options().minzoom, density.options().maxzoom),
            Backend::Postgis(postgis) => postgis.zoom_range(),
        }
    }

    /// Returns the source's bounds, grown to whole grid cells for a request without a key
    /// when the source has sensitive points.
    pub fn bounds_lonlat(&self) -> Bbox {
        let bounds = match &self.backend {
            Backend::Raster(raster) => raster.bounds_lonlat(),
            Backend::Vector(vector) => vector.bounds_lonlat(),
            Backend::Archive(archive) => archive.metadata().bounds,
            Backend::Floorplan(plan) => plan.vector().bounds_lonlat(),
            Backend::Collection(collection) => collection.bounds_lonlat(),
            Backend::Density(density) => density.bounds_lonlat(),
            Backend::Postgis(postgis) => postgis.bounds_lonlat(),
        };
        crate::access::shown_bounds(self, bounds)
    }

    /// Returns whether `tile` can hold any of the source's data. A vector tile reaches into its
    /// neighbours by the buffer, across the antimeridian too, so its buffered bounds are
    /// compared, split where they pass ±180°.
    pub fn touches(&self, tile: TileCoord) -> bool {
        // Cells and heat-map kernels reach beyond the points, and a parent's cells or heat
        // overzoomed by a client would show wrong counts, so every tile is served (204 when
        // empty) instead of 404 outside the bounds.
        if matches!(self.backend, Backend::Density(_)) {
            return true;
        }
        // Rows added after start-up may lie outside the extent read then, so every tile of a
        // table or function is queried (204 when empty).
        if matches!(self.backend, Backend::Postgis(_)) {
            return true;
        }
        let data = tile::bbox_lonlat_to_mercator(&self.bounds_lonlat());
        let vector = match &self.backend {
            Backend::Vector(vector) => Some(vector),
            Backend::Floorplan(plan) => Some(plan.vector()),
            _ => None,
        };
        match vector {
            Some(vector) => {
                let options = vector.options();
                let fraction = f64::from(options.buffer) / f64::from(options.extent.max(1));
                tile.buffered_bounds_mercator(fraction)
                    .split_at_antimeridian_mercator()
                    .iter()
                    .any(|(part, _)| part.intersects(&data))
            }
            None => tile.bounds_mercator().intersects(&data),
        }
    }

    /// Returns the dates of the source's dated imagery, as ISO 8601 dates, oldest first. WMTS
    /// advertises them as the TIME dimension.
    pub fn dates(&self) -> Vec<String> {
        match &self.backend {
            Backend::Collection(collection) if collection.kind() == CollectionKind::Dated => {
                collection.dates().iter().map(ToString::to_string).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Returns a number that changes when the source's data changes, for cache keys: a hash
    /// of the size and modification time of its file, or of every scene of a collection.
    /// Remote files hash their URL only, so a rewritten remote file keeps its revision.
    pub fn revision(&self) -> u64 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        match &self.backend {
            Backend::Collection(collection) => {
                for scene in collection.scenes() {
                    hash_file_state(&mut hasher, scene.raster.path());
                }
            }
            Backend::Raster(_) => hash_file_state(&mut hasher, &self.path),
            // Read once at start-up (archives are held open): the data served is the file as
            // it was then, whatever the file is now, so the revision is that of the load. A
            // revision of the file now would store old data under the new file's key, and a
            // restart would serve it as new.
            Backend::Vector(_)
            | Backend::Archive(_)
            | Backend::Floorplan(_)
            | Backend::Density(_) => return self.loaded_revision,
            Backend::Postgis(postgis) => return postgis.revision(),
        }
        hasher.digest()
    }

    /// TileJSON 3.0.0 for this source, with tile URLs under `base_url`.
    pub fn tilejson(&self, base_url: &str) -> Value {
        let (minzoom, maxzoom) = self.zoom_range();
        let lonlat = self.bounds_lonlat();
        let bounds = [lonlat.min_x, lonlat.min_y, lonlat.max_x, lonlat.max_y];
        let centre_zoom = fitting_zoom(&lonlat).clamp(minzoom, maxzoom);
        let mut tilejson = json!({
            "tilejson": "3.0.0",
            "name": self.name,
            "tiles": [format!("{base_url}/tiles/{}/{{z}}/{{x}}/{{y}}.{}", self.id, self.format().extension())],
            "scheme": "xyz",
            "minzoom": minzoom,
            "maxzoom": maxzoom,
            "bounds": bounds,
            "center": [f64::midpoint(bounds[0], bounds[2]), f64::midpoint(bounds[1], bounds[3]), centre_zoom],
        });
        if let Some(attribution) = &self.attribution {
            tilejson["attribution"] = json!(attribution);
        }
        if let Some(description) = &self.description {
            tilejson["description"] = json!(description);
        }
        match &self.backend {
            Backend::Vector(vector) => {
                let layers: Vec<Value> = vector
                    .layers()
                    .iter()
                    .map(|layer| {
                        let fields: serde_json::Map<String, Value> = layer
                            .fields
                            .iter()
                            .map(|(name, field)| (name.clone(), json!(field.as_str())))
                            .collect();
                        json!({ "id": layer.name, "fields": fields, "minzoom": minzoom, "maxzoom": maxzoom,
                                "geometry_type": layer.geometry_type, "feature_count": layer.feature_count })
                    })
                    .collect();
                tilejson["vector_layers"] = Value::Array(layers);
            }
            Backend::Archive(archive) => {
                if let Some(layers) = &archive.metadata().vector_layers {
                    tilejson["vector_layers"] = layers.clone();
                }
            }
            Backend::Floorplan(plan) => {
                tilejson["vector_layers"] = plan.vector_layers_json(minzoom, maxzoom);
                tilejson["tessera:levels"] = plan.levels_json();
                tilejson["tessera:model"] = json!(format!("{base_url}/models/{}.glb", self.id));
            }
            Backend::Raster(raster) => {
                let info = raster.info();
                tilejson["tessera:native_resolution_m"] = json!(info.resolution_metres.0);
                tilejson["tessera:native_zoom"] = json!(info.native_zoom());
                tilejson["tessera:coverage"] = json!(self.coverage_tilejson_url(base_url));
                tilejson["tessera:enhancement"] = raster.enhancement_tilejson();
            }
            Backend::Collection(collection) => {
                for (key, value) in collection.tilejson_fields() {
                    tilejson[key] = value;
                }
                tilejson["tessera:coverage"] = json!(self.coverage_tilejson_url(base_url));
            }
            Backend::Postgis(postgis) => postgis.extend_tilejson(&mut tilejson),
            Backend::Density(density) => {
                density.extend_tilejson(
                    &mut tilejson,
                    base_url,
                    &self.id,
                    &crate::density::Filter::default(),
                );
            }
        }
        tilejson
    }

    /// Returns the TileJSON URL of the source's coverage layer, the sibling source that
    /// `load_catalog` adds for every imagery source.
    fn coverage_tilejson_url(&self, base_url: &str) -> String {
        let suffix = crate::collection::coverage::COVERAGE_SUFFIX;
        format!("{base_url}/tiles/{}{suffix}.json", self.id)
    }

    /// Builds the entry of this source in `/catalog`.
    pub fn catalog_entry(&self, base_url: &str) -> Value {
        let (minzoom, maxzoom) = self.zoom_range();
        let bounds = self.bounds_lonlat();
        let mut entry = json!({
            "id": self.id,
            "kind": self.kind(),
            "name": self.name,
            "format": self.format().extension(),
            "tilejson": crate::access::url_with_key(&format!("{base_url}/tiles/{}.json", self.id)),
            "minzoom": minzoom,
            "maxzoom": maxzoom,
            "bounds": [bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y],
            "attribution": self.attribution,
        });
        if let Some(imagery) = crate::collection::coverage::coverage_of(self) {
            entry["coverage_of"] = json!(imagery);
        }
        entry
    }
}

/// Adds the path, size and modification time of `path` to `hasher`. A file that cannot be
/// read adds its path only, and a remote path (`/vsicurl/`, `/vsis3/`) is never read here.
/// Returns the revision of the file at `path` as it is now: its path, size and modification
/// time.
pub fn file_revision(path: &Path) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hash_file_state(&mut hasher, path);
    hasher.digest()
}

fn hash_file_state(hasher: &mut xxhash_rust::xxh3::Xxh3, path: &Path) {
    hasher.update(path.as_os_str().as_encoded_bytes());
    if crate::remote::is_remote(path) {
        return;
    }
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    hasher.update(&metadata.len().to_le_bytes());
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    hasher.update(&modified.to_le_bytes());
}

/// Returns the zoom at which `bounds` spans about two 256-pixel tiles, so that a map opened at
/// the TileJSON centre shows the whole extent.
fn fitting_zoom(bounds: &Bbox) -> u8 {
    let mercator = tile::bbox_lonlat_to_mercator(bounds);
    let span = (mercator.max_x - mercator.min_x).max(mercator.max_y - mercator.min_y);
    if !(span.is_finite() && span > 0.0) {
        return tile::MAX_ZOOM;
    }
    let world = 2.0 * tile::ORIGIN_SHIFT;
    ((world / span).log2().floor() + 1.0).clamp(0.0, f64::from(tile::MAX_ZOOM)) as u8
}

/// The sources of a running server, by id, in a stable order.
#[derive(Debug, Default)]
pub struct Catalog {
    sources: HashMap<String, Arc<Source>>,
    order: Vec<String>,
}

impl Catalog {
    /// Returns source `id` when the current request may see it (`access::is_visible`).
    pub fn get(&self, id: &str) -> Option<&Arc<Source>> {
        self.sources
            .get(id)
            .filter(|source| crate::access::is_visible(source))
    }

    /// Returns the sources that the current request may see, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Source>> {
        self.order
            .iter()
            .filter_map(|id| self.sources.get(id))
            .filter(|source| crate::access::is_visible(source))
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&mut self, source: Source) {
        self.order.push(source.id.clone());
        self.sources.insert(source.id.clone(), Arc::new(source));
    }

    /// Returns an id for `wanted` that no source has yet: `wanted`, else `wanted-2`, `wanted-3`, ….
    fn free_id(&self, wanted: &str) -> String {
        let mut id = wanted.to_owned();
        let mut n = 2;
        while self.sources.contains_key(&id) {
            id = format!("{wanted}-{n}");
            n += 1;
        }
        id
    }
}

/// Opens the configured sources and those found under `config.paths`. A file that cannot be
/// served is logged and returned as a failure; the others are served.
pub async fn load_catalog(config: &Config) -> (Catalog, Vec<LoadFailure>) {
    let mut catalog = Catalog::default();
    let mut failures = Vec::new();
    let mut fail = |path: &Path, reason: String| {
        tracing::warn!(path = %crate::remote::display_path(path), %reason, "source not served");
        failures.push(LoadFailure {
            path: path.to_owned(),
            reason,
        });
    };

    load_configured(config, &mut catalog, &mut fail).await;
    for failure in load_postgis(config, &mut catalog).await {
        fail(&failure.path, failure.reason);
    }
    let configured: Vec<PathBuf> = config.sources.values().map(|s| s.path.clone()).collect();
    for root in &config.paths {
        if !root.exists() {
            fail(root, "file or folder not found".to_owned());
            continue;
        }
        let files = match config::discover(root) {
            Ok(files) => files,
            Err(error) => {
                fail(root, format!("cannot list folder: {error}"));
                continue;
            }
        };
        for path in files.into_iter().filter(|path| !configured.contains(path)) {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("source");
            let id = catalog.free_id(&config::id_from_stem(stem));
            let source_config = match config::sidecar(&path) {
                Ok(Some(side)) => side,
                Ok(None) => SourceConfig {
                    path: path.clone(),
                    name: None,
                    attribution: None,
                    description: None,
                    options: toml::Table::new(),
                },
                Err(error) => {
                    fail(&path, error.to_string());
                    continue;
                }
            };
            if let Err(reason) =
                crate::limits::check_vector_file_size(&path, &source_config, config)
            {
                fail(&path, reason);
                continue;
            }
            match open_source(&id, &source_config).await {
                Ok(source) => {
                    tracing::info!(id = %source.id, path = %path.display(), kind = ?source.kind(), "serving");
                    catalog.insert(source);
                }
                // `.json` files beside imagery are often metadata (a STAC item, a TileJSON),
                // not vector data: found in a folder, they are skipped, not reported.
                Err(reason) if path != *root && has_extension(&path, "json") => {
                    tracing::info!(path = %path.display(), %reason, "skipped a .json file that is not vector data");
                }
                Err(reason) => fail(&path, reason),
            }
        }
    }
    for coverage in crate::collection::coverage::coverage_sources(&catalog).await {
        match coverage {
            Ok(source) if catalog.get(&source.id).is_none() => catalog.insert(source),
            Ok(source) => {
                tracing::warn!(id = %source.id, "coverage layer not served: a source already has its id");
            }
            Err(failure) => fail(&failure.path, failure.reason),
        }
    }
    if catalog.is_empty() {
        tracing::warn!(
            "no source is served: name files or folders, or set `paths` or `sources` in the configuration"
        );
    }
    (catalog, failures)
}

/// Opens the file sources named in `config.sources` into `catalog`, and reports those that
/// fail through `fail`. Sources naming a PostGIS table or function are left to `load_postgis`.
async fn load_configured(
    config: &Config,
    catalog: &mut Catalog,
    fail: &mut impl FnMut(&Path, String),
) {
    for (id, source_config) in &config.sources {
        if PostgisOptions::names_database_object(&source_config.options) {
            if config.postgres.is_none() {
                fail(
                    &postgis_path(id),
                    format!(
                        "source {id:?} names a table or function, but the configuration has no [postgres] section: add one with the database URL"
                    ),
                );
            }
            continue;
        }
        if let Err(reason) =
            crate::limits::check_vector_file_size(&source_config.path, source_config, config)
        {
            fail(&source_config.path, reason);
            continue;
        }
        match open_source(id, source_config).await {
            Ok(source) => {
                tracing::info!(id = %source.id, path = %crate::remote::display_path(&source.path), kind = ?source.kind(), "serving");
                catalog.insert(source);
            }
            Err(reason) => fail(&source_config.path, reason),
        }
    }
}

/// Opens the sources of the `[postgres]` database into `catalog`, and returns those that
/// failed.
async fn load_postgis(config: &Config, catalog: &mut Catalog) -> Vec<LoadFailure> {
    let Some(settings) = &config.postgres else {
        return Vec::new();
    };
    let mut failures = Vec::new();
    for opened in crate::postgis::open_sources(config, settings).await {
        match opened {
            Ok(postgis) => {
                let source = postgis_source(catalog, config, postgis);
                tracing::info!(id = %source.id, table = %source.path.display(), kind = ?source.kind(), "serving");
                catalog.insert(source);
            }
            Err(failure) => failures.push(LoadFailure {
                path: postgis_path(&failure.name),
                reason: failure.reason,
            }),
        }
    }
    failures
}

/// Returns the path that reports and logs show for a PostGIS source or table: `postgres:NAME`.
fn postgis_path(name: &str) -> PathBuf {
    PathBuf::from(format!("postgres:{name}"))
}

/// Wraps a PostGIS source with its configured name, attribution and description. A discovered
/// table gets its table name as id, or a free variant of it.
fn postgis_source(catalog: &Catalog, config: &Config, postgis: PostgisSource) -> Source {
    let configured = config.sources.get(postgis.id());
    let id = match configured {
        Some(_) => postgis.id().to_owned(),
        None => catalog.free_id(postgis.id()),
    };
    // The options were checked when the source opened, so a failure here cannot happen; a
    // discovered table takes the server's defaults.
    let access = configured
        .and_then(|c| crate::access::SourceAccess::take_from(&mut c.options.clone()).ok())
        .unwrap_or_default();
    Source {
        access,
        loaded_revision: 0,
        name: configured
            .and_then(|c| c.name.clone())
            .unwrap_or_else(|| id.clone()),
        attribution: configured.and_then(|c| c.attribution.clone()),
        description: configured.and_then(|c| c.description.clone()),
        path: postgis_path(&postgis.object_name()),
        id,
        backend: Backend::Postgis(postgis),
    }
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

/// Opens one source. The error is a sentence for the start-up report.
pub async fn open_source(id: &str, source_config: &SourceConfig) -> Result<Source, String> {
    config::validate_id(id).map_err(|error| error.to_string())?;
    let path = crate::remote::gdal_path(&source_config.path);
    if !path.exists() && !crate::remote::is_remote(&path) {
        return Err(format!("file not found: {}", path.display()));
    }
    // Taken before the file is read, so that a change during the read shows as a new
    // revision at the next start.
    let loaded_revision = file_revision(&path);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut kind_options = source_config.options.clone();
    let access = crate::access::SourceAccess::take_from(&mut kind_options)
        .map_err(|message| format!("invalid access options for source {id:?}: {message}"))?;
    let options = toml::Value::Table(kind_options.clone());
    let options_error =
        |error: toml::de::Error| format!("invalid options for source {id:?}: {error}");
    let is_points = source_config
        .options
        .get("kind")
        .and_then(toml::Value::as_str)
        == Some("points");
    let backend = if is_points {
        let options = DensityOptions::deserialize(options).map_err(options_error)?;
        let points_path = path.clone();
        let density =
            tokio::task::spawn_blocking(move || DensitySource::open(&points_path, options))
                .await
                .map_err(|error| format!("loading the points panicked: {error}"))?;
        Backend::Density(density.map_err(|error| error.to_string())?)
    } else if path.is_dir() || source_config.options.contains_key("kind") {
        let options = CollectionOptions::deserialize(options).map_err(options_error)?;
        let folder = path.clone();
        let collection = tokio::task::spawn_blocking(move || Collection::open(&folder, &options))
            .await
            .map_err(|error| format!("opening the collection panicked: {error}"))?;
        Backend::Collection(collection.map_err(|error| error.to_string())?)
    } else if config::ARCHIVE_EXTENSIONS.contains(&extension.as_str()) {
        if !kind_options.is_empty() {
            return Err(format!(
                "source {id:?} is a tile archive and takes no options beyond path, name, attribution and description"
            ));
        }
        Backend::Archive(
            Archive::open(&path)
                .await
                .map_err(|error| error.to_string())?,
        )
    } else if config::MODEL_EXTENSIONS.contains(&extension.as_str()) {
        let options = FloorplanOptions::deserialize(options).map_err(options_error)?;
        let model_path = path.clone();
        let plan =
            tokio::task::spawn_blocking(move || FloorplanSource::open(&model_path, &options))
                .await
                .map_err(|error| format!("opening the model panicked: {error}"))?;
        Backend::Floorplan(plan.map_err(|error| error.to_string())?)
    } else if config::RASTER_EXTENSIONS.contains(&extension.as_str()) {
        let options = RasterOptions::deserialize(options).map_err(options_error)?;
        let raster_path = path.clone();
        let raster = tokio::task::spawn_blocking(move || RasterSource::open(&raster_path, options))
            .await
            .map_err(|error| format!("opening the raster panicked: {error}"))?;
        Backend::Raster(raster.map_err(|error| error.to_string())?)
    } else {
        let options = VectorOptions::deserialize(options).map_err(options_error)?;
        let vector_path = path.clone();
        let vector = tokio::task::spawn_blocking(move || VectorSource::open(&vector_path, options))
            .await
            .map_err(|error| format!("opening the vector file panicked: {error}"))?;
        Backend::Vector(vector.map_err(|error| error.to_string())?)
    };
    let archive_name = match &backend {
        Backend::Archive(archive) => archive.metadata().name.clone(),
        _ => None,
    };
    let archive_attribution = match &backend {
        Backend::Archive(archive) => archive.metadata().attribution.clone(),
        _ => None,
    };
    Ok(Source {
        id: id.to_owned(),
        name: source_config
            .name
            .clone()
            .or(archive_name)
            .unwrap_or_else(|| id.to_owned()),
        attribution: source_config.attribution.clone().or(archive_attribution),
        description: source_config.description.clone(),
        path,
        backend,
        access,
        loaded_revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_zoom_follows_the_extent() {
        let cases = [
            // The world fits at zoom 1 (two tiles wide).
            (Bbox::new(-180.0, -85.0, 180.0, 85.0), 1),
            // North Korea: 6.5 degrees wide, and about 7.3 degrees tall in Web Mercator.
            (Bbox::new(124.2, 37.7, 130.7, 43.0), 6),
            // A 2.5 km image cut-out near 47° N.
            (Bbox::new(-99.18, 47.01, -99.147, 47.03), 14),
            // A point has no extent: the deepest zoom, which the source's range then clamps.
            (Bbox::new(8.43, 49.09, 8.43, 49.09), tile::MAX_ZOOM),
        ];
        for (bounds, zoom) in cases {
            assert_eq!(fitting_zoom(&bounds), zoom, "{bounds:?}");
        }
    }
}
