//! The CloudEvents HTTP binding on whole messages: a header list (CloudEvents `ce-*` names,
//! `Content-Type`, anything else) and a body, in any mode. Invariants: `flowbridge_fuzz::check`.
#![no_main]

use flowbridge_fuzz::check;
use flowbridge_fuzz::wire::HttpInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: HttpInput| {
    check::http_message(&input.header_map(), &input.body.into());
});
