//! The test database: its URL, a private schema per test, data loaded with ogr2ogr, and MVT
//! decoding for comparing tiles.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part of this shared module"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use geozero::mvt::{Message as _, Tile, tile};

/// Environment variable with the URL of a PostGIS database that the tests may write to.
/// `scripts/test` starts one with `scripts/postgis start` and sets it.
pub const DATABASE_URL_VARIABLE: &str = "TESSERA_TEST_DATABASE_URL";

/// Returns the test database's URL. Without one, a test fails when `CI=true` (the suite must
/// run there) and prints SKIPPED otherwise.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|value| value == "true") => panic!(
            "{DATABASE_URL_VARIABLE} is not set, and CI=true requires the PostGIS tests: run \
             them through scripts/test, or start a database with `scripts/postgis start` and \
             export its URL as {DATABASE_URL_VARIABLE}"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: set {DATABASE_URL_VARIABLE} (scripts/postgis start prints a URL)"
            );
            None
        }
    }
}

/// A schema of its own for one test, dropped with its tables when the test ends.
pub struct Schema {
    pub url: String,
    pub name: String,
    client: tokio_postgres::Client,
}

impl Schema {
    /// Creates the schema `name`, after dropping any left over from an earlier run.
    pub async fn create(url: &str, name: &str) -> Self {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("the test database accepts connections");
        tokio::spawn(connection);
        let schema = Self {
            url: url.to_owned(),
            name: name.to_owned(),
            client,
        };
        schema
            .execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .await;
        schema
    }

    /// Runs SQL statements, which may be several separated by semicolons.
    pub async fn execute(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("SQL failed: {error:?}\n{sql}"));
    }

    /// Returns the client of the schema's connection.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Loads `file` into `table` of this schema with ogr2ogr, in `srid`, with the geometry
    /// column `geom` of `geometry_type` (`POINT`, `MULTIPOLYGON`, …).
    pub fn load(&self, file: &Path, table: &str, srid: u32, geometry_type: &str) {
        let output = Command::new("ogr2ogr")
            .args(["-f", "PostgreSQL"])
            .arg(format!("PG:{}", self.url))
            .arg(file)
            .args(["-nln", &format!("{}.{table}", self.name)])
            .args(["-t_srs", &format!("EPSG:{srid}")])
            .args(["-nlt", geometry_type, "-lco", "GEOMETRY_NAME=geom"])
            .arg("-overwrite")
            .output()
            .expect("ogr2ogr runs (gdal-bin)");
        assert!(
            output.status.success(),
            "ogr2ogr failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Returns the text of an MVT value, with numbers as `f64` text so that an integer and a
/// double of the same value compare equal.
pub fn value_text(value: &tile::Value) -> String {
    if let Some(text) = &value.string_value {
        return format!("{text:?}");
    }
    let number = value
        .double_value
        .or(value.float_value.map(f64::from))
        .or(value.int_value.map(|v| v as f64))
        .or(value.uint_value.map(|v| v as f64))
        .or(value.sint_value.map(|v| v as f64));
    match (number, value.bool_value) {
        (Some(number), _) => number.to_string(),
        (None, Some(flag)) => flag.to_string(),
        (None, None) => "null".to_owned(),
    }
}

/// A decoded feature: its attributes by name, geometry type and geometry as sequences of tile
/// coordinates (one per point, line or ring).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub attributes: BTreeMap<String, String>,
    pub geometry_type: i32,
    pub parts: Vec<Vec<(i64, i64)>>,
}

impl Decoded {
    /// Returns the bounding box of all coordinates: min x, min y, max x, max y.
    pub fn bounds(&self) -> (i64, i64, i64, i64) {
        let points = self.parts.iter().flatten();
        let mut bounds = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
        for &(x, y) in points {
            bounds = (
                bounds.0.min(x),
                bounds.1.min(y),
                bounds.2.max(x),
                bounds.3.max(y),
            );
        }
        bounds
    }

    /// Returns the attributes as one line of text, which identifies a feature in these tests.
    pub fn key(&self) -> String {
        self.attributes
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Decodes every feature of `layer` in `bytes`.
pub fn decode_layer(bytes: &[u8], layer: &str) -> Vec<Decoded> {
    let tile = Tile::decode(bytes).expect("valid MVT");
    let Some(layer) = tile.layers.iter().find(|l| l.name == layer) else {
        let names: Vec<&str> = tile.layers.iter().map(|l| l.name.as_str()).collect();
        panic!("no layer {layer:?} in the tile, which has {names:?}");
    };
    assert_eq!(layer.extent, Some(4096), "layer {}", layer.name);
    layer
        .features
        .iter()
        .map(|feature| Decoded {
            attributes: feature
                .tags
                .chunks_exact(2)
                .map(|pair| {
                    (
                        layer.keys[pair[0] as usize].clone(),
                        value_text(&layer.values[pair[1] as usize]),
                    )
                })
                .collect(),
            geometry_type: feature.r#type.unwrap_or_default(),
            parts: decode_geometry(&feature.geometry),
        })
        .collect()
}

/// Decodes MVT geometry commands into parts: a new part starts at each MoveTo.
fn decode_geometry(commands: &[u32]) -> Vec<Vec<(i64, i64)>> {
    let mut parts: Vec<Vec<(i64, i64)>> = Vec::new();
    let (mut x, mut y) = (0_i64, 0_i64);
    let mut index = 0;
    let unzigzag = |value: u32| i64::from((value >> 1) as i32 ^ -((value & 1) as i32));
    while index < commands.len() {
        let command = commands[index] & 0x7;
        let count = (commands[index] >> 3) as usize;
        index += 1;
        match command {
            1 | 2 => {
                for _ in 0..count {
                    x += unzigzag(commands[index]);
                    y += unzigzag(commands[index + 1]);
                    index += 2;
                    if command == 1 || parts.is_empty() {
                        parts.push(Vec::new());
                    }
                    parts.last_mut().expect("a part").push((x, y));
                }
            }
            7 => {}
            other => panic!("unknown MVT command {other}"),
        }
    }
    parts
}
