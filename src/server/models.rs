//! Model routes: `/models/{id}.glb` (the model as GLB) and `/models/{id}.json` (its
//! georeference and levels), for 3D viewers.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use super::tiles::{find_source, path_problem};
use super::{AppState, base_url, cached_response};
use crate::source::Backend;

/// `GET /models/{file}`.
pub(super) async fn get_model(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(file) = path.map_err(|rejection| path_problem(&rejection))?;
    let (id, extension) = file.rsplit_once('.').ok_or_else(|| {
        Problem::bad_parameter(
            "format",
            format!(
                "model {file:?} has no extension: use /models/{{id}}.glb or /models/{{id}}.json"
            ),
        )
    })?;
    if !matches!(extension, "glb" | "json") {
        return Err(Problem::bad_parameter(
            "format",
            format!("unknown model format {extension:?}: use glb or json"),
        ));
    }
    let source = find_source(&state, id)?;
    if !crate::access::may_serve_model(&source) {
        return Err(Problem::not_found(format!(
            "no model {id:?}: this model is served only with an access key"
        )));
    }
    let Backend::Floorplan(plan) = &source.backend else {
        return Err(Problem::not_found(format!(
            "source {id:?} is not a 3D model: models are the sources whose TileJSON has `tessera:model`"
        )));
    };
    let response = if extension == "glb" {
        glb_response(&state, &headers, plan.glb().clone(), plan.glb_etag())
    } else {
        let body = plan.model_json(id, &base_url(&state, &headers)).to_string();
        cached_response(&state, &headers, body.into_bytes(), "application/json")
    };
    Ok(response)
}

/// Builds the response for a model's GLB like `cached_response`, but from shared bytes and
/// an ETag computed at start-up, so that a request copies and hashes nothing.
fn glb_response(state: &AppState, headers: &HeaderMap, glb: bytes::Bytes, etag: &str) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == etag
            })
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = glb.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("model/gltf-binary"),
        );
        response
    };
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("a quoted hex ETag is a valid header"),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={}", state.config.cache_max_age))
            .expect("ASCII is a valid header"),
    );
    response
}
