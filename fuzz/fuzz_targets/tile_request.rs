//! Fuzz target that parses arbitrary tile paths and query strings (four lines: z, x, `{y}.{ext}`, query).
//! The body is `tile_request` in `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|text: &str| {
    harness::tile_request(text);
});
