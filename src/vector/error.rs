//! Errors of vector sources.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum VectorError {
    #[error(
        "failed to open vector dataset {path}: {source}. Check that the file exists, is readable \
         and is in a format that GDAL's OGR reads (`ogrinfo --formats` lists the drivers)"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: gdal::errors::GdalError,
    },

    #[error(
        "vector dataset {path} has no layer with a geometry column: give a file with at least \
         one spatial OGR layer"
    )]
    NoLayers { path: PathBuf },

    #[error(
        "failed to set up the transformation of layer {layer} of {path} to WGS 84 lon/lat: \
         {source}. Check the layer's CRS with `ogrinfo -so`, or reproject the file with \
         `ogr2ogr -t_srs EPSG:4326`"
    )]
    Transform {
        path: PathBuf,
        layer: String,
        #[source]
        source: gdal::errors::GdalError,
    },

    #[error("invalid vector option {option} = {value}: {reason}")]
    InvalidOption {
        option: &'static str,
        value: String,
        reason: String,
    },

    #[error(
        "zoom {z} is outside the zoom range {minzoom} to {maxzoom} of this vector source: \
         request a zoom in that range"
    )]
    ZoomOutOfRange { z: u8, minzoom: u8, maxzoom: u8 },

    #[error("tile {z}/{x}/{y} does not exist: x and y must be below 2^{z} = {size} at zoom {z}")]
    TileOutOfRange { z: u8, x: u32, y: u32, size: u64 },

    #[error("failed to encode MVT tile {z}/{x}/{y}: {source}")]
    Encode {
        z: u8,
        x: u32,
        y: u32,
        #[source]
        source: mvt::Error,
    },
}
