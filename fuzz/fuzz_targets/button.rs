//! libFuzzer target; the input format and properties are documented on
//! `checks::button`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::button(data));
