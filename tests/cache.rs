//! The disk and memory tile caches and shared computations, through the real server.
//!
//! The tests cover hits after misses, eviction, invalidation when the file changes, corrupt
//! entries, a restart, the gzip form kept in memory, and one render for many concurrent
//! requests of a missing tile. The disk tests turn the memory cache off, so that every
//! repeat reaches the disk.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{TestServer, geodata, have_program};
use tessera::cache::CacheConfig;
use tessera::config::Config;

/// Copies the Sentinel-2 sample into `folder` as `{stem}.tif`, so that the source id (and
/// so its metric series) belongs to one test.
fn scene_copy(folder: &Path, stem: &str) -> PathBuf {
    let path = folder.join(format!("{stem}.tif"));
    std::fs::copy(geodata("sentinel2-29rkh/TCI.tif"), &path).expect("copy the scene");
    path
}

/// Sets the modification time of `path` to `seconds` from now, so that it differs from any
/// time the file had.
fn set_modified_ahead(path: &Path, seconds: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open the copy");
    file.set_modified(SystemTime::now() + Duration::from_secs(seconds))
        .expect("set the modification time");
}

async fn serve(paths: Vec<PathBuf>, cache: Option<&Path>, max_mb: u64) -> TestServer {
    TestServer::start(Config {
        paths,
        cache: CacheConfig {
            path: cache.map(Path::to_owned),
            max_mb,
            memory_mb: 0,
        },
        ..Config::default()
    })
    .await
}

/// Reads a counter of `/metrics` for `source`; 0 when it has no series yet.
async fn counter(server: &TestServer, name: &str, source: &str) -> u64 {
    let text = server
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    let label = format!("source=\"{source}\"");
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

async fn renders(server: &TestServer, source: &str) -> u64 {
    counter(server, "tessera_tile_renders_total", source).await
}

/// Returns the URL of the tile at the centre of `source` at its native zoom.
async fn centre_tile(server: &TestServer, source: &str, extension: &str) -> String {
    let tilejson = server.json(&format!("/tiles/{source}.json")).await;
    let zoom = tilejson["maxzoom"].as_u64().expect("maxzoom") as u8;
    let centre = &tilejson["center"];
    let tile = tessera::tile::lonlat_to_tile(
        centre[0].as_f64().expect("lon"),
        centre[1].as_f64().expect("lat"),
        zoom,
    );
    format!(
        "/tiles/{source}/{}/{}/{}.{extension}",
        tile.z, tile.x, tile.y
    )
}

async fn tile_bytes(server: &TestServer, url: &str) -> Vec<u8> {
    let response = server.get(url).await;
    assert_eq!(response.status(), 200, "GET {url}");
    response.bytes().await.expect("tile body").to_vec()
}

/// Lists the cached tile files under `folder`.
fn cached_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)
            .expect("list cache folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "tile") {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn cache_hit_returns_same_bytes() {
    let data = tempfile::tempdir().expect("data folder");
    let cache = tempfile::tempdir().expect("cache folder");
    let scene = scene_copy(data.path(), "cache-hit");
    let server = serve(vec![scene], Some(cache.path()), 64).await;
    let url = centre_tile(&server, "cache-hit", "png").await;

    let first = tile_bytes(&server, &url).await;
    assert_eq!(renders(&server, "cache-hit").await, 1);
    let second = tile_bytes(&server, &url).await;
    assert_eq!(second, first, "the cached tile has the rendered bytes");
    assert_eq!(
        renders(&server, "cache-hit").await,
        1,
        "the second request is not rendered"
    );
    assert_eq!(
        counter(&server, "tessera_tile_cache_hits_total", "cache-hit").await,
        1
    );

    // Another format, and another option, are other tiles.
    tile_bytes(&server, &url.replace(".png", ".webp")).await;
    tile_bytes(&server, &format!("{url}?resampling=nearest")).await;
    assert_eq!(renders(&server, "cache-hit").await, 3);
}

#[tokio::test]
async fn cache_survives_restart() {
    let data = tempfile::tempdir().expect("data folder");
    let cache = tempfile::tempdir().expect("cache folder");
    let scene = scene_copy(data.path(), "cache-restart");
    let first_server = serve(vec![scene.clone()], Some(cache.path()), 64).await;
    let url = centre_tile(&first_server, "cache-restart", "png").await;
    let first = tile_bytes(&first_server, &url).await;
    drop(first_server);

    let second_server = serve(vec![scene], Some(cache.path()), 64).await;
    let hits_before = counter(
        &second_server,
        "tessera_tile_cache_hits_total",
        "cache-restart",
    )
    .await;
    let second = tile_bytes(&second_server, &url).await;
    assert_eq!(second, first);
    assert_eq!(
        renders(&second_server, "cache-restart").await,
        1,
        "rendered once, before the restart"
    );
    assert_eq!(
        counter(
            &second_server,
            "tessera_tile_cache_hits_total",
            "cache-restart"
        )
        .await,
        hits_before + 1
    );
}

#[tokio::test]
async fn changed_file_invalidates_tiles() {
    let data = tempfile::tempdir().expect("data folder");
    let cache = tempfile::tempdir().expect("cache folder");
    let scene = scene_copy(data.path(), "cache-change");
    let server = serve(vec![scene.clone()], Some(cache.path()), 64).await;
    let url = centre_tile(&server, "cache-change", "png").await;
    let original = tile_bytes(&server, &url).await;
    tile_bytes(&server, &url).await;
    assert_eq!(renders(&server, "cache-change").await, 1);

    // A new modification time alone changes the revision.
    set_modified_ahead(&scene, 5);
    assert_eq!(tile_bytes(&server, &url).await, original);
    assert_eq!(
        renders(&server, "cache-change").await,
        2,
        "touched file renders again"
    );

    // Rewriting the file, here with the same bytes, changes it too.
    std::fs::copy(geodata("sentinel2-29rkh/TCI.tif"), &scene).expect("rewrite the copy");
    set_modified_ahead(&scene, 10);
    assert_eq!(tile_bytes(&server, &url).await, original);
    assert_eq!(
        renders(&server, "cache-change").await,
        3,
        "rewritten file renders again"
    );
}

#[tokio::test]
async fn corrupt_entry_is_rendered_again() {
    let data = tempfile::tempdir().expect("data folder");
    let cache = tempfile::tempdir().expect("cache folder");
    let scene = scene_copy(data.path(), "cache-corrupt");
    let server = serve(vec![scene], Some(cache.path()), 64).await;
    let url = centre_tile(&server, "cache-corrupt", "png").await;
    let original = tile_bytes(&server, &url).await;

    let files = cached_files(cache.path());
    assert_eq!(files.len(), 1, "one tile is cached");
    let entry = std::fs::read(&files[0]).expect("read entry");
    std::fs::write(&files[0], &entry[..entry.len() / 3]).expect("truncate entry");

    assert_eq!(tile_bytes(&server, &url).await, original);
    assert_eq!(
        renders(&server, "cache-corrupt").await,
        2,
        "the truncated entry is a miss"
    );
    assert_eq!(tile_bytes(&server, &url).await, original);
    assert_eq!(
        renders(&server, "cache-corrupt").await,
        2,
        "the new entry is a hit"
    );
}

#[tokio::test]
async fn cache_evicts_over_size_limit() {
    let data = tempfile::tempdir().expect("data folder");
    let cache = tempfile::tempdir().expect("cache folder");
    let scene = scene_copy(data.path(), "cache-evict");
    let server = serve(vec![scene], Some(cache.path()), 1).await;
    let tilejson = server.json("/tiles/cache-evict.json").await;
    let zoom = tilejson["maxzoom"].as_u64().expect("maxzoom") as u8;
    let bounds: Vec<f64> = tilejson["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    let bbox = tessera::tile::Bbox::new(bounds[0], bounds[1], bounds[2], bounds[3]);
    let tiles: Vec<_> = tessera::tile::tiles_in_bbox(&bbox, zoom).collect();
    let mut stored = 0;
    for tile in &tiles {
        let url = format!("/tiles/cache-evict/{}/{}/{}.png", tile.z, tile.x, tile.y);
        let response = server.get(&url).await;
        if response.status() == 200 {
            stored += response.bytes().await.expect("body").len();
        }
    }
    assert!(
        stored > 1 << 20,
        "the tiles ({stored} bytes) pass the 1 MiB limit"
    );
    let cache_state = server.state.tile_cache.as_ref().expect("cache is on");
    let (count, bytes) = cache_state.usage();
    assert!(bytes <= 1 << 20, "cache holds {bytes} bytes");
    assert!(count < tiles.len(), "{count} of {} tiles kept", tiles.len());
    let on_disk: u64 = cached_files(cache.path())
        .iter()
        .map(|path| std::fs::metadata(path).expect("entry").len())
        .sum();
    assert_eq!(on_disk, bytes, "evicted files are deleted");

    // The first tile was the least recently used, so it is rendered again.
    let before = renders(&server, "cache-evict").await;
    let first = tiles[0];
    tile_bytes(
        &server,
        &format!("/tiles/cache-evict/{}/{}/{}.png", first.z, first.x, first.y),
    )
    .await;
    assert_eq!(renders(&server, "cache-evict").await, before + 1);
}

/// Requests one missing tile 50 times at once while the only worker is busy, so that every
/// request arrives before the first render can finish, and counts the renders.
async fn concurrent_requests_render_once(source: &str, cache: Option<&Path>, memory_mb: u64) {
    let data = tempfile::tempdir().expect("data folder");
    let scene = scene_copy(data.path(), source);
    let server = TestServer::start(Config {
        paths: vec![scene],
        workers: 1,
        cache: CacheConfig {
            path: cache.map(Path::to_owned),
            max_mb: 64,
            memory_mb,
        },
        ..Config::default()
    })
    .await;
    let url = centre_tile(&server, source, "png").await;
    let workers = server.state.workers.clone();
    #[allow(
        clippy::disallowed_methods,
        reason = "the sleep occupies the worker thread, not a runtime thread"
    )]
    let busy = tokio::spawn(async move {
        workers
            .run(|| std::thread::sleep(Duration::from_millis(700)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (client, full_url) = (server.client.clone(), server.url(&url));
        requests.spawn(async move {
            let response = client.get(full_url).send().await.expect("response");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body")
        });
    }
    let mut bodies = Vec::new();
    while let Some(body) = requests.join_next().await {
        bodies.push(body.expect("request task"));
    }
    busy.await.expect("busy task").expect("busy job");
    assert_eq!(bodies.len(), 50);
    assert!(
        bodies.iter().all(|body| *body == bodies[0]),
        "every request got the same bytes"
    );
    assert_eq!(
        renders(&server, source).await,
        1,
        "one render for 50 requests"
    );
}

#[tokio::test]
async fn concurrent_misses_render_once_with_cache() {
    let cache = tempfile::tempdir().expect("cache folder");
    concurrent_requests_render_once("flight-cached", Some(cache.path()), 0).await;
}

#[tokio::test]
async fn concurrent_misses_render_once_without_cache() {
    concurrent_requests_render_once("flight-uncached", None, 0).await;
}

#[tokio::test]
async fn concurrent_misses_render_once_in_memory() {
    concurrent_requests_render_once("flight-memory", None, 64).await;
}

/// Serves `paths` with the default caches: memory on, disk off.
async fn serve_with_memory_cache(paths: Vec<PathBuf>) -> TestServer {
    let server = TestServer::start(Config {
        paths,
        ..Config::default()
    })
    .await;
    assert!(
        server.state.memory_cache.is_some(),
        "the memory cache is on by default"
    );
    assert!(server.state.tile_cache.is_none());
    server
}

#[tokio::test]
async fn memory_cache_serves_repeats_and_sees_changes() {
    let data = tempfile::tempdir().expect("data folder");
    let scene = scene_copy(data.path(), "memory-hit");
    let server = serve_with_memory_cache(vec![scene.clone()]).await;
    let url = centre_tile(&server, "memory-hit", "png").await;

    let first = tile_bytes(&server, &url).await;
    let second = tile_bytes(&server, &url).await;
    assert_eq!(second, first, "the kept tile has the rendered bytes");
    assert_eq!(
        renders(&server, "memory-hit").await,
        1,
        "one render for two requests"
    );
    assert_eq!(
        counter(&server, "tessera_tile_memory_hits_total", "memory-hit").await,
        1
    );
    tile_bytes(&server, &format!("{url}?resampling=nearest")).await;
    assert_eq!(
        renders(&server, "memory-hit").await,
        2,
        "other options are another tile"
    );

    // A new modification time changes the source's revision, so the kept tile is not used.
    set_modified_ahead(&scene, 5);
    assert_eq!(tile_bytes(&server, &url).await, first);
    assert_eq!(
        renders(&server, "memory-hit").await,
        3,
        "touched file renders again"
    );
}

#[tokio::test]
async fn memory_cache_keeps_gzip_form() {
    use std::io::Read;

    let camps = geodata("nk-prison-camps/camps.geojson");
    let server = serve_with_memory_cache(vec![camps]).await;
    // Camp 14, Kaechon.
    let tile = tessera::tile::lonlat_to_tile(126.062_155_6, 39.571_705_8, 8);
    let url = format!("/tiles/camps/{}/{}/{}.pbf", tile.z, tile.x, tile.y);
    // The test client would inflate the body itself.
    let client = reqwest::Client::builder()
        .no_proxy()
        .no_gzip()
        .build()
        .expect("http client");
    let gzipped = |server: &TestServer| {
        let request = client
            .get(server.url(&url))
            .header("Accept-Encoding", "gzip");
        async move {
            let response = request.send().await.expect("response");
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-encoding"], "gzip");
            response.bytes().await.expect("body").to_vec()
        }
    };
    let first = gzipped(&server).await;
    let second = gzipped(&server).await;
    assert_eq!(second, first, "the kept gzip form is sent again");
    let plain = tile_bytes(&server, &url).await;
    assert_eq!(
        renders(&server, "camps").await,
        1,
        "three requests, one render"
    );
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(first.as_slice())
        .read_to_end(&mut inflated)
        .expect("gunzip the kept form");
    assert_eq!(inflated, plain, "the gzip form holds the tile's bytes");
}

#[tokio::test]
async fn replaced_raster_is_read_anew() {
    if !have_program("gdal_translate") {
        eprintln!(
            "SKIPPED replaced_raster_is_read_anew: gdal_translate is missing; run scripts/setup"
        );
        return;
    }
    let data = tempfile::tempdir().expect("data folder");
    let scene = scene_copy(data.path(), "replaced");
    let server = serve_with_memory_cache(vec![scene.clone()]).await;
    let url = centre_tile(&server, "replaced", "png").await;
    let first = tile_bytes(&server, &url).await;

    // Another image of the same place, written beside the served file and moved over it.
    let inverted = data.path().join("inverted.tif");
    let status = std::process::Command::new("gdal_translate")
        .args(["-q", "-scale", "0", "255", "255", "0"])
        .arg(geodata("sentinel2-29rkh/TCI.tif"))
        .arg(&inverted)
        .status()
        .expect("run gdal_translate");
    assert!(status.success(), "gdal_translate failed");
    std::fs::rename(&inverted, &scene).expect("replace the served file");

    let second = tile_bytes(&server, &url).await;
    assert_ne!(second, first, "the replaced file's pixels are served");
    let fresh = serve_with_memory_cache(vec![scene]).await;
    assert_eq!(
        tile_bytes(&fresh, &url).await,
        second,
        "a server started on the new file gives the same tile"
    );
}
