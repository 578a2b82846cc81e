//! Tessera: a tile and map server for human-rights investigations.
//!
//! `ARCHITECTURE.md` at the repository root is the code map.

pub mod access;
pub mod archive;
pub mod cache;
pub mod collection;
pub mod config;
pub mod density;
pub mod enhance;
pub mod floorplan;
pub mod format;
pub mod gdal_ffi;
pub mod glyphs;
pub mod info;
pub mod limits;
pub mod logging;
pub mod map;
mod mvt_wire;
pub mod offline;
pub mod ogc;
pub mod postgis;
pub mod raster;
pub mod remote;
pub mod server;
pub mod source;
pub mod sprites;
pub mod styles;
pub mod tile;
pub mod vector;
pub mod viewer;
pub mod worker;
