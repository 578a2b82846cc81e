//! Static maps: a whole extent rendered at once from a MapLibre style into a display list
//! (`scene`), with furniture, and rasterised to PNG, JPEG or GeoTIFF.
//!
//! `build_scene` turns a [`MapRequest`] into a [`scene::Scene`]; `render` builds it and
//! encodes it. Both are blocking: run them on `worker::Workers`.

pub mod archive;
pub mod atlas;
pub mod build;
pub mod cli;
pub mod furniture;
pub mod geotiff;
pub mod imagery;
pub mod mvt;
pub mod pdf;
pub mod raster;
pub mod request;
pub mod scene;
pub mod style;
pub mod symbols;
pub mod text;
pub mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::collection::Period;
use crate::enhance::EnhanceRequest;
use crate::glyphs::GlyphCache;
use crate::source::{Catalog, Source};
use crate::sprites::Sprites;

pub use self::build::build_scene;
pub use self::view::View;

/// The encodings of a static map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Png,
    Jpeg,
    /// An RGBA GeoTIFF in EPSG:3857.
    GeoTiff,
    /// A PDF page: vector paths, imagery at print density and selectable text (`map::pdf`).
    Pdf,
}

impl OutputFormat {
    /// Reads a file extension: `png`, `jpg`, `jpeg`, `tif`, `tiff` or `pdf`.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "png" => Some(OutputFormat::Png),
            "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
            "tif" | "tiff" => Some(OutputFormat::GeoTiff),
            "pdf" => Some(OutputFormat::Pdf),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::GeoTiff => "image/tiff; application=geotiff",
            OutputFormat::Pdf => "application/pdf",
        }
    }
}

/// The furniture and imagery options of a static map.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each flag is one independent query option"
)]
pub struct MapOptions {
    pub title: Option<String>,
    pub caption: Option<String>,
    pub legend: bool,
    pub scalebar: bool,
    pub north: bool,
    /// A lon/lat graticule with labels.
    pub grid: bool,
    /// Source attributions, imagery dates and enhancement notices.
    pub attribution: bool,
    /// Print resolution; the raster has `dpi / 96` device pixels per page unit.
    pub dpi: f64,
    /// For dated imagery: the newest scene at or before this period is drawn.
    pub date: Option<Period>,
    pub enhance: EnhanceRequest,
    /// The PDF page; other formats ignore it.
    pub page: pdf::PageSize,
    /// The PDF page's margin on every side, in points; other formats ignore it.
    pub margin: f32,
}

impl MapOptions {
    /// Returns the defaults of a format: GeoTIFF has no furniture, PNG and JPEG have a scale bar and
    /// the attribution.
    pub fn for_format(format: OutputFormat) -> Self {
        let furniture = format != OutputFormat::GeoTiff;
        Self {
            title: None,
            caption: None,
            legend: false,
            scalebar: furniture,
            north: false,
            grid: false,
            attribution: furniture,
            dpi: if format == OutputFormat::Pdf {
                pdf::DEFAULT_DPI
            } else {
                96.0
            },
            date: None,
            enhance: EnhanceRequest::Auto,
            page: pdf::PageSize::A4,
            margin: pdf::page::mm(pdf::DEFAULT_MARGIN_MM),
        }
    }
}

/// A static map request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRequest {
    /// The style document's id in the styles folder.
    pub style: String,
    pub view: View,
    /// Page size in page units (CSS pixels at 1x).
    pub width: u32,
    pub height: u32,
    /// 1, or 2 for `@2x`.
    pub ratio: u32,
    pub format: OutputFormat,
    pub options: MapOptions,
}

impl MapRequest {
    /// Device pixels per page unit: the ratio times `dpi / 96`.
    pub fn pixel_ratio(&self) -> f64 {
        f64::from(self.ratio) * self.options.dpi / 96.0
    }

    /// Returns the raster size in pixels, which the `static_max_pixels` limit bounds.
    pub fn pixel_count(&self) -> u64 {
        let ratio = self.pixel_ratio();
        let width = (f64::from(self.width) * ratio).round() as u64;
        let height = (f64::from(self.height) * ratio).round() as u64;
        width * height
    }
}

/// The inputs of rendering: the catalog, fonts, icons and styles.
#[derive(Debug, Clone)]
pub struct MapContext {
    pub catalog: Arc<Catalog>,
    pub glyphs: Arc<GlyphCache>,
    pub sprites: Arc<Option<Sprites>>,
    pub styles: PathBuf,
    /// The runtime that archive layers are read on. The map must be built on a thread that
    /// is not one of the runtime's own, such as a worker of `worker::Workers`.
    pub runtime: tokio::runtime::Handle,
}

/// Limits of one static map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Device pixels of the output, after ratio and DPI (`static_max_pixels`).
    pub max_pixels: u64,
    /// Time from the request to the encoded map (`static_timeout`).
    pub timeout: Duration,
}

#[derive(Debug, Error)]
pub enum MapError {
    #[error("writing the PDF failed: {0}")]
    Pdf(String),
    #[error("no style {0:?}: see /styles for the styles served")]
    StyleNotFound(String),
    #[error("style {style:?} cannot be read: {message}")]
    Style { style: String, message: String },
    #[error(
        "the map would have {pixels} pixels, above static_max_pixels = {max_pixels}: request a smaller size, ratio or dpi"
    )]
    TooManyPixels { pixels: u64, max_pixels: u64 },
    #[error(
        "rendering took longer than static_timeout = {seconds} s: request a smaller size or extent, or fewer layers"
    )]
    TimedOut { seconds: f64 },
    #[error(
        "the style {style:?} draws no source with bounds to fit: give a centre or a bounding box"
    )]
    NothingToFit { style: String },
    #[error("drawing layer {layer:?} failed: {message}")]
    Layer { layer: String, message: String },
    #[error("reading tile {tile} of archive {path:?} failed: {message}")]
    Archive {
        path: PathBuf,
        tile: crate::tile::TileCoord,
        message: String,
    },
    #[error(
        "archive {path:?} cannot be read on an async runtime thread: build the static map on worker::Workers or a plain thread"
    )]
    OnRuntimeThread { path: PathBuf },
    #[error("encoding the map as {format:?} failed: {message}")]
    Encode {
        format: OutputFormat,
        message: String,
    },
}

/// An encoded static map.
#[derive(Debug, Clone)]
pub struct RenderedMap {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
}

/// Picks the sources a style may draw, by the style's source names. Every rendering goes
/// through here, so that a caller can restrict it (for example by API key).
pub fn drawable_sources(catalog: &Catalog, style: &style::Style) -> BTreeMap<String, Arc<Source>> {
    style
        .sources
        .iter()
        .filter_map(|(name, style_source)| {
            let id = style_source.source_id.as_deref()?;
            let source = catalog.get(id)?;
            Some((name.clone(), Arc::clone(source)))
        })
        .collect()
}

/// Checks the pixel limit, builds the scene and encodes it. Blocking.
pub fn render(
    context: &MapContext,
    request: &MapRequest,
    limits: &Limits,
    started: Instant,
) -> Result<RenderedMap, MapError> {
    if request.format == OutputFormat::Pdf {
        let bytes = pdf::render::render_pdf(context, request, limits, started)?;
        return Ok(RenderedMap {
            bytes,
            format: OutputFormat::Pdf,
        });
    }
    check_pixels(request, limits)?;
    let deadline = started + limits.timeout;
    let timed_out = || MapError::TimedOut {
        seconds: limits.timeout.as_secs_f64(),
    };
    // Layers report a timeout without knowing the limit; it is named here.
    let scene = build_scene(context, request, deadline).map_err(|error| match error {
        MapError::TimedOut { .. } => timed_out(),
        other => other,
    })?;
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let pixmap = raster::rasterise(&scene);
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let bytes = match request.format {
        OutputFormat::Png | OutputFormat::Jpeg => raster::encode(&pixmap, &scene, request.format),
        OutputFormat::GeoTiff => geotiff::encode(&pixmap, &scene),
        OutputFormat::Pdf => Err(MapError::Pdf(
            "a PDF is written from the scene, not from a raster".to_string(),
        )),
    }?;
    Ok(RenderedMap {
        bytes,
        format: request.format,
    })
}

/// Rejects a request whose raster would exceed `max_pixels`.
pub fn check_pixels(request: &MapRequest, limits: &Limits) -> Result<(), MapError> {
    if request.format == OutputFormat::Pdf {
        return pdf::render::check_print_pixels(request, limits);
    }
    let pixels = request.pixel_count();
    if pixels > limits.max_pixels {
        return Err(MapError::TooManyPixels {
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}
