//! Building the point store from rows: locations, the facility join, dates and categories.

use std::collections::HashMap;
use std::path::Path;

use super::DensityError;
use super::category::{CategoryId, CategoryTable};
use super::date::{DateRange, Day, parse_range};
use super::facility::{Facility, load_facilities};
use super::location::{ColumnList, LocationIndices, world_position};
use super::options::{Columns, DensityOptions, FacilityWeights};
use super::read::{FieldText, PointFormat, RawRow, read_rows};

/// Bits per axis of the Morton code that points are sorted by: the grid of zoom 24.
pub(super) const MORTON_ZOOM: u8 = 24;

/// Index of "no facility" in [`Points::facility`].
pub(super) const NO_FACILITY: u32 = u32::MAX;

/// Rows that could not be placed, kept for the report; later ones are only counted.
const REPORTED_ROWS: usize = 1000;

/// Rows logged one by one at start-up; later ones are logged at debug level.
const LOGGED_ROWS: usize = 20;

/// The date range of an undated point: it overlaps no range, so a date filter excludes it.
pub(super) const UNDATED: DateRange = DateRange {
    first: Day::MAX,
    last: Day::MIN,
};

/// A row, or one event of a row, that is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unplaced {
    /// 1-based data row of the point file (the header is not counted).
    pub row: usize,
    pub reason: String,
}

/// All points of a source, sorted by their Morton code so that every tile's points are one
/// contiguous run per tile of the query.
#[derive(Debug, Default)]
pub struct Points {
    /// Position as fractions of the Web Mercator square: x from west, y from north, 0 to 1.
    pub(super) x: Vec<f64>,
    pub(super) y: Vec<f64>,
    pub(super) morton: Vec<u64>,
    pub(super) weight: Vec<f64>,
    pub(super) dates: Vec<DateRange>,
    /// Category ids of point `i`, ancestors included: the slice of `category_ids` from
    /// `category_offsets[i]` to `category_offsets[i + 1]`.
    pub(super) category_offsets: Vec<u32>,
    pub(super) category_ids: Vec<CategoryId>,
    pub(super) facility: Vec<u32>,
    pub(super) row: Vec<u32>,
}

impl Points {
    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    pub(super) fn categories(&self, index: usize) -> &[CategoryId] {
        let start = self.category_offsets[index] as usize;
        let end = self.category_offsets[index + 1] as usize;
        &self.category_ids[start..end]
    }
}

/// Everything loaded from a point file.
#[derive(Debug, Default)]
pub struct LoadedPoints {
    pub points: Points,
    pub categories: CategoryTable,
    pub facilities: Vec<Facility>,
    /// Rows or events not served, up to [`REPORTED_ROWS`].
    pub unplaced: Vec<Unplaced>,
    pub unplaced_count: usize,
    /// Rows read from the file.
    pub rows: usize,
    /// Events served (a row may contain several, and an event at several facilities is one).
    pub events: usize,
    /// First and last day of the dated points.
    pub date_span: Option<DateRange>,
}

/// Interleaves the bits of `x` and `y` (x in the even bits).
pub(super) fn morton(x: u32, y: u32) -> u64 {
    fn spread(value: u32) -> u64 {
        let mut v = u64::from(value);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        v = (v | (v << 1)) & 0x5555_5555_5555_5555;
        v
    }
    spread(x) | (spread(y) << 1)
}

/// The dates and categories of one event of a row, before placement.
#[derive(Debug)]
struct Event {
    date: DateRange,
    categories: Vec<CategoryId>,
}

/// The columns of one event: its date, and its category columns with the prefix that each
/// of their values gets.
type EventIndices = (Option<usize>, Vec<(usize, Option<String>)>);

/// Columns of the point file, resolved.
#[derive(Debug)]
struct PointColumns {
    location: LocationIndices,
    events: Vec<EventIndices>,
    facility: Option<usize>,
}

fn point_columns(options: &DensityOptions, columns: &mut ColumnList) -> PointColumns {
    let location = columns.add_location(&options.location);
    let events = if options.events.is_empty() {
        let categories = match &options.categories {
            None => Vec::new(),
            Some(Columns::One(column)) => vec![(columns.add(column), None)],
            Some(Columns::Many(many)) => many
                .iter()
                .map(|column| (columns.add(column), Some(column.clone())))
                .collect(),
        };
        vec![(options.date.as_deref().map(|c| columns.add(c)), categories)]
    } else {
        options
            .events
            .iter()
            .map(|event| {
                (
                    event.date.as_deref().map(|c| columns.add(c)),
                    event
                        .categories
                        .as_deref()
                        .map(|c| vec![(columns.add(c), None)])
                        .unwrap_or_default(),
                )
            })
            .collect()
    };
    PointColumns {
        location,
        events,
        facility: options.facility.as_deref().map(|c| columns.add(c)),
    }
}

/// A placed point before sorting.
#[derive(Debug)]
struct Placed {
    x: f64,
    y: f64,
    weight: f64,
    date: DateRange,
    categories: Vec<CategoryId>,
    facility: u32,
    row: u32,
}

/// The state of a load while rows are read.
struct Builder<'a> {
    path: &'a Path,
    options: &'a DensityOptions,
    columns: PointColumns,
    facility_index: HashMap<String, u32>,
    loaded: LoadedPoints,
    placed: Vec<Placed>,
}

impl Builder<'_> {
    fn reject(&mut self, row: usize, reason: String) {
        self.loaded.unplaced_count += 1;
        if self.loaded.unplaced_count <= LOGGED_ROWS {
            tracing::warn!(file = %self.path.display(), row, reason, "row not placed");
        } else {
            tracing::debug!(file = %self.path.display(), row, reason, "row not placed");
        }
        if self.loaded.unplaced.len() < REPORTED_ROWS {
            self.loaded.unplaced.push(Unplaced { row, reason });
        }
    }

    fn categories_of(
        &mut self,
        row: &RawRow,
        columns: &[(usize, Option<String>)],
    ) -> Result<Vec<CategoryId>, String> {
        let mut ids = Vec::new();
        for (column, prefix) in columns {
            let Some(value) = &row.values[*column] else {
                continue;
            };
            for mut category in value.values(self.options.category_separator.as_deref()) {
                if let Some(suffix) = self
                    .options
                    .category_suffix
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    && let Some(cut) = category.find(suffix)
                {
                    category.truncate(cut);
                }
                let path = match prefix {
                    Some(prefix) => format!("{prefix}::{category}"),
                    None => category,
                };
                ids.extend(self.loaded.categories.intern_with_ancestors(&path)?);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Reads the events of a row: each event with a date or a category. A date that does not
    /// parse rejects that event only.
    fn events_of(&mut self, row: &RawRow) -> Vec<Event> {
        let mut events = Vec::new();
        let columns = std::mem::take(&mut self.columns.events);
        for (number, (date_column, category_columns)) in columns.iter().enumerate() {
            let date_text = date_column
                .and_then(|c| row.values[c].as_ref())
                .map(FieldText::text);
            let categories = match self.categories_of(row, category_columns) {
                Ok(categories) => categories,
                Err(reason) => {
                    self.reject(row.row, reason);
                    continue;
                }
            };
            if date_text.is_none() && categories.is_empty() && columns.len() > 1 {
                continue;
            }
            let label = if columns.len() > 1 {
                format!("event {}: ", number + 1)
            } else {
                String::new()
            };
            let date = match date_text {
                None => UNDATED,
                Some(text) => match parse_range(&text, self.options.date_order) {
                    Ok(date) => date,
                    Err(reason) => {
                        self.reject(row.row, format!("{label}{reason}"));
                        continue;
                    }
                },
            };
            events.push(Event { date, categories });
        }
        self.columns.events = columns;
        events
    }

    /// Returns where a row's events go: positions with their weight and facility.
    fn placements(&self, row: &RawRow) -> Result<Vec<(f64, f64, f64, u32)>, String> {
        // Keys are matched as written first, then trimmed, because Uwazi exports keep
        // trailing spaces on both sides of the join.
        let raw_keys: Vec<String> = match self.columns.facility.and_then(|c| row.values[c].as_ref())
        {
            Some(FieldText::Text(text)) => match self.options.facility_separator.as_deref() {
                Some(separator) if !separator.is_empty() => text
                    .split(separator)
                    .filter(|key| !key.trim().is_empty())
                    .map(str::to_owned)
                    .collect(),
                _ => vec![text.clone()],
            },
            Some(FieldText::List(values)) => values.clone(),
            None => Vec::new(),
        };
        let find = |key: &String| {
            self.facility_index
                .get(key)
                .or_else(|| self.facility_index.get(key.trim()))
                .copied()
        };
        let linked: Vec<u32> = raw_keys.iter().filter_map(find).collect();
        match self.columns.location.read(row) {
            Some(Ok((x, y))) => {
                let facility = linked.first().copied().unwrap_or(NO_FACILITY);
                return Ok(vec![(x, y, 1.0, facility)]);
            }
            Some(Err(reason)) => return Err(reason),
            None => {}
        }
        if !raw_keys.is_empty() {
            let facilities = self.loaded.facilities.as_slice();
            let located: Vec<u32> = linked
                .iter()
                .copied()
                .filter(|&f| facilities[f as usize].position.is_some())
                .collect();
            if located.is_empty() {
                // A row with its own geometry stays where it is, still linked to its facility.
                if let Some(Ok((lon, lat))) = &row.geometry {
                    let facility = linked.first().copied().unwrap_or(NO_FACILITY);
                    return world_position(*lon, *lat).map(|(x, y)| vec![(x, y, 1.0, facility)]);
                }
                return Err(if linked.is_empty() {
                    format!("facility {:?} not found in the facility table", raw_keys[0])
                } else if raw_keys.len() == 1 {
                    format!("facility {:?} has no location", raw_keys[0])
                } else {
                    format!(
                        "none of the {} linked facilities has a location",
                        raw_keys.len()
                    )
                });
            }
            let weight = match self.options.facility_weights {
                FacilityWeights::Split => 1.0 / located.len() as f64,
                FacilityWeights::Each => 1.0,
            };
            return Ok(located
                .into_iter()
                .map(|f| {
                    let (x, y) = facilities[f as usize]
                        .position
                        .expect("filtered to located facilities");
                    (x, y, weight, f)
                })
                .collect());
        }
        match &row.geometry {
            Some(Ok((lon, lat))) => {
                world_position(*lon, *lat).map(|(x, y)| vec![(x, y, 1.0, NO_FACILITY)])
            }
            Some(Err(reason)) => Err(reason.clone()),
            None if self.columns.location.configured() => Err("the location is missing".to_owned()),
            None if self.columns.facility.is_some() => Err("the facility is missing".to_owned()),
            None => Err("the row has no location".to_owned()),
        }
    }

    fn add_row(&mut self, row: &RawRow) {
        self.loaded.rows += 1;
        let placements = match self.placements(row) {
            Ok(placements) => placements,
            Err(reason) => {
                self.reject(row.row, reason);
                return;
            }
        };
        let events = self.events_of(row);
        for event in events {
            self.loaded.events += 1;
            let weight_total: f64 = placements.iter().map(|p| p.2).sum();
            self.loaded
                .categories
                .add_counts(&event.categories, weight_total);
            if event.date != UNDATED {
                let span = self.loaded.date_span.get_or_insert(event.date);
                span.first = span.first.min(event.date.first);
                span.last = span.last.max(event.date.last);
            }
            for &(x, y, weight, facility) in &placements {
                self.placed.push(Placed {
                    x,
                    y,
                    weight,
                    date: event.date,
                    categories: event.categories.clone(),
                    facility,
                    row: u32::try_from(row.row).unwrap_or(u32::MAX),
                });
            }
        }
    }

    fn finish(mut self) -> LoadedPoints {
        let scale = f64::from(1_u32 << MORTON_ZOOM);
        let max = (1_u32 << MORTON_ZOOM) - 1;
        let mut keyed: Vec<(u64, Placed)> = self
            .placed
            .into_iter()
            .map(|p| {
                let code = morton(
                    ((p.x * scale) as u32).min(max),
                    ((p.y * scale) as u32).min(max),
                );
                (code, p)
            })
            .collect();
        keyed.sort_by_key(|(code, p)| (*code, p.row));
        let points = &mut self.loaded.points;
        points.category_offsets.push(0);
        for (index, (code, p)) in keyed.into_iter().enumerate() {
            points.x.push(p.x);
            points.y.push(p.y);
            points.morton.push(code);
            points.weight.push(p.weight);
            points.dates.push(p.date);
            points.category_ids.extend_from_slice(&p.categories);
            points
                .category_offsets
                .push(points.category_ids.len() as u32);
            if p.facility != NO_FACILITY {
                self.loaded.facilities[p.facility as usize]
                    .points
                    .push(index as u32);
            }
            points.facility.push(p.facility);
            points.row.push(p.row);
        }
        self.loaded
    }
}

/// Loads the points of `path` with `options`: reads every row, joins facilities, parses
/// dates and categories, and sorts the points by Morton code.
pub(super) fn load_points(
    path: &Path,
    options: &DensityOptions,
) -> Result<LoadedPoints, DensityError> {
    let facilities = match &options.facilities {
        Some(facility_options) => {
            let base = path.parent().unwrap_or_else(|| Path::new("."));
            load_facilities(facility_options, base)?
        }
        None => Vec::new(),
    };
    let mut columns = ColumnList::default();
    let point_columns = point_columns(options, &mut columns);
    let facility_index = facilities
        .iter()
        .enumerate()
        .map(|(index, facility)| (facility.key.clone(), index as u32))
        .collect();
    let mut builder = Builder {
        path,
        options,
        columns: point_columns,
        facility_index,
        loaded: LoadedPoints {
            facilities,
            ..LoadedPoints::default()
        },
        placed: Vec::new(),
    };
    let format = options
        .format
        .unwrap_or_else(|| PointFormat::from_path(path));
    read_rows(path, format, &columns.as_strs(), &mut |row| {
        builder.add_row(&row);
    })?;
    let loaded = builder.finish();
    if loaded.unplaced_count > 0 {
        tracing::warn!(
            file = %path.display(),
            rows = loaded.rows,
            points = loaded.points.len(),
            not_placed = loaded.unplaced_count,
            "points loaded; rows or events not placed are listed in the source's TileJSON (the first {LOGGED_ROWS} are logged as warnings)"
        );
    } else {
        tracing::info!(
            file = %path.display(),
            rows = loaded.rows,
            points = loaded.points.len(),
            "points loaded",
        );
    }
    Ok(loaded)
}
