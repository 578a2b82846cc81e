//! Tessera: a tile and map server for human-rights investigations.
//!
//! `ARCHITECTURE.md` at the repository root is the code map.

pub mod archive;
pub mod format;
pub mod tile;
pub mod vector;
pub mod viewer;
