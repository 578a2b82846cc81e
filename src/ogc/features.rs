//! OGC API – Features, Part 1 (OGC 17-069r4): the query parameters of `/items` and the
//! FeatureCollection document with paging links.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::tile::Bbox;

/// The only CRS of the features: WGS 84 longitude and latitude.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
/// Features per page when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 10;
/// Largest `limit` honoured; larger values are reduced to it, as the standard allows.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {parameter}: {message}")]
pub struct QueryError {
    pub parameter: &'static str,
    pub message: String,
}

/// The query parameters that `/items` takes.
const ITEMS_PARAMETERS: [&str; 7] = [
    "bbox", "datetime", "limit", "offset", "crs", "bbox-crs", "f",
];

fn invalid(parameter: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        parameter,
        message: message.into(),
    }
}

/// A time interval in milliseconds since 1970 (UTC), closed at both ends; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Interval {
    /// Returns whether the interval overlaps `[start, end]`.
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start.is_none_or(|s| end >= s) && self.end.is_none_or(|e| start <= e)
    }
}

/// The parameters of an `/items` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsQuery {
    /// Box in degrees, longitude first; `min_x > max_x` crosses the antimeridian.
    pub bbox: Option<Bbox>,
    /// The `bbox` text as requested, for paging links.
    pub bbox_text: Option<String>,
    pub datetime: Option<Interval>,
    /// The `datetime` text as requested, for paging links.
    pub datetime_text: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// Parses the query of an `/items` request. Unknown parameters are rejected, as the standard
/// recommends, so that a misspelt filter does not silently return everything.
pub fn parse_items_query(pairs: &[(String, String)]) -> Result<ItemsQuery, QueryError> {
    // A repeated parameter is rejected rather than one of its values chosen.
    for (index, (name, _)) in pairs.iter().enumerate() {
        if let Some(&known) = ITEMS_PARAMETERS.iter().find(|known| **known == name)
            && pairs[..index].iter().any(|(earlier, _)| earlier == name)
        {
            return Err(invalid(
                known,
                format!("{known} is given more than once: give it once"),
            ));
        }
    }
    let mut query = ItemsQuery {
        bbox: None,
        bbox_text: None,
        datetime: None,
        datetime_text: None,
        limit: DEFAULT_LIMIT,
        offset: 0,
    };
    for (name, value) in pairs {
        match name.as_str() {
            "bbox" => {
                query.bbox = Some(parse_bbox(value)?);
                query.bbox_text = Some(value.clone());
            }
            "datetime" => {
                query.datetime = Some(parse_datetime(value)?);
                query.datetime_text = Some(value.clone());
            }
            "limit" => {
                let limit: usize = value.parse().ok().filter(|l| *l >= 1).ok_or_else(|| {
                    invalid(
                        "limit",
                        format!(
                            "{value:?} is not a whole number of at least 1 (values above {MAX_LIMIT} are capped)"
                        ),
                    )
                })?;
                query.limit = limit.min(MAX_LIMIT);
            }
            "offset" => {
                query.offset = value.parse().map_err(|_| {
                    invalid(
                        "offset",
                        format!("{value:?} is not a whole number of 0 or more"),
                    )
                })?;
            }
            // Features are served in CRS84 only, which clients may name explicitly.
            "crs" | "bbox-crs" if value == CRS84 => {}
            "crs" => {
                return Err(invalid(
                    "crs",
                    format!("{value:?} is not served: use {CRS84}"),
                ));
            }
            "bbox-crs" => {
                return Err(invalid(
                    "bbox-crs",
                    format!("{value:?} is not supported: use {CRS84}"),
                ));
            }
            // The response is always GeoJSON, so `f=json` and `f=geojson` change nothing.
            "f" if matches!(value.as_str(), "json" | "geojson") => {}
            "f" => {
                return Err(invalid(
                    "f",
                    format!("format {value:?} is not served: use f=json"),
                ));
            }
            other => {
                return Err(QueryError {
                    parameter: "query",
                    message: format!(
                        "unknown parameter {other:?}: use bbox, datetime, limit, offset, crs or f"
                    ),
                });
            }
        }
    }
    Ok(query)
}

/// Parses `minLon,minLat,maxLon,maxLat` in degrees (CRS84). Six numbers (with heights) are
/// accepted and the heights ignored.
pub fn parse_bbox(text: &str) -> Result<Bbox, QueryError> {
    let numbers: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("bbox", format!("{text:?} is not a list of numbers")))?;
    let [min_x, min_y, max_x, max_y] = match numbers.as_slice() {
        [a, b, c, d] | [a, b, _, c, d, _] => [*a, *b, *c, *d],
        _ => {
            return Err(invalid(
                "bbox",
                format!(
                    "{text:?} has {} numbers: use minLon,minLat,maxLon,maxLat",
                    numbers.len()
                ),
            ));
        }
    };
    if numbers.iter().any(|number| !number.is_finite()) {
        return Err(invalid(
            "bbox",
            format!("{text:?} holds a value that is not a finite number: use degrees"),
        ));
    }
    let in_range =
        |lon: f64, lat: f64| (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat);
    if !in_range(min_x, min_y) || !in_range(max_x, max_y) {
        return Err(invalid(
            "bbox",
            format!("{text:?} is outside -180..180, -90..90 degrees"),
        ));
    }
    if min_y > max_y {
        return Err(invalid(
            "bbox",
            format!("{text:?} has its southern edge north of its northern edge"),
        ));
    }
    Ok(Bbox::new(min_x, min_y, max_x, max_y))
}

/// Parses an RFC 3339 instant or an interval `start/end` with `..` or nothing for an open end.
/// A date without a time covers the whole day.
pub fn parse_datetime(text: &str) -> Result<Interval, QueryError> {
    let instant = |part: &str| {
        parse_instant(part).ok_or_else(|| {
            invalid(
                "datetime",
                format!("{part:?} is not an RFC 3339 date or date-time such as 2020-05-01 or 2020-05-01T12:00:00Z"),
            )
        })
    };
    let open = |part: &str| part.is_empty() || part == "..";
    let interval = match text.split_once('/') {
        None => {
            let (start, end) = instant(text)?;
            Interval {
                start: Some(start),
                end: Some(end),
            }
        }
        Some((start, end)) if open(start) && open(end) => {
            return Err(invalid(
                "datetime",
                format!("{text:?} is open at both ends"),
            ));
        }
        Some((start, end)) => Interval {
            start: if open(start) {
                None
            } else {
                Some(instant(start)?.0)
            },
            end: if open(end) {
                None
            } else {
                Some(instant(end)?.1)
            },
        },
    };
    if let (Some(start), Some(end)) = (interval.start, interval.end)
        && start > end
    {
        return Err(invalid(
            "datetime",
            format!("{text:?} ends before it starts"),
        ));
    }
    Ok(interval)
}

/// Returns the first and last millisecond of a date or date-time. Times without an offset are
/// taken as UTC.
fn parse_instant(text: &str) -> Option<(i64, i64)> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        let millis = time.timestamp_millis();
        return Some((millis, millis));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            let millis = time.and_utc().timestamp_millis();
            return Some((millis, millis));
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let start = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    Some((start, start + 86_400_000 - 1))
}

/// Returns whether a feature's time falls in `interval`. The feature's time is its first
/// property, in field order, whose value is an RFC 3339 date or date-time; a feature without
/// one never matches.
pub fn matches_datetime(properties: &Map<String, Value>, interval: &Interval) -> bool {
    properties
        .values()
        .filter_map(Value::as_str)
        .find_map(parse_instant)
        .is_some_and(|(start, end)| interval.overlaps(start, end))
}

/// Escapes the characters of a query value that would change the query's meaning.
fn query_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '&' => escaped.push_str("%26"),
            '+' => escaped.push_str("%2B"),
            '#' => escaped.push_str("%23"),
            ' ' => escaped.push_str("%20"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Builds the `/items` FeatureCollection for one page: `features` are the page,
/// `number_matched` counts every match, and links lead to the next and previous pages.
pub fn items_document(
    items_url: &str,
    query: &ItemsQuery,
    features: &[Value],
    number_matched: usize,
    time_stamp: &str,
) -> Value {
    let page_url = |offset: usize| {
        let mut url = format!("{items_url}?limit={}&offset={offset}", query.limit);
        if let Some(bbox) = &query.bbox_text {
            let _ = write!(url, "&bbox={}", query_value(bbox));
        }
        if let Some(datetime) = &query.datetime_text {
            let _ = write!(url, "&datetime={}", query_value(datetime));
        }
        url
    };
    let link = |rel: &str, href: String| json!({ "rel": rel, "type": "application/geo+json", "href": href });
    let number_returned = features.len();
    let mut links = vec![link("self", page_url(query.offset))];
    if query.offset + number_returned < number_matched {
        links.push(link("next", page_url(query.offset + number_returned)));
    }
    if query.offset > 0 {
        links.push(link(
            "prev",
            page_url(query.offset.saturating_sub(query.limit)),
        ));
    }
    let collection_url = items_url.trim_end_matches("/items");
    links.push(json!({ "rel": "collection", "type": "application/json", "href": collection_url }));
    json!({
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": number_matched,
        "numberReturned": number_returned,
        "timeStamp": time_stamp,
        "links": links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn items_query_parses() {
        let query = parse_items_query(&pairs(&[
            ("bbox", "124,38,130,43"),
            ("limit", "5"),
            ("offset", "10"),
            ("datetime", "2019-01-01/.."),
        ]))
        .expect("valid query");
        assert_eq!(query.bbox, Some(Bbox::new(124.0, 38.0, 130.0, 43.0)));
        assert_eq!(query.limit, 5);
        assert_eq!(query.offset, 10);
        assert_eq!(query.datetime.and_then(|i| i.end), None);
        let capped =
            parse_items_query(&pairs(&[("limit", "1000000"), ("crs", CRS84)])).expect("valid");
        assert_eq!(capped.limit, MAX_LIMIT);
    }

    #[test]
    fn invalid_items_queries_name_the_parameter() {
        let cases = [
            ("bbox", "1,2,3", "bbox"),
            ("bbox", "a,b,c,d", "bbox"),
            ("bbox", "0,10,1,5", "bbox"),
            ("bbox", "0,0,200,1", "bbox"),
            ("bbox", "NaN,38,130,43", "bbox"),
            ("bbox", "inf,38,130,43", "bbox"),
            ("limit", "0", "limit"),
            ("limit", "-3", "limit"),
            ("offset", "x", "offset"),
            ("datetime", "yesterday", "datetime"),
            ("datetime", "../..", "datetime"),
            ("datetime", "2020-01-02/2020-01-01", "datetime"),
            ("f", "html", "f"),
            ("name", "Camp 14", "query"),
            ("crs", "http://www.opengis.net/def/crs/EPSG/0/3857", "crs"),
            ("bbox-crs", "EPSG:4326", "bbox-crs"),
        ];
        for (name, value, parameter) in cases {
            let error = parse_items_query(&pairs(&[(name, value)])).expect_err(value);
            assert_eq!(error.parameter, parameter, "{name}={value}");
        }
        let repeated = parse_items_query(&pairs(&[("limit", "2"), ("limit", "3")]));
        assert_eq!(repeated.expect_err("a repeated limit").parameter, "limit");
    }

    #[test]
    fn dates_cover_their_whole_day() {
        let day = parse_datetime("2020-05-01").expect("date");
        let properties = |value: &str| {
            let mut map = Map::new();
            map.insert("name".into(), json!("Camp 14"));
            map.insert("date".into(), json!(value));
            map
        };
        let cases = [
            ("2020-05-01", true),
            ("2020-05-01T23:59:59Z", true),
            ("2020-05-01T12:00:00", true),
            ("2020-05-02T00:00:00Z", false),
            ("2020-04-30", false),
            ("not a date", false),
        ];
        for (value, expected) in cases {
            assert_eq!(
                matches_datetime(&properties(value), &day),
                expected,
                "{value}"
            );
        }
        let open_end = parse_datetime("2020-05-01T00:00:00+09:00/..").expect("interval");
        assert!(matches_datetime(
            &properties("2020-04-30T15:00:00Z"),
            &open_end
        ));
        assert!(!matches_datetime(
            &properties("2020-04-30T14:59:59Z"),
            &open_end
        ));
    }

    #[test]
    fn paging_links_follow_the_page() {
        let query = parse_items_query(&pairs(&[
            ("limit", "2"),
            ("offset", "2"),
            ("datetime", "2020-01-01T00:00:00+09:00"),
        ]))
        .expect("valid");
        let document = items_document(
            "http://h/ogc/collections/camps/items",
            &query,
            &[json!({}), json!({})],
            5,
            "t",
        );
        let links = document["links"].as_array().expect("links");
        let href = |rel: &str| {
            links
                .iter()
                .find(|link| link["rel"] == rel)
                .map(|link| link["href"].as_str().expect("href").to_owned())
        };
        assert_eq!(document["numberReturned"], 2);
        assert_eq!(document["numberMatched"], 5);
        assert_eq!(
            href("next").as_deref(),
            Some(
                "http://h/ogc/collections/camps/items?limit=2&offset=4&datetime=2020-01-01T00:00:00%2B09:00"
            )
        );
        assert!(href("prev").is_some_and(|url| url.contains("offset=0")));
        let last = items_document(
            "http://h/items",
            &ItemsQuery { offset: 4, ..query },
            &[json!({})],
            5,
            "t",
        );
        assert!(
            !last["links"]
                .as_array()
                .expect("links")
                .iter()
                .any(|l| l["rel"] == "next")
        );
    }
}
