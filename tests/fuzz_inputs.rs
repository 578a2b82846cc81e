//! Runs every kept fuzz input in `tests/data/fuzz/{target}/` through the body of its fuzz
//! target, on stable Rust: seeds, and each input that once crashed a target. A panic fails the
//! test; `docs/fuzzing.md` lists the findings.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

/// Returns the kept inputs of `target`, sorted by name.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("list {}: {error}", folder.display()))
        .map(|entry| entry.expect("folder entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", folder.display());
    files
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(&file).expect("read an input");
            (file, bytes)
        })
        .collect()
}

/// Runs `body` on each input of `target`, printing the file first so that a panic names it.
fn run(target: &str, body: fn(&[u8])) {
    for (file, bytes) in inputs(target) {
        eprintln!("{target}: {}", file.display());
        body(&bytes);
    }
    let _ = std::fs::remove_dir_all(harness::scratch_folder());
}

/// Passes the input as text, as libFuzzer does for `&str` targets: invalid UTF-8 is skipped.
fn as_text(body: fn(&str)) -> impl Fn(&[u8]) {
    move |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            body(text);
        }
    }
}

#[test]
fn config_inputs() {
    for (file, bytes) in inputs("config") {
        eprintln!("config: {}", file.display());
        as_text(harness::config)(&bytes);
    }
}

#[test]
fn tile_request_inputs() {
    for (file, bytes) in inputs("tile_request") {
        eprintln!("tile_request: {}", file.display());
        as_text(harness::tile_request)(&bytes);
    }
    let _ = std::fs::remove_dir_all(harness::scratch_folder());
}

#[test]
fn vector_geojson_inputs() {
    run("vector_geojson", harness::vector_geojson);
}

#[test]
fn density_points_inputs() {
    run("density_points", harness::density_points);
}

#[test]
fn gltf_inputs() {
    run("gltf", harness::gltf);
}
