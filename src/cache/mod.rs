//! Rendered tiles kept in memory and on disk, and shared computations of missing tiles.
//!
//! `memory` keeps recent tiles, and the gzip form of vector tiles, under `memory_mb`; `disk` stores tiles under `[cache] path`, evicts the least recently used ones above
//! `max_mb` and survives a restart; `entry` is the file format of one tile with a checksum;
//! `flight` makes concurrent requests of one missing tile share a single computation.

mod disk;
mod entry;
mod flight;
mod memory;

use std::path::PathBuf;

use bytes::Bytes;
use serde::Deserialize;
use thiserror::Error;

pub use self::disk::TileCache;
pub use self::flight::SingleFlight;
pub use self::memory::{MemoryCache, SharedTile};
use crate::format::{Compression, TileFormat};
use crate::tile::TileCoord;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error(
        "cannot create cache folder {path}: {source}; check `[cache] path` and its permissions"
    )]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list cache folder {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write cached tile {path}: {source}; check free disk space")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "invalid [cache] max_mb = 0: use at least 1 MiB, or remove `path` to turn the cache off"
    )]
    ZeroSize,
}

/// The `[cache]` table of `tessera.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Folder of the disk cache; the cache is off without it. A relative path is taken from
    /// the configuration file's folder.
    pub path: Option<PathBuf>,
    /// Largest total size of the cached tiles, in MiB; the least recently used are removed
    /// above it.
    pub max_mb: u64,
    /// Largest total size of the tiles kept in memory, in MiB; 0 turns the memory cache off.
    pub memory_mb: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_mb: 1024,
            memory_mb: 64,
        }
    }
}

/// A rendered tile as the tile route sends it, before compression for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct TileBody {
    pub bytes: Bytes,
    pub compression: Compression,
    /// The `Tessera-Enhancement` header value of an enhanced imagery tile.
    pub enhancement: Option<String>,
    /// Vector features left out by `max_features_per_tile` (`Tessera-Dropped-Features`).
    pub dropped_features: usize,
}

/// The identity of one rendered tile: the source and its revision, the tile, its size and
/// format, and the request's canonical options. The Tessera version is part of it too, so
/// that a new release never serves tiles rendered by an older one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileKey {
    pub source: String,
    text: String,
}

impl TileKey {
    /// Builds the key. `options` is the canonical query string of the request (date,
    /// density filter, enhancement, resampling), empty without options.
    pub fn new(
        source: &str,
        revision: u64,
        tile: TileCoord,
        scale: u32,
        format: TileFormat,
        options: &str,
    ) -> Self {
        let text = format!(
            "tessera-{}/{source}/{revision:016x}/{}/{}/{}@{scale}x.{}?{options}",
            env!("CARGO_PKG_VERSION"),
            tile.z,
            tile.x,
            tile.y,
            format.extension()
        );
        Self {
            source: source.to_owned(),
            text,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Returns the 128-bit hash that names the key's file.
    fn hash(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(self.text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_part() {
        let tile = TileCoord::new(3, 1, 2).expect("valid tile");
        let other_tile = TileCoord::new(3, 2, 1).expect("valid tile");
        let base = TileKey::new("a", 1, tile, 1, TileFormat::Png, "");
        let variants = [
            TileKey::new("b", 1, tile, 1, TileFormat::Png, ""),
            TileKey::new("a", 2, tile, 1, TileFormat::Png, ""),
            TileKey::new("a", 1, other_tile, 1, TileFormat::Png, ""),
            TileKey::new("a", 1, tile, 2, TileFormat::Png, ""),
            TileKey::new("a", 1, tile, 1, TileFormat::Webp, ""),
            TileKey::new("a", 1, tile, 1, TileFormat::Png, "date=2020"),
        ];
        for variant in variants {
            assert_ne!(base.as_str(), variant.as_str());
            assert_ne!(base.hash(), variant.hash(), "{}", variant.as_str());
        }
    }
}
