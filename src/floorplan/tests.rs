//! Slicing the generated detention block and comparing its outlines with the rooms as built.

#[path = "../../tests/floorplan_support/block.rs"]
#[allow(dead_code, reason = "the integration tests use the rest")]
mod block;

use geo::{Area, Coord, Densify, Distance, Euclidean, MultiPolygon, Polygon, Rect};

use super::plan::Kind;
use super::*;

fn block_options() -> FloorplanOptions {
    FloorplanOptions {
        anchor: Some([13.4, 52.5]),
        ..FloorplanOptions::default()
    }
}

fn rectangle([w, s, e, n]: [f64; 4]) -> Polygon<f64> {
    Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n }).to_polygon()
}

/// Returns the Hausdorff distance between the boundaries of two shapes, from their edges
/// sampled every centimetre. geo's `HausdorffDistance` compares vertices only, which
/// overstates the distance of a shape with extra vertices along a straight edge.
fn hausdorff(a: &MultiPolygon<f64>, b: &Polygon<f64>) -> f64 {
    let a_boundary: Vec<_> = a
        .0
        .iter()
        .flat_map(|p| std::iter::once(p.exterior().clone()).chain(p.interiors().iter().cloned()))
        .collect();
    let b_boundary = b.exterior().clone();
    let directed = |from: &geo::LineString<f64>, to: &[&geo::LineString<f64>]| {
        Euclidean
            .densify(from, 0.01)
            .points()
            .map(|point| {
                to.iter()
                    .map(|line| Euclidean.distance(&point, *line))
                    .fold(f64::INFINITY, f64::min)
            })
            .fold(0.0, f64::max)
    };
    let a_refs: Vec<_> = a_boundary.iter().collect();
    let a_to_b = a_boundary
        .iter()
        .map(|line| directed(line, &[&b_boundary]))
        .fold(0.0, f64::max);
    a_to_b.max(directed(&b_boundary, &a_refs))
}

#[test]
fn block_floors_are_detected_without_the_roof() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), true);
    let sliced = slice_model(&path, &block_options()).expect("block slices");
    let elevations: Vec<f64> = sliced.levels.iter().map(|l| l.elevation).collect();
    assert_eq!(elevations.len(), 2, "levels {elevations:?}");
    assert!(elevations[0].abs() < 1e-6, "{elevations:?}");
    assert!(
        (elevations[1] - block::STOREY_HEIGHT).abs() < 1e-6,
        "{elevations:?}"
    );
    assert!((sliced.levels[0].top - block::STOREY_HEIGHT).abs() < 1e-6);
}

#[test]
fn block_rooms_match_the_rooms_as_built() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), true);
    let sliced = slice_model(&path, &block_options()).expect("block slices");
    let rooms: Vec<&plan::PlanFeature> = sliced
        .features
        .iter()
        .filter(|f| f.kind == Kind::Room)
        .collect();
    assert_eq!(rooms.len(), block::truth().len(), "{rooms:#?}");
    for truth in block::truth() {
        let expected = rectangle(truth.rectangle);
        let found = rooms
            .iter()
            .find(|room| room.name.as_deref() == Some(truth.name))
            .unwrap_or_else(|| panic!("no room named {:?}", truth.name));
        assert_eq!(found.level, truth.level, "{}", truth.name);
        let outline = &found.geometry;
        let area_error = (outline.unsigned_area() - expected.unsigned_area()).abs();
        // The door is 0.1 m thinner than its wall, which adds a 1 m x 0.05 m notch.
        assert!(
            area_error <= 0.06,
            "{}: area {} against {}",
            truth.name,
            outline.unsigned_area(),
            expected.unsigned_area()
        );
        let distance = hausdorff(outline, &expected);
        assert!(
            distance <= 0.06,
            "{}: Hausdorff distance {distance} m",
            truth.name
        );
        assert!((found.base - truth.level as f64 * block::STOREY_HEIGHT).abs() < 1e-6);
    }
}

#[test]
fn block_walls_and_doors_have_their_heights() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), true);
    let sliced = slice_model(&path, &block_options()).expect("block slices");
    let doors: Vec<_> = sliced
        .features
        .iter()
        .filter(|f| f.kind == Kind::Opening)
        .collect();
    assert_eq!(doors.len(), 2);
    for door in doors {
        let storey = door.level as f64 * block::STOREY_HEIGHT;
        assert!((door.base - storey).abs() < 1e-6, "{door:?}");
        assert!((door.top - storey - 2.1).abs() < 1e-5, "{door:?}");
        assert!(
            (door.geometry.unsigned_area() - 0.1).abs() < 1e-6,
            "{door:?}"
        );
    }
    let south = sliced
        .features
        .iter()
        .find(|f| f.kind == Kind::Wall && f.level == 1 && f.name.as_deref() == Some("Wall south"))
        .expect("south wall on level 1");
    assert!((south.base - block::STOREY_HEIGHT).abs() < 1e-6);
    assert!((south.top - block::STOREY_HEIGHT - block::WALL_HEIGHT).abs() < 1e-5);
    assert!((south.geometry.unsigned_area() - 10.4 * 0.2).abs() < 1e-6);
}

#[test]
fn rooms_without_side_file_have_no_name() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), false);
    let sliced = slice_model(&path, &block_options()).expect("block slices");
    let rooms: Vec<_> = sliced
        .features
        .iter()
        .filter(|f| f.kind == Kind::Room)
        .collect();
    assert_eq!(rooms.len(), 5);
    assert!(rooms.iter().all(|room| room.name.is_none()), "{rooms:?}");
}

#[test]
fn configured_floors_override_detection() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), true);
    let options = FloorplanOptions {
        floors: Some(vec![3.0]),
        level_names: vec!["Upper floor".to_owned()],
        ..block_options()
    };
    let sliced = slice_model(&path, &options).expect("block slices");
    assert_eq!(sliced.levels.len(), 1);
    assert_eq!(sliced.levels[0].name.as_deref(), Some("Upper floor"));
    let rooms = sliced
        .features
        .iter()
        .filter(|f| f.kind == Kind::Room)
        .count();
    assert_eq!(rooms, 2);
}

#[test]
fn invalid_options_are_named() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), false);
    let cases = [
        (FloorplanOptions::default(), "no georeference"),
        (
            FloorplanOptions {
                anchor: Some([200.0, 0.0]),
                ..block_options()
            },
            "anchor",
        ),
        (
            FloorplanOptions {
                anchor: Some([0.0, 89.0]),
                ..block_options()
            },
            "anchor",
        ),
        (
            FloorplanOptions {
                scale: 0.0,
                ..block_options()
            },
            "scale",
        ),
        (
            FloorplanOptions {
                cut_height: f64::NAN,
                ..block_options()
            },
            "cut_height",
        ),
        (
            FloorplanOptions {
                floors: Some(Vec::new()),
                ..block_options()
            },
            "floors",
        ),
        (
            FloorplanOptions {
                max_triangles: 100,
                ..block_options()
            },
            "max_triangles",
        ),
        (
            FloorplanOptions {
                max_file_mb: 0,
                ..block_options()
            },
            "max_file_mb",
        ),
    ];
    for (options, expected) in cases {
        let error = FloorplanSource::open(&path, &options)
            .expect_err(expected)
            .to_string();
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn scale_converts_model_units_to_metres() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = block::write(folder.path(), false);
    let options = FloorplanOptions {
        scale: 0.5,
        ..block_options()
    };
    // At 0.5 m per model unit the storeys are 1.5 m apart, and the cut at 0.6 m is 1.2 model
    // units above each floor. Floors and cut height are in metres.
    let options = FloorplanOptions {
        floors: Some(vec![0.0, 1.5]),
        cut_height: 0.6,
        ..options
    };
    let sliced = slice_model(&path, &options).expect("block slices");
    let rooms = sliced
        .features
        .iter()
        .filter(|f| f.kind == Kind::Room)
        .count();
    assert_eq!(rooms, 5);
    assert!(
        (sliced.levels[1].elevation - 3.0).abs() < 1e-9,
        "model units"
    );
}

/// Writes the block into `folder` with its JSON changed by `change`, and returns its path.
fn write_changed_block(
    folder: &std::path::Path,
    change: impl Fn(&mut serde_json::Value),
) -> std::path::PathBuf {
    let path = block::write(folder, true);
    let gltf = gltf::Gltf::from_slice(&std::fs::read(&path).expect("block")).expect("block parses");
    let mut document = serde_json::to_value(gltf.document.into_json()).expect("JSON");
    change(&mut document);
    let binary = gltf.blob.expect("binary chunk");
    std::fs::write(&path, block::glb(&document, &binary)).expect("write");
    path
}

/// Writes the block with its JSON changed by `change`, and returns the error of opening it.
fn open_changed_block(change: impl Fn(&mut serde_json::Value)) -> String {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = write_changed_block(folder.path(), change);
    match FloorplanSource::open(&path, &block_options()) {
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    }
}

#[test]
fn hostile_models_are_rejected_with_their_reason() {
    type Change = fn(&mut serde_json::Value);
    let cases: [(&str, Change, &str); 8] = [
        (
            "binary chunk shorter than its buffer",
            |d| d["buffers"][0]["byteLength"] = serde_json::json!(100_000),
            "invalid buffer 0",
        ),
        (
            "accessor past its buffer view",
            |d| d["accessors"][1]["count"] = serde_json::json!(3000),
            "needs",
        ),
        (
            "index beyond the positions",
            |d| d["accessors"][0]["count"] = serde_json::json!(4),
            "beyond the 4 positions",
        ),
        (
            "buffer view past the buffer",
            |d| d["bufferViews"][1]["byteLength"] = serde_json::json!(100_000),
            "runs past the end",
        ),
        (
            "unsupported required extension",
            |d| d["extensionsRequired"] = serde_json::json!(["EXT_meshopt_compression"]),
            "EXT_meshopt_compression",
        ),
        (
            "node cycle",
            |d| d["nodes"][0]["children"] = serde_json::json!([0]),
            "nested more than",
        ),
        (
            "missing mesh",
            |d| d["nodes"][0]["mesh"] = serde_json::json!(7),
            "mesh 7",
        ),
        (
            "repeated instances",
            |d| {
                // Nine nodes that each list the next ten times: 10^8 visits.
                let nodes = d["nodes"].as_array_mut().expect("nodes");
                let first = nodes.len();
                for level in 0..9 {
                    nodes.push(serde_json::json!({ "children": vec![first + level + 1; 10] }));
                }
                nodes.push(serde_json::json!({ "mesh": 0 }));
                d["scenes"][0]["nodes"] = serde_json::json!([first]);
            },
            "visits more than",
        ),
    ];
    for (case, change, expected) in cases {
        let error = open_changed_block(change);
        assert!(error.contains(expected), "{case}: {error:?}");
    }
}

#[test]
fn fzk_haus_floors_are_detected_from_slabs() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("geodata/fzk-haus/fzk-haus.glb");
    let sliced = slice_model(&path, &block_options()).expect("the house slices");
    let elevations: Vec<f64> = sliced.levels.iter().map(|l| l.elevation).collect();
    assert_eq!(elevations.len(), 2, "{elevations:?}");
    // The storeys are at 0 and 2.7 m in the IFC file; the slabs' upper faces lie there.
    assert!(elevations[0].abs() < 0.05, "{elevations:?}");
    assert!((elevations[1] - 2.7).abs() < 0.05, "{elevations:?}");
}

/// Encodes bytes as standard base64 with padding, for data URIs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |word, (i, &b)| word | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[(word >> (18 - 6 * i) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[test]
fn gltf_with_data_uri_buffer_slices() {
    let folder = tempfile::tempdir().expect("tempdir");
    let glb_path = block::write(folder.path(), true);
    let gltf = gltf::Gltf::from_slice(&std::fs::read(&glb_path).expect("block")).expect("parses");
    let binary = gltf.blob.clone().expect("binary chunk");
    let mut document = serde_json::to_value(gltf.document.into_json()).expect("JSON");
    document["buffers"][0]["uri"] = serde_json::json!(format!(
        "data:application/octet-stream;base64,{}",
        base64(&binary)
    ));
    let path = folder.path().join("block.gltf");
    std::fs::write(&path, document.to_string()).expect("write");
    std::fs::remove_file(&glb_path).expect("remove the GLB");

    let source = FloorplanSource::open(&path, &block_options()).expect("the .gltf slices");
    assert_eq!(source.levels().len(), 2);
    let glb = gltf::Gltf::from_slice(source.glb()).expect("served as GLB");
    assert_eq!(glb.blob.as_deref(), Some(binary.as_slice()));
}

#[test]
fn small_gaps_between_walls_still_enclose_rooms() {
    // Move the north end of the wall between the cells 8 mm away from the north wall.
    let folder = tempfile::tempdir().expect("tempdir");
    let path = write_changed_block(folder.path(), |document| {
        for node in document["nodes"].as_array_mut().expect("nodes") {
            if node["name"] == "Wall between cells" {
                node["translation"][2] = serde_json::json!(-(6.0 - 0.008));
                node["scale"][2] = serde_json::json!(2.8 - 0.008);
            }
        }
    });
    let sliced = slice_model(&path, &block_options()).expect("block slices");
    let cells: Vec<_> = sliced
        .features
        .iter()
        .filter(|f| f.kind == Kind::Room && f.level == 0)
        .collect();
    assert_eq!(cells.len(), 3, "corridor and two cells: {cells:#?}");
    for name in ["Cell 1", "Cell 2"] {
        let cell = cells
            .iter()
            .find(|f| f.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name}"));
        let truth = block::truth()
            .into_iter()
            .find(|room| room.name == name)
            .expect("truth");
        let expected = rectangle(truth.rectangle).unsigned_area();
        assert!(
            (cell.geometry.unsigned_area() - expected).abs() < 0.1,
            "{name}: {}",
            cell.geometry.unsigned_area()
        );
    }
}
