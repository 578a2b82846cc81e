//! Calendar dates and periods: the acquisition date of a scene and the `date` request
//! parameter, each a year (`YYYY`), a month (`YYYY-MM`) or a day (`YYYY-MM-DD`).

use std::fmt;
use std::str::FromStr;

/// A day of the proleptic Gregorian calendar. Ordered by year, month, then day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Returns the date, or `None` when the day does not exist (month 13, 30 February).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        valid.then_some(Self { year, month, day })
    }

    /// Finds the first date in a file stem written as `YYYYMMDD` or `YYYY-MM-DD` between
    /// non-digits, as in `m_4709963_se_14_1_20140720`, and failing that a stem that is only a
    /// year (`1985`).
    pub fn from_file_stem(stem: &str) -> Option<Period> {
        let runs: Vec<&str> = stem
            .split(|c: char| !c.is_ascii_digit())
            .filter(|run| !run.is_empty())
            .collect();
        for run in &runs {
            if run.len() == 8 {
                let date = Self::new(
                    run[0..4].parse().ok()?,
                    run[4..6].parse().ok()?,
                    run[6..8].parse().ok()?,
                );
                if let Some(date) = date.filter(|date| date.is_plausible()) {
                    return Some(Period::Day(date));
                }
            }
        }
        // `2014-07-20` splits into three runs of 4, 2 and 2 digits.
        for window in runs.windows(3) {
            if let [year, month, day] = window
                && year.len() == 4
                && month.len() == 2
                && day.len() == 2
                && let Ok(date) = format!("{year}-{month}-{day}").parse::<Date>()
                && date.is_plausible()
            {
                return Some(Period::Day(date));
            }
        }
        if stem.len() == 4 && runs.len() == 1 && runs[0] == stem {
            let year: u16 = stem.parse().ok()?;
            return Self::new(year, 1, 1)
                .filter(|date| date.is_plausible())
                .map(|_| Period::Year(year));
        }
        None
    }

    /// Reads the date at the start of a metadata value: ISO 8601 (`2020-02-19T11:34:25Z`) or
    /// the TIFF form `2014:07:20 10:00:00`.
    pub fn from_timestamp(text: &str) -> Option<Self> {
        let head = text.trim().get(0..10)?;
        let normalised: String = head
            .chars()
            .map(|c| if c == ':' || c == '/' { '-' } else { c })
            .collect();
        normalised
            .parse::<Date>()
            .ok()
            .filter(|date| date.is_plausible())
    }

    /// Returns whether the year can be an acquisition year of imagery. This rules out an
    /// eight-digit run that is an identifier, such as `47099630`.
    fn is_plausible(self) -> bool {
        (1850..=2200).contains(&self.year)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = String;

    /// Parses exactly `YYYY-MM-DD`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match Period::from_str(text)? {
            Period::Day(date) => Ok(date),
            _ => Err(format!(
                "invalid date {text:?}: use YYYY-MM-DD, for example 2014-07-20"
            )),
        }
    }
}

/// A year, a month or a day: the `date` of a request, or the acquisition date of a scene known
/// only to the year (an annual composite) or the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Year(u16),
    Month(u16, u8),
    Day(Date),
}

impl Period {
    /// Returns the first day of the period, by which scenes are ordered.
    pub fn start(self) -> Date {
        match self {
            Self::Year(year) => Date {
                year,
                month: 1,
                day: 1,
            },
            Self::Month(year, month) => Date {
                year,
                month,
                day: 1,
            },
            Self::Day(date) => date,
        }
    }

    /// Returns the last day of the period: a request serves scenes that start at or before it.
    pub fn end(self) -> Date {
        let (year, month, day) = match self {
            Self::Year(year) => (year, 12, 31),
            Self::Month(year, month) => (year, month, days_in_month(year, month)),
            Self::Day(date) => return date,
        };
        Date { year, month, day }
    }
}

impl Ord for Period {
    /// Orders by first day, then by last day, so that `2014` comes before `2014-07-20`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.start(), self.end()).cmp(&(other.start(), other.end()))
    }
}

impl PartialOrd for Period {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Year(year) => write!(f, "{year:04}"),
            Self::Month(year, month) => write!(f, "{year:04}-{month:02}"),
            Self::Day(date) => date.fmt(f),
        }
    }
}

impl FromStr for Period {
    type Err = String;

    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, with a real month and day.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "invalid date {text:?}: use YYYY, YYYY-MM or YYYY-MM-DD with a real month and day, for example 2014, 2014-07 or 2014-07-20"
            )
        };
        let parts: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = parts.iter().map(|part| part.len()).collect();
        let digits = parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if !digits || !matches!(lengths.as_slice(), [4] | [4, 2] | [4, 2, 2]) {
            return Err(invalid());
        }
        let year: u16 = parts[0].parse().map_err(|_| invalid())?;
        let month: Option<u8> = parts.get(1).and_then(|m| m.parse().ok());
        let day: Option<u8> = parts.get(2).and_then(|d| d.parse().ok());
        match (month, day) {
            (None, _) => Ok(Self::Year(year)),
            (Some(month), None) if (1..=12).contains(&month) => Ok(Self::Month(year, month)),
            (Some(month), Some(day)) => Date::new(year, month, day)
                .map(Self::Day)
                .ok_or_else(invalid),
            _ => Err(invalid()),
        }
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: u16, month: u8, day: u8) -> Date {
        Date::new(year, month, day).expect("a real day")
    }

    #[test]
    fn periods_start_and_end() {
        let cases = [
            ("2014", date(2014, 12, 31)),
            ("2014-07", date(2014, 7, 31)),
            ("2020-02", date(2020, 2, 29)),
            ("1900-02", date(1900, 2, 28)),
            ("2000-02", date(2000, 2, 29)),
            ("2014-07-20", date(2014, 7, 20)),
        ];
        for (text, end) in cases {
            let query: Period = text.parse().expect(text);
            assert_eq!(query.end(), end, "{text}");
            assert!(query.start() <= query.end(), "{text}");
            assert_eq!(query.to_string(), text, "round trip of {text}");
        }
    }

    #[test]
    fn malformed_periods_are_rejected() {
        for text in [
            "",
            "14",
            "2014-7",
            "2014-13",
            "2014-00",
            "2014-02-30",
            "2014-07-20T00",
            "2014/07/20",
            "20140720",
            "-2014",
            "2014-07-",
            "２０１４",
        ] {
            assert!(text.parse::<Period>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn dates_in_file_stems() {
        let day = |y, m, d| Some(Period::Day(date(y, m, d)));
        let cases = [
            ("m_4709963_se_14_1_20090818", day(2009, 8, 18)),
            ("m_4709963_se_14_1_20140720", day(2014, 7, 20)),
            ("scene_2014-07-20_rgb", day(2014, 7, 20)),
            ("1985", Some(Period::Year(1985))),
            ("S2A_29RKH_20200219_0_L2A", day(2020, 2, 19)),
            ("mosaic_cog1", None),
            ("TCI", None),
            ("12345678", None),
            ("v1985b", None),
        ];
        for (stem, expected) in cases {
            assert_eq!(Date::from_file_stem(stem), expected, "{stem}");
        }
    }

    #[test]
    fn dates_in_timestamps() {
        let cases = [
            ("2020-02-19T11:34:25.405Z", Some(date(2020, 2, 19))),
            ("2014:07:20 10:11:12", Some(date(2014, 7, 20))),
            ("2014/07/20", Some(date(2014, 7, 20))),
            ("not a date", None),
            ("2014", None),
        ];
        for (text, expected) in cases {
            assert_eq!(Date::from_timestamp(text), expected, "{text}");
        }
    }

    #[test]
    fn dates_order_by_day() {
        assert!(date(2009, 8, 18) < date(2014, 7, 20));
        assert!(date(2014, 7, 20) < date(2014, 7, 21));
        assert!(date(2014, 12, 31) < date(2015, 1, 1));
    }
}
