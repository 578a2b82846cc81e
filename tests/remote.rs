//! Remote imagery over HTTP. A COG on a local range-capable server is read with a bounded
//! number of range requests and gives the same tiles as the local file. A server that never
//! responds is a reported start-up failure, not a hang.
//!
//! GDAL's HTTP options are process-wide, so every test here uses the same `[remote]` table.

mod common;
#[path = "common/range_server.rs"]
mod range_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestServer, geodata};
use range_server::RangeServer;
use tessera::config::{Config, SourceConfig};
use tessera::remote::RemoteConfig;

fn remote_config() -> RemoteConfig {
    RemoteConfig {
        timeout: 3,
        connect_timeout: 2,
        retries: 0,
        ..RemoteConfig::default()
    }
}

fn source(path: impl Into<PathBuf>) -> SourceConfig {
    SourceConfig {
        path: path.into(),
        name: None,
        attribution: None,
        description: None,
        options: toml::Table::new(),
    }
}

async fn serve(sources: Vec<(&str, SourceConfig)>) -> TestServer {
    let sources: BTreeMap<String, SourceConfig> = sources
        .into_iter()
        .map(|(id, config)| (id.to_owned(), config))
        .collect();
    TestServer::start(Config {
        sources,
        remote: remote_config(),
        ..Config::default()
    })
    .await
}

/// Writes a COG four times the size of the Sentinel-2 sample (4392 pixels square, 256-pixel
/// JPEG blocks, overviews), so that one tile is a small part of the file.
fn large_cog(folder: &Path) -> PathBuf {
    let output = folder.join("large.tif");
    let status = std::process::Command::new("gdal_translate")
        .args([
            "-q", "-of", "COG", "-outsize", "400%", "400%", "-r", "bilinear",
        ])
        .args([
            "-co",
            "BLOCKSIZE=256",
            "-co",
            "COMPRESS=JPEG",
            "-co",
            "QUALITY=80",
        ])
        .arg(geodata("sentinel2-29rkh/TCI.tif"))
        .arg(&output)
        .status()
        .expect("gdal_translate runs");
    assert!(status.success(), "gdal_translate made the COG");
    output
}

/// Returns the tile at the centre of `source` at its deepest zoom.
async fn centre_tile(server: &TestServer, source: &str) -> String {
    let tilejson = server.json(&format!("/tiles/{source}.json")).await;
    let zoom = tilejson["maxzoom"].as_u64().expect("maxzoom") as u8;
    let centre = &tilejson["center"];
    let tile = tessera::tile::lonlat_to_tile(
        centre[0].as_f64().expect("lon"),
        centre[1].as_f64().expect("lat"),
        zoom,
    );
    format!("{}/{}/{}", tile.z, tile.x, tile.y)
}

async fn tile_bytes(server: &TestServer, url: &str) -> Vec<u8> {
    let response = server.get(url).await;
    assert_eq!(response.status(), 200, "GET {url}");
    response.bytes().await.expect("tile body").to_vec()
}

#[tokio::test]
async fn remote_tile_reads_few_ranges() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let cog = large_cog(folder.path());
    let file_bytes = std::fs::metadata(&cog).expect("COG").len();
    let http = RangeServer::start(folder.path().to_owned()).await;
    let server = serve(vec![
        ("over-http", source(http.url("large.tif"))),
        ("on-disk", source(cog)),
    ])
    .await;
    let health = server.json("/health").await;
    assert_eq!(health["failed_sources"], serde_json::json!([]), "{health}");
    let (opening_requests, opening_bytes) = http.counts.snapshot();
    assert!(opening_requests > 0, "the source was opened over HTTP");
    eprintln!("opening: {opening_requests} requests, {opening_bytes} of {file_bytes} bytes");

    let tile = centre_tile(&server, "over-http").await;
    let remote = tile_bytes(&server, &format!("/tiles/over-http/{tile}.png")).await;
    let (requests, bytes) = http.counts.snapshot();
    let (tile_requests, tile_bytes_read) = (requests - opening_requests, bytes - opening_bytes);
    eprintln!("tile {tile}: {tile_requests} requests, {tile_bytes_read} bytes");
    assert!(
        tile_requests <= 8,
        "{tile_requests} range requests for one tile"
    );
    assert!(
        tile_bytes_read * 10 < file_bytes,
        "one tile read {tile_bytes_read} of {file_bytes} bytes"
    );
    assert!(
        bytes * 4 < file_bytes,
        "open and tile read {bytes} of {file_bytes} bytes"
    );

    let local = tile_bytes(&server, &format!("/tiles/on-disk/{tile}.png")).await;
    assert_eq!(remote, local, "the remote tile equals the local one");
}

#[tokio::test]
async fn silent_remote_server_fails_at_start() {
    // A server that accepts connections and never responds: GDAL must time out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let started = Instant::now();
    let server = serve(vec![(
        "silent",
        source(format!("http://{address}/scene.tif")),
    )])
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "start-up took {elapsed:?}"
    );
    let health = server.json("/health").await;
    let failures = health["failed_sources"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{health}");
    let failed_path = failures[0]["path"].as_str().expect("path");
    assert!(failed_path.contains(&address.to_string()), "{failed_path}");
    let response = server.get("/tiles/silent.json").await;
    assert_eq!(response.status(), 404);
    held.abort();
}

#[tokio::test]
async fn remote_cog_on_tile_grid_sends_stored_bytes() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let cog = folder.path().join("grid.tif");
    let status = std::process::Command::new("gdal_translate")
        .args([
            "-q",
            "-of",
            "COG",
            "-co",
            "TILING_SCHEME=GoogleMapsCompatible",
        ])
        .args([
            "-co",
            "ALIGNED_LEVELS=2",
            "-co",
            "ADD_ALPHA=YES",
            "-co",
            "COMPRESS=WEBP",
        ])
        .args(["-a_nodata", "none"])
        .arg(geodata("sentinel2-29rkh/TCI.tif"))
        .arg(&cog)
        .status()
        .expect("gdal_translate runs");
    assert!(status.success(), "gdal_translate made the COG");
    let file = std::fs::read(&cog).expect("read the COG");
    let http = RangeServer::start(folder.path().to_owned()).await;
    let server = serve(vec![("grid-over-http", source(http.url("grid.tif")))]).await;
    let health = server.json("/health").await;
    assert_eq!(health["failed_sources"], serde_json::json!([]), "{health}");

    let tile = centre_tile(&server, "grid-over-http").await;
    let (_, before) = http.counts.snapshot();
    let body = tile_bytes(&server, &format!("/tiles/grid-over-http/{tile}.webp")).await;
    let (_, after) = http.counts.snapshot();
    assert!(
        file.windows(body.len()).any(|window| window == body),
        "tile {tile} is the stored block, sent as is"
    );
    assert!(
        after - before < 4 * body.len() as u64 + 64 * 1024,
        "reading the block took {} bytes for a {}-byte tile",
        after - before,
        body.len()
    );
}
