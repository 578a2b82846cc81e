//! The default enhancement against bicubic enlargement, by PSNR and SSIM, on real imagery
//! reduced by area averaging and on a real coarse copy of a scene.

mod common;

use common::{geodata, shared_data};
use tessera::enhance::quality::{Row, pair_rows, read_image, reduction_rows};

/// Returns the scores of the default enhancement and of bicubic enlargement among `rows`.
fn enhanced_and_bicubic(rows: &[Row]) -> (&Row, &Row) {
    let find = |method: &str| {
        rows.iter()
            .find(|row| row.method == method)
            .expect("every method has a row")
    };
    (find("enhance (default)"), find("bicubic"))
}

fn assert_beats_bicubic(rows: &[Row]) {
    let (enhanced, bicubic) = enhanced_and_bicubic(rows);
    let case = format!("{} x{:.1}", enhanced.image, enhanced.factor);
    assert!(
        enhanced.score.psnr > bicubic.score.psnr,
        "{case}: PSNR {:.2} dB against bicubic {:.2} dB",
        enhanced.score.psnr,
        bicubic.score.psnr
    );
    assert!(
        enhanced.score.ssim > bicubic.score.ssim,
        "{case}: SSIM {:.4} against bicubic {:.4}",
        enhanced.score.ssim,
        bicubic.score.ssim
    );
}

#[test]
fn sentinel2_reduced_enhancement_beats_bicubic() {
    let (image, _) = read_image(&geodata("sentinel2-29rkh/TCI.tif")).expect("read TCI");
    // A 384-pixel window keeps the test quick in a debug build.
    let window = image.crop(200, 200, 384, 384);
    for factor in [2, 4] {
        assert_beats_bicubic(&reduction_rows("Sentinel-2 TCI", &window, factor));
    }
}

#[test]
fn landsat7_reduced_enhancement_beats_bicubic() {
    let (image, _) = read_image(&geodata("landsat7-bahamas/RGB.byte.tif")).expect("read Landsat");
    // A window inside the scene's nodata collar.
    let window = image.crop(240, 160, 320, 320);
    for factor in [2, 4] {
        assert_beats_bicubic(&reduction_rows("Landsat 7", &window, factor));
    }
}

#[test]
fn aerial_reduced_enhancement_beats_bicubic() {
    let Some(path) =
        shared_data("imagery-usgs-hro-15cm/201404_13SED190110_201404_0x1500m_CL_1.tif")
    else {
        return;
    };
    let (image, _) = read_image(&path).expect("read the aerial image");
    for factor in [2, 4] {
        assert_beats_bicubic(&reduction_rows("USGS HRO 15 cm", &image, factor));
    }
}

#[test]
fn landsat7_tenth_copy_stays_near_bicubic() {
    let (Some(fine), Some(coarse)) = (
        shared_data("imagery-landsat7-rgb-byte/RGB.byte.tif"),
        shared_data("imagery-landsat7-rgb-byte/rgb-byte-tenth.tif"),
    ) else {
        return;
    };
    // The window inside the collar that the reduction test uses keeps this quick.
    let window = Some([240, 160, 320, 320]);
    let rows = pair_rows("Landsat 7 tenth copy", &fine, &coarse, window).expect("the pair aligns");
    assert!((rows[0].factor - 10.0).abs() < 0.2, "{}", rows[0].factor);
    let (enhanced, bicubic) = enhanced_and_bicubic(&rows);
    // NOTE: at x10 from this copy the enhancement loses to bicubic (14.87 against 15.26 dB
    // over the whole scene in docs/benchmarks.md), as Lanczos3 alone does, and bilinear
    // scores best. That suggests the copy is aliased (point-sampled, not area-averaged), which
    // sharper filters show more. This checks that the loss stays under 1 dB and 0.05 SSIM.
    assert!(
        enhanced.score.psnr > bicubic.score.psnr - 1.0,
        "PSNR {:.2} dB against bicubic {:.2} dB",
        enhanced.score.psnr,
        bicubic.score.psnr
    );
    assert!(
        enhanced.score.ssim > bicubic.score.ssim - 0.05,
        "SSIM {:.4} against bicubic {:.4}",
        enhanced.score.ssim,
        bicubic.score.ssim
    );
}
