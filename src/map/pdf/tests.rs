use std::path::PathBuf;
use std::sync::Arc;

use chrono::DateTime;

use super::*;
use crate::map::scene::{
    Fill as SceneFill, FillRule, Georeference, ImageItem, Page, PathCommand, PathItem,
    Point as ScenePoint, Rect, Rgba, RgbaImage, TextAnchor, TextItem,
};

fn text_face() -> Option<FontFace> {
    let face = text::default_face(&[PathBuf::from("/usr/share/fonts")]).ok();
    if face.is_none() {
        eprintln!("SKIPPED: no CJK font under /usr/share/fonts");
    }
    face
}

/// Builds a 400 x 300 scene: a 40 x 30 image over the frame, a filled square and a Hangul
/// label.
fn sample_scene(face: &FontFace) -> Scene {
    let frame = Rect {
        x: 0.0,
        y: 0.0,
        width: 400.0,
        height: 300.0,
    };
    let pixels = (0..40 * 30)
        .flat_map(|index| [(index % 256) as u8, 90, 160, 255])
        .collect();
    let square = [
        (100.0, 100.0),
        (200.0, 100.0),
        (200.0, 200.0),
        (100.0, 200.0),
    ];
    let mut commands: Vec<PathCommand> = square
        .iter()
        .map(|&(x, y)| PathCommand::LineTo(ScenePoint { x, y }))
        .collect();
    commands[0] = PathCommand::MoveTo(ScenePoint { x: 100.0, y: 100.0 });
    commands.push(PathCommand::Close);
    Scene {
        page: Page {
            width: 400.0,
            height: 300.0,
            pixel_ratio: 1.0,
            dpi: 96.0,
        },
        georeference: Georeference {
            frame,
            mercator_bounds: [0.0, 0.0, 1000.0, 750.0],
            lonlat_bounds: [0.0, 0.0, 0.009, 0.007],
            zoom: 14.0,
        },
        items: vec![
            Item::Image(ImageItem {
                rect: frame,
                image: Arc::new(RgbaImage {
                    width: 40,
                    height: 30,
                    pixels,
                }),
                opacity: 1.0,
                smooth: true,
            }),
            Item::Path(PathItem {
                commands,
                fill: Some(SceneFill {
                    colour: Rgba::new(200, 30, 30, 255),
                    opacity: 0.5,
                    rule: FillRule::NonZero,
                }),
                stroke: None,
            }),
            Item::Text(TextItem {
                text: "요덕 수용소".to_string(),
                face: face.clone(),
                size: 14.0,
                colour: Rgba::BLACK,
                halo: Some(crate::map::scene::Halo {
                    colour: Rgba::WHITE,
                    width: 1.5,
                }),
                position: ScenePoint { x: 150.0, y: 150.0 },
                anchor: TextAnchor::Center,
                rotation: 0.0,
            }),
        ],
        sources: Vec::new(),
        title: Some("Camp 15, Yodok".to_string()),
        caption: None,
    }
}

fn provenance(files: usize) -> Provenance {
    Provenance {
        files: (0..files)
            .map(|index| FileRecord {
                path: PathBuf::from(format!("/data/scene-{index}.tif")),
                sha256: format!("{index:064x}"),
                dates: vec!["2020-05-01".to_string()],
                source: format!("scene-{index}"),
                attribution: Some("Copernicus Sentinel data".to_string()),
                enhancement: None,
            })
            .collect(),
        request: RequestRecord {
            style: "imagery".to_string(),
            extent: [0.0, 0.0, 0.009, 0.007],
            zoom: 14.0,
            date: None,
        },
        rendered_at: DateTime::from_timestamp(1_800_000_000, 0).expect("valid time"),
    }
}

fn write_single(face: &FontFace, scene: &Scene, provenance: &Provenance) -> Vec<u8> {
    let mut writer = PdfWriter::new(
        PdfOptions::default(),
        face,
        scene.title.as_deref(),
        provenance.rendered_at,
        false,
    )
    .expect("writer starts");
    writer.add_map(scene, provenance).expect("map page");
    writer.finish().expect("PDF bytes")
}

#[test]
fn placement_fits_width_or_height() {
    let options = PdfOptions::default();
    let wide = options
        .place_map(800.0, 400.0, 0.0, 0.0)
        .expect("placement");
    assert!((wide.width - options.content_width()).abs() < 0.01);
    assert!((wide.height - wide.width / 2.0).abs() < 0.01);
    assert!((wide.x - options.margin).abs() < 0.01);

    let tall = options
        .place_map(100.0, 1000.0, 20.0, 0.0)
        .expect("placement");
    assert!((tall.y - options.margin - 20.0).abs() < 0.01);
    assert!(tall.y + tall.height <= options.content_bottom() + 0.01);
    assert!(tall.x > options.margin, "a tall map is centred");

    assert!(options.place_map(0.0, 10.0, 0.0, 0.0).is_err());
    assert!(options.place_map(f64::NAN, 10.0, 0.0, 0.0).is_err());
}

#[test]
fn pixel_ratio_gives_requested_dpi() {
    let options = PdfOptions {
        dpi: 300.0,
        ..PdfOptions::default()
    };
    let ratio = options.imagery_pixel_ratio(800.0, 600.0).expect("ratio");
    let placement = options
        .place_map(800.0, 600.0, 0.0, 0.0)
        .expect("placement");
    let pixels = 800.0 * ratio;
    let inches = f64::from(placement.width) / 72.0;
    assert!(
        (pixels / inches - 300.0).abs() < 0.01,
        "{}",
        pixels / inches
    );
}

#[test]
fn map_pdf_is_deterministic() {
    let Some(face) = text_face() else { return };
    let scene = sample_scene(&face);
    let first = write_single(&face, &scene, &provenance(1));
    let second = write_single(&face, &scene, &provenance(1));
    assert!(first.starts_with(b"%PDF-"));
    assert_eq!(first, second, "the same scene and time give the same bytes");
}

#[test]
fn long_provenance_moves_to_next_page() {
    let Some(face) = text_face() else { return };
    let scene = sample_scene(&face);
    let writer = PdfWriter::new(
        PdfOptions::default(),
        &face,
        None,
        provenance(0).rendered_at,
        true,
    )
    .expect("writer starts");
    assert_eq!(
        writer
            .map_page_count(&scene, &provenance(1))
            .expect("count"),
        1
    );
    assert!(
        writer
            .map_page_count(&scene, &provenance(40))
            .expect("count")
            >= 2
    );
}

#[test]
fn scene_title_drawn_once() {
    let Some(face) = text_face() else { return };
    let mut scene = sample_scene(&face);
    assert_eq!(
        missing_text(&scene, scene.title.as_deref()),
        Some("Camp 15, Yodok")
    );
    scene.items.push(Item::Group(crate::map::scene::Group {
        clip: None,
        items: vec![Item::Text(TextItem {
            text: "Camp 15, Yodok".to_string(),
            face: face.clone(),
            size: 12.0,
            colour: Rgba::BLACK,
            halo: None,
            position: ScenePoint { x: 10.0, y: 10.0 },
            anchor: TextAnchor::TopLeft,
            rotation: 0.0,
        })],
    }));
    assert_eq!(missing_text(&scene, scene.title.as_deref()), None);
    assert_eq!(missing_text(&scene, Some("  ")), None);
}

#[test]
fn table_pages_split_long_index() {
    let Some(face) = text_face() else { return };
    let writer = PdfWriter::new(
        PdfOptions::default(),
        &face,
        None,
        provenance(0).rendered_at,
        true,
    )
    .expect("writer starts");
    let rows: Vec<(String, String)> = (0..200)
        .map(|index| (format!("Facility {index}"), index.to_string()))
        .collect();
    let short = writer.table_page_count("Index", &rows[..10]);
    let long = writer.table_page_count("Index", &rows);
    assert_eq!(short, 1);
    assert!(long >= 3, "{long} pages for 200 rows");
}
