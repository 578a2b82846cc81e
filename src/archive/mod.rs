//! `MBTiles` and `PMTiles` archives, served as they are: tiles leave an archive with the bytes and
//! the compression they were stored with.

mod bounded;
mod error;
mod mbtiles;
mod metadata;
mod pinned;
mod pmtiles;

use std::path::Path;

use bytes::Bytes;

use crate::format::{Compression, TileFormat};
use crate::tile::{Bbox, TileCoord};

pub use self::error::ArchiveError;
pub use self::mbtiles::MbtilesArchive;
pub use self::pmtiles::PmtilesArchive;

/// The deepest zoom level either archive format can address. `PMTiles` tile ids end at zoom 31.
pub const MAX_ARCHIVE_ZOOM: u8 = 31;

/// The latitude limit of Web Mercator, in degrees.
const WEB_MERCATOR_MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// The whole Web Mercator world in degrees: the `TileJSON` default for absent bounds.
pub const WORLD_BOUNDS: Bbox = Bbox {
    min_x: -180.0,
    min_y: -WEB_MERCATOR_MAX_LATITUDE,
    max_x: 180.0,
    max_y: WEB_MERCATOR_MAX_LATITUDE,
};

/// Metadata of a tile archive, read and validated once when the archive is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveMetadata {
    /// Tile encoding, from the metadata `format` (`MBTiles`) or the header (`PMTiles`), else sniffed
    /// from a tile.
    pub format: TileFormat,
    /// Compression of the stored tiles, which `get_tile` returns still compressed.
    pub compression: Compression,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// Extent in degrees of longitude (x) and latitude (y), [`WORLD_BOUNDS`] when absent.
    pub bounds: Bbox,
    /// Longitude, latitude and zoom of the default view.
    pub center: Option<[f64; 3]>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub attribution: Option<String>,
    /// The `TileJSON` `vector_layers` array: from the `json` metadata row of an `MBTiles` archive,
    /// or from the JSON metadata of a `PMTiles` archive.
    pub vector_layers: Option<serde_json::Value>,
}

/// An open tile archive.
#[derive(Debug)]
pub enum Archive {
    Mbtiles(MbtilesArchive),
    Pmtiles(PmtilesArchive),
}

impl Archive {
    /// Opens an archive by its extension (`.mbtiles` or `.pmtiles`, in any case) and reads and
    /// validates its metadata.
    pub async fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("mbtiles") => Ok(Archive::Mbtiles(MbtilesArchive::open(path).await?)),
            Some("pmtiles") => Ok(Archive::Pmtiles(PmtilesArchive::open(path).await?)),
            _ => Err(ArchiveError::UnsupportedExtension {
                path: path.to_path_buf(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Archive::Mbtiles(archive) => archive.path(),
            Archive::Pmtiles(archive) => archive.path(),
        }
    }

    pub fn metadata(&self) -> &ArchiveMetadata {
        match self {
            Archive::Mbtiles(archive) => archive.metadata(),
            Archive::Pmtiles(archive) => archive.metadata(),
        }
    }

    /// Reads the stored bytes of a tile exactly as in the archive, still compressed with
    /// `metadata().compression`. Returns `None` if the archive has no such tile.
    pub async fn get_tile(&self, tile: TileCoord) -> Result<Option<Bytes>, ArchiveError> {
        match self {
            Archive::Mbtiles(archive) => archive.get_tile(tile).await,
            Archive::Pmtiles(archive) => archive.get_tile(tile).await,
        }
    }
}

/// Rejects a tile whose zoom is beyond [`MAX_ARCHIVE_ZOOM`] or whose x or y is outside its zoom.
fn check_tile_in_range(tile: TileCoord) -> Result<(), ArchiveError> {
    let in_range = tile.z <= MAX_ARCHIVE_ZOOM
        && u64::from(tile.x) < 1_u64 << tile.z
        && u64::from(tile.y) < 1_u64 << tile.z;
    if in_range {
        Ok(())
    } else {
        Err(ArchiveError::TileOutOfRange { tile })
    }
}

/// Rejects a missing path and a directory, given the result of reading the path's file
/// metadata, before a reader reports either as a generic failure.
fn check_regular_file(
    path: &Path,
    file_metadata: std::io::Result<std::fs::Metadata>,
) -> Result<(), ArchiveError> {
    let file_metadata = file_metadata.map_err(|source| ArchiveError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if file_metadata.is_file() {
        Ok(())
    } else {
        Err(ArchiveError::Open {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is not a regular file",
            ),
        })
    }
}

/// Detects gzip and zstd from their magic bytes. Anything else counts as uncompressed, because
/// brotli streams have no magic bytes.
fn sniff_compression(bytes: &[u8]) -> Compression {
    if bytes.starts_with(&[0x1F, 0x8B]) {
        Compression::Gzip
    } else if bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Returns whether a box is a valid extent in degrees with its minimum below its maximum.
fn is_valid_lon_lat_box(bounds: &Bbox) -> bool {
    let values = [bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y];
    values.iter().all(|value| value.is_finite())
        && (-180.0..=180.0).contains(&bounds.min_x)
        && (-180.0..=180.0).contains(&bounds.max_x)
        && (-90.0..=90.0).contains(&bounds.min_y)
        && (-90.0..=90.0).contains(&bounds.max_y)
        && bounds.min_x < bounds.max_x
        && bounds.min_y < bounds.max_y
}

/// Returns the Web Mercator tile that contains a point in degrees, clamping the latitude to
/// the Web Mercator limit.
fn tile_containing(lon: f64, lat: f64, z: u8) -> TileCoord {
    let tiles_per_side = f64::from(1_u32 << z.min(MAX_ARCHIVE_ZOOM));
    let last = (1_u64 << z.min(MAX_ARCHIVE_ZOOM)) - 1;
    let lat_radians = lat
        .clamp(-WEB_MERCATOR_MAX_LATITUDE, WEB_MERCATOR_MAX_LATITUDE)
        .to_radians();
    let x = (lon + 180.0) / 360.0 * tiles_per_side;
    let y = (1.0 - lat_radians.tan().asinh() / std::f64::consts::PI) / 2.0 * tiles_per_side;
    TileCoord {
        z,
        x: (x.floor().max(0.0) as u64).min(last) as u32,
        y: (y.floor().max(0.0) as u64).min(last) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(z: u8, x: u32, y: u32) -> TileCoord {
        TileCoord { z, x, y }
    }

    #[test]
    fn tile_range_check() {
        let cases = [
            (tile(0, 0, 0), true),
            (tile(0, 1, 0), false),
            (tile(0, 0, 1), false),
            (tile(3, 7, 7), true),
            (tile(3, 8, 0), false),
            (tile(31, u32::MAX >> 1, 0), true),
            (tile(32, 0, 0), false),
            (tile(255, 0, 0), false),
        ];
        for (tile, expected) in cases {
            assert_eq!(check_tile_in_range(tile).is_ok(), expected, "{tile:?}");
        }
    }

    #[test]
    fn compression_sniffing() {
        let cases: [(&[u8], Compression); 4] = [
            (&[0x1F, 0x8B, 0x08, 0x00], Compression::Gzip),
            (&[0x28, 0xB5, 0x2F, 0xFD, 0x00], Compression::Zstd),
            (&[0x1A, 0x02], Compression::None),
            (&[], Compression::None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sniff_compression(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn lon_lat_box_validation() {
        let bbox = |min_x, min_y, max_x, max_y| Bbox {
            min_x,
            min_y,
            max_x,
            max_y,
        };
        let cases = [
            (WORLD_BOUNDS, true),
            (bbox(22.57, 32.72, 22.69, 32.78), true),
            (bbox(-180.0, -90.0, 180.0, 90.0), true),
            (bbox(170.0, -10.0, -170.0, 10.0), false),
            (bbox(0.0, 10.0, 1.0, 5.0), false),
            (bbox(0.0, 0.0, 0.0, 0.0), false),
            (bbox(-181.0, 0.0, 1.0, 1.0), false),
            (bbox(0.0, 0.0, 1.0, 91.0), false),
            (bbox(f64::NAN, 0.0, 1.0, 1.0), false),
        ];
        for (bounds, expected) in cases {
            assert_eq!(is_valid_lon_lat_box(&bounds), expected, "{bounds:?}");
        }
    }

    #[test]
    fn tile_containing_points() {
        let cases = [
            ((0.0, 0.0, 0), tile(0, 0, 0)),
            ((0.0, 0.0, 1), tile(1, 1, 1)),
            ((-180.0, 85.06, 2), tile(2, 0, 0)),
            ((180.0, -90.0, 2), tile(2, 3, 3)),
            // Central Florence.
            ((11.2415, 43.7798, 10), tile(10, 543, 373)),
        ];
        for ((lon, lat, z), expected) in cases {
            assert_eq!(
                tile_containing(lon, lat, z),
                expected,
                "{lon}, {lat} at z{z}"
            );
        }
    }
}
