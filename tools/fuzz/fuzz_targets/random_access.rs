//! Fuzz target `random_access`: see `anx_fuzz::checks::random_access`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| anx_fuzz::checks::random_access(data));
