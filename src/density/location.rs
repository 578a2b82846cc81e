//! Locations of rows, from latitude and longitude columns or one `lat|lon` column, as
//! fractions of the Web Mercator square. Also the list of columns that a reader returns.

use super::options::LocationColumns;
use super::read::{FieldText, RawRow};
use crate::tile::{MAX_LATITUDE, ORIGIN_SHIFT, lonlat_to_mercator};

/// Converts longitude and latitude to fractions of the Web Mercator square, or explains why
/// they cannot be placed.
pub(super) fn world_position(lon: f64, lat: f64) -> Result<(f64, f64), String> {
    if !(lon.is_finite() && lat.is_finite()) {
        return Err(format!("coordinates ({lon}, {lat}) are not numbers"));
    }
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(format!(
            "coordinates lon {lon}, lat {lat} are outside -180 to 180 and -90 to 90 (latitude and longitude swapped?)"
        ));
    }
    if lat.abs() > MAX_LATITUDE {
        return Err(format!(
            "latitude {lat} is beyond Web Mercator's limit of ±{MAX_LATITUDE:.4}"
        ));
    }
    let (mx, my) = lonlat_to_mercator(lon, lat);
    let x = ((mx + ORIGIN_SHIFT) / (2.0 * ORIGIN_SHIFT)).clamp(0.0, 1.0 - f64::EPSILON);
    let y = ((ORIGIN_SHIFT - my) / (2.0 * ORIGIN_SHIFT)).clamp(0.0, 1.0 - f64::EPSILON);
    Ok((x, y))
}

fn parse_number(text: &str, what: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("{what} {text:?} is not a number"))
}

/// The columns of a location, resolved to positions in the requested column list.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LocationIndices {
    pub(super) latitude: Option<usize>,
    longitude: Option<usize>,
    lat_lon: Option<usize>,
}

impl LocationIndices {
    pub(super) fn configured(&self) -> bool {
        self.lat_lon.is_some() || self.latitude.is_some()
    }

    /// Returns the row's own location: `None` when its location columns are empty.
    pub(super) fn read(&self, row: &RawRow) -> Option<Result<(f64, f64), String>> {
        let value = |index: Option<usize>| {
            index
                .and_then(|i| row.values[i].as_ref())
                .map(FieldText::text)
        };
        if let Some(pair) = value(self.lat_lon) {
            let Some((lat, lon)) = pair.split_once('|').or_else(|| pair.split_once(',')) else {
                return Some(Err(format!(
                    "location {pair:?} is not \"latitude|longitude\""
                )));
            };
            return Some(
                parse_number(lat, "latitude")
                    .and_then(|lat| Ok((parse_number(lon, "longitude")?, lat)))
                    .and_then(|(lon, lat)| world_position(lon, lat)),
            );
        }
        match (value(self.latitude), value(self.longitude)) {
            (None, None) => None,
            (Some(_), None) => Some(Err("the longitude is missing".to_owned())),
            (None, Some(_)) => Some(Err("the latitude is missing".to_owned())),
            (Some(lat), Some(lon)) => Some(
                parse_number(&lat, "latitude")
                    .and_then(|lat| Ok((parse_number(&lon, "longitude")?, lat)))
                    .and_then(|(lon, lat)| world_position(lon, lat)),
            ),
        }
    }
}

/// Collects the column names that a reader must return, and remembers their positions.
#[derive(Debug, Default)]
pub(super) struct ColumnList {
    names: Vec<String>,
}

impl ColumnList {
    pub(super) fn add(&mut self, name: &str) -> usize {
        if let Some(index) = self.names.iter().position(|n| n == name) {
            return index;
        }
        self.names.push(name.to_owned());
        self.names.len() - 1
    }

    pub(super) fn add_location(&mut self, location: &LocationColumns) -> LocationIndices {
        LocationIndices {
            latitude: location.latitude.as_deref().map(|c| self.add(c)),
            longitude: location.longitude.as_deref().map(|c| self.add(c)),
            lat_lon: location.lat_lon.as_deref().map(|c| self.add(c)),
        }
    }

    pub(super) fn as_strs(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }
}
