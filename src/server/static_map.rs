//! `GET /static/{style}/{position}/{size}`: static maps rendered on the worker pool.

use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::AppState;
use super::problem::Problem;
use super::tiles::path_problem;
use crate::map::request::{parse_options, parse_size};
use crate::map::{Limits, MapContext, MapError, MapRequest, View};

/// Builds the context that rendering reads from the server's state, with the runtime that
/// reads its archives.
pub(crate) fn map_context(state: &AppState, runtime: tokio::runtime::Handle) -> MapContext {
    MapContext {
        catalog: std::sync::Arc::clone(&state.catalog),
        glyphs: std::sync::Arc::clone(&state.glyphs),
        sprites: std::sync::Arc::clone(&state.sprites),
        styles: state.config.styles.clone(),
        runtime,
    }
}

/// Reads the limits of static maps from the configuration.
pub(crate) fn limits(config: &crate::config::Config) -> Limits {
    Limits {
        max_pixels: config.static_max_pixels,
        timeout: Duration::from_secs_f64(config.static_timeout),
    }
}

/// Builds the problem for a request over a limit: 422 with a detail naming the limit and its
/// value.
fn over_limit(detail: String) -> Problem {
    Problem {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        title: "Limit exceeded",
        detail,
        parameter: None,
    }
}

/// Converts a rendering error to its problem details.
pub(crate) fn map_problem(error: &MapError) -> Problem {
    match error {
        MapError::StyleNotFound(_) => Problem::not_found(error.to_string()),
        MapError::TooManyPixels { .. } | MapError::TimedOut { .. } => over_limit(error.to_string()),
        MapError::NothingToFit { .. } => Problem::bad_parameter("position", error.to_string()),
        MapError::Style { .. }
        | MapError::Layer { .. }
        | MapError::Encode { .. }
        | MapError::Archive { .. }
        | MapError::OnRuntimeThread { .. }
        | MapError::Pdf(_) => {
            tracing::error!(%error, "static map failed");
            Problem::internal(error.to_string())
        }
    }
}

/// Reads the path and query of a static map request.
fn read_request(
    style: String,
    position: &str,
    size: &str,
    pairs: &[(String, String)],
) -> Result<MapRequest, Problem> {
    let view = View::parse(position)
        .map_err(|invalid| Problem::bad_parameter(invalid.parameter, invalid.message))?;
    let size = parse_size(size)
        .map_err(|invalid| Problem::bad_parameter(invalid.parameter, invalid.message))?;
    let options = parse_options(size.format, pairs)
        .map_err(|invalid| Problem::bad_parameter(invalid.parameter, invalid.message))?;
    Ok(MapRequest {
        style,
        view,
        width: size.width,
        height: size.height,
        ratio: size.ratio,
        format: size.format,
        options,
    })
}

/// `GET /static/{style}/{position}/{size}`.
#[tracing::instrument(name = "static_map", skip_all, fields(style, position, size))]
pub(super) async fn get_static(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let started = Instant::now();
    let Path((style, position, size)) = path.map_err(|rejection| path_problem(&rejection))?;
    tracing::Span::current()
        .record("style", style.as_str())
        .record("position", position.as_str())
        .record("size", size.as_str());
    let Query(pairs) =
        pairs.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    let request = read_request(style, &position, &size, &pairs)?;
    let limits = limits(&state.config);
    crate::map::check_pixels(&request, &limits).map_err(|error| map_problem(&error))?;
    let context = map_context(&state, tokio::runtime::Handle::current());
    let job_request = request.clone();
    // The worker thread has no request of its own: it renders with this request's grant, so
    // private sources, attributes and sensitive points stay out of the map.
    let grant = crate::access::current();
    let rendered = state
        .workers
        .run(move || {
            crate::access::with_grant(grant, || {
                crate::map::render(&context, &job_request, &limits, started)
            })
        })
        .await
        .map_err(|error| Problem::internal(error.to_string()))?
        .map_err(|error| {
            if matches!(error, MapError::TimedOut { .. }) {
                tracing::warn!(style = %request.style, %position, %size, "static map timed out");
            }
            map_problem(&error)
        })?;
    let mut response = super::cached_response(
        &state,
        &headers,
        rendered.bytes,
        rendered.format.media_type(),
    );
    let file_name = format!("inline; filename=\"{}-{size}\"", request.style);
    if let Ok(value) = HeaderValue::from_str(&file_name) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
