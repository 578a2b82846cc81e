//! The body of each fuzz target, shared by `fuzz_targets/` (nightly, libFuzzer) and by
//! `tests/fuzz_inputs.rs` (stable), which runs the kept inputs of `tests/data/fuzz/`.
//!
//! Each function feeds its input to Tessera's public API and ignores the `Result`: an error
//! is the expected outcome for most inputs, and only a panic, an abort or a hang is a finding.

#![allow(dead_code, reason = "each fuzz target uses one of these functions")]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use tessera::config::{Config, SourceConfig};
use tessera::density::{DensityOptions, DensitySource, Filter, HeatmapRequest};
use tessera::floorplan::{FloorplanOptions, FloorplanSource};
use tessera::format::TileFormat;
use tessera::source::{Source, open_source};
use tessera::tile::TileCoord;
use tessera::vector::{VectorOptions, VectorSource};

/// Returns the repository root, from the fuzz crate or from the main crate.
fn repository() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.ends_with("fuzz") {
        manifest.join("..")
    } else {
        manifest.to_owned()
    }
}

/// Returns a folder for the files that loaders read, one per process and thread.
pub(crate) fn scratch_folder() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let folder = std::env::temp_dir().join(format!("tessera-fuzz-{}-{thread}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("create the scratch folder");
    folder
}

/// Parses `text` as `tessera.toml` and as a `STEM.toml` side file.
pub(crate) fn config(text: &str) {
    if let Ok(config) = toml::from_str::<Config>(text) {
        let _ = config.validate(Path::new("fuzz.toml"));
        for id in config.sources.keys() {
            let _ = tessera::config::validate_id(id);
        }
    }
    let _ = toml::from_str::<SourceConfig>(text);
    let _ = tessera::config::id_from_stem(text);
}

/// A vector source (the camps of `geodata/`) and a density source of three points.
static SOURCES: LazyLock<Vec<Source>> = LazyLock::new(|| {
    let points = scratch_folder().join("request-points.csv");
    std::fs::write(
        &points,
        "lat,lon,date,category\n39.5,126.1,2020-01-02,detention\n40.1,127.0,2021-05,torture\n41,128,2019,detention\n",
    )
    .expect("write the points");
    let density_options: toml::Table = toml::from_str(
        "kind = \"points\"\nlatitude = \"lat\"\nlongitude = \"lon\"\ndate = \"date\"\ncategories = \"category\"",
    )
    .expect("density options");
    let camps = repository().join("geodata/nk-prison-camps/camps.geojson");
    let configs = [
        ("camps", camps, toml::Table::new()),
        ("points", points, density_options),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    configs
        .into_iter()
        .map(|(id, path, options)| {
            let config = SourceConfig {
                path,
                name: None,
                attribution: None,
                description: None,
                options,
            };
            runtime
                .block_on(open_source(id, &config))
                .unwrap_or_else(|reason| panic!("open {id}: {reason}"))
        })
        .collect()
});

/// Parses a tile request given as four lines, `z`, `x`, the last path segment
/// (`{y}[@2x].{ext}`) and the query string, against a vector and a density source.
pub(crate) fn tile_request(text: &str) {
    let mut lines = text.splitn(4, '\n');
    let z = lines.next().unwrap_or_default();
    let x = lines.next().unwrap_or_default();
    let name = lines.next().unwrap_or_default();
    let query = lines.next().unwrap_or_default();
    for source in SOURCES.iter() {
        let _ = tessera::server::parse_tile_request(source, z, x, name, query);
    }
    let route = "/tiles/{source}/{z}/{x}/{name}";
    let _ = tessera::server::guard::undecodable_parameter(route, text);
}

/// Loads `bytes` as a GeoJSON vector source through OGR and encodes two of its tiles.
pub(crate) fn vector_geojson(bytes: &[u8]) {
    let file = scratch_folder().join("input.geojson");
    std::fs::write(&file, bytes).expect("write the input");
    let options = VectorOptions {
        max_features_per_tile: 50,
        ..VectorOptions::default()
    };
    if let Ok(source) = VectorSource::open(&file, options) {
        let root = TileCoord::new(0, 0, 0).expect("the world tile");
        let _ = source.tile_counted(root);
        let _ = source.tile(TileCoord::new(3, 6, 3).expect("a zoom 3 tile"));
    }
}

/// Loads `bytes` after the first as the point file of a density source, CSV when the first
/// byte is even and GeoJSON when it is odd, and renders its world tile as MVT and PNG.
pub(crate) fn density_points(bytes: &[u8]) {
    let Some((&choice, content)) = bytes.split_first() else {
        return;
    };
    let (name, options) = if choice % 2 == 0 {
        (
            "points.csv",
            "kind = \"points\"\nlatitude = \"lat\"\nlongitude = \"lon\"\ndate = \"date\"\ncategories = \"category\"\ncategory_separator = \"|\"",
        )
    } else {
        (
            "points.geojson",
            "kind = \"points\"\ndate = \"date\"\ncategories = \"category\"",
        )
    };
    let file = scratch_folder().join(name);
    std::fs::write(&file, content).expect("write the input");
    let options: DensityOptions = toml::from_str(options).expect("density options");
    if let Ok(source) = DensitySource::open(&file, options) {
        let root = TileCoord::new(0, 0, 0).expect("the world tile");
        let filter = Filter::default();
        let heat = HeatmapRequest::default();
        let _ = source.render(root, 1, TileFormat::Mvt, &filter, heat);
        let _ = source.render(root, 1, TileFormat::Png, &filter, heat);
    }
}

/// Loads `bytes` after the first as a glTF model, binary (`.glb`) when the first byte is
/// even and JSON (`.gltf`) when it is odd, and cuts it into a floorplan.
pub(crate) fn gltf(bytes: &[u8]) {
    let Some((&choice, content)) = bytes.split_first() else {
        return;
    };
    let name = if choice % 2 == 0 {
        "model.glb"
    } else {
        "model.gltf"
    };
    let file = scratch_folder().join(name);
    std::fs::write(&file, content).expect("write the input");
    let options = FloorplanOptions {
        anchor: Some([126.0, 39.5]),
        ..FloorplanOptions::default()
    };
    let _ = FloorplanSource::open(&file, &options);
}
