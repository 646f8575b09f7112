//! Generates the Jina gateway gRPC types from `proto/` with tonic-prost-build, using the protoc
//! binary shipped by `protoc-bin-vendored` (no system protoc needed). The client is what
//! flowbridge uses; the server stubs are generated too but every server module is marked
//! `#[cfg(any(test, feature = "null-gateway"))]`, so they only exist for the in-process fake
//! gateway in `src/flow` tests and the benchmarks' null gateway (off in the default build).

use std::io;
use std::path::PathBuf;

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
    let includes = protoc_bin_vendored::include_path().map_err(io::Error::other)?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .server_mod_attribute(".", "#[cfg(any(test, feature = \"null-gateway\"))]")
        .emit_rerun_if_changed(false)
        .compile_with_config(
            config,
            &[
                PathBuf::from("proto/jina.proto"),
                PathBuf::from("proto/docarray.proto"),
            ],
            &[PathBuf::from("proto"), includes],
        )
}
