//! Features of one layer in Web Mercator metres, with an R-tree of their envelopes.

use geo::{BoundingRect, Geometry};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use super::fields::PropertyValue;
use crate::tile::Bbox;

/// A feature as served: id, attributes and geometry in Web Mercator metres.
#[derive(Debug, Clone)]
pub(crate) struct StoredFeature {
    pub(crate) id: Option<u64>,
    /// Attribute values by index into [`LayerData::keys`], without nulls.
    pub(crate) properties: Vec<(usize, PropertyValue)>,
    pub(crate) geometry: Geometry<f64>,
}

type Envelope = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// The features of one MVT layer and the R-tree that finds them by envelope.
#[derive(Debug)]
pub(super) struct LayerData {
    pub(super) name: String,
    /// Attribute names, in the order of the layer's OGR fields.
    pub(super) keys: Vec<String>,
    pub(super) features: Vec<StoredFeature>,
    tree: RTree<Envelope>,
}

impl LayerData {
    /// Indexes the features by the envelopes of their geometries.
    pub(super) fn new(name: String, keys: Vec<String>, features: Vec<StoredFeature>) -> Self {
        let envelopes = features
            .iter()
            .enumerate()
            .filter_map(|(index, feature)| {
                let rect = feature.geometry.bounding_rect()?;
                let corners = Rectangle::from_corners(
                    [rect.min().x, rect.min().y],
                    [rect.max().x, rect.max().y],
                );
                Some(GeomWithData::new(corners, index))
            })
            .collect();
        Self {
            name,
            keys,
            features,
            tree: RTree::bulk_load(envelopes),
        }
    }

    /// Returns the indices of the features whose envelopes intersect `bbox` (in metres),
    /// including envelopes that only touch it.
    pub(super) fn features_in(&self, bbox: &Bbox) -> impl Iterator<Item = usize> + '_ {
        let query = AABB::from_corners([bbox.min_x, bbox.min_y], [bbox.max_x, bbox.max_y]);
        self.tree
            .locate_in_envelope_intersecting(&query)
            .map(|envelope| envelope.data)
    }
}

#[cfg(test)]
mod tests {
    use geo::{Point, Polygon, polygon};

    use super::*;

    fn feature(geometry: Geometry<f64>) -> StoredFeature {
        StoredFeature {
            id: None,
            properties: Vec::new(),
            geometry,
        }
    }

    fn bbox(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Bbox {
        Bbox::new(min_x, min_y, max_x, max_y)
    }

    #[test]
    fn features_in_returns_intersecting_envelopes() {
        let square: Polygon<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)];
        let layer = LayerData::new(
            "test".into(),
            Vec::new(),
            vec![
                feature(Point::new(5.0, 5.0).into()),
                feature(square.into()),
                feature(Point::new(100.0, 100.0).into()),
            ],
        );
        let cases = [
            (bbox(4.0, 4.0, 6.0, 6.0), vec![0, 1]),
            (bbox(8.0, 8.0, 20.0, 20.0), vec![1]),
            // A box that only touches the square's edge still finds it.
            (bbox(10.0, 0.0, 12.0, 1.0), vec![1]),
            (bbox(99.0, 99.0, 101.0, 101.0), vec![2]),
            (bbox(50.0, 50.0, 60.0, 60.0), vec![]),
        ];
        for (query, expected) in cases {
            let mut found: Vec<usize> = layer.features_in(&query).collect();
            found.sort_unstable();
            assert_eq!(found, expected, "query {query:?}");
        }
    }
}
