//! The `tessera` command as a user runs it: `info`, and `serve` with its start-up report.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{geodata, repo};

fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env("RUST_LOG", "warn");
    command
}

#[test]
fn info_describes_a_raster() {
    let output = tessera()
        .args(["info"])
        .arg(geodata("sentinel2-29rkh/TCI.tif"))
        .output()
        .expect("run tessera info");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    for expected in [
        "EPSG:32629",
        "1098 x 1098 pixels, 3 bands of uint8",
        "100.000 x 100.000 m per pixel",
        "549x549, 275x275",
        "nodata 0",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
}

#[test]
fn info_json_for_raster_vector_and_errors() {
    let output = tessera()
        .args(["info", "--json"])
        .arg(geodata("landsat7-bahamas/RGB.byte.tif"))
        .output()
        .expect("run");
    assert!(output.status.success());
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(info["epsg"], 32618);
    assert_eq!(info["bands"].as_array().expect("bands").len(), 3);
    let resolution = info["resolution_metres"][0].as_f64().expect("resolution");
    assert!((resolution - 300.04).abs() < 0.01, "{resolution}");

    let output = tessera()
        .args(["info", "--json"])
        .arg(geodata("nk-prison-camps/camps.geojson"))
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(info["kind"], "vector");
    assert_eq!(info["layers"][0]["features"], 24);

    let output = tessera()
        .args(["info", "/no/such/file.tif"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("/no/such/file.tif"),
        "the error names the file: {message}"
    );

    // A model and a collection folder are served but not described, so the error names the
    // route of their facts.
    let cases = [
        ("fzk-haus/fzk-haus.glb", "/models/{id}.json"),
        ("naip-timeseries", "/tiles/{id}.json"),
    ];
    for (relative, pointer) in cases {
        let output = tessera()
            .arg("info")
            .arg(geodata(relative))
            .output()
            .expect("run");
        assert!(!output.status.success(), "{relative}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(pointer), "{relative}: {message}");
    }
}

/// Starts `tessera serve` with `args` and returns the child and the printed address.
fn start_serve(args: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut child = tessera()
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tessera serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the address line");
    let address = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (child, address)
}

#[tokio::test]
async fn serve_without_arguments_serves_geodata() {
    let (mut child, address) = start_serve(&[]);
    let catalog: serde_json::Value = reqwest::get(format!("{address}/catalog"))
        .await
        .expect("catalog")
        .json()
        .await
        .expect("JSON");
    let ids: Vec<&str> = catalog["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    child.kill().expect("stop the server");
    child.wait().expect("reap the server");
    for id in ["TCI", "RGB.byte", "camps"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
}

#[tokio::test]
async fn serve_reports_unreadable_files_and_serves_the_rest() {
    let folder = tempfile::tempdir().expect("tempdir");
    std::fs::write(folder.path().join("broken.tif"), b"II*\0garbage").expect("write");
    std::fs::copy(
        geodata("sentinel2-29rkh/TCI.tif"),
        folder.path().join("good.tif"),
    )
    .expect("copy");
    let (mut child, address) = start_serve(&[folder.path().as_os_str()]);
    let health: serde_json::Value = reqwest::get(format!("{address}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON");
    child.kill().expect("stop the server");
    child.wait().expect("reap the server");
    let failed = health["failed_sources"].as_array().expect("failed sources");
    assert_eq!(failed.len(), 1, "{health}");
    assert!(
        failed[0]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("broken.tif")),
        "{health}"
    );
    assert_eq!(
        health["sources"], 2,
        "the image and its coverage layer: {health}"
    );
}

#[test]
fn serve_rejects_a_bad_configuration() {
    let folder = tempfile::tempdir().expect("tempdir");
    let config = folder.path().join("tessera.toml");
    std::fs::write(
        &config,
        "[sources.camps]\npath = \"camps.geojson\"\nbufer = 3\n",
    )
    .expect("write");
    std::fs::copy(
        geodata("nk-prison-camps/camps.geojson"),
        folder.path().join("camps.geojson"),
    )
    .expect("copy");
    let mut child = tessera()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    // Read standard error on a thread, so that a server which wrongly starts fails the test
    // after a time limit instead of hanging it.
    let stderr_pipe = child.stderr.take().expect("stderr");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr_pipe).read_line(&mut line);
        let _ = sender.send(line);
    });
    let stderr = receiver
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_default();
    child.kill().expect("stop");
    child.wait().expect("reap the server");
    assert!(
        stderr.contains("bufer"),
        "the unknown option is named: {stderr}"
    );
}
