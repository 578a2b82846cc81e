//! OGC API – Tiles and OGC API – Features routes under `/ogc`.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::problem::Problem;
use super::tiles::{RequestOptions, find_source, parse_coordinate, path_problem, tile_response};
use super::{AppState, base_url, cached_response};
use crate::format::TileFormat;
use crate::ogc::features::{self, ItemsQuery};
use crate::ogc::matrix_set::{self, MatrixSet};
use crate::ogc::{LayerDescription, tiles_api};
use crate::source::{Backend, Source};
use crate::tile::TileCoord;

const JSON: &str = "application/json";
const GEOJSON: &str = "application/geo+json";

/// Builds the response of an OGC API document. A key sent as `?key=` is added to the
/// document's links to this server.
fn json_response(
    state: &AppState,
    headers: &HeaderMap,
    document: &Value,
    media_type: &'static str,
) -> Response {
    let body = if crate::access::key_query().is_empty() {
        document.to_string()
    } else {
        let mut keyed = document.clone();
        crate::access::add_key_to_links(&mut keyed, &base_url(state, headers));
        keyed.to_string()
    };
    cached_response(state, headers, body.into_bytes(), media_type)
}

fn has_items(source: &Source) -> bool {
    matches!(source.backend, Backend::Vector(_))
}

/// `GET /ogc`.
pub(super) async fn landing(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let document = tiles_api::landing_page(&base_url(&state, &headers));
    json_response(&state, &headers, &document, JSON)
}

/// `GET /ogc/api`: the OpenAPI 3.0 definition.
pub(super) async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let document = tiles_api::openapi(&base_url(&state, &headers));
    json_response(&state, &headers, &document, tiles_api::OPENAPI)
}

/// `GET /ogc/conformance`.
pub(super) async fn conformance(State(state): State<AppState>, headers: HeaderMap) -> Response {
    json_response(&state, &headers, &tiles_api::conformance(), JSON)
}

/// `GET /ogc/collections`.
pub(super) async fn collections(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let layers: Vec<LayerDescription> = state
        .catalog
        .iter()
        .map(|s| LayerDescription::from_source(s))
        .collect();
    let document = tiles_api::collections(&layers, &base, |layer| {
        state
            .catalog
            .get(&layer.id)
            .is_some_and(|source| has_items(source))
    });
    json_response(&state, &headers, &document, JSON)
}

fn find_collection(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<Arc<Source>, Problem> {
    let Path(id) = path.map_err(|rejection| path_problem(&rejection))?;
    find_source(state, &id)
}

/// `GET /ogc/collections/{id}`.
pub(super) async fn collection(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let source = find_collection(&state, path)?;
    let layer = LayerDescription::from_source(&source);
    let document = tiles_api::collection(&layer, &base_url(&state, &headers), has_items(&source));
    Ok(json_response(&state, &headers, &document, JSON))
}

/// `GET /ogc/collections/{id}/tiles`.
pub(super) async fn tilesets(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let source = find_collection(&state, path)?;
    let layer = LayerDescription::from_source(&source);
    let document = tiles_api::tilesets(&layer, &base_url(&state, &headers));
    Ok(json_response(&state, &headers, &document, JSON))
}

fn find_matrix_set(identifier: &str) -> Result<MatrixSet, Problem> {
    MatrixSet::from_identifier(identifier).ok_or_else(|| {
        Problem::not_found(format!(
            "no tile matrix set {identifier:?}: use WebMercatorQuad or GoogleMapsCompatible"
        ))
    })
}

/// `GET /ogc/collections/{id}/tiles/{tileMatrixSetId}`.
pub(super) async fn tileset(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path((id, set)) = path.map_err(|rejection| path_problem(&rejection))?;
    let source = find_source(&state, &id)?;
    let set = find_matrix_set(&set)?;
    let layer = LayerDescription::from_source(&source);
    let document = tiles_api::tileset(&layer, set, &base_url(&state, &headers));
    Ok(json_response(&state, &headers, &document, JSON))
}

/// The segments of a tile URL: collection, tile matrix set, zoom, row and column.
#[derive(Debug, Deserialize)]
pub(super) struct TilePath {
    id: String,
    set: String,
    z: String,
    row: String,
    col: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct TileQuery {
    f: Option<String>,
}

/// `GET /ogc/collections/{id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}`, in
/// the source's own format or the one that `f` names.
pub(super) async fn tile(
    State(state): State<AppState>,
    path: Result<Path<TilePath>, PathRejection>,
    query: Result<Query<TileQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(TilePath {
        id,
        set,
        z,
        row,
        col,
    }) = path.map_err(|rejection| path_problem(&rejection))?;
    let Query(query) =
        query.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    let source = find_source(&state, &id)?;
    find_matrix_set(&set)?;
    let format = match &query.f {
        None => source.format(),
        Some(f) => TileFormat::from_extension(f)
            .filter(|format| source.serves_format(*format))
            .ok_or_else(|| {
                Problem::bad_parameter(
                    "f",
                    format!(
                        "collection {id:?} is not served as {f:?}: use f={}",
                        source.format().extension()
                    ),
                )
            })?,
    };
    let z = parse_coordinate("tileMatrix", &z)?;
    let row = parse_coordinate("tileRow", &row)?;
    let col = parse_coordinate("tileCol", &col)?;
    let tile = TileCoord::new(u32::try_from(z).unwrap_or(u32::MAX), col, row).map_err(|error| {
        let parameter = match &error {
            crate::tile::TileError::ZoomOutOfRange(_) => "tileMatrix",
            crate::tile::TileError::CoordOutOfRange { axis: 'x', .. } => "tileCol",
            crate::tile::TileError::CoordOutOfRange { .. } => "tileRow",
        };
        Problem::bad_parameter(parameter, error.to_string())
    })?;
    tile_response(
        &state,
        &source,
        tile,
        1,
        format,
        RequestOptions::default(),
        &headers,
    )
    .await
}

/// `GET /ogc/tileMatrixSets`.
pub(super) async fn tile_matrix_sets(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let document = tiles_api::tile_matrix_sets(&base_url(&state, &headers));
    json_response(&state, &headers, &document, JSON)
}

/// `GET /ogc/tileMatrixSets/{tileMatrixSetId}`.
pub(super) async fn tile_matrix_set(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(set) = path.map_err(|rejection| path_problem(&rejection))?;
    let document = matrix_set::to_json(find_matrix_set(&set)?);
    Ok(json_response(&state, &headers, &document, JSON))
}

fn vector_collection(state: &AppState, id: &str) -> Result<Arc<Source>, Problem> {
    let source = find_source(state, id)?;
    if has_items(&source) {
        Ok(source)
    } else {
        Err(Problem::not_found(format!(
            "collection {id:?} has tiles but no features: features are served for vector files"
        )))
    }
}

/// `GET /ogc/collections/{id}/items`, with `bbox`, `datetime`, `limit` and `offset`.
pub(super) async fn items(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(id) = path.map_err(|rejection| path_problem(&rejection))?;
    let Query(pairs) =
        query.map_err(|rejection| Problem::bad_parameter("query", rejection.body_text()))?;
    let source = vector_collection(&state, &id)?;
    let mut query = features::parse_items_query(&pairs)
        .map_err(|error| Problem::bad_parameter(error.parameter, error.to_string()))?;
    let requested_bbox = crate::access::widen_items_bbox(&source, &mut query.bbox);
    let items_url = format!("{}/ogc/collections/{id}/items", base_url(&state, &headers));
    let redacted = Arc::clone(&source);
    let mut document = state
        .workers
        .run(move || items_page(&source, &query, &items_url))
        .await
        .map_err(|error| {
            tracing::error!(collection = %id, %error, "features query failed");
            Problem::internal(format!("querying the features of {id:?} failed: {error}"))
        })?;
    crate::access::redact_features(&redacted, &mut document);
    crate::access::keep_in_bbox(&mut document, requested_bbox);
    Ok(json_response(&state, &headers, &document, GEOJSON))
}

/// Finds the features of one page: runs on a worker, because a bbox or datetime filter may
/// visit many features.
fn items_page(source: &Source, query: &ItemsQuery, items_url: &str) -> Value {
    let Backend::Vector(vector) = &source.backend else {
        return features::items_document(items_url, query, &[], 0, &time_stamp());
    };
    let mut found = vector.find_features(query.bbox.as_ref());
    if let Some(interval) = &query.datetime {
        found.retain(|feature| {
            features::matches_datetime(&vector.feature_properties(*feature), interval)
        });
    }
    let page: Vec<Value> = found
        .iter()
        .skip(query.offset)
        .take(query.limit)
        .map(|feature| vector.feature_geojson(*feature))
        .collect();
    features::items_document(items_url, query, &page, found.len(), &time_stamp())
}

fn time_stamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `GET /ogc/collections/{id}/items/{featureId}`.
pub(super) async fn item(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path((id, feature_id)) = path.map_err(|rejection| path_problem(&rejection))?;
    let source = vector_collection(&state, &id)?;
    let Backend::Vector(vector) = &source.backend else {
        return Err(Problem::internal(format!(
            "collection {id:?} lost its vector backend"
        )));
    };
    let not_found =
        || Problem::not_found(format!("collection {id:?} has no feature {feature_id:?}"));
    let feature = feature_id
        .parse::<usize>()
        .ok()
        .and_then(|index| vector.feature_by_id(index))
        .ok_or_else(not_found)?;
    let mut document = vector.feature_geojson(feature);
    if crate::access::redact_features(&source, &mut document) {
        return Err(not_found());
    }
    let base = base_url(&state, &headers);
    document["links"] = serde_json::json!([
        { "rel": "self", "type": GEOJSON, "href": format!("{base}/ogc/collections/{id}/items/{feature_id}") },
        { "rel": "collection", "type": JSON, "href": format!("{base}/ogc/collections/{id}") },
    ]);
    Ok(json_response(&state, &headers, &document, GEOJSON))
}
