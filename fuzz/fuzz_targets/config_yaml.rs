//! The config loader: YAML text → parse → validate (CEL and CESQL compiled), never a panic, every
//! error with a path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flowbridge_fuzz::check::config_yaml(data);
});
