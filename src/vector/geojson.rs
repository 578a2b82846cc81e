//! Features of a vector source as GeoJSON in CRS84 (longitude, latitude), for OGC API –
//! Features.

use geo::{Coord, Geometry, Intersects, LineString, Polygon, Rect};
use serde_json::{Map, Value, json};

use super::VectorSource;
use super::fields::PropertyValue;
use crate::tile::{Bbox, MAX_LATITUDE, lonlat_to_mercator, mercator_to_lonlat};

/// A feature of a vector source, addressed by its layer and its position in that layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureRef {
    layer: usize,
    index: usize,
}

/// Decimal places kept in GeoJSON coordinates: 1e-7 degrees is about 1 cm, and hides the
/// round-off of the trip through Web Mercator.
const COORDINATE_DECIMALS: i32 = 7;

impl VectorSource {
    /// Returns the features whose geometry intersects `bbox` (in degrees, longitude first; a
    /// box with `min_x > max_x` crosses the antimeridian), or every feature for `None`, in
    /// layer order and then file order.
    pub fn find_features(&self, bbox: Option<&Bbox>) -> Vec<FeatureRef> {
        let mut found = Vec::new();
        for (layer_index, layer) in self.layers.iter().enumerate() {
            let mut indices: Vec<usize> = match bbox {
                None => (0..layer.features.len()).collect(),
                Some(bbox) => mercator_boxes(bbox)
                    .iter()
                    .flat_map(|query| {
                        let rect = Rect::new(
                            Coord {
                                x: query.min_x,
                                y: query.min_y,
                            },
                            Coord {
                                x: query.max_x,
                                y: query.max_y,
                            },
                        );
                        layer
                            .features_in(query)
                            .filter(move |&index| layer.features[index].geometry.intersects(&rect))
                    })
                    .collect(),
            };
            indices.sort_unstable();
            indices.dedup();
            found.extend(indices.into_iter().map(|index| FeatureRef {
                layer: layer_index,
                index,
            }));
        }
        found
    }

    /// Returns the feature id that OGC API – Features uses: the feature's position counted
    /// over all layers, so that ids are unique within the source.
    pub fn feature_id(&self, feature: FeatureRef) -> usize {
        let before: usize = self.layers[..feature.layer]
            .iter()
            .map(|layer| layer.features.len())
            .sum();
        before + feature.index
    }

    /// Finds a feature by the id that [`VectorSource::feature_id`] returns.
    pub fn feature_by_id(&self, id: usize) -> Option<FeatureRef> {
        let mut remaining = id;
        for (layer_index, layer) in self.layers.iter().enumerate() {
            if remaining < layer.features.len() {
                return Some(FeatureRef {
                    layer: layer_index,
                    index: remaining,
                });
            }
            remaining -= layer.features.len();
        }
        None
    }

    /// Returns the name of a feature's layer and its geometry in Web Mercator metres, for
    /// drawing it.
    pub fn feature_geometry(&self, feature: FeatureRef) -> (&str, &Geometry<f64>) {
        let layer = &self.layers[feature.layer];
        (&layer.name, &layer.features[feature.index].geometry)
    }

    /// Returns a feature's attributes as JSON values, in the order of the layer's fields.
    pub fn feature_properties(&self, feature: FeatureRef) -> Map<String, Value> {
        let layer = &self.layers[feature.layer];
        layer.features[feature.index]
            .properties
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    PropertyValue::String(text) => json!(text),
                    PropertyValue::Int(number) => json!(number),
                    PropertyValue::Double(number) => json!(number),
                    PropertyValue::Bool(flag) => json!(flag),
                };
                (layer.keys[*key].clone(), value)
            })
            .collect()
    }

    /// Builds a GeoJSON Feature with the geometry in degrees and the MVT layer name as the
    /// `layer` member.
    pub fn feature_geojson(&self, feature: FeatureRef) -> Value {
        let layer = &self.layers[feature.layer];
        json!({
            "type": "Feature",
            "id": self.feature_id(feature),
            "layer": layer.name,
            "geometry": geometry_json(&layer.features[feature.index].geometry),
            "properties": self.feature_properties(feature),
        })
    }
}

/// Converts a lon/lat box to Web Mercator boxes, split in two where it crosses the
/// antimeridian, with latitudes clamped to the Web Mercator world.
fn mercator_boxes(bbox: &Bbox) -> Vec<Bbox> {
    let to_mercator = |min_x: f64, max_x: f64| {
        let (x0, y0) = lonlat_to_mercator(min_x, bbox.min_y.clamp(-MAX_LATITUDE, MAX_LATITUDE));
        let (x1, y1) = lonlat_to_mercator(max_x, bbox.max_y.clamp(-MAX_LATITUDE, MAX_LATITUDE));
        Bbox::new(x0, y0, x1, y1)
    };
    if bbox.min_x <= bbox.max_x {
        vec![to_mercator(bbox.min_x, bbox.max_x)]
    } else {
        vec![
            to_mercator(bbox.min_x, 180.0),
            to_mercator(-180.0, bbox.max_x),
        ]
    }
}

fn position(coord: Coord<f64>) -> Value {
    let (lon, lat) = mercator_to_lonlat(coord.x, coord.y);
    let scale = 10f64.powi(COORDINATE_DECIMALS);
    json!([(lon * scale).round() / scale, (lat * scale).round() / scale])
}

fn line(line: &LineString<f64>) -> Value {
    Value::Array(line.coords().copied().map(position).collect())
}

fn rings(polygon: &Polygon<f64>) -> Value {
    let mut rings = vec![line(polygon.exterior())];
    rings.extend(polygon.interiors().iter().map(line));
    Value::Array(rings)
}

/// Converts a geometry in Web Mercator metres to a GeoJSON geometry in degrees.
fn geometry_json(geometry: &Geometry<f64>) -> Value {
    match geometry {
        Geometry::Point(point) => json!({ "type": "Point", "coordinates": position(point.0) }),
        Geometry::MultiPoint(points) => json!({
            "type": "MultiPoint",
            "coordinates": points.iter().map(|p| position(p.0)).collect::<Vec<_>>(),
        }),
        Geometry::Line(segment) => json!({
            "type": "LineString",
            "coordinates": [position(segment.start), position(segment.end)],
        }),
        Geometry::LineString(string) => {
            json!({ "type": "LineString", "coordinates": line(string) })
        }
        Geometry::MultiLineString(strings) => json!({
            "type": "MultiLineString",
            "coordinates": strings.iter().map(line).collect::<Vec<_>>(),
        }),
        Geometry::Polygon(polygon) => json!({ "type": "Polygon", "coordinates": rings(polygon) }),
        Geometry::MultiPolygon(polygons) => json!({
            "type": "MultiPolygon",
            "coordinates": polygons.iter().map(rings).collect::<Vec<_>>(),
        }),
        Geometry::GeometryCollection(collection) => json!({
            "type": "GeometryCollection",
            "geometries": collection.iter().map(geometry_json).collect::<Vec<_>>(),
        }),
        Geometry::Rect(rect) => {
            json!({ "type": "Polygon", "coordinates": rings(&rect.to_polygon()) })
        }
        Geometry::Triangle(triangle) => {
            json!({ "type": "Polygon", "coordinates": rings(&triangle.to_polygon()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use geo::{Point, polygon};

    use super::super::VectorOptions;
    use super::super::index::{LayerData, StoredFeature};
    use super::*;

    #[test]
    fn geometries_return_to_degrees() {
        let (x, y) = lonlat_to_mercator(125.95, 39.58);
        let point = geometry_json(&Point::new(x, y).into());
        assert_eq!(
            point,
            json!({ "type": "Point", "coordinates": [125.95, 39.58] })
        );

        let (x0, y0) = lonlat_to_mercator(10.0, 20.0);
        let (x1, y1) = lonlat_to_mercator(11.0, 21.0);
        let square: Polygon<f64> = polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)];
        let json = geometry_json(&square.into());
        assert_eq!(json["type"], "Polygon");
        assert_eq!(json["coordinates"][0][2], json!([11.0, 21.0]));
    }

    fn point_layer(name: &str, points: &[(f64, f64)]) -> LayerData {
        let features = points
            .iter()
            .map(|(lon, lat)| {
                let (x, y) = lonlat_to_mercator(*lon, *lat);
                StoredFeature {
                    id: None,
                    properties: vec![(0, PropertyValue::String(format!("{name} {lon}")))],
                    geometry: Point::new(x, y).into(),
                }
            })
            .collect();
        LayerData::new(name.to_owned(), vec!["name".to_owned()], features)
    }

    fn two_layer_source() -> VectorSource {
        VectorSource {
            path: "test.gpkg".into(),
            options: VectorOptions::default(),
            infos: Vec::new(),
            layers: vec![
                point_layer("camps", &[(126.0, 39.5), (129.7, 41.8)]),
                point_layer("violations", &[(126.1, 39.6), (179.5, 0.0), (-179.5, 0.0)]),
            ],
            bounds_lonlat: Bbox::new(-180.0, 0.0, 180.0, 42.0),
        }
    }

    #[test]
    fn feature_ids_span_layers() {
        let source = two_layer_source();
        let all = source.find_features(None);
        let ids: Vec<usize> = all.iter().map(|f| source.feature_id(*f)).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
        for id in ids {
            let feature = source.feature_by_id(id).expect("every id resolves");
            assert_eq!(source.feature_id(feature), id);
        }
        assert_eq!(source.feature_by_id(5), None);
        let third = source.feature_geojson(source.feature_by_id(2).expect("id 2"));
        assert_eq!(third["layer"], "violations");
        assert_eq!(third["properties"]["name"], "violations 126.1");
        assert_eq!(third["geometry"]["coordinates"], json!([126.1, 39.6]));
    }

    #[test]
    fn bbox_finds_features_in_every_layer() {
        let source = two_layer_source();
        let near_kaechon = source.find_features(Some(&Bbox::new(125.5, 39.0, 126.5, 40.0)));
        let ids: Vec<usize> = near_kaechon.iter().map(|f| source.feature_id(*f)).collect();
        assert_eq!(ids, vec![0, 2]);
        // A box across the antimeridian finds the points on both sides of it.
        let across = source.find_features(Some(&Bbox::new(179.0, -1.0, -179.0, 1.0)));
        let ids: Vec<usize> = across.iter().map(|f| source.feature_id(*f)).collect();
        assert_eq!(ids, vec![3, 4]);
        assert!(
            source
                .find_features(Some(&Bbox::new(0.0, 0.0, 1.0, 1.0)))
                .is_empty()
        );
    }

    #[test]
    fn boxes_split_at_the_antimeridian() {
        assert_eq!(mercator_boxes(&Bbox::new(10.0, -5.0, 20.0, 5.0)).len(), 1);
        let parts = mercator_boxes(&Bbox::new(170.0, -5.0, -170.0, 5.0));
        assert_eq!(parts.len(), 2);
        assert!(parts[0].min_x > 0.0 && parts[1].max_x < 0.0, "{parts:?}");
        let polar = mercator_boxes(&Bbox::new(-180.0, -90.0, 180.0, 90.0));
        assert!(
            polar[0].max_y.is_finite(),
            "latitudes are clamped: {polar:?}"
        );
    }
}
