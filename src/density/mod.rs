//! Density sources: dated, categorised points served as aggregation tiles (MVT) and heat-map
//! tiles (PNG), with filters by date range, category and facility.
//!
//! [`DensitySource::open`] reads a point file (CSV, TSV, JSON records, GeoJSON or any OGR
//! format). It places each row by its coordinates, its geometry or the facility it names. It
//! parses dates as day ranges and categories as `parent::child` paths, and sorts the points
//! along a Morton curve. Rows that cannot be placed are reported with their row number
//! and reason; the rest are served. A tile reads the points of its own Morton range and its
//! neighbours', so no request scans the whole set except the first heat-map request of a
//! zoom and filter, which computes that zoom's colour scale.

mod aggregate;
mod cache;
mod category;
mod date;
mod error;
mod facility;
mod filter;
mod grid;
mod heatmap;
mod location;
mod options;
mod points;
mod read;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub use self::aggregate::{EXTENT, MAX_POINTS_PER_TILE};
pub use self::date::{DateOrder, DateRange};
pub use self::error::DensityError;
pub use self::facility::Facility;
pub use self::filter::{Filter, HeatmapRequest, InvalidParameter, parse_query};
pub use self::heatmap::Ramp;
pub use self::options::{
    Columns, DensityOptions, EventColumns, FacilityOptions, FacilityWeights, GridShape,
    LocationColumns, MAX_RADIUS_PX,
};
pub use self::points::{LoadedPoints, Unplaced};
pub use self::read::PointFormat;
use crate::format::TileFormat;
use crate::tile::{self, Bbox, TileCoord};

/// Pixels along a tile's side at scale 1.
const TILE_SIZE: f64 = 256.0;

/// Rows not placed that TileJSON lists; the total is always given.
const LISTED_UNPLACED: usize = 100;

/// A point file loaded for density tiles.
#[derive(Debug)]
pub struct DensitySource {
    path: PathBuf,
    options: DensityOptions,
    loaded: LoadedPoints,
    bounds_lonlat: Bbox,
    tiles: cache::TileCache,
    scales: cache::ScaleCache,
}

impl DensitySource {
    /// Loads the points of `path`. Fails only when the file (or the facility table) cannot
    /// be read or an option is invalid. Rows that cannot be placed are reported and skipped.
    pub fn open(path: &Path, options: DensityOptions) -> Result<DensitySource, DensityError> {
        options.validate()?;
        let loaded = points::load_points(path, &options)?;
        let bounds_lonlat = bounds_of(&loaded.points);
        Ok(DensitySource {
            path: path.to_owned(),
            options,
            loaded,
            bounds_lonlat,
            tiles: cache::TileCache::new(cache::TILE_CACHE_BYTES),
            scales: cache::ScaleCache::new(cache::SCALE_CACHE_ENTRIES),
        })
    }

    pub fn options(&self) -> &DensityOptions {
        &self.options
    }

    pub fn loaded(&self) -> &LoadedPoints {
        &self.loaded
    }

    /// Returns the bounds of the points in degrees, or the Web Mercator world without points.
    pub fn bounds_lonlat(&self) -> Bbox {
        self.bounds_lonlat
    }

    /// Renders a tile: MVT aggregation for `.pbf`, a heat map for `.png`. Returns `None` for a
    /// tile with nothing in it. Results are cached by tile, scale, format and filter.
    pub fn tile(
        &self,
        tile: TileCoord,
        scale: u32,
        format: TileFormat,
        filter: &Filter,
        heat: HeatmapRequest,
    ) -> Result<Option<Vec<u8>>, DensityError> {
        let key = if format == TileFormat::Mvt {
            format!("{tile}.pbf?{}", filter.canonical)
        } else {
            let (radius, ramp) = self.heatmap_settings(tile.z, scale, heat);
            format!(
                "{tile}@{scale}x.{format}?{}&radius={radius}&ramp={}",
                filter.canonical,
                ramp.name()
            )
        };
        if let Some(hit) = self.tiles.get(&key) {
            return Ok(hit);
        }
        let rendered = self.render(tile, scale, format, filter, heat)?;
        self.tiles.insert(key, rendered.clone());
        Ok(rendered)
    }

    /// Renders a tile like [`DensitySource::tile`] but bypasses the tile cache. The heat
    /// map's per-zoom scale is still cached, because it belongs to the zoom, not the tile.
    pub fn render(
        &self,
        tile: TileCoord,
        scale: u32,
        format: TileFormat,
        filter: &Filter,
        heat: HeatmapRequest,
    ) -> Result<Option<Vec<u8>>, DensityError> {
        let _span = tracing::debug_span!(
            "density_tile",
            file = %self.path.display(),
            tile.z = tile.z,
            tile.x = tile.x,
            tile.y = tile.y
        )
        .entered();
        match format {
            TileFormat::Mvt => aggregate::encode_tile(self, tile, filter),
            _ => self.heatmap_tile(tile, scale, format, filter, heat),
        }
    }

    /// Returns the kernel radius in pixels of the requested tile size, and the ramp.
    ///
    /// A radius in metres is converted at the latitude of the centre of the data's bounds,
    /// one value per zoom, so that tiles match at their borders.
    /// NOTE: the metres are exact only near that latitude. Towards the poles, a set that spans
    /// many degrees of latitude gets a radius that is too small on the ground.
    fn heatmap_settings(&self, z: u8, scale: u32, heat: HeatmapRequest) -> (f64, Ramp) {
        let base = match (heat.radius_px, self.options.heatmap_radius_m) {
            (Some(pixels), _) => pixels,
            (None, Some(metres)) => {
                let latitude = self.bounds_lonlat.min_y.midpoint(self.bounds_lonlat.max_y);
                metres / (tile::resolution(z, TILE_SIZE as u32) * latitude.to_radians().cos())
            }
            (None, None) => self.options.heatmap_radius,
        };
        let radius = base.clamp(1.0, MAX_RADIUS_PX) * f64::from(scale);
        (radius, heat.ramp.unwrap_or(self.options.ramp))
    }

    fn heatmap_scale(&self, z: u8, scale: u32, radius: f64, filter: &Filter) -> f64 {
        let key = format!("{z}@{scale}?{}&radius={radius}", filter.canonical);
        if let Some(value) = self.scales.get(&key) {
            return value;
        }
        let value = heatmap::scale(
            &self.loaded.points,
            filter,
            z,
            TILE_SIZE * f64::from(scale),
            radius,
        );
        self.scales.insert(key, value);
        value
    }

    fn heatmap_tile(
        &self,
        tile: TileCoord,
        scale: u32,
        format: TileFormat,
        filter: &Filter,
        heat: HeatmapRequest,
    ) -> Result<Option<Vec<u8>>, DensityError> {
        let (radius, ramp) = self.heatmap_settings(tile.z, scale, heat);
        let size = TILE_SIZE as usize * scale as usize;
        let origin = (
            i64::from(tile.x) * size as i64,
            i64::from(tile.y) * size as i64,
        );
        let grid = heatmap::density(
            &self.loaded.points,
            filter,
            tile.z,
            size as f64,
            origin,
            size,
            radius,
        );
        if grid.values.is_empty() {
            return Ok(None);
        }
        let max = self.heatmap_scale(tile.z, scale, radius, filter);
        let rgba = heatmap::colour(&grid, max, ramp);
        if rgba.chunks_exact(4).all(|pixel| pixel[3] == 0) {
            return Ok(None);
        }
        crate::raster::encode::encode_rgba(&rgba, size as u32, size as u32, format)
            .map(Some)
            .map_err(|source| DensityError::EncodeImage { tile, source })
    }

    /// Describes the heat map's colour scale at zoom `z` for a filter: the density that the
    /// ramp's last colour stands for, and the ramp's stops in densities.
    pub fn legend(&self, z: u8, filter: &Filter, heat: HeatmapRequest) -> Value {
        let (radius, ramp) = self.heatmap_settings(z, 1, heat);
        let max = self.heatmap_scale(z, 1, radius, filter);
        let stops: Vec<Value> = ramp
            .stops()
            .iter()
            .map(|(t, [r, g, b, a])| {
                json!({
                    "value": heatmap::density_at(*t, max),
                    "color": format!("#{r:02x}{g:02x}{b:02x}{a:02x}"),
                })
            })
            .collect();
        json!({
            "zoom": z,
            "max": max,
            "radius_px": radius,
            "ramp": ramp.name(),
            "stops": stops,
            "filter": filter.canonical,
            "unit": "weighted points within the kernel radius (a Gaussian kernel with peak 1)",
            "scale": "logarithmic: a stop's position is ln(1 + value) / ln(1 + max)",
        })
    }

    /// Adds what a density source's TileJSON lists: its layers, filters, categories with
    /// counts, date range, heat-map and legend URLs, and the rows not placed. Tile URLs carry
    /// the request's filter.
    pub fn extend_tilejson(&self, tilejson: &mut Value, base_url: &str, id: &str, filter: &Filter) {
        let query = if filter.canonical.is_empty() {
            String::new()
        } else {
            format!("?{}", filter.canonical)
        };
        let tiles = format!("{base_url}/tiles/{id}/{{z}}/{{x}}/{{y}}");
        tilejson["tiles"] = json!([format!("{tiles}.pbf{query}")]);
        tilejson["vector_layers"] = self.vector_layers();
        let mut summary = self.summary();
        summary["filter"] = json!(filter.canonical);
        summary["heatmap_tiles"] = json!([format!("{tiles}.png{query}")]);
        summary["legend"] = json!(format!(
            "{base_url}/density/{id}/legend.json?z={{z}}{}",
            query.replacen('?', "&", 1)
        ));
        tilejson["tessera:density"] = summary;
    }

    /// Lists the MVT layers of the aggregation tiles, for TileJSON.
    fn vector_layers(&self) -> Value {
        let (minzoom, maxzoom) = (self.options.minzoom, self.options.maxzoom);
        let tally_fields = json!({
            "count": "Number",
            "points": "Number",
            "first": "String",
            "last": "String",
            "category:{path}": "Number",
        });
        let mut cell_fields = tally_fields.clone();
        cell_fields["centre_in_tile"] = json!("Boolean");
        let mut facility_fields = tally_fields;
        facility_fields["key"] = json!("String");
        facility_fields["name"] = json!("String");
        facility_fields["year:{YYYY}"] = json!("Number");
        let mut layers = vec![
            // Cells stop at `points_minzoom`, except in tiles with more than
            // `MAX_POINTS_PER_TILE` points, which keep them.
            json!({
                "id": "cells",
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "geometry_type": "Polygon",
                "fields": cell_fields,
            }),
            json!({
                "id": "points",
                "minzoom": self.options.points_minzoom.min(maxzoom),
                "maxzoom": maxzoom,
                "geometry_type": "Point",
                "fields": {
                    "row": "Number",
                    "count": "Number",
                    "first": "String",
                    "last": "String",
                    "categories": "String",
                    "facility": "String",
                },
            }),
        ];
        if !self.loaded.facilities.is_empty() {
            layers.push(json!({
                "id": "facilities",
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "geometry_type": "Point",
                "fields": facility_fields,
            }));
        }
        Value::Array(layers)
    }

    /// Summarises the loaded points for TileJSON: counts, grid, date range, categories,
    /// the filters a request may give, and the rows not placed.
    fn summary(&self) -> Value {
        let table = &self.loaded.categories;
        let categories: Vec<Value> = table
            .sorted_ids()
            .into_iter()
            .map(|c| {
                json!({
                    "path": table.path(c),
                    "count": table.count(c),
                    "parent": table.parent(c).map(|p| table.path(p)),
                })
            })
            .collect();
        let grid = match self.options.grid {
            GridShape::Hexagon => "hexagon",
            GridShape::Square => "square",
        };
        let date_range = self
            .loaded
            .date_span
            .map(|span| [date::format_day(span.first), date::format_day(span.last)]);
        let unplaced: Vec<&Unplaced> = self.loaded.unplaced.iter().take(LISTED_UNPLACED).collect();
        json!({
            "points": self.loaded.points.len(),
            "rows": self.loaded.rows,
            "events": self.loaded.events,
            "grid": grid,
            "cell_size_px": self.options.cell_size,
            "points_minzoom": self.options.points_minzoom,
            "date_range": date_range,
            "categories": categories,
            "facilities": self.loaded.facilities.len(),
            "filters": {
                "from": "first day, as YYYY, YYYY-MM or YYYY-MM-DD; a point matches when its date range overlaps the filter's",
                "to": "last day, in the same forms",
                "category": "category path, repeated or comma-separated; a parent includes its children",
                "facility": "facility key, repeated or comma-separated",
                "radius": "heat-map kernel radius in pixels, 1 to 128",
                "ramp": "heat-map colour ramp: heat, viridis, magma or greys",
            },
            "not_placed": { "count": self.loaded.unplaced_count, "rows": unplaced },
        })
    }
}

fn bounds_of(points: &points::Points) -> Bbox {
    if points.is_empty() {
        return Bbox::new(-180.0, -tile::MAX_LATITUDE, 180.0, tile::MAX_LATITUDE);
    }
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for index in 0..points.len() {
        min_x = min_x.min(points.x[index]);
        max_x = max_x.max(points.x[index]);
        min_y = min_y.min(points.y[index]);
        max_y = max_y.max(points.y[index]);
    }
    let to_lonlat = |x: f64, y: f64| {
        tile::mercator_to_lonlat(
            x * 2.0 * tile::ORIGIN_SHIFT - tile::ORIGIN_SHIFT,
            tile::ORIGIN_SHIFT - y * 2.0 * tile::ORIGIN_SHIFT,
        )
    };
    let (west, north) = to_lonlat(min_x, min_y);
    let (east, south) = to_lonlat(max_x, max_y);
    Bbox::new(west, south, east, north)
}

#[cfg(test)]
mod tests;
