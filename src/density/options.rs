//! Options of a density source, as written under `[sources.ID]` with `kind = "points"`.

use std::path::PathBuf;

use serde::Deserialize;

use super::DensityError;
use super::date::DateOrder;
use super::heatmap::Ramp;
use super::read::PointFormat;
use crate::tile::MAX_ZOOM;

/// One column name, or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

/// The columns of one event, when a row contains several, each with its own date and
/// categories.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventColumns {
    pub date: Option<String>,
    pub categories: Option<String>,
}

/// The weight of a row linked to several located facilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FacilityWeights {
    /// A point at each facility with weight 1/n, so the row still counts once in total.
    #[default]
    Split,
    /// A point at each facility with weight 1, so every facility counts the row fully.
    Each,
}

/// The shape of aggregation cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GridShape {
    #[default]
    Hexagon,
    Square,
}

/// Location columns: latitude and longitude, or one `lat|lon` column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocationColumns {
    /// Column of latitudes in degrees.
    pub latitude: Option<String>,
    /// Column of longitudes in degrees.
    pub longitude: Option<String>,
    /// One column with `latitude|longitude` (latitude first, as Uwazi exports write it).
    pub lat_lon: Option<String>,
}

/// The table of facilities that points link to by a key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityOptions {
    /// The file of facilities; a relative path is taken from the point file's folder.
    pub path: PathBuf,
    pub format: Option<PointFormat>,
    /// Column of the key that points name. Keys are compared exactly, spaces included.
    pub key: String,
    /// Column of the label shown in the facility layer; default: the key.
    pub name: Option<String>,
    /// Location columns. Without them, GeoJSON and OGR files give each facility the centre
    /// of its geometry, so a vector source's file can serve as the facility table.
    #[serde(flatten)]
    pub location: LocationColumns,
}

/// Options of a density source. Options missing from a configuration take their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DensityOptions {
    /// Must be `points`: it marks the source as a density source.
    pub kind: String,
    /// Format of the point file; default: by its extension (`csv`, `tsv`, `json`, `geojson`,
    /// else OGR).
    pub format: Option<PointFormat>,
    #[serde(flatten)]
    pub location: LocationColumns,
    /// Column of dates: a day, month or year, or a range of two (`a~b`, `a/b`, `a..b`).
    pub date: Option<String>,
    /// Order of day and month in dates such as `02/03/2004`.
    pub date_order: DateOrder,
    /// Column of categories. With several columns, each value becomes `column::value`.
    pub categories: Option<Columns>,
    /// Separator between several categories in one value, for example `|`.
    pub category_separator: Option<String>,
    /// Each category is cut at the first occurrence of this text, to drop per-row suffixes
    /// such as `_1_A2587` in `Torture & CID_1_A2587`.
    pub category_suffix: Option<String>,
    /// Several events per row, each with its own date and category columns. When set, `date`
    /// and `categories` are not used.
    pub events: Vec<EventColumns>,
    /// Column of the facility key (or keys, with `facility_separator`) a row is linked to.
    pub facility: Option<String>,
    pub facility_separator: Option<String>,
    pub facility_weights: FacilityWeights,
    pub facilities: Option<FacilityOptions>,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// From this zoom on, tiles carry the points themselves in a `points` layer.
    pub points_minzoom: u8,
    pub grid: GridShape,
    /// Width of a cell in pixels of a 256-pixel tile, the same at every zoom.
    pub cell_size: u32,
    /// Heat-map kernel radius in pixels of a 256-pixel tile.
    pub heatmap_radius: f64,
    /// Heat-map kernel radius in metres on the ground; replaces `heatmap_radius` when set.
    pub heatmap_radius_m: Option<f64>,
    /// Default colour ramp of the heat map.
    pub ramp: Ramp,
}

impl Default for DensityOptions {
    fn default() -> Self {
        Self {
            kind: "points".to_owned(),
            format: None,
            location: LocationColumns::default(),
            date: None,
            date_order: DateOrder::default(),
            categories: None,
            category_separator: None,
            category_suffix: None,
            events: Vec::new(),
            facility: None,
            facility_separator: None,
            facility_weights: FacilityWeights::default(),
            facilities: None,
            minzoom: 0,
            maxzoom: 20,
            points_minzoom: 14,
            grid: GridShape::default(),
            cell_size: 32,
            heatmap_radius: 24.0,
            heatmap_radius_m: None,
            ramp: Ramp::default(),
        }
    }
}

/// Largest heat-map radius in pixels: the kernel then reaches half a tile into the
/// neighbours, which is as far as a tile reads points.
pub const MAX_RADIUS_PX: f64 = 128.0;

impl DensityOptions {
    pub(super) fn validate(&self) -> Result<(), DensityError> {
        let invalid = |option, value: String, reason: &str| {
            Err(DensityError::InvalidOption {
                option,
                value,
                reason: reason.to_owned(),
            })
        };
        if self.kind != "points" {
            return invalid(
                "kind",
                self.kind.clone(),
                "density sources have kind = \"points\"",
            );
        }
        if self.maxzoom > MAX_ZOOM {
            return invalid(
                "maxzoom",
                self.maxzoom.to_string(),
                "the deepest zoom served is 24",
            );
        }
        if self.minzoom > self.maxzoom {
            return invalid(
                "minzoom",
                self.minzoom.to_string(),
                "it must not exceed maxzoom",
            );
        }

        let cell_ok = match self.grid {
            GridShape::Square => {
                (4..=256).contains(&self.cell_size) && self.cell_size.is_power_of_two()
            }
            GridShape::Hexagon => (8..=128).contains(&self.cell_size),
        };
        if !cell_ok {
            return invalid(
                "cell_size",
                self.cell_size.to_string(),
                "use pixels from 8 to 128 for hexagons, or a power of two from 4 to 256 for squares, so that squares line up with tiles",
            );
        }
        if !(self.heatmap_radius.is_finite()
            && (1.0..=MAX_RADIUS_PX).contains(&self.heatmap_radius))
        {
            return invalid(
                "heatmap_radius",
                self.heatmap_radius.to_string(),
                "use pixels from 1 to 128",
            );
        }
        if let Some(metres) = self.heatmap_radius_m
            && !(metres.is_finite() && metres > 0.0)
        {
            return invalid("heatmap_radius_m", metres.to_string(), "use metres above 0");
        }

        let own = &self.location;
        if own.latitude.is_some() != own.longitude.is_some() {
            return invalid(
                "latitude",
                format!("{:?}", own.latitude),
                "set both latitude and longitude, or lat_lon",
            );
        }
        if self.facility.is_some() != self.facilities.is_some() {
            return invalid(
                "facility",
                format!("{:?}", self.facility),
                "set both facility (the key column of the points) and [facilities] (the table it joins to)",
            );
        }
        if let Some(facilities) = &self.facilities {
            let location = &facilities.location;
            if location.latitude.is_some() != location.longitude.is_some() {
                return invalid(
                    "facilities",
                    facilities.path.display().to_string(),
                    "set both latitude and longitude of the facilities, or lat_lon, or neither to use the file's geometries",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DensityOptions, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        DensityOptions::deserialize(toml::Value::Table(table)).map_err(|e| e.to_string())
    }

    #[test]
    fn options_parse_with_flattened_locations() {
        let options = parse("kind = \"points\"\nlat_lon = \"Geolocation\"\n[facilities]\npath = \"f.csv\"\nkey = \"Title\"\nlatitude = \"lat\"\nlongitude = \"lon\"\n")
            .expect("valid options");
        assert_eq!(options.location.lat_lon.as_deref(), Some("Geolocation"));
        let facilities = options.facilities.expect("facilities");
        assert_eq!(facilities.location.latitude.as_deref(), Some("lat"));
    }

    #[test]
    fn unknown_options_are_rejected() {
        let error = parse("kind = \"points\"\nlatitud = \"lat\"\n").expect_err("a typo");
        assert!(error.contains("latitud"), "{error}");
    }

    #[test]
    fn impossible_values_are_named() {
        let cases = [
            ("kind = \"points\"\ncell_size = 3", "cell_size"),
            (
                "kind = \"points\"\ngrid = \"square\"\ncell_size = 48",
                "cell_size",
            ),
            (
                "kind = \"points\"\nheatmap_radius = 500.0",
                "heatmap_radius",
            ),
            (
                "kind = \"points\"\nheatmap_radius_m = -1.0",
                "heatmap_radius_m",
            ),
            ("kind = \"points\"\nminzoom = 9\nmaxzoom = 8", "minzoom"),
            ("kind = \"points\"\nlatitude = \"lat\"", "latitude"),
            ("kind = \"points\"\nfacility = \"site\"", "facility"),
        ];
        for (text, option) in cases {
            let options = parse(text).expect(text);
            let error = options.validate().expect_err(text).to_string();
            assert!(error.contains(option), "{text}: {error}");
        }
    }
}
