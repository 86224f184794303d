//! Serves one of the accepted specs by name: `test-gateway proxy`, or the example gateway
//! (`generated-example/`) as `test-gateway petstore`. The run-tier tests start it as a real
//! process, so they can measure its memory and send it signals.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: gatewayc_runtime::Allocator = gatewayc_runtime::ALLOCATOR;

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    if name == "petstore" {
        return gatewayc_runtime::main::<petstore_gateway::Gateway>();
    }
    match gatewayc_tests::main_for(&name) {
        Some(code) => code,
        None => {
            eprintln!(
                "test-gateway: unknown spec `{name}`; known: {}",
                gatewayc_tests::NAMES.join(", ")
            );
            ExitCode::from(2)
        }
    }
}
