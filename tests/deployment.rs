//! Deployment beyond one machine: the docker-compose file and its configuration, the
//! revision trigger script, and two `tessera serve` processes sharing one PostGIS and one S3
//! server.
//!
//! The compose file is checked with a YAML parser, because this machine has no
//! `docker compose` client; where one is present, `docker compose config` checks more.

mod common;
mod moto_support;
mod postgis_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, geodata, repo};
use moto_support::{start_moto, upload, venv_program};
use postgis_support::{Schema, database_url, decode_layer};
use tessera::config::Config;
use tessera::postgis::PostgresConfig;
use tessera::source::Backend;
use tessera::tile::lonlat_to_tile;

fn compose() -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("compose file");
    serde_saphyr::from_str(&text).expect("docker-compose.yml is valid YAML")
}

#[test]
fn compose_file_names_services() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["cache", "postgis", "tessera"],
        "services, sorted by name"
    );

    let postgis = &services["postgis"];
    let image = postgis["image"].as_str().expect("postgis image");
    assert!(image.starts_with("postgis/postgis:15-3."), "{image}");
    assert!(
        postgis["healthcheck"]["test"].is_array(),
        "postgis has a health check"
    );

    let tessera = &services["tessera"];
    assert_eq!(
        tessera["build"], ".",
        "Tessera is built from the repository"
    );
    assert!(repo().join("Dockerfile").is_file());
    assert_eq!(
        tessera["depends_on"]["postgis"]["condition"], "service_healthy",
        "Tessera starts once PostGIS accepts connections"
    );
    let environment = &tessera["environment"];
    let url = environment["TESSERA_DATABASE_URL"].as_str().expect("URL");
    assert!(url.contains("@postgis:5432/"), "{url}");
    assert!(
        url.contains("${POSTGRES_PASSWORD}"),
        "the password comes from the environment"
    );
    assert!(tessera["deploy"]["replicas"].as_u64().expect("replicas") >= 2);

    let cache = &services["cache"];
    let ports = cache["ports"].as_array().expect("cache ports");
    assert!(
        ports
            .iter()
            .all(|port| port.as_str().is_some_and(|p| p.starts_with("127.0.0.1:"))),
        "the cache publishes its port on loopback only: {ports:?}"
    );
}

#[test]
fn compose_volumes_exist() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let named = compose["volumes"].as_object().expect("named volumes");
    for (service, definition) in services {
        for volume in definition["volumes"].as_array().into_iter().flatten() {
            let volume = volume.as_str().expect("short volume syntax");
            let source = volume.split(':').next().expect("source");
            if let Some(relative) = source.strip_prefix("./") {
                assert!(
                    repo().join(relative).exists(),
                    "{service}: {relative} is not in the repository"
                );
            } else {
                assert!(
                    named.contains_key(source),
                    "{service}: volume {source} is not declared"
                );
            }
        }
    }
    let nginx = std::fs::read_to_string(repo().join("deploy/nginx.conf")).expect("nginx.conf");
    for directive in [
        "proxy_cache_path",
        "proxy_cache_lock on",
        "proxy_cache_revalidate on",
    ] {
        assert!(
            nginx.contains(directive),
            "deploy/nginx.conf lacks {directive}"
        );
    }
}

#[test]
fn deployment_configuration_loads() {
    let config = Config::load(&repo().join("deploy/tessera.toml")).expect("valid configuration");
    let postgres = config.postgres.expect("a [postgres] section");
    assert!(
        postgres.url.is_none(),
        "the URL must come from the environment"
    );
    assert_eq!(postgres.url_env, "TESSERA_DATABASE_URL");
    assert_eq!(postgres.notify_channel.as_deref(), Some("tessera_changes"));
}

#[tokio::test]
async fn revision_script_tracks_tables() {
    let Some(url) = database_url("revision_script_tracks_tables") else {
        return;
    };
    let schema = Schema::create(&url, "t_deploy").await;
    schema.load(
        &geodata("nk-prison-camps/camps.geojson"),
        "camps",
        4326,
        "POINT",
    );
    let script =
        std::fs::read_to_string(repo().join("deploy/postgis/initdb/10-tessera-revisions.sql"))
            .expect("script");
    schema
        .execute(&format!(
            "SET search_path TO t_deploy; {script}; SELECT tessera_track('t_deploy.camps'); \
             RESET search_path"
        ))
        .await;
    let sources = r#"
        [sources.pg_camps]
        table = "t_deploy.camps"
        revision_query = "SELECT revision::text FROM t_deploy.tessera_revisions WHERE table_name = 't_deploy.camps'"
    "#;
    let mut config: Config = toml::from_str(sources).expect("configuration");
    config.postgres = Some(PostgresConfig {
        url: Some(url.clone()),
        discover: false,
        notify_channel: Some("tessera_changes".to_owned()),
        revision_interval: 600.0,
        ..PostgresConfig::default()
    });
    let server = TestServer::start(config).await;
    assert!(
        server.state.failures.is_empty(),
        "{:?}",
        server.state.failures
    );
    let revision = || {
        let source = server.state.catalog.get("pg_camps").expect("source");
        let Backend::Postgis(postgis) = &source.backend else {
            panic!("pg_camps is not a PostGIS source");
        };
        postgis.revision()
    };
    let before = revision();
    schema
        .execute("DELETE FROM t_deploy.camps WHERE name LIKE 'Camp 14%'")
        .await;
    let started = Instant::now();
    while revision() == before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no notification reached the source within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `tessera serve` process, stopped when dropped.
struct Process {
    child: Child,
    address: String,
}

impl Process {
    /// Starts `tessera serve` with `config` on a free loopback port, and waits until it
    /// prints its address.
    fn start(config: &std::path::Path, database_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("TESSERA_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tessera starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("tessera prints its address before it ends")
                .expect("stdout line");
            if let Some(rest) = line.split_once("http://").map(|(_, rest)| rest) {
                break rest.trim_end_matches('/').to_owned();
            }
        };
        Self { child, address }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The child is ours; a kill that fails means it has ended already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "the steps of one deployment scenario read best in order"
)]
async fn two_processes_give_same_tiles() {
    let Some(url) = database_url("two_processes_give_same_tiles") else {
        return;
    };
    let schema = Schema::create(&url, "t_two").await;
    schema.load(
        &geodata("nk-prison-camps/camps.geojson"),
        "camps",
        4326,
        "POINT",
    );
    schema.load(
        &repo().join("tests/data/vector/compounds.geojson"),
        "compounds",
        32652,
        "MULTIPOLYGON",
    );
    // One object storage for both processes: a COG in a bucket of a local S3 server.
    let Some(moto_program) = venv_program("moto_server") else {
        return;
    };
    let moto = start_moto(&moto_program).await;
    let endpoint = format!("127.0.0.1:{}", moto.port);
    let scene = geodata("sentinel2-29rkh/TCI.tif");
    upload(
        &endpoint,
        "shared",
        "imagery/TCI.tif",
        std::fs::read(&scene).expect("scene bytes"),
    )
    .await;
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = folder.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            paths = ["{camps}"]
            public_url = "http://tiles.example.org"
            [postgres]
            discover = true
            schemas = ["t_two"]
            revision_interval = 0.2
            [remote]
            s3_endpoint = "{endpoint}"
            s3_region = "us-east-1"
            s3_access_key_id = "testing"
            s3_secret_access_key = "testing-secret"
            s3_https = false
            s3_virtual_hosting = false
            [sources.compounds_wkb]
            table = "t_two.compounds"
            encoder = "tessera"
            [sources.scene]
            path = "s3://shared/imagery/TCI.tif"
            "#,
            camps = geodata("nk-prison-camps/camps.geojson").display()
        ),
    )
    .expect("configuration written");
    let first = Process::start(&config, &url);
    let second = Process::start(&config, &url);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let get = |address: String, path: String| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{address}{path}"))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let etag = response.headers().get("etag").cloned();
            let body = response.bytes().await.expect("body");
            (status, etag, body)
        }
    };

    let mut paths = vec![
        "/catalog".to_owned(),
        "/tiles/compounds_wkb.json".to_owned(),
    ];
    for z in [0_u8, 5, 9, 12] {
        for (lon, lat) in [(126.06, 39.57), (126.85, 39.69), (129.73, 41.83)] {
            let tile = lonlat_to_tile(lon, lat, z);
            // `camps` is the discovered table, `camps-2` the file of the same name.
            for source in ["camps", "camps-2", "compounds_wkb"] {
                paths.push(format!(
                    "/tiles/{source}/{}/{}/{}.pbf",
                    tile.z, tile.x, tile.y
                ));
            }
        }
    }
    // Imagery tiles of the scene in the shared bucket, at its centre and first zooms.
    let (_, _, scene) = get(first.address.clone(), "/tiles/scene.json".to_owned()).await;
    let scene: serde_json::Value = serde_json::from_slice(&scene).expect("TileJSON of the scene");
    let minzoom = scene["minzoom"].as_u64().expect("minzoom") as u8;
    let (scene_lon, scene_lat) = (
        scene["center"][0].as_f64().expect("centre"),
        scene["center"][1].as_f64().expect("centre"),
    );
    for z in minzoom..minzoom + 3 {
        let tile = lonlat_to_tile(scene_lon, scene_lat, z);
        paths.push(format!("/tiles/scene/{}/{}/{}.png", tile.z, tile.x, tile.y));
    }
    paths.push("/tiles/scene.json".to_owned());
    let mut with_data = 0;
    let mut imagery = 0;
    for path in &paths {
        let a = get(first.address.clone(), path.clone()).await;
        let b = get(second.address.clone(), path.clone()).await;
        assert_eq!(a.0, b.0, "{path}: status");
        assert_eq!(a.1, b.1, "{path}: ETag");
        assert_eq!(a.2, b.2, "{path}: body");
        let is_tile = std::path::Path::new(path)
            .extension()
            .is_some_and(|extension| extension == "pbf");
        with_data += usize::from(a.0 == 200 && is_tile);
        let is_imagery = std::path::Path::new(path)
            .extension()
            .is_some_and(|extension| extension == "png");
        imagery += usize::from(a.0 == 200 && is_imagery);
    }
    assert!(with_data >= 20, "only {with_data} tiles had data");
    assert_eq!(
        imagery, 3,
        "every imagery tile from the shared bucket was served"
    );

    // A change reaches both processes, which agree on the new ETag.
    let tile = lonlat_to_tile(126.06, 39.57, 9);
    let path = format!("/tiles/camps/{}/{}/{}.pbf", tile.z, tile.x, tile.y);
    let (_, etag_before, body) = get(first.address.clone(), path.clone()).await;
    let count_before = decode_layer(&body, "camps").len();
    schema
        .execute("DELETE FROM t_two.camps WHERE name LIKE 'Camp 14%'")
        .await;
    let started = Instant::now();
    loop {
        let a = get(first.address.clone(), path.clone()).await;
        let b = get(second.address.clone(), path.clone()).await;
        if a.1 != etag_before && a.1 == b.1 {
            assert_eq!(a.2, b.2, "{path}: body after the change");
            assert_eq!(decode_layer(&a.2, "camps").len(), count_before - 1);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the processes did not agree on a new ETag within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
