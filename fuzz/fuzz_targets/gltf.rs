//! Fuzz target that loads arbitrary bytes as a `.glb` or `.gltf` model and cuts it into floorplans.
//! The body is `gltf` in `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    harness::gltf(bytes);
});
