//! Tests of `VectorSource` against real files, decoding the tiles it encodes.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use gdal::DriverManager;
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use geozero::mvt::tile::{Feature, Layer};
use geozero::mvt::{Message, Tile};

use super::*;

// ---- Decoding helpers ----

fn decode(bytes: &[u8]) -> Tile {
    Tile::decode(bytes).expect("tile bytes decode as MVT")
}

fn layer<'a>(tile: &'a Tile, name: &str) -> &'a Layer {
    tile.layers
        .iter()
        .find(|layer| layer.name == name)
        .unwrap_or_else(|| panic!("tile has no layer {name}"))
}

#[derive(Debug, Clone, PartialEq)]
enum TagValue {
    String(String),
    Number(f64),
    Bool(bool),
}

fn tags(layer: &Layer, feature: &Feature) -> BTreeMap<String, TagValue> {
    feature
        .tags
        .chunks(2)
        .map(|pair| {
            let key = layer.keys[pair[0] as usize].clone();
            let value = &layer.values[pair[1] as usize];
            let value = if let Some(text) = &value.string_value {
                TagValue::String(text.clone())
            } else if let Some(number) = value.double_value {
                TagValue::Number(number)
            } else if let Some(number) = value.float_value {
                TagValue::Number(f64::from(number))
            } else if let Some(number) = value.int_value.or(value.sint_value) {
                TagValue::Number(number as f64)
            } else if let Some(number) = value.uint_value {
                TagValue::Number(number as f64)
            } else if let Some(flag) = value.bool_value {
                TagValue::Bool(flag)
            } else {
                panic!("tag {key} has no value");
            };
            (key, value)
        })
        .collect()
}

fn feature_named<'a>(layer: &'a Layer, name: &str) -> &'a Feature {
    layer
        .features
        .iter()
        .find(|feature| tags(layer, feature).get("name") == Some(&TagValue::String(name.into())))
        .unwrap_or_else(|| panic!("layer {} has no feature named {name}", layer.name))
}

/// Decodes MVT geometry commands into paths: one per MoveTo, with the LineTo points that
/// follow it. Points give one path per point, rings are returned without a closing point.
fn paths(feature: &Feature) -> Vec<Vec<(i32, i32)>> {
    let mut paths: Vec<Vec<(i32, i32)>> = Vec::new();
    let (mut x, mut y) = (0_i32, 0_i32);
    let mut commands = feature.geometry.iter().copied();
    let zigzag = |value: u32| ((value >> 1) as i32) ^ -((value & 1) as i32);
    while let Some(command) = commands.next() {
        let (id, count) = (command & 7, command >> 3);
        match id {
            1 | 2 => {
                for _ in 0..count {
                    x += zigzag(commands.next().expect("parameter"));
                    y += zigzag(commands.next().expect("parameter"));
                    if id == 1 {
                        paths.push(vec![(x, y)]);
                    } else {
                        paths.last_mut().expect("LineTo after MoveTo").push((x, y));
                    }
                }
            }
            7 => assert_eq!(count, 1, "ClosePath count"),
            _ => panic!("unknown command {id}"),
        }
    }
    paths
}

/// Twice the signed ring area by the MVT 2.1 formula: positive for exterior rings.
fn ring_area(ring: &[(i32, i32)]) -> i64 {
    (0..ring.len())
        .map(|index| {
            let (x0, y0) = ring[index];
            let (x1, y1) = ring[(index + 1) % ring.len()];
            i64::from(x0) * i64::from(y1) - i64::from(x1) * i64::from(y0)
        })
        .sum()
}

const GEOM_POINT: i32 = 1;
const GEOM_LINE: i32 = 2;
const GEOM_POLYGON: i32 = 3;

// ---- Tile maths written independently of the module under test ----

/// Returns the tile at zoom `z` that contains (lon, lat), and the point's position in it in
/// units of `extent`.
fn locate(lon: f64, lat: f64, z: u8, extent: f64) -> (TileCoord, (f64, f64)) {
    let n = f64::from(1_u32 << z);
    let column = (lon + 180.0) / 360.0 * n;
    let lat = lat.to_radians();
    let row = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * n;
    let tile = TileCoord {
        z,
        x: column.floor() as u32,
        y: row.floor() as u32,
    };
    let position = (
        (column - column.floor()) * extent,
        (row - row.floor()) * extent,
    );
    (tile, position)
}

// ---- Fixtures ----

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vector")
        .join(name)
}

fn write_geojson(dir: &tempfile::TempDir, name: &str, features: &[String]) -> PathBuf {
    let path = dir.path().join(name);
    let text = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    );
    std::fs::write(&path, text).expect("write test GeoJSON");
    path
}

fn geojson_feature(name: &str, geometry: &str) -> String {
    format!(r#"{{"type":"Feature","properties":{{"name":"{name}"}},"geometry":{geometry}}}"#)
}

fn open_default(path: &Path) -> VectorSource {
    VectorSource::open(path, VectorOptions::default())
        .unwrap_or_else(|error| panic!("open {}: {error}", path.display()))
}

fn tile_bytes(source: &VectorSource, tile: TileCoord) -> Vec<u8> {
    source
        .tile(tile)
        .expect("tile encodes")
        .unwrap_or_else(|| panic!("tile {tile:?} is empty"))
}

/// Returns the camps file from the repository's `geodata/`.
fn camps_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("geodata/nk-prison-camps/camps.geojson");
    path.exists().then_some(path)
}

// ---- The camps file ----

const CAMP_14: (f64, f64) = (126.062_155_6, 39.571_705_8);

#[test]
fn camps_load_with_typed_fields() {
    let Some(path) = camps_path() else {
        eprintln!(
            "SKIPPED camps_load_with_typed_fields: no camps.geojson in geodata/ or the shared data directory"
        );
        return;
    };
    let source = open_default(&path);
    let layers = source.layers();
    assert_eq!(layers.len(), 1);
    let info = &layers[0];
    assert_eq!(info.name, "camps");
    assert_eq!(info.feature_count, 24);
    assert_eq!(info.skipped, 0);
    assert_eq!(info.repaired, 0);
    assert_eq!(info.geometry_type, "Point");
    assert_eq!(info.fields.get("name"), Some(&FieldType::String));
    assert_eq!(info.fields.get("kind"), Some(&FieldType::String));
    assert_eq!(info.fields.get("prisoners"), Some(&FieldType::Number));
    assert_eq!(info.fields.get("sources"), Some(&FieldType::String));

    let bounds = source.bounds_lonlat();
    assert!(bounds.min_x <= CAMP_14.0, "{bounds:?}");
    assert!(CAMP_14.0 <= bounds.max_x, "{bounds:?}");
    assert!(bounds.min_y <= CAMP_14.1, "{bounds:?}");
    assert!(CAMP_14.1 <= bounds.max_y, "{bounds:?}");
    // All camps are in North Korea, between about 124°E and 131°E.
    assert!(bounds.min_x > 124.0, "{bounds:?}");
    assert!(bounds.max_x < 131.0, "{bounds:?}");
}

#[test]
fn camp_14_in_its_z10_tile() {
    let Some(path) = camps_path() else {
        eprintln!(
            "SKIPPED camp_14_in_its_z10_tile: no camps.geojson in geodata/ or the shared data directory"
        );
        return;
    };
    let source = open_default(&path);
    let (tile, (expected_x, expected_y)) = locate(CAMP_14.0, CAMP_14.1, 10, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let camps = layer(&decoded, "camps");
    assert_eq!(camps.extent, Some(4096));
    let camp = feature_named(camps, "Camp 14, Kaechon");
    // The first feature of the file: OGR's FID 0.
    assert_eq!(camp.id, Some(0));
    assert_eq!(camp.r#type, Some(GEOM_POINT));
    let camp_tags = tags(camps, camp);
    assert_eq!(
        camp_tags.get("kind"),
        Some(&TagValue::String("Political prison camp (kwanliso)".into()))
    );
    assert_eq!(camp_tags.get("prisoners"), Some(&TagValue::Number(15000.0)));
    assert_eq!(
        camp_tags.get("id"),
        Some(&TagValue::String("camp-0".into()))
    );

    let points = paths(camp);
    assert_eq!(points.len(), 1);
    let (x, y) = points[0][0];
    assert!(
        (f64::from(x) - expected_x).abs() <= 1.0,
        "x {x}, expected {expected_x}"
    );
    assert!(
        (f64::from(y) - expected_y).abs() <= 1.0,
        "y {y}, expected {expected_y}"
    );
}

#[test]
fn camps_far_away_tile_is_empty() {
    let Some(path) = camps_path() else {
        eprintln!(
            "SKIPPED camps_far_away_tile_is_empty: no camps.geojson in geodata/ or the shared data directory"
        );
        return;
    };
    let source = open_default(&path);
    // Null Island, far from Korea.
    let (tile, _) = locate(0.0, 0.0, 10, 4096.0);
    assert_eq!(source.tile(tile).expect("tile encodes"), None);
}

// ---- Invalid geometries ----

#[test]
fn invalid_fixture_counts() {
    let source = open_default(&fixture("invalid.geojson"));
    let info = &source.layers()[0];
    assert_eq!(info.name, "invalid");
    // Served: valid, unclosed ring (closed), bow-tie (rebuilt), clockwise exterior.
    assert_eq!(info.feature_count, 4);
    // Closed ring and bow-tie.
    assert_eq!(info.repaired, 2);
    // NaN coordinate, empty geometry, null geometry, two-point ring.
    assert_eq!(info.skipped, 4);
    assert_eq!(info.geometry_type, "Polygon");
}

#[test]
fn invalid_fixture_serves_repaired_features() {
    let source = open_default(&fixture("invalid.geojson"));
    let (tile, _) = locate(10.4, 10.05, 8, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let polygons = layer(&decoded, "invalid");
    let names: Vec<TagValue> = polygons
        .features
        .iter()
        .filter_map(|feature| tags(polygons, feature).get("name").cloned())
        .collect();
    assert_eq!(
        names,
        ["valid", "unclosed ring", "bow-tie", "clockwise exterior"]
            .map(|name| TagValue::String(name.into()))
    );
    for feature in &polygons.features {
        assert_eq!(feature.r#type, Some(GEOM_POLYGON));
        let rings = paths(feature);
        assert!(!rings.is_empty());
        for ring in &rings {
            assert!(ring_area(ring) > 0, "ring {ring:?} is not an exterior");
        }
    }
    let bow_tie = feature_named(polygons, "bow-tie");
    assert_eq!(paths(bow_tie).len(), 2, "bow-tie becomes two triangles");
}

#[test]
fn invalid_fixture_attribute_types() {
    let source = open_default(&fixture("invalid.geojson"));
    let fields = &source.layers()[0].fields;
    let expected = [
        ("name", FieldType::String),
        ("id", FieldType::Number),
        ("count", FieldType::Number),
        ("ratio", FieldType::Number),
        ("opened", FieldType::String),
        ("seen", FieldType::String),
        ("logged", FieldType::String),
        ("open", FieldType::Boolean),
        ("tags", FieldType::String),
        ("aliases", FieldType::String),
        ("meta", FieldType::String),
    ];
    for (name, field_type) in expected {
        assert_eq!(fields.get(name), Some(&field_type), "field {name}");
    }

    let (tile, _) = locate(10.05, 10.05, 8, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let polygons = layer(&decoded, "invalid");
    let valid = feature_named(polygons, "valid");
    assert_eq!(valid.id, Some(42));
    let valid_tags = tags(polygons, valid);
    let expected_tags = [
        ("count", TagValue::Number(3.0)),
        ("ratio", TagValue::Number(0.5)),
        ("opened", TagValue::String("2020-01-02".into())),
        ("seen", TagValue::String("2020-01-02T03:04:05+02:00".into())),
        ("logged", TagValue::String("2020-01-02T03:04:05".into())),
        ("open", TagValue::Bool(true)),
        ("tags", TagValue::String("[1,2]".into())),
        ("aliases", TagValue::String(r#"["a","b,c"]"#.into())),
        ("meta", TagValue::String(r#"{ "a": 1 }"#.into())),
    ];
    for (key, value) in expected_tags {
        assert_eq!(valid_tags.get(key), Some(&value), "tag {key}");
    }
    assert!(
        !valid_tags.contains_key("note"),
        "null attributes are omitted"
    );
}

// ---- Other formats ----

fn wgs84() -> SpatialRef {
    SpatialRef::from_epsg(4326).expect("EPSG:4326")
}

/// Writes a feature with the geometry `wkt` and the first field, `name`, set.
fn add_named_feature(layer: &gdal::vector::Layer<'_>, wkt: &str, name: &str) {
    let mut feature = gdal::vector::Feature::new(layer.defn()).expect("new feature");
    feature
        .set_geometry(Geometry::from_wkt(wkt).expect("WKT"))
        .expect("set geometry");
    feature
        .set_field(0, &FieldValue::StringValue(name.into()))
        .expect("set name");
    feature.create(layer).expect("create feature");
}

#[test]
fn geopackage_layers_become_mvt_layers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("facilities.gpkg");
    {
        let driver = DriverManager::get_driver_by_name("GPKG").expect("GPKG driver");
        let mut dataset = driver.create_vector_only(&path).expect("create GeoPackage");
        let srs = wgs84();
        let footprints = dataset
            .create_layer(LayerOptions {
                name: "footprints",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPolygon,
                options: None,
            })
            .expect("create layer");
        footprints
            .create_defn_fields(&[("name", OGRFieldType::OFTString)])
            .expect("create fields");
        add_named_feature(
            &footprints,
            "POLYGON ((126.05 39.56, 126.07 39.56, 126.07 39.58, 126.05 39.58, 126.05 39.56))",
            "compound",
        );
        let gates = dataset
            .create_layer(LayerOptions {
                name: "gates",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPoint,
                options: None,
            })
            .expect("create layer");
        gates
            .create_defn_fields(&[("name", OGRFieldType::OFTString)])
            .expect("create fields");
        add_named_feature(&gates, "POINT (126.06 39.56)", "south gate");
    }

    let source = open_default(&path);
    let names: Vec<&str> = source
        .layers()
        .iter()
        .map(|info| info.name.as_str())
        .collect();
    assert_eq!(names, ["footprints", "gates"]);
    assert_eq!(source.layers()[0].geometry_type, "Polygon");
    assert_eq!(source.layers()[1].geometry_type, "Point");

    let (tile, _) = locate(126.06, 39.57, 12, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    assert_eq!(decoded.layers.len(), 2);
    let footprints = layer(&decoded, "footprints");
    assert_eq!(footprints.features.len(), 1);
    assert_eq!(footprints.features[0].r#type, Some(GEOM_POLYGON));
    // GeoPackage FIDs start at 1.
    assert_eq!(footprints.features[0].id, Some(1));
    let gates = layer(&decoded, "gates");
    assert_eq!(gates.features.len(), 1);
    assert_eq!(
        tags(gates, &gates.features[0]).get("name"),
        Some(&TagValue::String("south gate".into()))
    );
}

#[test]
fn utm_flatgeobuf_is_reprojected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("camp14-utm.fgb");
    // Camp 14 and a box around it in UTM zone 52N (EPSG:32652), converted from lon/lat with
    // `gdaltransform -s_srs EPSG:4326 -t_srs EPSG:32652`.
    {
        let driver = DriverManager::get_driver_by_name("FlatGeobuf").expect("FlatGeobuf driver");
        let mut dataset = driver.create_vector_only(&path).expect("create FlatGeobuf");
        let srs = SpatialRef::from_epsg(32652).expect("EPSG:32652");
        let layer = dataset
            .create_layer(LayerOptions {
                name: "camp14-utm",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPoint,
                options: None,
            })
            .expect("create layer");
        layer
            .create_defn_fields(&[("name", OGRFieldType::OFTString)])
            .expect("create fields");
        add_named_feature(
            &layer,
            "POINT (247645.729567369 4384346.00936693)",
            "Camp 14",
        );
    }

    let source = open_default(&path);
    let bounds = source.bounds_lonlat();
    assert!((bounds.min_x - CAMP_14.0).abs() < 1e-6, "{bounds:?}");
    assert!((bounds.min_y - CAMP_14.1).abs() < 1e-6, "{bounds:?}");

    let (tile, (expected_x, expected_y)) = locate(CAMP_14.0, CAMP_14.1, 14, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let points = layer(&decoded, "camp14-utm");
    let (x, y) = paths(&points.features[0])[0][0];
    assert!(
        (f64::from(x) - expected_x).abs() <= 1.0,
        "x {x}, expected {expected_x}"
    );
    assert!(
        (f64::from(y) - expected_y).abs() <= 1.0,
        "y {y}, expected {expected_y}"
    );
}

#[test]
fn kml_with_heights_is_served_flat() {
    let source = open_default(&fixture("sites.kml"));
    let info = &source.layers()[0];
    assert_eq!(info.name, "sites");
    assert_eq!(info.feature_count, 2);
    assert_eq!(info.skipped, 0);
    assert_eq!(info.geometry_type, "Unknown", "points and polygons mixed");

    let (tile, (expected_x, expected_y)) = locate(CAMP_14.0, CAMP_14.1, 12, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let sites = layer(&decoded, "sites");
    let types: Vec<Option<i32>> = sites
        .features
        .iter()
        .map(|feature| feature.r#type)
        .collect();
    assert_eq!(types, [Some(GEOM_POINT), Some(GEOM_POLYGON)]);
    let (x, y) = paths(&sites.features[0])[0][0];
    assert!(
        (f64::from(x) - expected_x).abs() <= 1.0,
        "x {x}, expected {expected_x}"
    );
    assert!(
        (f64::from(y) - expected_y).abs() <= 1.0,
        "y {y}, expected {expected_y}"
    );
    assert_eq!(
        tags(sites, &sites.features[1]).get("Name"),
        Some(&TagValue::String("Camp 14 compound".into()))
    );
}

// ---- Clipping, winding and simplification ----

#[test]
fn big_polygon_is_clipped_to_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_geojson(
        &dir,
        "big.geojson",
        &[geojson_feature(
            "big",
            r#"{"type":"Polygon","coordinates":[[[0,0],[20,0],[20,20],[0,20],[0,0]]]}"#,
        )],
    );
    let source = open_default(&path);
    let (tile, _) = locate(10.0, 10.0, 10, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let big = &layer(&decoded, "big").features[0];
    let rings = paths(big);
    assert_eq!(rings.len(), 1);
    let ring = &rings[0];
    assert!(ring_area(ring) > 0, "exterior winding");
    for &(x, y) in ring {
        assert!([-64, 4160].contains(&x), "x {x} is not on the buffer edge");
        assert!([-64, 4160].contains(&y), "y {y} is not on the buffer edge");
    }
    assert_eq!(ring.len(), 4);
}

#[test]
fn line_crossing_tile_is_clipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_geojson(
        &dir,
        "road.geojson",
        &[geojson_feature(
            "road",
            r#"{"type":"LineString","coordinates":[[0,10.01],[20,10.01]]}"#,
        )],
    );
    let source = open_default(&path);
    let (tile, (_, expected_y)) = locate(10.0, 10.01, 10, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let road = &layer(&decoded, "road").features[0];
    assert_eq!(road.r#type, Some(GEOM_LINE));
    let lines = paths(road);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.len(), 2);
    assert_eq!(line[0].0, -64);
    assert_eq!(line[1].0, 4160);
    for &(_, y) in line {
        assert!(
            (f64::from(y) - expected_y).abs() <= 1.0,
            "y {y}, expected {expected_y}"
        );
    }
}

#[test]
fn winding_is_correct_after_clipping() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Clockwise exterior and counter-clockwise hole (both wrong for GeoJSON), with the hole
    // crossing the tile edge at lon 10.
    let path = write_geojson(
        &dir,
        "holed.geojson",
        &[geojson_feature(
            "holed",
            r#"{"type":"Polygon","coordinates":[
                [[9,9],[9,11],[11,11],[11,9],[9,9]],
                [[9.9,9.9],[10.1,9.9],[10.1,10.1],[9.9,10.1],[9.9,9.9]]]}"#,
        )],
    );
    let source = open_default(&path);
    for lon in [9.95, 10.05] {
        let (tile, _) = locate(lon, 10.05, 9, 4096.0);
        let decoded = decode(&tile_bytes(&source, tile));
        let holed = &layer(&decoded, "holed").features[0];
        let rings = paths(holed);
        assert_eq!(rings.len(), 2, "tile {tile:?}: {rings:?}");
        assert!(ring_area(&rings[0]) > 0, "tile {tile:?}: exterior");
        assert!(ring_area(&rings[1]) < 0, "tile {tile:?}: hole");
    }
}

fn dense_wave(points: usize) -> String {
    let coordinates: Vec<String> = (0..points)
        .map(|index| {
            let t = index as f64 / (points - 1) as f64;
            format!("[{},{}]", 10.0 + 20.0 * t, 10.0 + 0.001 * (t * 400.0).sin())
        })
        .collect();
    format!(
        r#"{{"type":"LineString","coordinates":[{}]}}"#,
        coordinates.join(",")
    )
}

#[test]
fn simplification_reduces_dense_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_geojson(
        &dir,
        "wave.geojson",
        &[geojson_feature("wave", &dense_wave(2000))],
    );
    let source = open_default(&path);
    let (tile, _) = locate(20.0, 10.0, 2, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let wave = &layer(&decoded, "wave").features[0];
    let lines = paths(wave);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert!(line.len() >= 2);
    assert!(line.len() < 20, "{} points left of 2000", line.len());
    assert!(
        line.windows(2).all(|pair| pair[0] != pair[1]),
        "repeated point"
    );

    let unsimplified = VectorSource::open(
        &path,
        VectorOptions {
            simplify: false,
            ..VectorOptions::default()
        },
    )
    .expect("open");
    let decoded = decode(&tile_bytes(&unsimplified, tile));
    let kept = paths(&layer(&decoded, "wave").features[0])[0].len();
    assert!(kept > line.len(), "without simplification {kept} points");
}

#[test]
fn simplification_keeps_small_polygon() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A dense circle about 40 tile units wide at zoom 2.
    let ring: Vec<String> = (0..=1000)
        .map(|index| {
            let angle = f64::from(index) / 1000.0 * 2.0 * PI;
            format!(
                "[{},{}]",
                20.0 + 0.4 * angle.cos(),
                10.0 + 0.4 * angle.sin()
            )
        })
        .collect();

    let geometry = format!(
        r#"{{"type":"Polygon","coordinates":[[{}]]}}"#,
        ring.join(",")
    );
    let path = write_geojson(
        &dir,
        "circle.geojson",
        &[geojson_feature("circle", &geometry)],
    );
    let source = open_default(&path);

    let (tile, _) = locate(20.0, 10.0, 2, 4096.0);
    let decoded = decode(&tile_bytes(&source, tile));
    let rings = paths(&layer(&decoded, "circle").features[0]);
    assert_eq!(rings.len(), 1);
    assert!(rings[0].len() >= 3);
    assert!(
        rings[0].len() < 200,
        "{} points left of 1000",
        rings[0].len()
    );
    assert!(ring_area(&rings[0]) > 0);
}

// ---- Antimeridian ----

#[test]
fn antimeridian_points_appear_in_edge_tiles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_geojson(
        &dir,
        "dateline.geojson",
        &[
            geojson_feature("east", r#"{"type":"Point","coordinates":[179.99,10]}"#),
            geojson_feature("east 0.1", r#"{"type":"Point","coordinates":[179.9,10]}"#),
            geojson_feature("west", r#"{"type":"Point","coordinates":[-179.9,10]}"#),
        ],
    );
    let source = open_default(&path);

    let west_edge = TileCoord { z: 2, x: 0, y: 1 };
    let decoded = decode(&tile_bytes(&source, west_edge));
    let points = layer(&decoded, "dateline");
    // 0.01° is 0.46 units at zoom 2, which rounds to the tile edge.
    let (x, _) = paths(feature_named(points, "east"))[0][0];
    assert!(x <= 0, "x {x}");
    let (x, _) = paths(feature_named(points, "east 0.1"))[0][0];
    assert_eq!(x, -5);

    let east_edge = TileCoord { z: 2, x: 3, y: 1 };
    let decoded = decode(&tile_bytes(&source, east_edge));
    let points = layer(&decoded, "dateline");
    let (x, _) = paths(feature_named(points, "west"))[0][0];
    assert_eq!(x, 4096 + 5);
}

#[test]
fn antimeridian_needs_the_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_geojson(
        &dir,
        "dateline.geojson",
        &[geojson_feature(
            "east",
            r#"{"type":"Point","coordinates":[179.9,10]}"#,
        )],
    );
    let source = VectorSource::open(
        &path,
        VectorOptions {
            buffer: 0,
            ..VectorOptions::default()
        },
    )
    .expect("open");
    assert_eq!(
        source
            .tile(TileCoord { z: 2, x: 0, y: 1 })
            .expect("encodes"),
        None
    );
}

// ---- Requests and options ----

#[test]
fn tile_outside_range_is_rejected() {
    let source = open_default(&fixture("invalid.geojson"));
    let cases = [
        (TileCoord { z: 23, x: 0, y: 0 }, "zoom 23"),
        (TileCoord { z: 2, x: 4, y: 0 }, "2/4/0"),
        (TileCoord { z: 2, x: 0, y: 4 }, "2/0/4"),
    ];
    for (tile, expected) in cases {
        let error = source.tile(tile).expect_err("out of range");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn invalid_options_are_rejected() {
    let defaults = VectorOptions::default();
    let cases = [
        (
            VectorOptions {
                maxzoom: 25,
                ..defaults
            },
            "maxzoom",
        ),
        (
            VectorOptions {
                minzoom: 10,
                maxzoom: 5,
                ..defaults
            },
            "minzoom",
        ),
        (
            VectorOptions {
                extent: 0,
                ..defaults
            },
            "extent",
        ),
        (
            VectorOptions {
                buffer: 5000,
                ..defaults
            },
            "buffer",
        ),
    ];
    for (options, option) in cases {
        let error =
            VectorSource::open(&fixture("invalid.geojson"), options).expect_err("invalid options");
        assert!(
            matches!(&error, VectorError::InvalidOption { option: name, .. } if *name == option),
            "{error}"
        );
    }
}

#[test]
fn missing_file_is_an_open_error() {
    let error = VectorSource::open(
        Path::new("/nonexistent/facilities.geojson"),
        VectorOptions::default(),
    )
    .expect_err("missing file");
    assert!(matches!(error, VectorError::Open { .. }), "{error}");
}

#[test]
fn table_without_geometry_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("counts.csv");
    std::fs::write(&path, "name,count\nCamp 14,15000\n").expect("write CSV");
    let error = VectorSource::open(&path, VectorOptions::default()).expect_err("no geometry");
    assert!(matches!(error, VectorError::NoLayers { .. }), "{error}");
}

#[test]
fn source_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<VectorSource>();
}

#[test]
fn gzip_round_trips() {
    use std::io::Read;

    let bytes = b"vector tile bytes ".repeat(100);
    let compressed = gzip(&bytes);
    assert!(compressed.starts_with(&[0x1F, 0x8B]));
    assert!(compressed.len() < bytes.len());
    let mut decompressed = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut decompressed)
        .expect("gunzip");
    assert_eq!(decompressed, bytes);
}

#[test]
fn huge_invalid_polygon_is_skipped_not_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A star that winds 7 times around its centre: every edge crosses many others.
    let vertices = 6_001;
    let mut ring: Vec<String> = (0..vertices)
        .map(|i| {
            let angle = f64::from(i) * 7.0 * std::f64::consts::TAU / f64::from(vertices);
            let radius = if i % 2 == 0 { 1.0 } else { 0.2 };
            format!(
                "[{:.6},{:.6}]",
                10.0 + radius * angle.cos(),
                10.0 + radius * angle.sin()
            )
        })
        .collect();
    ring.push(ring[0].clone());
    let star = geojson_feature(
        "star",
        &format!(
            r#"{{"type":"Polygon","coordinates":[[{}]]}}"#,
            ring.join(",")
        ),
    );
    let square = geojson_feature(
        "square",
        r#"{"type":"Polygon","coordinates":[[[20,20],[21,20],[21,21],[20,21],[20,20]]]}"#,
    );
    let path = write_geojson(&dir, "star.geojson", &[star, square]);
    let source = open_default(&path);
    let layer = &source.layers()[0];
    assert_eq!(layer.skipped, 1, "the star is skipped");
    assert_eq!(layer.feature_count, 1, "the square is served");
}

#[test]
fn feature_limit_keeps_largest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crowded.geojson");
    let square = |name: &str, half: f64| {
        format!(
            r#"{{"type":"Feature","properties":{{"name":"{name}"}},"geometry":{{"type":"Polygon","coordinates":[[[{a},{a}],[{b},{a}],[{b},{b}],[{a},{b}],[{a},{a}]]]}}}}"#,
            a = -half,
            b = half
        )
    };
    let point = |name: &str, lon: f64| {
        format!(
            r#"{{"type":"Feature","properties":{{"name":"{name}"}},"geometry":{{"type":"Point","coordinates":[{lon},1.0]}}}}"#
        )
    };
    let features = [
        point("point-a", 1.0),
        square("small", 1.0),
        point("point-b", 2.0),
        square("large", 20.0),
        point("point-c", 3.0),
        square("medium", 5.0),
        point("point-d", 4.0),
    ];
    std::fs::write(
        &path,
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        ),
    )
    .expect("write GeoJSON");
    let limited = VectorSource::open(
        &path,
        VectorOptions {
            max_features_per_tile: 4,
            ..VectorOptions::default()
        },
    )
    .expect("open");

    let root = TileCoord::new(0, 0, 0).expect("tile");
    let encoded = limited.tile_counted(root).expect("encode");
    assert_eq!(encoded.dropped_features, 3);
    let decoded = decode(&encoded.bytes.expect("features kept"));
    let layer = &decoded.layers[0];
    let names: Vec<String> = layer
        .features
        .iter()
        .map(|feature| {
            let value = feature.tags[1] as usize;
            layer.values[value].string_value.clone().unwrap_or_default()
        })
        .collect();
    assert_eq!(names, ["point-a", "small", "large", "medium"]);

    // The same tile keeps the same features, and a source within the limit drops none.
    let again = limited.tile_counted(root).expect("encode");
    assert_eq!(again.dropped_features, 3);
    let unlimited = VectorSource::open(&path, VectorOptions::default()).expect("open");
    assert_eq!(
        unlimited
            .tile_counted(root)
            .expect("encode")
            .dropped_features,
        0
    );
}

#[test]
fn zero_feature_limit_rejected() {
    let Some(path) = camps_path() else {
        return;
    };
    let error = VectorSource::open(
        &path,
        VectorOptions {
            max_features_per_tile: 0,
            ..VectorOptions::default()
        },
    )
    .expect_err("0 features per tile");
    assert!(
        error.to_string().contains("max_features_per_tile"),
        "{error}"
    );
}
