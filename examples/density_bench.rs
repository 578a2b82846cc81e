//! Measures density tile latency on generated and real point sets.
//!
//! ```sh
//! cargo run --release --example density_bench -- [POINTS] [SHARED_DATA_FOLDER]
//! ```
//!
//! Generates POINTS clustered points (default 1,000,000) with dates and two-level categories
//! into a temporary CSV and loads it as a density source. Then renders distinct tiles that
//! contain data at zooms 0 to 14, without and with a filter, as MVT cells and as heat maps.
//! Each tile is rendered once, without the source's tile cache. Prints p50 and p99
//! per kind of request. With SHARED_DATA_FOLDER, also measures the Washington Post
//! shootings and the NKPD export found there.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark program reports on standard output"
)]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Deserialize;
use tessera::density::{DensityOptions, DensitySource, parse_query};
use tessera::format::TileFormat;
use tessera::tile::{TileCoord, lonlat_to_tile};

/// A small xorshift generator, so every run measures the same points.
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Returns a normally distributed value (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-12);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Writes `count` points in 60 clusters of different spread over the world between 60° S
/// and 70° N, plus a tenth spread evenly.
fn generate(path: &Path, count: usize) -> std::io::Result<Vec<(f64, f64)>> {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let centres: Vec<(f64, f64, f64)> = (0..60)
        .map(|_| {
            let lon = random.next() * 340.0 - 170.0;
            let lat = random.next() * 130.0 - 60.0;
            let spread = 0.02 + random.next() * random.next() * 3.0;
            (lon, lat, spread)
        })
        .collect();
    let kinds = [
        "Torture",
        "Detention::Arbitrary",
        "Detention::Incommunicado",
        "Labour::Forced",
        "Health",
        "Life::Execution",
        "Life::Custody",
    ];
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(file, "lat,lon,date,kind")?;
    let mut samples = Vec::new();
    for i in 0..count {
        let (lon, lat) = if i % 10 == 0 {
            (random.next() * 340.0 - 170.0, random.next() * 130.0 - 60.0)
        } else {
            let (lon, lat, spread) = centres[(random.next() * random.next() * 60.0) as usize];
            (
                lon + random.normal() * spread,
                (lat + random.normal() * spread).clamp(-80.0, 80.0),
            )
        };
        let year = 1990 + (random.next() * 34.0) as u32;
        let month = 1 + (random.next() * 12.0) as u32;
        let date = if i % 4 == 0 {
            format!("{year}")
        } else {
            format!("{year}-{month:02}")
        };
        let kind = kinds[(random.next() * kinds.len() as f64) as usize];
        writeln!(file, "{lat:.6},{lon:.6},{date},{kind}")?;
        if i % 997 == 0 {
            samples.push((lon, lat));
        }
    }
    file.flush()?;
    Ok(samples)
}

/// Returns the p50 and p99 of durations in milliseconds.
fn percentiles(mut millis: Vec<f64>) -> (f64, f64) {
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Renders each tile once without the tile cache (with `filter` as query pairs) and prints
/// p50 and p99, over all tiles and over the tiles of zooms 0 to 4, which hold the most points.
fn measure(
    source: &DensitySource,
    label: &str,
    tiles: &[TileCoord],
    format: TileFormat,
    filter: &[(&str, &str)],
) {
    let pairs: Vec<(String, String)> = filter
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (filter, heat) = parse_query(source, &pairs).expect("the benchmark's filter is valid");
    let mut all = Vec::with_capacity(tiles.len());
    let mut low = Vec::new();
    let mut empty = 0;
    for &tile in tiles {
        let started = Instant::now();
        let rendered = source
            .render(tile, 1, format, &filter, heat)
            .expect("tile renders");
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        empty += usize::from(rendered.is_none());
        all.push(millis);
        if tile.z <= 4 {
            low.push(millis);
        }
        std::hint::black_box(rendered);
    }
    let (p50, p99) = percentiles(all);
    let (low_p50, low_p99) = percentiles(low);
    let query = if filter.canonical.is_empty() {
        "none"
    } else {
        filter.canonical.as_str()
    };
    println!(
        "| {label} | {format} | {query} | {} ({empty} empty) | {p50:.2} | {p99:.2} | {low_p50:.2} | {low_p99:.2} |",
        tiles.len()
    );
}

/// Picks distinct tiles that contain one of `samples`, at every zoom from 0 to 14.
fn tiles_with_data(samples: &[(f64, f64)], per_zoom: usize) -> Vec<TileCoord> {
    let mut tiles = Vec::new();
    for z in 0..=14 {
        let mut at_zoom: Vec<TileCoord> = samples
            .iter()
            .map(|&(lon, lat)| lonlat_to_tile(lon, lat, z))
            .collect();
        at_zoom.sort();
        at_zoom.dedup();
        let step = at_zoom.len().div_ceil(per_zoom).max(1);
        tiles.extend(at_zoom.into_iter().step_by(step));
    }
    tiles
}

fn open(path: &Path, options: &str) -> DensitySource {
    let table: toml::Table = toml::from_str(options).expect("valid TOML");
    let options = DensityOptions::deserialize(toml::Value::Table(table)).expect("valid options");
    let started = Instant::now();
    let source = DensitySource::open(path, options).expect("the points load");
    println!(
        "loaded {} points of {} in {:.2} s",
        source.loaded().points.len(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    source
}

fn run(source: &DensitySource, label: &str, samples: &[(f64, f64)], filter: &[(&str, &str)]) {
    let tiles = tiles_with_data(samples, 40);
    println!(
        "\n| set | format | filter | tiles | p50 ms | p99 ms | z0-4 p50 ms | z0-4 p99 ms |\n|---|---|---|---|---|---|---|---|"
    );
    measure(source, label, &tiles, TileFormat::Mvt, &[]);
    measure(source, label, &tiles, TileFormat::Mvt, filter);
    measure(source, label, &tiles, TileFormat::Png, &[]);
    measure(source, label, &tiles, TileFormat::Png, filter);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("POINTS is a number"));
    let shared = args.next();
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("points.csv");
    let samples = generate(&path, count).expect("writing the points");
    let options = "kind = \"points\"\nlatitude = \"lat\"\nlongitude = \"lon\"\ndate = \"date\"\ncategories = \"kind\"\n";
    let source = open(&path, options);
    run(
        &source,
        &format!("{count} generated"),
        &samples,
        &[
            ("from", "2000"),
            ("to", "2009-06"),
            ("category", "Detention"),
        ],
    );

    let Some(shared) = shared else {
        return;
    };
    let wapo = Path::new(&shared).join("wapo-fatal-force-v2/fatal-police-shootings-data.csv");
    if wapo.exists() {
        let options = "kind = \"points\"\nlatitude = \"latitude\"\nlongitude = \"longitude\"\ndate = \"date\"\ncategories = [\"threat_type\", \"armed_with\"]\n";
        let source = open(&wapo, options);
        let samples = read_locations(&wapo);
        run(
            &source,
            "Washington Post shootings",
            &samples,
            &[("from", "2020"), ("category", "threat_type::attack")],
        );
    }
    let nkpd = Path::new(&shared).join("nkpd-korea-future-export/NKPD_detainees.csv");
    if nkpd.exists() {
        let source = open(&nkpd, NKPD_OPTIONS);
        let samples: Vec<(f64, f64)> = source
            .loaded()
            .facilities
            .iter()
            .filter(|facility| facility.position.is_some())
            .filter_map(|facility| facility_lonlat(&nkpd, &facility.key))
            .collect();
        run(
            &source,
            "NKPD detention events",
            &samples,
            &[
                ("from", "2000"),
                ("to", "2009"),
                ("category", "Torture & CID"),
            ],
        );
    }
}

/// Options of the NKPD export: three events per row, joined to facilities by name.
const NKPD_OPTIONS: &str = r#"
kind = "points"
facility = "Related Penal Facilities"
facility_separator = "|"
category_separator = "|"
category_suffix = "_"
events = [
  { date = "Event 1 Date Range", categories = "Event 1 Violations" },
  { date = "Event 2 Date Range", categories = "Event 2 Violations" },
  { date = "Event 3 Date Range", categories = "Event 3 Violation" },
]
[facilities]
path = "NKPD_penal_facilities.csv"
key = "Title"
lat_lon = "Geolocation"
"#;

/// Reads the `lat|lon` location of the NKPD facility `key` beside the detainees file.
fn facility_lonlat(detainees: &Path, key: &str) -> Option<(f64, f64)> {
    let path = detainees.with_file_name("NKPD_penal_facilities.csv");
    let mut reader = csv::Reader::from_path(path).ok()?;
    reader.records().filter_map(Result::ok).find_map(|record| {
        if record.get(0)? != key {
            return None;
        }
        let (lat, lon) = record.get(3)?.split_once('|')?;
        Some((lon.trim().parse().ok()?, lat.trim().parse().ok()?))
    })
}

/// Reads the `longitude` and `latitude` columns of a CSV file, skipping empty values.
fn read_locations(path: &Path) -> Vec<(f64, f64)> {
    let mut reader = csv::Reader::from_path(path).expect("the CSV opens");
    let headers = reader.headers().expect("a header row").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|header| header == name)
            .expect("the column exists")
    };
    let (lon, lat) = (column("longitude"), column("latitude"));
    reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|record| {
            Some((
                record.get(lon)?.parse().ok()?,
                record.get(lat)?.parse().ok()?,
            ))
        })
        .collect()
}
