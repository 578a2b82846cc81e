//! A static map request rendered as a one-map PDF: the scene built at the imagery density
//! the page needs, the provenance gathered from what the scene drew, and the page written.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::provenance::{FileRecord, Provenance, RequestRecord, file_sha256};
use super::text::TextError;
use super::{PdfError, PdfOptions, PdfWriter};
use crate::glyphs::GlyphCache;
use crate::map::scene::{EnhancementUsed, FontFace, Scene};
use crate::map::{Limits, MapContext, MapError, MapRequest};

/// Returns `request` with the `dpi` its scene must be built at, so that imagery printed on
/// `pdf`'s page has `pdf.dpi` pixels per inch. The scene's raster density is `dpi / 96`
/// device pixels per page unit, and the page scales each page unit to `scale` points.
pub fn print_request(request: &MapRequest, pdf: &PdfOptions) -> Result<MapRequest, PdfError> {
    let ratio = pdf.imagery_pixel_ratio(f64::from(request.width), f64::from(request.height))?;
    let mut print = request.clone();
    print.options.dpi = ratio * 96.0 / f64::from(request.ratio.max(1));
    Ok(print)
}

/// Returns the page set-up of a PDF request: its page, margin and imagery density.
pub fn pdf_options(request: &MapRequest) -> PdfOptions {
    PdfOptions {
        page: request.options.page,
        margin: request.options.margin,
        dpi: request.options.dpi,
    }
}

/// Rejects a PDF request whose imagery at print density would exceed `max_pixels`.
pub fn check_print_pixels(request: &MapRequest, limits: &Limits) -> Result<(), MapError> {
    let print = print_request(request, &pdf_options(request))?;
    let pixels = print.pixel_count();
    if pixels > limits.max_pixels {
        return Err(MapError::TooManyPixels {
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// Font names tried, in order, for the PDF's own text (provenance, index, page numbers): each
/// covers Hangul and Latin.
const TEXT_FONTS: [&str; 3] = [
    "Noto Sans CJK KR Regular",
    "NanumGothic Regular",
    "Noto Sans KR Regular",
];

/// Finds the face for the PDF's own text among the fonts the glyph cache found.
pub fn text_face(glyphs: &GlyphCache) -> Result<FontFace, PdfError> {
    TEXT_FONTS
        .iter()
        .find_map(|name| glyphs.face_file(name))
        .map(|(path, index)| FontFace { path, index })
        .ok_or_else(|| {
            PdfError::Text(TextError::NoDefaultFont {
                folders: format!(
                    "the configured font folders (tried {})",
                    TEXT_FONTS.join(", ")
                ),
            })
        })
}

/// Builds the scene of `request` and writes it as a PDF of the request's page set-up, with
/// the provenance block. The pixel limit applies to the imagery at print density, and the
/// time limit to the whole job from `started`. Blocking: run it on `worker::Workers`.
pub fn render_pdf(
    context: &MapContext,
    request: &MapRequest,
    limits: &Limits,
    started: Instant,
) -> Result<Vec<u8>, MapError> {
    let deadline = started + limits.timeout;
    let timed_out = || MapError::TimedOut {
        seconds: limits.timeout.as_secs_f64(),
    };
    let pdf = pdf_options(request);
    check_print_pixels(request, limits)?;
    let print = print_request(request, &pdf)?;
    let scene =
        crate::map::build_scene(context, &print, deadline).map_err(|error| match error {
            MapError::TimedOut { .. } => timed_out(),
            other => other,
        })?;
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let rendered_at = super::provenance::rendering_time();
    let provenance = provenance_of(&scene, request, rendered_at);
    let face = text_face(&context.glyphs)?;
    let mut writer = PdfWriter::new(pdf, &face, scene.title.as_deref(), rendered_at, false)?;
    writer.add_map(&scene, &provenance)?;
    let bytes = writer.finish()?;
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    Ok(bytes)
}

/// Gathers the provenance of a scene: one record per file drawn, in the order the style drew
/// them, with the request that produced it.
pub fn provenance_of(
    scene: &Scene,
    request: &MapRequest,
    rendered_at: DateTime<Utc>,
) -> Provenance {
    let mut files: Vec<FileRecord> = Vec::new();
    for used in &scene.sources {
        for path in &used.files {
            let dates = dates_of(used, path);
            if let Some(known) = files.iter_mut().find(|record| record.path == *path) {
                for date in dates {
                    if !known.dates.contains(&date) {
                        known.dates.push(date);
                    }
                }
                continue;
            }
            let side = side_facts(path);
            let dates = if dates.is_empty() {
                side.date.into_iter().collect()
            } else {
                dates
            };
            let source = match side.source {
                Some(origin) => format!("{} ({}); {origin}", used.name, used.id),
                None => format!("{} ({})", used.name, used.id),
            };
            files.push(FileRecord {
                path: path.clone(),
                sha256: digest_or_reason(path),
                dates,
                source,
                attribution: used.attribution.clone(),
                enhancement: used.enhancement.as_ref().map(describe_enhancement),
            });
        }
    }
    Provenance {
        files,
        request: RequestRecord {
            style: request.style.clone(),
            extent: scene.georeference.lonlat_bounds,
            zoom: scene.georeference.zoom,
            date: request.options.date.map(|date| date.to_string()),
        },
        rendered_at,
    }
}

/// Returns the dates of the scenes shown from `path`. A source with one file keeps every
/// scene date it reports, even when the scenes name other paths.
fn dates_of(used: &crate::map::scene::SourceUse, path: &Path) -> Vec<String> {
    let mut dates: Vec<String> = used
        .scenes
        .iter()
        .filter(|shown| shown.file == path)
        .map(|shown| shown.date.clone())
        .collect();
    if dates.is_empty() && used.files.len() == 1 {
        dates = used.scenes.iter().map(|shown| shown.date.clone()).collect();
    }
    dates.sort();
    dates.dedup();
    dates
}

/// Facts about a file from its side file (`STEM.toml`): the acquisition date and where the
/// data came from.
#[derive(Debug, Default)]
struct SideFacts {
    date: Option<String>,
    source: Option<String>,
}

/// Reads `date` and `source` from the side file beside `path`, for single files whose scene
/// carries no date of its own.
// NOTE: a source configured in tessera.toml instead of a side file has its options there,
// which this does not read, so such a file's date shows as "not applicable".
fn side_facts(path: &Path) -> SideFacts {
    let Ok(Some(side)) = crate::config::sidecar(path) else {
        return SideFacts::default();
    };
    let text = |key: &str| {
        side.options
            .get(key)
            .and_then(|value| match value {
                toml::Value::String(text) => Some(text.clone()),
                toml::Value::Datetime(date) => Some(date.to_string()),
                _ => None,
            })
            .filter(|text| !text.trim().is_empty())
    };
    SideFacts {
        date: text("date"),
        source: text("source"),
    }
}

/// Returns the file's SHA-256, or the reason it could not be computed, so that the block
/// states a missing digest instead of leaving it out.
fn digest_or_reason(path: &Path) -> String {
    match file_sha256(path) {
        Ok(digest) => digest,
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "source file not hashed for the provenance block");
            format!("not computed: {error}")
        }
    }
}

fn describe_enhancement(enhancement: &EnhancementUsed) -> String {
    format!(
        "{}, drawn {:.1} times finer than the scene's {:.1} m pixels",
        enhancement.steps, enhancement.factor, enhancement.native_resolution_m
    )
}

impl From<PdfError> for MapError {
    fn from(error: PdfError) -> Self {
        MapError::Pdf(error.to_string())
    }
}
