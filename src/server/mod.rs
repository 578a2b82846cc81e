//! The HTTP server: routes, shared state, caching headers, CORS and metrics.

mod density;
pub mod guard;
mod metrics;
mod models;
mod ogc_api;
pub(crate) mod problem;
mod resources;
pub(crate) mod static_map;
mod tiles;
mod wmts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

pub use self::problem::Problem;
pub use self::tiles::parse_tile_request;
pub use self::tiles::render_tile;
use crate::config::Config;
use crate::glyphs::GlyphCache;
use crate::source::{Catalog, LoadFailure};
use crate::sprites::Sprites;
use crate::worker::Workers;

/// The state shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub failures: Arc<Vec<LoadFailure>>,
    pub workers: Workers,
    pub config: Arc<Config>,
    pub started: Instant,
    /// Glyph ranges, rendered on first request.
    pub glyphs: Arc<GlyphCache>,
    /// Sprite sheets from `{styles}/icons/`, or `None` when the folder has no drawable icon.
    pub sprites: Arc<Option<Sprites>>,
    /// Access policy, keys and rate limits.
    pub access: crate::access::AccessState,
    /// Tiles rendering and waiting per source.
    pub limits: Arc<guard::SourceLimits>,
    /// The disk tile cache of `[cache]`, if configured and opened.
    pub tile_cache: Option<Arc<crate::cache::TileCache>>,
    /// The memory tile cache of `[cache] memory_mb`, unless it is 0.
    pub memory_cache: Option<crate::cache::MemoryCache>,
    /// Tiles being rendered now, shared by concurrent requests of the same tile.
    pub flights: Arc<tiles::TileFlights>,
    /// Whether `/health` lists the files of `failures` only to requests with a key, because
    /// the server has private data and a failed file may be one of its sources.
    pub failures_need_key: bool,
}

impl AppState {
    /// Loads every source of `config` and starts the worker pool. Files that cannot be served
    /// are logged and kept in `failures`; they do not stop the others.
    pub async fn load(config: Config) -> Result<Self, crate::worker::WorkerError> {
        let started = Instant::now();
        crate::raster::configure_gdal(config.gdal_cache_mb);
        crate::remote::configure_gdal(&config.remote);
        let (catalog, mut failures) = crate::source::load_catalog(&config).await;
        let sprites = resources::load_sprites(&config.styles).await;
        let workers = Workers::new(config.workers)?;
        let limits = guard::SourceLimits::new(
            &catalog,
            workers.threads(),
            config.source_concurrency,
            config.source_queue,
        );
        let tile_cache = tiles::open_tile_cache(&config, &mut failures).await;
        let failures_need_key = has_private_data(&config, &catalog);
        Ok(Self {
            limits: Arc::new(limits),
            catalog: Arc::new(catalog),
            failures: Arc::new(failures),
            workers,
            glyphs: Arc::new(GlyphCache::new(config.fonts.clone())),
            sprites: Arc::new(sprites),
            access: crate::access::AccessState::new(config.access.clone()),
            tile_cache,
            memory_cache: crate::cache::MemoryCache::new(config.cache.memory_mb),
            flights: Arc::default(),
            failures_need_key,
            config: Arc::new(config),
            started,
        })
    }
}

/// Returns whether the server may hold private sources: private by default, keys, groups,
/// or a loaded source that is private. Run outside any request, so that every source counts.
fn has_private_data(config: &Config, catalog: &Catalog) -> bool {
    let policy = &config.access;
    policy.default == crate::access::Visibility::Private
        || policy.keys_file.is_some()
        || !policy.groups.is_empty()
        || catalog.iter().any(|source| {
            source.access.visibility.unwrap_or(policy.default) == crate::access::Visibility::Private
        })
}

/// Builds the router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(viewer_index))
        .route("/viewer/{file}", get(viewer_asset))
        .route("/styles/{file}", get(style))
        .route("/fonts", get(resources::font_list))
        .route("/fonts/{fontstack}/{range}", get(resources::glyph_range))
        .route("/sprites/{file}", get(resources::sprite))
        .route("/catalog", get(catalog))
        .route("/health", get(health))
        .route("/metrics", get(metrics::render))
        .route("/tiles/{file}", get(tiles::get_tilejson))
        .route("/tiles/{source}/{z}/{x}/{name}", get(tiles::get_tile))
        .route("/models/{file}", get(models::get_model))
        .route("/static/{style}/{position}/{size}", get(static_map::get_static))
        .route("/tms/1.0.0", get(wmts::tms_service))
        .route("/tms/1.0.0/{source}", get(wmts::tms_tile_map))
        .route("/tms/1.0.0/{source}/{z}/{x}/{name}", get(wmts::tms_tile))
        .route("/wmts", get(wmts::kvp))
        .route("/wmts/1.0.0/WMTSCapabilities.xml", get(wmts::rest_capabilities))
        .route("/wmts/1.0.0/{layer}/{style}/{set}/{matrix}/{row}/{col}", get(wmts::rest_tile))
        .route("/wmts/1.0.0/{layer}/{style}/{time}/{set}/{matrix}/{row}/{col}", get(wmts::rest_tile))
        .route("/ogc", get(ogc_api::landing))
        .route("/ogc/api", get(ogc_api::openapi))
        .route("/ogc/conformance", get(ogc_api::conformance))
        .route("/ogc/collections", get(ogc_api::collections))
        .route("/ogc/collections/{id}", get(ogc_api::collection))
        .route("/ogc/collections/{id}/items", get(ogc_api::items))
        .route("/ogc/collections/{id}/items/{feature}", get(ogc_api::item))
        .route("/ogc/collections/{id}/tiles", get(ogc_api::tilesets))
        .route("/ogc/collections/{id}/tiles/{set}", get(ogc_api::tileset))
        .route("/ogc/collections/{id}/tiles/{set}/{z}/{row}/{col}", get(ogc_api::tile))
        .route("/ogc/tileMatrixSets", get(ogc_api::tile_matrix_sets))
        .route("/ogc/tileMatrixSets/{set}", get(ogc_api::tile_matrix_set))
        .route("/density/{source}/legend.json", get(density::get_legend))
        .route_layer(middleware::from_fn(guard::decodable_segments))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::request_timeout,
        ))
        .layer(middleware::from_fn(guard::retry_after_on_unavailable))
        .layer(middleware::from_fn(metrics::record))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::info_span!("request", method = %request.method(), route, uri = %request.uri())
            }),
        )
        .layer(middleware::from_fn_with_state(
            state.access.clone(),
            crate::access::middleware,
        ))
        .layer(middleware::from_fn(crate::access::security_headers))
        .layer(CorsLayer::permissive().expose_headers([
            header::ETAG,
            header::CONTENT_ENCODING,
            header::HeaderName::from_static(crate::enhance::HEADER),
            header::HeaderName::from_static("tessera-date"),
            header::HeaderName::from_static(crate::vector::DROPPED_FEATURES_HEADER),
        ]))
        .with_state(state)
}

/// Most connections served at once; further clients wait in the listen queue.
const MAX_CONNECTIONS: usize = 4096;

/// Serves HTTP/1.1 on `listener` until Ctrl-C or SIGTERM, then lets open requests finish.
///
/// A client must send its request header within `header_timeout` seconds, so connections
/// that trickle bytes (slowloris) are closed, and at most `MAX_CONNECTIONS` are open at once.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let header_timeout = Duration::from_secs_f64(state.config.header_timeout);
    let tile_timeout = Duration::from_secs_f64(state.config.tile_timeout);
    let workers = state.workers.clone();
    let app = router(state);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // For example out of file descriptors: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The client's address, for the rate limits per address.
        let with_peer = tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(with_peer);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(guard::MAX_REQUEST_HEAD_BYTES);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open 10 s after the shutdown signal were dropped");
    }
    // Warps stop at their deadline, so the pool is idle within one tile timeout.
    if !workers
        .wait_idle(tile_timeout + Duration::from_secs(1))
        .await
    {
        tracing::warn!("worker jobs still running at exit");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Returns the base URL for links in responses: the configured public URL, else `http://` and the
/// request's `Host`.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Builds a 200 response with an ETag and Cache-Control, or a 304 when the client has these
/// bytes.
pub(crate) fn cached_response(
    state: &AppState,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
    media_type: &'static str,
) -> Response {
    cached_response_with_revision(state, headers, body, media_type, 0)
}

/// Builds a response as `cached_response` does, with an ETag that also depends on the
/// source's `revision`. Revision 0 gives the same ETag as `cached_response`.
pub(crate) fn cached_response_with_revision(
    state: &AppState,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
    media_type: &'static str,
    revision: u64,
) -> Response {
    // Archive tiles arrive as `Bytes` that borrow the memory map, so they are sent uncopied.
    let body: Bytes = body.into();
    let etag = format!(
        "\"{:016x}\"",
        xxhash_rust::xxh3::xxh3_64_with_seed(&body, revision)
    );
    let cache_control = format!("public, max-age={}", state.config.cache_max_age);
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
        body.into_response()
    };
    let response_headers = response.headers_mut();
    if !matches {
        response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    }
    response_headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache_control).expect("ASCII is a valid header"),
    );
    response
}

async fn catalog(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let sources: Vec<_> = state
        .catalog
        .iter()
        .map(|source| source.catalog_entry(&base))
        .collect();
    let styles: Vec<_> = crate::styles::list(&state.config.styles)
        .into_iter()
        .map(|id| json!({ "id": id, "url": format!("{base}/styles/{id}.json") }))
        .collect();
    let body = json!({ "sources": sources, "styles": styles }).to_string();
    cached_response(&state, &headers, body.into_bytes(), "application/json")
}

async fn health(State(state): State<AppState>) -> Response {
    // A failed file's path may name a private source (a witness list, say). With private
    // data, only a request with a key gets the paths, and other requests get their number.
    let keyed = crate::access::current().is_some_and(|grant| grant.has_key());
    let hidden = state.failures_need_key && !keyed;
    let failures: Vec<_> = if hidden {
        Vec::new()
    } else {
        state
            .failures
            .iter()
            .map(|failure| json!({ "path": failure.path.display().to_string(), "reason": failure.reason }))
            .collect()
    };
    let hidden_failures = if hidden { state.failures.len() } else { 0 };
    let body = json!({
        "status": "ok",
        "sources": state.catalog.len(),
        "failed_sources": failures,
        "failed_sources_hidden": hidden_failures,
        "workers": state.workers.threads(),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!(
        "no route for {}: see /catalog",
        request.uri().path()
    ))
}

async fn viewer_index() -> Response {
    viewer_response("index.html")
}

async fn viewer_asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    viewer_response(&file)
}

fn viewer_response(file: &str) -> Response {
    match crate::viewer::asset(file) {
        Some(asset) => {
            let mut response = asset.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.media_type),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => Problem::not_found(format!("no viewer file {file:?}")).into_response(),
    }
}

async fn style(
    State(state): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = file.strip_suffix(".json").unwrap_or(&file);
    let base = base_url(&state, &headers);
    let style =
        crate::styles::load(&state.config.styles, id, &base).map_err(|error| match error {
            crate::styles::StyleError::NotFound(_) | crate::styles::StyleError::InvalidId(_) => {
                Problem::not_found(error.to_string())
            }
            other => Problem::internal(other.to_string()),
        })?;
    let style = crate::access::filtered_style(&style, &state.catalog, &base)
        .map_err(|error| Problem::internal(format!("style {id:?}: {error}")))?;
    Ok(cached_response(
        &state,
        &headers,
        style.into_bytes(),
        "application/json",
    ))
}
