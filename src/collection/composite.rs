//! Compositing of scene tiles, first on top.

/// A tile being composited from scene tiles, each placed below those before it.
#[derive(Debug)]
pub(super) struct Canvas {
    /// Straight (not premultiplied) RGBA, or `None` until a scene adds pixels.
    rgba: Option<Vec<u8>>,
    pixels: usize,
}

impl Canvas {
    pub(super) fn new(tile_size: u32) -> Self {
        Self {
            rgba: None,
            pixels: tile_size as usize * tile_size as usize,
        }
    }

    /// Places `below` (straight RGBA of the canvas's size) under the pixels already there, by
    /// the "over" operator. An opaque pixel on top hides it and a transparent one shows it.
    /// The partly transparent edges that resampling leaves at a scene's nodata blend with it.
    pub(super) fn add_below(&mut self, below: &[u8]) {
        debug_assert_eq!(below.len(), self.pixels * 4, "scene tile of another size");
        let Some(top) = &mut self.rgba else {
            self.rgba = Some(below.to_vec());
            return;
        };
        for (pixel, under) in top.chunks_exact_mut(4).zip(below.chunks_exact(4)) {
            let top_alpha = pixel[3];
            if top_alpha == 255 || under[3] == 0 {
                continue;
            }
            if top_alpha == 0 {
                pixel.copy_from_slice(under);
                continue;
            }
            let a_top = f32::from(top_alpha) / 255.0;
            let a_under = f32::from(under[3]) / 255.0 * (1.0 - a_top);
            let alpha = a_top + a_under;
            for channel in 0..3 {
                let value = (f32::from(pixel[channel]) * a_top
                    + f32::from(under[channel]) * a_under)
                    / alpha;
                pixel[channel] = value.round().clamp(0.0, 255.0) as u8;
            }
            pixel[3] = (alpha * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Returns whether every pixel is opaque, so that scenes further down cannot show.
    pub(super) fn is_opaque(&self) -> bool {
        self.rgba
            .as_ref()
            .is_some_and(|rgba| rgba.chunks_exact(4).all(|pixel| pixel[3] == 255))
    }

    /// Returns the composited pixels, or `None` when no pixel has data.
    pub(super) fn into_rgba(self) -> Option<Vec<u8>> {
        self.rgba
            .filter(|rgba| rgba.chunks_exact(4).any(|pixel| pixel[3] != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a 2 x 2 tile from four RGBA pixels.
    fn tile(pixels: [[u8; 4]; 4]) -> Vec<u8> {
        pixels.concat()
    }

    #[test]
    fn first_scene_stays_on_top() {
        let mut canvas = Canvas::new(2);
        let red = [255, 0, 0, 255];
        let blue = [0, 0, 255, 255];
        let clear = [0, 0, 0, 0];
        canvas.add_below(&tile([red, clear, red, clear]));
        assert!(!canvas.is_opaque(), "half the canvas is empty");
        canvas.add_below(&tile([blue, blue, clear, clear]));
        assert!(!canvas.is_opaque(), "one pixel is still empty");
        canvas.add_below(&tile([blue, blue, blue, blue]));
        assert!(canvas.is_opaque());
        let rgba = canvas.into_rgba().expect("pixels");
        assert_eq!(&rgba[0..4], &red, "top scene wins where both have data");
        assert_eq!(
            &rgba[4..8],
            &blue,
            "second scene fills the first one's nodata"
        );
        assert_eq!(&rgba[8..12], &red);
        assert_eq!(&rgba[12..16], &blue, "third scene fills the rest");
    }

    #[test]
    fn partial_alpha_blends_with_the_scene_below() {
        let mut canvas = Canvas::new(1);
        canvas.add_below(&[200, 0, 0, 128]);
        canvas.add_below(&[0, 0, 200, 255]);
        let rgba = canvas.into_rgba().expect("pixels");
        assert_eq!(rgba[3], 255, "an opaque scene below fills the edge");
        assert_eq!(rgba[0], 100, "red weighted by the top alpha");
        assert_eq!(rgba[2], 100, "blue weighted by what the top leaves");
    }

    #[test]
    fn empty_scenes_give_no_tile() {
        let mut canvas = Canvas::new(1);
        canvas.add_below(&[10, 20, 30, 0]);
        assert!(canvas.into_rgba().is_none());
        assert!(Canvas::new(1).into_rgba().is_none());
    }
}
