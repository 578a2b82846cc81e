//! `tessera render`: a static map written to a file, with the catalog loaded as `serve`
//! loads it and no server started.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;

use super::request::{parse_options, parse_size};
use super::{MapRequest, View};
use crate::config::Config;
use crate::server::AppState;

/// The arguments of `tessera render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Output file; its extension sets the format: .png, .jpg, .tif or .pdf.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Style id in the styles folder.
    #[arg(long, default_value = "tessera")]
    pub style: String,
    /// Centre and zoom as LON,LAT,ZOOM in degrees (MapLibre's zoom).
    #[arg(long, conflicts_with = "bbox", allow_hyphen_values = true)]
    pub center: Option<String>,
    /// Bounding box as MINLON,MINLAT,MAXLON,MAXLAT in degrees; without --center or --bbox
    /// the map fits every source the style draws.
    #[arg(long, allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Page size as WIDTHxHEIGHT in CSS pixels.
    #[arg(long, default_value = "800x600")]
    pub size: String,
    /// Device pixels per CSS pixel: 1 or 2.
    #[arg(long, default_value_t = 1)]
    pub ratio: u32,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub caption: Option<String>,
    /// Draw a legend of the style's layers.
    #[arg(long)]
    pub legend: bool,
    /// Draw a north arrow.
    #[arg(long)]
    pub north: bool,
    /// Draw a lon/lat grid.
    #[arg(long)]
    pub grid: bool,
    /// Draw the scale bar: true or false (default: true, false for GeoTIFF).
    #[arg(long)]
    pub scalebar: Option<String>,
    /// Draw the attribution: true or false (default: true, false for GeoTIFF).
    #[arg(long)]
    pub attribution: Option<String>,
    /// Print resolution in dots per inch (96 by default, 150 for PDF imagery).
    #[arg(long)]
    pub dpi: Option<String>,
    /// For dated imagery: YYYY, YYYY-MM or YYYY-MM-DD.
    #[arg(long)]
    pub date: Option<String>,
    /// Enhancement of imagery finer than its scene: auto, none or steps.
    #[arg(long)]
    pub enhance: Option<String>,
    /// PDF page size: a4 (default), a3, a5, letter or legal, optionally with -landscape, or
    /// WIDTHxHEIGHT with a unit mm, cm, in or pt.
    #[arg(long)]
    pub page: Option<String>,
    /// PDF margin on every side, such as 12mm (default) or 0.5in.
    #[arg(long)]
    pub margin: Option<String>,
    /// Configuration file (TOML) naming sources and options.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Files and folders to draw from instead of ./geodata and ./tiles.
    pub paths: Vec<PathBuf>,
}

impl RenderArgs {
    /// The query pairs that the route would receive for these arguments.
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut add = |name: &str, value: Option<&String>| {
            if let Some(value) = value {
                pairs.push((name.to_owned(), value.clone()));
            }
        };
        add("title", self.title.as_ref());
        add("caption", self.caption.as_ref());
        add("scalebar", self.scalebar.as_ref());
        add("attribution", self.attribution.as_ref());
        add("dpi", self.dpi.as_ref());
        add("date", self.date.as_ref());
        add("enhance", self.enhance.as_ref());
        add("page", self.page.as_ref());
        add("margin", self.margin.as_ref());
        for (name, set) in [
            ("legend", self.legend),
            ("north", self.north),
            ("grid", self.grid),
        ] {
            if set {
                pairs.push((name.to_owned(), "true".to_owned()));
            }
        }
        pairs
    }

    /// Builds the request these arguments describe, checked like a `/static` request.
    pub fn request(&self) -> anyhow::Result<MapRequest> {
        let position = self
            .center
            .as_deref()
            .or(self.bbox.as_deref())
            .unwrap_or("auto");
        let view = View::parse(position).map_err(|invalid| {
            anyhow::anyhow!(
                "invalid --center or --bbox ({}): {}",
                invalid.parameter,
                invalid.message
            )
        })?;
        let extension = self
            .output
            .extension()
            .and_then(|extension| extension.to_str())
            .unwrap_or_default();
        let ratio = match self.ratio {
            1 => "",
            2 => "@2x",
            other => anyhow::bail!("invalid --ratio {other}: use 1 or 2"),
        };
        let size = parse_size(&format!("{}{ratio}.{extension}", self.size)).map_err(|invalid| {
            anyhow::anyhow!(
                "invalid --size or output extension ({}): {}",
                invalid.parameter,
                invalid.message
            )
        })?;
        let options = parse_options(size.format, &self.pairs()).map_err(|invalid| {
            anyhow::anyhow!("invalid --{}: {}", invalid.parameter, invalid.message)
        })?;
        Ok(MapRequest {
            style: self.style.clone(),
            view,
            width: size.width,
            height: size.height,
            ratio: size.ratio,
            format: size.format,
            options,
        })
    }
}

/// Loads the catalog, renders the map and writes it to `args.output`.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let request = args.request()?;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let state = runtime.block_on(AppState::load(config))?;
    for failure in state.failures.iter() {
        tracing::warn!(path = %failure.path.display(), reason = %failure.reason, "not loaded");
    }
    let context = crate::server::static_map::map_context(&state, runtime.handle().clone());
    let limits = crate::server::static_map::limits(&state.config);
    let rendered = super::render(&context, &request, &limits, Instant::now())?;
    std::fs::write(&args.output, &rendered.bytes)
        .with_context(|| format!("writing {} failed", args.output.display()))?;
    tracing::info!(output = %args.output.display(), bytes = rendered.bytes.len(), "static map written");
    Ok(())
}
