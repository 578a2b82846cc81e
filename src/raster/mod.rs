//! Imagery sources: GeoTIFF and COG files read through GDAL and warped per tile to Web
//! Mercator.
//!
//! A `RasterSource` holds only facts and options. GDAL dataset handles are not `Sync`, so
//! each worker thread opens its own handle on first use and keeps it (see `render`).

mod cog;
pub mod encode;
mod enhanced;
mod info;
mod options;
mod render;

use std::path::{Path, PathBuf};

use gdal::Dataset;
use thiserror::Error;

pub use self::cog::CogLayout;
pub use self::enhanced::{EnhancedRgba, RenderedTile};
pub use self::info::{BandInfo, RasterInfo, read_info};
pub use self::options::{RasterOptions, Resampling, Rescale};
use crate::format::TileFormat;
use crate::tile::{self, Bbox, TileCoord};

#[derive(Debug, Error)]
pub enum RasterError {
    #[error("cannot open raster {path}: {source}")]
    Open {
        path: PathBuf,
        source: gdal::errors::GdalError,
    },
    #[error("GDAL failed on {path}: {source}")]
    Gdal {
        path: PathBuf,
        source: gdal::errors::GdalError,
    },
    #[error(
        "raster {0} has no georeferencing (no geotransform or no CRS): add them with gdal_edit.py -a_srs and -a_ullr, or serve a georeferenced copy"
    )]
    NotGeoreferenced(PathBuf),
    #[error("raster {0} has no bands")]
    NoBands(PathBuf),
    #[error(
        "band {band} is out of range for {path}, which has {count} bands: fix `bands` in the configuration"
    )]
    BandOutOfRange {
        path: PathBuf,
        band: usize,
        count: usize,
    },
    #[error("{option} = {zoom} for {path} is out of range: use a zoom from 0 to 24")]
    ZoomOutOfRange {
        path: PathBuf,
        option: &'static str,
        zoom: u8,
    },
    #[error(
        "raster {path} lies outside the Earth's lon/lat range (bounds {bounds:?}): check its CRS"
    )]
    OutsideWorld { path: PathBuf, bounds: [f64; 4] },
    #[error("raster {path} is truncated or corrupt: reading its pixels failed: {source}")]
    Unreadable {
        path: PathBuf,
        source: gdal::errors::GdalError,
    },
    #[error("warping a tile of {path} failed: {source}")]
    Warp {
        path: PathBuf,
        source: crate::gdal_ffi::GdalCallError,
    },
    #[error(transparent)]
    Encode(#[from] encode::EncodeError),
    #[error(transparent)]
    Model(Box<crate::enhance::model::ModelError>),
    #[error("reading statistics of band {band} of {path} failed: {source}")]
    Statistics {
        path: PathBuf,
        band: usize,
        source: gdal::errors::GdalError,
    },
}

/// Sets the size of GDAL's process-wide block cache, in MiB.
pub fn configure_gdal(cache_mb: u32) {
    if let Err(error) = gdal::config::set_config_option("GDAL_CACHEMAX", &cache_mb.to_string()) {
        tracing::warn!(cache_mb, %error, "cannot set GDAL_CACHEMAX");
    }
}

/// Computes the stretch of `path` on a handle of its own, with GDAL's auxiliary metadata
/// files off for this thread until the handle is closed, so that the statistics are not saved
/// as `STEM.aux.xml` beside the file. GDAL reads the option when it first uses them.
fn stretch_without_aux_files(
    path: &Path,
    info: &RasterInfo,
    selected: &[usize],
    rescale: &Rescale,
) -> Result<Option<Vec<(f64, f64)>>, RasterError> {
    const OPTION: &str = "GDAL_PAM_ENABLED";
    if let Err(error) = gdal::config::set_thread_local_config_option(OPTION, "NO") {
        tracing::warn!(%error, "cannot turn off GDAL's .aux.xml files");
    }
    let stretch = Dataset::open(path)
        .map_err(|source| RasterError::Open {
            path: path.to_owned(),
            source,
        })
        .and_then(|dataset| options::stretch_for(path, &dataset, info, selected, rescale));
    if let Err(error) = gdal::config::clear_thread_local_config_option(OPTION) {
        tracing::warn!(%error, "cannot turn GDAL's .aux.xml files back on");
    }
    stretch
}

/// A GeoTIFF or COG served as imagery tiles.
#[derive(Debug)]
pub struct RasterSource {
    path: PathBuf,
    /// Distinguishes this source's cached dataset handles in the worker threads.
    key: u64,
    options: RasterOptions,
    info: RasterInfo,
    /// `gdal_translate` options that select, reorder or expand bands before warping, if any.
    translate_args: Option<Vec<String>>,
    /// Number of colour bands after selection: 1 (grey) or 3 (RGB).
    colour_bands: usize,
    /// Linear stretch per colour band from source values to 0–255, or none for 8-bit data
    /// served as is.
    stretch: Option<Vec<(f64, f64)>>,
    minzoom: u8,
    maxzoom: u8,
    cog: Option<CogLayout>,
    /// The scene's dark object for haze correction, found on first use.
    dark_object: std::sync::OnceLock<crate::enhance::DarkObject>,
    /// The super-resolution network of the `model` option, loaded at start-up.
    network: Option<crate::enhance::model::SuperResolution>,
}

impl RasterSource {
    /// Opens `path`, reads its facts and, for data that needs a stretch, its statistics.
    /// Blocking: call it at start-up or on a worker thread.
    pub fn open(path: &Path, options: RasterOptions) -> Result<Self, RasterError> {
        static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let dataset = Dataset::open(path).map_err(|source| RasterError::Open {
            path: path.to_owned(),
            source,
        })?;
        let info = read_info(path, &dataset)?;
        for (option, zoom) in [("minzoom", options.minzoom), ("maxzoom", options.maxzoom)] {
            if let Some(zoom) = zoom.filter(|&z| z > tile::MAX_ZOOM) {
                return Err(RasterError::ZoomOutOfRange {
                    path: path.to_owned(),
                    option,
                    zoom,
                });
            }
        }
        probe_read(path, &dataset, &info)?;
        let network = match &options.model {
            Some(model) => Some(
                crate::enhance::model::SuperResolution::load(model)
                    .map_err(|source| RasterError::Model(Box::new(source)))?,
            ),
            None => None,
        };

        let (translate_args, selected) = band_plan(path, &info, &options)?;
        let colour_bands = selected.len();
        let stretch = stretch_without_aux_files(path, &info, &selected, &options.rescale)?;

        // A file cut on the tile grid has a native zoom a rounding error above a whole number,
        // so a tolerance keeps that error from adding a zoom level.
        let native_zoom = info.native_zoom() - 0.01;
        let maxzoom = options
            .maxzoom
            .unwrap_or_else(|| (native_zoom.ceil().max(0.0) as u8).min(tile::MAX_ZOOM));
        let minzoom = options
            .minzoom
            .unwrap_or_else(|| safe_minzoom(path, &info))
            .min(maxzoom);
        let cog = if translate_args.is_none() && stretch.is_none() {
            cog::detect(&dataset, &info)
        } else {
            None
        };
        Ok(Self {
            path: path.to_owned(),
            key: NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            options,
            info,
            translate_args,
            colour_bands,
            stretch,
            minzoom,
            maxzoom,
            cog,
            dark_object: std::sync::OnceLock::new(),
            network,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &RasterInfo {
        &self.info
    }

    pub fn options(&self) -> &RasterOptions {
        &self.options
    }

    pub fn minzoom(&self) -> u8 {
        self.minzoom
    }

    pub fn maxzoom(&self) -> u8 {
        self.maxzoom
    }

    pub fn bounds_lonlat(&self) -> Bbox {
        self.info.bounds_lonlat
    }

    /// Returns whether any pixel of `tile` can fall inside the image's bounds.
    pub fn covers(&self, tile: TileCoord) -> bool {
        tile.bounds_mercator()
            .intersects(&self.info.bounds_mercator)
    }

    /// Returns the COG layout when stored tiles can be sent unchanged for some requests.
    pub fn cog_layout(&self) -> Option<&CogLayout> {
        self.cog.as_ref()
    }

    /// Warps `tile` into straight RGBA bytes, `tile_size` pixels a side, with nodata and masks
    /// as alpha. Returns `None` when every pixel is transparent. Blocking, like `render`.
    pub fn render_rgba(
        &self,
        tile: TileCoord,
        tile_size: u32,
        resampling: Resampling,
        deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, RasterError> {
        render::render_rgba(self, tile, tile_size, resampling, deadline)
    }

    /// Renders `tile` at `tile_size` pixels a side in `format`. Returns `None` when every pixel
    /// is transparent, and an error when the warp is still running at `deadline`. Blocking: run
    /// it on a worker thread.
    pub fn render(
        &self,
        tile: TileCoord,
        tile_size: u32,
        format: TileFormat,
        resampling: Resampling,
        deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, RasterError> {
        if let Some(cog) = &self.cog {
            let stored = render::stored_tile(self, cog, tile, tile_size, format)?;
            if stored.is_some() {
                return Ok(stored);
            }
        }
        let Some(rgba) = render::render_rgba(self, tile, tile_size, resampling, deadline)? else {
            return Ok(None);
        };
        Ok(Some(encode::encode_rgba(
            &rgba, tile_size, tile_size, format,
        )?))
    }
}

/// Largest number of pixels of the coarsest level (the smallest overview, or the image itself)
/// that any tile may read: 4096 x 4096, about 50 MB of RGB.
const MAX_COARSEST_PIXELS: usize = 4096 * 4096;

/// Returns the lowest zoom whose tiles read a bounded number of source pixels. A tile at a
/// zoom far below the coarsest level reads that level's pixels under the whole tile. That is
/// cheap for a small image or one with overviews. For a large image without them, a zoom-0
/// tile would read every pixel, so such images are served from the zoom three levels below the
/// coarsest level's own, where a 256-pixel tile reads at most 2048 x 2048 source pixels.
fn safe_minzoom(path: &Path, info: &RasterInfo) -> u8 {
    let (width, height) = info.bands[0]
        .overviews
        .iter()
        .copied()
        .min_by_key(|(w, h)| w * h)
        .unwrap_or((info.width, info.height));
    if width * height <= MAX_COARSEST_PIXELS {
        return 0;
    }
    let coarsest_resolution = info.resolution_mercator * info.width as f64 / width as f64;
    let zoom = (tile::zoom_for_resolution(coarsest_resolution, 256) - 3.0)
        .ceil()
        .max(0.0) as u8;
    tracing::warn!(
        path = %path.display(), minzoom = zoom, width, height,
        "the coarsest level of this raster is large, so tiles below minzoom are not served: add overviews with gdaladdo"
    );
    zoom
}

/// Reads the smallest overview, or a window at the centre of an image without overviews, so
/// that a truncated or corrupt file is reported at start-up instead of failing tile by tile.
fn probe_read(path: &Path, dataset: &Dataset, info: &RasterInfo) -> Result<(), RasterError> {
    let error = |source| RasterError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let band = dataset.rasterband(1).map_err(error)?;
    let smallest = info.bands[0]
        .overviews
        .iter()
        .enumerate()
        .min_by_key(|(_, (width, height))| width * height)
        .filter(|(_, (width, height))| width * height <= 1 << 20);
    let (band, window, size) = if let Some((index, &(width, height))) = smallest {
        (
            band.overview(index).map_err(error)?,
            (0, 0),
            (width, height),
        )
    } else {
        let size = (info.width.min(256), info.height.min(256));
        let window = ((info.width - size.0) / 2, (info.height - size.1) / 2);
        (band, (window.0 as isize, window.1 as isize), size)
    };
    band.read_as::<f64>(window, size, (size.0.min(64), size.1.min(64)), None)
        .map_err(error)?;
    Ok(())
}

/// Decides which source bands become the grey or red, green and blue of a tile, and the
/// `gdal_translate` options that make a VRT of them when they are not the file's own bands.
fn band_plan(
    path: &Path,
    info: &RasterInfo,
    options: &RasterOptions,
) -> Result<(Option<Vec<String>>, Vec<usize>), RasterError> {
    let count = info.bands.len();
    for &band in options.bands.iter().flatten() {
        if band == 0 || band > count {
            return Err(RasterError::BandOutOfRange {
                path: path.to_owned(),
                band,
                count,
            });
        }
    }
    let colour = info.colour_bands();
    let palette = info.bands.first().is_some_and(|band| band.has_color_table);
    let selected: Vec<usize> = match &options.bands {
        Some(bands) if bands.len() >= 3 => bands[..3].to_vec(),
        Some(bands) if !bands.is_empty() => vec![bands[0]],
        _ if palette => vec![1],
        _ if colour.len() >= 3 => colour[..3].to_vec(),
        _ => vec![colour.first().copied().unwrap_or(1)],
    };
    let mut args = Vec::new();
    let selected = if palette && options.bands.is_none() {
        args.extend(["-expand".to_owned(), "rgb".to_owned()]);
        vec![1, 2, 3]
    } else {
        if selected != colour {
            for band in &selected {
                args.extend(["-b".to_owned(), band.to_string()]);
            }
        }
        selected
    };
    if let Some(nodata) = options.nodata {
        args.extend(["-a_nodata".to_owned(), nodata.to_string()]);
    }
    Ok(((!args.is_empty()).then_some(args), selected))
}
