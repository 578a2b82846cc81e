//! Static maps through `/static` and `tessera render`: pixels where the style puts them, the
//! scale bar's length, Hangul labels whole across tile edges, GeoTIFF georeferencing, limits
//! and request errors.

mod common;

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use common::{TestServer, decode_image, have_program};
use serde_json::{Value, json};
use tessera::config::Config;

/// Web Mercator metres per page unit at MapLibre zoom `zoom` (the world is 512 × 2^zoom
/// page units wide).
fn resolution(zoom: f64) -> f64 {
    2.0 * PI * 6_378_137.0 / (512.0 * zoom.exp2())
}

fn mercator(lon: f64, lat: f64) -> (f64, f64) {
    let x = lon.to_radians() * 6_378_137.0;
    let y = (PI / 4.0 + lat.to_radians() / 2.0).tan().ln() * 6_378_137.0;
    (x, y)
}

fn lonlat(x: f64, y: f64) -> (f64, f64) {
    let lon = (x / 6_378_137.0).to_degrees();
    let lat = (2.0 * (y / 6_378_137.0).exp().atan() - PI / 2.0).to_degrees();
    (lon, lat)
}

/// Page position of (`lon`, `lat`) on a `width` × `height` map centred on
/// (`centre_lon`, `centre_lat`) at `zoom`.
fn page_position(
    (lon, lat): (f64, f64),
    (centre_lon, centre_lat): (f64, f64),
    zoom: f64,
    (width, height): (f64, f64),
) -> (f64, f64) {
    let (x, y) = mercator(lon, lat);
    let (cx, cy) = mercator(centre_lon, centre_lat);
    let res = resolution(zoom);
    ((x - cx) / res + width / 2.0, (cy - y) / res + height / 2.0)
}

/// The centre of the fixture's square footprint and its Korean-labelled point.
const CENTRE: (f64, f64) = (10.05, 20.05);
/// The facility footprint: a square of 0.04 degrees.
const SQUARE: [f64; 4] = [10.03, 20.03, 10.07, 20.07];
/// A point labelled in Hangul, placed so that its label crosses x = 256 on the test maps.
const LABEL_NAME: &str = "요덕 수용소";

/// Writes the fixture GeoJSON and the test styles, and returns the folder.
fn fixtures() -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("tempdir");
    let [w, s, e, n] = SQUARE;
    // The label point sits where x = 256 at zoom 11 on a 512-pixel-wide map, below the
    // square.
    let (label_lon, _) = lonlat(mercator(CENTRE.0, CENTRE.1).0, 0.0);
    let features = json!({
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Footprint", "kind": "facility"},
                "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
            },
            {
                "type": "Feature",
                "properties": {"name": LABEL_NAME, "kind": "label"},
                "geometry": {"type": "Point", "coordinates": [label_lon, 20.0]}
            }
        ]
    });
    std::fs::write(folder.path().join("site.geojson"), features.to_string()).expect("fixture");
    let styles = folder.path().join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    let background =
        json!({"id": "background", "type": "background", "paint": {"background-color": "#ffffff"}});
    let fill = json!({
        "id": "footprint", "type": "fill", "source": "site", "source-layer": "site",
        "filter": ["==", ["get", "kind"], "facility"],
        "paint": {"fill-color": "#ff0000"}
    });
    let label = json!({
        "id": "names", "type": "symbol", "source": "site", "source-layer": "site",
        "filter": ["all", ["==", "$type", "Point"], ["has", "name"]],
        "layout": {"text-field": "{name}", "text-font": ["Noto Sans CJK KR Regular"], "text-size": 20},
        "paint": {"text-color": "#000000"}
    });
    let sources = json!({"site": {"type": "vector", "url": "/tiles/site.json"}});
    let write_style = |name: &str, layers: Vec<Value>| {
        let style = json!({"version": 8, "name": name, "sources": sources, "layers": layers});
        std::fs::write(styles.join(format!("{name}.json")), style.to_string()).expect("style");
    };
    write_style("site", vec![background.clone(), fill.clone(), label]);
    write_style("site-unlabelled", vec![background.clone(), fill]);
    write_style("blank", vec![background]);
    folder
}

fn config(folder: &Path) -> Config {
    Config {
        paths: vec![folder.join("site.geojson")],
        styles: folder.join("styles"),
        ..Config::default()
    }
}

async fn png(server: &TestServer, path: &str) -> image::RgbaImage {
    let response = server.get(path).await;
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    decode_image(&bytes)
}

fn is_red(pixel: image::Rgba<u8>) -> bool {
    pixel[0] > 240 && pixel[1] < 15 && pixel[2] < 15
}

fn is_dark(pixel: image::Rgba<u8>) -> bool {
    pixel[3] > 200 && pixel[0] < 90 && pixel[1] < 90 && pixel[2] < 90
}

const PLAIN: &str = "scalebar=false&attribution=false";

#[tokio::test]
async fn footprint_drawn_where_it_belongs() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let zoom = 11.0;
    let size = (512.0, 512.0);
    let image = png(
        &server,
        &format!(
            "/static/site-unlabelled/{},{},{zoom}/512x512.png?{PLAIN}",
            CENTRE.0, CENTRE.1
        ),
    )
    .await;
    let [w, s, e, n] = SQUARE;
    let (left, top) = page_position((w, n), CENTRE, zoom, size);
    let (right, bottom) = page_position((e, s), CENTRE, zoom, size);
    let inside = [
        (f64::midpoint(left, right), f64::midpoint(top, bottom)),
        (left + 3.0, top + 3.0),
        (right - 3.0, bottom - 3.0),
    ];
    for (x, y) in inside {
        let pixel = *image.get_pixel(x as u32, y as u32);
        assert!(is_red(pixel), "inside at ({x:.1}, {y:.1}): {pixel:?}");
    }
    let outside = [
        (left - 3.0, f64::midpoint(top, bottom)),
        (right + 3.0, f64::midpoint(top, bottom)),
        (f64::midpoint(left, right), top - 3.0),
        (f64::midpoint(left, right), bottom + 3.0),
    ];
    for (x, y) in outside {
        let pixel = *image.get_pixel(x as u32, y as u32);
        assert_eq!(
            pixel,
            image::Rgba([255, 255, 255, 255]),
            "outside at ({x:.1}, {y:.1})"
        );
    }
}

/// Returns the longest horizontal run of black pixels in the bottom `rows` rows.
fn longest_black_run(image: &image::RgbaImage, rows: u32) -> u32 {
    let mut longest = 0;
    for y in image.height() - rows..image.height() {
        let mut run = 0;
        for x in 0..image.width() {
            let pixel = image.get_pixel(x, y);
            if pixel[3] == 255 && pixel[0] < 30 && pixel[1] < 30 && pixel[2] < 30 {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
    }
    longest
}

#[tokio::test]
async fn scale_bar_true_at_latitude() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    for (lat, zoom, ratio) in [(60.0, 10.0, 1.0), (0.0, 12.5, 1.0), (45.0, 8.0, 2.0)] {
        let suffix = if ratio > 1.0 { "@2x" } else { "" };
        let image = png(
            &server,
            &format!("/static/blank/10,{lat},{zoom}/400x300{suffix}.png?attribution=false"),
        )
        .await;
        let metres_per_unit = resolution(zoom) * f64::to_radians(lat).cos();
        // The bar is the largest 1, 2 or 5 × 10^k metres that fits in 120 page units.
        let limit = 120.0 * metres_per_unit;
        let power = 10_f64.powf(limit.log10().floor());
        let metres = [5.0, 2.0, 1.0]
            .map(|step| step * power)
            .into_iter()
            .find(|m| *m <= limit)
            .expect("a round length");
        let expected = metres / metres_per_unit * ratio;
        let drawn = f64::from(longest_black_run(&image, (60.0 * ratio) as u32));
        assert!(
            (drawn - expected).abs() <= 2.0,
            "lat {lat} zoom {zoom}: drawn {drawn} px, expected {expected:.1} px for {metres} m"
        );
    }
}

#[tokio::test]
async fn hangul_label_whole_across_tile_edge() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let view = format!("{},{},11", CENTRE.0, CENTRE.1);
    let labelled = png(&server, &format!("/static/site/{view}/512x512.png?{PLAIN}")).await;
    let plain = png(
        &server,
        &format!("/static/site-unlabelled/{view}/512x512.png?{PLAIN}"),
    )
    .await;
    let (x, y) = page_position((CENTRE.0, 20.0), CENTRE, 11.0, (512.0, 512.0));
    assert!((x - 256.0).abs() < 0.5, "the label point is at x = {x}");
    let (top, bottom) = ((y - 20.0) as u32, (y + 20.0) as u32);
    let dark = |image: &image::RgbaImage, from: u32, to: u32| {
        (from..to)
            .flat_map(|x| (top..bottom).map(move |y| (x, y)))
            .filter(|&(x, y)| is_dark(*image.get_pixel(x, y)))
            .count()
    };
    let left = dark(&labelled, 256 - 60, 256);
    let right = dark(&labelled, 256, 256 + 60);
    assert!(left > 40, "dark label pixels left of x = 256: {left}");
    assert!(right > 40, "dark label pixels right of x = 256: {right}");
    assert_eq!(
        dark(&plain, 256 - 60, 256 + 60),
        0,
        "dark pixels without the label"
    );
    // Five Hangul syllables and a space at 20 px: about 110 px wide, centred on x = 256.
    let columns: Vec<u32> = (150..362)
        .filter(|&x| (top..bottom).any(|y| is_dark(*labelled.get_pixel(x, y))))
        .collect();
    let (first, last) = (columns[0], columns[columns.len() - 1]);
    let span = last - first;
    assert!((90..=130).contains(&span), "label spans {first}..{last}");
    assert!(
        (f64::from(first + last) / 2.0 - 256.0).abs() < 4.0,
        "label centred at {}",
        f64::from(first + last) / 2.0
    );
}

#[tokio::test]
async fn bbox_form_equals_centre_form() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let zoom = 11.0;
    let (cx, cy) = mercator(CENTRE.0, CENTRE.1);
    let half = 256.0 * resolution(zoom);
    let (min_lon, min_lat) = lonlat(cx - half, cy - half);
    let (max_lon, max_lat) = lonlat(cx + half, cy + half);
    let centre = png(
        &server,
        &format!(
            "/static/site/{},{},{zoom}/512x512.png?{PLAIN}",
            CENTRE.0, CENTRE.1
        ),
    )
    .await;
    let bbox = png(
        &server,
        &format!(
            "/static/site/{min_lon:.9},{min_lat:.9},{max_lon:.9},{max_lat:.9}/512x512.png?{PLAIN}"
        ),
    )
    .await;
    assert_eq!(centre.dimensions(), bbox.dimensions());
    let differing = centre
        .pixels()
        .zip(bbox.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0.iter()).any(|(x, y)| x.abs_diff(*y) > 8))
        .count();
    assert!(differing < 20, "{differing} pixels differ");
}

#[tokio::test]
async fn retina_doubles_the_size() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let view = format!("{},{},11", CENTRE.0, CENTRE.1);
    let standard = png(&server, &format!("/static/site/{view}/300x200.png")).await;
    let retina = png(&server, &format!("/static/site/{view}/300x200@2x.png")).await;
    assert_eq!(standard.dimensions(), (300, 200));
    assert_eq!(retina.dimensions(), (600, 400));
    let print = png(&server, &format!("/static/site/{view}/300x200.png?dpi=192")).await;
    assert_eq!(print.dimensions(), (600, 400));
}

#[tokio::test]
async fn same_request_same_bytes() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let path = format!(
        "/static/site/{},{},11/400x300.png?legend=true&north=true&grid=true&title=Site",
        CENTRE.0, CENTRE.1
    );
    let first = server.get(&path).await.bytes().await.expect("body");
    let second = server.get(&path).await.bytes().await.expect("body");
    assert!(first == second, "two renders differ");
    let jpeg = server.get(&path.replace(".png", ".jpg")).await;
    assert_eq!(jpeg.status(), 200);
    assert_eq!(jpeg.headers()["content-type"], "image/jpeg");
}

#[tokio::test]
async fn geotiff_bounds_match_extent() {
    if !have_program("gdalinfo") {
        eprintln!("SKIPPED: gdalinfo is missing; install gdal-bin");
        return;
    }
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let zoom = 11.0;
    let response = server
        .get(&format!(
            "/static/site/{},{},{zoom}/400x300.tif",
            CENTRE.0, CENTRE.1
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "image/tiff; application=geotiff"
    );
    let file = folder.path().join("map.tif");
    std::fs::write(&file, response.bytes().await.expect("body")).expect("write GeoTIFF");
    let output = std::process::Command::new("gdalinfo")
        .arg("-json")
        .arg(&file)
        .output()
        .expect("run gdalinfo");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info: Value = serde_json::from_slice(&output.stdout).expect("gdalinfo JSON");
    assert_eq!(info["size"], json!([400, 300]));
    let bands = info["bands"].as_array().expect("bands");
    assert_eq!(bands.len(), 4);
    assert_eq!(bands[3]["colorInterpretation"], "Alpha");
    let wkt = info["coordinateSystem"]["wkt"].as_str().expect("a CRS");
    assert!(wkt.contains("3857"), "{wkt}");
    let res = resolution(zoom);
    let (cx, cy) = mercator(CENTRE.0, CENTRE.1);
    let corner = |name: &str| {
        let pair = info["cornerCoordinates"][name].as_array().expect("corner");
        (pair[0].as_f64().expect("x"), pair[1].as_f64().expect("y"))
    };
    let (west, north) = corner("upperLeft");
    let (east, south) = corner("lowerRight");
    for (read, expected, name) in [
        (west, cx - 200.0 * res, "west"),
        (east, cx + 200.0 * res, "east"),
        (north, cy + 150.0 * res, "north"),
        (south, cy - 150.0 * res, "south"),
    ] {
        assert!(
            (read - expected).abs() < res,
            "{name}: {read} against {expected}"
        );
    }
}

#[tokio::test]
async fn limits_reject_with_their_names() {
    let folder = fixtures();
    let server = TestServer::start(Config {
        static_max_pixels: 100_000,
        ..config(folder.path())
    })
    .await;
    let view = format!("{},{},11", CENTRE.0, CENTRE.1);
    assert_eq!(
        server
            .get(&format!("/static/site/{view}/300x300.png"))
            .await
            .status(),
        200
    );
    for path in [
        format!("/static/site/{view}/400x300.png"),
        format!("/static/site/{view}/300x300@2x.png"),
        format!("/static/site/{view}/300x300.png?dpi=300"),
    ] {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 422, "{path}");
        let problem: Value = response.json().await.expect("problem");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains("static_max_pixels = 100000"), "{detail}");
    }

    let slow = TestServer::start(Config {
        static_timeout: 1e-6,
        ..config(folder.path())
    })
    .await;
    let response = slow.get(&format!("/static/site/{view}/300x300.png")).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.expect("problem");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("static_timeout"), "{detail}");
}

#[tokio::test]
async fn bad_requests_give_reasons() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let cases = [
        ("/static/nonexistent/10,20,5/100x100.png", 404, None),
        ("/static/site/200,20,5/100x100.png", 400, Some("lon")),
        ("/static/site/10,95,5/100x100.png", 400, Some("lat")),
        ("/static/site/10,20,40/100x100.png", 400, Some("zoom")),
        (
            "/static/site/11,20,10,21/100x100.png",
            400,
            Some("position"),
        ),
        ("/static/site/10,20,5/0x100.png", 400, Some("width")),
        ("/static/site/10,20,5/100x100000.png", 400, Some("height")),
        ("/static/site/10,20,5/100x100@3x.png", 400, Some("ratio")),
        ("/static/site/10,20,5/100x100.gif", 400, Some("format")),
        (
            "/static/site/10,20,5/100x100.png?zoom=3",
            400,
            Some("query"),
        ),
        (
            "/static/site/10,20,5/100x100.png?legend=maybe",
            400,
            Some("legend"),
        ),
        (
            "/static/site/10,20,5/100x100.png?grid=true&grid=false",
            400,
            Some("grid"),
        ),
        (
            "/static/site/10,20,5/100x100.png?date=2020-13",
            400,
            Some("date"),
        ),
    ];
    for (path, status, parameter) in cases {
        let response = server.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: Value = response.json().await.expect("problem");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty()),
            "{path}"
        );
        if let Some(parameter) = parameter {
            assert_eq!(problem["parameter"], parameter, "{path}");
        }
    }
}

#[tokio::test]
async fn cli_writes_the_route_bytes() {
    let folder = fixtures();
    let server = TestServer::start(config(folder.path())).await;
    let path = format!(
        "/static/site/{},{},11/320x240@2x.png?title=Site&legend=true",
        CENTRE.0, CENTRE.1
    );
    let served = server.get(&path).await.bytes().await.expect("body");
    let settings = folder.path().join("tessera.toml");
    let toml = format!(
        "paths = [{:?}]\nstyles = {:?}\n",
        folder.path().join("site.geojson"),
        folder.path().join("styles")
    );
    std::fs::write(&settings, toml).expect("config");
    let output: PathBuf = folder.path().join("cli.png");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("RUST_LOG", "warn")
        .args([
            "render",
            "--style",
            "site",
            "--center",
            &format!("{},{},11", CENTRE.0, CENTRE.1),
        ])
        .args([
            "--size", "320x240", "--ratio", "2", "--title", "Site", "--legend", "--config",
        ])
        .arg(&settings)
        .arg("-o")
        .arg(&output)
        .output()
        .expect("run tessera render");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read(&output).expect("the CLI's file");
    assert!(written == served.as_ref(), "CLI and route bytes differ");
}

/// Serves the Sentinel-2 scene and the camps with the repository's styles.
async fn sample_server() -> TestServer {
    TestServer::serving(&[
        common::geodata("sentinel2-29rkh"),
        common::geodata("nk-prison-camps"),
    ])
    .await
}

#[tokio::test]
async fn imagery_matches_the_tiles() {
    let server = sample_server().await;
    // MapLibre zoom 9 shows 256-pixel tiles of zoom 10 at one pixel per page unit; centred on
    // a tile corner, a 512-pixel map is exactly four tiles.
    let corner = tessera::tile::TileCoord::new(10, 480, 439).expect("a tile");
    assert!(
        corner
            .bounds_lonlat()
            .intersects(&tessera::tile::Bbox::new(-11.98, 24.3, -10.87, 25.3))
    );
    let bounds = corner.bounds_mercator();
    let (lon, lat) = lonlat(bounds.min_x, bounds.max_y);
    let image = png(
        &server,
        &format!("/static/tessera/{lon:.9},{lat:.9},9/512x512.png?{PLAIN}"),
    )
    .await;
    let mut compared = 0;
    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let path = format!("/tiles/TCI/10/{}/{}.png", 479 + dx, 438 + dy);
        let response = server.get(&path).await;
        if response.status() != 200 {
            continue;
        }
        let tile = decode_image(&response.bytes().await.expect("tile"));
        for (x, y, pixel) in tile.enumerate_pixels() {
            if pixel[3] < 255 || (x % 7 != 0) || (y % 7 != 0) {
                continue;
            }
            let drawn = image.get_pixel(x + 256 * dx, y + 256 * dy);
            for channel in 0..3 {
                assert!(
                    drawn[channel].abs_diff(pixel[channel]) <= 3,
                    "{path} at ({x}, {y}): static {drawn:?}, tile {pixel:?}"
                );
            }
            compared += 1;
        }
    }
    assert!(
        compared > 1000,
        "only {compared} opaque tile pixels compared"
    );
}

#[tokio::test]
async fn scene_records_sources_and_dates() {
    let server = sample_server().await;
    let state = &server.state;
    let context = tessera::map::MapContext {
        catalog: state.catalog.clone(),
        glyphs: state.glyphs.clone(),
        sprites: state.sprites.clone(),
        styles: state.config.styles.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let request = tessera::map::MapRequest {
        style: "tessera".to_owned(),
        view: tessera::map::View::Centre {
            lon: -11.43,
            lat: 24.8,
            zoom: 8.0,
        },
        width: 400,
        height: 300,
        ratio: 1,
        format: tessera::map::OutputFormat::Png,
        options: tessera::map::MapOptions::for_format(tessera::map::OutputFormat::Png),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let scene = tessera::map::build_scene(&context, &request, deadline).expect("a scene");
    let ids: Vec<&str> = scene
        .sources
        .iter()
        .map(|source| source.id.as_str())
        .collect();
    assert_eq!(ids, ["TCI"]);
    let imagery = &scene.sources[0];
    assert!(
        imagery.files[0].ends_with("sentinel2-29rkh/TCI.tif"),
        "{:?}",
        imagery.files
    );
    assert_eq!(imagery.scenes.len(), 1);
    assert_eq!(imagery.scenes[0].date, "2020-02-19");
    assert_eq!(
        imagery.attribution.as_deref(),
        Some("Contains modified Copernicus Sentinel data 2020")
    );
    let [west, south, east, north] = scene.georeference.lonlat_bounds;
    assert!(west < -11.43, "west {west}");
    assert!(east > -11.43, "east {east}");
    assert!(south < 24.8, "south {south}");
    assert!(north > 24.8, "north {north}");
}
