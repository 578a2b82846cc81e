//! Rendering of tiles finer than the scene through `crate::enhance`: the raster side, which
//! decides the enlargement factor, warps the work grid and finds the scene's dark object.

use std::time::Instant;

use serde_json::{Value, json};

use super::{RasterError, RasterSource, Resampling, encode, render};
use crate::enhance::model::SuperResolution;
use crate::enhance::{self, Applied, DarkObject, EnhanceRequest, SourceEnhance};
use crate::format::TileFormat;
use crate::tile::{self, TileCoord};

/// Maximum side, in pixels, of the whole-scene image that the dark object is taken from.
const DARK_SAMPLE_PIXELS: f64 = 512.0;

/// RGBA pixels of a tile and the enhancement applied to them, if any.
pub type EnhancedRgba = (Vec<u8>, Option<Applied>);

/// An encoded tile and the enhancement applied to it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedTile {
    pub bytes: Vec<u8>,
    pub enhancement: Option<Applied>,
}

impl RasterSource {
    /// Returns the ratio of the scene's ground pixel size to the pixels of `tile` at
    /// `tile_size`, at the tile's centre latitude. Above 1 the tile requests finer pixels than
    /// the scene has.
    pub fn enlargement_factor(&self, tile: TileCoord, tile_size: u32) -> f64 {
        let (_, latitude) = tile.center_lonlat();
        enhance::enlargement_factor(
            self.native_ground_resolution(),
            tile.bounds_mercator().width(),
            tile_size,
            latitude,
        )
    }

    /// Returns the scene's ground pixel size in metres at its centre, from its pixel size in
    /// Web Mercator. The file's own units are not used because they are not ground metres in
    /// EPSG:3857 or in degrees.
    fn native_ground_resolution(&self) -> f64 {
        let bounds = self.info.bounds_lonlat;
        let latitude = f64::midpoint(bounds.min_y, bounds.max_y);
        self.info.resolution_mercator * latitude.to_radians().cos()
    }

    /// Returns the lowest zoom whose `tile_size` tiles at the scene's centre are enhanced by
    /// default, or `None` when the source is configured with `enhance = "none"` or nearest
    /// resampling. The factor grows with latitude, so a tall scene's tiles far from the centre
    /// may start a zoom earlier or later. The zoom may lie above `maxzoom`.
    pub fn enhanced_from_zoom(&self, tile_size: u32) -> Option<u8> {
        if self.options.enhance == SourceEnhance::None
            || self.options.resampling == Resampling::Nearest
        {
            return None;
        }
        let centre = self.info.bounds_lonlat;
        let latitude = f64::midpoint(centre.min_y, centre.max_y);
        (0..=tile::MAX_ZOOM).find(|&z| {
            let width = tile::resolution(z, tile_size) * f64::from(tile_size);
            enhance::enlargement_factor(self.native_ground_resolution(), width, tile_size, latitude)
                > enhance::MIN_FACTOR
        })
    }

    /// Describes this source's enhancement for TileJSON: from which zoom 256-pixel and
    /// 512-pixel (`@2x`) tiles are enhanced, the steps, and the factor of 256-pixel tiles at
    /// `maxzoom`. `Value::Null` when the source is not enhanced by default.
    pub fn enhancement_tilejson(&self) -> Value {
        let Some(from_zoom) = self.enhanced_from_zoom(256) else {
            return Value::Null;
        };
        let steps = self.options.enhance_steps();
        let mut names = vec!["resample=lanczos3", "sharpen"];
        if steps.clahe {
            names.push("clahe");
        }
        if steps.haze {
            names.insert(0, "haze=dark-object");
        }
        let centre = self.info.bounds_lonlat;
        let latitude = f64::midpoint(centre.min_y, centre.max_y);
        let maxzoom_factor = enhance::enlargement_factor(
            self.native_ground_resolution(),
            tile::resolution(self.maxzoom, 256) * 256.0,
            256,
            latitude,
        );
        json!({
            "from_zoom": from_zoom,
            "from_zoom_512": self.enhanced_from_zoom(512),
            "steps": names.join("; "),
            "factor_at_maxzoom": (maxzoom_factor * 100.0).round() / 100.0,
            "header": enhance::HEADER,
            "model": self.network.as_ref().map(SuperResolution::name),
        })
    }

    /// Renders `tile` like [`RasterSource::render`], and enhances it when its pixels are more
    /// than [`enhance::MIN_FACTOR`] times finer than the scene's and `request`, with this
    /// source's options, selects steps. A source or request with `nearest` resampling is
    /// enhanced only when the request names steps, because nearest-neighbour data such as
    /// class maps must not be smoothed.
    pub fn render_enhanced(
        &self,
        tile: TileCoord,
        tile_size: u32,
        format: TileFormat,
        resampling: Resampling,
        request: EnhanceRequest,
        deadline: Instant,
    ) -> Result<Option<RenderedTile>, RasterError> {
        let Some(steps) = self.steps_for(tile, tile_size, resampling, request) else {
            let bytes = self.render(tile, tile_size, format, resampling, deadline)?;
            return Ok(bytes.map(|bytes| RenderedTile {
                bytes,
                enhancement: None,
            }));
        };
        let Some((rgba, applied)) =
            self.enhance_rgba(tile, tile_size, resampling, steps, deadline)?
        else {
            return Ok(None);
        };
        let bytes = encode::encode_rgba(&rgba, tile_size, tile_size, format)?;
        Ok(Some(RenderedTile {
            bytes,
            enhancement: Some(applied),
        }))
    }

    /// Renders `tile` as RGBA pixels, enhanced as [`RasterSource::render_enhanced`] decides,
    /// with the enhancement applied if any. A collection composites its scenes from these.
    pub fn render_rgba_enhanced(
        &self,
        tile: TileCoord,
        tile_size: u32,
        resampling: Resampling,
        request: EnhanceRequest,
        deadline: Instant,
    ) -> Result<Option<EnhancedRgba>, RasterError> {
        match self.steps_for(tile, tile_size, resampling, request) {
            None => Ok(self
                .render_rgba(tile, tile_size, resampling, deadline)?
                .map(|rgba| (rgba, None))),
            Some(steps) => Ok(self
                .enhance_rgba(tile, tile_size, resampling, steps, deadline)?
                .map(|(rgba, applied)| (rgba, Some(applied)))),
        }
    }

    /// Returns the steps to apply to `tile`, or `None` when it is served plainly: the tile is
    /// not finer than the scene by more than [`enhance::MIN_FACTOR`], or the source and
    /// request select no enhancement.
    fn steps_for(
        &self,
        tile: TileCoord,
        tile_size: u32,
        resampling: Resampling,
        request: EnhanceRequest,
    ) -> Option<enhance::Steps> {
        let request = match request {
            EnhanceRequest::Auto if resampling == Resampling::Nearest => EnhanceRequest::None,
            other => other,
        };
        let steps = enhance::resolve(self.options.enhance, self.options.enhance_steps(), request);
        let factor = self.enlargement_factor(tile, tile_size);
        steps.filter(|_| factor > enhance::MIN_FACTOR)
    }

    /// Warps the tile's extent and margin at about native resolution and enhances it into
    /// `tile_size` RGBA pixels, or `None` when no pixel has data.
    fn enhance_rgba(
        &self,
        tile: TileCoord,
        tile_size: u32,
        resampling: Resampling,
        steps: enhance::Steps,
        deadline: Instant,
    ) -> Result<Option<(Vec<u8>, Applied)>, RasterError> {
        let factor = self.enlargement_factor(tile, tile_size);
        let network = self.network.as_ref().filter(|_| steps.model);
        let model_radius = network.map_or(0, |network| network.receptive_radius() as u32);

        let geometry = enhance::geometry(factor, tile_size, steps, model_radius);
        let side = geometry.work_pixels() as usize;
        let work_bounds = geometry.work_bounds(&tile.bounds_mercator());
        let Some(work) =
            render::render_area_rgba(self, &work_bounds, (side, side), resampling, deadline)?
        else {
            return Ok(None);
        };
        let dark = if steps.haze {
            self.dark_object(deadline)
        } else {
            None
        };
        let (mut rgba, applied) =
            enhance::enhance_area(&work, &geometry, steps, dark.as_ref(), network);
        if let Some(nodata) = self.eight_bit_nodata() {
            keep_off_nodata(&mut rgba, nodata);
        }
        if rgba.chunks_exact(4).all(|pixel| pixel[3] == 0) {
            return Ok(None);
        }
        Ok(Some((rgba, applied)))
    }

    /// Returns the nodata value of 8-bit data served without a stretch, which a plain warp
    /// never shows as an opaque colour.
    fn eight_bit_nodata(&self) -> Option<u8> {
        if self.stretch.is_some() {
            return None;
        }
        let nodata = self
            .options
            .nodata
            .or_else(|| self.info.bands.first().and_then(|band| band.nodata))?;
        (0.0..=255.0)
            .contains(&nodata)
            .then(|| nodata.round() as u8)
    }

    /// Returns the scene's dark object, found once from a warp of the whole scene at most
    /// 512 pixels a side. A failed warp is logged and retried by the next request for haze
    /// correction. Until then tiles are served without it, and their header leaves it out.
    fn dark_object(&self, deadline: Instant) -> Option<DarkObject> {
        if let Some(dark) = self.dark_object.get() {
            return Some(*dark);
        }
        let bounds = self.info.bounds_mercator;
        let scale = DARK_SAMPLE_PIXELS / bounds.width().max(bounds.height());
        let size = (
            (bounds.width() * scale).ceil().max(1.0) as usize,
            (bounds.height() * scale).ceil().max(1.0) as usize,
        );
        // NOTE: for a large raster without overviews this warp reads every pixel. It may then
        // run until the tile's deadline and fail, and haze correction is left out.
        let sample = render::render_area_rgba(self, &bounds, size, Resampling::Bilinear, deadline);
        match sample {
            Ok(Some(rgba)) => {
                let dark = enhance::dark_object(&rgba)?;
                // Another thread may have set it first, to the same value.
                let _ = self.dark_object.set(dark);
                tracing::debug!(path = %self.path.display(), values = ?dark.values, "dark object found");
                Some(dark)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "finding the dark object for haze correction failed");
                None
            }
        }
    }
}

/// Moves opaque pixels whose colour equals the nodata value in every band one step towards
/// mid-grey. Sharpening can push dark data onto the nodata value, and a client that treats that
/// value as empty (as a JPEG tile's reader must) would then show data as missing.
fn keep_off_nodata(rgba: &mut [u8], nodata: u8) {
    let nudged = if nodata < 128 { nodata + 1 } else { nodata - 1 };
    for pixel in rgba.chunks_exact_mut(4) {
        if pixel[3] != 0 && pixel[..3].iter().all(|&value| value == nodata) {
            pixel[..3].fill(nudged);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodata_colour_is_nudged_only_when_opaque() {
        let mut rgba = vec![0, 0, 0, 255, 0, 0, 0, 0, 0, 5, 0, 255];
        keep_off_nodata(&mut rgba, 0);
        assert_eq!(rgba, vec![1, 1, 1, 255, 0, 0, 0, 0, 0, 5, 0, 255]);
        let mut white = vec![255, 255, 255, 255];
        keep_off_nodata(&mut white, 255);
        assert_eq!(white, vec![254, 254, 254, 255]);
    }
}
