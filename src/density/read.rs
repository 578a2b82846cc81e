//! Reading rows of a point file: CSV, JSON (an array of objects, or GeoJSON), or any vector
//! format that GDAL's OGR opens.
//!
//! Rows are handed to a visitor one at a time with the values of the requested columns, so a
//! file of a million rows is never held twice in memory.

use std::path::Path;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{FieldValue, LayerAccess};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use serde_json::Value;

use super::DensityError;

/// A value read from one column of one row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FieldText {
    Text(String),
    /// A JSON array or an OGR string list: several values without a separator.
    List(Vec<String>),
}

impl FieldText {
    /// Returns the values, splitting text at `separator` (or taking it whole without one).
    /// Values are trimmed and empty ones dropped.
    pub(super) fn values(&self, separator: Option<&str>) -> Vec<String> {
        let parts: Vec<&str> = match self {
            FieldText::Text(text) => match separator {
                Some(separator) if !separator.is_empty() => text.split(separator).collect(),
                _ => vec![text.as_str()],
            },
            FieldText::List(values) => values.iter().map(String::as_str).collect(),
        };
        parts
            .into_iter()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Returns the text, or a list's values joined by `|`.
    pub(super) fn text(&self) -> String {
        match self {
            FieldText::Text(text) => text.clone(),
            FieldText::List(values) => values.join("|"),
        }
    }
}

/// One row of a point file.
#[derive(Debug)]
pub(super) struct RawRow {
    /// 1-based number of the data row (the first feature or record after any header is 1).
    pub(super) row: usize,
    /// Values of the requested columns, in the order they were requested; `None` when a value
    /// is missing, null or empty.
    pub(super) values: Vec<Option<FieldText>>,
    /// The row's own geometry, as (longitude, latitude) or the reason it has none usable, for
    /// formats with geometries (GeoJSON and OGR).
    pub(super) geometry: Option<Result<(f64, f64), String>>,
}

/// The formats of point files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointFormat {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// A JSON array of objects, or a GeoJSON FeatureCollection.
    Json,
    /// Anything GDAL's OGR opens; the first layer is read.
    Ogr,
}

impl PointFormat {
    /// Chooses the format by the file extension.
    pub fn from_path(path: &Path) -> PointFormat {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match extension.as_str() {
            "csv" => PointFormat::Csv,
            "tsv" | "tab" => PointFormat::Tsv,
            "json" | "geojson" => PointFormat::Json,
            _ => PointFormat::Ogr,
        }
    }
}

/// Reads every row of `path`, with the values of `columns`, and passes it to `visit`.
///
/// A column that the file does not have is an error that lists the columns it has.
pub(super) fn read_rows(
    path: &Path,
    format: PointFormat,
    columns: &[&str],
    visit: &mut dyn FnMut(RawRow),
) -> Result<(), DensityError> {
    match format {
        PointFormat::Csv => read_delimited(path, b',', columns, visit),
        PointFormat::Tsv => read_delimited(path, b'\t', columns, visit),
        PointFormat::Json => read_json(path, columns, visit),
        PointFormat::Ogr => read_ogr(path, columns, visit),
    }
}

fn missing_column(path: &Path, column: &str, available: &[String]) -> DensityError {
    DensityError::MissingColumn {
        path: path.to_owned(),
        column: column.to_owned(),
        available: available.join(", "),
    }
}

fn read_delimited(
    path: &Path,
    delimiter: u8,
    columns: &[&str],
    visit: &mut dyn FnMut(RawRow),
) -> Result<(), DensityError> {
    let read_error = |source: csv::Error| DensityError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(read_error)?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(read_error)?
        .iter()
        // A byte-order mark is not part of the first column's name.
        .map(|name| name.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let indices = columns
        .iter()
        .map(|column| {
            headers
                .iter()
                .position(|header| header == column)
                .ok_or_else(|| missing_column(path, column, &headers))
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let mut record = csv::StringRecord::new();
    let mut row = 0;
    while reader.read_record(&mut record).map_err(read_error)? {
        row += 1;
        let values = indices
            .iter()
            .map(|&index| {
                record
                    .get(index)
                    .filter(|value| !value.trim().is_empty())
                    .map(|value| FieldText::Text(value.to_owned()))
            })
            .collect();
        visit(RawRow {
            row,
            values,
            geometry: None,
        });
    }
    Ok(())
}

fn read_json(
    path: &Path,
    columns: &[&str],
    visit: &mut dyn FnMut(RawRow),
) -> Result<(), DensityError> {
    let text = std::fs::read_to_string(path).map_err(|source| DensityError::Read {
        path: path.to_owned(),
        source,
    })?;
    let document: Value = serde_json::from_str(&text).map_err(|source| DensityError::Json {
        path: path.to_owned(),
        source,
    })?;
    let (items, geojson) = match &document {
        Value::Array(items) => (items, false),
        Value::Object(object) if object.get("type") == Some(&Value::from("FeatureCollection")) => {
            match object.get("features") {
                Some(Value::Array(features)) => (features, true),
                _ => {
                    return Err(DensityError::JsonShape {
                        path: path.to_owned(),
                        reason: "the FeatureCollection has no \"features\" array".to_owned(),
                    });
                }
            }
        }
        _ => {
            return Err(DensityError::JsonShape {
                path: path.to_owned(),
                reason: "expected an array of objects or a GeoJSON FeatureCollection".to_owned(),
            });
        }
    };
    let mut seen = vec![false; columns.len()];
    for (index, item) in items.iter().enumerate() {
        let properties = if geojson {
            item.get("properties")
        } else {
            Some(item)
        };
        let values = columns
            .iter()
            .zip(seen.iter_mut())
            .map(|(column, seen)| {
                let value = properties.and_then(|p| p.get(*column));
                *seen |= value.is_some();
                value.and_then(json_field)
            })
            .collect();
        let geometry = geojson.then(|| geojson_point(item.get("geometry")));
        visit(RawRow {
            row: index + 1,
            values,
            geometry,
        });
    }
    if !items.is_empty()
        && let Some(position) = seen.iter().position(|seen| !seen)
    {
        let mut available: Vec<String> = items
            .iter()
            .filter_map(|item| {
                if geojson {
                    item.get("properties")
                } else {
                    Some(item)
                }
            })
            .filter_map(Value::as_object)
            .flat_map(|object| object.keys().cloned())
            .collect();
        available.sort();
        available.dedup();
        return Err(missing_column(path, columns[position], &available));
    }
    Ok(())
}

fn json_field(value: &Value) -> Option<FieldText> {
    match value {
        Value::Null => None,
        Value::String(text) if text.trim().is_empty() => None,
        Value::String(text) => Some(FieldText::Text(text.clone())),
        Value::Array(items) => Some(FieldText::List(
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(text) => Some(text.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
        )),
        other => Some(FieldText::Text(other.to_string())),
    }
}

/// Reads a GeoJSON geometry as a point: a Point's position, or else the centre of the
/// bounding box of every position in it.
fn geojson_point(geometry: Option<&Value>) -> Result<(f64, f64), String> {
    let Some(geometry) = geometry.filter(|g| !g.is_null()) else {
        return Err("the feature has no geometry".to_owned());
    };
    let mut positions = Vec::new();
    collect_positions(geometry.get("coordinates"), &mut positions);
    if let Some(members) = geometry.get("geometries").and_then(Value::as_array) {
        for member in members {
            collect_positions(member.get("coordinates"), &mut positions);
        }
    }
    if positions.is_empty() {
        return Err("the geometry has no coordinates".to_owned());
    }
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in positions {
        min_x = min_x.min(x);
        min_y = min_y.min(y);
        max_x = max_x.max(x);
        max_y = max_y.max(y);
    }
    Ok((min_x.midpoint(max_x), min_y.midpoint(max_y)))
}

fn collect_positions(value: Option<&Value>, positions: &mut Vec<(f64, f64)>) {
    let Some(Value::Array(items)) = value else {
        return;
    };
    match (
        items.first().and_then(Value::as_f64),
        items.get(1).and_then(Value::as_f64),
    ) {
        (Some(x), Some(y)) => positions.push((x, y)),
        _ => {
            for item in items {
                collect_positions(Some(item), positions);
            }
        }
    }
}

fn read_ogr(
    path: &Path,
    columns: &[&str],
    visit: &mut dyn FnMut(RawRow),
) -> Result<(), DensityError> {
    let ogr_error = |source: gdal::errors::GdalError| DensityError::Ogr {
        path: path.to_owned(),
        source,
    };
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
        ..DatasetOptions::default()
    };
    let dataset = Dataset::open_ex(path, options).map_err(ogr_error)?;
    let mut layer = dataset.layer(0).map_err(ogr_error)?;
    let available: Vec<String> = layer.defn().fields().map(|field| field.name()).collect();
    let indices = columns
        .iter()
        .map(|column| {
            available
                .iter()
                .position(|name| name == column)
                .ok_or_else(|| missing_column(path, column, &available))
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let transform = match layer.spatial_ref() {
        None => None,
        Some(source) => {
            let mut target = SpatialRef::from_epsg(4326).map_err(ogr_error)?;
            target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
            if source == target {
                None
            } else {
                Some(CoordTransform::new(&source, &target).map_err(ogr_error)?)
            }
        }
    };
    for (index, feature) in layer.features().enumerate() {
        let values = indices
            .iter()
            .map(|&field| match feature.field(field) {
                Ok(Some(FieldValue::StringListValue(values))) => Some(FieldText::List(values)),
                Ok(Some(_)) => feature
                    .field_as_string(field)
                    .ok()
                    .flatten()
                    .filter(|text| !text.trim().is_empty())
                    .map(FieldText::Text),
                _ => None,
            })
            .collect();
        let geometry = match feature.geometry_by_index(0) {
            Err(_) => Err("the feature has no geometry".to_owned()),
            Ok(geometry) if geometry.is_empty() => Err("the geometry is empty".to_owned()),
            Ok(geometry) => {
                let transformed = match &transform {
                    Some(transform) => geometry
                        .transform(transform)
                        .map_err(|error| format!("reprojecting to WGS 84 failed: {error}")),
                    None => Ok(geometry.clone()),
                };
                transformed.map(|geometry| {
                    let envelope = geometry.envelope();
                    (
                        envelope.MinX.midpoint(envelope.MaxX),
                        envelope.MinY.midpoint(envelope.MaxY),
                    )
                })
            }
        };
        visit(RawRow {
            row: index + 1,
            values,
            geometry: Some(geometry),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path, columns: &[&str]) -> Result<Vec<RawRow>, DensityError> {
        let mut rows = Vec::new();
        read_rows(path, PointFormat::from_path(path), columns, &mut |row| {
            rows.push(row);
        })?;
        Ok(rows)
    }

    #[test]
    fn csv_rows_keep_quoting_and_blanks() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("points.csv");
        std::fs::write(
            &path,
            "\u{feff}id,where,kind\n1,\"1.5|2.5\",\"a, b\"\n2,,c\n",
        )
        .expect("write");
        let rows = collect(&path, &["where", "kind"]).expect("read");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, 1);
        assert_eq!(
            rows[0].values[0],
            Some(FieldText::Text("1.5|2.5".to_owned()))
        );
        assert_eq!(rows[0].values[1], Some(FieldText::Text("a, b".to_owned())));
        assert_eq!(rows[1].values[0], None, "an empty value is missing");
        let ids = collect(&path, &["id"]).expect("a BOM is not part of the name");
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn missing_column_lists_the_columns() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("points.csv");
        std::fs::write(&path, "lat,lon\n1,2\n").expect("write");
        let error = collect(&path, &["latitude"])
            .expect_err("no such column")
            .to_string();
        assert!(error.contains("\"latitude\""), "{error}");
        assert!(error.contains("lat, lon"), "{error}");
    }

    #[test]
    fn json_records_and_geojson_are_read() {
        let folder = tempfile::tempdir().expect("tempdir");
        let records = folder.path().join("events.json");
        std::fs::write(
            &records,
            r#"[{"date":"2022","tags":["a","b"]},{"date":null,"tags":[]}]"#,
        )
        .expect("write");
        let rows = collect(&records, &["date", "tags"]).expect("records");
        assert_eq!(
            rows[0].values[1],
            Some(FieldText::List(vec!["a".to_owned(), "b".to_owned()]))
        );
        assert_eq!(rows[1].values[0], None);
        assert!(rows[0].geometry.is_none());

        let geojson = folder.path().join("events.geojson");
        std::fs::write(
            &geojson,
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"d":1},"geometry":{"type":"Point","coordinates":[10,20]}},
              {"type":"Feature","properties":{"d":2},"geometry":{"type":"Polygon","coordinates":[[[0,0],[2,0],[2,4],[0,0]]]}},
              {"type":"Feature","properties":{"d":3},"geometry":null}]}"#,
        )
        .expect("write");
        let rows = collect(&geojson, &["d"]).expect("geojson");
        assert_eq!(rows[0].geometry, Some(Ok((10.0, 20.0))));
        assert_eq!(rows[1].geometry, Some(Ok((1.0, 2.0))));
        assert!(matches!(rows[2].geometry, Some(Err(_))));
        assert_eq!(rows[2].values[0], Some(FieldText::Text("3".to_owned())));
    }

    #[test]
    fn list_values_split_and_trim() {
        let text = FieldText::Text("a | b||c ".to_owned());
        assert_eq!(text.values(Some("|")), ["a", "b", "c"]);
        assert_eq!(text.values(None), ["a | b||c"]);
    }
}
