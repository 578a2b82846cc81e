//! Fonts for PDF text: loading faces once, measuring lines and wrapping paragraphs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use thiserror::Error;

use crate::map::scene::FontFace;

#[derive(Debug, Error)]
pub enum TextError {
    #[error("cannot read font file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("font file {path} has no usable face {index}; name another face or font file")]
    Face { path: PathBuf, index: u32 },
    #[error(
        "no font with Hangul and Latin glyphs was found under {folders}; install Debian's \
         fonts-noto-cjk or fonts-nanum, or add their folder to `fonts` in the configuration"
    )]
    NoDefaultFont { folders: String },
}

/// A font face loaded for PDF output, with the metrics used for layout.
#[derive(Debug)]
pub struct Typeface {
    pub font: krilla::text::Font,
    data: Arc<Vec<u8>>,
    index: u32,
    units_per_em: f32,
    ascender: f32,
    /// Positive distance below the baseline, in font units.
    descender: f32,
}

/// Faces already read, by file and index: a CJK collection is about 20 MB, so each is read
/// once per process. One entry per face named by a style or the default.
static TYPEFACES: LazyLock<Mutex<HashMap<FontFace, Arc<Typeface>>>> = LazyLock::new(Mutex::default);

impl Typeface {
    /// Loads `face`, or returns it from the process-wide cache.
    pub fn load(face: &FontFace) -> Result<Arc<Typeface>, TextError> {
        if let Some(loaded) = TYPEFACES
            .lock()
            .expect("the typeface cache lock is never poisoned")
            .get(face)
        {
            return Ok(Arc::clone(loaded));
        }
        let data = std::fs::read(&face.path).map_err(|source| TextError::Read {
            path: face.path.clone(),
            source,
        })?;
        let typeface = Arc::new(Typeface::from_data(Arc::new(data), face)?);
        TYPEFACES
            .lock()
            .expect("the typeface cache lock is never poisoned")
            .insert(face.clone(), Arc::clone(&typeface));
        Ok(typeface)
    }

    fn from_data(data: Arc<Vec<u8>>, face: &FontFace) -> Result<Typeface, TextError> {
        let no_face = || TextError::Face {
            path: face.path.clone(),
            index: face.index,
        };
        let parsed = ttf_parser::Face::parse(&data, face.index).map_err(|_| no_face())?;
        let units_per_em = f32::from(parsed.units_per_em());
        let ascender = f32::from(parsed.ascender());
        let descender = -f32::from(parsed.descender());
        let font = krilla::text::Font::new(krilla::Data::from(Arc::clone(&data)), face.index)
            .ok_or_else(no_face)?;
        Ok(Typeface {
            font,
            data,
            index: face.index,
            units_per_em,
            ascender,
            descender,
        })
    }

    /// Returns the advance width of `text` at `size`, without kerning, in the unit of `size`.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let Ok(face) = ttf_parser::Face::parse(&self.data, self.index) else {
            return 0.0;
        };
        let units: f32 = text
            .chars()
            .map(|character| {
                face.glyph_index(character)
                    .and_then(|glyph| face.glyph_hor_advance(glyph))
                    .map_or(self.units_per_em / 2.0, f32::from)
            })
            .sum();
        units * size / self.units_per_em
    }

    /// Returns the height above the baseline at `size`.
    pub fn ascent(&self, size: f32) -> f32 {
        self.ascender * size / self.units_per_em
    }

    /// Returns the depth below the baseline at `size`, as a positive length.
    pub fn descent(&self, size: f32) -> f32 {
        self.descender * size / self.units_per_em
    }

    /// Splits `text` into lines no wider than `max_width` at `size`: at spaces where it can,
    /// and between characters in a word wider than a line, such as a SHA-256 or a run of
    /// Hangul without spaces.
    pub fn wrap(&self, text: &str, size: f32, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split(' ').filter(|word| !word.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, size) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            for character in word.chars() {
                line.push(character);
                if self.width(&line, size) > max_width && line.chars().count() > 1 {
                    line.pop();
                    lines.push(std::mem::take(&mut line));
                    line.push(character);
                }
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// Font files tried, in order, for the PDF's own text (provenance, index, page numbers):
/// each covers Hangul and Latin. Index 1 of the Noto Sans CJK collection is its Korean face.
const DEFAULT_FACES: [(&str, u32); 4] = [
    ("NotoSansCJK-Regular.ttc", 1),
    ("NotoSansCJKkr-Regular.otf", 0),
    ("NotoSansKR-Regular.otf", 0),
    ("NanumGothic.ttf", 0),
];

/// Finds the face for the PDF's own text under `folders` and their subfolders.
pub fn default_face(folders: &[PathBuf]) -> Result<FontFace, TextError> {
    let mut files = Vec::new();
    for folder in folders {
        collect_files(folder, &mut files, 0);
    }
    for (name, index) in DEFAULT_FACES {
        if let Some(path) = files
            .iter()
            .find(|path| path.file_name().is_some_and(|file| file == name))
        {
            return Ok(FontFace {
                path: path.clone(),
                index,
            });
        }
    }
    let folders = folders
        .iter()
        .map(|folder| folder.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(TextError::NoDefaultFont { folders })
}

/// Deepest folder level searched for fonts, so that a symlink loop cannot recurse forever.
const MAX_FONT_FOLDER_DEPTH: usize = 8;

fn collect_files(folder: &Path, files: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_FONT_FOLDER_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, files, depth + 1);
        } else {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_face() -> Option<Arc<Typeface>> {
        let face = default_face(&[PathBuf::from("/usr/share/fonts")]).ok()?;
        Some(Typeface::load(&face).expect("the default face loads"))
    }

    #[test]
    fn width_grows_with_text_and_size() {
        let Some(typeface) = system_face() else {
            eprintln!("SKIPPED: no CJK font under /usr/share/fonts");
            return;
        };
        let short = typeface.width("Camp", 10.0);
        assert!(short > 10.0, "{short}");
        assert!(typeface.width("Camp 14", 10.0) > short);
        assert!((typeface.width("Camp", 20.0) - 2.0 * short).abs() < 0.01);
        assert!(typeface.width("요덕", 10.0) > 15.0);
        assert!(typeface.ascent(10.0) > 7.0);
        assert!(typeface.descent(10.0) > 0.5);
    }

    #[test]
    fn wrap_keeps_lines_within_width() {
        let Some(typeface) = system_face() else {
            eprintln!("SKIPPED: no CJK font under /usr/share/fonts");
            return;
        };
        let hash = "0123456789abcdef".repeat(4);
        let cases = [
            (
                "Committee for Human Rights in North Korea; Wikipedia",
                120.0,
            ),
            (hash.as_str(), 100.0),
            ("요덕정치범수용소 제15호 관리소", 40.0),
        ];
        for (text, max_width) in cases {
            let lines = typeface.wrap(text, 8.0, max_width);
            assert!(lines.len() > 1, "{text:?} fits on one line: {lines:?}");
            for line in &lines {
                assert!(typeface.width(line, 8.0) <= max_width, "{line:?} too wide");
            }
            let joined: String = lines.concat().split_whitespace().collect();
            let original: String = text.split_whitespace().collect();
            assert_eq!(joined, original, "wrapping lost characters");
        }
        assert_eq!(typeface.wrap("", 8.0, 100.0), vec![String::new()]);
    }

    #[test]
    fn default_face_missing_names_folders() {
        let folder = tempfile::tempdir().expect("tempdir");
        let error = default_face(&[folder.path().to_path_buf()]).expect_err("no fonts");
        assert!(error.to_string().contains("fonts-noto-cjk"), "{error}");
    }
}
