//! The router generated for the example spec (`generated-example`) on any method and path:
//! an operation, 404 or 405, never a panic. The first byte chooses the method.
#![no_main]

use gatewayc_runtime::http::Method;

const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = &METHODS[usize::from(m) % METHODS.len()];
    let _ = petstore_gateway::route(method, path);
});
