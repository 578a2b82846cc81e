//! Tile and TileJSON routes: `/tiles/{source}/{z}/{x}/{y}[@2x].{ext}` and `/tiles/{source}.json`.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::problem::{Problem, shortened};
use super::{AppState, base_url, cached_response, cached_response_with_revision};
use crate::cache::{SharedTile, SingleFlight, TileBody, TileCache, TileKey};
use crate::collection::Period;
use crate::config::Config;
use crate::density::{Filter, HeatmapRequest};
use crate::enhance::{Applied, EnhanceRequest};
use crate::format::{Compression, TileFormat};
use crate::raster::{RenderedTile, Resampling};
use crate::source::{Backend, LoadFailure, Source};
use crate::tile::TileCoord;

/// The last path segment of a tile URL: `y`, an optional `@2x`, and the extension.
#[derive(Debug, PartialEq)]
pub(super) struct TileName {
    pub(super) y: u64,
    pub(super) scale: u32,
    pub(super) format: TileFormat,
}

pub(super) fn parse_tile_name(name: &str) -> Result<TileName, Problem> {
    let (stem, extension) = name.rsplit_once('.').ok_or_else(|| {
        Problem::bad_parameter(
            "format",
            format!("tile {name:?} has no extension: add .png, .jpg, .webp or .pbf"),
        )
    })?;
    let format = TileFormat::from_extension(extension).ok_or_else(|| {
        Problem::bad_parameter(
            "format",
            format!("unknown tile format {extension:?}: use png, jpg, webp, pbf or mvt"),
        )
    })?;
    let (y, scale) = match stem.split_once('@') {
        None => (stem, 1),
        Some((y, "1x")) => (y, 1),
        Some((y, "2x")) => (y, 2),
        Some((_, other)) => {
            return Err(Problem::bad_parameter(
                "scale",
                format!("unknown scale @{other}: use @2x or none"),
            ));
        }
    };
    let y = parse_coordinate("y", y)?;
    Ok(TileName { y, scale, format })
}

pub(super) fn parse_coordinate(parameter: &'static str, text: &str) -> Result<u64, Problem> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 12 {
        return Err(Problem::bad_parameter(
            parameter,
            format!(
                "{parameter} = {text:?} is not a tile coordinate: use a whole number from 0 to 2^z - 1"
            ),
        ));
    }
    text.parse().map_err(|_| {
        Problem::bad_parameter(parameter, format!("{parameter} = {text:?} is too large"))
    })
}

pub(super) fn find_source(state: &AppState, id: &str) -> Result<Arc<Source>, Problem> {
    if crate::config::validate_id(id).is_err() {
        return Err(Problem::bad_parameter(
            "source",
            format!(
                "invalid source id {id:?}: ids are letters, digits, '.', '_' and '-'; see /catalog"
            ),
        ));
    }
    state.catalog.get(id).cloned().ok_or_else(|| {
        Problem::not_found(format!(
            "no source {id:?}: see /catalog for the sources served"
        ))
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct TileQuery {
    resampling: Option<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`: a dated layer serves the newest scene at or before
    /// the end of that period.
    date: Option<String>,
    /// `none`, `auto` or steps such as `resample,sharpen,clahe`: how imagery finer than its
    /// scene is enhanced.
    enhance: Option<String>,
}

/// Inserts the header that lists the enhancement steps applied to the tile.
fn insert_enhancement_header(response: &mut Response, header_value: &str) {
    match HeaderValue::from_str(header_value) {
        Ok(value) => {
            response.headers_mut().insert(crate::enhance::HEADER, value);
        }
        Err(error) => {
            tracing::error!(%error, header_value, "enhancement header value is not a valid header");
        }
    }
}

/// `GET /tiles/{source}/{z}/{x}/{name}`.
#[allow(
    clippy::too_many_lines,
    reason = "the checks of a tile request read best in order, in one place"
)]
#[tracing::instrument(name = "tile", skip_all, fields(source, tile.z, tile.x, tile.y))]
pub(super) async fn get_tile(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    query: Result<Query<TileQuery>, QueryRejection>,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path((id, z, x, name)) = path.map_err(|rejection| path_problem(&rejection))?;
    tracing::Span::current()
        .record("source", id.as_str())
        .record("tile.z", z.as_str())
        .record("tile.x", x.as_str())
        .record("tile.y", name.as_str());
    let source = find_source(&state, &id)?;
    let ParsedTile {
        tile,
        scale,
        format,
        options,
    } = parse_request(&source, &z, &x, &name, query, pairs)?;
    tile_response(&state, &source, tile, scale, format, options, &headers).await
}

/// A tile request with its path and query checked.
struct ParsedTile {
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
    options: RequestOptions,
}

/// Checks the path segments and query of a tile request to `source`, as the XYZ route reads
/// them.
fn parse_request(
    source: &Source,
    z: &str,
    x: &str,
    name: &str,
    query: Result<Query<TileQuery>, QueryRejection>,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<ParsedTile, Problem> {
    let id = &source.id;
    check_parameter_names(source, &pairs)?;
    let Query(query) =
        query.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    let z = parse_coordinate("z", z)?;
    let x = parse_coordinate("x", x)?;
    let tile_name = parse_tile_name(name)?;
    let z = u32::try_from(z).unwrap_or(u32::MAX);
    let tile = TileCoord::new(z, x, tile_name.y).map_err(|error| {
        let parameter = match &error {
            crate::tile::TileError::ZoomOutOfRange(_) => "z",
            crate::tile::TileError::CoordOutOfRange { axis: 'x', .. } => "x",
            crate::tile::TileError::CoordOutOfRange { .. } => "y",
        };
        Problem::bad_parameter(parameter, error.to_string())
    })?;
    let format = tile_name.format;
    if !source.serves_format(format) {
        return Err(Problem::bad_parameter(
            "format",
            format!(
                "source {id:?} does not serve .{format} tiles: use .{}",
                source.format().extension()
            ),
        ));
    }
    let mut options = request_options(source, &query)?;
    options.postgis = postgis_parameters(source, &pairs);
    options.density = super::density::density_query(source, pairs)?;
    Ok(ParsedTile {
        tile,
        scale: tile_name.scale,
        format,
        options,
    })
}

/// Checks a tile request to `source` given its `z` and `x` segments, its last path segment
/// (`{y}[@2x].{ext}`) and its raw query string, without rendering it, and returns the tile.
/// The fuzz targets call it; the XYZ route runs the same checks.
pub fn parse_tile_request(
    source: &Source,
    z: &str,
    x: &str,
    name: &str,
    query: &str,
) -> Result<TileCoord, Problem> {
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| Problem::bad_parameter("query", "the query string is not valid in a URI"))?;
    let typed = Query::<TileQuery>::try_from_uri(&uri);
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(&uri);
    parse_request(source, z, x, name, typed, pairs).map(|parsed| parsed.tile)
}

/// Checks the zoom range and bounds of `source`, renders `tile` and builds its response with
/// compression, ETag and caching headers. The XYZ, TMS and WMTS routes share it.
pub(super) async fn tile_response(
    state: &AppState,
    source: &Arc<Source>,
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
    options: RequestOptions,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    let id = &source.id;
    let (minzoom, maxzoom) = source.zoom_range();
    if tile.z < minzoom || tile.z > maxzoom {
        return Err(Problem::not_found(format!(
            "zoom {} is outside the zooms of {id:?} ({minzoom} to {maxzoom}): use the parent tile",
            tile.z
        )));
    }
    if !source.touches(tile) {
        return Err(Problem::not_found(format!(
            "tile {tile} is outside the bounds of {id:?}"
        )));
    }

    let accepts_gzip = accepts_gzip(headers);
    let date = options.date;
    let SharedTile { body, gzipped } =
        render_shared(state, source, tile, scale, format, options).await?;
    // The bytes as stored, to tell whether the access rules below changed them.
    let stored = body
        .as_ref()
        .map(|body| (body.bytes.as_ptr().addr(), body.bytes.len()));
    let rendered = body.map(|body| {
        let TileBody {
            bytes,
            compression,
            enhancement,
            dropped_features,
        } = body;
        (bytes, compression, (enhancement, dropped_features))
    });
    // Access rules apply after the cache and the shared render, so every request gets its own
    // view of the same stored tile.
    let rendered = crate::access::restrict_rendered(&state.workers, source, tile, format, rendered)
        .await
        .map_err(|error| {
            tracing::warn!(source = %id, %tile, %error, "tile not filtered for access");
            Problem::internal(format!("tile {tile} of {id:?} cannot be served: {error}"))
        })?;
    let Some((bytes, compression, (enhancement, dropped_features))) = rendered else {
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={}", state.config.cache_max_age))
                .expect("a number is a valid header value"),
        );
        return Ok(response);
    };
    let unchanged = stored == Some((bytes.as_ptr().addr(), bytes.len()));
    let (bytes, compression) = match (compression, format, accepts_gzip) {
        (Compression::None, TileFormat::Mvt, true) => match gzipped.filter(|_| unchanged) {
            Some(gzipped) => (gzipped, Compression::Gzip),
            None => (gzip_tile(&state.workers, bytes).await?, Compression::Gzip),
        },
        (Compression::Gzip, _, false) => {
            let inflated = state.workers.run(move || gunzip(&bytes)).await;
            let inflated = inflated.map_err(|error| Problem::internal(error.to_string()))?;
            let inflated = inflated.map_err(|error| {
                tracing::warn!(source = %id, %tile, %error, "stored tile cannot be inflated");
                Problem::internal(format!(
                    "stored tile {tile} of {id:?} cannot be inflated: {error}"
                ))
            })?;
            (Bytes::from(inflated), Compression::None)
        }
        (Compression::Brotli | Compression::Zstd, _, _) if !accepts(headers, compression) => {
            return Err(Problem::not_acceptable(format!(
                "tile {tile} of {id:?} is stored with {} compression, which the request's Accept-Encoding does not list: accept it, or serve an archive compressed with gzip",
                compression.content_encoding().unwrap_or("no")
            )));
        }
        (other, _, _) => (bytes, other),
    };
    // A PostGIS source's revision goes into the ETag, so the tag changes with the data.
    let revision = match &source.backend {
        Backend::Postgis(postgis) => postgis.revision(),
        _ => 0,
    };
    let mut response =
        cached_response_with_revision(state, headers, bytes, format.media_type(), revision);
    if let Some(value) = shown_date_header(source, tile, date) {
        response.headers_mut().insert(SHOWN_DATE, value);
    }
    if let Some(header_value) = enhancement {
        insert_enhancement_header(&mut response, &header_value);
    }
    if dropped_features > 0 {
        response.headers_mut().insert(
            crate::vector::DROPPED_FEATURES_HEADER,
            HeaderValue::from(dropped_features),
        );
    }
    if let Some(encoding) = compression.content_encoding() {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    if format == TileFormat::Mvt {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    Ok(response)
}

/// Query parameters that every tile and TileJSON request may carry.
const TILE_PARAMETERS: [&str; 3] = ["resampling", "date", "enhance"];

/// Query parameters of density sources; `category` and `facility` may repeat.
const DENSITY_PARAMETERS: [&str; 6] = ["from", "to", "category", "facility", "radius", "ramp"];

/// Rejects a query parameter that `source` does not take, or one given twice that may not
/// repeat. A misspelt `date` would otherwise be ignored, and a tile of another date served.
fn check_parameter_names(
    source: &Source,
    pairs: &Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(), Problem> {
    // A query that cannot be decoded is reported by the extractor of its values.
    let Ok(Query(pairs)) = pairs else {
        return Ok(());
    };
    let density = matches!(source.backend, Backend::Density(_));
    let declared: Vec<&str> = match &source.backend {
        Backend::Postgis(postgis) => postgis.parameters().iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let own: &[&str] = if density { &DENSITY_PARAMETERS } else { &[] };
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in pairs {
        if declared.contains(&name.as_str()) {
            if seen.contains(&name.as_str()) {
                return Err(Problem::bad_parameter(
                    "query",
                    format!("{name} is given more than once: give it once"),
                ));
            }
            seen.push(name);
            continue;
        }
        let known = TILE_PARAMETERS
            .iter()
            .chain(own)
            .find(|known| **known == name.as_str());
        let Some(&known) = known else {
            let mut accepted: Vec<&str> = TILE_PARAMETERS.to_vec();
            if density {
                accepted.extend(DENSITY_PARAMETERS);
            }
            accepted.extend(&declared);
            return Err(Problem::bad_parameter(
                "query",
                format!(
                    "unknown query parameter {:?} for source {:?}: use {} (names are lower case)",
                    shortened(name, 60),
                    source.id,
                    accepted.join(", ")
                ),
            ));
        };
        if seen.contains(&known) && !matches!(known, "category" | "facility") {
            return Err(Problem::bad_parameter(
                known,
                format!("{known} is given more than once: give it once"),
            ));
        }
        seen.push(known);
    }
    Ok(())
}

/// The query parameters of a tile request, checked.
#[derive(Debug, Clone, Default)]
pub(super) struct RequestOptions {
    pub(super) resampling: Option<Resampling>,
    pub(super) date: Option<Period>,
    /// The filter and heat-map settings of a density source.
    pub(super) density: Option<(Filter, HeatmapRequest)>,
    pub(super) enhance: EnhanceRequest,
    /// The declared query parameters of a PostGIS function source, by name.
    pub(super) postgis: Vec<(String, String)>,
}

impl RequestOptions {
    /// Returns the options in one fixed order, for cache keys: two requests with the same
    /// canonical options get the same bytes.
    fn canonical(&self) -> String {
        let mut parts = Vec::new();
        if let Some(resampling) = self.resampling {
            parts.push(format!("resampling={}", resampling.name()));
        }
        if let Some(date) = self.date {
            parts.push(format!("date={date}"));
        }
        if let Some((filter, heat)) = &self.density {
            if !filter.canonical.is_empty() {
                parts.push(filter.canonical.clone());
            }
            if let Some(radius) = heat.radius_px {
                parts.push(format!("radius={radius}"));
            }
            if let Some(ramp) = heat.ramp {
                parts.push(format!("ramp={ramp:?}"));
            }
        }
        if self.enhance != EnhanceRequest::Auto {
            parts.push(format!("enhance={:?}", self.enhance));
        }
        // A PostGIS function's parameters choose its features, so they are part of the key;
        // sorted, so that their order in the URL does not matter.
        let mut postgis = self.postgis.clone();
        postgis.sort();
        for (name, value) in postgis {
            parts.push(format!("{name}={value:?}"));
        }
        parts.join("&")
    }
}

fn request_options(source: &Source, query: &TileQuery) -> Result<RequestOptions, Problem> {
    let resampling = match &query.resampling {
        None => None,
        Some(text) => Some(
            text.parse::<Resampling>()
                .map_err(|message| Problem::bad_parameter("resampling", message))?,
        ),
    };
    let date = parse_date(source, query.date.as_deref())?;
    let enhance = match &query.enhance {
        None => EnhanceRequest::Auto,
        Some(text) => text
            .parse::<EnhanceRequest>()
            .map_err(|message| Problem::bad_parameter("enhance", message))?,
    };
    Ok(RequestOptions {
        resampling,
        date,
        density: None,
        enhance,
        postgis: Vec::new(),
    })
}

/// Returns the query parameters that a PostGIS source declares, with their values. Unknown
/// names were rejected before, by `check_parameter_names`.
fn postgis_parameters(
    source: &Source,
    pairs: &Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Vec<(String, String)> {
    let (Backend::Postgis(postgis), Ok(Query(pairs))) = (&source.backend, pairs) else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter(|(name, _)| postgis.parameters().contains(name))
        .cloned()
        .collect()
}

/// The response header that names the scene date a tile of a dated layer shows.
const SHOWN_DATE: header::HeaderName = header::HeaderName::from_static("tessera-date");

fn shown_date_header(
    source: &Source,
    tile: TileCoord,
    date: Option<Period>,
) -> Option<HeaderValue> {
    let Backend::Collection(collection) = &source.backend else {
        return None;
    };
    let shown = collection.shown_date(tile, date)?;
    HeaderValue::from_str(&shown.to_string()).ok()
}

/// Reads the `date` parameter: 400 when it is malformed or the source has no dates, 404 when
/// it is before the source's first date.
fn parse_date(source: &Source, text: Option<&str>) -> Result<Option<Period>, Problem> {
    let Some(text) = text else {
        return Ok(None);
    };
    let date: Period = text
        .parse()
        .map_err(|message| Problem::bad_parameter("date", message))?;
    let Backend::Collection(collection) = &source.backend else {
        return Err(Problem::bad_parameter(
            "date",
            format!(
                "source {:?} is not a dated layer or a mosaic, so it takes no date: omit `date`",
                source.id
            ),
        ));
    };
    collection.check_date(date).map_err(|error| match error {
        crate::collection::CollectionError::NoDates => {
            Problem::bad_parameter("date", format!("{}: {error}", source.id))
        }
        _ => Problem::not_found(format!("{}: {error}", source.id)),
    })?;
    Ok(Some(date))
}

/// The bytes of a tile, their compression, the enhancement applied to imagery, and the count
/// of vector features left out by `max_features_per_tile`.
type Rendered = (Bytes, Compression, Option<Applied>, usize);

/// Tiles being rendered now, by cache key, with the result that every waiting request gets.
pub(crate) type TileFlights = SingleFlight<Result<SharedTile, Problem>>;

/// Opens the disk tile cache of `config` on a blocking thread. A cache that cannot be opened
/// is reported in `failures` (and so in `/health`), and tiles are served without it.
pub(super) async fn open_tile_cache(
    config: &Config,
    failures: &mut Vec<LoadFailure>,
) -> Option<Arc<TileCache>> {
    let cache_config = config.cache.clone();
    let path = cache_config.path.clone()?;
    let opened = tokio::task::spawn_blocking(move || TileCache::open(&cache_config)).await;
    let reason = match opened {
        Ok(Ok(cache)) => return cache.map(Arc::new),
        Ok(Err(error)) => error.to_string(),
        Err(error) => format!("opening the tile cache panicked: {error}"),
    };
    tracing::error!(path = %path.display(), %reason, "disk tile cache not used");
    failures.push(LoadFailure {
        path,
        reason: format!("disk tile cache not used: {reason}"),
    });
    None
}

/// Renders `tile` of `source` with the source's default options, through the disk cache
/// and the shared computations like a tile request: `None` for an empty tile. `tessera
/// seed` and `tessera export` use it.
pub async fn render_tile(
    state: &AppState,
    source: &Arc<Source>,
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
) -> Result<Option<TileBody>, Problem> {
    render_shared(
        state,
        source,
        tile,
        scale,
        format,
        RequestOptions::default(),
    )
    .await
    .map(|shared| shared.body)
}

/// Returns the tile from the memory or disk cache, or renders it once for every concurrent
/// request of the same key and stores it. Archives are read directly: they are on disk and
/// mapped in memory already.
async fn render_shared(
    state: &AppState,
    source: &Arc<Source>,
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
    options: RequestOptions,
) -> Result<SharedTile, Problem> {
    let (memory, disk) = match &source.backend {
        Backend::Archive(_) => (None, None),
        // Nothing would replace a kept tile of a function without a revision query.
        Backend::Postgis(postgis) if !postgis.revision_tracked() => (None, None),
        _ => (state.memory_cache.clone(), state.tile_cache.clone()),
    };
    // Only stored tiles need the revision, which reads the source's file metadata; concurrent
    // renders are shared whatever it is.
    let revision = if memory.is_some() || disk.is_some() {
        source.revision()
    } else {
        0
    };
    let key = TileKey::new(
        &source.id,
        revision,
        tile,
        scale,
        format,
        &options.canonical(),
    );
    if let Some(kept) = memory.as_ref().and_then(|memory| memory.get(&key)) {
        metrics::counter!("tessera_tile_memory_hits_total", "source" => metric_label(source))
            .increment(1);
        return Ok((*kept).clone());
    }
    let flight_key = key.as_str().to_owned();
    let work = || async move {
        // A render of this key may have finished between the look-up above and this flight.
        if let Some(kept) = memory.as_ref().and_then(|memory| memory.get(&key)) {
            return Ok((*kept).clone());
        }
        let body =
            stored_or_rendered(state, source, &key, disk, tile, scale, format, options).await?;
        let Some(memory) = memory else {
            return Ok(SharedTile {
                body,
                gzipped: None,
            });
        };
        // Nearly every client of vector tiles accepts gzip, so the cache keeps that form too.
        let gzipped = match &body {
            Some(body)
                if format == TileFormat::Mvt
                    && body.compression == Compression::None
                    && !body.bytes.is_empty() =>
            {
                Some(gzip_tile(&state.workers, body.bytes.clone()).await?)
            }
            _ => None,
        };
        // Encoders leave spare capacity in their buffers, which the cache would keep but not
        // count, so the kept bytes are copied to buffers of their own length.
        let body = body.map(|body| TileBody {
            bytes: Bytes::copy_from_slice(&body.bytes),
            ..body
        });
        let gzipped = gzipped.map(|bytes| Bytes::copy_from_slice(&bytes));
        let shared = SharedTile { body, gzipped };
        memory.insert(&key, Arc::new(shared.clone()));
        Ok(shared)
    };
    state.flights.run(&flight_key, work).await
}

/// Returns the tile from the disk cache, or renders it and stores it there.
#[allow(clippy::too_many_arguments)]
async fn stored_or_rendered(
    state: &AppState,
    source: &Arc<Source>,
    key: &TileKey,
    disk: Option<Arc<TileCache>>,
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
    options: RequestOptions,
) -> Result<Option<TileBody>, Problem> {
    let id = metric_label(source);
    if let Some(cache) = &disk {
        let (cache, key) = (Arc::clone(cache), key.clone());
        let hit = tokio::task::spawn_blocking(move || cache.get(&key)).await;
        match hit {
            Ok(Some(tile)) => {
                metrics::counter!("tessera_tile_cache_hits_total", "source" => id).increment(1);
                return Ok(tile);
            }
            Ok(None) => {
                metrics::counter!("tessera_tile_cache_misses_total", "source" => id.clone())
                    .increment(1);
            }
            Err(error) => tracing::error!(%error, "reading the tile cache panicked"),
        }
    }
    metrics::counter!("tessera_tile_renders_total", "source" => id).increment(1);
    let rendered = render(state, source, tile, scale, format, options).await?;
    let body = rendered.map(|(bytes, compression, applied, dropped)| TileBody {
        bytes,
        compression,
        enhancement: applied.map(|applied| applied.header_value()),
        dropped_features: dropped,
    });
    if let Some(cache) = disk {
        let stored = body.clone();
        let (id, key) = (source.id.clone(), key.clone());
        let written = tokio::task::spawn_blocking(move || cache.put(&key, stored.as_ref())).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(source = %id, %tile, %error, "tile not stored in the disk cache");
            }
            Err(error) => tracing::error!(%error, "writing the tile cache panicked"),
        }
    }
    Ok(body)
}

/// Largest tile compressed on the request's own thread. Compressing a tile of thousands of
/// points takes milliseconds, so larger tiles go to the worker pool and leave the async
/// threads to other requests.
const INLINE_GZIP_BYTES: usize = 64 * 1024;

/// Compresses an MVT tile with gzip for the client.
async fn gzip_tile(workers: &crate::worker::Workers, bytes: Bytes) -> Result<Bytes, Problem> {
    if bytes.len() <= INLINE_GZIP_BYTES {
        return Ok(Bytes::from(crate::vector::gzip(&bytes)));
    }
    workers
        .run(move || Bytes::from(crate::vector::gzip(&bytes)))
        .await
        .map_err(|error| Problem::internal(error.to_string()))
}

/// Returns the `source` label of a source's metrics. `/metrics` is public, so a private
/// source counts under `private`, and its id never appears there.
fn metric_label(source: &Source) -> String {
    match crate::access::current() {
        Some(grant) if grant.is_private(source) => "private".to_owned(),
        _ => source.id.clone(),
    }
}

/// Produces the tile's bytes, their compression and its enhancement, or `None` for an empty
/// tile.
async fn render(
    state: &AppState,
    source: &Arc<Source>,
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
    options: RequestOptions,
) -> Result<Option<Rendered>, Problem> {
    let id = source.id.clone();
    let limit = Duration::from_secs_f64(state.config.tile_timeout);
    let deadline = Instant::now() + limit;
    let work = {
        let source = Arc::clone(source);
        async move {
            match &source.backend {
                // Archive reads take no worker, so they wait for no turn.
                Backend::Archive(archive) => {
                    let compression = archive.metadata().compression;
                    archive
                        .get_tile(tile)
                        .await
                        .map(|bytes| bytes.map(|b| (b, compression, None, 0)))
                        .map_err(|error| {
                            Problem::internal(format!(
                                "reading tile {tile} of {:?} failed: {error}",
                                source.id
                            ))
                        })
                }
                Backend::Postgis(postgis) => postgis
                    .tile(tile, &options.postgis, deadline, &state.workers)
                    .await
                    .map(|bytes| {
                        bytes.map(|bytes| (Bytes::from(bytes), Compression::None, None, 0))
                    })
                    .map_err(|error| postgis_problem(&source.id, tile, &error)),
                Backend::Raster(_)
                | Backend::Vector(_)
                | Backend::Floorplan(_)
                | Backend::Collection(_)
                | Backend::Density(_) => {
                    let _turn = state.limits.acquire(&source.id).await?;
                    let worker_source = Arc::clone(&source);
                    let result = state
                        .workers
                        .run(move || {
                            render_blocking(&worker_source, tile, scale, format, options, deadline)
                        })
                        .await
                        .map_err(|error| Problem::internal(error.to_string()))?;
                    result.map(|(tile, dropped)| {
                        tile.map(|tile| {
                            (
                                Bytes::from(tile.bytes),
                                Compression::None,
                                tile.enhancement,
                                dropped,
                            )
                        })
                    })
                }
            }
        }
    };
    tokio::time::timeout(limit, work).await.map_err(|_| {
        tracing::warn!(source = %id, %tile, "tile rendering timed out");
        Problem::unavailable(format!(
            "rendering tile {tile} of {id:?} took longer than {} s: retry later or request a coarser zoom",
            state.config.tile_timeout
        ))
    })?
}

fn render_blocking(
    source: &Source,
    tile: TileCoord,
    scale: u32,
    format: TileFormat,
    options: RequestOptions,
    deadline: Instant,
) -> Result<(Option<RenderedTile>, usize), Problem> {
    let RequestOptions {
        resampling,
        date,
        density,
        enhance,
        ..
    } = options;
    // A job that waited in the queue past its deadline has no client left to respond to.
    let timed_out = || {
        Problem::unavailable(format!(
            "rendering tile {tile} of {:?} timed out",
            source.id
        ))
    };
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let mut dropped_features = 0;
    let rendered = match &source.backend {
        Backend::Raster(raster) => {
            let resampling = resampling.unwrap_or(raster.options().resampling);
            raster
                .render_enhanced(tile, 256 * scale, format, resampling, enhance, deadline)
                .map_err(|error| {
                    if Instant::now() >= deadline {
                        return timed_out();
                    }
                    tracing::error!(source = %source.id, %tile, %error, "raster tile failed");
                    Problem::internal(format!(
                        "rendering tile {tile} of {:?} failed: {error}",
                        source.id
                    ))
                })
        }
        Backend::Vector(vector) => vector
            .tile_counted(tile)
            .map(|encoded| {
                dropped_features = encoded.dropped_features;
                plain(encoded.bytes)
            })
            .map_err(|error| {
                tracing::error!(source = %source.id, %tile, %error, "vector tile failed");
                Problem::internal(format!(
                    "encoding tile {tile} of {:?} failed: {error}",
                    source.id
                ))
            }),
        Backend::Floorplan(plan) => plan.vector().tile(tile).map(plain).map_err(|error| {
            tracing::error!(source = %source.id, %tile, %error, "floorplan tile failed");
            Problem::internal(format!(
                "encoding tile {tile} of {:?} failed: {error}",
                source.id
            ))
        }),
        Backend::Collection(collection) => collection
            .render(
                tile,
                256 * scale,
                format,
                resampling,
                date,
                enhance,
                deadline,
            )
            .map_err(|error| {
                if Instant::now() >= deadline {
                    return timed_out();
                }
                tracing::error!(source = %source.id, %tile, %error, "collection tile failed");
                Problem::internal(format!(
                    "rendering tile {tile} of {:?} failed: {error}",
                    source.id
                ))
            }),
        Backend::Density(points) => {
            let (filter, heat) = density.unwrap_or_default();
            points
                .tile(tile, scale, format, &filter, heat)
                .map(plain)
                .map_err(|error| {
                    tracing::error!(source = %source.id, %tile, %error, "density tile failed");
                    Problem::internal(format!(
                        "rendering tile {tile} of {:?} failed: {error}",
                        source.id
                    ))
                })
        }
        Backend::Archive(_) | Backend::Postgis(_) => Ok(None),
    };
    rendered.map(|tile| (tile, dropped_features))
}

/// Turns the error of a PostGIS tile into a 503 when the database is unreachable or slow,
/// and a 500 otherwise.
fn postgis_problem(id: &str, tile: TileCoord, error: &crate::postgis::PostgisError) -> Problem {
    tracing::error!(source = %id, %tile, %error, "PostGIS tile failed");
    if error.is_unavailable() {
        Problem::unavailable(format!("{error}: retry later"))
    } else {
        Problem::internal(error.to_string())
    }
}

/// Wraps the bytes of a tile that no enhancement touched.
fn plain(bytes: Option<Vec<u8>>) -> Option<RenderedTile> {
    bytes.map(|bytes| RenderedTile {
        bytes,
        enhancement: None,
    })
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    accepts(headers, Compression::Gzip)
}

/// Returns whether `Accept-Encoding` lists `compression` (or `*`) with a quality above 0.
fn accepts(headers: &HeaderMap, compression: Compression) -> bool {
    let Some(wanted) = compression.content_encoding() else {
        return true;
    };
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            // `q=0`, `q=0.0` and `q=0.000` all refuse the coding.
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(wanted) || name == "*") && !refused
        })
}

/// Largest inflated tile sent to a client without gzip; real vector tiles stay far below.
const MAX_INFLATED_TILE_BYTES: u64 = 32 << 20;

/// Inflates a gzip-compressed stored tile, up to `MAX_INFLATED_TILE_BYTES`.
fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    let mut decoder = flate2::read::GzDecoder::new(bytes).take(MAX_INFLATED_TILE_BYTES + 1);
    decoder.read_to_end(&mut out)?;
    if out.len() as u64 > MAX_INFLATED_TILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it inflates to more than {MAX_INFLATED_TILE_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// Turns a path that axum cannot decode (invalid UTF-8 in a percent-encoding, say) into a
/// problem that names it.
pub(super) fn path_problem(rejection: &PathRejection) -> Problem {
    Problem::bad_parameter(
        "path",
        format!("invalid URL path: {}", rejection.body_text()),
    )
}

/// `GET /tiles/{source}.json`: TileJSON 3.0.0. With `date`, the tile URLs carry it.
pub(super) async fn get_tilejson(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<TileQuery>, QueryRejection>,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(file) = path.map_err(|rejection| path_problem(&rejection))?;
    let Some(id) = file.strip_suffix(".json") else {
        return Err(Problem::not_found(format!(
            "no route for /tiles/{file}: TileJSON is at /tiles/{{source}}.json and tiles at /tiles/{{source}}/{{z}}/{{x}}/{{y}}.{{ext}}"
        )));
    };
    let source = find_source(&state, id)?;
    check_parameter_names(&source, &pairs)?;
    let Query(query) =
        query.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    let date = parse_date(&source, query.date.as_deref())?;
    let base = base_url(&state, &headers);
    let mut tilejson = source.tilejson(&base);
    if let Some(date) = date
        && let Some(url) = tilejson["tiles"][0].as_str()
    {
        tilejson["tiles"][0] = serde_json::json!(format!("{url}?date={date}"));
        tilejson["tessera:date"] = serde_json::json!(date);
    }
    if let (Backend::Density(points), Some((filter, _))) = (
        &source.backend,
        super::density::density_query(&source, pairs)?,
    ) {
        points.extend_tilejson(&mut tilejson, &base, &source.id, &filter);
    }
    crate::access::redact_tilejson(&source, &mut tilejson);
    let body = tilejson.to_string();
    Ok(cached_response(
        &state,
        &headers,
        body.into_bytes(),
        "application/json",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_names_parse() {
        let cases = [
            ("12.png", 12, 1, TileFormat::Png),
            ("0@2x.jpg", 0, 2, TileFormat::Jpeg),
            ("7.PBF", 7, 1, TileFormat::Mvt),
            ("3@1x.webp", 3, 1, TileFormat::Webp),
        ];
        for (name, y, scale, format) in cases {
            assert_eq!(
                parse_tile_name(name).expect(name),
                TileName { y, scale, format },
                "{name}"
            );
        }
    }

    #[test]
    fn bad_tile_names_name_the_parameter() {
        let cases = [
            ("1.gif", "format"),
            ("1", "format"),
            ("-1.png", "y"),
            ("a.png", "y"),
            ("1@3x.png", "scale"),
            (".png", "y"),
        ];
        for (name, parameter) in cases {
            let problem = parse_tile_name(name).expect_err(name);
            assert_eq!(problem.parameter, Some(parameter), "{name}");
            assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn gzip_acceptance_follows_quality() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).expect("header"),
            );
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip;q=0.0"));
        assert!(!with("gzip; q=0.000"));
        assert!(with("gzip;q=0.001"));
        assert!(!with("br"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
