//! Static maps of MBTiles and PMTiles archives. Raster archive tiles are mosaicked like
//! imagery. Vector archive features are drawn by layer and filter where the tile route puts
//! them, and a label of a feature cut by tile edges is placed once. The PDF's provenance
//! names the archives, and the tile route's access rules (private sources and attributes,
//! sensitive points) apply to the map.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    TestServer, decode_image, geodata, have_program, poppler_installed, sha256_hex, shared_data,
};
use geozero::mvt::{Message as _, Tile};
use serde_json::{Value, json};
use tessera::access::{AccessConfig, append_new_key};
use tessera::config::{Config, SourceConfig};
use tessera::tile::{TileCoord, lonlat_to_tile};

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

/// A MapLibre view and the map's size, in page units.
#[derive(Debug, Clone, Copy)]
struct View {
    lon: f64,
    lat: f64,
    zoom: f64,
    size: f64,
}

impl View {
    fn path(self, style: &str, extension: &str) -> String {
        format!(
            "/static/{style}/{},{},{}/{}x{}.{extension}",
            self.lon, self.lat, self.zoom, self.size, self.size
        )
    }

    /// Returns the page position of a point in Web Mercator metres.
    fn page(self, (x, y): (f64, f64)) -> (f64, f64) {
        let resolution = 2.0 * std::f64::consts::PI * 6_378_137.0 / (512.0 * self.zoom.exp2());
        let (centre_x, centre_y) = tessera::tile::lonlat_to_mercator(self.lon, self.lat);
        (
            (x - centre_x) / resolution + self.size / 2.0,
            (centre_y - y) / resolution + self.size / 2.0,
        )
    }

    /// Returns whether a page position is at least `inset` units inside the map.
    fn shows(self, (x, y): (f64, f64), inset: f64) -> bool {
        (inset..self.size - inset).contains(&x) && (inset..self.size - inset).contains(&y)
    }

    /// Returns the tile that the map reads at the centre: MapLibre shows vector tiles of zoom
    /// floor(z) at map zoom z, clamped to the archive's `maxzoom`.
    fn centre_tile(self, maxzoom: u8) -> TileCoord {
        let z = (self.zoom.floor() as u8).min(maxzoom);
        lonlat_to_tile(self.lon, self.lat, z)
    }
}

/// A feature of a tile as the tile route sends it, decoded with geozero: its properties as
/// text and its geometry in page units of `view`.
struct RouteFeature {
    id: Option<u64>,
    properties: HashMap<String, String>,
    geometry: geo::Geometry<f64>,
}

/// Requests a tile through `/tiles` and returns the features of `layer` in page units.
async fn route_features(
    server: &TestServer,
    source: &str,
    tile: TileCoord,
    layer: &str,
    view: View,
) -> Vec<RouteFeature> {
    let path = format!("/tiles/{source}/{}/{}/{}.mvt", tile.z, tile.x, tile.y);
    let bytes = get_ok(server, &path).await;
    let decoded = Tile::decode(bytes.as_slice()).expect("a valid MVT tile");
    let bounds = tile.bounds_mercator();
    let Some(layer) = decoded.layers.iter().find(|found| found.name == layer) else {
        return Vec::new();
    };
    let extent = f64::from(layer.extent.unwrap_or(4096));
    let to_page = |coord: geo::Coord<f64>| {
        let x = bounds.min_x + coord.x / extent * (bounds.max_x - bounds.min_x);
        let y = bounds.max_y - coord.y / extent * (bounds.max_y - bounds.min_y);
        let (page_x, page_y) = view.page((x, y));
        geo::Coord {
            x: page_x,
            y: page_y,
        }
    };
    layer
        .features
        .iter()
        .filter_map(|feature| {
            use geo::MapCoords as _;
            use geozero::ToGeo as _;
            let geometry = feature.to_geo().ok()?.map_coords(to_page);
            let properties = feature
                .tags
                .chunks_exact(2)
                .map(|pair| {
                    let key = layer.keys[pair[0] as usize].clone();
                    let value = &layer.values[pair[1] as usize];
                    let text = value
                        .string_value
                        .clone()
                        .or_else(|| value.double_value.map(|number| number.to_string()))
                        .or_else(|| value.float_value.map(|number| number.to_string()))
                        .or_else(|| value.int_value.map(|number| number.to_string()))
                        .or_else(|| value.uint_value.map(|number| number.to_string()))
                        .or_else(|| value.sint_value.map(|number| number.to_string()))
                        .or_else(|| value.bool_value.map(|flag| flag.to_string()))
                        .unwrap_or_default();
                    (key, text)
                })
                .collect();
            Some(RouteFeature {
                id: feature.id,
                properties,
                geometry,
            })
        })
        .collect()
}

/// Returns the interior point of the largest polygon among `features` whose interior point
/// the map shows.
fn largest_polygon_inside<'a>(
    features: impl Iterator<Item = &'a RouteFeature>,
    view: View,
) -> Option<(f64, f64)> {
    use geo::{Area as _, InteriorPoint as _};
    features
        .filter_map(|feature| {
            let point = feature.geometry.interior_point()?;
            let point = (point.x(), point.y());
            view.shows(point, 4.0)
                .then_some((feature.geometry.unsigned_area(), point))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, point)| point)
}

/// Returns the middle of the longest line segment among `features` that the map shows.
fn longest_segment_middle<'a>(
    features: impl Iterator<Item = &'a RouteFeature>,
    view: View,
) -> Option<(f64, f64)> {
    features
        .flat_map(|feature| match &feature.geometry {
            geo::Geometry::LineString(line) => line.lines().collect::<Vec<_>>(),
            geo::Geometry::MultiLineString(lines) => {
                lines.iter().flat_map(geo::LineString::lines).collect()
            }
            _ => Vec::new(),
        })
        .filter_map(|segment| {
            let length = segment.dx().hypot(segment.dy());
            let (start, end) = (segment.start, segment.end);
            let middle = (f64::midpoint(start.x, end.x), f64::midpoint(start.y, end.y));
            view.shows(middle, 4.0).then_some((length, middle))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, middle)| middle)
}

fn pixel_at(image: &image::RgbaImage, (x, y): (f64, f64)) -> image::Rgba<u8> {
    *image.get_pixel(x as u32, y as u32)
}

fn is_colour(pixel: image::Rgba<u8>, expected: [u8; 3]) -> bool {
    pixel[3] > 200
        && pixel
            .0
            .iter()
            .zip(expected)
            .all(|(&channel, wanted)| channel.abs_diff(wanted) < 60)
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

fn background() -> Value {
    json!({"id": "background", "type": "background", "paint": {"background-color": "#ffffff"}})
}

/// Florence's Protomaps basemap at zoom 14, where water, buildings and roads are in the tile.
const FLORENCE: View = View {
    lon: 11.2515,
    lat: 43.7685,
    zoom: 14.0,
    size: 512.0,
};

/// Serves the Florence archive with one style per layer (`water`, `buildings`, `roads`) and
/// one of all three (`all`), and returns the folder of the styles and the server.
async fn florence_server(archive: &Path) -> (tempfile::TempDir, TestServer) {
    let folder = tempfile::tempdir().expect("tempdir");
    let styles = folder.path().join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    let sources = json!({"florence": {"type": "vector", "url": "/tiles/protomaps_firenze.json"}});
    let water = json!({"id": "water", "type": "fill", "source": "florence",
        "source-layer": "water", "paint": {"fill-color": "#0000ff"}});
    let buildings = json!({"id": "buildings", "type": "fill", "source": "florence",
        "source-layer": "buildings", "paint": {"fill-color": "#ff0000"}});
    let roads = json!({"id": "roads", "type": "line", "source": "florence",
        "source-layer": "roads", "filter": ["==", ["get", "pmap:kind"], "minor_road"],
        "paint": {"line-color": "#00ff00", "line-width": 4}});
    write_style(&styles, "water", &sources, &json!([background(), water]));
    write_style(
        &styles,
        "buildings",
        &sources,
        &json!([background(), buildings]),
    );
    write_style(&styles, "roads", &sources, &json!([background(), roads]));
    write_style(
        &styles,
        "all",
        &sources,
        &json!([background(), water, buildings, roads]),
    );
    let server = TestServer::start(Config {
        paths: vec![archive.to_owned()],
        styles,
        ..Config::default()
    })
    .await;
    (folder, server)
}

#[tokio::test]
async fn vector_archive_drawn_by_layer() {
    let Some(archive) = shared_data("pmtiles-samples/protomaps_firenze.pmtiles") else {
        return;
    };
    let (_folder, server) = florence_server(&archive).await;

    let tilejson = server.json("/tiles/protomaps_firenze.json").await;
    let maxzoom = tilejson["maxzoom"].as_u64().expect("maxzoom") as u8;
    let tile = FLORENCE.centre_tile(maxzoom);
    let features =
        |layer: &'static str| route_features(&server, "protomaps_firenze", tile, layer, FLORENCE);
    let water_features = features("water").await;
    let building_features = features("buildings").await;
    let road_features = features("roads").await;

    let kind = |feature: &&RouteFeature, wanted: &str| {
        feature.properties.get("pmap:kind").map(String::as_str) == Some(wanted)
    };
    let cases = [
        (
            "water",
            largest_polygon_inside(water_features.iter(), FLORENCE),
            BLUE,
        ),
        (
            "buildings",
            largest_polygon_inside(building_features.iter(), FLORENCE),
            RED,
        ),
        (
            "roads",
            longest_segment_middle(
                road_features.iter().filter(|road| kind(road, "minor_road")),
                FLORENCE,
            ),
            GREEN,
        ),
    ];
    for (style, place, colour) in cases {
        let place = place.unwrap_or_else(|| panic!("tile {tile} has no {style} in the frame"));
        let image = decode_image(
            &get_ok(&server, &format!("{}?{PLAIN}", FLORENCE.path(style, "png"))).await,
        );
        let pixel = pixel_at(&image, place);
        assert!(is_colour(pixel, colour), "{style} at {place:?}: {pixel:?}");
    }

    // Another kind of road, which the filter excludes.
    let (excluded, other) = ["medium_road", "major_road", "other"]
        .into_iter()
        .find_map(|other| {
            let middle = longest_segment_middle(
                road_features.iter().filter(|road| kind(road, other)),
                FLORENCE,
            );
            middle.map(|middle| (middle, other))
        })
        .expect("a road of another kind in the frame");
    let image = decode_image(
        &get_ok(
            &server,
            &format!("{}?{PLAIN}", FLORENCE.path("roads", "png")),
        )
        .await,
    );
    let pixel = pixel_at(&image, excluded);
    assert!(
        !is_colour(pixel, GREEN),
        "a {other} road, which the filter excludes, is drawn at {excluded:?}"
    );
}

#[tokio::test]
async fn vector_archive_pdf_keeps_paths() {
    let Some(archive) = shared_data("pmtiles-samples/protomaps_firenze.pmtiles") else {
        return;
    };
    if !poppler_installed() {
        return;
    }
    let (_folder, server) = florence_server(&archive).await;
    let pdf = get_ok(&server, &format!("{}?dpi=72", FLORENCE.path("all", "pdf"))).await;
    let listed = poppler("pdfimages", &["-list"], &pdf);
    let images = listed
        .lines()
        .skip(2)
        .filter(|line| !line.trim().is_empty())
        .count();
    assert_eq!(images, 0, "a vector-only map embeds images: {listed}");
    let text: String = poppler("pdftotext", &["-enc", "UTF-8"], &pdf)
        .split_whitespace()
        .collect();
    assert!(
        text.contains("protomaps_firenze.pmtiles"),
        "the archive is missing from the provenance: {text}"
    );
    assert!(
        text.contains(&sha256_hex(&archive)),
        "the archive's SHA-256 is missing from the provenance: {text}"
    );
}

/// Returns the name and id of a named building that the map reads from several tiles, with
/// the anchors of at least two pieces well inside the frame, or `None`.
async fn building_in_pieces(server: &TestServer, view: View) -> Option<(String, u64)> {
    use geo::InteriorPoint as _;
    let centre = view.centre_tile(14);
    let mut pieces: BTreeMap<u64, (String, usize)> = BTreeMap::new();
    let mut ids_by_name: HashMap<String, std::collections::BTreeSet<u64>> = HashMap::new();
    for dy in -1_i64..=1 {
        for dx in -1_i64..=1 {
            let x = u32::try_from(i64::from(centre.x) + dx).expect("a column inside the world");
            let y = u32::try_from(i64::from(centre.y) + dy).expect("a row inside the world");
            let tile = TileCoord { z: centre.z, x, y };
            for feature in
                route_features(server, "protomaps_firenze", tile, "buildings", view).await
            {
                let (Some(id), Some(name)) = (feature.id, feature.properties.get("name")) else {
                    continue;
                };
                ids_by_name.entry(name.clone()).or_default().insert(id);
                let inside = feature
                    .geometry
                    .interior_point()
                    .is_some_and(|point| view.shows((point.x(), point.y()), 60.0));
                let entry = pieces.entry(id).or_insert_with(|| (name.clone(), 0));
                entry.1 += usize::from(inside);
            }
        }
    }
    pieces
        .into_iter()
        .find(|(_, (name, inside))| *inside >= 2 && ids_by_name[name].len() == 1)
        .map(|(id, (name, _))| (name, id))
}

#[tokio::test]
async fn vector_archive_labels_once() {
    let Some(archive) = shared_data("pmtiles-samples/protomaps_firenze.pmtiles") else {
        return;
    };
    if !poppler_installed() {
        return;
    }
    let (folder, server) = florence_server(&archive).await;
    let styles = folder.path().join("styles");
    let (name, id) = building_in_pieces(&server, FLORENCE)
        .await
        .expect("a named building cut by a tile edge inside the frame");
    // Overlapping labels are allowed, so only the deduplication keeps a second piece's label
    // out.
    let label = json!({"id": "one-building", "type": "symbol", "source": "florence",
        "source-layer": "buildings", "filter": ["==", ["get", "name"], name],
        "layout": {"text-field": "Piece", "text-font": ["Noto Sans CJK KR Regular"],
            "text-size": 14, "text-allow-overlap": true},
        "paint": {"text-color": "#000000"}});
    let sources = json!({"florence": {"type": "vector", "url": "/tiles/protomaps_firenze.json"}});
    write_style(
        &styles,
        "one-building",
        &sources,
        &json!([background(), label]),
    );
    let pdf = get_ok(
        &server,
        &format!("{}?dpi=72&{PLAIN}", FLORENCE.path("one-building", "pdf")),
    )
    .await;
    let text = poppler("pdftotext", &["-enc", "UTF-8"], &pdf);
    assert_eq!(
        text.matches("Piece").count(),
        1,
        "building {name:?} (id {id}) labelled other than once: {text}"
    );
}

/// Derna's building footprints at zoom 15, drawn from the archive's zoom 13 tiles.
const DERNA: View = View {
    lon: 22.6538,
    lat: 32.7503,
    zoom: 15.0,
    size: 512.0,
};

/// The private attribute of the Derna footprints in the access test.
const PRIVATE_ATTRIBUTE: &str = "full_plus_code";

fn source_config(path: &Path, options: &str) -> SourceConfig {
    SourceConfig {
        path: path.to_owned(),
        name: None,
        attribution: None,
        description: None,
        options: toml::from_str(options).expect("options are TOML"),
    }
}

fn red_pixels(image: &image::RgbaImage) -> usize {
    image
        .pixels()
        .filter(|&&pixel| is_colour(pixel, RED))
        .count()
}

/// Serves the Derna archive twice, as a private source (`derna-private`) and as a public one
/// whose attribute [`PRIVATE_ATTRIBUTE`] is private (`derna`), with a key that opens both.
/// Returns the folder, the server and the key.
async fn derna_server(archive: &Path) -> (tempfile::TempDir, TestServer, String) {
    let folder = tempfile::tempdir().expect("tempdir");
    let styles = folder.path().join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    let source =
        |id: &str| json!({"derna": {"type": "vector", "url": format!("/tiles/{id}.json")}});
    let fill = |filter: Value| {
        json!({"id": "buildings", "type": "fill", "source": "derna", "source-layer": "zcta",
            "filter": filter, "paint": {"fill-color": "#ff0000"}})
    };
    let label = json!({"id": "codes", "type": "symbol", "source": "derna", "source-layer": "zcta",
        "layout": {"text-field": format!("{{{PRIVATE_ATTRIBUTE}}}"),
            "text-font": ["Noto Sans CJK KR Regular"], "text-size": 14},
        "paint": {"text-color": "#000000"}});
    let all = json!(["has", "confidence"]);
    let by_private = json!(["has", PRIVATE_ATTRIBUTE]);
    write_style(
        &styles,
        "private-fill",
        &source("derna-private"),
        &json!([background(), fill(all)]),
    );
    write_style(
        &styles,
        "attribute-fill",
        &source("derna"),
        &json!([background(), fill(by_private)]),
    );
    write_style(
        &styles,
        "attribute-label",
        &source("derna"),
        &json!([background(), label]),
    );
    write_style(&styles, "blank", &source("derna"), &json!([background()]));
    let keys_file = folder.path().join("keys.txt");
    let key =
        append_new_key(&keys_file, &["investigators".to_owned()], Some("test")).expect("a new key");
    let mut sources = BTreeMap::new();
    sources.insert(
        "derna-private".to_owned(),
        source_config(
            archive,
            "access = \"private\"\ngroups = [\"investigators\"]",
        ),
    );
    sources.insert(
        "derna".to_owned(),
        source_config(
            archive,
            &format!(
                "private_attributes = [\"{PRIVATE_ATTRIBUTE}\"]\ngroups = [\"investigators\"]"
            ),
        ),
    );
    let server = TestServer::start(Config {
        sources,
        styles,
        access: AccessConfig {
            keys_file: Some(keys_file),
            ..AccessConfig::default()
        },
        ..Config::default()
    })
    .await;
    let failures = &server.state.failures;
    assert!(failures.is_empty(), "every source loads: {failures:?}");
    (folder, server, key)
}

#[tokio::test]
async fn vector_archive_access_rules() {
    let Some(archive) = shared_data("pmtiles-samples/Derna_buildings.pmtiles") else {
        return;
    };
    let (_folder, server, key) = derna_server(&archive).await;
    let tile = DERNA.centre_tile(13);
    let buildings = route_features(&server, "derna", tile, "zcta", DERNA).await;
    let building =
        largest_polygon_inside(buildings.iter(), DERNA).expect("a building in the frame");
    let png = |style: &str, with_key: bool| {
        let key_query = if with_key {
            format!("&key={key}")
        } else {
            String::new()
        };
        let path = format!("{}?{PLAIN}{key_query}", DERNA.path(style, "png"));
        let server = &server;
        async move { decode_image(&get_ok(server, &path).await) }
    };

    for style in ["private-fill", "attribute-fill"] {
        let without_key = png(style, false).await;
        assert_eq!(
            red_pixels(&without_key),
            0,
            "{style} draws buildings without a key"
        );
        let with_key = png(style, true).await;
        let pixel = pixel_at(&with_key, building);
        assert!(
            is_colour(pixel, RED),
            "{style} with a key at {building:?}: {pixel:?}"
        );
    }
    let blank = png("blank", false).await;
    let labelled_without_key = png("attribute-label", false).await;
    assert!(
        labelled_without_key == blank,
        "a label of the private attribute is drawn without a key"
    );
    let labelled_with_key = png("attribute-label", true).await;
    assert!(
        labelled_with_key != blank,
        "no label of the private attribute is drawn with a key"
    );
}

#[tokio::test]
async fn cli_draws_vector_archive() {
    let Some(archive) = shared_data("pmtiles-samples/protomaps_firenze.pmtiles") else {
        return;
    };
    let (folder, server) = florence_server(&archive).await;
    let served = get_ok(&server, &format!("{}?{PLAIN}", FLORENCE.path("all", "png"))).await;
    let settings = folder.path().join("tessera.toml");
    let toml = format!(
        "paths = [{:?}]\nstyles = {:?}\n",
        archive,
        folder.path().join("styles")
    );
    std::fs::write(&settings, toml).expect("write the configuration");
    let output = folder.path().join("cli.png");
    // `tessera render` builds the map on its main thread, outside the runtime that reads
    // the archive.
    let run = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("RUST_LOG", "warn")
        .args(["render", "--style", "all", "--center"])
        .arg(format!(
            "{},{},{}",
            FLORENCE.lon, FLORENCE.lat, FLORENCE.zoom
        ))
        .args([
            "--size",
            "512x512",
            "--scalebar",
            "false",
            "--attribution",
            "false",
        ])
        .arg("--config")
        .arg(&settings)
        .arg("-o")
        .arg(&output)
        .output()
        .expect("tessera render starts");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read(&output).expect("the CLI's file");
    assert!(written == served, "CLI and route bytes differ");
}

/// A sensitive site, and the zoom of the archive's only tile.
const SITE: (f64, f64) = (126.578_913, 39.745_621);
const SITE_ZOOM: u8 = 14;

/// Writes an MBTiles with one gzip-compressed vector tile at [`SITE_ZOOM`] that contains the
/// point [`SITE`] in the layer `sites`.
fn site_mbtiles(path: &Path) {
    use std::io::Write as _;
    let tile = lonlat_to_tile(SITE.0, SITE.1, SITE_ZOOM);
    let bounds = tile.bounds_mercator();
    let (x, y) = tessera::tile::lonlat_to_mercator(SITE.0, SITE.1);
    let column = (x - bounds.min_x) / (bounds.max_x - bounds.min_x) * 4096.0;
    let row = (bounds.max_y - y) / (bounds.max_y - bounds.min_y) * 4096.0;
    let mut mvt_tile = mvt::Tile::new(4096);
    let layer = mvt_tile.create_layer("sites");
    let geometry = mvt::GeomEncoder::new(mvt::GeomType::Point)
        .point(column, row)
        .expect("a point")
        .encode()
        .expect("a point geometry");
    let mut feature = layer.into_feature(geometry);
    feature.add_tag_string("name", "witness");
    mvt_tile.add_layer(feature.into_layer()).expect("a layer");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(&mvt_tile.to_bytes().expect("tile bytes"))
        .expect("gzip into memory");
    let compressed = encoder.finish().expect("gzip into memory");
    let connection = rusqlite::Connection::open(path).expect("create the MBTiles file");
    let vector_layers = r#"{"vector_layers": [{"id": "sites", "fields": {"name": "String"}}]}"#;
    connection
        .execute_batch(
            "CREATE TABLE metadata (name TEXT, value TEXT);
             CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER,
                                 tile_row INTEGER, tile_data BLOB);",
        )
        .expect("create the MBTiles tables");
    let metadata = [
        ("format", "pbf"),
        ("minzoom", "14"),
        ("maxzoom", "14"),
        ("json", vector_layers),
    ];
    for (name, value) in metadata {
        connection
            .execute("INSERT INTO metadata VALUES (?1, ?2)", (name, value))
            .expect("insert metadata");
    }
    let tms_row = (1_u32 << SITE_ZOOM) - 1 - tile.y;
    connection
        .execute(
            "INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)",
            (SITE_ZOOM, tile.x, tms_row, compressed),
        )
        .expect("insert the tile");
}

#[tokio::test]
async fn vector_archive_sensitive_points() {
    let folder = tempfile::tempdir().expect("tempdir");
    let archive = folder.path().join("sites.mbtiles");
    site_mbtiles(&archive);
    let styles = folder.path().join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    let sources = json!({"sites": {"type": "vector", "url": "/tiles/sites.json"}});
    let circles = json!({"id": "sites", "type": "circle", "source": "sites",
        "source-layer": "sites", "paint": {"circle-radius": 6, "circle-color": "#ff0000"}});
    write_style(&styles, "sites", &sources, &json!([background(), circles]));
    let keys_file = folder.path().join("keys.txt");
    let key =
        append_new_key(&keys_file, &["investigators".to_owned()], Some("test")).expect("a new key");
    let mut source_configs = BTreeMap::new();
    source_configs.insert(
        "sites".to_owned(),
        source_config(&archive, "sensitive = true\ngroups = [\"investigators\"]"),
    );
    let server = TestServer::start(Config {
        sources: source_configs,
        styles,
        access: AccessConfig {
            keys_file: Some(keys_file),
            sensitive_zoom: 12,
            ..AccessConfig::default()
        },
        ..Config::default()
    })
    .await;
    let failures = &server.state.failures;
    assert!(failures.is_empty(), "every source loads: {failures:?}");
    // Zoom 14 is past the sensitive zoom, so without a key the point is left out.
    let view = View {
        lon: SITE.0,
        lat: SITE.1,
        zoom: f64::from(SITE_ZOOM),
        size: 256.0,
    };
    let site = view.page(tessera::tile::lonlat_to_mercator(SITE.0, SITE.1));
    let path = format!("{}?{PLAIN}", view.path("sites", "png"));
    let without_key = decode_image(&get_ok(&server, &path).await);
    assert_eq!(
        red_pixels(&without_key),
        0,
        "a sensitive point is drawn without a key"
    );
    let with_key = decode_image(&get_ok(&server, &format!("{path}&key={key}")).await);
    let pixel = pixel_at(&with_key, site);
    assert!(
        is_colour(pixel, RED),
        "the point with a key at {site:?}: {pixel:?}"
    );
}
