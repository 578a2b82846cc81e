//! Rewrites an MVT tile for a response without a key: private attributes are removed (their
//! keys, and the values only they used), and sensitive points are snapped to their grid cell
//! or, from the sensitive zoom on, left out. Other features keep their bytes.
//!
//! The tile is read at the protobuf level (Mapbox Vector Tile specification 2.1), so every
//! backend that yields MVT (vector files, floorplans, density points, archives) is covered.

use thiserror::Error;

use super::config::{Sensitive, SourceAccess, is_truthy};
use super::generalise::{Grid, snap_tile_point};
use crate::mvt_wire::{Reader, WireError};
use crate::tile::TileCoord;

#[derive(Debug, Error)]
pub enum MvtError {
    #[error("the vector tile is malformed at byte {0}: it cannot be filtered, so it is not served")]
    Malformed(usize),
}

impl From<WireError> for MvtError {
    fn from(error: WireError) -> Self {
        Self::Malformed(error.0)
    }
}

/// The rules for one source's tiles in a response without a key.
#[derive(Debug, Clone)]
struct Rules<'a> {
    access: &'a SourceAccess,
    grid: Grid,
    /// Whether sensitive features are left out (at or above the sensitive zoom).
    drop_sensitive: bool,
    /// Whether the tile is a density source's: there only the `points` layer contains single
    /// points, and the `cells` layer, whose small cells show where a lone point is, is left
    /// out from the sensitive zoom on.
    density: bool,
}

/// Returns `tile` without the private attributes and exact sensitive points of `access`, or
/// `None` when no feature is left. `sensitive_zoom` and `cell_m` come from `[access]`;
/// `density` marks a density source's tile.
pub fn filter_tile(
    tile_bytes: &[u8],
    access: &SourceAccess,
    coord: TileCoord,
    (sensitive_zoom, cell_m): (u8, f64),
    density: bool,
) -> Result<Option<Vec<u8>>, MvtError> {
    let rules = Rules {
        access,
        grid: Grid::new(cell_m),
        drop_sensitive: coord.z >= sensitive_zoom,
        density,
    };
    let bounds = coord.bounds_mercator();
    let mut out = Vec::with_capacity(tile_bytes.len());
    let mut any = false;
    let mut reader = Reader::new(tile_bytes, 0);
    while let Some((field, wire)) = reader.key()? {
        if field == 3 && wire == 2 {
            let (layer, offset) = reader.bytes()?;
            if let Some(filtered) = filter_layer(layer, offset, &rules, &bounds)? {
                any = true;
                write_key(&mut out, 3, 2);
                write_bytes(&mut out, &filtered);
            }
        } else {
            let raw = reader.skip_raw(wire)?;
            out.extend_from_slice(raw);
        }
    }
    Ok(any.then_some(out))
}

/// One feature as read: its raw fields and the parts that may change.
struct Feature<'a> {
    id: Option<u64>,
    tags: Vec<u32>,
    geometry_type: u64,
    geometry: Vec<u32>,
    other: Vec<&'a [u8]>,
}

fn filter_layer(
    layer: &[u8],
    base: usize,
    rules: &Rules<'_>,
    bounds: &crate::tile::Bbox,
) -> Result<Option<Vec<u8>>, MvtError> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut values: Vec<&[u8]> = Vec::new();
    let mut features = Vec::new();
    let mut extent = 4096_u32;
    let mut name = String::new();
    let mut head = Vec::new();
    let mut reader = Reader::new(layer, base);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (2, 2) => {
                let (bytes, offset) = reader.bytes()?;
                features.push(read_feature(bytes, offset)?);
            }
            (3, 2) => keys.push(reader.bytes()?.0),
            (4, 2) => values.push(reader.bytes()?.0),
            (1, 2) => {
                let (bytes, _) = reader.bytes()?;
                name = String::from_utf8_lossy(bytes).into_owned();
                write_key(&mut head, 1, 2);
                write_bytes(&mut head, bytes);
            }
            (5, 0) => {
                extent = u32::try_from(reader.varint()?).unwrap_or(4096);
                write_key(&mut head, 5, 0);
                write_varint(&mut head, u64::from(extent));
            }
            _ => head.extend_from_slice(reader.skip_raw(wire)?),
        }
    }
    let key_names: Vec<String> = keys
        .iter()
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .collect();
    // NOTE: below the sensitive zoom, cells keep their counts unchanged. A cell is
    // `cell_size` screen pixels wide, so at zooms just below it a cell with one point can be
    // smaller than `sensitive_cell_m`. Keep `sensitive_zoom` low enough for the cell size.
    if rules.density && rules.access.sensitive.is_some() && name == "cells" && rules.drop_sensitive
    {
        return Ok(None);
    }
    // In a density tile only single points can be sensitive.
    let layer_sensitive = !rules.density || name == "points";
    let sensitive_key = match &rules.access.sensitive {
        Some(Sensitive::Attribute(name)) => key_names.iter().position(|key| key == name),
        _ => None,
    };

    let mut kept_keys: Vec<Option<u32>> = vec![None; keys.len()];
    let mut kept_values: Vec<Option<u32>> = vec![None; values.len()];
    let (mut new_keys, mut new_values): (Vec<&[u8]>, Vec<&[u8]>) = (Vec::new(), Vec::new());
    let mut body = Vec::new();
    for mut feature in features {
        let sensitive = layer_sensitive && is_sensitive(&feature, rules, sensitive_key, &values);
        if sensitive {
            // Lines and polygons cannot be snapped to one cell, so they go too.
            if rules.drop_sensitive || feature.geometry_type != 1 {
                continue;
            }
            feature.geometry = snap_points(&feature.geometry, rules.grid, bounds, extent)
                .ok_or(MvtError::Malformed(base))?;
        }
        let mut tags = Vec::with_capacity(feature.tags.len());
        for pair in feature.tags.chunks_exact(2) {
            let (key, value) = (pair[0] as usize, pair[1] as usize);
            let Some(name) = key_names.get(key) else {
                continue;
            };
            if rules.access.is_private_attribute(name) || value >= values.len() {
                continue;
            }
            let key_index = *kept_keys[key].get_or_insert_with(|| {
                new_keys.push(keys[key]);
                (new_keys.len() - 1) as u32
            });
            let value_index = *kept_values[value].get_or_insert_with(|| {
                new_values.push(values[value]);
                (new_values.len() - 1) as u32
            });
            tags.extend([key_index, value_index]);
        }
        feature.tags = tags;
        write_key(&mut body, 2, 2);
        write_bytes(&mut body, &write_feature(&feature));
    }
    if body.is_empty() {
        return Ok(None);
    }
    let mut out = head;
    out.extend_from_slice(&body);
    for key in new_keys {
        write_key(&mut out, 3, 2);
        write_bytes(&mut out, key);
    }
    for value in new_values {
        write_key(&mut out, 4, 2);
        write_bytes(&mut out, value);
    }
    Ok(Some(out))
}

/// Returns whether `feature` is sensitive under `rules`; `sensitive_key` is the index of the
/// marking attribute among the layer's keys.
fn is_sensitive(
    feature: &Feature<'_>,
    rules: &Rules<'_>,
    sensitive_key: Option<usize>,
    values: &[&[u8]],
) -> bool {
    match &rules.access.sensitive {
        None | Some(Sensitive::All(false)) => false,
        Some(Sensitive::All(true)) => true,
        Some(Sensitive::Attribute(_)) => sensitive_key.is_some_and(|index| {
            feature.tags.chunks_exact(2).any(|pair| {
                pair[0] as usize == index
                    && values
                        .get(pair[1] as usize)
                        .is_some_and(|value| is_truthy(&decode_value(value)))
            })
        }),
    }
}

fn read_feature(bytes: &[u8], base: usize) -> Result<Feature<'_>, MvtError> {
    let mut feature = Feature {
        id: None,
        tags: Vec::new(),
        geometry_type: 0,
        geometry: Vec::new(),
        other: Vec::new(),
    };
    let mut reader = Reader::new(bytes, base);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, 0) => feature.id = Some(reader.varint()?),
            (2, 2) => feature.tags = reader.packed()?,
            (3, 0) => feature.geometry_type = reader.varint()?,
            (4, 2) => feature.geometry = reader.packed()?,
            _ => feature.other.push(reader.skip_raw(wire)?),
        }
    }
    Ok(feature)
}

fn write_feature(feature: &Feature<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(id) = feature.id {
        write_key(&mut out, 1, 0);
        write_varint(&mut out, id);
    }
    write_packed(&mut out, 2, &feature.tags);
    write_key(&mut out, 3, 0);
    write_varint(&mut out, feature.geometry_type);
    write_packed(&mut out, 4, &feature.geometry);
    for raw in &feature.other {
        out.extend_from_slice(raw);
    }
    out
}

/// Snaps every point of a point geometry (MoveTo commands only); `None` when it is not one.
fn snap_points(
    geometry: &[u32],
    grid: Grid,
    bounds: &crate::tile::Bbox,
    extent: u32,
) -> Option<Vec<u32>> {
    let mut points = Vec::new();
    let (mut x, mut y) = (0_i64, 0_i64);
    let mut index = 0;
    while index < geometry.len() {
        let command = geometry[index];
        let (id, count) = (command & 7, (command >> 3) as usize);
        if id != 1 {
            return None;
        }
        index += 1;
        for _ in 0..count {
            let dx = geometry.get(index)?;
            let dy = geometry.get(index + 1)?;
            x += unzigzag(*dx);
            y += unzigzag(*dy);
            points.push(snap_tile_point(grid, bounds, extent, x, y));
            index += 2;
        }
    }
    let mut out = Vec::with_capacity(points.len() * 2 + 1);
    out.push(1 | ((points.len() as u32) << 3));
    let (mut last_x, mut last_y) = (0_i64, 0_i64);
    for (px, py) in points {
        out.push(zigzag(px - last_x));
        out.push(zigzag(py - last_y));
        (last_x, last_y) = (px, py);
    }
    Some(out)
}

fn unzigzag(value: u32) -> i64 {
    i64::from(value >> 1) ^ -i64::from(value & 1)
}

fn zigzag(value: i64) -> u32 {
    ((value << 1) ^ (value >> 63)) as u32
}

/// Decodes an MVT `Value` message into JSON, for the sensitivity test only.
fn decode_value(bytes: &[u8]) -> serde_json::Value {
    let mut reader = Reader::new(bytes, 0);
    let Ok(Some((field, wire))) = reader.key() else {
        return serde_json::Value::Null;
    };
    match (field, wire) {
        (1, 2) => reader.bytes().map_or(serde_json::Value::Null, |(text, _)| {
            serde_json::Value::String(String::from_utf8_lossy(text).into_owned())
        }),
        (2, 5) => reader.fixed::<4>().map_or(serde_json::Value::Null, |raw| {
            serde_json::json!(f32::from_le_bytes(raw))
        }),
        (3, 1) => reader.fixed::<8>().map_or(serde_json::Value::Null, |raw| {
            serde_json::json!(f64::from_le_bytes(raw))
        }),
        (4 | 5, 0) => reader
            .varint()
            .map_or(serde_json::Value::Null, |n| serde_json::json!(n)),
        (6, 0) => reader.varint().map_or(serde_json::Value::Null, |n| {
            serde_json::json!(unzigzag(n as u32))
        }),
        (7, 0) => reader
            .varint()
            .map_or(serde_json::Value::Null, |n| serde_json::json!(n != 0)),
        _ => serde_json::Value::Null,
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_key(out: &mut Vec<u8>, field: u64, wire: u8) {
    write_varint(out, (field << 3) | u64::from(wire));
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_packed(out: &mut Vec<u8>, field: u64, values: &[u32]) {
    if values.is_empty() {
        return;
    }
    let mut packed = Vec::with_capacity(values.len() * 2);
    for value in values {
        write_varint(&mut packed, u64::from(*value));
    }
    write_key(out, field, 2);
    write_bytes(out, &packed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Visibility;

    fn value_string(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_key(&mut out, 1, 2);
        write_bytes(&mut out, text.as_bytes());
        out
    }

    /// A point at a pixel of the tile, with its attributes.
    type TestPoint<'a> = ((i64, i64), Vec<(&'a str, &'a str)>);

    /// Builds a one-layer tile of points at pixel (`x`, `y`), each with `attributes`.
    fn tile(points: &[TestPoint<'_>]) -> Vec<u8> {
        let mut layer = Vec::new();
        write_key(&mut layer, 15, 0);
        write_varint(&mut layer, 2);
        write_key(&mut layer, 1, 2);
        write_bytes(&mut layer, b"points");
        let mut keys: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        for ((x, y), attributes) in points {
            let mut tags = Vec::new();
            for (key, value) in attributes {
                let k = keys.iter().position(|k| k == key).unwrap_or_else(|| {
                    keys.push((*key).to_owned());
                    keys.len() - 1
                });
                let v = values.iter().position(|v| v == value).unwrap_or_else(|| {
                    values.push((*value).to_owned());
                    values.len() - 1
                });
                tags.extend([k as u32, v as u32]);
            }
            let feature = Feature {
                id: None,
                tags,
                geometry_type: 1,
                geometry: vec![9, zigzag(*x), zigzag(*y)],
                other: Vec::new(),
            };
            write_key(&mut layer, 2, 2);
            write_bytes(&mut layer, &write_feature(&feature));
        }
        for key in &keys {
            write_key(&mut layer, 3, 2);
            write_bytes(&mut layer, key.as_bytes());
        }
        for value in &values {
            write_key(&mut layer, 4, 2);
            write_bytes(&mut layer, &value_string(value));
        }
        write_key(&mut layer, 5, 0);
        write_varint(&mut layer, 4096);
        let mut out = Vec::new();
        write_key(&mut out, 3, 2);
        write_bytes(&mut out, &layer);
        out
    }

    fn access(private: &[&str], sensitive: Option<Sensitive>) -> SourceAccess {
        SourceAccess::new(
            Some(Visibility::Public),
            Vec::new(),
            private.iter().map(|name| (*name).to_owned()).collect(),
            sensitive,
        )
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    }

    #[test]
    fn private_attribute_and_its_value_go() {
        let bytes = tile(&[(
            (100, 200),
            vec![("name", "Camp 14"), ("witness", "CANARY-W")],
        )]);
        let coord = TileCoord::new(10, 870, 390).expect("tile");
        let filtered = filter_tile(
            &bytes,
            &access(&["witness"], None),
            coord,
            (12, 2000.0),
            false,
        )
        .expect("valid")
        .expect("a feature is left");
        assert!(!contains(&filtered, "CANARY-W"));
        assert!(!contains(&filtered, "witness"));
        assert!(contains(&filtered, "Camp 14"));
    }

    #[test]
    fn sensitive_points_snap_below_and_drop_at_the_zoom() {
        let bytes = tile(&[
            ((1234, 2345), vec![("witness", "yes")]),
            ((50, 60), vec![("witness", "no")]),
        ]);
        let rules = access(&[], Some(Sensitive::Attribute("witness".to_owned())));
        let low = TileCoord::new(8, 217, 97).expect("tile");
        let snapped = filter_tile(&bytes, &rules, low, (12, 2000.0), false)
            .expect("valid")
            .expect("features");
        assert_ne!(snapped, bytes, "the sensitive point moved");
        let again = filter_tile(&bytes, &rules, low, (12, 2000.0), false).expect("valid");
        assert_eq!(Some(snapped), again, "deterministic");

        let high = TileCoord::new(12, 3481, 1562).expect("tile");
        let dropped = filter_tile(&bytes, &rules, high, (12, 2000.0), false)
            .expect("valid")
            .expect("the other point stays");
        assert!(
            !contains(&dropped, "yes"),
            "the sensitive feature's value is gone"
        );
        assert!(contains(&dropped, "no"));
    }

    #[test]
    fn all_sensitive_at_high_zoom_leaves_nothing() {
        let bytes = tile(&[((10, 10), vec![("a", "b")])]);
        let rules = access(&[], Some(Sensitive::All(true)));
        let high = TileCoord::new(14, 0, 0).expect("tile");
        assert_eq!(
            filter_tile(&bytes, &rules, high, (12, 2000.0), false).expect("valid"),
            None
        );
    }

    #[test]
    fn truncated_tile_is_an_error() {
        let bytes = tile(&[((10, 10), vec![("a", "b")])]);
        let coord = TileCoord::new(3, 1, 1).expect("tile");
        let result = filter_tile(
            &bytes[..bytes.len() - 3],
            &access(&["a"], None),
            coord,
            (12, 2000.0),
            false,
        );
        assert!(result.is_err());
    }
}
