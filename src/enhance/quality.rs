//! Measurement of enlargement quality: PSNR and SSIM of an enlarged coarse image against the
//! fine image it stands for, for the enhancement and for plain bilinear, bicubic and Lanczos3.
//!
//! Two kinds of pair are measured. A fine image reduced by area averaging and enlarged back
//! has a known truth on the same pixel grid. A file and its coarse copy made elsewhere (a
//! tenth-resolution Landsat copy, a Sentinel-2 preview) are aligned by their geotransforms, so
//! the coarse window that covers the fine image is enlarged onto the fine grid.

use std::path::{Path, PathBuf};

use gdal::Dataset;
use thiserror::Error;

use super::clahe::Grid;
use super::model::{SuperResolution, Tensor};
use super::pipeline::enhance_image;
use super::resample::{Filter, Window, enlarge, reduce_area};
use super::sharpen::{blur, gaussian_kernel};
use super::{DarkObject, Steps, dark_object};

#[derive(Debug, Error)]
pub enum QualityError {
    #[error("reading {path} for the quality measurement failed: {source}")]
    Read {
        path: PathBuf,
        source: gdal::errors::GdalError,
    },
    #[error("{path} has {count} bands: the quality measurement needs 3 (red, green, blue)")]
    NotRgb { path: PathBuf, count: usize },
    #[error("{coarse} does not cover {fine} with north-up pixels: the pair cannot be aligned")]
    NotAligned { fine: PathBuf, coarse: PathBuf },
}

/// RGBA pixels of a whole image, or of a window of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub rgba: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Image {
    /// Cuts out `width` x `height` pixels from (`left`, `top`).
    #[must_use]
    pub fn crop(&self, left: u32, top: u32, width: u32, height: u32) -> Image {
        let mut rgba = Vec::with_capacity(width as usize * height as usize * 4);
        for y in top..top + height {
            let start = (y as usize * self.width as usize + left as usize) * 4;
            rgba.extend_from_slice(&self.rgba[start..start + width as usize * 4]);
        }
        Image {
            rgba,
            width,
            height,
        }
    }
}

/// Reads the first three bands of a file as RGBA. A pixel whose three bands all equal the first
/// band's nodata value is transparent.
/// Returns the image and its geotransform.
pub fn read_image(path: &Path) -> Result<(Image, [f64; 6]), QualityError> {
    let error = |source| QualityError::Read {
        path: path.to_owned(),
        source,
    };
    let dataset = Dataset::open(path).map_err(error)?;
    if dataset.raster_count() < 3 {
        return Err(QualityError::NotRgb {
            path: path.to_owned(),
            count: dataset.raster_count(),
        });
    }

    let (width, height) = dataset.raster_size();
    let mut bands = Vec::with_capacity(3);
    for index in 1..=3 {
        let band = dataset.rasterband(index).map_err(error)?;
        let buffer = band
            .read_as::<u8>((0, 0), (width, height), (width, height), None)
            .map_err(error)?;
        bands.push(buffer.into_shape_and_vec().1);
    }

    let nodata = dataset
        .rasterband(1)
        .map_err(error)?
        .no_data_value()
        .map(|value| value.round().clamp(0.0, 255.0) as u8);
    let mut rgba = Vec::with_capacity(width * height * 4);
    for ((&red, &green), &blue) in bands[0].iter().zip(&bands[1]).zip(&bands[2]) {
        let colour = [red, green, blue];
        let empty = nodata.is_some_and(|nodata| colour.iter().all(|&v| v == nodata));
        rgba.extend(colour);
        rgba.push(if empty { 0 } else { 255 });
    }

    let transform = dataset.geo_transform().map_err(error)?;
    let image = Image {
        rgba,
        width: width as u32,
        height: height as u32,
    };
    Ok((image, transform))
}

/// PSNR in decibels and mean SSIM of a candidate against its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub psnr: f64,
    pub ssim: f64,
}

/// Compares the red, green and blue of `candidate` with `reference` over the pixels that are
/// opaque in both. PSNR is over all three bands. SSIM (Gaussian window of sigma 1.5, constants
/// K1 = 0.01 and K2 = 0.03) is the mean over the three bands of the pixels whose whole window
/// lies on such pixels. Panics when the images differ in size.
pub fn compare(reference: &Image, candidate: &Image) -> Score {
    assert_eq!(
        (reference.width, reference.height),
        (candidate.width, candidate.height),
        "images compared must have the same size"
    );
    let (width, height) = (reference.width as usize, reference.height as usize);
    let valid: Vec<bool> = reference
        .rgba
        .chunks_exact(4)
        .zip(candidate.rgba.chunks_exact(4))
        .map(|(a, b)| a[3] == 255 && b[3] == 255)
        .collect();
    let mut squared = 0.0;
    let mut count = 0_u64;
    for ((a, b), &ok) in reference
        .rgba
        .chunks_exact(4)
        .zip(candidate.rgba.chunks_exact(4))
        .zip(&valid)
    {
        if ok {
            for channel in 0..3 {
                let difference = f64::from(a[channel]) - f64::from(b[channel]);
                squared += difference * difference;
            }
            count += 3;
        }
    }
    let mse = squared / count.max(1) as f64;
    let psnr = if mse > 0.0 {
        10.0 * (255.0 * 255.0 / mse).log10()
    } else {
        f64::INFINITY
    };
    let ssim = (0..3)
        .map(|channel| ssim_band(reference, candidate, channel, &valid, width, height))
        .sum::<f64>()
        / 3.0;
    Score { psnr, ssim }
}

fn ssim_band(
    reference: &Image,
    candidate: &Image,
    channel: usize,
    valid: &[bool],
    width: usize,
    height: usize,
) -> f64 {
    const C1: f32 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f32 = (0.03 * 255.0) * (0.03 * 255.0);
    let kernel = gaussian_kernel(1.5);
    let radius = kernel.len() / 2;
    let plane = |image: &Image| -> Vec<f32> {
        image
            .rgba
            .chunks_exact(4)
            .map(|p| f32::from(p[channel]))
            .collect()
    };

    let x = plane(reference);
    let y = plane(candidate);
    let product =
        |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(p, q)| p * q).collect() };
    let mean_x = blur(&x, width, height, &kernel);
    let mean_y = blur(&y, width, height, &kernel);
    let mean_xx = blur(&product(&x, &x), width, height, &kernel);
    let mean_yy = blur(&product(&y, &y), width, height, &kernel);
    let mean_xy = blur(&product(&x, &y), width, height, &kernel);

    // A window counts when every pixel under it is valid: an eroded mask.
    let eroded = erode(valid, width, height, radius);
    let mut total = 0.0;
    let mut count = 0_u64;
    for i in 0..width * height {
        if !eroded[i] {
            continue;
        }
        let (mx, my) = (mean_x[i], mean_y[i]);
        let vx = mean_xx[i] - mx * mx;
        let vy = mean_yy[i] - my * my;
        let cov = mean_xy[i] - mx * my;
        let value =
            ((2.0 * mx * my + C1) * (2.0 * cov + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
        total += f64::from(value);
        count += 1;
    }
    total / count.max(1) as f64
}

/// Returns the pixels whose whole `radius` neighbourhood is valid and inside the image.
fn erode(valid: &[bool], width: usize, height: usize, radius: usize) -> Vec<bool> {
    let mut rows = vec![false; valid.len()];
    for y in 0..height {
        for x in radius..width.saturating_sub(radius) {
            rows[y * width + x] = (x - radius..=x + radius).all(|at| valid[y * width + at]);
        }
    }
    let mut out = vec![false; valid.len()];
    for y in radius..height.saturating_sub(radius) {
        for x in 0..width {
            out[y * width + x] = (y - radius..=y + radius).all(|at| rows[at * width + x]);
        }
    }
    out
}

/// A way to enlarge a coarse image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Plain(Filter),
    /// Tessera's enhancement with these steps.
    Enhanced(Steps),
}

impl Method {
    /// The methods of the quality table: plain filters, the default enhancement, and each
    /// contrast step apart.
    pub const ALL: [Method; 6] = [
        Method::Plain(Filter::Bilinear),
        Method::Plain(Filter::Bicubic),
        Method::Plain(Filter::Lanczos3),
        Method::Enhanced(Steps::sharpened()),
        Method::Enhanced(Steps {
            sharpen: true,
            clahe: true,
            haze: false,
            model: false,
        }),
        Method::Enhanced(Steps {
            sharpen: true,
            clahe: false,
            haze: true,
            model: false,
        }),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Plain(filter) => filter.name(),
            Self::Enhanced(Steps {
                clahe: false,
                haze: false,
                ..
            }) => "enhance (default)",
            Self::Enhanced(Steps { clahe: true, .. }) => "enhance + clahe",
            Self::Enhanced(Steps { haze: true, .. }) => "enhance + haze",
        }
    }

    /// Enlarges `window` of `coarse` to `width` x `height` pixels; `factor` sets the
    /// sharpening and `dark` the haze correction.
    pub fn enlarge(
        self,
        coarse: &Image,
        window: Window,
        (width, height): (u32, u32),
        factor: f64,
        dark: Option<&DarkObject>,
    ) -> Image {
        let rgba = match self {
            Self::Plain(filter) => enlarge(
                &coarse.rgba,
                coarse.width,
                coarse.height,
                window,
                width,
                height,
                filter,
            ),
            Self::Enhanced(steps) => {
                let grid = Grid {
                    origin: 0,
                    region: (width.min(height) / 4).max(1) as usize,
                };
                enhance_image(
                    &coarse.rgba,
                    (coarse.width, coarse.height),
                    window,
                    (width, height),
                    grid,
                    steps,
                    factor,
                    dark,
                    None,
                )
                .0
            }
        };
        Image {
            rgba,
            width,
            height,
        }
    }
}

/// One row of the quality table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub image: String,
    pub factor: f64,
    pub method: &'static str,
    pub score: Score,
}

/// Reduces `fine` by `factor` with area averaging, enlarges it back with every method, and
/// scores each against `fine` (cut to a whole number of blocks).
pub fn reduction_rows(name: &str, fine: &Image, factor: u32) -> Vec<Row> {
    let (coarse, width, height) = reduce_area(&fine.rgba, fine.width, fine.height, factor);
    let coarse = Image {
        rgba: coarse,
        width,
        height,
    };
    let reference = fine.crop(0, 0, width * factor, height * factor);
    let window = Window {
        left: 0.0,
        top: 0.0,
        width: f64::from(width),
        height: f64::from(height),
    };
    score_methods(name, &coarse, window, &reference, f64::from(factor))
}

/// Enlarges the part of the file `coarse` that covers the file `fine` onto `fine`'s pixel grid
/// with every method, and scores each against `fine`. Both files must be north-up and in one
/// CRS. The CRS is not compared, because a copy often names the same CRS differently (the
/// tenth-resolution Landsat copy has an unnamed datum on the WGS 84 ellipsoid).
///
/// `fine_window` (left, top, width, height in `fine`'s pixels) limits the comparison to part of
/// `fine`; `None` compares all of it.
pub fn pair_rows(
    name: &str,
    fine: &Path,
    coarse: &Path,
    fine_window: Option<[u32; 4]>,
) -> Result<Vec<Row>, QualityError> {
    let (mut fine_image, mut fine_transform) = read_image(fine)?;
    if let Some([left, top, width, height]) = fine_window {
        fine_image = fine_image.crop(left, top, width, height);
        fine_transform[0] += f64::from(left) * fine_transform[1];
        fine_transform[3] += f64::from(top) * fine_transform[5];
    }
    let (coarse_image, coarse_transform) = read_image(coarse)?;

    let window = covering_window(
        &fine_image,
        &fine_transform,
        &coarse_image,
        &coarse_transform,
    )
    .ok_or_else(|| QualityError::NotAligned {
        fine: fine.to_owned(),
        coarse: coarse.to_owned(),
    })?;
    let factor = coarse_transform[1] / fine_transform[1];
    Ok(score_methods(
        name,
        &coarse_image,
        window,
        &fine_image,
        factor,
    ))
}

/// Returns the window of `coarse` that covers `fine`, from their geotransforms, or `None` when
/// either is rotated or `fine` reaches more than half a coarse pixel beyond `coarse`.
fn covering_window(
    fine: &Image,
    fine_transform: &[f64; 6],
    coarse: &Image,
    coarse_transform: &[f64; 6],
) -> Option<Window> {
    let rotated = |t: &[f64; 6]| t[2] != 0.0 || t[4] != 0.0;
    if rotated(fine_transform) || rotated(coarse_transform) {
        return None;
    }
    let left = (fine_transform[0] - coarse_transform[0]) / coarse_transform[1];
    let top = (fine_transform[3] - coarse_transform[3]) / coarse_transform[5];
    let width = f64::from(fine.width) * fine_transform[1] / coarse_transform[1];
    let height = f64::from(fine.height) * fine_transform[5] / coarse_transform[5];
    let (coarse_width, coarse_height) = (f64::from(coarse.width), f64::from(coarse.height));
    if left < -0.5
        || top < -0.5
        || left + width > coarse_width + 0.5
        || top + height > coarse_height + 0.5
    {
        return None;
    }
    // Within half a pixel of the edge, the window is cut to the image.
    let (left, top) = (left.max(0.0), top.max(0.0));
    Some(Window {
        left,
        top,
        width: width.min(coarse_width - left),
        height: height.min(coarse_height - top),
    })
}

/// Enlarges `window` of `coarse` to the size of `reference` with every method and scores each.
fn score_methods(
    name: &str,
    coarse: &Image,
    window: Window,
    reference: &Image,
    factor: f64,
) -> Vec<Row> {
    let dark = dark_object(&coarse.rgba);
    Method::ALL
        .iter()
        .map(|method| {
            let enlarged = method.enlarge(
                coarse,
                window,
                (reference.width, reference.height),
                factor,
                dark.as_ref(),
            );
            Row {
                image: name.to_owned(),
                factor,
                method: method.name(),
                score: compare(reference, &enlarged),
            }
        })
        .collect()
}

/// Reduces `fine` by the network's scale with area averaging, enlarges it back with the
/// network, and scores the result against `fine` (cut to a whole number of blocks).
pub fn model_row(name: &str, fine: &Image, network: &SuperResolution) -> Row {
    let factor = network.scale() as u32;
    let (coarse, width, height) = reduce_area(&fine.rgba, fine.width, fine.height, factor);
    let reference = fine.crop(0, 0, width * factor, height * factor);
    let input = Tensor {
        height: height as usize,
        width: width as usize,
        channels: 3,
        data: coarse
            .chunks_exact(4)
            .flat_map(|pixel| pixel[..3].iter().map(|&v| f32::from(v)))
            .collect(),
    };
    let output = network.run(&input);
    let rgba = output
        .data
        .chunks_exact(3)
        .flat_map(|rgb| {
            [rgb[0], rgb[1], rgb[2]]
                .map(|v| v.round() as u8)
                .into_iter()
                .chain([255])
        })
        .collect();
    let enlarged = Image {
        rgba,
        width: output.width as u32,
        height: output.height as u32,
    };
    Row {
        image: name.to_owned(),
        factor: f64::from(factor),
        method: "esrgan-slim",
        score: compare(&reference, &enlarged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_image(width: u32, height: u32) -> Image {
        let rgba = (0..width * height)
            .flat_map(|i| {
                let v = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
                [v, v / 2, 255 - v, 255]
            })
            .collect();
        Image {
            rgba,
            width,
            height,
        }
    }

    #[test]
    fn identical_images_score_perfectly() {
        let image = noise_image(32, 32);
        let score = compare(&image, &image);
        assert!(score.psnr.is_infinite());
        assert!((score.ssim - 1.0).abs() < 1e-6, "{}", score.ssim);
    }

    #[test]
    fn psnr_of_a_constant_offset() {
        let image = noise_image(16, 16);
        let mut shifted = image.clone();
        for pixel in shifted.rgba.chunks_exact_mut(4) {
            for value in &mut pixel[..3] {
                *value = if *value < 250 { *value + 5 } else { *value - 5 };
            }
        }
        // Every value differs by 5: MSE 25, PSNR 10 log10(255² / 25) = 34.15 dB.
        let score = compare(&image, &shifted);
        assert!((score.psnr - 34.151).abs() < 0.01, "{}", score.psnr);
    }

    #[test]
    fn ssim_falls_with_noise() {
        let image = noise_image(40, 40);
        let flat = Image {
            rgba: [128, 64, 128, 255].repeat(1600),
            width: 40,
            height: 40,
        };
        let score = compare(&image, &flat);
        assert!(score.ssim < 0.1, "{}", score.ssim);
    }

    #[test]
    fn transparent_pixels_are_not_scored() {
        let image = noise_image(16, 16);
        let mut spoiled = image.clone();
        for pixel in spoiled.rgba.chunks_exact_mut(4).take(40) {
            pixel.copy_from_slice(&[0, 0, 0, 0]);
        }
        assert!(compare(&image, &spoiled).psnr.is_infinite());
    }

    #[test]
    fn methods_have_distinct_names() {
        let mut names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Method::ALL.len());
    }
}
