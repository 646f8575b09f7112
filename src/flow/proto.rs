//! The generated protobuf/gRPC types for `proto/jina.proto` and `proto/docarray.proto`, and their
//! docarray v2 build `proto/v2/` in [`v2`] (see
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

/// The docarray v2 build (`proto/v2/`): the same `jina` messages and services, with
/// `DataRequestProto.data.docs` a `DocListProto`.
pub(crate) mod v2 {
    #[allow(
        clippy::all,
        clippy::pedantic,
        dead_code,
        missing_docs,
        unreachable_pub,
        non_camel_case_types
    )]
    pub(crate) mod docarray {
        include!(concat!(env!("OUT_DIR"), "/v2/docarray.rs"));
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
        include!(concat!(env!("OUT_DIR"), "/v2/jina.rs"));
    }
}
