//! Scene collections: imagery layers made of many files, served as a dated layer (one date at
//! a time, chosen by the `date` request parameter) or as a mosaic (every scene, composited).
//!
//! A collection is a folder, or a list of files in it, configured with `kind = "dated"` or
//! `kind = "mosaic"`. Each scene is a [`RasterSource`] with its [`SceneFacts`]. An R-tree of
//! the scenes' bounds finds the scenes that touch a tile. Each of them is warped onto the same tile
//! grid with its own nodata and mask as alpha, and the results are composited in order, so
//! that neither scene edges nor tile edges show seams.

mod composite;
pub mod coverage;
pub mod date;
mod scene;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;

pub use self::date::{Date, Period};
pub use self::scene::{DateOrigin, SceneFacts, SceneOverrides, StacItems, read_facts};
use crate::enhance::{Applied, EnhanceRequest};
use crate::format::TileFormat;
use crate::raster::{RasterError, RasterOptions, RasterSource, RenderedTile, Resampling, encode};
use crate::tile::{Bbox, TileCoord};

#[derive(Debug, Error)]
pub enum CollectionError {
    #[error("invalid options for collection {path}: {message}")]
    Options { path: PathBuf, message: String },
    #[error(
        "collection {path} has no scenes: put .tif, .tiff or .vrt files in the folder, or list them in `files`"
    )]
    Empty { path: PathBuf },
    #[error("cannot list the folder of collection {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "scene {path} of collection {collection} not found: fix `files`, which names files relative to the collection's folder"
    )]
    SceneNotFound { collection: PathBuf, path: PathBuf },
    #[error("scene {path} of collection {collection} cannot be served: {source}")]
    Scene {
        collection: PathBuf,
        path: PathBuf,
        source: Box<RasterError>,
    },
    #[error("reading the facts of scene {path} failed: {source}")]
    Facts {
        path: PathBuf,
        source: gdal::errors::GdalError,
    },
    #[error(
        "scene {path} of dated collection {collection} has no date in its metadata, a STAC item or its file name: set it in `dates`, for example dates = {{ {name:?} = \"2014-07-20\" }}"
    )]
    Undated {
        collection: PathBuf,
        path: PathBuf,
        name: String,
    },
    #[error(
        "`dates` of collection {path} names {name:?}, which is not one of its scenes: use a file name from the folder"
    )]
    UnknownDatedFile { path: PathBuf, name: String },
    #[error("no scene is dated at or before {requested}: the first date of this layer is {first}")]
    BeforeFirstDate { requested: Period, first: Period },
    #[error("no scene of this layer has a date, so `date` selects none: omit `date`")]
    NoDates,
    #[error("rendering scene {file} failed: {source}")]
    Render {
        file: String,
        source: Box<RasterError>,
    },
    #[error(transparent)]
    Encode(#[from] encode::EncodeError),
}

/// The way a collection serves its scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionKind {
    /// One date per tile: the newest date at or before the requested one, and only the
    /// scenes of that date.
    Dated,
    /// Every scene, composited in `order`; a `date` leaves out later scenes.
    Mosaic,
}

/// The order in which a mosaic's scenes cover each other, first on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SceneOrder {
    /// The finest ground resolution first, then the newest.
    #[default]
    Finest,
    /// The newest first, then the finest.
    Newest,
}

impl SceneOrder {
    /// Orders two scenes, each given as (resolution in metres, date, place in the list), for
    /// compositing, first on top. Resolutions within about 4 % count as equal, so that two
    /// scenes of one sensor whose pixel sizes differ by a rounding error are ordered by date.
    /// Ties end in list order.
    fn compare(
        self,
        a: (f64, Option<Period>, usize),
        b: (f64, Option<Period>, usize),
    ) -> std::cmp::Ordering {
        let resolution_step = |resolution_m: f64| (resolution_m.log2() * 16.0).round() as i64;
        // Newest first; an undated scene comes after every dated one.
        let newest = b.1.cmp(&a.1);
        let finest = resolution_step(a.0).cmp(&resolution_step(b.0));
        let (first, second) = match self {
            Self::Finest => (finest, newest),
            Self::Newest => (newest, finest),
        };
        first.then(second).then(a.2.cmp(&b.2))
    }
}

/// The options of a collection source, beside `path` (the folder). Unknown keys are rejected
/// when `raster` is read as imagery options, because serde's `deny_unknown_fields` does not
/// work with `flatten`.
#[derive(Debug, Clone, Deserialize)]
pub struct CollectionOptions {
    pub kind: CollectionKind,
    /// Scene files relative to the folder; default: every .tif, .tiff and .vrt file in it.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub order: SceneOrder,
    /// Acquisition dates by file name, which win over the dates found in the files.
    #[serde(default)]
    pub dates: BTreeMap<String, Period>,
    /// The sensor of every scene whose metadata names none.
    #[serde(default)]
    pub sensor: Option<String>,
    /// The provenance of every scene (a programme, an archive). Default: the STAC item, or
    /// else the file name.
    #[serde(default)]
    pub source: Option<String>,
    /// Imagery options applied to every scene: `bands`, `rescale`, `resampling`, `format`,
    /// `nodata`, `minzoom`, `maxzoom`.
    #[serde(flatten)]
    pub raster: toml::Table,
}

/// One scene: its raster and its facts.
#[derive(Debug)]
pub struct Scene {
    pub raster: RasterSource,
    pub facts: SceneFacts,
}

type Footprint = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// A layer made of many scenes.
#[derive(Debug)]
pub struct Collection {
    kind: CollectionKind,
    order: SceneOrder,
    format: TileFormat,
    scenes: Vec<Scene>,
    tree: RTree<Footprint>,
    bounds_lonlat: Bbox,
    minzoom: u8,
    maxzoom: u8,
}

impl Collection {
    /// Opens every scene of the collection in `folder`. Blocking: call it at start-up.
    pub fn open(folder: &Path, options: &CollectionOptions) -> Result<Self, CollectionError> {
        let options_error = |message: String| CollectionError::Options {
            path: folder.to_owned(),
            message,
        };
        let raster_options = RasterOptions::deserialize(toml::Value::Table(options.raster.clone()))
            .map_err(|error| options_error(error.to_string()))?;
        if raster_options.date.is_some() {
            return Err(options_error(
                "`date` sets the date of a single file: give each scene's date in `dates`, for example dates = { \"scene.tif\" = \"2014-07-20\" }".to_owned(),
            ));
        }

        let files = match &options.files {
            Some(files) => files.iter().map(|file| folder.join(file)).collect(),
            None => scene_files(folder)?,
        };
        if files.is_empty() {
            return Err(CollectionError::Empty {
                path: folder.to_owned(),
            });
        }

        for name in options.dates.keys() {
            if !files.iter().any(|file| file_name(file) == *name) {
                return Err(CollectionError::UnknownDatedFile {
                    path: folder.to_owned(),
                    name: name.clone(),
                });
            }
        }

        let stac = StacItems::in_folder(folder);
        // NOTE: with the default `rescale = "auto"`, each scene of 16-bit data gets its own
        // percentile stretch, so brightness can jump at a scene edge. A fixed
        // `rescale = "range:MIN,MAX"` gives every scene the same stretch.
        let mut scenes = Vec::with_capacity(files.len());
        for path in files {
            scenes.push(open_scene(folder, path, &raster_options, options, &stac)?);
        }
        Ok(Self::from_scenes(
            options.kind,
            options.order,
            raster_options.format,
            scenes,
        ))
    }

    fn from_scenes(
        kind: CollectionKind,
        order: SceneOrder,
        format: TileFormat,
        scenes: Vec<Scene>,
    ) -> Self {
        let envelopes = scenes
            .iter()
            .enumerate()
            .map(|(index, scene)| {
                // The grid's bounds, not the footprint: a footprint traced on a coarse overview
                // can miss a sliver of valid pixels, and the tile beside it would lose them.
                let bounds = scene.raster.info().bounds_mercator;
                let corners = Rectangle::from_corners(
                    [bounds.min_x, bounds.min_y],
                    [bounds.max_x, bounds.max_y],
                );
                GeomWithData::new(corners, index)
            })
            .collect();
        let bounds_lonlat = scenes
            .iter()
            .map(|scene| scene.raster.bounds_lonlat())
            .reduce(|a, b| Bbox {
                min_x: a.min_x.min(b.min_x),
                min_y: a.min_y.min(b.min_y),
                max_x: a.max_x.max(b.max_x),
                max_y: a.max_y.max(b.max_y),
            })
            .expect("a collection has at least one scene");
        let minzoom = scenes
            .iter()
            .map(|scene| scene.raster.minzoom())
            .min()
            .unwrap_or(0);
        let maxzoom = scenes
            .iter()
            .map(|scene| scene.raster.maxzoom())
            .max()
            .unwrap_or(0);
        Self {
            kind,
            order,
            format,
            scenes,
            tree: RTree::bulk_load(envelopes),
            bounds_lonlat,
            minzoom,
            maxzoom,
        }
    }

    pub fn kind(&self) -> CollectionKind {
        self.kind
    }

    pub fn scenes(&self) -> &[Scene] {
        &self.scenes
    }

    pub fn format(&self) -> TileFormat {
        self.format
    }

    pub fn minzoom(&self) -> u8 {
        self.minzoom
    }

    pub fn maxzoom(&self) -> u8 {
        self.maxzoom
    }

    pub fn bounds_lonlat(&self) -> Bbox {
        self.bounds_lonlat
    }

    /// Returns the distinct scene dates, oldest first.
    pub fn dates(&self) -> Vec<Period> {
        let mut dates: Vec<Period> = self
            .scenes
            .iter()
            .filter_map(|scene| scene.facts.date)
            .collect();
        dates.sort();
        dates.dedup();
        dates
    }

    /// Checks that some scene is dated at or before the end of `requested`.
    pub fn check_date(&self, requested: Period) -> Result<(), CollectionError> {
        match self.dates().first() {
            Some(&first) if first.start() > requested.end() => {
                Err(CollectionError::BeforeFirstDate { requested, first })
            }
            None => Err(CollectionError::NoDates),
            Some(_) => Ok(()),
        }
    }

    /// Returns the scenes drawn in `tile`, first on top: those whose footprints touch it and
    /// that start at or before the end of `date`. A dated layer keeps only the scenes of the
    /// newest date left.
    pub fn scenes_for(&self, tile: TileCoord, date: Option<Period>) -> Vec<usize> {
        let bounds = tile.bounds_mercator();
        let query = AABB::from_corners([bounds.min_x, bounds.min_y], [bounds.max_x, bounds.max_y]);
        let mut found: Vec<usize> = self
            .tree
            .locate_in_envelope_intersecting(&query)
            .map(|footprint| footprint.data)
            .filter(|&index| {
                let scene = &self.scenes[index];
                let in_period = match date {
                    None => true,
                    Some(date) => scene
                        .facts
                        .date
                        .is_some_and(|start| start.start() <= date.end()),
                };
                // A scene below its own minzoom would read too many pixels per tile.
                in_period && tile.z >= scene.raster.minzoom() && scene.raster.covers(tile)
            })
            .collect();
        if self.kind == CollectionKind::Dated {
            let newest = found
                .iter()
                .filter_map(|&index| self.scenes[index].facts.date)
                .max();
            found.retain(|&index| self.scenes[index].facts.date == newest);
        }
        found.sort_by(|&a, &b| self.compare_scenes(a, b));
        found
    }

    /// Returns the date that a dated layer shows in `tile` for the request's `date`, or `None`
    /// for a mosaic or a tile without scenes.
    pub fn shown_date(&self, tile: TileCoord, date: Option<Period>) -> Option<Period> {
        if self.kind != CollectionKind::Dated {
            return None;
        }
        let first = *self.scenes_for(tile, date).first()?;
        self.scenes[first].facts.date
    }

    fn compare_scenes(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let key = |index: usize| {
            let facts = &self.scenes[index].facts;
            (facts.resolution_m, facts.date, index)
        };
        self.order.compare(key(a), key(b))
    }

    /// Renders `tile` at `tile_size` pixels a side in `format`: the scenes of
    /// [`Collection::scenes_for`], each warped with its own alpha and composited first on top.
    /// Returns `None` when no pixel has data. Blocking: run it on a worker thread.
    #[allow(
        clippy::too_many_arguments,
        reason = "the tile, its size and format, and the request's three options"
    )]
    pub fn render(
        &self,
        tile: TileCoord,
        tile_size: u32,
        format: TileFormat,
        resampling: Option<Resampling>,
        date: Option<Period>,
        enhance: EnhanceRequest,
        deadline: Instant,
    ) -> Result<Option<RenderedTile>, CollectionError> {
        let mut canvas = composite::Canvas::new(tile_size);
        // The header names the strongest enhancement among the scenes drawn.
        let mut strongest: Option<Applied> = None;
        for index in self.scenes_for(tile, date) {
            let scene = &self.scenes[index];
            let resampling = resampling.unwrap_or(scene.raster.options().resampling);
            let rendered = scene
                .raster
                .render_rgba_enhanced(tile, tile_size, resampling, enhance, deadline)
                .map_err(|source| CollectionError::Render {
                    file: scene.facts.file.clone(),
                    source: Box::new(source),
                })?;
            if let Some((rgba, applied)) = rendered {
                canvas.add_below(&rgba);
                if let Some(applied) = applied
                    && strongest
                        .as_ref()
                        .is_none_or(|known| applied.factor > known.factor)
                {
                    strongest = Some(applied);
                }
            }
            if canvas.is_opaque() {
                break;
            }
        }
        match canvas.into_rgba() {
            None => Ok(None),
            Some(rgba) => Ok(Some(RenderedTile {
                bytes: encode::encode_rgba(&rgba, tile_size, tile_size, format)?,
                enhancement: strongest,
            })),
        }
    }

    /// Fields that TileJSON adds for a collection: its kind, order, dates and scenes.
    pub fn tilejson_fields(&self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("tessera:kind".to_owned(), json!(self.kind));
        fields.insert("tessera:order".to_owned(), json!(self.order));
        fields.insert("tessera:dates".to_owned(), json!(self.dates()));
        let scenes: Vec<Value> = self.scenes.iter().map(|scene| json!(scene.facts)).collect();
        fields.insert("tessera:scenes".to_owned(), Value::Array(scenes));
        let finest = self
            .scenes
            .iter()
            .map(|scene| scene.facts.resolution_m)
            .fold(f64::INFINITY, f64::min);
        fields.insert("tessera:native_resolution_m".to_owned(), json!(finest));
        fields
    }
}

/// Opens one scene of the collection in `folder` and reads its facts.
fn open_scene(
    folder: &Path,
    path: PathBuf,
    raster_options: &RasterOptions,
    options: &CollectionOptions,
    stac: &StacItems,
) -> Result<Scene, CollectionError> {
    if !path.is_file() {
        return Err(CollectionError::SceneNotFound {
            collection: folder.to_owned(),
            path,
        });
    }
    let scene_error = |source| CollectionError::Scene {
        collection: folder.to_owned(),
        path: path.clone(),
        source: Box::new(source),
    };
    let raster = RasterSource::open(&path, raster_options.clone()).map_err(scene_error)?;
    let overrides = SceneOverrides {
        date: options.dates.get(&file_name(&path)).copied(),
        sensor: options.sensor.clone(),
        source: options.source.clone(),
    };
    let mut facts = read_facts(&path, raster.info(), &overrides, stac).map_err(|source| {
        CollectionError::Facts {
            path: path.clone(),
            source,
        }
    })?;
    facts.enhanced_from_zoom = raster.enhanced_from_zoom(256);
    if options.kind == CollectionKind::Dated && facts.date.is_none() {
        return Err(CollectionError::Undated {
            collection: folder.to_owned(),
            name: file_name(&path),
            path,
        });
    }
    tracing::info!(
        scene = %path.display(), date = ?facts.date.map(|d| d.to_string()),
        date_origin = ?facts.date_origin, resolution_m = facts.resolution_m,
        "scene of a collection"
    );
    Ok(Scene { raster, facts })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

/// Lists the raster files directly in `folder`, sorted by name.
fn scene_files(folder: &Path) -> Result<Vec<PathBuf>, CollectionError> {
    let list_error = |source| CollectionError::List {
        path: folder.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(list_error)? {
        let path = entry.map_err(list_error)?.path();
        let hidden = file_name(&path).starts_with('.');
        let raster = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| {
                crate::config::RASTER_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
            });
        if raster && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    #[test]
    fn scene_order_puts_first_on_top() {
        let day = |text: &str| Some(text.parse::<Period>().expect("valid date"));
        // (order, first scene, second scene, expected order of the first against the second)
        let cases = [
            // Finest first, whatever the dates.
            (
                SceneOrder::Finest,
                (5.0, day("2009"), 1),
                (30.0, day("2020"), 0),
                Ordering::Less,
            ),
            // Equal resolution: newest first.
            (
                SceneOrder::Finest,
                (30.0, day("2009"), 0),
                (30.0, day("2020"), 1),
                Ordering::Greater,
            ),
            // 300.0382 and 300.0387 m count as equal, so the list order decides.
            (
                SceneOrder::Finest,
                (300.0387, None, 0),
                (300.0382, None, 1),
                Ordering::Less,
            ),
            // Newest first, whatever the resolution.
            (
                SceneOrder::Newest,
                (30.0, day("2020"), 1),
                (5.0, day("2009"), 0),
                Ordering::Less,
            ),
            // Same date: finest first.
            (
                SceneOrder::Newest,
                (10.0, day("2014-07"), 1),
                (30.0, day("2014-07"), 0),
                Ordering::Less,
            ),
            // An undated scene comes after a dated one.
            (
                SceneOrder::Newest,
                (30.0, None, 0),
                (30.0, day("1985"), 1),
                Ordering::Greater,
            ),
        ];
        for (order, a, b, expected) in cases {
            assert_eq!(order.compare(a, b), expected, "{order:?} {a:?} {b:?}");
            assert_eq!(
                order.compare(b, a),
                expected.reverse(),
                "{order:?} {b:?} {a:?}"
            );
        }
    }
}
