//! The display list of a static map: what to draw on a page, in page units, with what each
//! part was drawn from. The raster output (`map::raster`) and the PDF output both draw it.
//!
//! Page units are CSS pixels at 1x, 1/96 inch, with the origin at the top left corner and y
//! growing downwards. Colours are straight (not premultiplied) RGBA.

use std::path::PathBuf;
use std::sync::Arc;

/// A straight RGBA colour, 0–255 per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Rgba {
    pub const BLACK: Rgba = Rgba::new(0, 0, 0, 255);
    pub const WHITE: Rgba = Rgba::new(255, 255, 255, 255);

    pub const fn new(r: u8, g: u8, b: u8, a: u8) -> Self {
        Self { r, g, b, a }
    }
}

/// A point in page units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// An axis-aligned rectangle in page units: its top left corner, width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The page: its size in page units (CSS pixels at 1x) and how finely it is rasterised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page {
    pub width: f64,
    pub height: f64,
    /// Device pixels per page unit of raster outputs: the `@2x` ratio times `dpi / 96`.
    pub pixel_ratio: f64,
    /// Dots per inch written into raster outputs' metadata and used for print sizes.
    pub dpi: f64,
}

impl Page {
    /// Returns the raster size in device pixels, rounded.
    pub fn pixel_size(&self) -> (u32, u32) {
        (
            (self.width * self.pixel_ratio).round() as u32,
            (self.height * self.pixel_ratio).round() as u32,
        )
    }
}

/// One drawing command of a path, with coordinates in page units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PathCommand {
    MoveTo(Point),
    LineTo(Point),
    /// A cubic Bézier curve: two control points, then the end point.
    CubicTo(Point, Point, Point),
    Close,
}

/// The rule that decides which areas of a self-intersecting or holed path are inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillRule {
    NonZero,
    EvenOdd,
}

/// The paint of a path's inside.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    pub colour: Rgba,
    /// 0–1, multiplied with the colour's alpha.
    pub opacity: f64,
    pub rule: FillRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineJoin {
    Miter,
    Round,
    Bevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineCap {
    Butt,
    Round,
    Square,
}

/// The paint of a path's outline.
#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub colour: Rgba,
    /// Line width in page units.
    pub width: f64,
    /// 0–1, multiplied with the colour's alpha.
    pub opacity: f64,
    /// Dash and gap lengths in page units, alternating; empty for a solid line.
    pub dash: Vec<f64>,
    pub join: LineJoin,
    pub cap: LineCap,
}

/// A vector path with its fill, its stroke, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct PathItem {
    pub commands: Vec<PathCommand>,
    pub fill: Option<Fill>,
    pub stroke: Option<Stroke>,
}

/// Straight RGBA pixels at their own resolution, row by row from the top left.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

/// An image placed on the page: its pixels are stretched over `rect` (page units) when drawn,
/// never resampled in the list itself, so the PDF embeds them at full resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageItem {
    pub rect: Rect,
    pub image: Arc<RgbaImage>,
    /// 0–1.
    pub opacity: f64,
    /// Whether the pixels are smoothed when scaled (imagery), or kept square (icons at 1:1).
    pub smooth: bool,
}

/// The font face a text run is drawn with: the file and the face's index in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FontFace {
    pub path: PathBuf,
    pub index: u32,
}

/// The point of a text run's box that its position names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextAnchor {
    Center,
    Left,
    Right,
    Top,
    Bottom,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// The outline drawn around text so it reads over imagery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halo {
    pub colour: Rgba,
    /// Width of the outline outside the glyphs, in page units.
    pub width: f64,
}

/// One line of text drawn with one face: outputs shape and draw it themselves, so the PDF
/// keeps it as selectable text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextItem {
    pub text: String,
    pub face: FontFace,
    /// Font size (em height) in page units.
    pub size: f64,
    pub colour: Rgba,
    pub halo: Option<Halo>,
    /// Position of the anchor point of the line's box, in page units.
    pub position: Point,
    pub anchor: TextAnchor,
    /// Clockwise rotation around `position`, in degrees.
    pub rotation: f64,
}

/// Items drawn in order, optionally clipped to a rectangle in page units.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    pub clip: Option<Rect>,
    pub items: Vec<Item>,
}

/// Something drawn on the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Path(PathItem),
    Image(ImageItem),
    Text(TextItem),
    Group(Group),
}

/// A date of imagery shown on the map, and where that date was read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShownScene {
    /// The scene's file.
    pub file: PathBuf,
    /// ISO 8601: a year, a month or a day.
    pub date: String,
}

/// The enhancement applied to imagery drawn from a source.
#[derive(Debug, Clone, PartialEq)]
pub struct EnhancementUsed {
    /// The steps, as the `Tessera-Enhancement` header lists them.
    pub steps: String,
    /// How many times finer the drawn pixels are than the scene's own.
    pub factor: f64,
    /// The scene's own ground pixel size in metres.
    pub native_resolution_m: f64,
}

/// The record of one source drawn, for the attribution and the PDF's provenance block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceUse {
    pub id: String,
    pub name: String,
    pub attribution: Option<String>,
    /// Files read to draw it (the source's file, or the scenes of a collection drawn).
    pub files: Vec<PathBuf>,
    /// The acquisition dates of imagery drawn, one per scene shown; empty when unknown.
    pub scenes: Vec<ShownScene>,
    /// The strongest enhancement applied to its imagery, if any.
    pub enhancement: Option<EnhancementUsed>,
}

/// The extent of the map frame on the ground.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Georeference {
    /// The map frame in page units.
    pub frame: Rect,
    /// The frame's extent in EPSG:3857 metres: west, south, east, north.
    pub mercator_bounds: [f64; 4],
    /// The same extent in degrees: west, south, east, north.
    pub lonlat_bounds: [f64; 4],
    /// The zoom of the map as MapLibre counts it: the world is 512 × 2^zoom page units wide.
    pub zoom: f64,
}

/// A static map ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub page: Page,
    pub georeference: Georeference,
    /// Drawn first to last.
    pub items: Vec<Item>,
    /// The sources drawn from, in the style's layer order.
    pub sources: Vec<SourceUse>,
    /// Text for a document's metadata.
    pub title: Option<String>,
    pub caption: Option<String>,
}
