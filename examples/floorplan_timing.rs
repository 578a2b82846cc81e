//! Times cutting a model into floorplans and encoding one tile of it.
//!
//! Usage: `cargo run --release --example floorplan_timing -- MODEL [OPTIONS.toml]`
//!
//! OPTIONS.toml contains the model's source options (at least `anchor`); without it the model is
//! placed at 0° 0°. Prints the best of five cuts, and the mean time of 200 encodings of the
//! z18 tile at the model's centre.

use std::path::PathBuf;
use std::time::Instant;

use tessera::floorplan::{FloorplanOptions, FloorplanSource};
use tessera::tile::lonlat_to_tile;

#[allow(clippy::print_stdout, reason = "the timing is this program's output")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let model = PathBuf::from(
        arguments
            .next()
            .ok_or("usage: floorplan_timing MODEL [OPTIONS.toml]")?,
    );
    let options: FloorplanOptions = match arguments.next() {
        Some(file) => toml::from_str(&std::fs::read_to_string(file)?)?,
        None => toml::from_str("anchor = [0.0, 0.0]")?,
    };

    let mut best = f64::INFINITY;
    let mut source = None;
    for _ in 0..5 {
        let start = Instant::now();
        source = Some(FloorplanSource::open(&model, &options)?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    let source = source.ok_or("no run")?;

    let bounds = source.vector().bounds_lonlat();
    let centre = (
        f64::midpoint(bounds.min_x, bounds.max_x),
        f64::midpoint(bounds.min_y, bounds.max_y),
    );
    let tile = lonlat_to_tile(centre.0, centre.1, 18);
    let runs = 200;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..runs {
        bytes = source.vector().tile(tile)?.map_or(0, |tile| tile.len());
    }
    let per_tile = start.elapsed().as_secs_f64() / f64::from(runs);

    let model_json = source.model_json("model", "");
    println!(
        "{}: {} triangles, {} levels; cut in {:.1} ms (best of 5); z18 tile {tile}: {bytes} bytes in {:.3} ms",
        model.display(),
        model_json["triangles"],
        source.levels().len(),
        best * 1000.0,
        per_tile * 1000.0,
    );
    Ok(())
}
