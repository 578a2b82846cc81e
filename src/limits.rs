//! Limits checked before a source file is opened.

use std::path::Path;

use crate::config::{self, Config, SourceConfig};

/// Rejects a vector or point file larger than `max_vector_file_mb`, from its size on disk
/// and without reading it. These files are read whole into memory (an R-tree of features or
/// a point store), unlike imagery and archives, which are read by block, and models, which
/// have their own `max_file_mb`. Returns the reason for the start-up report.
pub fn check_vector_file_size(
    path: &Path,
    source: &SourceConfig,
    config: &Config,
) -> Result<(), String> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_points = source.options.get("kind").and_then(toml::Value::as_str) == Some("points");
    let read_by_block = config::ARCHIVE_EXTENSIONS.contains(&extension.as_str())
        || config::MODEL_EXTENSIONS.contains(&extension.as_str())
        || config::RASTER_EXTENSIONS.contains(&extension.as_str());
    if path.is_dir() || (read_by_block && !is_points) {
        return Ok(());
    }
    let Ok(metadata) = std::fs::metadata(path) else {
        // A missing file is reported when the source is opened.
        return Ok(());
    };
    let limit = config.max_vector_file_mb.saturating_mul(1024 * 1024);
    if metadata.len() > limit {
        return Err(format!(
            "{} is {} MiB, above max_vector_file_mb = {}: raise max_vector_file_mb in the configuration or split the file",
            path.display(),
            metadata.len().div_ceil(1024 * 1024),
            config.max_vector_file_mb
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &Path, kind: Option<&str>) -> SourceConfig {
        let mut options = toml::Table::new();
        if let Some(kind) = kind {
            options.insert("kind".to_owned(), toml::Value::String(kind.to_owned()));
        }
        SourceConfig {
            path: path.to_owned(),
            name: None,
            attribution: None,
            description: None,
            options,
        }
    }

    #[test]
    fn large_vector_file_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            max_vector_file_mb: 1,
            ..Config::default()
        };
        let cases = [
            ("big.geojson", 2 << 20, None, false),
            ("small.geojson", 1 << 20, None, true),
            ("points.csv", 2 << 20, Some("points"), false),
            ("image.tif", 2 << 20, None, true),
            ("tiles.pmtiles", 2 << 20, None, true),
        ];
        for (name, size, kind, accepted) in cases {
            let path = dir.path().join(name);
            // A sparse file: the size is checked, never the content.
            std::fs::File::create(&path)
                .and_then(|file| file.set_len(size))
                .expect("create a sparse file");
            let result = check_vector_file_size(&path, &source(&path, kind), &config);
            assert_eq!(result.is_ok(), accepted, "{name}: {result:?}");
            if let Err(reason) = result {
                assert!(reason.contains("max_vector_file_mb = 1"), "{reason}");
            }
        }
    }
}
