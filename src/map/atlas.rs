//! `tessera atlas`: one PDF with an overview map of every facility (feature) of a vector
//! source, an index of facility names with page numbers, and a map page per facility.
//!
//! Scenes are built in parallel on the worker pool; the PDF is written after, in order.
//! A facility whose map fails (over a limit, a broken layer) gets a page saying why, and
//! the other pages are kept.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use super::pdf::page::{PageSize, parse_margin};
use super::pdf::provenance::{Provenance, rendering_time};
use super::pdf::render::{print_request, provenance_of};
use super::pdf::{PdfOptions, PdfWriter};
use super::scene::{
    Fill, FillRule, FontFace, Item, LineCap, LineJoin, PathCommand, PathItem, Point, Rgba, Scene,
    Stroke, TextAnchor, TextItem,
};
use super::{Limits, MapContext, MapOptions, MapRequest, OutputFormat, View};
use crate::config::Config;
use crate::server::AppState;
use crate::source::Backend;
use crate::tile::{Bbox, lonlat_to_mercator};

/// The arguments of `tessera atlas`.
#[derive(Debug, clap::Args)]
pub struct AtlasArgs {
    /// Output PDF file.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Id of the vector source whose features are the facilities.
    #[arg(long)]
    pub source: String,
    /// Keep only features whose attribute FIELD equals VALUE; repeat to require several.
    #[arg(long = "filter", value_name = "FIELD=VALUE")]
    pub filters: Vec<String>,
    /// Style id in the styles folder.
    #[arg(long, default_value = "tessera")]
    pub style: String,
    /// Zoom of every facility page (MapLibre's zoom); without it each page fits its facility
    /// with a margin.
    #[arg(long)]
    pub zoom: Option<f64>,
    /// Smallest ground extent around a facility when fitting, in metres, so that a point
    /// facility is shown with its surroundings.
    #[arg(long, default_value_t = 3000.0)]
    pub min_extent: f64,
    /// Page size: a4, a3, a5, letter or legal, optionally with -landscape, or WIDTHxHEIGHT
    /// with a unit mm, cm, in or pt.
    #[arg(long, default_value = "a4")]
    pub page: String,
    /// Margin on every side, such as 12mm or 0.5in.
    #[arg(long, default_value = "12mm")]
    pub margin: String,
    /// Imagery density on paper, in dots per inch.
    #[arg(long, default_value_t = super::pdf::DEFAULT_DPI)]
    pub dpi: f64,
    /// For dated imagery: YYYY, YYYY-MM or YYYY-MM-DD.
    #[arg(long)]
    pub date: Option<String>,
    /// Configuration file (TOML) naming sources and options.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Files and folders to draw from instead of ./geodata and ./tiles.
    pub paths: Vec<PathBuf>,
}

/// A feature of the atlas's source: its number (its order in the source, from 1), its name
/// and its extent in degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct Facility {
    pub number: usize,
    pub name: String,
    pub bounds: Bbox,
}

impl Facility {
    /// Returns the centre of the facility's extent in degrees, longitude first.
    pub fn centre(&self) -> (f64, f64) {
        (
            f64::midpoint(self.bounds.min_x, self.bounds.max_x),
            f64::midpoint(self.bounds.min_y, self.bounds.max_y),
        )
    }
}

/// The outcome of an atlas run: pages written and facilities whose map failed.
#[derive(Debug, Clone, PartialEq)]
pub struct AtlasSummary {
    pub pages: usize,
    pub facilities: usize,
    /// Facilities whose map failed, with the reason; each has a page stating it.
    pub failed: Vec<(String, String)>,
}

/// Attributes read for a facility's Latin name, in order of preference.
const LATIN_NAME_FIELDS: [&str; 4] = ["name", "name_en", "name:en", "title"];
/// Attributes read for a facility's Korean name, in order of preference.
const KOREAN_NAME_FIELDS: [&str; 5] = ["name_ko", "name:ko", "name_kr", "name_korean", "hangul"];

/// Width of every atlas scene in page units; the height follows the page's proportions.
const SCENE_WIDTH: f64 = 800.0;
/// Share of the text area that a facility's map takes, leaving the rest for provenance.
const MAP_SHARE: f32 = 0.62;
/// Margin around a fitted facility, as a share of its extent on each side.
const FIT_MARGIN: f64 = 0.2;
/// Metres per degree of latitude, near enough for padding a map extent.
const METRES_PER_DEGREE: f64 = 111_320.0;

/// A `--filter FIELD=VALUE` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub value: String,
}

impl Filter {
    pub fn parse(text: &str) -> anyhow::Result<Filter> {
        let (field, value) = text.split_once('=').with_context(|| {
            format!("invalid --filter {text:?}: use FIELD=VALUE, such as kind=kwanliso")
        })?;
        anyhow::ensure!(
            !field.trim().is_empty(),
            "invalid --filter {text:?}: the field name before = is empty"
        );
        Ok(Filter {
            field: field.trim().to_string(),
            value: value.to_string(),
        })
    }

    /// Returns whether the attribute equals the value. Numbers and booleans compare as their
    /// JSON text, and a missing or null attribute never matches.
    pub fn matches(&self, properties: &Map<String, Value>) -> bool {
        match properties.get(&self.field) {
            Some(Value::String(text)) => *text == self.value,
            Some(Value::Number(number)) => number.to_string() == self.value,
            Some(Value::Bool(flag)) => flag.to_string() == self.value,
            // Vector attributes are strings, numbers and booleans: lists arrive as JSON text.
            Some(Value::Null | Value::Array(_) | Value::Object(_)) | None => false,
        }
    }
}

/// Returns a facility's name from its attributes: the Latin name and the Korean name when the
/// data has both, or whichever it has, or `Feature {number}`.
pub fn facility_name(properties: &Map<String, Value>, number: usize) -> String {
    let first = |fields: &[&str]| {
        fields.iter().find_map(|field| {
            properties
                .get(*field)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        })
    };
    match (first(&LATIN_NAME_FIELDS), first(&KOREAN_NAME_FIELDS)) {
        (Some(latin), Some(korean)) if latin != korean => format!("{latin} ({korean})"),
        (Some(name), _) | (None, Some(name)) => name,
        (None, None) => format!("Feature {number}"),
    }
}

/// Lists the facilities of a vector source that pass every filter, numbered in file order.
pub fn facilities(source: &crate::vector::VectorSource, filters: &[Filter]) -> Vec<Facility> {
    let mut found = Vec::new();
    for feature in source.find_features(None) {
        let properties = source.feature_properties(feature);
        if !filters.iter().all(|filter| filter.matches(&properties)) {
            continue;
        }
        let geojson = source.feature_geojson(feature);
        let Some(bounds) = geojson.get("geometry").and_then(json_bounds) else {
            continue;
        };
        let number = found.len() + 1;
        found.push(Facility {
            number,
            name: facility_name(&properties, number),
            bounds,
        });
    }
    found
}

/// Returns the lon/lat box of a GeoJSON geometry's coordinates.
fn json_bounds(geometry: &Value) -> Option<Bbox> {
    fn visit(value: &Value, bounds: &mut Option<Bbox>) {
        let Some(items) = value.as_array() else {
            return;
        };
        if let [Value::Number(x), Value::Number(y), ..] = items.as_slice() {
            let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                return;
            };
            *bounds = Some(match *bounds {
                None => Bbox::new(x, y, x, y),
                Some(b) => Bbox::new(
                    b.min_x.min(x),
                    b.min_y.min(y),
                    b.max_x.max(x),
                    b.max_y.max(y),
                ),
            });
            return;
        }
        for item in items {
            visit(item, bounds);
        }
    }
    let mut bounds = None;
    if let Some(geometries) = geometry.get("geometries").and_then(Value::as_array) {
        for part in geometries {
            if let Some(part_bounds) = json_bounds(part) {
                bounds = Some(union(bounds, part_bounds));
            }
        }
    } else {
        visit(geometry.get("coordinates")?, &mut bounds);
    }
    bounds
}

fn union(bounds: Option<Bbox>, other: Bbox) -> Bbox {
    match bounds {
        None => other,
        Some(b) => Bbox::new(
            b.min_x.min(other.min_x),
            b.min_y.min(other.min_y),
            b.max_x.max(other.max_x),
            b.max_y.max(other.max_y),
        ),
    }
}

/// Grows `bounds` by `FIT_MARGIN` of its size on each side and to at least `min_extent`
/// metres on the ground in each direction, within the Web Mercator latitudes.
pub fn padded_bounds(bounds: Bbox, min_extent: f64) -> Bbox {
    let centre_lat = f64::midpoint(bounds.min_y, bounds.max_y);
    let min_lat_span = min_extent / METRES_PER_DEGREE;
    let min_lon_span = min_extent / (METRES_PER_DEGREE * centre_lat.to_radians().cos().max(0.01));
    let grow = |min: f64, max: f64, min_span: f64| {
        let span = ((max - min) * (1.0 + 2.0 * FIT_MARGIN)).max(min_span);
        let centre = f64::midpoint(min, max);
        (centre - span / 2.0, centre + span / 2.0)
    };
    let (west, east) = grow(bounds.min_x, bounds.max_x, min_lon_span);
    let (south, north) = grow(bounds.min_y, bounds.max_y, min_lat_span);
    let limit = crate::tile::MAX_LATITUDE;
    Bbox::new(
        west.max(-180.0),
        south.max(-limit),
        east.min(180.0),
        north.min(limit),
    )
}

/// Returns the scene height, in page units, that makes a `SCENE_WIDTH` map take `MAP_SHARE`
/// of the page's text area.
fn scene_height(pdf: &PdfOptions) -> f64 {
    let width = pdf.page.width - 2.0 * pdf.margin;
    let height = (pdf.page.height - 2.0 * pdf.margin) * MAP_SHARE;
    (SCENE_WIDTH * f64::from(height / width)).clamp(200.0, 2400.0)
}

/// The scene and provenance of one facility (or the overview), or the reason it failed.
type PageResult = Result<(Scene, Provenance), String>;

/// Builds one map's scene at print density and its provenance. Blocking.
fn render_page(
    context: &MapContext,
    request: &MapRequest,
    pdf: &PdfOptions,
    limits: &Limits,
) -> PageResult {
    let started = Instant::now();
    let print = print_request(request, pdf).map_err(|error| error.to_string())?;
    super::check_pixels(&print, limits).map_err(|error| error.to_string())?;
    let scene =
        super::build_scene(context, &print, started + limits.timeout).map_err(
            |error| match error {
                super::MapError::TimedOut { .. } => super::MapError::TimedOut {
                    seconds: limits.timeout.as_secs_f64(),
                }
                .to_string(),
                other => other.to_string(),
            },
        )?;
    if started.elapsed() > limits.timeout {
        return Err(super::MapError::TimedOut {
            seconds: limits.timeout.as_secs_f64(),
        }
        .to_string());
    }
    let provenance = provenance_of(&scene, request, rendering_time());
    Ok((scene, provenance))
}

/// Formats a position as `39.67427° N, 126.85104° E`.
fn format_position(lon: f64, lat: f64) -> String {
    let north_south = if lat >= 0.0 { 'N' } else { 'S' };
    let east_west = if lon >= 0.0 { 'E' } else { 'W' };
    format!(
        "{:.5}° {north_south}, {:.5}° {east_west}",
        lat.abs(),
        lon.abs()
    )
}

/// Adds a numbered marker for each facility to the overview scene, at its centre.
fn add_markers(scene: &mut Scene, facilities: &[Facility], face: &FontFace) {
    let [west, south, east, north] = scene.georeference.mercator_bounds;
    let frame = scene.georeference.frame;
    let mut markers = Vec::new();
    for facility in facilities {
        let (lon, lat) = facility.centre();
        let (x, y) = lonlat_to_mercator(lon, lat);
        let centre = Point {
            x: frame.x + (x - west) / (east - west) * frame.width,
            y: frame.y + (north - y) / (north - south) * frame.height,
        };
        markers.push(Item::Path(circle(centre, 7.0)));
        markers.push(Item::Text(TextItem {
            text: facility.number.to_string(),
            face: face.clone(),
            size: 8.0,
            colour: Rgba::new(120, 0, 0, 255),
            halo: None,
            position: centre,
            anchor: TextAnchor::Center,
            rotation: 0.0,
        }));
    }
    scene.items.push(Item::Group(super::scene::Group {
        clip: Some(frame),
        items: markers,
    }));
}

/// Builds a circle of `radius` page units from four cubic Béziers.
fn circle(centre: Point, radius: f64) -> PathItem {
    // Control-point distance for a quarter circle: 4/3 * tan(pi/8).
    let k = 0.552_284_75 * radius;
    let (cx, cy) = (centre.x, centre.y);
    let at = |x: f64, y: f64| Point { x, y };
    PathItem {
        commands: vec![
            PathCommand::MoveTo(at(cx + radius, cy)),
            PathCommand::CubicTo(
                at(cx + radius, cy + k),
                at(cx + k, cy + radius),
                at(cx, cy + radius),
            ),
            PathCommand::CubicTo(
                at(cx - k, cy + radius),
                at(cx - radius, cy + k),
                at(cx - radius, cy),
            ),
            PathCommand::CubicTo(
                at(cx - radius, cy - k),
                at(cx - k, cy - radius),
                at(cx, cy - radius),
            ),
            PathCommand::CubicTo(
                at(cx + k, cy - radius),
                at(cx + radius, cy - k),
                at(cx + radius, cy),
            ),
            PathCommand::Close,
        ],
        fill: Some(Fill {
            colour: Rgba::WHITE,
            opacity: 0.9,
            rule: FillRule::NonZero,
        }),
        stroke: Some(Stroke {
            colour: Rgba::new(120, 0, 0, 255),
            width: 1.5,
            opacity: 1.0,
            dash: Vec::new(),
            join: LineJoin::Round,
            cap: LineCap::Round,
        }),
    }
}

/// Builds the index rows, `number. name` and the page, sorted by name.
fn index_rows(facilities: &[Facility], first_pages: &[usize]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, usize, usize)> = facilities
        .iter()
        .zip(first_pages)
        .map(|(facility, &page)| (facility.name.clone(), facility.number, page))
        .collect();
    rows.sort_by(|a, b| {
        a.0.to_lowercase()
            .cmp(&b.0.to_lowercase())
            .then(a.1.cmp(&b.1))
    });
    rows.into_iter()
        .map(|(name, number, page)| (format!("{number}. {name}"), page.to_string()))
        .collect()
}

/// Heading of the index pages.
const INDEX_HEADING: &str = "Index of facilities";
/// Heading of the overview map when it fails.
const OVERVIEW_HEADING: &str = "Overview";

/// Counts the pages each part takes and returns the first page of every facility and the
/// number of index pages. The index's length depends on the page numbers it lists, so the
/// count repeats until it is stable.
fn number_pages(
    writer: &PdfWriter,
    facilities: &[Facility],
    overview_pages: usize,
    facility_pages: &[usize],
) -> (Vec<usize>, usize) {
    let mut index_pages = 1;
    loop {
        let mut next = overview_pages + index_pages + 1;
        let firsts: Vec<usize> = facility_pages
            .iter()
            .map(|pages| {
                let first = next;
                next += pages;
                first
            })
            .collect();
        let counted = writer.table_page_count(INDEX_HEADING, &index_rows(facilities, &firsts));
        if counted <= index_pages {
            return (firsts, index_pages);
        }
        index_pages = counted;
    }
}

/// The checked options of an atlas run.
struct AtlasOptions {
    filters: Vec<Filter>,
    pdf: PdfOptions,
    date: Option<crate::collection::Period>,
}

/// Checks the arguments before any file is loaded.
fn check_args(args: &AtlasArgs) -> anyhow::Result<AtlasOptions> {
    let filters = args
        .filters
        .iter()
        .map(|text| Filter::parse(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let page =
        PageSize::parse(&args.page).map_err(|error| anyhow::anyhow!("invalid --page: {error}"))?;
    let margin =
        parse_margin(&args.margin).map_err(|error| anyhow::anyhow!("invalid --margin: {error}"))?;
    anyhow::ensure!(
        (24.0..=super::request::MAX_DPI).contains(&args.dpi),
        "invalid --dpi {}: use 24 to {} dots per inch",
        args.dpi,
        super::request::MAX_DPI
    );
    if let Some(zoom) = args.zoom {
        anyhow::ensure!(
            (0.0..=super::view::MAX_ZOOM).contains(&zoom),
            "invalid --zoom {zoom}: use 0 to {}",
            super::view::MAX_ZOOM
        );
    }
    anyhow::ensure!(
        args.min_extent.is_finite() && args.min_extent > 0.0,
        "invalid --min-extent {}: use a ground distance in metres above 0",
        args.min_extent
    );
    let date = args
        .date
        .as_deref()
        .map(str::parse::<crate::collection::Period>)
        .transpose()
        .map_err(|message| anyhow::anyhow!("invalid --date: {message}"))?;
    Ok(AtlasOptions {
        filters,
        pdf: PdfOptions {
            page,
            margin,
            dpi: args.dpi,
        },
        date,
    })
}

/// Loads the catalog like `serve`, renders every page and writes the atlas to `args.output`.
pub fn run(args: &AtlasArgs) -> anyhow::Result<AtlasSummary> {
    let options = check_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let state = runtime.block_on(AppState::load(load_config(args)?))?;
    for failure in state.failures.iter() {
        tracing::warn!(path = %failure.path.display(), reason = %failure.reason, "not loaded");
    }
    let source = state.catalog.get(&args.source).with_context(|| {
        format!(
            "no source {:?}: see `tessera serve` output or /catalog for the ids served",
            args.source
        )
    })?;
    let Backend::Vector(vector) = &source.backend else {
        anyhow::bail!(
            "source {:?} is not a vector source: an atlas needs features, such as a GeoJSON file",
            args.source
        );
    };
    let facilities = facilities(vector, &options.filters);
    anyhow::ensure!(
        !facilities.is_empty(),
        "source {:?} has no feature that passes the filters {:?}",
        args.source,
        args.filters
    );
    let face = super::pdf::render::text_face(&state.glyphs)?;
    let context = crate::server::static_map::map_context(&state, runtime.handle().clone());
    let limits = crate::server::static_map::limits(&state.config);

    let template = AtlasTemplate {
        style: args.style.clone(),
        width: SCENE_WIDTH,
        height: scene_height(&options.pdf),
        date: options.date,
    };
    let requests = page_requests(args, &template, &source.name, &facilities);
    let progress = progress_bar(requests.len() as u64);
    let mut results = runtime.block_on(render_all(
        &state,
        &context,
        requests,
        &options.pdf,
        limits,
        &progress,
    ));
    progress.finish_and_clear();
    let overview = results.remove(0);
    write_atlas(
        args,
        &options.pdf,
        &face,
        &source.name,
        &facilities,
        overview,
        &results,
    )
}

/// Returns the overview's request followed by one request per facility.
fn page_requests(
    args: &AtlasArgs,
    template: &AtlasTemplate,
    source_name: &str,
    facilities: &[Facility],
) -> Vec<MapRequest> {
    let all = facilities
        .iter()
        .fold(None, |bounds, facility| {
            Some(union(bounds, facility.bounds))
        })
        .expect("facilities is not empty");
    let overview = template.request(
        View::Bounds(padded_bounds(all, args.min_extent)),
        Some(format!("{source_name}: {} facilities", facilities.len())),
        None,
    );
    let pages = facilities.iter().map(|facility| {
        let (lon, lat) = facility.centre();
        let view = match args.zoom {
            Some(zoom) => View::Centre { lon, lat, zoom },
            None => View::Bounds(padded_bounds(facility.bounds, args.min_extent)),
        };
        template.request(
            view,
            Some(format!("{}. {}", facility.number, facility.name)),
            Some(format!(
                "Facility {} of {}, {}",
                facility.number,
                facilities.len(),
                format_position(lon, lat)
            )),
        )
    });
    std::iter::once(overview).chain(pages).collect()
}

/// The request shared by every page of an atlas.
struct AtlasTemplate {
    style: String,
    width: f64,
    height: f64,
    date: Option<crate::collection::Period>,
}

impl AtlasTemplate {
    fn request(&self, view: View, title: Option<String>, caption: Option<String>) -> MapRequest {
        let mut options = MapOptions::for_format(OutputFormat::Pdf);
        options.title = title;
        options.caption = caption;
        options.date = self.date;
        MapRequest {
            style: self.style.clone(),
            view,
            width: self.width.round() as u32,
            height: self.height.round() as u32,
            ratio: 1,
            format: OutputFormat::Pdf,
            options,
        }
    }
}

fn load_config(args: &AtlasArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if !args.paths.is_empty() {
        config.paths.clone_from(&args.paths);
    } else if args.config.is_none() {
        config.paths = crate::config::DEFAULT_FOLDERS
            .iter()
            .map(PathBuf::from)
            .filter(|path| path.is_dir())
            .collect();
    }
    Ok(config)
}

/// Creates a progress bar on standard error, hidden when standard error is not a terminal.
fn progress_bar(length: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} maps {elapsed}") {
        bar.set_style(style);
    }
    bar
}

/// Renders every request on the worker pool at once and returns the results in order.
async fn render_all(
    state: &AppState,
    context: &MapContext,
    requests: Vec<MapRequest>,
    pdf: &PdfOptions,
    limits: Limits,
    progress: &ProgressBar,
) -> Vec<PageResult> {
    let mut jobs = tokio::task::JoinSet::new();
    let count = requests.len();
    for (position, request) in requests.into_iter().enumerate() {
        let workers = state.workers.clone();
        let context = context.clone();
        let pdf = pdf.clone();
        jobs.spawn(async move {
            let result = workers
                .run(move || render_page(&context, &request, &pdf, &limits))
                .await
                .unwrap_or_else(|error| Err(error.to_string()));
            (position, result)
        });
    }
    let mut results: Vec<Option<PageResult>> = (0..count).map(|_| None).collect();
    while let Some(joined) = jobs.join_next().await {
        progress.inc(1);
        match joined {
            Ok((position, result)) => results[position] = Some(result),
            Err(error) => tracing::error!(%error, "an atlas page task failed"),
        }
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err("the page's task failed; see the log".to_string()))
        })
        .collect()
}

/// Writes the overview, the index and the facility pages, in that order, to `args.output`.
fn write_atlas(
    args: &AtlasArgs,
    pdf: &PdfOptions,
    face: &FontFace,
    source_name: &str,
    facilities: &[Facility],
    overview: PageResult,
    pages: &[PageResult],
) -> anyhow::Result<AtlasSummary> {
    let title = format!("Atlas of {source_name}");
    let mut writer = PdfWriter::new(pdf.clone(), face, Some(&title), rendering_time(), true)?;
    let overview = overview.map(|(mut scene, provenance)| {
        add_markers(&mut scene, facilities, face);
        (scene, provenance)
    });
    let count_pages = |result: &PageResult| match result {
        Ok((scene, provenance)) => writer.map_page_count(scene, provenance).unwrap_or(1),
        Err(_) => 1,
    };
    let overview_pages = count_pages(&overview);
    let facility_pages: Vec<usize> = pages.iter().map(count_pages).collect();
    let (firsts, _) = number_pages(&writer, facilities, overview_pages, &facility_pages);

    let mut failed = Vec::new();
    write_page(&mut writer, OVERVIEW_HEADING, &overview, &mut failed)?;
    writer.add_table(INDEX_HEADING, &index_rows(facilities, &firsts))?;
    for ((facility, result), first) in facilities.iter().zip(pages).zip(&firsts) {
        let heading = format!("{}. {}", facility.number, facility.name);
        let written_at = writer.page_count() + 1;
        write_page(&mut writer, &heading, result, &mut failed)?;
        if written_at != *first {
            tracing::warn!(facility = %heading, expected = first, written_at, "index page number differs from the page written");
        }
    }
    let pages = writer.page_count();
    let bytes = writer.finish()?;
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("writing {} failed", args.output.display()))?;
    tracing::info!(output = %args.output.display(), pages, bytes = bytes.len(), failed = failed.len(), "atlas written");
    Ok(AtlasSummary {
        pages,
        facilities: facilities.len(),
        failed,
    })
}

fn write_page(
    writer: &mut PdfWriter,
    heading: &str,
    result: &PageResult,
    failed: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    match result {
        Ok((scene, provenance)) => {
            writer.add_map(scene, provenance)?;
        }
        Err(reason) => {
            tracing::warn!(page = %heading, %reason, "atlas page not rendered");
            writer.add_notice(heading, &[format!("This map was not rendered: {reason}")])?;
            failed.push((heading.to_string(), reason.clone()));
        }
    }
    Ok(())
}

/// Runs `tessera atlas`: writes the atlas, and fails when no facility's map was rendered.
pub fn run_and_report(args: &AtlasArgs) -> anyhow::Result<()> {
    let summary = run(args)?;
    let failed_facilities = summary
        .failed
        .iter()
        .filter(|(page, _)| page != OVERVIEW_HEADING)
        .count();
    anyhow::ensure!(
        failed_facilities < summary.facilities,
        "no facility map was rendered ({} failed; the reasons are logged above); {} still \
         lists them",
        failed_facilities,
        args.output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn properties(value: &Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    #[test]
    fn names_combine_latin_and_korean() {
        let cases = [
            (json!({"name": "Camp 15, Yodok"}), "Camp 15, Yodok"),
            (
                json!({"name": "Camp 15, Yodok", "name_ko": "요덕"}),
                "Camp 15, Yodok (요덕)",
            ),
            (json!({"name:ko": "요덕"}), "요덕"),
            (json!({"name": "요덕", "name_ko": "요덕"}), "요덕"),
            (json!({"name": "  ", "title": "Kaechon"}), "Kaechon"),
            (json!({"id": 4}), "Feature 7"),
        ];
        for (value, expected) in cases {
            assert_eq!(facility_name(&properties(&value), 7), expected, "{value}");
        }
    }

    #[test]
    fn filters_parse_and_match() {
        let filter = Filter::parse("kind=Political prison camp (kwanliso)").expect("valid");
        assert_eq!(filter.field, "kind");
        assert!(filter.matches(&properties(
            &json!({"kind": "Political prison camp (kwanliso)"})
        )));
        assert!(!filter.matches(&properties(&json!({"kind": "Prison"}))));
        assert!(!filter.matches(&properties(&json!({}))));
        let number = Filter::parse("prisoners=15000").expect("valid");
        assert!(number.matches(&properties(&json!({"prisoners": 15000}))));
        assert!(!number.matches(&properties(&json!({"prisoners": null}))));
        assert!(Filter::parse("kind").is_err());
        assert!(Filter::parse("=x").is_err());
    }

    #[test]
    fn bounds_of_geojson_geometries() {
        let cases = [
            (
                json!({"type": "Point", "coordinates": [126.0, 39.5]}),
                [126.0, 39.5, 126.0, 39.5],
            ),
            (
                json!({"type": "Polygon", "coordinates": [[[1.0, 2.0], [3.0, 2.0], [3.0, 5.0], [1.0, 2.0]]]}),
                [1.0, 2.0, 3.0, 5.0],
            ),
            (
                json!({"type": "GeometryCollection", "geometries": [
                    {"type": "Point", "coordinates": [0.0, 0.0]},
                    {"type": "LineString", "coordinates": [[4.0, -1.0], [5.0, 1.0]]}
                ]}),
                [0.0, -1.0, 5.0, 1.0],
            ),
        ];
        for (geometry, [west, south, east, north]) in cases {
            let bounds = json_bounds(&geometry).expect("bounds");
            assert_eq!(bounds, Bbox::new(west, south, east, north), "{geometry}");
        }
        assert!(json_bounds(&json!({"type": "Point", "coordinates": []})).is_none());
    }

    #[test]
    fn padding_reaches_min_extent() {
        let point = Bbox::new(126.0, 39.5, 126.0, 39.5);
        let padded = padded_bounds(point, 3000.0);
        let height_m = (padded.max_y - padded.min_y) * METRES_PER_DEGREE;
        let width_m =
            (padded.max_x - padded.min_x) * METRES_PER_DEGREE * 39.5_f64.to_radians().cos();
        assert!((height_m - 3000.0).abs() < 1.0, "{height_m}");
        assert!((width_m - 3000.0).abs() < 1.0, "{width_m}");

        let large = Bbox::new(120.0, 30.0, 130.0, 40.0);
        let padded = padded_bounds(large, 3000.0);
        assert!((padded.max_x - padded.min_x - 14.0).abs() < 1e-9);
        assert!((padded.min_y - 28.0).abs() < 1e-9);
    }

    #[test]
    fn index_sorted_by_name() {
        let facility = |number, name: &str| Facility {
            number,
            name: name.to_string(),
            bounds: Bbox::new(0.0, 0.0, 0.0, 0.0),
        };
        let facilities = [
            facility(1, "Camp 25"),
            facility(2, "camp 14"),
            facility(3, "Baek"),
        ];
        let rows = index_rows(&facilities, &[3, 4, 6]);
        let expected = [("3. Baek", "6"), ("2. camp 14", "4"), ("1. Camp 25", "3")];
        for (row, (name, page)) in rows.iter().zip(expected) {
            assert_eq!(row.0, name);
            assert_eq!(row.1, page);
        }
    }

    #[test]
    fn positions_name_hemispheres() {
        assert_eq!(format_position(126.85, 39.67), "39.67000° N, 126.85000° E");
        assert_eq!(format_position(-70.5, -33.25), "33.25000° S, 70.50000° W");
    }
}
