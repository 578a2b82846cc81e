//! Floorplans over HTTP: models sliced into vector tiles, decoded as a web map client would,
//! and the models themselves for 3D viewers.

mod common;
mod floorplan_support;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestServer, geodata, have_program, repo, shared_data};
use floorplan_support::block;
use geo::{Destination, Geodesic, Point};
use geozero::mvt::{Message as _, Tile, tile};
use tessera::config::{Config, SourceConfig};
use tessera::tile::{TileCoord, lonlat_to_tile};

/// A decoded feature of the `floorplan` layer: attributes and rings in lon/lat.
#[derive(Debug)]
struct PlanFeature {
    level: i64,
    kind: String,
    name: Option<String>,
    height: f64,
    base_height: f64,
    rings: Vec<Vec<(f64, f64)>>,
}

fn number(value: &tile::Value) -> Option<f64> {
    value
        .double_value
        .or(value.float_value.map(f64::from))
        .or(value.int_value.map(|v| v as f64))
        .or(value.uint_value.map(|v| v as f64))
        .or(value.sint_value.map(|v| v as f64))
}

/// Decodes the polygon rings of an MVT geometry into lon/lat.
fn rings(geometry: &[u32], tile: TileCoord, extent: u32) -> Vec<Vec<(f64, f64)>> {
    let zigzag = |v: u32| ((v >> 1) as i32) ^ -((v & 1) as i32);
    let bounds = tile.bounds_mercator();
    let to_lonlat = |x: i32, y: i32| {
        let mx = bounds.min_x + f64::from(x) / f64::from(extent) * (bounds.max_x - bounds.min_x);
        let my = bounds.max_y - f64::from(y) / f64::from(extent) * (bounds.max_y - bounds.min_y);
        tessera::tile::mercator_to_lonlat(mx, my)
    };
    let (mut x, mut y) = (0_i32, 0_i32);
    let mut out = Vec::new();
    let mut ring = Vec::new();
    let mut i = 0;
    while i < geometry.len() {
        let command = geometry[i] & 7;
        let count = (geometry[i] >> 3) as usize;
        i += 1;
        if command == 7 {
            out.push(std::mem::take(&mut ring));
            continue;
        }
        for _ in 0..count {
            x += zigzag(geometry[i]);
            y += zigzag(geometry[i + 1]);
            i += 2;
            ring.push(to_lonlat(x, y));
        }
    }
    out
}

async fn floorplan_tile(server: &TestServer, source: &str, tile: TileCoord) -> Vec<PlanFeature> {
    let path = format!("/tiles/{source}/{}/{}/{}.pbf", tile.z, tile.x, tile.y);
    let response = server.get(&path).await;
    if response.status() == 204 {
        return Vec::new();
    }
    assert_eq!(response.status(), 200, "GET {path}");
    let bytes = response.bytes().await.expect("body");
    let decoded = Tile::decode(bytes.as_ref()).expect("valid MVT");
    let layer = decoded
        .layers
        .iter()
        .find(|layer| layer.name == "floorplan")
        .expect("floorplan layer");
    layer
        .features
        .iter()
        .map(|feature| {
            let attributes: BTreeMap<&str, &tile::Value> = feature
                .tags
                .chunks_exact(2)
                .map(|pair| {
                    (
                        layer.keys[pair[0] as usize].as_str(),
                        &layer.values[pair[1] as usize],
                    )
                })
                .collect();
            PlanFeature {
                level: number(attributes["level"]).expect("level") as i64,
                kind: attributes["kind"].string_value.clone().expect("kind"),
                name: attributes.get("name").and_then(|v| v.string_value.clone()),
                height: number(attributes["height"]).expect("height"),
                base_height: number(attributes["base_height"]).expect("base_height"),
                rings: rings(&feature.geometry, tile, layer.extent.unwrap_or(4096)),
            }
        })
        .collect()
}

fn model_source(path: &Path, options: &str) -> SourceConfig {
    SourceConfig {
        path: path.to_owned(),
        name: None,
        attribution: None,
        description: None,
        options: toml::from_str(options).expect("options"),
    }
}

async fn serve_models(sources: Vec<(&str, SourceConfig)>) -> TestServer {
    TestServer::start(Config {
        sources: sources
            .into_iter()
            .map(|(id, source)| (id.to_owned(), source))
            .collect(),
        ..Config::default()
    })
    .await
}

/// The centre of a z20 tile in the Western Sahara, so that the block's rooms, which reach
/// about 12 m from the anchor, each fit in one tile of zoom 20 or below.
const ANCHOR: [f64; 2] = [-15.949_916_84, 23.720_139_878];
const ROTATION: f64 = 30.0;

/// Returns where a plan point (metres east and north in the model) lands for the anchor and
/// rotation, by a geodesic from the anchor: independent of the server's tangent plane.
fn expected_lonlat(x: f64, y: f64) -> (f64, f64) {
    let bearing = ROTATION + x.atan2(y).to_degrees();
    let point = Geodesic.destination(Point::new(ANCHOR[0], ANCHOR[1]), bearing, x.hypot(y));
    (point.x(), point.y())
}

/// Returns the distance in metres between two lon/lat points.
fn metres_apart(a: (f64, f64), b: (f64, f64)) -> f64 {
    geo::Distance::distance(&Geodesic, Point::new(a.0, a.1), Point::new(b.0, b.1))
}

async fn block_server(folder: &Path) -> TestServer {
    let path = block::write(folder, true);
    let options = format!(
        "anchor = [{}, {}]\nrotation = {ROTATION}\n",
        ANCHOR[0], ANCHOR[1]
    );
    serve_models(vec![("block", model_source(&path, &options))]).await
}

#[tokio::test]
async fn block_tilejson_lists_layer_and_levels() {
    let folder = tempfile::tempdir().expect("tempdir");
    let server = block_server(folder.path()).await;
    let tilejson = server.json("/tiles/block.json").await;
    assert_eq!(tilejson["minzoom"], 16);
    assert_eq!(tilejson["maxzoom"], 22);
    let layer = &tilejson["vector_layers"][0];
    assert_eq!(layer["id"], "floorplan");
    for field in ["level", "kind", "name", "height", "base_height"] {
        assert!(layer["fields"][field].is_string(), "field {field}: {layer}");
    }
    let levels = tilejson["tessera:levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert_eq!(levels[1]["base_height"], 3.0);
    assert!(
        tilejson["tessera:model"]
            .as_str()
            .is_some_and(|url| url.ends_with("/models/block.glb")),
        "{tilejson}"
    );
    let catalog = server.json("/catalog").await;
    assert_eq!(catalog["sources"][0]["kind"], "vector");
}

#[tokio::test]
async fn block_features_land_at_anchor_and_rotation() {
    let folder = tempfile::tempdir().expect("tempdir");
    let server = block_server(folder.path()).await;

    // Cell 2 as built: x from 5.2 to 10.2 m, y from 3.2 to 6.0 m.
    let corners =
        [(5.2, 3.2), (10.2, 3.2), (10.2, 6.0), (5.2, 6.0)].map(|(x, y)| expected_lonlat(x, y));
    let centre = expected_lonlat(7.7, 4.6);
    // The deepest zoom whose tile contains the whole room, so that it is not clipped.
    let tile = (16..=22)
        .rev()
        .map(|z| lonlat_to_tile(centre.0, centre.1, z))
        .find(|tile| {
            corners
                .iter()
                .all(|&(lon, lat)| lonlat_to_tile(lon, lat, tile.z) == *tile)
        })
        .expect("a tile contains the room");

    let features = floorplan_tile(&server, "block", tile).await;
    let cell = features
        .iter()
        .find(|f| f.name.as_deref() == Some("Cell 2"))
        .unwrap_or_else(|| panic!("no Cell 2 in {tile}: {features:#?}"));
    assert_eq!(cell.kind, "room");
    assert_eq!(cell.level, 0);
    let ring = &cell.rings[0];
    for corner in corners {
        let nearest = ring
            .iter()
            .map(|&vertex| metres_apart(vertex, corner))
            .fold(f64::INFINITY, f64::min);
        // A tile unit at this zoom is a few millimetres; the cut is exact.
        assert!(
            nearest < 0.05,
            "corner {corner:?} is {nearest} m from the outline {ring:?}"
        );
    }
}

#[tokio::test]
async fn block_levels_have_extrusion_heights() {
    let folder = tempfile::tempdir().expect("tempdir");
    let server = block_server(folder.path()).await;
    let centre = expected_lonlat(5.2, 3.1);
    let features = floorplan_tile(&server, "block", lonlat_to_tile(centre.0, centre.1, 17)).await;
    let kinds = |level: i64, kind: &str| {
        features
            .iter()
            .filter(|f| f.level == level && f.kind == kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(0, "room").len(), 3);
    assert_eq!(kinds(1, "room").len(), 2);
    assert_eq!(kinds(0, "opening").len(), 1);
    assert_eq!(kinds(1, "opening").len(), 1);
    for wall in kinds(1, "wall") {
        assert!((wall.base_height - 3.0).abs() < 0.01, "{wall:?}");
        assert!((wall.height - 5.8).abs() < 0.01, "{wall:?}");
    }
    let door = kinds(0, "opening")[0];
    assert!((door.height - 2.1).abs() < 0.01, "{door:?}");
    let day_room = kinds(1, "room")
        .into_iter()
        .find(|room| room.name.as_deref() == Some("Day room"))
        .expect("day room");
    assert!((day_room.base_height - 3.0).abs() < 0.01, "{day_room:?}");
    assert!(day_room.height > day_room.base_height, "{day_room:?}");
}

#[tokio::test]
async fn models_glb_and_json_are_served() {
    let folder = tempfile::tempdir().expect("tempdir");
    let server = block_server(folder.path()).await;
    let response = server.get("/models/block.glb").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "model/gltf-binary");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let etag = response.headers()["etag"].clone();
    let bytes = response.bytes().await.expect("body");
    let stored = std::fs::read(folder.path().join("block.glb")).expect("model");
    assert_eq!(
        bytes.as_ref(),
        stored.as_slice(),
        "a GLB is served as stored"
    );

    let again = server
        .client
        .get(server.url("/models/block.glb"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 304);

    let model = server.json("/models/block.json").await;
    assert_eq!(model["anchor"][0], ANCHOR[0]);
    assert_eq!(model["rotation"], ROTATION);
    assert_eq!(model["levels"].as_array().map(Vec::len), Some(2));
    assert!(
        model["model"]
            .as_str()
            .is_some_and(|url| url.ends_with("/models/block.glb"))
    );

    for (path, status) in [
        ("/models/none.glb", 404),
        ("/models/block.obj", 400),
        ("/models/block", 400),
        ("/models/..%2Fblock.glb", 400),
    ] {
        assert_eq!(server.get(path).await.status(), status, "{path}");
    }
}

/// Writes the block as a `.gltf` with its buffer in a `.bin` beside it.
fn write_block_gltf(folder: &Path, name: &str) -> std::path::PathBuf {
    let glb = std::fs::read(block::write(folder, false)).expect("block");
    let gltf = gltf::Gltf::from_slice(&glb).expect("block parses");
    let mut document: serde_json::Value =
        serde_json::from_str(&gltf.document.into_json().to_string_pretty().expect("json"))
            .expect("json");
    document["buffers"][0]["uri"] = serde_json::json!(format!("{name}.bin"));
    std::fs::write(
        folder.join(format!("{name}.bin")),
        gltf.blob.expect("binary chunk"),
    )
    .expect("write bin");
    let path = folder.join(format!("{name}.gltf"));
    std::fs::write(&path, document.to_string()).expect("write gltf");
    path
}

#[tokio::test]
async fn gltf_with_external_buffer_is_served_as_glb() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = write_block_gltf(folder.path(), "split");
    let server = serve_models(vec![("split", model_source(&path, "anchor = [0.0, 0.0]"))]).await;
    let bytes = server
        .get("/models/split.glb")
        .await
        .bytes()
        .await
        .expect("body");
    let glb = gltf::Gltf::from_slice(&bytes).expect("the served GLB parses");
    assert_eq!(glb.document.buffers().count(), 1);
    assert!(
        glb.document
            .buffers()
            .all(|b| matches!(b.source(), gltf::buffer::Source::Bin))
    );
    let tilejson = server.json("/tiles/split.json").await;
    assert_eq!(tilejson["tessera:levels"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn broken_models_are_rejected_while_others_serve() {
    let folder = tempfile::tempdir().expect("tempdir");
    let good = block::write(folder.path(), true);
    std::fs::write(
        folder.path().join("block.toml"),
        "anchor = [-15.95, 23.72]\n",
    )
    .expect("side file");
    // The same model without a georeference.
    let nogeo = folder.path().join("nogeo.glb");
    std::fs::copy(&good, &nogeo).expect("copy");
    // A .gltf whose buffer file is cut short, and one whose buffer escapes the folder.
    write_block_gltf(folder.path(), "broken");
    let bin = folder.path().join("broken.bin");
    let full = std::fs::read(&bin).expect("bin");
    std::fs::write(&bin, &full[..full.len() / 2]).expect("truncate");
    std::fs::write(folder.path().join("broken.toml"), "anchor = [0.0, 0.0]\n")
        .expect("write the side file");
    let escape = write_block_gltf(folder.path(), "escape");
    let text = std::fs::read_to_string(&escape)
        .expect("gltf")
        .replace("escape.bin", "../escape.bin");
    std::fs::write(&escape, text).expect("rewrite");
    std::fs::write(folder.path().join("escape.toml"), "anchor = [0.0, 0.0]\n")
        .expect("write the side file");

    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let health = server.json("/health").await;
    let failures = health["failed_sources"].as_array().expect("failures");
    let reason = |file: &str| {
        failures
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(file)))
            .and_then(|f| f["reason"].as_str())
            .unwrap_or_else(|| panic!("{file} is not reported: {failures:?}"))
            .to_owned()
    };
    assert!(
        reason("nogeo.glb").contains("no georeference"),
        "{}",
        reason("nogeo.glb")
    );
    assert!(
        reason("nogeo.glb").contains("anchor"),
        "{}",
        reason("nogeo.glb")
    );
    assert!(
        reason("broken.gltf").contains("buffer"),
        "{}",
        reason("broken.gltf")
    );
    assert!(
        reason("escape.gltf").contains("not a relative path inside the model's folder"),
        "{}",
        reason("escape.gltf")
    );
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(server.get("/tiles/block.json").await.status(), 200);
    assert_eq!(server.get("/models/block.glb").await.status(), 200);
    assert_eq!(server.get("/models/nogeo.glb").await.status(), 404);
}

#[tokio::test]
async fn fzk_haus_rooms_are_on_their_storeys() {
    let server = TestServer::serving(&[geodata("fzk-haus")]).await;
    let tilejson = server.json("/tiles/fzk-haus.json").await;
    let levels = tilejson["tessera:levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[0]["name"], "0. Erdgeschoss");
    assert_eq!(levels[1]["name"], "1. Dachgeschoss");
    let bounds = &tilejson["bounds"];
    let centre = (
        f64::midpoint(
            bounds[0].as_f64().expect("west"),
            bounds[2].as_f64().expect("east"),
        ),
        f64::midpoint(
            bounds[1].as_f64().expect("south"),
            bounds[3].as_f64().expect("north"),
        ),
    );

    let features =
        floorplan_tile(&server, "fzk-haus", lonlat_to_tile(centre.0, centre.1, 16)).await;
    let rooms = |level: i64| {
        let mut names: Vec<String> = features
            .iter()
            .filter(|f| f.level == level && f.kind == "room")
            .filter_map(|f| f.name.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        rooms(0),
        ["Bad", "Buero", "Flur", "Küche", "Schlafzimmer", "Wohnen"]
    );
    assert_eq!(rooms(1), ["Galerie"]);

    let walls = |level: i64| {
        features
            .iter()
            .filter(|f| f.level == level && f.kind == "wall")
            .count()
    };
    assert!(walls(0) >= 9, "ground-floor walls: {}", walls(0));
    assert!(walls(1) >= 2, "attic walls: {}", walls(1));
    assert!(
        features.iter().any(|f| f.kind == "opening"),
        "doors and windows are openings"
    );
}

#[tokio::test]
async fn draco_bedroom_is_decoded() {
    let Some(bedroom) = shared_data("building-models/minimalistic_modern_bedroom.glb") else {
        return;
    };
    let server = serve_models(vec![(
        "bedroom",
        model_source(&bedroom, "anchor = [0.0, 0.0]"),
    )])
    .await;
    let model = server.json("/models/bedroom.json").await;
    assert_eq!(model["draco"], true);
    // About 10,460 triangles in four meshes.
    let triangles = model["triangles"].as_u64().expect("triangles");
    assert!((10_000..11_000).contains(&triangles), "{triangles}");
    let stored = std::fs::read(&bedroom).expect("model");
    let served = server
        .get("/models/bedroom.glb")
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(served.len(), stored.len(), "Draco GLB served as stored");
    let features = floorplan_tile(&server, "bedroom", lonlat_to_tile(0.0, 0.0, 18)).await;
    assert!(
        features.iter().any(|f| f.kind == "wall"),
        "the bedroom's walls are cut: {features:#?}"
    );
}

#[tokio::test]
async fn hallway_node_matrices_are_applied() {
    let Some(hallway) = shared_data("building-models/space_ship_hallway.glb") else {
        return;
    };
    let server = serve_models(vec![(
        "hallway",
        model_source(&hallway, "anchor = [0.0, 0.0]"),
    )])
    .await;
    let tilejson = server.json("/tiles/hallway.json").await;
    let bounds: Vec<f64> = tilejson["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    let width = metres_apart((bounds[0], 0.0), (bounds[2], 0.0));
    let depth = metres_apart((0.0, bounds[1]), (0.0, bounds[3]));
    // The corridor is about 29 units long in its mesh. Its node matrices turn it from Z up to
    // Y up, so it lies flat and its plan is long. Without them the cut would cross it.
    let longest = width.max(depth);
    assert!(longest > 20.0, "plan {width} m x {depth} m");
}

/// Runs the browser check on a viewer URL and returns its JSON summary, or `None` when Node.js,
/// Chromium or playwright-core is missing outside CI.
fn render_in_chromium(url: &str, screenshot: &Path) -> Option<serde_json::Value> {
    let ready = have_program("node")
        && have_program("chromium")
        && repo()
            .join("tests/browser/node_modules/playwright-core")
            .is_dir();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "node, chromium or playwright-core is missing in CI: run scripts/setup --test"
        );
        eprintln!(
            "SKIPPED: the browser check needs node, chromium and `npm ci --prefix tests/browser`"
        );
        return None;
    }
    let output = std::process::Command::new("node")
        .arg(repo().join("tests/browser/render.mjs"))
        .arg(url)
        .arg(screenshot)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "MapLibre reported problems at {url}:\n{stdout}\n{stderr}"
    );
    Some(
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|error| panic!("no JSON summary ({error}): {stdout}")),
    )
}

#[tokio::test]
async fn viewer_draws_fzk_haus_flat_and_extruded() {
    let server = TestServer::serving(&[geodata("fzk-haus")]).await;
    // The house with its storey picker: the ground floor flat, then both floors in 3D.
    for (name, query) in [
        ("floorplan-2d", "?style=&floorplan-level=0"),
        ("floorplan-3d", "?style=&floorplan-level=1&floorplan-3d"),
    ] {
        let url = server.url(&format!("/{query}#20/49.09555/8.43255"));
        let screenshot = repo().join(format!("docs/{name}.png"));
        let summary = tokio::task::spawn_blocking(move || render_in_chromium(&url, &screenshot))
            .await
            .expect("join");
        let Some(summary) = summary else {
            return;
        };
        assert_eq!(
            summary["errors"].as_array().map(Vec::len),
            Some(0),
            "{summary}"
        );
        assert!(
            summary["renderedFeatures"].as_u64().unwrap_or(0) > 0,
            "{name}: no floorplan feature drawn: {summary}"
        );
    }
}

#[tokio::test]
async fn damaged_draco_data_is_reported() {
    let Some(bedroom) = shared_data("building-models/minimalistic_modern_bedroom.glb") else {
        return;
    };
    let folder = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(&bedroom).expect("model");
    // Overwrite the start of every Draco stream ("DRACO" magic and header) in the binary chunk.
    let starts: Vec<usize> = bytes
        .windows(5)
        .enumerate()
        .filter(|(_, window)| window == b"DRACO")
        .map(|(index, _)| index)
        .collect();
    assert!(!starts.is_empty(), "the bedroom has Draco streams");
    for start in starts {
        for byte in &mut bytes[start + 5..start + 40] {
            *byte = 0xff;
        }
    }
    let damaged = folder.path().join("damaged.glb");
    std::fs::write(&damaged, &bytes).expect("write");
    std::fs::write(folder.path().join("damaged.toml"), "anchor = [0.0, 0.0]\n").expect("side file");

    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let health = server.json("/health").await;
    let reason = health["failed_sources"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("KHR_draco_mesh_compression"), "{health}");
    assert!(reason.contains("without Draco compression"), "{health}");
}
