//! Tiles of MBTiles and PMTiles archives for static maps.
//!
//! Archives are read through async APIs, while a static map is built on a blocking thread
//! (`worker::Workers` for the route and the atlas, the main thread for `tessera render`). The
//! map's [`MapContext`](super::MapContext) carries a handle of the runtime, and the tiles of a
//! layer are read in one `block_on` from that thread.

use std::io::Read as _;
use std::time::Instant;

use bytes::Bytes;
use tokio::runtime::Handle;

use super::MapError;
use super::imagery::tile_range;
use super::mvt::{TileFeature, decode_tile};
use crate::archive::Archive;
use crate::format::{Compression, TileFormat};
use crate::source::Source;
use crate::tile::{Bbox, TileCoord};

/// Largest inflated stored tile, in bytes, as for the tiles route.
const MAX_INFLATED_TILE_BYTES: u64 = 32 << 20;

/// Most tiles one vector archive may read for a map. A frame that needs more at its zoom
/// reads a coarser zoom instead.
const MAX_VECTOR_TILES: u64 = 256;

/// Reads and decodes the vector tiles of `archive` that cover `bounds` (Web Mercator metres)
/// at the tile zoom that MapLibre shows at `frame_zoom`, clamped to the archive's zoom range.
///
/// Each tile goes through the access rules of the tile route for the current request
/// (private attributes removed, sensitive points snapped or left out) before it is decoded.
/// Features cut at tile edges come back once per tile, with the tile's buffer.
pub(super) fn vector_features(
    runtime: &Handle,
    source: &Source,
    archive: &Archive,
    bounds: &Bbox,
    frame_zoom: f64,
    deadline: Instant,
) -> Result<Vec<TileFeature>, MapError> {
    let metadata = archive.metadata();
    if metadata.format != TileFormat::Mvt {
        tracing::debug!(source = %source.id, format = ?metadata.format, "vector layer of a raster archive: not drawn");
        return Ok(Vec::new());
    }

    let (minzoom, maxzoom) = (metadata.minzoom, metadata.maxzoom);
    // MapLibre shows 512-pixel vector tiles of zoom floor(z) at map zoom z, and the frame's
    // zoom is a MapLibre zoom.
    let mut z = frame_zoom
        .floor()
        .clamp(f64::from(minzoom), f64::from(maxzoom)) as u8;
    let range = loop {
        let range = tile_range(bounds, z);
        if range.count() <= MAX_VECTOR_TILES || z <= minzoom {
            break range;
        }
        z -= 1;
    };
    if range.count() > MAX_VECTOR_TILES {
        tracing::warn!(source = %source.id, tiles = range.count(), max = MAX_VECTOR_TILES, "vector archive needs too many tiles at its lowest zoom: not drawn");
        return Ok(Vec::new());
    }

    let tiles: Vec<TileCoord> = range
        .tiles(z)
        .filter(|&tile| source.touches(tile))
        .collect();
    let stored = read_tiles(runtime, archive, &tiles, deadline)?;
    let failed = |tile: TileCoord, message: String| MapError::Archive {
        path: archive.path().to_path_buf(),
        tile,
        message,
    };

    let mut features = Vec::new();
    // The access rules read the request's grant, which is set on this thread only, so the
    // tiles are filtered and decoded here rather than on other rayon threads.
    for (&tile, bytes) in tiles.iter().zip(stored) {
        if Instant::now() >= deadline {
            return Err(MapError::TimedOut { seconds: 0.0 });
        }
        let Some(bytes) = bytes else {
            continue;
        };
        let plain =
            inflate(&bytes, metadata.compression).map_err(|message| failed(tile, message))?;
        let restricted = crate::access::restrict_mvt(source, tile, plain)
            .map_err(|error| failed(tile, error.to_string()))?;
        let Some(plain) = restricted else {
            continue;
        };
        features
            .extend(decode_tile(&plain, tile).map_err(|error| failed(tile, error.to_string()))?);
    }
    Ok(features)
}

/// Reads the stored bytes of `tiles` from `archive`, in the order given, still compressed.
///
/// Blocks the current thread on `runtime`. A thread that runs inside a runtime cannot block
/// on one, so there it returns [`MapError::OnRuntimeThread`] instead of panicking. Past
/// `deadline` it returns `MapError::TimedOut`.
pub(super) fn read_tiles(
    runtime: &Handle,
    archive: &Archive,
    tiles: &[TileCoord],
    deadline: Instant,
) -> Result<Vec<Option<Bytes>>, MapError> {
    if Handle::try_current().is_ok() {
        return Err(MapError::OnRuntimeThread {
            path: archive.path().to_path_buf(),
        });
    }
    if Instant::now() >= deadline {
        return Err(MapError::TimedOut { seconds: 0.0 });
    }
    let read_all = async {
        let mut stored = Vec::with_capacity(tiles.len());
        for &tile in tiles {
            let bytes = archive
                .get_tile(tile)
                .await
                .map_err(|error| MapError::Archive {
                    path: archive.path().to_path_buf(),
                    tile,
                    message: error.to_string(),
                })?;
            stored.push(bytes);
        }
        Ok(stored)
    };
    runtime.block_on(async {
        tokio::time::timeout_at(deadline.into(), read_all)
            .await
            .unwrap_or(Err(MapError::TimedOut { seconds: 0.0 }))
    })
}

/// Inflates a stored tile, up to [`MAX_INFLATED_TILE_BYTES`].
pub(super) fn inflate(bytes: &[u8], compression: Compression) -> Result<Vec<u8>, String> {
    match compression {
        Compression::None => Ok(bytes.to_vec()),
        Compression::Gzip => {
            let mut out = Vec::with_capacity(bytes.len() * 3);
            flate2::read::GzDecoder::new(bytes)
                .take(MAX_INFLATED_TILE_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|error| format!("inflating a stored tile failed: {error}"))?;
            if out.len() as u64 > MAX_INFLATED_TILE_BYTES {
                return Err(format!(
                    "a stored tile inflates to more than {MAX_INFLATED_TILE_BYTES} bytes"
                ));
            }
            Ok(out)
        }
        other => Err(format!(
            "stored tiles with {} compression cannot be drawn: store the archive with gzip or none",
            other.content_encoding().unwrap_or("unknown")
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use super::*;

    /// Writes an MBTiles of PNG tiles with one tile, 1/0/0 (TMS row 1), and opens it.
    fn one_tile_archive(folder: &std::path::Path, runtime: &tokio::runtime::Runtime) -> Archive {
        let path = folder.join("one.mbtiles");
        let connection = rusqlite::Connection::open(&path).expect("create the MBTiles file");
        connection
            .execute_batch(
                "CREATE TABLE metadata (name TEXT, value TEXT);
                 CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER,
                                     tile_row INTEGER, tile_data BLOB);
                 INSERT INTO metadata VALUES ('format', 'png'), ('minzoom', '0'),
                                             ('maxzoom', '1');
                 INSERT INTO tiles VALUES (1, 0, 1, x'89504E470D0A1A0A');",
            )
            .expect("write the MBTiles tables");
        drop(connection);
        runtime
            .block_on(Archive::open(&path))
            .expect("open the MBTiles")
    }

    #[test]
    fn read_tiles_by_thread_and_deadline() {
        let folder = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("build a runtime");
        let archive = one_tile_archive(folder.path(), &runtime);
        let present = TileCoord { z: 1, x: 0, y: 0 };
        let absent = TileCoord { z: 1, x: 1, y: 1 };
        let later = Instant::now() + Duration::from_secs(30);

        let stored = read_tiles(runtime.handle(), &archive, &[present, absent], later)
            .expect("a read from a plain thread");
        assert_eq!(stored.len(), 2);
        assert!(stored[0].is_some(), "the stored tile is missing");
        assert!(stored[1].is_none(), "an absent tile has bytes");

        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("an instant");
        let late = read_tiles(runtime.handle(), &archive, &[present], past);
        assert!(matches!(late, Err(MapError::TimedOut { .. })), "{late:?}");

        let _inside = runtime.enter();
        let on_runtime = read_tiles(runtime.handle(), &archive, &[present], later);
        assert!(
            matches!(on_runtime, Err(MapError::OnRuntimeThread { .. })),
            "{on_runtime:?}"
        );
    }

    /// Stored bytes, their compression, and the inflated bytes or `None` for an error.
    type Case<'a> = (&'a [u8], Compression, Option<&'a [u8]>);

    #[test]
    fn inflate_by_compression() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"tile bytes").expect("writing to a Vec");
        let gzipped = encoder.finish().expect("finishing a gzip stream in a Vec");
        let cases: [Case<'_>; 4] = [
            (b"tile bytes", Compression::None, Some(b"tile bytes")),
            (&gzipped, Compression::Gzip, Some(b"tile bytes")),
            (b"not gzip", Compression::Gzip, None),
            (b"anything", Compression::Zstd, None),
        ];
        for (bytes, compression, expected) in cases {
            let inflated = inflate(bytes, compression).ok();
            assert_eq!(inflated.as_deref(), expected, "{compression:?}");
        }
    }
}
