//! Vector tiles over HTTP: the camps and a file of invalid geometries, decoded as a web map
//! client would.

mod common;

use common::{TestServer, geodata, repo};
use geozero::mvt::{Message as _, Tile, tile};
use tessera::tile::{TileCoord, lonlat_to_tile};

fn value_text(value: &tile::Value) -> String {
    if let Some(text) = &value.string_value {
        return text.clone();
    }
    value
        .double_value
        .map(|v| v.to_string())
        .or(value.float_value.map(|v| v.to_string()))
        .or(value.int_value.map(|v| v.to_string()))
        .or(value.uint_value.map(|v| v.to_string()))
        .or(value.sint_value.map(|v| v.to_string()))
        .or(value.bool_value.map(|v| v.to_string()))
        .unwrap_or_default()
}

/// Collects the attributes of `feature` as key and value pairs.
fn attributes(layer: &tile::Layer, feature: &tile::Feature) -> Vec<(String, tile::Value)> {
    feature
        .tags
        .chunks_exact(2)
        .map(|pair| {
            (
                layer.keys[pair[0] as usize].clone(),
                layer.values[pair[1] as usize].clone(),
            )
        })
        .collect()
}

async fn decode_tile(server: &TestServer, source: &str, tile: TileCoord) -> Option<Tile> {
    let response = server
        .get(&format!(
            "/tiles/{source}/{}/{}/{}.pbf",
            tile.z, tile.x, tile.y
        ))
        .await;
    match response.status().as_u16() {
        204 => None,
        200 => {
            assert_eq!(
                response.headers()["content-type"],
                "application/vnd.mapbox-vector-tile"
            );
            Some(Tile::decode(response.bytes().await.expect("body").as_ref()).expect("valid MVT"))
        }
        status => panic!("{source} {tile}: status {status}"),
    }
}

#[tokio::test]
async fn camp_is_in_its_tile_with_typed_attributes() {
    let server = TestServer::serving(&[geodata("nk-prison-camps")]).await;
    // Camp 14, Kaechon, from camps.geojson: 125.95 E, 39.58 N (rounded).
    let tile = lonlat_to_tile(125.95, 39.58, 10);
    let decoded = decode_tile(&server, "camps", tile)
        .await
        .expect("the camp's tile has data");
    let layer = decoded
        .layers
        .iter()
        .find(|l| l.name == "camps")
        .expect("camps layer");
    assert_eq!(layer.extent, Some(4096));
    let camp = layer
        .features
        .iter()
        .find(|f| {
            attributes(layer, f)
                .iter()
                .any(|(k, v)| k == "name" && value_text(v).starts_with("Camp 14"))
        })
        .expect("Camp 14 in its tile");
    assert!(camp.id.is_some(), "features carry ids");
    let attributes = attributes(layer, camp);
    let get = |key: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("kind").and_then(|v| v.string_value).as_deref(),
        Some("Political prison camp (kwanliso)")
    );
    let prisoners = get("prisoners").expect("prisoners is set for Camp 14");
    assert!(
        prisoners.string_value.is_none(),
        "prisoners is a number, not text"
    );
    assert_eq!(
        get("province").and_then(|v| v.string_value).as_deref(),
        Some("South Pyongan Province")
    );
}

#[tokio::test]
async fn vector_tiles_are_gzipped_on_request_and_empty_tiles_are_204() {
    let server = TestServer::serving(&[geodata("nk-prison-camps")]).await;
    let tile = lonlat_to_tile(125.95, 39.58, 10);
    let path = format!("/tiles/camps/{}/{}/{}.pbf", tile.z, tile.x, tile.y);
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_proxy()
        .build()
        .expect("client");
    let gzipped = client
        .get(server.url(&path))
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .expect("request");
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "Accept-Encoding");
    let body = gzipped.bytes().await.expect("body");
    assert_eq!(&body[..2], &[0x1F, 0x8B], "gzip magic");
    let plain = client.get(server.url(&path)).send().await.expect("request");
    assert!(plain.headers().get("content-encoding").is_none());
    Tile::decode(plain.bytes().await.expect("body").as_ref()).expect("plain MVT");

    // Inside the camps' bounds but between camps: the Sea of Japan off Wonsan.
    let sea = lonlat_to_tile(128.5, 39.5, 12);
    let response = server
        .get(&format!("/tiles/camps/12/{}/{}.pbf", sea.x, sea.y))
        .await;
    assert_eq!(response.status(), 204);
    let outside = lonlat_to_tile(2.35, 48.85, 12);
    let response = server
        .get(&format!("/tiles/camps/12/{}/{}.pbf", outside.x, outside.y))
        .await;
    assert_eq!(response.status(), 404, "Paris is outside the camps' bounds");
    let deep = lonlat_to_tile(125.95, 39.58, 23);
    let response = server
        .get(&format!("/tiles/camps/23/{}/{}.pbf", deep.x, deep.y))
        .await;
    assert_eq!(
        response.status(),
        404,
        "zoom 23 is beyond maxzoom 22, so clients overzoom"
    );
}

#[tokio::test]
async fn tilejson_lists_vector_layers_and_fields() {
    let server = TestServer::serving(&[geodata("nk-prison-camps")]).await;
    let tilejson = server.json("/tiles/camps.json").await;
    assert_eq!(tilejson["minzoom"], 0);
    assert_eq!(tilejson["maxzoom"], 22);
    let layer = &tilejson["vector_layers"][0];
    assert_eq!(layer["id"], "camps");
    assert_eq!(layer["fields"]["name"], "String");
    assert_eq!(layer["fields"]["prisoners"], "Number");
    assert_eq!(
        tilejson["tiles"][0],
        format!(
            "http://{}/tiles/camps/{{z}}/{{x}}/{{y}}.pbf",
            server.address
        )
    );
    let bounds: Vec<f64> = tilejson["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    assert!(
        bounds[0] > 124.0 && bounds[2] < 131.0 && bounds[1] > 37.0 && bounds[3] < 43.0,
        "North Korea: {bounds:?}"
    );
}

#[tokio::test]
async fn invalid_geometries_are_repaired_or_skipped_and_the_rest_served() {
    let server = TestServer::serving(&[repo().join("tests/data/vector/invalid.geojson")]).await;
    assert!(
        server.state.failures.is_empty(),
        "the file is served despite its bad features"
    );
    let tilejson = server.json("/tiles/invalid.json").await;
    assert_eq!(tilejson["vector_layers"][0]["id"], "invalid");
    // The valid square is at 10.0 to 10.1 E, 10.0 to 10.1 N.
    let tile = lonlat_to_tile(10.05, 10.05, 8);
    let decoded = decode_tile(&server, "invalid", tile)
        .await
        .expect("features near 10 E, 10 N");
    let layer = &decoded.layers[0];
    let names: Vec<String> = layer
        .features
        .iter()
        .flat_map(|f| attributes(layer, f))
        .filter(|(k, _)| k == "name")
        .map(|(_, v)| value_text(&v))
        .collect();
    assert!(names.contains(&"valid".to_owned()), "{names:?}");
}
