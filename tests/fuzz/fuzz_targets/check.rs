//! `gatewayc check` on any file: load, resolve and lower end in a model or diagnostics,
//! never a panic.
#![no_main]

use std::path::PathBuf;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("gatewayc-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("spec.yaml");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let input = gatewayc::Input {
        specs: vec![PathBuf::from(&file)],
        base: dir.clone(),
        options: gatewayc::lower::Options::default(),
        emit: None,
    };
    let out = gatewayc::compile(&input);
    let _ = out.diagnostics.render_human(&out.sources);
});
