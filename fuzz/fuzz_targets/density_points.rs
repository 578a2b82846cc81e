//! Fuzz target that loads arbitrary bytes as a CSV or GeoJSON point file and renders its tiles.
//! The body is `density_points` in `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    harness::density_points(bytes);
});
