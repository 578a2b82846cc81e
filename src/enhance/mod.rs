//! Enhancement of imagery tiles whose pixels are finer than the scene's own.
//!
//! When a tile request needs finer pixels than the scene has, the tile is not warped straight to its
//! size (which enlarges with the warp kernel). Instead its extent, plus a margin, is warped at
//! about the scene's native resolution, enlarged with a Lanczos3 filter, sharpened in
//! proportion to the enlargement and, where configured, given local contrast (CLAHE) and haze
//! correction (dark-object subtraction). The margin is cropped last, so that filters see the
//! same pixels on both sides of a tile border and neighbouring tiles meet without a seam.
//!
//! Every step is a pure function on RGBA pixels with a fixed order of arithmetic, so the same
//! request gives the same bytes. Each enhanced tile reports what was applied
//! ([`Applied::header_value`]) so that no enhanced pixel passes for a plain one.

mod clahe;
mod haze;
pub mod model;
mod pipeline;
pub mod quality;
mod resample;
mod sharpen;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

pub use self::haze::{DarkObject, dark_object};
pub use self::pipeline::{Geometry, enhance_area, geometry};
pub use self::resample::{Filter, Window, enlarge, reduce_area};
pub use self::sharpen::{SharpenParameters, sharpen_parameters};

/// The response header that lists the enhancement steps applied to a tile.
pub const HEADER: &str = "tessera-enhancement";

/// Tiles whose pixels are at most this much finer than the scene's are served plain: a tile
/// grid rarely matches a scene's resolution exactly, and a COG cut on the tile grid has a
/// factor a rounding error above 1.
pub const MIN_FACTOR: f64 = 1.1;

/// The steps of an enhancement after the Lanczos3 enlargement, which is always applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each step is independently on or off, as in the `enhance` query"
)]
pub struct Steps {
    /// Unsharp mask whose radius and amount grow with the enlargement factor.
    pub sharpen: bool,
    /// Contrast-limited adaptive histogram equalisation of the luma.
    pub clahe: bool,
    /// Dark-object subtraction with the scene's own dark values.
    pub haze: bool,
    /// The source's super-resolution network in place of the first enlargement, and no
    /// unsharp mask. Without a configured network the step is left out.
    pub model: bool,
}

impl Steps {
    /// Returns the steps of the default enhancement: enlargement and sharpening.
    pub const fn sharpened() -> Self {
        Self {
            sharpen: true,
            clahe: false,
            haze: false,
            model: false,
        }
    }
}

/// The enhancement setting of a source, from the configuration key `enhance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceEnhance {
    /// Enhance tiles finer than the scene with the default steps plus the source's `clahe`
    /// and `haze` options.
    #[default]
    Auto,
    /// Serve plain warped tiles unless a request names steps.
    None,
}

impl FromStr for SourceEnhance {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            _ => Err(format!("invalid enhance {text:?}: use auto or none")),
        }
    }
}

impl<'de> Deserialize<'de> for SourceEnhance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The `enhance` query parameter of a tile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnhanceRequest {
    /// The source's configured enhancement (no parameter, or `enhance=auto`).
    #[default]
    Auto,
    /// Plain warped pixels, as if the source had `enhance = "none"` (`enhance=none`).
    None,
    /// Exactly these steps after the enlargement, whatever the source's configuration
    /// (`enhance=resample`, `enhance=sharpen,clahe`, …).
    Steps(Steps),
}

impl FromStr for EnhanceRequest {
    type Err = String;

    /// Parses `auto`, `none`, or a comma-separated list of `resample`, `sharpen`, `clahe`,
    /// `haze` and `model`. `resample` alone selects the Lanczos3 enlargement without any other step.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "invalid enhance {text:?}: use auto, none, or a comma-separated list of resample, sharpen, clahe, haze and model"
            )
        };
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "auto" => return Ok(Self::Auto),
            "none" => return Ok(Self::None),
            _ => {}
        }
        let mut steps = Steps::default();
        for step in lower.split(',') {
            match step.trim() {
                "resample" | "lanczos3" => {}
                "sharpen" => steps.sharpen = true,
                "clahe" => steps.clahe = true,
                "haze" => steps.haze = true,
                "model" => steps.model = true,
                _ => return Err(invalid()),
            }
        }
        Ok(Self::Steps(steps))
    }
}

/// Decides the steps for a request on a source, or `None` for plain resampling.
pub fn resolve(
    source: SourceEnhance,
    source_steps: Steps,
    request: EnhanceRequest,
) -> Option<Steps> {
    match (request, source) {
        (EnhanceRequest::None, _) | (EnhanceRequest::Auto, SourceEnhance::None) => None,
        (EnhanceRequest::Auto, SourceEnhance::Auto) => Some(source_steps),
        (EnhanceRequest::Steps(steps), _) => Some(steps),
    }
}

/// The steps that an enhancement applied to one tile, sent in the [`HEADER`] response header.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Ratio of the scene's ground pixel size to the tile's.
    pub factor: f64,
    /// Amount of the unsharp mask, or `None` when the tile was not sharpened.
    pub sharpen: Option<f64>,
    /// Clip limit of CLAHE, or `None` when it was not applied.
    pub clahe: Option<f64>,
    /// Whether dark-object subtraction was applied.
    pub haze: bool,
    /// Name of the super-resolution network that made the first enlargement, if one did.
    pub model: Option<String>,
}

impl Applied {
    /// Formats the steps as `resample=lanczos3; sharpen=0.80; factor=4.00`, in the order they
    /// were applied: haze first, on the native pixels, and CLAHE last.
    pub fn header_value(&self) -> String {
        let mut parts = Vec::with_capacity(5);
        if self.haze {
            parts.push("haze=dark-object".to_owned());
        }
        if let Some(model) = &self.model {
            parts.push(format!("model={model}"));
        }
        parts.push("resample=lanczos3".to_owned());
        if let Some(amount) = self.sharpen {
            parts.push(format!("sharpen={amount:.2}"));
        }
        if let Some(clip) = self.clahe {
            parts.push(format!("clahe={clip:.1}"));
        }
        parts.push(format!("factor={:.2}", self.factor));
        parts.join("; ")
    }
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value())
    }
}

/// Returns the ratio of a scene's ground pixel size to a tile's at latitude `latitude`
/// (degrees), for a tile `tile_width_mercator` metres wide in Web Mercator and `tile_size`
/// pixels a side. A factor above 1 means the tile needs finer pixels than the scene has.
pub fn enlargement_factor(
    native_metres: f64,
    tile_width_mercator: f64,
    tile_size: u32,
    latitude: f64,
) -> f64 {
    let ground_pixel = tile_width_mercator / f64::from(tile_size) * latitude.to_radians().cos();
    if ground_pixel > 0.0 && native_metres.is_finite() {
        native_metres / ground_pixel
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parses_each_form() {
        let cases = [
            ("auto", EnhanceRequest::Auto),
            ("NONE", EnhanceRequest::None),
            ("resample", EnhanceRequest::Steps(Steps::default())),
            ("sharpen", EnhanceRequest::Steps(Steps::sharpened())),
            (
                "resample,sharpen,clahe,haze",
                EnhanceRequest::Steps(Steps {
                    sharpen: true,
                    clahe: true,
                    haze: true,
                    model: false,
                }),
            ),
            (
                " clahe , haze ",
                EnhanceRequest::Steps(Steps {
                    sharpen: false,
                    clahe: true,
                    haze: true,
                    model: false,
                }),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<EnhanceRequest>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn request_rejects_unknown_steps() {
        for text in [
            "",
            "blur",
            "sharpen,,clahe",
            "sharpen;clahe",
            "none,sharpen",
        ] {
            let error = text.parse::<EnhanceRequest>().expect_err(text);
            assert!(error.contains("invalid enhance"), "{error}");
        }
    }

    #[test]
    fn source_setting_parses() {
        assert_eq!("auto".parse(), Ok(SourceEnhance::Auto));
        assert_eq!("None".parse(), Ok(SourceEnhance::None));
        assert!("sharpen".parse::<SourceEnhance>().is_err());
    }

    #[test]
    fn resolve_follows_request_then_source() {
        let configured = Steps {
            sharpen: true,
            clahe: true,
            haze: false,
            model: false,
        };
        let explicit = Steps {
            sharpen: false,
            clahe: false,
            haze: true,
            model: false,
        };
        let cases = [
            (SourceEnhance::Auto, EnhanceRequest::Auto, Some(configured)),
            (SourceEnhance::Auto, EnhanceRequest::None, None),
            (SourceEnhance::None, EnhanceRequest::Auto, None),
            (
                SourceEnhance::None,
                EnhanceRequest::Steps(explicit),
                Some(explicit),
            ),
            (
                SourceEnhance::Auto,
                EnhanceRequest::Steps(explicit),
                Some(explicit),
            ),
        ];
        for (source, request, expected) in cases {
            assert_eq!(
                resolve(source, configured, request),
                expected,
                "{source:?} {request:?}"
            );
        }
    }

    #[test]
    fn header_lists_steps_in_order() {
        let plain = Applied {
            factor: 4.0,
            sharpen: None,
            clahe: None,
            haze: false,
            model: None,
        };
        assert_eq!(plain.header_value(), "resample=lanczos3; factor=4.00");
        let all = Applied {
            factor: 2.5,
            sharpen: Some(0.8),
            clahe: Some(2.0),
            haze: true,
            model: None,
        };
        assert_eq!(
            all.header_value(),
            "haze=dark-object; resample=lanczos3; sharpen=0.80; clahe=2.0; factor=2.50"
        );
    }

    #[test]
    fn factor_grows_with_zoom_and_latitude() {
        // A zoom-12 tile is 9,784 m wide in Web Mercator: 38.2 m a pixel at 256 pixels.
        let width = crate::tile::TileCoord::new(12, 0, 0)
            .expect("tile")
            .bounds_mercator()
            .width();
        let at_equator = enlargement_factor(100.0, width, 256, 0.0);
        assert!((at_equator - 2.617).abs() < 0.01, "{at_equator}");
        let at_60 = enlargement_factor(100.0, width, 256, 60.0);
        assert!((at_60 - 2.0 * at_equator).abs() < 0.01, "{at_60}");
        let retina = enlargement_factor(100.0, width, 512, 0.0);
        assert!((retina - 2.0 * at_equator).abs() < 1e-9, "{retina}");
    }
}
