//! Times 1024 × 768 PNG static maps of the sample style over the sample data.
//!
//! Usage: `cargo run --release --example static_map_timing`, from the repository root.
//!
//! Loads `geodata/` as `tessera serve` does, renders each view once to warm the caches, then
//! prints the median and best of ten renders (scene, rasterisation and PNG encoding) and the
//! median scene-building time alone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tessera::config::Config;
use tessera::map::{Limits, MapOptions, MapRequest, OutputFormat, View};
use tessera::server::AppState;

const RUNS: usize = 10;

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[allow(clippy::print_stdout, reason = "the timing is this program's output")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        paths: vec![PathBuf::from("geodata")],
        ..Config::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let state = runtime.block_on(AppState::load(config))?;
    let context = tessera::map::MapContext {
        catalog: state.catalog.clone(),
        glyphs: state.glyphs.clone(),
        sprites: state.sprites.clone(),
        styles: PathBuf::from("styles"),
        runtime: runtime.handle().clone(),
    };
    let limits = Limits {
        max_pixels: u64::MAX,
        timeout: Duration::from_mins(10),
    };
    let views = [
        ("camps, North Korea, z6.5", 127.0, 39.5, 6.5),
        ("Sentinel-2 imagery, z9", -11.43, 24.8, 9.0),
    ];
    for (name, lon, lat, zoom) in views {
        let request = MapRequest {
            style: "tessera".to_owned(),
            view: View::Centre { lon, lat, zoom },
            width: 1024,
            height: 768,
            ratio: 1,
            format: OutputFormat::Png,
            options: MapOptions {
                legend: true,
                north: true,
                ..MapOptions::for_format(OutputFormat::Png)
            },
        };
        tessera::map::render(&context, &request, &limits, Instant::now())?;
        let mut totals = Vec::with_capacity(RUNS);
        let mut scenes = Vec::with_capacity(RUNS);
        let mut size = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            tessera::map::build_scene(&context, &request, start + limits.timeout)?;
            scenes.push(start.elapsed().as_secs_f64() * 1000.0);
            let start = Instant::now();
            let rendered = tessera::map::render(&context, &request, &limits, start)?;
            totals.push(start.elapsed().as_secs_f64() * 1000.0);
            size = rendered.bytes.len();
        }
        let best = totals.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{name}: 1024x768 PNG, median {:.1} ms, best {best:.1} ms (scene alone {:.1} ms), {size} bytes",
            median(&mut totals),
            median(&mut scenes)
        );
    }
    Ok(())
}
