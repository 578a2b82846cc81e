//! Filters of density requests: a date range, categories and facilities, read from query
//! parameters and written back in one canonical order for cache keys and TileJSON URLs.

use std::fmt::Write as _;

use super::DensitySource;
use super::category::CategoryId;
use super::date::{DateOrder, DateRange, format_day, parse_date};
use super::heatmap::Ramp;
use super::options::MAX_RADIUS_PX;
use super::points::Points;

/// A request's filter, resolved against one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Days that a point's date range must overlap; `None` keeps undated points too.
    pub dates: Option<DateRange>,
    /// Selected categories by id (parents include their children); `None` for all.
    pub categories: Option<Vec<bool>>,
    /// Selected facilities by index; `None` for all.
    pub facilities: Option<Vec<bool>>,
    /// Canonical query string of the filter, for cache keys and URLs; empty without one.
    pub canonical: String,
}

/// Heat-map settings that a request may override.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeatmapRequest {
    pub radius_px: Option<f64>,
    pub ramp: Option<Ramp>,
}

/// A query parameter that cannot be used, with the parameter's name for the 400 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParameter {
    pub parameter: &'static str,
    pub message: String,
}

fn invalid(parameter: &'static str, message: String) -> InvalidParameter {
    InvalidParameter { parameter, message }
}

impl Filter {
    /// Returns whether point `index` passes the filter.
    #[inline]
    pub(super) fn matches(&self, points: &Points, index: usize) -> bool {
        if let Some(dates) = self.dates
            && !points.dates[index].overlaps(dates)
        {
            return false;
        }
        if let Some(selected) = &self.facilities {
            let facility = points.facility[index] as usize;
            if selected.get(facility) != Some(&true) {
                return false;
            }
        }
        if let Some(selected) = &self.categories
            && !points
                .categories(index)
                .iter()
                .any(|&id| selected[usize::from(id)])
        {
            return false;
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.canonical.is_empty()
    }
}

/// Splits repeated and comma-separated values. A value that names a known item whole is
/// kept whole, because names such as `Violation of the Right to Freedom of Conscience,
/// Thought and Religion` contain commas.
fn split_values<'a>(values: &[&'a str], known: impl Fn(&str) -> bool) -> Vec<&'a str> {
    let mut out = Vec::new();
    for value in values {
        if known(value) {
            out.push(*value);
        } else {
            out.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()));
        }
    }
    out
}

/// The query pairs of a request, looked up by name.
struct QueryPairs<'a>(&'a [(String, String)]);

impl<'a> QueryPairs<'a> {
    fn values(&self, name: &str) -> Vec<&'a str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Returns the one value of a parameter that may not repeat.
    fn single(&self, name: &'static str) -> Result<Option<&'a str>, InvalidParameter> {
        match self.values(name).as_slice() {
            [] => Ok(None),
            [value] => Ok(Some(*value)),
            _ => Err(invalid(
                name,
                format!("{name} is given more than once: give it once"),
            )),
        }
    }
}

/// Reads the filter and heat-map settings from query pairs, checking each against `source`.
pub fn parse_query(
    source: &DensitySource,
    pairs: &[(String, String)],
) -> Result<(Filter, HeatmapRequest), InvalidParameter> {
    let pairs = QueryPairs(pairs);
    let mut canonical = Vec::new();
    let dates = parse_dates(&pairs, &mut canonical)?;
    let categories = parse_categories(source, &pairs, &mut canonical)?;
    let facilities = parse_facilities(source, &pairs, &mut canonical)?;
    let heat = parse_heatmap(&pairs)?;
    Ok((
        Filter {
            dates,
            categories,
            facilities,
            canonical: canonical.join("&"),
        },
        heat,
    ))
}

fn parse_dates(
    pairs: &QueryPairs<'_>,
    canonical: &mut Vec<String>,
) -> Result<Option<DateRange>, InvalidParameter> {
    let bound = |name: &'static str| -> Result<Option<(&str, DateRange)>, InvalidParameter> {
        let Some(text) = pairs.single(name)? else {
            return Ok(None);
        };
        let range = parse_date(text, DateOrder::Dmy).map_err(|message| {
            invalid(
                name,
                format!("{message}; {name} takes YYYY, YYYY-MM or YYYY-MM-DD"),
            )
        })?;
        Ok(Some((text.trim(), range)))
    };
    let from = bound("from")?;
    let to = bound("to")?;
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let first = from.map_or(i32::MIN, |(_, d)| d.first);
    let last = to.map_or(i32::MAX, |(_, d)| d.last);
    if last < first {
        return Err(invalid(
            "to",
            format!(
                "to = {} is before from = {}: swap them",
                format_day(last),
                format_day(first)
            ),
        ));
    }
    if let Some((text, _)) = from {
        canonical.push(format!("from={}", encode(text)));
    }
    if let Some((text, _)) = to {
        canonical.push(format!("to={}", encode(text)));
    }
    Ok(Some(DateRange { first, last }))
}

fn parse_categories(
    source: &DensitySource,
    pairs: &QueryPairs<'_>,
    canonical: &mut Vec<String>,
) -> Result<Option<Vec<bool>>, InvalidParameter> {
    let table = &source.loaded.categories;
    let values = split_values(&pairs.values("category"), |v| table.find(v).is_some());
    if values.is_empty() {
        return Ok(None);
    }
    let mut ids: Vec<CategoryId> = Vec::new();
    for value in values {
        let id = table.find(value).ok_or_else(|| {
            invalid(
                "category",
                format!("unknown category {value:?}: the source's TileJSON lists its categories"),
            )
        })?;
        ids.push(id);
    }
    ids.sort_by(|a, b| table.path(*a).cmp(table.path(*b)));
    ids.dedup();
    let mut selected = vec![false; table.len()];
    for &id in &ids {
        selected[usize::from(id)] = true;
        canonical.push(format!("category={}", encode(table.path(id))));
    }
    Ok(Some(selected))
}

fn parse_facilities(
    source: &DensitySource,
    pairs: &QueryPairs<'_>,
    canonical: &mut Vec<String>,
) -> Result<Option<Vec<bool>>, InvalidParameter> {
    let facilities = &source.loaded.facilities;
    let find = |key: &str| {
        facilities
            .iter()
            .position(|f| f.key == key)
            .or_else(|| facilities.iter().position(|f| f.key.trim() == key.trim()))
    };
    let values = split_values(&pairs.values("facility"), |v| find(v).is_some());
    if values.is_empty() {
        return Ok(None);
    }
    let mut indices = Vec::new();
    for value in values {
        let index = find(value).ok_or_else(|| {
            invalid(
                "facility",
                format!("unknown facility {value:?}: the `facilities` layer names them in `key`"),
            )
        })?;
        indices.push(index);
    }
    indices.sort_unstable();
    indices.dedup();
    let mut selected = vec![false; facilities.len()];
    for index in indices {
        selected[index] = true;
        canonical.push(format!("facility={}", encode(&facilities[index].key)));
    }
    Ok(Some(selected))
}

fn parse_heatmap(pairs: &QueryPairs<'_>) -> Result<HeatmapRequest, InvalidParameter> {
    let radius_px = pairs
        .single("radius")?
        .map(|text| {
            text.trim()
                .parse::<f64>()
                .ok()
                // Whole pixels only, so that a client cannot force a new colour scale (a scan
                // of every point) with each fraction.
                .map(f64::round)
                .filter(|r| r.is_finite() && (1.0..=MAX_RADIUS_PX).contains(r))
                .ok_or_else(|| {
                    invalid(
                        "radius",
                        format!("radius = {text:?} is not pixels from 1 to {MAX_RADIUS_PX}"),
                    )
                })
        })
        .transpose()?;
    let ramp = pairs
        .single("ramp")?
        .map(|text| {
            text.parse::<Ramp>()
                .map_err(|message| invalid("ramp", message))
        })
        .transpose()?;
    Ok(HeatmapRequest { radius_px, ramp })
}

/// Percent-encodes a query value: everything but unreserved characters (RFC 3986).
pub(super) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_splitting_keeps_known_names() {
        let known = |v: &str| v == "Freedom of Conscience, Thought and Religion";
        let values = ["Freedom of Conscience, Thought and Religion", "a,b", " c "];
        assert_eq!(
            split_values(&values, known),
            ["Freedom of Conscience, Thought and Religion", "a", "b", "c"]
        );
    }

    #[test]
    fn encoding_escapes_reserved_bytes() {
        assert_eq!(encode("Torture & CID"), "Torture%20%26%20CID");
        assert_eq!(encode("a::b"), "a%3A%3Ab");
        assert_eq!(encode("2003-01"), "2003-01");
    }
}
