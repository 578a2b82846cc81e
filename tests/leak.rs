//! The leak test. A server has a private layer, private attributes and sensitive points, each
//! with a distinct canary. Every route is requested without a key and with a key for another
//! layer, and no canary and no exact sensitive position may come back. With the right key
//! the data is there, so the test can fail.

mod common;
mod floorplan_support;

use std::collections::BTreeMap;
use std::path::Path;

use common::{TestServer, repo};
use geozero::mvt::{Message as _, Tile};
use serde_json::json;
use tessera::access::{AccessConfig, Grid, append_new_key};
use tessera::config::{Config, SourceConfig};
use tessera::tile::{TileCoord, lonlat_to_tile};

/// Every canary contains this word, so one search finds any of them.
const CANARY: &str = "canary";

/// The exact positions of the sensitive points: a witness, a facility feature marked
/// `exact`, and a density point.
const WITNESS: (f64, f64) = (126.578_913, 39.745_621);
const MARKED: (f64, f64) = (126.434_271, 39.812_345);
const DENSITY_POINT: (f64, f64) = (126.612_345, 39.698_765);
const SENSITIVE: [(f64, f64); 3] = [WITNESS, MARKED, DENSITY_POINT];

/// Where the private layer's data and the floorplan are.
const PRIVATE_PLACE: (f64, f64) = (126.9, 40.1);
const MODEL_ANCHOR: (f64, f64) = (126.3, 39.6);

/// Grid cell of the generalisation, in metres, and the zoom from which sensitive points go.
const CELL_M: f64 = 2000.0;
const SENSITIVE_ZOOM: u8 = 12;

/// The id of the private layer.
const PRIVATE_ID: &str = "canaryc3-hidden";

/// The id of a private imagery source; its coverage layer must be private too.
const PRIVATE_IMAGERY: &str = "canaryf10-imagery";

/// Lists every route of the router, as its template, with the requests that exercise it. A test
/// below reads the router's source and fails when a route is missing here.
#[allow(
    clippy::too_many_lines,
    reason = "the list of routes reads best as one table"
)]
fn routes() -> Vec<(&'static str, Vec<String>)> {
    let wmts_kvp_tile = |layer: &str, z: u8, (lon, lat): (f64, f64)| {
        let tile = lonlat_to_tile(lon, lat, z);
        format!(
            "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX={z}&TILEROW={}&TILECOL={}&FORMAT=application/vnd.mapbox-vector-tile",
            tile.y, tile.x
        )
    };
    let ids = source_ids();
    let mut tilejson = Vec::new();
    let mut tms_maps = Vec::new();
    let mut collections = Vec::new();
    let mut items = Vec::new();
    let mut item = Vec::new();
    let mut tilesets = Vec::new();
    let mut tileset = Vec::new();
    let mut models = Vec::new();
    for id in &ids {
        tilejson.push(format!("/tiles/{id}.json"));
        tms_maps.push(format!("/tms/1.0.0/{id}"));
        collections.push(format!("/ogc/collections/{id}"));
        items.push(format!("/ogc/collections/{id}/items"));
        items.push(format!(
            "/ogc/collections/{id}/items?bbox=126.0,39.0,127.5,40.5&limit=1000"
        ));
        for feature in 0..4 {
            item.push(format!("/ogc/collections/{id}/items/{feature}"));
        }
        tilesets.push(format!("/ogc/collections/{id}/tiles"));
        tileset.push(format!("/ogc/collections/{id}/tiles/WebMercatorQuad"));
        models.push(format!("/models/{id}.glb"));
        models.push(format!("/models/{id}.json"));
    }
    let mut xyz = Vec::new();
    let mut tms = Vec::new();
    let mut ogc_tiles = Vec::new();
    let mut wmts_rest = Vec::new();
    let mut wmts_kvp = vec![
        "/wmts?SERVICE=WMTS&REQUEST=GetCapabilities".to_owned(),
        "/wmts?service=WMTS&request=GetCapabilities&version=1.0.0".to_owned(),
    ];
    let places = [WITNESS, MARKED, DENSITY_POINT, PRIVATE_PLACE, MODEL_ANCHOR];
    for id in &ids {
        for z in 0..=22_u8 {
            for place in places {
                let tile = lonlat_to_tile(place.0, place.1, z);
                xyz.push(format!("/tiles/{id}/{z}/{}/{}.pbf", tile.x, tile.y));
                if id.starts_with("density") {
                    xyz.push(format!("/tiles/{id}/{z}/{}/{}.png", tile.x, tile.y));
                }
                if z % 4 == 0 {
                    tms.push(format!(
                        "/tms/1.0.0/{id}/{z}/{}/{}.pbf",
                        tile.x,
                        tile.tms_y()
                    ));
                    ogc_tiles.push(format!(
                        "/ogc/collections/{id}/tiles/WebMercatorQuad/{z}/{}/{}",
                        tile.y, tile.x
                    ));
                    wmts_rest.push(format!(
                        "/wmts/1.0.0/{id}/default/WebMercatorQuad/{z}/{}/{}.pbf",
                        tile.y, tile.x
                    ));
                    wmts_kvp.push(wmts_kvp_tile(id, z, place));
                }
            }
        }
    }
    let legends: Vec<String> = ids
        .iter()
        .flat_map(|id| {
            [
                format!("/density/{id}/legend.json?z=6"),
                format!("/density/{id}/legend.json?z=14"),
            ]
        })
        .collect();
    let viewer_files = [
        "index.html",
        "app.js",
        "app.css",
        "floorplan.js",
        "dates.js",
        "dates.css",
        "maplibre-gl.js",
        "maplibre-gl.css",
    ];
    vec![
        ("/", vec!["/".to_owned()]),
        (
            "/viewer/{file}",
            viewer_files
                .iter()
                .map(|f| format!("/viewer/{f}"))
                .collect(),
        ),
        (
            "/styles/{file}",
            ["tessera.json", "tessera-density.json", "leak.json"]
                .iter()
                .map(|f| format!("/styles/{f}"))
                .collect(),
        ),
        ("/fonts", vec!["/fonts".to_owned()]),
        (
            "/fonts/{fontstack}/{range}",
            vec!["/fonts/Noto%20Sans%20Regular/0-255.pbf".to_owned()],
        ),
        (
            "/sprites/{file}",
            ["sprite.json", "sprite.png", "sprite@2x.json"]
                .iter()
                .map(|f| format!("/sprites/{f}"))
                .collect(),
        ),
        ("/catalog", vec!["/catalog".to_owned()]),
        ("/health", vec!["/health".to_owned()]),
        ("/metrics", vec!["/metrics".to_owned()]),
        ("/tiles/{file}", tilejson),
        ("/tiles/{source}/{z}/{x}/{name}", xyz),
        ("/models/{file}", models),
        ("/tms/1.0.0", vec!["/tms/1.0.0".to_owned()]),
        ("/tms/1.0.0/{source}", tms_maps),
        ("/tms/1.0.0/{source}/{z}/{x}/{name}", tms),
        ("/wmts", wmts_kvp),
        (
            "/wmts/1.0.0/WMTSCapabilities.xml",
            vec!["/wmts/1.0.0/WMTSCapabilities.xml".to_owned()],
        ),
        (
            "/wmts/1.0.0/{layer}/{style}/{set}/{matrix}/{row}/{col}",
            wmts_rest,
        ),
        (
            "/wmts/1.0.0/{layer}/{style}/{time}/{set}/{matrix}/{row}/{col}",
            vec![format!(
                "/wmts/1.0.0/{PRIVATE_ID}/default/2020-01-01/WebMercatorQuad/0/0/0.pbf"
            )],
        ),
        ("/ogc", vec!["/ogc".to_owned()]),
        ("/ogc/api", vec!["/ogc/api".to_owned()]),
        ("/ogc/conformance", vec!["/ogc/conformance".to_owned()]),
        ("/ogc/collections", vec!["/ogc/collections".to_owned()]),
        ("/ogc/collections/{id}", collections),
        ("/ogc/collections/{id}/items", items),
        ("/ogc/collections/{id}/items/{feature}", item),
        ("/ogc/collections/{id}/tiles", tilesets),
        ("/ogc/collections/{id}/tiles/{set}", tileset),
        (
            "/ogc/collections/{id}/tiles/{set}/{z}/{row}/{col}",
            ogc_tiles,
        ),
        (
            "/ogc/tileMatrixSets",
            vec!["/ogc/tileMatrixSets".to_owned()],
        ),
        (
            "/ogc/tileMatrixSets/{set}",
            vec!["/ogc/tileMatrixSets/WebMercatorQuad".to_owned()],
        ),
        ("/density/{source}/legend.json", legends),
        ("/static/{style}/{position}/{size}", static_maps()),
    ]
}

/// Static maps of every style over each canary's place, in every output format and at zooms
/// on both sides of the sensitive zoom.
fn static_maps() -> Vec<String> {
    let mut paths = Vec::new();
    for style in ["leak", "static-revealing", "tessera", "tessera-density"] {
        for (lon, lat) in SENSITIVE.iter().chain([&PRIVATE_PLACE, &MODEL_ANCHOR]) {
            for zoom in [9, 13] {
                for extension in ["png", "tif", "pdf"] {
                    paths.push(format!(
                        "/static/{style}/{lon},{lat},{zoom}/300x200.{extension}?title=t&legend=true"
                    ));
                }
            }
        }
        paths.push(format!("/static/{style}/auto/300x200.png"));
    }
    paths
}

/// Returns the ids of every source the test serves, private ones included.
fn source_ids() -> Vec<String> {
    let coverage = format!("{PRIVATE_IMAGERY}.coverage");
    [
        "facilities",
        "witnesses",
        PRIVATE_ID,
        "density-points",
        "density-camps",
        "block",
        PRIVATE_IMAGERY,
        &coverage,
    ]
    .iter()
    .map(|id| (*id).to_owned())
    .collect()
}

fn feature(properties: &serde_json::Value, geometry: &serde_json::Value) -> serde_json::Value {
    json!({ "type": "Feature", "properties": properties, "geometry": geometry })
}

fn point((lon, lat): (f64, f64)) -> serde_json::Value {
    json!({ "type": "Point", "coordinates": [lon, lat] })
}

fn write_geojson(path: &Path, features: &[serde_json::Value]) {
    let document = json!({ "type": "FeatureCollection", "features": features });
    std::fs::write(path, document.to_string()).expect("write GeoJSON");
}

fn source(path: &Path, options: &str) -> SourceConfig {
    SourceConfig {
        path: path.to_owned(),
        name: None,
        attribution: None,
        description: None,
        options: toml::from_str(options).expect("options are TOML"),
    }
}

/// The served files and keys.
struct Setup {
    _folder: tempfile::TempDir,
    server: TestServer,
    /// A key for every source.
    all_key: String,
    /// A key for a group that opens none of the sources.
    other_key: String,
}

#[allow(clippy::too_many_lines, reason = "one fixture, written out in order")]
async fn setup() -> Setup {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();

    // Public facilities: a private attribute on every feature, one point marked exact.
    let facilities = dir.join("facilities.geojson");
    write_geojson(
        &facilities,
        &[
            feature(
                &json!({ "name": "Camp 16", "witness_name": "canary-a1-witness", "exact": false }),
                &json!({ "type": "Polygon", "coordinates": [[[126.40, 39.60], [126.46, 39.60], [126.46, 39.65], [126.40, 39.65], [126.40, 39.60]]] }),
            ),
            feature(
                &json!({ "name": "Gate", "witness_name": "canary-a1-gate", "exact": false }),
                &point((126.45, 39.62)),
            ),
            feature(
                &json!({ "name": "Burial site", "witness_name": "canary-a1-burial", "exact": true }),
                &point(MARKED),
            ),
        ],
    );
    // Witnesses: every point sensitive, each with a private statement.
    let witnesses = dir.join("witnesses.geojson");
    write_geojson(
        &witnesses,
        &[feature(
            &json!({ "statement": "canary-b2-statement", "role": "witness" }),
            &point(WITNESS),
        )],
    );
    // The private layer: canaries in its id, name, attribution and data.
    let private = dir.join("canaryc3-hidden.geojson");
    write_geojson(
        &private,
        &[feature(
            &json!({ "label": "canary-c6-data" }),
            &point(PRIVATE_PLACE),
        )],
    );
    // Density points placed by coordinates, all sensitive.
    let density_points = dir.join("points.csv");
    std::fs::write(
        &density_points,
        format!(
            "lat,lon,date\n{},{},2020-05-01\n39.9,126.0,2021-01-01\n",
            DENSITY_POINT.1, DENSITY_POINT.0
        ),
    )
    .expect("write points");
    // Density events linked to a facility whose key and name are private.
    let camps = dir.join("camps.csv");
    std::fs::write(&camps, "Title,lat,lon\ncanary-d7-camp,39.95,126.2\n").expect("camps");
    let events = dir.join("events.csv");
    std::fs::write(
        &events,
        "date,camp\n2019-03-01,canary-d7-camp\n2019-04-01,canary-d7-camp\n",
    )
    .expect("events");
    // A floorplan whose room names are private.
    let model = floorplan_support::block::write(dir, true);
    let rooms = dir.join("block.rooms.toml");
    let names = std::fs::read_to_string(&rooms).expect("room names");
    std::fs::write(&rooms, names.replace("name = \"", "name = \"canary-e8 ")).expect("names");

    // A style that uses the private layer.
    let styles = dir.join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    for style in ["tessera.json", "tessera-density.json"] {
        std::fs::copy(repo().join("styles").join(style), styles.join(style)).expect("copy style");
    }
    let leak_style = json!({
        "version": 8,
        "sources": {
            "hidden": { "type": "vector", "url": format!("/tiles/{PRIVATE_ID}.json") },
            "open": { "type": "vector", "url": "/tiles/facilities.json" },
            "foreign": { "type": "raster", "tiles": ["https://tiles.invalid/{z}/{x}/{y}.png"] },
        },
        "layers": [
            { "id": "canary-c9-layer", "type": "circle", "source": "hidden", "source-layer": "canaryc3-hidden" },
            { "id": "facilities", "type": "fill", "source": "open", "source-layer": "facilities" },
            { "id": "basemap", "type": "raster", "source": "foreign" },
        ],
    });
    std::fs::write(styles.join("leak.json"), leak_style.to_string()).expect("style");
    // Static map styles: one draws the witnesses and labels facilities by their private
    // attribute, the other draws the same background only.
    let plain_style = json!({
        "version": 8,
        "sources": {
            "open": { "type": "vector", "url": "/tiles/facilities.json" },
            "witnesses": { "type": "vector", "url": "/tiles/witnesses.json" },
        },
        "layers": [
            { "id": "background", "type": "background", "paint": { "background-color": "#ffffff" } },
        ],
    });
    let mut revealing_style = plain_style.clone();
    revealing_style["layers"] = json!([
        { "id": "background", "type": "background", "paint": { "background-color": "#ffffff" } },
        { "id": "witness-dots", "type": "circle", "source": "witnesses", "source-layer": "witnesses",
          "paint": { "circle-radius": 4, "circle-color": "#ff0000" } },
        { "id": "marked-dots", "type": "circle", "source": "open", "source-layer": "facilities",
          "filter": ["==", "$type", "Point"],
          "paint": { "circle-radius": 6, "circle-color": "#0000ff" } },
        { "id": "private-labels", "type": "symbol", "source": "open", "source-layer": "facilities",
          "layout": { "text-field": "{witness_name}", "text-size": 14 } },
        { "id": "hidden-dots", "type": "circle", "source": "hidden", "source-layer": "canaryc3-hidden",
          "paint": { "circle-radius": 6, "circle-color": "#00ff00" } },
    ]);
    revealing_style["sources"]["hidden"] =
        json!({ "type": "vector", "url": format!("/tiles/{PRIVATE_ID}.json") });
    std::fs::write(styles.join("static-plain.json"), plain_style.to_string()).expect("style");
    std::fs::write(
        styles.join("static-revealing.json"),
        revealing_style.to_string(),
    )
    .expect("style");

    let keys_file = dir.join("keys.txt");
    let all_groups: Vec<String> = vec![
        "investigators".to_owned(),
        "witnesses".to_owned(),
        "facilities".to_owned(),
        "density-points".to_owned(),
        "density-camps".to_owned(),
        "block".to_owned(),
    ];
    let all_key = append_new_key(&keys_file, &all_groups, Some("everything")).expect("key");
    let other_key =
        append_new_key(&keys_file, &["unrelated".to_owned()], Some("other")).expect("key");

    let mut sources = BTreeMap::new();
    sources.insert(
        "facilities".to_owned(),
        source(
            &facilities,
            "private_attributes = [\"witness_name\"]\nsensitive = \"exact\"",
        ),
    );
    sources.insert(
        "witnesses".to_owned(),
        source(
            &witnesses,
            "private_attributes = [\"statement\"]\nsensitive = true",
        ),
    );
    let mut private_config = source(
        &private,
        "access = \"private\"\ngroups = [\"investigators\"]",
    );
    private_config.name = Some("canary-c4-name".to_owned());
    private_config.attribution = Some("canary-c5-attribution".to_owned());
    private_config.description = Some("canary-c5-description".to_owned());
    sources.insert(PRIVATE_ID.to_owned(), private_config);
    sources.insert(
        PRIVATE_IMAGERY.to_owned(),
        source(
            &common::geodata("sentinel2-29rkh/TCI.tif"),
            "access = \"private\"\ngroups = [\"investigators\"]",
        ),
    );
    sources.insert(
        "density-points".to_owned(),
        source(
            &density_points,
            "kind = \"points\"\nlatitude = \"lat\"\nlongitude = \"lon\"\ndate = \"date\"\npoints_minzoom = 8\nsensitive = true",
        ),
    );
    sources.insert(
        "density-camps".to_owned(),
        source(
            &events,
            &format!(
                "kind = \"points\"\ndate = \"date\"\nfacility = \"camp\"\nprivate_attributes = [\"facility\", \"key\", \"name\"]\n[facilities]\npath = \"{}\"\nkey = \"Title\"\nlatitude = \"lat\"\nlongitude = \"lon\"",
                camps.display()
            ),
        ),
    );
    sources.insert(
        "block".to_owned(),
        source(
            &model,
            &format!(
                "anchor = [{}, {}]\nprivate_attributes = [\"name\"]",
                MODEL_ANCHOR.0, MODEL_ANCHOR.1
            ),
        ),
    );
    let config = Config {
        sources,
        styles,
        access: AccessConfig {
            keys_file: Some(keys_file),
            sensitive_zoom: SENSITIVE_ZOOM,
            sensitive_cell_m: CELL_M,
            ..AccessConfig::default()
        },
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    let failures = &server.state.failures;
    assert!(failures.is_empty(), "every source loads: {failures:?}");
    Setup {
        _folder: folder,
        server,
        all_key,
        other_key,
    }
}

/// Renders a coordinate at `decimals` places, as JSON, XML and log output would.
fn at_precision(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// Returns the texts that would give a sensitive position away: each coordinate at 4 to 6 decimals
/// (11 m to 0.1 m) and at full precision.
fn exact_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for (lon, lat) in SENSITIVE {
        for value in [lon, lat] {
            texts.push(value.to_string());
            for decimals in 4..=6 {
                texts.push(at_precision(value, decimals));
            }
        }
    }
    texts
}

/// Ground distance in metres (haversine on the WGS 84 equatorial radius).
fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((b.0 - a.0).to_radians() / 2.0).sin().powi(2);
    2.0 * tessera::tile::EARTH_RADIUS * h.sqrt().asin()
}

/// Decodes every vertex of an MVT tile into lon/lat.
fn tile_vertices(bytes: &[u8], tile: TileCoord) -> Vec<(f64, f64)> {
    let Ok(decoded) = Tile::decode(bytes) else {
        return Vec::new();
    };
    let bounds = tile.bounds_mercator();
    let mut vertices = Vec::new();
    for layer in &decoded.layers {
        let extent = f64::from(layer.extent.unwrap_or(4096));
        for feature in &layer.features {
            let (mut x, mut y) = (0_i64, 0_i64);
            let geometry = &feature.geometry;
            let mut index = 0;
            while index < geometry.len() {
                let command = geometry[index];
                let (id, count) = (command & 7, (command >> 3) as usize);
                index += 1;
                if id == 7 {
                    continue;
                }
                for _ in 0..count {
                    let Some(pair) = geometry.get(index..index + 2) else {
                        break;
                    };
                    x += i64::from((pair[0] >> 1) as i32 ^ -((pair[0] & 1) as i32));
                    y += i64::from((pair[1] >> 1) as i32 ^ -((pair[1] & 1) as i32));
                    index += 2;
                    let mx = bounds.min_x + x as f64 / extent * bounds.width();
                    let my = bounds.max_y - y as f64 / extent * bounds.height();
                    vertices.push(tessera::tile::mercator_to_lonlat(mx, my));
                }
            }
        }
    }
    vertices
}

/// Parses `/tiles/{id}/{z}/{x}/{y}.pbf` and the TMS, WMTS and OGC tile paths into a tile.
fn tile_of(path: &str) -> Option<TileCoord> {
    let path = path.split('?').next()?;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |text: &str| text.split(['.', '@']).next()?.parse::<u64>().ok();
    match parts.as_slice() {
        ["tiles", _, z, x, y] => TileCoord::new(number(z)? as u32, number(x)?, number(y)?).ok(),
        ["tms", _, _, z, x, y] => {
            TileCoord::from_tms(number(z)? as u32, number(x)?, number(y)?).ok()
        }
        ["wmts", _, _, _, _, z, row, col] | ["ogc", "collections", _, "tiles", _, z, row, col] => {
            TileCoord::new(number(z)? as u32, number(col)?, number(row)?).ok()
        }
        _ => None,
    }
}

/// How a request presents its key.
#[derive(Debug, Clone, Copy)]
enum Presented<'a> {
    None,
    Bearer(&'a str),
    Header(&'a str),
    Query(&'a str),
}

async fn fetch(server: &TestServer, path: &str, key: Presented<'_>) -> (u16, String, Vec<u8>) {
    let url = match key {
        Presented::Query(key) if path.contains('?') => server.url(&format!("{path}&key={key}")),
        Presented::Query(key) => server.url(&format!("{path}?key={key}")),
        _ => server.url(path),
    };
    let mut request = server.client.get(url);
    match key {
        Presented::Bearer(key) => request = request.bearer_auth(key),
        Presented::Header(key) => request = request.header("X-Tessera-Key", key),
        Presented::None | Presented::Query(_) => {}
    }
    let response = request.send().await.expect("request reaches the server");
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

/// Returns the text of a PDF as `pdftotext` extracts it.
fn pdf_text(body: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), body).expect("write PDF");
    let output = std::process::Command::new("pdftotext")
        .arg(file.path())
        .arg("-")
        .output()
        .expect("pdftotext runs (poppler-utils, installed by scripts/setup --test)");
    assert!(output.status.success(), "pdftotext reads the PDF");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Checks one response for canaries and exact positions; returns a description of each leak.
/// A private id in an error about the request's own path only repeats what the client sent,
/// so it is taken out first.
fn leaks(path: &str, headers: &str, body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut text = String::from_utf8_lossy(body).to_lowercase();
    // A PDF's text is compressed: search what a reader would extract, as well.
    if body.starts_with(b"%PDF") {
        text.push_str(&pdf_text(body).to_lowercase());
    }
    let coverage = format!("{PRIVATE_IMAGERY}.coverage");
    for id in [PRIVATE_ID, coverage.as_str(), PRIVATE_IMAGERY] {
        if path.contains(id) {
            text = text.replace(id, "ID");
        }
    }
    if text.contains(CANARY) {
        let at = text.find(CANARY).unwrap_or(0);
        let start = at.saturating_sub(60);
        let excerpt: String = text.chars().skip(start).take(140).collect();
        found.push(format!("{path}: canary in body: …{excerpt}…"));
    }
    if headers.to_lowercase().contains(CANARY) {
        found.push(format!("{path}: canary in headers"));
    }
    for exact in exact_texts() {
        if text.contains(&exact) {
            found.push(format!("{path}: exact coordinate {exact}"));
        }
    }
    if let Some(tile) = tile_of(path) {
        for vertex in tile_vertices(body, tile) {
            for position in SENSITIVE {
                let distance = distance_m(vertex, position);
                if distance < 100.0 {
                    found.push(format!(
                        "{path}: a vertex {distance:.1} m from the sensitive point {position:?}"
                    ));
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn no_private_byte_without_the_key() {
    let setup = setup().await;
    let server = &setup.server;
    // The generalisation would be no protection if a point sat on its cell's centre.
    let grid = Grid::new(CELL_M);
    for position in SENSITIVE {
        let centre = grid.snap(position.0, position.1);
        assert!(
            distance_m(position, centre) > 200.0,
            "{position:?} lies near its cell centre: pick another test point"
        );
    }

    let mut requests = 0;
    let mut found = std::collections::BTreeSet::new();
    let mut statuses = BTreeMap::new();
    for (route, paths) in routes() {
        for path in &paths {
            for key in [
                Presented::None,
                Presented::Bearer(&setup.other_key),
                Presented::Query(&setup.other_key),
            ] {
                let (status, headers, body) = fetch(server, path, key).await;
                requests += 1;
                *statuses.entry((route, status)).or_insert(0) += 1;
                assert!(status < 500, "GET {path} with {key:?}: {status}");
                found.extend(leaks(path, &headers, &body));
            }
        }
    }
    let first: Vec<&String> = found.iter().take(30).collect();
    assert!(
        found.is_empty(),
        "{} leaks, first ones: {first:#?}",
        found.len()
    );
    eprintln!("{requests} requests, no leak; statuses by route: {statuses:?}");

    // The private layer's response is the same as that of a source that does not exist.
    let (hidden, _, hidden_body) = fetch(
        server,
        &format!("/tiles/{PRIVATE_ID}.json"),
        Presented::None,
    )
    .await;
    let (absent, _, absent_body) =
        fetch(server, "/tiles/canaryx-absent.json", Presented::None).await;
    assert_eq!(hidden, 404);
    assert_eq!(absent, 404);
    let hidden_text = String::from_utf8_lossy(&hidden_body).replace(PRIVATE_ID, "ID");
    let absent_text = String::from_utf8_lossy(&absent_body).replace("canaryx-absent", "ID");
    assert_eq!(hidden_text, absent_text);
}

/// Decodes a PNG static map into RGBA pixels.
fn pixels(body: &[u8]) -> image::RgbaImage {
    image::load_from_memory(body).expect("a PNG map").to_rgba8()
}

/// Returns whether a pixel within `radius` of (`x`, `y`) is coloured (far from white).
fn coloured_near(map: &image::RgbaImage, (x, y): (f64, f64), radius: i64) -> bool {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    (-radius..=radius).any(|dy| {
        (-radius..=radius).any(|dx| {
            let (px, py) = (cx + dx, cy + dy);
            if px < 0 || py < 0 || px >= i64::from(map.width()) || py >= i64::from(map.height()) {
                return false;
            }
            let pixel = map.get_pixel(px as u32, py as u32);
            pixel.0[..3].iter().any(|channel| *channel < 200)
        })
    })
}

/// Page position of `point` on a `size`-pixel square map centred on `centre` at MapLibre
/// `zoom` (512-pixel world).
fn page_position(point: (f64, f64), centre: (f64, f64), zoom: f64, size: f64) -> (f64, f64) {
    let world = 512.0 * 2_f64.powf(zoom);
    let to_page = |(lon, lat): (f64, f64)| {
        let (x, y) = tessera::tile::lonlat_to_mercator(lon, lat);
        let circumference = 2.0 * std::f64::consts::PI * tessera::tile::EARTH_RADIUS;
        (x / circumference * world, -y / circumference * world)
    };
    let (px, py) = to_page(point);
    let (cx, cy) = to_page(centre);
    (px - cx + size / 2.0, py - cy + size / 2.0)
}

#[tokio::test]
async fn static_maps_draw_nothing_private() {
    let setup = setup().await;
    let server = &setup.server;
    let size = 256.0;
    let map = |style: &str, (lon, lat): (f64, f64), zoom: f64| {
        format!(
            "/static/{style}/{lon},{lat},{zoom}/256x256.png?legend=false&scalebar=false&north=false&attribution=false"
        )
    };
    // At the sensitive zoom and beyond (MapLibre zoom 11 shows tiles of zoom 12), the
    // revealing style must draw exactly what the plain one draws without the key, and more
    // with it.
    for (place, zoom) in [(WITNESS, 13.0), (MARKED, 12.5), (PRIVATE_PLACE, 12.0)] {
        let (_, _, plain) = fetch(server, &map("static-plain", place, zoom), Presented::None).await;
        for key in [Presented::None, Presented::Bearer(&setup.other_key)] {
            let (status, _, revealing) =
                fetch(server, &map("static-revealing", place, zoom), key).await;
            assert_eq!(status, 200, "{place:?} at {zoom} with {key:?}");
            assert!(
                plain == revealing,
                "a static map at {zoom} over {place:?} with {key:?} draws private data"
            );
        }
        let (status, _, keyed) = fetch(
            server,
            &map("static-revealing", place, zoom),
            Presented::Bearer(&setup.all_key),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            plain != keyed,
            "with the key the map over {place:?} shows its data"
        );
    }
    // Below the sensitive zoom the witness is drawn at its cell's centre (12 pixels away at
    // zoom 10), not where it is.
    let zoom = 10.0;
    let centre = WITNESS;
    let (_, _, body) = fetch(
        server,
        &map("static-revealing", centre, zoom),
        Presented::None,
    )
    .await;
    let anonymous = pixels(&body);
    let cell = Grid::new(CELL_M).snap(WITNESS.0, WITNESS.1);
    let at_cell = page_position(cell, centre, zoom, size);
    let exact = page_position(WITNESS, centre, zoom, size);
    assert!(
        coloured_near(&anonymous, at_cell, 2),
        "the witness is drawn at its cell centre"
    );
    assert!(
        !coloured_near(&anonymous, exact, 2),
        "no dot at the witness's exact place"
    );
    let (_, _, body) = fetch(
        server,
        &map("static-revealing", centre, zoom),
        Presented::Bearer(&setup.all_key),
    )
    .await;
    assert!(
        coloured_near(&pixels(&body), exact, 2),
        "with the key the dot is exact"
    );
}

#[tokio::test]
async fn right_key_gets_the_data() {
    let setup = setup().await;
    let server = &setup.server;
    let body_text = |body: &[u8]| String::from_utf8_lossy(body).into_owned();
    for key in [
        Presented::Bearer(&setup.all_key),
        Presented::Header(&setup.all_key),
        Presented::Query(&setup.all_key),
    ] {
        let (status, _, body) = fetch(server, &format!("/tiles/{PRIVATE_ID}.json"), key).await;
        assert_eq!(status, 200, "{key:?}");
        let tilejson = body_text(&body);
        assert!(tilejson.contains("canary-c4-name"), "{key:?}: {tilejson}");
        assert!(tilejson.contains("canary-c5-attribution"));
        if let Presented::Query(value) = key {
            assert!(
                tilejson.contains(&format!("key={value}")),
                "tile URLs carry the key"
            );
        }
        let catalog = body_text(&fetch(server, "/catalog", key).await.2);
        assert!(catalog.contains(PRIVATE_ID), "{key:?}");
    }
    let key = Presented::Bearer(&setup.all_key);

    let tile = lonlat_to_tile(PRIVATE_PLACE.0, PRIVATE_PLACE.1, 10);
    let (status, _, body) = fetch(
        server,
        &format!("/tiles/{PRIVATE_ID}/10/{}/{}.pbf", tile.x, tile.y),
        key,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body_text(&body).contains("canary-c6-data"));

    let tile = lonlat_to_tile(126.45, 39.62, 10);
    let (_, _, body) = fetch(
        server,
        &format!("/tiles/facilities/10/{}/{}.pbf", tile.x, tile.y),
        key,
    )
    .await;
    assert!(body_text(&body).contains("canary-a1-gate"));

    // The exact witness position, in a tile above the sensitive zoom and in OGC API features.
    let tile = lonlat_to_tile(WITNESS.0, WITNESS.1, 16);
    let (status, _, body) = fetch(
        server,
        &format!("/tiles/witnesses/16/{}/{}.pbf", tile.x, tile.y),
        key,
    )
    .await;
    assert_eq!(status, 200);
    let nearest = tile_vertices(&body, tile)
        .into_iter()
        .map(|vertex| distance_m(vertex, WITNESS))
        .fold(f64::INFINITY, f64::min);
    assert!(
        nearest < 5.0,
        "the exact point is served with the key: {nearest} m"
    );
    let items = body_text(
        &fetch(server, "/ogc/collections/witnesses/items", key)
            .await
            .2,
    );
    assert!(items.contains(&WITNESS.0.to_string()), "{items}");
    assert!(items.contains("canary-b2-statement"));

    let tile = lonlat_to_tile(126.2, 39.95, 10);
    let (_, _, body) = fetch(
        server,
        &format!("/tiles/density-camps/10/{}/{}.pbf", tile.x, tile.y),
        key,
    )
    .await;
    assert!(body_text(&body).contains("canary-d7-camp"));

    let model = fetch(server, "/models/block.glb", key).await;
    assert_eq!(model.0, 200);
    let mut floorplan_names = false;
    for z in 16..=20 {
        let tile = lonlat_to_tile(MODEL_ANCHOR.0, MODEL_ANCHOR.1, z);
        let (_, _, body) = fetch(
            server,
            &format!("/tiles/block/{z}/{}/{}.pbf", tile.x, tile.y),
            key,
        )
        .await;
        floorplan_names |= body_text(&body).contains("canary-e8");
    }
    assert!(floorplan_names, "room names are served with the key");

    let coverage = format!("/tiles/{PRIVATE_IMAGERY}.coverage.json");
    assert_eq!(
        fetch(server, &coverage, key).await.0,
        200,
        "the imagery's key opens its coverage"
    );
    assert_eq!(fetch(server, &coverage, Presented::None).await.0, 404);

    let style = body_text(&fetch(server, "/styles/leak.json", key).await.2);
    assert!(style.contains("canary-c9-layer"), "{style}");
}

#[tokio::test]
async fn generalised_points_stay_in_their_cell() {
    let setup = setup().await;
    let server = &setup.server;
    let grid = Grid::new(CELL_M);
    let centre = grid.snap(WITNESS.0, WITNESS.1);
    for z in 4..SENSITIVE_ZOOM {
        let tile = lonlat_to_tile(WITNESS.0, WITNESS.1, z);
        let (status, _, body) = fetch(
            server,
            &format!("/tiles/witnesses/{z}/{}/{}.pbf", tile.x, tile.y),
            Presented::None,
        )
        .await;
        assert_eq!(status, 200, "z{z}");
        let vertices = tile_vertices(&body, tile);
        assert_eq!(vertices.len(), 1, "z{z}");
        let pixel_m = tessera::tile::resolution(z, 4096);
        let off = distance_m(vertices[0], centre);
        assert!(
            off < 2.0 * pixel_m + 1.0,
            "z{z}: {off} m from the cell centre"
        );
    }
    for z in [SENSITIVE_ZOOM, 16, 22] {
        let tile = lonlat_to_tile(WITNESS.0, WITNESS.1, z);
        let (status, _, _) = fetch(
            server,
            &format!("/tiles/witnesses/{z}/{}/{}.pbf", tile.x, tile.y),
            Presented::None,
        )
        .await;
        assert_eq!(status, 204, "z{z}: the point is left out");
    }
    let item = server.json("/ogc/collections/witnesses/items/0").await;
    let position = (
        item["geometry"]["coordinates"][0].as_f64().expect("lon"),
        item["geometry"]["coordinates"][1].as_f64().expect("lat"),
    );
    assert!(distance_m(position, centre) < 1.0, "{item}");
    assert!(item["properties"].get("statement").is_none());

    // A tiny box finds the point by its cell centre, never by its exact position.
    let around = |(lon, lat): (f64, f64)| {
        format!(
            "/ogc/collections/witnesses/items?bbox={},{},{},{}",
            lon - 0.0005,
            lat - 0.0005,
            lon + 0.0005,
            lat + 0.0005
        )
    };
    let at_exact = server.json(&around(WITNESS)).await;
    assert_eq!(
        at_exact["features"].as_array().map(Vec::len),
        Some(0),
        "{at_exact}"
    );
    let at_centre = server.json(&around(centre)).await;
    assert_eq!(
        at_centre["features"].as_array().map(Vec::len),
        Some(1),
        "{at_centre}"
    );

    let tilejson = server.json("/tiles/witnesses.json").await;
    let bounds: Vec<f64> = serde_json::from_value(tilejson["bounds"].clone()).expect("bounds");
    assert!(
        bounds[2] - bounds[0] > 0.01 && bounds[3] - bounds[1] > 0.01,
        "{bounds:?}"
    );
}

#[tokio::test]
async fn every_router_route_is_in_the_list() {
    let router = std::fs::read_to_string(repo().join("src/server/mod.rs")).expect("router source");
    let listed: Vec<&str> = routes().iter().map(|(route, _)| *route).collect();
    let mut missing = Vec::new();
    for line in router.lines() {
        let Some(rest) = line.trim().strip_prefix(".route(\"") else {
            continue;
        };
        let route = rest.split('"').next().unwrap_or_default();
        if !listed.contains(&route) {
            missing.push(route.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "routes not requested by the leak test: {missing:?}; add them to `routes()`"
    );
    assert!(listed.len() >= 30, "the router's routes were read");
}
