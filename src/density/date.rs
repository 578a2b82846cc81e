//! Dates of points as ranges of days: a day, a month, a year, or a range between two of them.
//!
//! A partial date stands for every day it covers, so `2003` is 2003-01-01 to 2003-12-31 and
//! `2003-02` is 2003-02-01 to 2003-02-28.

use serde::Deserialize;

/// Days since 1970-01-01 in the proleptic Gregorian calendar.
pub(super) type Day = i32;

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    pub first: Day,
    pub last: Day,
}

impl DateRange {
    /// Returns whether the two ranges share at least one day.
    pub fn overlaps(self, other: DateRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// The order of day and month in dates written with slashes or dots, such as `02/03/2004`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Day first: `24/02/2022` (most of the world, and Uwazi exports).
    #[default]
    Dmy,
    /// Month first: `02/24/2022` (United States).
    Mdy,
}

/// Converts a calendar date to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub(super) fn days_from_civil(year: i32, month: u32, day: u32) -> Day {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i32;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i32 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts days since 1970-01-01 back to (year, month, day).
pub(super) fn civil_from_days(days: Day) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// Formats a day as ISO 8601 `YYYY-MM-DD`.
pub(super) fn format_day(day: Day) -> String {
    let (year, month, day) = civil_from_days(day);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Returns the year of a day.
pub(super) fn year_of(day: Day) -> i32 {
    civil_from_days(day).0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Years accepted in dates. Wider ranges are far more often typing errors than history.
const YEARS: std::ops::RangeInclusive<i32> = 1000..=2999;

/// Parses one date, full or partial, into the days it covers.
///
/// Accepted: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (a time after `T` or a space is ignored),
/// `YYYY/MM/DD` (as OGR writes dates), `MM/YYYY`, and `DD/MM/YYYY` or `MM/DD/YYYY` by `order`,
/// with `/`, `.` or `-` between the parts.
pub(super) fn parse_date(text: &str, order: DateOrder) -> Result<DateRange, String> {
    let text = text.trim();
    let date = text
        .split_once(['T', ' '])
        .map_or(text, |(date, _time)| date);
    let parts: Vec<&str> = date.split(['-', '/', '.']).collect();
    let number = |part: &str| -> Result<u32, String> {
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid date {text:?}: {part:?} is not a number"));
        }
        part.parse()
            .map_err(|_| format!("invalid date {text:?}: {part:?} is not a number"))
    };
    let year_first = parts.first().is_some_and(|part| part.len() == 4);
    let (year, month, day) = match (parts.len(), year_first) {
        (1, true) => (number(parts[0])?, None, None),
        (2, true) => (number(parts[0])?, Some(number(parts[1])?), None),
        (3, true) => (
            number(parts[0])?,
            Some(number(parts[1])?),
            Some(number(parts[2])?),
        ),
        (2, false) if parts[1].len() == 4 => (number(parts[1])?, Some(number(parts[0])?), None),
        (3, false) if parts[2].len() == 4 => {
            let (first, second) = (number(parts[0])?, number(parts[1])?);
            let (day, month) = match order {
                DateOrder::Dmy => (first, second),
                DateOrder::Mdy => (second, first),
            };
            (number(parts[2])?, Some(month), Some(day))
        }
        _ => {
            return Err(format!(
                "invalid date {text:?}: use YYYY, YYYY-MM, YYYY-MM-DD or a day, month and four-digit year"
            ));
        }
    };
    let year = year as i32;
    if !YEARS.contains(&year) {
        return Err(format!(
            "invalid date {text:?}: year {year} is outside {} to {}",
            YEARS.start(),
            YEARS.end()
        ));
    }
    match (month, day) {
        (None, _) => Ok(DateRange {
            first: days_from_civil(year, 1, 1),
            last: days_from_civil(year, 12, 31),
        }),
        (Some(month), _) if !(1..=12).contains(&month) => Err(format!(
            "invalid date {text:?}: month {month} is not 1 to 12"
        )),
        (Some(month), None) => Ok(DateRange {
            first: days_from_civil(year, month, 1),
            last: days_from_civil(year, month, days_in_month(year, month)),
        }),
        (Some(month), Some(day)) if day == 0 || day > days_in_month(year, month) => Err(format!(
            "invalid date {text:?}: {year:04}-{month:02} has no day {day}"
        )),
        (Some(month), Some(day)) => {
            let day = days_from_civil(year, month, day);
            Ok(DateRange {
                first: day,
                last: day,
            })
        }
    }
}

/// Parses a date or a range of two dates, separated by `~`, `..`, ` to `, or `/` between two
/// dates that start with their year (ISO 8601 intervals such as `2003-01/2004-06`).
///
/// A range covers every day from the first day of its start to the last day of its end, so
/// `2003~2004-06` is 2003-01-01 to 2004-06-30. A range that ends before it starts is an error.
pub(super) fn parse_range(text: &str, order: DateOrder) -> Result<DateRange, String> {
    let text = text.trim();
    let split = ["~", "..", " to "]
        .iter()
        .find_map(|separator| text.split_once(separator))
        .or_else(|| iso_interval(text));
    let Some((start, end)) = split else {
        return parse_date(text, order);
    };
    let start = parse_date(start, order)?;
    let end = parse_date(end, order)?;
    if end.last < start.first {
        return Err(format!(
            "invalid date range {text:?}: it ends before it starts"
        ));
    }
    Ok(DateRange {
        first: start.first,
        last: end.last,
    })
}

/// Splits `YYYY…/YYYY…` at the slash that separates two dates with the year first.
fn iso_interval(text: &str) -> Option<(&str, &str)> {
    let starts_with_year =
        |part: &str| part.len() >= 4 && part.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    if !starts_with_year(text) {
        return None;
    }
    // `YYYY/MM/DD` is one date, an interval has a year on both sides of its slash.
    text.match_indices('/')
        .map(|(index, _)| (&text[..index], &text[index + 1..]))
        .find(|(start, end)| starts_with_year(end) && !start.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(year: i32, month: u32, day: u32) -> Day {
        days_from_civil(year, month, day)
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 11_016, 19_000, 400_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
        }
        assert_eq!(day(1970, 1, 1), 0);
        assert_eq!(format_day(day(2024, 2, 29)), "2024-02-29");
    }

    #[test]
    fn partial_dates_cover_their_days() {
        let cases = [
            ("2003", day(2003, 1, 1), day(2003, 12, 31)),
            ("2004-02", day(2004, 2, 1), day(2004, 2, 29)),
            ("1900-02", day(1900, 2, 1), day(1900, 2, 28)),
            ("2015-01-02", day(2015, 1, 2), day(2015, 1, 2)),
            ("2015/01/02", day(2015, 1, 2), day(2015, 1, 2)),
            ("2015-01-02T10:00:00Z", day(2015, 1, 2), day(2015, 1, 2)),
            ("03/2005", day(2005, 3, 1), day(2005, 3, 31)),
            ("24/02/2022", day(2022, 2, 24), day(2022, 2, 24)),
            ("24.02.2022", day(2022, 2, 24), day(2022, 2, 24)),
        ];
        for (text, first, last) in cases {
            let range = parse_date(text, DateOrder::Dmy).expect(text);
            assert_eq!(range, DateRange { first, last }, "{text}");
        }
        let us = parse_date("02/24/2022", DateOrder::Mdy).expect("month first");
        assert_eq!(us.first, day(2022, 2, 24));
    }

    #[test]
    fn invalid_dates_are_rejected() {
        for text in [
            "",
            "20x3",
            "2003-13",
            "2003-02-30",
            "31/02/2003",
            "24/02/22",
            "0999",
            "1-2-3-4",
        ] {
            assert!(parse_date(text, DateOrder::Dmy).is_err(), "{text:?}");
        }
        assert!(parse_date("02/24/2022", DateOrder::Dmy).is_err());
    }

    #[test]
    fn ranges_join_partial_ends() {
        let cases = [
            ("01/12/2005~31/01/2006", day(2005, 12, 1), day(2006, 1, 31)),
            ("2003~2004-06", day(2003, 1, 1), day(2004, 6, 30)),
            ("2003-01/2004-06", day(2003, 1, 1), day(2004, 6, 30)),
            ("2003..2003", day(2003, 1, 1), day(2003, 12, 31)),
            ("1999 to 2001-02-03", day(1999, 1, 1), day(2001, 2, 3)),
            ("2015/01/02", day(2015, 1, 2), day(2015, 1, 2)),
        ];
        for (text, first, last) in cases {
            let range = parse_range(text, DateOrder::Dmy).expect(text);
            assert_eq!(range, DateRange { first, last }, "{text}");
        }
    }

    #[test]
    fn reversed_range_is_rejected() {
        let error = parse_range("01/01/2006~31/12/2005", DateOrder::Dmy).expect_err("reversed");
        assert!(error.contains("ends before it starts"), "{error}");
    }

    #[test]
    fn overlap_is_inclusive() {
        let a = DateRange { first: 0, last: 10 };
        assert!(a.overlaps(DateRange {
            first: 10,
            last: 20
        }));
        assert!(!a.overlaps(DateRange {
            first: 11,
            last: 20
        }));
        assert!(a.overlaps(DateRange { first: -5, last: 0 }));
    }
}
