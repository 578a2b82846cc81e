//! Heat-map tiles: a Gaussian kernel density of the points, coloured by a ramp.
//!
//! Seams: the scale that maps density to colour is fixed per zoom, radius and filter, never
//! per tile, and each tile reads the points up to the kernel's radius beyond its borders. The
//! density at a pixel therefore depends only on the pixel's global position, so pixels on both
//! sides of a tile border agree.

use std::str::FromStr;

use super::aggregate::{PixelBox, for_points_in};
use super::filter::Filter;
use super::points::Points;

/// Standard deviations of the Gaussian kernel that fit in its radius. Beyond the radius the
/// kernel is cut off, where at 3 σ it has fallen to 1.1 % of its peak.
const SIGMAS_PER_RADIUS: f64 = 3.0;

/// A colour ramp: stops from 0 (lowest visible density) to 1 (the scale's maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ramp {
    /// Blue through cyan, green and yellow to red, fading in from transparent.
    #[default]
    Heat,
    /// Matplotlib's perceptually uniform viridis.
    Viridis,
    /// Matplotlib's magma.
    Magma,
    /// Light to dark grey, for print.
    Greys,
}

impl FromStr for Ramp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "heat" => Ok(Ramp::Heat),
            "viridis" => Ok(Ramp::Viridis),
            "magma" => Ok(Ramp::Magma),
            "greys" | "grays" => Ok(Ramp::Greys),
            _ => Err(format!(
                "unknown ramp {text:?}: use heat, viridis, magma or greys"
            )),
        }
    }
}

impl Ramp {
    pub fn name(self) -> &'static str {
        match self {
            Ramp::Heat => "heat",
            Ramp::Viridis => "viridis",
            Ramp::Magma => "magma",
            Ramp::Greys => "greys",
        }
    }

    /// Returns the stops as (position, RGBA).
    pub fn stops(self) -> &'static [(f64, [u8; 4])] {
        match self {
            Ramp::Heat => &[
                (0.0, [0, 0, 255, 0]),
                (0.2, [0, 0, 255, 150]),
                (0.4, [0, 255, 255, 190]),
                (0.6, [0, 255, 0, 210]),
                (0.8, [255, 255, 0, 230]),
                (1.0, [255, 0, 0, 255]),
            ],
            Ramp::Viridis => &[
                (0.0, [68, 1, 84, 0]),
                (0.1, [68, 1, 84, 170]),
                (0.35, [59, 82, 139, 210]),
                (0.6, [33, 145, 140, 230]),
                (0.8, [94, 201, 98, 245]),
                (1.0, [253, 231, 37, 255]),
            ],
            Ramp::Magma => &[
                (0.0, [0, 0, 4, 0]),
                (0.1, [28, 16, 68, 170]),
                (0.35, [114, 31, 129, 210]),
                (0.6, [205, 64, 113, 230]),
                (0.8, [251, 136, 97, 245]),
                (1.0, [252, 253, 191, 255]),
            ],
            Ramp::Greys => &[
                (0.0, [240, 240, 240, 0]),
                (0.2, [200, 200, 200, 160]),
                (1.0, [20, 20, 20, 255]),
            ],
        }
    }

    /// Returns the colour at `t` from 0 to 1, interpolated linearly between stops.
    pub fn colour(self, t: f64) -> [u8; 4] {
        let stops = self.stops();
        let t = t.clamp(0.0, 1.0);
        for pair in stops.windows(2) {
            let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
            if t <= t1 {
                let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
                let mut colour = [0; 4];
                for channel in 0..4 {
                    let value = f64::from(c0[channel])
                        + f * (f64::from(c1[channel]) - f64::from(c0[channel]));
                    colour[channel] = value.round() as u8;
                }
                return colour;
            }
        }
        stops[stops.len() - 1].1
    }
}

/// A kernel density of one tile, before colouring: one value per pixel, row by row.
#[derive(Debug, Clone)]
pub(super) struct DensityGrid {
    pub(super) size: usize,
    pub(super) values: Vec<f64>,
}

/// Weights of a Gaussian cut off at `radius` pixels, from -radius to +radius, peak 1.
fn kernel(radius: f64) -> Vec<f64> {
    let reach = radius.ceil() as i64;
    let sigma = radius / SIGMAS_PER_RADIUS;
    (-reach..=reach)
        .map(|offset| {
            let d = offset as f64;
            if d.abs() > radius {
                0.0
            } else {
                (-d * d / (2.0 * sigma * sigma)).exp()
            }
        })
        .collect()
}

/// Computes the density of a square of `size` pixels whose top-left corner is global pixel
/// (`left`, `top`) at zoom `z`, for tiles of `tile_size` pixels.
///
/// Points are binned to pixel centres first, then blurred with a separable Gaussian, so the
/// work grows with the area and the radius, not with the number of points.
pub(super) fn density(
    points: &Points,
    filter: &Filter,
    z: u8,
    tile_size: f64,
    (left, top): (i64, i64),
    size: usize,
    radius: f64,
) -> DensityGrid {
    let reach = radius.ceil() as usize;
    let padded = size + 2 * reach;
    let mut binned = vec![0.0_f64; padded * padded];
    let origin_x = left - reach as i64;
    let origin_y = top - reach as i64;
    let area = PixelBox {
        min_x: origin_x as f64,
        min_y: origin_y as f64,
        max_x: (origin_x + padded as i64) as f64,
        max_y: (origin_y + padded as i64) as f64,
    };

    let mut any = false;
    for_points_in(points, z, tile_size, &area, |index, px, py| {
        if !filter.matches(points, index) {
            return;
        }
        let column = (px.floor() as i64 - origin_x) as usize;
        let row = (py.floor() as i64 - origin_y) as usize;
        if column < padded && row < padded {
            binned[row * padded + column] += points.weight[index];
            any = true;
        }
    });
    if !any {
        return DensityGrid {
            size,
            values: Vec::new(),
        };
    }

    let weights = kernel(radius);
    // Horizontal pass over every padded row, keeping only the tile's columns.
    let mut horizontal = vec![0.0_f64; padded * size];
    for row in 0..padded {
        let source = &binned[row * padded..(row + 1) * padded];
        if source.iter().all(|&v| v == 0.0) {
            continue;
        }
        for column in 0..size {
            let window = &source[column..=column + 2 * reach];
            horizontal[row * size + column] = window.iter().zip(&weights).map(|(v, w)| v * w).sum();
        }
    }

    let mut values = vec![0.0_f64; size * size];
    for row in 0..size {
        for column in 0..size {
            let mut sum = 0.0;
            for (k, w) in weights.iter().enumerate() {
                sum += horizontal[(row + k) * size + column] * w;
            }
            values[row * size + column] = sum;
        }
    }
    DensityGrid { size, values }
}

/// Computes the colour scale of a zoom: the largest weighted count of matching points in one
/// square of `radius` pixels of the global pixel grid.
///
/// It is a property of the whole data set at that zoom and filter, never of a tile. The
/// kernel's peak is 1, so a pixel's density is close to the count of points within its
/// radius. Densities above the scale take the ramp's last colour.
pub(super) fn scale(points: &Points, filter: &Filter, z: u8, tile_size: f64, radius: f64) -> f64 {
    let world = tile_size * f64::from(1_u32 << z);
    let mut bins: std::collections::HashMap<(i64, i64), f64> = std::collections::HashMap::new();
    let mut previous: Option<((i64, i64), f64)> = None;
    let mut max = 0.0_f64;
    for index in 0..points.len() {
        if !filter.matches(points, index) {
            continue;
        }
        let key = (
            (points.x[index] * world / radius).floor() as i64,
            (points.y[index] * world / radius).floor() as i64,
        );
        let weight = points.weight[index];
        // Points are sorted along a Morton curve, so runs often share a bin.
        if let Some((last, sum)) = &mut previous
            && *last == key
        {
            *sum += weight;
            continue;
        }
        if let Some((last, sum)) = previous.take() {
            let total = bins.entry(last).or_insert(0.0);
            *total += sum;
            max = max.max(*total);
        }
        previous = Some((key, weight));
    }
    if let Some((last, sum)) = previous {
        let total = bins.entry(last).or_insert(0.0);
        *total += sum;
        max = max.max(*total);
    }
    max
}

/// Returns the position on the ramp, 0 to 1, of a density against the zoom's scale.
///
/// The position follows the logarithm of the density. Counts of events are long-tailed: on a
/// linear scale one facility with hundreds of events leaves a lone event at a fraction of a
/// percent, which rounds to transparent.
pub(super) fn ramp_position(density: f64, scale: f64) -> f64 {
    if scale <= 0.0 {
        return 0.0;
    }
    (density.ln_1p() / scale.ln_1p()).min(1.0)
}

/// Returns the density at a position on the ramp, the inverse of [`ramp_position`].
pub(super) fn density_at(position: f64, scale: f64) -> f64 {
    (position * scale.ln_1p()).exp_m1()
}

/// Colours a density grid with `ramp` against `scale`, as RGBA rows.
pub(super) fn colour(grid: &DensityGrid, scale: f64, ramp: Ramp) -> Vec<u8> {
    // Transparent pixels keep the ramp's first colour, so that a client that interpolates
    // between pixels does not blend towards black at the heat's edge.
    let clear = ramp.colour(0.0);
    let mut rgba: Vec<u8> = clear.repeat(grid.size * grid.size);
    if scale <= 0.0 {
        return rgba;
    }
    // Every ramp starts with alpha 0 and rises linearly, so low densities fade out with no
    // cut-off edge.
    for (pixel, value) in grid.values.iter().enumerate() {
        if *value > 0.0 {
            let position = ramp_position(*value, scale);
            rgba[pixel * 4..pixel * 4 + 4].copy_from_slice(&ramp.colour(position));
        }
    }
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_parse_and_end_on_their_stops() {
        for name in ["heat", "viridis", "magma", "greys"] {
            let ramp: Ramp = name.parse().expect(name);
            assert_eq!(ramp.name(), name);
            let stops = ramp.stops();
            assert_eq!(ramp.colour(0.0), stops[0].1);
            assert_eq!(ramp.colour(1.0), stops[stops.len() - 1].1);
            assert_eq!(
                ramp.colour(7.0),
                stops[stops.len() - 1].1,
                "clamped above 1"
            );
        }
        assert!("rainbow".parse::<Ramp>().is_err());
    }

    #[test]
    fn ramp_position_is_logarithmic_and_inverts() {
        let scale = 1000.0;
        assert!((ramp_position(scale, scale) - 1.0).abs() < 1e-12);
        assert!(
            (ramp_position(5000.0, scale) - 1.0).abs() < 1e-12,
            "clamped"
        );
        assert!(
            ramp_position(1.0, scale) > 0.09,
            "one point is visible beside a thousand"
        );
        for density in [0.5, 1.0, 37.0, 999.0] {
            let position = ramp_position(density, scale);
            assert!((density_at(position, scale) - density).abs() < 1e-9);
        }
    }

    #[test]
    fn kernel_peaks_at_one_and_is_symmetric() {
        let weights = kernel(10.0);
        assert_eq!(weights.len(), 21);
        assert!((weights[10] - 1.0).abs() < 1e-12);
        for k in 0..10 {
            assert!((weights[k] - weights[20 - k]).abs() < 1e-12);
        }
    }
}
