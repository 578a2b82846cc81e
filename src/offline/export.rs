//! `tessera export`: writes the tiles of an area into a PMTiles v3 or MBTiles archive.
//!
//! PMTiles are written by the `pmtiles` crate's writer (directories, leaf directories and
//! header), with tiles added in tile-id order so that the archive is clustered. MBTiles
//! follow the MBTiles 1.3 specification: a `metadata` table and a `tiles` table with TMS
//! rows, and vector tiles gzip-compressed. The archive is written under a temporary name and
//! renamed when complete, so an interrupted export leaves no partial archive at the output.

use std::io::{BufWriter, Read as _};
use std::path::{Path, PathBuf};

use pmtiles::PmTilesStreamWriter;
use serde_json::{Value, json};

use super::progress::progress_bar;
use super::{Job, OfflineError};
use crate::format::{Compression, TileFormat};
use crate::server::AppState;
use crate::tile::{Bbox, TileCoord};

/// Tiles rendered at a time before they are written.
const CHUNK_TILES: usize = 64;

/// The options of `tessera export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Files and folders to serve instead of ./geodata and ./tiles, as for `tessera serve`.
    pub paths: Vec<PathBuf>,
    /// Configuration file (TOML) naming sources and options.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Id of the source to export.
    #[arg(long)]
    pub source: String,
    /// Area to export in degrees, as minlon,minlat,maxlon,maxlat; default: the source's bounds.
    #[arg(long)]
    pub bbox: Option<String>,
    /// Zoom or zoom range to export, such as 12 or 10-14; clamped to the source's zooms.
    #[arg(long)]
    pub zooms: String,
    /// Tile format (png, jpg, webp or pbf); default: the source's own format.
    #[arg(long)]
    pub format: Option<String>,
    /// Archive to write: a file ending in .pmtiles or .mbtiles. It must not exist.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Cache folder to read tiles from and store them in, instead of `[cache] path`.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Rendering threads; 0 is one per core.
    #[arg(long)]
    pub workers: Option<usize>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub output: PathBuf,
    /// Tiles written to the archive.
    pub tiles: u64,
    /// Tiles without data, which archives do not store.
    pub empty: u64,
    /// Size of the archive in bytes.
    pub bytes: u64,
}

impl std::fmt::Display for ExportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} tiles ({} empty tiles left out), {} bytes",
            self.output.display(),
            self.tiles,
            self.empty,
            self.bytes
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchiveKind {
    Pmtiles,
    Mbtiles,
}

/// Runs `tessera export`.
pub async fn export(args: ExportArgs) -> Result<ExportReport, OfflineError> {
    let kind = match args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pmtiles") => ArchiveKind::Pmtiles,
        Some("mbtiles") => ArchiveKind::Mbtiles,
        _ => return Err(OfflineError::OutputExtension(args.output.clone())),
    };
    if args.output.exists() {
        return Err(OfflineError::OutputExists {
            path: args.output.clone(),
        });
    }
    let mut config = super::load_config(&args.paths, args.config.as_deref())?;
    if let Some(folder) = &args.cache {
        config.cache.path = Some(folder.clone());
    }
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    let bbox = args.bbox.as_deref().map(super::parse_bbox).transpose()?;
    let zooms = super::parse_zooms(&args.zooms)?;
    let format = args
        .format
        .as_deref()
        .map(super::parse_format)
        .transpose()?;

    let state = AppState::load(config).await?;
    let jobs = super::plan(
        &state,
        std::slice::from_ref(&args.source),
        bbox,
        &zooms,
        format,
    )?;
    let job = jobs.first().expect("plan returns one job per source");
    let area = match bbox {
        Some(bbox) => bbox
            .intersection(&job.source.bounds_lonlat())
            .unwrap_or(bbox),
        None => job.source.bounds_lonlat(),
    };
    let temporary = temporary_path(&args.output);
    let written = write_archive(&state, job, kind, area, &temporary).await;
    state
        .workers
        .wait_idle(std::time::Duration::from_secs_f64(
            state.config.tile_timeout,
        ))
        .await;
    let (tiles, empty) = match written {
        Ok(counts) => counts,
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
    };
    std::fs::rename(&temporary, &args.output).map_err(|source| OfflineError::Io {
        path: args.output.clone(),
        source,
    })?;
    let bytes = std::fs::metadata(&args.output).map_or(0, |m| m.len());
    let report = ExportReport {
        output: args.output.clone(),
        tiles,
        empty,
        bytes,
    };
    tracing::info!(%report, "export finished");
    Ok(report)
}

fn temporary_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.partial", std::process::id()));
    output.with_file_name(name)
}

/// Renders the tiles of `job` and writes them to `path`; returns the tiles written and the
/// empty tiles left out.
async fn write_archive(
    state: &AppState,
    job: &Job,
    kind: ArchiveKind,
    area: Bbox,
    path: &Path,
) -> Result<(u64, u64), OfflineError> {
    let minzoom = job.tiles.iter().map(|t| t.z).min().unwrap_or(0);
    let maxzoom = job.tiles.iter().map(|t| t.z).max().unwrap_or(0);
    let metadata = ArchiveMetadata::new(job, area, minzoom, maxzoom);
    let mut writer = match kind {
        ArchiveKind::Mbtiles => ArchiveWriter::mbtiles(path, &metadata)?,
        ArchiveKind::Pmtiles => ArchiveWriter::pmtiles(path, &metadata)?,
    };
    let bar = progress_bar(job.tiles.len() as u64, "exporting");
    let (mut written, mut empty) = (0, 0);
    let mut first_error = None;
    let mut failed = 0;
    for chunk in job.tiles.chunks(CHUNK_TILES) {
        let results = super::render_all(state, job, chunk).await;
        for (&tile, result) in chunk.iter().zip(results) {
            match result {
                Ok(Some(body)) => {
                    let raw = uncompressed(&job.source.id, tile, body.compression, &body.bytes)?;
                    tokio::task::block_in_place(|| writer.add(tile, &raw))?;
                    written += 1;
                }
                Ok(None) => empty += 1,
                Err(message) => {
                    failed += 1;
                    first_error.get_or_insert(message);
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(first) = first_error {
        return Err(OfflineError::TilesFailed {
            failed,
            total: job.tiles.len() as u64,
            first,
        });
    }
    tokio::task::block_in_place(|| writer.finish())?;
    Ok((written, empty))
}

/// Returns the tile's bytes without transfer compression: archives from other tools may
/// store gzip, and each archive format here compresses vector tiles itself.
fn uncompressed(
    id: &str,
    tile: TileCoord,
    compression: Compression,
    bytes: &[u8],
) -> Result<Vec<u8>, OfflineError> {
    match compression {
        Compression::None => Ok(bytes.to_vec()),
        Compression::Gzip => {
            let mut out = Vec::with_capacity(bytes.len() * 3);
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|source| OfflineError::Io {
                    path: PathBuf::from(format!("tile {tile} of {id}")),
                    source,
                })?;
            Ok(out)
        }
        other => Err(OfflineError::StoredCompression {
            id: id.to_owned(),
            tile,
            compression: other.content_encoding().unwrap_or("unknown"),
        }),
    }
}

/// What both archive formats record about their tiles.
struct ArchiveMetadata {
    name: String,
    description: Option<String>,
    attribution: Option<String>,
    format: TileFormat,
    bounds: Bbox,
    minzoom: u8,
    maxzoom: u8,
    /// TileJSON `vector_layers` of a vector source.
    vector_layers: Option<Value>,
}

impl ArchiveMetadata {
    fn new(job: &Job, bounds: Bbox, minzoom: u8, maxzoom: u8) -> Self {
        let source = &job.source;
        let vector_layers = (job.format == TileFormat::Mvt)
            .then(|| source.tilejson("").get("vector_layers").cloned())
            .flatten();
        Self {
            name: source.name.clone(),
            description: source.description.clone(),
            attribution: source.attribution.clone(),
            format: job.format,
            bounds,
            minzoom,
            maxzoom,
            vector_layers,
        }
    }

    fn center(&self) -> (f64, f64) {
        (
            f64::midpoint(self.bounds.min_x, self.bounds.max_x),
            f64::midpoint(self.bounds.min_y, self.bounds.max_y),
        )
    }

    /// The format name of the MBTiles `format` row.
    fn mbtiles_format(&self) -> &'static str {
        match self.format {
            TileFormat::Png => "png",
            TileFormat::Jpeg => "jpg",
            TileFormat::Webp => "webp",
            TileFormat::Mvt => "pbf",
        }
    }

    /// The PMTiles metadata document (JSON), in the TileJSON keys that PMTiles readers use.
    fn pmtiles_json(&self) -> String {
        let mut document = json!({
            "name": self.name,
            "format": self.mbtiles_format(),
            "type": "overlay",
            "generator": format!("tessera {}", env!("CARGO_PKG_VERSION")),
        });
        if let Some(description) = &self.description {
            document["description"] = json!(description);
        }
        if let Some(attribution) = &self.attribution {
            document["attribution"] = json!(attribution);
        }
        if let Some(layers) = &self.vector_layers {
            document["vector_layers"] = layers.clone();
        }
        document.to_string()
    }
}

enum ArchiveWriter {
    Mbtiles {
        path: PathBuf,
        connection: rusqlite::Connection,
        format: TileFormat,
    },
    Pmtiles {
        path: PathBuf,
        writer: Box<PmTilesStreamWriter<BufWriter<std::fs::File>>>,
    },
}

impl ArchiveWriter {
    fn mbtiles(path: &Path, metadata: &ArchiveMetadata) -> Result<Self, OfflineError> {
        let sql_error = |source| OfflineError::Mbtiles {
            path: path.to_owned(),
            source,
        };
        let connection = rusqlite::Connection::open(path).map_err(sql_error)?;
        connection
            .execute_batch(
                "CREATE TABLE metadata (name TEXT, value TEXT);
                 CREATE UNIQUE INDEX name ON metadata (name);
                 CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
                 CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
                 BEGIN;",
            )
            .map_err(sql_error)?;
        let (lon, lat) = metadata.center();
        let bounds = metadata.bounds;
        let mut rows = vec![
            ("name", metadata.name.clone()),
            ("format", metadata.mbtiles_format().to_owned()),
            (
                "bounds",
                format!(
                    "{},{},{},{}",
                    bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y
                ),
            ),
            ("center", format!("{lon},{lat},{}", metadata.minzoom)),
            ("minzoom", metadata.minzoom.to_string()),
            ("maxzoom", metadata.maxzoom.to_string()),
            ("type", "overlay".to_owned()),
            ("version", "1.3".to_owned()),
        ];
        if let Some(description) = &metadata.description {
            rows.push(("description", description.clone()));
        }
        if let Some(attribution) = &metadata.attribution {
            rows.push(("attribution", attribution.clone()));
        }
        if let Some(layers) = &metadata.vector_layers {
            rows.push(("json", json!({ "vector_layers": layers }).to_string()));
        }
        for (name, value) in rows {
            connection
                .execute(
                    "INSERT INTO metadata (name, value) VALUES (?1, ?2)",
                    (name, value),
                )
                .map_err(sql_error)?;
        }
        Ok(Self::Mbtiles {
            path: path.to_owned(),
            connection,
            format: metadata.format,
        })
    }

    fn pmtiles(path: &Path, metadata: &ArchiveMetadata) -> Result<Self, OfflineError> {
        let file = std::fs::File::create(path).map_err(|source| OfflineError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (tile_type, compression) = match metadata.format {
            TileFormat::Png => (pmtiles::TileType::Png, pmtiles::Compression::None),
            TileFormat::Jpeg => (pmtiles::TileType::Jpeg, pmtiles::Compression::None),
            TileFormat::Webp => (pmtiles::TileType::Webp, pmtiles::Compression::None),
            TileFormat::Mvt => (pmtiles::TileType::Mvt, pmtiles::Compression::Gzip),
        };
        let (lon, lat) = metadata.center();
        let bounds = metadata.bounds;
        let writer = pmtiles::PmTilesWriter::new(tile_type)
            .tile_compression(compression)
            .internal_compression(pmtiles::Compression::Gzip)
            .min_zoom(metadata.minzoom)
            .max_zoom(metadata.maxzoom)
            .bounds(bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y)
            .center(lon, lat)
            .center_zoom(metadata.minzoom)
            .metadata(metadata.pmtiles_json())
            .create(BufWriter::new(file))
            .map_err(|source| OfflineError::Pmtiles {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self::Pmtiles {
            path: path.to_owned(),
            writer: Box::new(writer),
        })
    }

    /// Adds a tile's uncompressed bytes. Blocking.
    fn add(&mut self, tile: TileCoord, bytes: &[u8]) -> Result<(), OfflineError> {
        match self {
            Self::Mbtiles {
                path,
                connection,
                format,
            } => {
                let data = if *format == TileFormat::Mvt {
                    crate::vector::gzip(bytes)
                } else {
                    bytes.to_vec()
                };
                connection
                    .prepare_cached(
                        "INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut insert| insert.execute((tile.z, tile.x, tile.tms_y(), data)))
                    .map_err(|source| OfflineError::Mbtiles {
                        path: path.clone(),
                        source,
                    })?;
            }
            Self::Pmtiles { path, writer } => {
                let coord = pmtiles::TileCoord::new(tile.z, tile.x, tile.y)
                    .and_then(|coord| writer.add_tile(coord, bytes));
                coord.map_err(|source| OfflineError::Pmtiles {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Writes the directories (PMTiles) or commits (MBTiles). Blocking.
    fn finish(self) -> Result<(), OfflineError> {
        match self {
            Self::Mbtiles {
                path, connection, ..
            } => connection
                .execute_batch("COMMIT;")
                .map_err(|source| OfflineError::Mbtiles { path, source }),
            Self::Pmtiles { path, writer } => writer
                .finalize()
                .map_err(|source| OfflineError::Pmtiles { path, source }),
        }
    }
}
