//! GeoTIFF output: the rasterised map as RGBA in EPSG:3857, written through GDAL's MEM and
//! GTiff drivers into `/vsimem/`.

use std::sync::atomic::{AtomicU64, Ordering};

use gdal::DriverManager;
use gdal::raster::{Buffer, ColorInterpretation, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use tiny_skia::Pixmap;

use super::raster::straight_rgba;
use super::scene::Scene;
use super::{MapError, OutputFormat};

/// Encodes the pixmap as a tiled, deflate-compressed RGBA GeoTIFF whose pixels cover the
/// scene's frame in Web Mercator.
pub fn encode(pixmap: &Pixmap, scene: &Scene) -> Result<Vec<u8>, MapError> {
    write(pixmap, scene).map_err(|error| MapError::Encode {
        format: OutputFormat::GeoTiff,
        message: error.to_string(),
    })
}

fn write(pixmap: &Pixmap, scene: &Scene) -> Result<Vec<u8>, gdal::errors::GdalError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (width, height) = (pixmap.width() as usize, pixmap.height() as usize);
    let rgba = straight_rgba(pixmap);
    let memory = DriverManager::get_driver_by_name("MEM")?;
    let mut dataset = memory.create_with_band_type::<u8, _>("", width, height, 4)?;
    let [west, south, east, north] = scene.georeference.mercator_bounds;
    dataset.set_geo_transform(&[
        west,
        (east - west) / width as f64,
        0.0,
        north,
        0.0,
        -(north - south) / height as f64,
    ])?;
    dataset.set_spatial_ref(&SpatialRef::from_epsg(3857)?)?;
    let interpretations = [
        ColorInterpretation::RedBand,
        ColorInterpretation::GreenBand,
        ColorInterpretation::BlueBand,
        ColorInterpretation::AlphaBand,
    ];
    for (index, interpretation) in interpretations.into_iter().enumerate() {
        let channel: Vec<u8> = rgba.iter().skip(index).step_by(4).copied().collect();
        let mut band = dataset.rasterband(index + 1)?;
        band.write(
            (0, 0),
            (width, height),
            &mut Buffer::new((width, height), channel),
        )?;
        band.set_color_interpretation(interpretation)?;
    }
    let path = format!(
        "/vsimem/tessera-static-{}-{}.tif",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let gtiff = DriverManager::get_driver_by_name("GTiff")?;
    let options = RasterCreationOptions::from_iter([
        "COMPRESS=DEFLATE",
        "TILED=YES",
        "ALPHA=YES",
        "PHOTOMETRIC=RGB",
    ]);
    let copy = dataset.create_copy(&gtiff, &path, &options)?;
    drop(copy);
    gdal::vsi::get_vsi_mem_file_bytes_owned(&path)
}
