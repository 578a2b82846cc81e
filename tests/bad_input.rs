//! Hostile files, configurations and requests against a real server: each is rejected with
//! its reason, and the server keeps serving everything else with bounded memory.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{TestServer, geodata};
use serde_json::Value;
use tessera::config::Config;

/// Returns the process's resident set size in KiB, from `/proc/self/status`.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Returns the failure reason that `/health` reports for the file named `name`.
async fn failure_reason(server: &TestServer, name: &str) -> Option<String> {
    let health = server.json("/health").await;
    health["failed_sources"]
        .as_array()
        .expect("failed_sources")
        .iter()
        .find(|failure| {
            failure["path"]
                .as_str()
                .is_some_and(|path| path.ends_with(name))
        })
        .map(|failure| failure["reason"].as_str().unwrap_or_default().to_owned())
}

/// Returns the first half of `path`'s bytes.
fn first_half(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read a sample file");
    bytes[..bytes.len() / 2].to_vec()
}

/// Writes an `MBTiles` file with PNG tile bytes `tile` at 0/0/0.
fn write_mbtiles(path: &Path, tile: &[u8]) {
    let connection = rusqlite::Connection::open(path).expect("create MBTiles");
    connection
        .execute_batch(
            "CREATE TABLE metadata (name TEXT, value TEXT);
             INSERT INTO metadata VALUES ('format', 'png'), ('minzoom', '0'), ('maxzoom', '2');
             CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,
                                 tile_data BLOB);",
        )
        .expect("create tables");
    connection
        .execute("INSERT INTO tiles VALUES (0, 0, 0, ?1)", [tile])
        .expect("insert a tile");
    // Some filler rows, so that truncating the file cuts through tables.
    for row in 0..200 {
        connection
            .execute(
                "INSERT INTO tiles VALUES (2, ?1, ?2, zeroblob(512))",
                (row % 4, row / 4),
            )
            .expect("insert filler");
    }
}

fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push(u8::try_from(value & 0x7F).expect("7 bits") | 0x80);
        value >>= 7;
    }
    bytes.push(u8::try_from(value).expect("7 bits"));
}

/// Writes a `PMTiles` v3 file with uncompressed directories and one PNG tile at 0/0/0.
fn write_pmtiles(path: &Path, tile: &[u8]) {
    const HEADER_SIZE: u64 = 127;
    let mut directory = Vec::new();
    for value in [1, 0, 1, tile.len() as u64, 1] {
        push_varint(&mut directory, value);
    }
    let metadata = b"{}";
    let root_offset = HEADER_SIZE;
    let metadata_offset = root_offset + directory.len() as u64;
    let data_offset = metadata_offset + metadata.len() as u64;
    let mut file = b"PMTiles\x03".to_vec();
    for value in [
        root_offset,
        directory.len() as u64,
        metadata_offset,
        metadata.len() as u64,
        data_offset,
        0,
        data_offset,
        tile.len() as u64,
        1,
        1,
        1,
    ] {
        file.extend_from_slice(&value.to_le_bytes());
    }
    // Clustered, uncompressed directories and tiles, PNG, zooms 0 to 0.
    file.extend_from_slice(&[1, 1, 1, 2, 0, 0]);
    for degrees in [-180_i32, -85, 180, 85] {
        file.extend_from_slice(&(degrees * 10_000_000).to_le_bytes());
    }
    file.push(0);
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&directory);
    file.extend_from_slice(metadata);
    file.extend_from_slice(tile);
    std::fs::write(path, file).expect("write PMTiles");
}

/// A PNG tile of one colour, so that two versions of an archive can be distinguished.
fn png(red: u8) -> Vec<u8> {
    let image = image::RgbaImage::from_pixel(256, 256, image::Rgba([red, 0, 0, 255]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encode PNG");
    bytes.into_inner()
}

/// Writes a file of `length` bytes without writing its content.
fn sparse_file(path: &Path, length: u64) {
    std::fs::File::create(path)
        .and_then(|file| file.set_len(length))
        .expect("create a sparse file");
}

/// Sends `GET {path}` over a raw connection and returns the response's status, or `None`
/// when the server closes the connection without one.
async fn raw_status(server: &TestServer, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn corrupt_and_truncated_files_reported() {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    let camps = geodata("nk-prison-camps/camps.geojson");
    let tif = geodata("landsat7-bahamas/RGB.byte.tif");
    let glb = geodata("fzk-haus/fzk-haus.glb");
    let mbtiles = dir.join("source.sqlite");
    write_mbtiles(&mbtiles, &png(200));
    let pmtiles = dir.join("source.bin");
    write_pmtiles(&pmtiles, &png(200));

    std::fs::copy(&camps, dir.join("camps.geojson")).expect("copy camps");
    let noise: Vec<u8> = (0..4096_u32).map(|i| (i * 7919 % 251) as u8).collect();
    let files: [(&str, Vec<u8>); 10] = [
        ("corrupt_tif.tif", noise.clone()),
        ("truncated_tif.tif", first_half(&tif)),
        ("corrupt_mbtiles.mbtiles", noise.clone()),
        ("truncated_mbtiles.mbtiles", first_half(&mbtiles)),
        ("corrupt_pmtiles.pmtiles", noise.clone()),
        ("truncated_pmtiles.pmtiles", first_half(&pmtiles)),
        (
            "corrupt_geojson.geojson",
            b"{\"type\":\"FeatureCollection\",\"features\":[{".to_vec(),
        ),
        ("truncated_geojson.geojson", first_half(&camps)),
        ("corrupt_glb.glb", noise),
        ("truncated_glb.glb", first_half(&glb)),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).expect("write a bad file");
    }
    for model in ["corrupt_glb", "truncated_glb"] {
        std::fs::write(
            dir.join(format!("{model}.toml")),
            "anchor = [8.43, 49.09]\n",
        )
        .expect("write a model side file");
    }
    std::fs::remove_file(&mbtiles).expect("remove");
    std::fs::remove_file(&pmtiles).expect("remove");

    let server = TestServer::serving(&[dir.to_owned()]).await;
    let catalog = server.json("/catalog").await;
    let served: Vec<&str> = catalog["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|source| source["id"].as_str())
        .collect();
    for (name, _) in &files {
        let stem = name.split('.').next().expect("stem");
        assert!(!stem.is_empty());
        let extension = name.rsplit('.').next().expect("extension");
        if let Some(reason) = failure_reason(&server, name).await {
            eprintln!("{name}: reported: {reason}");
            assert!(reason.len() > 10, "{name}: reason {reason:?}");
            continue;
        }
        // A file that opens (a GeoTIFF whose header survived, say) must fail per tile
        // without taking the server down.
        let id = served
            .iter()
            .find(|id| **id == stem)
            .unwrap_or_else(|| panic!("{name} is neither served nor reported"));
        // The archives written here hold PNG tiles.
        let ext = match extension {
            "tif" | "mbtiles" | "pmtiles" => "png",
            _ => "pbf",
        };
        let response = server.get(&format!("/tiles/{id}/0/0/0.{ext}")).await;
        eprintln!("{name}: served, tile 0/0/0: {}", response.status());
        assert_ne!(response.status(), 200, "{name} served a tile");
        assert_ne!(
            response.status(),
            400,
            "{name}: the request itself was wrong"
        );
    }
    // The good file is served in full.
    let response = server.get("/tiles/camps/0/0/0.pbf").await;
    assert_eq!(response.status(), 200);
    assert!(served.contains(&"camps"), "{served:?}");
}

#[tokio::test]
async fn replaced_files_keep_serving_old_data() {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    write_mbtiles(&dir.join("archive.mbtiles"), &png(10));
    write_pmtiles(&dir.join("packed.pmtiles"), &png(10));
    std::fs::copy(
        geodata("nk-prison-camps/camps.geojson"),
        dir.join("camps.geojson"),
    )
    .expect("copy camps");
    let server = TestServer::serving(&[dir.to_owned()]).await;
    let before_camps = server.get("/tiles/camps/0/0/0.pbf").await.bytes().await;
    let before_camps = before_camps.expect("camps tile");

    // Atomic replacement: a new file renamed over each served one.
    let staging = tempfile::tempdir_in(dir).expect("staging folder");
    write_mbtiles(&staging.path().join("archive.mbtiles"), &png(250));
    write_pmtiles(&staging.path().join("packed.pmtiles"), &png(250));
    std::fs::write(
        staging.path().join("camps.geojson"),
        r#"{"type":"FeatureCollection","features":[]}"#,
    )
    .expect("write an empty GeoJSON");
    for name in ["archive.mbtiles", "packed.pmtiles", "camps.geojson"] {
        std::fs::rename(staging.path().join(name), dir.join(name)).expect("rename over");
    }
    for id in ["archive", "packed"] {
        for _ in 0..8 {
            let response = server.get(&format!("/tiles/{id}/0/0/0.png")).await;
            assert_eq!(response.status(), 200, "{id} after rename");
            let image = common::decode_image(&response.bytes().await.expect("body"));
            assert_eq!(image.get_pixel(0, 0).0, [10, 0, 0, 255], "{id} old tile");
        }
    }
    let after_camps = server.get("/tiles/camps/0/0/0.pbf").await.bytes().await;
    assert_eq!(after_camps.expect("camps tile"), before_camps);
}

#[tokio::test]
async fn archives_written_in_place_rejected() {
    use std::os::unix::fs::FileExt as _;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    write_mbtiles(&dir.join("archive.mbtiles"), &png(10));
    write_pmtiles(&dir.join("packed.pmtiles"), &png(10));
    std::fs::copy(
        geodata("nk-prison-camps/camps.geojson"),
        dir.join("camps.geojson"),
    )
    .expect("copy camps");
    let server = TestServer::serving(&[dir.to_owned()]).await;
    for id in ["archive", "packed"] {
        let response = server.get(&format!("/tiles/{id}/0/0/0.png")).await;
        assert_eq!(response.status(), 200, "{id} before the write");
    }

    for name in ["archive.mbtiles", "packed.pmtiles"] {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))
            .expect("open for writing");
        let length = file.metadata().expect("size").len();
        file.write_all_at(&[0xAB; 64], length - 64)
            .expect("overwrite the end");
    }
    for id in ["archive", "packed"] {
        let response = server.get(&format!("/tiles/{id}/0/0/0.png")).await;
        assert_eq!(response.status(), 500, "{id} after the write");
        let problem: Value = response.json().await.expect("problem details");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("changed on disk"), "{id}: {detail}");
    }
    let response = server.get("/tiles/camps/0/0/0.pbf").await;
    assert_eq!(response.status(), 200, "the other sources still serve");
}

#[tokio::test]
async fn huge_geojson_rejected_at_start() {
    let folder = tempfile::tempdir().expect("tempdir");
    let huge = folder.path().join("huge.geojson");
    // 64 MiB on disk but never written: reading it whole would show in the RSS.
    sparse_file(&huge, 64 << 20);
    std::fs::copy(
        geodata("nk-prison-camps/camps.geojson"),
        folder.path().join("camps.geojson"),
    )
    .expect("copy camps");
    let before = resident_kib();
    let server = TestServer::start(Config {
        paths: vec![folder.path().to_owned()],
        max_vector_file_mb: 16,
        ..Config::default()
    })
    .await;
    let reason = failure_reason(&server, "huge.geojson")
        .await
        .expect("huge.geojson reported");
    assert!(reason.contains("max_vector_file_mb = 16"), "{reason}");
    assert!(reason.contains("64 MiB"), "{reason}");
    let grown = resident_kib().saturating_sub(before);
    assert!(grown < 48 * 1024, "RSS grew by {grown} KiB");
    let response = server.get("/tiles/camps/0/0/0.pbf").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn model_buffers_outside_folder_rejected() {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret.bin");
    std::fs::write(&secret, [0_u8; 36]).expect("write a file outside");
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    std::os::unix::fs::symlink(&secret, dir.join("link.bin")).expect("symlink");
    let cases = [
        ("absolute", secret.display().to_string()),
        (
            "parent",
            format!(
                "../{}/secret.bin",
                outside
                    .path()
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("name")
            ),
        ),
        ("symlink", "link.bin".to_owned()),
    ];
    for (name, uri) in &cases {
        let gltf = serde_json::json!({
            "asset": { "version": "2.0" },
            "buffers": [{ "uri": uri, "byteLength": 36 }],
            "bufferViews": [{ "buffer": 0, "byteLength": 36 }],
            "accessors": [{
                "bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                "min": [0, 0, 0], "max": [1, 1, 1]
            }],
            "meshes": [{ "primitives": [{ "attributes": { "POSITION": 0 } }] }],
            "nodes": [{ "mesh": 0 }],
            "scenes": [{ "nodes": [0] }],
            "scene": 0
        });
        std::fs::write(dir.join(format!("{name}.gltf")), gltf.to_string()).expect("write");
        std::fs::write(dir.join(format!("{name}.toml")), "anchor = [8.43, 49.09]\n")
            .expect("write the side file");
    }
    std::fs::copy(
        geodata("nk-prison-camps/camps.geojson"),
        dir.join("camps.geojson"),
    )
    .expect("copy camps");
    let server = TestServer::serving(&[dir.to_owned()]).await;
    for (name, _) in &cases {
        let reason = failure_reason(&server, &format!("{name}.gltf"))
            .await
            .unwrap_or_else(|| panic!("{name}.gltf is served"));
        assert!(
            reason.contains("outside the model's folder")
                || reason.contains("inside the model's folder"),
            "{name}: {reason}"
        );
    }
    let response = server.get("/tiles/camps/0/0/0.pbf").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unknown_configuration_keys_named() {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    std::fs::copy(
        geodata("nk-prison-camps/camps.geojson"),
        dir.join("camps.geojson"),
    )
    .expect("copy camps");
    let top = dir.join("top.toml");
    std::fs::write(&top, "tile_timeout = 5.0\ntile_timout = 5.0\n").expect("write");
    let error = Config::load(&top).expect_err("an unknown top-level key");
    assert!(error.to_string().contains("tile_timout"), "{error}");

    let per_source = dir.join("source.toml");
    let mut text = std::fs::File::create(&per_source).expect("create");
    writeln!(
        text,
        "paths = []\n[sources.camps]\npath = \"camps.geojson\"\nmaxzom = 12\n[sources.points]\npath = \"camps.geojson\""
    )
    .expect("write");
    drop(text);
    let config = Config::load(&per_source).expect("the file parses");
    let server = TestServer::start(config).await;
    let reason = failure_reason(&server, "camps.geojson")
        .await
        .expect("the source with an unknown key is reported");
    assert!(reason.contains("maxzom"), "{reason}");
    let response = server.get("/tiles/points/0/0/0.pbf").await;
    assert_eq!(response.status(), 200, "the other source is served");
}

#[tokio::test]
async fn absurd_requests_rejected() {
    let server = TestServer::serving(&[geodata("nk-prison-camps")]).await;
    // Warm up, so that the first tile's allocations do not count as growth.
    assert_eq!(server.get("/tiles/camps/0/0/0.pbf").await.status(), 200);
    let before = resident_kib();

    let long_segment = "a".repeat(10 * 1024);
    let long_query = format!("date={}", "9".repeat(100 * 1024));
    let many_parameters = (0..5000)
        .map(|i| format!("p{i}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let cases: [(String, u16, Option<&str>); 7] = [
        ("/tiles/camps/1000/0/0.pbf".to_owned(), 400, Some("z")),
        (
            "/tiles/camps/3/1099511627776/0.pbf".to_owned(),
            400,
            Some("x"),
        ),
        (
            "/tiles/camps/3/0/1099511627776.pbf".to_owned(),
            400,
            Some("y"),
        ),
        (
            format!("/tiles/{long_segment}/0/0/0.pbf"),
            400,
            Some("source"),
        ),
        (
            format!("/tiles/camps/0/0/{long_segment}.pbf"),
            400,
            Some("y"),
        ),
        (
            format!("/tiles/camps/0/0/0.pbf?{}", &long_query[..30 * 1024]),
            400,
            Some("date"),
        ),
        (
            format!("/tiles/camps/0/0/0.pbf?{many_parameters}"),
            400,
            Some("query"),
        ),
    ];
    for _ in 0..20 {
        for (path, status, parameter) in &cases {
            let response = server.get(path).await;
            assert_eq!(
                response.status().as_u16(),
                *status,
                "{}",
                &path[..path.len().min(80)]
            );
            let problem: Value = response.json().await.expect("problem details");
            assert_eq!(problem["parameter"].as_str(), *parameter, "{problem}");
        }
    }

    // A URI of 100 KB is beyond what HTTP clients send (the `http` crate stops at 64 KiB), so
    // it goes over a raw connection.
    for _ in 0..20 {
        let status = raw_status(&server, &format!("/tiles/camps/0/0/0.pbf?{long_query}")).await;
        assert!(matches!(status, Some(400 | 414 | 431) | None), "{status:?}");
    }

    // Headers far beyond hyper's limits close the request with a 431 or the connection.
    let huge_header = "x".repeat(512 * 1024);
    let response = server
        .client
        .get(server.url("/health"))
        .header("x-huge", &huge_header)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status().as_u16(), 431);
    }
    let mut many_headers = server.client.get(server.url("/health"));
    for index in 0..2000 {
        many_headers = many_headers.header(format!("x-header-{index}"), "1");
    }
    if let Ok(response) = many_headers.send().await {
        assert_eq!(response.status().as_u16(), 431);
    }

    let grown = resident_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert_eq!(server.get("/tiles/camps/0/0/0.pbf").await.status(), 200);
    assert_eq!(server.get("/health").await.status(), 200);
}

#[tokio::test]
async fn undecodable_source_segment_named() {
    let server = TestServer::serving(&[geodata("nk-prison-camps")]).await;
    let cases = [
        ("/tiles/%FF%FE/0/0/0.pbf", "source"),
        ("/tiles/camps/%C3/0/0.pbf", "z"),
        ("/tiles/%80.json", "file"),
        ("/models/%80.glb", "file"),
    ];
    for (path, parameter) in cases {
        let response = server.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let problem: Value = response.json().await.expect("problem details");
        assert_eq!(problem["parameter"], parameter, "{path}: {problem}");
    }
}

#[tokio::test]
async fn slow_request_times_out() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("slow.mbtiles");
    let connection = rusqlite::Connection::open(&path).expect("create");
    connection
        .execute_batch(
            "CREATE TABLE metadata (name TEXT, value TEXT);
             INSERT INTO metadata VALUES ('format', 'png'), ('minzoom', '0'), ('maxzoom', '1');
             CREATE VIEW tiles AS
               WITH RECURSIVE counter(n) AS (
                 SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < 10000000000)
               SELECT 0 AS zoom_level, 0 AS tile_column, 0 AS tile_row, x'00' AS tile_data
               FROM counter WHERE n = 10000000000;",
        )
        .expect("create the slow view");
    drop(connection);
    let server = TestServer::start(Config {
        paths: vec![PathBuf::from(folder.path())],
        tile_timeout: 5.0,
        request_timeout: 0.5,
        source_concurrency: 1,
        source_queue: 0,
        ..Config::default()
    })
    .await;

    let started = std::time::Instant::now();
    let response = server.get("/tiles/slow/0/0/0.png").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let problem: Value = response.json().await.expect("problem details");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("request_timeout (0.5 s)"), "{detail}");

    // The dropped request gave back its turn and interrupted its query: the next request
    // times out the same way instead of finding the source busy.
    let response = server.get("/tiles/slow/0/0/0.png").await;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.expect("problem details");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("busy"), "{detail}");
}

#[tokio::test]
async fn crowded_tile_counts_dropped_features() {
    let folder = tempfile::tempdir().expect("tempdir");
    let features: Vec<String> = (0..30)
        .map(|index| {
            format!(
                r#"{{"type":"Feature","properties":{{"n":{index}}},"geometry":{{"type":"Point","coordinates":[{},10.0]}}}}"#,
                f64::from(index) * 0.1
            )
        })
        .collect();
    std::fs::write(
        folder.path().join("crowded.geojson"),
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        ),
    )
    .expect("write GeoJSON");
    std::fs::write(
        folder.path().join("crowded.toml"),
        "max_features_per_tile = 10\n",
    )
    .expect("write the side file");
    let server = TestServer::serving(&[folder.path().to_owned()]).await;

    let response = server.get("/tiles/crowded/0/0/0.pbf").await;
    assert_eq!(response.status(), 200);
    let dropped = response
        .headers()
        .get("tessera-dropped-features")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert_eq!(dropped.as_deref(), Some("20"));
    let exposed = response
        .headers()
        .get("access-control-expose-headers")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("tessera-dropped-features"), "{exposed}");
}
