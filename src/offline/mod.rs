//! Tiles rendered ahead of requests: `tessera seed` fills the disk cache (`seed`), and
//! `tessera export` writes a PMTiles or MBTiles archive for offline use (`export`). Both
//! render through `server::render_tile`, the path of a tile request.

mod export;
mod progress;
mod seed;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

pub use self::export::{ExportArgs, ExportReport, export};
pub use self::seed::{SeedArgs, SeedReport, seed};
use crate::config::Config;
use crate::format::TileFormat;
use crate::server::AppState;
use crate::source::Source;
use crate::tile::{self, Bbox, TileCoord};

#[derive(Debug, Error)]
pub enum OfflineError {
    #[error(
        "invalid --bbox {0:?}: use minlon,minlat,maxlon,maxlat in degrees, with min below max (split an area across the antimeridian into two runs)"
    )]
    InvalidBbox(String),
    #[error(
        "invalid --zooms {0:?}: use one zoom such as 12 or a range such as 10-14, from 0 to 30"
    )]
    InvalidZooms(String),
    #[error("invalid --format {0:?}: use png, jpg, webp or pbf")]
    InvalidFormat(String),
    #[error(
        "no source {0:?}: run `tessera serve` with the same files and see /catalog for the ids"
    )]
    UnknownSource(String),
    #[error("source {id:?} does not serve .{format} tiles: use --format {served}")]
    UnservedFormat {
        id: String,
        format: String,
        served: String,
    },
    #[error(
        "no tile of {0:?} is inside --bbox and --zooms: check them against the source's bounds and zooms in its TileJSON"
    )]
    NoTiles(String),
    #[error(
        "seeding needs the disk cache: set `[cache] path` in the configuration, or pass --cache FOLDER"
    )]
    NoCache,
    #[error(
        "source {0:?} is a tile archive, read from disk already: seed the sources it was made from"
    )]
    ArchiveSeed(String),
    #[error("cannot start the worker pool: {0}")]
    Workers(#[from] crate::worker::WorkerError),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the MBTiles archive {path} failed: {source}")]
    Mbtiles {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("writing the PMTiles archive {path} failed: {source}")]
    Pmtiles {
        path: PathBuf,
        source: pmtiles::PmtError,
    },
    #[error("invalid output {0}: name a file ending in .pmtiles or .mbtiles")]
    OutputExtension(PathBuf),
    #[error("{path} exists already: remove it or choose another --output")]
    OutputExists { path: PathBuf },
    #[error(
        "tile {tile} of {id:?} is stored with {compression} compression, which archives here do not take: export from the source files instead"
    )]
    StoredCompression {
        id: String,
        tile: TileCoord,
        compression: &'static str,
    },
    #[error("{failed} of {total} tiles failed; the first error: {first}")]
    TilesFailed {
        failed: u64,
        total: u64,
        first: String,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Runs `tessera seed` on its own runtime and prints its report.
pub fn run_seed(args: SeedArgs) -> anyhow::Result<()> {
    let report = runtime()?.block_on(seed(args))?;
    #[allow(clippy::print_stdout, reason = "the report is the command's output")]
    {
        println!("seeded {report}");
    }
    Ok(())
}

/// Runs `tessera export` on its own runtime and prints its report.
pub fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let report = runtime()?.block_on(export(args))?;
    #[allow(clippy::print_stdout, reason = "the report is the command's output")]
    {
        println!("exported {report}");
    }
    Ok(())
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Parses `minlon,minlat,maxlon,maxlat` in degrees.
pub fn parse_bbox(text: &str) -> Result<Bbox, OfflineError> {
    let invalid = || OfflineError::InvalidBbox(text.to_owned());
    let values: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid())?;
    let [min_x, min_y, max_x, max_y] = values[..] else {
        return Err(invalid());
    };
    let valid = values.iter().all(|v| v.is_finite())
        && (-180.0..=180.0).contains(&min_x)
        && (-180.0..=180.0).contains(&max_x)
        && (-90.0..=90.0).contains(&min_y)
        && (-90.0..=90.0).contains(&max_y)
        && min_x < max_x
        && min_y < max_y;
    if !valid {
        return Err(invalid());
    }
    Ok(Bbox::new(min_x, min_y, max_x, max_y))
}

/// Parses `12` or `10-14`.
pub fn parse_zooms(text: &str) -> Result<RangeInclusive<u8>, OfflineError> {
    let invalid = || OfflineError::InvalidZooms(text.to_owned());
    let zoom = |part: &str| {
        part.trim()
            .parse::<u8>()
            .ok()
            .filter(|z| *z <= tile::MAX_ZOOM)
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (zoom(first), zoom(last)),
        None => (zoom(text), zoom(text)),
    };
    match (first, last) {
        (Some(first), Some(last)) if first <= last => Ok(first..=last),
        _ => Err(invalid()),
    }
}

pub fn parse_format(text: &str) -> Result<TileFormat, OfflineError> {
    TileFormat::from_extension(text).ok_or_else(|| OfflineError::InvalidFormat(text.to_owned()))
}

/// Builds the configuration of a `seed` or `export` run as `tessera serve` does: from
/// `config_path`, with `paths` replacing its folders, else `./geodata` and `./tiles`.
pub fn load_config(paths: &[PathBuf], config_path: Option<&Path>) -> Result<Config, OfflineError> {
    let mut config = match config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if !paths.is_empty() {
        config.paths = paths.to_vec();
    } else if config_path.is_none() {
        config.paths = crate::config::DEFAULT_FOLDERS
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
    }
    Ok(config)
}

/// The tiles of one source to render in one format.
#[derive(Debug)]
pub struct Job {
    pub source: Arc<Source>,
    pub format: TileFormat,
    pub tiles: Vec<TileCoord>,
}

/// Lists the tiles of each of `sources` within `bbox` (the source's bounds without one) and
/// `zooms`, clamped to the source's zoom range, that can hold its data, in the source's
/// format unless `format` is given. Within a job, tiles are in PMTiles tile-id order (by
/// zoom, then along the Hilbert curve), which keeps an exported archive clustered.
pub fn plan(
    state: &AppState,
    sources: &[String],
    bbox: Option<Bbox>,
    zooms: &RangeInclusive<u8>,
    format: Option<TileFormat>,
) -> Result<Vec<Job>, OfflineError> {
    let mut jobs = Vec::new();
    for id in sources {
        let source = state
            .catalog
            .get(id)
            .cloned()
            .ok_or_else(|| OfflineError::UnknownSource(id.clone()))?;
        let format = format.unwrap_or_else(|| source.format());
        if !source.serves_format(format) {
            return Err(OfflineError::UnservedFormat {
                id: id.clone(),
                format: format.extension().to_owned(),
                served: source.format().extension().to_owned(),
            });
        }
        let tiles = source_tiles(&source, bbox, zooms);
        if tiles.is_empty() {
            return Err(OfflineError::NoTiles(id.clone()));
        }
        jobs.push(Job {
            source,
            format,
            tiles,
        });
    }
    Ok(jobs)
}

fn source_tiles(source: &Source, bbox: Option<Bbox>, zooms: &RangeInclusive<u8>) -> Vec<TileCoord> {
    let (minzoom, maxzoom) = source.zoom_range();
    let bounds = source.bounds_lonlat();
    let area = match bbox {
        Some(bbox) => bbox.intersection(&bounds),
        None => Some(bounds),
    };
    let Some(area) = area else {
        return Vec::new();
    };
    let mut tiles: Vec<(u64, TileCoord)> = Vec::new();
    for z in *zooms.start().max(&minzoom)..=*zooms.end().min(&maxzoom) {
        for tile in tile::tiles_in_bbox(&area, z) {
            if !source.touches(tile) {
                continue;
            }
            let id = pmtiles::TileCoord::new(tile.z, tile.x, tile.y)
                .map_or(u64::MAX, |coord| pmtiles::TileId::from(coord).value());
            tiles.push((id, tile));
        }
    }
    tiles.sort_by_key(|(id, _)| *id);
    tiles.into_iter().map(|(_, tile)| tile).collect()
}

/// The outcome of one tile.
enum Outcome {
    Stored,
    Empty,
    Failed(String),
}

/// Renders `tiles` of `job` concurrently on the worker pool and returns their bodies in the
/// same order (`Ok(None)` for empty tiles).
async fn render_all(
    state: &AppState,
    job: &Job,
    tiles: &[TileCoord],
) -> Vec<Result<Option<crate::cache::TileBody>, String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, &tile) in tiles.iter().enumerate() {
        let (state, source, format) = (state.clone(), Arc::clone(&job.source), job.format);
        tasks.spawn(async move {
            let rendered = crate::server::render_tile(&state, &source, tile, 1, format).await;
            (
                index,
                rendered.map_err(|problem| format!("tile {tile}: {}", problem.detail)),
            )
        });
    }
    let mut results: Vec<_> = (0..tiles.len()).map(|_| Ok(None)).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = result,
            Err(error) => tracing::error!(%error, "a tile task panicked"),
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bboxes_parse() {
        let bbox = parse_bbox("124.2, 37.7,130.7,43").expect("valid bbox");
        assert_eq!(bbox, Bbox::new(124.2, 37.7, 130.7, 43.0));
        for bad in [
            "1,2,3",
            "1,2,3,4,5",
            "a,b,c,d",
            "10,0,5,1",
            "0,10,1,5",
            "-200,0,0,1",
            "0,0,1,95",
        ] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zooms_parse() {
        let cases = [
            ("12", Some(12..=12)),
            ("10-14", Some(10..=14)),
            (" 0 - 3 ", Some(0..=3)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_zooms(text).ok(), expected, "{text}");
        }
        for bad in ["14-10", "x", "", "31", "1-", "-1"] {
            assert!(parse_zooms(bad).is_err(), "{bad}");
        }
    }
}
