//! OGC API – Tiles, Part 1 (OGC 20-057) and the collections of OGC API – Common: landing page,
//! conformance, collections, tilesets and tile matrix sets, under `/ogc`.

use serde_json::{Value, json};

use super::LayerDescription;
use super::features::CRS84;
use super::matrix_set::{CRS_URI, MatrixSet};
use crate::source::SourceKind;
use crate::tile::{MAX_ZOOM, tile_range};

/// Conformance classes that the `/ogc` routes implement.
pub const CONFORMANCE: [&str; 14] = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/jpeg",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
];

/// Media type of the OpenAPI 3.0 definition, as OGC API – Common names it.
pub const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";

fn link(rel: &str, media_type: &str, href: &str) -> Value {
    json!({ "rel": rel, "type": media_type, "href": href })
}

/// Builds the landing page at `{base}/ogc`.
pub fn landing_page(base: &str) -> Value {
    json!({
        "title": "Tessera",
        "description": "Satellite imagery and facility tiles for human-rights investigations, as OGC API – Tiles and OGC API – Features",
        "links": [
            link("self", "application/json", &format!("{base}/ogc")),
            link("conformance", "application/json", &format!("{base}/ogc/conformance")),
            link("http://www.opengis.net/def/rel/ogc/1.0/conformance", "application/json", &format!("{base}/ogc/conformance")),
            link("data", "application/json", &format!("{base}/ogc/collections")),
            link("http://www.opengis.net/def/rel/ogc/1.0/data", "application/json", &format!("{base}/ogc/collections")),
            link("http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "application/json", &format!("{base}/ogc/tileMatrixSets")),
            link("service-desc", OPENAPI, &format!("{base}/ogc/api")),
            link("service-doc", "text/html", &format!("{base}/")),
        ],
    })
}

/// Builds the OpenAPI 3.0 definition of the `/ogc` routes. Clients such as QGIS read the
/// default and maximum `limit` from it.
pub fn openapi(base: &str) -> Value {
    let query = |name: &str, description: &str, schema: Value| {
        json!({ "name": name, "in": "query", "description": description, "required": false,
                "style": "form", "explode": false, "schema": schema })
    };
    let json_response = |description: &str, media_type: &str| {
        json!({ "200": { "description": description, "content": { media_type: {} } },
                "400": { "description": "Invalid parameter", "content": { "application/problem+json": {} } },
                "404": { "description": "Not found", "content": { "application/problem+json": {} } } })
    };
    let path_parameter = |name: &str| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } });
    let get = |summary: &str, parameters: Vec<Value>, responses: Value| json!({ "get": { "summary": summary, "parameters": parameters, "responses": responses } });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Tessera", "version": env!("CARGO_PKG_VERSION"),
                  "description": "OGC API – Tiles and OGC API – Features of a Tessera server" },
        "servers": [{ "url": format!("{base}/ogc") }],
        "components": { "parameters": {
            "limit": query("limit", "Features per page", json!({ "type": "integer", "minimum": 1,
                "maximum": super::features::MAX_LIMIT, "default": super::features::DEFAULT_LIMIT })),
            "offset": query("offset", "Features to skip", json!({ "type": "integer", "minimum": 0, "default": 0 })),
            "bbox": query("bbox", "minLon,minLat,maxLon,maxLat in CRS84", json!({ "type": "array", "minItems": 4, "maxItems": 6, "items": { "type": "number" } })),
            "datetime": query("datetime", "RFC 3339 instant or interval start/end, '..' for an open end", json!({ "type": "string" })),
        } },
        "paths": {
            "/": get("Landing page", vec![], json_response("Links to the API", "application/json")),
            "/conformance": get("Conformance classes", vec![], json_response("Conformance classes", "application/json")),
            "/collections": get("Collections", vec![], json_response("Every source", "application/json")),
            "/collections/{collectionId}": get("One collection", vec![path_parameter("collectionId")], json_response("The collection", "application/json")),
            "/collections/{collectionId}/items": get("Features of a vector collection", vec![
                path_parameter("collectionId"),
                json!({ "$ref": "#/components/parameters/limit" }),
                json!({ "$ref": "#/components/parameters/offset" }),
                json!({ "$ref": "#/components/parameters/bbox" }),
                json!({ "$ref": "#/components/parameters/datetime" }),
            ], json_response("A page of features", "application/geo+json")),
            "/collections/{collectionId}/items/{featureId}": get("One feature", vec![path_parameter("collectionId"), path_parameter("featureId")], json_response("The feature", "application/geo+json")),
            "/collections/{collectionId}/tiles": get("Tilesets of a collection", vec![path_parameter("collectionId")], json_response("Tilesets", "application/json")),
            "/collections/{collectionId}/tiles/{tileMatrixSetId}": get("One tileset", vec![path_parameter("collectionId"), path_parameter("tileMatrixSetId")], json_response("The tileset", "application/json")),
            "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": get("One tile", vec![
                path_parameter("collectionId"), path_parameter("tileMatrixSetId"), path_parameter("tileMatrix"),
                path_parameter("tileRow"), path_parameter("tileCol"),
                query("f", "Tile format: png, jpg, webp or pbf", json!({ "type": "string" })),
            ], json_response("The tile", "application/octet-stream")),
            "/tileMatrixSets": get("Tile matrix sets", vec![], json_response("Tile matrix sets", "application/json")),
            "/tileMatrixSets/{tileMatrixSetId}": get("One tile matrix set", vec![path_parameter("tileMatrixSetId")], json_response("The tile matrix set", "application/json")),
        },
    })
}

pub fn conformance() -> Value {
    json!({ "conformsTo": CONFORMANCE })
}

fn data_type(layer: &LayerDescription) -> &'static str {
    match layer.kind {
        SourceKind::Raster => "map",
        SourceKind::Vector | SourceKind::Density => "vector",
    }
}

/// Builds the description of one collection: a source, with its tilesets and, for vector
/// sources served from files, its features.
pub fn collection(layer: &LayerDescription, base: &str, has_items: bool) -> Value {
    let url = format!("{base}/ogc/collections/{}", layer.id);
    let b = &layer.bounds;
    let tiles_rel = match layer.kind {
        SourceKind::Raster => "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map",
        SourceKind::Vector | SourceKind::Density => {
            "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
        }
    };
    let mut links = vec![
        link("self", "application/json", &url),
        link(tiles_rel, "application/json", &format!("{url}/tiles")),
    ];
    if has_items {
        links.push(link(
            "items",
            "application/geo+json",
            &format!("{url}/items"),
        ));
    }
    let mut extent =
        json!({ "spatial": { "bbox": [[b.min_x, b.min_y, b.max_x, b.max_y]], "crs": CRS84 } });
    if let (Some(first), Some(last)) = (layer.dates.first(), layer.dates.last()) {
        extent["temporal"] = json!({ "interval": [[first, last]] });
    }
    let mut document = json!({
        "id": layer.id,
        "title": layer.title,
        "extent": extent,
        "dataType": data_type(layer),
        "crs": [CRS84],
        "links": links,
    });
    if has_items {
        document["itemType"] = json!("feature");
    }
    if let Some(description) = &layer.description {
        document["description"] = json!(description);
    }
    if let Some(attribution) = &layer.attribution {
        document["attribution"] = json!(attribution);
    }
    document
}

/// Builds the list of collections. `has_items` returns whether a layer serves features.
pub fn collections(
    layers: &[LayerDescription],
    base: &str,
    has_items: impl Fn(&LayerDescription) -> bool,
) -> Value {
    let collections: Vec<Value> = layers
        .iter()
        .map(|layer| collection(layer, base, has_items(layer)))
        .collect();
    json!({
        "links": [link("self", "application/json", &format!("{base}/ogc/collections"))],
        "collections": collections,
    })
}

/// Builds the tileset of `layer` in `set`, with the tile URL template and the limits of each
/// zoom in the layer's range.
pub fn tileset(layer: &LayerDescription, set: MatrixSet, base: &str) -> Value {
    let url = format!(
        "{base}/ogc/collections/{}/tiles/{}",
        layer.id,
        set.identifier()
    );
    let limits: Vec<Value> = (layer.minzoom..=layer.maxzoom.min(MAX_ZOOM))
        .map(|zoom| {
            let (min_col, min_row, max_col, max_row) = tile_range(&layer.bounds, zoom);
            json!({
                "tileMatrix": zoom.to_string(),
                "minTileRow": min_row,
                "maxTileRow": max_row,
                "minTileCol": min_col,
                "maxTileCol": max_col,
            })
        })
        .collect();
    let mut links = vec![
        link("self", "application/json", &url),
        link(
            "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
            "application/json",
            &format!("{base}/ogc/tileMatrixSets/{}", set.identifier()),
        ),
    ];
    for format in &layer.formats {
        let mut item = link(
            "item",
            format.media_type(),
            &format!(
                "{url}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f={}",
                format.extension()
            ),
        );
        item["templated"] = json!(true);
        links.push(item);
    }
    let b = &layer.bounds;
    let mut document = json!({
        "title": layer.title,
        "dataType": data_type(layer),
        "crs": CRS_URI,
        "tileMatrixSetURI": set.uri(),
        "tileMatrixSetLimits": limits,
        "boundingBox": { "lowerLeft": [b.min_x, b.min_y], "upperRight": [b.max_x, b.max_y], "crs": CRS84 },
        "links": links,
    });
    if layer.kind == SourceKind::Vector {
        document["layers"] = json!([{ "id": layer.id, "dataType": "vector" }]);
    }
    document
}

/// Builds the list of tilesets of `layer`: one per tile matrix set.
pub fn tilesets(layer: &LayerDescription, base: &str) -> Value {
    let tilesets: Vec<Value> = MatrixSet::ALL
        .into_iter()
        .map(|set| {
            let url = format!(
                "{base}/ogc/collections/{}/tiles/{}",
                layer.id,
                set.identifier()
            );
            json!({
                "title": format!("{} in {}", layer.title, set.identifier()),
                "dataType": data_type(layer),
                "crs": CRS_URI,
                "tileMatrixSetURI": set.uri(),
                "links": [
                    link("self", "application/json", &url),
                    link("http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "application/json", &format!("{base}/ogc/tileMatrixSets/{}", set.identifier())),
                ],
            })
        })
        .collect();
    json!({ "tilesets": tilesets })
}

/// Builds the list of tile matrix sets.
pub fn tile_matrix_sets(base: &str) -> Value {
    let sets: Vec<Value> = MatrixSet::ALL
        .into_iter()
        .map(|set| {
            json!({
                "id": set.identifier(),
                "title": set.title(),
                "uri": set.uri(),
                "links": [link("self", "application/json", &format!("{base}/ogc/tileMatrixSets/{}", set.identifier()))],
            })
        })
        .collect();
    json!({ "tileMatrixSets": sets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::TileFormat;
    use crate::tile::Bbox;

    fn layer(kind: SourceKind) -> LayerDescription {
        LayerDescription {
            id: "camps".into(),
            title: "Camps".into(),
            description: None,
            attribution: Some("HRNK".into()),
            kind,
            formats: vec![TileFormat::Mvt],
            bounds: Bbox::new(124.0, 38.0, 130.0, 43.0),
            minzoom: 0,
            maxzoom: 14,
            dates: Vec::new(),
        }
    }

    #[test]
    fn collection_links_to_tiles_and_items() {
        let document = collection(&layer(SourceKind::Vector), "http://h", true);
        let rels: Vec<&str> = document["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter_map(|link| link["rel"].as_str())
            .collect();
        assert!(rels.contains(&"items"), "{rels:?}");
        assert!(rels.contains(&"http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"));
        assert_eq!(
            document["extent"]["spatial"]["bbox"][0],
            json!([124.0, 38.0, 130.0, 43.0])
        );
        assert_eq!(document["itemType"], "feature");
        let raster = collection(&layer(SourceKind::Raster), "http://h", false);
        assert!(raster.get("itemType").is_none());
        assert_eq!(raster["dataType"], "map");
    }

    #[test]
    fn tileset_limits_cover_each_zoom() {
        let document = tileset(
            &layer(SourceKind::Vector),
            MatrixSet::WebMercatorQuad,
            "http://h",
        );
        let limits = document["tileMatrixSetLimits"].as_array().expect("limits");
        assert_eq!(limits.len(), 15);
        assert_eq!(limits[8]["minTileCol"], 216);
        assert_eq!(limits[8]["maxTileRow"], 98);
        let template = document["links"]
            .as_array()
            .expect("links")
            .iter()
            .find(|link| link["rel"] == "item")
            .expect("item link");
        assert_eq!(
            template["href"],
            "http://h/ogc/collections/camps/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}?f=pbf"
        );
    }
}
