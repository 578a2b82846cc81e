//! Errors of density sources.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DensityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read CSV {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("invalid JSON in {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot read {path} as points: {reason}")]
    JsonShape { path: PathBuf, reason: String },
    #[error("cannot read {path} with OGR: {source}")]
    Ogr {
        path: PathBuf,
        source: gdal::errors::GdalError,
    },
    #[error("column {column:?} not found in {path}: its columns are {available}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: String,
    },
    #[error("invalid option {option} = {value}: {reason}")]
    InvalidOption {
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error("encoding density tile {tile} failed: {source}")]
    Encode {
        tile: crate::tile::TileCoord,
        source: mvt::Error,
    },
    #[error("encoding heat-map tile {tile} failed: {source}")]
    EncodeImage {
        tile: crate::tile::TileCoord,
        source: crate::raster::encode::EncodeError,
    },
}
