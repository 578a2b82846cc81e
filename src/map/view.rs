//! The extent of a static map: a centre and zoom, a bounding box, or `auto`, and the frame
//! that maps Web Mercator metres to page units.
//!
//! Zooms count as MapLibre does: at zoom z the world is 512 × 2^z page units wide, so a
//! static map at the viewer's zoom shows what the viewer shows.

use crate::tile::{Bbox, MAX_LATITUDE, ORIGIN_SHIFT, lonlat_to_mercator, mercator_to_lonlat};

use super::scene::Point;

/// The highest zoom a static map accepts.
pub const MAX_ZOOM: f64 = 24.0;

/// The extent a static map shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum View {
    /// A centre in degrees and a fractional zoom.
    Centre { lon: f64, lat: f64, zoom: f64 },
    /// A lon/lat box fitted into the page, centred.
    Bounds(Bbox),
    /// The bounds of every source the style draws, fitted into the page.
    Auto,
}

/// A view check that failed: the parameter and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidView {
    pub parameter: &'static str,
    pub message: String,
}

impl View {
    /// Parses the position segment of a static map URL: `lon,lat,zoom`,
    /// `minlon,minlat,maxlon,maxlat` or `auto`.
    pub fn parse(text: &str) -> Result<View, InvalidView> {
        if text == "auto" {
            return Ok(View::Auto);
        }
        let invalid = |parameter, message: String| InvalidView { parameter, message };
        let numbers: Vec<f64> = text
            .split(',')
            .map(|part| part.trim().parse::<f64>().ok().filter(|n| n.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                invalid(
                    "position",
                    format!(
                        "invalid position {:?}: use lon,lat,zoom or minlon,minlat,maxlon,maxlat in decimal degrees, or auto",
                        crate::server::problem::shortened(text, 60)
                    ),
                )
            })?;
        match *numbers.as_slice() {
            [lon, lat, zoom] => {
                check_lon("lon", lon)?;
                check_lat("lat", lat)?;
                if !(0.0..=MAX_ZOOM).contains(&zoom) {
                    return Err(invalid(
                        "zoom",
                        format!("invalid zoom {zoom}: use 0 to {MAX_ZOOM}"),
                    ));
                }
                Ok(View::Centre { lon, lat, zoom })
            }
            [min_lon, min_lat, max_lon, max_lat] => {
                check_lon("minlon", min_lon)?;
                check_lat("minlat", min_lat)?;
                check_lon("maxlon", max_lon)?;
                check_lat("maxlat", max_lat)?;
                if min_lon >= max_lon || min_lat >= max_lat {
                    return Err(invalid(
                        "position",
                        format!(
                            "empty bounding box {text}: give minlon,minlat,maxlon,maxlat with the minimum below the maximum"
                        ),
                    ));
                }
                Ok(View::Bounds(Bbox::new(min_lon, min_lat, max_lon, max_lat)))
            }
            _ => Err(invalid(
                "position",
                format!(
                    "position {text:?} has {} numbers: use lon,lat,zoom or minlon,minlat,maxlon,maxlat, or auto",
                    numbers.len()
                ),
            )),
        }
    }
}

fn check_lon(parameter: &'static str, lon: f64) -> Result<(), InvalidView> {
    if (-180.0..=180.0).contains(&lon) {
        Ok(())
    } else {
        Err(InvalidView {
            parameter,
            message: format!("invalid longitude {lon}: use -180 to 180"),
        })
    }
}

fn check_lat(parameter: &'static str, lat: f64) -> Result<(), InvalidView> {
    if (-MAX_LATITUDE..=MAX_LATITUDE).contains(&lat) {
        Ok(())
    } else {
        Err(InvalidView {
            parameter,
            message: format!("invalid latitude {lat}: use -{MAX_LATITUDE} to {MAX_LATITUDE}"),
        })
    }
}

/// The page's map frame on the ground: the top left corner in Web Mercator metres and the
/// metres per page unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub west: f64,
    pub north: f64,
    /// Web Mercator metres per page unit.
    pub resolution: f64,
    /// Size in page units.
    pub width: f64,
    pub height: f64,
    pub zoom: f64,
}

/// Returns Web Mercator metres per page unit at `zoom`.
pub fn resolution_at(zoom: f64) -> f64 {
    2.0 * ORIGIN_SHIFT / (512.0 * zoom.exp2())
}

impl Frame {
    /// Builds a frame of `width` × `height` page units centred on (`x`, `y`) in Web Mercator metres.
    pub fn centred(x: f64, y: f64, zoom: f64, width: f64, height: f64) -> Frame {
        let resolution = resolution_at(zoom);
        Frame {
            west: x - width / 2.0 * resolution,
            north: y + height / 2.0 * resolution,
            resolution,
            width,
            height,
            zoom,
        }
    }

    /// Builds the frame of `view`. `Auto` needs `fit`, the lon/lat box to fit.
    pub fn of_view(view: View, width: f64, height: f64, fit: Option<Bbox>) -> Option<Frame> {
        let bounds = match view {
            View::Centre { lon, lat, zoom } => {
                let (x, y) = lonlat_to_mercator(lon, lat);
                return Some(Frame::centred(x, y, zoom, width, height));
            }
            View::Bounds(bounds) => bounds,
            View::Auto => fit?,
        };
        let lat_min = bounds.min_y.clamp(-MAX_LATITUDE, MAX_LATITUDE);
        let lat_max = bounds.max_y.clamp(-MAX_LATITUDE, MAX_LATITUDE);
        let (x0, y0) = lonlat_to_mercator(bounds.min_x, lat_min);
        let (x1, y1) = lonlat_to_mercator(bounds.max_x, lat_max);
        let resolution = ((x1 - x0) / width).max((y1 - y0) / height);
        let zoom = if resolution > 0.0 {
            (2.0 * ORIGIN_SHIFT / (512.0 * resolution))
                .log2()
                .clamp(0.0, MAX_ZOOM)
        } else {
            MAX_ZOOM
        };
        Some(Frame::centred(
            f64::midpoint(x0, x1),
            f64::midpoint(y0, y1),
            zoom,
            width,
            height,
        ))
    }

    pub fn to_page(&self, x: f64, y: f64) -> Point {
        Point {
            x: (x - self.west) / self.resolution,
            y: (self.north - y) / self.resolution,
        }
    }

    /// Returns the frame's extent in Web Mercator metres.
    pub fn mercator_bounds(&self) -> Bbox {
        Bbox::new(
            self.west,
            self.north - self.height * self.resolution,
            self.west + self.width * self.resolution,
            self.north,
        )
    }

    /// Returns the frame's extent in degrees.
    pub fn lonlat_bounds(&self) -> Bbox {
        let bounds = self.mercator_bounds();
        let (min_x, min_y) = mercator_to_lonlat(bounds.min_x, bounds.min_y);
        let (max_x, max_y) = mercator_to_lonlat(bounds.max_x, bounds.max_y);
        Bbox::new(min_x, min_y, max_x, max_y)
    }

    /// Returns the latitude of the frame's centre in degrees.
    pub fn centre_latitude(&self) -> f64 {
        let bounds = self.mercator_bounds();
        mercator_to_lonlat(bounds.min_x, f64::midpoint(bounds.min_y, bounds.max_y)).1
    }

    /// Returns ground metres per page unit at the centre latitude.
    pub fn ground_resolution(&self) -> f64 {
        self.resolution * self.centre_latitude().to_radians().cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        assert_eq!(
            View::parse("126.5,40,6.5"),
            Ok(View::Centre {
                lon: 126.5,
                lat: 40.0,
                zoom: 6.5
            })
        );
        assert_eq!(
            View::parse("1,2,3,4"),
            Ok(View::Bounds(Bbox::new(1.0, 2.0, 3.0, 4.0)))
        );
        assert_eq!(View::parse("auto"), Ok(View::Auto));
    }

    #[test]
    fn bad_positions_name_the_parameter() {
        let cases = [
            ("200,0,3", "lon"),
            ("0,90,3", "lat"),
            ("0,0,30", "zoom"),
            ("0,0,-1", "zoom"),
            ("3,0,1,1", "position"),
            ("a,b,c", "position"),
            ("1,2", "position"),
            ("nan,0,1", "position"),
        ];
        for (text, parameter) in cases {
            let error = View::parse(text).expect_err(text);
            assert_eq!(error.parameter, parameter, "{text}");
        }
    }

    #[test]
    fn bounds_frame_matches_centre_frame() {
        let centre = Frame::of_view(
            View::Centre {
                lon: 126.0,
                lat: 39.0,
                zoom: 9.0,
            },
            400.0,
            300.0,
            None,
        )
        .expect("a centre needs no fit");
        let lonlat = centre.lonlat_bounds();
        let fitted = Frame::of_view(View::Bounds(lonlat), 400.0, 300.0, None).expect("bounds");
        assert!((fitted.zoom - 9.0).abs() < 1e-9, "zoom {}", fitted.zoom);
        assert!((fitted.west - centre.west).abs() < 1e-6);
        assert!((fitted.north - centre.north).abs() < 1e-6);
    }
}
