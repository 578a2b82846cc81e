//! Fuzz target that parses arbitrary text as `tessera.toml` and as a side file.
//! The body is `config` in `fuzz/harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|text: &str| {
    harness::config(text);
});
