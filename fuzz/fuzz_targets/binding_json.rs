//! The JSON event format: raw bytes as a structured-mode body and as a batch body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flowbridge_fuzz::check::binding_json(data);
});
