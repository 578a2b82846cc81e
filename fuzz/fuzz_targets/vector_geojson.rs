//! Fuzz target that loads arbitrary bytes as a GeoJSON vector source and encodes its tiles.
//! The body is `vector_geojson` in `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    harness::vector_geojson(bytes);
});
