//! Symbol layers: icons from the sprite sheet and labels, placed once over the whole map with
//! collision boxes, so no label is cut at a tile edge or drawn over another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::MapContext;
use super::build::{Feature, anchor_points, colour_property, number_property};
use super::scene::{FontFace, Halo, ImageItem, Item, Rect, Rgba, RgbaImage, TextAnchor, TextItem};
use super::style::{self, Context, Layer};
use super::text;
use super::view::Frame;

/// The font used when a style names none that is installed: it covers Latin and Hangul.
pub const FALLBACK_FONT: &str = "Noto Sans CJK KR Regular";

/// Line height of multi-line labels, in ems.
const LINE_HEIGHT: f64 = 1.2;

/// Places symbols and remembers the boxes already taken.
#[derive(Debug)]
pub struct Placer {
    frame: Rect,
    taken: Vec<Rect>,
}

/// A label's lines laid out around its anchor.
struct LaidOut {
    items: Vec<TextItem>,
    bounds: Rect,
}

impl Placer {
    pub fn new(frame: Rect) -> Self {
        Self {
            frame,
            taken: Vec::new(),
        }
    }

    /// Places the icons and labels of `layer`'s features in order, each where it collides with
    /// nothing placed before unless the layer allows overlap, and appends them to `items`.
    /// Returns how many symbols were placed.
    pub fn place(
        &mut self,
        layer: &Layer,
        features: &[Feature<'_>],
        frame: &Frame,
        zoom: f64,
        map: &MapContext,
        items: &mut Vec<Item>,
    ) -> usize {
        let mut placed = 0;
        for feature in features {
            let context = Context {
                properties: &feature.properties,
                geometry: Some(feature.kind),
                zoom,
            };
            for point in anchor_points(feature.geometry) {
                let anchor = frame.to_page(point.x(), point.y());
                if self.place_one(layer, &context, anchor, map, items) {
                    placed += 1;
                }
            }
        }
        placed
    }

    fn place_one(
        &mut self,
        layer: &Layer,
        context: &Context<'_>,
        anchor: super::scene::Point,
        map: &MapContext,
        items: &mut Vec<Item>,
    ) -> bool {
        let layout = &layer.layout;
        let flag = |name: &str| {
            layout
                .get(name)
                .and_then(|value| style::evaluate(value, context))
                .and_then(|value| value.as_bool())
                .unwrap_or(false)
        };
        let icon = icon_item(layer, context, anchor, map);
        let label = label_items(layer, context, anchor, map);
        if icon.is_none() && label.is_none() {
            return false;
        }
        let inside = |rect: &Rect| overlaps(rect, &self.frame);
        let icon_fits = icon.as_ref().is_some_and(|icon| {
            inside(&icon.rect) && (flag("icon-allow-overlap") || !self.collides(&icon.rect))
        });
        let label_fits = label.as_ref().is_some_and(|label| {
            inside(&label.bounds) && (flag("text-allow-overlap") || !self.collides(&label.bounds))
        });
        // A symbol shows its icon and label together, unless one of them is optional.
        let show_icon =
            icon.is_some() && icon_fits && (label.is_none() || label_fits || flag("text-optional"));
        let show_label =
            label.is_some() && label_fits && (icon.is_none() || icon_fits || flag("icon-optional"));
        if let (true, Some(icon)) = (show_icon, icon) {
            self.taken.push(icon.rect);
            items.push(Item::Image(icon));
        }
        if let (true, Some(label)) = (show_label, label) {
            self.taken.push(label.bounds);
            items.extend(label.items.into_iter().map(Item::Text));
        }
        show_icon || show_label
    }

    fn collides(&self, rect: &Rect) -> bool {
        self.taken.iter().any(|taken| overlaps(taken, rect))
    }
}

fn overlaps(a: &Rect, b: &Rect) -> bool {
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

/// Builds the icon of a symbol from the 2x sprite sheet, centred on its anchor.
fn icon_item(
    layer: &Layer,
    context: &Context<'_>,
    anchor: super::scene::Point,
    map: &MapContext,
) -> Option<ImageItem> {
    let name = layer
        .layout
        .get("icon-image")
        .and_then(|value| style::evaluate(value, context))?;
    let name = style::substitute_tokens(name.as_str()?, context.properties);
    let sprites = map.sprites.as_ref().as_ref()?;
    let icon = sprite_icons(sprites).get(&name).cloned();
    let Some((image, ratio)) = icon else {
        tracing::debug!(layer = %layer.id, icon = %name, "icon not in the sprite sheet");
        return None;
    };
    let size = number_property(&layer.layout, "icon-size", context, 1.0);
    let width = f64::from(image.width) / ratio * size;
    let height = f64::from(image.height) / ratio * size;
    let opacity = number_property(&layer.paint, "icon-opacity", context, 1.0);
    Some(ImageItem {
        rect: Rect {
            x: anchor.x - width / 2.0,
            y: anchor.y - height / 2.0,
            width,
            height,
        },
        image,
        opacity,
        smooth: true,
    })
}

type IconTable = HashMap<String, (Arc<RgbaImage>, f64)>;

/// Returns an icon of the 2x sprite sheet.
pub fn icon_image(sprites: &crate::sprites::Sprites, name: &str) -> Option<Arc<RgbaImage>> {
    sprite_icons(sprites)
        .get(name)
        .map(|(image, _)| Arc::clone(image))
}

/// Cuts the 2x sprite sheet into icons once per sheet, keyed by a hash of its PNG, because
/// servers in one process may serve different icon folders.
fn sprite_icons(sprites: &crate::sprites::Sprites) -> Arc<IconTable> {
    static TABLES: OnceLock<Mutex<HashMap<u64, Arc<IconTable>>>> = OnceLock::new();
    let key = xxhash_rust::xxh3::xxh3_64(&sprites.retina.png);
    let tables = TABLES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut tables = tables
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let table = tables.entry(key).or_insert_with(|| {
        Arc::new(
            cut_sheet(&sprites.retina.png, &sprites.retina.json).unwrap_or_else(|error| {
                tracing::warn!(%error, "sprite sheet cannot be read: icons are not drawn on static maps");
                HashMap::new()
            }),
        )
    });
    Arc::clone(table)
}

fn cut_sheet(png: &[u8], json: &[u8]) -> Result<IconTable, String> {
    let sheet = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|error| error.to_string())?
        .to_rgba8();
    let index: serde_json::Map<String, Value> =
        serde_json::from_slice(json).map_err(|error| error.to_string())?;
    let mut icons = HashMap::new();
    for (name, entry) in index {
        let number = |key: &str| entry.get(key).and_then(Value::as_u64).map(|n| n as u32);
        let (Some(x), Some(y), Some(width), Some(height)) =
            (number("x"), number("y"), number("width"), number("height"))
        else {
            continue;
        };
        let ratio = entry
            .get("pixelRatio")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        if x + width > sheet.width() || y + height > sheet.height() {
            continue;
        }
        let pixels = image::imageops::crop_imm(&sheet, x, y, width, height)
            .to_image()
            .into_raw();
        icons.insert(
            name,
            (
                Arc::new(RgbaImage {
                    width,
                    height,
                    pixels,
                }),
                ratio,
            ),
        );
    }
    Ok(icons)
}

/// Resolves a `text-font` stack to the first installed face, or the fallback font.
pub fn font_face(map: &MapContext, stack: &[String]) -> Option<FontFace> {
    stack
        .iter()
        .map(String::as_str)
        .chain([FALLBACK_FONT])
        .find_map(|name| map.glyphs.face_file(name))
        .map(|(path, index)| FontFace { path, index })
}

/// Reads a layer's `text-font` as a list of font names.
fn font_stack(layer: &Layer, context: &Context<'_>) -> Vec<String> {
    let layout = &layer.layout;
    // A plain array of font names is a literal, not an expression named by its first font.
    let fonts = layout.get("text-font").and_then(|value| match value {
        Value::Array(names) if names.iter().all(Value::is_string) => Some(value.clone()),
        other => style::evaluate(other, context),
    });
    fonts
        .and_then(|value| {
            value.as_array().map(|names| {
                names
                    .iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Lays out a symbol's label around its anchor, or `None` without text or font.
fn label_items(
    layer: &Layer,
    context: &Context<'_>,
    anchor: super::scene::Point,
    map: &MapContext,
) -> Option<LaidOut> {
    let layout = &layer.layout;
    let field = layout
        .get("text-field")
        .and_then(|value| style::evaluate(value, context))?;
    let field = match field {
        Value::String(text) => text,
        Value::Null => return None,
        other => other.to_string(),
    };
    let content = style::substitute_tokens(&field, context.properties);
    let content = match layout
        .get("text-transform")
        .and_then(|value| style::evaluate(value, context))
        .as_ref()
        .and_then(Value::as_str)
    {
        Some("uppercase") => content.to_uppercase(),
        Some("lowercase") => content.to_lowercase(),
        _ => content,
    };
    let lines: Vec<&str> = content
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let stack = font_stack(layer, context);
    let face = font_face(map, &stack)?;
    let size = number_property(layout, "text-size", context, 16.0);
    let offset = layout
        .get("text-offset")
        .and_then(|value| style::evaluate(value, context))
        .and_then(|value| {
            let pair = value.as_array()?;
            Some((pair.first()?.as_f64()?, pair.get(1)?.as_f64()?))
        })
        .unwrap_or((0.0, 0.0));
    let text_anchor = layout
        .get("text-anchor")
        .and_then(|value| style::evaluate(value, context))
        .and_then(|value| value.as_str().and_then(parse_anchor))
        .unwrap_or(TextAnchor::Center);
    let colour = colour_property(&layer.paint, "text-color", context).unwrap_or(Rgba::BLACK);
    let halo_width = number_property(&layer.paint, "text-halo-width", context, 0.0);
    let halo = colour_property(&layer.paint, "text-halo-color", context)
        .filter(|colour| colour.a > 0 && halo_width > 0.0)
        .map(|colour| Halo {
            colour,
            width: halo_width,
        });
    let metrics: Vec<text::LineMetrics> = lines
        .iter()
        .map(|line| text::measure(&face, line, size))
        .collect::<Option<_>>()?;
    let line_height = LINE_HEIGHT * size;
    let block_width = metrics.iter().map(|m| m.width).fold(0.0, f64::max);
    let block_height = line_height * lines.len() as f64;
    let x = anchor.x + offset.0 * size;
    let y = anchor.y + offset.1 * size;
    let left = match text_anchor {
        TextAnchor::Left | TextAnchor::TopLeft | TextAnchor::BottomLeft => x,
        TextAnchor::Right | TextAnchor::TopRight | TextAnchor::BottomRight => x - block_width,
        _ => x - block_width / 2.0,
    };
    let top = match text_anchor {
        TextAnchor::Top | TextAnchor::TopLeft | TextAnchor::TopRight => y,
        TextAnchor::Bottom | TextAnchor::BottomLeft | TextAnchor::BottomRight => y - block_height,
        _ => y - block_height / 2.0,
    };
    let items = lines
        .iter()
        .zip(&metrics)
        .enumerate()
        .map(|(index, (line, metric))| TextItem {
            text: (*line).to_owned(),
            face: face.clone(),
            size,
            colour,
            halo,
            position: super::scene::Point {
                x: left + (block_width - metric.width) / 2.0,
                y: top + index as f64 * line_height + (line_height - metric.height()) / 2.0,
            },
            anchor: TextAnchor::TopLeft,
            rotation: 0.0,
        })
        .collect();
    let margin = halo.map_or(0.0, |halo| halo.width);
    Some(LaidOut {
        items,
        bounds: Rect {
            x: left - margin,
            y: top - margin,
            width: block_width + 2.0 * margin,
            height: block_height + 2.0 * margin,
        },
    })
}

fn parse_anchor(text: &str) -> Option<TextAnchor> {
    Some(match text {
        "center" => TextAnchor::Center,
        "left" => TextAnchor::Left,
        "right" => TextAnchor::Right,
        "top" => TextAnchor::Top,
        "bottom" => TextAnchor::Bottom,
        "top-left" => TextAnchor::TopLeft,
        "top-right" => TextAnchor::TopRight,
        "bottom-left" => TextAnchor::BottomLeft,
        "bottom-right" => TextAnchor::BottomRight,
        _ => return None,
    })
}
