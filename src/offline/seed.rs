//! `tessera seed`: renders the tiles of an area into the disk cache, resumably.
//!
//! The tiles of every job are cut into chunks of `CHUNK_TILES`. After a chunk's tiles are all
//! stored, its number is appended to the state file, so a run started again after an
//! interruption skips the chunks listed there and renders only the rest.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::progress::progress_bar;
use super::{Job, OfflineError, Outcome};
use crate::cache::{TileCache, TileKey};
use crate::server::AppState;

/// Tiles per chunk: the unit of work that the state file records.
const CHUNK_TILES: usize = 32;

/// The options of `tessera seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Files and folders to serve instead of ./geodata and ./tiles, as for `tessera serve`.
    pub paths: Vec<PathBuf>,
    /// Configuration file (TOML) naming sources and options.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Id of a source to seed; repeat it for several sources.
    #[arg(long = "source", required = true)]
    pub sources: Vec<String>,
    /// Area to seed in degrees, as minlon,minlat,maxlon,maxlat; default: each source's bounds.
    #[arg(long)]
    pub bbox: Option<String>,
    /// Zoom or zoom range to seed, such as 12 or 10-14; clamped to each source's zooms.
    #[arg(long)]
    pub zooms: String,
    /// Tile format (png, jpg, webp or pbf); default: each source's own format.
    #[arg(long)]
    pub format: Option<String>,
    /// Cache folder, instead of `[cache] path` of the configuration.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// State file that records the finished chunks; default: a file under the cache folder's
    /// `seed/`, named after the sources, area, zooms and format.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Rendering threads; 0 is one per core.
    #[arg(long)]
    pub workers: Option<usize>,
}

/// What a seed run did, tile by tile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Tiles of the whole area.
    pub total: u64,
    /// Tiles rendered and stored by this run.
    pub rendered: u64,
    /// Tiles found in the cache already (rendered by a server or an interrupted run).
    pub cached: u64,
    /// Tiles of chunks that the state file lists as finished by an earlier run.
    pub resumed: u64,
    /// Tiles without data (stored as empty).
    pub empty: u64,
    pub failed: u64,
}

impl std::fmt::Display for SeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tiles: {} rendered, {} already cached, {} done by an earlier run, {} empty, {} failed",
            self.total, self.rendered, self.cached, self.resumed, self.empty, self.failed
        )
    }
}

/// Runs `tessera seed`.
pub async fn seed(args: SeedArgs) -> Result<SeedReport, OfflineError> {
    let mut config = super::load_config(&args.paths, args.config.as_deref())?;
    if let Some(folder) = &args.cache {
        config.cache.path = Some(folder.clone());
    }
    if config.cache.path.is_none() {
        return Err(OfflineError::NoCache);
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
    let Some(cache) = state.tile_cache.clone() else {
        let reason = state
            .failures
            .iter()
            .map(|failure| failure.reason.clone())
            .collect::<Vec<_>>()
            .join("; ");
        tracing::error!(%reason, "the disk tile cache did not open");
        return Err(OfflineError::NoCache);
    };
    let jobs = super::plan(&state, &args.sources, bbox, &zooms, format)?;
    if let Some(job) = jobs
        .iter()
        .find(|job| matches!(job.source.backend, crate::source::Backend::Archive(_)))
    {
        return Err(OfflineError::ArchiveSeed(job.source.id.clone()));
    }
    let state_path = match &args.state {
        Some(path) => path.clone(),
        None => default_state_path(
            cache.root(),
            &args.sources,
            args.bbox.as_deref(),
            &args.zooms,
            format,
        ),
    };
    let report = run(&state, &cache, &jobs, &state_path).await?;
    state
        .workers
        .wait_idle(std::time::Duration::from_secs_f64(
            state.config.tile_timeout,
        ))
        .await;
    Ok(report)
}

/// Names the state file after everything that decides which tiles a run renders.
fn default_state_path(
    cache: &Path,
    sources: &[String],
    bbox: Option<&str>,
    zooms: &str,
    format: Option<crate::format::TileFormat>,
) -> PathBuf {
    let description = format!(
        "{}|{}|{}|{}",
        sources.join(","),
        bbox.unwrap_or("bounds"),
        zooms,
        format.map_or("own", |f| f.extension())
    );
    let hash = xxhash_rust::xxh3::xxh3_64(description.as_bytes());
    cache.join("seed").join(format!("{hash:016x}.state"))
}

/// Reads the chunk numbers that an earlier run finished.
fn read_state(path: &Path) -> Result<HashSet<usize>, OfflineError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|line| line.strip_prefix("done "))
            .filter_map(|number| number.trim().parse().ok())
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(source) => Err(OfflineError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

async fn run(
    state: &AppState,
    cache: &Arc<TileCache>,
    jobs: &[Job],
    state_path: &Path,
) -> Result<SeedReport, OfflineError> {
    let io_error = |source| OfflineError::Io {
        path: state_path.to_owned(),
        source,
    };
    let finished = read_state(state_path)?;
    if let Some(folder) = state_path.parent() {
        std::fs::create_dir_all(folder).map_err(io_error)?;
    }
    let mut state_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_path)
        .map_err(io_error)?;

    let total: usize = jobs.iter().map(|job| job.tiles.len()).sum();
    let mut report = SeedReport {
        total: total as u64,
        ..SeedReport::default()
    };
    let bar = progress_bar(total as u64, "seeding");
    let mut first_error = None;
    let mut chunk_number = 0;
    for job in jobs {
        for chunk in job.tiles.chunks(CHUNK_TILES) {
            chunk_number += 1;
            if finished.contains(&chunk_number) {
                report.resumed += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
                continue;
            }
            let outcomes = seed_chunk(state, cache, job, chunk, &mut report).await;
            let mut chunk_failed = false;
            for outcome in outcomes {
                match outcome {
                    Outcome::Stored => {}
                    Outcome::Empty => report.empty += 1,
                    Outcome::Failed(message) => {
                        report.failed += 1;
                        chunk_failed = true;
                        tracing::warn!(source = %job.source.id, %message, "tile not seeded");
                        first_error.get_or_insert(message);
                    }
                }
            }
            bar.inc(chunk.len() as u64);
            // A chunk with a failed tile is left out of the state file, so the next run retries it.
            if !chunk_failed {
                writeln!(state_file, "done {chunk_number}").map_err(io_error)?;
            }
        }
    }
    bar.finish_and_clear();
    tracing::info!(state = %state_path.display(), %report, "seeding finished");
    match first_error {
        Some(first) => Err(OfflineError::TilesFailed {
            failed: report.failed,
            total: report.total,
            first,
        }),
        None => Ok(report),
    }
}

/// Renders the tiles of `chunk` that the cache does not hold, and counts them in `report`.
async fn seed_chunk(
    state: &AppState,
    cache: &Arc<TileCache>,
    job: &Job,
    chunk: &[crate::tile::TileCoord],
    report: &mut SeedReport,
) -> Vec<Outcome> {
    let revision = job.source.revision();
    let missing: Vec<_> = chunk
        .iter()
        .copied()
        .filter(|&tile| {
            let key = TileKey::new(&job.source.id, revision, tile, 1, job.format, "");
            !cache.contains(&key)
        })
        .collect();
    report.cached += (chunk.len() - missing.len()) as u64;
    let mut outcomes = Vec::with_capacity(missing.len());
    for result in super::render_all(state, job, &missing).await {
        if result.is_ok() {
            report.rendered += 1;
        }
        outcomes.push(match result {
            Ok(Some(_)) => Outcome::Stored,
            Ok(None) => Outcome::Empty,
            Err(message) => Outcome::Failed(message),
        });
    }
    outcomes
}
