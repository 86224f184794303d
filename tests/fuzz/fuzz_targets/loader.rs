//! The YAML loader on any text: a value or located errors, never a panic, a stack overflow
//! or unbounded memory (nesting and alias expansion are bounded).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gatewayc::spec::yaml::parse(text);
        let _ = gatewayc::spec::yaml::spans(text);
    }
});
