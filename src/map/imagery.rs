//! Raster layers of a static map, composited from the source's own tiles.
//!
//! The tiles go through the same renderers as `/tiles` (warp, COG passthrough excepted,
//! enhancement, collections by date, heat maps), so a static map shows exactly the pixels the
//! viewer shows, with the scenes, dates and enhancement they report. The tiles are mosaicked
//! into one image at the tile zoom whose pixels are at least as fine as the page's, and the
//! image keeps that resolution in the display list.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use super::MapError;
use super::MapRequest;
use super::scene::{EnhancementUsed, ImageItem, Rect, RgbaImage, ShownScene, SourceUse};
use super::style::{Context, Layer};
use super::view::Frame;
use crate::archive::Archive;
use crate::density::{Filter, HeatmapRequest};
use crate::enhance::Applied;
use crate::format::TileFormat;
use crate::source::{Backend, Source};
use crate::tile::{ORIGIN_SHIFT, TileCoord};

/// Tile size of the mosaic, in pixels.
const TILE_SIZE: u32 = 256;

/// Most tiles one raster layer may read. A frame that needs more at its zoom reads a coarser
/// zoom instead.
const MAX_TILES: u64 = 1024;

/// Draws a raster layer: its image and what it was drawn from, or `None` when no tile has
/// data in the frame.
pub fn draw(
    source: &Arc<Source>,
    layer: &Layer,
    frame: &Frame,
    request: &MapRequest,
    context: &Context<'_>,
    runtime: &tokio::runtime::Handle,
    deadline: Instant,
) -> Result<Option<(ImageItem, SourceUse)>, MapError> {
    let (minzoom, maxzoom) = source.zoom_range();
    // MapLibre zoom z shows 256-pixel tiles of zoom z + 1 at one device pixel per page unit.
    let wanted = frame.zoom + 1.0 + request.pixel_ratio().log2();
    let mut z = (wanted - 0.01)
        .ceil()
        .clamp(f64::from(minzoom), f64::from(maxzoom)) as u8;
    let bounds = frame.mercator_bounds();
    let range = loop {
        let range = tile_range(&bounds, z);
        if range.count() <= MAX_TILES || z <= minzoom {
            break range;
        }
        z -= 1;
    };
    if crate::access::hides_heat_map(source, z) {
        tracing::debug!(source = %source.id, layer = %layer.id, z, "heat map of sensitive points hidden without a key");
        return Ok(None);
    }
    if range.count() > MAX_TILES {
        tracing::warn!(source = %source.id, layer = %layer.id, tiles = range.count(), "raster layer needs too many tiles at its lowest zoom: not drawn");
        return Ok(None);
    }
    let columns = range.max_x - range.min_x + 1;
    let rows = range.max_y - range.min_y + 1;
    let width = columns * TILE_SIZE;
    let height = rows * TILE_SIZE;
    let mut pixels = vec![0_u8; (width as usize) * (height as usize) * 4];
    let tiles: Vec<(u32, u32, TileCoord)> = (range.min_y..=range.max_y)
        .flat_map(|y| (range.min_x..=range.max_x).map(move |x| (x, y)))
        .filter_map(|(x, y)| {
            let tile = TileCoord::new(u32::from(z), u64::from(x), u64::from(y))
                .expect("the range lies inside the zoom's matrix");
            source.touches(tile).then_some((x, y, tile))
        })
        .collect();
    let rendered = if let Backend::Archive(archive) = &source.backend {
        archive_pixels(archive, layer, &tiles, runtime, deadline)?
    } else {
        // Tiles render in parallel on the current rayon pool; each worker thread uses its own
        // GDAL handles. Results are merged in tile order, so the output does not depend on
        // timing.
        tiles
            .par_iter()
            .map(|&(_, _, tile)| {
                if Instant::now() >= deadline {
                    return Err(MapError::TimedOut { seconds: 0.0 });
                }
                let mut usage = SourceUse::default();
                let rgba = tile_rgba(source, layer, tile, request, deadline, &mut usage)?;
                Ok(rgba.map(|rgba| (rgba, usage)))
            })
            .collect()
    };
    let mut usage = SourceUse::default();
    let mut any = false;
    for (&(x, y, _), result) in tiles.iter().zip(rendered) {
        let Some((rgba, tile_usage)) = result? else {
            continue;
        };
        any = true;
        merge_usage(&mut usage, tile_usage);
        let left = ((x - range.min_x) * TILE_SIZE) as usize;
        let top = ((y - range.min_y) * TILE_SIZE) as usize;
        let row_bytes = TILE_SIZE as usize * 4;
        for row in 0..TILE_SIZE as usize {
            let from = row * row_bytes;
            let to = ((top + row) * width as usize + left) * 4;
            pixels[to..to + row_bytes].copy_from_slice(&rgba[from..from + row_bytes]);
        }
    }
    if !any {
        return Ok(None);
    }
    let tile_metres = 2.0 * ORIGIN_SHIFT / f64::from(1_u32 << z);
    let top_left = frame.to_page(
        -ORIGIN_SHIFT + f64::from(range.min_x) * tile_metres,
        ORIGIN_SHIFT - f64::from(range.min_y) * tile_metres,
    );
    let page_size = tile_metres / frame.resolution;
    let opacity = super::build::number_property(&layer.paint, "raster-opacity", context, 1.0);
    let item = ImageItem {
        rect: Rect {
            x: top_left.x,
            y: top_left.y,
            width: f64::from(columns) * page_size,
            height: f64::from(rows) * page_size,
        },
        image: Arc::new(RgbaImage {
            width,
            height,
            pixels,
        }),
        opacity,
        smooth: true,
    };
    usage.scenes.sort();
    Ok(Some((item, usage)))
}

/// A tile's RGBA pixels and what they were drawn from.
type TilePixels = (Vec<u8>, SourceUse);

/// Reads the stored tiles of a raster archive and decodes them in parallel, in tile order.
/// A zoom beyond the archive's maximum never reaches here: `draw` clamps to the archive's
/// range and enlarges its deepest tiles to the frame.
fn archive_pixels(
    archive: &Archive,
    layer: &Layer,
    tiles: &[(u32, u32, TileCoord)],
    runtime: &tokio::runtime::Handle,
    deadline: Instant,
) -> Result<Vec<Result<Option<TilePixels>, MapError>>, MapError> {
    let metadata = archive.metadata();
    let image_format = match metadata.format {
        TileFormat::Png => image::ImageFormat::Png,
        TileFormat::Jpeg => image::ImageFormat::Jpeg,
        TileFormat::Webp => image::ImageFormat::WebP,
        TileFormat::Mvt => {
            tracing::debug!(layer = %layer.id, path = %archive.path().display(), "raster layer of a vector archive: not drawn");
            return Ok(Vec::new());
        }
    };
    let coords: Vec<TileCoord> = tiles.iter().map(|&(_, _, tile)| tile).collect();
    let stored = super::archive::read_tiles(runtime, archive, &coords, deadline)?;
    let compression = metadata.compression;
    let path = archive.path().to_path_buf();
    Ok(stored
        .par_iter()
        .map(|bytes| {
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            let failed = |message: String| MapError::Layer {
                layer: layer.id.clone(),
                message: format!("{message} in {}", path.display()),
            };
            let plain = super::archive::inflate(bytes, compression).map_err(failed)?;
            let rgba = decode_stored(&plain, image_format).map_err(failed)?;
            let usage = SourceUse {
                files: vec![path.clone()],
                ..SourceUse::default()
            };
            Ok(Some((rgba, usage)))
        })
        .collect())
}

/// A range of tiles, inclusive.
#[derive(Debug, Clone, Copy)]
pub(super) struct TileRange {
    min_x: u32,
    min_y: u32,
    max_x: u32,
    max_y: u32,
}

impl TileRange {
    pub(super) fn count(self) -> u64 {
        u64::from(self.max_x - self.min_x + 1) * u64::from(self.max_y - self.min_y + 1)
    }

    /// Returns the tiles of the range at zoom `z`, row by row.
    pub(super) fn tiles(self, z: u8) -> impl Iterator<Item = TileCoord> {
        (self.min_y..=self.max_y).flat_map(move |y| {
            (self.min_x..=self.max_x).map(move |x| {
                TileCoord::new(u32::from(z), u64::from(x), u64::from(y))
                    .expect("the range lies inside the zoom's matrix")
            })
        })
    }
}

/// Returns the tiles of zoom `z` that cover `bounds` in Web Mercator metres.
pub(super) fn tile_range(bounds: &crate::tile::Bbox, z: u8) -> TileRange {
    let size = 1_u32 << z;
    let tile_metres = 2.0 * ORIGIN_SHIFT / f64::from(size);
    let column = |x: f64| {
        ((x + ORIGIN_SHIFT) / tile_metres)
            .floor()
            .clamp(0.0, f64::from(size - 1)) as u32
    };
    let row = |y: f64| {
        ((ORIGIN_SHIFT - y) / tile_metres)
            .floor()
            .clamp(0.0, f64::from(size - 1)) as u32
    };
    TileRange {
        min_x: column(bounds.min_x),
        max_x: column(bounds.max_x - tile_metres * 1e-9),
        min_y: row(bounds.max_y),
        max_y: row(bounds.min_y + tile_metres * 1e-9),
    }
}

/// Renders one tile of a raster source as RGBA, recording the files, scene dates and
/// enhancement it drew from.
fn tile_rgba(
    source: &Source,
    layer: &Layer,
    tile: TileCoord,
    request: &MapRequest,
    deadline: Instant,
    usage: &mut SourceUse,
) -> Result<Option<Vec<u8>>, MapError> {
    let failed = |message: String| MapError::Layer {
        layer: layer.id.clone(),
        message,
    };
    let options = &request.options;
    match &source.backend {
        Backend::Raster(raster) => {
            let rendered = raster
                .render_rgba_enhanced(
                    tile,
                    TILE_SIZE,
                    raster.options().resampling,
                    options.enhance,
                    deadline,
                )
                .map_err(|error| timed_out_or(deadline, failed(error.to_string())))?;
            let Some((rgba, applied)) = rendered else {
                return Ok(None);
            };
            // NOTE: only a date set in the source's configuration is shown. Dates that the
            // coverage layer reads from STAC, GDAL metadata or the file name are not.
            if let Some(date) = raster.options().date {
                let scene = ShownScene {
                    file: raster.path().to_owned(),
                    date: date.to_string(),
                };
                if !usage.scenes.contains(&scene) {
                    usage.scenes.push(scene);
                }
            }
            let bounds = raster.bounds_lonlat();
            let latitude = f64::midpoint(bounds.min_y, bounds.max_y);
            let native = raster.info().resolution_mercator * latitude.to_radians().cos();
            note_enhancement(usage, applied.as_ref(), native);
            Ok(Some(rgba))
        }
        Backend::Collection(collection) => {
            let rendered = collection
                .render(
                    tile,
                    TILE_SIZE,
                    TileFormat::Png,
                    None,
                    options.date,
                    options.enhance,
                    deadline,
                )
                .map_err(|error| timed_out_or(deadline, failed(error.to_string())))?;
            let Some(rendered) = rendered else {
                return Ok(None);
            };
            let shown = collection.shown_date(tile, options.date);
            for index in collection.scenes_for(tile, options.date) {
                let scene = &collection.scenes()[index];
                let file = scene.raster.path().to_owned();
                if !usage.files.contains(&file) {
                    usage.files.push(file.clone());
                }
                if let Some(date) = scene.facts.date.or(shown) {
                    let shown_scene = ShownScene {
                        file,
                        date: date.to_string(),
                    };
                    if !usage.scenes.contains(&shown_scene) {
                        usage.scenes.push(shown_scene);
                    }
                }
                if let Some(applied) = &rendered.enhancement {
                    note_enhancement(usage, Some(applied), scene.facts.resolution_m);
                }
            }
            decode(&rendered.bytes).map(Some).map_err(failed)
        }
        Backend::Density(points) => {
            let bytes = points
                .tile(
                    tile,
                    1,
                    TileFormat::Png,
                    &Filter::default(),
                    HeatmapRequest::default(),
                )
                .map_err(|error| failed(error.to_string()))?;
            bytes
                .map(|bytes| decode(&bytes))
                .transpose()
                .map_err(failed)
        }
        Backend::Archive(_) | Backend::Vector(_) | Backend::Floorplan(_) | Backend::Postgis(_) => {
            // Archives are read by `archive_pixels` before this per-tile step.
            tracing::debug!(source = %source.id, layer = %layer.id, "static maps draw imagery, archives, collections and heat maps only");
            Ok(None)
        }
    }
}

/// Adds one tile's files, scenes and enhancement to the layer's record.
fn merge_usage(usage: &mut SourceUse, tile: SourceUse) {
    for file in tile.files {
        if !usage.files.contains(&file) {
            usage.files.push(file);
        }
    }
    for scene in tile.scenes {
        if !usage.scenes.contains(&scene) {
            usage.scenes.push(scene);
        }
    }
    if let Some(enhancement) = tile.enhancement
        && usage
            .enhancement
            .as_ref()
            .is_none_or(|known| enhancement.factor > known.factor)
    {
        usage.enhancement = Some(enhancement);
    }
}

fn timed_out_or(deadline: Instant, error: MapError) -> MapError {
    if Instant::now() >= deadline {
        MapError::TimedOut { seconds: 0.0 }
    } else {
        error
    }
}

/// Keeps the strongest enhancement applied to the source's tiles, with the ground pixel size
/// in metres of the scene it enlarged.
fn note_enhancement(usage: &mut SourceUse, applied: Option<&Applied>, native_resolution_m: f64) {
    let Some(applied) = applied else {
        return;
    };
    if usage
        .enhancement
        .as_ref()
        .is_some_and(|known| known.factor >= applied.factor)
    {
        return;
    }
    usage.enhancement = Some(EnhancementUsed {
        steps: applied.header_value(),
        factor: applied.factor,
        native_resolution_m,
    });
}

/// Decodes a PNG tile into straight RGBA.
fn decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let rgba = decode_as(bytes, image::ImageFormat::Png)?;
    if rgba.width() != TILE_SIZE || rgba.height() != TILE_SIZE {
        return Err(format!(
            "a rendered tile is {}x{} pixels instead of {TILE_SIZE}",
            rgba.width(),
            rgba.height()
        ));
    }
    Ok(rgba.into_raw())
}

/// Decodes a stored archive tile into straight RGBA, resized to [`TILE_SIZE`] when it is
/// stored at another size (512-pixel tiles, for example).
fn decode_stored(bytes: &[u8], format: image::ImageFormat) -> Result<Vec<u8>, String> {
    let rgba = decode_as(bytes, format)?;
    if rgba.width() != rgba.height() {
        return Err(format!(
            "a stored tile is {}x{} pixels: only square tiles can be drawn",
            rgba.width(),
            rgba.height()
        ));
    }
    if rgba.width() == TILE_SIZE {
        return Ok(rgba.into_raw());
    }
    // NOTE: a 512-pixel tile is reduced to 256 pixels at its own zoom, so a map that
    // enlarges the archive's deepest tiles shows them at half their stored resolution.
    let resized = image::imageops::resize(
        &rgba,
        TILE_SIZE,
        TILE_SIZE,
        image::imageops::FilterType::Triangle,
    );
    Ok(resized.into_raw())
}

fn decode_as(bytes: &[u8], format: image::ImageFormat) -> Result<image::RgbaImage, String> {
    let image = image::load_from_memory_with_format(bytes, format)
        .map_err(|error| format!("decoding a {format:?} tile failed: {error}"))?;
    Ok(image.to_rgba8())
}
