//! Parsers for the text values of archive metadata entries. Each returns the reason for a
//! rejected value, which the caller wraps into an error naming the archive and the entry.

use crate::format::TileFormat;
use crate::tile::Bbox;

use super::MAX_ARCHIVE_ZOOM;

/// Parses a `format` entry: an extension (`pbf`, `png`, `jpg`, `webp`), or the media type that
/// `MBTiles` 1.3 allows for other formats.
pub(super) fn parse_format(value: &str) -> Result<TileFormat, String> {
    if let Some(format) = TileFormat::from_extension(value) {
        return Ok(format);
    }
    match value.to_ascii_lowercase().as_str() {
        "image/png" => Ok(TileFormat::Png),
        "image/jpeg" => Ok(TileFormat::Jpeg),
        "image/webp" => Ok(TileFormat::Webp),
        "application/x-protobuf" | "application/vnd.mapbox-vector-tile" => Ok(TileFormat::Mvt),
        _ => Err("Tessera serves only the formats pbf, png, jpg and webp".to_owned()),
    }
}

pub(super) fn parse_zoom(value: &str) -> Result<u8, String> {
    value
        .parse::<u8>()
        .ok()
        .filter(|zoom| *zoom <= MAX_ARCHIVE_ZOOM)
        .ok_or_else(|| format!("a zoom level must be an integer from 0 to {MAX_ARCHIVE_ZOOM}"))
}

fn parse_numbers(value: &str) -> Result<Vec<f64>, String> {
    value
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .ok_or_else(|| format!("{:?} is not a number", part.trim()))
        })
        .collect()
}

fn check_lon_lat(lon: f64, lat: f64) -> Result<(), String> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("longitude {lon} is outside -180 to 180"));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!("latitude {lat} is outside -90 to 90"));
    }
    Ok(())
}

/// Parses `bounds` as "left,bottom,right,top" in degrees. Left may exceed right, as in bounds
/// that cross the antimeridian, and the caller decides what to do with them.
pub(super) fn parse_bounds(value: &str) -> Result<Bbox, String> {
    let numbers = parse_numbers(value)?;
    let [min_x, min_y, max_x, max_y] = numbers[..] else {
        return Err(format!(
            "bounds must be 4 numbers \"left,bottom,right,top\", not {}",
            numbers.len()
        ));
    };
    check_lon_lat(min_x, min_y)?;
    check_lon_lat(max_x, max_y)?;
    if min_y >= max_y {
        return Err(format!("bottom {min_y} is not below top {max_y}"));
    }
    // Left above right is kept for the caller, but an extent of no width is rejected.
    if min_x.total_cmp(&max_x).is_eq() {
        return Err(format!("left and right are both {min_x}"));
    }
    Ok(Bbox {
        min_x,
        min_y,
        max_x,
        max_y,
    })
}

/// Parses `center` as "longitude,latitude,zoom", or as "longitude,latitude" with `minzoom`.
pub(super) fn parse_center(value: &str, minzoom: u8) -> Result<[f64; 3], String> {
    let numbers = parse_numbers(value)?;
    let (lon, lat, zoom) = match numbers[..] {
        [lon, lat, zoom] => (lon, lat, zoom),
        [lon, lat] => (lon, lat, f64::from(minzoom)),
        _ => {
            return Err(format!(
                "center must be 3 numbers \"longitude,latitude,zoom\", not {}",
                numbers.len()
            ));
        }
    };
    check_lon_lat(lon, lat)?;
    if !(0.0..=f64::from(MAX_ARCHIVE_ZOOM)).contains(&zoom) {
        return Err(format!("zoom {zoom} is outside 0 to {MAX_ARCHIVE_ZOOM}"));
    }
    Ok([lon, lat, zoom])
}

/// Parses the `json` entry, a JSON object, and returns its `vector_layers` array if present.
pub(super) fn parse_vector_layers(value: &str) -> Result<Option<serde_json::Value>, String> {
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|error| format!("it is not valid JSON ({error})"))?;
    let serde_json::Value::Object(mut object) = json else {
        return Err("it must be a JSON object".to_owned());
    };
    match object.remove("vector_layers") {
        None => Ok(None),
        Some(layers @ serde_json::Value::Array(_)) => Ok(Some(layers)),
        Some(_) => Err("its vector_layers must be an array".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_LAYERS: &str =
        r#"{"vector_layers":[{"id":"facilities","fields":{"name":"String"}}]}"#;

    #[test]
    fn format_entries() {
        let cases = [
            ("pbf", Some(TileFormat::Mvt)),
            ("png", Some(TileFormat::Png)),
            ("jpg", Some(TileFormat::Jpeg)),
            ("webp", Some(TileFormat::Webp)),
            ("image/jpeg", Some(TileFormat::Jpeg)),
            ("application/vnd.mapbox-vector-tile", Some(TileFormat::Mvt)),
            ("tiff", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_format(value).ok(), expected, "{value:?}");
        }
    }

    #[test]
    fn bounds_entries() {
        let cases = [
            ("-180,-85,180,85", true),
            (" 22.57, 32.72, 22.69, 32.78 ", true),
            ("170,-20,-170,-10", true),
            ("1,2,3", false),
            ("1,2,3,4,5", false),
            ("a,b,c,d", false),
            ("0,10,1,5", false),
            ("5,0,5,1", false),
            ("-190,0,1,1", false),
            ("0,0,1,95", false),
            ("0,0,1,inf", false),
        ];
        for (value, valid) in cases {
            assert_eq!(parse_bounds(value).is_ok(), valid, "{value:?}");
        }
    }

    #[test]
    fn center_entries() {
        let cases = [
            ("127.5,40,12", Some([127.5, 40.0, 12.0])),
            ("127.5,40", Some([127.5, 40.0, 3.0])),
            ("127.5", None),
            ("127.5,40,12,1", None),
            ("127.5,95,12", None),
            ("127.5,40,-1", None),
            ("127.5,40,32", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_center(value, 3).ok(), expected, "{value:?}");
        }
    }

    #[test]
    fn vector_layers_entries() {
        let layers = parse_vector_layers(VECTOR_LAYERS).expect("valid json entry");
        assert_eq!(
            layers.expect("vector_layers present")[0]["id"],
            "facilities"
        );
        assert_eq!(parse_vector_layers(r#"{"tilestats":{}}"#), Ok(None));
        assert!(parse_vector_layers("[]").is_err());
        assert!(parse_vector_layers(r#"{"vector_layers":{}}"#).is_err());
        assert!(parse_vector_layers("{").is_err());
    }
}
