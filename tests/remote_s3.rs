//! Remote imagery from S3-compatible storage: a COG uploaded to a local `moto_server` on
//! loopback gives the same tiles through `s3://` as the local file.
//!
//! `moto_server` comes from the virtual environment that `scripts/setup --test` creates
//! (`target/venv`); without it the test prints SKIPPED, or fails when `CI=true`.

mod common;
mod moto_support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{TestServer, geodata};
use moto_support::{start_moto, upload, venv_program};
use tessera::config::{Config, SourceConfig};
use tessera::remote::RemoteConfig;

#[tokio::test]
async fn s3_tiles_equal_local_tiles() {
    let Some(program) = venv_program("moto_server") else {
        return;
    };
    let moto = start_moto(&program).await;
    let endpoint = format!("127.0.0.1:{}", moto.port);
    let scene = geodata("sentinel2-29rkh/TCI.tif");
    upload(
        &endpoint,
        "tessera",
        "imagery/scene.tif",
        std::fs::read(&scene).expect("scene bytes"),
    )
    .await;

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
