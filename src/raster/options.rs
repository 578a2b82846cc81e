//! Per-layer imagery options: band selection, resampling and the stretch of 16-bit data.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use gdal::Dataset;
use serde::{Deserialize, Deserializer, Serialize};

use super::{RasterError, RasterInfo};
use crate::enhance::{SourceEnhance, Steps};
use crate::format::TileFormat;

/// The resampling filter used when warping source pixels onto the tile grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    Nearest,
    #[default]
    Bilinear,
    Cubic,
    Lanczos,
}

impl Resampling {
    pub const ALL: [Resampling; 4] = [Self::Nearest, Self::Bilinear, Self::Cubic, Self::Lanczos];

    /// Returns the name that `gdalwarp -r` and the `resampling` query parameter take.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nearest => "near",
            Self::Bilinear => "bilinear",
            Self::Cubic => "cubic",
            Self::Lanczos => "lanczos",
        }
    }
}

impl FromStr for Resampling {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "near" | "nearest" => Ok(Self::Nearest),
            "bilinear" => Ok(Self::Bilinear),
            "cubic" => Ok(Self::Cubic),
            "lanczos" => Ok(Self::Lanczos),
            _ => Err(format!(
                "unknown resampling {text:?}: use nearest, bilinear, cubic or lanczos"
            )),
        }
    }
}

/// The mapping of source values to 0–255.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Rescale {
    /// 8-bit data as is, anything else by the 2nd and 98th percentiles.
    #[default]
    Auto,
    /// Values as they are, clamped to 0–255.
    None,
    /// Each band's minimum and maximum become 0 and 255.
    MinMax,
    /// Each band's `low` and `high` percentiles (0–100) become 0 and 255.
    Percentile { low: f64, high: f64 },
    /// One fixed range for all bands.
    Range { min: f64, max: f64 },
}

impl fmt::Display for Rescale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("none"),
            Self::MinMax => f.write_str("minmax"),
            Self::Percentile { low, high } => write!(f, "percentile:{low},{high}"),
            Self::Range { min, max } => write!(f, "range:{min},{max}"),
        }
    }
}

impl FromStr for Rescale {
    type Err = String;

    /// Parses `auto`, `none`, `minmax`, `percentile` (2 and 98), `percentile:LOW,HIGH` or
    /// `range:MIN,MAX`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "invalid rescale {text:?}: use auto, none, minmax, percentile, percentile:LOW,HIGH (0-100) or range:MIN,MAX"
            )
        };
        let pair = |rest: &str| -> Result<(f64, f64), String> {
            let (a, b) = rest.split_once(',').ok_or_else(invalid)?;
            let a: f64 = a.trim().parse().map_err(|_| invalid())?;
            let b: f64 = b.trim().parse().map_err(|_| invalid())?;
            if a.is_finite() && b.is_finite() && a < b {
                Ok((a, b))
            } else {
                Err(invalid())
            }
        };
        let text_lower = text.trim().to_ascii_lowercase();
        match text_lower.as_str() {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            "minmax" => Ok(Self::MinMax),
            "percentile" => Ok(Self::Percentile {
                low: 2.0,
                high: 98.0,
            }),
            other => {
                if let Some(rest) = other.strip_prefix("percentile:") {
                    let (low, high) = pair(rest)?;
                    if low < 0.0 || high > 100.0 {
                        return Err(invalid());
                    }
                    Ok(Self::Percentile { low, high })
                } else if let Some(rest) = other.strip_prefix("range:") {
                    let (min, max) = pair(rest)?;
                    Ok(Self::Range { min, max })
                } else {
                    Err(invalid())
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Rescale {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Options of one imagery source, from the configuration; every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RasterOptions {
    /// 1-based bands for grey (one) or red, green and blue (three); default: the colour bands.
    pub bands: Option<Vec<usize>>,
    pub resampling: Resampling,
    pub rescale: Rescale,
    pub minzoom: Option<u8>,
    /// Default: the zoom whose pixels are as fine as the file's own, rounded up.
    pub maxzoom: Option<u8>,
    /// The format that TileJSON advertises; every raster format is served on request.
    pub format: TileFormat,
    /// Overrides the nodata value stored in the file.
    pub nodata: Option<f64>,
    /// Acquisition date for the coverage layer (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`), which wins
    /// over a date in the file's metadata, a STAC item or the file name.
    pub date: Option<crate::collection::Period>,
    /// Sensor for the coverage layer, which wins over the one in the metadata.
    pub sensor: Option<String>,
    /// Provenance for the coverage layer (a programme, an archive); default: the STAC item,
    /// or else the file name.
    pub source: Option<String>,
    /// Whether tiles finer than the scene are enhanced (`auto`) or plainly warped (`none`).
    pub enhance: SourceEnhance,
    /// Adds CLAHE (local contrast) to the enhancement.
    pub clahe: bool,
    /// Adds haze correction (dark-object subtraction) to the enhancement.
    pub haze: bool,
    /// A super-resolution network (`model.json` of a TensorFlow.js layers model) that
    /// requests with `enhance=model` use; it is never applied by default.
    /// NOTE: a relative path is taken from the working directory, not from the configuration
    /// file's folder as `path` is.
    pub model: Option<std::path::PathBuf>,
}

impl RasterOptions {
    /// Returns the enhancement steps this source applies when a request does not name any.
    pub fn enhance_steps(&self) -> Steps {
        Steps {
            clahe: self.clahe,
            haze: self.haze,
            ..Steps::sharpened()
        }
    }
}

impl Default for RasterOptions {
    fn default() -> Self {
        Self {
            bands: None,
            resampling: Resampling::default(),
            rescale: Rescale::default(),
            minzoom: None,
            maxzoom: None,
            format: TileFormat::Png,
            nodata: None,
            date: None,
            sensor: None,
            source: None,
            enhance: SourceEnhance::default(),
            clahe: false,
            haze: false,
            model: None,
        }
    }
}

/// Computes the linear stretch of each selected band, or `None` when 8-bit values are served
/// as they are. Statistics are approximate (GDAL may read an overview), which is enough for a
/// display stretch and keeps start-up fast.
pub(super) fn stretch_for(
    path: &Path,
    dataset: &Dataset,
    info: &RasterInfo,
    selected: &[usize],
    rescale: &Rescale,
) -> Result<Option<Vec<(f64, f64)>>, RasterError> {
    let eight_bit = info.data_type() == "uint8";
    match *rescale {
        Rescale::Auto if eight_bit => Ok(None),
        Rescale::None => Ok(Some(vec![(0.0, 255.0); selected.len()])),
        Rescale::Range { min, max } => Ok(Some(vec![(min, max); selected.len()])),
        Rescale::Auto => percentiles(path, dataset, selected, 2.0, 98.0).map(Some),
        Rescale::Percentile { low, high } => {
            percentiles(path, dataset, selected, low, high).map(Some)
        }
        Rescale::MinMax => selected
            .iter()
            .map(|&band| {
                let error = |source| RasterError::Statistics {
                    path: path.to_owned(),
                    band,
                    source,
                };
                let min_max = dataset
                    .rasterband(band)
                    .and_then(|b| b.compute_raster_min_max(true))
                    .map_err(error)?;
                Ok(widen((min_max.min, min_max.max)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

const HISTOGRAM_BUCKETS: usize = 1024;

fn percentiles(
    path: &Path,
    dataset: &Dataset,
    selected: &[usize],
    low: f64,
    high: f64,
) -> Result<Vec<(f64, f64)>, RasterError> {
    selected
        .iter()
        .map(|&band_index| {
            let error = |source| RasterError::Statistics {
                path: path.to_owned(),
                band: band_index,
                source,
            };
            let band = dataset.rasterband(band_index).map_err(error)?;
            let min_max = band.compute_raster_min_max(true).map_err(error)?;
            if min_max.max <= min_max.min {
                return Ok(widen((min_max.min, min_max.max)));
            }
            let histogram = band
                .histogram(min_max.min, min_max.max, HISTOGRAM_BUCKETS, true, true)
                .map_err(error)?;
            let counts = histogram.counts();
            let bucket = histogram.bucket_size();
            let total: u64 = counts.iter().sum();
            let value_at = |fraction: f64| {
                let target = (fraction / 100.0 * total as f64).round() as u64;
                let mut seen = 0;
                for (i, &count) in counts.iter().enumerate() {
                    seen += count;
                    if seen >= target.max(1) {
                        return min_max.min + bucket * (i as f64 + 0.5);
                    }
                }
                min_max.max
            };
            Ok(widen((value_at(low), value_at(high))))
        })
        .collect()
}

/// Keeps a stretch from dividing by zero on a constant band.
fn widen((min, max): (f64, f64)) -> (f64, f64) {
    if max > min {
        (min, max)
    } else {
        (min, min + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_parses_each_form() {
        let cases = [
            ("auto", Rescale::Auto),
            ("none", Rescale::None),
            ("MinMax", Rescale::MinMax),
            (
                "percentile",
                Rescale::Percentile {
                    low: 2.0,
                    high: 98.0,
                },
            ),
            (
                "percentile:1,99.5",
                Rescale::Percentile {
                    low: 1.0,
                    high: 99.5,
                },
            ),
            (
                "range:0,3000",
                Rescale::Range {
                    min: 0.0,
                    max: 3000.0,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Rescale>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rescale_rejects_bad_ranges() {
        for text in [
            "range:5,1",
            "percentile:-1,50",
            "percentile:2,101",
            "range:a,b",
            "stretch",
        ] {
            let error = text.parse::<Rescale>().expect_err(text);
            assert!(error.contains(text), "{error}");
        }
    }

    #[test]
    fn resampling_parses_names() {
        assert_eq!("nearest".parse(), Ok(Resampling::Nearest));
        assert_eq!("near".parse(), Ok(Resampling::Nearest));
        assert_eq!("LANCZOS".parse(), Ok(Resampling::Lanczos));
        assert!("average".parse::<Resampling>().is_err());
    }
}
