//! Access keys, security headers, cache headers, rate limits and log redaction over HTTP.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;
use tessera::access::{AccessConfig, RateLimit, append_new_key};
use tessera::config::{Config, SourceConfig};

/// Writes a one-point GeoJSON file and returns its path.
fn points_file(folder: &Path, name: &str) -> PathBuf {
    let path = folder.join(format!("{name}.geojson"));
    let document = json!({
        "type": "FeatureCollection",
        "features": [{ "type": "Feature", "properties": { "label": name },
                       "geometry": { "type": "Point", "coordinates": [126.5, 39.5] } }],
    });
    std::fs::write(&path, document.to_string()).expect("write GeoJSON");
    path
}

fn source(path: &Path, options: &str) -> SourceConfig {
    SourceConfig {
        path: path.to_owned(),
        name: None,
        attribution: None,
        description: None,
        options: toml::from_str(options).expect("options are TOML"),
    }
}

/// Serves a public source `open` and a private source `secret` with `access`.
async fn serve(folder: &Path, access: AccessConfig) -> TestServer {
    let mut sources = BTreeMap::new();
    sources.insert("open".to_owned(), source(&points_file(folder, "open"), ""));
    sources.insert(
        "secret".to_owned(),
        source(&points_file(folder, "secret"), "access = \"private\""),
    );
    TestServer::start(Config {
        sources,
        access,
        ..Config::default()
    })
    .await
}

async fn status_with_key(server: &TestServer, path: &str, key: &str) -> u16 {
    server
        .client
        .get(server.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn revoked_key_stops_without_restart() {
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    let access = AccessConfig {
        keys_file: Some(keys.clone()),
        keys_reload_seconds: 0.2,
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    assert_eq!(server.get("/tiles/secret.json").await.status(), 404);
    assert_eq!(
        status_with_key(&server, "/tiles/secret.json", &key).await,
        200
    );

    std::fs::write(&keys, "# revoked\n").expect("rewrite keys");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = 200;
    while Instant::now() < deadline {
        status = status_with_key(&server, "/tiles/secret.json", &key).await;
        if status != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "the revoked key is rejected");
    let body: serde_json::Value = server
        .client
        .get(server.url("/catalog"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("problem JSON");
    assert_eq!(body["status"], 401);

    // A key added while the server runs works too.
    let added = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_with_key(&server, "/tiles/secret.json", &added).await,
        200
    );
}

#[tokio::test]
async fn health_hides_failed_paths_without_key() {
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    let broken = folder.path().join("witness-addresses.geojson");
    std::fs::write(&broken, "{ not GeoJSON").expect("write the broken file");
    let mut sources = BTreeMap::new();
    sources.insert(
        "open".to_owned(),
        source(&points_file(folder.path(), "open"), ""),
    );
    sources.insert(
        "witnesses".to_owned(),
        source(&broken, "access = \"private\""),
    );
    let server = TestServer::start(Config {
        sources,
        access: AccessConfig {
            keys_file: Some(keys),
            ..AccessConfig::default()
        },
        ..Config::default()
    })
    .await;

    let anonymous = server
        .get("/health")
        .await
        .text()
        .await
        .expect("health text");
    assert!(!anonymous.contains("witness"), "{anonymous}");
    let anonymous: serde_json::Value = serde_json::from_str(&anonymous).expect("health JSON");
    assert_eq!(anonymous["failed_sources"], json!([]));
    assert_eq!(anonymous["failed_sources_hidden"], 1);

    let keyed: serde_json::Value = server
        .client
        .get(server.url("/health"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("health JSON");
    let path = keyed["failed_sources"][0]["path"].as_str().expect("path");
    assert!(path.ends_with("witness-addresses.geojson"), "{keyed}");
    assert_eq!(keyed["failed_sources_hidden"], 0);
}

#[tokio::test]
async fn ogc_links_repeat_query_key() {
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    let access = AccessConfig {
        keys_file: Some(keys),
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    let document = server
        .json(&format!(
            "/ogc/collections/secret/tiles/WebMercatorQuad?key={key}"
        ))
        .await;

    let mut hrefs = Vec::new();
    let mut pending = vec![&document];
    while let Some(value) = pending.pop() {
        match value {
            serde_json::Value::Object(members) => {
                if let Some(href) = members.get("href").and_then(|v| v.as_str()) {
                    hrefs.push(href.to_owned());
                }
                pending.extend(members.values());
            }
            serde_json::Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }

    let own: Vec<_> = hrefs
        .iter()
        .filter(|href| href.starts_with(&server.url("")))
        .collect();
    assert!(own.len() >= 2, "links of the tileset: {hrefs:?}");
    for href in &own {
        assert!(href.contains(&format!("key={key}")), "{href}");
    }

    let template = own
        .iter()
        .find(|href| href.contains("{tileMatrix}"))
        .expect("a tile template");
    let tile = tessera::tile::lonlat_to_tile(126.5, 39.5, 8);
    let url = template
        .replace("{tileMatrix}", &tile.z.to_string())
        .replace("{tileRow}", &tile.y.to_string())
        .replace("{tileCol}", &tile.x.to_string());
    let response = server.client.get(&url).send().await.expect("tile");
    assert_eq!(response.status(), 200, "{url}");
}

#[tokio::test]
async fn server_group_opens_its_sources() {
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let team = append_new_key(&keys, &["team".to_owned()], None).expect("key");
    let other = append_new_key(&keys, &["others".to_owned()], None).expect("key");
    let access = AccessConfig {
        keys_file: Some(keys),
        groups: BTreeMap::from([("team".to_owned(), vec!["secret".to_owned()])]),
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    assert_eq!(
        status_with_key(&server, "/tiles/secret.json", &team).await,
        200
    );
    assert_eq!(
        status_with_key(&server, "/tiles/secret.json", &other).await,
        404
    );
    assert_eq!(
        status_with_key(&server, "/tiles/open.json", &other).await,
        200
    );
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let folder = tempfile::tempdir().expect("tempdir");
    let server = serve(folder.path(), AccessConfig::default()).await;
    for path in [
        "/",
        "/catalog",
        "/tiles/open.json",
        "/no/such/route",
        "/tiles/secret.json",
    ] {
        let response = server
            .client
            .get(server.url(path))
            .header("Origin", "http://example.test")
            .send()
            .await
            .expect("request");
        let headers = response.headers();
        let expected = [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
            ("cross-origin-resource-policy", "cross-origin"),
            ("access-control-allow-origin", "*"),
        ];
        for (name, value) in expected {
            assert_eq!(
                headers.get(name).map(|v| v.to_str().expect("ASCII")),
                Some(value),
                "{path}: {name}"
            );
        }
        let policy = headers["content-security-policy"].to_str().expect("ASCII");
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("http"), "no other origin: {policy}");
        let vary: Vec<&str> = headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(
            vary.iter().any(|v| v.contains("X-Tessera-Key")),
            "{path}: {vary:?}"
        );
    }
}

#[tokio::test]
async fn keyed_responses_are_private_to_caches() {
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    let access = AccessConfig {
        keys_file: Some(keys),
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    let public = server.get("/tiles/open.json").await;
    let cache = public.headers()["cache-control"].to_str().expect("ASCII");
    assert!(cache.starts_with("public"), "{cache}");

    let keyed = server
        .client
        .get(server.url("/tiles/open.json"))
        .header("X-Tessera-Key", &key)
        .send()
        .await
        .expect("request");
    let cache = keyed.headers()["cache-control"].to_str().expect("ASCII");
    assert!(cache.starts_with("private"), "{cache}");

    // `?key=` is taken by every route's parameter check, and passed on in tile URLs.
    let tilejson = server.json(&format!("/tiles/secret.json?key={key}")).await;
    let url = tilejson["tiles"][0].as_str().expect("tile URL");
    assert!(url.ends_with(&format!("?key={key}")), "{url}");
    let tile = server
        .get(&format!("/tiles/secret/0/0/0.pbf?key={key}"))
        .await;
    assert_eq!(tile.status(), 200);
    let unknown = server.get("/tiles/open/0/0/0.pbf?kee=1").await;
    assert_eq!(
        unknown.status(),
        400,
        "other unknown parameters are still rejected"
    );
}

#[tokio::test]
async fn rate_limit_per_address_answers_429() {
    let folder = tempfile::tempdir().expect("tempdir");
    let access = AccessConfig {
        rate_limit: RateLimit {
            per_address: 0.5,
            address_burst: 3,
            ..RateLimit::default()
        },
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    for request in 0..3 {
        assert_eq!(
            server.get("/health").await.status(),
            200,
            "request {request}"
        );
    }
    let limited = server.get("/health").await;
    assert_eq!(limited.status(), 429);
    let retry = limited.headers()["retry-after"].to_str().expect("ASCII");
    assert_eq!(retry, "2", "one token at 0.5 per second");
    assert_eq!(
        limited.headers()["x-content-type-options"],
        "nosniff",
        "security headers on 429 too"
    );
    let problem: serde_json::Value = limited.json().await.expect("problem JSON");
    assert_eq!(problem["limit"], "per_address");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("0.5 requests per second"),
        "{problem}"
    );
}

#[tokio::test]
async fn forwarded_for_is_trusted_only_when_set() {
    let folder = tempfile::tempdir().expect("tempdir");
    let limited = |trust| AccessConfig {
        trust_forwarded_for: trust,
        rate_limit: RateLimit {
            per_address: 0.1,
            address_burst: 1,
            ..RateLimit::default()
        },
        ..AccessConfig::default()
    };
    let from = |server: &TestServer, address: &'static str| {
        server
            .client
            .get(server.url("/health"))
            .header("X-Forwarded-For", address)
            .send()
    };

    let direct = serve(folder.path(), limited(false)).await;
    assert_eq!(
        from(&direct, "198.51.100.1")
            .await
            .expect("request")
            .status(),
        200
    );
    assert_eq!(
        from(&direct, "198.51.100.2")
            .await
            .expect("request")
            .status(),
        429,
        "a direct client cannot pick its address"
    );

    let proxied = serve(folder.path(), limited(true)).await;
    assert_eq!(
        from(&proxied, "198.51.100.1")
            .await
            .expect("request")
            .status(),
        200
    );
    assert_eq!(
        from(&proxied, "198.51.100.2")
            .await
            .expect("request")
            .status(),
        200
    );
    assert_eq!(
        from(&proxied, "198.51.100.1")
            .await
            .expect("request")
            .status(),
        429
    );
}

#[tokio::test]
async fn rate_limit_per_key() {
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    let access = AccessConfig {
        keys_file: Some(keys),
        rate_limit: RateLimit {
            per_key: 0.1,
            key_burst: 2,
            ..RateLimit::default()
        },
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    assert_eq!(status_with_key(&server, "/catalog", &key).await, 200);
    assert_eq!(status_with_key(&server, "/catalog", &key).await, 200);
    assert_eq!(status_with_key(&server, "/catalog", &key).await, 429);
    assert_eq!(
        server.get("/catalog").await.status(),
        200,
        "requests without the key go on"
    );
}

/// Returns the log written by every test of this binary, capturing it on first use.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buffer
    }))
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn key_never_reaches_the_log() {
    let log = captured_log();
    let folder = tempfile::tempdir().expect("tempdir");
    let keys = folder.path().join("keys.txt");
    let key = append_new_key(&keys, &["secret".to_owned()], None).expect("key");
    let access = AccessConfig {
        keys_file: Some(keys),
        ..AccessConfig::default()
    };
    let server = serve(folder.path(), access).await;
    let marker = "markerparameter";
    let response = server
        .get(&format!("/tiles/secret.json?key={key}&{marker}=1"))
        .await;
    assert_eq!(
        response.status(),
        400,
        "the unknown marker parameter is rejected"
    );
    assert_eq!(
        status_with_key(&server, "/tiles/secret/0/0/0.pbf", &key).await,
        200
    );
    let wrong = "tsk_0123456789abcdef";
    let _ = server.get(&format!("/catalog?key={wrong}")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let text = String::from_utf8_lossy(&log.lock().expect("log lock")).into_owned();
    assert!(
        text.contains(marker),
        "the request was logged: the check can fail"
    );
    assert!(!text.contains(&key), "the key is in the log");
    assert!(!text.contains(&key[4..20]), "part of the key is in the log");
    assert!(!text.contains(wrong), "a wrong key is in the log");
}

#[test]
fn key_command_prints_a_key_once() {
    let folder = tempfile::tempdir().expect("tempdir");
    let config = folder.path().join("tessera.toml");
    let mut file = std::fs::File::create(&config).expect("config");
    writeln!(file, "paths = []\n[access]\nkeys_file = \"keys.txt\"").expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "key",
            "new",
            "--groups",
            "camps,witnesses",
            "--label",
            "field team",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("run tessera key new");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout.lines().next().expect("a key line");
    assert!(key.starts_with("tsk_"), "{stdout}");
    let stored = std::fs::read_to_string(folder.path().join("keys.txt")).expect("keys file");
    assert!(!stored.contains(key), "only the hash is stored");
    assert!(stored.contains(&tessera::access::hash_key(key)), "{stored}");
    assert!(stored.contains("camps,witnesses field team"), "{stored}");

    let no_groups = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["key", "new", "--config"])
        .arg(&config)
        .output()
        .expect("run tessera key new");
    assert!(!no_groups.status.success());
    assert!(String::from_utf8_lossy(&no_groups.stderr).contains("--groups"));
}

#[tokio::test]
async fn viewer_requests_only_its_origin() {
    if !(common::have_program("node") && Path::new("/usr/bin/chromium").exists()) {
        eprintln!("SKIPPED: node or /usr/bin/chromium is missing");
        return;
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let styles = folder.path().join("styles");
    std::fs::create_dir(&styles).expect("styles folder");
    let original = common::repo().join("styles/tessera.json");
    std::fs::copy(&original, styles.join("tessera.json")).expect("copy style");
    let icons = styles.join("icons");
    std::fs::create_dir(&icons).expect("icons folder");
    for entry in std::fs::read_dir(common::repo().join("styles/icons")).expect("icons") {
        let path = entry.expect("icon").path();
        std::fs::copy(&path, icons.join(path.file_name().expect("name"))).expect("copy icon");
    }
    // A style that names other hosts: the server removes them before the viewer sees it.
    let mut foreign: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&original).expect("style")).expect("JSON");
    foreign["sources"]["basemap"] = json!({
        "type": "raster", "tileSize": 256,
        "tiles": ["https://tiles.invalid/{z}/{x}/{y}.png"],
    });
    let layers = foreign["layers"].as_array_mut().expect("layers");
    layers.insert(
        1,
        json!({ "id": "basemap", "type": "raster", "source": "basemap" }),
    );
    std::fs::write(styles.join("foreign.json"), foreign.to_string()).expect("style");

    let server = TestServer::start(Config {
        paths: vec![common::geodata("nk-prison-camps")],
        styles,
        ..Config::default()
    })
    .await;
    let script = common::repo().join("tests/browser/requests.mjs");
    for style in ["tessera", "foreign"] {
        let url = server.url(&format!("/?style={style}#7/40.3/127.3"));
        let script = script.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .arg(&script)
                .arg(&url)
                .output()
        })
        .await
        .expect("join")
        .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
                panic!(
                    "{error}: {stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let origin = format!("http://{}", server.address);
        let requests: Vec<&str> = summary["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        assert!(
            requests.iter().any(|url| url.contains("/tiles/")),
            "{style}: the viewer loaded tiles: {requests:?}"
        );
        let elsewhere: Vec<&&str> = requests
            .iter()
            .filter(|url| !url.starts_with(&format!("{origin}/")))
            .collect();
        assert!(
            elsewhere.is_empty(),
            "{style}: requests to other hosts: {elsewhere:?}"
        );
        assert!(output.status.success(), "{style}: {summary}");
        eprintln!("{style}: {} requests, all to {origin}", requests.len());
    }
}
