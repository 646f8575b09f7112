//! Generates the Jina gateway gRPC types from `proto/` with tonic-prost-build, using the protoc
//! binary shipped by `protoc-bin-vendored` (no system protoc needed). The client is what
//! flowbridge uses; the server stubs are generated too but every server module is marked
//! `#[cfg(any(test, feature = "test-util"))]`, so they only exist for the in-process gateways of
//! `src/flow/testing` (the tests' fake gateway, the benchmarks' null gateway; off in the default
//! build).
//!
//! Two builds: `proto/jina.proto` + `proto/docarray.proto` (docarray v1) into `OUT_DIR`, and
//! `proto/v2/jina.proto` + `proto/v2/docarray.proto` (docarray v2) into `OUT_DIR/v2`. Both use
//! the packages `jina` and `docarray` (so the gRPC paths are the same, `/jina.JinaRPC/Call`);
//! compiling them separately keeps the two `docarray` packages apart.

use std::io;
use std::path::PathBuf;

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
    let includes = protoc_bin_vendored::include_path().map_err(io::Error::other)?;
    let out_dir = PathBuf::from(
        std::env::var_os("OUT_DIR").ok_or_else(|| io::Error::other("OUT_DIR unset"))?,
    );
    for (dir, out) in [("proto", out_dir.clone()), ("proto/v2", out_dir.join("v2"))] {
        std::fs::create_dir_all(&out)?;
        let mut config = tonic_prost_build::Config::new();
        config.protoc_executable(&protoc);
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .server_mod_attribute(".", "#[cfg(any(test, feature = \"test-util\"))]")
            .emit_rerun_if_changed(false)
            .out_dir(&out)
            .compile_with_config(
                config,
                &[
                    PathBuf::from(format!("{dir}/jina.proto")),
                    PathBuf::from(format!("{dir}/docarray.proto")),
                ],
                &[PathBuf::from(dir), includes.clone()],
            )?;
    }
    Ok(())
}
