//! Density sources over HTTP: aggregation and heat-map tiles, filters, TileJSON and the
//! legend, on the sample missile tests and on the real data sets of the shared folder.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::{TestServer, decode_image, geodata, have_program, repo, shared_data};
use geozero::mvt::{Message, Tile};
use serde_json::{Value, json};
use tessera::config::{Config, SourceConfig};
use tessera::source::Backend;
use tessera::tile::{TileCoord, lonlat_to_tile, tiles_in_bbox};

/// Serves one density source `id` over `path` with `options` (a TOML table).
async fn serve_points(id: &str, path: &Path, options: &str) -> TestServer {
    let options: toml::Table = toml::from_str(options).expect("options are TOML");
    let mut sources = BTreeMap::new();
    sources.insert(
        id.to_owned(),
        SourceConfig {
            path: path.to_owned(),
            name: None,
            attribution: None,
            description: None,
            options,
        },
    );
    TestServer::start(Config {
        sources,
        ..Config::default()
    })
    .await
}

/// Decodes the `cells` features of a tile as (id, count, centre_in_tile).
fn cells(bytes: &[u8]) -> Vec<(u64, f64, bool)> {
    let tile = Tile::decode(bytes).expect("an MVT tile");
    let mut out = Vec::new();
    for layer in tile.layers.iter().filter(|layer| layer.name == "cells") {
        for feature in &layer.features {
            let mut count = None;
            let mut home = None;
            for pair in feature.tags.chunks_exact(2) {
                let value = &layer.values[pair[1] as usize];
                match layer.keys[pair[0] as usize].as_str() {
                    "count" => count = value.double_value,
                    "centre_in_tile" => home = value.bool_value,
                    _ => {}
                }
            }
            out.push((
                feature.id.expect("cells have ids"),
                count.expect("cells have a count"),
                home.expect("cells say where their centre is"),
            ));
        }
    }
    out
}

/// Fetches every tile of zoom `z` over the source's bounds and one tile beyond, and returns
/// the sum of the counts of cells whose centre is in their tile. Checks on the way that a
/// cell has one count in every tile it appears in, and that its centre is in exactly one.
async fn sum_cells(server: &TestServer, id: &str, z: u8, query: &str) -> f64 {
    let tilejson = server.json(&format!("/tiles/{id}.json")).await;
    let bounds: Vec<f64> = serde_json::from_value(tilejson["bounds"].clone()).expect("bounds");
    let (west, south) = (bounds[0], bounds[1]);
    let (east, north) = (bounds[2], bounds[3]);
    let inside: Vec<TileCoord> =
        tiles_in_bbox(&tessera::tile::Bbox::new(west, south, east, north), z).collect();
    let last = (1_i64 << z) - 1;
    let mut tiles = std::collections::BTreeSet::new();
    for tile in inside {
        for dx in -1..=1 {
            for dy in -1..=1 {
                let (x, y) = (i64::from(tile.x) + dx, i64::from(tile.y) + dy);
                if (0..=last).contains(&x) && (0..=last).contains(&y) {
                    tiles.insert((x, y));
                }
            }
        }
    }
    let mut total = 0.0;
    let mut seen: HashMap<u64, (f64, usize)> = HashMap::new();
    for (x, y) in tiles {
        let response = server
            .get(&format!("/tiles/{id}/{z}/{x}/{y}.pbf{query}"))
            .await;
        match response.status().as_u16() {
            200 => {}
            204 | 404 => continue,
            other => panic!("tile {z}/{x}/{y}{query}: status {other}"),
        }
        let bytes = response.bytes().await.expect("body");
        for (cell, count, home) in cells(&bytes) {
            let entry = seen.entry(cell).or_insert((count, 0));
            assert!(
                (entry.0 - count).abs() < 1e-9,
                "cell {cell} has counts {} and {count}",
                entry.0
            );
            if home {
                entry.1 += 1;
                total += count;
            }
        }
    }
    for (cell, (_, homes)) in seen {
        assert_eq!(homes, 1, "cell {cell} has its centre in {homes} tiles");
    }
    total
}

async fn status_and_parameter(server: &TestServer, path: &str) -> (u16, Option<String>) {
    let response = server.get(path).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["parameter"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn sample_missile_tests_are_served() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let catalog = server.json("/catalog").await;
    let entry = &catalog["sources"][0];
    assert_eq!(entry["id"], "missile-tests");
    assert_eq!(entry["kind"], "density");

    let tilejson = server.json("/tiles/missile-tests.json").await;
    let density = &tilejson["tessera:density"];
    assert_eq!(density["rows"], 339);
    assert_eq!(density["points"], 338);
    assert_eq!(density["not_placed"]["count"], 1);
    assert_eq!(density["not_placed"]["rows"][0]["row"], 119);
    assert!(
        density["not_placed"]["rows"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("\"unknown\"")),
        "{density}"
    );
    assert_eq!(density["date_range"], json!(["1984-04-09", "2026-04-18"]));
    let categories = density["categories"].as_array().expect("categories");
    let srbm = categories
        .iter()
        .find(|c| c["path"] == "SRBM")
        .expect("SRBM is a parent category");
    assert!(srbm["count"].as_f64().expect("count") > 100.0);
    let layers: Vec<&str> = tilejson["vector_layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|layer| layer["id"].as_str())
        .collect();
    assert_eq!(layers, ["cells", "points", "facilities"]);

    let total = sum_cells(&server, "missile-tests", 5, "").await;
    assert!((total - 338.0).abs() < 1e-9, "{total}");

    // Far from the points, tiles are empty rather than missing, so clients do not overzoom.
    for path in [
        "/tiles/missile-tests/5/0/0.pbf",
        "/tiles/missile-tests/5/0/0.png",
    ] {
        assert_eq!(server.get(path).await.status(), 204, "{path}");
    }
}

#[tokio::test]
async fn tilejson_carries_the_filter() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let tilejson = server
        .json("/tiles/missile-tests.json?category=SRBM&from=2017&to=2019-06")
        .await;
    let tiles = tilejson["tiles"][0].as_str().expect("tile URL");
    assert!(
        tiles.ends_with("/tiles/missile-tests/{z}/{x}/{y}.pbf?from=2017&to=2019-06&category=SRBM"),
        "{tiles}"
    );
    let heatmap = tilejson["tessera:density"]["heatmap_tiles"][0]
        .as_str()
        .expect("heat-map URL");
    assert!(heatmap.contains(".png?from=2017"), "{heatmap}");
    let legend = tilejson["tessera:density"]["legend"]
        .as_str()
        .expect("legend URL");
    assert!(legend.contains("legend.json?z={z}&from=2017"), "{legend}");
}

#[tokio::test]
async fn filters_split_the_counts() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let id = "missile-tests";
    let all = sum_cells(&server, id, 6, "").await;
    let before = sum_cells(&server, id, 6, "?to=2016").await;
    let after = sum_cells(&server, id, 6, "?from=2017").await;
    assert!(
        (before + after - all).abs() < 1e-9,
        "{before} + {after} != {all}"
    );
    let parent = sum_cells(&server, id, 6, "?category=ICBM").await;
    let tilejson = server.json(&format!("/tiles/{id}.json")).await;
    let children: f64 = tilejson["tessera:density"]["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .filter(|c| c["parent"] == "ICBM")
        .map(|c| c["count"].as_f64().expect("count"))
        .sum();
    assert!(parent > 0.0);
    assert!(
        (parent - children).abs() < 1e-9,
        "ICBM {parent}, its children {children}"
    );
    let facility = sum_cells(&server, id, 6, "?facility=sohae").await;
    assert!(facility > 0.0, "{facility}");
    assert!(facility < all, "{facility} of {all}");
}

#[tokio::test]
async fn invalid_filters_are_rejected_by_name() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let cases = [
        ("/tiles/missile-tests/5/27/12.pbf?from=2017-13", "from"),
        ("/tiles/missile-tests/5/27/12.pbf?from=2019&to=2018", "to"),
        (
            "/tiles/missile-tests/5/27/12.pbf?category=Cruise",
            "category",
        ),
        (
            "/tiles/missile-tests/5/27/12.pbf?facility=atlantis",
            "facility",
        ),
        ("/tiles/missile-tests/5/27/12.png?radius=500", "radius"),
        ("/tiles/missile-tests/5/27/12.png?ramp=jet", "ramp"),
        ("/tiles/missile-tests.json?to=soon", "to"),
        ("/density/missile-tests/legend.json", "z"),
        ("/density/missile-tests/legend.json?z=30", "z"),
        (
            "/density/missile-tests/legend.json?z=5&category=Nope",
            "category",
        ),
        ("/tiles/missile-tests/5/27/12.jpg", "format"),
        // A misspelt or repeated parameter is rejected, not ignored.
        ("/tiles/missile-tests/5/27/12.pbf?form=2019", "query"),
        (
            "/tiles/missile-tests/5/27/12.pbf?from=2017&from=2019",
            "from",
        ),
        ("/tiles/missile-tests.json?From=2019", "query"),
    ];
    for (path, parameter) in cases {
        let (status, named) = status_and_parameter(&server, path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(named.as_deref(), Some(parameter), "{path}");
    }
}

#[tokio::test]
async fn filtered_variants_are_cached_apart() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let tile = lonlat_to_tile(125.67, 39.2, 6);
    let path = format!("/tiles/missile-tests/{tile}.pbf");
    let etag = |response: &reqwest::Response| {
        response.headers()["etag"]
            .to_str()
            .expect("ASCII")
            .to_owned()
    };
    let all = server.get(&path).await;
    let filtered = server.get(&format!("{path}?from=2020")).await;
    assert_eq!(all.status(), 200);
    assert_eq!(filtered.status(), 200);
    let (all_tag, filtered_tag) = (etag(&all), etag(&filtered));
    assert_ne!(
        all_tag, filtered_tag,
        "the filter changes the bytes and the ETag"
    );
    let again = server.get(&format!("{path}?from=2020")).await;
    assert_eq!(etag(&again), filtered_tag, "tiles are deterministic");
    let revalidated = server
        .client
        .get(server.url(&format!("{path}?from=2020")))
        .header("if-none-match", &filtered_tag)
        .send()
        .await
        .expect("request");
    assert_eq!(revalidated.status(), 304);
}

/// Returns the largest step between two neighbouring pixels as they are seen: colour
/// channels weighted by alpha, and alpha itself.
fn step(a: image::Rgba<u8>, b: image::Rgba<u8>) -> i32 {
    let seen = |p: image::Rgba<u8>, c: usize| {
        if c == 3 {
            i32::from(p[3])
        } else {
            i32::from(p[c]) * i32::from(p[3]) / 255
        }
    };
    (0..4)
        .map(|c| (seen(a, c) - seen(b, c)).abs())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn heat_map_has_no_seams() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    // Pyongyang's airport, where most tests were launched, lies in the western tile. At z8
    // and z9 its kernel of 64 pixels reaches across the border into the eastern tile.
    for (z, radius) in [(7, 24), (8, 64), (9, 64)] {
        let centre = lonlat_to_tile(125.673_256, 39.200_159, z);
        let west = format!(
            "/tiles/missile-tests/{}/{}/{}.png?radius={radius}",
            z, centre.x, centre.y
        );
        let east = format!(
            "/tiles/missile-tests/{}/{}/{}.png?radius={radius}",
            z,
            centre.x + 1,
            centre.y
        );
        let west = server.get(&west).await;
        let east = server.get(&east).await;
        assert_eq!(west.status(), 200, "z{z}: the western tile has heat");
        assert_eq!(east.status(), 200, "z{z}: the eastern tile has heat");
        let west = decode_image(&west.bytes().await.expect("body"));
        let east = decode_image(&east.bytes().await.expect("body"));
        let mut coloured = 0;
        for row in 0..256 {
            let (w1, w0) = (*west.get_pixel(254, row), *west.get_pixel(255, row));
            let (e0, e1) = (*east.get_pixel(0, row), *east.get_pixel(1, row));
            coloured += usize::from(w0[3] > 0 || e0[3] > 0);
            // Across the border the field changes as smoothly as on either side of it.
            let across = step(w0, e0);
            let inside = step(w1, w0).max(step(e0, e1));
            assert!(
                across <= inside * 2 + 3,
                "z{z} row {row}: {across} across the border, {inside} beside it"
            );
        }
        assert!(coloured > 0, "z{z}: the border crosses the heat");
    }
}

#[tokio::test]
async fn heat_map_at_double_scale() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let tile = lonlat_to_tile(125.67, 39.2, 6);
    let single = server
        .get(&format!("/tiles/missile-tests/{tile}.png"))
        .await;
    let double = server
        .get(&format!("/tiles/missile-tests/{tile}@2x.png?ramp=magma"))
        .await;
    assert_eq!(single.status(), 200);
    assert_eq!(double.status(), 200);
    let single = decode_image(&single.bytes().await.expect("body"));
    let double = decode_image(&double.bytes().await.expect("body"));
    assert_eq!(single.dimensions(), (256, 256));
    assert_eq!(double.dimensions(), (512, 512));
    let opaque = |image: &image::RgbaImage| image.pixels().filter(|p| p[3] > 0).count();
    let ratio = opaque(&double) as f64 / opaque(&single) as f64;
    assert!(
        ratio > 3.0,
        "twice the radius in pixels covers about four times the pixels: {ratio}"
    );
    assert!(ratio < 5.0, "{ratio}");
}

#[tokio::test]
async fn legend_returns_the_zoom_scale() {
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let legend = server.json("/density/missile-tests/legend.json?z=6").await;
    let max = legend["max"].as_f64().expect("max");
    assert!(
        max >= 56.0,
        "the Pyongyang airport site alone has 56 tests: {legend}"
    );
    assert_eq!(legend["ramp"], "heat");
    assert_eq!(legend["stops"].as_array().map(Vec::len), Some(6));
    let narrowed = server
        .json("/density/missile-tests/legend.json?z=6&category=ICBM&ramp=viridis")
        .await;
    assert!(narrowed["max"].as_f64().expect("max") < max);
    assert_eq!(narrowed["ramp"], "viridis");
    assert_eq!(narrowed["filter"], "category=ICBM");
}

/// The NKPD export: detention events joined to facilities by name, three events per row.
const NKPD_OPTIONS: &str = r#"
kind = "points"
date_order = "dmy"
facility = "Related Penal Facilities"
facility_separator = "|"
category_separator = "|"
category_suffix = "_"
events = [
  { date = "Event 1 Date Range", categories = "Event 1 Violations" },
  { date = "Event 2 Date Range", categories = "Event 2 Violations" },
  { date = "Event 3 Date Range", categories = "Event 3 Violation" },
]
[facilities]
path = "NKPD_penal_facilities.csv"
key = "Title"
lat_lon = "Geolocation"
"#;

#[tokio::test]
async fn nkpd_events_join_their_facilities() {
    let Some(path) = shared_data("nkpd-korea-future-export/NKPD_detainees.csv") else {
        return;
    };
    let server = serve_points("nkpd", &path, NKPD_OPTIONS).await;
    let tilejson = server.json("/tiles/nkpd.json").await;
    let density = &tilejson["tessera:density"];
    assert_eq!(density["rows"], 1425);
    let categories: Vec<&str> = density["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert!(categories.contains(&"Torture & CID"), "{categories:?}");
    assert!(
        categories
            .contains(&"Violation of the Right to Freedom of Conscience, Thought and Religion"),
        "{categories:?}"
    );
    // The export spells some types several ways ("Forced Labour", "Forced labour"), and
    // those variants stay apart. The per-detainee suffixes are cut from every one.
    assert!(
        categories.iter().all(|c| !c.contains('_')),
        "suffixes are cut: {categories:?}"
    );
    assert_eq!(
        density["not_placed"]["rows"].as_array().map(Vec::len),
        Some(100)
    );
    // TileJSON lists the first 100, and the source keeps more.
    let source = server.state.catalog.get("nkpd").expect("served");
    let Backend::Density(points) = &source.backend else {
        panic!("nkpd is a density source");
    };
    let reasons: Vec<&str> = points
        .loaded()
        .unplaced
        .iter()
        .map(|unplaced| unplaced.reason.as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("ends before it starts")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("has no location")),
        "{reasons:?}"
    );
    let events = density["events"].as_f64().expect("events");
    assert!(events > 1200.0, "{events}");
    assert!(
        events < 1531.0,
        "at most every dated event is served: {events}"
    );

    // Split weights keep each event's total at 1, so the cells sum to the events served.
    let total = sum_cells(&server, "nkpd", 7, "").await;
    assert!(
        (total - events).abs() < 1e-6,
        "cells {total}, events {events}"
    );
    let torture = sum_cells(
        &server,
        "nkpd",
        7,
        "?category=Torture%20%26%20CID&from=2000&to=2009",
    )
    .await;
    assert!(torture > 10.0, "{torture}");
    assert!(torture < total, "{torture} of {total}");
    let comma = "Violation%20of%20the%20Right%20to%20Freedom%20of%20Conscience%2C%20Thought%20and%20Religion";
    let religion = sum_cells(&server, "nkpd", 7, &format!("?category={comma}")).await;
    assert!(religion > 0.0, "a category with a comma is one category");
}

#[tokio::test]
async fn washington_post_shootings_sum_at_every_zoom() {
    let Some(path) = shared_data("wapo-fatal-force-v2/fatal-police-shootings-data.csv") else {
        return;
    };
    let options = r#"
kind = "points"
latitude = "latitude"
longitude = "longitude"
date = "date"
categories = ["threat_type", "armed_with"]
grid = "square"
cell_size = 64
"#;
    let server = serve_points("wapo", &path, options).await;
    let tilejson = server.json("/tiles/wapo.json").await;
    let density = &tilejson["tessera:density"];
    assert_eq!(density["rows"], 10_210);
    let points = density["points"].as_f64().expect("points");
    let not_placed = density["not_placed"]["count"].as_f64().expect("count");
    assert!((points + not_placed - 10_210.0).abs() < 1e-9);
    assert!(
        not_placed >= 1000.0,
        "rows without coordinates are reported: {not_placed}"
    );
    assert_eq!(
        density["not_placed"]["rows"][0]["reason"],
        "the location is missing"
    );
    for z in [2, 4] {
        let total = sum_cells(&server, "wapo", z, "").await;
        assert!((total - points).abs() < 1e-6, "z{z}: {total} of {points}");
    }
    let year = sum_cells(&server, "wapo", 3, "?from=2020&to=2020").await;
    assert!(year > 500.0, "{year}");
    assert!(year < 1500.0, "{year}");
    let guns = sum_cells(&server, "wapo", 3, "?category=armed_with").await;
    assert!((guns - points).abs() < 1e-6 || guns < points, "{guns}");
}

#[tokio::test]
async fn bellingcat_incidents_with_tag_paths() {
    let (Some(events), Some(associations)) = (
        shared_data("bellingcat-civilian-harm-ukraine/export_events.json"),
        shared_data("bellingcat-civilian-harm-ukraine/export_associations.json"),
    ) else {
        return;
    };
    // Tags are ids into the associations file; the test writes them as `group::value` paths.
    let read = |path: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON")
    };
    let paths: HashMap<String, String> = read(&associations)
        .as_array()
        .expect("associations")
        .iter()
        .map(|a| {
            let path: Vec<&str> = a["filter_paths"]
                .as_array()
                .expect("paths")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            (a["id"].as_str().expect("id").to_owned(), path.join("::"))
        })
        .collect();
    let mut incidents = read(&events);
    let count = incidents.as_array().map_or(0, Vec::len);
    for incident in incidents.as_array_mut().expect("events") {
        let tags: Vec<Value> = incident["associations"]
            .as_array()
            .expect("associations")
            .iter()
            .filter_map(|id| paths.get(id.as_str()?).cloned().map(Value::from))
            .collect();
        incident["tags"] = Value::Array(tags);
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let file = folder.path().join("incidents.json");
    std::fs::write(&file, incidents.to_string()).expect("write");
    let options = r#"
kind = "points"
latitude = "latitude"
longitude = "longitude"
date = "date"
date_order = "mdy"
categories = "tags"
"#;
    let server = serve_points("ukraine", &file, options).await;
    let tilejson = server.json("/tiles/ukraine.json").await;
    let density = &tilejson["tessera:density"];
    let points = density["points"].as_f64().expect("points");
    assert!(
        (points + density["not_placed"]["count"].as_f64().expect("count") - count as f64).abs()
            < 1e-9
    );
    assert_eq!(density["date_range"][0], "2022-02-24");
    let total = sum_cells(&server, "ukraine", 6, "").await;
    assert!((total - points).abs() < 1e-6, "{total} of {points}");
    let residential = sum_cells(
        &server,
        "ukraine",
        6,
        "?category=Type%20of%20area%20affected::Residential",
    )
    .await;
    let area = sum_cells(
        &server,
        "ukraine",
        6,
        "?category=Type%20of%20area%20affected",
    )
    .await;
    assert!(
        residential > 0.0 && residential <= area,
        "{residential} of {area}"
    );
}

#[tokio::test]
async fn viewer_draws_the_heat_map() {
    let browser = repo().join("tests/browser");
    if !have_program("node")
        || !have_program("chromium")
        || !browser.join("node_modules/playwright-core").is_dir()
    {
        eprintln!(
            "SKIPPED: the browser test needs node, chromium and `npm ci --prefix tests/browser`"
        );
        return;
    }
    let server = TestServer::serving(&[geodata("nk-missile-tests")]).await;
    let folder = tempfile::tempdir().expect("tempdir");
    // The density style, and the catalog's sources alone, where the viewer adds the heat map.
    for view in [
        "/?style=tessera-density#6/39.5/126.5",
        "/?style=#6/39.5/126.5",
    ] {
        let screenshot = folder.path().join("density.png");
        let url = server.url(view);
        let script = browser.join("render.mjs");
        let output = tokio::task::spawn_blocking({
            let screenshot = screenshot.clone();
            move || {
                std::process::Command::new("node")
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
        assert!(
            output.status.success(),
            "{view}: MapLibre reported problems:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let image = decode_image(&std::fs::read(&screenshot).expect("screenshot"));
        // The heat ramp's hot end is red: some pixels near Pyongyang are strongly red.
        let red = image
            .pixels()
            .filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80)
            .count();
        assert!(red > 20, "{view}: the heat map is drawn: {red} red pixels");
    }
}
