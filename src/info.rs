//! `tessera info FILE`: what a source file is, as text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::config;
use crate::raster::{self, RasterInfo};
use crate::vector::{VectorOptions, VectorSource};

/// Describes `path` as JSON: a raster's grid and bands, a vector file's layers, or an
/// archive's metadata.
pub fn describe(path: &Path) -> anyhow::Result<Value> {
    if !path.exists() {
        anyhow::bail!("file not found: {}", path.display());
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if path.is_dir() {
        anyhow::bail!(
            "{} is a folder: `tessera info` describes one file; run it on a scene of the folder, or serve the folder and read /tiles/{{id}}.json for a dated layer or mosaic",
            path.display()
        );
    }
    if config::MODEL_EXTENSIONS.contains(&extension.as_str()) {
        anyhow::bail!(
            "{} is a 3D model: `tessera info` does not describe models; serve it with an anchor in its side file and read /models/{{id}}.json",
            path.display()
        );
    }
    if config::ARCHIVE_EXTENSIONS.contains(&extension.as_str()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let archive = runtime.block_on(crate::archive::Archive::open(path))?;
        let metadata = archive.metadata();
        let bounds = metadata.bounds;
        return Ok(json!({
            "kind": "archive",
            "path": path.display().to_string(),
            "format": metadata.format.extension(),
            "compression": metadata.compression.content_encoding().unwrap_or("none"),
            "minzoom": metadata.minzoom,
            "maxzoom": metadata.maxzoom,
            "bounds": [bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y],
            "name": metadata.name,
            "attribution": metadata.attribution,
            "vector_layers": metadata.vector_layers,
        }));
    }
    if config::RASTER_EXTENSIONS.contains(&extension.as_str()) {
        let dataset = gdal::Dataset::open(path)
            .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", path.display()))?;
        let info = raster::read_info(path, &dataset)?;
        let mut value = serde_json::to_value(&info)?;
        value["kind"] = json!("raster");
        value["path"] = json!(path.display().to_string());
        value["native_zoom"] = json!(info.native_zoom());
        return Ok(value);
    }
    if !config::VECTOR_EXTENSIONS.contains(&extension.as_str()) {
        anyhow::bail!(
            "{} is not a format Tessera serves: use a raster ({}), vector ({}) or archive ({}) file",
            path.display(),
            config::RASTER_EXTENSIONS.join(", "),
            config::VECTOR_EXTENSIONS.join(", "),
            config::ARCHIVE_EXTENSIONS.join(", ")
        );
    }
    let source = VectorSource::open(path, VectorOptions::default())?;
    let bounds = source.bounds_lonlat();
    let layers: Vec<Value> = source
        .layers()
        .iter()
        .map(|layer| {
            json!({
                "name": layer.name,
                "geometry_type": layer.geometry_type,
                "features": layer.feature_count,
                "skipped": layer.skipped,
                "repaired": layer.repaired,
                "fields": layer.fields.iter().map(|(k, v)| (k.clone(), json!(format!("{v:?}")))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    Ok(json!({
        "kind": "vector",
        "path": path.display().to_string(),
        "crs": vector_crs(path),
        "bounds": [bounds.min_x, bounds.min_y, bounds.max_x, bounds.max_y],
        "layers": layers,
    }))
}

/// Describes the CRS of the first layer of a vector file, by name and EPSG code where known.
fn vector_crs(path: &Path) -> Value {
    use gdal::vector::LayerAccess as _;
    let Ok(dataset) = gdal::Dataset::open(path) else {
        return Value::Null;
    };
    let Some(layer) = dataset.layers().next() else {
        return Value::Null;
    };
    match layer.spatial_ref() {
        Some(srs) => {
            let name = srs.name().unwrap_or_else(|| "unnamed".to_owned());
            match srs.auth_code() {
                Ok(code) => json!(format!("{name} (EPSG:{code})")),
                Err(_) => json!(name),
            }
        }
        None => json!("none given (GeoJSON and KML are WGS 84 lon/lat)"),
    }
}

/// Prints the description of `path` to standard output.
pub fn print(path: &Path, as_json: bool) -> anyhow::Result<()> {
    let value = describe(path)?;
    let text = if as_json {
        serde_json::to_string_pretty(&value)?
    } else if value["kind"] == "raster" {
        let info: RasterInfo = raster_info_from(path)?;
        raster_text(path, &info)
    } else {
        serde_json::to_string_pretty(&value)?
    };
    #[allow(clippy::print_stdout, reason = "printing is this command's job")]
    {
        println!("{text}");
    }
    Ok(())
}

fn raster_info_from(path: &Path) -> anyhow::Result<RasterInfo> {
    let dataset = gdal::Dataset::open(path)?;
    Ok(raster::read_info(path, &dataset)?)
}

fn raster_text(path: &Path, info: &RasterInfo) -> String {
    let mut text = String::new();
    let b = info.bounds_lonlat;
    let _ = writeln!(text, "{}: raster, {} driver", path.display(), info.driver);
    let _ = writeln!(
        text,
        "size:        {} x {} pixels, {} bands of {}",
        info.width,
        info.height,
        info.bands.len(),
        info.data_type()
    );
    let epsg = info
        .epsg
        .map(|code| format!(" (EPSG:{code})"))
        .unwrap_or_default();
    let _ = writeln!(text, "CRS:         {}{epsg}", info.crs);
    let _ = writeln!(
        text,
        "bounds:      {:.6}, {:.6}, {:.6}, {:.6} (lon/lat: west, south, east, north)",
        b.min_x, b.min_y, b.max_x, b.max_y
    );
    let _ = writeln!(
        text,
        "resolution:  {:.3} x {:.3} m per pixel (native zoom {:.2})",
        info.resolution_metres.0,
        info.resolution_metres.1,
        info.native_zoom()
    );
    let _ = writeln!(
        text,
        "blocks:      {} x {}, compression {}",
        info.block_size.0,
        info.block_size.1,
        info.compression.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        text,
        "mask:        {}",
        if info.has_mask {
            "per-dataset mask or alpha"
        } else {
            "none"
        }
    );
    for band in &info.bands {
        let nodata = band
            .nodata
            .map_or_else(|| "none".to_owned(), |v| v.to_string());
        let overviews: Vec<String> = band
            .overviews
            .iter()
            .map(|(w, h)| format!("{w}x{h}"))
            .collect();
        let _ = writeln!(
            text,
            "band {}:      {} {}, nodata {nodata}, overviews [{}]",
            band.index,
            band.data_type,
            band.color,
            overviews.join(", ")
        );
    }
    text.trim_end().to_owned()
}
