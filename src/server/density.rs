//! Density routes and helpers: filters read from the query, and
//! `GET /density/{source}/legend.json`, the heat map's colour scale at a zoom.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::problem::Problem;
use super::tiles::{find_source, path_problem};
use super::{AppState, cached_response};
use crate::density::{Filter, HeatmapRequest, parse_query};
use crate::source::{Backend, Source};

/// Reads the filter and heat-map settings of a request to a density source; `None` for other
/// sources, which ignore these parameters.
pub(super) fn density_query(
    source: &Source,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Option<(Filter, HeatmapRequest)>, Problem> {
    let Backend::Density(density) = &source.backend else {
        return Ok(None);
    };
    let Query(pairs) =
        pairs.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    parse_query(density, &pairs)
        .map(Some)
        .map_err(|invalid| Problem::bad_parameter(invalid.parameter, invalid.message))
}

/// `GET /density/{source}/legend.json?z=..`: the heat map's scale at zoom `z` for the
/// request's filter, radius and ramp.
pub(super) async fn get_legend(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(id) = path.map_err(|rejection| path_problem(&rejection))?;
    let source = find_source(&state, &id)?;
    if !matches!(source.backend, Backend::Density(_)) {
        return Err(Problem::not_found(format!(
            "source {id:?} is not a density source: legends exist for sources with kind = \"points\""
        )));
    }
    let zoom_text = pairs
        .as_ref()
        .ok()
        .and_then(|Query(pairs)| pairs.iter().find(|(key, _)| key == "z"))
        .map(|(_, value)| value.clone());
    let (minzoom, maxzoom) = source.zoom_range();
    let z = match zoom_text {
        None => {
            return Err(Problem::bad_parameter(
                "z",
                format!("z is missing: give the zoom, {minzoom} to {maxzoom}"),
            ));
        }
        Some(text) => text
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|z| (minzoom..=maxzoom).contains(z))
            .ok_or_else(|| {
                Problem::bad_parameter(
                    "z",
                    format!("z = {text:?} is not a zoom of {id:?}: use {minzoom} to {maxzoom}"),
                )
            })?,
    };
    let (filter, heat) = density_query(&source, pairs)?.unwrap_or_default();
    let legend = {
        let source = Arc::clone(&source);
        state
            .workers
            .run(move || match &source.backend {
                Backend::Density(density) => Some(density.legend(z, &filter, heat)),
                _ => None,
            })
            .await
            .map_err(|error| Problem::internal(error.to_string()))?
    };
    let mut body = legend.unwrap_or_default();
    body["source"] = serde_json::json!(id);
    Ok(cached_response(
        &state,
        &headers,
        body.to_string().into_bytes(),
        "application/json",
    ))
}
