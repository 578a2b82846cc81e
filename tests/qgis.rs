//! QGIS 3 (Debian's `qgis` and `python3-qgis`, headless) against the real server: the script
//! `tests/qgis/render_layers.py` loads the XYZ imagery, the WMTS layer, the vector tiles with
//! the server's MapLibre style and the OGC API – Features collection, and renders each.

mod common;

use std::process::Command;

use common::{TestServer, decode_image, repo};

/// Debian's own Python, the only one that imports the `qgis` module of `python3-qgis`.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

fn qgis_installed() -> bool {
    Command::new(DEBIAN_PYTHON)
        .args(["-c", "import qgis.core"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test]
async fn qgis_loads_and_renders_every_layer_kind() {
    if !qgis_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "QGIS is missing in CI: run scripts/setup --test to install qgis and python3-qgis"
        );
        eprintln!("SKIPPED: QGIS is not installed; run scripts/setup --test");
        return;
    }
    let server = TestServer::sample().await;
    let folder = tempfile::tempdir().expect("tempdir");
    let script = repo().join("tests/qgis/render_layers.py");
    let base = server.url("");
    let out = folder.path().to_owned();
    // Qt requires a runtime folder that only its owner can read.
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("restrict the temporary folder");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(DEBIAN_PYTHON)
            .arg(&script)
            .arg(&base)
            .arg(&out)
            .env("QT_QPA_PLATFORM", "offscreen")
            // QGIS writes its settings and caches under HOME: keep them out of the user's.
            .env("HOME", &out)
            .env("XDG_RUNTIME_DIR", &out)
            .output()
    })
    .await
    .expect("join")
    .expect("run QGIS's Python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "QGIS failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|error| panic!("no JSON summary ({error}): {stdout}\n{stderr}"));

    for layer in ["xyz", "wmts", "vector_tiles", "features"] {
        assert_eq!(summary[layer]["valid"], true, "{layer}: {summary}");
    }
    // Imagery covers most of the 512 × 512 window over the scene.
    for layer in ["xyz", "wmts"] {
        let drawn = summary[layer]["drawn_pixels"].as_u64().unwrap_or(0);
        assert!(drawn > 200_000, "{layer}: {drawn} pixels drawn: {summary}");
    }
    // The style draws the camps with the served sprite's icons, picked by `kind`: about 5,600
    // icon pixels were measured, 980 of them the red of the kwanliso icon.
    let icons = summary["vector_tiles"]["icon_pixels"].as_u64().unwrap_or(0);
    assert!(
        icons > 1_000,
        "vector tiles: {icons} icon pixels: {summary}"
    );
    let kwanliso = summary["vector_tiles"]["kwanliso_pixels"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        kwanliso > 300,
        "vector tiles: {kwanliso} kwanliso pixels: {summary}"
    );
    let unconverted: Vec<&serde_json::Value> = summary["style_warnings"]
        .as_array()
        .expect("style_warnings")
        .iter()
        .filter(|warning| !warning.to_string().contains("raster"))
        .collect();
    assert!(
        unconverted.is_empty(),
        "QGIS converts every vector layer of the style: {unconverted:?}"
    );
    let features = &summary["features"];
    assert_eq!(features["features"], 24, "{summary}");
    assert!(
        features["names"].to_string().contains("Camp 15, Yodok"),
        "{summary}"
    );
    let drawn = features["drawn_pixels"].as_u64().unwrap_or(0);
    assert!(drawn > 100, "features: {drawn} pixels drawn: {summary}");

    let xyz = decode_image(&std::fs::read(folder.path().join("xyz.png")).expect("xyz render"));
    let wmts = decode_image(&std::fs::read(folder.path().join("wmts.png")).expect("wmts render"));
    let differing = xyz
        .pixels()
        .zip(wmts.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0.iter()).any(|(x, y)| x.abs_diff(*y) > 8))
        .count();
    assert!(
        differing < 512 * 512 / 100,
        "XYZ and WMTS draw the same imagery: {differing} pixels differ"
    );
}
