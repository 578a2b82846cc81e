//! Model routes: `/models/{id}.glb` (the model as GLB) and `/models/{id}.json` (its
//! georeference and levels), for 3D viewers.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

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
    let Backend::Floorplan(plan) = &source.backend else {
        return Err(Problem::not_found(format!(
            "source {id:?} is not a 3D model: models are the sources whose TileJSON has `tessera:model`"
        )));
    };
    let response = if extension == "glb" {
        cached_response(&state, &headers, plan.glb().to_vec(), "model/gltf-binary")
    } else {
        let body = plan.model_json(id, &base_url(&state, &headers)).to_string();
        cached_response(&state, &headers, body.into_bytes(), "application/json")
    };
    Ok(response)
}
