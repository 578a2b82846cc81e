//! Building the display list of a static map: each style layer over the whole extent, then
//! the furniture.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use geo::Geometry;
use serde_json::{Map, Value};

use super::furniture;
use super::imagery;
use super::mvt::TileFeature;
use super::scene::{
    Fill, FillRule, Georeference, Group, Item, LineCap, LineJoin, Page, PathCommand, PathItem,
    Rect, Rgba, Scene, SourceUse, Stroke,
};
use super::style::{self, Context, GeometryKind, Layer, Style};
use super::symbols::Placer;
use super::view::Frame;
use super::{MapContext, MapError, MapRequest, drawable_sources};
use crate::access::Verdict;
use crate::source::{Backend, Source};
use crate::tile::Bbox;
use crate::vector::VectorSource;

/// Page units around the frame within which features are still read, so that icons, labels
/// and wide lines just outside the frame are drawn where they reach into it.
const FEATURE_MARGIN: f64 = 64.0;

/// Reads the style named in `request` and builds the scene of its layers and furniture.
/// Blocking: imagery is warped here. Past `deadline` it returns `MapError::TimedOut` with
/// `seconds` 0, because only the caller knows the limit; `map::render` fills it in.
pub fn build_scene(
    context: &MapContext,
    request: &MapRequest,
    deadline: Instant,
) -> Result<Scene, MapError> {
    let style = load_style(context, &request.style)?;
    let sources = drawable_sources(&context.catalog, &style);
    let width = f64::from(request.width);
    let height = f64::from(request.height);
    let fit = union_bounds(sources.values());
    let frame =
        Frame::of_view(request.view, width, height, fit).ok_or_else(|| MapError::NothingToFit {
            style: style.id.clone(),
        })?;
    let page = Page {
        width,
        height,
        pixel_ratio: request.pixel_ratio(),
        dpi: request.options.dpi,
    };
    let frame_rect = Rect {
        x: 0.0,
        y: 0.0,
        width,
        height,
    };
    let mut builder = Builder {
        context,
        request,
        style: &style,
        sources: &sources,
        frame,
        deadline,
        items: Vec::new(),
        uses: Vec::new(),
        placer: Placer::new(frame_rect),
        archive_features: HashMap::new(),
    };
    for layer in &style.layers {
        if Instant::now() >= deadline {
            return Err(MapError::TimedOut { seconds: 0.0 });
        }
        builder.draw_layer(layer)?;
    }
    let Builder { items, uses, .. } = builder;
    let lonlat = frame.lonlat_bounds();
    let mercator = frame.mercator_bounds();
    let georeference = Georeference {
        frame: frame_rect,
        mercator_bounds: [
            mercator.min_x,
            mercator.min_y,
            mercator.max_x,
            mercator.max_y,
        ],
        lonlat_bounds: [lonlat.min_x, lonlat.min_y, lonlat.max_x, lonlat.max_y],
        zoom: frame.zoom,
    };
    let mut scene = Scene {
        page,
        georeference,
        items: vec![Item::Group(Group {
            clip: Some(frame_rect),
            items,
        })],
        sources: uses,
        title: request.options.title.clone(),
        caption: request.options.caption.clone(),
    };
    let furniture = furniture::draw(context, &style, &scene, &frame, &request.options);
    if !furniture.is_empty() {
        scene.items.push(Item::Group(Group {
            clip: None,
            items: furniture,
        }));
    }
    Ok(scene)
}

fn load_style(context: &MapContext, id: &str) -> Result<Style, MapError> {
    let text = crate::styles::load(&context.styles, id, "").map_err(|error| match error {
        crate::styles::StyleError::NotFound(_) => MapError::StyleNotFound(id.to_owned()),
        other => MapError::Style {
            style: id.to_owned(),
            message: other.to_string(),
        },
    })?;
    let document: Value = serde_json::from_str(&text).map_err(|error| MapError::Style {
        style: id.to_owned(),
        message: error.to_string(),
    })?;
    Ok(Style::parse(id, &document))
}

fn union_bounds<'a>(sources: impl Iterator<Item = &'a Arc<Source>>) -> Option<Bbox> {
    sources.map(|source| source.bounds_lonlat()).reduce(|a, b| {
        Bbox::new(
            a.min_x.min(b.min_x),
            a.min_y.min(b.min_y),
            a.max_x.max(b.max_x),
            a.max_y.max(b.max_y),
        )
    })
}

/// Returns the vector index behind a source, for vector files and floorplans.
pub(super) fn vector_of(source: &Source) -> Option<&VectorSource> {
    match &source.backend {
        Backend::Vector(vector) => Some(vector),
        Backend::Floorplan(plan) => Some(plan.vector()),
        _ => None,
    }
}

/// A feature of the extent, ready for filters and drawing.
#[derive(Debug)]
pub struct Feature<'a> {
    pub properties: Map<String, Value>,
    /// Geometry in Web Mercator metres; owned where access control moved a point.
    pub geometry: Cow<'a, Geometry<f64>>,
    pub kind: GeometryKind,
}

struct Builder<'a> {
    context: &'a MapContext,
    request: &'a MapRequest,
    style: &'a Style,
    sources: &'a BTreeMap<String, Arc<Source>>,
    frame: Frame,
    deadline: Instant,
    items: Vec<Item>,
    uses: Vec<SourceUse>,
    placer: Placer,
    /// Decoded tiles of the vector archives drawn so far, by source id.
    archive_features: HashMap<String, Arc<Vec<TileFeature>>>,
}

impl Builder<'_> {
    fn draw_layer(&mut self, layer: &Layer) -> Result<(), MapError> {
        let zoom = self.frame.zoom;
        if !layer.visible || zoom < layer.minzoom || zoom >= layer.maxzoom {
            return Ok(());
        }
        let empty = Map::new();
        let context = Context {
            properties: &empty,
            geometry: None,
            zoom,
        };
        if layer.kind == "background" {
            let colour =
                colour_property(&layer.paint, "background-color", &context).unwrap_or(Rgba::BLACK);
            let opacity = number_property(&layer.paint, "background-opacity", &context, 1.0);
            self.items.push(Item::Path(rectangle(
                Rect {
                    x: 0.0,
                    y: 0.0,
                    width: self.frame.width,
                    height: self.frame.height,
                },
                Some(Fill {
                    colour,
                    opacity,
                    rule: FillRule::NonZero,
                }),
                None,
            )));
            return Ok(());
        }
        let Some(name) = layer.source.as_deref() else {
            return Ok(());
        };
        let Some(source) = self.sources.get(name).cloned() else {
            tracing::debug!(layer = %layer.id, source = name, "style source not served: layer skipped");
            return Ok(());
        };
        match layer.kind.as_str() {
            "raster" => {
                let drawn = imagery::draw(
                    &source,
                    layer,
                    &self.frame,
                    self.request,
                    &context,
                    &self.context.runtime,
                    self.deadline,
                )?;
                if let Some((item, usage)) = drawn {
                    self.items.push(Item::Image(item));
                    self.record_use(&source, usage);
                }
            }
            "fill" | "line" | "circle" | "symbol" => {
                let decoded;
                let features = if let Some(vector) = vector_of(&source) {
                    self.features(&source, vector, layer, zoom)
                } else if let Backend::Archive(archive) = &source.backend {
                    decoded = self.archive_features(&source, archive)?;
                    self.tile_features(&decoded, layer, zoom)
                } else {
                    // NOTE: density cells are not drawn by static maps, because a density
                    // source has no R-tree of features and its cells would have to be
                    // aggregated tile by tile.
                    tracing::debug!(layer = %layer.id, source = %source.id, "static maps draw vector layers of vector files, floorplans and archives only");
                    return Ok(());
                };
                if features.is_empty() {
                    return Ok(());
                }
                if layer.kind == "symbol" {
                    let placed = self.placer.place(
                        layer,
                        &features,
                        &self.frame,
                        zoom,
                        self.context,
                        &mut self.items,
                    );
                    if placed == 0 {
                        return Ok(());
                    }
                } else {
                    for feature in &features {
                        self.draw_feature(layer, feature, zoom);
                    }
                }
                self.record_use(&source, SourceUse::default());
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads the features of `layer`'s source layer in the frame and its margin that pass
    /// the layer's filter, as the current request may see them: without private attributes,
    /// and with sensitive points snapped or left out unless its key opens `source`.
    fn features<'v>(
        &self,
        source: &Source,
        vector: &'v VectorSource,
        layer: &Layer,
        zoom: f64,
    ) -> Vec<Feature<'v>> {
        // The frame's zoom counts 512-pixel tiles; access rules count 256-pixel ones.
        let rules = crate::access::feature_rules(source, zoom + 1.0);
        let margin = FEATURE_MARGIN * self.frame.resolution;
        let mercator = self.frame.mercator_bounds();
        let (min_x, min_y) =
            crate::tile::mercator_to_lonlat(mercator.min_x - margin, mercator.min_y - margin);
        let (max_x, max_y) =
            crate::tile::mercator_to_lonlat(mercator.max_x + margin, mercator.max_y + margin);
        let query = Bbox::new(min_x.max(-180.0), min_y, max_x.min(180.0), max_y);
        vector
            .find_features(Some(&query))
            .into_iter()
            .filter_map(|reference| {
                let (name, geometry) = vector.feature_geometry(reference);
                if layer
                    .source_layer
                    .as_deref()
                    .is_some_and(|wanted| wanted != name)
                {
                    return None;
                }
                let mut properties = vector.feature_properties(reference);
                let geometry = match rules
                    .as_ref()
                    .map(|rules| rules.apply(&mut properties, geometry))
                {
                    None | Some(Verdict::Keep) => Cow::Borrowed(geometry),
                    Some(Verdict::MoveTo(point)) => Cow::Owned(Geometry::Point(point)),
                    Some(Verdict::Drop) => return None,
                };
                let kind = geometry_kind(&geometry)?;
                let context = Context {
                    properties: &properties,
                    geometry: Some(kind),
                    zoom,
                };
                style::passes(layer.filter.as_ref(), &context).then_some(Feature {
                    properties,
                    geometry,
                    kind,
                })
            })
            .collect()
    }

    /// Reads the decoded tiles of a vector archive for the frame and its margin, once per map.
    fn archive_features(
        &mut self,
        source: &Source,
        archive: &crate::archive::Archive,
    ) -> Result<Arc<Vec<TileFeature>>, MapError> {
        if let Some(known) = self.archive_features.get(&source.id) {
            return Ok(Arc::clone(known));
        }
        let margin = FEATURE_MARGIN * self.frame.resolution;
        let mercator = self.frame.mercator_bounds();
        let bounds = Bbox::new(
            mercator.min_x - margin,
            mercator.min_y - margin,
            mercator.max_x + margin,
            mercator.max_y + margin,
        );
        let features = Arc::new(super::archive::vector_features(
            &self.context.runtime,
            source,
            archive,
            &bounds,
            self.frame.zoom,
            self.deadline,
        )?);
        self.archive_features
            .insert(source.id.clone(), Arc::clone(&features));
        Ok(features)
    }

    /// Picks the decoded tile features of `layer`'s source layer that pass its filter. The
    /// access rules were applied to each tile before it was decoded.
    ///
    /// A feature that crosses a tile edge comes once from every tile it is in. Fills and lines
    /// draw every piece, which adds stroke seams along the tiles' buffer edges and doubles a
    /// translucent fill within the buffers. Circles and symbols draw one piece per feature:
    /// pieces match by layer and id, or without an id by properties and anchor (to a page
    /// unit). The first piece whose anchor is in the frame is kept, else the first piece.
    fn tile_features<'f>(
        &self,
        decoded: &'f [TileFeature],
        layer: &Layer,
        zoom: f64,
    ) -> Vec<Feature<'f>> {
        let once = matches!(layer.kind.as_str(), "circle" | "symbol");
        let mut features: Vec<Feature<'f>> = Vec::new();
        // The index in `features` of the piece chosen so far for each feature.
        let mut chosen: HashMap<String, usize> = HashMap::new();
        for feature in decoded {
            if layer
                .source_layer
                .as_deref()
                .is_some_and(|wanted| wanted != feature.layer)
            {
                continue;
            }
            let Some(kind) = geometry_kind(&feature.geometry) else {
                continue;
            };
            let context = Context {
                properties: &feature.properties,
                geometry: Some(kind),
                zoom,
            };
            if !style::passes(layer.filter.as_ref(), &context) {
                continue;
            }
            let candidate = Feature {
                properties: feature.properties.clone(),
                geometry: Cow::Borrowed(&feature.geometry),
                kind,
            };
            if !once {
                features.push(candidate);
                continue;
            }
            let anchor = anchor_points(&feature.geometry)
                .first()
                .map(|point| self.frame.to_page(point.x(), point.y()));
            let key = piece_key(feature, anchor);
            match chosen.get(&key) {
                None => {
                    chosen.insert(key, features.len());
                    features.push(candidate);
                }
                Some(&index) => {
                    if !self.anchor_in_frame(&features[index]) && self.in_frame(anchor) {
                        features[index] = candidate;
                    }
                }
            }
        }
        features
    }

    fn anchor_in_frame(&self, feature: &Feature<'_>) -> bool {
        let anchor = anchor_points(&feature.geometry)
            .first()
            .map(|point| self.frame.to_page(point.x(), point.y()));
        self.in_frame(anchor)
    }

    fn in_frame(&self, anchor: Option<super::scene::Point>) -> bool {
        anchor.is_some_and(|page| {
            (0.0..=self.frame.width).contains(&page.x)
                && (0.0..=self.frame.height).contains(&page.y)
        })
    }

    fn draw_feature(&mut self, layer: &Layer, feature: &Feature<'_>, zoom: f64) {
        let context = Context {
            properties: &feature.properties,
            geometry: Some(feature.kind),
            zoom,
        };
        let paint = &layer.paint;
        match layer.kind.as_str() {
            "fill" if feature.kind == GeometryKind::Polygon => {
                let colour = colour_property(paint, "fill-color", &context).unwrap_or(Rgba::BLACK);
                let opacity = number_property(paint, "fill-opacity", &context, 1.0);
                let outline = colour_property(paint, "fill-outline-color", &context);
                let commands = self.path_of(&feature.geometry, true);
                self.items.push(Item::Path(PathItem {
                    commands,
                    fill: Some(Fill {
                        colour,
                        opacity,
                        rule: FillRule::EvenOdd,
                    }),
                    stroke: outline.map(|colour| Stroke {
                        colour,
                        width: 1.0,
                        opacity,
                        dash: Vec::new(),
                        join: LineJoin::Miter,
                        cap: LineCap::Butt,
                    }),
                }));
            }
            "line" if feature.kind != GeometryKind::Point => {
                let stroke = line_stroke(layer, &context);
                let commands =
                    self.path_of(&feature.geometry, feature.kind == GeometryKind::Polygon);
                self.items.push(Item::Path(PathItem {
                    commands,
                    fill: None,
                    stroke: Some(stroke),
                }));
            }
            "circle" => {
                let radius = number_property(paint, "circle-radius", &context, 5.0);
                let colour =
                    colour_property(paint, "circle-color", &context).unwrap_or(Rgba::BLACK);
                let opacity = number_property(paint, "circle-opacity", &context, 1.0);
                let stroke_width = number_property(paint, "circle-stroke-width", &context, 0.0);
                let stroke_colour =
                    colour_property(paint, "circle-stroke-color", &context).unwrap_or(Rgba::BLACK);
                let stroke_opacity = number_property(paint, "circle-stroke-opacity", &context, 1.0);
                for point in anchor_points(&feature.geometry) {
                    let centre = self.frame.to_page(point.x(), point.y());
                    self.items.push(Item::Path(PathItem {
                        commands: circle(centre.x, centre.y, radius),
                        fill: Some(Fill {
                            colour,
                            opacity,
                            rule: FillRule::NonZero,
                        }),
                        stroke: (stroke_width > 0.0).then(|| Stroke {
                            colour: stroke_colour,
                            width: stroke_width,
                            opacity: stroke_opacity,
                            dash: Vec::new(),
                            join: LineJoin::Round,
                            cap: LineCap::Round,
                        }),
                    }));
                }
            }
            _ => {}
        }
    }

    /// Converts a line or polygon geometry to path commands in page units.
    fn path_of(&self, geometry: &Geometry<f64>, close: bool) -> Vec<PathCommand> {
        let mut commands = Vec::new();
        let mut add_ring = |ring: &geo::LineString<f64>| {
            for (index, coord) in ring.0.iter().enumerate() {
                let point = self.frame.to_page(coord.x, coord.y);
                commands.push(if index == 0 {
                    PathCommand::MoveTo(point)
                } else {
                    PathCommand::LineTo(point)
                });
            }
            if close && !ring.0.is_empty() {
                commands.push(PathCommand::Close);
            }
        };
        let add_polygon = |polygon: &geo::Polygon<f64>,
                           add: &mut dyn FnMut(&geo::LineString<f64>)| {
            add(polygon.exterior());
            for hole in polygon.interiors() {
                add(hole);
            }
        };
        match geometry {
            Geometry::LineString(line) => add_ring(line),
            Geometry::MultiLineString(lines) => lines.iter().for_each(&mut add_ring),
            Geometry::Polygon(polygon) => add_polygon(polygon, &mut add_ring),
            Geometry::MultiPolygon(polygons) => {
                for polygon in polygons {
                    add_polygon(polygon, &mut add_ring);
                }
            }
            _ => {}
        }
        commands
    }

    fn record_use(&mut self, source: &Source, usage: SourceUse) {
        let files = if usage.files.is_empty() {
            vec![source.path.clone()]
        } else {
            usage.files
        };
        if let Some(known) = self.uses.iter_mut().find(|known| known.id == source.id) {
            for file in files {
                if !known.files.contains(&file) {
                    known.files.push(file);
                }
            }
            for scene in usage.scenes {
                if !known.scenes.contains(&scene) {
                    known.scenes.push(scene);
                }
            }
            if usage.enhancement.is_some() {
                known.enhancement = usage.enhancement;
            }
            return;
        }
        let attribution = source.attribution.clone().or_else(|| {
            self.style
                .sources
                .values()
                .find(|style_source| style_source.source_id.as_deref() == Some(&source.id))
                .and_then(|style_source| style_source.attribution.clone())
        });
        self.uses.push(SourceUse {
            id: source.id.clone(),
            name: source.name.clone(),
            attribution,
            files,
            scenes: usage.scenes,
            enhancement: usage.enhancement,
        });
    }
}

/// Returns what identifies the pieces of one tile feature across tiles: its layer and id, or
/// without an id its layer, properties and anchor rounded to a page unit.
fn piece_key(feature: &TileFeature, anchor: Option<super::scene::Point>) -> String {
    if let Some(id) = feature.id {
        return format!("{}\u{0}{id}", feature.layer);
    }
    let anchor = anchor.map(|page| (page.x.round() as i64, page.y.round() as i64));
    format!(
        "{}\u{0}{}\u{0}{anchor:?}",
        feature.layer,
        Value::Object(feature.properties.clone())
    )
}

fn geometry_kind(geometry: &Geometry<f64>) -> Option<GeometryKind> {
    match geometry {
        Geometry::Point(_) | Geometry::MultiPoint(_) => Some(GeometryKind::Point),
        Geometry::LineString(_) | Geometry::MultiLineString(_) => Some(GeometryKind::LineString),
        Geometry::Polygon(_) | Geometry::MultiPolygon(_) => Some(GeometryKind::Polygon),
        _ => None,
    }
}

/// Returns the points a circle or symbol is drawn at: each point, the interior point of a polygon, the
/// middle of a line.
pub(super) fn anchor_points(geometry: &Geometry<f64>) -> Vec<geo::Point<f64>> {
    use geo::{Euclidean, InteriorPoint};
    let middle = |line: &geo::LineString<f64>| {
        use geo::InterpolatableLine;
        line.point_at_ratio_from_start(&Euclidean, 0.5)
    };
    match geometry {
        Geometry::Point(point) => vec![*point],
        Geometry::MultiPoint(points) => points.0.clone(),
        Geometry::LineString(line) => middle(line).into_iter().collect(),
        Geometry::MultiLineString(lines) => lines.iter().filter_map(middle).collect(),
        Geometry::Polygon(polygon) => polygon.interior_point().into_iter().collect(),
        Geometry::MultiPolygon(polygons) => polygons
            .iter()
            .filter_map(InteriorPoint::interior_point)
            .collect(),
        _ => Vec::new(),
    }
}

fn line_stroke(layer: &Layer, context: &Context<'_>) -> Stroke {
    let paint = &layer.paint;
    let width = number_property(paint, "line-width", context, 1.0);
    let dash = paint
        .get("line-dasharray")
        .and_then(|value| style::evaluate(value, context))
        .and_then(|value| {
            value.as_array().map(|parts| {
                parts
                    .iter()
                    .filter_map(Value::as_f64)
                    .map(|part| part * width)
                    .collect()
            })
        })
        .unwrap_or_default();
    let text = |name: &str| {
        layer
            .layout
            .get(name)
            .and_then(|value| style::evaluate(value, context))
            .and_then(|value| value.as_str().map(str::to_owned))
    };
    Stroke {
        colour: colour_property(paint, "line-color", context).unwrap_or(Rgba::BLACK),
        width,
        opacity: number_property(paint, "line-opacity", context, 1.0),
        dash,
        join: match text("line-join").as_deref() {
            Some("round") => LineJoin::Round,
            Some("bevel") => LineJoin::Bevel,
            _ => LineJoin::Miter,
        },
        cap: match text("line-cap").as_deref() {
            Some("round") => LineCap::Round,
            Some("square") => LineCap::Square,
            _ => LineCap::Butt,
        },
    }
}

/// Evaluates a colour property, or `None` when it is absent or not a colour.
pub(super) fn colour_property(
    properties: &Map<String, Value>,
    name: &str,
    context: &Context<'_>,
) -> Option<Rgba> {
    let value = style::evaluate(properties.get(name)?, context)?;
    style::parse_colour(value.as_str()?)
}

/// Evaluates a number property, or returns `default`.
pub(super) fn number_property(
    properties: &Map<String, Value>,
    name: &str,
    context: &Context<'_>,
    default: f64,
) -> f64 {
    properties
        .get(name)
        .and_then(|value| style::evaluate(value, context))
        .and_then(|value| value.as_f64())
        .filter(|number| number.is_finite())
        .unwrap_or(default)
}

/// Builds a rectangle path with an optional fill and stroke.
pub(super) fn rectangle(rect: Rect, fill: Option<Fill>, stroke: Option<Stroke>) -> PathItem {
    let corner = |x, y| super::scene::Point { x, y };
    PathItem {
        commands: vec![
            PathCommand::MoveTo(corner(rect.x, rect.y)),
            PathCommand::LineTo(corner(rect.x + rect.width, rect.y)),
            PathCommand::LineTo(corner(rect.x + rect.width, rect.y + rect.height)),
            PathCommand::LineTo(corner(rect.x, rect.y + rect.height)),
            PathCommand::Close,
        ],
        fill,
        stroke,
    }
}

/// Builds a circle as four cubic Bézier arcs.
pub(super) fn circle(x: f64, y: f64, radius: f64) -> Vec<PathCommand> {
    // Control-point distance that makes a cubic arc closest to a quarter circle.
    const KAPPA: f64 = 0.552_284_749_831;
    let k = KAPPA * radius;
    let p = |x, y| super::scene::Point { x, y };
    vec![
        PathCommand::MoveTo(p(x + radius, y)),
        PathCommand::CubicTo(p(x + radius, y + k), p(x + k, y + radius), p(x, y + radius)),
        PathCommand::CubicTo(p(x - k, y + radius), p(x - radius, y + k), p(x - radius, y)),
        PathCommand::CubicTo(p(x - radius, y - k), p(x - k, y - radius), p(x, y - radius)),
        PathCommand::CubicTo(p(x + k, y - radius), p(x + radius, y - k), p(x + radius, y)),
        PathCommand::Close,
    ]
}
