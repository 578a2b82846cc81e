//! `MBTiles` 1.3 archives: `SQLite` databases of tiles whose `tile_row` counts from the south (TMS).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, InterruptHandle, OpenFlags, OptionalExtension};
use tracing::{debug, warn};

use crate::format::{Compression, TileFormat};
use crate::tile::TileCoord;

use super::metadata::{parse_bounds, parse_center, parse_format, parse_vector_layers, parse_zoom};
use super::pinned::PinnedFile;
use super::{
    ArchiveError, ArchiveMetadata, MAX_ARCHIVE_ZOOM, WORLD_BOUNDS, check_regular_file,
    check_tile_in_range, sniff_compression,
};

/// Maximum number of idle `SQLite` connections kept per archive. Reads beyond this many at once
/// open extra connections, which are closed after use.
const MAX_IDLE_CONNECTIONS: usize = 4;

/// An `MBTiles` archive opened read-only, with a small pool of `SQLite` connections that are used
/// only on Tokio's blocking threads.
pub struct MbtilesArchive {
    path: PathBuf,
    metadata: ArchiveMetadata,
    layout: TileLayout,
    pool: Arc<ConnectionPool>,
    /// The file that every connection reads, through its `/proc/self/fd` path.
    file: PinnedFile,
}

impl fmt::Debug for MbtilesArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbtilesArchive")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl MbtilesArchive {
    /// Opens an `MBTiles` file read-only and reads and validates its metadata.
    ///
    /// Missing `format`, `minzoom` and `maxzoom` entries are derived from the tiles. Deriving
    /// the zoom levels runs one `min`/`max` query over the `zoom_level` column.
    pub async fn open(path: &Path) -> Result<Self, ArchiveError> {
        let owned_path = path.to_path_buf();
        tokio::task::spawn_blocking(move || open_blocking(owned_path))
            .await
            .map_err(|source| ArchiveError::Task {
                path: path.to_path_buf(),
                source,
            })?
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> &ArchiveMetadata {
        &self.metadata
    }

    /// Reads the stored bytes of a tile, or `None` if the archive has no such row or its
    /// `tile_data` is NULL.
    pub async fn get_tile(&self, tile: TileCoord) -> Result<Option<Bytes>, ArchiveError> {
        check_tile_in_range(tile)?;
        // XYZ rows count from the north and MBTiles rows from the south.
        let tms_row = (1_i64 << tile.z) - 1 - i64::from(tile.y);
        let sql = self.layout.tile_query();
        let pool = Arc::clone(&self.pool);
        // Dropping this future (at the tile's deadline, say) interrupts the query, which
        // would otherwise keep its blocking thread and connection until it ends.
        let cancel = CancelOnDrop::default();
        let query = Arc::clone(&cancel.query);

        let result = tokio::task::spawn_blocking(move || {
            pool.with_connection(|connection| {
                query.start(connection)?;
                let result = connection.prepare_cached(sql).and_then(|mut statement| {
                    statement
                        .query_row((tile.z, tile.x, tms_row), |row| {
                            row.get::<_, Option<Vec<u8>>>(0)
                        })
                        .optional()
                });
                query.finish();
                result
            })
        })
        .await
        .map_err(|source| ArchiveError::Task {
            path: self.path.clone(),
            source,
        })?;
        cancel.disarm();

        // A file written to during the query may have given bytes of both versions.
        self.file
            .check_unchanged()
            .map_err(|source| ArchiveError::Changed {
                path: self.path.clone(),
                source,
            })?;
        let data = result.map_err(|source| sqlite_error(&self.path, source))?;
        Ok(data.flatten().map(Bytes::from))
    }
}

/// The state of one tile query shared between its blocking thread and the future awaiting it.
#[derive(Default)]
struct QueryState {
    /// The interrupt handle of the connection while the query runs.
    running: Option<InterruptHandle>,
    /// Set when the awaiting future was dropped: a query not yet started does not start.
    cancelled: bool,
}

/// A query that the future awaiting it can interrupt.
#[derive(Default)]
struct InterruptibleQuery {
    state: Mutex<QueryState>,
}

impl InterruptibleQuery {
    /// Registers `connection` as running this query, or fails if the query was cancelled.
    fn start(&self, connection: &Connection) -> rusqlite::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                Some("the tile request was cancelled before the query started".to_owned()),
            ));
        }
        state.running = Some(connection.get_interrupt_handle());
        Ok(())
    }

    /// Forgets the connection's handle, so that a late interrupt cannot reach the next query
    /// run on the same pooled connection.
    fn finish(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .running = None;
    }

    fn cancel(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.cancelled = true;
        if let Some(handle) = state.running.take() {
            handle.interrupt();
        }
    }
}

/// Interrupts its query when dropped before [`CancelOnDrop::disarm`].
#[derive(Default)]
struct CancelOnDrop {
    query: Arc<InterruptibleQuery>,
    done: bool,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.done = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.done {
            debug!("interrupting an MBTiles query whose request was dropped");
            self.query.cancel();
        }
    }
}

/// Storage layout of an archive's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TileLayout {
    /// A `tiles` table, or a `tiles` view over deduplicating tables.
    Tiles,
    /// Deduplicated `map` and `images` tables joined on `tile_id`, without a `tiles` view.
    MapImages,
}

impl TileLayout {
    fn tile_query(self) -> &'static str {
        match self {
            TileLayout::Tiles => {
                "SELECT tile_data FROM tiles \
                 WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3"
            }
            TileLayout::MapImages => {
                "SELECT images.tile_data FROM map JOIN images ON images.tile_id = map.tile_id \
                 WHERE map.zoom_level = ?1 AND map.tile_column = ?2 AND map.tile_row = ?3"
            }
        }
    }

    /// Returns a query that reads the data of any one non-empty tile.
    fn sample_tile_query(self) -> &'static str {
        match self {
            TileLayout::Tiles => "SELECT tile_data FROM tiles WHERE length(tile_data) > 0 LIMIT 1",
            TileLayout::MapImages => {
                "SELECT images.tile_data FROM map JOIN images ON images.tile_id = map.tile_id \
                 WHERE length(images.tile_data) > 0 LIMIT 1"
            }
        }
    }

    fn zoom_range_query(self) -> &'static str {
        match self {
            TileLayout::Tiles => "SELECT min(zoom_level), max(zoom_level) FROM tiles",
            TileLayout::MapImages => "SELECT min(zoom_level), max(zoom_level) FROM map",
        }
    }
}

/// Idle read-only connections to one archive. A `Connection` is `Send` but not `Sync`, so each
/// read takes a connection out of the pool for its duration.
struct ConnectionPool {
    uri: String,
    idle: Mutex<Vec<Connection>>,
}

impl ConnectionPool {
    /// Runs `read` on an idle connection, or on a new one if none is idle. Must run on a
    /// blocking thread.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        // A poisoned lock still contains a valid list of connections.
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.uri)?,
        };

        let result = read(&connection);

        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(connection);
        }
        result
    }
}

/// Opens a connection from a URI made by [`sqlite_uri`].
fn open_connection(uri: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags)
}

/// Builds a read-only `SQLite` URI for a path, percent-encoding every byte outside the URI's
/// unreserved characters and `/`. Returns `None` for a path that is not valid UTF-8.
///
/// `immutable=1` makes `SQLite` skip all file locking and change detection, so reads take no
/// locks. The archive opens the URI of its held file's `/proc/self/fd` path, so a file renamed
/// over the original path is not read, and it checks after each read that the held file was
/// not written to.
fn sqlite_uri(path: &Path) -> Option<String> {
    let path = path.to_str()?;
    // An absolute path gets an empty authority (`file:///...`), so that a path starting with
    // `//` is not read as a host name.
    let mut uri = String::from(if path.starts_with('/') {
        "file://"
    } else {
        "file:"
    });
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            write!(uri, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    Some(uri)
}

fn open_blocking(path: PathBuf) -> Result<MbtilesArchive, ArchiveError> {
    check_regular_file(&path, std::fs::metadata(&path))?;
    let file = PinnedFile::open(&path).map_err(|source| ArchiveError::Open {
        path: path.clone(),
        source,
    })?;
    let uri = sqlite_uri(&file.proc_path()).ok_or_else(|| ArchiveError::Open {
        path: path.clone(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path is not valid UTF-8, which SQLite needs; rename the file",
        ),
    })?;
    let connection = open_connection(&uri).map_err(|source| sqlite_error(&path, source))?;

    let layout = detect_layout(&connection)
        .map_err(|source| sqlite_error(&path, source))?
        .ok_or_else(|| {
            not_mbtiles(
                &path,
                "it has no `tiles` table or view, and no `map` and `images` tables",
            )
        })?;
    // Preparing the tile query checks that the MBTiles columns exist.
    if let Err(source) = connection.prepare_cached(layout.tile_query()) {
        return Err(not_mbtiles(
            &path,
            &format!(
                "its tiles lack a column among zoom_level, tile_column, tile_row and \
                 tile_data ({source})"
            ),
        ));
    }

    let entries = read_metadata_entries(&connection, &path)?;
    let metadata = resolve_metadata(&connection, layout, &path, &entries)?;
    debug!(
        path = %path.display(),
        ?layout,
        format = %metadata.format,
        minzoom = metadata.minzoom,
        maxzoom = metadata.maxzoom,
        "opened MBTiles archive"
    );

    let pool = ConnectionPool {
        uri,
        idle: Mutex::new(vec![connection]),
    };
    Ok(MbtilesArchive {
        path,
        metadata,
        layout,
        pool: Arc::new(pool),
        file,
    })
}

fn not_mbtiles(path: &Path, reason: &str) -> ArchiveError {
    ArchiveError::NotMbtiles {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

/// Wraps an `SQLite` error, reporting a file that is not a database as not an `MBTiles` archive.
fn sqlite_error(path: &Path, source: rusqlite::Error) -> ArchiveError {
    if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        not_mbtiles(path, "it is not an SQLite database")
    } else {
        ArchiveError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn has_table_or_view(connection: &Connection, name: &str) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT count(*) FROM sqlite_master \
         WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE",
        [name],
        |row| row.get::<_, i64>(0).map(|count| count > 0),
    )
}

fn detect_layout(connection: &Connection) -> rusqlite::Result<Option<TileLayout>> {
    if has_table_or_view(connection, "tiles")? {
        Ok(Some(TileLayout::Tiles))
    } else if has_table_or_view(connection, "map")? && has_table_or_view(connection, "images")? {
        Ok(Some(TileLayout::MapImages))
    } else {
        Ok(None)
    }
}

/// Reads the `metadata` table into a map from name to value, with numbers as text. An archive
/// without the table gets an empty map, so that its metadata is derived from the tiles.
fn read_metadata_entries(
    connection: &Connection,
    path: &Path,
) -> Result<HashMap<String, String>, ArchiveError> {
    let to_archive_error = |source| sqlite_error(path, source);
    if !has_table_or_view(connection, "metadata").map_err(to_archive_error)? {
        warn!(path = %path.display(), "MBTiles archive has no metadata table");
        return Ok(HashMap::new());
    }

    let mut statement = connection
        .prepare("SELECT name, value FROM metadata")
        .map_err(|source| {
            not_mbtiles(
                path,
                &format!("its metadata table lacks the name or value column ({source})"),
            )
        })?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Value>(1)?))
        })
        .map_err(to_archive_error)?;

    let mut entries = HashMap::new();
    for row in rows {
        let (name, value) = row.map_err(to_archive_error)?;
        let text = match value {
            Value::Text(text) => text,
            Value::Integer(number) => number.to_string(),
            Value::Real(number) => number.to_string(),
            Value::Null => continue,
            Value::Blob(bytes) => {
                let Ok(text) = String::from_utf8(bytes) else {
                    warn!(
                        path = %path.display(),
                        name,
                        "ignored MBTiles metadata entry: its value is a binary blob, not text"
                    );
                    continue;
                };
                text
            }
        };
        entries.insert(name, text);
    }
    Ok(entries)
}

/// Validates the metadata entries and derives what they lack from the tiles.
fn resolve_metadata(
    connection: &Connection,
    layout: TileLayout,
    path: &Path,
    entries: &HashMap<String, String>,
) -> Result<ArchiveMetadata, ArchiveError> {
    let format = parse_entry(entries, "format", path, parse_format)?;
    let vector_layers = parse_entry(entries, "json", path, parse_vector_layers)?.flatten();
    let (minzoom, maxzoom) = resolve_zooms(connection, layout, path, entries)?;

    // A sample tile gives the format when the metadata lacks it, and the compression of MVT.
    let sample_tile = if format.is_none_or(|format| format == TileFormat::Mvt) {
        connection
            .query_row(layout.sample_tile_query(), [], |row| {
                row.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map_err(|source| sqlite_error(path, source))?
    } else {
        None
    };
    let format = match format {
        Some(format) => format,
        None => sniff_format(path, sample_tile.as_deref(), vector_layers.is_some())?,
    };
    let compression = match (format, &sample_tile) {
        (TileFormat::Mvt, Some(tile)) => sniff_compression(tile),
        // MBTiles 1.3 requires `pbf` tiles to be gzip-compressed.
        (TileFormat::Mvt, None) => Compression::Gzip,
        _ => Compression::None,
    };

    let mut bounds = parse_entry(entries, "bounds", path, parse_bounds)?.unwrap_or(WORLD_BOUNDS);
    if bounds.min_x > bounds.max_x {
        warn!(
            path = %path.display(),
            ?bounds,
            "MBTiles bounds cross the antimeridian, which is not supported; using all longitudes"
        );
        bounds.min_x = WORLD_BOUNDS.min_x;
        bounds.max_x = WORLD_BOUNDS.max_x;
    }
    let center = parse_entry(entries, "center", path, |value| {
        parse_center(value, minzoom)
    })?;

    let text = |key: &str| entries.get(key).filter(|value| !value.is_empty()).cloned();
    Ok(ArchiveMetadata {
        format,
        compression,
        minzoom,
        maxzoom,
        bounds,
        center,
        name: text("name"),
        description: text("description"),
        attribution: text("attribution"),
        vector_layers,
    })
}

/// Takes the zoom levels from the metadata, and any that it lacks from the tiles.
fn resolve_zooms(
    connection: &Connection,
    layout: TileLayout,
    path: &Path,
    entries: &HashMap<String, String>,
) -> Result<(u8, u8), ArchiveError> {
    let minzoom = parse_entry(entries, "minzoom", path, parse_zoom)?;
    let maxzoom = parse_entry(entries, "maxzoom", path, parse_zoom)?;
    let (minzoom, maxzoom) = match (minzoom, maxzoom) {
        (Some(minzoom), Some(maxzoom)) => (minzoom, maxzoom),
        (minzoom, maxzoom) => {
            let (tiles_minzoom, tiles_maxzoom) = query_zoom_range(connection, layout, path)?;
            (
                minzoom.unwrap_or(tiles_minzoom),
                maxzoom.unwrap_or(tiles_maxzoom),
            )
        }
    };

    if minzoom > maxzoom {
        return Err(ArchiveError::InvalidMetadata {
            path: path.to_path_buf(),
            key: "minzoom".to_owned(),
            value: minzoom.to_string(),
            reason: format!("it is above maxzoom {maxzoom}"),
        });
    }
    Ok((minzoom, maxzoom))
}

fn query_zoom_range(
    connection: &Connection,
    layout: TileLayout,
    path: &Path,
) -> Result<(u8, u8), ArchiveError> {
    let (min, max) = connection
        .query_row(layout.zoom_range_query(), [], |row| {
            Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
        })
        .map_err(|source| sqlite_error(path, source))?;
    let (Some(min), Some(max)) = (min, max) else {
        return Err(ArchiveError::NoTiles {
            path: path.to_path_buf(),
            missing: "minzoom and maxzoom",
        });
    };

    let to_zoom = |zoom: i64| {
        u8::try_from(zoom)
            .ok()
            .filter(|zoom| *zoom <= MAX_ARCHIVE_ZOOM)
            .ok_or_else(|| {
                not_mbtiles(
                    path,
                    &format!("its tiles have zoom_level {zoom}, outside 0 to {MAX_ARCHIVE_ZOOM}"),
                )
            })
    };
    Ok((to_zoom(min)?, to_zoom(max)?))
}

/// Detects the format from a sample tile. An archive whose tiles are not recognised but whose
/// metadata lists vector layers is taken to contain MVT that is not gzip-compressed.
fn sniff_format(
    path: &Path,
    sample_tile: Option<&[u8]>,
    has_vector_layers: bool,
) -> Result<TileFormat, ArchiveError> {
    let Some(tile) = sample_tile else {
        return Err(ArchiveError::NoTiles {
            path: path.to_path_buf(),
            missing: "format",
        });
    };
    match TileFormat::sniff(tile) {
        Some(format) => Ok(format),
        None if has_vector_layers => Ok(TileFormat::Mvt),
        None => Err(ArchiveError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Parses the entry `key` if present, wrapping a parse failure into an error that names the
/// archive, the key and the value.
fn parse_entry<T>(
    entries: &HashMap<String, String>,
    key: &str,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, ArchiveError> {
    let Some(value) = entries.get(key) else {
        return Ok(None);
    };
    parse(value.trim())
        .map(Some)
        .map_err(|reason| ArchiveError::InvalidMetadata {
            path: path.to_path_buf(),
            key: key.to_owned(),
            value: value.clone(),
            reason,
        })
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write as _};
    use std::time::{Duration, Instant};

    use flate2::Compression as GzipLevel;
    use flate2::write::GzEncoder;
    use tempfile::TempDir;

    use super::super::Archive;
    use super::*;
    use crate::tile::Bbox;

    const VECTOR_LAYERS: &str = r#"{"vector_layers":[{"id":"facilities","fields":{"name":"String"},"minzoom":0,"maxzoom":2}]}"#;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), GzipLevel::default());
        encoder.write_all(bytes).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    }

    fn png_tile() -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(256, 256, image::Rgba([200, 30, 30, 255]));
        let mut png = Cursor::new(Vec::new());
        image
            .write_to(&mut png, image::ImageFormat::Png)
            .expect("encode a PNG tile");
        png.into_inner()
    }

    /// Writes an `MBTiles` file with a `tiles` table. `tiles` rows are (zoom, column, TMS row,
    /// data).
    fn write_mbtiles(
        path: &Path,
        metadata: &[(&str, &str)],
        tiles: &[(u8, u32, u32, &[u8])],
    ) -> Connection {
        let connection = Connection::open(path).expect("create the MBTiles file");
        connection
            .execute_batch(
                "CREATE TABLE metadata (name TEXT, value TEXT);
                 CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER,
                                     tile_row INTEGER, tile_data BLOB);
                 CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);",
            )
            .expect("create the MBTiles tables");
        for (name, value) in metadata {
            connection
                .execute("INSERT INTO metadata VALUES (?1, ?2)", (name, value))
                .expect("insert metadata");
        }
        for (z, x, row, data) in tiles {
            connection
                .execute(
                    "INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)",
                    (z, x, row, data),
                )
                .expect("insert a tile");
        }
        connection
    }

    fn tile(z: u8, x: u32, y: u32) -> TileCoord {
        TileCoord { z, x, y }
    }

    #[tokio::test]
    async fn vector_archive_metadata_and_tiles() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("facilities.mbtiles");
        let north_west = gzip(b"tile 1/0/0");
        let south_east = gzip(b"tile 2/3/3");
        write_mbtiles(
            &path,
            &[
                ("name", "Facilities"),
                ("format", "pbf"),
                ("minzoom", "0"),
                ("maxzoom", "2"),
                ("bounds", "124.5,37.5,131.0,43.0"),
                ("center", "127.5,40.0,2"),
                ("description", "Facility footprints"),
                ("attribution", "Test data"),
                ("json", VECTOR_LAYERS),
            ],
            // TMS row 1 at zoom 1 is XYZ row 0, and TMS row 0 at zoom 2 is XYZ row 3.
            &[(1, 0, 1, &north_west), (2, 3, 0, &south_east)],
        );

        let archive = Archive::open(&path)
            .await
            .expect("open the MBTiles archive");
        let metadata = archive.metadata();
        assert_eq!(metadata.format, TileFormat::Mvt);
        assert_eq!(metadata.compression, Compression::Gzip);
        assert_eq!((metadata.minzoom, metadata.maxzoom), (0, 2));
        assert_eq!(
            metadata.bounds,
            Bbox {
                min_x: 124.5,
                min_y: 37.5,
                max_x: 131.0,
                max_y: 43.0
            }
        );
        assert_eq!(metadata.center, Some([127.5, 40.0, 2.0]));
        assert_eq!(metadata.name.as_deref(), Some("Facilities"));
        assert_eq!(metadata.description.as_deref(), Some("Facility footprints"));
        assert_eq!(metadata.attribution.as_deref(), Some("Test data"));
        let layers = metadata
            .vector_layers
            .as_ref()
            .expect("vector_layers from json");
        assert_eq!(layers[0]["id"], "facilities");

        let cases = [
            (tile(1, 0, 0), Some(north_west.as_slice())),
            (tile(1, 0, 1), None),
            (tile(2, 3, 3), Some(south_east.as_slice())),
            (tile(2, 3, 0), None),
            (tile(5, 0, 0), None),
        ];
        for (coord, expected) in cases {
            let data = archive.get_tile(coord).await.expect("read a tile");
            assert_eq!(data.as_deref(), expected, "{coord:?}");
        }
    }

    #[tokio::test]
    async fn raster_format_sniffed() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("imagery.mbtiles");
        let png = png_tile();
        write_mbtiles(
            &path,
            &[("name", "Imagery")],
            &[(3, 2, 5, &png), (4, 4, 10, &png)],
        );

        let archive = Archive::open(&path)
            .await
            .expect("open the MBTiles archive");
        let metadata = archive.metadata();
        assert_eq!(metadata.format, TileFormat::Png);
        assert_eq!(metadata.compression, Compression::None);
        assert_eq!((metadata.minzoom, metadata.maxzoom), (3, 4));
        assert_eq!(metadata.bounds, WORLD_BOUNDS);
        assert_eq!(metadata.center, None);
        assert_eq!(metadata.vector_layers, None);

        // TMS row 5 at zoom 3 is XYZ row 2.
        let data = archive.get_tile(tile(3, 2, 2)).await.expect("read a tile");
        assert_eq!(data.as_deref(), Some(png.as_slice()));
    }

    #[tokio::test]
    async fn map_images_layout() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("deduplicated.mbtiles");
        let connection = Connection::open(&path).expect("create the MBTiles file");
        let jpeg_start: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        connection
            .execute_batch(
                "CREATE TABLE metadata (name TEXT, value TEXT);
                 CREATE TABLE map (zoom_level INTEGER, tile_column INTEGER,
                                   tile_row INTEGER, tile_id TEXT);
                 CREATE TABLE images (tile_id TEXT, tile_data BLOB);
                 INSERT INTO map VALUES (0, 0, 0, 'a'), (1, 1, 0, 'a');",
            )
            .expect("create the map and images tables");
        connection
            .execute("INSERT INTO images VALUES ('a', ?1)", [jpeg_start])
            .expect("insert an image");
        drop(connection);

        let archive = Archive::open(&path)
            .await
            .expect("open the MBTiles archive");
        assert_eq!(archive.metadata().format, TileFormat::Jpeg);
        assert_eq!(
            (archive.metadata().minzoom, archive.metadata().maxzoom),
            (0, 1)
        );
        let data = archive.get_tile(tile(1, 1, 1)).await.expect("read a tile");
        assert_eq!(data.as_deref(), Some(jpeg_start));
        let absent = archive.get_tile(tile(1, 1, 0)).await.expect("read a tile");
        assert_eq!(absent, None);
    }

    #[tokio::test]
    async fn invalid_files_rejected() {
        let dir = TempDir::new().expect("create a temporary directory");

        let missing = dir.path().join("missing.mbtiles");
        let error = Archive::open(&missing).await.expect_err("a missing file");
        assert!(matches!(error, ArchiveError::Open { .. }), "{error}");
        assert!(error.to_string().contains("missing.mbtiles"), "{error}");

        let text = dir.path().join("text.mbtiles");
        std::fs::write(
            &text,
            "not a database, but long enough to be read as a header",
        )
        .expect("write a text file");
        let error = Archive::open(&text).await.expect_err("a text file");
        assert!(matches!(error, ArchiveError::NotMbtiles { .. }), "{error}");
        assert!(
            error.to_string().contains("not an SQLite database"),
            "{error}"
        );

        let other = dir.path().join("other.mbtiles");
        Connection::open(&other)
            .expect("create an SQLite file")
            .execute_batch("CREATE TABLE facilities (name TEXT);")
            .expect("create a table");
        let error = Archive::open(&other)
            .await
            .expect_err("an SQLite file without tiles");
        assert!(matches!(error, ArchiveError::NotMbtiles { .. }), "{error}");
        assert!(error.to_string().contains("other.mbtiles"), "{error}");

        let columns = dir.path().join("columns.mbtiles");
        Connection::open(&columns)
            .expect("create an SQLite file")
            .execute_batch("CREATE TABLE tiles (z INTEGER, x INTEGER, y INTEGER, data BLOB);")
            .expect("create a table");
        let error = Archive::open(&columns)
            .await
            .expect_err("tiles with other columns");
        assert!(matches!(error, ArchiveError::NotMbtiles { .. }), "{error}");

        let empty = dir.path().join("empty.mbtiles");
        write_mbtiles(&empty, &[("format", "png")], &[]);
        let error = Archive::open(&empty)
            .await
            .expect_err("no tiles and no zooms");
        assert!(matches!(error, ArchiveError::NoTiles { .. }), "{error}");

        let unknown = dir.path().join("unknown.txt");
        let error = Archive::open(&unknown)
            .await
            .expect_err("an unknown extension");
        assert!(
            matches!(error, ArchiveError::UnsupportedExtension { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn invalid_metadata_rejected() {
        let dir = TempDir::new().expect("create a temporary directory");
        let png = png_tile();
        // Each case is the metadata and the key that the error must name.
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("format", "tiff")], "format"),
            (&[("minzoom", "-1")], "minzoom"),
            (&[("maxzoom", "40")], "maxzoom"),
            (&[("minzoom", "3"), ("maxzoom", "1")], "minzoom"),
            (&[("bounds", "1,2,3")], "bounds"),
            (&[("center", "200,0,1")], "center"),
            (&[("json", "{not json")], "json"),
        ];
        for (index, (metadata, key)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("case{index}.mbtiles"));
            write_mbtiles(&path, metadata, &[(1, 0, 0, &png)]);
            let error = Archive::open(&path)
                .await
                .expect_err("invalid metadata must be rejected");
            let ArchiveError::InvalidMetadata { key: error_key, .. } = &error else {
                panic!("{metadata:?}: expected InvalidMetadata, got {error}");
            };
            assert_eq!(error_key, key, "{error}");
            assert!(
                error.to_string().contains(&format!("case{index}.mbtiles")),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn antimeridian_bounds_widened() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("pacific.mbtiles");
        let png = png_tile();
        write_mbtiles(&path, &[("bounds", "170,-20,-170,-10")], &[(0, 0, 0, &png)]);

        let archive = Archive::open(&path)
            .await
            .expect("open the MBTiles archive");
        let bounds = archive.metadata().bounds;
        assert_eq!((bounds.min_x, bounds.max_x), (-180.0, 180.0));
        assert_eq!((bounds.min_y, bounds.max_y), (-20.0, -10.0));
    }

    #[tokio::test]
    async fn concurrent_reads_bound_idle_pool() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("imagery.mbtiles");
        let png = png_tile();
        write_mbtiles(&path, &[], &[(0, 0, 0, &png)]);
        let archive = Arc::new(
            MbtilesArchive::open(&path)
                .await
                .expect("open the MBTiles archive"),
        );

        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..4 * MAX_IDLE_CONNECTIONS {
            let archive = Arc::clone(&archive);
            reads.spawn(async move { archive.get_tile(tile(0, 0, 0)).await });
        }
        while let Some(read) = reads.join_next().await {
            let data = read.expect("join a read").expect("read a tile");
            assert_eq!(data.as_deref(), Some(png.as_slice()));
        }

        let idle = archive
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert!(idle >= 1, "no idle connection after the reads");
        assert!(idle <= MAX_IDLE_CONNECTIONS, "{idle} idle connections");
    }

    #[tokio::test]
    async fn timed_out_query_interrupted() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("slow.mbtiles");
        let connection = Connection::open(&path).expect("create the MBTiles file");
        // A `tiles` view whose every read counts to ten billion, hours of work for SQLite.
        connection
            .execute_batch(
                "CREATE TABLE metadata (name TEXT, value TEXT);
                 INSERT INTO metadata VALUES ('format', 'png'), ('minzoom', '0'),
                                             ('maxzoom', '1');
                 CREATE VIEW tiles AS
                   WITH RECURSIVE counter(n) AS (
                     SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < 10000000000)
                   SELECT 0 AS zoom_level, 0 AS tile_column, 0 AS tile_row,
                          x'00' AS tile_data
                   FROM counter WHERE n = 10000000000;",
            )
            .expect("create the slow view");
        drop(connection);
        let archive = MbtilesArchive::open(&path).await.expect("open");

        let read =
            tokio::time::timeout(Duration::from_millis(200), archive.get_tile(tile(0, 0, 0)));
        assert!(read.await.is_err(), "the read finished within 200 ms");

        // The interrupted query ends and returns its connection to the pool.
        let started = Instant::now();
        let idle = || {
            archive
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
        };
        while idle() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the query still runs 5 s after its deadline"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // The interrupted connection, back in the pool, runs the next query.
        let one = archive.pool.with_connection(|connection| {
            connection.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
        });
        assert_eq!(one.expect("query the pooled connection"), 1_i64);
    }

    #[tokio::test]
    async fn replaced_file_keeps_old_tiles() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("imagery.mbtiles");
        write_mbtiles(&path, &[("format", "png")], &[(0, 0, 0, b"old tile")]);
        let archive = MbtilesArchive::open(&path).await.expect("open");

        let replacement = dir.path().join("replacement.mbtiles");
        write_mbtiles(
            &replacement,
            &[("format", "png")],
            &[(0, 0, 0, b"new tile")],
        );
        std::fs::rename(&replacement, &path).expect("rename over the archive");
        // More reads than idle connections, so that new connections are opened too.
        for _ in 0..2 * MAX_IDLE_CONNECTIONS {
            let data = archive.get_tile(tile(0, 0, 0)).await.expect("read");
            assert_eq!(data.as_deref(), Some(b"old tile".as_slice()));
        }
    }

    #[tokio::test]
    async fn file_written_in_place_rejected() {
        use std::os::unix::fs::FileExt as _;
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("imagery.mbtiles");
        write_mbtiles(&path, &[("format", "png")], &[(0, 0, 0, b"old tile")]);
        let archive = MbtilesArchive::open(&path).await.expect("open");
        assert!(
            archive
                .get_tile(tile(0, 0, 0))
                .await
                .expect("read")
                .is_some()
        );

        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open for writing");
        let length = file.metadata().expect("size").len();
        file.write_all_at(b"garbage", length - 7)
            .expect("overwrite the end");
        drop(file);
        let error = archive
            .get_tile(tile(0, 0, 0))
            .await
            .expect_err("the file changed");
        assert!(matches!(error, ArchiveError::Changed { .. }), "{error}");
        assert!(error.to_string().contains("restart Tessera"), "{error}");
    }

    #[tokio::test]
    async fn out_of_range_tile_rejected() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("imagery.mbtiles");
        let png = png_tile();
        write_mbtiles(&path, &[], &[(0, 0, 0, &png)]);

        let archive = Archive::open(&path)
            .await
            .expect("open the MBTiles archive");
        let error = archive
            .get_tile(tile(1, 2, 0))
            .await
            .expect_err("x = 2 at zoom 1");
        assert!(
            matches!(error, ArchiveError::TileOutOfRange { .. }),
            "{error}"
        );
    }

    #[test]
    fn uri_encoding() {
        let cases = [
            (
                "/srv/tiles/a b.mbtiles",
                "file:///srv/tiles/a%20b.mbtiles?mode=ro&immutable=1",
            ),
            (
                "tiles/x?y#z%.mbtiles",
                "file:tiles/x%3Fy%23z%25.mbtiles?mode=ro&immutable=1",
            ),
            (
                "//double/slash.mbtiles",
                "file:////double/slash.mbtiles?mode=ro&immutable=1",
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(
                sqlite_uri(Path::new(path)).as_deref(),
                Some(expected),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn special_characters_in_path() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("Yodok camp #15 (50%)?.mbtiles");
        let png = png_tile();
        write_mbtiles(&path, &[], &[(0, 0, 0, &png)]);

        let archive = Archive::open(&path)
            .await
            .expect("open the MBTiles archive");
        let data = archive.get_tile(tile(0, 0, 0)).await.expect("read a tile");
        assert_eq!(data.as_deref(), Some(png.as_slice()));
    }
}
