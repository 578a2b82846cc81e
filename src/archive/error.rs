//! Errors from opening and reading `MBTiles` and `PMTiles` archives.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::tile::TileCoord;

use super::MAX_ARCHIVE_ZOOM;

/// An archive that cannot be opened or read. Every variant except `TileOutOfRange` names the
/// archive's path.
#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error(
        "unsupported tile archive extension of {}: Tessera reads only .mbtiles and .pmtiles files",
        path.display()
    )]
    UnsupportedExtension { path: PathBuf },

    #[error("failed to open tile archive {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("{} is not a valid MBTiles archive: {reason}", path.display())]
    NotMbtiles { path: PathBuf, reason: String },

    #[error(
        "SQLite query on MBTiles archive {} failed: {source}; check that the file is intact",
        path.display()
    )]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error(
        "failed to read PMTiles archive {}: {source}; check that it is an intact PMTiles v3 file",
        path.display()
    )]
    Pmtiles {
        path: PathBuf,
        source: ::pmtiles::PmtError,
    },

    #[error(
        "invalid metadata `{key}` = {value:?} in {}: {reason}; fix or remove this metadata entry",
        path.display()
    )]
    InvalidMetadata {
        path: PathBuf,
        key: String,
        value: String,
        reason: String,
    },

    #[error(
        "unsupported tile type {tile_type} in {}: Tessera serves PNG, JPEG, WebP and MVT tiles",
        path.display()
    )]
    UnsupportedTileType { path: PathBuf, tile_type: String },

    #[error(
        "unknown tile format in {}: the archive does not name its tile format, and no sample \
         tile identifies it as PNG, JPEG, WebP or gzip-compressed MVT; set the format in the \
         archive",
        path.display()
    )]
    UnknownFormat { path: PathBuf },

    #[error(
        "tile archive {} contains no tiles, so its {missing} cannot be derived; add tiles or set \
         the {missing} in its metadata",
        path.display()
    )]
    NoTiles {
        path: PathBuf,
        missing: &'static str,
    },

    #[error(
        "tile {}/{}/{} is out of range: z must be at most {MAX_ARCHIVE_ZOOM}, and x and y below 2^z",
        tile.z,
        tile.x,
        tile.y
    )]
    TileOutOfRange { tile: TileCoord },

    #[error("tile archive {}: {source}", path.display())]
    Changed { path: PathBuf, source: io::Error },

    #[error("blocking task reading tile archive {} failed: {source}", path.display())]
    Task {
        path: PathBuf,
        source: tokio::task::JoinError,
    },
}
