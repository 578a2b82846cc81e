//! PDF output of static maps and atlases, written with krilla: vector paths stay paths,
//! imagery is embedded at the pixel size it was rendered at, and text is real text in subset
//! fonts, so it can be selected and searched.
//!
//! A map page holds, inside the margins, the scene scaled to fit, and the title and caption
//! when the scene does not draw them. The provenance block goes under the map, or on the
//! following pages when it does not fit there.

mod draw;
pub mod page;
pub mod provenance;
pub mod render;
pub mod text;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Transform};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::TextDirection;
use thiserror::Error;

pub use self::page::{PageError, PageSize};
pub use self::provenance::{
    FileRecord, Provenance, ProvenanceError, ProvenanceLine, RequestRecord,
};
pub use self::text::{TextError, Typeface};
use crate::map::scene::{FontFace, Item, Scene};

#[derive(Debug, Error)]
pub enum PdfError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Page(#[from] PageError),
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
    #[error("writing the PDF failed: {0}")]
    Write(String),
    #[error("the scene is {width} x {height} page units; a map needs a positive, finite size")]
    EmptyScene { width: f64, height: f64 },
}

/// Default margin on every side, in millimetres.
pub const DEFAULT_MARGIN_MM: f32 = 12.0;

/// Default imagery density of PDF maps, in dots per inch.
pub const DEFAULT_DPI: f64 = 150.0;

/// Page set-up of PDF output.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfOptions {
    pub page: PageSize,
    /// Margin on every side, in points.
    pub margin: f32,
    /// Imagery density on paper, in dots per inch: imagery is rendered with this many pixels
    /// per inch of the printed map.
    pub dpi: f64,
}

impl Default for PdfOptions {
    fn default() -> Self {
        Self {
            page: PageSize::A4,
            margin: page::mm(DEFAULT_MARGIN_MM),
            dpi: DEFAULT_DPI,
        }
    }
}

/// Height kept at the bottom of the page for the page number, in points.
const FOOTER_HEIGHT: f32 = 14.0;
/// Font size of page numbers, in points.
const FOOTER_SIZE: f32 = 7.0;
/// Space between the map and the text around it, in points.
const GAP: f32 = 8.0;
/// Font size of a title the scene does not draw, in points.
const TITLE_SIZE: f32 = 14.0;
/// Font size of a caption the scene does not draw, in points.
const CAPTION_SIZE: f32 = 8.0;
/// Font sizes of the provenance block's headings and fields, in points.
const HEADING_SIZE: f32 = 7.5;
const FIELD_SIZE: f32 = 6.5;
/// Line height as a multiple of the font size.
const LINE_SPACING: f32 = 1.3;
/// Width of the provenance block's label column, in points.
const LABEL_WIDTH: f32 = 58.0;
/// Font size of index and table rows, in points.
const TABLE_SIZE: f32 = 9.0;

/// The scene's position on the page: its top left corner in points, points per page unit,
/// and its size in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPlacement {
    pub x: f32,
    pub y: f32,
    pub scale: f32,
    pub width: f32,
    pub height: f32,
}

impl PdfOptions {
    fn content_width(&self) -> f32 {
        self.page.width - 2.0 * self.margin
    }

    /// Bottom of the area text may use, above the footer.
    fn content_bottom(&self) -> f32 {
        self.page.height - self.margin - FOOTER_HEIGHT
    }

    /// Places a scene of `width` x `height` page units inside the margins, below a title band
    /// of `title_height` points and above a caption band of `caption_height`, as large as
    /// fits with its aspect kept, centred horizontally.
    pub fn place_map(
        &self,
        width: f64,
        height: f64,
        title_height: f32,
        caption_height: f32,
    ) -> Result<MapPlacement, PdfError> {
        if !(width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0) {
            return Err(PdfError::EmptyScene { width, height });
        }
        let available_width = self.content_width();
        let top = self.margin + title_height;
        let available_height = self.content_bottom() - top - caption_height;
        let scale = (available_width / width as f32).min(available_height / height as f32);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(PdfError::Page(PageError::MarginTooLarge {
                margin_mm: self.margin / page::mm(1.0),
                width: self.page.width,
                height: self.page.height,
            }));
        }
        let placed_width = width as f32 * scale;
        Ok(MapPlacement {
            x: self.margin + (available_width - placed_width) / 2.0,
            y: top,
            scale,
            width: placed_width,
            height: height as f32 * scale,
        })
    }

    /// Returns the device pixels per page unit at which imagery must be rendered for a
    /// scene of `width` x `height` page units to print at `dpi` on this page, when neither
    /// title nor caption needs a band of its own.
    pub fn imagery_pixel_ratio(&self, width: f64, height: f64) -> Result<f64, PdfError> {
        let placement = self.place_map(width, height, 0.0, 0.0)?;
        Ok(self.dpi * f64::from(placement.scale) / 72.0)
    }
}

/// A line of laid-out text: its font size and its left edge, with an optional right-aligned
/// part (a page number in the index).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    size: f32,
    indent: f32,
    text: String,
    label: Option<String>,
    right: Option<String>,
}

impl Row {
    fn height(&self) -> f32 {
        self.size * LINE_SPACING
    }
}

/// Writes a PDF of one or more pages.
pub struct PdfWriter {
    document: Document,
    options: PdfOptions,
    typeface: Arc<Typeface>,
    pages: usize,
    number_pages: bool,
}

impl std::fmt::Debug for PdfWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PdfWriter")
            .field("options", &self.options)
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

impl PdfWriter {
    /// Starts a document whose own text (provenance, index, page numbers) uses `text_face`.
    /// `title` and `created` go into the document's metadata.
    pub fn new(
        options: PdfOptions,
        text_face: &FontFace,
        title: Option<&str>,
        created: DateTime<Utc>,
        number_pages: bool,
    ) -> Result<Self, PdfError> {
        let typeface = Typeface::load(text_face)?;
        let mut document = Document::new();
        let mut metadata = Metadata::new()
            .creator(format!("Tessera {}", env!("CARGO_PKG_VERSION")))
            .creation_date(pdf_date(created));
        if let Some(title) = title {
            metadata = metadata.title(title.to_string());
        }
        document.set_metadata(metadata);
        Ok(Self {
            document,
            options,
            typeface,
            pages: 0,
            number_pages,
        })
    }

    pub fn options(&self) -> &PdfOptions {
        &self.options
    }

    /// Returns the number of pages written so far.
    pub fn page_count(&self) -> usize {
        self.pages
    }

    /// Returns how many pages [`PdfWriter::add_map`] would write for `scene` and
    /// `provenance`, without writing them.
    pub fn map_page_count(
        &self,
        scene: &Scene,
        provenance: &Provenance,
    ) -> Result<usize, PdfError> {
        let layout = self.map_layout(scene, provenance)?;
        Ok(1 + layout.spill_pages.len())
    }

    /// Writes `scene` on a new page, with the provenance block under it or on the pages that
    /// follow. Returns the number (from 1) of the map's page.
    pub fn add_map(&mut self, scene: &Scene, provenance: &Provenance) -> Result<usize, PdfError> {
        let layout = self.map_layout(scene, provenance)?;
        self.pages += 1;
        let number = self.pages;
        let typeface = Arc::clone(&self.typeface);
        let options = self.options.clone();
        let footer = self.footer_text();
        let mut page = self.document.start_page_with(page_settings(options.page)?);
        let mut surface = page.surface();
        draw_rows(
            &mut surface,
            &typeface,
            &layout.title,
            &options,
            options.margin,
        );
        draw_scene(&mut surface, scene, &layout.placement)?;

        let mut y = layout.placement.y + layout.placement.height;
        if !layout.caption.is_empty() {
            y = draw_rows(
                &mut surface,
                &typeface,
                &layout.caption,
                &options,
                y + GAP / 2.0,
            );
        }
        draw_rows(&mut surface, &typeface, &layout.below, &options, y + GAP);
        draw_footer(&mut surface, &typeface, &options, footer.as_deref());
        surface.finish();
        page.finish();
        for rows in &layout.spill_pages {
            self.add_rows_page(rows)?;
        }
        Ok(number)
    }

    /// Writes pages of `heading` followed by rows of a left text and a right-aligned value,
    /// such as an index of names and page numbers, and returns how many pages it took.
    pub fn add_table(
        &mut self,
        heading: &str,
        rows: &[(String, String)],
    ) -> Result<usize, PdfError> {
        let pages = self.table_pages(heading, rows);
        let count = pages.len();
        for page in &pages {
            self.add_rows_page(page)?;
        }
        Ok(count)
    }

    /// Returns how many pages [`PdfWriter::add_table`] would write.
    pub fn table_page_count(&self, heading: &str, rows: &[(String, String)]) -> usize {
        self.table_pages(heading, rows).len()
    }

    /// Writes a page with a heading and paragraphs of text, such as a list of failures.
    pub fn add_notice(&mut self, heading: &str, paragraphs: &[String]) -> Result<(), PdfError> {
        let width = self.options.content_width();
        let mut rows = vec![heading_row(heading)];
        for paragraph in paragraphs {
            for line in self.typeface.wrap(paragraph, TABLE_SIZE, width) {
                rows.push(plain_row(TABLE_SIZE, 0.0, line));
            }
        }
        for page in self.paginate(rows, self.options.margin) {
            self.add_rows_page(&page)?;
        }
        Ok(())
    }

    /// Finishes the document and returns its bytes.
    pub fn finish(self) -> Result<Vec<u8>, PdfError> {
        self.document
            .finish()
            .map_err(|error| PdfError::Write(format!("{error:?}")))
    }

    fn footer_text(&self) -> Option<String> {
        self.number_pages.then(|| self.pages.to_string())
    }

    fn table_pages(&self, heading: &str, rows: &[(String, String)]) -> Vec<Vec<Row>> {
        let width = self.options.content_width();
        let mut laid = vec![heading_row(heading)];
        for (left, right) in rows {
            // The left text wraps short of the right column so the two never overlap.
            let right_width = self.typeface.width(right, TABLE_SIZE) + 2.0 * TABLE_SIZE;
            let lines = self.typeface.wrap(left, TABLE_SIZE, width - right_width);
            let last = lines.len() - 1;
            for (index, line) in lines.into_iter().enumerate() {
                laid.push(Row {
                    size: TABLE_SIZE,
                    indent: if index == 0 { 0.0 } else { TABLE_SIZE },
                    text: line,
                    label: None,
                    right: (index == last).then(|| right.clone()),
                });
            }
        }
        self.paginate(laid, self.options.margin)
    }

    /// Splits rows into pages, the first starting at `first_top` and the others at the top
    /// margin.
    fn paginate(&self, rows: Vec<Row>, first_top: f32) -> Vec<Vec<Row>> {
        let bottom = self.options.content_bottom();
        let mut pages = vec![Vec::new()];
        let mut y = first_top;
        for row in rows {
            let current = pages.last().expect("pages starts with one page");
            if y + row.height() > bottom && !current.is_empty() {
                pages.push(Vec::new());
                y = self.options.margin;
            }
            y += row.height();
            pages.last_mut().expect("pages is not empty").push(row);
        }
        pages
    }

    fn add_rows_page(&mut self, rows: &[Row]) -> Result<(), PdfError> {
        self.pages += 1;
        let typeface = Arc::clone(&self.typeface);
        let options = self.options.clone();
        let footer = self.footer_text();
        let mut page = self.document.start_page_with(page_settings(options.page)?);
        let mut surface = page.surface();
        draw_rows(&mut surface, &typeface, rows, &options, options.margin);
        draw_footer(&mut surface, &typeface, &options, footer.as_deref());
        surface.finish();
        page.finish();
        Ok(())
    }

    /// Lays out a map page: title and caption bands for text the scene does not draw, the
    /// scene's placement, and the provenance rows under the map or on pages of their own.
    fn map_layout(&self, scene: &Scene, provenance: &Provenance) -> Result<MapLayout, PdfError> {
        let width = self.options.content_width();
        let title = missing_text(scene, scene.title.as_deref())
            .map(|text| self.wrap_rows(text, TITLE_SIZE, 0.0))
            .unwrap_or_default();
        let caption = missing_text(scene, scene.caption.as_deref())
            .map(|text| self.wrap_rows(text, CAPTION_SIZE, 0.0))
            .unwrap_or_default();
        let band = |rows: &[Row], gap: f32| {
            if rows.is_empty() {
                0.0
            } else {
                rows.iter().map(Row::height).sum::<f32>() + gap
            }
        };
        let placement = self.options.place_map(
            scene.page.width,
            scene.page.height,
            band(&title, GAP / 2.0),
            band(&caption, GAP / 2.0),
        )?;
        let rows = self.provenance_rows(provenance, width);
        let below_top = placement.y + placement.height + band(&caption, GAP / 2.0) + GAP;
        let needed: f32 = rows.iter().map(Row::height).sum();
        let (below, spill_pages) = if below_top + needed <= self.options.content_bottom() {
            (rows, Vec::new())
        } else {
            (Vec::new(), self.paginate(rows, self.options.margin))
        };
        Ok(MapLayout {
            title,
            caption,
            placement,
            below,
            spill_pages,
        })
    }

    fn wrap_rows(&self, text: &str, size: f32, indent: f32) -> Vec<Row> {
        self.typeface
            .wrap(text, size, self.options.content_width() - indent)
            .into_iter()
            .map(|line| plain_row(size, indent, line))
            .collect()
    }

    fn provenance_rows(&self, provenance: &Provenance, width: f32) -> Vec<Row> {
        let mut rows = Vec::new();
        for line in provenance.lines() {
            match line {
                ProvenanceLine::Heading(text) => {
                    rows.extend(self.wrap_rows(&text, HEADING_SIZE, 0.0));
                }
                ProvenanceLine::Field { label, value } => {
                    let lines = self.typeface.wrap(&value, FIELD_SIZE, width - LABEL_WIDTH);
                    for (index, line) in lines.into_iter().enumerate() {
                        rows.push(Row {
                            size: FIELD_SIZE,
                            indent: LABEL_WIDTH,
                            text: line,
                            label: (index == 0).then(|| label.clone()),
                            right: None,
                        });
                    }
                }
            }
        }
        rows
    }
}

struct MapLayout {
    title: Vec<Row>,
    caption: Vec<Row>,
    placement: MapPlacement,
    /// Provenance rows under the map, or none when they go on pages of their own.
    below: Vec<Row>,
    spill_pages: Vec<Vec<Row>>,
}

fn heading_row(text: &str) -> Row {
    plain_row(TITLE_SIZE, 0.0, text.to_string())
}

fn plain_row(size: f32, indent: f32, text: String) -> Row {
    Row {
        size,
        indent,
        text,
        label: None,
        right: None,
    }
}

/// Returns `text` when the scene has no text item with exactly that string, so the page
/// draws titles and captions that the scene's furniture left out, and never twice.
fn missing_text<'a>(scene: &Scene, text: Option<&'a str>) -> Option<&'a str> {
    let text = text.filter(|text| !text.trim().is_empty())?;
    (!items_show(&scene.items, text)).then_some(text)
}

fn items_show(items: &[Item], text: &str) -> bool {
    items.iter().any(|item| match item {
        Item::Text(item) => item.text == text,
        Item::Group(group) => items_show(&group.items, text),
        Item::Path(_) | Item::Image(_) => false,
    })
}

fn page_settings(size: PageSize) -> Result<PageSettings, PdfError> {
    PageSettings::from_wh(size.width, size.height).ok_or_else(|| {
        PdfError::Page(PageError::OutOfRange(
            format!("{}x{}pt", size.width, size.height),
            size.width,
            size.height,
        ))
    })
}

fn pdf_date(time: DateTime<Utc>) -> krilla::metadata::DateTime {
    krilla::metadata::DateTime::new(time.year().clamp(0, 9999) as u16)
        .month(time.month() as u8)
        .day(time.day() as u8)
        .hour(time.hour() as u8)
        .minute(time.minute() as u8)
        .second(time.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

fn black_fill() -> Fill {
    Fill {
        paint: rgb::Color::new(0, 0, 0).into(),
        ..Fill::default()
    }
}

fn draw_line(
    surface: &mut Surface<'_>,
    typeface: &Typeface,
    text: &str,
    size: f32,
    x: f32,
    y: f32,
) {
    if text.is_empty() {
        return;
    }
    surface.set_fill(Some(black_fill()));
    surface.draw_text(
        Point::from_xy(x, y),
        typeface.font.clone(),
        size,
        text,
        false,
        TextDirection::Auto,
    );
    surface.set_fill(None);
}

/// Draws `rows` one under the other from `top` across the text width, and returns the y
/// below the last.
fn draw_rows(
    surface: &mut Surface<'_>,
    typeface: &Typeface,
    rows: &[Row],
    options: &PdfOptions,
    top: f32,
) -> f32 {
    let mut y = top;
    for row in rows {
        y += row.height();
        draw_row(
            surface,
            typeface,
            row,
            options.margin,
            y,
            options.content_width(),
        );
    }
    y
}

/// Draws `row` with its baseline at `baseline`, between `left` and `left + width`.
fn draw_row(
    surface: &mut Surface<'_>,
    typeface: &Typeface,
    row: &Row,
    left: f32,
    baseline: f32,
    width: f32,
) {
    // The baseline sits a descent above the row's bottom.
    let y = baseline - typeface.descent(row.size);
    if let Some(label) = &row.label {
        draw_line(surface, typeface, label, row.size, left, y);
    }
    draw_line(surface, typeface, &row.text, row.size, left + row.indent, y);
    if let Some(right) = &row.right {
        let x = left + width - typeface.width(right, row.size);
        draw_line(surface, typeface, right, row.size, x, y);
    }
}

fn draw_footer(
    surface: &mut Surface<'_>,
    typeface: &Typeface,
    options: &PdfOptions,
    text: Option<&str>,
) {
    let Some(text) = text else {
        return;
    };
    let x = (options.page.width - typeface.width(text, FOOTER_SIZE)) / 2.0;
    let y = options.page.height - options.margin;
    draw_line(surface, typeface, text, FOOTER_SIZE, x, y);
}

/// Draws the scene at `placement`, clipped to its page, with a thin frame around the map.
fn draw_scene(
    surface: &mut Surface<'_>,
    scene: &Scene,
    placement: &MapPlacement,
) -> Result<(), PdfError> {
    surface.push_transform(&Transform::from_translate(placement.x, placement.y));
    surface.push_transform(&Transform::from_scale(placement.scale, placement.scale));
    let page_rect = crate::map::scene::Rect {
        x: 0.0,
        y: 0.0,
        width: scene.page.width,
        height: scene.page.height,
    };
    // The clip keeps labels and imagery that overhang the scene's page off the margins.
    let clip = draw::rect_path(&page_rect);
    if let Some(clip) = &clip {
        surface.push_clip_path(clip, &krilla::paint::FillRule::NonZero);
    }
    let drawn = draw::draw_items(surface, &scene.items);
    if clip.is_some() {
        surface.pop();
    }

    let frame = scene.georeference.frame;
    if frame.width > 0.0 && frame.height > 0.0 {
        let mut builder = PathBuilder::new();
        if let Some(rect) = krilla::geom::Rect::from_xywh(
            frame.x as f32,
            frame.y as f32,
            frame.width as f32,
            frame.height as f32,
        ) {
            builder.push_rect(rect);
        }
        if let Some(path) = builder.finish() {
            surface.set_stroke(Some(Stroke {
                paint: rgb::Color::new(40, 40, 40).into(),
                width: 0.5 / placement.scale,
                opacity: NormalizedF32::ONE,
                ..Stroke::default()
            }));
            surface.draw_path(&path);
            surface.set_stroke(None);
        }
    }
    surface.pop();
    surface.pop();
    drawn
}

#[cfg(test)]
mod tests;
