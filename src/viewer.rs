//! The built-in web viewer, embedded in the binary.
//!
//! `index.html`, `app.js`, `app.css`, `floorplan.js`, `dates.js` and `dates.css` come from
//! `viewer/`. `maplibre-gl.js` and `maplibre-gl.css` come from the `maplibre-gl` npm package in
//! `viewer/node_modules`, which `build.rs` copies. When that package was not installed at
//! build time, `maplibre-gl.js` is a
//! script that shows the install command on the page instead of a map, and
//! [`MAPLIBRE_EMBEDDED`] is false.

/// An embedded viewer file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub bytes: &'static [u8],
    /// The value for the `Content-Type` header.
    pub media_type: &'static str,
}

/// Whether this build embeds the `maplibre-gl` package. Servers can log a warning at startup
/// when it does not, because the viewer then shows only the install command.
pub const MAPLIBRE_EMBEDDED: bool = !cfg!(tessera_maplibre_missing);

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Returns the embedded file at `path`, which is relative to the viewer's root: `index.html`,
/// `app.js`, `app.css`, `floorplan.js`, `dates.js`, `dates.css`, `maplibre-gl.js` or
/// `maplibre-gl.css`. Any other path, including one with a leading `/`, returns `None`.
pub fn asset(path: &str) -> Option<Asset> {
    let (bytes, media_type): (&'static [u8], _) = match path {
        "index.html" => (
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/viewer/index.html")),
            HTML,
        ),
        "app.js" => (
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/viewer/app.js")),
            JAVASCRIPT,
        ),
        "floorplan.js" => (
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/viewer/floorplan.js")),
            JAVASCRIPT,
        ),
        "app.css" => (
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/viewer/app.css")),
            CSS,
        ),
        "dates.js" => (
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/viewer/dates.js")),
            JAVASCRIPT,
        ),
        "dates.css" => (
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/viewer/dates.css")),
            CSS,
        ),
        "maplibre-gl.js" => (
            include_bytes!(concat!(env!("OUT_DIR"), "/maplibre-gl.js")),
            JAVASCRIPT,
        ),
        "maplibre-gl.css" => (
            include_bytes!(concat!(env!("OUT_DIR"), "/maplibre-gl.css")),
            CSS,
        ),
        _ => return None,
    };
    Some(Asset { bytes, media_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(path: &str) -> &'static str {
        let asset = asset(path).expect("the asset is embedded");
        std::str::from_utf8(asset.bytes).expect("viewer assets are UTF-8 text")
    }

    #[test]
    fn asset_media_types() {
        let cases = [
            ("index.html", HTML),
            ("app.js", JAVASCRIPT),
            ("floorplan.js", JAVASCRIPT),
            ("app.css", CSS),
            ("dates.js", JAVASCRIPT),
            ("dates.css", CSS),
            ("maplibre-gl.js", JAVASCRIPT),
            ("maplibre-gl.css", CSS),
        ];
        for (path, media_type) in cases {
            let asset = asset(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert_eq!(asset.media_type, media_type, "media type of {path}");
            assert!(!asset.bytes.is_empty(), "{path} is empty");
        }
    }

    #[test]
    fn asset_unknown_paths() {
        let cases = [
            "",
            "/index.html",
            "viewer/app.js",
            "./app.js",
            "../Cargo.toml",
            "INDEX.HTML",
            "app.js/",
            "maplibre-gl.js.map",
        ];
        for path in cases {
            assert_eq!(asset(path), None, "{path:?} must not resolve to an asset");
        }
    }

    #[test]
    fn index_loads_embedded_files() {
        let html = text("index.html");
        for reference in [
            "/viewer/maplibre-gl.js",
            "/viewer/maplibre-gl.css",
            "/viewer/app.js",
            "/viewer/floorplan.js",
            "/viewer/app.css",
            "/viewer/dates.js",
            "/viewer/dates.css",
        ] {
            assert!(
                html.contains(reference),
                "index.html does not load {reference}"
            );
        }
    }

    #[test]
    fn viewer_names_no_other_host() {
        for path in [
            "index.html",
            "app.js",
            "app.css",
            "floorplan.js",
            "dates.js",
            "dates.css",
        ] {
            let source = text(path);
            assert!(
                !source.contains("http://"),
                "{path} contains an http:// URL"
            );
            assert!(
                !source.contains("https://"),
                "{path} contains an https:// URL"
            );
        }
    }

    #[test]
    fn maplibre_script_matches_build() {
        let script = text("maplibre-gl.js");
        if MAPLIBRE_EMBEDDED {
            assert!(
                script.contains("maplibregl"),
                "maplibre-gl.js is not MapLibre GL JS"
            );
            assert!(
                !script.contains("//# sourceMappingURL="),
                "maplibre-gl.js still points to a source map that is not embedded"
            );
            assert!(text("maplibre-gl.css").contains(".maplibregl-map"));
        } else {
            assert!(
                script.contains("npm ci --prefix viewer"),
                "the fallback script does not show the install command"
            );
            assert!(script.contains("tesseraErrors"));
        }
    }
}
