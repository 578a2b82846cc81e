//! A local S3 server for the tests: `moto_server` from the virtual environment that
//! `scripts/setup --test` creates (`target/venv`), on a loopback port, with a bucket and an
//! object uploaded through its HTTP interface.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate that includes this module uses a different part of it"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Returns a program of the test virtual environment: `$TESSERA_TEST_VENV/bin`, else
/// `$CARGO_TARGET_DIR/venv/bin`, else `target/venv/bin`.
pub fn venv_program(name: &str) -> Option<PathBuf> {
    let venvs = [
        std::env::var_os("TESSERA_TEST_VENV").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("venv")),
        Some(super::common::repo().join("target/venv")),
    ];
    let found = venvs
        .into_iter()
        .flatten()
        .map(|venv| venv.join("bin").join(name))
        .find(|program| program.is_file());
    if found.is_none() {
        assert!(
            !std::env::var("CI").is_ok_and(|value| value == "true"),
            "{name} is not installed, and CI=true requires the S3 tests: run them through scripts/test"
        );
        eprintln!("SKIPPED: {name} is not installed: run scripts/setup --test");
    }
    found
}

/// A `moto_server` process, killed when the test ends.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_moto(program: &PathBuf) -> Moto {
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

/// Creates `bucket` on the server at `endpoint` (`127.0.0.1:PORT`) and uploads `bytes` as
/// `key`.
pub async fn upload(endpoint: &str, bucket: &str, key: &str, bytes: Vec<u8>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let created = client
        .put(format!("http://{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        created.status().is_success(),
        "bucket: {}",
        created.status()
    );
    let uploaded = client
        .put(format!("http://{endpoint}/{bucket}/{key}"))
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert!(
        uploaded.status().is_success(),
        "upload: {}",
        uploaded.status()
    );
}
