//! Tessera: a tile and map server for human-rights investigations.
//!
//! `ARCHITECTURE.md` at the repository root is the code map.

pub mod archive;
pub mod config;
pub mod enhance;
pub mod format;
pub mod gdal_ffi;
pub mod info;
pub mod logging;
pub mod raster;
pub mod server;
pub mod source;
pub mod styles;
pub mod tile;
pub mod vector;
pub mod viewer;
pub mod worker;
