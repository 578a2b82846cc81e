//! Enhanced imagery tiles from real files: the header, `enhance=none`, determinism, seams,
//! nodata, TileJSON and invalid requests.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, decode_image, geodata};
use tessera::config::{Config, SourceConfig};
use tessera::format::TileFormat;
use tessera::raster::Resampling;
use tessera::source::Backend;
use tessera::tile::{TileCoord, lonlat_to_tile};

const HEADER: &str = "tessera-enhancement";

/// A point inside the Sentinel-2 scene (100 m pixels).
const SCENE_POINT: (f64, f64) = (-11.43, 24.8);

fn source(path: std::path::PathBuf, options: &str) -> SourceConfig {
    SourceConfig {
        path,
        name: None,
        attribution: None,
        description: None,
        options: toml::from_str(options).expect("options are TOML"),
    }
}

/// Serves the Sentinel-2 scene up to zoom 15 three ways: `auto` (the default enhancement),
/// `plain` (`enhance = "none"`) and `contrast` (with CLAHE and haze correction), and the
/// Landsat 7 scene with its nodata collar as `collar`.
async fn server() -> TestServer {
    let tci = geodata("sentinel2-29rkh/TCI.tif");
    let mut config = Config::default();
    config
        .sources
        .insert("auto".into(), source(tci.clone(), "maxzoom = 15"));
    config.sources.insert(
        "plain".into(),
        source(tci.clone(), "maxzoom = 15\nenhance = \"none\""),
    );
    config.sources.insert(
        "contrast".into(),
        source(tci, "maxzoom = 15\nclahe = true\nhaze = true"),
    );
    config.sources.insert(
        "collar".into(),
        source(geodata("landsat7-bahamas/RGB.byte.tif"), "maxzoom = 12"),
    );
    TestServer::start(config).await
}

fn tile_path(source: &str, tile: TileCoord, query: &str) -> String {
    format!(
        "/tiles/{source}/{}/{}/{}.png{query}",
        tile.z, tile.x, tile.y
    )
}

fn header(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(HEADER)
        .map(|value| value.to_str().expect("ASCII header").to_owned())
}

/// Returns the factor that an enhancement header reports.
fn reported_factor(header: &str) -> f64 {
    header
        .split("; ")
        .find_map(|part| part.strip_prefix("factor="))
        .expect("the header has a factor")
        .parse()
        .expect("the factor is a number")
}

#[tokio::test]
async fn header_present_only_when_enhanced() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    let cases = [
        // (source, zoom, query, header expected, sharpened)
        ("auto", 13, "", true, true),
        ("auto", 13, "?enhance=auto", true, true),
        ("auto", 13, "?enhance=none", false, false),
        ("auto", 13, "?enhance=resample", true, false),
        ("auto", 13, "?resampling=nearest", false, false),
        ("auto", 10, "", false, false),
        ("auto", 9, "?enhance=sharpen", false, false),
        ("plain", 13, "", false, false),
        ("plain", 13, "?enhance=sharpen", true, true),
    ];
    for (source, zoom, query, expected, sharpened) in cases {
        let tile = lonlat_to_tile(lon, lat, zoom);
        let path = tile_path(source, tile, query);
        let response = server.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let value = header(&response);
        assert_eq!(value.is_some(), expected, "{path}: {value:?}");
        if let Some(value) = value {
            assert!(value.contains("resample=lanczos3"), "{path}: {value}");
            assert_eq!(value.contains("sharpen="), sharpened, "{path}: {value}");
            assert!(!value.contains("clahe"), "{path}: {value}");
        }
    }
}

#[tokio::test]
async fn header_reports_the_enlargement_factor() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    // 100 m pixels at 24.8° N: a z13 tile's pixels are 17.3 m on the ground, a factor of 5.8,
    // and a z12 tile's twice that size.
    let z13 = server
        .get(&tile_path("auto", lonlat_to_tile(lon, lat, 13), ""))
        .await;
    let z13 = reported_factor(&header(&z13).expect("z13 is enhanced"));
    assert!((z13 - 5.8).abs() < 0.1, "z13 factor {z13}");
    let z12 = server
        .get(&tile_path("auto", lonlat_to_tile(lon, lat, 12), ""))
        .await;
    let z12 = reported_factor(&header(&z12).expect("z12 is enhanced"));
    assert!((z13 / z12 - 2.0).abs() < 0.01, "z12 factor {z12}");
    let tile = lonlat_to_tile(lon, lat, 12);
    let retina = server
        .get(&format!("/tiles/auto/12/{}/{}@2x.png", tile.x, tile.y))
        .await;
    let retina = reported_factor(&header(&retina).expect("@2x is enhanced"));
    assert!((retina - z13).abs() < 0.05, "@2x factor {retina}");
}

#[tokio::test]
async fn contrast_steps_are_reported() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    let tile = lonlat_to_tile(lon, lat, 13);
    let response = server.get(&tile_path("contrast", tile, "")).await;
    let value = header(&response).expect("enhanced");
    assert!(value.starts_with("haze=dark-object; "), "{value}");
    assert!(value.contains("clahe=2.0"), "{value}");
    let response = server.get(&tile_path("auto", tile, "?enhance=haze")).await;
    let value = header(&response).expect("enhanced");
    assert!(value.contains("haze=dark-object"), "{value}");
    assert!(!value.contains("sharpen"), "{value}");
}

#[tokio::test]
async fn enhance_none_equals_plain_render() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    let tile = lonlat_to_tile(lon, lat, 13);
    let response = server.get(&tile_path("auto", tile, "?enhance=none")).await;
    let served = response.bytes().await.expect("body");
    let Backend::Raster(raster) = &server.state.catalog.get("auto").expect("source").backend else {
        panic!("auto is imagery");
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let plain = raster
        .render(tile, 256, TileFormat::Png, Resampling::Bilinear, deadline)
        .expect("render")
        .expect("pixels");
    assert_eq!(served.as_ref(), plain.as_slice());
    let configured = server.get(&tile_path("plain", tile, "")).await;
    assert_eq!(configured.bytes().await.expect("body"), served);
}

#[tokio::test]
async fn enhanced_tiles_are_deterministic() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    for source in ["auto", "contrast"] {
        let path = tile_path(source, lonlat_to_tile(lon, lat, 14), "");
        let first = server.get(&path).await;
        let first_etag = first.headers()["etag"].clone();
        let first = first.bytes().await.expect("body");
        let second = server.get(&path).await;
        assert_eq!(second.headers()["etag"], first_etag, "{path}");
        assert_eq!(second.bytes().await.expect("body"), first, "{path}");
    }
    let tile = lonlat_to_tile(lon, lat, 14);
    let enhanced = server.get(&tile_path("auto", tile, "")).await;
    let plain = server.get(&tile_path("auto", tile, "?enhance=none")).await;
    assert_ne!(
        enhanced.headers()["etag"],
        plain.headers()["etag"],
        "enhanced and plain tiles are cached apart"
    );
}

/// Mean absolute difference of the colour of two pixel lines.
fn line_difference(a: &[[u8; 4]], b: &[[u8; 4]]) -> f64 {
    let total: u32 = a
        .iter()
        .zip(b)
        .map(|(p, q)| (0..3).map(|c| u32::from(p[c].abs_diff(q[c]))).sum::<u32>())
        .sum();
    f64::from(total) / (a.len() * 3) as f64
}

#[tokio::test]
async fn enhanced_neighbours_meet_without_seam() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    for source in ["auto", "contrast"] {
        let tile = lonlat_to_tile(lon, lat, 13);
        let fetch = |x: u32, y: u32| {
            let path = format!("/tiles/{source}/13/{x}/{y}.png");
            let server = &server;
            async move {
                let response = server.get(&path).await;
                assert!(header(&response).is_some(), "{path} is enhanced");
                decode_image(&response.bytes().await.expect("body"))
            }
        };
        let here = fetch(tile.x, tile.y).await;
        let east = fetch(tile.x + 1, tile.y).await;
        let south = fetch(tile.x, tile.y + 1).await;
        let column = |image: &image::RgbaImage, x: u32| -> Vec<[u8; 4]> {
            (0..256).map(|y| image.get_pixel(x, y).0).collect()
        };
        let row = |image: &image::RgbaImage, y: u32| -> Vec<[u8; 4]> {
            (0..256).map(|x| image.get_pixel(x, y).0).collect()
        };
        // Across a border, neighbouring pixels should differ no more than neighbouring pixels
        // inside a tile do.
        let across_east = line_difference(&column(&here, 255), &column(&east, 0));
        let inside_east = line_difference(&column(&here, 254), &column(&here, 255));
        assert!(
            across_east <= inside_east * 1.25 + 0.5,
            "{source}: east border {across_east:.2}, inside {inside_east:.2}"
        );
        let across_south = line_difference(&row(&here, 255), &row(&south, 0));
        let inside_south = line_difference(&row(&here, 254), &row(&here, 255));
        assert!(
            across_south <= inside_south * 1.25 + 0.5,
            "{source}: south border {across_south:.2}, inside {inside_south:.2}"
        );
    }
}

#[tokio::test]
async fn enhanced_collar_stays_transparent() {
    let server = server().await;
    let transparent = |image: &image::RgbaImage| image.pixels().filter(|p| p.0[3] == 0).count();
    let opaque = |image: &image::RgbaImage| image.pixels().filter(|p| p.0[3] == 255).count();
    // The first z11 tile east of the Landsat scene's west bound, along 24.5° N, that contains
    // both the nodata collar and data. Its pixels are enhanced about x2.3 from 300 m.
    let mut found = None;
    for step in 0..40 {
        let tile = lonlat_to_tile(-78.95 + 0.1 * f64::from(step), 24.5, 11);
        let response = server
            .get(&tile_path("collar", tile, "?enhance=none"))
            .await;
        if response.status() != 200 {
            continue;
        }
        let plain = decode_image(&response.bytes().await.expect("body"));
        if transparent(&plain) > 1000 && opaque(&plain) > 1000 {
            found = Some((tile, plain));
            break;
        }
    }

    let (tile, plain) = found.expect("a tile on the collar's edge");
    let enhanced = server.get(&tile_path("collar", tile, "")).await;
    assert_eq!(enhanced.status(), 200);
    assert!(header(&enhanced).is_some(), "{tile} is enhanced");
    let enhanced = decode_image(&enhanced.bytes().await.expect("body"));
    for pixel in enhanced.pixels() {
        assert!(
            pixel.0[3] == 0 || pixel.0[3] == 255,
            "{tile}: alpha {pixel:?}"
        );
    }
    // The edge of the data may move by about a pixel, no more: fewer pixels change
    // transparency than twice the number of transparent pixels on the plain tile's edge.
    let edge = (1..255_u32)
        .flat_map(|y| (1..255_u32).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            plain.get_pixel(x, y).0[3] == 0
                && [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                    .iter()
                    .any(|&(nx, ny)| plain.get_pixel(nx, ny).0[3] == 255)
        })
        .count();
    let moved = enhanced
        .pixels()
        .zip(plain.pixels())
        .filter(|(e, p)| (e.0[3] == 0) != (p.0[3] == 0))
        .count();
    assert!(
        moved <= 2 * edge,
        "{tile}: {moved} pixels changed transparency along an edge of {edge}"
    );
    for pixel in enhanced.pixels().filter(|p| p.0[3] == 255) {
        assert_ne!(
            &pixel.0[..3],
            &[0, 0, 0],
            "{tile}: no black collar bleeds in"
        );
    }
}

#[tokio::test]
async fn invalid_enhance_is_rejected() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    let tile = lonlat_to_tile(lon, lat, 13);
    for query in ["?enhance=blur", "?enhance=", "?enhance=sharpen;clahe"] {
        let response = server.get(&tile_path("auto", tile, query)).await;
        assert_eq!(response.status(), 400, "{query}");
        let problem: serde_json::Value = response.json().await.expect("problem JSON");
        assert_eq!(problem["parameter"], "enhance", "{query}");
    }
}

#[tokio::test]
async fn tilejson_says_where_enhancement_starts() {
    let server = server().await;
    let auto = server.json("/tiles/auto.json").await;
    let enhancement = &auto["tessera:enhancement"];
    // 100 m pixels at 24.8° N: z11 pixels are 69 m, the first zoom finer than the scene by
    // more than 10 %.
    assert_eq!(enhancement["from_zoom"], 11, "{enhancement}");
    assert_eq!(enhancement["from_zoom_512"], 10, "{enhancement}");
    assert_eq!(enhancement["steps"], "resample=lanczos3; sharpen");
    assert_eq!(enhancement["header"], HEADER);
    // 100 m against z15's 4.34 m pixels is 23.1; the scene's Web Mercator bounds, from
    // which the factor is computed, are a little wider than its tilted UTM pixels.
    let factor = enhancement["factor_at_maxzoom"].as_f64().expect("factor");
    assert!((factor - 23.1).abs() < 0.5, "z15 factor {factor}");
    let contrast = server.json("/tiles/contrast.json").await;
    assert_eq!(
        contrast["tessera:enhancement"]["steps"],
        "haze=dark-object; resample=lanczos3; sharpen; clahe"
    );
    let plain = server.json("/tiles/plain.json").await;
    assert!(plain["tessera:enhancement"].is_null(), "{plain}");
}

#[tokio::test]
async fn web_maps_may_read_the_header() {
    let server = server().await;
    let (lon, lat) = SCENE_POINT;
    let response = server
        .client
        .get(server.url(&tile_path("auto", lonlat_to_tile(lon, lat, 13), "")))
        .header("origin", "http://example.test")
        .send()
        .await
        .expect("response");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ASCII")
        .to_ascii_lowercase();
    assert!(exposed.contains(HEADER), "{exposed}");
}

#[tokio::test]
async fn sixteen_bit_scene_is_enhanced_after_stretch() {
    let Some(band) = common::shared_data("imagery-sentinel2-l2a-29rkh/B04.tif") else {
        return;
    };
    let mut config = Config::default();
    config
        .sources
        .insert("red".into(), source(band, "maxzoom = 14\nhaze = true"));
    let server = TestServer::start(config).await;
    let (lon, lat) = SCENE_POINT;
    let path = tile_path("red", lonlat_to_tile(lon, lat, 13), "");
    let response = server.get(&path).await;
    assert_eq!(response.status(), 200, "{path}");
    let value = header(&response).expect("the tile is enhanced");
    assert!(value.contains("haze=dark-object"), "{value}");
    let image = decode_image(&response.bytes().await.expect("body"));
    let values: Vec<u8> = image.pixels().map(|p| p.0[0]).collect();
    let (min, max) = (
        values.iter().copied().min().expect("pixels"),
        values.iter().copied().max().expect("pixels"),
    );
    assert!(
        max > min + 20,
        "the stretched band has contrast: {min}..{max}"
    );
    assert!(
        image.pixels().all(|p| p.0[3] == 255),
        "the scene has no gaps here"
    );
}

/// Writes a TensorFlow.js layers model that doubles an image by repeating pixels and adds 1 to
/// each band, and returns the path of its `model.json`.
fn write_pixel_doubler(folder: &std::path::Path) -> std::path::PathBuf {
    let model = serde_json::json!({
        "format": "layers-model",
        "modelTopology": {"model_config": {"config": {"layers": [
            {"class_name": "InputLayer", "config": {"name": "LR"}, "inbound_nodes": []},
            {"class_name": "Conv2D", "config": {"name": "C", "strides": [1, 1],
              "dilation_rate": [1, 1], "activation": "linear", "padding": "same",
              "kernel_size": [3, 3], "filters": 3},
             "inbound_nodes": [[["LR", 0, 0, {}]]]},
            {"class_name": "UpSampling2D", "config": {"name": "U", "size": [2, 2],
              "interpolation": "nearest"}, "inbound_nodes": [[["C", 0, 0, {}]]]}
        ]}}},
        "weightsManifest": [{"paths": ["weights.bin"], "weights": [
            {"name": "C/kernel", "shape": [3, 3, 3, 3], "dtype": "float32"},
            {"name": "C/bias", "shape": [3], "dtype": "float32"}
        ]}]
    });
    // A 3x3 kernel whose centre tap is the identity, and a bias of 1.
    let mut values = vec![0_f32; 81];
    for channel in 0..3 {
        values[4 * 9 + channel * 3 + channel] = 1.0;
    }
    values.extend([1.0_f32; 3]);
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(folder.join("weights.bin"), bytes).expect("write weights");
    let path = folder.join("model.json");
    std::fs::write(&path, model.to_string()).expect("write model");
    path
}

#[tokio::test]
async fn model_step_is_explicit_and_reported() {
    let folder = tempfile::tempdir().expect("tempdir");
    let model = write_pixel_doubler(folder.path());
    let tci = geodata("sentinel2-29rkh/TCI.tif");
    let mut config = Config::default();
    let options = format!("maxzoom = 15\nmodel = {:?}", model.display().to_string());
    config
        .sources
        .insert("learned".into(), source(tci.clone(), &options));
    config
        .sources
        .insert("classical".into(), source(tci, "maxzoom = 15"));
    let server = TestServer::start(config).await;
    let (lon, lat) = SCENE_POINT;
    let tile = lonlat_to_tile(lon, lat, 13);

    let default = server.get(&tile_path("learned", tile, "")).await;
    let value = header(&default).expect("enhanced");
    assert!(!value.contains("model="), "never by default: {value}");
    let learned = server
        .get(&tile_path("learned", tile, "?enhance=model"))
        .await;
    let value = header(&learned).expect("enhanced");
    assert!(value.starts_with("model="), "{value}");
    assert!(!value.contains("sharpen"), "{value}");
    let first = learned.bytes().await.expect("body");
    let again = server
        .get(&tile_path("learned", tile, "?enhance=model"))
        .await;
    assert_eq!(again.bytes().await.expect("body"), first, "deterministic");
    let image = decode_image(&first);
    assert!(
        image.pixels().all(|p| p.0[3] == 255),
        "the scene has no gaps here"
    );
    let east = TileCoord::new(13, u64::from(tile.x) + 1, u64::from(tile.y)).expect("tile");
    let east = server
        .get(&tile_path("learned", east, "?enhance=model"))
        .await;
    let east = decode_image(&east.bytes().await.expect("body"));
    let column = |image: &image::RgbaImage, x: u32| -> Vec<[u8; 4]> {
        (0..256).map(|y| image.get_pixel(x, y).0).collect()
    };
    let across = line_difference(&column(&image, 255), &column(&east, 0));
    let inside = line_difference(&column(&image, 254), &column(&image, 255));
    assert!(
        across <= inside * 1.25 + 0.5,
        "east border {across:.2}, inside {inside:.2}"
    );

    let without = server
        .get(&tile_path("classical", tile, "?enhance=model"))
        .await;
    let value = header(&without).expect("enhanced");
    assert!(
        !value.contains("model="),
        "no network, no model step: {value}"
    );
    let tilejson = server.json("/tiles/learned.json").await;
    assert!(
        tilejson["tessera:enhancement"]["model"].is_string(),
        "{tilejson}"
    );
}
