//! Styles, sprites and glyphs against the real server: glyph ranges compared with fontnik's
//! prebuilt Noto Sans CJK ranges, sprite sheets, style URLs, and MapLibre GL JS in headless
//! Chromium drawing Hangul labels from the served glyphs.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{TestServer, decode_image, geodata, have_program, repo, shared_data};
use pbf_font_tools::Glyphs;
use pbf_font_tools::prost::Message;
use tessera::config::Config;

/// A font from Debian's `fonts-noto-cjk` that covers Latin and Hangul.
const NOTO_KR: &str = "Noto Sans CJK KR Regular";
/// A font from Debian's `fonts-nanum`.
const NANUM: &str = "NanumGothic Regular";

/// In CI a missing program or font is a failure; on a developer's machine the test prints what
/// to install and passes.
fn require(present: bool, what: &str, install_hint: &str) -> bool {
    if present {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing in CI: {install_hint}"
    );
    eprintln!("SKIPPED: {what} is not installed; {install_hint}");
    false
}

async fn require_fonts(server: &TestServer) -> bool {
    let fonts = server.json("/fonts").await;
    let names: Vec<&str> = fonts["fonts"]
        .as_array()
        .expect("fonts")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    require(
        names.contains(&NOTO_KR) && names.contains(&NANUM),
        "fonts-noto-cjk or fonts-nanum",
        "run scripts/setup --test",
    )
}

async fn glyphs(server: &TestServer, fontstack: &str, range: &str) -> Glyphs {
    let response = server.get(&format!("/fonts/{fontstack}/{range}.pbf")).await;
    assert_eq!(response.status(), 200, "{fontstack} {range}");
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    Glyphs::decode(response.bytes().await.expect("body")).expect("a glyphs protobuf")
}

#[tokio::test]
async fn hangul_glyphs_match_fontnik() {
    let server = TestServer::serving(&[]).await;
    if !require_fonts(&server).await {
        return;
    }
    let Some(folder) = shared_data("glyphs-noto-cjk-pbf/Klokantech Noto Sans CJK Regular") else {
        return;
    };
    for range in ["0-255", "44032-44287", "48384-48639", "54528-54783"] {
        let ours = glyphs(&server, NOTO_KR, range).await;
        let reference = Glyphs::decode(
            std::fs::read(folder.join(format!("{range}.pbf")))
                .expect("read reference")
                .as_slice(),
        )
        .expect("reference protobuf");
        assert_eq!(ours.stacks.len(), 1, "{range}");
        let stack = &ours.stacks[0];
        assert_eq!(stack.name, NOTO_KR);
        assert_eq!(stack.range, range);
        let by_id: BTreeMap<u32, _> = stack.glyphs.iter().map(|g| (g.id, g)).collect();
        // fontnik's reference also has glyphs for the C0 control characters, which labels
        // never draw and the current Noto Sans CJK does not map.
        let reference: Vec<_> = reference.stacks[0]
            .glyphs
            .iter()
            .filter(|glyph| !char::from_u32(glyph.id).is_some_and(char::is_control))
            .collect();
        let mut close = 0;
        for expected in &reference {
            let Some(glyph) = by_id.get(&expected.id) else {
                panic!("{range}: glyph {} of the reference is missing", expected.id);
            };
            let bitmap = glyph.bitmap.as_ref().map_or(0, Vec::len);
            if glyph.width > 0 {
                assert_eq!(
                    bitmap as u32,
                    (glyph.width + 6) * (glyph.height + 6),
                    "{range}: SDF size of {}",
                    glyph.id
                );
            }
            if glyph.advance == expected.advance
                && glyph.width.abs_diff(expected.width) <= 2
                && glyph.height.abs_diff(expected.height) <= 2
            {
                close += 1;
            }
        }
        // Both render at 24 px with a 3-pixel buffer from Noto Sans CJK, of different versions
        // and regions. Measured: 190 of 191 Latin glyphs and all 256 of each Hangul range
        // agree in advance and within 2 pixels in size.
        assert!(
            close * 100 >= reference.len() * 99,
            "{range}: {close} of {} glyphs match in advance and size",
            reference.len()
        );
    }
}

#[tokio::test]
async fn fontstacks_fall_back_per_glyph() {
    let server = TestServer::serving(&[]).await;
    if !require_fonts(&server).await {
        return;
    }
    let nanum = glyphs(&server, NANUM, "0-255").await;
    let noto = glyphs(&server, NOTO_KR, "0-255").await;
    let both = glyphs(&server, &format!("{NANUM},{NOTO_KR}"), "0-255").await;
    let ids = |g: &Glyphs| {
        g.stacks[0]
            .glyphs
            .iter()
            .map(|g| g.id)
            .collect::<std::collections::BTreeSet<u32>>()
    };
    let union: std::collections::BTreeSet<u32> = ids(&nanum).union(&ids(&noto)).copied().collect();
    assert_eq!(ids(&both), union, "every glyph of either font");
    assert_eq!(both.stacks[0].name, format!("{NANUM},{NOTO_KR}"));
    let nanum_a = nanum.stacks[0]
        .glyphs
        .iter()
        .find(|g| g.id == u32::from('A'))
        .expect("A in Nanum");
    let both_a = both.stacks[0]
        .glyphs
        .iter()
        .find(|g| g.id == u32::from('A'))
        .expect("A in the stack");
    assert_eq!(both_a, nanum_a, "the first font wins");
    let hangul = glyphs(&server, &format!("{NANUM},{NOTO_KR}"), "54528-54783").await;
    assert!(
        hangul.stacks[0]
            .glyphs
            .iter()
            .any(|g| g.id == u32::from('한')),
        "한 (U+D55C) is drawn"
    );
    // A font of the stack that is not installed is left out, as a fallback may be missing.
    let with_missing = glyphs(&server, &format!("Nowhere Sans Regular,{NANUM}"), "0-255").await;
    assert_eq!(
        ids(&with_missing),
        ids(&nanum),
        "the installed font's glyphs"
    );
    // A range that neither font covers is an empty stack, not an error.
    let empty = glyphs(&server, NOTO_KR, "57344-57599").await;
    assert!(empty.stacks[0].glyphs.is_empty());
    assert_eq!(empty.stacks[0].range, "57344-57599");
}

#[tokio::test]
async fn bad_glyph_requests_name_the_problem() {
    let server = TestServer::serving(&[]).await;
    let cases = [
        (format!("/fonts/{NOTO_KR}/1-256.pbf"), 400, Some("range")),
        (format!("/fonts/{NOTO_KR}/0-511.pbf"), 400, Some("range")),
        (format!("/fonts/{NOTO_KR}/0-255.png"), 400, Some("range")),
        (
            format!("/fonts/{NOTO_KR}/65536-65791.pbf"),
            400,
            Some("range"),
        ),
        (
            "/fonts/Nowhere%20Sans%20Regular/0-255.pbf".to_owned(),
            404,
            None,
        ),
        (
            format!("/fonts/{NOTO_KR},,/0-255.pbf"),
            400,
            Some("fontstack"),
        ),
    ];
    for (path, status, parameter) in cases {
        let response = server.get(&path).await;
        assert_eq!(response.status(), status, "{path}");
        let body: serde_json::Value = response.json().await.expect("problem");
        if let Some(parameter) = parameter {
            assert_eq!(body["parameter"], parameter, "{path}");
        }
        if status == 404 {
            assert!(
                body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("Nowhere Sans Regular")),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn sprites_come_at_two_ratios() {
    let server = TestServer::serving(&[]).await;
    let standard = server.json("/sprites/icons.json").await;
    let retina = server.json("/sprites/icons@2x.json").await;
    for icon in ["kwanliso", "kyohwaso", "facility", "violation"] {
        assert_eq!(standard[icon]["pixelRatio"], 1, "{icon}");
        assert_eq!(retina[icon]["pixelRatio"], 2, "{icon}");
        let width = standard[icon]["width"].as_u64().expect("width");
        assert_eq!(retina[icon]["width"].as_u64(), Some(width * 2), "{icon}");
    }
    assert_eq!(standard["kwanliso"]["width"], 24);
    for (file, json) in [("icons.png", &standard), ("icons@2x.png", &retina)] {
        let response = server.get(&format!("/sprites/{file}")).await;
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(response.headers()["content-type"], "image/png");
        let image = decode_image(&response.bytes().await.expect("body"));
        for (icon, entry) in json.as_object().expect("index") {
            let right = entry["x"].as_u64().expect("x") + entry["width"].as_u64().expect("width");
            let bottom =
                entry["y"].as_u64().expect("y") + entry["height"].as_u64().expect("height");
            assert!(
                right <= u64::from(image.width()) && bottom <= u64::from(image.height()),
                "{file}: {icon} is inside the sheet"
            );
            let centre = image.get_pixel(
                u32::try_from(
                    entry["x"].as_u64().expect("x") + entry["width"].as_u64().expect("width") / 2,
                )
                .expect("x"),
                u32::try_from(
                    entry["y"].as_u64().expect("y")
                        + entry["height"].as_u64().expect("height") * 3 / 4,
                )
                .expect("y"),
            );
            assert!(centre.0[3] > 0, "{file}: {icon} is drawn");
        }
    }
    for missing in ["/sprites/icons@3x.png", "/sprites/other.json"] {
        assert_eq!(server.get(missing).await.status(), 404, "{missing}");
    }
}

#[tokio::test]
async fn style_urls_point_at_this_server() {
    let server = TestServer::sample().await;
    let style = server.json("/styles/tessera.json").await;
    let base = server.url("");
    assert_eq!(
        style["glyphs"],
        format!("{base}/fonts/{{fontstack}}/{{range}}.pbf")
    );
    assert_eq!(style["sprite"], format!("{base}/sprites/icons"));
    for source in style["sources"].as_object().expect("sources").values() {
        let url = source["url"].as_str().expect("TileJSON url");
        assert!(url.starts_with(&base), "{url}");
        let response = server.client.get(url).send().await.expect("TileJSON");
        assert_eq!(response.status(), 200, "{url}");
    }
    let sprite = format!("{}.json", style["sprite"].as_str().expect("sprite"));
    let index: serde_json::Value = server
        .client
        .get(&sprite)
        .send()
        .await
        .expect("sprite")
        .json()
        .await
        .expect("json");
    let layers = style["layers"].as_array().expect("layers");
    let icons: Vec<&str> = layers
        .iter()
        .filter_map(|layer| layer["layout"]["icon-image"].as_str())
        .collect();
    assert_eq!(icons, ["kwanliso", "kyohwaso", "facility"]);
    for icon in icons {
        assert!(
            index.get(icon).is_some(),
            "the style's icon {icon} is in the sprite"
        );
    }
    let fonts: Vec<&str> = layers
        .iter()
        .filter_map(|layer| layer["layout"]["text-font"][0].as_str())
        .collect();
    assert_eq!(
        fonts,
        [NOTO_KR, NOTO_KR],
        "both label layers use served glyphs"
    );

    let unknown = server.get("/styles/nowhere.json").await;
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.expect("problem");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("\"nowhere\""),
        "the unknown style is named: {detail}"
    );
}

#[tokio::test]
async fn maplibre_draws_hangul_from_served_glyphs() {
    let ready = require(have_program("node"), "node", "install Node.js")
        && require(
            have_program("chromium"),
            "chromium",
            "run scripts/setup --test",
        )
        && require(
            repo()
                .join("tests/browser/node_modules/playwright-core")
                .is_dir(),
            "playwright-core",
            "run npm ci --prefix tests/browser",
        );
    if !ready {
        return;
    }
    // The sample imagery and, as `camps`, six camps with Korean names.
    let server = TestServer::start(Config {
        paths: vec![
            geodata("sentinel2-29rkh"),
            geodata("landsat7-bahamas"),
            repo().join("tests/data/hangul/camps.geojson"),
        ],
        ..Config::default()
    })
    .await;
    if !require_fonts(&server).await {
        return;
    }
    let url = server.url("/?style=tessera#7/40.3/127.3");
    let screenshot = repo().join("docs/maplibre-hangul.png");
    let script = repo().join("tests/browser/render.mjs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&url)
            .arg(&screenshot)
            .output()
    })
    .await
    .expect("join")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "MapLibre reported problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 요덕 starts with 요 (U+C694), in the range 50688-50943, and 관리소 needs 관 (U+AD00,
    // 44288-44543): MapLibre fetched both from this server, because the viewer turns off
    // local rendering of Hangul.
    let rendered = server.state.glyphs.rendered_ranges();
    for start in [50_688, 44_288] {
        assert!(
            rendered.contains(&(NOTO_KR.to_owned(), start)),
            "range {start} was served: {rendered:?}"
        );
    }
}
