//! Rendered tiles kept in memory, with the gzip form of vector tiles made once.
//!
//! The cache sits in front of the disk cache and the renderers. It keys tiles by their
//! `TileKey`, which includes the source's revision, so a changed source is rendered anew and
//! its old tiles age out. Entries are weighed by their bytes; the least valuable ones (by
//! moka's TinyLFU policy) leave when the total passes `[cache] memory_mb`.

use std::sync::Arc;

use bytes::Bytes;

use super::{TileBody, TileKey};

/// A tile as the routes share it: the rendered body, or `None` for an empty tile, and for an
/// uncompressed vector tile its gzip form, so that clients accepting gzip cost no compression.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedTile {
    pub body: Option<TileBody>,
    pub gzipped: Option<Bytes>,
}

impl SharedTile {
    /// Returns the bytes held, which the cache counts against its size.
    fn weight(&self) -> usize {
        let body = self.body.as_ref().map_or(0, |body| {
            body.bytes.len() + body.enhancement.as_ref().map_or(0, String::len)
        });
        body + self.gzipped.as_ref().map_or(0, Bytes::len)
    }
}

/// Estimated fixed cost of one entry besides its bytes: the key, the entry and the cache's
/// own records.
const ENTRY_OVERHEAD: usize = 256;

/// The in-memory tile cache of `[cache] memory_mb`.
#[derive(Clone)]
pub struct MemoryCache {
    tiles: moka::sync::Cache<String, Arc<SharedTile>>,
    max_bytes: u64,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MemoryCache")
            .field("entries", &self.tiles.entry_count())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl MemoryCache {
    /// Returns a cache of at most `max_mb` MiB of tiles, or `None` for 0 (cache off).
    pub fn new(max_mb: u64) -> Option<Self> {
        if max_mb == 0 {
            return None;
        }
        let max_bytes = max_mb.saturating_mul(1024 * 1024);
        let tiles = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, tile: &Arc<SharedTile>| {
                let weight = key.len() + tile.weight() + ENTRY_OVERHEAD;
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .build();
        Some(Self { tiles, max_bytes })
    }

    pub fn get(&self, key: &TileKey) -> Option<Arc<SharedTile>> {
        self.tiles.get(key.as_str())
    }

    /// Keeps `tile` under `key`. A tile larger than an eighth of the cache is not kept, so
    /// that one huge tile cannot empty it.
    pub fn insert(&self, key: &TileKey, tile: Arc<SharedTile>) {
        let weight = (key.as_str().len() + tile.weight() + ENTRY_OVERHEAD) as u64;
        if weight > self.max_bytes / 8 {
            return;
        }
        self.tiles.insert(key.as_str().to_owned(), tile);
    }

    /// Returns the number of tiles held and their weight in bytes, after pending evictions.
    pub fn usage(&self) -> (u64, u64) {
        self.tiles.run_pending_tasks();
        (self.tiles.entry_count(), self.tiles.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Compression, TileFormat};
    use crate::tile::TileCoord;

    fn key(y: u64) -> TileKey {
        let tile = TileCoord::new(10, 5, y).expect("valid tile");
        TileKey::new("camps", 1, tile, 1, TileFormat::Mvt, "")
    }

    fn tile(bytes: usize) -> Arc<SharedTile> {
        Arc::new(SharedTile {
            body: Some(TileBody {
                bytes: Bytes::from(vec![7_u8; bytes]),
                compression: Compression::None,
                enhancement: None,
                dropped_features: 0,
            }),
            gzipped: None,
        })
    }

    #[test]
    fn zero_turns_the_cache_off() {
        assert!(MemoryCache::new(0).is_none());
    }

    #[test]
    fn keeps_tiles_and_empty_tiles() {
        let cache = MemoryCache::new(1).expect("cache");
        let stored = tile(1000);
        cache.insert(&key(1), Arc::clone(&stored));
        cache.insert(&key(2), Arc::new(SharedTile::default()));
        assert_eq!(cache.get(&key(1)).as_deref(), Some(&*stored));
        assert_eq!(
            cache.get(&key(2)).as_deref(),
            Some(&SharedTile::default()),
            "an empty tile is kept as empty"
        );
        assert!(cache.get(&key(3)).is_none());
    }

    #[test]
    fn stays_under_its_size() {
        let cache = MemoryCache::new(1).expect("cache");
        for y in 0..200 {
            cache.insert(&key(y), tile(20_000));
        }
        let (entries, bytes) = cache.usage();
        assert!(bytes <= 1024 * 1024, "{bytes} bytes in {entries} entries");
        assert!(entries >= 40, "only {entries} entries of 20 kB in 1 MiB");
    }

    #[test]
    fn rejects_tiles_over_an_eighth() {
        let cache = MemoryCache::new(1).expect("cache");
        cache.insert(&key(1), tile(200_000));
        assert!(cache.get(&key(1)).is_none());
        cache.insert(&key(2), tile(100_000));
        assert!(cache.get(&key(2)).is_some());
    }
}
