//! Georeferencing: model plan coordinates to longitude and latitude.

use geo::Coord;

/// WGS 84 semi-major axis and flattening.
const WGS84_A: f64 = 6_378_137.0;
const WGS84_F: f64 = 1.0 / 298.257_223_563;

/// The placement of a model on the Earth.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Georeference {
    /// Longitude and latitude of the model's origin, in degrees (WGS 84).
    pub anchor: [f64; 2],
    /// Angle from true north to the model's north axis (-Z), clockwise, in degrees.
    pub rotation: f64,
    /// Metres per model unit.
    pub scale: f64,
    /// Height of the model's origin (Y = 0) above sea level, in metres.
    pub elevation: f64,
}

impl Georeference {
    /// Returns the east and north offsets in metres of a plan point (model units, x east,
    /// y north) from the anchor, after scale and rotation.
    pub fn east_north(&self, plan: Coord<f64>) -> (f64, f64) {
        let (sin, cos) = self.rotation.to_radians().sin_cos();
        let (x, y) = (plan.x * self.scale, plan.y * self.scale);
        // Turning clockwise by the rotation: the model's north axis points at that bearing.
        (x * cos + y * sin, -x * sin + y * cos)
    }

    /// Returns the longitude and latitude of a plan point.
    ///
    /// The offsets are taken on the tangent plane at the anchor, with the ellipsoid's radii
    /// of curvature there. NOTE: that plane leaves the sphere by about d²/2R, which is 1 mm at
    /// 110 m from the anchor: fine for a building, not for a model kilometres wide.
    pub fn lonlat(&self, plan: Coord<f64>) -> (f64, f64) {
        let (east, north) = self.east_north(plan);
        let [lon, lat] = self.anchor;
        let phi = lat.to_radians();
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let w = (1.0 - e2 * phi.sin().powi(2)).sqrt();
        // Radii of curvature in the meridian and the prime vertical.
        let meridian = WGS84_A * (1.0 - e2) / w.powi(3);
        let prime_vertical = WGS84_A / w;
        (
            lon + (east / (prime_vertical * phi.cos())).to_degrees(),
            lat + (north / meridian).to_degrees(),
        )
    }

    /// Returns the Web Mercator position of a plan point, in metres.
    pub fn mercator(&self, plan: Coord<f64>) -> Coord<f64> {
        let (lon, lat) = self.lonlat(plan);
        let (x, y) = crate::tile::lonlat_to_mercator(lon, lat);
        Coord { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn georeference(rotation: f64) -> Georeference {
        Georeference {
            anchor: [13.4, 52.5],
            rotation,
            scale: 1.0,
            elevation: 0.0,
        }
    }

    #[test]
    fn rotation_turns_model_axes_clockwise() {
        // (plan point, rotation, expected east and north in metres)
        let cases = [
            ((0.0, 10.0), 0.0, (0.0, 10.0)),
            ((10.0, 0.0), 0.0, (10.0, 0.0)),
            // Model north turned 90° clockwise points east.
            ((0.0, 10.0), 90.0, (10.0, 0.0)),
            ((10.0, 0.0), 90.0, (0.0, -10.0)),
            ((0.0, 10.0), 180.0, (0.0, -10.0)),
            ((0.0, 10.0), -90.0, (-10.0, 0.0)),
        ];
        for ((x, y), rotation, (east, north)) in cases {
            let got = georeference(rotation).east_north(Coord { x, y });
            assert!(
                (got.0 - east).abs() < 1e-9 && (got.1 - north).abs() < 1e-9,
                "({x}, {y}) at {rotation}°: {got:?}"
            );
        }
    }

    #[test]
    fn offsets_match_geodesic_distances() {
        let georeference = georeference(0.0);
        let anchor = geo::Point::new(13.4, 52.5);
        for (x, y) in [(100.0, 0.0), (0.0, 100.0), (-70.0, 70.0)] {
            let (lon, lat) = georeference.lonlat(Coord { x, y });
            let distance =
                geo::Distance::distance(&geo::Geodesic, anchor, geo::Point::new(lon, lat));
            let expected = f64::hypot(x, y);
            assert!(
                (distance - expected).abs() < 0.001,
                "({x}, {y}): {distance} m against {expected} m"
            );
        }
    }
}
