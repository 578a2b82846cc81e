//! Tests of density tiles over generated point files.

use std::collections::HashMap;

use geozero::mvt::{Message, Tile as MvtTile};

use super::*;
use crate::tile::tiles_in_bbox;

/// A decoded MVT feature: layer, id and properties as text.
#[derive(Debug, Clone)]
struct Decoded {
    layer: String,
    id: u64,
    properties: HashMap<String, String>,
}

impl Decoded {
    fn number(&self, key: &str) -> f64 {
        self.properties
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} is not a number in {self:?}"))
    }
}

fn decode(bytes: &[u8]) -> Vec<Decoded> {
    let tile = MvtTile::decode(bytes).expect("a valid MVT tile");
    let mut out = Vec::new();
    for layer in tile.layers {
        for feature in &layer.features {
            let mut properties = HashMap::new();
            for pair in feature.tags.chunks_exact(2) {
                let key = layer.keys[pair[0] as usize].clone();
                let value = &layer.values[pair[1] as usize];
                let text = value
                    .string_value
                    .clone()
                    .or(value.double_value.map(|v| v.to_string()))
                    .or(value.float_value.map(|v| v.to_string()))
                    .or(value.uint_value.map(|v| v.to_string()))
                    .or(value.int_value.map(|v| v.to_string()))
                    .or(value.sint_value.map(|v| v.to_string()))
                    .or(value.bool_value.map(|v| v.to_string()))
                    .unwrap_or_default();
                properties.insert(key, text);
            }
            out.push(Decoded {
                layer: layer.name.clone(),
                id: feature.id.unwrap_or_default(),
                properties,
            });
        }
    }
    out
}

/// A filter's query pairs, and the date range and category that select the same rows.
type FilterCase<'a> = (
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// A generated row: where, when and what.
#[derive(Debug, Clone)]
struct Row {
    lon: f64,
    lat: f64,
    date: String,
    category: String,
}

/// Generates clustered points around Korea with dates of every precision and two-level
/// categories, from a fixed seed.
fn generate(count: usize) -> Vec<Row> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1_u64 << 53) as f64
    };
    let centres = [(129.7, 42.9), (128.2, 41.4), (125.7, 39.0), (127.0, 40.0)];
    let categories = [
        "Torture",
        "Labour::Forced",
        "Labour::Unpaid",
        "Health",
        "Labour",
    ];
    (0..count)
        .map(|i| {
            let (clon, clat) = centres[i % centres.len()];
            let spread = if i % 3 == 0 { 2.0 } else { 0.05 };
            let year = 1995 + (next() * 25.0) as i32;
            let month = 1 + (next() * 12.0) as u32;
            let day = 1 + (next() * 28.0) as u32;
            let date = match i % 5 {
                0 => format!("{year}"),
                1 => format!("{year}-{month:02}"),
                2 => format!("{day:02}/{month:02}/{year}"),
                3 => format!("{year}~{}", year + 1),
                _ => format!("{year}-{month:02}-{day:02}"),
            };
            Row {
                lon: clon + (next() - 0.5) * spread,
                lat: clat + (next() - 0.5) * spread,
                date,
                category: categories[(next() * categories.len() as f64) as usize].to_owned(),
            }
        })
        .collect()
}

fn write_csv(rows: &[Row], extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("points.csv");
    let mut text = String::from("lat,lon,date,kind\n");
    for row in rows {
        let line = format!("{},{},{},{}\n", row.lat, row.lon, row.date, row.category);
        text.push_str(&line);
    }
    text.push_str(extra);
    std::fs::write(&path, text).expect("write CSV");
    (folder, path)
}

fn options() -> DensityOptions {
    DensityOptions {
        location: options::LocationColumns {
            latitude: Some("lat".to_owned()),
            longitude: Some("lon".to_owned()),
            lat_lon: None,
        },
        date: Some("date".to_owned()),
        categories: Some(options::Columns::One("kind".to_owned())),
        ..DensityOptions::default()
    }
}

fn query(source: &DensitySource, pairs: &[(&str, &str)]) -> Filter {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    parse_query(source, &pairs).expect("valid filter").0
}

/// Counts the rows that a filter should match, from the rows themselves.
fn expected_count(
    rows: &[Row],
    from: Option<&str>,
    to: Option<&str>,
    category: Option<&str>,
) -> usize {
    let from = from.map(|t| date::parse_date(t, DateOrder::Dmy).expect("from").first);
    let to = to.map(|t| date::parse_date(t, DateOrder::Dmy).expect("to").last);
    rows.iter()
        .filter(|row| {
            let range = date::parse_range(&row.date, DateOrder::Dmy).expect("generated date");
            let dated = from.is_none_or(|f| range.last >= f) && to.is_none_or(|t| range.first <= t);
            let categorised = category
                .is_none_or(|c| row.category == c || row.category.starts_with(&format!("{c}::")));
            dated && categorised
        })
        .count()
}

/// Sums the `centre_in_tile` cells of every tile of zoom `z`, and checks that each cell has
/// the same count wherever it appears. Returns the sum and the number of cells seen in more
/// than one tile.
fn sum_cells(source: &DensitySource, z: u8, filter: &Filter) -> (f64, usize) {
    let mut total = 0.0;
    let mut seen: HashMap<u64, (f64, usize)> = HashMap::new();
    for tile in tiles_in_bbox(&source.bounds_lonlat(), z).chain(border_tiles(source, z)) {
        let Some(bytes) = source
            .tile(tile, 1, TileFormat::Mvt, filter, HeatmapRequest::default())
            .expect("tile")
        else {
            continue;
        };
        for feature in decode(&bytes).into_iter().filter(|f| f.layer == "cells") {
            let count = feature.number("count");
            let entry = seen.entry(feature.id).or_insert((count, 0));
            assert!(
                (entry.0 - count).abs() < 1e-9,
                "cell {} has counts {} and {count} in two tiles",
                feature.id,
                entry.0
            );
            entry.1 += 1;
            if feature.properties["centre_in_tile"] == "true" {
                total += count;
            }
        }
    }
    (total, seen.values().filter(|(_, tiles)| *tiles > 1).count())
}

/// Lists the tiles just outside the data's bounds, where cells near the edge reach.
fn border_tiles(source: &DensitySource, z: u8) -> Vec<TileCoord> {
    let inside: Vec<TileCoord> = tiles_in_bbox(&source.bounds_lonlat(), z).collect();
    let last = (1_i64 << z) - 1;
    let mut ring = Vec::new();
    for tile in &inside {
        for (dx, dy) in [
            (-1, -1),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            let (x, y) = (i64::from(tile.x) + dx, i64::from(tile.y) + dy);
            if (0..=last).contains(&x) && (0..=last).contains(&y) {
                let neighbour = TileCoord {
                    z,
                    x: x as u32,
                    y: y as u32,
                };
                if !inside.contains(&neighbour) && !ring.contains(&neighbour) {
                    ring.push(neighbour);
                }
            }
        }
    }
    ring
}

#[test]
fn cell_counts_sum_to_matching_points() {
    let rows = generate(3000);
    let (_folder, path) = write_csv(&rows, "");
    for grid in [GridShape::Hexagon, GridShape::Square] {
        let source =
            DensitySource::open(&path, DensityOptions { grid, ..options() }).expect("open");
        assert_eq!(source.loaded().points.len(), rows.len());
        let filters: [FilterCase<'_>; 4] = [
            (&[], None, None, None),
            (
                &[("from", "2003"), ("to", "2006-06")],
                Some("2003"),
                Some("2006-06"),
                None,
            ),
            (&[("category", "Labour")], None, None, Some("Labour")),
            (
                &[("category", "Torture"), ("from", "2010-02-14")],
                Some("2010-02-14"),
                None,
                Some("Torture"),
            ),
        ];
        for z in [1, 4, 7, 10] {
            let mut shared_cells = 0;
            for (pairs, from, to, category) in filters {
                let filter = query(&source, pairs);
                let expected = expected_count(&rows, from, to, category);
                let (total, shared) = sum_cells(&source, z, &filter);
                shared_cells += shared;
                assert!(
                    (total - expected as f64).abs() < 1e-6,
                    "{grid:?} z{z} {pairs:?}: cells sum to {total}, {expected} points match"
                );
            }
            if grid == GridShape::Hexagon && z >= 4 {
                assert!(
                    shared_cells > 0,
                    "z{z}: some hexagons cross tile borders, so the test covers them"
                );
            }
        }
    }
}

#[test]
fn points_layer_replaces_cells_at_high_zoom() {
    let rows = generate(400);
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(
        &path,
        DensityOptions {
            points_minzoom: 6,
            ..options()
        },
    )
    .expect("open");
    let filter = Filter::default();
    let mut points = 0;
    let mut rows_seen = std::collections::HashSet::new();
    for tile in tiles_in_bbox(&source.bounds_lonlat(), 6) {
        let Some(bytes) = source
            .tile(tile, 1, TileFormat::Mvt, &filter, HeatmapRequest::default())
            .expect("tile")
        else {
            continue;
        };
        for feature in decode(&bytes) {
            assert_eq!(feature.layer, "points");
            // A point in a tile's buffer is drawn in both tiles: count each id once.
            if rows_seen.insert(feature.id) {
                points += 1;
            }
            assert!(feature.properties.contains_key("categories"));
            assert!(feature.properties.contains_key("first"));
        }
    }
    assert_eq!(points, rows.len());
}

#[test]
fn crowded_tile_keeps_its_cells() {
    let crowd = Row {
        lon: 127.0,
        lat: 40.0,
        date: "2003".to_owned(),
        category: "a".to_owned(),
    };
    let rows = vec![crowd; aggregate::MAX_POINTS_PER_TILE + 1];
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(
        &path,
        DensityOptions {
            points_minzoom: 10,
            ..options()
        },
    )
    .expect("open");
    let tile = crate::tile::lonlat_to_tile(127.0, 40.0, 12);
    let bytes = source
        .tile(
            tile,
            1,
            TileFormat::Mvt,
            &Filter::default(),
            HeatmapRequest::default(),
        )
        .expect("tile")
        .expect("data");
    let features = decode(&bytes);
    assert_eq!(features.len(), 1, "one cell instead of the points");
    assert_eq!(features[0].layer, "cells");
    assert!((features[0].number("count") - rows.len() as f64).abs() < 1e-9);
}

#[test]
fn partial_dates_match_by_their_range() {
    let rows = vec![
        Row {
            lon: 127.0,
            lat: 40.0,
            date: "2003".to_owned(),
            category: "a".to_owned(),
        },
        Row {
            lon: 127.0,
            lat: 40.0,
            date: "2003-06".to_owned(),
            category: "a".to_owned(),
        },
        Row {
            lon: 127.0,
            lat: 40.0,
            date: "15/06/2003".to_owned(),
            category: "a".to_owned(),
        },
        Row {
            lon: 127.0,
            lat: 40.0,
            date: "2002-12~2003-01".to_owned(),
            category: "a".to_owned(),
        },
        Row {
            lon: 127.0,
            lat: 40.0,
            date: "2004".to_owned(),
            category: "a".to_owned(),
        },
    ];
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(&path, options()).expect("open");
    let cases: [(&[(&str, &str)], f64); 5] = [
        (&[("from", "2003-06"), ("to", "2003-06")], 3.0),
        (&[("from", "2003-01-31"), ("to", "2003-01-31")], 2.0),
        (&[("to", "2002")], 1.0),
        (&[("from", "2003-07")], 2.0),
        (&[], 5.0),
    ];
    let tile = crate::tile::lonlat_to_tile(127.0, 40.0, 3);
    for (pairs, expected) in cases {
        let filter = query(&source, pairs);
        let total: f64 = source
            .tile(tile, 1, TileFormat::Mvt, &filter, HeatmapRequest::default())
            .expect("tile")
            .map_or(0.0, |bytes| {
                decode(&bytes)
                    .iter()
                    .filter(|f| f.layer == "cells")
                    .map(|f| f.number("count"))
                    .sum()
            });
        assert!(
            (total - expected).abs() < 1e-9,
            "{pairs:?}: {total}, expected {expected}"
        );
    }
}

#[test]
fn parent_category_includes_children() {
    let rows = generate(500);
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(&path, options()).expect("open");
    let parent = query(&source, &[("category", "Labour")]);
    let children = query(
        &source,
        &[
            ("category", "Labour::Forced,Labour::Unpaid"),
            ("category", "Labour"),
        ],
    );
    let (parent_total, _) = sum_cells(&source, 5, &parent);
    let (children_total, _) = sum_cells(&source, 5, &children);
    let forced = query(&source, &[("category", "Labour::Forced")]);
    let (forced_total, _) = sum_cells(&source, 5, &forced);
    assert!((parent_total - children_total).abs() < 1e-9);
    assert!(forced_total > 0.0);
    assert!(
        forced_total < parent_total,
        "a child alone matches fewer points than its parent"
    );
    assert!((parent_total - expected_count(&rows, None, None, Some("Labour")) as f64).abs() < 1e-9);
    let table = &source.loaded().categories;
    let labour = table.find("Labour").expect("parent interned");
    assert!(
        (table.count(labour) - parent_total).abs() < 1e-9,
        "TileJSON's count includes children"
    );
}

#[test]
fn invalid_filters_name_the_parameter() {
    let rows = generate(50);
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(&path, options()).expect("open");
    let cases = [
        (vec![("from", "2003-13")], "from"),
        (vec![("to", "yesterday")], "to"),
        (vec![("from", "2005"), ("to", "2004")], "to"),
        (vec![("from", "2005"), ("from", "2006")], "from"),
        (vec![("category", "Sleeping")], "category"),
        (vec![("facility", "nowhere")], "facility"),
        (vec![("radius", "0")], "radius"),
        (vec![("ramp", "rainbow")], "ramp"),
    ];
    for (pairs, parameter) in cases {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let error = parse_query(&source, &pairs).expect_err(parameter);
        assert_eq!(error.parameter, parameter, "{pairs:?}: {}", error.message);
    }
}

#[test]
fn unplaced_rows_are_reported_with_reasons() {
    let rows = generate(20);
    let extra = ",,2003,a\n91,10,2003,a\n40,127,2003-02-30,a\n40,127,01/01/2006~31/12/2005,a\nforty,127,2003,a\n";
    let (_folder, path) = write_csv(&rows, extra);
    let source = DensitySource::open(&path, options()).expect("open");
    let loaded = source.loaded();
    assert_eq!(loaded.points.len(), 20, "the placeable rows are served");
    let reasons: Vec<(usize, &str)> = loaded
        .unplaced
        .iter()
        .map(|u| (u.row, u.reason.as_str()))
        .collect();
    assert_eq!(loaded.unplaced_count, 5, "{reasons:?}");
    let expectations = [
        (21, "location is missing"),
        (22, "outside"),
        (23, "no day 30"),
        (24, "ends before it starts"),
        (25, "not a number"),
    ];
    for ((row, reason), (expected_row, expected)) in reasons.iter().zip(expectations) {
        assert_eq!(*row, expected_row, "{reason}");
        assert!(
            reason.contains(expected),
            "row {row}: {reason:?} should mention {expected:?}"
        );
    }
}

#[test]
fn heat_map_tiles_match_one_large_render() {
    let rows = generate(2000);
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(&path, options()).expect("open");
    let points = &source.loaded().points;
    let filter = Filter::default();
    let z = 7;
    let radius = 24.0;
    let corner = crate::tile::lonlat_to_tile(129.7, 42.9, z);
    let whole = heatmap::density(
        points,
        &filter,
        z,
        256.0,
        (i64::from(corner.x) * 256, i64::from(corner.y) * 256),
        512,
        radius,
    );
    assert!(!whole.values.is_empty(), "the area has points");
    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let origin = (
            i64::from(corner.x + dx) * 256,
            i64::from(corner.y + dy) * 256,
        );
        let part = heatmap::density(points, &filter, z, 256.0, origin, 256, radius);
        for row in 0..256 {
            for column in 0..256 {
                let expected =
                    whole.values[(row + 256 * dy as usize) * 512 + column + 256 * dx as usize];
                let actual = part.values.get(row * 256 + column).copied().unwrap_or(0.0);
                assert!(
                    (expected - actual).abs() < 1e-9,
                    "tile +{dx}+{dy} pixel ({column}, {row}): {actual} against {expected}"
                );
            }
        }
    }
}

#[test]
fn heat_map_scale_is_shared_by_the_zoom() {
    let rows = generate(1000);
    let (_folder, path) = write_csv(&rows, "");
    let source = DensitySource::open(&path, options()).expect("open");
    let filter = Filter::default();
    let legend = source.legend(6, &filter, HeatmapRequest::default());
    let max = legend["max"].as_f64().expect("max");
    assert!(max >= 1.0);
    let narrowed = query(&source, &[("category", "Health")]);
    let narrowed_max = source.legend(6, &narrowed, HeatmapRequest::default())["max"]
        .as_f64()
        .expect("max");
    assert!(narrowed_max < max, "a filter has its own scale");
    let png = source
        .tile(
            crate::tile::lonlat_to_tile(129.7, 42.9, 6),
            1,
            TileFormat::Png,
            &filter,
            HeatmapRequest::default(),
        )
        .expect("render")
        .expect("a tile with points");
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn facility_join_splits_weights() {
    let folder = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        folder.path().join("facilities.csv"),
        "Title,Geolocation\nCamp A ,42.0|129.0\nCamp B,41.0|128.0\nCamp C,\n",
    )
    .expect("write");
    let points = folder.path().join("events.csv");
    std::fs::write(
        &points,
        "id,when,what,where\n1,2003,Torture_1_A1|Labour_A1,Camp A |Camp B\n2,2004,Labour,Camp B\n3,2005,Labour,Camp C\n4,2005,Labour,Camp D\n5,2005,Labour,Camp A |Camp C\n",
    )
    .expect("write");
    let options = DensityOptions {
        date: Some("when".to_owned()),
        categories: Some(options::Columns::One("what".to_owned())),
        category_separator: Some("|".to_owned()),
        category_suffix: Some("_".to_owned()),
        facility: Some("where".to_owned()),
        facility_separator: Some("|".to_owned()),
        facilities: Some(options::FacilityOptions {
            path: "facilities.csv".into(),
            format: None,
            key: "Title".to_owned(),
            name: None,
            location: options::LocationColumns {
                lat_lon: Some("Geolocation".to_owned()),
                ..Default::default()
            },
        }),
        ..DensityOptions::default()
    };
    let source = DensitySource::open(&points, options).expect("open");
    let loaded = source.loaded();
    assert_eq!(
        loaded.points.len(),
        4,
        "row 1 at two facilities, rows 2 and 5 at one"
    );
    let reasons: Vec<&str> = loaded.unplaced.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(
        loaded.unplaced.iter().map(|u| u.row).collect::<Vec<_>>(),
        [3, 4],
        "{reasons:?}"
    );
    assert!(reasons[0].contains("location"), "{reasons:?}");
    assert!(reasons[1].contains("not found"), "{reasons:?}");
    assert!(
        loaded.categories.find("Torture").is_some(),
        "the suffix is cut"
    );
    let tile = crate::tile::lonlat_to_tile(128.5, 41.5, 4);
    let bytes = source
        .tile(
            tile,
            1,
            TileFormat::Mvt,
            &Filter::default(),
            HeatmapRequest::default(),
        )
        .expect("tile")
        .expect("data");
    let facilities: Vec<Decoded> = decode(&bytes)
        .into_iter()
        .filter(|f| f.layer == "facilities")
        .collect();
    let camp_a = facilities
        .iter()
        .find(|f| f.properties["key"] == "Camp A ")
        .expect("Camp A");
    let camp_b = facilities
        .iter()
        .find(|f| f.properties["key"] == "Camp B")
        .expect("Camp B");
    assert!(
        (camp_a.number("count") - 1.5).abs() < 1e-9,
        "half of row 1 and all of row 5"
    );
    assert!(
        (camp_b.number("count") - 1.5).abs() < 1e-9,
        "half of row 1 and all of row 2"
    );
    assert!((camp_b.number("year:2004") - 1.0).abs() < 1e-9);
    assert_eq!(camp_a.properties["name"], "Camp A");
    let only_b = query(&source, &[("facility", "Camp B")]);
    let (total, _) = sum_cells(&source, 4, &only_b);
    assert!((total - 1.5).abs() < 1e-9, "{total}");
}

#[test]
fn facilities_from_a_vector_file() {
    // The sample camps, a GeoJSON vector source, serve as the facility table by their
    // geometries.
    let camps = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geodata/nk-prison-camps/camps.geojson");
    let folder = tempfile::tempdir().expect("tempdir");
    let points = folder.path().join("reports.csv");
    std::fs::write(
        &points,
        "camp,year\n\"Camp 15, Yodok\",1995\n\"Camp 15, Yodok\",2001\n\"Camp 14, Kaechon\",2001\nCamp 99,2001\n",
    )
    .expect("write");
    let options = DensityOptions {
        date: Some("year".to_owned()),
        facility: Some("camp".to_owned()),
        facilities: Some(options::FacilityOptions {
            path: camps,
            format: None,
            key: "name".to_owned(),
            name: None,
            location: options::LocationColumns::default(),
        }),
        ..DensityOptions::default()
    };
    let source = DensitySource::open(&points, options).expect("open");
    let loaded = source.loaded();
    assert_eq!(loaded.points.len(), 3);
    assert_eq!(loaded.unplaced.len(), 1);
    assert_eq!(loaded.unplaced[0].row, 4);
    let yodok = loaded
        .facilities
        .iter()
        .find(|f| f.key == "Camp 15, Yodok")
        .expect("Yodok is a facility");
    assert_eq!(yodok.points.len(), 2);
    assert!(yodok.position.is_some(), "placed by its geometry");
    let filter = query(&source, &[("facility", "Camp 15, Yodok")]);
    let (total, _) = sum_cells(&source, 6, &filter);
    assert!(
        (total - 2.0).abs() < 1e-9,
        "a facility key with a comma is one key: {total}"
    );
}

#[test]
fn ogr_and_json_readers_agree() {
    let rows = generate(300);
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("points.geojson");
    let features: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "type": "Feature",
                "geometry": { "type": "Point", "coordinates": [row.lon, row.lat] },
                "properties": { "date": row.date, "kind": row.category },
            })
        })
        .collect();
    let collection = serde_json::json!({ "type": "FeatureCollection", "features": features });
    std::fs::write(&path, collection.to_string()).expect("write");
    let base = DensityOptions {
        date: Some("date".to_owned()),
        categories: Some(options::Columns::One("kind".to_owned())),
        ..DensityOptions::default()
    };
    let json = DensitySource::open(&path, base.clone()).expect("read as JSON");
    let ogr = DensitySource::open(
        &path,
        DensityOptions {
            format: Some(PointFormat::Ogr),
            ..base
        },
    )
    .expect("read with OGR");
    assert_eq!(json.loaded().points.len(), rows.len());
    assert_eq!(ogr.loaded().points.len(), rows.len());
    assert_eq!(
        ogr.loaded().unplaced_count,
        0,
        "{:?}",
        ogr.loaded().unplaced
    );
    for z in [3, 8] {
        let (from_json, _) = sum_cells(
            &json,
            z,
            &query(&json, &[("from", "2005"), ("category", "Labour")]),
        );
        let (from_ogr, _) = sum_cells(
            &ogr,
            z,
            &query(&ogr, &[("from", "2005"), ("category", "Labour")]),
        );
        assert!(
            (from_json - from_ogr).abs() < 1e-9,
            "z{z}: {from_json} against {from_ogr}"
        );
        assert!(from_json > 0.0);
    }
}

#[test]
fn own_geometry_beats_an_unlocated_facility() {
    let folder = tempfile::tempdir().expect("tempdir");
    std::fs::write(folder.path().join("sites.csv"), "key,lat,lon\nnorth,,\n").expect("write");
    let path = folder.path().join("events.geojson");
    std::fs::write(
        &path,
        r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"site":"north"},"geometry":{"type":"Point","coordinates":[127,40]}},
          {"type":"Feature","properties":{"site":"elsewhere"},"geometry":{"type":"Point","coordinates":[128,41]}},
          {"type":"Feature","properties":{"site":"north"},"geometry":null}]}"#,
    )
    .expect("write");
    let options = DensityOptions {
        facility: Some("site".to_owned()),
        facilities: Some(options::FacilityOptions {
            path: "sites.csv".into(),
            format: None,
            key: "key".to_owned(),
            name: None,
            location: options::LocationColumns {
                latitude: Some("lat".to_owned()),
                longitude: Some("lon".to_owned()),
                lat_lon: None,
            },
        }),
        ..DensityOptions::default()
    };
    let source = DensitySource::open(&path, options).expect("open");
    let loaded = source.loaded();
    assert_eq!(loaded.points.len(), 2, "rows 1 and 2 by their geometry");
    assert_eq!(loaded.unplaced.len(), 1);
    assert_eq!(loaded.unplaced[0].row, 3);
    assert!(
        loaded.unplaced[0].reason.contains("has no location"),
        "{:?}",
        loaded.unplaced
    );
    assert_eq!(
        loaded.facilities[0].points.len(),
        1,
        "row 1 stays linked to its facility"
    );
}
