//! The `flowbridge` binary: all behaviour lives in the library; see `flowbridge --help`.

fn main() -> std::process::ExitCode {
    flowbridge::cli::main()
}
