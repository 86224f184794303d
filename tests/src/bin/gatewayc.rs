//! The `gatewayc` command line, built inside this package so that the end-to-end tests
//! can run it (`CARGO_BIN_EXE_gatewayc`) without a nested cargo invocation.

fn main() -> std::process::ExitCode {
    gatewayc::cli::main()
}
