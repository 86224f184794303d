//! The `gatewayc` binary; everything is in [`gatewayc::cli`].

fn main() -> std::process::ExitCode {
    gatewayc::cli::main()
}
