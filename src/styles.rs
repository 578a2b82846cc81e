//! MapLibre style documents from the `styles/` folder, with their source URLs made absolute.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StyleError {
    #[error("no style {0:?}: see the `styles` list in /catalog")]
    NotFound(String),
    #[error("invalid style id {0:?}")]
    InvalidId(String),
    #[error("cannot read style {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("style {path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Ids of the styles in `folder` (file stems of its `.json` files), sorted.
pub fn list(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter_map(|path| path.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .filter(|id| crate::config::validate_id(id).is_ok())
        .collect();
    ids.sort();
    ids
}

/// Reads style `id` and prefixes `base_url` to every URL in it that starts with `/`
/// (source `url` and `tiles`, `glyphs`, `sprite`).
pub fn load(folder: &Path, id: &str, base_url: &str) -> Result<String, StyleError> {
    crate::config::validate_id(id).map_err(|_| StyleError::InvalidId(id.to_owned()))?;
    let path = folder.join(format!("{id}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(StyleError::NotFound(id.to_owned()));
        }
        Err(source) => return Err(StyleError::Read { path, source }),
    };
    let mut style: Value =
        serde_json::from_str(&text).map_err(|source| StyleError::Parse { path, source })?;
    let absolute = |value: &mut Value| {
        if let Some(url) = value
            .as_str()
            .filter(|url| url.starts_with('/') && !url.starts_with("//"))
        {
            *value = Value::String(format!("{base_url}{url}"));
        }
    };
    if let Some(sources) = style.get_mut("sources").and_then(Value::as_object_mut) {
        for source in sources.values_mut() {
            if let Some(url) = source.get_mut("url") {
                absolute(url);
            }
            if let Some(tiles) = source.get_mut("tiles").and_then(Value::as_array_mut) {
                tiles.iter_mut().for_each(absolute);
            }
        }
    }
    for key in ["glyphs", "sprite"] {
        if let Some(value) = style.get_mut(key) {
            absolute(value);
        }
    }
    // Style specification v8 also allows several sprites: `[{"id": …, "url": …}]`.
    if let Some(sprites) = style.get_mut("sprite").and_then(Value::as_array_mut) {
        for sprite in sprites {
            if let Some(url) = sprite.get_mut("url") {
                absolute(url);
            }
        }
    }
    Ok(style.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_become_absolute() {
        let folder = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            folder.path().join("map.json"),
            r#"{"version":8,"sources":{"a":{"type":"vector","url":"/tiles/a.json"},"b":{"type":"raster","tiles":["/tiles/b/{z}/{x}/{y}.png","https://example.org/x"]}},"glyphs":"/fonts/{fontstack}/{range}.pbf","layers":[]}"#,
        )
        .expect("write");
        assert_eq!(list(folder.path()), vec!["map".to_owned()]);
        let style: Value =
            serde_json::from_str(&load(folder.path(), "map", "http://h:1").expect("load"))
                .expect("json");
        assert_eq!(style["sources"]["a"]["url"], "http://h:1/tiles/a.json");
        assert_eq!(
            style["sources"]["b"]["tiles"][0],
            "http://h:1/tiles/b/{z}/{x}/{y}.png"
        );
        assert_eq!(style["sources"]["b"]["tiles"][1], "https://example.org/x");
        assert_eq!(style["glyphs"], "http://h:1/fonts/{fontstack}/{range}.pbf");
    }

    #[test]
    fn sprite_urls_become_absolute() {
        let folder = tempfile::tempdir().expect("tempdir");
        let cases = [
            (
                r#""/sprites/icons""#,
                serde_json::json!("http://h:1/sprites/icons"),
            ),
            (
                r#"[{"id":"a","url":"/sprites/icons"},{"id":"b","url":"https://example.org/s"}]"#,
                serde_json::json!([
                    {"id": "a", "url": "http://h:1/sprites/icons"},
                    {"id": "b", "url": "https://example.org/s"}
                ]),
            ),
        ];
        for (sprite, expected) in cases {
            let text = format!(r#"{{"version":8,"sources":{{}},"sprite":{sprite},"layers":[]}}"#);
            std::fs::write(folder.path().join("map.json"), text).expect("write");
            let style: Value =
                serde_json::from_str(&load(folder.path(), "map", "http://h:1").expect("load"))
                    .expect("json");
            assert_eq!(style["sprite"], expected, "{sprite}");
        }
    }

    #[test]
    fn missing_and_invalid_ids_are_errors() {
        let folder = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            load(folder.path(), "none", "http://h"),
            Err(StyleError::NotFound(_))
        ));
        assert!(matches!(
            load(folder.path(), "../etc/passwd", "http://h"),
            Err(StyleError::InvalidId(_))
        ));
    }
}
