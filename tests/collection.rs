//! Dated layers, mosaics and coverage layers over HTTP, on the sample scenes in `geodata/`:
//! NAIP on three dates, Landsat of Pucallpa in 1985 and 2020 (big-endian, EPSG:4326), and two
//! overlapping Landsat 8 scenes with nodata collars.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{TestServer, decode_image, geodata, shared_data};
use geozero::mvt::{Message as _, Tile, tile};
use tessera::config::{Config, SourceConfig};
use tessera::tile::{TileCoord, lonlat_to_tile};

const NAIP_FILES: [&str; 3] = [
    "m_4709963_se_14_1_20090818.tif",
    "m_4709963_se_14_1_20140720.tif",
    "m_4709963_se_14_1_20200831.tif",
];

fn source(path: PathBuf, options: &str) -> SourceConfig {
    SourceConfig {
        path,
        name: None,
        attribution: None,
        description: None,
        options: toml::from_str(options).expect("valid options"),
    }
}

async fn serve_sources(sources: Vec<(&str, SourceConfig)>) -> TestServer {
    let sources: BTreeMap<String, SourceConfig> = sources
        .into_iter()
        .map(|(id, config)| (id.to_owned(), config))
        .collect();
    TestServer::start(Config {
        sources,
        ..Config::default()
    })
    .await
}

/// Serves the NAIP folder as the dated layer `naip`, and each of its files alone as `d2009`,
/// `d2014` and `d2020`.
async fn naip_server() -> TestServer {
    let folder = geodata("naip-timeseries");
    let mut sources = vec![("naip", source(folder.clone(), "kind = \"dated\""))];
    for (id, file) in ["d2009", "d2014", "d2020"].into_iter().zip(NAIP_FILES) {
        sources.push((id, source(folder.join(file), "")));
    }
    serve_sources(sources).await
}

/// Returns a z15 tile inside the NAIP cut-out.
fn naip_tile() -> TileCoord {
    lonlat_to_tile(-99.161, 47.024, 15)
}

fn tile_path(source: &str, tile: TileCoord, query: &str) -> String {
    format!(
        "/tiles/{source}/{}/{}/{}.png{query}",
        tile.z, tile.x, tile.y
    )
}

async fn tile_bytes(server: &TestServer, path: &str) -> Vec<u8> {
    let response = server.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.bytes().await.expect("body").to_vec()
}

#[tokio::test]
async fn dated_layer_selects_newest_at_or_before() {
    let server = naip_server().await;
    let tile = naip_tile();
    let mut scene = BTreeMap::new();
    for id in ["d2009", "d2014", "d2020"] {
        scene.insert(id, tile_bytes(&server, &tile_path(id, tile, "")).await);
    }
    assert_ne!(scene["d2009"], scene["d2014"], "the dates differ");
    assert_ne!(scene["d2014"], scene["d2020"], "the dates differ");

    let cases = [
        // At a scene's date.
        ("?date=2009-08-18", "d2009"),
        ("?date=2014-07-20", "d2014"),
        ("?date=2020-08-31", "d2020"),
        // Between dates: the older one.
        ("?date=2014-07-19", "d2009"),
        ("?date=2012", "d2009"),
        ("?date=2014-06", "d2009"),
        ("?date=2014-07", "d2014"),
        ("?date=2019-12-31", "d2014"),
        // After the last date, and without a date: the newest.
        ("?date=2030", "d2020"),
        ("", "d2020"),
    ];
    for (query, expected) in cases {
        let bytes = tile_bytes(&server, &tile_path("naip", tile, query)).await;
        assert!(
            bytes == scene[expected],
            "naip{query} should show the scene of {expected}"
        );
    }
}

/// A dated layer enhances its scenes as a single file does: the same pixels and the same
/// `Tessera-Enhancement` header, and none with `enhance=none`.
#[tokio::test]
async fn dated_layer_enhances_like_its_scene() {
    let server = naip_server().await;
    // z15 pixels (about 3.3 m) are finer than NAIP's 5 m.
    let tile = naip_tile();
    let header = |response: &reqwest::Response| {
        response
            .headers()
            .get("tessera-enhancement")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    for query in ["?date=2014", "?date=2014&enhance=none"] {
        let dated = server.get(&tile_path("naip", tile, query)).await;
        let single_query = query.replace("date=2014&", "").replace("?date=2014", "");
        let single = server.get(&tile_path("d2014", tile, &single_query)).await;
        assert_eq!(dated.status(), 200, "{query}");
        let (dated_header, single_header) = (header(&dated), header(&single));
        assert_eq!(dated_header, single_header, "{query}");
        if query.contains("none") {
            assert!(dated_header.is_none(), "enhance=none is plain");
        } else {
            let value = dated_header.expect("a z15 NAIP tile is enhanced");
            assert!(value.contains("factor="), "{value}");
        }
        let dated = dated.bytes().await.expect("body");
        let single = single.bytes().await.expect("body");
        assert!(dated == single, "{query}: the dated tile is its scene's");
    }
}

/// WMTS lists the scene dates as the TIME dimension, and a TIME value selects that date's
/// scene, as `date` does on the XYZ route.
#[tokio::test]
async fn wmts_time_selects_the_dated_scene() {
    let server = naip_server().await;
    let capabilities = server
        .get("/wmts/1.0.0/WMTSCapabilities.xml")
        .await
        .text()
        .await
        .expect("capabilities");
    for date in ["2009-08-18", "2014-07-20", "2020-08-31"] {
        assert!(
            capabilities.contains(&format!("<Value>{date}</Value>")),
            "TIME lists {date}"
        );
    }
    let tile = naip_tile();
    for (time, single) in [("2009-08-18", "d2009"), ("2014-07-20", "d2014")] {
        let rest = format!(
            "/wmts/1.0.0/naip/default/{time}/WebMercatorQuad/{}/{}/{}.png",
            tile.z, tile.y, tile.x
        );
        let kvp = format!(
            "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=naip&STYLE=default&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX={}&TILEROW={}&TILECOL={}&TIME={time}",
            tile.z, tile.y, tile.x
        );
        let expected = tile_bytes(&server, &tile_path(single, tile, "")).await;
        assert!(
            tile_bytes(&server, &rest).await == expected,
            "REST TIME={time}"
        );
        assert!(
            tile_bytes(&server, &kvp).await == expected,
            "KVP TIME={time}"
        );
    }
    let undated = format!(
        "/wmts/1.0.0/naip/default/2011-01-01/WebMercatorQuad/{}/{}/{}.png",
        tile.z, tile.y, tile.x
    );
    assert_eq!(
        server.get(&undated).await.status(),
        400,
        "a TIME not listed"
    );
}

/// A misspelt or repeated `date` is a 400, never a tile of another date.
#[tokio::test]
async fn misspelt_or_repeated_date_is_400() {
    let server = naip_server().await;
    let cases = [
        ("?DATE=2009", "query"),
        ("?dat=2009", "query"),
        ("?date=2009&date=2020", "date"),
    ];
    for (query, parameter) in cases {
        let response = server.get(&tile_path("naip", naip_tile(), query)).await;
        assert_eq!(response.status(), 400, "{query}");
        let problem: serde_json::Value = response.json().await.expect("problem details");
        assert_eq!(problem["parameter"], parameter, "{query}");
    }
}

#[tokio::test]
async fn dated_tile_names_its_date() {
    let server = naip_server().await;
    let cases = [("?date=2016", Some("2014-07-20")), ("", Some("2020-08-31"))];
    for (query, expected) in cases {
        let response = server.get(&tile_path("naip", naip_tile(), query)).await;
        assert_eq!(response.status(), 200, "{query}");
        let shown = response.headers().get("tessera-date");
        assert_eq!(
            shown.and_then(|value| value.to_str().ok()),
            expected,
            "{query}"
        );
    }
    let single = server.get(&tile_path("d2014", naip_tile(), "")).await;
    assert!(
        single.headers().get("tessera-date").is_none(),
        "a single file's tiles name no date"
    );
}

#[tokio::test]
async fn invalid_collections_are_reported() {
    let naip = geodata("naip-timeseries");
    let mosaic = geodata("landsat8-mosaic");
    let cases = [
        // Undated scenes cannot make a dated layer.
        // A fixed stretch keeps GDAL from writing the statistics of a percentile stretch
        // into an .aux.xml file beside the scene.
        (
            "undated",
            source(mosaic, "kind = \"dated\"\nrescale = \"range:6000,18000\""),
            "dates",
        ),
        (
            "unknown-file",
            source(
                naip.clone(),
                "kind = \"dated\"\n[dates]\n\"missing.tif\" = \"2014\"",
            ),
            "missing.tif",
        ),
        (
            "bad-kind",
            source(naip.clone(), "kind = \"stack\""),
            "stack",
        ),
        (
            "bad-order",
            source(naip.clone(), "kind = \"mosaic\"\norder = \"oldest\""),
            "oldest",
        ),
        (
            "bad-option",
            source(naip.clone(), "kind = \"mosaic\"\nrescal = \"auto\""),
            "rescal",
        ),
        (
            "one-date",
            source(naip.clone(), "kind = \"mosaic\"\ndate = \"2014\""),
            "dates",
        ),
        (
            "missing-scene",
            source(naip.clone(), "kind = \"mosaic\"\nfiles = [\"absent.tif\"]"),
            "absent.tif of collection",
        ),
        (
            "bad-date",
            source(
                naip,
                "kind = \"dated\"\n[dates]\n\"m_4709963_se_14_1_20090818.tif\" = \"2009-02-30\"",
            ),
            "2009-02-30",
        ),
    ];
    for (id, config, word) in cases {
        let server = serve_sources(vec![(id, config)]).await;
        let failures = &server.state.failures;
        assert_eq!(failures.len(), 1, "{id}: {failures:#?}");
        let reason = &failures[0].reason;
        assert!(reason.contains(word), "{id}: {reason}");
    }
}

#[tokio::test]
async fn single_file_date_from_side_file() {
    let server = TestServer::serving(&[geodata("sentinel2-29rkh")]).await;
    let tile = lonlat_to_tile(-11.4, 24.8, 8);
    let decoded = decode_coverage(&server, "TCI.coverage", tile).await;
    let features = coverage_features(&decoded);
    assert_eq!(features.len(), 1);
    assert_eq!(features[0]["date"], "2020-02-19");
    assert_eq!(features[0]["date_origin"], "configuration");
    assert_eq!(features[0]["sensor"], "Sentinel-2A MSI");
}

#[tokio::test]
async fn date_before_first_scene_is_404() {
    let server = naip_server().await;
    for query in ["?date=2009-08-17", "?date=2008", "?date=2009-07"] {
        let response = server.get(&tile_path("naip", naip_tile(), query)).await;
        assert_eq!(response.status(), 404, "{query}");
        let problem: serde_json::Value = response.json().await.expect("problem JSON");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(
            detail.contains("2009-08-18"),
            "names the first date: {detail}"
        );
    }
    let response = server.get("/tiles/naip.json?date=2001").await;
    assert_eq!(
        response.status(),
        404,
        "TileJSON of a date before the first"
    );
}

#[tokio::test]
async fn malformed_date_is_400_naming_date() {
    let server = naip_server().await;
    let cases = [
        ("naip", "?date=2014-13"),
        ("naip", "?date=2014-02-30"),
        ("naip", "?date=20140720"),
        ("naip", "?date=July"),
        ("naip", "?date="),
        // A single file has no dates to choose from.
        ("d2014", "?date=2014"),
    ];
    for (id, query) in cases {
        let response = server.get(&tile_path(id, naip_tile(), query)).await;
        assert_eq!(response.status(), 400, "{id}{query}");
        let problem: serde_json::Value = response.json().await.expect("problem JSON");
        assert_eq!(problem["parameter"], "date", "{id}{query}: {problem}");
    }
}

#[tokio::test]
async fn tilejson_lists_dates_and_scenes() {
    let server = naip_server().await;
    let tilejson = server.json("/tiles/naip.json").await;
    assert_eq!(
        tilejson["tessera:dates"],
        serde_json::json!(["2009-08-18", "2014-07-20", "2020-08-31"])
    );
    assert_eq!(tilejson["tessera:kind"], "dated");
    let scenes = tilejson["tessera:scenes"].as_array().expect("scenes");
    assert_eq!(scenes.len(), 3);
    for (scene, file) in scenes.iter().zip(NAIP_FILES) {
        assert_eq!(scene["file"], file);
        assert_eq!(scene["date_origin"], "file_name", "{scene}");
        assert_eq!(scene["resolution_m"], 5.0, "{scene}");
    }
    let coverage = tilejson["tessera:coverage"].as_str().expect("coverage URL");
    assert!(
        coverage.ends_with("/tiles/naip.coverage.json"),
        "{coverage}"
    );

    let dated = server.json("/tiles/naip.json?date=2014").await;
    let template = dated["tiles"][0].as_str().expect("tile URL");
    assert!(
        template.ends_with("/tiles/naip/{z}/{x}/{y}.png?date=2014"),
        "the date is carried in the tile URL: {template}"
    );
}

#[tokio::test]
async fn pucallpa_dates_are_years_from_file_names() {
    let server = TestServer::serving(&[geodata("landsat-pucallpa")]).await;
    let tilejson = server.json("/tiles/landsat-pucallpa.json").await;
    assert_eq!(
        tilejson["tessera:dates"],
        serde_json::json!(["1985", "2020"])
    );
    // Pucallpa, Peru: both coordinates negative, in a big-endian EPSG:4326 file.
    let tile = lonlat_to_tile(-74.55, -8.38, 11);
    let old = tile_bytes(&server, &tile_path("landsat-pucallpa", tile, "?date=1999")).await;
    let new = tile_bytes(&server, &tile_path("landsat-pucallpa", tile, "")).await;
    let year_1985 = tile_bytes(&server, &tile_path("landsat-pucallpa", tile, "?date=1985")).await;
    assert_eq!(old, year_1985, "1999 shows the 1985 scene");
    assert_ne!(old, new, "1985 and 2020 differ");
    let image = decode_image(&new);
    let opaque = image.pixels().filter(|pixel| pixel[3] == 255).count();
    assert!(
        opaque > 1000,
        "the 2020 tile has data: {opaque} opaque pixels"
    );
}

#[tokio::test]
async fn discovered_folder_is_one_collection() {
    let server = TestServer::serving(&[geodata("naip-timeseries")]).await;
    let catalog = server.json("/catalog").await;
    let ids: Vec<&str> = catalog["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|source| source["id"].as_str())
        .collect();
    assert_eq!(ids, ["naip-timeseries", "naip-timeseries.coverage"]);
    let coverage = &catalog["sources"][1];
    assert_eq!(coverage["coverage_of"], "naip-timeseries");
    assert_eq!(coverage["kind"], "vector");
    let tilejson = server.json("/tiles/naip-timeseries.json").await;
    assert_eq!(
        tilejson["tessera:scenes"][0]["sensor"],
        "NAIP aerial camera"
    );
}

/// Pixel classes of a mosaic tile, by which scene has data there.
#[derive(Debug, Default)]
struct Overlap {
    both: usize,
    first_only: usize,
    second_only: usize,
    neither: usize,
    /// Pixels whose mosaic value is not the one the order and the nodata call for.
    wrong: Vec<String>,
}

/// Compares the mosaic with each scene served alone, pixel by pixel, where each scene is
/// fully opaque or fully transparent. `top` is the scene expected on top where both have data.
async fn classify_mosaic(server: &TestServer, mosaic: &str, top: &str, query: &str) -> Overlap {
    let mut overlap = Overlap::default();
    // z8 tiles over the overlap of the two scenes, with both scenes' collars.
    let tiles = [(75, 90), (75, 91), (76, 90), (76, 91), (74, 90), (77, 91)];
    for (x, y) in tiles {
        let tile = TileCoord::new(8, x, y).expect("valid tile");
        let image = |id: &'static str, query: &'static str| async move {
            let response = server.get(&tile_path(id, tile, query)).await;
            match response.status().as_u16() {
                200 => decode_image(&response.bytes().await.expect("body")),
                204 | 404 => image::RgbaImage::new(256, 256),
                status => panic!("{id} {tile}: status {status}"),
            }
        };
        let first = image("cog1", "").await;
        let second = image("cog2", "").await;
        let mosaic_path = tile_path(mosaic, tile, query);
        let response = server.get(&mosaic_path).await;
        let composite = match response.status().as_u16() {
            200 => decode_image(&response.bytes().await.expect("body")),
            204 => image::RgbaImage::new(256, 256),
            status => panic!("{mosaic_path}: status {status}"),
        };
        for (index, ((a, b), m)) in first
            .pixels()
            .zip(second.pixels())
            .zip(composite.pixels())
            .enumerate()
        {
            let (a_valid, b_valid) = (a[3] == 255, b[3] == 255);
            let (a_empty, b_empty) = (a[3] == 0, b[3] == 0);
            let expected = if a_valid && b_valid {
                overlap.both += 1;
                if top == "cog1" { a } else { b }
            } else if a_valid && b_empty {
                overlap.first_only += 1;
                a
            } else if a_empty && b_valid {
                overlap.second_only += 1;
                b
            } else if a_empty && b_empty {
                overlap.neither += 1;
                &image::Rgba([0, 0, 0, 0])
            } else {
                continue;
            };
            let matches = if expected[3] == 0 {
                m[3] == 0
            } else {
                m == expected
            };
            if !matches && overlap.wrong.len() < 5 {
                overlap.wrong.push(format!(
                    "{tile} pixel {index}: mosaic {m:?}, expected {expected:?}"
                ));
            }
        }
    }
    overlap
}

/// Serves the two Landsat 8 scenes of the sample data as the mosaic `mosaic` with `options`,
/// and each alone.
async fn mosaic_server(options: &str) -> TestServer {
    mosaic_server_of(geodata("landsat8-mosaic"), options).await
}

/// Serves the two Landsat 8 scenes in `folder` as the mosaic `mosaic` with `options`, and each
/// alone as `cog1` and `cog2`.
async fn mosaic_server_of(folder: PathBuf, options: &str) -> TestServer {
    let stretch = "rescale = \"range:6000,18000\"\n";
    serve_sources(vec![
        (
            "mosaic",
            source(
                folder.clone(),
                &format!("kind = \"mosaic\"\n{stretch}{options}"),
            ),
        ),
        ("cog1", source(folder.join("mosaic_cog1.tif"), stretch)),
        ("cog2", source(folder.join("mosaic_cog2.tif"), stretch)),
    ])
    .await
}

#[tokio::test]
async fn mosaic_order_and_nodata_at_overlap() {
    let server = mosaic_server("").await;
    let overlap = classify_mosaic(&server, "mosaic", "cog1", "").await;
    assert!(overlap.wrong.is_empty(), "{:#?}", overlap.wrong);
    assert!(overlap.both > 1000, "pixels in both scenes: {overlap:?}");
    assert!(
        overlap.first_only > 1000,
        "pixels only in cog1: {overlap:?}"
    );
    assert!(
        overlap.second_only > 1000,
        "pixels in cog2 under cog1's collar: {overlap:?}"
    );
    assert!(overlap.neither > 100, "pixels in neither: {overlap:?}");
}

#[tokio::test]
async fn full_resolution_mosaic_at_overlap() {
    // The original 300 m scenes, whose grids differ in origin and in pixel size.
    let Some(folder) = shared_data("imagery-landsat8-uint16-mosaic") else {
        return;
    };
    let server = mosaic_server_of(folder, "").await;
    let overlap = classify_mosaic(&server, "mosaic", "cog1", "").await;
    assert!(overlap.wrong.is_empty(), "{:#?}", overlap.wrong);
    assert!(overlap.both > 1000, "pixels in both scenes: {overlap:?}");
    assert!(
        overlap.first_only > 1000,
        "pixels only in cog1: {overlap:?}"
    );
    assert!(
        overlap.second_only > 1000,
        "pixels in cog2 under cog1's collar: {overlap:?}"
    );
    assert!(overlap.neither > 100, "pixels in neither: {overlap:?}");
}

#[tokio::test]
async fn mosaic_tiles_are_deterministic() {
    let server = mosaic_server("").await;
    let path = tile_path("mosaic", TileCoord::new(8, 75, 90).expect("valid tile"), "");
    let first = server.get(&path).await;
    let second = server.get(&path).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers().get("etag"), second.headers().get("etag"));
    let first = first.bytes().await.expect("body");
    let second = second.bytes().await.expect("body");
    assert!(first == second, "the same request gives the same bytes");
}

#[tokio::test]
async fn undated_mosaic_rejects_date() {
    let server = mosaic_server("").await;
    let path = tile_path(
        "mosaic",
        TileCoord::new(8, 75, 90).expect("valid tile"),
        "?date=2014",
    );
    let response = server.get(&path).await;
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.expect("problem JSON");
    assert_eq!(problem["parameter"], "date", "{problem}");
}

#[tokio::test]
async fn mosaic_newest_first_and_by_date() {
    let dates = "order = \"newest\"\n[dates]\n\"mosaic_cog1.tif\" = \"2019-06-01\"\n\"mosaic_cog2.tif\" = \"2020-06-01\"\n";
    let server = mosaic_server(dates).await;
    let overlap = classify_mosaic(&server, "mosaic", "cog2", "").await;
    assert!(overlap.wrong.is_empty(), "{:#?}", overlap.wrong);
    assert!(overlap.both > 1000, "pixels in both scenes: {overlap:?}");

    // In 2019 only cog1 existed: the mosaic of that date is cog1 alone.
    let tile = TileCoord::new(8, 76, 90).expect("valid tile");
    let mosaic = tile_bytes(&server, &tile_path("mosaic", tile, "?date=2019")).await;
    let first = tile_bytes(&server, &tile_path("cog1", tile, "")).await;
    assert_eq!(
        decode_image(&mosaic).into_raw(),
        decode_image(&first).into_raw(),
        "a mosaic of 2019 leaves out the 2020 scene"
    );
}

/// Reads the string or number attributes of every feature of the `coverage` layer.
fn coverage_features(decoded: &Tile) -> Vec<BTreeMap<String, String>> {
    let layer = decoded
        .layers
        .iter()
        .find(|layer| layer.name == "coverage")
        .expect("coverage layer");
    layer
        .features
        .iter()
        .map(|feature| {
            assert_eq!(feature.r#type, Some(tile::GeomType::Polygon as i32));
            feature
                .tags
                .chunks_exact(2)
                .map(|pair| {
                    let value = &layer.values[pair[1] as usize];
                    let text = value
                        .string_value
                        .clone()
                        .or(value.double_value.map(|v| v.to_string()))
                        .or(value.int_value.map(|v| v.to_string()))
                        .or(value.uint_value.map(|v| v.to_string()))
                        .or(value.sint_value.map(|v| v.to_string()))
                        .unwrap_or_default();
                    (layer.keys[pair[0] as usize].clone(), text)
                })
                .collect()
        })
        .collect()
}

async fn decode_coverage(server: &TestServer, id: &str, tile: TileCoord) -> Tile {
    let path = format!("/tiles/{id}/{}/{}/{}.pbf", tile.z, tile.x, tile.y);
    let bytes = tile_bytes(server, &path).await;
    Tile::decode(bytes.as_slice()).expect("valid MVT")
}

#[tokio::test]
async fn coverage_features_have_scene_fields() {
    let server = naip_server().await;
    let tilejson = server.json("/tiles/naip.coverage.json").await;
    let layer = &tilejson["vector_layers"][0];
    assert_eq!(layer["id"], "coverage");
    for field in [
        "resolution_m",
        "date",
        "sensor",
        "source",
        "enhanced_from_zoom",
    ] {
        assert!(layer["fields"].get(field).is_some(), "{field} in {layer}");
    }

    let decoded = decode_coverage(&server, "naip.coverage", naip_tile()).await;
    let features = coverage_features(&decoded);
    assert_eq!(features.len(), 3, "one footprint per date: {features:?}");
    let dates: Vec<&str> = features.iter().map(|f| f["date"].as_str()).collect();
    assert_eq!(dates, ["2009-08-18", "2014-07-20", "2020-08-31"]);
    for (feature, file) in features.iter().zip(NAIP_FILES) {
        assert_eq!(feature["file"], file);
        assert_eq!(feature["resolution_m"], "5");
        assert_eq!(feature["source"], file, "default source is the file");
        assert_eq!(feature["date_origin"], "file_name");
        // 5 m is between the pixels of z14 (about 6.5 m here) and z15 (about 3.3 m).
        assert_eq!(feature["enhanced_from_zoom"], "15");
        assert!(!feature.contains_key("sensor"), "no sensor is known");
    }

    // A single file has a coverage layer too.
    let single = decode_coverage(&server, "d2014.coverage", naip_tile()).await;
    let features = coverage_features(&single);
    assert_eq!(features.len(), 1);
    assert_eq!(features[0]["date"], "2014-07-20");
}

#[tokio::test]
async fn coverage_reads_a_stac_item() {
    let Some(tci) = shared_data("imagery-sentinel2-l2a-29rkh/TCI.tif") else {
        return;
    };
    let server = serve_sources(vec![("s2", source(tci, ""))]).await;
    let tile = lonlat_to_tile(-11.4, 24.8, 8);
    let decoded = decode_coverage(&server, "s2.coverage", tile).await;
    let features = coverage_features(&decoded);
    assert_eq!(features.len(), 1);
    let scene = &features[0];
    assert_eq!(scene["date"], "2020-02-19");
    assert_eq!(scene["date_origin"], "stac_item");
    assert_eq!(scene["sensor"], "sentinel-2a msi");
    assert_eq!(scene["source"], "sentinel-2-l2a/S2A_29RKH_20200219_0_L2A");
    assert_eq!(scene["resolution_m"], "100");
}

#[tokio::test]
async fn mosaic_has_no_seams_between_tiles() {
    let server = mosaic_server("").await;
    // A z7 tile at @2x has the pixel grid of its four z8 children. Their 600 m scenes are
    // enhanced at z8, each tile from its own native-resolution grid, so the comparison is
    // made on plain pixels. tests/enhance.rs checks that enhanced neighbours meet.
    let parent = TileCoord::new(7, 37, 45).expect("valid tile");
    let path = format!(
        "/tiles/mosaic/7/{}/{}@2x.png?enhance=none",
        parent.x, parent.y
    );
    let whole = decode_image(&tile_bytes(&server, &path).await);
    let opaque = whole.pixels().filter(|pixel| pixel[3] == 255).count();
    assert!(
        opaque > 100_000,
        "the parent tile has data: {opaque} pixels"
    );

    let mut stitched = image::RgbaImage::new(512, 512);
    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let child = TileCoord::new(
            8,
            u64::from(parent.x * 2 + dx),
            u64::from(parent.y * 2 + dy),
        )
        .expect("valid tile");
        let response = server
            .get(&tile_path("mosaic", child, "?enhance=none"))
            .await;
        if response.status() == 204 {
            continue;
        }
        let image = decode_image(&response.bytes().await.expect("body"));
        image::imageops::replace(
            &mut stitched,
            &image,
            i64::from(dx * 256),
            i64::from(dy * 256),
        );
    }

    let differences: Vec<u8> = whole
        .as_raw()
        .iter()
        .zip(stitched.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let far = differences.iter().filter(|&&d| d > 8).count();
    let mean = differences.iter().map(|&d| f64::from(d)).sum::<f64>() / differences.len() as f64;
    assert!(
        mean < 0.5,
        "mean difference {mean} between the parent and its children"
    );
    assert!(
        far * 1000 < differences.len(),
        "{far} of {} values differ by more than 8",
        differences.len()
    );
}

#[tokio::test]
async fn viewer_date_slider_and_swipe() {
    let playwright = common::repo().join("tests/browser/node_modules/playwright-core");
    if !common::have_program("node") || !common::have_program("chromium") || !playwright.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "node, chromium or playwright-core is missing in CI: run scripts/setup --test"
        );
        eprintln!(
            "SKIPPED: the browser test needs node, chromium and npm ci --prefix tests/browser"
        );
        return;
    }
    let server = TestServer::serving(&[geodata("naip-timeseries")]).await;
    let url = server.url("/?style=#13/47.024/-99.161");
    let script = common::repo().join("tests/browser/dates.mjs");
    let screenshot = common::repo().join("docs/viewer-dates.png");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(url)
            .arg(screenshot)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|error| panic!("no JSON summary ({error}): {stdout}"));
    assert_eq!(summary["layer"]["id"], "naip-timeseries", "{summary}");
    assert_eq!(summary["slider"]["status"], 200, "{summary}");
    assert_eq!(summary["label"], "2009-08-18", "{summary}");
    assert_eq!(summary["comparison"]["status"], 200, "{summary}");
    assert_eq!(summary["swipe"], true, "{summary}");
}

#[tokio::test]
async fn mosaic_prefers_finest_scene() {
    let Some(folder) = shared_data("imagery-sentinel2-l2a-29rkh") else {
        return;
    };
    // The 3,228 m preview is listed first, but the 100 m true colour is finer.
    let scenes =
        "files = [\"L2A_PVI.tif\", \"TCI.tif\"]\n[dates]\n\"L2A_PVI.tif\" = \"2020-02-19\"\n";
    let server = serve_sources(vec![
        (
            "finest",
            source(folder.clone(), &format!("kind = \"mosaic\"\n{scenes}")),
        ),
        (
            "newest",
            source(
                folder.clone(),
                &format!("kind = \"mosaic\"\norder = \"newest\"\n{scenes}"),
            ),
        ),
        ("tci", source(folder.join("TCI.tif"), "")),
        ("preview", source(folder.join("L2A_PVI.tif"), "")),
    ])
    .await;
    let pixels = |id: &'static str, z: u8| {
        let path = tile_path(id, lonlat_to_tile(-11.4, 24.8, z), "");
        let server = &server;
        async move { decode_image(&tile_bytes(server, &path).await).into_raw() }
    };
    // The preview alone is served up to zoom 6, the zoom of its own pixels.
    assert_ne!(
        pixels("tci", 6).await,
        pixels("preview", 6).await,
        "the two scenes differ"
    );
    // Inside both scenes at zoom 9, the mosaic draws whichever scene comes first.
    let tci = pixels("tci", 9).await;
    assert_eq!(
        pixels("finest", 9).await,
        tci,
        "finest first: the 100 m scene"
    );
    assert_eq!(
        pixels("newest", 9).await,
        tci,
        "one date: the finer scene comes first"
    );

    let tile = lonlat_to_tile(-11.4, 24.8, 9);
    let decoded = decode_coverage(&server, "finest.coverage", tile).await;
    let features = coverage_features(&decoded);
    let facts: Vec<(&str, i64, &str)> = features
        .iter()
        .map(|feature| {
            let resolution: f64 = feature["resolution_m"].parse().expect("a number");
            (
                feature["file"].as_str(),
                resolution.round() as i64,
                feature["date_origin"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        [
            ("L2A_PVI.tif", 3228, "configuration"),
            ("TCI.tif", 100, "stac_item"),
        ]
    );
}
