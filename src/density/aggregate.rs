//! Aggregation tiles: cells with counts, the points themselves at high zooms, and facilities
//! with the counts of their linked points, encoded as MVT.

use std::collections::HashMap;

use mvt::{GeomEncoder, GeomType};

use super::DensityError;
use super::category::CategoryId;
use super::date::{Day, format_day, year_of};
use super::filter::Filter;
use super::grid::{Cell, Grid, cell_id};
use super::points::{MORTON_ZOOM, NO_FACILITY, Points, UNDATED, morton};
use super::{DensitySource, TILE_SIZE};
use crate::tile::TileCoord;

/// MVT extent of density tiles.
pub const EXTENT: u32 = 4096;

/// Margin around a tile that points and facilities are kept in, in pixels of a 256-pixel
/// tile, so that symbols near a border are drawn in both tiles.
const POINT_BUFFER_PX: f64 = 4.0;

/// A box in global pixels of one zoom: `x = fraction * 256 * 2^z`, y down.
#[derive(Debug, Clone, Copy)]
pub(super) struct PixelBox {
    pub(super) min_x: f64,
    pub(super) min_y: f64,
    pub(super) max_x: f64,
    pub(super) max_y: f64,
}

impl PixelBox {
    /// Builds the box of the tile's own pixels grown by `margin` on each side.
    pub(super) fn around(tile: TileCoord, tile_size: f64, margin: f64) -> Self {
        let (x, y) = (f64::from(tile.x) * tile_size, f64::from(tile.y) * tile_size);
        Self {
            min_x: x - margin,
            min_y: y - margin,
            max_x: x + tile_size + margin,
            max_y: y + tile_size + margin,
        }
    }

    #[inline]
    pub(super) fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.min_x && x < self.max_x && y >= self.min_y && y < self.max_y
    }
}

/// Calls `visit` with the index of every point inside `area`, a box in global pixels of zoom
/// `z` for tiles of `tile_size` pixels.
///
/// NOTE: the box is clamped to the world, so a tile at the antimeridian does not see points
/// across it: cells and heat-map kernels there stop at ±180°.
pub(super) fn for_points_in(
    points: &Points,
    z: u8,
    tile_size: f64,
    area: &PixelBox,
    mut visit: impl FnMut(usize, f64, f64),
) {
    let world = tile_size * f64::from(1_u32 << z);
    let last = (1_i64 << z) - 1;
    let tile_of = |pixel: f64| ((pixel / tile_size).floor() as i64).clamp(0, last) as u32;
    let (x0, x1) = (tile_of(area.min_x), tile_of(area.max_x));
    let (y0, y1) = (tile_of(area.min_y), tile_of(area.max_y));
    let shift = 2 * u32::from(MORTON_ZOOM - z.min(MORTON_ZOOM));
    for ty in y0..=y1 {
        for tx in x0..=x1 {
            let start = morton(tx, ty) << shift;
            let end = start + (1_u64 << shift);
            let first = points.morton.partition_point(|&code| code < start);
            let after = points.morton.partition_point(|&code| code < end);
            for index in first..after {
                let (px, py) = (points.x[index] * world, points.y[index] * world);
                if area.contains(px, py) {
                    visit(index, px, py);
                }
            }
        }
    }
}

/// Counts gathered for one cell or facility.
#[derive(Debug, Clone)]
struct Tally {
    count: f64,
    points: u32,
    first: Day,
    last: Day,
    categories: Vec<(CategoryId, f64)>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            count: 0.0,
            points: 0,
            first: UNDATED.first,
            last: UNDATED.last,
            categories: Vec::new(),
        }
    }
}

impl Tally {
    fn add(&mut self, points: &Points, index: usize) {
        let weight = points.weight[index];
        self.count += weight;
        self.points += 1;
        let date = points.dates[index];
        if date != UNDATED {
            self.first = self.first.min(date.first);
            self.last = self.last.max(date.last);
        }
        for &id in points.categories(index) {
            match self.categories.iter_mut().find(|(c, _)| *c == id) {
                Some((_, count)) => *count += weight,
                None => self.categories.push((id, weight)),
            }
        }
    }

    /// Writes the shared properties: count, points, first and last date, counts by category.
    fn write(&self, source: &DensitySource, feature: &mut mvt::Feature) {
        feature.add_tag_double("count", self.count);
        feature.add_tag_uint("points", u64::from(self.points));
        if self.first != UNDATED.first {
            feature.add_tag_string("first", &format_day(self.first));
            feature.add_tag_string("last", &format_day(self.last));
        }
        let table = &source.loaded.categories;
        let mut categories = self.categories.clone();
        categories.sort_by(|a, b| table.path(a.0).cmp(table.path(b.0)));
        for (id, count) in categories {
            feature.add_tag_double(&format!("category:{}", table.path(id)), count);
        }
    }
}

/// Encodes the density tile: `cells` below `points_minzoom`, `points` from it on, and
/// `facilities` at every zoom. Returns `None` when no layer has a feature.
pub(super) fn encode_tile(
    source: &DensitySource,
    tile: TileCoord,
    filter: &Filter,
) -> Result<Option<Vec<u8>>, DensityError> {
    let encode_error = |source| DensityError::Encode { tile, source };
    let mut mvt_tile = mvt::Tile::new(EXTENT);
    let show_points =
        tile.z >= source.options.points_minzoom && !too_many_points(source, tile, filter);
    let layer = if show_points {
        points_layer(source, tile, filter, mvt_tile.create_layer("points"))
    } else {
        cells_layer(source, tile, filter, mvt_tile.create_layer("cells"))
    }
    .map_err(encode_error)?;
    if layer.num_features() > 0 {
        mvt_tile.add_layer(layer).map_err(encode_error)?;
    }
    if !source.loaded.facilities.is_empty() {
        let layer = facilities_layer(source, tile, filter, mvt_tile.create_layer("facilities"))
            .map_err(encode_error)?;
        if layer.num_features() > 0 {
            mvt_tile.add_layer(layer).map_err(encode_error)?;
        }
    }
    if mvt_tile.num_layers() == 0 {
        return Ok(None);
    }
    mvt_tile.to_bytes().map(Some).map_err(encode_error)
}

/// Points above which a tile at or past `points_minzoom` carries cells instead of its points,
/// so that thousands of events at one facility do not make a tile of megabytes.
pub const MAX_POINTS_PER_TILE: usize = 20_000;

fn too_many_points(source: &DensitySource, tile: TileCoord, filter: &Filter) -> bool {
    let area = PixelBox::around(tile, TILE_SIZE, POINT_BUFFER_PX);
    let points = &source.loaded.points;
    let mut count = 0;
    for_points_in(points, tile.z, TILE_SIZE, &area, |index, _, _| {
        count += usize::from(filter.matches(points, index));
    });
    count > MAX_POINTS_PER_TILE
}

/// Maps global pixels to the tile's MVT grid.
fn to_tile_units(tile: TileCoord, x: f64, y: f64) -> (i32, i32) {
    let scale = f64::from(EXTENT) / TILE_SIZE;
    (
        ((x - f64::from(tile.x) * TILE_SIZE) * scale).round() as i32,
        ((y - f64::from(tile.y) * TILE_SIZE) * scale).round() as i32,
    )
}

/// Adds every cell whose polygon reaches into the tile. A point is counted in the one cell
/// whose centre is nearest, and a cell carries the same id and counts in every tile it
/// touches. `centre_in_tile` is true only in the tile that contains its centre, so summing
/// the counts of those features over all tiles counts each point once.
fn cells_layer(
    source: &DensitySource,
    tile: TileCoord,
    filter: &Filter,
    mut layer: mvt::Layer,
) -> Result<mvt::Layer, mvt::Error> {
    let grid = Grid::new(source.options.grid, source.options.cell_size);
    let radius = grid.circumradius();
    // A cell that reaches into the tile has its centre within `radius` of it, and its points
    // lie within `radius` of that centre.
    let cell_area = PixelBox::around(tile, TILE_SIZE, radius);
    let point_area = PixelBox::around(tile, TILE_SIZE, 2.0 * radius);

    let mut slots: HashMap<Cell, usize> = HashMap::new();
    let mut tallies: Vec<(Cell, Tally)> = Vec::new();
    let mut previous: Option<(Cell, usize)> = None;
    let points = &source.loaded.points;
    for_points_in(points, tile.z, TILE_SIZE, &point_area, |index, px, py| {
        if !filter.matches(points, index) {
            return;
        }
        let cell = grid.cell_at(px, py);
        let slot = match previous {
            Some((last, slot)) if last == cell => slot,
            _ => {
                let (cx, cy) = grid.centre(cell);
                if !cell_area.contains(cx, cy) {
                    return;
                }
                let next = tallies.len();
                let slot = *slots.entry(cell).or_insert(next);
                if slot == next {
                    tallies.push((cell, Tally::default()));
                }
                previous = Some((cell, slot));
                slot
            }
        };
        tallies[slot].1.add(points, index);
    });

    tallies.sort_by_key(|(cell, _)| cell_id(*cell));
    let own = PixelBox::around(tile, TILE_SIZE, 0.0);
    for (cell, tally) in &tallies {
        let mut encoder = GeomEncoder::new(GeomType::Polygon);
        for (x, y) in grid.corners(*cell) {
            let (tx, ty) = to_tile_units(tile, x, y);
            encoder.add_point(tx, ty)?;
        }
        encoder.complete_geom()?;
        let mut feature = layer.into_feature(encoder.encode()?);
        feature.set_id(cell_id(*cell));
        tally.write(source, &mut feature);
        let (cx, cy) = grid.centre(*cell);
        feature.add_tag_bool("centre_in_tile", own.contains(cx, cy));
        layer = feature.into_layer();
    }
    Ok(layer)
}

/// Adds the points themselves, with their row, weight, dates, categories and facility.
fn points_layer(
    source: &DensitySource,
    tile: TileCoord,
    filter: &Filter,
    mut layer: mvt::Layer,
) -> Result<mvt::Layer, mvt::Error> {
    let area = PixelBox::around(tile, TILE_SIZE, POINT_BUFFER_PX);
    let points = &source.loaded.points;
    let mut found = Vec::new();
    for_points_in(points, tile.z, TILE_SIZE, &area, |index, px, py| {
        if filter.matches(points, index) {
            found.push((index, px, py));
        }
    });
    found.sort_by_key(|(index, _, _)| *index);
    let table = &source.loaded.categories;
    for (index, px, py) in found {
        let (tx, ty) = to_tile_units(tile, px, py);
        let mut encoder = GeomEncoder::new(GeomType::Point);
        encoder.add_point(tx, ty)?;
        let mut feature = layer.into_feature(encoder.encode()?);
        feature.set_id(index as u64);
        feature.add_tag_uint("row", u64::from(points.row[index]));
        feature.add_tag_double("count", points.weight[index]);
        let date = points.dates[index];
        if date != UNDATED {
            feature.add_tag_string("first", &format_day(date.first));
            feature.add_tag_string("last", &format_day(date.last));
        }
        // The most specific categories only: a parent that a child already implies is left out.
        let ids = points.categories(index);
        let mut leaves: Vec<&str> = ids
            .iter()
            .filter(|&&id| !ids.iter().any(|&other| table.parent(other) == Some(id)))
            .map(|&id| table.path(id))
            .collect();
        leaves.sort_unstable();
        if !leaves.is_empty() {
            feature.add_tag_string("categories", &leaves.join("|"));
        }
        let facility = points.facility[index];
        if facility != NO_FACILITY {
            feature.add_tag_string("facility", &source.loaded.facilities[facility as usize].key);
        }
        layer = feature.into_layer();
    }
    Ok(layer)
}

/// Adds each located facility in the tile that has matching linked points, with their
/// weighted count, the number of linked points, and counts by category and by year. A point
/// with a date range counts in the year its range starts.
fn facilities_layer(
    source: &DensitySource,
    tile: TileCoord,
    filter: &Filter,
    mut layer: mvt::Layer,
) -> Result<mvt::Layer, mvt::Error> {
    let area = PixelBox::around(tile, TILE_SIZE, POINT_BUFFER_PX);
    let world = TILE_SIZE * f64::from(1_u32 << tile.z);
    let points = &source.loaded.points;
    for (index, facility) in source.loaded.facilities.iter().enumerate() {
        let Some((x, y)) = facility.position else {
            continue;
        };
        let (px, py) = (x * world, y * world);
        if !area.contains(px, py) {
            continue;
        }
        let mut tally = Tally::default();
        let mut years: Vec<(i32, f64)> = Vec::new();
        for &point in &facility.points {
            let point = point as usize;
            if !filter.matches(points, point) {
                continue;
            }
            tally.add(points, point);
            let date = points.dates[point];
            if date != UNDATED {
                let year = year_of(date.first);
                let weight = points.weight[point];
                match years.iter_mut().find(|(y, _)| *y == year) {
                    Some((_, count)) => *count += weight,
                    None => years.push((year, weight)),
                }
            }
        }
        if tally.points == 0 {
            continue;
        }
        let (tx, ty) = to_tile_units(tile, px, py);
        let mut encoder = GeomEncoder::new(GeomType::Point);
        encoder.add_point(tx, ty)?;
        let mut feature = layer.into_feature(encoder.encode()?);
        feature.set_id(index as u64);
        feature.add_tag_string("key", &facility.key);
        feature.add_tag_string("name", &facility.name);
        tally.write(source, &mut feature);
        years.sort_by_key(|(year, _)| *year);
        for (year, count) in years {
            feature.add_tag_double(&format!("year:{year}"), count);
        }
        layer = feature.into_layer();
    }
    Ok(layer)
}
