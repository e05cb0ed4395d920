//! Fuzz target `segments`: see `anx_fuzz::checks::segments`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| anx_fuzz::checks::segments(data));
