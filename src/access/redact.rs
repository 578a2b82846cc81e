//! Redaction of JSON documents for responses without a key: TileJSON, GeoJSON features,
//! styles; and the rule for 3D models.

use serde_json::Value;

use super::config::{Sensitive, is_truthy};
use super::current;
use super::generalise::Grid;
use crate::source::{Catalog, Source};
use crate::tile::Bbox;

/// Returns whether the current request gets everything of `source`. Outside a request
/// (start-up, tests) it does.
fn sees_everything(source: &Source) -> bool {
    current().is_none_or(|grant| grant.sees_everything(source))
}

/// Returns the bounds of `source` that the current request may see: grown to whole grid
/// cells when the source has sensitive points and the request has no key for it.
pub fn shown_bounds(source: &Source, bounds: Bbox) -> Bbox {
    let Some(grant) = current() else {
        return bounds;
    };
    if source.access.sensitive.is_none() || grant.sees_everything(source) {
        return bounds;
    }
    super::generalised_bounds(&bounds, grant.policy().sensitive_cell_m)
}

/// Removes every object member named like a private attribute of `source`, at any depth of
/// `value`, unless the request has a key for it.
pub fn redact_json_keys(source: &Source, value: &mut Value) {
    if source.access.private_attributes.is_empty() || sees_everything(source) {
        return;
    }
    remove_keys(value, &source.access.private_attributes);
}

fn remove_keys(value: &mut Value, names: &[String]) {
    match value {
        Value::Object(map) => {
            map.retain(|name, _| !names.contains(name));
            map.values_mut().for_each(|inner| remove_keys(inner, names));
        }
        Value::Array(items) => items.iter_mut().for_each(|inner| remove_keys(inner, names)),
        _ => {}
    }
}

/// Finishes a TileJSON document for the current request: private attributes leave
/// `vector_layers` and the `tessera:` members, and a key sent in `?key=` is added to the
/// tile URLs.
pub fn redact_tilejson(source: &Source, tilejson: &mut Value) {
    if let Value::Object(members) = tilejson {
        for (name, member) in members.iter_mut() {
            if name == "vector_layers" || name.starts_with("tessera:") {
                redact_json_keys(source, member);
            }
        }
    }
    if !may_serve_model(source)
        && let Some(members) = tilejson.as_object_mut()
    {
        members.remove("tessera:model");
    }
    let key = super::key_query();
    if key.is_empty() {
        return;
    }
    if let Some(tiles) = tilejson.get_mut("tiles").and_then(Value::as_array_mut) {
        for url in tiles {
            if let Some(text) = url.as_str() {
                *url = Value::String(with_query(text, &key));
            }
        }
    }
}

/// Appends `?key=…` to `url`, or `&key=…` when it already has a query.
fn with_query(url: &str, key_query: &str) -> String {
    if url.contains('?') {
        format!("{url}&{}", &key_query[1..])
    } else {
        format!("{url}{key_query}")
    }
}

/// Adds the current request's `?key=`, when it came that way, to every `href` of an OGC API
/// document under `base_url`, so that clients following the links keep sending the key.
pub fn add_key_to_links(document: &mut Value, base_url: &str) {
    let key = super::key_query();
    if key.is_empty() {
        return;
    }
    let mut pending = vec![document];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(members) => {
                for (name, member) in members.iter_mut() {
                    match member {
                        Value::String(href) if name == "href" && href.starts_with(base_url) => {
                            *href = with_query(href, &key);
                        }
                        Value::Object(_) | Value::Array(_) => pending.push(member),
                        _ => {}
                    }
                }
            }
            Value::Array(items) => pending.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// Returns `url` with the current request's `?key=` when it came that way.
pub fn url_with_key(url: &str) -> String {
    let key = super::key_query();
    if key.is_empty() {
        url.to_owned()
    } else {
        with_query(url, &key)
    }
}

/// Redacts a GeoJSON feature or feature collection of `source` for the current request:
/// private properties go, sensitive points move to their cell centre, and sensitive lines and
/// polygons go. Returns whether a lone feature was removed, so that the item route returns 404.
pub fn redact_features(source: &Source, document: &mut Value) -> bool {
    let Some(grant) = current() else {
        return false;
    };
    if !source.access.restricts() || grant.sees_everything(source) {
        return false;
    }
    let grid = Grid::new(grant.policy().sensitive_cell_m);
    if let Some(features) = document.get_mut("features").and_then(Value::as_array_mut) {
        features.retain_mut(|feature| redact_feature(source, grid, feature));
        let count = features.len();
        if let Some(returned) = document.get_mut("numberReturned") {
            *returned = Value::from(count);
        }
        // The total before removal would tell how many sensitive features exist.
        if let Some(matched) = document.as_object_mut() {
            matched.remove("numberMatched");
        }
        return false;
    }
    !redact_feature(source, grid, document)
}

/// Redacts one feature in place; returns `false` when it must be left out.
fn redact_feature(source: &Source, grid: Grid, feature: &mut Value) -> bool {
    let access = &source.access;
    let sensitive = match &access.sensitive {
        None => false,
        Some(Sensitive::All(all)) => *all,
        Some(Sensitive::Attribute(name)) => feature
            .get("properties")
            .and_then(|properties| properties.get(name))
            .is_some_and(is_truthy),
    };
    if let Some(properties) = feature.get_mut("properties") {
        remove_keys(properties, &access.private_attributes);
    }
    if !sensitive {
        return true;
    }
    let Some(geometry) = feature.get_mut("geometry") else {
        return true;
    };
    let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
    let snapped = match kind {
        "Point" => geometry
            .get("coordinates")
            .and_then(|c| snap_position(grid, c))
            .map(|position| serde_json::json!({ "type": "Point", "coordinates": position })),
        "MultiPoint" => geometry
            .get("coordinates")
            .and_then(Value::as_array)
            .and_then(|positions| {
                positions
                    .iter()
                    .map(|c| snap_position(grid, c))
                    .collect::<Option<Vec<Value>>>()
            })
            .map(|positions| serde_json::json!({ "type": "MultiPoint", "coordinates": positions })),
        _ => None,
    };
    match snapped {
        Some(value) => {
            *geometry = value;
            if let Some(members) = feature.as_object_mut() {
                members.remove("bbox");
            }
            true
        }
        None => false,
    }
}

/// Widens an items query's `bbox` to whole grid cells for a request without a key to a source
/// with sensitive points, and returns the box as requested, for [`keep_in_bbox`]. Whether a
/// point is found then depends on its cell, never on its exact position, so tiny boxes do not
/// locate it. A box across the antimeridian is left as it is.
pub fn widen_items_bbox(source: &Source, bbox: &mut Option<Bbox>) -> Option<Bbox> {
    let grant = current()?;
    let requested = (*bbox)?;
    if source.access.sensitive.is_none()
        || grant.sees_everything(source)
        || requested.min_x > requested.max_x
    {
        return None;
    }
    *bbox = Some(Grid::new(grant.policy().sensitive_cell_m).cover(&requested));
    Some(requested)
}

/// Removes the point features of an items page whose (generalised) position is outside
/// `requested`. Lines and polygons found in the widened box stay, so a page may hold a few
/// that only touch the cells around the requested box.
pub fn keep_in_bbox(document: &mut Value, requested: Option<Bbox>) {
    let Some(bbox) = requested else {
        return;
    };
    let inside = |position: &Value| {
        let lon = position.get(0).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let lat = position.get(1).and_then(Value::as_f64).unwrap_or(f64::NAN);
        (bbox.min_x..=bbox.max_x).contains(&lon) && (bbox.min_y..=bbox.max_y).contains(&lat)
    };
    let Some(features) = document.get_mut("features").and_then(Value::as_array_mut) else {
        return;
    };
    features.retain(|feature| {
        let geometry = &feature["geometry"];
        match geometry["type"].as_str() {
            Some("Point") => inside(&geometry["coordinates"]),
            Some("MultiPoint") => geometry["coordinates"]
                .as_array()
                .is_some_and(|positions| positions.iter().any(inside)),
            _ => true,
        }
    });
    let count = features.len();
    if let Some(returned) = document.get_mut("numberReturned") {
        *returned = Value::from(count);
    }
}

fn snap_position(grid: Grid, position: &Value) -> Option<Value> {
    let lon = position.get(0)?.as_f64()?;
    let lat = position.get(1)?.as_f64()?;
    let (lon, lat) = grid.snap(lon, lat);
    // Seven decimals is about 1 cm: the centre needs no more.
    let round = |v: f64| (v * 1e7).round() / 1e7;
    Some(serde_json::json!([round(lon), round(lat)]))
}

/// Filters a style document for the current request. Sources hidden from the request, and
/// sources on another host while third-party URLs are off, are removed with their layers.
/// `glyphs` and `sprite` on another host go too. `base` is this server's base URL.
pub fn filter_style(style: &mut Value, catalog: &Catalog, base: &str) {
    let allow_third_party = current().is_some_and(|grant| grant.policy().third_party_urls);
    let ours = |url: &str| url.starts_with(&format!("{base}/")) || url.starts_with('/');
    let tiles_prefix = format!("{base}/tiles/");
    let mut removed = Vec::new();
    if let Some(sources) = style.get_mut("sources").and_then(Value::as_object_mut) {
        sources.retain(|name, source| {
            let urls: Vec<String> = source
                .get("url")
                .and_then(Value::as_str)
                .into_iter()
                .chain(
                    source
                        .get("tiles")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str),
                )
                .map(str::to_owned)
                .collect();
            let keep = urls.iter().all(|url| {
                if let Some(rest) = url.strip_prefix(&tiles_prefix) {
                    let id = rest
                        .split(['/', '?'])
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches(".json");
                    return catalog.get(id).is_some();
                }
                allow_third_party || ours(url)
            });
            if keep {
                if let Some(url) = source.get("url").and_then(Value::as_str)
                    && url.starts_with(&tiles_prefix)
                {
                    source["url"] = Value::String(url_with_key(url));
                }
            } else {
                removed.push(name.clone());
            }
            keep
        });
    }
    if let Some(layers) = style.get_mut("layers").and_then(Value::as_array_mut) {
        layers.retain(|layer| {
            layer
                .get("source")
                .and_then(Value::as_str)
                .is_none_or(|source| !removed.iter().any(|name| name == source))
        });
    }
    if !allow_third_party && let Some(members) = style.as_object_mut() {
        for key in ["glyphs", "sprite"] {
            let foreign = match members.get(key) {
                Some(Value::String(url)) => !ours(url),
                Some(Value::Array(sprites)) => sprites.iter().any(|sprite| {
                    sprite
                        .get("url")
                        .and_then(Value::as_str)
                        .is_some_and(|url| !ours(url))
                }),
                _ => false,
            };
            if foreign {
                members.remove(key);
            }
        }
    }
}

/// Parses a style document, filters it with [`filter_style`] and writes it back.
pub fn filtered_style(
    text: &str,
    catalog: &Catalog,
    base: &str,
) -> Result<String, serde_json::Error> {
    let mut style: Value = serde_json::from_str(text)?;
    filter_style(&mut style, catalog, base);
    serde_json::to_string(&style)
}

/// Returns whether the current request may have the model (GLB and JSON) of `source`: node,
/// mesh and room names are in the model itself, so a source with private attributes serves its
/// model only with a key.
pub fn may_serve_model(source: &Source) -> bool {
    source.access.private_attributes.is_empty() || sees_everything(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_removed_at_any_depth() {
        let mut value = json!({
            "fields": { "name": "String", "witness": "String" },
            "facilities": [{ "witness": "CANARY", "id": 1 }],
        });
        remove_keys(&mut value, &["witness".to_owned()]);
        assert_eq!(
            value,
            json!({ "fields": { "name": "String" }, "facilities": [{ "id": 1 }] })
        );
    }

    #[test]
    fn key_query_joins_existing_query() {
        assert_eq!(with_query("/t/1.pbf", "?key=k"), "/t/1.pbf?key=k");
        assert_eq!(
            with_query("/t/1.pbf?date=2020", "?key=k"),
            "/t/1.pbf?date=2020&key=k"
        );
    }

    #[test]
    fn points_outside_the_requested_box_go() {
        let mut page = json!({
            "features": [
                { "geometry": { "type": "Point", "coordinates": [126.5, 39.5] } },
                { "geometry": { "type": "Point", "coordinates": [126.6, 39.5] } },
                { "geometry": { "type": "Polygon", "coordinates": [] } },
            ],
            "numberReturned": 3,
        });
        keep_in_bbox(&mut page, Some(Bbox::new(126.4, 39.4, 126.55, 39.6)));
        assert_eq!(page["features"].as_array().map(Vec::len), Some(2));
        assert_eq!(page["numberReturned"], 2);
    }

    #[test]
    fn positions_snap_to_the_grid() {
        let grid = Grid::new(2000.0);
        let snapped = snap_position(grid, &json!([126.123_456_7, 39.654_321])).expect("point");
        let (lon, lat) = grid.snap(126.123_456_7, 39.654_321);
        assert!((snapped[0].as_f64().expect("lon") - lon).abs() < 1e-6);
        assert!((snapped[1].as_f64().expect("lat") - lat).abs() < 1e-6);
        assert!(snap_position(grid, &json!(["x"])).is_none());
    }
}
