//! The facts of one scene: acquisition date and where it was found, native ground resolution,
//! footprint, sensor and source.

use std::path::Path;

use gdal::Dataset;
use gdal::Metadata;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo::{ConvexHull, Coord, LineString, MultiPoint, Point, Polygon};
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

/// Largest side, in cells, of the grid of the validity mask that a footprint is traced on.
const FOOTPRINT_GRID: usize = 256;

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
    /// The zoom from which 256-pixel tiles are finer than the scene's own pixels and are
    /// enhanced by default (`RasterSource::enhanced_from_zoom`), or `None` when the scene is
    /// served without enhancement. The caller that has the scene's source sets it.
    pub enhanced_from_zoom: Option<u8>,
    pub sensor: Option<String>,
    pub source: String,
    /// Lon/lat bounds: west, south, east, north.
    pub bounds: [f64; 4],
    /// The outline of the valid pixels in Web Mercator metres: the convex hull of the pixels
    /// that the nodata value or mask leaves valid, or the image grid's outline when every
    /// pixel is valid.
    #[serde(skip)]
    pub footprint: Polygon<f64>,
}

/// The STAC items in one folder, read once for all the scenes in it.
#[derive(Debug, Default)]
pub struct StacItems {
    /// Each item with the path of its file.
    items: Vec<(std::path::PathBuf, Value)>,
}

impl StacItems {
    /// Reads every `.json` file in `folder` that is a STAC item, in file name order. Files that
    /// are not STAC items, or larger than `MAX_STAC_ITEM_BYTES`, are left out.
    pub fn in_folder(folder: &Path) -> Self {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return Self::default();
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|candidate| {
                candidate
                    .extension()
                    .is_some_and(|extension| extension.eq_ignore_ascii_case("json"))
            })
            .collect();
        paths.sort();
        Self {
            items: paths
                .into_iter()
                .filter_map(|path| Some((path.clone(), read_stac_item(&path)?)))
                .collect(),
        }
    }

    /// Finds the item that describes `path`: `STEM.json` beside it, or else the first item
    /// with an asset whose `href` ends in the file's name.
    fn describing(&self, path: &Path) -> Option<&Value> {
        let name = path.file_name()?.to_str()?;
        let own_path = path.with_extension("json");
        let own = self
            .items
            .iter()
            .find(|(item_path, _)| *item_path == own_path);
        let named = || {
            self.items.iter().find(|(_, item)| {
                let Some(assets) = item.get("assets").and_then(Value::as_object) else {
                    return false;
                };
                assets.values().any(|asset| {
                    asset
                        .get("href")
                        .and_then(Value::as_str)
                        .and_then(|href| href.rsplit('/').next())
                        .is_some_and(|asset_name| asset_name == name)
                })
            })
        };
        own.or_else(named).map(|(_, item)| item)
    }
}

/// Reads the facts of the raster at `path`, with `stac` the items of its folder. Blocking: it
/// opens the file.
pub fn read_facts(
    path: &Path,
    info: &RasterInfo,
    overrides: &SceneOverrides,
    stac: &StacItems,
) -> Result<SceneFacts, gdal::errors::GdalError> {
    let dataset = Dataset::open(path)?;
    let stac = stac.describing(path);
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
        .or_else(|| stac.and_then(stac_source))
        .unwrap_or_else(|| file.clone());

    let (x, y) = info.resolution_metres;
    let spatial_ref = dataset.spatial_ref()?;
    let outline = match valid_hull(&dataset, info)? {
        Some(hull) => hull,
        None => grid_outline(&info.native_bounds),
    };
    let footprint = footprint_mercator(&spatial_ref, outline)?;
    let b = info.bounds_lonlat;
    Ok(SceneFacts {
        file,
        date,
        date_origin,
        resolution_m: x.abs().max(y.abs()),
        enhanced_from_zoom: None,
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

/// Traces the convex hull of the valid pixels in the file's CRS, on a grid of at most
/// `FOOTPRINT_GRID` cells a side read from the smallest overview's mask, or the full image's
/// mask decimated by GDAL. Returns `None` when GDAL marks every pixel valid or none is.
fn valid_hull(
    dataset: &Dataset,
    info: &RasterInfo,
) -> Result<Option<Vec<(f64, f64)>>, gdal::errors::GdalError> {
    let band = dataset.rasterband(1)?;
    if band.mask_flags()?.is_all_valid() {
        return Ok(None);
    }
    let smallest = info.bands[0]
        .overviews
        .iter()
        .enumerate()
        .min_by_key(|(_, (width, height))| width * height)
        .map(|(index, _)| index);
    // NOTE: without overviews, GDAL reads every block of the image to decimate its mask, which
    // adds to the start-up time of a large file.
    let level = match smallest {
        Some(index) => band.overview(index)?,
        None => band,
    };
    let (width, height) = level.size();
    let mask = level.open_mask_band()?;
    let scale = (width.max(height) as f64 / FOOTPRINT_GRID as f64).max(1.0);
    let columns = ((width as f64 / scale).ceil() as usize).max(1);
    let rows = ((height as f64 / scale).ceil() as usize).max(1);
    let cells = mask
        .read_as::<u8>((0, 0), (width, height), (columns, rows), None)?
        .into_shape_and_vec()
        .1;

    // The outer corners of the first and last valid cell of each row bound every valid cell.
    let gt = &info.geo_transform;
    let cell_width = info.width as f64 / columns as f64;
    let cell_height = info.height as f64 / rows as f64;
    let to_crs = |column: usize, row: usize| {
        let (px, py) = (column as f64 * cell_width, row as f64 * cell_height);
        Point::new(
            gt[0] + px * gt[1] + py * gt[2],
            gt[3] + px * gt[4] + py * gt[5],
        )
    };
    let mut corners = Vec::new();
    for (row, values) in cells.chunks_exact(columns).enumerate() {
        let first = values.iter().position(|&value| value > 0);
        let last = values.iter().rposition(|&value| value > 0);
        if let (Some(first), Some(last)) = (first, last) {
            corners.extend([
                to_crs(first, row),
                to_crs(first, row + 1),
                to_crs(last + 1, row),
                to_crs(last + 1, row + 1),
            ]);
        }
    }
    if corners.is_empty() {
        return Ok(None);
    }
    let hull = MultiPoint::new(corners).convex_hull();
    Ok(Some(
        hull.exterior().points().map(|p| (p.x(), p.y())).collect(),
    ))
}

/// Returns the outline of the grid, `native` in the file's CRS, with points along each edge so
/// that the outline follows edges that curve after reprojection.
fn grid_outline(native: &Bbox) -> Vec<(f64, f64)> {
    let n = FOOTPRINT_POINTS_PER_EDGE;
    let corners = [
        (native.min_x, native.max_y),
        (native.max_x, native.max_y),
        (native.max_x, native.min_y),
        (native.min_x, native.min_y),
    ];
    let mut outline = Vec::with_capacity(4 * n + 1);
    for edge in 0..4 {
        let (x0, y0) = corners[edge];
        let (x1, y1) = corners[(edge + 1) % 4];
        for step in 0..n {
            let t = step as f64 / n as f64;
            outline.push((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t));
        }
    }
    outline.push(outline[0]);
    outline
}

/// Transforms a closed ring in the file's CRS to Web Mercator.
fn footprint_mercator(
    spatial_ref: &SpatialRef,
    ring: Vec<(f64, f64)>,
) -> Result<Polygon<f64>, gdal::errors::GdalError> {
    let mut source_srs = spatial_ref.clone();
    source_srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_lonlat = CoordTransform::new(&source_srs, &wgs84)?;

    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = ring.into_iter().unzip();
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

    /// Writes a 100 x 100 GeoTIFF in UTM 18N with nodata 0 whose valid pixels form a diamond
    /// touching the middle of each edge, or fill the image when `diamond` is false.
    fn write_scene(path: &Path, diamond: bool) {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff driver");
        let mut dataset = driver
            .create_with_band_type::<u8, _>(path, 100, 100, 1)
            .expect("create");
        dataset
            .set_geo_transform(&[500_000.0, 30.0, 0.0, 5_000_000.0, 0.0, -30.0])
            .expect("geotransform");
        let utm = SpatialRef::from_epsg(32618).expect("EPSG:32618");
        dataset.set_spatial_ref(&utm).expect("CRS");
        let mut pixels = vec![0_u8; 100 * 100];
        for (index, pixel) in pixels.iter_mut().enumerate() {
            let (x, y) = ((index % 100) as f64 + 0.5, (index / 100) as f64 + 0.5);
            if !diamond || (x - 50.0).abs() + (y - 50.0).abs() <= 50.0 {
                *pixel = 100;
            }
        }
        let mut band = dataset.rasterband(1).expect("band");
        band.set_no_data_value(Some(0.0)).expect("nodata");
        let mut buffer = gdal::raster::Buffer::new((100, 100), pixels);
        band.write((0, 0), (100, 100), &mut buffer).expect("write");
    }

    #[test]
    fn footprint_follows_valid_pixels() {
        use geo::Area;
        let folder = tempfile::tempdir().expect("tempdir");
        let mut areas = Vec::new();
        for (name, diamond) in [("full.tif", false), ("diamond.tif", true)] {
            let path = folder.path().join(name);
            write_scene(&path, diamond);
            let dataset = Dataset::open(&path).expect("open");
            let info = crate::raster::read_info(&path, &dataset).expect("info");
            let stac = StacItems::default();
            let facts = read_facts(&path, &info, &SceneOverrides::default(), &stac).expect("facts");
            areas.push(facts.footprint.unsigned_area());
        }
        let ratio = areas[1] / areas[0];
        // A diamond inside a square covers half of it; the hull of whole cells is a bit more.
        assert!(
            (0.5..0.56).contains(&ratio),
            "diamond footprint is {ratio} of the full one"
        );
    }

    #[test]
    fn stac_items_match_by_name_or_asset() {
        let folder = tempfile::tempdir().expect("tempdir");
        let item = |id: &str, href: &str| {
            serde_json::json!({
                "type": "Feature", "stac_version": "1.0.0", "id": id,
                "properties": {"datetime": "2020-02-19T00:00:00Z"},
                "assets": {"visual": {"href": href}}
            })
            .to_string()
        };
        let write = |name: &str, text: String| {
            std::fs::write(folder.path().join(name), text).expect("write");
        };
        write("a.json", item("scene-a", "https://example.org/x/TCI.tif"));
        write("B04.json", item("own", "https://example.org/x/other.tif"));
        write(
            "plain.json",
            r#"{"type": "FeatureCollection", "features": []}"#.to_owned(),
        );
        let items = StacItems::in_folder(folder.path());
        let id = |file: &str| {
            items
                .describing(&folder.path().join(file))
                .and_then(|item| item.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        assert_eq!(id("TCI.tif").as_deref(), Some("scene-a"), "by asset href");
        assert_eq!(id("B04.tif").as_deref(), Some("own"), "by STEM.json");
        assert_eq!(id("B02.tif"), None, "no item names B02.tif");
        assert_eq!(items.items.len(), 2, "plain GeoJSON is not a STAC item");
    }

    #[test]
    fn stac_date_falls_back_to_start() {
        let item = serde_json::json!({"datetime": null, "start_datetime": "2019-03-01T00:00:00Z"});
        assert_eq!(stac_date(&item), "2019-03-01".parse().ok());
        let item = serde_json::json!({"datetime": "2020-02-19T11:34:25.405Z"});
        assert_eq!(stac_date(&item), "2020-02-19".parse().ok());
    }
}
