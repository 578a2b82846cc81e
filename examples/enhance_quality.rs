//! Prints the enhancement quality table of `docs/benchmarks.md`: PSNR and SSIM of each
//! enlargement method on real images reduced x2 and x4 by area averaging, and on real pairs of
//! a file and its coarse copy.
//!
//! Usage: `cargo run --release --example enhance_quality [SHARED_DATA]`, where SHARED_DATA is
//! the public data folder (default `../shared/data`); rows of files not found there are
//! skipped with a message on standard error. With `TESSERA_SR_MODELS` set to the folder that
//! `scripts/fetch-esrgan-slim` fills, the ESRGAN-slim networks are scored too.

#![allow(clippy::print_stdout, reason = "the table is this program's output")]

use std::path::{Path, PathBuf};

use tessera::enhance::model::SuperResolution;
use tessera::enhance::quality::{Image, Row, model_row, pair_rows, read_image, reduction_rows};

/// Reads `path`, or reports it on standard error and returns `None`.
fn read(path: &Path) -> Option<Image> {
    match read_image(path) {
        Ok((image, _)) => Some(image),
        Err(error) => {
            eprintln!("skipped: {error}");
            None
        }
    }
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = std::env::args_os()
        .nth(1)
        .map_or_else(|| repo.join("../shared/data"), PathBuf::from);
    let mut rows: Vec<Row> = Vec::new();

    // Fine images reduced and enlarged back. The Landsat window lies inside the scene's
    // collar, so every pixel has data.
    let mut fine = Vec::new();
    if let Some(image) = read(&repo.join("geodata/sentinel2-29rkh/TCI.tif")) {
        fine.push(("Sentinel-2 TCI, 100 m", image));
    }
    if let Some(image) = read(&repo.join("geodata/landsat7-bahamas/RGB.byte.tif")) {
        fine.push(("Landsat 7, 300 m (window)", image.crop(240, 160, 320, 320)));
    }
    if let Some(image) =
        read(&shared.join("imagery-usgs-hro-15cm/201404_13SED190110_201404_0x1500m_CL_1.tif"))
    {
        fine.push(("USGS HRO aerial, 15 cm", image));
    }
    let networks: Vec<SuperResolution> = std::env::var_os("TESSERA_SR_MODELS")
        .map(PathBuf::from)
        .into_iter()
        .flat_map(|folder| ["x2", "x4"].map(|scale| folder.join(scale).join("model.json")))
        .filter_map(|path| match SuperResolution::load(&path) {
            Ok(network) => Some(network),
            Err(error) => {
                eprintln!("skipped: {error}");
                None
            }
        })
        .collect();
    for (name, image) in &fine {
        let opaque = image.rgba.chunks_exact(4).filter(|p| p[3] == 255).count();
        eprintln!(
            "{name}: {} x {}, {:.1} % with data",
            image.width,
            image.height,
            100.0 * opaque as f64 / f64::from(image.width * image.height)
        );
        for factor in [2, 4] {
            rows.extend(reduction_rows(name, image, factor));
            for network in networks.iter().filter(|n| n.scale() == factor as usize) {
                rows.push(model_row(name, image, network));
            }
        }
    }

    // Real pairs: a file and a coarse copy of it made by others.
    let pairs = [
        (
            "Landsat 7 from its tenth copy",
            "imagery-landsat7-rgb-byte/RGB.byte.tif",
            "imagery-landsat7-rgb-byte/rgb-byte-tenth.tif",
        ),
        (
            "Sentinel-2 TCI from its preview",
            "imagery-sentinel2-l2a-29rkh/TCI.tif",
            "imagery-sentinel2-l2a-29rkh/L2A_PVI.tif",
        ),
    ];
    for (name, fine, coarse) in pairs {
        match pair_rows(name, &shared.join(fine), &shared.join(coarse), None) {
            Ok(pair) => rows.extend(pair),
            Err(error) => eprintln!("skipped: {error}"),
        }
    }

    println!("| image | factor | method | PSNR dB | SSIM |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.2} | {} | {:.2} | {:.4} |",
            row.image, row.factor, row.method, row.score.psnr, row.score.ssim
        );
    }
}
