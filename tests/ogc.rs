//! WMTS, TMS, TileJSON and OGC API – Tiles and Features against the real server, read by
//! `xmllint` against the official WMTS schema and by GDAL's WMTS and MVT drivers.

mod common;

use std::process::Command;

use common::{TestServer, decode_image, geodata, have_program, repo};
use tessera::tile::{TileCoord, lonlat_to_tile};

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

async fn run(program: &str, args: Vec<String>) -> std::process::Output {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || Command::new(&program).args(&args).output())
        .await
        .expect("join")
        .expect("run the client")
}

async fn text(server: &TestServer, path: &str) -> (u16, String, String) {
    let response = server.get(path).await;
    let status = response.status().as_u16();
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, media_type, response.text().await.expect("body"))
}

/// Writes a copy of the WMTS 1.0.0 capabilities schema in which the tile limits
/// (`MinTileRow`, `MaxTileRow`, `MinTileCol`, `MaxTileCol`) are `nonNegativeInteger`, and
/// returns its path.
///
/// NOTE: the 1.0.0 schema types them as `positiveInteger`, yet its own documentation of
/// `MinTileRow` reads "From 0 to maxTileRow", and its GetTile request schema types `TileRow` as
/// `nonNegativeInteger`. Unpatched, no layer could list row 0 or column 0 (every layer at zoom
/// 0). Everything else is validated unchanged.
fn tile_limits_schema(folder: &std::path::Path) -> std::path::PathBuf {
    let schemas = repo().join("tests/data/schemas");
    let original =
        std::fs::read_to_string(schemas.join("wmts/1.0/wmtsGetCapabilities_response.xsd"))
            .expect("read the vendored WMTS schema");
    let mut patched = original.clone();
    for element in ["MinTileRow", "MaxTileRow", "MinTileCol", "MaxTileCol"] {
        patched = patched.replace(
            &format!("<element name=\"{element}\" type=\"positiveInteger\">"),
            &format!("<element name=\"{element}\" type=\"nonNegativeInteger\">"),
        );
    }
    assert_eq!(
        patched.matches("nonNegativeInteger").count(),
        4,
        "the four limits are patched"
    );
    // Relative imports (`../../ows/1.1.0/owsAll.xsd`) must resolve from the copy as well.
    let copy = folder.join("wmts/1.0/wmtsGetCapabilities_response.xsd");
    std::fs::create_dir_all(copy.parent().expect("parent")).expect("create schema folder");
    std::fs::write(&copy, patched).expect("write patched schema");
    for shared in ["ows", "xlink", "xml.xsd"] {
        let link = folder.join(shared);
        if !link.exists() {
            std::os::unix::fs::symlink(schemas.join(shared), link).expect("link schema");
        }
    }
    copy
}

#[tokio::test]
async fn wmts_capabilities_pass_the_schema() {
    if !require(
        "xmllint",
        "run scripts/setup --test to install libxml2-utils",
    ) {
        return;
    }
    let server = TestServer::sample().await;
    let folder = tempfile::tempdir().expect("tempdir");
    for path in [
        "/wmts?SERVICE=WMTS&REQUEST=GetCapabilities",
        "/wmts/1.0.0/WMTSCapabilities.xml",
    ] {
        let (status, media_type, xml) = text(&server, path).await;
        assert_eq!(status, 200, "{path}: {xml}");
        assert_eq!(media_type, "application/xml", "{path}");
        for layer in ["TCI", "RGB.byte", "camps"] {
            assert!(
                xml.contains(&format!("<ows:Identifier>{layer}</ows:Identifier>")),
                "{layer} listed"
            );
        }
        let file = folder.path().join("capabilities.xml");
        std::fs::write(&file, &xml).expect("write capabilities");
        let schema = tile_limits_schema(folder.path());
        let output = run(
            "xmllint",
            vec![
                "--noout".into(),
                "--nonet".into(),
                "--schema".into(),
                schema.display().to_string(),
                file.display().to_string(),
            ],
        )
        .await;
        assert!(
            output.status.success(),
            "{path} is not valid WMTS 1.0.0: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Requests with one invalid parameter each: path, HTTP status, exception code and locator.
fn exception_cases() -> Vec<(String, u16, &'static str, &'static str)> {
    let tile = lonlat_to_tile(125.95, 39.58, 8);
    let kvp = |layer: &str, format: &str, set: &str, row: u32, col: u32| {
        format!(
            "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}&STYLE=default&FORMAT={format}&TILEMATRIXSET={set}&TILEMATRIX=8&TILEROW={row}&TILECOL={col}"
        )
    };
    let mvt = "application/vnd.mapbox-vector-tile";
    vec![
        (
            kvp("nowhere", mvt, "WebMercatorQuad", tile.y, tile.x),
            400,
            "InvalidParameterValue",
            "LAYER",
        ),
        (
            kvp("camps", mvt, "EPSG:4326", tile.y, tile.x),
            400,
            "InvalidParameterValue",
            "TILEMATRIXSET",
        ),
        (
            kvp("camps", "image/gif", "WebMercatorQuad", tile.y, tile.x),
            400,
            "InvalidParameterValue",
            "FORMAT",
        ),
        (
            kvp("camps", mvt, "WebMercatorQuad", 0, tile.x),
            400,
            "TileOutOfRange",
            "TILEROW",
        ),
        (
            kvp("camps", mvt, "WebMercatorQuad", tile.y, 0),
            400,
            "TileOutOfRange",
            "TILECOL",
        ),
        (
            "/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=camps".to_owned(),
            400,
            "MissingParameterValue",
            "FORMAT",
        ),
        (
            "/wmts?SERVICE=WMTS&REQUEST=GetFeatureInfo".to_owned(),
            501,
            "OperationNotSupported",
            "REQUEST",
        ),
        (
            "/wmts/1.0.0/nowhere/default/WebMercatorQuad/8/1/1.png".to_owned(),
            400,
            "InvalidParameterValue",
            "LAYER",
        ),
        (
            "/wmts/1.0.0/camps/default/WorldCRS84Quad/8/1/1.pbf".to_owned(),
            400,
            "InvalidParameterValue",
            "TILEMATRIXSET",
        ),
        (
            format!(
                "/wmts/1.0.0/camps/default/WebMercatorQuad/30/{}/{}.pbf",
                tile.y, tile.x
            ),
            400,
            "InvalidParameterValue",
            "TILEMATRIX",
        ),
        (
            format!(
                "/wmts/1.0.0/camps/dark/WebMercatorQuad/8/{}/{}.pbf",
                tile.y, tile.x
            ),
            400,
            "InvalidParameterValue",
            "STYLE",
        ),
        (
            format!(
                "/wmts/1.0.0/camps/default/2020-01-01/WebMercatorQuad/8/{}/{}.pbf",
                tile.y, tile.x
            ),
            400,
            "InvalidParameterValue",
            "TIME",
        ),
    ]
}

#[tokio::test]
async fn wmts_exception_reports_pass_the_schema() {
    if !require(
        "xmllint",
        "run scripts/setup --test to install libxml2-utils",
    ) {
        return;
    }
    let server = TestServer::sample().await;
    let cases = exception_cases();
    let folder = tempfile::tempdir().expect("tempdir");
    let schema = repo().join("tests/data/schemas/ows/1.1.0/owsExceptionReport.xsd");
    for (path, status, code, locator) in cases {
        let (actual, media_type, xml) = text(&server, &path).await;
        assert_eq!(actual, status, "{path}: {xml}");
        assert_eq!(media_type, "application/xml", "{path}");
        assert!(
            xml.contains(&format!("exceptionCode=\"{code}\"")),
            "{path}: {xml}"
        );
        assert!(
            xml.contains(&format!("locator=\"{locator}\"")),
            "{path}: {xml}"
        );
        let file = folder.path().join("exception.xml");
        std::fs::write(&file, &xml).expect("write report");
        let output = run(
            "xmllint",
            vec![
                "--noout".into(),
                "--nonet".into(),
                "--schema".into(),
                schema.display().to_string(),
                file.display().to_string(),
            ],
        )
        .await;
        assert!(
            output.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn wmts_tiles_match_xyz_tiles() {
    let server = TestServer::sample().await;
    let tile = lonlat_to_tile(-11.43, 24.8, 9);
    let xyz = server
        .get(&format!("/tiles/TCI/{}/{}/{}.png", tile.z, tile.x, tile.y))
        .await;
    assert_eq!(xyz.status(), 200);
    let xyz = xyz.bytes().await.expect("body");
    for path in [
        format!(
            "/wmts/1.0.0/TCI/default/WebMercatorQuad/{}/{}/{}.png",
            tile.z, tile.y, tile.x
        ),
        format!(
            "/wmts/1.0.0/TCI/default/GoogleMapsCompatible/{}/{}/{}.png",
            tile.z, tile.y, tile.x
        ),
        format!(
            "/wmts?service=WMTS&request=GetTile&version=1.0.0&layer=TCI&style=&format=image/png&TileMatrixSet=WebMercatorQuad&TileMatrix={}&TileRow={}&TileCol={}",
            tile.z, tile.y, tile.x
        ),
        format!("/tms/1.0.0/TCI/{}/{}/{}.png", tile.z, tile.x, tile.tms_y()),
        format!(
            "/ogc/collections/TCI/tiles/WebMercatorQuad/{}/{}/{}?f=png",
            tile.z, tile.y, tile.x
        ),
    ] {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "image/png", "{path}");
        assert_eq!(response.bytes().await.expect("body"), xyz, "{path}");
    }
}

#[tokio::test]
async fn tms_rows_count_from_the_south() {
    let server = TestServer::sample().await;
    let tile = lonlat_to_tile(125.95, 39.58, 8);
    let xyz = server
        .get(&format!(
            "/tiles/camps/{}/{}/{}.pbf",
            tile.z, tile.x, tile.y
        ))
        .await;
    let tms = server
        .get(&format!(
            "/tms/1.0.0/camps/{}/{}/{}.pbf",
            tile.z,
            tile.x,
            tile.tms_y()
        ))
        .await;
    assert_eq!(xyz.status(), 200);
    assert_eq!(tms.status(), 200);
    assert_eq!(
        xyz.bytes().await.expect("xyz"),
        tms.bytes().await.expect("tms")
    );
    // The XYZ row used as a TMS row is the mirrored tile, far from any camp.
    let mirrored = server
        .get(&format!(
            "/tms/1.0.0/camps/{}/{}/{}.pbf",
            tile.z, tile.x, tile.y
        ))
        .await;
    assert_eq!(mirrored.status(), 404);
    let bad = server.get("/tms/1.0.0/camps/2/1/4.pbf").await;
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.expect("problem");
    assert_eq!(body["parameter"], "y");
}

#[tokio::test]
async fn tilejson_zooms_match_the_tiles_served() {
    let server = TestServer::sample().await;
    for id in ["camps", "TCI", "RGB.byte"] {
        let tilejson = server.json(&format!("/tiles/{id}.json")).await;
        let minzoom = u8::try_from(tilejson["minzoom"].as_u64().expect("minzoom")).expect("zoom");
        let maxzoom = u8::try_from(tilejson["maxzoom"].as_u64().expect("maxzoom")).expect("zoom");
        let template = tilejson["tiles"][0].as_str().expect("template").to_owned();
        let bounds: Vec<f64> = serde_json::from_value(tilejson["bounds"].clone()).expect("bounds");
        let centre = (
            f64::midpoint(bounds[0], bounds[2]),
            f64::midpoint(bounds[1], bounds[3]),
        );
        let tile_url = |tile: TileCoord| {
            template
                .replace("{z}", &tile.z.to_string())
                .replace("{x}", &tile.x.to_string())
                .replace("{y}", &tile.y.to_string())
        };
        let at = |z: u8| lonlat_to_tile(centre.0, centre.1, z);
        let status = |url: String| {
            let client = server.client.clone();
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .expect("request")
                    .status()
                    .as_u16()
            }
        };
        assert!(
            matches!(status(tile_url(at(maxzoom))).await, 200 | 204),
            "{id}: maxzoom {maxzoom} is served"
        );
        assert!(
            matches!(status(tile_url(at(minzoom))).await, 200 | 204),
            "{id}: minzoom {minzoom} is served"
        );
        assert_eq!(
            status(tile_url(at(maxzoom + 1))).await,
            404,
            "{id}: beyond maxzoom"
        );
        if minzoom > 0 {
            assert_eq!(
                status(tile_url(at(minzoom - 1))).await,
                404,
                "{id}: below minzoom"
            );
        }
        if let Some(layers) = tilejson["vector_layers"].as_array() {
            for layer in layers {
                assert_eq!(layer["minzoom"], minzoom, "{id}");
                assert_eq!(layer["maxzoom"], maxzoom, "{id}");
            }
        }
    }
}

#[tokio::test]
async fn ogc_api_tiles_documents_link_up() {
    let server = TestServer::sample().await;
    let landing = server.json("/ogc").await;
    let rels: Vec<&str> = landing["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["rel"].as_str())
        .collect();
    assert!(
        rels.contains(&"conformance") && rels.contains(&"data"),
        "{rels:?}"
    );
    let api = server.get("/ogc/api").await;
    assert_eq!(api.status(), 200);
    assert_eq!(
        api.headers()["content-type"],
        "application/vnd.oai.openapi+json;version=3.0"
    );
    let api: serde_json::Value = api.json().await.expect("OpenAPI JSON");
    assert_eq!(
        api["components"]["parameters"]["limit"]["schema"]["maximum"],
        10_000
    );
    assert!(api["paths"]["/collections/{collectionId}/items"]["get"].is_object());
    let conformance = server.json("/ogc/conformance").await;
    let classes = conformance["conformsTo"].as_array().expect("conformsTo");
    assert!(
        classes
            .iter()
            .any(|c| c == "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core")
    );
    assert!(
        classes
            .iter()
            .any(|c| c == "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core")
    );

    let collections = server.json("/ogc/collections").await;
    let ids: Vec<&str> = collections["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    // The two imagery sources bring their coverage layers.
    assert_eq!(
        ids,
        [
            "TCI",
            "RGB.byte",
            "camps",
            "TCI.coverage",
            "RGB.byte.coverage"
        ]
    );
    let camps = server.json("/ogc/collections/camps").await;
    assert_eq!(camps["itemType"], "feature");
    let tci = server.json("/ogc/collections/TCI").await;
    assert!(tci.get("itemType").is_none(), "imagery has no features");

    let tilesets = server.json("/ogc/collections/camps/tiles").await;
    assert_eq!(tilesets["tilesets"].as_array().map(Vec::len), Some(2));
    let tileset = server
        .json("/ogc/collections/camps/tiles/WebMercatorQuad")
        .await;
    let template = tileset["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "item")
        .expect("item link")["href"]
        .as_str()
        .expect("href")
        .to_owned();
    let tile = lonlat_to_tile(125.95, 39.58, 8);
    let url = template
        .replace("{tileMatrix}", "8")
        .replace("{tileRow}", &tile.y.to_string())
        .replace("{tileCol}", &tile.x.to_string());
    let response = server.client.get(&url).send().await.expect("tile");
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );

    let sets = server.json("/ogc/tileMatrixSets").await;
    assert_eq!(sets["tileMatrixSets"].as_array().map(Vec::len), Some(2));
    let set = server.json("/ogc/tileMatrixSets/WebMercatorQuad").await;
    assert_eq!(set["tileMatrices"].as_array().map(Vec::len), Some(25));

    for (path, status) in [
        ("/ogc/collections/nowhere", 404),
        ("/ogc/collections/camps/tiles/WorldCRS84Quad", 404),
        ("/ogc/tileMatrixSets/WorldCRS84Quad", 404),
        ("/ogc/collections/TCI/items", 404),
        (
            "/ogc/collections/camps/tiles/WebMercatorQuad/8/1/1?f=png",
            400,
        ),
    ] {
        assert_eq!(server.get(path).await.status(), status, "{path}");
    }
}

#[tokio::test]
async fn ogc_api_features_filter_and_page() {
    let server = TestServer::sample().await;
    let all = server.json("/ogc/collections/camps/items?limit=100").await;
    assert_eq!(all["type"], "FeatureCollection");
    assert_eq!(all["numberMatched"], 24);
    assert_eq!(all["numberReturned"], 24);
    let kaechon = all["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["properties"]["name"] == "Camp 14, Kaechon")
        .expect("Camp 14 is served");
    assert_eq!(kaechon["geometry"]["type"], "Point");
    // camps.geojson has Camp 14 at 126.0621556 E, 39.5717058 N.
    assert_eq!(
        kaechon["geometry"]["coordinates"],
        serde_json::json!([126.062_155_6, 39.571_705_8])
    );

    // Paging: three pages of ten, following the `next` links.
    let mut url = server.url("/ogc/collections/camps/items");
    let mut seen = Vec::new();
    for _ in 0..5 {
        let page: serde_json::Value = server
            .client
            .get(&url)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        seen.extend(
            page["features"]
                .as_array()
                .expect("features")
                .iter()
                .map(|f| f["id"].clone()),
        );
        match page["links"]
            .as_array()
            .expect("links")
            .iter()
            .find(|l| l["rel"] == "next")
        {
            Some(next) => url = next["href"].as_str().expect("href").to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24, "every feature once over the pages");
    seen.dedup();
    assert_eq!(seen.len(), 24);

    // Yodok (Camp 15) is at 126.85 E, 39.67 N and Kaechon at 126.06 E: a box around Yodok
    // finds it and not Kaechon.
    let yodok = server
        .json("/ogc/collections/camps/items?bbox=126.5,39.5,127.3,39.9")
        .await;
    let names: Vec<&str> = yodok["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["properties"]["name"].as_str())
        .collect();
    assert!(names.contains(&"Camp 15, Yodok"), "{names:?}");
    assert!(!names.contains(&"Camp 14, Kaechon"), "{names:?}");

    let id = kaechon["id"].as_u64().expect("id");
    let one = server
        .json(&format!("/ogc/collections/camps/items/{id}"))
        .await;
    assert_eq!(one["properties"]["name"], "Camp 14, Kaechon");
    assert_eq!(
        server
            .get("/ogc/collections/camps/items/9999")
            .await
            .status(),
        404
    );

    for (query, parameter) in [
        ("bbox=1,2,3", "bbox"),
        ("limit=0", "limit"),
        ("datetime=soon", "datetime"),
        ("colour=red", "query"),
    ] {
        let response = server
            .get(&format!("/ogc/collections/camps/items?{query}"))
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.expect("problem");
        assert_eq!(body["parameter"], parameter, "{query}");
    }
}

#[tokio::test]
async fn ogc_api_features_filter_by_date() {
    let folder = tempfile::tempdir().expect("tempdir");
    let file = folder.path().join("violations.geojson");
    let features: Vec<serde_json::Value> = [
        ("2016-03-01", 126.0),
        ("2019-07-15", 126.5),
        ("2021-11-30", 127.0),
    ]
    .iter()
    .map(|(date, lon)| {
        serde_json::json!({
            "type": "Feature",
            "properties": { "type": "detention", "date": date },
            "geometry": { "type": "Point", "coordinates": [lon, 40.0] },
        })
    })
    .collect();
    std::fs::write(
        &file,
        serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string(),
    )
    .expect("write");
    let server = TestServer::serving(&[file]).await;
    let cases = [
        ("2019-07-15", 1),
        ("2017-01-01/2022-01-01", 2),
        ("../2019-07-15", 2),
        ("2019-07-16T00:00:00Z/..", 1),
        ("2030-01-01", 0),
    ];
    for (datetime, expected) in cases {
        let page = server
            .json(&format!(
                "/ogc/collections/violations/items?datetime={datetime}"
            ))
            .await;
        assert_eq!(page["numberMatched"], expected, "datetime={datetime}");
    }
}

/// Runs `gdal_translate` on layer TCI of the WMTS capabilities at `capabilities`: a
/// 256-pixel PNG of a window over the Sentinel-2 scene at about zoom 9, written to `out`.
async fn translate_scene_window(
    cache: Vec<String>,
    capabilities: &str,
    out: &std::path::Path,
) -> std::process::Output {
    let (x0, y0) = tessera::tile::lonlat_to_mercator(-11.5, 24.9);
    let (x1, y1) = tessera::tile::lonlat_to_mercator(-11.3, 24.7);
    let mut args = cache;
    args.extend([
        "-of".into(),
        "PNG".into(),
        "-outsize".into(),
        "256".into(),
        "256".into(),
        "-projwin".into(),
        x0.to_string(),
        y0.to_string(),
        x1.to_string(),
        y1.to_string(),
        format!("WMTS:{capabilities},layer=TCI,tilematrixset=WebMercatorQuad"),
        out.display().to_string(),
    ]);
    run("gdal_translate", args).await
}

#[tokio::test]
async fn gdal_reads_wmts_capabilities_and_a_tile() {
    if !require("gdal_translate", "run scripts/setup to install gdal-bin") {
        return;
    }
    let server = TestServer::sample().await;
    let capabilities = server.url("/wmts/1.0.0/WMTSCapabilities.xml");
    let folder = tempfile::tempdir().expect("tempdir");
    // GDAL's WMTS driver caches tiles in ./gdalwmscache unless configured otherwise.
    let cache = vec![
        "--config".to_owned(),
        "GDAL_DEFAULT_WMS_CACHE_PATH".to_owned(),
        folder.path().join("cache").display().to_string(),
    ];
    let mut args = cache.clone();
    args.push(format!("WMTS:{capabilities}"));
    let output = run("gdalinfo", args).await;
    let info = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "gdalinfo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        info.contains("SUBDATASET") && info.contains("layer=TCI"),
        "layers listed: {info}"
    );

    let out = folder.path().join("tci.png");
    let output = translate_scene_window(cache, &capabilities, &out).await;
    assert!(
        output.status.success(),
        "gdal_translate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = decode_image(&std::fs::read(&out).expect("read output"));
    let opaque = image.pixels().filter(|p| p.0[3] > 0).count();
    let coloured = image
        .pixels()
        .filter(|p| p.0[0] > 20 || p.0[1] > 20 || p.0[2] > 20)
        .count();
    assert!(
        opaque > 60_000,
        "the window lies in the scene: {opaque} opaque pixels"
    );
    assert!(coloured > 30_000, "imagery, not black: {coloured} pixels");
}

/// A private layer opened with `?key=` in GDAL's WMTS connection string: the capabilities
/// repeat the key in their tile templates, so GDAL's tile requests carry it too.
#[tokio::test]
async fn gdal_reads_private_wmts_with_key() {
    if !require("gdal_translate", "run scripts/setup to install gdal-bin") {
        return;
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = tessera::access::append_new_key(&keys, &["TCI".to_owned()], None).expect("key");
    let mut config = tessera::config::Config {
        paths: vec![geodata("sentinel2-29rkh/TCI.tif")],
        ..tessera::config::Config::default()
    };
    config.access.default = tessera::access::Visibility::Private;
    config.access.keys_file = Some(keys);
    let server = TestServer::start(config).await;
    let capabilities = server.url(&format!("/wmts/1.0.0/WMTSCapabilities.xml?key={key}"));
    let document = server
        .get(&format!("/wmts/1.0.0/WMTSCapabilities.xml?key={key}"))
        .await
        .text()
        .await
        .expect("capabilities");
    assert!(
        document.contains(&format!(".png?key={key}\"")),
        "{document}"
    );
    let anonymous = server
        .get("/wmts/1.0.0/WMTSCapabilities.xml")
        .await
        .text()
        .await
        .expect("capabilities");
    assert!(
        !anonymous.contains("TCI"),
        "the private layer is hidden without a key"
    );

    let cache = vec![
        "--config".to_owned(),
        "GDAL_DEFAULT_WMS_CACHE_PATH".to_owned(),
        folder.path().join("cache").display().to_string(),
    ];
    let out = folder.path().join("tci.png");
    let output = translate_scene_window(cache, &capabilities, &out).await;
    assert!(
        output.status.success(),
        "gdal_translate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let image = decode_image(&std::fs::read(&out).expect("read output"));
    let opaque = image.pixels().filter(|p| p.0[3] > 0).count();
    assert!(
        opaque > 60_000,
        "GDAL's tile requests carried the key: {opaque} opaque pixels"
    );
}

#[tokio::test]
async fn gdal_mvt_driver_reads_a_wmts_tile() {
    if !require("ogrinfo", "run scripts/setup to install gdal-bin") {
        return;
    }
    let server = TestServer::serving(&[geodata("nk-prison-camps")]).await;
    let tile = lonlat_to_tile(125.95, 39.58, 8);
    let url = server.url(&format!(
        "/wmts/1.0.0/camps/default/WebMercatorQuad/8/{}/{}.pbf",
        tile.y, tile.x
    ));
    let output = run(
        "ogrinfo",
        vec![
            "-ro".into(),
            "-al".into(),
            "-oo".into(),
            format!("X={}", tile.x),
            "-oo".into(),
            format!("Y={}", tile.y),
            "-oo".into(),
            "Z=8".into(),
            format!("MVT:/vsicurl/{url}"),
        ],
    )
    .await;
    let info = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ogrinfo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(info.contains("Camp 14, Kaechon"), "{info}");
}

#[tokio::test]
async fn gdal_reads_tms_like_wmts() {
    if !require("gdal_translate", "run scripts/setup to install gdal-bin") {
        return;
    }
    let server = TestServer::sample().await;
    let service = server.get("/tms/1.0.0").await;
    assert_eq!(service.status(), 200);
    let service = service.text().await.expect("TileMapService");
    assert!(service.contains("/tms/1.0.0/TCI\""), "{service}");
    assert_eq!(server.get("/tms/1.0.0/nowhere").await.status(), 404);

    let folder = tempfile::tempdir().expect("tempdir");
    let cache = folder.path().join("cache").display().to_string();
    // The same 256-pixel window over the Sentinel-2 scene through both protocols.
    let (x0, y0) = tessera::tile::lonlat_to_mercator(-11.5, 24.9);
    let (x1, y1) = tessera::tile::lonlat_to_mercator(-11.3, 24.7);
    let mut images = Vec::new();
    for (name, dataset) in [
        ("tms", server.url("/tms/1.0.0/TCI")),
        (
            "wmts",
            format!(
                "WMTS:{},layer=TCI,tilematrixset=WebMercatorQuad",
                server.url("/wmts/1.0.0/WMTSCapabilities.xml")
            ),
        ),
    ] {
        let out = folder.path().join(format!("{name}.png"));
        let mut args: Vec<String> = [
            "--config",
            "GDAL_DEFAULT_WMS_CACHE_PATH",
            &cache,
            "-of",
            "PNG",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(["-outsize", "256", "256", "-projwin"].map(str::to_owned));
        args.extend([x0, y0, x1, y1].map(|v| v.to_string()));
        args.extend([dataset, out.display().to_string()]);
        let output = run("gdal_translate", args).await;
        assert!(
            output.status.success(),
            "{name}: gdal_translate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        images.push(decode_image(&std::fs::read(&out).expect("read output")));
    }
    let coloured = images[0]
        .pixels()
        .filter(|p| p.0[0] > 20 || p.0[1] > 20 || p.0[2] > 20)
        .count();
    assert!(coloured > 30_000, "TMS draws imagery: {coloured} pixels");
    // GDAL may read the two at different zoom levels, so single pixels differ; the mean
    // difference stays small unless a row or column is off, which shows other ground.
    let total: u64 = images[0]
        .pixels()
        .zip(images[1].pixels())
        .flat_map(|(a, b)| {
            a.0.into_iter()
                .zip(b.0)
                .map(|(x, y)| u64::from(x.abs_diff(y)))
        })
        .sum();
    let mean = total as f64 / (256.0 * 256.0 * 4.0);
    assert!(
        mean < 4.0,
        "TMS and WMTS differ by {mean:.2} per channel on average"
    );
}
