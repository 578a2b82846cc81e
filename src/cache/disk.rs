//! Tiles stored on disk, one file each, with least-recently-used eviction.
//!
//! A tile lives at `{path}/tiles/{source}/{h}/{hash}.tile`, where `hash` is the 128-bit hash
//! of its key in hexadecimal and `h` its first two digits. A file is written under a
//! temporary name and renamed, so a reader sees a whole entry or none. The index of sizes and
//! use order is in memory and rebuilt from the folder at start-up, ordered by modification
//! time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::entry;
use super::{CacheConfig, CacheError, TileBody, TileKey};

const TILES_FOLDER: &str = "tiles";
const EXTENSION: &str = "tile";
const TEMPORARY_EXTENSION: &str = "partial";

/// The disk tile cache. Its methods block: call them off the async runtime.
///
/// NOTE: several processes may share one folder, but each evicts by its own index, so
/// together they can pass `max_mb` until each has restarted or evicted.
#[derive(Debug)]
pub struct TileCache {
    root: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// Distinguishes the temporary files of concurrent writes.
    next_temporary: AtomicU64,
}

#[derive(Debug, Default)]
struct Index {
    /// Size and last use of each stored tile, by key hash.
    entries: HashMap<u128, Stored>,
    /// Key hash by last use, oldest first.
    by_use: BTreeMap<u64, u128>,
    total_bytes: u64,
    clock: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    bytes: u64,
    last_use: u64,
    source: String,
}

impl Index {
    fn touch(&mut self, hash: u128) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(stored) = self.entries.get_mut(&hash) {
            self.by_use.remove(&stored.last_use);
            stored.last_use = clock;
            self.by_use.insert(clock, hash);
        }
    }

    fn insert(&mut self, hash: u128, bytes: u64, source: String) {
        self.remove(hash);
        self.clock += 1;
        let last_use = self.clock;
        self.entries.insert(
            hash,
            Stored {
                bytes,
                last_use,
                source,
            },
        );
        self.by_use.insert(last_use, hash);
        self.total_bytes += bytes;
    }

    fn remove(&mut self, hash: u128) -> Option<Stored> {
        let stored = self.entries.remove(&hash)?;
        self.by_use.remove(&stored.last_use);
        self.total_bytes -= stored.bytes;
        Some(stored)
    }

    /// Removes the least recently used entries from the index until the total is at most
    /// `limit`, and returns them.
    fn evict_to(&mut self, limit: u64) -> Vec<(u128, Stored)> {
        let mut evicted = Vec::new();
        while self.total_bytes > limit {
            let Some((_, hash)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(stored) = self.entries.remove(&hash) {
                self.total_bytes -= stored.bytes;
                evicted.push((hash, stored));
            }
        }
        evicted
    }
}

impl TileCache {
    /// Opens the cache folder of `config`, creating it if needed, and indexes the tiles
    /// already there. Partial files of an interrupted write are deleted. Returns `None` when
    /// the configuration has no `path`.
    pub fn open(config: &CacheConfig) -> Result<Option<Self>, CacheError> {
        let Some(root) = &config.path else {
            return Ok(None);
        };
        if config.max_mb == 0 {
            return Err(CacheError::ZeroSize);
        }
        let tiles = root.join(TILES_FOLDER);
        std::fs::create_dir_all(&tiles).map_err(|source| CacheError::CreateFolder {
            path: tiles.clone(),
            source,
        })?;
        let cache = Self {
            root: root.clone(),
            max_bytes: config.max_mb.saturating_mul(1 << 20),
            index: Mutex::new(Index::default()),
            next_temporary: AtomicU64::new(0),
        };
        cache.rebuild_index(&tiles)?;
        let (count, bytes) = cache.usage();
        tracing::info!(path = %root.display(), tiles = count, bytes, max_bytes = cache.max_bytes, "disk tile cache opened");
        Ok(Some(cache))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the number of stored tiles and their total size in bytes.
    pub fn usage(&self) -> (usize, u64) {
        let index = self.lock();
        (index.entries.len(), index.total_bytes)
    }

    /// Returns whether the index lists a tile for `key`, without reading its file.
    pub fn contains(&self, key: &TileKey) -> bool {
        self.lock().entries.contains_key(&key.hash())
    }

    /// Reads the tile of `key`: `Some(Some(tile))`, `Some(None)` for a stored empty tile, or
    /// `None` on a miss. A file that cannot be decoded is logged, deleted and read as a miss.
    pub fn get(&self, key: &TileKey) -> Option<Option<TileBody>> {
        let hash = key.hash();
        let path = self.file_path(&key.source, hash);
        let file = match std::fs::read(&path) {
            Ok(file) => file,
            Err(error) => {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %error, "cannot read cached tile; rendering it again");
                }
                // Another process may have evicted it.
                self.lock().remove(hash);
                return None;
            }
        };
        match entry::decode(key.as_str(), &file) {
            Ok(tile) => {
                let mut index = self.lock();
                if index.entries.contains_key(&hash) {
                    index.touch(hash);
                } else {
                    // Written by another process sharing the folder.
                    index.insert(hash, file.len() as u64, key.source.clone());
                }
                Some(tile)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cached tile is unreadable; deleting it and rendering the tile again");
                self.lock().remove(hash);
                if let Err(error) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), %error, "cannot delete unreadable cached tile");
                }
                None
            }
        }
    }

    /// Stores `tile` (`None` for an empty tile) under `key`, then evicts the least recently
    /// used tiles while the total passes `max_mb`.
    pub fn put(&self, key: &TileKey, tile: Option<&TileBody>) -> Result<(), CacheError> {
        let hash = key.hash();
        let path = self.file_path(&key.source, hash);
        let bytes = entry::encode(key.as_str(), tile);
        let folder = path.parent().expect("a tile file is inside its folder");
        std::fs::create_dir_all(folder).map_err(|source| CacheError::CreateFolder {
            path: folder.to_owned(),
            source,
        })?;
        let temporary = path.with_extension(format!(
            "{}.{}.{TEMPORARY_EXTENSION}",
            std::process::id(),
            self.next_temporary.fetch_add(1, Ordering::Relaxed)
        ));
        let write =
            std::fs::write(&temporary, &bytes).and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(source) = write {
            // The partial file is useless; a failure to delete it leaves it for the next start.
            let _ = std::fs::remove_file(&temporary);
            return Err(CacheError::Write { path, source });
        }
        let evicted = {
            let mut index = self.lock();
            index.insert(hash, bytes.len() as u64, key.source.clone());
            index.evict_to(self.max_bytes)
        };
        for (hash, stored) in evicted {
            let path = self.file_path(&stored.source, hash);
            if let Err(error) = std::fs::remove_file(&path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), %error, "cannot delete evicted cached tile");
            }
        }
        Ok(())
    }

    fn file_path(&self, source: &str, hash: u128) -> PathBuf {
        let name = format!("{hash:032x}");
        self.root
            .join(TILES_FOLDER)
            .join(source)
            .join(&name[..2])
            .join(format!("{name}.{EXTENSION}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // The index holds no invariant that a panic in another thread could break halfway.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Indexes every tile under `tiles` by modification time, oldest first, deletes partial
    /// files, and evicts down to the size limit.
    fn rebuild_index(&self, tiles: &Path) -> Result<(), CacheError> {
        let list = |path: &Path| {
            std::fs::read_dir(path).map_err(|source| CacheError::List {
                path: path.to_owned(),
                source,
            })
        };
        let mut found = Vec::new();
        for source in list(tiles)?.flatten() {
            let Some(source_id) = source.file_name().to_str().map(ToOwned::to_owned) else {
                continue;
            };
            if !source.path().is_dir() {
                continue;
            }
            for prefix in list(&source.path())?.flatten() {
                if !prefix.path().is_dir() {
                    continue;
                }
                for file in list(&prefix.path())?.flatten() {
                    let path = file.path();
                    let name = file.file_name();
                    let name = name.to_string_lossy();
                    if name.ends_with(TEMPORARY_EXTENSION) {
                        tracing::info!(path = %path.display(), "deleting a partial cached tile left by an interrupted write");
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    let Some(hash) = name
                        .strip_suffix(&format!(".{EXTENSION}"))
                        .and_then(|hex| u128::from_str_radix(hex, 16).ok())
                    else {
                        continue;
                    };
                    let Ok(metadata) = file.metadata() else {
                        continue;
                    };
                    let modified = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((modified, hash, metadata.len(), source_id.clone()));
                }
            }
        }
        found.sort_by_key(|(modified, ..)| *modified);
        let mut index = self.lock();
        for (_, hash, bytes, source) in found {
            index.insert(hash, bytes, source);
        }
        let evicted = index.evict_to(self.max_bytes);
        drop(index);
        for (hash, stored) in evicted {
            let _ = std::fs::remove_file(self.file_path(&stored.source, hash));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Compression, TileFormat};
    use crate::tile::TileCoord;

    fn key(x: u64) -> TileKey {
        let tile = TileCoord::new(10, x, 5).expect("valid tile");
        TileKey::new("src", 7, tile, 1, TileFormat::Png, "")
    }

    fn body(size: usize) -> TileBody {
        TileBody {
            bytes: bytes::Bytes::from(vec![7; size]),
            compression: Compression::None,
            enhancement: None,
            dropped_features: 0,
        }
    }

    fn open(folder: &Path, max_mb: u64) -> TileCache {
        let config = CacheConfig {
            path: Some(folder.to_owned()),
            max_mb,
            memory_mb: 0,
        };
        TileCache::open(&config)
            .expect("cache opens")
            .expect("cache is configured")
    }

    #[test]
    fn cache_round_trips_and_survives_restart() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let cache = open(folder.path(), 1);
        assert_eq!(cache.get(&key(1)), None);
        cache.put(&key(1), Some(&body(100))).expect("stored");
        cache.put(&key(2), None).expect("stored");
        assert_eq!(cache.get(&key(1)), Some(Some(body(100))));
        assert_eq!(cache.get(&key(2)), Some(None));
        drop(cache);

        let reopened = open(folder.path(), 1);
        assert_eq!(reopened.usage().0, 2);
        assert_eq!(reopened.get(&key(1)), Some(Some(body(100))));
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let cache = open(folder.path(), 1);
        // Three tiles of 400 KB fit 1 MiB two at a time.
        let size = 400_000;
        cache.put(&key(1), Some(&body(size))).expect("stored");
        cache.put(&key(2), Some(&body(size))).expect("stored");
        assert!(cache.get(&key(1)).is_some(), "tile 1 is used again");
        cache.put(&key(3), Some(&body(size))).expect("stored");
        assert!(cache.get(&key(1)).is_some(), "recently used tile kept");
        assert_eq!(cache.get(&key(2)), None, "least recently used tile evicted");
        assert!(cache.get(&key(3)).is_some(), "newest tile kept");
        assert!(cache.usage().1 <= 1 << 20);
    }

    #[test]
    fn corrupt_entry_is_a_miss_and_deleted() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let cache = open(folder.path(), 1);
        cache.put(&key(1), Some(&body(1000))).expect("stored");
        let path = cache.file_path("src", key(1).hash());
        let file = std::fs::read(&path).expect("entry file");
        std::fs::write(&path, &file[..file.len() / 2]).expect("truncated");
        assert_eq!(cache.get(&key(1)), None);
        assert!(!path.exists(), "the unreadable entry is deleted");
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn partial_files_are_deleted_at_start() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let cache = open(folder.path(), 1);
        cache.put(&key(1), Some(&body(10))).expect("stored");
        let path = cache.file_path("src", key(1).hash());
        let partial = path.with_extension("123.0.partial");
        std::fs::write(&partial, b"half").expect("partial file");
        drop(cache);
        let reopened = open(folder.path(), 1);
        assert!(!partial.exists());
        assert_eq!(reopened.usage().0, 1);
    }
}
