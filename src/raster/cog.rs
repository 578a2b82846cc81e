//! Stored-tile passthrough for Cloud-Optimized GeoTIFFs that are already cut on the
//! WebMercatorQuad grid: the bytes of a JPEG or WebP tile in the file are sent unchanged.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use gdal::{Dataset, Metadata};

use super::RasterInfo;
use crate::format::TileFormat;
use crate::tile::{self, TileCoord};

/// One level of the file (full resolution or an overview) that lines up with a zoom level.
#[derive(Debug, Clone, PartialEq)]
pub struct CogLevel {
    pub zoom: u8,
    /// `None` for the full-resolution image, else the GDAL overview index.
    pub overview: Option<usize>,
    /// Tile column and row of the level's first block in the zoom's tile matrix.
    pub first_column: u32,
    pub first_row: u32,
    pub columns: u32,
    pub rows: u32,
}

/// The mapping of a COG's internal tiles onto WebMercatorQuad tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct CogLayout {
    pub format: TileFormat,
    pub block_size: u32,
    pub levels: Vec<CogLevel>,
}

/// Largest stored tile sent unchanged: a 512-pixel RGBA tile uncompressed is 1 MiB, so a
/// valid compressed tile is far smaller.
const MAX_STORED_TILE_BYTES: usize = 4 << 20;

/// Tolerance, in zoom levels, for a pixel size to match a zoom.
const GRID_TOLERANCE: f64 = 1e-6;
/// Tolerance, in tiles, for an origin to sit on a tile corner: 1e-5 tiles is 0.003 pixels.
const ORIGIN_TOLERANCE_TILES: f64 = 1e-5;

/// Returns the layout when `dataset` is an EPSG:3857 GeoTIFF with square 256 or 512 pixel
/// blocks on the tile grid, compressed as JPEG (YCbCr or grey) or WebP, without nodata.
pub(super) fn detect(dataset: &Dataset, info: &RasterInfo) -> Option<CogLayout> {
    if info.driver != "GTiff" || info.epsg != Some(3857) {
        return None;
    }
    let (block_width, block_height) = info.block_size;
    if block_width != block_height || !(block_width == 256 || block_width == 512) {
        return None;
    }
    // Stored tiles carry no transparency except a WebP tile with an alpha band, so a file
    // with nodata or a mask is rendered instead.
    let masked = info.bands.iter().any(|band| band.nodata.is_some());
    let alpha = info.bands.last().is_some_and(|band| band.color == "alpha");
    let format = match info.compression.as_deref() {
        Some("WEBP") if !masked && (alpha || !info.has_mask) => TileFormat::Webp,
        Some("JPEG" | "YCbCr JPEG") if !masked && !info.has_mask => {
            let ycbcr = dataset
                .metadata_item("SOURCE_COLOR_SPACE", "IMAGE_STRUCTURE")
                .as_deref()
                == Some("YCbCr");
            if !((ycbcr && info.bands.len() == 3) || info.bands.len() == 1) {
                return None;
            }
            TileFormat::Jpeg
        }
        _ => return None,
    };
    let block = block_width as u32;
    let transform = info.geo_transform;
    if transform[2] != 0.0
        || transform[4] != 0.0
        || (transform[1] + transform[5]).abs() > f64::EPSILON * transform[1].abs()
    {
        return None;
    }

    let mut sizes = vec![(None, info.width, info.height)];
    if let Some(first) = info.bands.first() {
        sizes.extend(
            first
                .overviews
                .iter()
                .enumerate()
                .map(|(i, &(w, h))| (Some(i), w, h)),
        );
    }
    let levels: Vec<CogLevel> = sizes
        .into_iter()
        .filter_map(|(overview, width, height)| {
            let pixel = transform[1] * info.width as f64 / width as f64;
            level_on_grid(
                overview,
                pixel,
                transform[0],
                transform[3],
                width,
                height,
                block,
            )
        })
        .collect();
    (!levels.is_empty()).then_some(CogLayout {
        format,
        block_size: block,
        levels,
    })
}

fn level_on_grid(
    overview: Option<usize>,
    pixel: f64,
    origin_x: f64,
    origin_y: f64,
    width: usize,
    height: usize,
    block: u32,
) -> Option<CogLevel> {
    let zoom = tile::zoom_for_resolution(pixel, block);
    let rounded = zoom.round();
    if (zoom - rounded).abs() > GRID_TOLERANCE
        || !(0.0..=f64::from(tile::MAX_ZOOM)).contains(&rounded)
    {
        return None;
    }
    let tile_width = pixel * f64::from(block);
    let column = (origin_x + tile::ORIGIN_SHIFT) / tile_width;
    let row = (tile::ORIGIN_SHIFT - origin_y) / tile_width;
    // Within a few thousandths of a pixel of a tile corner.
    let on_grid = |value: f64| (value - value.round()).abs() < ORIGIN_TOLERANCE_TILES;
    if !on_grid(column) || !on_grid(row) || column < 0.0 || row < 0.0 {
        return None;
    }
    Some(CogLevel {
        zoom: rounded as u8,
        overview,
        first_column: column.round() as u32,
        first_row: row.round() as u32,
        columns: width.div_ceil(block as usize) as u32,
        rows: height.div_ceil(block as usize) as u32,
    })
}

impl CogLayout {
    /// Reads the stored bytes of `tile`, or `None` when the request does not match a stored
    /// tile (another format or size, a zoom without a level, a tile outside the file, or a
    /// sparse tile that was never written).
    pub(super) fn stored_tile(
        &self,
        dataset: &Dataset,
        path: &Path,
        tile: TileCoord,
        tile_size: u32,
        format: TileFormat,
    ) -> Option<Vec<u8>> {
        if format != self.format || tile_size != self.block_size {
            return None;
        }
        let level = self.levels.iter().find(|level| level.zoom == tile.z)?;
        let column = tile
            .x
            .checked_sub(level.first_column)
            .filter(|&c| c < level.columns)?;
        let row = tile
            .y
            .checked_sub(level.first_row)
            .filter(|&r| r < level.rows)?;
        let band = dataset.rasterband(1).ok()?;
        let band = match level.overview {
            None => band,
            Some(index) => band.overview(index).ok()?,
        };
        let offset: u64 = band
            .metadata_item(&format!("BLOCK_OFFSET_{column}_{row}"), "TIFF")?
            .parse()
            .ok()?;
        let size: usize = band
            .metadata_item(&format!("BLOCK_SIZE_{column}_{row}"), "TIFF")?
            .parse()
            .ok()?;
        if offset == 0 || size == 0 {
            return None;
        }
        // A corrupt file can declare any size: a block larger than the limit or past the end
        // of the file is rendered through GDAL instead, which checks it.
        if crate::remote::is_remote(path) {
            if size > MAX_STORED_TILE_BYTES {
                return None;
            }
            let bytes = crate::gdal_ffi::vsi::read_range(path, offset, size)
                .inspect_err(|error| tracing::warn!(%tile, %error, "stored tile not read"))
                .ok()??;
            return self.finish_stored_tile(&band, bytes);
        }
        let file = File::open(path).ok()?;
        let length = file.metadata().ok()?.len();
        let end = offset.checked_add(size as u64)?;
        if size > MAX_STORED_TILE_BYTES || end > length {
            tracing::warn!(path = %path.display(), %tile, size, offset, "stored tile size is invalid");
            return None;
        }
        let mut bytes = vec![0; size];
        file.read_exact_at(&mut bytes, offset).ok()?;
        self.finish_stored_tile(&band, bytes)
    }

    /// Makes a stored block a stand-alone image: JPEG blocks get the file's shared tables.
    fn finish_stored_tile(
        &self,
        band: &gdal::raster::RasterBand,
        bytes: Vec<u8>,
    ) -> Option<Vec<u8>> {
        if self.format == TileFormat::Jpeg {
            let tables = band.metadata_item("JPEGTABLES", "TIFF");
            return splice_jpeg_tables(&bytes, tables.as_deref());
        }
        Some(bytes)
    }
}

/// Makes a stand-alone JPEG from a TIFF JPEG tile and the file's shared `JPEGTABLES`
/// (hexadecimal, as GDAL returns them): the tables' markers go right after the tile's SOI.
fn splice_jpeg_tables(tile: &[u8], tables_hex: Option<&str>) -> Option<Vec<u8>> {
    if !tile.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let Some(hex) = tables_hex else {
        return Some(tile.to_vec());
    };
    let tables = decode_hex(hex)?;
    let inner = tables
        .strip_prefix(&[0xFF, 0xD8])?
        .strip_suffix(&[0xFF, 0xD9])?;
    let mut out = Vec::with_capacity(tile.len() + inner.len());
    out.extend_from_slice(&tile[..2]);
    out.extend_from_slice(inner);
    out.extend_from_slice(&tile[2..]);
    Some(out)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_go_after_start_of_image() {
        let tile = [0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9];
        let spliced = splice_jpeg_tables(&tile, Some("FFD8FFDB0003AAFFD9")).expect("splice");
        assert_eq!(
            spliced,
            vec![
                0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x03, 0xAA, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9
            ]
        );
    }

    #[test]
    fn tile_without_tables_is_kept() {
        let tile = [0xFF, 0xD8, 0xFF, 0xD9];
        assert_eq!(splice_jpeg_tables(&tile, None), Some(tile.to_vec()));
        assert_eq!(splice_jpeg_tables(&[0, 1], None), None);
        assert_eq!(splice_jpeg_tables(&tile, Some("FFD")), None);
    }

    #[test]
    fn level_on_grid_finds_zoom_and_offset() {
        let pixel = tile::resolution(10, 256);
        let tile_width = pixel * 256.0;
        let origin_x = -tile::ORIGIN_SHIFT + 300.0 * tile_width;
        let origin_y = tile::ORIGIN_SHIFT - 400.0 * tile_width;
        let level =
            level_on_grid(None, pixel, origin_x, origin_y, 1000, 600, 256).expect("on grid");
        assert_eq!(
            (level.zoom, level.first_column, level.first_row),
            (10, 300, 400)
        );
        assert_eq!((level.columns, level.rows), (4, 3));
        assert!(level_on_grid(None, pixel * 1.1, origin_x, origin_y, 10, 10, 256).is_none());
        assert!(level_on_grid(None, pixel, origin_x + 10.0, origin_y, 10, 10, 256).is_none());
    }
}
