//! The enhancement of one tile: the work grid to warp, then haze, enlargement, sharpening and
//! CLAHE, then the crop of the margin.

use super::clahe::{self, CLIP_LIMIT, Grid};
use super::model::{SuperResolution, Tensor};
use super::resample::{Filter, Window, enlarge};
use super::sharpen::{blur_colour, sharpen_parameters, unsharp};
use super::{Applied, DarkObject, Steps};
use crate::tile::Bbox;

/// Work pixels beyond the output margin that the Lanczos3 filter reads when enlarging: its
/// support is 3 source pixels, and one more absorbs rounding of the window.
const FILTER_SUPPORT: u32 = 4;

/// The work grid of an enhanced tile. The tile's extent is divided into `work_size` pixels,
/// about as fine as the scene, and widened by `work_margin` of them on each side. Neighbouring
/// tiles' grids are one lattice, so both warp the same values along their shared border.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Ratio of the scene's ground pixel size to the tile's.
    pub factor: f64,
    pub tile_size: u32,
    /// Work pixels across the tile: `ceil(tile_size / factor)`.
    pub work_size: u32,
    /// Work pixels added on each side of the tile.
    pub work_margin: u32,
    /// Output pixels added on each side of the tile before the filters run, cropped last.
    pub out_margin: u32,
    /// CLAHE region size in output pixels: a quarter of the tile.
    pub clahe_region: u32,
}

/// Plans the work grid of a tile of `tile_size` pixels enlarged by `factor` with `steps`.
/// `model_radius` is the receptive radius of the network that `steps.model` runs, in work
/// pixels.
pub fn geometry(factor: f64, tile_size: u32, steps: Steps, model_radius: u32) -> Geometry {
    let work_size = (f64::from(tile_size) / factor).ceil().max(1.0) as u32;
    let scale = f64::from(tile_size) / f64::from(work_size);
    let clahe_region = (tile_size / 4).max(1);
    let mut out_margin = 2;
    if steps.clahe {
        out_margin += clahe_region;
    }
    let mut work_margin = (f64::from(out_margin) / scale).ceil() as u32 + FILTER_SUPPORT;
    if steps.model {
        work_margin += model_radius;
    } else if steps.sharpen {
        work_margin += sharpen_parameters(factor).radius() as u32;
    }
    Geometry {
        factor,
        tile_size,
        work_size,
        work_margin,
        out_margin,
        clahe_region,
    }
}

impl Geometry {
    /// Returns the work image's width and height in pixels.
    pub fn work_pixels(&self) -> u32 {
        self.work_size + 2 * self.work_margin
    }

    /// Returns the extent of the work image: the tile's extent widened by the work margin.
    pub fn work_bounds(&self, tile_bounds: &Bbox) -> Bbox {
        let pixel = tile_bounds.width() / f64::from(self.work_size);
        let margin = pixel * f64::from(self.work_margin);
        Bbox::new(
            tile_bounds.min_x - margin,
            tile_bounds.min_y - margin,
            tile_bounds.max_x + margin,
            tile_bounds.max_y + margin,
        )
    }
}

/// Enhances a tile from `work`, the RGBA pixels warped onto `geometry`'s work grid, and
/// returns the tile's RGBA pixels and the steps applied. Haze correction needs the scene's
/// `dark` object; without one it is left out and `Applied::haze` is false.
pub fn enhance_area(
    work: &[u8],
    geometry: &Geometry,
    steps: Steps,
    dark: Option<&DarkObject>,
    network: Option<&SuperResolution>,
) -> (Vec<u8>, Applied) {
    let scale = f64::from(geometry.tile_size) / f64::from(geometry.work_size);
    let out_margin_work = f64::from(geometry.out_margin) / scale;
    let window = Window {
        left: f64::from(geometry.work_margin) - out_margin_work,
        top: f64::from(geometry.work_margin) - out_margin_work,
        width: f64::from(geometry.work_size) + 2.0 * out_margin_work,
        height: f64::from(geometry.work_size) + 2.0 * out_margin_work,
    };
    let out_size = geometry.tile_size + 2 * geometry.out_margin;
    let grid = Grid {
        origin: geometry.out_margin as usize,
        region: geometry.clahe_region as usize,
    };
    let work_size = geometry.work_pixels();
    let (wide, applied) = enhance_image(
        work,
        (work_size, work_size),
        window,
        (out_size, out_size),
        grid,
        steps,
        geometry.factor,
        dark,
        network,
    );
    let tile = crop(
        &wide,
        out_size as usize,
        geometry.out_margin as usize,
        geometry.tile_size as usize,
    );
    (tile, applied)
}

/// Enhances `window` of `rgba` into an image of `out_size` pixels: haze correction, Lanczos3
/// enlargement, sharpening for `factor` and CLAHE on `grid`, as `steps` ask. This is the whole
/// pipeline of a tile without its margin, and what the quality measurement runs on whole
/// images.
#[allow(
    clippy::too_many_arguments,
    reason = "the quality measurement sets each of these apart"
)]
pub(crate) fn enhance_image(
    rgba: &[u8],
    size: (u32, u32),
    window: Window,
    out_size: (u32, u32),
    grid: Grid,
    steps: Steps,
    factor: f64,
    dark: Option<&DarkObject>,
    network: Option<&SuperResolution>,
) -> (Vec<u8>, Applied) {
    let mut applied = Applied {
        factor,
        sharpen: None,
        clahe: None,
        haze: false,
        model: None,
    };
    let dehazed;
    let source = match dark {
        Some(dark) if steps.haze => {
            let mut copy = rgba.to_vec();
            dark.subtract(&mut copy);
            applied.haze = true;
            dehazed = copy;
            &dehazed
        }
        _ => rgba,
    };

    let enlarge_to_out = |pixels: &[u8]| {
        enlarge(
            pixels,
            size.0,
            size.1,
            window,
            out_size.0,
            out_size.1,
            Filter::Lanczos3,
        )
    };
    let network = network.filter(|_| steps.model);
    let mut out = match network {
        Some(network) => {
            applied.model = Some(network.name());
            enlarge_with_network(network, source, size, window, out_size)
        }
        None => enlarge_to_out(source),
    };
    if steps.sharpen && network.is_none() {
        let parameters = sharpen_parameters(factor);
        let blurred = blur_colour(source, size.0 as usize, size.1 as usize, parameters.sigma);
        unsharp(&mut out, &enlarge_to_out(&blurred), parameters.amount);
        applied.sharpen = Some(parameters.amount);
    }

    if rgba
        .chunks_exact(4)
        .all(|pixel| pixel[3] == 0 || pixel[3] == 255)
    {
        snap_alpha(&mut out);
    }
    let (width, height) = (out_size.0 as usize, out_size.1 as usize);
    if steps.clahe {
        clahe::clahe(&mut out, width, height, grid, CLIP_LIMIT);
        applied.clahe = Some(CLIP_LIMIT);
    }
    (out, applied)
}

/// Enlarges `window` of `rgba` to `out_size` by running `network` on the whole image and
/// resizing its output with Lanczos3 to the remaining factor. Alpha is enlarged by repeating
/// each pixel's alpha over the network's output pixels.
fn enlarge_with_network(
    network: &SuperResolution,
    rgba: &[u8],
    size: (u32, u32),
    window: Window,
    out_size: (u32, u32),
) -> Vec<u8> {
    let input = Tensor {
        height: size.1 as usize,
        width: size.0 as usize,
        channels: 3,
        data: rgba
            .chunks_exact(4)
            .flat_map(|pixel| pixel[..3].iter().map(|&v| f32::from(v)))
            .collect(),
    };
    // NOTE: the network does not stop at the tile's deadline. ESRGAN-slim x2 took 0.4 s for a
    // work image of 118 x 118 pixels. Scaled by pixel count, a work grid nearly as fine as the
    // tile would take about 2 s for a 256-pixel tile and 7 s for a 512-pixel one (estimates).
    let output = network.run(&input);
    let scale = network.scale();
    let mut enlarged = Vec::with_capacity(output.width * output.height * 4);
    for (i, rgb) in output.data.chunks_exact(3).enumerate() {
        let (x, y) = (i % output.width / scale, i / output.width / scale);
        let alpha = rgba[(y * size.0 as usize + x) * 4 + 3];
        enlarged.extend(rgb.iter().map(|&v| v.round() as u8));
        enlarged.push(alpha);
    }
    let k = scale as f64;
    let window = Window {
        left: window.left * k,
        top: window.top * k,
        width: window.width * k,
        height: window.height * k,
    };
    enlarge(
        &enlarged,
        output.width as u32,
        output.height as u32,
        window,
        out_size.0,
        out_size.1,
        Filter::Lanczos3,
    )
}

/// Makes each pixel fully opaque or fully transparent at half coverage. When the source marks
/// each pixel as data or nodata, the enlarged alpha ramps smoothly across the edge of the data.
/// Snapping it keeps nodata transparent and puts the edge where the plain warp puts it.
fn snap_alpha(rgba: &mut [u8]) {
    for pixel in rgba.chunks_exact_mut(4) {
        pixel[3] = if pixel[3] >= 128 { 255 } else { 0 };
    }
}

/// Cuts the centre `size` x `size` pixels out of a square RGBA image `side` pixels wide,
/// leaving `margin` pixels on each side.
fn crop(rgba: &[u8], side: usize, margin: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size * size * 4);
    for y in margin..margin + size {
        let start = (y * side + margin) * 4;
        out.extend_from_slice(&rgba[start..start + size * 4]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_covers_the_tile_with_margins() {
        let cases = [
            (4.0, 256, Steps::sharpened()),
            (1.3, 256, Steps::sharpened()),
            (
                2.0,
                512,
                Steps {
                    sharpen: true,
                    clahe: true,
                    haze: true,
                    model: false,
                },
            ),
            (7.3, 256, Steps::default()),
            (
                3.0,
                256,
                Steps {
                    sharpen: true,
                    clahe: false,
                    haze: false,
                    model: true,
                },
            ),
        ];
        for (factor, tile_size, steps) in cases {
            let geometry = geometry(factor, tile_size, steps, 10);
            let scale = f64::from(tile_size) / f64::from(geometry.work_size);
            assert!(scale >= 1.0, "{factor}: scale {scale}");
            assert!(scale <= factor + 1e-9, "{factor}: scale {scale}");
            let mut margin_needed = f64::from(geometry.out_margin) / scale + 3.0;
            if steps.model {
                margin_needed += 10.0;
            } else if steps.sharpen {
                margin_needed += sharpen_parameters(factor).radius() as f64;
            }
            assert!(
                f64::from(geometry.work_margin) >= margin_needed,
                "{factor}: work margin {} for {margin_needed}",
                geometry.work_margin
            );
            if steps.clahe {
                assert!(geometry.out_margin > geometry.clahe_region, "{factor}");
            }
        }
    }

    #[test]
    fn work_bounds_share_a_lattice_with_the_neighbour() {
        let geometry = geometry(3.0, 256, Steps::sharpened(), 0);
        let left = Bbox::new(0.0, 0.0, 1000.0, 1000.0);
        let right = Bbox::new(1000.0, 0.0, 2000.0, 1000.0);
        let pixel = 1000.0 / f64::from(geometry.work_size);
        let offset = geometry.work_bounds(&right).min_x - geometry.work_bounds(&left).min_x;
        let steps = offset / pixel;
        assert!((steps - steps.round()).abs() < 1e-9, "{steps} work pixels");
    }

    #[test]
    fn flat_work_image_gives_flat_tile() {
        let geometry = geometry(
            4.0,
            256,
            Steps {
                sharpen: true,
                clahe: false,
                haze: false,
                model: false,
            },
            0,
        );
        let side = geometry.work_pixels() as usize;
        let work = [10_u8, 20, 30, 255].repeat(side * side);
        let (tile, applied) = enhance_area(&work, &geometry, Steps::sharpened(), None, None);
        assert_eq!(tile.len(), 256 * 256 * 4);
        assert!(tile.chunks_exact(4).all(|p| p == [10, 20, 30, 255]));
        assert!((applied.factor - 4.0).abs() < 1e-12);
        assert!(applied.sharpen.is_some());
        assert!(!applied.haze);
    }

    #[test]
    fn haze_without_dark_object_is_not_reported() {
        let steps = Steps {
            sharpen: false,
            clahe: false,
            haze: true,
            model: false,
        };
        let geometry = geometry(2.0, 256, steps, 0);
        let side = geometry.work_pixels() as usize;
        let work = [60_u8, 60, 60, 255].repeat(side * side);
        let (_, applied) = enhance_area(&work, &geometry, steps, None, None);
        assert!(!applied.haze);
        let dark = DarkObject { values: [30; 3] };
        let (tile, applied) = enhance_area(&work, &geometry, steps, Some(&dark), None);
        assert!(applied.haze);
        assert_eq!(tile[0], 34, "(60 - 30) * 255 / 225 = 34");
    }
}
