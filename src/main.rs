//! The `flowbridge` binary: all behaviour lives in the library; see `flowbridge --help`.

/// mimalloc instead of glibc's malloc: under load a third of flowbridge's CPU went to glibc's
/// malloc/free (per-request gRPC buffers, protobuf and JSON values, consolidation of large
/// chunks); see docs/benchmarks.md for the measurement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    flowbridge::cli::main()
}
