//! Drawing a static map's display list on a PDF page: paths stay paths, images keep their
//! own pixels, and text stays text.

use std::sync::Arc;

use krilla::color::rgb;
use krilla::geom::{Path, PathBuilder, Point, Size, Transform};
use krilla::image::{BitsPerComponent, CustomImage, Image, ImageColorspace};
use krilla::num::NormalizedF32;
use krilla::paint::{self, Fill, Stroke, StrokeDash};
use krilla::surface::Surface;
use krilla::text::TextDirection;

use super::PdfError;
use super::text::Typeface;
use crate::map::scene::{
    self, FillRule, Group, ImageItem, Item, LineCap, LineJoin, PathCommand, PathItem, Rgba,
    RgbaImage, TextAnchor, TextItem,
};

/// Draws `items` in order on `surface`, whose transform already maps page units to points.
pub(super) fn draw_items(surface: &mut Surface<'_>, items: &[Item]) -> Result<(), PdfError> {
    for item in items {
        match item {
            Item::Path(path) => draw_path(surface, path),
            Item::Image(image) => draw_image(surface, image),
            Item::Text(text) => draw_text(surface, text)?,
            Item::Group(group) => draw_group(surface, group)?,
        }
    }
    Ok(())
}

fn draw_group(surface: &mut Surface<'_>, group: &Group) -> Result<(), PdfError> {
    let clip = group.clip.and_then(|rect| rect_path(&rect));
    if let Some(clip) = &clip {
        surface.push_clip_path(clip, &paint::FillRule::NonZero);
    }
    let drawn = draw_items(surface, &group.items);
    if clip.is_some() {
        surface.pop();
    }
    drawn
}

/// Converts a colour and an opacity to krilla's paint and opacity.
fn paint_of(colour: Rgba, opacity: f64) -> (paint::Paint, NormalizedF32) {
    let alpha = (f32::from(colour.a) / 255.0) * opacity.clamp(0.0, 1.0) as f32;
    (
        rgb::Color::new(colour.r, colour.g, colour.b).into(),
        NormalizedF32::new(alpha.clamp(0.0, 1.0)).unwrap_or(NormalizedF32::ONE),
    )
}

fn point(point: scene::Point) -> (f32, f32) {
    (point.x as f32, point.y as f32)
}

fn build_path(commands: &[PathCommand]) -> Option<Path> {
    let mut builder = PathBuilder::new();
    for command in commands {
        match *command {
            PathCommand::MoveTo(to) => {
                let (x, y) = point(to);
                builder.move_to(x, y);
            }
            PathCommand::LineTo(to) => {
                let (x, y) = point(to);
                builder.line_to(x, y);
            }
            PathCommand::CubicTo(first, second, to) => {
                let (x1, y1) = point(first);
                let (x2, y2) = point(second);
                let (x, y) = point(to);
                builder.cubic_to(x1, y1, x2, y2, x, y);
            }
            PathCommand::Close => builder.close(),
        }
    }
    builder.finish()
}

pub(super) fn rect_path(rect: &scene::Rect) -> Option<Path> {
    let rect = krilla::geom::Rect::from_xywh(
        rect.x as f32,
        rect.y as f32,
        rect.width as f32,
        rect.height as f32,
    )?;
    let mut builder = PathBuilder::new();
    builder.push_rect(rect);
    builder.finish()
}

fn draw_path(surface: &mut Surface<'_>, item: &PathItem) {
    // A path with fewer than two points draws nothing, and krilla cannot build it.
    let Some(path) = build_path(&item.commands) else {
        return;
    };
    let fill = item.fill.map(|fill| {
        let (paint, opacity) = paint_of(fill.colour, fill.opacity);
        Fill {
            paint,
            opacity,
            rule: match fill.rule {
                FillRule::NonZero => paint::FillRule::NonZero,
                FillRule::EvenOdd => paint::FillRule::EvenOdd,
            },
        }
    });
    let stroke = item.stroke.as_ref().map(|stroke| {
        let (paint, opacity) = paint_of(stroke.colour, stroke.opacity);
        Stroke {
            paint,
            width: stroke.width as f32,
            line_cap: match stroke.cap {
                LineCap::Butt => paint::LineCap::Butt,
                LineCap::Round => paint::LineCap::Round,
                LineCap::Square => paint::LineCap::Square,
            },
            line_join: match stroke.join {
                LineJoin::Miter => paint::LineJoin::Miter,
                LineJoin::Round => paint::LineJoin::Round,
                LineJoin::Bevel => paint::LineJoin::Bevel,
            },
            opacity,
            dash: (!stroke.dash.is_empty()).then(|| StrokeDash {
                array: stroke.dash.iter().map(|&length| length as f32).collect(),
                offset: 0.0,
            }),
            ..Stroke::default()
        }
    });
    surface.set_fill(fill);
    surface.set_stroke(stroke);
    surface.draw_path(&path);
    surface.set_fill(None);
    surface.set_stroke(None);
}

/// The pixels of an image split into colour and alpha planes, as PDF image XObjects store
/// them. `alpha` is `None` when every pixel is opaque, so no soft mask is written.
#[derive(Clone)]
struct Planes {
    size: (u32, u32),
    colour: Arc<Vec<u8>>,
    alpha: Option<Arc<Vec<u8>>>,
    /// A digest of the pixels, so that krilla embeds an image drawn twice once.
    digest: u64,
}

impl std::hash::Hash for Planes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.size.hash(state);
        self.digest.hash(state);
    }
}

impl CustomImage for Planes {
    fn color_channel(&self) -> &[u8] {
        &self.colour
    }

    fn alpha_channel(&self) -> Option<&[u8]> {
        self.alpha.as_deref().map(Vec::as_slice)
    }

    fn bits_per_component(&self) -> BitsPerComponent {
        BitsPerComponent::Eight
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn icc_profile(&self) -> Option<&[u8]> {
        None
    }

    fn color_space(&self) -> ImageColorspace {
        ImageColorspace::Rgb
    }
}

impl Planes {
    fn split(image: &RgbaImage) -> Planes {
        let pixels = image.width as usize * image.height as usize;
        let mut colour = Vec::with_capacity(pixels * 3);
        let mut alpha = Vec::with_capacity(pixels);
        for pixel in image.pixels.chunks_exact(4) {
            colour.extend_from_slice(&pixel[..3]);
            alpha.push(pixel[3]);
        }
        let opaque = alpha.iter().all(|&value| value == u8::MAX);
        Planes {
            size: (image.width, image.height),
            digest: xxhash_rust::xxh3::xxh3_64(&image.pixels),
            colour: Arc::new(colour),
            alpha: (!opaque).then(|| Arc::new(alpha)),
        }
    }
}

fn draw_image(surface: &mut Surface<'_>, item: &ImageItem) {
    let RgbaImage {
        width,
        height,
        pixels,
    } = item.image.as_ref();
    let Some(size) = Size::from_wh(item.rect.width as f32, item.rect.height as f32) else {
        return;
    };
    if *width == 0 || *height == 0 || pixels.len() != *width as usize * *height as usize * 4 {
        tracing::warn!(
            width,
            height,
            bytes = pixels.len(),
            "skipped an image whose pixel count does not match its size"
        );
        return;
    }
    let image = match Image::from_custom(Planes::split(&item.image), item.smooth) {
        Ok(image) => image,
        Err(error) => {
            tracing::warn!(%error, width, height, "skipped an image that krilla rejected");
            return;
        }
    };
    let opacity =
        NormalizedF32::new(item.opacity.clamp(0.0, 1.0) as f32).unwrap_or(NormalizedF32::ONE);
    let translucent = opacity != NormalizedF32::ONE;
    surface.push_transform(&Transform::from_translate(
        item.rect.x as f32,
        item.rect.y as f32,
    ));
    if translucent {
        surface.push_opacity(opacity);
    }
    surface.draw_image(image, size);
    if translucent {
        surface.pop();
    }
    surface.pop();
}

/// Returns the baseline's start of a line of `width` whose `anchor` lies at the origin.
fn baseline_start(anchor: TextAnchor, width: f32, ascent: f32, descent: f32) -> (f32, f32) {
    let x = match anchor {
        TextAnchor::Left | TextAnchor::TopLeft | TextAnchor::BottomLeft => 0.0,
        TextAnchor::Right | TextAnchor::TopRight | TextAnchor::BottomRight => -width,
        TextAnchor::Center | TextAnchor::Top | TextAnchor::Bottom => -width / 2.0,
    };
    let y = match anchor {
        TextAnchor::Top | TextAnchor::TopLeft | TextAnchor::TopRight => ascent,
        TextAnchor::Bottom | TextAnchor::BottomLeft | TextAnchor::BottomRight => -descent,
        TextAnchor::Center | TextAnchor::Left | TextAnchor::Right => (ascent - descent) / 2.0,
    };
    (x, y)
}

fn draw_text(surface: &mut Surface<'_>, item: &TextItem) -> Result<(), PdfError> {
    let typeface = Typeface::load(&item.face)?;
    let size = item.size as f32;
    let (x, y) = baseline_start(
        item.anchor,
        typeface.width(&item.text, size),
        typeface.ascent(size),
        typeface.descent(size),
    );
    let (px, py) = point(item.position);
    surface.push_transform(&Transform::from_translate(px, py));
    surface.push_transform(&Transform::from_rotate(item.rotation as f32));
    let start = Point::from_xy(x, y);

    if let Some(halo) = item.halo {
        // The halo is drawn as outlines, so that text extraction finds each label once.
        let (paint, opacity) = paint_of(halo.colour, 1.0);
        surface.set_fill(None);
        surface.set_stroke(Some(Stroke {
            paint,
            opacity,
            width: (2.0 * halo.width) as f32,
            line_join: paint::LineJoin::Round,
            ..Stroke::default()
        }));
        surface.draw_text(
            start,
            typeface.font.clone(),
            size,
            &item.text,
            true,
            TextDirection::Auto,
        );
        surface.set_stroke(None);
    }

    let (paint, opacity) = paint_of(item.colour, 1.0);
    surface.set_fill(Some(Fill {
        paint,
        opacity,
        rule: paint::FillRule::NonZero,
    }));
    surface.draw_text(
        start,
        typeface.font.clone(),
        size,
        &item.text,
        false,
        TextDirection::Auto,
    );
    surface.set_fill(None);
    surface.pop();
    surface.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_follows_anchor() {
        let cases = [
            (TextAnchor::TopLeft, (0.0, 8.0)),
            (TextAnchor::Top, (-50.0, 8.0)),
            (TextAnchor::TopRight, (-100.0, 8.0)),
            (TextAnchor::Left, (0.0, 3.0)),
            (TextAnchor::Center, (-50.0, 3.0)),
            (TextAnchor::Right, (-100.0, 3.0)),
            (TextAnchor::BottomLeft, (0.0, -2.0)),
            (TextAnchor::Bottom, (-50.0, -2.0)),
            (TextAnchor::BottomRight, (-100.0, -2.0)),
        ];
        for (anchor, expected) in cases {
            assert_eq!(
                baseline_start(anchor, 100.0, 8.0, 2.0),
                expected,
                "{anchor:?}"
            );
        }
    }

    #[test]
    fn opaque_image_has_no_alpha_plane() {
        let opaque = RgbaImage {
            width: 2,
            height: 1,
            pixels: vec![10, 20, 30, 255, 40, 50, 60, 255],
        };
        let planes = Planes::split(&opaque);
        assert_eq!(planes.colour.as_slice(), &[10, 20, 30, 40, 50, 60]);
        assert!(planes.alpha.is_none());

        let translucent = RgbaImage {
            pixels: vec![10, 20, 30, 255, 40, 50, 60, 0],
            ..opaque
        };
        let planes = Planes::split(&translucent);
        assert_eq!(
            planes.alpha.as_deref().map(Vec::as_slice),
            Some(&[255, 0][..])
        );
    }

    #[test]
    fn paint_combines_alpha_and_opacity() {
        let (_, opacity) = paint_of(Rgba::new(0, 0, 0, 128), 0.5);
        assert!((opacity.get() - 0.251).abs() < 0.01, "{}", opacity.get());
        let (_, opacity) = paint_of(Rgba::BLACK, 2.0);
        assert_eq!(opacity, NormalizedF32::ONE);
    }
}
