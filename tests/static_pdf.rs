//! PDF static maps and atlases against the real server and the `tessera` binary, read back
//! with poppler's `pdfinfo`, `pdftotext` and `pdfimages`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, Instant};

use common::{TestServer, geodata, poppler_installed, sha256_hex};
use tessera::map::pdf::render::{pdf_options, print_request};
use tessera::map::scene::Item;
use tessera::map::{MapContext, MapOptions, MapRequest, OutputFormat, View};

/// Centre of the Sentinel-2 sample scene, with a zoom at which it fills an 800-pixel map.
const SCENE_VIEW: &str = "-11.4247,24.8013,10";
/// Yodok (Camp 15) in North Korea, where only the camps layer has data.
const CAMP_VIEW: &str = "126.8510,39.6743,11";

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".pdf")
        .tempfile()
        .expect("temporary file");
    std::fs::write(file.path(), bytes).expect("write the PDF");
    file
}

fn run(program: &str, args: &[&str], file: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .arg(file)
        .args(if program == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|error| panic!("{program} did not start: {error}"));
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Returns `pdfinfo`'s fields by name.
fn pdf_info(file: &Path) -> HashMap<String, String> {
    run("pdfinfo", &[], file)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// Returns the page size in points from `pdfinfo`'s "Page size: W x H pts" line.
fn page_points(file: &Path) -> (f64, f64) {
    let info = pdf_info(file);
    let size = info.get("Page size").expect("pdfinfo prints the page size");
    let numbers: Vec<f64> = size
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// Returns the text of every page, in order.
fn page_texts(file: &Path, layout: bool) -> Vec<String> {
    let args: &[&str] = if layout {
        &["-enc", "UTF-8", "-layout"]
    } else {
        &["-enc", "UTF-8"]
    };
    let mut pages: Vec<String> = run("pdftotext", args, file)
        .split('\u{c}')
        .map(str::to_string)
        .collect();
    // pdftotext ends the last page with a form feed too.
    if pages.last().is_some_and(|page| page.trim().is_empty()) {
        pages.pop();
    }
    pages
}

/// Returns the width and height of every image `pdfimages -list` lists, soft masks left out.
fn images(file: &Path) -> Vec<(u32, u32)> {
    run("pdfimages", &["-list"], file)
        .lines()
        .skip(2)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (columns.get(2) == Some(&"image")).then(|| {
                (
                    columns[3].parse().expect("image width"),
                    columns[4].parse().expect("image height"),
                )
            })
        })
        .collect()
}

async fn sample_server() -> TestServer {
    TestServer::serving(&[geodata("sentinel2-29rkh"), geodata("nk-prison-camps")]).await
}

async fn get_pdf(server: &TestServer, path: &str) -> Vec<u8> {
    let response = server.get(path).await;
    let status = response.status();
    let media_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().expect("ASCII header").to_string());
    let body = response.bytes().await.expect("body");
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(media_type.as_deref(), Some("application/pdf"), "GET {path}");
    body.to_vec()
}

#[tokio::test]
async fn page_sizes_in_points() {
    if !poppler_installed() {
        return;
    }
    let server = sample_server().await;
    let cases = [
        ("a4", 595.28, 841.89),
        ("a4-landscape", 841.89, 595.28),
        ("letter", 612.0, 792.0),
        ("200x150mm", 566.93, 425.2),
    ];
    for (page, width, height) in cases {
        let pdf = get_pdf(
            &server,
            &format!("/static/tessera/{CAMP_VIEW}/600x400.pdf?page={page}&dpi=72"),
        )
        .await;
        let file = write_temp(&pdf);
        let (got_width, got_height) = page_points(file.path());
        assert!((got_width - width).abs() < 0.1, "{page}: width {got_width}");
        assert!(
            (got_height - height).abs() < 0.1,
            "{page}: height {got_height}"
        );
    }
}

#[tokio::test]
async fn title_caption_and_hangul_extracted() {
    if !poppler_installed() {
        return;
    }
    let server = sample_server().await;
    let title = "Camp 15, Yodok";
    let caption = "요덕 정치범수용소 (Kwanliso 15)";
    let path = format!(
        "/static/tessera/{CAMP_VIEW}/800x600.pdf?dpi=72&title={}&caption={}",
        urlencode(title),
        urlencode(caption)
    );
    let file = write_temp(&get_pdf(&server, &path).await);
    let text = page_texts(file.path(), false).concat();
    assert!(text.contains(title), "title missing from {text}");
    assert!(
        text.contains("요덕 정치범수용소"),
        "Hangul missing from {text}"
    );
    assert!(
        text.contains("(Kwanliso 15)"),
        "caption missing from {text}"
    );
    assert!(
        text.contains("Provenance"),
        "provenance block missing from {text}"
    );
    let info = pdf_info(file.path());
    assert_eq!(info.get("Title").map(String::as_str), Some(title));
}

/// Percent-encodes a query value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn provenance_hashes_match_files() {
    if !poppler_installed() {
        return;
    }
    let server = sample_server().await;
    let cases = [
        (SCENE_VIEW, geodata("sentinel2-29rkh/TCI.tif"), "2020-02-19"),
        (
            CAMP_VIEW,
            geodata("nk-prison-camps/camps.geojson"),
            "Free North Korea project",
        ),
    ];
    for (view, served, fact) in cases {
        let pdf = get_pdf(
            &server,
            &format!("/static/tessera/{view}/800x600.pdf?dpi=72"),
        )
        .await;
        let file = write_temp(&pdf);
        // Without -layout a wrapped value may split, so spaces and line ends are dropped.
        let text: String = page_texts(file.path(), false)
            .concat()
            .split_whitespace()
            .collect();
        let name = served.file_name().expect("file name").to_string_lossy();
        assert!(
            text.contains(name.as_ref()),
            "{name} missing from the provenance: {text}"
        );
        assert!(
            text.contains(&sha256_hex(&served)),
            "SHA-256 of {name} missing from the provenance: {text}"
        );
        let fact: String = fact.split_whitespace().collect();
        assert!(text.contains(&fact), "{fact} missing for {name}: {text}");
        assert!(text.contains(&format!("Tessera{}", env!("CARGO_PKG_VERSION"))));
    }
}

fn collect_images(items: &[Item], sizes: &mut Vec<(u32, u32)>) {
    for item in items {
        match item {
            Item::Image(image) => sizes.push((image.image.width, image.image.height)),
            Item::Group(group) => collect_images(&group.items, sizes),
            Item::Path(_) | Item::Text(_) => {}
        }
    }
}

/// Returns the pixel size of every image in the scene that a PDF request draws, built through
/// the library with the same print density as the route.
fn scene_images(server: &TestServer, view: View, dpi: f64) -> Vec<(u32, u32)> {
    let context = MapContext {
        catalog: server.state.catalog.clone(),
        glyphs: server.state.glyphs.clone(),
        sprites: server.state.sprites.clone(),
        styles: server.state.config.styles.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let mut options = MapOptions::for_format(OutputFormat::Pdf);
    options.dpi = dpi;
    let request = MapRequest {
        style: "tessera".to_string(),
        view,
        width: 800,
        height: 600,
        ratio: 1,
        format: OutputFormat::Pdf,
        options,
    };
    let print = print_request(&request, &pdf_options(&request)).expect("print request");
    let deadline = Instant::now() + Duration::from_mins(1);
    let scene = tessera::map::build_scene(&context, &print, deadline).expect("scene");
    let mut sizes = Vec::new();
    collect_images(&scene.items, &mut sizes);
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imagery_embedded_at_full_resolution() {
    if !poppler_installed() {
        return;
    }
    let server = sample_server().await;
    let view = View::Centre {
        lon: -11.4247,
        lat: 24.8013,
        zoom: 10.0,
    };
    for dpi in [72.0, 300.0] {
        let path = format!("/static/tessera/{SCENE_VIEW}/800x600.pdf?page=a4&dpi={dpi}");
        let file = write_temp(&get_pdf(&server, &path).await);
        let listed = images(file.path());
        let server_for_scene = &server;
        let expected = tokio::task::block_in_place(|| scene_images(server_for_scene, view, dpi));
        assert_eq!(
            expected.len(),
            1,
            "the scene draws one imagery layer at {dpi} dpi"
        );
        assert_eq!(
            listed, expected,
            "{dpi} dpi: the PDF embeds the scene's pixels unresampled"
        );
    }
}

#[tokio::test]
async fn vector_layers_stay_vectors() {
    if !poppler_installed() {
        return;
    }
    let server = sample_server().await;
    let pdf = get_pdf(
        &server,
        &format!("/static/tessera/{CAMP_VIEW}/800x600.pdf?dpi=300"),
    )
    .await;
    let file = write_temp(&pdf);
    // The camps' symbols are sprite icons, the only pixels of a map without imagery.
    let listed = images(file.path());
    assert!(!listed.is_empty(), "the camp symbol is drawn");
    for (width, height) in listed {
        assert!(
            width <= 64 && height <= 64,
            "an image of {width} x {height} is not an icon"
        );
    }
    assert!(pdf.len() < 400_000, "a vector map is {} bytes", pdf.len());
}

#[tokio::test]
async fn over_limits_rejected_naming_limit() {
    let server = sample_server().await;
    let response = server
        .get(&format!(
            "/static/tessera/{SCENE_VIEW}/8000x8000.pdf?dpi=1200&page=a0x1000mm"
        ))
        .await;
    assert_eq!(response.status(), 400, "an invalid page is a 400");
    let problem: serde_json::Value = response.json().await.expect("problem JSON");
    assert_eq!(problem["parameter"], "page");

    let response = server
        .get(&format!(
            "/static/tessera/{SCENE_VIEW}/8000x8000.pdf?dpi=1200&page=a3"
        ))
        .await;
    let status = response.status().as_u16();
    let problem: serde_json::Value = response.json().await.expect("problem JSON");
    assert!((400..500).contains(&status), "status {status}");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("static_max_pixels"), "{detail}");
}

fn tessera(args: &[&str], epoch: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.args(args).current_dir(common::repo());
    if let Some(epoch) = epoch {
        command.env("SOURCE_DATE_EPOCH", epoch);
    }
    command.output().expect("tessera starts")
}

/// Returns the text of a PDF without the line that states the time of rendering.
fn text_without_time(file: &Path) -> String {
    page_texts(file, true)
        .concat()
        .lines()
        .filter(|line| !line.contains("Rendered"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn cli_pdf_matches_route() {
    if !poppler_installed() {
        return;
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let outputs: Vec<PathBuf> = (0..2)
        .map(|run| folder.path().join(format!("map-{run}.pdf")))
        .collect();
    let scene = geodata("sentinel2-29rkh");
    for output in &outputs {
        let result = tessera(
            &[
                "render",
                "-o",
                output.to_str().expect("UTF-8 path"),
                "--center",
                SCENE_VIEW,
                "--size",
                "800x600",
                "--page",
                "letter",
                "--dpi",
                "100",
                "--title",
                "Sentinel-2 29RKH",
                scene.to_str().expect("UTF-8 path"),
            ],
            Some("1800000000"),
        );
        assert!(
            result.status.success(),
            "render failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let first = std::fs::read(&outputs[0]).expect("first PDF");
    let second = std::fs::read(&outputs[1]).expect("second PDF");
    assert_eq!(
        first, second,
        "SOURCE_DATE_EPOCH makes the CLI's PDF reproducible"
    );

    let server = TestServer::serving(&[scene]).await;
    let route = get_pdf(
        &server,
        &format!(
            "/static/tessera/{SCENE_VIEW}/800x600.pdf?page=letter&dpi=100&title=Sentinel-2%2029RKH"
        ),
    )
    .await;
    let route_file = write_temp(&route);
    assert_eq!(
        text_without_time(&outputs[0]),
        text_without_time(route_file.path())
    );
    assert_eq!(images(&outputs[0]), images(route_file.path()));
    assert_eq!(page_points(&outputs[0]), page_points(route_file.path()));
    let cli_text = page_texts(&outputs[0], false).concat();
    assert!(
        cli_text.contains("2027-01-15T08:00:00Z"),
        "SOURCE_DATE_EPOCH is the rendering time: {cli_text}"
    );
}

#[test]
fn atlas_of_prison_camps() {
    if !poppler_installed() {
        return;
    }
    let camps = geodata("nk-prison-camps");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(camps.join("camps.geojson")).expect("camps"))
            .expect("GeoJSON");
    let names: Vec<String> = data["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|feature| {
            feature["properties"]["name"]
                .as_str()
                .expect("name")
                .to_string()
        })
        .collect();
    let folder = tempfile::tempdir().expect("tempdir");
    let output = folder.path().join("atlas.pdf");
    let result = tessera(
        &[
            "atlas",
            "--source",
            "camps",
            "--dpi",
            "72",
            "-o",
            output.to_str().expect("UTF-8 path"),
            camps.to_str().expect("UTF-8 path"),
        ],
        None,
    );
    assert!(
        result.status.success(),
        "atlas failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );

    let pages = page_texts(&output, true);
    let info = pdf_info(&output);
    let page_count: usize = info["Pages"].parse().expect("page count");
    assert_eq!(pages.len(), page_count);
    let index_pages = pages
        .iter()
        .filter(|text| text.contains("Index of facilities"))
        .count();
    assert!(index_pages >= 1, "no index page");
    assert_eq!(
        page_count,
        names.len() + 1 + index_pages,
        "facilities + overview + index"
    );
    assert!(
        pages[0].contains("24 facilities"),
        "overview first: {}",
        pages[0]
    );

    // Each index line ends with the page number of its facility's map.
    let mut listed = Vec::new();
    for line in pages[1..=index_pages].concat().lines() {
        let Some((entry, page)) = line.trim().rsplit_once(' ') else {
            continue;
        };
        let Ok(page) = page.parse::<usize>() else {
            continue;
        };
        listed.push((entry.trim().to_string(), page));
    }
    assert_eq!(listed.len(), names.len(), "index lines: {listed:?}");
    let sorted: Vec<String> = listed.iter().map(|(entry, _)| entry.clone()).collect();
    let mut expected_order = sorted.clone();
    expected_order.sort_by_key(|entry| entry.split_once(". ").map(|(_, name)| name.to_lowercase()));
    assert_eq!(sorted, expected_order, "the index is sorted by name");
    for (number, name) in names.iter().enumerate() {
        let entry = format!("{}. {name}", number + 1);
        let (_, page) = listed
            .iter()
            .find(|(listed_entry, _)| *listed_entry == entry)
            .unwrap_or_else(|| panic!("{entry} missing from the index"));
        let text = &pages[page - 1];
        assert!(
            text.contains(&entry),
            "page {page} does not show {entry}: {text}"
        );
        let footer = text
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default();
        assert_eq!(footer.trim(), page.to_string(), "page {page} is numbered");
    }
}
