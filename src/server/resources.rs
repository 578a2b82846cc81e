//! Style resources: glyph ranges (`/fonts/{fontstack}/{start}-{end}.pbf`), the list of fonts
//! (`/fonts`) and sprite sheets (`/sprites/{id}[@2x].{png,json}`).

use std::path::Path as FilePath;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::problem::Problem;
use super::tiles::path_problem;
use super::{AppState, cached_response};
use crate::glyphs::{GlyphError, parse_range};
use crate::sprites::{self, Sprites};

/// Builds the sprite sheets of `{styles}/icons/` on a blocking thread. A missing or empty
/// folder serves no sprites, and is logged.
pub(super) async fn load_sprites(styles: &FilePath) -> Option<Sprites> {
    let folder = styles.join("icons");
    if !folder.is_dir() {
        tracing::info!(folder = %folder.display(), "no icon folder: no sprites are served");
        return None;
    }
    let built = tokio::task::spawn_blocking({
        let folder = folder.clone();
        move || sprites::build(&folder)
    })
    .await;
    match built {
        Ok(Ok(sprites)) => {
            tracing::info!(folder = %folder.display(), icons = sprites.names.len(), "sprites built");
            Some(sprites)
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "sprites not built");
            None
        }
        Err(error) => {
            tracing::error!(folder = %folder.display(), %error, "building sprites panicked");
            None
        }
    }
}

/// `GET /fonts`: the names that fontstacks can use.
pub(super) async fn font_list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let glyphs = state.glyphs.clone();
    let names = state
        .workers
        .run(move || glyphs.font_names())
        .await
        .map_err(|error| {
            tracing::error!(%error, "listing fonts failed");
            Problem::internal(format!("listing fonts failed: {error}"))
        })?;
    let body = json!({ "fonts": names }).to_string();
    Ok(cached_response(
        &state,
        &headers,
        body.into_bytes(),
        "application/json",
    ))
}

/// `GET /fonts/{fontstack}/{start}-{end}.pbf`.
pub(super) async fn glyph_range(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path((fontstack, file)) = path.map_err(|rejection| path_problem(&rejection))?;
    let range = file.strip_suffix(".pbf").ok_or_else(|| {
        Problem::bad_parameter("range", GlyphError::InvalidRange(file.clone()).to_string())
    })?;
    let (start, end) =
        parse_range(range).map_err(|error| Problem::bad_parameter("range", error.to_string()))?;
    let glyphs = state.glyphs.clone();
    let stack = fontstack.clone();
    let pbf = state
        .workers
        .run(move || glyphs.range_pbf(&stack, start, end))
        .await
        .map_err(|error| {
            tracing::error!(%fontstack, start, %error, "glyph job failed");
            Problem::internal(format!(
                "rendering glyphs {start}-{end} of {fontstack:?} failed: {error}"
            ))
        })?
        .map_err(|error| match error {
            GlyphError::UnknownFont(_) => Problem::not_found(error.to_string()),
            GlyphError::InvalidFontstack(_) => {
                Problem::bad_parameter("fontstack", error.to_string())
            }
            GlyphError::InvalidRange(_) => Problem::bad_parameter("range", error.to_string()),
            GlyphError::Render { .. } => Problem::internal(error.to_string()),
        })?;
    Ok(cached_response(
        &state,
        &headers,
        pbf,
        "application/x-protobuf",
    ))
}

/// `GET /sprites/{file}`: `icons.png`, `icons.json`, `icons@2x.png` or `icons@2x.json`.
pub(super) async fn sprite(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Path(file) = path.map_err(|rejection| path_problem(&rejection))?;
    let Some(sprites) = state.sprites.as_ref() else {
        return Err(Problem::not_found(format!(
            "no sprite {file:?}: this server has no icons; add SVG files to {}",
            state.config.styles.join("icons").display()
        )));
    };
    let (bytes, media_type) = sprites.file(&file).ok_or_else(|| {
        Problem::not_found(format!(
            "no sprite file {file:?}: use {id}.png, {id}.json, {id}@2x.png or {id}@2x.json",
            id = sprites::SPRITE_ID
        ))
    })?;
    Ok(cached_response(
        &state,
        &headers,
        bytes.to_vec(),
        media_type,
    ))
}
