//! MapLibre sprite sheets built at start-up from the SVG icons in `{styles}/icons/`, at pixel
//! ratio 1 and 2, served as `/sprites/icons.png`, `/sprites/icons.json`,
//! `/sprites/icons@2x.png` and `/sprites/icons@2x.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The id of the sprite sheet built from `{styles}/icons/`, the `sprite` URL's last segment.
pub const SPRITE_ID: &str = "icons";

#[derive(Debug, Error)]
pub enum SpriteError {
    #[error("cannot list icon folder {path}: {source}")]
    ListFolder {
        path: PathBuf,
        source: spreet::SpreetError,
    },
    #[error("no SVG icon in {0} could be drawn: add 24-pixel SVG files there")]
    NoIcons(PathBuf),
    #[error("building the {ratio}x sprite sheet of {path} failed: {message}")]
    Build {
        path: PathBuf,
        ratio: u8,
        message: String,
    },
}

/// One sprite sheet at one pixel ratio: the PNG image and its JSON index.
#[derive(Debug, Clone)]
pub struct SpriteSheet {
    pub png: Vec<u8>,
    pub json: Vec<u8>,
}

/// The sprite sheets at pixel ratio 1 and 2.
#[derive(Debug, Clone)]
pub struct Sprites {
    pub standard: SpriteSheet,
    pub retina: SpriteSheet,
    /// Icon names, sorted.
    pub names: Vec<String>,
}

impl Sprites {
    /// Returns the sheet for a request file name such as `icons@2x.png`, with its media type.
    pub fn file(&self, file: &str) -> Option<(&[u8], &'static str)> {
        let (stem, extension) = file.rsplit_once('.')?;
        let sheet = match stem.strip_prefix(SPRITE_ID)? {
            "" => &self.standard,
            "@2x" => &self.retina,
            _ => return None,
        };
        match extension {
            "png" => Some((&sheet.png, "image/png")),
            "json" => Some((&sheet.json, "application/json")),
            _ => None,
        }
    }
}

/// Draws every SVG file in `folder` into sprite sheets at pixel ratio 1 and 2. Icons that
/// cannot be read or drawn are logged and left out; the icon name is the file stem.
pub fn build(folder: &Path) -> Result<Sprites, SpriteError> {
    let paths =
        spreet::get_svg_input_paths(folder, false).map_err(|source| SpriteError::ListFolder {
            path: folder.to_owned(),
            source,
        })?;
    let mut trees = BTreeMap::new();
    for path in paths {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        match spreet::load_svg(&path) {
            Ok(tree) => {
                trees.insert(name.to_owned(), tree);
            }
            Err(error) => tracing::warn!(path = %path.display(), %error, "icon not drawn"),
        }
    }
    if trees.is_empty() {
        return Err(SpriteError::NoIcons(folder.to_owned()));
    }
    let names = trees.keys().cloned().collect();
    Ok(Sprites {
        standard: build_sheet(folder, &trees, 1)?,
        retina: build_sheet(folder, &trees, 2)?,
        names,
    })
}

fn build_sheet(
    folder: &Path,
    trees: &BTreeMap<String, spreet::resvg::usvg::Tree>,
    ratio: u8,
) -> Result<SpriteSheet, SpriteError> {
    let failed = |message: String| SpriteError::Build {
        path: folder.to_owned(),
        ratio,
        message,
    };
    let sprites: BTreeMap<String, spreet::Sprite> = trees
        .iter()
        .filter_map(|(name, tree)| {
            let sprite = spreet::Sprite::new(tree.clone(), ratio);
            if sprite.is_none() {
                tracing::warn!(icon = %name, ratio, "icon has no drawable size and is left out");
            }
            Some((name.clone(), sprite?))
        })
        .collect();
    let sheet = spreet::Spritesheet::build()
        .sprites(sprites)
        .generate()
        .ok_or_else(|| failed("the icons do not fit one sheet".to_owned()))?;
    let png = sheet
        .encode_png()
        .map_err(|error| failed(error.to_string()))?;
    let json = serde_json::to_vec(sheet.get_index()).map_err(|error| failed(error.to_string()))?;
    Ok(SpriteSheet { png, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECTANGLE: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="#f00"/></svg>"##;

    #[test]
    fn sheets_have_both_ratios() {
        let folder = tempfile::tempdir().expect("tempdir");
        std::fs::write(folder.path().join("bar.svg"), RECTANGLE).expect("write icon");
        std::fs::write(folder.path().join("broken.svg"), "<svg").expect("write icon");
        std::fs::write(folder.path().join("notes.txt"), "not an icon").expect("write file");
        let sprites = build(folder.path()).expect("sprites");
        assert_eq!(sprites.names, vec!["bar".to_owned()]);
        let index: serde_json::Value =
            serde_json::from_slice(&sprites.standard.json).expect("index");
        assert_eq!(index["bar"]["width"], 20);
        assert_eq!(index["bar"]["height"], 10);
        let retina: serde_json::Value =
            serde_json::from_slice(&sprites.retina.json).expect("index");
        assert_eq!(retina["bar"]["width"], 40);
        assert_eq!(retina["bar"]["pixelRatio"], 2);
        let image = image::load_from_memory(&sprites.retina.png).expect("PNG");
        assert!(image.width() >= 40, "width {}", image.width());
        assert!(image.height() >= 20, "height {}", image.height());
    }

    #[test]
    fn files_are_found_by_name() {
        let sheet = |byte| SpriteSheet {
            png: vec![byte],
            json: vec![byte + 1],
        };
        let sprites = Sprites {
            standard: sheet(1),
            retina: sheet(3),
            names: Vec::new(),
        };
        assert_eq!(sprites.file("icons.png"), Some((&[1_u8][..], "image/png")));
        assert_eq!(
            sprites.file("icons.json"),
            Some((&[2_u8][..], "application/json"))
        );
        assert_eq!(
            sprites.file("icons@2x.png"),
            Some((&[3_u8][..], "image/png"))
        );
        for missing in ["icons@3x.png", "other.png", "icons.svg", "icons"] {
            assert_eq!(sprites.file(missing), None, "{missing}");
        }
    }

    #[test]
    fn empty_folder_is_an_error() {
        let folder = tempfile::tempdir().expect("tempdir");
        assert!(matches!(build(folder.path()), Err(SpriteError::NoIcons(_))));
    }
}
