//! Geometry checks and repairs applied while a feature is loaded.
//!
//! A feature is served as it is, served after a repair (rings closed, invalid polygons rebuilt
//! with OGR's `make_valid`, unusable parts dropped), or skipped with a reason. Ring winding is
//! not checked here, because the MVT encoder sets the winding of every ring it writes.

use gdal::cpl::CslStringList;
use gdal::spatial_ref::CoordTransform;
use gdal::vector::{OGRwkbGeometryType, ToGdal, geometry_type_flatten};
use geo::{CoordsIter, Geometry, LineString, MultiLineString, MultiPolygon, Polygon};

use crate::gdal_ffi::ogr as ogr_ffi;

/// A geometry ready for indexing, in lon/lat degrees.
#[derive(Debug)]
pub(super) struct PreparedGeometry {
    pub(super) geometry: Geometry<f64>,
    /// One line per repair, empty when the geometry was valid as read.
    pub(super) repairs: Vec<String>,
}

/// Converts a feature's OGR geometry to lon/lat `geo` types and repairs it, or returns why the
/// feature cannot be served.
pub(super) fn prepare_geometry(
    source: Option<&gdal::vector::Geometry>,
    transform: Option<&CoordTransform>,
) -> Result<PreparedGeometry, String> {
    let source = source
        .filter(|geometry| !geometry.is_empty())
        .ok_or("the feature has no geometry or an empty one")?;
    let mut ogr = without_empty_parts(source);
    ogr.flatten_to_2d();
    if is_non_linear(ogr.geometry_type()) {
        ogr = linearize(&ogr)?;
    }
    if let Some(transform) = transform {
        ogr.transform_inplace(transform)
            .map_err(|error| format!("failed to reproject to WGS 84 lon/lat: {error}"))?;
    }

    let mut repairs = Vec::new();
    let unclosed = count_unclosed_rings(&ogr);
    if unclosed > 0 {
        repairs.push(format!("closed {unclosed} unclosed polygon ring(s)"));
    }
    let geometry = ogr.to_geo().map_err(|error| {
        format!(
            "failed to convert the {} geometry: {error}",
            ogr.geometry_name()
        )
    })?;
    check_coordinates(&geometry)?;
    let geometry = repair(geometry, &mut repairs)?;
    Ok(PreparedGeometry { geometry, repairs })
}

/// Returns a copy without empty members, which gdal 0.19's `to_geo` cannot convert.
fn without_empty_parts(geometry: &gdal::vector::Geometry) -> gdal::vector::Geometry {
    let count = geometry.geometry_count();
    let is_collection = matches!(
        geometry_type_flatten(geometry.geometry_type()),
        OGRwkbGeometryType::wkbMultiPoint
            | OGRwkbGeometryType::wkbMultiLineString
            | OGRwkbGeometryType::wkbMultiPolygon
            | OGRwkbGeometryType::wkbGeometryCollection
    );
    if !is_collection || (0..count).all(|index| !geometry.get_geometry(index).is_empty()) {
        return geometry.clone();
    }
    let Ok(mut rebuilt) = gdal::vector::Geometry::empty(geometry.geometry_type()) else {
        return geometry.clone();
    };
    for index in 0..count {
        let part = geometry.get_geometry(index);
        if !part.is_empty() && rebuilt.add_geometry(without_empty_parts(&part)).is_err() {
            return geometry.clone();
        }
    }
    rebuilt
}

fn is_non_linear(geometry_type: OGRwkbGeometryType::Type) -> bool {
    matches!(
        geometry_type_flatten(geometry_type),
        OGRwkbGeometryType::wkbCircularString
            | OGRwkbGeometryType::wkbCompoundCurve
            | OGRwkbGeometryType::wkbCurvePolygon
            | OGRwkbGeometryType::wkbMultiCurve
            | OGRwkbGeometryType::wkbMultiSurface
            | OGRwkbGeometryType::wkbCurve
            | OGRwkbGeometryType::wkbSurface
            | OGRwkbGeometryType::wkbPolyhedralSurface
            | OGRwkbGeometryType::wkbTIN
            | OGRwkbGeometryType::wkbTriangle
    )
}

/// Converts curves and surfaces to line strings and polygons.
fn linearize(geometry: &gdal::vector::Geometry) -> Result<gdal::vector::Geometry, String> {
    ogr_ffi::linear_geometry(geometry).ok_or_else(|| {
        format!(
            "failed to convert the {} geometry to line segments",
            geometry.geometry_name()
        )
    })
}

/// Counts polygon rings whose last point differs from the first. OGR's readers accept such
/// rings (unless `OGR_GEOMETRY_ACCEPT_UNCLOSED_RING=NO`), and `to_geo` closes them silently.
#[expect(
    clippy::float_cmp,
    reason = "a ring is closed only when its last point is exactly its first"
)]
fn count_unclosed_rings(geometry: &gdal::vector::Geometry) -> usize {
    let count = geometry.geometry_count();
    match geometry_type_flatten(geometry.geometry_type()) {
        OGRwkbGeometryType::wkbPolygon => (0..count)
            .filter(|&index| {
                let ring = geometry.get_geometry(index);
                let points = ring.point_count();
                if points == 0 {
                    return false;
                }
                let (first_x, first_y, _) = ring.get_point(0);
                let (last_x, last_y, _) = ring.get_point(points as i32 - 1);
                first_x != last_x || first_y != last_y
            })
            .count(),
        OGRwkbGeometryType::wkbMultiPolygon | OGRwkbGeometryType::wkbGeometryCollection => (0
            ..count)
            .map(|index| count_unclosed_rings(&geometry.get_geometry(index)))
            .sum(),
        _ => 0,
    }
}

/// Rejects NaN and infinite coordinates, and coordinates that cannot be degrees, which is
/// what a projected layer without a CRS (such as a Shapefile without its `.prj`) gives.
fn check_coordinates(geometry: &Geometry<f64>) -> Result<(), String> {
    for coord in geometry.coords_iter() {
        if !coord.x.is_finite() || !coord.y.is_finite() {
            return Err(format!(
                "coordinate ({}, {}) is NaN or infinite",
                coord.x, coord.y
            ));
        }
        if coord.x.abs() > 360.0 || coord.y.abs() > 90.0 {
            return Err(format!(
                "coordinate ({}, {}) is outside the lon/lat range: the layer's CRS is missing \
                 or wrong (for a Shapefile, check its .prj file)",
                coord.x, coord.y
            ));
        }
    }
    Ok(())
}

fn repair(geometry: Geometry<f64>, repairs: &mut Vec<String>) -> Result<Geometry<f64>, String> {
    match geometry {
        Geometry::Point(_) | Geometry::MultiPoint(_) => Ok(geometry),
        Geometry::Line(line) => repair_lines(vec![line.into()], repairs),
        Geometry::LineString(line) => repair_lines(vec![line], repairs),
        Geometry::MultiLineString(lines) => repair_lines(lines.0, repairs),
        Geometry::Polygon(polygon) => repair_polygons(vec![polygon], repairs),
        Geometry::Rect(rect) => repair_polygons(vec![rect.to_polygon()], repairs),
        Geometry::Triangle(triangle) => repair_polygons(vec![triangle.to_polygon()], repairs),
        Geometry::MultiPolygon(polygons) => repair_polygons(polygons.0, repairs),
        Geometry::GeometryCollection(collection) => {
            let mut members = Vec::new();
            let mut first_error = None;
            for member in collection {
                match repair(member, repairs) {
                    Ok(member) => members.push(member),
                    Err(reason) => {
                        repairs.push(format!("dropped a collection member: {reason}"));
                        first_error.get_or_insert(reason);
                    }
                }
            }
            match first_error {
                Some(reason) if members.is_empty() => Err(reason),
                _ => Ok(Geometry::GeometryCollection(members.into())),
            }
        }
    }
}

fn distinct_consecutive_points(line: &LineString<f64>) -> usize {
    let mut count = 0;
    let mut previous = None;
    for coord in line.coords() {
        if previous != Some(coord) {
            count += 1;
            previous = Some(coord);
        }
    }
    count
}

fn repair_lines(
    lines: Vec<LineString<f64>>,
    repairs: &mut Vec<String>,
) -> Result<Geometry<f64>, String> {
    let total = lines.len();
    let mut kept: Vec<LineString<f64>> = lines
        .into_iter()
        .filter(|line| distinct_consecutive_points(line) >= 2)
        .collect();
    if kept.is_empty() {
        return Err("the line has fewer than 2 distinct points".to_owned());
    }
    if kept.len() < total {
        repairs.push(format!(
            "dropped {} line part(s) with fewer than 2 distinct points",
            total - kept.len()
        ));
    }
    if kept.len() == 1 {
        return Ok(Geometry::LineString(kept.remove(0)));
    }
    Ok(Geometry::MultiLineString(MultiLineString::new(kept)))
}

/// Returns whether a closed ring has at least 3 distinct points, which it needs to enclose an
/// area.
fn ring_has_area_points(ring: &LineString<f64>) -> bool {
    // The closing point repeats the first, so a usable ring has 4 or more.
    distinct_consecutive_points(ring) >= 4
}

/// Largest invalid polygon, in vertices, that is rebuilt with `make_valid`. GEOS's time and
/// memory grow much faster than the vertex count on self-crossing rings: a 10,000-vertex ring
/// of random points grew past 15 GB in an attack run, so the cap sits below that.
const MAX_REPAIR_VERTICES: usize = 5_000;

fn repair_polygons(
    polygons: Vec<Polygon<f64>>,
    repairs: &mut Vec<String>,
) -> Result<Geometry<f64>, String> {
    let total = polygons.len();
    let mut dropped_holes = 0;
    let mut kept = Vec::with_capacity(total);
    for polygon in polygons {
        if !ring_has_area_points(polygon.exterior()) {
            continue;
        }
        let (exterior, interiors) = polygon.into_inner();
        let holes_before = interiors.len();
        let holes: Vec<_> = interiors.into_iter().filter(ring_has_area_points).collect();
        dropped_holes += holes_before - holes.len();
        kept.push(Polygon::new(exterior, holes));
    }
    if kept.is_empty() {
        return Err("the polygon has no area: its rings have fewer than 3 distinct points".into());
    }
    if kept.len() < total {
        repairs.push(format!(
            "dropped {} polygon(s) whose exterior ring has fewer than 3 distinct points",
            total - kept.len()
        ));
    }
    if dropped_holes > 0 {
        repairs.push(format!(
            "dropped {dropped_holes} hole(s) with fewer than 3 distinct points"
        ));
    }

    let multi = MultiPolygon::new(kept);
    let ogr = multi
        .to_gdal()
        .map_err(|error| format!("failed to pass the polygon to OGR: {error}"))?;
    if ogr.is_valid() {
        return Ok(single_or_multi(multi));
    }
    let vertices = multi.coords_count();
    if vertices > MAX_REPAIR_VERTICES {
        return Err(format!(
            "the polygon is invalid and has {vertices} vertices, more than the {MAX_REPAIR_VERTICES} that are repaired at start-up: repair the file once with `ogr2ogr -makevalid`"
        ));
    }
    let valid = ogr
        .make_valid(&CslStringList::new())
        .and_then(|valid| valid.to_geo())
        .map_err(|error| format!("the polygon is invalid and OGR make_valid failed: {error}"))?;
    let mut parts = Vec::new();
    collect_polygons(valid, &mut parts);
    if parts.is_empty() {
        return Err("the polygon is invalid and has no area left after OGR make_valid".into());
    }
    repairs.push(
        "rebuilt an invalid polygon (such as a self-intersecting ring) with OGR make_valid".into(),
    );
    Ok(single_or_multi(MultiPolygon::new(parts)))
}

fn single_or_multi(mut polygons: MultiPolygon<f64>) -> Geometry<f64> {
    if polygons.0.len() == 1 {
        Geometry::Polygon(polygons.0.remove(0))
    } else {
        Geometry::MultiPolygon(polygons)
    }
}

/// Collects the polygons of a `make_valid` result. Lines and points, the parts of rings that
/// collapsed, are dropped.
fn collect_polygons(geometry: Geometry<f64>, into: &mut Vec<Polygon<f64>>) {
    match geometry {
        Geometry::Polygon(polygon) => into.push(polygon),
        Geometry::MultiPolygon(polygons) => into.extend(polygons),
        Geometry::GeometryCollection(members) => {
            for member in members {
                collect_polygons(member, into);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare_wkt(wkt: &str) -> Result<PreparedGeometry, String> {
        let ogr = gdal::vector::Geometry::from_wkt(wkt).expect("test WKT parses");
        prepare_geometry(Some(&ogr), None)
    }

    #[test]
    fn valid_geometries_pass_unchanged() {
        let cases = [
            "POINT (1 2)",
            "MULTIPOINT ((1 2), (3 4))",
            "LINESTRING (0 0, 1 1)",
            "POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))",
            // Clockwise: valid for OGC, the encoder sets the MVT winding.
            "POLYGON ((0 0, 0 1, 1 1, 1 0, 0 0))",
            "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 1 2, 2 2, 2 1, 1 1))",
        ];
        for wkt in cases {
            let prepared = prepare_wkt(wkt).unwrap_or_else(|reason| panic!("{wkt}: {reason}"));
            assert!(prepared.repairs.is_empty(), "{wkt}: {:?}", prepared.repairs);
        }
    }

    #[test]
    fn repairable_geometries_are_repaired() {
        let cases = [
            ("POLYGON ((0 0, 1 0, 1 1, 0 1))", "closed 1 unclosed"),
            ("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))", "make_valid"),
            (
                "MULTILINESTRING ((0 0, 1 1), (2 2, 2 2))",
                "dropped 1 line part",
            ),
            (
                "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 2 2, 1 1, 1 1))",
                "dropped 1 hole",
            ),
            (
                "GEOMETRYCOLLECTION (POINT (1 1), LINESTRING (0 0, 0 0))",
                "dropped a collection member",
            ),
        ];
        for (wkt, expected) in cases {
            let prepared = prepare_wkt(wkt).unwrap_or_else(|reason| panic!("{wkt}: {reason}"));
            assert!(
                prepared
                    .repairs
                    .iter()
                    .any(|repair| repair.contains(expected)),
                "{wkt}: repairs {:?} lack {expected:?}",
                prepared.repairs
            );
        }
    }

    #[test]
    fn bow_tie_becomes_two_triangles() {
        let prepared = prepare_wkt("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))").expect("repairable");
        let Geometry::MultiPolygon(polygons) = prepared.geometry else {
            panic!("expected a multipolygon, got {:?}", prepared.geometry);
        };
        assert_eq!(polygons.0.len(), 2);
    }

    #[test]
    fn unusable_geometries_are_rejected() {
        let cases = [
            ("POLYGON EMPTY", "no geometry or an empty one"),
            ("LINESTRING (1 1, 1 1)", "fewer than 2 distinct points"),
            ("POLYGON ((0 0, 1 0, 0 0))", "no area"),
            ("POLYGON ((0 0, 1 0, 2 0, 0 0))", "no area"),
            ("POINT (500000 4000000)", "outside the lon/lat range"),
        ];
        for (wkt, expected) in cases {
            let reason = prepare_wkt(wkt).expect_err(wkt);
            assert!(reason.contains(expected), "{wkt}: {reason}");
        }
    }

    #[test]
    fn nan_coordinate_is_rejected() {
        // OGR's WKT reader does not parse NaN, so the line is built point by point.
        let mut line =
            gdal::vector::Geometry::empty(OGRwkbGeometryType::wkbLineString).expect("empty line");
        line.add_point_2d((0.0, 0.0));
        line.add_point_2d((f64::NAN, 1.0));
        let reason = prepare_geometry(Some(&line), None).expect_err("NaN");
        assert!(reason.contains("NaN"), "{reason}");
    }

    #[test]
    fn missing_geometry_is_rejected() {
        let reason = prepare_geometry(None, None).expect_err("no geometry");
        assert!(reason.contains("no geometry"), "{reason}");
    }

    #[test]
    fn curves_are_linearized() {
        let prepared =
            prepare_wkt("CURVEPOLYGON (CIRCULARSTRING (0 0, 1 1, 2 0, 1 -1, 0 0))").expect("curve");
        let Geometry::Polygon(polygon) = prepared.geometry else {
            panic!("expected a polygon, got {:?}", prepared.geometry);
        };
        assert!(polygon.exterior().0.len() > 8);
    }

    #[test]
    fn z_coordinates_are_dropped() {
        let prepared = prepare_wkt("LINESTRING Z (0 0 5, 1 1 6)").expect("3D line");
        assert_eq!(
            prepared.geometry,
            Geometry::LineString(LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]))
        );
    }
}
