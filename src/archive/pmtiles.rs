//! `PMTiles` v3 archives, read through a memory map of the whole file.

use std::fmt;
use std::path::{Path, PathBuf};

use ::pmtiles::{AsyncPmTilesReader, Header, PmtError, TileType};
use bytes::Bytes;
use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::format::{Compression, TileFormat};
use crate::tile::{Bbox, TileCoord};

use super::bounded::BoundedBackend;
use super::metadata::parse_vector_layers;
use super::pinned::PinnedFile;
use super::{
    ArchiveError, ArchiveMetadata, WORLD_BOUNDS, check_regular_file, check_tile_in_range,
    is_valid_lon_lat_box, sniff_compression, tile_containing,
};

/// Maximum length of a metadata value quoted in an error message, in bytes.
const MAX_QUOTED_METADATA: usize = 200;

/// A `PMTiles` archive. The header and root directory are read once at open. Leaf directories
/// are read again for every tile because a directory cache would grow without bound.
///
/// The file is held open from start-up: a new file renamed over it is not served until
/// Tessera restarts, and the old one is served meanwhile. A file written in place is
/// detected, and its tiles fail with an error naming it rather than mixing old and new
/// bytes. Reads run on the async runtime's thread, which can stall it on a slow disk.
pub struct PmtilesArchive {
    path: PathBuf,
    metadata: ArchiveMetadata,
    /// Boxed because the reader, with its root directory, is large beside `MbtilesArchive`.
    reader: Box<AsyncPmTilesReader<BoundedBackend>>,
}

impl fmt::Debug for PmtilesArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PmtilesArchive")
            .field("path", &self.path)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl PmtilesArchive {
    /// Opens a `PMTiles` v3 file and reads its header and JSON metadata.
    pub async fn open(path: &Path) -> Result<Self, ArchiveError> {
        // The memory-map backend reports every I/O failure without its cause, so a missing
        // file is checked first.
        check_regular_file(path, tokio::fs::metadata(path).await)?;
        let file = PinnedFile::open(path).map_err(|source| ArchiveError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let backend = BoundedBackend::new(file);
        let reader = AsyncPmTilesReader::try_from_source(backend)
            .await
            .map_err(|source| pmtiles_error(path, source))?;
        let header = reader.get_header();
        if header.min_zoom > header.max_zoom {
            return Err(invalid_metadata(
                path,
                "header min_zoom",
                &header.min_zoom.to_string(),
                format!("it is above the header max_zoom {}", header.max_zoom),
            ));
        }

        let json = read_metadata_json(&reader, path).await?;
        let (format, compression) = resolve_tile_encoding(&reader, path).await?;
        let metadata = ArchiveMetadata {
            format,
            compression,
            minzoom: header.min_zoom,
            maxzoom: header.max_zoom,
            bounds: header_bounds(header, path),
            center: header_center(header),
            name: json_text(&json, "name"),
            description: json_text(&json, "description"),
            attribution: json_text(&json, "attribution"),
            vector_layers: json_vector_layers(&json, path)?,
        };
        debug!(
            path = %path.display(),
            format = %metadata.format,
            minzoom = metadata.minzoom,
            maxzoom = metadata.maxzoom,
            "opened PMTiles archive"
        );

        Ok(Self {
            path: path.to_path_buf(),
            metadata,
            reader: Box::new(reader),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> &ArchiveMetadata {
        &self.metadata
    }

    /// Reads the stored bytes of a tile, or `None` if the directory has no entry for it.
    pub async fn get_tile(&self, tile: TileCoord) -> Result<Option<Bytes>, ArchiveError> {
        check_tile_in_range(tile)?;
        let coord = ::pmtiles::TileCoord::new(tile.z, tile.x, tile.y)
            .map_err(|_| ArchiveError::TileOutOfRange { tile })?;
        self.reader
            .get_tile(coord)
            .await
            .map_err(|source| pmtiles_error(&self.path, source))
    }
}

fn pmtiles_error(path: &Path, source: PmtError) -> ArchiveError {
    ArchiveError::Pmtiles {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid_metadata(path: &Path, key: &str, value: &str, reason: String) -> ArchiveError {
    let mut end = value.len().min(MAX_QUOTED_METADATA);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    ArchiveError::InvalidMetadata {
        path: path.to_path_buf(),
        key: key.to_owned(),
        value: value[..end].to_owned(),
        reason,
    }
}

/// Reads the JSON metadata section, decompressed, as an object. An archive without one gets an
/// empty object.
async fn read_metadata_json(
    reader: &AsyncPmTilesReader<BoundedBackend>,
    path: &Path,
) -> Result<Map<String, Value>, ArchiveError> {
    let text = match reader.get_metadata().await {
        Ok(text) => text,
        // pmtiles 0.26 returns InvalidMetadata only for an empty metadata section.
        Err(PmtError::InvalidMetadata) => return Ok(Map::new()),
        Err(source) => return Err(pmtiles_error(path, source)),
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(invalid_metadata(
            path,
            "metadata",
            &text,
            "it must be a JSON object".to_owned(),
        )),
        Err(error) => Err(invalid_metadata(
            path,
            "metadata",
            &text,
            format!("it is not valid JSON ({error})"),
        )),
    }
}

fn json_text(json: &Map<String, Value>, key: &str) -> Option<String> {
    json.get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// Takes `vector_layers` from the metadata, or from a `json` string in it, which archives
/// converted from `MBTiles` may carry over.
fn json_vector_layers(
    json: &Map<String, Value>,
    path: &Path,
) -> Result<Option<Value>, ArchiveError> {
    match json.get("vector_layers") {
        Some(layers @ Value::Array(_)) => return Ok(Some(layers.clone())),
        Some(layers) => {
            return Err(invalid_metadata(
                path,
                "vector_layers",
                &layers.to_string(),
                "it must be an array".to_owned(),
            ));
        }
        None => {}
    }
    match json.get("json") {
        Some(Value::String(nested)) => parse_vector_layers(nested)
            .map_err(|reason| invalid_metadata(path, "json", nested, reason)),
        _ => Ok(None),
    }
}

/// Takes the tile format and compression from the header, and sniffs a sample tile for either
/// one that the header marks as unknown.
async fn resolve_tile_encoding(
    reader: &AsyncPmTilesReader<BoundedBackend>,
    path: &Path,
) -> Result<(TileFormat, Compression), ArchiveError> {
    let header = reader.get_header();
    let format = match header.tile_type {
        TileType::Mvt => Some(TileFormat::Mvt),
        TileType::Png => Some(TileFormat::Png),
        TileType::Jpeg => Some(TileFormat::Jpeg),
        TileType::Webp => Some(TileFormat::Webp),
        TileType::Unknown => None,
        TileType::Avif | TileType::Mlt => {
            return Err(ArchiveError::UnsupportedTileType {
                path: path.to_path_buf(),
                tile_type: format!("{:?}", header.tile_type),
            });
        }
    };
    let compression = match header.tile_compression {
        ::pmtiles::Compression::None => Some(Compression::None),
        ::pmtiles::Compression::Gzip => Some(Compression::Gzip),
        ::pmtiles::Compression::Brotli => Some(Compression::Brotli),
        ::pmtiles::Compression::Zstd => Some(Compression::Zstd),
        ::pmtiles::Compression::Unknown => None,
    };
    if let (Some(format), Some(compression)) = (format, compression) {
        return Ok((format, compression));
    }

    let sample = read_sample_tile(reader, path).await?;
    let format = match format {
        Some(format) => format,
        None => sample
            .as_deref()
            .and_then(TileFormat::sniff)
            .ok_or_else(|| ArchiveError::UnknownFormat {
                path: path.to_path_buf(),
            })?,
    };
    let compression = compression.unwrap_or_else(|| {
        sample
            .as_deref()
            .map_or(Compression::None, sniff_compression)
    });
    Ok((format, compression))
}

/// Reads the tile that contains the header's center, at the center zoom, the minimum zoom or
/// the maximum zoom, whichever exists first.
async fn read_sample_tile(
    reader: &AsyncPmTilesReader<BoundedBackend>,
    path: &Path,
) -> Result<Option<Bytes>, ArchiveError> {
    let header = reader.get_header();
    let center_zoom = header.center_zoom.clamp(header.min_zoom, header.max_zoom);
    for z in [center_zoom, header.min_zoom, header.max_zoom] {
        let tile = tile_containing(header.center_longitude, header.center_latitude, z);
        let Ok(coord) = ::pmtiles::TileCoord::new(tile.z, tile.x, tile.y) else {
            continue;
        };
        let data = reader
            .get_tile(coord)
            .await
            .map_err(|source| pmtiles_error(path, source))?;
        if data.as_ref().is_some_and(|data| !data.is_empty()) {
            return Ok(data);
        }
    }
    Ok(None)
}

/// Returns the header bounds, or [`WORLD_BOUNDS`] when they are not a valid extent.
fn header_bounds(header: &Header, path: &Path) -> Bbox {
    let bounds = Bbox {
        min_x: header.min_longitude,
        min_y: header.min_latitude,
        max_x: header.max_longitude,
        max_y: header.max_latitude,
    };
    if is_valid_lon_lat_box(&bounds) {
        bounds
    } else {
        warn!(
            path = %path.display(),
            ?bounds,
            "PMTiles header bounds are not a valid extent; using the whole world"
        );
        WORLD_BOUNDS
    }
}

fn header_center(header: &Header) -> Option<[f64; 3]> {
    let lon = header.center_longitude;
    let lat = header.center_latitude;
    let valid = (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat);
    valid.then_some([lon, lat, f64::from(header.center_zoom)])
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;
    use geozero::mvt::{Message as _, Tile};
    use tempfile::TempDir;

    use super::super::Archive;
    use super::*;

    /// A real archive from the public data set beside the repository (`../shared/data`, or
    /// `TESSERA_SHARED_DATA`): Derna building footprints or a Florence basemap extract, both
    /// MVT with gzip. Tests that need them print which file is missing and return early.
    fn sample_archive(name: &str) -> Option<PathBuf> {
        let root = std::env::var_os("TESSERA_SHARED_DATA").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
            PathBuf::from,
        );
        let path = root.join("pmtiles-samples").join(name);
        if path.is_file() {
            Some(path)
        } else {
            eprintln!(
                "skipped: sample PMTiles archive {} is missing, so this test checks nothing",
                path.display()
            );
            None
        }
    }

    fn assert_near(actual: f64, expected: f64, label: &str) {
        assert!(
            (actual - expected).abs() < 1e-3,
            "{label}: {actual} is not within 0.001 of {expected}"
        );
    }

    /// Gunzips and decodes an MVT tile.
    fn decode_mvt(data: &[u8]) -> Tile {
        let mut protobuf = Vec::new();
        GzDecoder::new(data)
            .read_to_end(&mut protobuf)
            .expect("gunzip the tile");
        Tile::decode(protobuf.as_slice()).expect("decode the MVT tile")
    }

    fn layer_feature_count(tile: &Tile, name: &str) -> usize {
        tile.layers
            .iter()
            .find(|layer| layer.name == name)
            .map_or(0, |layer| layer.features.len())
    }

    #[tokio::test]
    async fn derna_metadata() {
        let Some(path) = sample_archive("Derna_buildings.pmtiles") else {
            return;
        };
        let archive = Archive::open(&path).await.expect("open the Derna archive");
        let metadata = archive.metadata();

        assert_eq!(metadata.format, TileFormat::Mvt);
        assert_eq!(metadata.compression, Compression::Gzip);
        assert_eq!((metadata.minzoom, metadata.maxzoom), (0, 13));
        assert_near(metadata.bounds.min_x, 22.5739, "min longitude");
        assert_near(metadata.bounds.min_y, 32.7278, "min latitude");
        assert_near(metadata.bounds.max_x, 22.6907, "max longitude");
        assert_near(metadata.bounds.max_y, 32.7865, "max latitude");
        let center = metadata.center.expect("header center");
        assert_near(center[0], 22.6538, "center longitude");
        assert_near(center[1], 32.7503, "center latitude");
        assert_near(center[2], 13.0, "center zoom");

        let layers = metadata.vector_layers.as_ref().expect("vector_layers");
        assert_eq!(layers[0]["id"], "zcta");
    }

    #[tokio::test]
    async fn derna_tile_has_buildings() {
        let Some(path) = sample_archive("Derna_buildings.pmtiles") else {
            return;
        };
        let archive = Archive::open(&path).await.expect("open the Derna archive");

        let coord = tile_containing(22.6538, 32.7503, 13);
        let data = archive
            .get_tile(coord)
            .await
            .expect("read a tile")
            .expect("central Derna has a tile at zoom 13");
        let tile = decode_mvt(&data);
        assert!(layer_feature_count(&tile, "zcta") > 0, "{coord:?}");

        // The Gulf of Sidra, off the coast, has no buildings and no tile.
        let sea = tile_containing(19.0, 32.0, 13);
        assert_eq!(archive.get_tile(sea).await.expect("read a tile"), None);
        // The archive stops at zoom 13.
        let deeper = tile_containing(22.6538, 32.7503, 14);
        assert_eq!(archive.get_tile(deeper).await.expect("read a tile"), None);
    }

    #[tokio::test]
    async fn florence_metadata() {
        let Some(path) = sample_archive("protomaps_firenze.pmtiles") else {
            return;
        };
        let archive = Archive::open(&path)
            .await
            .expect("open the Florence archive");
        let metadata = archive.metadata();

        assert_eq!(metadata.format, TileFormat::Mvt);
        assert_eq!(metadata.compression, Compression::Gzip);
        assert_eq!((metadata.minzoom, metadata.maxzoom), (0, 14));
        assert_near(metadata.bounds.min_x, 11.1540, "min longitude");
        assert_near(metadata.bounds.min_y, 43.7270, "min latitude");
        assert_near(metadata.bounds.max_x, 11.3289, "max longitude");
        assert_near(metadata.bounds.max_y, 43.8325, "max latitude");
        let center = metadata.center.expect("header center");
        assert_near(center[2], 0.0, "center zoom");
        assert_eq!(
            metadata.name.as_deref(),
            Some("protomaps 2023-01-18T07:49:39Z")
        );
        let attribution = metadata.attribution.as_deref().expect("attribution");
        assert!(attribution.contains("OpenStreetMap"), "{attribution}");

        let layers = metadata.vector_layers.as_ref().expect("vector_layers");
        let ids: Vec<&str> = layers
            .as_array()
            .expect("vector_layers is an array")
            .iter()
            .filter_map(|layer| layer["id"].as_str())
            .collect();
        assert_eq!(ids.len(), 13, "{ids:?}");
        assert!(ids.contains(&"buildings"), "{ids:?}");
    }

    #[tokio::test]
    async fn florence_tile_has_buildings() {
        let Some(path) = sample_archive("protomaps_firenze.pmtiles") else {
            return;
        };
        let archive = Archive::open(&path)
            .await
            .expect("open the Florence archive");

        // The Duomo.
        let coord = tile_containing(11.2560, 43.7731, 14);
        let data = archive
            .get_tile(coord)
            .await
            .expect("read a tile")
            .expect("central Florence has a tile at zoom 14");
        let tile = decode_mvt(&data);
        assert!(layer_feature_count(&tile, "buildings") > 0, "{coord:?}");
        assert!(layer_feature_count(&tile, "roads") > 0, "{coord:?}");
    }

    /// Appends `value` as a protobuf varint, the integer encoding of `PMTiles` directories.
    fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            bytes.push((value & 0x7F) as u8 | 0x80);
            value >>= 7;
        }
        bytes.push(value as u8);
    }

    /// Writes a `PMTiles` v3 file with uncompressed directories and metadata, and one tile at
    /// 0/0/0. `tile_type` and `tile_compression` are the header's codes.
    fn write_pmtiles(
        path: &Path,
        tile_type: u8,
        tile_compression: u8,
        metadata: &[u8],
        tile: &[u8],
    ) {
        const HEADER_SIZE: u64 = 127;
        let mut directory = Vec::new();
        // One entry: tile id 0, run length 1, the tile's length, offset 0 stored as 0 + 1.
        for value in [1, 0, 1, tile.len() as u64, 1] {
            push_varint(&mut directory, value);
        }
        let root_offset = HEADER_SIZE;
        let metadata_offset = root_offset + directory.len() as u64;
        let data_offset = metadata_offset + metadata.len() as u64;

        let mut file = b"PMTiles\x03".to_vec();
        for value in [
            root_offset,
            directory.len() as u64,
            metadata_offset,
            metadata.len() as u64,
            data_offset,
            0,
            data_offset,
            tile.len() as u64,
            1,
            1,
            1,
        ] {
            file.extend_from_slice(&value.to_le_bytes());
        }
        // Clustered, uncompressed directories, then tile compression, type and zooms 0 to 0.
        file.extend_from_slice(&[1, 1, tile_compression, tile_type, 0, 0]);
        for degrees in [-180.0, -85.0, 180.0, 85.0] {
            file.extend_from_slice(&((degrees * 1e7_f64) as i32).to_le_bytes());
        }
        file.push(0);
        file.extend_from_slice(&[0; 8]);
        assert_eq!(file.len() as u64, HEADER_SIZE);

        file.extend_from_slice(&directory);
        file.extend_from_slice(metadata);
        file.extend_from_slice(tile);
        std::fs::write(path, file).expect("write the PMTiles file");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("compress");
        encoder.finish().expect("finish gzip")
    }

    /// Writes a `PMTiles` v3 file with gzip-compressed directories whose root directory sends
    /// every tile to one leaf directory, `leaf` before compression.
    fn write_pmtiles_with_leaf(path: &Path, leaf: &[u8]) {
        const HEADER_SIZE: u64 = 127;
        let leaf = gzip(leaf);
        let mut root = Vec::new();
        // One leaf entry: tile id 0, run length 0, the leaf's length, offset 0 stored as 1.
        for value in [1, 0, 0, leaf.len() as u64, 1] {
            push_varint(&mut root, value);
        }
        let root = gzip(&root);
        let metadata = gzip(b"{}");
        let root_offset = HEADER_SIZE;
        let metadata_offset = root_offset + root.len() as u64;
        let leaf_offset = metadata_offset + metadata.len() as u64;
        let data_offset = leaf_offset + leaf.len() as u64;

        let mut file = b"PMTiles\x03".to_vec();
        for value in [
            root_offset,
            root.len() as u64,
            metadata_offset,
            metadata.len() as u64,
            leaf_offset,
            leaf.len() as u64,
            data_offset,
            0,
            1,
            1,
            1,
        ] {
            file.extend_from_slice(&value.to_le_bytes());
        }
        // Clustered, gzip directories, uncompressed PNG tiles, zooms 0 to 0.
        file.extend_from_slice(&[1, 2, COMPRESSION_NONE, TILE_TYPE_PNG, 0, 0]);
        for degrees in [-180.0, -85.0, 180.0, 85.0] {
            file.extend_from_slice(&((degrees * 1e7_f64) as i32).to_le_bytes());
        }
        file.push(0);
        file.extend_from_slice(&[0; 8]);
        assert_eq!(file.len() as u64, HEADER_SIZE);

        file.extend_from_slice(&root);
        file.extend_from_slice(&metadata);
        file.extend_from_slice(&leaf);
        std::fs::write(path, file).expect("write the PMTiles file");
    }

    #[tokio::test]
    async fn inflating_leaf_directory_rejected() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("bomb.pmtiles");
        // A directory of one entry followed by 64 MiB of zeros, about 64 KiB compressed.
        let mut leaf = Vec::new();
        for value in [1, 0, 1, 1, 1] {
            push_varint(&mut leaf, value);
        }
        leaf.resize(64 << 20, 0);
        write_pmtiles_with_leaf(&path, &leaf);
        assert!(std::fs::metadata(&path).expect("size").len() < 1 << 20);

        let archive = Archive::open(&path)
            .await
            .expect("the root directory is valid");
        let root = TileCoord { z: 0, x: 0, y: 0 };
        let error = archive
            .get_tile(root)
            .await
            .expect_err("the leaf is too large");
        let message = error.to_string();
        assert!(message.contains("leaf directory"), "{message}");
        assert!(message.contains("more than 8388608 bytes"), "{message}");
    }

    #[tokio::test]
    async fn leaf_directory_entry_count_bounded() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("entries.pmtiles");
        let mut leaf = Vec::new();
        push_varint(&mut leaf, 2_000_000);
        leaf.resize(4 << 20, 1);
        write_pmtiles_with_leaf(&path, &leaf);

        let archive = Archive::open(&path)
            .await
            .expect("the root directory is valid");
        let root = TileCoord { z: 0, x: 0, y: 0 };
        let error = archive.get_tile(root).await.expect_err("too many entries");
        let message = error.to_string();
        assert!(message.contains("2000000 entries"), "{message}");
    }

    #[tokio::test]
    async fn small_leaf_directory_served() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("leaf.pmtiles");
        // An empty leaf directory: the tile is absent, and reading it is no error.
        let mut leaf = Vec::new();
        push_varint(&mut leaf, 0);
        write_pmtiles_with_leaf(&path, &leaf);

        let archive = Archive::open(&path).await.expect("open");
        let root = TileCoord { z: 0, x: 0, y: 0 };
        assert_eq!(archive.get_tile(root).await.expect("read the leaf"), None);
    }

    const TILE_TYPE_UNKNOWN: u8 = 0;
    const TILE_TYPE_PNG: u8 = 2;
    const TILE_TYPE_AVIF: u8 = 5;
    const COMPRESSION_UNKNOWN: u8 = 0;
    const COMPRESSION_NONE: u8 = 1;

    #[tokio::test]
    async fn raster_archive_from_header() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("imagery.pmtiles");
        let png = b"\x89PNG\r\n\x1a\n not a whole image";
        write_pmtiles(
            &path,
            TILE_TYPE_PNG,
            COMPRESSION_NONE,
            br#"{"name":"Imagery","attribution":"Test"}"#,
            png,
        );

        let archive = Archive::open(&path)
            .await
            .expect("open the PMTiles archive");
        let metadata = archive.metadata();
        assert_eq!(metadata.format, TileFormat::Png);
        assert_eq!(metadata.compression, Compression::None);
        assert_eq!(metadata.name.as_deref(), Some("Imagery"));
        assert_eq!(metadata.vector_layers, None);
        assert_near(metadata.bounds.max_y, 85.0, "max latitude");

        let root = TileCoord { z: 0, x: 0, y: 0 };
        let data = archive.get_tile(root).await.expect("read a tile");
        assert_eq!(data.as_deref(), Some(png.as_slice()));
        let absent = TileCoord { z: 1, x: 1, y: 0 };
        assert_eq!(archive.get_tile(absent).await.expect("read a tile"), None);
    }

    #[tokio::test]
    async fn unknown_tile_type_sniffed() {
        let dir = TempDir::new().expect("create a temporary directory");
        let path = dir.path().join("unknown.pmtiles");
        let gzipped = [0x1F, 0x8B, 0x08, 0x00, 0x00];
        write_pmtiles(&path, TILE_TYPE_UNKNOWN, COMPRESSION_UNKNOWN, b"", &gzipped);

        let archive = Archive::open(&path)
            .await
            .expect("open the PMTiles archive");
        let metadata = archive.metadata();
        assert_eq!(metadata.format, TileFormat::Mvt);
        assert_eq!(metadata.compression, Compression::Gzip);
        assert_eq!(metadata.name, None);
    }

    #[tokio::test]
    async fn invalid_archives_rejected() {
        let dir = TempDir::new().expect("create a temporary directory");

        let missing = dir.path().join("missing.pmtiles");
        let error = Archive::open(&missing).await.expect_err("a missing file");
        assert!(matches!(error, ArchiveError::Open { .. }), "{error}");
        assert!(error.to_string().contains("missing.pmtiles"), "{error}");

        let text = dir.path().join("text.pmtiles");
        std::fs::write(&text, "not a PMTiles archive").expect("write a text file");
        let error = Archive::open(&text).await.expect_err("a text file");
        assert!(matches!(error, ArchiveError::Pmtiles { .. }), "{error}");
        assert!(error.to_string().contains("text.pmtiles"), "{error}");

        let avif = dir.path().join("avif.pmtiles");
        write_pmtiles(&avif, TILE_TYPE_AVIF, COMPRESSION_NONE, b"{}", b"avif");
        let error = Archive::open(&avif).await.expect_err("AVIF tiles");
        assert!(
            matches!(error, ArchiveError::UnsupportedTileType { .. }),
            "{error}"
        );

        let bad_json = dir.path().join("bad_json.pmtiles");
        write_pmtiles(
            &bad_json,
            TILE_TYPE_PNG,
            COMPRESSION_NONE,
            b"{\"name\":",
            b"png",
        );
        let error = Archive::open(&bad_json)
            .await
            .expect_err("invalid JSON metadata");
        assert!(
            matches!(error, ArchiveError::InvalidMetadata { .. }),
            "{error}"
        );
    }
}
