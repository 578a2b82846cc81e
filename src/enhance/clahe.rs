//! Contrast-limited adaptive histogram equalisation (CLAHE) of the luma.
//!
//! The image is divided into square regions on a grid given by the caller. Each region's luma
//! histogram is clipped at `clip_limit` times its mean bin count, the excess spread over all
//! bins, and its cumulative distribution becomes a tone curve. Each pixel's luma is mapped by
//! the curves of the four nearest region centres, blended bilinearly, and its red, green and
//! blue are scaled by the ratio of new to old luma, which keeps hue. A tile's grid starts at the
//! tile's corner and its margin contains a whole ring of regions, so pixels on both sides of a
//! tile border see the same curves.

/// Clip limit used by the enhancement, as a multiple of a region's mean bin count.
pub(crate) const CLIP_LIMIT: f64 = 2.0;

/// The region grid of a CLAHE pass: grid lines at `origin + k * region` on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub origin: usize,
    pub region: usize,
}

fn luma(pixel: &[u8]) -> f32 {
    0.299 * f32::from(pixel[0]) + 0.587 * f32::from(pixel[1]) + 0.114 * f32::from(pixel[2])
}

/// Applies CLAHE to the opaque and partly transparent pixels of `rgba` in place; fully
/// transparent pixels are left alone and counted in no histogram.
pub(crate) fn clahe(rgba: &mut [u8], width: usize, height: usize, grid: Grid, clip_limit: f64) {
    let region = grid.region.max(1) as i64;
    let origin = grid.origin as i64;
    // Region indices may be negative: regions left of and above the origin cover the margin.
    let first = (-origin).div_euclid(region);
    let last_x = (width as i64 - 1 - origin).div_euclid(region);
    let last_y = (height as i64 - 1 - origin).div_euclid(region);
    let columns = (last_x - first + 1) as usize;
    let rows = (last_y - first + 1) as usize;

    let lumas: Vec<u8> = rgba
        .chunks_exact(4)
        .map(|pixel| luma(pixel).round().clamp(0.0, 255.0) as u8)
        .collect();
    let mut histograms = vec![[0_u32; 256]; columns * rows];
    for y in 0..height {
        let row = ((y as i64 - origin).div_euclid(region) - first) as usize;
        for x in 0..width {
            let i = y * width + x;
            if rgba[i * 4 + 3] == 0 {
                continue;
            }
            let column = ((x as i64 - origin).div_euclid(region) - first) as usize;
            histograms[row * columns + column][usize::from(lumas[i])] += 1;
        }
    }
    let curves: Vec<[f32; 256]> = histograms
        .iter()
        .map(|histogram| tone_curve(histogram, clip_limit))
        .collect();

    // Position of a pixel centre on the grid of region centres, and the two regions around it.
    let place = |position: usize, last: i64| -> (usize, usize, f32) {
        let on_grid = (position as f64 + 0.5 - origin as f64) / region as f64 - 0.5;
        let below = on_grid.floor();
        let weight = (on_grid - below) as f32;
        let clamp = |index: f64| ((index as i64).clamp(first, last) - first) as usize;
        (clamp(below), clamp(below + 1.0), weight)
    };
    for y in 0..height {
        let (top, bottom, wy) = place(y, last_y);
        for x in 0..width {
            let i = y * width + x;
            let pixel = &mut rgba[i * 4..i * 4 + 4];
            if pixel[3] == 0 {
                continue;
            }
            let (left, right, wx) = place(x, last_x);
            let value = usize::from(lumas[i]);
            let curve = |row: usize, column: usize| curves[row * columns + column][value];
            let upper = curve(top, left) * (1.0 - wx) + curve(top, right) * wx;
            let lower = curve(bottom, left) * (1.0 - wx) + curve(bottom, right) * wx;
            let mapped = upper * (1.0 - wy) + lower * wy;
            let old = luma(pixel);
            for channel in &mut pixel[..3] {
                let scaled = if old > 0.5 {
                    f32::from(*channel) * mapped / old
                } else {
                    mapped
                };
                *channel = scaled.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Returns the clipped, equalised tone curve of one region's histogram. An empty region maps
/// every value to itself.
fn tone_curve(histogram: &[u32; 256], clip_limit: f64) -> [f32; 256] {
    let total: u32 = histogram.iter().sum();
    let mut curve = [0_f32; 256];
    if total == 0 {
        for (value, out) in curve.iter_mut().enumerate() {
            *out = value as f32;
        }
        return curve;
    }
    let limit = (clip_limit * f64::from(total) / 256.0).max(1.0);
    let mut clipped = [0_f64; 256];
    let mut excess = 0.0;
    for (out, &count) in clipped.iter_mut().zip(histogram) {
        let count = f64::from(count);
        *out = count.min(limit);
        excess += count - *out;
    }
    let share = excess / 256.0;
    let mut cumulative = 0.0;
    let scale = 255.0 / f64::from(total);
    for (out, count) in curve.iter_mut().zip(clipped) {
        cumulative += count + share;
        *out = (cumulative * scale) as f32;
    }
    curve
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(values: &[u8]) -> Vec<u8> {
        values.iter().flat_map(|&v| [v, v, v, 255]).collect()
    }

    #[test]
    fn low_contrast_region_is_stretched() {
        // Values 100 to 131 in a 32x32 region: CLAHE spreads them over a wider range.
        let values: Vec<u8> = (0..32 * 32).map(|i| 100 + (i % 32) as u8).collect();
        let mut rgba = grey(&values);
        clahe(
            &mut rgba,
            32,
            32,
            Grid {
                origin: 0,
                region: 32,
            },
            CLIP_LIMIT,
        );
        let out: Vec<u8> = rgba.chunks_exact(4).map(|p| p[0]).collect();
        let (min, max) = (
            out.iter().copied().min().expect("pixels"),
            out.iter().copied().max().expect("pixels"),
        );
        assert!(
            max - min > 40,
            "range widened from 31 to {}: {min}..{max}",
            max - min
        );
    }

    #[test]
    fn transparent_pixels_are_untouched() {
        let mut rgba = [7_u8, 7, 7, 0].repeat(16);
        rgba.extend(grey(&[50; 16]));
        let before = rgba.clone();
        clahe(
            &mut rgba,
            8,
            4,
            Grid {
                origin: 0,
                region: 4,
            },
            CLIP_LIMIT,
        );
        assert_eq!(rgba[..64], before[..64]);
    }

    #[test]
    fn grid_offset_gives_same_pixels_in_shared_part() {
        // Two overlapping views of one image with the same grid in image terms must agree
        // where both have all the regions a pixel reads.
        let values: Vec<u8> = (0..64 * 64)
            .map(|i| ((i * 7919) % 251) as u8 / 2 + 60)
            .collect();
        let mut whole = grey(&values);
        clahe(
            &mut whole,
            64,
            64,
            Grid {
                origin: 0,
                region: 16,
            },
            CLIP_LIMIT,
        );
        // The right 48 columns, with the grid shifted so its lines fall where they did.
        let mut part = Vec::new();
        for y in 0..64 {
            part.extend_from_slice(&grey(&values[y * 64 + 16..y * 64 + 64]));
        }
        clahe(
            &mut part,
            48,
            64,
            Grid {
                origin: 0,
                region: 16,
            },
            CLIP_LIMIT,
        );
        for y in 0..64 {
            for x in 16..40 {
                let a = whole[(y * 64 + x + 16) * 4];
                let b = part[(y * 48 + x) * 4];
                assert_eq!(a, b, "({x}, {y})");
            }
        }
    }
}
