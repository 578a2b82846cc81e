//! The facts of a raster file: CRS, bounds, bands, data type, native resolution and overviews.

use std::path::Path;

use gdal::Dataset;
use gdal::Metadata;
use gdal::raster::{ColorInterpretation, GdalDataType};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use serde::Serialize;

use super::RasterError;
use crate::tile::{self, Bbox};

/// One band of a raster file.
#[derive(Debug, Clone, Serialize)]
pub struct BandInfo {
    /// 1-based, as GDAL and the configuration count bands.
    pub index: usize,
    pub data_type: String,
    pub color: String,
    pub nodata: Option<f64>,
    pub has_color_table: bool,
    /// Sizes in pixels (width, height) of each overview, finest first.
    pub overviews: Vec<(usize, usize)>,
}

/// The facts about a raster file that serving it and `tessera info` need.
#[derive(Debug, Clone, Serialize)]
pub struct RasterInfo {
    pub driver: String,
    pub width: usize,
    pub height: usize,
    pub crs: String,
    pub epsg: Option<i32>,
    pub geo_transform: [f64; 6],
    /// Corners in the file's own CRS.
    pub native_bounds: Bbox,
    /// Lon/lat degrees, latitude clamped to the Web Mercator range.
    pub bounds_lonlat: Bbox,
    /// EPSG:3857 metres.
    pub bounds_mercator: Bbox,
    /// Ground size of a pixel in metres, along x and y, at the centre of the image.
    pub resolution_metres: (f64, f64),
    /// Size of a pixel in Web Mercator metres along x: sets the native zoom.
    pub resolution_mercator: f64,
    pub block_size: (usize, usize),
    pub compression: Option<String>,
    pub interleave: Option<String>,
    /// Whether a per-dataset mask or an alpha band marks transparent pixels.
    pub has_mask: bool,
    pub bands: Vec<BandInfo>,
}

impl RasterInfo {
    /// Indexes of the bands that carry colour, leaving out an alpha band.
    pub fn colour_bands(&self) -> Vec<usize> {
        self.bands
            .iter()
            .filter(|band| band.color != "alpha")
            .map(|band| band.index)
            .collect()
    }

    pub fn data_type(&self) -> &str {
        self.bands
            .first()
            .map_or("unknown", |band| band.data_type.as_str())
    }

    /// Returns the zoom, as a fraction, whose 256-pixel tiles have the file's own pixel size.
    pub fn native_zoom(&self) -> f64 {
        tile::zoom_for_resolution(self.resolution_mercator, 256)
    }
}

/// Reads the facts of an opened raster dataset. `path` is only used in messages.
pub fn read_info(path: &Path, dataset: &Dataset) -> Result<RasterInfo, RasterError> {
    let gdal_error = |source| RasterError::Gdal {
        path: path.to_owned(),
        source,
    };
    let (width, height) = dataset.raster_size();
    if dataset.raster_count() == 0 {
        return Err(RasterError::NoBands(path.to_owned()));
    }
    let geo_transform = dataset
        .geo_transform()
        .map_err(|_| RasterError::NotGeoreferenced(path.to_owned()))?;
    let spatial_ref = dataset
        .spatial_ref()
        .map_err(|_| RasterError::NotGeoreferenced(path.to_owned()))?;
    #[allow(
        clippy::float_cmp,
        reason = "GDAL returns exactly this default for a file without one"
    )]
    let identity = geo_transform == [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    if identity {
        return Err(RasterError::NotGeoreferenced(path.to_owned()));
    }
    if geo_transform[2] != 0.0 || geo_transform[4] != 0.0 {
        // A rotated grid warps correctly through GDAL, but the bounds below assume none.
        tracing::debug!(path = %path.display(), "raster grid is rotated");
    }

    let native_bounds = grid_bounds(&geo_transform, width, height);

    let bounds_lonlat = lonlat_bounds(&spatial_ref, &native_bounds).map_err(gdal_error)?;
    let b = bounds_lonlat;
    let valid = [b.min_x, b.min_y, b.max_x, b.max_y]
        .iter()
        .all(|v| v.is_finite())
        && b.min_x < b.max_x
        && b.min_y < b.max_y;
    if resolution_is_zero(&geo_transform) {
        return Err(RasterError::NotGeoreferenced(path.to_owned()));
    }
    if !valid {
        return Err(RasterError::OutsideWorld {
            path: path.to_owned(),
            bounds: [b.min_x, b.min_y, b.max_x, b.max_y],
        });
    }
    let bounds_mercator = tile::bbox_lonlat_to_mercator(&bounds_lonlat);

    let centre_lat = f64::midpoint(bounds_lonlat.min_y, bounds_lonlat.max_y);
    let resolution_metres = if spatial_ref.is_geographic() {
        let metres_per_degree = std::f64::consts::PI / 180.0 * tile::EARTH_RADIUS;
        (
            geo_transform[1].abs() * metres_per_degree * centre_lat.to_radians().cos(),
            geo_transform[5].abs() * metres_per_degree,
        )
    } else {
        let units = spatial_ref.linear_units();
        (
            geo_transform[1].abs() * units,
            geo_transform[5].abs() * units,
        )
    };
    let resolution_mercator = bounds_mercator.width() / width as f64;

    let first = dataset.rasterband(1).map_err(gdal_error)?;
    let mask_flags = first.mask_flags().map_err(gdal_error)?;
    let bands = read_bands(dataset).map_err(gdal_error)?;

    Ok(RasterInfo {
        driver: dataset.driver().short_name(),
        width,
        height,
        crs: spatial_ref.name().unwrap_or_else(|| "unnamed".to_owned()),
        epsg: spatial_ref.auth_code().ok(),
        geo_transform,
        native_bounds,
        bounds_lonlat,
        bounds_mercator,
        resolution_metres,
        resolution_mercator,
        block_size: first.block_size(),
        compression: dataset.metadata_item("COMPRESSION", "IMAGE_STRUCTURE"),
        interleave: dataset.metadata_item("INTERLEAVE", "IMAGE_STRUCTURE"),
        has_mask: mask_flags.is_per_dataset() || mask_flags.is_alpha(),
        bands,
    })
}

fn resolution_is_zero(geo_transform: &[f64; 6]) -> bool {
    let determinant = geo_transform[1] * geo_transform[5] - geo_transform[2] * geo_transform[4];
    !determinant.is_normal()
}

/// Computes the bounding box of the corners of a `width` by `height` grid, in the grid's CRS.
fn grid_bounds(geo_transform: &[f64; 6], width: usize, height: usize) -> Bbox {
    let corner = |px: f64, py: f64| {
        (
            geo_transform[0] + px * geo_transform[1] + py * geo_transform[2],
            geo_transform[3] + px * geo_transform[4] + py * geo_transform[5],
        )
    };
    let (w, h) = (width as f64, height as f64);
    let corners = [
        corner(0.0, 0.0),
        corner(w, 0.0),
        corner(0.0, h),
        corner(w, h),
    ];
    Bbox {
        min_x: corners.iter().map(|c| c.0).fold(f64::INFINITY, f64::min),
        min_y: corners.iter().map(|c| c.1).fold(f64::INFINITY, f64::min),
        max_x: corners
            .iter()
            .map(|c| c.0)
            .fold(f64::NEG_INFINITY, f64::max),
        max_y: corners
            .iter()
            .map(|c| c.1)
            .fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Transforms `native` to lon/lat with 21 points along each edge, so that curved edges are
/// covered, and clamps latitude to the Web Mercator range.
fn lonlat_bounds(spatial_ref: &SpatialRef, native: &Bbox) -> gdal::errors::Result<Bbox> {
    let mut source_srs = spatial_ref.clone();
    source_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_lonlat = CoordTransform::new(&source_srs, &wgs84)?;
    let lonlat = to_lonlat.transform_bounds(
        &[native.min_x, native.min_y, native.max_x, native.max_y],
        21,
    )?;
    Ok(Bbox {
        min_x: lonlat[0].max(-180.0),
        min_y: lonlat[1].max(-tile::MAX_LATITUDE),
        max_x: lonlat[2].min(180.0),
        max_y: lonlat[3].min(tile::MAX_LATITUDE),
    })
}

fn read_bands(dataset: &Dataset) -> gdal::errors::Result<Vec<BandInfo>> {
    let mut bands = Vec::with_capacity(dataset.raster_count());
    for index in 1..=dataset.raster_count() {
        let band = dataset.rasterband(index)?;
        let overview_count = band.overview_count()?.max(0) as usize;
        let overviews = (0..overview_count)
            .filter_map(|i| band.overview(i).ok().map(|overview| overview.size()))
            .collect();
        bands.push(BandInfo {
            index,
            data_type: data_type_name(band.band_type()).to_owned(),
            color: color_name(&band.color_interpretation()).to_owned(),
            nodata: band.no_data_value(),
            has_color_table: band.color_table().is_some(),
            overviews,
        });
    }
    Ok(bands)
}

fn data_type_name(data_type: GdalDataType) -> &'static str {
    match data_type {
        GdalDataType::UInt8 => "uint8",
        GdalDataType::UInt16 => "uint16",
        GdalDataType::Int16 => "int16",
        GdalDataType::UInt32 => "uint32",
        GdalDataType::Int32 => "int32",
        GdalDataType::UInt64 => "uint64",
        GdalDataType::Int64 => "int64",
        GdalDataType::Float32 => "float32",
        GdalDataType::Float64 => "float64",
        GdalDataType::Unknown => "unknown",
    }
}

fn color_name(color: &ColorInterpretation) -> &'static str {
    match color {
        ColorInterpretation::RedBand => "red",
        ColorInterpretation::GreenBand => "green",
        ColorInterpretation::BlueBand => "blue",
        ColorInterpretation::AlphaBand => "alpha",
        ColorInterpretation::GrayIndex => "gray",
        ColorInterpretation::PaletteIndex => "palette",
        _ => "undefined",
    }
}
