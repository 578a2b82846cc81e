//! `tessera seed` and `tessera export`, run as the built binary: a seed killed mid-run
//! resumes where it stopped, and exported archives are read by Tessera, by GDAL's MBTiles
//! driver (`gdalinfo`, `ogrinfo`) and by the PMTiles reader from PyPI (`pmtiles-show`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, geodata, have_program};

fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env("RUST_LOG", "warn");
    command
}

fn succeeded(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The counts of a `seeded N tiles: R rendered, C already cached, D done by an earlier run,
/// E empty, F failed` line.
#[derive(Debug, PartialEq)]
struct Seeded {
    total: u64,
    rendered: u64,
    cached: u64,
    resumed: u64,
    failed: u64,
}

fn parse_seeded(stdout: &str) -> Seeded {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("seeded "))
        .unwrap_or_else(|| panic!("no report in {stdout:?}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 6, "{line}");
    Seeded {
        total: numbers[0],
        rendered: numbers[1],
        cached: numbers[2],
        resumed: numbers[3],
        failed: numbers[5],
    }
}

fn finished_chunks(state: &Path) -> usize {
    std::fs::read_to_string(state).map_or(0, |text| {
        text.lines()
            .filter(|line| line.starts_with("done "))
            .count()
    })
}

#[test]
fn seed_resumes_after_interruption() {
    let cache = tempfile::tempdir().expect("cache folder");
    let state = cache.path().join("camps.state");
    let seed = || {
        let mut command = tessera();
        command
            .arg("seed")
            .arg(geodata("nk-prison-camps"))
            .args(["--source", "camps", "--zooms", "5-12", "--workers", "1"])
            .arg("--cache")
            .arg(cache.path())
            .arg("--state")
            .arg(&state);
        command
    };

    let mut first = seed()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("seed starts");
    let started = Instant::now();
    while finished_chunks(&state) < 3 {
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "the first run finished no chunk in 120 s"
        );
        #[allow(
            clippy::disallowed_methods,
            reason = "a plain test thread polls the child process"
        )]
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_running = first.try_wait().expect("process state").is_none();
    first.kill().expect("kill the first run");
    first.wait().expect("first run ends");
    assert!(still_running, "the first run was killed mid-run");
    let done_before = finished_chunks(&state) as u64;

    let second = parse_seeded(&succeeded(
        &seed().output().expect("seed runs"),
        "second seed",
    ));
    assert_eq!(second.failed, 0);
    assert_eq!(
        second.resumed,
        done_before * 32,
        "finished chunks are skipped"
    );
    assert_eq!(
        second.resumed + second.cached + second.rendered,
        second.total,
        "every tile is accounted for: {second:?}"
    );
    assert!(
        second.rendered < second.total,
        "the second run did only the rest: {second:?}"
    );
    assert!(
        second.rendered > 0,
        "the first run was interrupted: {second:?}"
    );

    let third = parse_seeded(&succeeded(
        &seed().output().expect("seed runs"),
        "third seed",
    ));
    assert_eq!(third.rendered, 0, "{third:?}");
    assert_eq!(third.resumed, third.total, "{third:?}");
}

#[test]
fn seed_needs_a_cache() {
    let output = tessera()
        .arg("seed")
        .arg(geodata("nk-prison-camps"))
        .args(["--source", "camps", "--zooms", "5"])
        .output()
        .expect("seed runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[cache] path"), "{stderr}");
}

/// Exports `source` of `data` at `zooms` to `output` and returns the number of tiles written.
fn export(data: &Path, source: &str, zooms: &str, output: &Path) -> u64 {
    let stdout = succeeded(
        &tessera()
            .arg("export")
            .arg(data)
            .args(["--source", source, "--zooms", zooms, "-o"])
            .arg(output)
            .output()
            .expect("export runs"),
        "export",
    );
    let line = stdout
        .lines()
        .find(|line| line.starts_with("exported "))
        .unwrap_or_else(|| panic!("no report in {stdout:?}"));
    line.split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no tile count in {line:?}"))
}

struct Exports {
    _folder: tempfile::TempDir,
    raster_mbtiles: PathBuf,
    raster_pmtiles: PathBuf,
    vector_mbtiles: PathBuf,
    vector_pmtiles: PathBuf,
    raster_tiles: u64,
    vector_tiles: u64,
}

fn export_samples() -> Exports {
    let folder = tempfile::tempdir().expect("output folder");
    let path = |name: &str| folder.path().join(name);
    let raster = geodata("landsat7-bahamas");
    let vector = geodata("nk-prison-camps");
    let raster_tiles = export(&raster, "RGB.byte", "6-10", &path("bahamas.mbtiles"));
    assert_eq!(
        export(&raster, "RGB.byte", "6-10", &path("bahamas.pmtiles")),
        raster_tiles
    );
    let vector_tiles = export(&vector, "camps", "5-10", &path("camps.mbtiles"));
    assert_eq!(
        export(&vector, "camps", "5-10", &path("camps.pmtiles")),
        vector_tiles
    );
    assert!(
        raster_tiles > 10 && vector_tiles > 10,
        "{raster_tiles} and {vector_tiles} tiles"
    );
    Exports {
        raster_mbtiles: path("bahamas.mbtiles"),
        raster_pmtiles: path("bahamas.pmtiles"),
        vector_mbtiles: path("camps.mbtiles"),
        vector_pmtiles: path("camps.pmtiles"),
        raster_tiles,
        vector_tiles,
        _folder: folder,
    }
}

/// Returns every tile path of `source` at `zoom` that the server returns with 200, with its body.
async fn tiles_at(
    server: &TestServer,
    source: &str,
    zoom: u8,
    extension: &str,
) -> Vec<(String, Vec<u8>)> {
    let tilejson = server.json(&format!("/tiles/{source}.json")).await;
    let bounds: Vec<f64> = tilejson["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .map(|value| value.as_f64().expect("number"))
        .collect();
    let bbox = tessera::tile::Bbox::new(bounds[0], bounds[1], bounds[2], bounds[3]);
    let mut found = Vec::new();
    for tile in tessera::tile::tiles_in_bbox(&bbox, zoom) {
        let path = format!("{}/{}/{}.{extension}", tile.z, tile.x, tile.y);
        let response = server.get(&format!("/tiles/{source}/{path}")).await;
        if response.status() == 200 {
            found.push((path, response.bytes().await.expect("body").to_vec()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_served_by_tessera() {
    let exports = tokio::task::spawn_blocking(export_samples)
        .await
        .expect("exports");
    let archives = TestServer::serving(&[
        exports.raster_mbtiles.clone(),
        exports.raster_pmtiles.clone(),
        exports.vector_mbtiles.clone(),
        exports.vector_pmtiles.clone(),
    ])
    .await;
    let health = archives.json("/health").await;
    assert_eq!(health["failed_sources"], serde_json::json!([]), "{health}");
    let originals =
        TestServer::serving(&[geodata("landsat7-bahamas"), geodata("nk-prison-camps")]).await;

    let cases = [
        ("RGB.byte", "bahamas", "bahamas-2", "png", 9),
        ("camps", "camps", "camps-2", "pbf", 8),
    ];
    for (original, first, second, extension, zoom) in cases {
        let expected = tiles_at(&originals, original, zoom, extension).await;
        assert!(!expected.is_empty(), "{original} has tiles at zoom {zoom}");
        let source = originals.json(&format!("/tiles/{original}.json")).await;
        let maxzoom = source["maxzoom"].as_u64().expect("maxzoom").min(10);
        for archive in [first, second] {
            let tilejson = archives.json(&format!("/tiles/{archive}.json")).await;
            assert_eq!(tilejson["maxzoom"], maxzoom, "{archive}: {tilejson}");
            for (path, bytes) in &expected {
                let response = archives.get(&format!("/tiles/{archive}/{path}")).await;
                assert_eq!(response.status(), 200, "{archive} {path}");
                let body = response.bytes().await.expect("body");
                assert_eq!(
                    &body[..],
                    &bytes[..],
                    "{archive} {path} equals the source's tile"
                );
            }
        }
    }
    let camps = archives.json("/tiles/camps.json").await;
    assert_eq!(camps["vector_layers"][0]["id"], "camps", "{camps}");
}

#[test]
fn mbtiles_exports_read_by_gdal() {
    if !have_program("gdalinfo") || !have_program("ogrinfo") {
        eprintln!("SKIPPED: gdalinfo and ogrinfo are not installed: run scripts/setup --test");
        return;
    }
    let exports = export_samples();
    let raster = succeeded(
        &Command::new("gdalinfo")
            .arg(&exports.raster_mbtiles)
            .output()
            .expect("gdalinfo runs"),
        "gdalinfo",
    );
    assert!(raster.contains("Driver: MBTiles/MBTiles"), "{raster}");
    // The source's deepest zoom is 9, whose pixels are 305.75 m wide.
    assert!(raster.contains("Pixel Size = (305.748"), "{raster}");
    assert!(
        raster.contains("ColorInterp=Alpha"),
        "PNG tiles are read as RGBA: {raster}"
    );

    let vector = succeeded(
        &Command::new("ogrinfo")
            .args(["-so", "-al"])
            .arg(&exports.vector_mbtiles)
            .output()
            .expect("ogrinfo runs"),
        "ogrinfo",
    );
    assert!(
        vector.contains("using driver `MBTiles' successful"),
        "{vector}"
    );
    assert!(vector.contains("Layer name: camps"), "{vector}");
    let features = vector
        .lines()
        .find_map(|line| line.strip_prefix("Feature Count: "))
        .and_then(|count| count.trim().parse::<u64>().ok())
        .expect("a feature count");
    assert!(features > 0, "{vector}");
}

/// Runs Python from the test virtual environment, where the `pmtiles` package is.
fn venv_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TESSERA_TEST_VENV").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("venv")),
        Some(common::repo().join("target/venv")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|venv| venv.join("bin/pmtiles-show").is_file());
    if found.is_none() {
        eprintln!("SKIPPED: pmtiles-show is not installed: run scripts/setup --test");
    }
    found
}

#[test]
fn pmtiles_exports_read_by_pmtiles_tool() {
    let Some(venv) = venv_python() else {
        return;
    };
    let exports = export_samples();
    let cases = [
        (
            &exports.raster_pmtiles,
            exports.raster_tiles,
            "<TileType.PNG: 2>",
        ),
        (
            &exports.vector_pmtiles,
            exports.vector_tiles,
            "<TileType.MVT: 1>",
        ),
    ];
    for (archive, tiles, tile_type) in cases {
        let shown = succeeded(
            &Command::new(venv.join("bin/pmtiles-show"))
                .arg(archive)
                .output()
                .expect("pmtiles-show runs"),
            "pmtiles-show",
        );
        assert!(
            shown.contains(&format!("'tile_type': {tile_type}")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("'addressed_tiles_count': {tiles}")),
            "{shown}"
        );
        assert!(shown.contains("'clustered': True"), "{shown}");
        assert!(shown.contains("'version': 3"), "{shown}");
        assert!(shown.contains("'generator': 'tessera"), "{shown}");

        // The reader walks the root and leaf directories and reads every tile.
        let walk = "import sys\nfrom pmtiles.reader import MmapSource, all_tiles\n\
                    with open(sys.argv[1], 'r+b') as f:\n    \
                    tiles = list(all_tiles(MmapSource(f)))\n\
                    print(len(tiles), sum(1 for _, data in tiles if len(data) > 0))";
        let counted = succeeded(
            &Command::new(venv.join("bin/python"))
                .args(["-c", walk])
                .arg(archive)
                .output()
                .expect("python runs"),
            "reading every tile",
        );
        assert_eq!(
            counted.trim(),
            format!("{tiles} {tiles}"),
            "{}",
            archive.display()
        );
    }

    // One tile read by the tool equals the same tile of the MBTiles export, read with SQLite.
    let connection = rusqlite::Connection::open(&exports.raster_mbtiles).expect("open MBTiles");
    let (column, row, from_mbtiles): (u32, u32, Vec<u8>) = connection
        .query_row(
            "SELECT tile_column, tile_row, tile_data FROM tiles WHERE zoom_level = 8 LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("the MBTiles export has a zoom 8 tile");
    let y = (1 << 8) - 1 - row;
    let tile = Command::new(venv.join("bin/pmtiles-show"))
        .arg(&exports.raster_pmtiles)
        .args(["8".to_owned(), column.to_string(), y.to_string()])
        .output()
        .expect("pmtiles-show runs");
    let from_pmtiles = tile.stdout;
    assert!(from_pmtiles.starts_with(b"\x89PNG"), "a PNG tile");
    assert_eq!(from_pmtiles, from_mbtiles, "tile 8/{column}/{y}");
}
