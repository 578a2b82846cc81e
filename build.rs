//! Puts the `maplibre-gl` npm package's script and style sheet into `OUT_DIR`, where
//! `src/viewer.rs` embeds them for the web viewer.
//!
//! The files come from `viewer/node_modules`, which `npm ci --prefix viewer` installs. Without
//! them the build still succeeds: it prints a warning, and the embedded `maplibre-gl.js` is a
//! small script that shows the same instructions on the page.

use std::env;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// Shown as a build warning and on the viewer page when `maplibre-gl` is not installed.
/// It must contain no `"` or `\`, because the fallback script embeds it as a string literal.
const INSTALL_HINT: &str = "MapLibre GL JS was not installed when this Tessera binary was \
    built, so the web viewer cannot draw maps: run `npm ci --prefix viewer` in the Tessera \
    repository, then rebuild";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let dist = manifest_dir.join("viewer/node_modules/maplibre-gl/dist");
    let script = dist.join("maplibre-gl.js");
    let style_sheet = dist.join("maplibre-gl.css");

    println!("cargo::rustc-check-cfg=cfg(tessera_maplibre_missing)");
    println!("cargo::rerun-if-changed=build.rs");

    if script.is_file() && style_sheet.is_file() {
        // A path that disappears later also reruns this script, so deleting
        // node_modules switches the build to the fallback.
        println!("cargo::rerun-if-changed={}", script.display());
        println!("cargo::rerun-if-changed={}", style_sheet.display());
        copy_without_source_map(&script, &out_dir.join("maplibre-gl.js"))?;
        fs::copy(&style_sheet, out_dir.join("maplibre-gl.css"))?;
    } else {
        // Cargo compares the newest modification time under a watched directory, so
        // `npm ci` creating viewer/node_modules reruns this script.
        println!(
            "cargo::rerun-if-changed={}",
            manifest_dir.join("viewer").display()
        );
        println!("cargo::warning={INSTALL_HINT}");
        println!("cargo::rustc-cfg=tessera_maplibre_missing");
        fs::write(out_dir.join("maplibre-gl.js"), fallback_script())?;
        fs::write(
            out_dir.join("maplibre-gl.css"),
            "/* MapLibre GL JS was not installed when Tessera was built. */\n",
        )?;
    }
    Ok(())
}

/// Copies the script without its trailing `//# sourceMappingURL=` comment, because the map
/// file is not embedded and a browser with developer tools open would request it and get 404.
fn copy_without_source_map(from: &Path, to: &Path) -> Result<(), Box<dyn Error>> {
    let text = fs::read_to_string(from)
        .map_err(|error| format!("failed to read {}: {error}", from.display()))?;
    let stripped = match text.rfind("\n//# sourceMappingURL=") {
        Some(start) => &text[..=start],
        None => text.as_str(),
    };
    fs::write(to, stripped)?;
    Ok(())
}

/// Returns a script that adds the install hint to `window.tesseraErrors` and shows it on the
/// page in place of the map.
fn fallback_script() -> String {
    assert!(
        !INSTALL_HINT.contains(['"', '\\']),
        "INSTALL_HINT must not contain a quote or backslash"
    );
    format!(
        r#"// Replaces MapLibre GL JS, which was not installed when Tessera was built.
(function () {{
  var message = "{INSTALL_HINT}";
  window.tesseraErrors = (window.tesseraErrors || []).concat([message]);
  function show() {{
    var banner = document.createElement("p");
    banner.className = "tessera-build-error";
    banner.textContent = message;
    banner.style.cssText =
      "position:fixed;inset:auto 0 0 0;z-index:10;margin:0;padding:1em;" +
      "background:#8b1a1a;color:#fff;font:16px/1.4 system-ui,sans-serif";
    document.body.appendChild(banner);
  }}
  if (document.body) {{
    show();
  }} else {{
    document.addEventListener("DOMContentLoaded", show);
  }}
}})();
"#
    )
}
