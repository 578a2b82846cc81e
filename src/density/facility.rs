//! The facility table that points link to by a key.

use std::collections::HashMap;
use std::path::Path;

use super::DensityError;
use super::location::{ColumnList, world_position};
use super::options::FacilityOptions;
use super::read::{FieldText, PointFormat, read_rows};

/// A facility that points link to.
#[derive(Debug, Clone)]
pub struct Facility {
    pub key: String,
    pub name: String,
    /// Position in the world as fractions of the Web Mercator square, x east and y south,
    /// or `None` for a facility without a location.
    pub position: Option<(f64, f64)>,
    /// Indices of the points placed at or linked to this facility.
    pub points: Vec<u32>,
}

/// Reads the facility table: key, label and location of each facility.
pub(super) fn load_facilities(
    options: &FacilityOptions,
    base: &Path,
) -> Result<Vec<Facility>, DensityError> {
    let path = if options.path.is_relative() {
        base.join(&options.path)
    } else {
        options.path.clone()
    };
    let mut columns = ColumnList::default();
    let key = columns.add(&options.key);
    let name = options.name.as_deref().map(|c| columns.add(c));
    let location = columns.add_location(&options.location);
    let format = options
        .format
        .unwrap_or_else(|| PointFormat::from_path(&path));
    let mut facilities = Vec::new();
    let mut seen = HashMap::new();
    read_rows(&path, format, &columns.as_strs(), &mut |row| {
        // Keys are kept exactly as written: trailing spaces are part of them in Uwazi exports.
        let Some(key_value) = row.values[key].as_ref().map(FieldText::text) else {
            tracing::warn!(
                file = %path.display(),
                row = row.row,
                "facility without a key left out",
            );
            return;
        };
        if seen.insert(key_value.clone(), facilities.len()).is_some() {
            tracing::warn!(
                file = %path.display(),
                row = row.row,
                key = key_value,
                "facility key repeated: the later row is left out",
            );
            return;
        }
        let label = name
            .and_then(|i| row.values[i].as_ref())
            .map_or_else(|| key_value.clone(), FieldText::text);
        // Location columns come first; GeoJSON and OGR files may use their own geometry.
        let located = location.read(&row).or_else(|| {
            row.geometry.as_ref().map(|geometry| {
                geometry
                    .clone()
                    .and_then(|(lon, lat)| world_position(lon, lat))
            })
        });
        let position = match located {
            Some(Ok(position)) => Some(position),
            Some(Err(reason)) => {
                tracing::warn!(
                    file = %path.display(),
                    row = row.row,
                    key = key_value,
                    reason,
                    "facility location invalid",
                );
                None
            }
            None => None,
        };
        facilities.push(Facility {
            key: key_value,
            name: label.trim().to_owned(),
            position,
            points: Vec::new(),
        });
    })?;
    if facilities
        .iter()
        .all(|facility| facility.position.is_none())
    {
        tracing::warn!(
            file = %path.display(),
            facilities = facilities.len(),
            "no facility has a location: name the location columns, or use a file with geometries",
        );
    }
    Ok(facilities)
}
