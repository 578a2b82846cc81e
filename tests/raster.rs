//! Imagery tiles from real GeoTIFFs and COGs, decoded and checked pixel by pixel.

mod common;

use common::{TestServer, decode_image, folder_with, geodata, shared_data};
use tessera::tile::{TileCoord, lonlat_to_tile};

fn alpha_fraction(image: &image::RgbaImage, predicate: impl Fn(u8) -> bool) -> f64 {
    let count = image.pixels().filter(|p| predicate(p.0[3])).count();
    count as f64 / f64::from(image.width() * image.height())
}

fn mean_channel(image: &image::RgbaImage, channel: usize) -> f64 {
    let opaque: Vec<_> = image.pixels().filter(|p| p.0[3] == 255).collect();
    opaque.iter().map(|p| f64::from(p.0[channel])).sum::<f64>() / opaque.len().max(1) as f64
}

/// Returns the centre (lon, lat) of a TileJSON's `bounds`.
fn bounds_centre(tilejson: &serde_json::Value) -> (f64, f64) {
    let edge = |i: usize| tilejson["bounds"][i].as_f64().expect("TileJSON bounds");
    (
        f64::midpoint(edge(0), edge(2)),
        f64::midpoint(edge(1), edge(3)),
    )
}

fn tile_path(source: &str, tile: TileCoord, suffix: &str) -> String {
    format!("/tiles/{source}/{}/{}/{}{suffix}", tile.z, tile.x, tile.y)
}

#[tokio::test]
async fn sentinel2_tile_inside_scene_is_opaque_desert() {
    let server = TestServer::serving(&[geodata("sentinel2-29rkh")]).await;
    let tile = lonlat_to_tile(-11.43, 24.8, 9);
    let response = server.get(&tile_path("TCI", tile, ".png")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let image = decode_image(&response.bytes().await.expect("body"));
    assert_eq!(image.dimensions(), (256, 256));
    assert!(
        image.pixels().all(|p| p.0[3] == 255),
        "every pixel inside the scene has data"
    );
    let (red, blue) = (mean_channel(&image, 0), mean_channel(&image, 2));
    assert!(red > 150.0, "desert is bright red-brown, mean red {red}");
    assert!(
        red > blue,
        "desert is redder than blue: red {red}, blue {blue}"
    );
}

#[tokio::test]
async fn sentinel2_tile_on_west_edge_is_half_transparent() {
    let server = TestServer::serving(&[geodata("sentinel2-29rkh")]).await;
    // The scene's west edge is at about 11.979 W; this z8 tile spans 12.656 W to 11.25 W.
    let tile = lonlat_to_tile(-11.979, 24.8, 8);
    let response = server.get(&tile_path("TCI", tile, ".png")).await;
    assert_eq!(response.status(), 200);
    let image = decode_image(&response.bytes().await.expect("body"));
    let bounds = tile.bounds_lonlat();
    let edge_column = ((-11.979 - bounds.min_x) / bounds.width() * 256.0) as u32;
    let row = 128;
    assert_eq!(
        image.get_pixel(edge_column - 6, row).0[3],
        0,
        "west of the scene is transparent"
    );
    assert_eq!(
        image.get_pixel(edge_column + 6, row).0[3],
        255,
        "east of the edge is imagery"
    );
}

#[tokio::test]
async fn landsat7_collar_is_transparent_and_empty_tiles_are_204() {
    let server = TestServer::serving(&[geodata("landsat7-bahamas")]).await;
    let tilejson = server.json("/tiles/RGB.byte.json").await;
    let zoom = 9;
    assert_eq!(tilejson["maxzoom"], zoom, "300 m pixels need zoom 9");
    let bounds = &tilejson["bounds"];
    let b = tessera::tile::Bbox {
        min_x: bounds[0].as_f64().expect("west"),
        min_y: bounds[1].as_f64().expect("south"),
        max_x: bounds[2].as_f64().expect("east"),
        max_y: bounds[3].as_f64().expect("north"),
    };
    let (mut empty, mut partial, mut full) = (0, 0, 0);
    for tile in tessera::tile::tiles_in_bbox(&b, zoom) {
        let response = server.get(&tile_path("RGB.byte", tile, ".png")).await;
        match response.status().as_u16() {
            204 => {
                assert!(
                    response.bytes().await.expect("body").is_empty(),
                    "204 has no body"
                );
                empty += 1;
            }
            200 => {
                let image = decode_image(&response.bytes().await.expect("body"));
                let transparent = alpha_fraction(&image, |a| a == 0);
                if transparent > 0.0 {
                    partial += 1;
                } else {
                    full += 1;
                }
                for pixel in image.pixels().filter(|p| p.0[3] == 255) {
                    assert_ne!(
                        &pixel.0[..3],
                        &[0, 0, 0],
                        "nodata never shows as opaque black"
                    );
                }
            }
            status => panic!("tile {tile} returned {status}"),
        }
    }
    assert!(empty > 0, "corner tiles of the collar are empty");
    assert!(partial > 0, "edge tiles are partly transparent");
    assert!(full > 0, "inner tiles are fully opaque");
}

#[tokio::test]
async fn sizes_and_formats_decode() {
    let server = TestServer::serving(&[geodata("sentinel2-29rkh")]).await;
    let tile = lonlat_to_tile(-11.43, 24.8, 10);
    let cases = [
        (".png", "image/png", 256),
        ("@2x.png", "image/png", 512),
        (".jpg", "image/jpeg", 256),
        (".webp", "image/webp", 256),
        ("@2x.jpg", "image/jpeg", 512),
    ];
    for (suffix, media_type, size) in cases {
        let response = server.get(&tile_path("TCI", tile, suffix)).await;
        assert_eq!(response.status(), 200, "{suffix}");
        assert_eq!(response.headers()["content-type"], media_type, "{suffix}");
        let image = decode_image(&response.bytes().await.expect("body"));
        assert_eq!(image.dimensions(), (size, size), "{suffix}");
    }
}

#[tokio::test]
async fn resampling_parameter_changes_pixels() {
    let server = TestServer::serving(&[geodata("sentinel2-29rkh")]).await;
    // Zoom 11 is finer than the 100 m pixels, so each filter enlarges differently.
    let path = tile_path("TCI", lonlat_to_tile(-11.43, 24.8, 11), ".png");
    let mut images = Vec::new();
    for name in ["nearest", "bilinear", "cubic", "lanczos"] {
        let response = server.get(&format!("{path}?resampling={name}")).await;
        assert_eq!(response.status(), 200, "{name}");
        images.push(decode_image(&response.bytes().await.expect("body")));
    }
    for pair in images.windows(2) {
        assert_ne!(
            pair[0].as_raw(),
            pair[1].as_raw(),
            "each filter gives other pixels"
        );
    }
    let distinct = |image: &image::RgbaImage| {
        image
            .pixels()
            .map(|p| p.0)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let (nearest, bilinear) = (distinct(&images[0]), distinct(&images[1]));
    assert!(
        nearest < bilinear,
        "nearest only repeats source pixels: {nearest} colours against {bilinear}"
    );

    let response = server.get(&format!("{path}?resampling=average")).await;
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.expect("problem");
    assert_eq!(problem["parameter"], "resampling");
}

#[tokio::test]
async fn sixteen_bit_bands_are_stretched() {
    let Some(b04) = shared_data("imagery-sentinel2-l2a-29rkh/B04.tif") else {
        return;
    };
    let folder = folder_with(&[&b04]);
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let tile = lonlat_to_tile(-11.43, 24.8, 9);
    let response = server.get(&tile_path("B04", tile, ".png")).await;
    assert_eq!(response.status(), 200);
    let image = decode_image(&response.bytes().await.expect("body"));
    let values: Vec<f64> = image.pixels().map(|p| f64::from(p.0[0])).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let spread =
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    assert!(
        (40.0..215.0).contains(&mean),
        "a 2-98 % stretch centres the values, mean {mean}"
    );
    assert!(
        spread > 10.0,
        "the stretch keeps contrast, standard deviation {spread}"
    );
    let grey = image.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]);
    assert!(grey, "one band is served as grey");
}

#[tokio::test]
async fn landsat8_uint16_scenes_with_nodata_collars() {
    let Some(first) = shared_data("imagery-landsat8-uint16-mosaic/mosaic_cog1.tif") else {
        return;
    };
    let Some(second) = shared_data("imagery-landsat8-uint16-mosaic/mosaic_cog2.tif") else {
        return;
    };
    let folder = folder_with(&[&first, &second]);
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    for id in ["mosaic_cog1", "mosaic_cog2"] {
        let tilejson = server.json(&format!("/tiles/{id}.json")).await;
        let bounds = &tilejson["bounds"];
        let centre = bounds_centre(&tilejson);
        let inner = server
            .get(&tile_path(
                id,
                lonlat_to_tile(centre.0, centre.1, 8),
                ".png",
            ))
            .await;
        assert_eq!(inner.status(), 200, "{id}");
        let image = decode_image(&inner.bytes().await.expect("body"));
        // The footprint is tilted, so the box's centre tile has collar in one corner.
        assert!(
            alpha_fraction(&image, |a| a == 255) > 0.7,
            "{id}: the centre has data"
        );
        let mean = mean_channel(&image, 0);
        assert!(
            (20.0..235.0).contains(&mean),
            "{id}: 16-bit values stretched into range, mean {mean}"
        );

        let corner = lonlat_to_tile(
            bounds[0].as_f64().expect("w") + 0.01,
            bounds[3].as_f64().expect("n") - 0.01,
            9,
        );
        let response = server.get(&tile_path(id, corner, ".png")).await;
        if response.status() == 200 {
            let image = decode_image(&response.bytes().await.expect("body"));
            assert!(
                alpha_fraction(&image, |a| a == 0) > 0.3,
                "{id}: the north-west corner is mostly collar"
            );
        } else {
            assert_eq!(
                response.status(),
                204,
                "{id}: an all-collar corner is empty"
            );
        }
    }
}

#[tokio::test]
async fn naip_four_bands_serve_as_rgb() {
    let Some(naip) = shared_data("imagery-naip-timeseries/m_4709963_se_14_1_20140720.tif") else {
        return;
    };
    let folder = folder_with(&[&naip]);
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let id = "m_4709963_se_14_1_20140720";
    let tilejson = server.json(&format!("/tiles/{id}.json")).await;
    assert_eq!(tilejson["maxzoom"], 15, "5 m pixels near 47 N need zoom 15");
    let centre = bounds_centre(&tilejson);
    let response = server
        .get(&tile_path(
            id,
            lonlat_to_tile(centre.0, centre.1, 14),
            ".png",
        ))
        .await;
    assert_eq!(response.status(), 200);
    let image = decode_image(&response.bytes().await.expect("body"));
    assert!(
        image.pixels().all(|p| p.0[3] == 255),
        "every pixel has data"
    );
    let coloured = image
        .pixels()
        .filter(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2])
        .count();
    assert!(coloured > 1000, "red, green and blue bands give colour");
}

#[tokio::test]
async fn aerial_15cm_serves_at_high_zoom() {
    let Some(aerial) = shared_data("imagery-usgs-hro-15cm/cog_rgb.tif") else {
        return;
    };
    let folder = folder_with(&[&aerial]);
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let tilejson = server.json("/tiles/cog_rgb.json").await;
    let maxzoom = tilejson["maxzoom"].as_u64().expect("maxzoom");
    assert!(
        (19..=21).contains(&maxzoom),
        "15 cm pixels need zoom 19 to 21, got {maxzoom}"
    );
    let centre = bounds_centre(&tilejson);
    let tile = lonlat_to_tile(centre.0, centre.1, maxzoom as u8);
    let response = server.get(&tile_path("cog_rgb", tile, ".png")).await;
    assert_eq!(response.status(), 200);
    let image = decode_image(&response.bytes().await.expect("body"));
    assert!(
        alpha_fraction(&image, |a| a == 255) > 0.2,
        "the image covers part of the tile"
    );
}

/// Runs a GDAL command-line program and panics with its output when it fails.
fn gdal_command(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("GDAL tools are installed by scripts/setup");
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn cog_on_tile_grid_sends_stored_bytes() {
    let folder = tempfile::tempdir().expect("tempdir");
    let tci = geodata("sentinel2-29rkh/TCI.tif");
    let tci = tci.to_str().expect("utf-8 path");
    // The WebP file keeps the alpha band that the COG driver adds; the JPEG file has none,
    // because JPEG tiles cannot carry transparency.
    for (name, compression, alpha) in [
        ("grid_webp.tif", "WEBP", "YES"),
        ("grid_jpeg.tif", "JPEG", "NO"),
    ] {
        let target = folder.path().join(name);
        gdal_command(
            "gdal_translate",
            &[
                "-q",
                "-of",
                "COG",
                "-co",
                "TILING_SCHEME=GoogleMapsCompatible",
                "-co",
                "ALIGNED_LEVELS=2",
                "-co",
                &format!("ADD_ALPHA={alpha}"),
                "-co",
                &format!("COMPRESS={compression}"),
                "-a_nodata",
                "none",
                tci,
                target.to_str().expect("utf-8"),
            ],
        );
    }
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    for (id, extension) in [("grid_webp", "webp"), ("grid_jpeg", "jpg")] {
        let file = std::fs::read(folder.path().join(format!("{id}.tif"))).expect("read COG");
        let tilejson = server.json(&format!("/tiles/{id}.json")).await;
        let maxzoom = tilejson["maxzoom"].as_u64().expect("maxzoom") as u8;
        for zoom in [maxzoom, maxzoom - 1] {
            let tile = lonlat_to_tile(-11.43, 24.8, zoom);
            let response = server
                .get(&tile_path(id, tile, &format!(".{extension}")))
                .await;
            assert_eq!(response.status(), 200, "{id} {tile}");
            let body = response.bytes().await.expect("body");
            decode_image(&body);
            // A JPEG gets the file's shared tables spliced in after its start marker, so
            // compare from the start-of-scan marker on.
            let stored = match extension {
                "jpg" => {
                    &body[body
                        .windows(2)
                        .position(|w| w == [0xFF, 0xDA])
                        .expect("SOS marker")..]
                }
                _ => &body[..],
            };
            assert!(
                file.windows(stored.len()).any(|w| w == stored),
                "{id} {tile}: the bytes are the stored tile's"
            );
        }
        let png = server
            .get(&tile_path(
                id,
                lonlat_to_tile(-11.43, 24.8, maxzoom),
                ".png",
            ))
            .await;
        assert_eq!(png.status(), 200, "another format is rendered");
        assert_eq!(png.headers()["content-type"], "image/png");
    }
}

#[tokio::test]
async fn bad_rasters_are_reported_and_the_rest_served() {
    let folder = tempfile::tempdir().expect("tempdir");
    let tci = std::fs::read(geodata("sentinel2-29rkh/TCI.tif")).expect("read TCI");
    std::fs::write(folder.path().join("truncated.tif"), &tci[..4096]).expect("write");
    std::fs::write(
        folder.path().join("garbage.tif"),
        b"this is not a TIFF file",
    )
    .expect("write");
    std::fs::write(folder.path().join("good.tif"), &tci).expect("write");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff driver");
        let plain = folder.path().join("plain.tif");
        let dataset = driver
            .create_with_band_type::<u8, _>(&plain, 64, 64, 1)
            .expect("create");
        dataset
            .rasterband(1)
            .expect("band")
            .fill(100.0, None)
            .expect("fill");
    }
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let failures = &server.state.failures;
    for name in ["truncated.tif", "garbage.tif", "plain.tif"] {
        let failure = failures.iter().find(|f| f.path.ends_with(name));
        let failure = failure.unwrap_or_else(|| panic!("{name} is reported at start-up"));
        assert!(!failure.reason.is_empty(), "{name} has a reason");
    }
    let plain = failures
        .iter()
        .find(|f| f.path.ends_with("plain.tif"))
        .expect("plain.tif");
    assert!(
        plain.reason.contains("georeferencing"),
        "the reason names the problem: {}",
        plain.reason
    );
    let catalog = server.json("/catalog").await;
    let ids: Vec<&str> = catalog["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["good", "good.coverage"],
        "only the good file is served, with its coverage layer"
    );
    let health = server.json("/health").await;
    assert_eq!(
        health["failed_sources"].as_array().expect("failures").len(),
        3
    );
    let tile = lonlat_to_tile(-11.43, 24.8, 9);
    assert_eq!(
        server.get(&tile_path("good", tile, ".png")).await.status(),
        200
    );
}

#[tokio::test]
async fn configured_bands_and_rescale_apply() {
    let folder = tempfile::tempdir().expect("tempdir");
    let config_path = folder.path().join("tessera.toml");
    let tci = geodata("sentinel2-29rkh/TCI.tif");
    let tci = tci.to_str().expect("UTF-8 path");
    std::fs::write(
        &config_path,
        format!(
            "[sources.natural]\npath = \"{tci}\"\n\n\
             [sources.swapped]\npath = \"{tci}\"\nbands = [3, 2, 1]\n\n\
             [sources.red]\npath = \"{tci}\"\nbands = [1]\nrescale = \"range:100,255\"\n\n\
             [sources.wrong]\npath = \"{tci}\"\nbands = [5]\n"
        ),
    )
    .expect("write configuration");
    let config = tessera::config::Config::load(&config_path).expect("valid configuration");
    let server = TestServer::start(config).await;
    let wrong = server
        .state
        .failures
        .iter()
        .find(|f| f.reason.contains("band 5"));
    assert!(
        wrong.is_some(),
        "a band out of range is reported: {:?}",
        server.state.failures
    );

    let tile = lonlat_to_tile(-11.43, 24.8, 9);
    let mut images = Vec::new();
    for id in ["natural", "swapped", "red"] {
        let response = server.get(&tile_path(id, tile, ".png")).await;
        assert_eq!(response.status(), 200, "{id}");
        images.push(decode_image(&response.bytes().await.expect("body")));
    }
    let (natural, swapped, red) = (&images[0], &images[1], &images[2]);
    for (a, b) in natural.pixels().zip(swapped.pixels()) {
        assert_eq!(
            (a.0[0], a.0[2]),
            (b.0[2], b.0[0]),
            "bands 3, 2, 1 swap red and blue"
        );
    }
    for (a, b) in natural.pixels().zip(red.pixels()) {
        let expected = ((f64::from(a.0[0]) - 100.0) * 255.0 / 155.0)
            .round()
            .clamp(0.0, 255.0);
        assert!(
            (f64::from(b.0[0]) - expected).abs() <= 1.0,
            "range 100-255 stretches red: {} -> {}",
            a.0[0],
            b.0[0]
        );
        assert_eq!(b.0[0], b.0[1], "one band is grey");
    }
}

#[tokio::test]
async fn large_raster_without_overviews_is_bounded() {
    let folder = tempfile::tempdir().expect("tempdir");
    {
        // 40,000 x 40,000 pixels of 0.5 m with no overviews; sparse, so a few kilobytes on disk.
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff driver");
        let options: gdal::raster::RasterCreationOptions =
            ["TILED=YES", "SPARSE_OK=TRUE", "COMPRESS=DEFLATE"]
                .into_iter()
                .collect();
        let path = folder.path().join("aerial.tif");
        let mut dataset = driver
            .create_with_band_type_with_options::<u8, _>(&path, 40_000, 40_000, 1, &options)
            .expect("create");
        dataset
            .set_geo_transform(&[200_000.0, 0.5, 0.0, 2_800_000.0, 0.0, -0.5])
            .expect("transform");
        let srs = gdal::spatial_ref::SpatialRef::from_epsg(32629).expect("EPSG:32629");
        dataset.set_spatial_ref(&srs).expect("CRS");
    }
    let server = TestServer::start(tessera::config::Config {
        paths: vec![folder.path().to_owned()],
        tile_timeout: 5.0,
        ..tessera::config::Config::default()
    })
    .await;
    let tilejson = server.json("/tiles/aerial.json").await;
    let minzoom = tilejson["minzoom"].as_u64().expect("minzoom") as u8;
    // The 0.5 m grid is at about zoom 18, so a tile reads at most 2048 pixels a side from zoom 15.
    assert!(
        (14..=16).contains(&minzoom),
        "zooms whose tiles would read the whole image are not served: {minzoom}"
    );
    let bounds = &tilejson["bounds"];
    let west = bounds[0].as_f64().expect("west") + 0.01;
    let north = bounds[3].as_f64().expect("north") - 0.01;
    let below = lonlat_to_tile(west, north, minzoom - 1);
    assert_eq!(
        server
            .get(&tile_path("aerial", below, ".png"))
            .await
            .status(),
        404
    );
    let at = lonlat_to_tile(west, north, minzoom);
    let status = server.get(&tile_path("aerial", at, ".png")).await.status();
    assert!(
        status == 200 || status == 204,
        "the tile at minzoom renders: {status}"
    );
}

#[tokio::test]
async fn rasters_off_the_earth_or_without_pixel_size_are_reported() {
    let folder = tempfile::tempdir().expect("tempdir");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff driver");
    let wgs84 = gdal::spatial_ref::SpatialRef::from_epsg(4326).expect("EPSG:4326");
    for (name, transform) in [
        ("off_earth.tif", [500.0, 1.0, 0.0, 60.0, 0.0, -1.0]),
        ("zero_pixel.tif", [10.0, 0.0, 0.0, 10.0, 0.0, 0.0]),
    ] {
        let mut dataset = driver
            .create_with_band_type::<u8, _>(folder.path().join(name), 64, 4, 1)
            .expect("create");
        dataset.set_geo_transform(&transform).expect("transform");
        dataset.set_spatial_ref(&wgs84).expect("CRS");
    }
    let server = TestServer::serving(&[folder.path().to_owned()]).await;
    let reason = |name: &str| {
        let failure = server
            .state
            .failures
            .iter()
            .find(|f| f.path.ends_with(name));
        failure.map_or_else(|| panic!("{name} is reported"), |f| f.reason.clone())
    };
    assert!(
        reason("off_earth.tif").contains("outside"),
        "{}",
        reason("off_earth.tif")
    );
    assert!(
        reason("zero_pixel.tif").contains("georeferencing"),
        "{}",
        reason("zero_pixel.tif")
    );
}

/// Computing the percentile stretch of 16-bit data writes nothing beside the file: GDAL would
/// otherwise save the statistics as an `.aux.xml` file when the dataset closes.
#[test]
fn stretch_statistics_write_no_aux_file() {
    let scene = geodata("landsat8-mosaic/mosaic_cog1.tif");
    let folder = folder_with(&[&scene]);
    let copy = folder.path().join("mosaic_cog1.tif");
    let source =
        tessera::raster::RasterSource::open(&copy, tessera::raster::RasterOptions::default())
            .expect("the scene opens with an automatic stretch");
    drop(source);
    let names: Vec<String> = std::fs::read_dir(folder.path())
        .expect("list the folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["mosaic_cog1.tif"],
        "only the scene is in its folder"
    );
}
