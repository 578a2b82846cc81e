//! Map furniture drawn over the map frame: scale bar, north arrow, legend, attribution with
//! imagery dates and enhancement notices, title, caption and a lon/lat grid.

use std::fmt::Write as _;

use serde_json::Map;

use super::build::{circle, colour_property, number_property, rectangle};
use super::scene::{
    Fill, FillRule, FontFace, Halo, Item, LineCap, LineJoin, PathCommand, PathItem, Point, Rect,
    Rgba, Scene, Stroke, TextAnchor, TextItem,
};
use super::style::{Context, Layer, Style};
use super::symbols::{FALLBACK_FONT, font_face};
use super::text;
use super::view::Frame;
use super::{MapContext, MapOptions};
use crate::source::Backend;

/// Distance of furniture from the page edge, in page units.
const MARGIN: f64 = 10.0;
/// Inner padding of furniture boxes, in page units.
const PADDING: f64 = 5.0;
/// Maximum length of the scale bar, in page units.
const MAX_SCALE_BAR: f64 = 120.0;
/// Height of the scale bar's black bar, in page units.
pub const SCALE_BAR_HEIGHT: f64 = 4.0;

const PANEL: Rgba = Rgba::new(255, 255, 255, 217);

/// Builds the furniture `options` ask for, from the scene's sources and the style.
pub fn draw(
    context: &MapContext,
    style: &Style,
    scene: &Scene,
    frame: &Frame,
    options: &MapOptions,
) -> Vec<Item> {
    let Some(face) = font_face(context, &[FALLBACK_FONT.to_owned()]) else {
        tracing::warn!(
            font = FALLBACK_FONT,
            "no font for map furniture: it is drawn without text"
        );
        return Vec::new();
    };
    let mut items = Vec::new();
    if options.grid {
        grid(&mut items, &face, frame);
    }
    let mut top = MARGIN;
    if options.title.is_some() || options.caption.is_some() {
        top = title_block(&mut items, &face, frame, options, top);
    }
    if options.legend {
        legend(&mut items, &face, context, style, scene, frame, top);
    }
    if options.north {
        north_arrow(&mut items, &face, frame);
    }
    if options.scalebar {
        scale_bar(&mut items, &face, frame);
    }
    if options.attribution {
        attribution(&mut items, &face, scene, frame);
    }
    items
}

fn text_item(
    face: &FontFace,
    text: &str,
    size: f64,
    position: Point,
    anchor: TextAnchor,
) -> TextItem {
    TextItem {
        text: text.to_owned(),
        face: face.clone(),
        size,
        colour: Rgba::BLACK,
        halo: None,
        position,
        anchor,
        rotation: 0.0,
    }
}

fn panel(rect: Rect) -> Item {
    Item::Path(rectangle(
        rect,
        Some(Fill {
            colour: PANEL,
            opacity: 1.0,
            rule: FillRule::NonZero,
        }),
        None,
    ))
}

fn width_of(face: &FontFace, text: &str, size: f64) -> f64 {
    text::measure(face, text, size).map_or(0.0, |metrics| metrics.width)
}

/// Returns the largest of 1, 2 and 5 times a power of ten that is at most `limit`.
pub fn round_length(limit: f64) -> f64 {
    let power = 10_f64.powf(limit.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|step| step * power)
        .find(|length| *length <= limit)
        .unwrap_or(power)
}

fn format_distance(metres: f64) -> String {
    if metres >= 1000.0 {
        format!("{} km", metres / 1000.0)
    } else {
        format!("{metres} m")
    }
}

/// Returns the scale bar's length in metres and page units: a round length true at the
/// frame's centre latitude.
pub fn scale_bar_length(frame: &Frame) -> (f64, f64) {
    let metres_per_unit = frame.ground_resolution();
    let metres = round_length(MAX_SCALE_BAR * metres_per_unit);
    (metres, metres / metres_per_unit)
}

/// Draws a black bar of a round length at the bottom left, true at the centre latitude, with its
/// length written above it.
fn scale_bar(items: &mut Vec<Item>, face: &FontFace, frame: &Frame) {
    let (metres, length) = scale_bar_length(frame);
    let label = format_distance(metres);
    let size = 11.0;
    let height = SCALE_BAR_HEIGHT + size * 1.4 + 2.0 * PADDING;
    let left = MARGIN;
    let top = frame.height - MARGIN - height;
    items.push(panel(Rect {
        x: left,
        y: top,
        width: length.max(width_of(face, &label, size)) + 2.0 * PADDING,
        height,
    }));
    items.push(Item::Text(text_item(
        face,
        &label,
        size,
        Point {
            x: left + PADDING,
            y: top + PADDING,
        },
        TextAnchor::TopLeft,
    )));
    items.push(Item::Path(rectangle(
        Rect {
            x: left + PADDING,
            y: top + height - PADDING - SCALE_BAR_HEIGHT,
            width: length,
            height: SCALE_BAR_HEIGHT,
        },
        Some(Fill {
            colour: Rgba::BLACK,
            opacity: 1.0,
            rule: FillRule::NonZero,
        }),
        None,
    )));
}

/// Draws an arrow pointing up with an N, because Web Mercator keeps north up everywhere.
fn north_arrow(items: &mut Vec<Item>, face: &FontFace, frame: &Frame) {
    let x = frame.width - MARGIN - 14.0;
    let y = MARGIN;
    items.push(Item::Path(PathItem {
        commands: circle(x, y + 22.0, 14.0),
        fill: Some(Fill {
            colour: PANEL,
            opacity: 1.0,
            rule: FillRule::NonZero,
        }),
        stroke: None,
    }));
    let p = |dx: f64, dy: f64| Point {
        x: x + dx,
        y: y + dy,
    };
    items.push(Item::Path(PathItem {
        commands: vec![
            PathCommand::MoveTo(p(0.0, 16.0)),
            PathCommand::LineTo(p(7.0, 33.0)),
            PathCommand::LineTo(p(0.0, 29.0)),
            PathCommand::LineTo(p(-7.0, 33.0)),
            PathCommand::Close,
        ],
        fill: Some(Fill {
            colour: Rgba::BLACK,
            opacity: 1.0,
            rule: FillRule::NonZero,
        }),
        stroke: None,
    }));
    items.push(Item::Text(text_item(
        face,
        "N",
        11.0,
        p(0.0, 3.0),
        TextAnchor::Top,
    )));
}

/// The title and caption in a panel at the top left; returns the y below it.
fn title_block(
    items: &mut Vec<Item>,
    face: &FontFace,
    frame: &Frame,
    options: &MapOptions,
    top: f64,
) -> f64 {
    let mut lines: Vec<(&str, f64)> = Vec::new();
    if let Some(title) = &options.title {
        lines.push((title, 18.0));
    }
    if let Some(caption) = &options.caption {
        lines.push((caption, 12.0));
    }
    let width = lines
        .iter()
        .map(|(line, size)| width_of(face, line, *size))
        .fold(0.0, f64::max)
        .min(frame.width - 2.0 * MARGIN - 2.0 * PADDING);
    let height: f64 = lines.iter().map(|(_, size)| size * 1.3).sum::<f64>() + 2.0 * PADDING;
    items.push(panel(Rect {
        x: MARGIN,
        y: top,
        width: width + 2.0 * PADDING,
        height,
    }));
    let mut y = top + PADDING;
    for (line, size) in lines {
        items.push(Item::Text(text_item(
            face,
            line,
            size,
            Point {
                x: MARGIN + PADDING,
                y,
            },
            TextAnchor::TopLeft,
        )));
        y += size * 1.3;
    }
    top + height + PADDING
}

/// Draws the attribution of every source drawn, the dates of the imagery shown and a notice for
/// enhanced imagery, right-aligned at the bottom right.
fn attribution(items: &mut Vec<Item>, face: &FontFace, scene: &Scene, frame: &Frame) {
    let mut lines = Vec::new();
    let attributions: Vec<&str> = scene
        .sources
        .iter()
        .filter_map(|source| source.attribution.as_deref())
        .collect();
    if !attributions.is_empty() {
        lines.push(attributions.join(" | "));
    }
    for source in &scene.sources {
        let mut dates: Vec<&str> = source
            .scenes
            .iter()
            .map(|scene| scene.date.as_str())
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let mut line = String::new();
        if !dates.is_empty() {
            line = format!("{}: imagery of {}", source.name, dates.join(", "));
        }
        if let Some(enhancement) = &source.enhancement {
            if line.is_empty() {
                line = format!("{}:", source.name);
            }
            let _ = write!(
                line,
                " enhanced ×{:.1} from {:.0} m",
                enhancement.factor, enhancement.native_resolution_m
            );
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return;
    }
    let size = 10.0;
    let line_height = size * 1.3;
    let width = lines
        .iter()
        .map(|line| width_of(face, line, size))
        .fold(0.0, f64::max);
    let height = line_height * lines.len() as f64 + 2.0 * PADDING / 2.0;
    let right = frame.width;
    let top = frame.height - height;
    items.push(panel(Rect {
        x: right - width - 2.0 * PADDING,
        y: top,
        width: width + 2.0 * PADDING,
        height,
    }));
    for (index, line) in lines.iter().enumerate() {
        items.push(Item::Text(text_item(
            face,
            line,
            size,
            Point {
                x: right - PADDING,
                y: top + PADDING / 2.0 + index as f64 * line_height,
            },
            TextAnchor::TopRight,
        )));
    }
}

/// Draws a swatch per drawn style layer, labelled with the layer id, and the colour ramp of
/// heat maps.
fn legend(
    items: &mut Vec<Item>,
    face: &FontFace,
    context: &MapContext,
    style: &Style,
    scene: &Scene,
    frame: &Frame,
    top: f64,
) {
    let drawn: Vec<&str> = scene
        .sources
        .iter()
        .map(|source| source.id.as_str())
        .collect();
    let empty = Map::new();
    let evaluation = Context {
        properties: &empty,
        geometry: None,
        zoom: frame.zoom,
    };
    let size = 11.0;
    let row = 16.0;
    let mut rows: Vec<(Vec<Item>, String)> = Vec::new();
    for layer in &style.layers {
        let Some(id) = style.source_id(layer) else {
            continue;
        };
        if !drawn.contains(&id) {
            continue;
        }
        let swatch = swatch(layer, &evaluation, context, id);
        if let Some(swatch) = swatch {
            rows.push((swatch, layer.id.clone()));
        }
    }
    if rows.is_empty() {
        return;
    }
    let label_width = rows
        .iter()
        .map(|(_, label)| width_of(face, label, size))
        .fold(0.0, f64::max);
    let width = 28.0 + label_width + 2.0 * PADDING;
    let height = row * rows.len() as f64 + 2.0 * PADDING;
    items.push(panel(Rect {
        x: MARGIN,
        y: top,
        width,
        height,
    }));
    for (index, (swatch, label)) in rows.into_iter().enumerate() {
        let y = top + PADDING + index as f64 * row;
        let offset_x = MARGIN + PADDING;
        for item in swatch {
            items.push(translate(item, offset_x, y + 2.0));
        }
        items.push(Item::Text(text_item(
            face,
            &label,
            size,
            Point {
                x: offset_x + 26.0,
                y: y + row / 2.0,
            },
            TextAnchor::Left,
        )));
    }
}

/// Builds a 20 × 12 swatch of a layer at the origin, or `None` for a layer without one.
fn swatch(
    layer: &Layer,
    context: &Context<'_>,
    map: &MapContext,
    source_id: &str,
) -> Option<Vec<Item>> {
    let paint = &layer.paint;
    let box_rect = Rect {
        x: 0.0,
        y: 0.0,
        width: 20.0,
        height: 12.0,
    };
    let solid = |colour: Rgba, opacity: f64| Fill {
        colour,
        opacity,
        rule: FillRule::NonZero,
    };
    match layer.kind.as_str() {
        "fill" => {
            let colour = colour_property(paint, "fill-color", context).unwrap_or(Rgba::BLACK);
            let opacity = number_property(paint, "fill-opacity", context, 1.0);
            let outline = colour_property(paint, "fill-outline-color", context);
            Some(vec![Item::Path(rectangle(
                box_rect,
                Some(solid(colour, opacity)),
                outline.map(|colour| stroke(colour, 1.0)),
            ))])
        }
        "line" => {
            let colour = colour_property(paint, "line-color", context).unwrap_or(Rgba::BLACK);
            let width = number_property(paint, "line-width", context, 1.0).min(6.0);
            Some(vec![Item::Path(PathItem {
                commands: vec![
                    PathCommand::MoveTo(Point { x: 0.0, y: 6.0 }),
                    PathCommand::LineTo(Point { x: 20.0, y: 6.0 }),
                ],
                fill: None,
                stroke: Some(stroke(colour, width)),
            })])
        }
        "circle" => {
            let colour = colour_property(paint, "circle-color", context).unwrap_or(Rgba::BLACK);
            let radius = number_property(paint, "circle-radius", context, 5.0).min(6.0);
            Some(vec![Item::Path(PathItem {
                commands: circle(10.0, 6.0, radius),
                fill: Some(solid(colour, 1.0)),
                stroke: None,
            })])
        }
        "symbol" => {
            let name = layer.layout.get("icon-image")?.as_str()?;
            let sprites = map.sprites.as_ref().as_ref()?;
            let icon = super::symbols::icon_image(sprites, name)?;
            Some(vec![Item::Image(super::scene::ImageItem {
                rect: Rect {
                    x: 4.0,
                    y: 0.0,
                    width: 12.0,
                    height: 12.0,
                },
                image: icon,
                opacity: 1.0,
                smooth: true,
            })])
        }
        "raster" => {
            let source = map.catalog.get(source_id)?;
            let Backend::Density(_) = &source.backend else {
                return None;
            };
            // NOTE: the swatch shows the default ramp; a map drawn with another `ramp` on
            // the heat-map URL gets the same swatch.
            let ramp = crate::density::Ramp::default();
            let mut ramp_items = Vec::new();
            let steps = 20;
            for step in 0..steps {
                let position = f64::from(step) / f64::from(steps - 1);
                let [red, green, blue, alpha] = ramp.colour(position);
                ramp_items.push(Item::Path(rectangle(
                    Rect {
                        x: f64::from(step),
                        y: 0.0,
                        width: 1.05,
                        height: 12.0,
                    },
                    Some(solid(Rgba::new(red, green, blue, alpha.max(64)), 1.0)),
                    None,
                )));
            }
            Some(ramp_items)
        }
        _ => None,
    }
}

fn stroke(colour: Rgba, width: f64) -> Stroke {
    Stroke {
        colour,
        width,
        opacity: 1.0,
        dash: Vec::new(),
        join: LineJoin::Round,
        cap: LineCap::Butt,
    }
}

/// Moves an item by (`dx`, `dy`) page units.
fn translate(item: Item, dx: f64, dy: f64) -> Item {
    let shift = |p: Point| Point {
        x: p.x + dx,
        y: p.y + dy,
    };
    match item {
        Item::Path(mut path) => {
            for command in &mut path.commands {
                *command = match *command {
                    PathCommand::MoveTo(p) => PathCommand::MoveTo(shift(p)),
                    PathCommand::LineTo(p) => PathCommand::LineTo(shift(p)),
                    PathCommand::CubicTo(a, b, c) => {
                        PathCommand::CubicTo(shift(a), shift(b), shift(c))
                    }
                    PathCommand::Close => PathCommand::Close,
                };
            }
            Item::Path(path)
        }
        Item::Image(mut image) => {
            image.rect.x += dx;
            image.rect.y += dy;
            Item::Image(image)
        }
        Item::Text(mut text) => {
            text.position = shift(text.position);
            Item::Text(text)
        }
        Item::Group(mut group) => {
            group.items = group
                .items
                .into_iter()
                .map(|item| translate(item, dx, dy))
                .collect();
            Item::Group(group)
        }
    }
}

/// Draws a lon/lat graticule of round steps with labels at the left and top edges.
fn grid(items: &mut Vec<Item>, face: &FontFace, frame: &Frame) {
    let bounds = frame.lonlat_bounds();
    let span = (bounds.max_x - bounds.min_x).max(bounds.max_y - bounds.min_y);
    let step = round_length(span / 4.0);
    let line = Stroke {
        colour: Rgba::new(40, 40, 40, 160),
        width: 0.75,
        opacity: 1.0,
        dash: vec![4.0, 3.0],
        join: LineJoin::Miter,
        cap: LineCap::Butt,
    };
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let halo = Some(Halo {
        colour: Rgba::WHITE,
        width: 1.5,
    });
    let mut lon = (bounds.min_x / step).ceil() * step;
    while lon <= bounds.max_x {
        let (x, _) = crate::tile::lonlat_to_mercator(lon, 0.0);
        let page_x = frame.to_page(x, 0.0).x;
        items.push(Item::Path(PathItem {
            commands: vec![
                PathCommand::MoveTo(Point { x: page_x, y: 0.0 }),
                PathCommand::LineTo(Point {
                    x: page_x,
                    y: frame.height,
                }),
            ],
            fill: None,
            stroke: Some(line.clone()),
        }));
        let mut label = text_item(
            face,
            &format!("{lon:.decimals$}°"),
            9.0,
            Point {
                x: page_x + 2.0,
                y: 2.0,
            },
            TextAnchor::TopLeft,
        );
        label.halo = halo;
        items.push(Item::Text(label));
        lon += step;
    }
    let mut lat = (bounds.min_y / step).ceil() * step;
    while lat <= bounds.max_y {
        let (_, y) = crate::tile::lonlat_to_mercator(0.0, lat);
        let page_y = frame.to_page(0.0, y).y;
        items.push(Item::Path(PathItem {
            commands: vec![
                PathCommand::MoveTo(Point { x: 0.0, y: page_y }),
                PathCommand::LineTo(Point {
                    x: frame.width,
                    y: page_y,
                }),
            ],
            fill: None,
            stroke: Some(line.clone()),
        }));
        let mut label = text_item(
            face,
            &format!("{lat:.decimals$}°"),
            9.0,
            Point {
                x: 2.0,
                y: page_y - 2.0,
            },
            TextAnchor::BottomLeft,
        );
        label.halo = halo;
        items.push(Item::Text(label));
        lat += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_lengths() {
        let cases = [
            (120.0, 100.0),
            (99.0, 50.0),
            (4.9, 2.0),
            (1500.0, 1000.0),
            (0.3, 0.2),
        ];
        for (limit, expected) in cases {
            let length = round_length(limit);
            assert!((length - expected).abs() < 1e-9, "{limit}: {length}");
        }
    }

    #[test]
    fn distances_format() {
        assert_eq!(format_distance(500.0), "500 m");
        assert_eq!(format_distance(2000.0), "2 km");
    }
}
