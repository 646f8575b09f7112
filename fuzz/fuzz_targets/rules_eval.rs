//! Fixed CEL and CESQL filters, mappings and reply programs (fuzz/src/rules.yaml and
//! `check::CESQL`) evaluated on fuzzed events: any attributes, extensions and JSON data the
//! binding would accept.
#![no_main]

use flowbridge_fuzz::check;
use flowbridge_fuzz::wire::EventInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: EventInput| {
    if let Some(event) = input.validated() {
        check::rules(&event);
    }
});
