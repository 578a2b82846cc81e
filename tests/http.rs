//! The HTTP contract: status codes, problem details, caching headers, CORS, catalog,
//! TileJSON, health and metrics, against the real server on a loopback port.

mod common;

use geozero::mvt::Message as _;

use common::{TestServer, folder_with, geodata, shared_data};
use tessera::tile::lonlat_to_tile;

#[tokio::test]
async fn bad_requests_name_the_parameter() {
    let server = TestServer::sample().await;
    let cases = [
        ("/tiles/TCI/25/0/0.png", "z"),
        ("/tiles/TCI/3/8/0.png", "x"),
        ("/tiles/TCI/3/0/8.png", "y"),
        ("/tiles/TCI/a/0/0.png", "z"),
        ("/tiles/TCI/1/-1/0.png", "x"),
        ("/tiles/TCI/1/0/0.gif", "format"),
        ("/tiles/TCI/1/0/0", "format"),
        ("/tiles/TCI/1/0/0@3x.png", "scale"),
        ("/tiles/TCI/1/0/0.pbf", "format"),
        ("/tiles/TCI/99999999999999999/0/0.png", "z"),
        ("/tiles/..%2F..%2Fetc/1/0/0.png", "source"),
        ("/tiles/a%20b/1/0/0.png", "source"),
    ];
    for (path, parameter) in cases {
        let response = server.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = response.json().await.expect("problem body");
        assert_eq!(problem["parameter"], parameter, "{path}: {problem}");
        assert_eq!(problem["status"], 400, "{path}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.len() > 20),
            "{path}: a helpful detail"
        );
    }
}

#[tokio::test]
async fn not_found_outside_data_and_for_unknown_names() {
    let server = TestServer::sample().await;
    let far_away = lonlat_to_tile(100.0, -40.0, 6);
    let cases = [
        "/tiles/nope/1/0/0.png".to_owned(),
        "/tiles/nope.json".to_owned(),
        "/tiles/TCI/12/1916/1756.png".to_owned(),
        format!("/tiles/TCI/6/{}/{}.png", far_away.x, far_away.y),
        "/tiles/TCI".to_owned(),
        "/no/such/route".to_owned(),
        "/styles/none.json".to_owned(),
        "/viewer/secret.txt".to_owned(),
    ];
    for path in cases {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

#[tokio::test]
async fn tiles_have_etag_cache_control_and_304() {
    let server = TestServer::sample().await;
    let tile = lonlat_to_tile(-11.43, 24.8, 8);
    let path = format!("/tiles/TCI/8/{}/{}.png", tile.x, tile.y);
    let response = server.get(&path).await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    let body = response.bytes().await.expect("body");

    let again = server.get(&path).await;
    assert_eq!(
        again.headers()["etag"],
        etag.as_str(),
        "the same tile has the same ETag"
    );
    assert_eq!(
        again.bytes().await.expect("body"),
        body,
        "rendering is deterministic"
    );

    let conditional = server
        .client
        .get(server.url(&path))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(conditional.status(), 304);
    assert_eq!(conditional.headers()["etag"], etag.as_str());
    assert!(conditional.bytes().await.expect("body").is_empty());

    let other = server
        .client
        .get(server.url(&path))
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn cors_on_every_route_including_errors() {
    let server = TestServer::sample().await;
    for path in [
        "/catalog",
        "/tiles/TCI.json",
        "/tiles/TCI/25/0/0.png",
        "/tiles/nope/1/0/0.png",
        "/health",
        "/",
    ] {
        let response = server
            .client
            .get(server.url(path))
            .header("Origin", "https://maps.example.org")
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/tiles/TCI/1/0/0.png"))
        .header("Origin", "https://maps.example.org")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn catalog_lists_sources_with_tilejson_urls() {
    let server = TestServer::sample().await;
    let catalog = server.json("/catalog").await;
    let sources = catalog["sources"].as_array().expect("sources array");
    let ids: Vec<&str> = sources.iter().filter_map(|s| s["id"].as_str()).collect();
    for id in ["TCI", "RGB.byte", "camps"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    for source in sources {
        let kind = source["kind"].as_str().expect("kind");
        assert!(kind == "raster" || kind == "vector", "{source}");
        let url = source["tilejson"].as_str().expect("tilejson url");
        assert_eq!(
            url,
            format!(
                "http://{}/tiles/{}.json",
                server.address,
                source["id"].as_str().expect("id")
            )
        );
        let path = url.trim_start_matches(&format!("http://{}", server.address));
        let tilejson = server.json(path).await;
        assert_eq!(tilejson["tilejson"], "3.0.0");
        assert!(
            tilejson["tiles"][0]
                .as_str()
                .is_some_and(|t| t.contains("{z}/{x}/{y}")),
            "{tilejson}"
        );
    }
    let styles = catalog["styles"].as_array().expect("styles array");
    assert!(styles.iter().any(|s| s["id"] == "tessera"), "{styles:?}");
}

#[tokio::test]
async fn tilejson_has_exact_bounds_zooms_and_attribution() {
    let server = TestServer::sample().await;
    let tilejson = server.json("/tiles/TCI.json").await;
    let bounds: Vec<f64> = tilejson["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    // From the SOURCE note: lon -11.979 to -10.875, lat 24.296 to 25.305.
    let expected = [-11.979, 24.296, -10.875, 25.305];
    for (got, want) in bounds.iter().zip(expected) {
        assert!((got - want).abs() < 0.002, "bounds {bounds:?}");
    }
    assert_eq!(tilejson["minzoom"], 0);
    assert_eq!(tilejson["maxzoom"], 11, "100 m pixels at 25 N need zoom 11");
    assert_eq!(
        tilejson["attribution"],
        "Contains modified Copernicus Sentinel data 2020"
    );
    assert_eq!(
        tilejson["tiles"][0],
        format!("http://{}/tiles/TCI/{{z}}/{{x}}/{{y}}.png", server.address)
    );

    let public = TestServer::start(tessera::config::Config {
        paths: vec![geodata("sentinel2-29rkh")],
        public_url: Some("https://tiles.example.org/tessera/".to_owned()),
        ..tessera::config::Config::default()
    })
    .await;
    let tilejson = public.json("/tiles/TCI.json").await;
    assert_eq!(
        tilejson["tiles"][0],
        "https://tiles.example.org/tessera/tiles/TCI/{z}/{x}/{y}.png"
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::sample().await;
    let health = server.json("/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["sources"], 5,
        "three sources and the coverage layers of the two images"
    );
    server.get("/tiles/TCI/0/0/0.png").await;
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/plain")
    );
    let text = metrics.text().await.expect("text");
    assert!(text.contains("tessera_http_requests_total"), "{text}");
    assert!(
        text.contains("route=\"/tiles/{source}/{z}/{x}/{name}\""),
        "requests are labelled by route template: {text}"
    );
    assert!(
        text.contains("tessera_http_request_duration_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn styles_get_absolute_urls() {
    let server = TestServer::sample().await;
    let style = server.json("/styles/tessera.json").await;
    assert_eq!(style["version"], 8);
    assert_eq!(
        style["sources"]["camps"]["url"],
        format!("http://{}/tiles/camps.json", server.address)
    );
}

#[tokio::test]
async fn viewer_is_served_with_maplibre() {
    let server = TestServer::sample().await;
    let index = server.get("/").await;
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/html")
    );
    let html = index.text().await.expect("html");
    assert!(html.contains("/viewer/maplibre-gl.js"), "{html}");
    let maplibre = server.get("/viewer/maplibre-gl.js").await;
    assert_eq!(maplibre.status(), 200);
    assert!(
        maplibre.text().await.expect("js").len() > 100_000,
        "the real MapLibre build is embedded"
    );
}

#[tokio::test]
async fn pmtiles_archive_is_served_as_stored() {
    let Some(derna) = shared_data("pmtiles-samples/Derna_buildings.pmtiles") else {
        return;
    };
    let folder = folder_with(&[&derna]);
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let tilejson = server.json("/tiles/Derna_buildings.json").await;
    assert_eq!(tilejson["maxzoom"], 13);
    assert!(
        tilejson["vector_layers"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{tilejson}"
    );
    // Derna, Libya: 22.64 E, 32.76 N.
    let tile = lonlat_to_tile(22.6377, 32.7648, 13);
    let path = format!("/tiles/Derna_buildings/13/{}/{}.pbf", tile.x, tile.y);
    // A client that leaves Content-Encoding to the test instead of decoding it.
    let plain = reqwest::Client::builder()
        .no_gzip()
        .no_proxy()
        .build()
        .expect("client");
    let gzipped = plain
        .get(server.url(&path))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(
        gzipped.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    let response = plain.get(server.url(&path)).send().await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-encoding").is_none(),
        "decompressed for a client without gzip"
    );
    let bytes = response.bytes().await.expect("body");
    let decoded = geozero::mvt::Tile::decode(bytes.as_ref()).expect("valid MVT");
    assert!(
        decoded
            .layers
            .iter()
            .any(|layer| !layer.features.is_empty()),
        "buildings in Derna"
    );
    let sea = lonlat_to_tile(22.6, 33.2, 13);
    let outside = server
        .get(&format!(
            "/tiles/Derna_buildings/13/{}/{}.pbf",
            sea.x, sea.y
        ))
        .await;
    assert_eq!(outside.status(), 404, "a tile outside the archive's bounds");
    let deeper = server
        .get(&format!(
            "/tiles/Derna_buildings/14/{}/{}.pbf",
            tile.x * 2,
            tile.y * 2
        ))
        .await;
    assert_eq!(
        deeper.status(),
        404,
        "beyond the archive's maxzoom, so clients overzoom"
    );
    let png = server
        .get(&format!(
            "/tiles/Derna_buildings/13/{}/{}.png",
            tile.x, tile.y
        ))
        .await;
    assert_eq!(png.status(), 400, "an archive serves only its own format");
}

#[tokio::test]
async fn mbtiles_raster_archive_is_served_as_stored() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("basemap.mbtiles");
    let tile_png = {
        let image = image::RgbaImage::from_pixel(256, 256, image::Rgba([10, 120, 200, 255]));
        let mut bytes = Vec::new();
        image
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .expect("encode");
        bytes
    };
    {
        let connection = rusqlite::Connection::open(&path).expect("create MBTiles");
        connection
            .execute_batch(
                "CREATE TABLE metadata (name TEXT, value TEXT);
                 CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
                 INSERT INTO metadata VALUES ('name', 'Test basemap'), ('format', 'png'), ('minzoom', '0'), ('maxzoom', '2'), ('bounds', '-180,-85,180,85');",
            )
            .expect("schema");
        // Row 3 in TMS at zoom 2 is row 0 in XYZ.
        connection
            .execute("INSERT INTO tiles VALUES (2, 1, 3, ?1)", [&tile_png])
            .expect("insert");
    }
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let response = server.get("/tiles/basemap/2/1/0.png").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        tile_png.as_slice(),
        "bytes as stored"
    );
    assert_eq!(server.get("/tiles/basemap/2/1/3.png").await.status(), 204);
    assert_eq!(
        server.get("/tiles/basemap/3/1/3.png").await.status(),
        404,
        "beyond maxzoom"
    );
    let tilejson = server.json("/tiles/basemap.json").await;
    assert_eq!(tilejson["name"], "Test basemap");
}

/// Writes an MBTiles vector archive with one tile at 0/0/0.
fn vector_mbtiles(path: &std::path::Path, tile: &[u8]) {
    let connection = rusqlite::Connection::open(path).expect("create MBTiles");
    connection
        .execute_batch(
            "CREATE TABLE metadata (name TEXT, value TEXT);
             CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
             INSERT INTO metadata VALUES ('name', 'test'), ('format', 'pbf'), ('minzoom', '0'), ('maxzoom', '0');",
        )
        .expect("schema");
    connection
        .execute("INSERT INTO tiles VALUES (0, 0, 0, ?1)", [tile])
        .expect("insert");
}

#[tokio::test]
async fn stored_encodings_follow_accept_encoding() {
    let folder = tempfile::tempdir().expect("tempdir");
    // A zstd frame header and junk: the archive reports zstd from the magic bytes.
    vector_mbtiles(
        &folder.path().join("zstd.mbtiles"),
        &[0x28, 0xB5, 0x2F, 0xFD, 0, 1, 2, 3],
    );
    // 64 MiB of zeros, gzipped to about 64 KiB: more than a client without gzip is sent.
    let bomb = {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0; 64 << 20]).expect("compress");
        encoder.finish().expect("finish")
    };
    vector_mbtiles(&folder.path().join("bomb.mbtiles"), &bomb);
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let plain = reqwest::Client::builder()
        .no_gzip()
        .no_proxy()
        .build()
        .expect("client");

    let response = plain
        .get(server.url("/tiles/zstd/0/0/0.pbf"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        406,
        "zstd is not sent to a client that does not accept it"
    );
    let response = plain
        .get(server.url("/tiles/zstd/0/0/0.pbf"))
        .header("Accept-Encoding", "zstd")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "zstd");

    let response = plain
        .get(server.url("/tiles/bomb/0/0/0.pbf"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        500,
        "an oversized tile is refused, not inflated whole"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = plain
        .get(server.url("/tiles/bomb/0/0/0.pbf"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        200,
        "a client with gzip gets the stored bytes"
    );
}

#[tokio::test]
async fn undecodable_paths_and_methods_are_contained() {
    let server = TestServer::sample().await;
    for path in [
        "/tiles/TCI/%FF/0/0.png",
        "/tiles/%C0%AF/0/0/0.png",
        "/tiles/%FF.json",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    for method in ["M123", "BREW"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        server
            .client
            .request(method, server.url("/health"))
            .send()
            .await
            .expect("request");
    }
    let metrics = server.get("/metrics").await.text().await.expect("text");
    assert!(
        !metrics.contains("M123"),
        "made-up methods get no series of their own"
    );
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[tokio::test]
async fn slow_request_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = TestServer::start(tessera::config::Config {
        paths: vec![geodata("nk-prison-camps")],
        header_timeout: 0.5,
        ..tessera::config::Config::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a header");
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut buffer),
    )
    .await;
    assert!(
        closed.is_ok(),
        "the server closes a connection whose header does not finish"
    );
    assert_eq!(
        server.get("/health").await.status(),
        200,
        "other clients are served"
    );
}
