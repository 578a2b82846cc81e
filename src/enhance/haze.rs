//! Haze correction by dark-object subtraction.
//!
//! Atmospheric scattering adds a roughly constant brightness to each band, so the darkest
//! objects of a scene (deep water, shadow) are not black. Dark-object subtraction finds that
//! floor in each band and stretches the band so the floor becomes 0. The floor comes from the
//! whole scene, not from a tile, so every tile of a scene gets the same tone curve and tiles
//! meet without a seam.

/// Fraction of a scene's opaque pixels darker than its dark object in each band.
const DARK_FRACTION: f64 = 0.001;

/// The dark-object value of each colour band (red, green, blue) of a scene, in 0–255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DarkObject {
    pub values: [u8; 3],
}

/// Finds the dark object of a scene from a sample of its RGBA pixels: per band, the value
/// below which 0.1 % of the opaque pixels fall. Returns `None` when no pixel is opaque.
pub fn dark_object(rgba: &[u8]) -> Option<DarkObject> {
    let mut histograms = [[0_u64; 256]; 3];
    let mut count = 0_u64;
    for pixel in rgba.chunks_exact(4).filter(|p| p[3] == 255) {
        count += 1;
        for (histogram, &value) in histograms.iter_mut().zip(&pixel[..3]) {
            histogram[usize::from(value)] += 1;
        }
    }
    if count == 0 {
        return None;
    }
    let target = ((count as f64 * DARK_FRACTION).ceil() as u64).max(1);
    let mut values = [0_u8; 3];
    for (value, histogram) in values.iter_mut().zip(&histograms) {
        let mut seen = 0;
        for (level, &n) in histogram.iter().enumerate() {
            seen += n;
            if seen >= target {
                *value = level as u8;
                break;
            }
        }
    }
    Some(DarkObject { values })
}

impl DarkObject {
    /// Subtracts the dark object from each colour band of `rgba` and stretches the rest back
    /// to 0–255. Alpha is kept.
    pub fn subtract(&self, rgba: &mut [u8]) {
        let tables: Vec<[u8; 256]> = self
            .values
            .iter()
            .map(|&dark| {
                let mut table = [0_u8; 256];
                let range = 255.0 - f64::from(dark.min(254));
                for (level, out) in table.iter_mut().enumerate() {
                    let lifted = (level as f64 - f64::from(dark)).max(0.0) * 255.0 / range;
                    *out = lifted.round().clamp(0.0, 255.0) as u8;
                }
                table
            })
            .collect();
        for pixel in rgba.chunks_exact_mut(4) {
            for (value, table) in pixel[..3].iter_mut().zip(&tables) {
                *value = table[usize::from(*value)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_object_is_low_percentile_of_opaque_pixels() {
        let mut rgba = Vec::new();
        for i in 0..2000_u32 {
            let red = 30 + (i % 200) as u8;
            rgba.extend([red, 50, 70, 255]);
        }
        // Transparent black must not count as dark.
        rgba.extend([0, 0, 0, 0].repeat(500));
        let dark = dark_object(&rgba).expect("opaque pixels");
        assert_eq!(dark.values, [30, 50, 70]);
    }

    #[test]
    fn no_opaque_pixel_gives_none() {
        assert_eq!(dark_object(&[0, 0, 0, 0].repeat(10)), None);
    }

    #[test]
    fn subtraction_maps_floor_to_zero_and_keeps_white() {
        let dark = DarkObject {
            values: [30, 0, 55],
        };
        let mut rgba = vec![30, 0, 55, 255, 255, 255, 255, 128, 20, 100, 155, 255];
        dark.subtract(&mut rgba);
        assert_eq!(rgba[..4], [0, 0, 0, 255]);
        assert_eq!(rgba[4..8], [255, 255, 255, 128]);
        assert_eq!(rgba[8], 0, "values below the floor clamp to 0");
        assert_eq!(rgba[9], 100, "a band with no haze is unchanged");
        assert_eq!(rgba[10], 128, "(155 - 55) * 255 / 200 = 127.5");
    }
}
