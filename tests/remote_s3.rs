//! Remote imagery from S3-compatible storage: a COG uploaded to a local `moto_server` on
//! loopback gives the same tiles through `s3://` as the local file.
//!
//! `moto_server` comes from the virtual environment that `scripts/setup --test` creates
//! (`target/venv`); without it the test prints SKIPPED.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, geodata};
use tessera::config::{Config, SourceConfig};
use tessera::remote::RemoteConfig;

/// Returns a program of the test virtual environment: `$TESSERA_TEST_VENV/bin`, else
/// `$CARGO_TARGET_DIR/venv/bin`, else `target/venv/bin`.
fn venv_program(name: &str) -> Option<PathBuf> {
    let venvs = [
        std::env::var_os("TESSERA_TEST_VENV").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("venv")),
        Some(common::repo().join("target/venv")),
    ];
    let found = venvs
        .into_iter()
        .flatten()
        .map(|venv| venv.join("bin").join(name))
        .find(|program| program.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: {name} is not installed: run scripts/setup --test");
    }
    found
}

/// A `moto_server` process, killed when the test ends.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto(program: &PathBuf) -> Moto {
    // A port that was free a moment ago; moto_server cannot be given port 0.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free loopback port")
        .port();
    let child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let moto = Moto { child, port };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let started = Instant::now();
    while client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto_server did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    moto
}

#[tokio::test]
async fn s3_tiles_equal_local_tiles() {
    let Some(program) = venv_program("moto_server") else {
        return;
    };
    let moto = start_moto(&program).await;
    let endpoint = format!("127.0.0.1:{}", moto.port);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let scene = geodata("sentinel2-29rkh/TCI.tif");
    let created = client
        .put(format!("http://{endpoint}/tessera"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        created.status().is_success(),
        "bucket: {}",
        created.status()
    );
    let uploaded = client
        .put(format!("http://{endpoint}/tessera/imagery/scene.tif"))
        .body(std::fs::read(&scene).expect("scene bytes"))
        .send()
        .await
        .expect("upload");
    assert!(
        uploaded.status().is_success(),
        "upload: {}",
        uploaded.status()
    );

    let source = |path: PathBuf| SourceConfig {
        path,
        name: None,
        attribution: None,
        description: None,
        options: toml::Table::new(),
    };
    let sources = BTreeMap::from([
        (
            "from-s3".to_owned(),
            source(PathBuf::from("s3://tessera/imagery/scene.tif")),
        ),
        ("from-disk".to_owned(), source(scene)),
    ]);
    let server = TestServer::start(Config {
        sources,
        remote: RemoteConfig {
            timeout: 10,
            retries: 0,
            s3_endpoint: Some(endpoint),
            s3_region: Some("us-east-1".to_owned()),
            s3_access_key_id: Some("testing".to_owned()),
            s3_secret_access_key: Some("testing-secret".to_owned()),
            s3_https: Some(false),
            s3_virtual_hosting: Some(false),
            ..RemoteConfig::default()
        },
        ..Config::default()
    })
    .await;
    let health = server.json("/health").await;
    assert_eq!(health["failed_sources"], serde_json::json!([]), "{health}");
    assert!(!health.to_string().contains("testing-secret"));

    let remote = server.json("/tiles/from-s3.json").await;
    let local = server.json("/tiles/from-disk.json").await;
    assert_eq!(remote["bounds"], local["bounds"]);
    assert_eq!(remote["maxzoom"], local["maxzoom"]);
    let maxzoom = local["maxzoom"].as_u64().expect("maxzoom") as u8;
    let centre = &local["center"];
    let (lon, lat) = (
        centre[0].as_f64().expect("lon"),
        centre[1].as_f64().expect("lat"),
    );
    for zoom in [maxzoom - 2, maxzoom] {
        let tile = tessera::tile::lonlat_to_tile(lon, lat, zoom);
        let path = format!("{}/{}/{}.png", tile.z, tile.x, tile.y);
        let from_s3 = server.get(&format!("/tiles/from-s3/{path}")).await;
        assert_eq!(from_s3.status(), 200, "{path} from S3");
        let from_disk = server.get(&format!("/tiles/from-disk/{path}")).await;
        assert_eq!(
            from_s3.bytes().await.expect("body"),
            from_disk.bytes().await.expect("body"),
            "tile {path}"
        );
    }
}
