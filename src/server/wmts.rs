//! WMTS 1.0.0 routes in KVP form (`/wmts`) and RESTful form (`/wmts/1.0.0/…`), and the TMS
//! routes: the TileMapService (`/tms/1.0.0`), TileMaps (`/tms/1.0.0/{source}`) and tiles
//! (`/tms/1.0.0/{source}/{z}/{x}/{y}.{ext}`, rows counted from the south).

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::problem::Problem;
use super::tiles::{
    RequestOptions, find_source, parse_coordinate, parse_tile_name, path_problem, tile_response,
};
use super::{AppState, base_url, cached_response};
use crate::collection::Period;
use crate::ogc::LayerDescription;
use crate::ogc::wmts::{self, Exception, ExceptionCode, GetTile, Request};
use crate::source::Source;
use crate::tile::TileCoord;

const XML: &str = "application/xml";

/// A WMTS error response: an OWS exception report, or a problem from the shared tile code
/// (a tile outside the data, a timeout).
pub(super) enum WmtsError {
    Exception(Exception),
    Problem(Problem),
}

impl From<Exception> for WmtsError {
    fn from(exception: Exception) -> Self {
        Self::Exception(exception)
    }
}

impl IntoResponse for WmtsError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(problem) => problem.into_response(),
            Self::Exception(exception) => {
                let status = StatusCode::from_u16(exception.code.http_status())
                    .unwrap_or(StatusCode::BAD_REQUEST);
                tracing::debug!(code = exception.code.as_str(), locator = %exception.locator, text = %exception.text, "WMTS exception");
                let mut response = (status, exception.to_xml()).into_response();
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(XML));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
        }
    }
}

fn layers(state: &AppState) -> Vec<LayerDescription> {
    state
        .catalog
        .iter()
        .map(|source| LayerDescription::from_source(source))
        .collect()
}

fn capabilities_response(state: &AppState, headers: &HeaderMap) -> Response {
    let xml = wmts::capabilities(
        &layers(state),
        &base_url(state, headers),
        &crate::access::key_query(),
    );
    cached_response(state, headers, xml.into_bytes(), XML)
}

/// `GET /wmts?SERVICE=WMTS&REQUEST=…`.
pub(super) async fn kvp(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WmtsError> {
    let Query(pairs) = query.map_err(|rejection| {
        Exception::new(
            ExceptionCode::InvalidParameterValue,
            "query",
            format!("invalid query string: {}", rejection.body_text()),
        )
    })?;
    match wmts::parse_kvp(&pairs)? {
        Request::GetCapabilities => Ok(capabilities_response(&state, &headers)),
        Request::GetTile(request) => get_tile(&state, &request, &headers).await,
    }
}

/// `GET /wmts/1.0.0/WMTSCapabilities.xml`.
pub(super) async fn rest_capabilities(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    capabilities_response(&state, &headers)
}

/// `GET /wmts/1.0.0/{layer}/{style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.{ext}`,
/// and for layers with a TIME dimension
/// `GET /wmts/1.0.0/{layer}/{style}/{Time}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.{ext}`.
pub(super) async fn rest_tile(
    State(state): State<AppState>,
    path: Result<Path<RestTilePath>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, WmtsError> {
    let Path(path) = path.map_err(|rejection| WmtsError::Problem(path_problem(&rejection)))?;
    let request = rest_request(path)?;
    get_tile(&state, &request, &headers).await
}

/// The segments of a RESTful GetTile URL.
#[derive(Debug, Deserialize)]
pub(super) struct RestTilePath {
    layer: String,
    style: String,
    /// Only in the template of dated layers.
    time: Option<String>,
    set: String,
    matrix: String,
    row: String,
    /// `{TileCol}.{ext}`.
    col: String,
}

fn rest_request(path: RestTilePath) -> Result<GetTile, Exception> {
    let (tile_col, extension) = path.col.rsplit_once('.').ok_or_else(|| {
        Exception::new(
            ExceptionCode::InvalidParameterValue,
            "FORMAT",
            format!(
                "tile {:?} has no extension: add the format's, such as .png or .pbf",
                path.col
            ),
        )
    })?;
    Ok(GetTile {
        layer: path.layer,
        style: path.style,
        format: extension.to_owned(),
        matrix_set: path.set,
        tile_matrix: path.matrix,
        tile_row: path.row,
        tile_col: tile_col.to_owned(),
        time: path.time,
    })
}

fn find_layer(state: &AppState, id: &str) -> Result<Arc<Source>, Exception> {
    state.catalog.get(id).cloned().ok_or_else(|| {
        Exception::new(
            ExceptionCode::InvalidParameterValue,
            "LAYER",
            format!("unknown layer {id:?}: see the layers in /wmts/1.0.0/WMTSCapabilities.xml"),
        )
    })
}

async fn get_tile(
    state: &AppState,
    request: &GetTile,
    headers: &HeaderMap,
) -> Result<Response, WmtsError> {
    let source = find_layer(state, &request.layer)?;
    let layer = LayerDescription::from_source(&source);
    let checked = wmts::check_get_tile(request, &layer)?;
    // The TIME value is one of `Source::dates`, checked above, so it parses as a date.
    let date = match request.time.as_deref() {
        None => None,
        Some(time) => Some(time.parse::<Period>().map_err(|message| {
            Exception::new(ExceptionCode::InvalidParameterValue, "TIME", message)
        })?),
    };
    let options = RequestOptions {
        date,
        ..RequestOptions::default()
    };
    tile_response(
        state,
        &source,
        checked.tile,
        1,
        checked.format,
        options,
        headers,
    )
    .await
    .map_err(WmtsError::Problem)
}

/// `GET /tms/1.0.0`: the TileMapService document.
pub(super) async fn tms_service(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let xml = crate::ogc::tms::tile_map_service(&layers(&state), &base_url(&state, &headers));
    cached_response(&state, &headers, xml.into_bytes(), XML)
}

/// `GET /tms/1.0.0/{source}`: the TileMap document of one source.
pub(super) async fn tms_tile_map(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(id) = path.map_err(|rejection| path_problem(&rejection))?;
    let source = find_source(&state, &id)?;
    let layer = LayerDescription::from_source(&source);
    let xml = crate::ogc::tms::tile_map(&layer, &base_url(&state, &headers));
    Ok(cached_response(&state, &headers, xml.into_bytes(), XML))
}

/// `GET /tms/1.0.0/{source}/{z}/{x}/{name}`: TMS addressing, where row 0 is the southernmost.
pub(super) async fn tms_tile(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path((id, z, x, name)) = path.map_err(|rejection| path_problem(&rejection))?;
    let source = find_source(&state, &id)?;
    let z = parse_coordinate("z", &z)?;
    let x = parse_coordinate("x", &x)?;
    let tile_name = parse_tile_name(&name)?;
    let tile = TileCoord::from_tms(u32::try_from(z).unwrap_or(u32::MAX), x, tile_name.y).map_err(
        |error| {
            let parameter = match &error {
                crate::tile::TileError::ZoomOutOfRange(_) => "z",
                crate::tile::TileError::CoordOutOfRange { axis: 'x', .. } => "x",
                crate::tile::TileError::CoordOutOfRange { .. } => "y",
            };
            Problem::bad_parameter(parameter, error.to_string())
        },
    )?;
    if !source.serves_format(tile_name.format) {
        return Err(Problem::bad_parameter(
            "format",
            format!(
                "source {id:?} does not serve .{} tiles: use .{}",
                tile_name.format,
                source.format().extension()
            ),
        ));
    }
    tile_response(
        &state,
        &source,
        tile,
        tile_name.scale,
        tile_name.format,
        RequestOptions::default(),
        &headers,
    )
    .await
}
