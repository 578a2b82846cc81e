//! A detention block written as a GLB by the tests, with rooms whose outlines are known.
//!
//! Two storeys 3 m apart, walls 0.2 m thick and 2.8 m high, a 1 m door on each storey, and a
//! side file that names the rooms. Every box is one shared unit cube, placed and sized by its
//! node's translation and scale under a parent node per storey, so node transforms are
//! exercised. Plan coordinates are metres east (glTF X) and north (glTF -Z) of the origin.

#![allow(
    unreachable_pub,
    reason = "shared by the unit tests and the integration tests"
)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

/// A room of the block as built: its level, name and rectangle `[west, south, east, north]`.
#[derive(Debug, Clone)]
pub struct TruthRoom {
    pub level: usize,
    pub name: &'static str,
    pub rectangle: [f64; 4],
}

/// A box of the block: node name, plan rectangle `[west, south, east, north]`, and bottom and
/// top heights relative to its storey.
struct Block {
    name: String,
    rectangle: [f64; 4],
    bottom: f64,
    top: f64,
}

fn block(name: &str, rectangle: [f64; 4], bottom: f64, top: f64) -> Block {
    Block {
        name: name.to_owned(),
        rectangle,
        bottom,
        top,
    }
}

pub const WALL_HEIGHT: f64 = 2.8;
pub const STOREY_HEIGHT: f64 = 3.0;

/// Returns the boxes of one storey. Storey 0 has a corridor and two cells, and storey 1 a
/// corridor and a day room. The door is thinner than the wall around it.
fn storey(level: usize) -> Vec<Block> {
    let h = WALL_HEIGHT;
    let mut boxes = vec![
        block("Wall south", [0.0, 0.0, 10.4, 0.2], 0.0, h),
        block("Wall north", [0.0, 6.0, 10.4, 6.2], 0.0, h),
        block("Wall west", [0.0, 0.2, 0.2, 6.0], 0.0, h),
        block("Wall east", [10.2, 0.2, 10.4, 6.0], 0.0, h),
    ];
    let door_west = if level == 0 { 1.0 } else { 8.0 };
    let door_east = door_west + 1.0;
    boxes.push(block(
        "Wall corridor west",
        [0.2, 3.0, door_west, 3.2],
        0.0,
        h,
    ));
    boxes.push(block(
        "Wall corridor east",
        [door_east, 3.0, 10.2, 3.2],
        0.0,
        h,
    ));
    boxes.push(block(
        &format!("Door {level}"),
        [door_west, 3.05, door_east, 3.15],
        0.0,
        2.1,
    ));
    if level == 0 {
        boxes.push(block("Wall between cells", [5.0, 3.2, 5.2, 6.0], 0.0, h));
    }
    boxes.push(block(
        &format!("Slab {level}"),
        [0.0, 0.0, 10.4, 6.2],
        -0.2,
        0.0,
    ));
    boxes
}

/// Returns the rooms as built.
pub fn truth() -> Vec<TruthRoom> {
    vec![
        TruthRoom {
            level: 0,
            name: "Corridor",
            rectangle: [0.2, 0.2, 10.2, 3.0],
        },
        TruthRoom {
            level: 0,
            name: "Cell 1",
            rectangle: [0.2, 3.2, 5.0, 6.0],
        },
        TruthRoom {
            level: 0,
            name: "Cell 2",
            rectangle: [5.2, 3.2, 10.2, 6.0],
        },
        TruthRoom {
            level: 1,
            name: "Upper corridor",
            rectangle: [0.2, 0.2, 10.2, 3.0],
        },
        TruthRoom {
            level: 1,
            name: "Day room",
            rectangle: [0.2, 3.2, 10.2, 6.0],
        },
    ]
}

/// Returns the room side file, which names each room by its centre.
fn rooms_toml() -> String {
    let mut text = String::new();
    for room in truth() {
        let [w, s, e, n] = room.rectangle;
        let _ = write!(
            text,
            "[[rooms]]\nlevel = {}\npoint = [{}, {}]\nname = \"{}\"\n\n",
            room.level,
            f64::midpoint(w, e),
            f64::midpoint(s, n),
            room.name
        );
    }
    text
}

/// Returns the unit cube from 0 to 1 on each axis: 8 positions and 12 outward-facing
/// triangles.
fn unit_cube() -> (Vec<f32>, Vec<u32>) {
    let mut positions = Vec::new();
    for i in 0..8_u32 {
        positions.extend([(i & 1) as f32, ((i >> 1) & 1) as f32, ((i >> 2) & 1) as f32]);
    }
    let faces = [
        [0, 4, 6, 2],
        [1, 3, 7, 5],
        [0, 1, 5, 4],
        [2, 6, 7, 3],
        [0, 2, 3, 1],
        [4, 5, 7, 6],
    ];
    let indices = faces
        .iter()
        .flat_map(|f| [f[0], f[1], f[2], f[0], f[2], f[3]])
        .collect();
    (positions, indices)
}

/// Writes `block.glb` and `block.rooms.toml` into `folder` and returns the model's path.
/// With `side_file` false only the model is written.
pub fn write(folder: &Path, side_file: bool) -> PathBuf {
    let (positions, indices) = unit_cube();
    let mut binary: Vec<u8> = positions.iter().flat_map(|v| v.to_le_bytes()).collect();
    let index_offset = binary.len();
    binary.extend(indices.iter().flat_map(|i| i.to_le_bytes()));

    let mut nodes = Vec::new();
    let mut storeys = Vec::new();
    for level in 0..2 {
        let mut children = Vec::new();
        for b in storey(level) {
            let [w, s, e, n] = b.rectangle;
            children.push(nodes.len());
            nodes.push(json!({
                "name": b.name,
                "mesh": 0,
                "translation": [w, b.bottom, -n],
                "scale": [e - w, b.top - b.bottom, n - s],
            }));
        }
        storeys.push(nodes.len());
        nodes.push(json!({
            "name": format!("Storey {level}"),
            "children": children,
            "translation": [0.0, level as f64 * STOREY_HEIGHT, 0.0],
        }));
    }
    // A roof slab, whose upper face floor detection must not take for a floor.
    storeys.push(nodes.len());
    nodes.push(json!({
        "name": "Roof",
        "mesh": 0,
        "translation": [0.0, 2.0 * STOREY_HEIGHT - 0.2, -6.2],
        "scale": [10.4, 0.2, 6.2],
    }));

    let document = json!({
        "asset": { "version": "2.0", "generator": "Tessera tests" },
        "scene": 0,
        "scenes": [{ "nodes": storeys }],
        "nodes": nodes,
        "meshes": [{ "name": "unit cube", "primitives": [{ "attributes": { "POSITION": 0 }, "indices": 1 }] }],
        "accessors": [
            { "bufferView": 0, "componentType": 5126, "count": 8, "type": "VEC3",
              "min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 1.0] },
            { "bufferView": 1, "componentType": 5125, "count": indices.len(), "type": "SCALAR" },
        ],
        "bufferViews": [
            { "buffer": 0, "byteOffset": 0, "byteLength": index_offset },
            { "buffer": 0, "byteOffset": index_offset, "byteLength": binary.len() - index_offset },
        ],
        "buffers": [{ "byteLength": binary.len() }],
    });
    let path = folder.join("block.glb");
    std::fs::write(&path, glb(&document, &binary)).expect("write block.glb");
    if side_file {
        std::fs::write(folder.join("block.rooms.toml"), rooms_toml()).expect("write room names");
    }
    path
}

/// Packs a document and its binary chunk as GLB.
pub fn glb(document: &serde_json::Value, binary: &[u8]) -> Vec<u8> {
    let mut json_chunk = document.to_string().into_bytes();
    while !json_chunk.len().is_multiple_of(4) {
        json_chunk.push(b' ');
    }
    let mut binary_chunk = binary.to_vec();
    while !binary_chunk.len().is_multiple_of(4) {
        binary_chunk.push(0);
    }
    let length = 12 + 8 + json_chunk.len() + 8 + binary_chunk.len();
    let mut out = Vec::new();
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2_u32.to_le_bytes());
    out.extend_from_slice(&(length as u32).to_le_bytes());
    out.extend_from_slice(&(json_chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json_chunk);
    out.extend_from_slice(&(binary_chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&binary_chunk);
    out
}
