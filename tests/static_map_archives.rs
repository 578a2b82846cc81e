//! Static maps of MBTiles and PMTiles archives: raster archive tiles mosaicked like imagery
//! and named in the PDF's provenance.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestServer, decode_image, geodata, have_program};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera::config::Config;

const PLAIN: &str = "scalebar=false&attribution=false";

/// Centre of the Sentinel-2 sample scene, where a 512-pixel map at zoom 10 or 12 shows only
/// the scene.
const SCENE_CENTRE: &str = "-11.4247,24.8013";

/// Writes a style document named `name` into `styles`.
fn write_style(styles: &Path, name: &str, sources: &Value, layers: &Value) {
    let style = json!({"version": 8, "name": name, "sources": sources, "layers": layers});
    std::fs::write(styles.join(format!("{name}.json")), style.to_string()).expect("write style");
}

/// Makes an MBTiles of PNG tiles of the Sentinel-2 scene with GDAL, as
/// `scripts/bench_peers.py` does, or returns `None` when GDAL's programs are missing.
fn sentinel_mbtiles(folder: &Path) -> Option<PathBuf> {
    if !have_program("gdal_translate") || !have_program("gdaladdo") {
        assert!(
            std::env::var_os("CI").is_none(),
            "gdal-bin is missing in CI: run scripts/setup --test"
        );
        eprintln!("SKIPPED: gdal_translate or gdaladdo is not installed (Debian: gdal-bin)");
        return None;
    }
    let archive = folder.join("scene.mbtiles");
    let scene = geodata("sentinel2-29rkh/TCI.tif");
    let translated = Command::new("gdal_translate")
        .args(["-q", "-of", "MBTILES", "-co", "TILE_FORMAT=PNG"])
        .arg(&scene)
        .arg(&archive)
        .status()
        .expect("gdal_translate starts");
    assert!(translated.success(), "gdal_translate failed");
    let overviews = Command::new("gdaladdo")
        .args(["-q", "-r", "average"])
        .arg(&archive)
        .args(["2", "4", "8", "16"])
        .status()
        .expect("gdaladdo starts");
    assert!(overviews.success(), "gdaladdo failed");
    Some(archive)
}

async fn get_ok(server: &TestServer, path: &str) -> Vec<u8> {
    let response = server.get(path).await;
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes.to_vec()
}

/// Returns the mean absolute difference of the colour channels over the pixels opaque in
/// both images, and how many pixels that is.
fn mean_difference(a: &image::RgbaImage, b: &image::RgbaImage) -> (f64, u64) {
    let mut total = 0_u64;
    let mut pixels = 0_u64;
    for (left, right) in a.pixels().zip(b.pixels()) {
        if left[3] < 255 || right[3] < 255 {
            continue;
        }
        pixels += 1;
        for channel in 0..3 {
            total += u64::from(left[channel].abs_diff(right[channel]));
        }
    }
    (total as f64 / (pixels.max(1) * 3) as f64, pixels)
}

fn poppler_installed() -> bool {
    let installed = ["pdftotext", "pdfimages"].into_iter().all(have_program);
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "poppler-utils is missing in CI: run scripts/setup --test"
        );
        eprintln!("SKIPPED: poppler-utils is not installed; run scripts/setup --test");
    }
    installed
}

/// Runs a poppler program on a PDF and returns its standard output.
fn poppler(program: &str, args: &[&str], pdf: &[u8]) -> String {
    let file = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("temporary file");
    std::fs::write(file.path(), pdf).expect("write the PDF");
    let mut command = Command::new(program);
    command.args(args).arg(file.path());
    if program == "pdftotext" {
        command.arg("-");
    }
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{program} did not start: {error}"));
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read the served file");
    Sha256::digest(&bytes)
        .iter()
        .fold(String::new(), |mut text, byte| {
            use std::fmt::Write as _;
            write!(text, "{byte:02x}").expect("writing to a String cannot fail");
            text
        })
}

#[tokio::test]
async fn raster_archive_matches_cog() {
    let folder = tempfile::tempdir().expect("tempdir");
    let Some(archive) = sentinel_mbtiles(folder.path()) else {
        return;
    };
    let styles = folder.path().join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    let raster = |id: &str| json!([{"id": "imagery", "type": "raster", "source": id}]);
    let source = |id: &str| json!({id: {"type": "raster", "url": format!("/tiles/{id}.json")}});
    write_style(&styles, "from-archive", &source("scene"), &raster("scene"));
    write_style(&styles, "from-cog", &source("TCI"), &raster("TCI"));
    let server = TestServer::start(Config {
        paths: vec![archive.clone(), geodata("sentinel2-29rkh/TCI.tif")],
        styles,
        ..Config::default()
    })
    .await;
    let tilejson = server.json("/tiles/scene.json").await;
    let maxzoom = tilejson["maxzoom"].as_u64().expect("maxzoom");
    // Zoom 10 reads the archive's deepest tiles; zoom 12 enlarges them past its maximum.
    for zoom in [10, 12] {
        let path =
            |style: &str| format!("/static/{style}/{SCENE_CENTRE},{zoom}/512x512.png?{PLAIN}");
        let from_archive = decode_image(&get_ok(&server, &path("from-archive")).await);
        let from_cog = decode_image(&get_ok(&server, &path("from-cog")).await);
        let (difference, compared) = mean_difference(&from_archive, &from_cog);
        assert!(
            compared > 512 * 512 * 9 / 10,
            "zoom {zoom}: only {compared} pixels opaque in both maps (archive maxzoom {maxzoom})"
        );
        assert!(
            difference < 6.0,
            "zoom {zoom}: mean absolute difference {difference:.2} from the COG's map"
        );
    }
    if !poppler_installed() {
        return;
    }
    let pdf = get_ok(
        &server,
        &format!("/static/from-archive/{SCENE_CENTRE},10/512x512.pdf?dpi=72"),
    )
    .await;
    let text: String = poppler("pdftotext", &["-enc", "UTF-8"], &pdf)
        .split_whitespace()
        .collect();
    assert!(
        text.contains("scene.mbtiles"),
        "the archive is missing from the provenance: {text}"
    );
    assert!(
        text.contains(&sha256_hex(&archive)),
        "the archive's SHA-256 is missing from the provenance: {text}"
    );
}
