//! Tile and TileJSON routes: `/tiles/{source}/{z}/{x}/{y}[@2x].{ext}` and `/tiles/{source}.json`.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::problem::Problem;
use super::{AppState, base_url, cached_response};
use crate::enhance::{Applied, EnhanceRequest};
use crate::format::{Compression, TileFormat};
use crate::raster::{RenderedTile, Resampling};
use crate::source::{Backend, Source};
use crate::tile::TileCoord;

/// The last path segment of a tile URL: `y`, an optional `@2x`, and the extension.
#[derive(Debug, PartialEq)]
struct TileName {
    y: u64,
    scale: u32,
    format: TileFormat,
}

fn parse_tile_name(name: &str) -> Result<TileName, Problem> {
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

fn parse_coordinate(parameter: &'static str, text: &str) -> Result<u64, Problem> {
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

fn find_source(state: &AppState, id: &str) -> Result<Arc<Source>, Problem> {
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
    enhance: Option<String>,
}

impl TileQuery {
    /// Parses the query's `resampling` and `enhance` into the options of a render.
    fn render_options(&self, scale: u32, format: TileFormat) -> Result<RenderOptions, Problem> {
        let resampling = match &self.resampling {
            None => None,
            Some(text) => Some(
                text.parse::<Resampling>()
                    .map_err(|message| Problem::bad_parameter("resampling", message))?,
            ),
        };
        let enhance = match &self.enhance {
            None => EnhanceRequest::Auto,
            Some(text) => text
                .parse::<EnhanceRequest>()
                .map_err(|message| Problem::bad_parameter("enhance", message))?,
        };
        Ok(RenderOptions {
            scale,
            format,
            resampling,
            enhance,
        })
    }
}

/// Inserts the header that lists the enhancement steps applied to the tile.
fn insert_enhancement_header(response: &mut Response, applied: &Applied) {
    response.headers_mut().insert(
        crate::enhance::HEADER,
        HeaderValue::from_str(&applied.header_value()).expect("the steps are ASCII"),
    );
}

/// `GET /tiles/{source}/{z}/{x}/{name}`.
#[tracing::instrument(name = "tile", skip_all, fields(source, tile.z, tile.x, tile.y))]
pub(super) async fn get_tile(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    query: Result<Query<TileQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path((id, z, x, name)) = path.map_err(|rejection| path_problem(&rejection))?;
    let Query(query) =
        query.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    tracing::Span::current()
        .record("source", id.as_str())
        .record("tile.z", z.as_str())
        .record("tile.x", x.as_str())
        .record("tile.y", name.as_str());
    let source = find_source(&state, &id)?;
    let z = parse_coordinate("z", &z)?;
    let x = parse_coordinate("x", &x)?;
    let tile_name = parse_tile_name(&name)?;
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
    let options = query.render_options(tile_name.scale, format)?;
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

    let accepts_gzip = accepts_gzip(&headers);
    let rendered = render(&state, &source, tile, options).await?;
    let Some((bytes, compression, enhancement)) = rendered else {
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={}", state.config.cache_max_age))
                .expect("a number is a valid header value"),
        );
        return Ok(response);
    };
    let (bytes, compression) = match (compression, format, accepts_gzip) {
        (Compression::None, TileFormat::Mvt, true) => {
            (crate::vector::gzip(&bytes), Compression::Gzip)
        }
        (Compression::Gzip, _, false) => {
            let inflated = state.workers.run(move || gunzip(&bytes)).await;
            let inflated = inflated.map_err(|error| Problem::internal(error.to_string()))?;
            let inflated = inflated.map_err(|error| {
                tracing::warn!(source = %id, %tile, %error, "stored tile cannot be inflated");
                Problem::internal(format!(
                    "stored tile {tile} of {id:?} cannot be inflated: {error}"
                ))
            })?;
            (inflated, Compression::None)
        }
        (Compression::Brotli | Compression::Zstd, _, _) if !accepts(&headers, compression) => {
            return Err(Problem::not_acceptable(format!(
                "tile {tile} of {id:?} is stored with {} compression, which the request's Accept-Encoding does not list: accept it, or serve an archive compressed with gzip",
                compression.content_encoding().unwrap_or("no")
            )));
        }
        (other, _, _) => (bytes, other),
    };
    let mut response = cached_response(&state, &headers, bytes, format.media_type());
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
    if let Some(applied) = enhancement {
        insert_enhancement_header(&mut response, &applied);
    }
    Ok(response)
}

/// The options of a tile request beyond the tile itself, from its name and query.
#[derive(Debug, Clone, Copy)]
struct RenderOptions {
    scale: u32,
    format: TileFormat,
    resampling: Option<Resampling>,
    enhance: EnhanceRequest,
}

/// The bytes of a tile, their compression, and the enhancement applied to imagery.
type Rendered = (Vec<u8>, Compression, Option<Applied>);

/// Produces the tile's bytes, their compression and its enhancement, or `None` for an empty
/// tile.
async fn render(
    state: &AppState,
    source: &Arc<Source>,
    tile: TileCoord,
    options: RenderOptions,
) -> Result<Option<Rendered>, Problem> {
    let id = source.id.clone();
    let limit = Duration::from_secs_f64(state.config.tile_timeout);
    let deadline = Instant::now() + limit;
    let work = {
        let source = Arc::clone(source);
        async move {
            match &source.backend {
                Backend::Archive(archive) => {
                    let compression = archive.metadata().compression;
                    archive
                        .get_tile(tile)
                        .await
                        .map(|bytes| bytes.map(|b| (b.to_vec(), compression, None)))
                        .map_err(|error| {
                            Problem::internal(format!(
                                "reading tile {tile} of {:?} failed: {error}",
                                source.id
                            ))
                        })
                }
                Backend::Raster(_) | Backend::Vector(_) => {
                    let worker_source = Arc::clone(&source);
                    let result = state
                        .workers
                        .run(move || render_blocking(&worker_source, tile, options, deadline))
                        .await
                        .map_err(|error| Problem::internal(error.to_string()))?;
                    result.map(|tile| {
                        tile.map(|tile| (tile.bytes, Compression::None, tile.enhancement))
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
    options: RenderOptions,
    deadline: Instant,
) -> Result<Option<RenderedTile>, Problem> {
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
    match &source.backend {
        Backend::Raster(raster) => {
            let resampling = options.resampling.unwrap_or(raster.options().resampling);
            let tile_size = 256 * options.scale;
            raster
                .render_enhanced(
                    tile,
                    tile_size,
                    options.format,
                    resampling,
                    options.enhance,
                    deadline,
                )
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
        Backend::Vector(vector) => vector.tile(tile).map(plain).map_err(|error| {
            tracing::error!(source = %source.id, %tile, %error, "vector tile failed");
            Problem::internal(format!(
                "encoding tile {tile} of {:?} failed: {error}",
                source.id
            ))
        }),
        Backend::Archive(_) => Ok(None),
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

/// `GET /tiles/{source}.json`: TileJSON 3.0.0.
pub(super) async fn get_tilejson(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(file) = path.map_err(|rejection| path_problem(&rejection))?;
    let Some(id) = file.strip_suffix(".json") else {
        return Err(Problem::not_found(format!(
            "no route for /tiles/{file}: TileJSON is at /tiles/{{source}}.json and tiles at /tiles/{{source}}/{{z}}/{{x}}/{{y}}.{{ext}}"
        )));
    };
    let source = find_source(&state, id)?;
    let body = source.tilejson(&base_url(&state, &headers)).to_string();
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
