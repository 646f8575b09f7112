//! The generated protobuf/gRPC types for `proto/jina.proto` and `proto/docarray.proto` (see
//! `build.rs`). Only `flow` uses them; they never appear in flowbridge's public API.

#[allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    missing_docs,
    unreachable_pub,
    non_camel_case_types
)]
pub(crate) mod docarray {
    tonic::include_proto!("docarray");
}

#[allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    missing_docs,
    unreachable_pub,
    non_camel_case_types
)]
pub(crate) mod jina {
    tonic::include_proto!("jina");
}
