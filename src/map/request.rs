//! Reading static map requests: the size segment (`{width}x{height}[@2x].{ext}`) and the
//! query options, shared by `/static` and `tessera render`.

use super::{MapOptions, OutputFormat};
use crate::collection::Period;
use crate::enhance::EnhanceRequest;

/// The largest width or height of a static map, in page units.
pub const MAX_SIDE: u32 = 8192;

/// Highest print resolution accepted, in dots per inch.
pub const MAX_DPI: f64 = 1200.0;

/// The option names a static map takes.
pub const OPTION_NAMES: [&str; 12] = [
    "title",
    "caption",
    "legend",
    "scalebar",
    "north",
    "grid",
    "attribution",
    "dpi",
    "date",
    "enhance",
    "page",
    "margin",
];

/// A request value that failed its check: the parameter and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOption {
    pub parameter: &'static str,
    pub message: String,
}

fn invalid(parameter: &'static str, message: String) -> InvalidOption {
    InvalidOption { parameter, message }
}

/// A parsed size segment: page size, ratio and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeName {
    pub width: u32,
    pub height: u32,
    pub ratio: u32,
    pub format: OutputFormat,
}

/// Parses `{width}x{height}[@2x].{ext}`.
pub fn parse_size(name: &str) -> Result<SizeName, InvalidOption> {
    let Some((stem, extension)) = name.rsplit_once('.') else {
        return Err(invalid(
            "format",
            format!("size {name:?} has no extension: end it with .png, .jpg, .tif or .pdf"),
        ));
    };
    let format = OutputFormat::from_extension(extension).ok_or_else(|| {
        invalid(
            "format",
            format!("unknown format .{extension}: use .png, .jpg, .tif or .pdf"),
        )
    })?;
    let (size, ratio) = match stem.split_once('@') {
        None => (stem, 1),
        Some((size, "1x")) => (size, 1),
        Some((size, "2x")) => (size, 2),
        Some((_, other)) => {
            return Err(invalid(
                "ratio",
                format!("invalid pixel ratio @{other}: use @2x or none"),
            ));
        }
    };
    let (width, height) = size.split_once('x').ok_or_else(|| {
        invalid(
            "size",
            format!(
                "invalid size {size:?}: use {{width}}x{{height}} in pixels, for example 800x600"
            ),
        )
    })?;
    let side = |parameter: &'static str, text: &str| {
        text.parse::<u32>()
            .ok()
            .filter(|side| (1..=MAX_SIDE).contains(side))
            .ok_or_else(|| {
                invalid(
                    parameter,
                    format!("invalid {parameter} {text:?}: use a whole number of pixels from 1 to {MAX_SIDE}"),
                )
            })
    };
    Ok(SizeName {
        width: side("width", width)?,
        height: side("height", height)?,
        ratio,
        format,
    })
}

fn parse_flag(parameter: &'static str, value: &str) -> Result<bool, InvalidOption> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(
            parameter,
            format!("invalid {parameter} {value:?}: use true or false"),
        )),
    }
}

/// Reads the options of a static map from query pairs, starting from the format's defaults.
/// Unknown names and repeated names are rejected.
pub fn parse_options(
    format: OutputFormat,
    pairs: &[(String, String)],
) -> Result<MapOptions, InvalidOption> {
    let mut options = MapOptions::for_format(format);
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let Some(&known) = OPTION_NAMES.iter().find(|known| **known == name.as_str()) else {
            return Err(invalid(
                "query",
                format!(
                    "unknown query parameter {:?} for a static map: use {} (names are lower case)",
                    crate::server::problem::shortened(name, 60),
                    OPTION_NAMES.join(", ")
                ),
            ));
        };
        if seen.contains(&known) {
            return Err(invalid(
                known,
                format!("{known} is given more than once: give it once"),
            ));
        }
        seen.push(known);
        match known {
            "title" => options.title = Some(value.clone()).filter(|text| !text.is_empty()),
            "caption" => options.caption = Some(value.clone()).filter(|text| !text.is_empty()),
            "legend" => options.legend = parse_flag(known, value)?,
            "scalebar" => options.scalebar = parse_flag(known, value)?,
            "north" => options.north = parse_flag(known, value)?,
            "grid" => options.grid = parse_flag(known, value)?,
            "attribution" => options.attribution = parse_flag(known, value)?,
            "dpi" => {
                options.dpi = value
                    .parse::<f64>()
                    .ok()
                    .filter(|dpi| (24.0..=MAX_DPI).contains(dpi))
                    .ok_or_else(|| {
                        invalid(
                            "dpi",
                            format!("invalid dpi {value:?}: use 24 to {MAX_DPI} dots per inch"),
                        )
                    })?;
            }
            "page" | "margin" if format != OutputFormat::Pdf => {
                return Err(invalid(
                    known,
                    format!("{known} applies to PDF maps only: request .pdf or leave {known} out"),
                ));
            }
            "page" => {
                options.page = crate::map::pdf::PageSize::parse(value)
                    .map_err(|error| invalid("page", error.to_string()))?;
            }
            "margin" => {
                options.margin = crate::map::pdf::page::parse_margin(value)
                    .map_err(|error| invalid("margin", error.to_string()))?;
            }
            "date" => {
                options.date = Some(
                    value
                        .parse::<Period>()
                        .map_err(|message| invalid("date", message))?,
                );
            }
            _ => {
                options.enhance = value
                    .parse::<EnhanceRequest>()
                    .map_err(|message| invalid("enhance", message))?;
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        let cases = [
            ("800x600.png", (800, 600, 1, OutputFormat::Png)),
            ("1024x768@2x.jpg", (1024, 768, 2, OutputFormat::Jpeg)),
            ("10x20.tif", (10, 20, 1, OutputFormat::GeoTiff)),
        ];
        for (name, (width, height, ratio, format)) in cases {
            assert_eq!(
                parse_size(name),
                Ok(SizeName {
                    width,
                    height,
                    ratio,
                    format
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_sizes_name_the_parameter() {
        let cases = [
            ("800x600", "format"),
            ("800x600.gif", "format"),
            ("800x600@3x.png", "ratio"),
            ("800.png", "size"),
            ("0x600.png", "width"),
            ("800x99999.png", "height"),
            ("-5x600.png", "width"),
        ];
        for (name, parameter) in cases {
            let error = parse_size(name).expect_err(name);
            assert_eq!(error.parameter, parameter, "{name}");
        }
    }

    #[test]
    fn options_parse_and_reject() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };
        let options = parse_options(
            OutputFormat::Png,
            &pairs(&[("title", "Camp 15"), ("legend", "true"), ("dpi", "300")]),
        )
        .expect("valid options");
        assert_eq!(options.title.as_deref(), Some("Camp 15"));
        assert!(options.legend);
        assert!((options.dpi - 300.0).abs() < f64::EPSILON);
        assert!(!MapOptions::for_format(OutputFormat::GeoTiff).scalebar);
        let cases = [
            (vec![("titel", "x")], "query"),
            (vec![("legend", "x")], "legend"),
            (vec![("dpi", "5000")], "dpi"),
            (vec![("date", "20x0")], "date"),
            (vec![("grid", "true"), ("grid", "false")], "grid"),
        ];
        for (list, parameter) in cases {
            let error = parse_options(OutputFormat::Png, &pairs(&list)).expect_err(parameter);
            assert_eq!(error.parameter, parameter, "{list:?}");
        }
    }
}
