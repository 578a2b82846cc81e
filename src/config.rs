//! The configuration file (`tessera.toml`) and the discovery of sources in folders.
//!
//! Every option has a default, so `tessera serve` runs with no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid options for source {id:?} in {path}: {message}")]
    SourceOptions {
        id: String,
        path: PathBuf,
        message: String,
    },
    #[error("invalid {option} = {value} in {path}: {expected}")]
    InvalidValue {
        option: &'static str,
        value: String,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{message} in {path}")]
    Access { path: PathBuf, message: String },
    #[error("invalid [postgres] section in {path}: {source}")]
    Postgres {
        path: PathBuf,
        source: Box<crate::postgis::PostgisError>,
    },
    #[error(
        "invalid source id {0:?}: use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
    )]
    InvalidId(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, for example `127.0.0.1:3000`; `--listen` overrides it.
    pub listen: Option<SocketAddr>,
    /// Base URL that clients reach this server at (behind a proxy), without a trailing
    /// slash; default: taken from each request's `Host` header.
    pub public_url: Option<String>,
    /// Worker threads for rendering; 0 is one per core.
    pub workers: usize,
    /// `Cache-Control: max-age` for tiles and TileJSON, in seconds.
    pub cache_max_age: u32,
    /// Time limit for rendering one tile, in seconds.
    pub tile_timeout: f64,
    /// Time a client has to send its request header, in seconds.
    pub header_timeout: f64,
    /// Time limit for any request, from its header to its response, in seconds; beyond it
    /// the response is a 503.
    pub request_timeout: f64,
    /// Tiles of one source rendered at once; 0 is three quarters of the workers, rounded up,
    /// which leaves workers to other sources from a pool of four on.
    pub source_concurrency: usize,
    /// Tile requests of one source that wait for a turn; further ones get a 503 with
    /// `Retry-After`.
    pub source_queue: usize,
    /// Largest vector or point file (GeoJSON, CSV and other formats read whole into
    /// memory) opened, in MiB. Imagery, archives and models have their own limits.
    pub max_vector_file_mb: u64,
    /// Largest static map, in device pixels after `@2x` and `dpi` (`/static`, `tessera
    /// render`).
    pub static_max_pixels: u64,
    /// Time limit for rendering one static map, in seconds.
    pub static_timeout: f64,
    /// Size of GDAL's block cache for the whole process, in MiB. GDAL's own default is 5 % of
    /// the machine's memory.
    pub gdal_cache_mb: u32,
    /// Folders and files whose sources are discovered, in addition to `sources`.
    pub paths: Vec<PathBuf>,
    /// Folder of MapLibre style documents served at `/styles/{id}.json`.
    pub styles: PathBuf,
    /// Folders searched, with their subfolders, for the TrueType and OpenType fonts that
    /// glyphs are rendered from (`/fonts/{fontstack}/{range}.pbf`).
    pub fonts: Vec<PathBuf>,
    pub sources: BTreeMap<String, SourceConfig>,
    /// Private sources, keys, sensitive points and rate limits: `[access]`.
    pub access: crate::access::AccessConfig,
    /// The PostGIS database whose tables and functions are served.
    pub postgres: Option<crate::postgis::PostgresConfig>,
    /// The disk tile cache (`[cache]`); off without a `path`.
    pub cache: crate::cache::CacheConfig,
    /// How GDAL reads remote files (`[remote]`).
    pub remote: crate::remote::RemoteConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: None,
            public_url: None,
            workers: 0,
            cache_max_age: 3600,
            tile_timeout: 30.0,
            header_timeout: 10.0,
            request_timeout: 60.0,
            source_concurrency: 0,
            source_queue: 256,
            max_vector_file_mb: 512,
            // An A4 page at 300 dpi is 8.7 million pixels.
            static_max_pixels: 16_777_216,
            static_timeout: 45.0,
            gdal_cache_mb: 64,
            paths: Vec::new(),
            styles: PathBuf::from("styles"),
            fonts: vec![PathBuf::from("/usr/share/fonts")],
            sources: BTreeMap::new(),
            access: crate::access::AccessConfig::default(),
            postgres: None,
            cache: crate::cache::CacheConfig::default(),
            remote: crate::remote::RemoteConfig::default(),
        }
    }
}

/// One named source: a file and the options of its kind, or a table or function of the
/// `[postgres]` database (`table` or `function` among the options, and no `path`).
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    /// The file or folder; empty for PostGIS sources.
    #[serde(default)]
    pub path: PathBuf,
    pub name: Option<String>,
    pub attribution: Option<String>,
    pub description: Option<String>,
    /// Everything else: options of the source's kind, checked when it is opened. The access
    /// options (`access`, `groups`, `private_attributes`, `sensitive`) are taken out first.
    #[serde(flatten)]
    pub options: toml::Table,
}

impl Config {
    /// Reads and parses `path`. Relative source paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        // Without `paths`, the folders that `tessera serve` discovers with no configuration
        // are discovered beside the file.
        let names_paths =
            toml::from_str::<toml::Table>(&text).is_ok_and(|table| table.contains_key("paths"));
        if !names_paths {
            config.paths = DEFAULT_FOLDERS
                .iter()
                .map(PathBuf::from)
                .filter(|folder| base.join(folder).is_dir())
                .collect();
        }
        config.validate(path)?;
        for (id, source) in &mut config.sources {
            validate_id(id)?;
            let names_database_object =
                crate::postgis::PostgisOptions::names_database_object(&source.options);
            if source.path.as_os_str().is_empty() && !names_database_object {
                return Err(ConfigError::SourceOptions {
                    id: id.clone(),
                    path: path.to_owned(),
                    message: "missing `path`: name a file or folder, or a `table` or `function` \
                              of the [postgres] database"
                        .to_owned(),
                });
            }
            if crate::remote::is_remote(&source.path) {
                source.path = crate::remote::gdal_path(&source.path);
            } else if source.path.is_relative() && !names_database_object {
                source.path = base.join(&source.path);
            }
        }
        for folder in config
            .paths
            .iter_mut()
            .chain(std::iter::once(&mut config.styles))
            .chain(config.fonts.iter_mut())
            .chain(config.access.keys_file.iter_mut())
            .chain(config.cache.path.iter_mut())
        {
            if folder.is_relative() {
                *folder = base.join(&*folder);
            }
        }
        Ok(config)
    }
}

impl Config {
    /// Checks the values that parse but cannot work. `path` is only used in messages.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |option, value: String, expected| ConfigError::InvalidValue {
            option,
            value,
            path: path.to_owned(),
            expected,
        };
        if !(self.static_timeout.is_finite()
            && self.static_timeout > 0.0
            && self.static_timeout <= 3600.0)
        {
            return Err(invalid(
                "static_timeout",
                self.static_timeout.to_string(),
                "use seconds above 0 and at most 3600",
            ));
        }
        if self.static_max_pixels == 0 {
            return Err(invalid(
                "static_max_pixels",
                self.static_max_pixels.to_string(),
                "use a number of pixels above 0",
            ));
        }
        if !(self.tile_timeout.is_finite()
            && self.tile_timeout > 0.0
            && self.tile_timeout <= 3600.0)
        {
            return Err(invalid(
                "tile_timeout",
                self.tile_timeout.to_string(),
                "use seconds above 0 and at most 3600",
            ));
        }
        if !(self.header_timeout.is_finite()
            && self.header_timeout > 0.0
            && self.header_timeout <= 3600.0)
        {
            return Err(invalid(
                "header_timeout",
                self.header_timeout.to_string(),
                "use seconds above 0 and at most 3600",
            ));
        }
        self.access
            .validate()
            .map_err(|message| ConfigError::Access {
                path: path.to_owned(),
                message,
            })?;
        if !(self.request_timeout.is_finite()
            && self.request_timeout > 0.0
            && self.request_timeout <= 3600.0)
        {
            return Err(invalid(
                "request_timeout",
                self.request_timeout.to_string(),
                "use seconds above 0 and at most 3600",
            ));
        }
        if self.max_vector_file_mb == 0 {
            return Err(invalid(
                "max_vector_file_mb",
                "0".to_owned(),
                "use at least 1 MiB",
            ));
        }
        if let Some(postgres) = &self.postgres {
            postgres
                .validate()
                .map_err(|source| ConfigError::Postgres {
                    path: path.to_owned(),
                    source: Box::new(source),
                })?;
        }
        if self.gdal_cache_mb == 0 {
            return Err(invalid(
                "gdal_cache_mb",
                "0".to_owned(),
                "use at least 1 MiB",
            ));
        }
        Ok(())
    }
}

/// Checks that a source id is safe in a URL path and a file name.
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && !id.contains("..") && id.len() <= 128 {
        Ok(())
    } else {
        Err(ConfigError::InvalidId(id.to_owned()))
    }
}

/// Turns a file stem into a source id by replacing characters outside the safe set.
pub fn id_from_stem(stem: &str) -> String {
    let mut id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while id.contains("..") {
        id = id.replace("..", ".");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        id.insert(0, 's');
    }
    id
}

/// The folders served when no files, folders or `paths` are named.
pub const DEFAULT_FOLDERS: [&str; 2] = ["geodata", "tiles"];

/// File extensions that discovery serves, by kind.
pub const RASTER_EXTENSIONS: [&str; 3] = ["tif", "tiff", "vrt"];
pub const VECTOR_EXTENSIONS: [&str; 7] = ["geojson", "json", "gpkg", "shp", "kml", "fgb", "gml"];
pub const ARCHIVE_EXTENSIONS: [&str; 2] = ["mbtiles", "pmtiles"];
pub const MODEL_EXTENSIONS: [&str; 2] = ["glb", "gltf"];

/// The file that makes a folder one scene collection (a dated layer or a mosaic) instead of a
/// folder of separate sources. It contains the collection's options, `kind` among them.
pub const COLLECTION_FILE: &str = "collection.toml";

/// Lists the files under `root` (a file or a folder, searched recursively) that discovery
/// serves, sorted by path. A folder with a `collection.toml` is listed itself, and its files
/// are not. Hidden entries and `node_modules` are skipped, and so is anything
/// that is not a regular file (a named pipe or a device would block or never end a read).
/// Symbolic links are followed, but each folder is visited once, so link loops end.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if root.is_file() {
        found.push(root.to_owned());
        return Ok(found);
    }
    let mut visited = std::collections::HashSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(folder) = pending.pop() {
        if !visited.insert(std::fs::canonicalize(&folder)?) {
            continue;
        }
        if folder.join(COLLECTION_FILE).is_file() {
            found.push(folder);
            continue;
        }
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            // `metadata` follows links; a broken link is skipped like other unreadable entries.
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(path);
            } else if metadata.is_file() && servable_extension(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn servable_extension(path: &Path) -> bool {
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    let extension = extension.to_ascii_lowercase();
    RASTER_EXTENSIONS
        .iter()
        .chain(&VECTOR_EXTENSIONS)
        .chain(&ARCHIVE_EXTENSIONS)
        .chain(&MODEL_EXTENSIONS)
        .any(|known| *known == extension)
}

/// Reads the optional side file `STEM.toml` next to a discovered file, or `collection.toml`
/// in a discovered folder: the same keys as a `[sources.ID]` table, without `path`.
pub fn sidecar(path: &Path) -> Result<Option<SourceConfig>, ConfigError> {
    let side = if path.is_dir() {
        path.join(COLLECTION_FILE)
    } else {
        path.with_extension("toml")
    };
    if !side.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&side).map_err(|source| ConfigError::Read {
        path: side.clone(),
        source,
    })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: side.clone(),
        source,
    })?;
    table.insert(
        "path".to_owned(),
        toml::Value::String(path.to_string_lossy().into_owned()),
    );
    let config = SourceConfig::deserialize(toml::Value::Table(table)).map_err(|error| {
        ConfigError::SourceOptions {
            id: path.display().to_string(),
            path: side,
            message: error.to_string(),
        }
    })?;
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["camps", "RGB.byte", "m_4709963_se_14_1_20090818", "a-b"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            ".hidden",
            "a..b",
            "name with space",
            "caf\u{e9}",
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stems_become_valid_ids() {
        for stem in ["RGB.byte", "my file", ".x", "a..b", "\u{d55c}\u{ad6d}"] {
            let id = id_from_stem(stem);
            assert!(validate_id(&id).is_ok(), "{stem} -> {id}");
        }
        assert_eq!(id_from_stem("RGB.byte"), "RGB.byte");
    }

    #[test]
    fn config_parses_with_defaults_and_relative_paths() {
        let folder = tempfile::tempdir().expect("tempdir");
        let file = folder.path().join("tessera.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:4000\"\n[sources.s2]\npath = \"TCI.tif\"\nresampling = \"cubic\"\n",
        )
        .expect("write");
        let config = Config::load(&file).expect("load");
        assert_eq!(config.cache_max_age, 3600);
        assert_eq!(config.sources["s2"].path, folder.path().join("TCI.tif"));
        assert_eq!(
            config.sources["s2"].options["resampling"].as_str(),
            Some("cubic")
        );
    }

    #[test]
    fn paths_default_to_data_folders_beside_the_file() {
        let folder = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(folder.path().join("geodata")).expect("mkdir");
        let file = folder.path().join("tessera.toml");
        std::fs::write(&file, "cache_max_age = 60\n").expect("write");
        let config = Config::load(&file).expect("load");
        assert_eq!(config.paths, vec![folder.path().join("geodata")]);

        std::fs::write(&file, "paths = []\n").expect("write");
        let config = Config::load(&file).expect("load");
        assert!(config.paths.is_empty(), "an explicit empty list is kept");
    }

    #[test]
    #[allow(
        clippy::similar_names,
        reason = "two links, to the folder and to its parent"
    )]
    fn discovery_ends_on_link_loops_and_skips_special_files() {
        let folder = tempfile::tempdir().expect("tempdir");
        let root = folder.path();
        std::fs::write(root.join("camps.geojson"), "{}").expect("write");
        std::os::unix::fs::symlink(root, root.join("loop")).expect("link to itself");
        std::os::unix::fs::symlink(root, root.join("again")).expect("second link");
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.json")).expect("link to a device");
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("pipe.tif"))
            .status();
        assert!(status.is_ok_and(|s| s.success()), "mkfifo");
        let found = discover(root).expect("discover");
        let names: Vec<_> = found
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        assert_eq!(
            names,
            ["camps.geojson"],
            "each file once, no pipe, no device: {found:?}"
        );
    }

    #[test]
    fn collection_folder_is_discovered_whole() {
        let folder = tempfile::tempdir().expect("tempdir");
        let root = folder.path();
        let scenes = root.join("naip");
        std::fs::create_dir(&scenes).expect("mkdir");
        std::fs::write(scenes.join(COLLECTION_FILE), "kind = \"dated\"\n").expect("write");
        std::fs::write(scenes.join("m_20140720.tif"), "").expect("write");
        std::fs::write(root.join("camps.geojson"), "{}").expect("write");

        let found = discover(root).expect("discover");
        assert_eq!(found, [root.join("camps.geojson"), scenes.clone()]);
        let side = sidecar(&scenes)
            .expect("readable")
            .expect("collection.toml");
        assert_eq!(side.options["kind"].as_str(), Some("dated"));
        assert_eq!(side.path, scenes);
    }

    #[test]
    fn impossible_values_are_named() {
        let folder = tempfile::tempdir().expect("tempdir");
        let file = folder.path().join("tessera.toml");
        for (text, option) in [
            ("tile_timeout = -1.0", "tile_timeout"),
            ("tile_timeout = nan", "tile_timeout"),
            ("tile_timeout = 0.0", "tile_timeout"),
            ("gdal_cache_mb = 0", "gdal_cache_mb"),
        ] {
            std::fs::write(&file, text).expect("write");
            let error = Config::load(&file).expect_err(text).to_string();
            assert!(error.contains(option), "{text}: {error}");
        }
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let folder = tempfile::tempdir().expect("tempdir");
        let file = folder.path().join("tessera.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:4000\"\n").expect("write");
        let error = Config::load(&file).expect_err("typo").to_string();
        assert!(error.contains("lisen"), "{error}");
    }
}
