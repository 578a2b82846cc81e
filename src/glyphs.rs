//! Glyph ranges for MapLibre labels: signed distance field (SDF) glyphs in the protobuf format
//! of MapLibre's `glyphs` URL (`/fonts/{fontstack}/{start}-{end}.pbf`), rendered with FreeType
//! from TrueType and OpenType fonts found on the system.
//!
//! The font folders are scanned on the first request, and each range of each font is rendered
//! on first use and kept in memory, up to [`MAX_CACHED_RANGES`] ranges. A fontstack of several fonts takes each glyph from
//! the first font that has it, so a Latin font can fall back to a Korean one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pbf_font_tools::prost::Message;
use pbf_font_tools::{Fontstack, Glyphs, freetype};
use thiserror::Error;

use crate::server::problem::shortened;

/// Font size that glyphs are rendered at, in pixels, as MapLibre expects.
const FONT_SIZE: usize = 24;
/// Distance from the outline, in pixels, over which the SDF is recorded.
const SDF_RADIUS: usize = 8;
/// Share of the byte range given to distances inside the outline.
const SDF_CUTOFF: f64 = 0.25;
/// Most fonts named in one fontstack; more are rejected to bound a request's work.
const MAX_FONTS_PER_STACK: usize = 8;
/// Maximum number of font ranges kept in memory; beyond it the oldest is dropped. A range of
/// 256 Hangul syllables from Noto Sans CJK is about 190 kB, so the cache uses about 100 MB.
const MAX_CACHED_RANGES: usize = 512;
/// Font file extensions read, lower case.
const FONT_EXTENSIONS: [&str; 4] = ["ttf", "otf", "ttc", "otc"];

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum GlyphError {
    #[error(
        "invalid glyph range {0:?}: use START-END.pbf with START a multiple of 256 and END = START + 255, up to 65535"
    )]
    InvalidRange(String),
    #[error("no font of {0:?} is installed: see /fonts for the fonts served")]
    UnknownFont(String),
    #[error("invalid fontstack {0:?}: name 1 to {MAX_FONTS_PER_STACK} fonts, separated by commas")]
    InvalidFontstack(String),
    #[error("rendering glyphs {start}-{end} of font {font:?} from {path} failed: {message}")]
    Render {
        font: String,
        path: PathBuf,
        start: u32,
        end: u32,
        message: String,
    },
}

/// Parses `{start}-{end}`: 256 code points starting at a multiple of 256.
pub fn parse_range(text: &str) -> Result<(u32, u32), GlyphError> {
    let invalid = || GlyphError::InvalidRange(text.to_owned());
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let digits = |part: &str| {
        !part.is_empty() && part.len() <= 5 && part.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(start) || !digits(end) {
        return Err(invalid());
    }
    let start: u32 = start.parse().map_err(|_| invalid())?;
    let end: u32 = end.parse().map_err(|_| invalid())?;
    if !start.is_multiple_of(256) || end != start + 255 || end > 65_535 {
        return Err(invalid());
    }
    Ok((start, end))
}

/// A face in a font file: the file and the face's index in it (collections hold several).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FaceLocation {
    path: PathBuf,
    index: isize,
}

type RenderedRange = Result<Arc<Fontstack>, GlyphError>;
/// A rendered range, or an empty cell while the first request for it renders it.
type RangeCell = Arc<OnceLock<RenderedRange>>;

/// The fonts of the configured folders and the glyph ranges rendered from them so far.
#[derive(Debug)]
pub struct GlyphCache {
    folders: Vec<PathBuf>,
    /// Faces by name ("family style", as FreeType reports them), scanned on first use.
    faces: OnceLock<BTreeMap<String, FaceLocation>>,
    ranges: Mutex<RangeCells>,
}

/// Rendered ranges by font name and range start, at most [`MAX_CACHED_RANGES`], oldest first
/// out. Each cell is filled once, so concurrent requests for one range render it once.
#[derive(Debug, Default)]
struct RangeCells {
    cells: HashMap<(String, u32), RangeCell>,
    order: VecDeque<(String, u32)>,
}

impl RangeCells {
    fn cell(&mut self, key: (String, u32)) -> RangeCell {
        if let Some(cell) = self.cells.get(&key) {
            return Arc::clone(cell);
        }
        if self.order.len() >= MAX_CACHED_RANGES
            && let Some(oldest) = self.order.pop_front()
        {
            // A request still rendering the dropped range keeps its own handle to the cell.
            self.cells.remove(&oldest);
        }
        let cell = RangeCell::default();
        self.order.push_back(key.clone());
        self.cells.insert(key, Arc::clone(&cell));
        cell
    }
}

/// Maximum number of characters of a requested fontstack that an error message repeats.
const MAX_ECHOED_CHARS: usize = 120;

impl GlyphCache {
    pub fn new(folders: Vec<PathBuf>) -> Self {
        Self {
            folders,
            faces: OnceLock::new(),
            ranges: Mutex::new(RangeCells::default()),
        }
    }

    /// Returns the names of the fonts found, sorted. The first call scans the font folders.
    pub fn font_names(&self) -> Vec<String> {
        self.faces().keys().cloned().collect()
    }

    /// Returns the file and face index of the font named `name` ("family style"), for
    /// drawing text outside glyph ranges. The first call scans the font folders.
    pub fn face_file(&self, name: &str) -> Option<(PathBuf, u32)> {
        let face = self.faces().get(name)?;
        Some((face.path.clone(), u32::try_from(face.index).ok()?))
    }

    /// Returns the font names and range starts rendered so far, sorted.
    pub fn rendered_ranges(&self) -> Vec<(String, u32)> {
        let ranges = self
            .ranges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut keys: Vec<(String, u32)> = ranges
            .cells
            .iter()
            .filter(|(_, cell)| matches!(cell.get(), Some(Ok(_))))
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        keys
    }

    fn faces(&self) -> &BTreeMap<String, FaceLocation> {
        self.faces.get_or_init(|| {
            let faces = scan_folders(&self.folders);
            tracing::info!(fonts = faces.len(), folders = ?self.folders, "fonts found");
            faces
        })
    }

    /// Builds the glyph range `start`-`end` of `fontstack` (font names separated by commas) as
    /// protobuf bytes. Blocking: rendering a range of 256 CJK glyphs takes a while.
    pub fn range_pbf(&self, fontstack: &str, start: u32, end: u32) -> Result<Vec<u8>, GlyphError> {
        let names: Vec<&str> = fontstack.split(',').map(str::trim).collect();
        if names.len() > MAX_FONTS_PER_STACK || names.iter().any(|name| name.is_empty()) {
            return Err(GlyphError::InvalidFontstack(shortened(
                fontstack,
                MAX_ECHOED_CHARS,
            )));
        }
        let faces = self.faces();
        let mut stacks = Vec::with_capacity(names.len());
        // A font of the stack that is not installed is left out, because fallbacks may be
        // missing. The stack fails only when none of its fonts is installed.
        for name in &names {
            if let Some(face) = faces.get(*name) {
                stacks.push(self.rendered(name, face, start, end)?);
            }
        }
        if stacks.is_empty() {
            return Err(GlyphError::UnknownFont(shortened(
                fontstack,
                MAX_ECHOED_CHARS,
            )));
        }
        let mut combined = pbf_font_tools::combine_glyphs(
            stacks
                .iter()
                .map(|stack| Glyphs {
                    stacks: vec![Fontstack::clone(stack)],
                })
                .collect(),
        )
        .unwrap_or_default();
        // MapLibre identifies a stack by the name it requested and the range by its URL.
        let stack = Fontstack {
            name: names.join(","),
            range: format!("{start}-{end}"),
            glyphs: combined.stacks.pop().map(|s| s.glyphs).unwrap_or_default(),
        };
        Ok(Glyphs {
            stacks: vec![stack],
        }
        .encode_to_vec())
    }

    fn rendered(&self, name: &str, face: &FaceLocation, start: u32, end: u32) -> RenderedRange {
        let cell = {
            let mut ranges = self
                .ranges
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ranges.cell((name.to_owned(), start))
        };
        cell.get_or_init(|| {
            let started = std::time::Instant::now();
            let result = render_range(face, start, end).map(Arc::new).map_err(|message| {
                tracing::error!(font = name, path = %face.path.display(), start, end, %message, "glyph rendering failed");
                GlyphError::Render {
                    font: name.to_owned(),
                    path: face.path.clone(),
                    start,
                    end,
                    message,
                }
            });
            tracing::debug!(font = name, start, elapsed_ms = started.elapsed().as_millis(), "glyph range rendered");
            result
        })
        .clone()
    }
}

fn render_range(face: &FaceLocation, start: u32, end: u32) -> Result<Fontstack, String> {
    let library = freetype::Library::init().map_err(|error| error.to_string())?;
    let face = library
        .new_face(&face.path, face.index)
        .map_err(|error| error.to_string())?;
    pbf_font_tools::glyph_range_for_face(&face, start, end, FONT_SIZE, SDF_RADIUS, SDF_CUTOFF)
        .map_err(|error| error.to_string())
}

/// Lists every face in the font files under `folders`, by "family style" name. When two
/// files have a face of the same name, the first found (in folder order, then path order)
/// is kept.
fn scan_folders(folders: &[PathBuf]) -> BTreeMap<String, FaceLocation> {
    let mut faces = BTreeMap::new();
    let library = match freetype::Library::init() {
        Ok(library) => library,
        Err(error) => {
            tracing::error!(%error, "FreeType failed to start: no fonts are served");
            return faces;
        }
    };
    for folder in folders {
        let mut files = Vec::new();
        collect_font_files(folder, &mut files);
        files.sort();
        for path in files {
            add_faces(&library, &path, &mut faces);
        }
    }
    faces
}

fn collect_font_files(folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        tracing::debug!(folder = %folder.display(), "font folder not readable");
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            collect_font_files(&path, files);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| FONT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            files.push(path);
        }
    }
}

fn add_faces(library: &freetype::Library, path: &Path, faces: &mut BTreeMap<String, FaceLocation>) {
    let mut index = 0;
    loop {
        let face = match library.new_face(path, index) {
            Ok(face) => face,
            Err(error) => {
                tracing::warn!(path = %path.display(), index, %error, "font face not readable");
                return;
            }
        };
        if let Some(mut name) = face.family_name() {
            if let Some(style) = face.style_name() {
                name.push(' ');
                name.push_str(&style);
            }
            faces.entry(name).or_insert_with(|| FaceLocation {
                path: path.to_owned(),
                index,
            });
        }
        index += 1;
        if index >= face.num_faces().into() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("0-255"), Ok((0, 255)));
        assert_eq!(parse_range("44032-44287"), Ok((44_032, 44_287)));
        assert_eq!(parse_range("65280-65535"), Ok((65_280, 65_535)));
        for bad in [
            "1-256",
            "0-254",
            "0-511",
            "65536-65791",
            "a-b",
            "0",
            "-0-255",
            "0-255-511",
            "+0-255",
            "",
        ] {
            assert_eq!(
                parse_range(bad),
                Err(GlyphError::InvalidRange(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn range_cache_drops_the_oldest() {
        let mut cells = RangeCells::default();
        let first = cells.cell(("A".into(), 0));
        assert!(
            Arc::ptr_eq(&first, &cells.cell(("A".into(), 0))),
            "a key keeps its cell"
        );
        for start in 1..=MAX_CACHED_RANGES as u32 {
            cells.cell(("A".into(), start * 256));
        }
        assert_eq!(cells.cells.len(), MAX_CACHED_RANGES);
        assert_eq!(cells.order.len(), MAX_CACHED_RANGES);
        assert!(
            !cells.cells.contains_key(&("A".to_owned(), 0)),
            "the oldest range is dropped"
        );
        assert!(cells.cells.contains_key(&("A".to_owned(), 256)));
    }

    #[test]
    fn unknown_fonts_and_long_stacks_are_rejected() {
        let cache = GlyphCache::new(vec![PathBuf::from("/nonexistent")]);
        assert_eq!(cache.font_names(), Vec::<String>::new());
        assert_eq!(
            cache.range_pbf("Nowhere Sans Regular", 0, 255),
            Err(GlyphError::UnknownFont("Nowhere Sans Regular".into()))
        );
        let long = ["A"; MAX_FONTS_PER_STACK + 1].join(",");
        assert_eq!(
            cache.range_pbf(&long, 0, 255),
            Err(GlyphError::InvalidFontstack(long.clone()))
        );
        assert_eq!(
            cache.range_pbf("A,,B", 0, 255),
            Err(GlyphError::InvalidFontstack("A,,B".into()))
        );
        let huge = "A".repeat(10_000);
        let Err(GlyphError::UnknownFont(echoed)) = cache.range_pbf(&huge, 0, 255) else {
            panic!("a stack of unknown fonts is an error");
        };
        assert_eq!(
            echoed.chars().count(),
            MAX_ECHOED_CHARS + 1,
            "cut with an ellipsis"
        );
    }
}
