//! Bounded in-memory caches of rendered density tiles and heat-map scales.
//!
//! Filtered variants are separate entries, keyed by the tile and the canonical filter.

use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes of rendered tiles kept per density source.
pub(super) const TILE_CACHE_BYTES: usize = 64 << 20;

/// Heat-map scales kept per density source (one per zoom, radius and filter).
pub(super) const SCALE_CACHE_ENTRIES: usize = 4096;

/// Tiles by key, with the least recently used evicted first once over the byte budget.
#[derive(Debug)]
pub(super) struct TileCache {
    budget: usize,
    state: Mutex<TileCacheState>,
}

#[derive(Debug, Default)]
struct TileCacheState {
    entries: HashMap<String, (Option<Vec<u8>>, u64)>,
    bytes: usize,
    clock: u64,
}

fn entry_bytes(key: &str, tile: Option<&Vec<u8>>) -> usize {
    key.len() + tile.map_or(0, Vec::len) + 64
}

impl TileCache {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::new(TileCacheState::default()),
        }
    }

    /// Returns the cached tile (`Some(None)` for a cached empty tile).
    #[allow(
        clippy::option_option,
        reason = "an empty tile is cached too, apart from a tile not in the cache"
    )]
    pub(super) fn get(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.clock += 1;
        let clock = state.clock;
        let (tile, used) = state.entries.get_mut(key)?;
        *used = clock;
        Some(tile.clone())
    }

    pub(super) fn insert(&self, key: String, tile: Option<Vec<u8>>) {
        let size = entry_bytes(&key, tile.as_ref());
        if size > self.budget / 4 {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.clock += 1;
        let clock = state.clock;
        let replaced = state
            .entries
            .get(&key)
            .map_or(0, |(old, _)| entry_bytes(&key, old.as_ref()));
        state.bytes = state.bytes + size - replaced;
        state.entries.insert(key, (tile, clock));
        if state.bytes > self.budget {
            // Evict down to three quarters of the budget at once, so the sort is rare.
            let mut by_age: Vec<(u64, String)> = state
                .entries
                .iter()
                .map(|(key, (_, used))| (*used, key.clone()))
                .collect();
            by_age.sort_unstable();
            for (_, key) in by_age {
                if state.bytes <= self.budget * 3 / 4 {
                    break;
                }
                if let Some((tile, _)) = state.entries.remove(&key) {
                    state.bytes -= entry_bytes(&key, tile.as_ref());
                }
            }
        }
    }
}

/// Heat-map scales by key; emptied when full, because a scale is cheap to recompute
/// compared with the memory of an unbounded map.
#[derive(Debug)]
pub(super) struct ScaleCache {
    capacity: usize,
    entries: Mutex<HashMap<String, f64>>,
}

impl ScaleCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<f64> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).copied()
    }

    pub(super) fn insert(&self, key: String, value: f64) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_cache_stays_within_budget() {
        let cache = TileCache::new(10_000);
        for i in 0..100 {
            cache.insert(format!("tile{i}"), Some(vec![0; 500]));
        }
        let state = cache.state.lock().expect("lock");
        assert!(state.bytes <= 10_000, "{} bytes", state.bytes);
        assert!(
            state.entries.contains_key("tile99"),
            "the newest tile is kept"
        );
        assert!(
            !state.entries.contains_key("tile0"),
            "the oldest tile is evicted"
        );
    }

    #[test]
    fn empty_tiles_are_cached_too() {
        let cache = TileCache::new(10_000);
        cache.insert("a".to_owned(), None);
        assert_eq!(cache.get("a"), Some(None));
        assert_eq!(cache.get("b"), None);
    }
}
