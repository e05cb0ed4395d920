//! Fuzz target `payload`: see `anx_fuzz::checks::payload`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| anx_fuzz::checks::payload(data));
