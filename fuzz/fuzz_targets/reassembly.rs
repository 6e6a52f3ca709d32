//! libFuzzer target; the input format and properties are documented on
//! `checks::reassembly`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::reassembly(data));
