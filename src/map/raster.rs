//! Rasterising a display list with tiny-skia, and PNG and JPEG encoding.

use tiny_skia::{
    FillRule as SkiaFillRule, FilterQuality, IntSize, LineCap as SkiaCap, LineJoin as SkiaJoin,
    Mask, Paint, PathBuilder, Pixmap, PixmapPaint, StrokeDash, Transform,
};

use super::scene::{
    Fill, FillRule, Group, ImageItem, Item, LineCap, LineJoin, PathCommand, PathItem, Rgba,
    RgbaImage, Scene, Stroke, TextItem,
};
use super::text;
use super::{MapError, OutputFormat};

/// JPEG quality of static maps, 1–100.
const JPEG_QUALITY: u8 = 90;

/// Draws the scene at its pixel ratio onto a transparent pixmap.
pub fn rasterise(scene: &Scene) -> Pixmap {
    let (width, height) = scene.page.pixel_size();
    let mut pixmap =
        Pixmap::new(width.max(1), height.max(1)).expect("the size is checked and not zero");
    let ratio = scene.page.pixel_ratio as f32;
    let transform = Transform::from_scale(ratio, ratio);
    draw_items(&mut pixmap, &scene.items, transform, None);
    pixmap
}

fn draw_items(pixmap: &mut Pixmap, items: &[Item], transform: Transform, mask: Option<&Mask>) {
    for item in items {
        match item {
            Item::Path(path) => draw_path(pixmap, path, transform, mask),
            Item::Image(image) => draw_image(pixmap, image, transform, mask),
            Item::Text(text) => draw_text(pixmap, text, transform, mask),
            Item::Group(group) => draw_group(pixmap, group, transform, mask),
        }
    }
}

fn draw_group(pixmap: &mut Pixmap, group: &Group, transform: Transform, mask: Option<&Mask>) {
    let Some(clip) = group.clip else {
        draw_items(pixmap, &group.items, transform, mask);
        return;
    };
    let Some(mut clip_mask) = Mask::new(pixmap.width(), pixmap.height()) else {
        return;
    };
    let Some(rect) = tiny_skia::Rect::from_xywh(
        clip.x as f32,
        clip.y as f32,
        clip.width as f32,
        clip.height as f32,
    ) else {
        return;
    };
    clip_mask.fill_path(
        &PathBuilder::from_rect(rect),
        SkiaFillRule::Winding,
        true,
        transform,
    );
    // NOTE: a group inside a clipped group is clipped by its own rectangle only.
    draw_items(pixmap, &group.items, transform, Some(&clip_mask));
}

fn paint_of(colour: Rgba, opacity: f64) -> Paint<'static> {
    let mut paint = Paint::default();
    let alpha = (f64::from(colour.a) * opacity.clamp(0.0, 1.0)).round() as u8;
    paint.set_color_rgba8(colour.r, colour.g, colour.b, alpha);
    paint.anti_alias = true;
    paint
}

fn skia_path(commands: &[PathCommand]) -> Option<tiny_skia::Path> {
    let mut builder = PathBuilder::new();
    for command in commands {
        match *command {
            PathCommand::MoveTo(p) => builder.move_to(p.x as f32, p.y as f32),
            PathCommand::LineTo(p) => builder.line_to(p.x as f32, p.y as f32),
            PathCommand::CubicTo(a, b, p) => builder.cubic_to(
                a.x as f32, a.y as f32, b.x as f32, b.y as f32, p.x as f32, p.y as f32,
            ),
            PathCommand::Close => builder.close(),
        }
    }
    builder.finish()
}

fn skia_stroke(stroke: &Stroke) -> tiny_skia::Stroke {
    let dash: Vec<f32> = stroke.dash.iter().map(|length| *length as f32).collect();
    tiny_skia::Stroke {
        width: stroke.width as f32,
        line_cap: match stroke.cap {
            LineCap::Butt => SkiaCap::Butt,
            LineCap::Round => SkiaCap::Round,
            LineCap::Square => SkiaCap::Square,
        },
        line_join: match stroke.join {
            LineJoin::Miter => SkiaJoin::Miter,
            LineJoin::Round => SkiaJoin::Round,
            LineJoin::Bevel => SkiaJoin::Bevel,
        },
        dash: if dash.len() >= 2 && dash.len().is_multiple_of(2) {
            StrokeDash::new(dash, 0.0)
        } else {
            None
        },
        ..tiny_skia::Stroke::default()
    }
}

fn draw_path(pixmap: &mut Pixmap, item: &PathItem, transform: Transform, mask: Option<&Mask>) {
    let Some(path) = skia_path(&item.commands) else {
        return;
    };
    if let Some(Fill {
        colour,
        opacity,
        rule,
    }) = item.fill
    {
        let rule = match rule {
            FillRule::NonZero => SkiaFillRule::Winding,
            FillRule::EvenOdd => SkiaFillRule::EvenOdd,
        };
        pixmap.fill_path(&path, &paint_of(colour, opacity), rule, transform, mask);
    }
    if let Some(stroke) = &item.stroke {
        pixmap.stroke_path(
            &path,
            &paint_of(stroke.colour, stroke.opacity),
            &skia_stroke(stroke),
            transform,
            mask,
        );
    }
}

/// Premultiplies straight RGBA into a pixmap.
fn pixmap_of(image: &RgbaImage) -> Option<Pixmap> {
    let mut data = image.pixels.clone();
    for pixel in data.chunks_exact_mut(4) {
        let alpha = u16::from(pixel[3]);
        for channel in &mut pixel[..3] {
            *channel = ((u16::from(*channel) * alpha + 127) / 255) as u8;
        }
    }
    Pixmap::from_vec(data, IntSize::from_wh(image.width, image.height)?)
}

fn draw_image(pixmap: &mut Pixmap, item: &ImageItem, transform: Transform, mask: Option<&Mask>) {
    let Some(source) = pixmap_of(&item.image) else {
        return;
    };
    let scale_x = item.rect.width / f64::from(item.image.width);
    let scale_y = item.rect.height / f64::from(item.image.height);
    let placement = Transform::from_row(
        scale_x as f32,
        0.0,
        0.0,
        scale_y as f32,
        item.rect.x as f32,
        item.rect.y as f32,
    );
    let paint = PixmapPaint {
        opacity: item.opacity.clamp(0.0, 1.0) as f32,
        quality: if item.smooth {
            FilterQuality::Bicubic
        } else {
            FilterQuality::Nearest
        },
        ..PixmapPaint::default()
    };
    pixmap.draw_pixmap(
        0,
        0,
        source.as_ref(),
        &paint,
        transform.pre_concat(placement),
        mask,
    );
}

fn draw_text(pixmap: &mut Pixmap, item: &TextItem, transform: Transform, mask: Option<&Mask>) {
    let Some(metrics) = text::measure(&item.face, &item.text, item.size) else {
        return;
    };
    let (x, y) = metrics.baseline_origin(item.anchor, item.position.x, item.position.y);
    let Some(path) = text::outline(&item.face, &item.text, item.size, x, y) else {
        return;
    };
    let transform = if item.rotation == 0.0 {
        transform
    } else {
        transform.pre_concat(Transform::from_rotate_at(
            item.rotation as f32,
            item.position.x as f32,
            item.position.y as f32,
        ))
    };
    if let Some(halo) = item.halo {
        let stroke = tiny_skia::Stroke {
            width: (halo.width * 2.0) as f32,
            line_join: SkiaJoin::Round,
            ..tiny_skia::Stroke::default()
        };
        pixmap.stroke_path(&path, &paint_of(halo.colour, 1.0), &stroke, transform, mask);
    }
    pixmap.fill_path(
        &path,
        &paint_of(item.colour, 1.0),
        SkiaFillRule::Winding,
        transform,
        mask,
    );
}

/// Encodes the rasterised scene as PNG (with alpha) or JPEG (over white).
pub fn encode(pixmap: &Pixmap, scene: &Scene, format: OutputFormat) -> Result<Vec<u8>, MapError> {
    let (width, height) = (pixmap.width(), pixmap.height());
    let rgba = straight_rgba(pixmap);
    let failed = |error: image::ImageError| MapError::Encode {
        format,
        message: error.to_string(),
    };
    let mut bytes = Vec::new();
    if format == OutputFormat::Jpeg {
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|pixel| {
                let alpha = u16::from(pixel[3]);
                let over_white = |channel: u8| {
                    ((u16::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255) as u8
                };
                [
                    over_white(pixel[0]),
                    over_white(pixel[1]),
                    over_white(pixel[2]),
                ]
            })
            .collect();
        bytes = crate::raster::encode::encode_jpeg(&rgb, width, height, JPEG_QUALITY).map_err(
            |error| MapError::Encode {
                format,
                message: error.to_string(),
            },
        )?;
    } else {
        let encoder = image::codecs::png::PngEncoder::new_with_quality(
            &mut bytes,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Adaptive,
        );
        image::ImageEncoder::write_image(
            encoder,
            &rgba,
            width,
            height,
            image::ExtendedColorType::Rgba8,
        )
        .map_err(failed)?;
    }
    // NOTE: the DPI is not written into PNG or JPEG metadata yet; print at `scene.page.dpi`.
    let _ = scene.page.dpi;
    Ok(bytes)
}

/// Returns the pixmap's pixels as straight RGBA.
pub fn straight_rgba(pixmap: &Pixmap) -> Vec<u8> {
    pixmap
        .pixels()
        .iter()
        .flat_map(|pixel| {
            let colour = pixel.demultiply();
            [colour.red(), colour.green(), colour.blue(), colour.alpha()]
        })
        .collect()
}
