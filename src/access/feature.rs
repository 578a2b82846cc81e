//! Access rules for single features read straight from a source's index. Static maps and
//! report pages draw features without MVT tiles, so they apply the rules of [`super::mvt`]
//! here: private attributes are removed, and sensitive points are snapped or left out.

use geo::{Geometry, Point};
use serde_json::{Map, Value};

use super::config::{Sensitive, SourceAccess, is_truthy};
use super::generalise::Grid;
use crate::source::Source;
use crate::tile;

/// The rules for the features of one source in the current request.
#[derive(Debug, Clone)]
pub struct FeatureRules {
    access: SourceAccess,
    grid: Grid,
    /// Whether sensitive features are left out, at or above the sensitive zoom.
    drop_sensitive: bool,
}

/// The outcome for one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Drawn where it is.
    Keep,
    /// Drawn at this point instead, in Web Mercator metres: the centre of its grid cell.
    MoveTo(Point<f64>),
    /// Not drawn.
    Drop,
}

/// Returns the rules for `source`'s features at tile zoom `zoom` (of 256-pixel tiles) in the
/// current request, or `None` when the request may read all of it (a key that opens it, no
/// restriction, or no request at all).
pub fn feature_rules(source: &Source, zoom: f64) -> Option<FeatureRules> {
    let grant = super::current()?;
    if !source.access.restricts() || grant.sees_everything(source) {
        return None;
    }
    let policy = grant.policy();
    // A fractional zoom counts as the next whole one, so that no view is finer than the
    // tiles that leave sensitive points out.
    let drop_sensitive = zoom.ceil() >= f64::from(policy.sensitive_zoom);
    Some(FeatureRules {
        access: source.access.clone(),
        grid: Grid::new(policy.sensitive_cell_m),
        drop_sensitive,
    })
}

/// Returns whether the current request may not see a heat map of `source` at tile zoom `z`:
/// a density source with sensitive points, from the sensitive zoom on, without its key. The
/// tile routes leave such heat maps out the same way (`restrict_rendered`).
pub fn hides_heat_map(source: &Source, z: u8) -> bool {
    let Some(grant) = super::current() else {
        return false;
    };
    matches!(source.backend, crate::source::Backend::Density(_))
        && source.access.sensitive.is_some()
        && !grant.sees_everything(source)
        && z >= grant.policy().sensitive_zoom
}

impl FeatureRules {
    /// Removes the private attributes from `properties` and returns where, if anywhere, the
    /// feature with `geometry` (Web Mercator metres) may be drawn. Sensitivity is read before
    /// the attributes are removed, so a private attribute can mark points sensitive.
    pub fn apply(&self, properties: &mut Map<String, Value>, geometry: &Geometry<f64>) -> Verdict {
        let sensitive = match &self.access.sensitive {
            Some(Sensitive::All(all)) => *all,
            Some(Sensitive::Attribute(name)) => properties.get(name).is_some_and(is_truthy),
            None => false,
        };
        properties.retain(|name, _| !self.access.is_private_attribute(name));
        if !sensitive {
            return Verdict::Keep;
        }
        // Lines and polygons cannot be snapped to one cell, so they go like points at the
        // sensitive zoom.
        let Geometry::Point(point) = geometry else {
            return Verdict::Drop;
        };
        if self.drop_sensitive {
            return Verdict::Drop;
        }
        let (lon, lat) = tile::mercator_to_lonlat(point.x(), point.y());
        let (lon, lat) = self.grid.snap(lon, lat);
        let (x, y) = tile::lonlat_to_mercator(lon, lat);
        Verdict::MoveTo(Point::new(x, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sensitive: Option<Sensitive>, drop_sensitive: bool) -> FeatureRules {
        FeatureRules {
            access: SourceAccess {
                private_attributes: vec!["witness".to_owned()],
                sensitive,
                ..SourceAccess::default()
            },
            grid: Grid::new(2000.0),
            drop_sensitive,
        }
    }

    fn properties(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }

    #[test]
    fn verdicts_follow_the_rules() {
        let (x, y) = tile::lonlat_to_mercator(126.123_456, 40.654_321);
        let point = Geometry::Point(Point::new(x, y));
        let line = Geometry::LineString(geo::LineString::from(vec![(x, y), (x + 10.0, y)]));
        let flagged = || properties(&[("flag", Value::Bool(true)), ("witness", "A".into())]);
        let plain = || properties(&[("flag", Value::Bool(false)), ("witness", "A".into())]);
        let by_flag = Some(Sensitive::Attribute("flag".to_owned()));
        let cases = [
            (rules(None, false), plain(), &point, "keep"),
            (rules(by_flag.clone(), false), plain(), &point, "keep"),
            (rules(by_flag.clone(), false), flagged(), &point, "move"),
            (rules(by_flag.clone(), true), flagged(), &point, "drop"),
            (
                rules(Some(Sensitive::All(true)), false),
                plain(),
                &line,
                "drop",
            ),
            (
                rules(Some(Sensitive::All(false)), true),
                plain(),
                &point,
                "keep",
            ),
        ];
        for (rules, mut props, geometry, expected) in cases {
            let verdict = rules.apply(&mut props, geometry);
            assert!(!props.contains_key("witness"), "private attribute kept");
            let got = match verdict {
                Verdict::Keep => "keep",
                Verdict::MoveTo(moved) => {
                    assert!((moved.x() - x).abs() > 1.0 || (moved.y() - y).abs() > 1.0);
                    "move"
                }
                Verdict::Drop => "drop",
            };
            assert_eq!(got, expected, "{:?}", rules.access.sensitive);
        }
    }

    #[test]
    fn snapping_is_deterministic() {
        let rules = rules(Some(Sensitive::All(true)), false);
        let (x, y) = tile::lonlat_to_mercator(126.5, 40.1);
        let point = Geometry::Point(Point::new(x, y));
        let first = rules.apply(&mut Map::new(), &point);
        let second = rules.apply(&mut Map::new(), &point);
        assert_eq!(first, second);
    }
}
