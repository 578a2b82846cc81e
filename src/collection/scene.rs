//! The facts of one scene: acquisition date and where it was found, native ground resolution,
//! footprint, sensor and source.

use std::path::Path;

use gdal::Dataset;
use gdal::Metadata;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo::{Coord, LineString, Polygon};
use serde::Serialize;
use serde_json::Value;

use super::date::Period;
use crate::raster::RasterInfo;
use crate::tile::{self, Bbox};

/// Largest STAC item read when looking for a scene's date, in bytes. Real items are tens of
/// kilobytes.
const MAX_STAC_ITEM_BYTES: u64 = 1 << 20;

/// Points per edge of a footprint, so that edges that curve in Web Mercator stay close.
const FOOTPRINT_POINTS_PER_EDGE: usize = 16;

/// The place a scene's date was read from, from the most to the least trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrigin {
    Configuration,
    StacItem,
    /// GDAL's `ACQUISITIONDATETIME`, from the imagery metadata of satellite products.
    Metadata,
    FileName,
    /// `TIFFTAG_DATETIME`, which many tools set to the time the file was written, not the
    /// time the imagery was taken.
    TiffDatetime,
}

/// Facts that the configuration sets for scenes instead of reading them from the files.
#[derive(Debug, Clone, Default)]
pub struct SceneOverrides {
    pub date: Option<Period>,
    pub sensor: Option<String>,
    pub source: Option<String>,
}

/// The facts of one scene, as TileJSON and the coverage layer show them.
#[derive(Debug, Clone, Serialize)]
pub struct SceneFacts {
    /// File name, without its folder.
    pub file: String,
    pub date: Option<Period>,
    pub date_origin: Option<DateOrigin>,
    /// Ground size of a pixel in metres, the larger of x and y, at the scene's centre.
    pub resolution_m: f64,
    /// The zoom from which tiles are finer than the scene's own pixels, so that they enlarge
    /// it.
    pub enhanced_from_zoom: u8,
    pub sensor: Option<String>,
    pub source: String,
    /// Lon/lat bounds: west, south, east, north.
    pub bounds: [f64; 4],
    /// The outline of the image grid in Web Mercator metres. It includes nodata collars.
    #[serde(skip)]
    pub footprint: Polygon<f64>,
}

/// Reads the facts of the raster at `path`. Blocking: it opens the file and may read a STAC
/// item beside it.
pub fn read_facts(
    path: &Path,
    info: &RasterInfo,
    overrides: &SceneOverrides,
) -> Result<SceneFacts, gdal::errors::GdalError> {
    let dataset = Dataset::open(path)?;
    let stac = find_stac_item(path);
    let stac_properties = stac.as_ref().and_then(|item| item.get("properties"));

    let (date, date_origin) = if let Some(date) = overrides.date {
        (Some(date), Some(DateOrigin::Configuration))
    } else if let Some(date) = stac_properties.and_then(stac_date) {
        (Some(date), Some(DateOrigin::StacItem))
    } else if let Some(date) = metadata_date(&dataset, &["IMAGERY", ""], "ACQUISITIONDATETIME") {
        (Some(date), Some(DateOrigin::Metadata))
    } else if let Some(date) = file_stem(path).and_then(super::date::Date::from_file_stem) {
        (Some(date), Some(DateOrigin::FileName))
    } else if let Some(date) = metadata_date(&dataset, &[""], "TIFFTAG_DATETIME") {
        (Some(date), Some(DateOrigin::TiffDatetime))
    } else {
        (None, None)
    };

    let sensor = overrides
        .sensor
        .clone()
        .or_else(|| stac_properties.and_then(stac_sensor))
        .or_else(|| dataset.metadata_item("SATELLITEID", "IMAGERY"))
        .or_else(|| dataset.metadata_item("SENSOR", ""));
    let file = path
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let source = overrides
        .source
        .clone()
        .or_else(|| stac.as_ref().and_then(stac_source))
        .unwrap_or_else(|| file.clone());

    let (x, y) = info.resolution_metres;
    // Tiles at a zoom whose pixels are finer by less than 1 % are not counted as enlarged.
    let enhanced_from_zoom = (info.native_zoom() - 0.01)
        .ceil()
        .clamp(0.0, f64::from(tile::MAX_ZOOM)) as u8;
    let spatial_ref = dataset.spatial_ref()?;
    let footprint = footprint_mercator(&spatial_ref, &info.native_bounds)?;
    let b = info.bounds_lonlat;
    Ok(SceneFacts {
        file,
        date,
        date_origin,
        resolution_m: x.abs().max(y.abs()),
        enhanced_from_zoom,
        sensor,
        source,
        bounds: [b.min_x, b.min_y, b.max_x, b.max_y],
        footprint,
    })
}

fn file_stem(path: &Path) -> Option<&str> {
    path.file_stem().and_then(|stem| stem.to_str())
}

fn metadata_date(dataset: &Dataset, domains: &[&str], key: &str) -> Option<Period> {
    domains
        .iter()
        .filter_map(|domain| dataset.metadata_item(key, domain))
        .find_map(|value| super::date::Date::from_timestamp(&value).map(Period::Day))
}

/// Finds the STAC item that describes `path`: `STEM.json` beside it, or another `.json` file
/// in its folder with an asset whose `href` ends in the file's name.
fn find_stac_item(path: &Path) -> Option<Value> {
    let name = path.file_name()?.to_str()?;
    let own = path.with_extension("json");
    if let Some(item) = read_stac_item(&own) {
        return Some(item);
    }
    let folder = path.parent()?;
    let mut candidates: Vec<_> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|candidate| {
            candidate
                .extension()
                .is_some_and(|extension| extension.eq_ignore_ascii_case("json"))
        })
        .collect();
    candidates.sort();
    candidates.into_iter().find_map(|candidate| {
        let item = read_stac_item(&candidate)?;
        let assets = item.get("assets")?.as_object()?;
        let describes = assets.values().any(|asset| {
            asset
                .get("href")
                .and_then(Value::as_str)
                .and_then(|href| href.rsplit('/').next())
                .is_some_and(|asset_name| asset_name == name)
        });
        describes.then_some(item)
    })
}

/// Reads `path` when it is a STAC item: a GeoJSON `Feature` with `stac_version`.
fn read_stac_item(path: &Path) -> Option<Value> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > MAX_STAC_ITEM_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let item: Value = serde_json::from_str(&text).ok()?;
    let is_item = item.get("type").and_then(Value::as_str) == Some("Feature")
        && item.get("stac_version").is_some();
    is_item.then_some(item)
}

/// Reads `datetime`, or `start_datetime` when `datetime` is null, as STAC allows for ranges.
fn stac_date(properties: &Value) -> Option<Period> {
    ["datetime", "start_datetime"]
        .iter()
        .filter_map(|key| properties.get(key).and_then(Value::as_str))
        .find_map(|text| super::date::Date::from_timestamp(text).map(Period::Day))
}

/// Builds the sensor from STAC's `platform` and `instruments`, as in `sentinel-2a msi`.
fn stac_sensor(properties: &Value) -> Option<String> {
    let platform = properties
        .get("platform")
        .or_else(|| properties.get("constellation"))
        .and_then(Value::as_str)?;
    let instruments: Vec<&str> = properties
        .get("instruments")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if instruments.is_empty() {
        Some(platform.to_owned())
    } else {
        Some(format!("{platform} {}", instruments.join(" ")))
    }
}

/// Names the STAC item as `collection/id`, or `id` without a collection.
fn stac_source(item: &Value) -> Option<String> {
    let id = item.get("id").and_then(Value::as_str)?;
    Some(match item.get("collection").and_then(Value::as_str) {
        Some(collection) => format!("{collection}/{id}"),
        None => id.to_owned(),
    })
}

/// Transforms the outline of the grid, `native` in the file's CRS, to Web Mercator, with
/// points along each edge so that the outline follows edges that curve after reprojection.
fn footprint_mercator(
    spatial_ref: &SpatialRef,
    native: &Bbox,
) -> Result<Polygon<f64>, gdal::errors::GdalError> {
    let mut source_srs = spatial_ref.clone();
    source_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_lonlat = CoordTransform::new(&source_srs, &wgs84)?;

    let n = FOOTPRINT_POINTS_PER_EDGE;
    let corners = [
        (native.min_x, native.max_y),
        (native.max_x, native.max_y),
        (native.max_x, native.min_y),
        (native.min_x, native.min_y),
    ];
    let mut xs = Vec::with_capacity(4 * n + 1);
    let mut ys = Vec::with_capacity(4 * n + 1);
    for edge in 0..4 {
        let (x0, y0) = corners[edge];
        let (x1, y1) = corners[(edge + 1) % 4];
        for step in 0..n {
            let t = step as f64 / n as f64;
            xs.push(x0 + (x1 - x0) * t);
            ys.push(y0 + (y1 - y0) * t);
        }
    }
    xs.push(xs[0]);
    ys.push(ys[0]);
    let mut zs = vec![0.0; xs.len()];
    to_lonlat.transform_coords(&mut xs, &mut ys, &mut zs)?;
    let ring: Vec<Coord<f64>> = xs
        .iter()
        .zip(&ys)
        .map(|(&lon, &lat)| {
            let lat = lat.clamp(-tile::MAX_LATITUDE, tile::MAX_LATITUDE);
            let (x, y) = tile::lonlat_to_mercator(lon.clamp(-180.0, 180.0), lat);
            Coord { x, y }
        })
        .collect();
    Ok(Polygon::new(LineString::new(ring), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stac_sensor_joins_platform_and_instruments() {
        let cases = [
            (
                serde_json::json!({"platform": "sentinel-2a", "instruments": ["msi"]}),
                Some("sentinel-2a msi"),
            ),
            (
                serde_json::json!({"constellation": "landsat"}),
                Some("landsat"),
            ),
            (serde_json::json!({"instruments": ["oli"]}), None),
        ];
        for (properties, expected) in cases {
            assert_eq!(
                stac_sensor(&properties).as_deref(),
                expected,
                "{properties}"
            );
        }
    }

    #[test]
    fn stac_date_falls_back_to_start() {
        let item = serde_json::json!({"datetime": null, "start_datetime": "2019-03-01T00:00:00Z"});
        assert_eq!(stac_date(&item), "2019-03-01".parse().ok());
        let item = serde_json::json!({"datetime": "2020-02-19T11:34:25.405Z"});
        assert_eq!(stac_date(&item), "2020-02-19".parse().ok());
    }
}
