//! Per-tile warping of a raster source into RGBA pixels.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

use gdal::raster::GdalType;
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager};

use super::{RasterError, RasterSource, Resampling};
use crate::gdal_ffi;
use crate::tile::{Bbox, TileCoord};

thread_local! {
    /// Dataset handles opened by this thread, by source key. GDAL datasets are `Send` but not
    /// `Sync`, so each worker thread keeps its own.
    static DATASETS: RefCell<HashMap<u64, OpenDataset>> = RefCell::new(HashMap::new());

    /// EPSG:3857, built once per thread because a PROJ database look-up per tile is slow.
    static MERCATOR: Result<SpatialRef, String> =
        SpatialRef::from_epsg(3857).map_err(|error| error.to_string());
}

/// A thread's handle of a source: the file, and the VRT that selects its bands when there is
/// one. The VRT reads through the file's handle without owning it, so it must be dropped
/// first: fields drop in declaration order.
struct OpenDataset {
    vrt: Option<Dataset>,
    file: Dataset,
    /// The file's path, size and modification time when it was opened
    /// (`source::file_revision`).
    revision: u64,
}

impl OpenDataset {
    fn dataset(&self) -> &Dataset {
        self.vrt.as_ref().unwrap_or(&self.file)
    }
}

/// Runs `work` with this thread's handle of `source`, opening it on first use.
fn with_dataset<T>(
    source: &RasterSource,
    work: impl FnOnce(&Dataset) -> Result<T, RasterError>,
) -> Result<T, RasterError> {
    // A file replaced since this thread opened it is opened again, so that its tiles (which
    // the caches keep under the new revision) show the new pixels.
    let revision = crate::source::file_revision(&source.path);
    DATASETS.with(|cell| {
        let mut datasets = cell.borrow_mut();
        let dataset = match datasets.entry(source.key) {
            Entry::Occupied(entry) if entry.get().revision == revision => entry.into_mut(),
            Entry::Occupied(mut entry) => {
                tracing::info!(path = %source.path.display(), "raster file changed: opened again");
                // The new handle goes in first, so the old one is dropped only once the new
                // file is open.
                entry.insert(open_for_warp(source, revision)?);
                entry.into_mut()
            }
            Entry::Vacant(entry) => entry.insert(open_for_warp(source, revision)?),
        };
        work(dataset.dataset())
    })
}

fn open_for_warp(source: &RasterSource, revision: u64) -> Result<OpenDataset, RasterError> {
    let path = &source.path;
    let file = Dataset::open(path).map_err(|source| RasterError::Open {
        path: path.clone(),
        source,
    })?;
    let vrt =
        match &source.translate_args {
            None => None,
            Some(args) => Some(gdal_ffi::translate_to_vrt(&file, args).map_err(|source| {
                RasterError::Warp {
                    path: path.clone(),
                    source,
                }
            })?),
        };
    Ok(OpenDataset {
        vrt,
        file,
        revision,
    })
}

/// Reads the stored bytes of `tile` from a COG that lines up with the tile grid.
pub(super) fn stored_tile(
    source: &RasterSource,
    cog: &super::CogLayout,
    tile: TileCoord,
    tile_size: u32,
    format: crate::format::TileFormat,
) -> Result<Option<Vec<u8>>, RasterError> {
    with_dataset(source, |dataset| {
        Ok(cog.stored_tile(dataset, &source.path, tile, tile_size, format))
    })
}

/// Warps `tile` into RGBA bytes, `tile_size` pixels a side, or `None` when no pixel has data.
pub(super) fn render_rgba(
    source: &RasterSource,
    tile: TileCoord,
    tile_size: u32,
    resampling: Resampling,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, RasterError> {
    let size = tile_size as usize;
    render_area_rgba(
        source,
        &tile.bounds_mercator(),
        (size, size),
        resampling,
        deadline,
    )
}

/// Warps the Web Mercator extent `bounds` into RGBA bytes of `size` (width, height) pixels, or
/// `None` when no pixel has data.
pub(super) fn render_area_rgba(
    source: &RasterSource,
    bounds: &Bbox,
    size: (usize, usize),
    resampling: Resampling,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, RasterError> {
    let bands = source.colour_bands;
    let pixels = size.0 * size.1;
    let (colour, alpha) = with_dataset(source, |dataset| {
        if source.stretch.is_some() {
            let (colour, alpha) = warp::<f32>(source, dataset, bounds, size, resampling, deadline)?;
            let stretch = source.stretch.as_deref().unwrap_or_default();
            let scaled = colour
                .iter()
                .zip(stretch)
                .map(|(values, &(min, max))| {
                    let factor = 255.0 / (max - min);
                    values
                        .iter()
                        .map(|&value| {
                            ((f64::from(value) - min) * factor)
                                .round()
                                .clamp(0.0, 255.0) as u8
                        })
                        .collect()
                })
                .collect::<Vec<Vec<u8>>>();
            Ok((scaled, alpha))
        } else {
            warp::<u8>(source, dataset, bounds, size, resampling, deadline)
        }
    })?;
    if alpha.iter().all(|&a| a == 0) {
        return Ok(None);
    }
    let mut rgba = vec![0_u8; pixels * 4];
    for (i, pixel) in rgba.chunks_exact_mut(4).enumerate() {
        if bands >= 3 {
            pixel[0] = colour[0][i];
            pixel[1] = colour[1][i];
            pixel[2] = colour[2][i];
        } else {
            pixel[..3].fill(colour[0][i]);
        }
        pixel[3] = alpha[i];
    }
    Ok(Some(rgba))
}

/// Warps into an in-memory dataset of type `T` with one band per colour band plus alpha, and
/// returns the colour bands and the alpha band.
fn warp<T: GdalType + Copy + Default>(
    source: &RasterSource,
    dataset: &Dataset,
    bounds: &Bbox,
    (width, height): (usize, usize),
    resampling: Resampling,
    deadline: Instant,
) -> Result<(Vec<Vec<T>>, Vec<u8>), RasterError> {
    let path = &source.path;
    let gdal_error = |error| RasterError::Gdal {
        path: path.clone(),
        source: error,
    };
    let bands = source.colour_bands;
    let driver = DriverManager::get_driver_by_name("MEM").map_err(gdal_error)?;
    let mut target = driver
        .create_with_band_type::<T, _>("", width, height, bands + 1)
        .map_err(gdal_error)?;
    let pixel_x = bounds.width() / width as f64;
    let pixel_y = bounds.height() / height as f64;
    target
        .set_geo_transform(&[bounds.min_x, pixel_x, 0.0, bounds.max_y, 0.0, -pixel_y])
        .map_err(gdal_error)?;
    MERCATOR.with(|mercator| match mercator {
        Ok(mercator) => target.set_spatial_ref(mercator).map_err(gdal_error),
        Err(message) => Err(RasterError::Warp {
            path: path.clone(),
            source: gdal_ffi::GdalCallError::Failed {
                utility: "OSRImportFromEPSG",
                message: message.clone(),
            },
        }),
    })?;

    let args: Vec<String> = ["-r", resampling.name(), "-dstalpha", "-wo", "NUM_THREADS=1"]
        .iter()
        .map(|&arg| arg.to_owned())
        .collect();
    gdal_ffi::warp_into(dataset, &mut target, &args, deadline).map_err(|error| {
        RasterError::Warp {
            path: path.clone(),
            source: error,
        }
    })?;

    let mut colour = Vec::with_capacity(bands);
    for index in 1..=bands {
        let buffer = target
            .rasterband(index)
            .and_then(|band| band.read_as::<T>((0, 0), (width, height), (width, height), None))
            .map_err(gdal_error)?;
        colour.push(buffer.into_shape_and_vec().1);
    }
    let alpha = target
        .rasterband(bands + 1)
        .and_then(|band| band.read_as::<u8>((0, 0), (width, height), (width, height), None))
        .map_err(gdal_error)?
        .into_shape_and_vec()
        .1;
    Ok((colour, alpha))
}
