//! The Tessera encoder of table tiles: rows of WKB geometries and attributes, decoded with
//! geozero and encoded by `vector`, which clips and simplifies them as it does for files.

use std::path::Path;

use geozero::ToGeo;
use geozero::wkb::Wkb;
use tokio_postgres::Row;

use super::PostgisError;
use super::table::{ColumnKind, Table};
use crate::tile::TileCoord;
use crate::vector::{FieldType, MemoryFeature, PropertyValue, VectorOptions, VectorSource};

/// Reads the rows that `Table::wkb_sql` returns into features in Web Mercator metres. A row
/// whose geometry is null is skipped.
pub(super) fn features(
    id: &str,
    table: &Table,
    rows: &[Row],
) -> Result<Vec<MemoryFeature>, PostgisError> {
    let first_attribute = if table.id_column.is_some() { 2 } else { 1 };
    // A column retyped since the source was opened gives values of another type: an error
    // for this tile, not a panic of the worker.
    let unreadable = |column: usize, error: tokio_postgres::Error| PostgisError::Query {
        id: id.to_owned(),
        what: format!("column {column} of a tile row"),
        reason: format!("{error}; restart Tessera after changing the table's columns"),
    };
    let mut features = Vec::with_capacity(rows.len());
    for row in rows {
        let wkb: Option<&[u8]> = row.try_get(0).map_err(|error| unreadable(0, error))?;
        let Some(wkb) = wkb else {
            continue;
        };
        let geometry = Wkb(wkb.to_vec())
            .to_geo()
            .map_err(|error| PostgisError::Wkb {
                id: id.to_owned(),
                reason: error.to_string(),
            })?;
        let feature_id = if table.id_column.is_some() {
            let value: Option<i64> = row.try_get(1).map_err(|error| unreadable(1, error))?;
            value.and_then(|value| u64::try_from(value).ok())
        } else {
            None
        };
        let mut properties = Vec::with_capacity(table.columns.len());
        for (index, (_, kind)) in table.columns.iter().enumerate() {
            let column = first_attribute + index;
            let failed = |error| unreadable(column, error);
            let value = match kind {
                ColumnKind::Integer => row
                    .try_get::<_, Option<i64>>(column)
                    .map_err(failed)?
                    .map(PropertyValue::Int),
                ColumnKind::Real => row
                    .try_get::<_, Option<f64>>(column)
                    .map_err(failed)?
                    .filter(|value| value.is_finite())
                    .map(PropertyValue::Double),
                ColumnKind::Boolean => row
                    .try_get::<_, Option<bool>>(column)
                    .map_err(failed)?
                    .map(PropertyValue::Bool),
                ColumnKind::String | ColumnKind::Text => row
                    .try_get::<_, Option<String>>(column)
                    .map_err(failed)?
                    .map(PropertyValue::String),
            };
            if let Some(value) = value {
                properties.push((index, value));
            }
        }
        features.push(MemoryFeature {
            id: feature_id,
            properties,
            geometry,
        });
    }
    Ok(features)
}

/// Encodes one tile from its features with `vector`'s encoder.
pub(super) fn encode(
    id: &str,
    layer: &str,
    fields: &[(String, FieldType)],
    features: Vec<MemoryFeature>,
    options: VectorOptions,
    tile: TileCoord,
) -> Result<Option<Vec<u8>>, PostgisError> {
    if features.is_empty() {
        return Ok(None);
    }
    let encode_error = |source| PostgisError::Encode {
        id: id.to_owned(),
        tile: tile.to_string(),
        source: Box::new(source),
    };
    let source = VectorSource::from_features(Path::new(id), layer, fields, features, options)
        .map_err(encode_error)?;
    source.tile(tile).map_err(encode_error)
}
