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
    let mut features = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(wkb) = row.get::<_, Option<&[u8]>>(0) else {
            continue;
        };
        let geometry = Wkb(wkb.to_vec())
            .to_geo()
            .map_err(|error| PostgisError::Wkb {
                id: id.to_owned(),
                reason: error.to_string(),
            })?;
        let feature_id = if table.id_column.is_some() {
            row.get::<_, Option<i64>>(1)
                .and_then(|value| u64::try_from(value).ok())
        } else {
            None
        };
        let mut properties = Vec::with_capacity(table.columns.len());
        for (index, (_, kind)) in table.columns.iter().enumerate() {
            let column = first_attribute + index;
            let value = match kind {
                ColumnKind::Integer => row.get::<_, Option<i64>>(column).map(PropertyValue::Int),
                ColumnKind::Real => row
                    .get::<_, Option<f64>>(column)
                    .filter(|value| value.is_finite())
                    .map(PropertyValue::Double),
                ColumnKind::Boolean => row.get::<_, Option<bool>>(column).map(PropertyValue::Bool),
                ColumnKind::String | ColumnKind::Text => row
                    .get::<_, Option<String>>(column)
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
