//! Real clients against the real server: GDAL's MVT and PNG readers, and MapLibre GL JS in
//! headless Chromium rendering the default style.

mod common;

use std::process::Command;

use common::{TestServer, have_program, repo};
use tessera::tile::lonlat_to_tile;

/// In CI a missing client is a failure; on a developer's machine the test prints what to
/// install and passes.
fn require(program: &str, install_hint: &str) -> bool {
    if have_program(program) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is missing in CI: {install_hint}"
    );
    eprintln!("SKIPPED: {program} is not installed; {install_hint}");
    false
}

#[tokio::test]
async fn gdal_mvt_driver_reads_a_vector_tile() {
    if !require("ogrinfo", "run scripts/setup to install gdal-bin") {
        return;
    }
    let server = TestServer::sample().await;
    // Camp 14, Kaechon: 125.95 E, 39.58 N (from camps.geojson).
    let tile = lonlat_to_tile(125.95, 39.58, 8);
    let url = server.url(&format!(
        "/tiles/camps/{}/{}/{}.pbf",
        tile.z, tile.x, tile.y
    ));
    let server_task = tokio::task::spawn_blocking(move || {
        Command::new("ogrinfo")
            .args(["-ro", "-al", "-geom=SUMMARY", &format!("/vsicurl/{url}")])
            .output()
    });
    let output = server_task.await.expect("join").expect("run ogrinfo");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ogrinfo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("Layer name: camps"), "{text}");
    assert!(
        text.contains("Camp 14"),
        "the camp's name is read back: {text}"
    );
    assert!(
        text.contains("kind (String)") || text.contains("kind: String"),
        "typed fields: {text}"
    );
}

#[tokio::test]
async fn gdal_reads_an_imagery_tile_over_http() {
    if !require("gdalinfo", "run scripts/setup to install gdal-bin") {
        return;
    }
    let server = TestServer::sample().await;
    let tile = lonlat_to_tile(-11.43, 24.8, 9);
    let url = server.url(&format!("/tiles/TCI/{}/{}/{}.png", tile.z, tile.x, tile.y));
    let output = tokio::task::spawn_blocking(move || {
        Command::new("gdalinfo")
            .args(["-stats", &format!("/vsicurl/{url}")])
            .output()
    })
    .await
    .expect("join")
    .expect("run gdalinfo");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "gdalinfo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("Driver: PNG"), "{text}");
    assert!(text.contains("Size is 256, 256"), "{text}");
}

#[tokio::test]
async fn maplibre_renders_the_style_without_errors() {
    if !require("node", "install Node.js") || !require("chromium", "run scripts/setup --test") {
        return;
    }
    let script = repo().join("tests/browser/render.mjs");
    if !repo()
        .join("tests/browser/node_modules/playwright-core")
        .is_dir()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "playwright-core is missing in CI: run scripts/setup --test"
        );
        eprintln!("SKIPPED: run `npm ci --prefix tests/browser` for the browser test");
        return;
    }
    let server = TestServer::sample().await;
    // Over the Sentinel-2 scene at zoom 8, so that the imagery is drawn; the camps are drawn
    // at the second stop.
    for (name, view) in [
        ("viewer-sentinel2", "#8/24.8/-11.4"),
        ("viewer-camps", "#6/40/126.5"),
    ] {
        let url = server.url(&format!("/?style=tessera{view}"));
        let screenshot = repo().join(format!("docs/{name}.png"));
        let output = tokio::task::spawn_blocking({
            let script = script.clone();
            move || {
                Command::new("node")
                    .arg(&script)
                    .arg(&url)
                    .arg(&screenshot)
                    .output()
            }
        })
        .await
        .expect("join")
        .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{name}: MapLibre reported problems:\n{stdout}\n{stderr}"
        );
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{name}: no JSON summary ({error}): {stdout}"));
        assert_eq!(
            summary["errors"].as_array().map(Vec::len),
            Some(0),
            "{summary}"
        );
        if name == "viewer-camps" {
            assert!(
                summary["renderedFeatures"].as_u64().unwrap_or(0) > 0,
                "camps drawn: {summary}"
            );
        }
    }
}
