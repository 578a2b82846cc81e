//! The GDAL functions that the `gdal` crate 0.19 does not wrap: `GDALWarp` into an existing
//! dataset and `GDALTranslate` to an in-memory VRT here, OGR field and geometry access in
//! `ogr`, and byte ranges of local or remote files in `vsi`.
//!
//! This is the one module allowed `unsafe`. Each call passes handles owned by live `Dataset`
//! or `Feature` values and arguments that outlive the call, and checks every returned pointer.
#![allow(unsafe_code)]

pub mod ogr;
pub mod vsi;

use std::ffi::{CStr, CString};
use std::ptr;
use std::time::Instant;

use gdal::Dataset;
use gdal::cpl::CslStringList;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum GdalCallError {
    #[error("invalid {utility} options {args:?}: {message}")]
    Options {
        utility: &'static str,
        args: Vec<String>,
        message: String,
    },
    #[error("{utility} failed: {message}")]
    Failed {
        utility: &'static str,
        message: String,
    },
    #[error("GDAL option {0:?} contains a NUL byte")]
    Nul(String),
}

fn last_error_message() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated buffer
    // that stays valid until the next GDAL call on this thread, so it is copied at once.
    let message = unsafe { CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) };
    let message = message.to_string_lossy().trim().to_owned();
    if message.is_empty() {
        "no message from GDAL".to_owned()
    } else {
        message
    }
}

fn option_list(args: &[String]) -> Result<CslStringList, GdalCallError> {
    let mut list = CslStringList::new();
    for arg in args {
        list.add_string(arg)
            .map_err(|_| GdalCallError::Nul(arg.clone()))?;
    }
    Ok(list)
}

/// Returns 0, which makes GDAL stop, once the deadline behind `deadline` has passed.
unsafe extern "C" fn stop_after_deadline(
    _complete: f64,
    _message: *const std::ffi::c_char,
    deadline: *mut std::ffi::c_void,
) -> std::ffi::c_int {
    // SAFETY: `deadline` is the `&Instant` that `warp_into` passes, alive for the whole call.
    let deadline = unsafe { &*deadline.cast::<Instant>() };
    std::ffi::c_int::from(Instant::now() < *deadline)
}

/// Warps `source` into `destination` with `gdalwarp` command-line options such as
/// `["-r", "bilinear", "-dstalpha"]`. The destination's size, geotransform and CRS define the
/// output grid. GDAL checks `deadline` between chunks of the warp and stops with an error once
/// it has passed.
pub fn warp_into(
    source: &Dataset,
    destination: &mut Dataset,
    args: &[String],
    deadline: Instant,
) -> Result<(), GdalCallError> {
    let list = option_list(args)?;
    // SAFETY: `list` stays alive until after GDALWarpAppOptionsFree, and GDAL copies what it
    // needs from the argument vector.
    let options = unsafe { gdal_sys::GDALWarpAppOptionsNew(list.as_ptr(), ptr::null_mut()) };
    if options.is_null() {
        return Err(GdalCallError::Options {
            utility: "gdalwarp",
            args: args.to_vec(),
            message: last_error_message(),
        });
    }
    // SAFETY: `options` is valid, and `deadline` outlives the GDALWarp call below, the only
    // place the callback runs.
    unsafe {
        gdal_sys::GDALWarpAppOptionsSetProgress(
            options,
            Some(stop_after_deadline),
            (&raw const deadline).cast_mut().cast(),
        );
    }
    let mut sources = [source.c_dataset()];
    let mut usage_error = 0;
    // SAFETY: both handles belong to datasets borrowed for the whole call; GDALWarp with a
    // destination handle returns that same handle and does not take ownership of it.
    let result = unsafe {
        gdal_sys::CPLErrorReset();
        let result = gdal_sys::GDALWarp(
            ptr::null(),
            destination.c_dataset(),
            1,
            sources.as_mut_ptr(),
            options,
            &raw mut usage_error,
        );
        gdal_sys::GDALWarpAppOptionsFree(options);
        result
    };
    if result.is_null() || usage_error != 0 {
        return Err(GdalCallError::Failed {
            utility: "gdalwarp",
            message: last_error_message(),
        });
    }
    Ok(())
}

/// Translates `source` to a virtual dataset held in memory, with `gdal_translate` options such
/// as `["-b", "3", "-b", "2"]`. The VRT keeps the source's overviews.
///
/// The VRT reads through `source`'s handle without taking a reference to it: keep `source`
/// alive, and drop the VRT first (dropping the source first crashed GDAL 3.6.2).
pub fn translate_to_vrt(source: &Dataset, args: &[String]) -> Result<Dataset, GdalCallError> {
    let mut all_args = vec!["-of".to_owned(), "VRT".to_owned()];
    all_args.extend_from_slice(args);
    let list = option_list(&all_args)?;
    let empty_name = CString::new("").map_err(|_| GdalCallError::Nul(String::new()))?;
    // SAFETY: as in `warp_into`, the option list outlives the options object.
    let options = unsafe { gdal_sys::GDALTranslateOptionsNew(list.as_ptr(), ptr::null_mut()) };
    if options.is_null() {
        return Err(GdalCallError::Options {
            utility: "gdal_translate",
            args: all_args,
            message: last_error_message(),
        });
    }
    let mut usage_error = 0;
    // SAFETY: the source handle is borrowed for the call. The returned handle is a new
    // dataset that we own, wrapped at once so that it is closed on drop.
    let handle = unsafe {
        gdal_sys::CPLErrorReset();
        let handle = gdal_sys::GDALTranslate(
            empty_name.as_ptr(),
            source.c_dataset(),
            options,
            &raw mut usage_error,
        );
        gdal_sys::GDALTranslateOptionsFree(options);
        handle
    };
    if handle.is_null() || usage_error != 0 {
        return Err(GdalCallError::Failed {
            utility: "gdal_translate",
            message: last_error_message(),
        });
    }
    // SAFETY: `handle` is a valid dataset owned by no one else.
    Ok(unsafe { Dataset::from_c_dataset(handle) })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gdal::DriverManager;

    use super::*;

    fn warp_sample(deadline: Instant) -> Result<(), GdalCallError> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/geodata/sentinel2-29rkh/TCI.tif"
        );
        let source = Dataset::open(path).expect("open the sample scene");
        let driver = DriverManager::get_driver_by_name("MEM").expect("MEM driver");
        let mut target = driver
            .create_with_band_type::<u8, _>("", 64, 64, 4)
            .expect("create");
        target
            .set_geo_transform(&[-1_300_000.0, 1000.0, 0.0, 2_900_000.0, 0.0, -1000.0])
            .expect("transform");
        let mercator = gdal::spatial_ref::SpatialRef::from_epsg(3857).expect("EPSG:3857");
        target.set_spatial_ref(&mercator).expect("CRS");
        let args = ["-r", "bilinear", "-dstalpha"].map(str::to_owned);
        warp_into(&source, &mut target, &args, deadline)
    }

    #[test]
    fn warp_runs_before_its_deadline() {
        warp_sample(Instant::now() + Duration::from_mins(1)).expect("warp");
    }

    #[test]
    fn warp_stops_after_its_deadline() {
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("an earlier instant");
        let error = warp_sample(past).expect_err("a passed deadline stops the warp");
        assert!(
            matches!(
                error,
                GdalCallError::Failed {
                    utility: "gdalwarp",
                    ..
                }
            ),
            "{error}"
        );
    }
}
