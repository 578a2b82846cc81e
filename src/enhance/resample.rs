//! Enlargement of RGBA pixels with `fast_image_resize`, and reduction by area averaging.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// A convolution filter for enlargement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Bilinear,
    /// Catmull-Rom, the bicubic filter of most image libraries and of GDAL's `cubic`.
    Bicubic,
    Lanczos3,
}

impl Filter {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bilinear => "bilinear",
            Self::Bicubic => "bicubic",
            Self::Lanczos3 => "lanczos3",
        }
    }

    fn filter_type(self) -> FilterType {
        match self {
            Self::Bilinear => FilterType::Bilinear,
            Self::Bicubic => FilterType::CatmullRom,
            Self::Lanczos3 => FilterType::Lanczos3,
        }
    }
}

/// A window of a source image in pixels, which may have fractional edges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// Resizes `window` of `rgba` (`width` x `height`, 4 bytes a pixel) to `out_width` x
/// `out_height` with `filter`. Colours are weighted by alpha, so transparent pixels lend no
/// colour to their neighbours. The filter reads source pixels outside the window where the
/// image has them, which is what lets a tile's margin give the same values at its edges as its
/// neighbour computes.
pub fn enlarge(
    rgba: &[u8],
    width: u32,
    height: u32,
    window: Window,
    out_width: u32,
    out_height: u32,
    filter: Filter,
) -> Vec<u8> {
    let source = Image::from_vec_u8(width, height, rgba.to_vec(), PixelType::U8x4)
        .expect("the buffer contains width x height RGBA pixels, and u8 needs no alignment");
    let mut target = Image::new(out_width, out_height, PixelType::U8x4);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter.filter_type()))
        .crop(window.left, window.top, window.width, window.height)
        .use_alpha(true);
    Resizer::new()
        .resize(&source, &mut target, &options)
        .expect("both images are U8x4 and the window lies inside the source");
    target.into_vec()
}

/// Reduces `rgba` by an integer `factor` along both axes, each output pixel being the mean of
/// a `factor` x `factor` block. Rows and columns past the last whole block are dropped.
/// Returns the pixels and their width and height.
pub fn reduce_area(rgba: &[u8], width: u32, height: u32, factor: u32) -> (Vec<u8>, u32, u32) {
    let factor = factor.max(1);
    let (out_width, out_height) = (width / factor, height / factor);
    let block = f64::from(factor * factor);
    let mut out = vec![0_u8; out_width as usize * out_height as usize * 4];
    for y in 0..out_height {
        for x in 0..out_width {
            let mut sums = [0_u32; 4];
            for dy in 0..factor {
                let row = (y * factor + dy) as usize * width as usize;
                for dx in 0..factor {
                    let at = (row + (x * factor + dx) as usize) * 4;
                    for (sum, &value) in sums.iter_mut().zip(&rgba[at..at + 4]) {
                        *sum += u32::from(value);
                    }
                }
            }
            let at = (y as usize * out_width as usize + x as usize) * 4;
            for (channel, sum) in sums.iter().enumerate() {
                out[at + channel] = (f64::from(*sum) / block).round() as u8;
            }
        }
    }
    (out, out_width, out_height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(width: u32, height: u32) -> Window {
        Window {
            left: 0.0,
            top: 0.0,
            width: f64::from(width),
            height: f64::from(height),
        }
    }

    #[test]
    fn reduction_averages_blocks() {
        // Two 2x2 blocks side by side: one of 0 and 255 alternating, one of 10.
        let mut rgba = Vec::new();
        for value in [0_u8, 255, 10, 10, 255, 0, 10, 10] {
            rgba.extend([value, value, value, 255]);
        }
        let (out, width, height) = reduce_area(&rgba, 4, 2, 2);
        assert_eq!((width, height), (2, 1));
        assert_eq!(out, vec![128, 128, 128, 255, 10, 10, 10, 255]);
    }

    #[test]
    fn enlargement_keeps_flat_colour() {
        let rgba: Vec<u8> = [40_u8, 90, 200, 255].repeat(16 * 16);
        for filter in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos3] {
            let out = enlarge(&rgba, 16, 16, whole(16, 16), 64, 64, filter);
            assert_eq!(out.len(), 64 * 64 * 4);
            assert!(
                out.chunks_exact(4).all(|p| p == [40, 90, 200, 255]),
                "{}",
                filter.name()
            );
        }
    }

    #[test]
    fn transparent_pixels_lend_no_colour() {
        // Left half opaque red, right half transparent black.
        let mut rgba = Vec::new();
        for _ in 0..8 {
            for x in 0..8 {
                rgba.extend(if x < 4 {
                    [255, 0, 0, 255]
                } else {
                    [0, 0, 0, 0]
                });
            }
        }
        let out = enlarge(&rgba, 8, 8, whole(8, 8), 32, 32, Filter::Lanczos3);
        for pixel in out.chunks_exact(4).filter(|p| p[3] > 16) {
            assert!(pixel[0] > 240, "opaque pixels stay red: {pixel:?}");
        }
    }

    #[test]
    fn window_reads_pixels_beyond_it() {
        // A ramp: a window of its middle must match the same part of the whole enlarged.
        let rgba: Vec<u8> = (0..32_u8)
            .flat_map(|x| [x * 8, x * 8, x * 8, 255])
            .collect::<Vec<_>>()
            .repeat(32);
        let whole_out = enlarge(&rgba, 32, 32, whole(32, 32), 128, 128, Filter::Lanczos3);
        let window = Window {
            left: 8.0,
            top: 8.0,
            width: 16.0,
            height: 16.0,
        };
        let part = enlarge(&rgba, 32, 32, window, 64, 64, Filter::Lanczos3);
        for y in 0..64_usize {
            for x in 0..64_usize {
                let a = part[(y * 64 + x) * 4];
                let b = whole_out[((y + 32) * 128 + x + 32) * 4];
                assert!(a.abs_diff(b) <= 1, "({x}, {y}): {a} against {b}");
            }
        }
    }
}
