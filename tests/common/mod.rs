//! Shared set-up for the integration tests: a real Tessera server on `127.0.0.1:0` over real
//! files, and the public data folder beside the repository.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part of this shared module"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tessera::config::Config;
use tessera::server::{self, AppState};

/// A server running on a loopback port until the test ends.
pub struct TestServer {
    pub address: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
}

impl TestServer {
    /// Serves `config` on a free loopback port.
    pub async fn start(config: Config) -> Self {
        tessera::logging::route_gdal_messages();
        let state = AppState::load(config).await.expect("worker pool starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let serving = state.clone();
        tokio::spawn(async move { server::serve(listener, serving).await });
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        Self {
            address,
            state,
            client,
        }
    }

    /// Serves the sample data of `geodata/`: the Sentinel-2 and Landsat 7 scenes and the camps.
    pub async fn sample() -> Self {
        let folders = ["sentinel2-29rkh", "landsat7-bahamas", "nk-prison-camps"];
        Self::serving(&folders.map(geodata)).await
    }

    /// Serves the given files and folders with default options.
    pub async fn serving(paths: &[PathBuf]) -> Self {
        Self::start(Config {
            paths: paths.to_vec(),
            ..Config::default()
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the server")
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }
}

/// Returns the repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns a path in the sample data that the first command serves.
pub fn geodata(relative: &str) -> PathBuf {
    repo().join("geodata").join(relative)
}

/// Returns a file of the public data folder beside the repository (`../shared/data`, or
/// `TESSERA_SHARED_DATA`), or `None` with a message when it is absent, as in a user's clone.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let root = std::env::var_os("TESSERA_SHARED_DATA")
        .map_or_else(|| repo().join("../shared/data"), PathBuf::from);
    let path = root.join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent; this test needs the shared public data set",
            path.display()
        );
        None
    }
}

/// Copies `files` into a new temporary folder, so that a test serves exactly them.
pub fn folder_with(files: &[&Path]) -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("tempdir");
    for file in files {
        let name = file.file_name().expect("file name");
        std::fs::copy(file, folder.path().join(name)).expect("copy test file");
    }
    folder
}

/// Decodes a PNG, JPEG or WebP body into RGBA.
pub fn decode_image(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes)
        .expect("a decodable image")
        .to_rgba8()
}

/// Returns whether a command-line program is on the PATH.
pub fn have_program(name: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Returns whether poppler's `pdftotext` and `pdfimages` are installed, and prints SKIPPED
/// when they are not. In CI their absence is a failure: `scripts/setup --test` installs them.
pub fn poppler_installed() -> bool {
    let installed = ["pdftotext", "pdfimages"].into_iter().all(have_program);
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "poppler-utils is missing in CI: run scripts/setup --test"
        );
        eprintln!("SKIPPED: poppler-utils is not installed; run scripts/setup --test");
    }
    installed
}

/// Returns the SHA-256 of the file at `path` in lower-case hex, as PDF provenance blocks
/// print it.
pub fn sha256_hex(path: &Path) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;

    let bytes = std::fs::read(path).expect("read the served file");
    sha2::Sha256::digest(&bytes)
        .iter()
        .fold(String::new(), |mut text, byte| {
            write!(text, "{byte:02x}").expect("writing to a String cannot fail");
            text
        })
}
