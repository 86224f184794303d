//! Compiles every accepted spec (`specs/accepted/*.yaml|json`) into a module of this crate,
//! so that the generated code of each is compiled here, with warnings denied, and the
//! `test-gateway` binary can serve any of them by name.
//!
//! A spec's first line may be `# gatewayc-test: --default-upstream URL` to compile it the way
//! `gatewayc check --default-upstream URL` would.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let accepted = root.join("specs").join("accepted");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed={}", accepted.display());

    let mut specs: Vec<PathBuf> = std::fs::read_dir(&accepted)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    specs.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"));
    specs.sort();

    let mut all = String::new();
    let mut arms = String::new();
    for spec in &specs {
        println!("cargo:rerun-if-changed={}", spec.display());
        let Some(stem) = spec.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let module = stem.replace('-', "_");
        let Some(model) = compile(spec, &root) else {
            println!(
                "cargo:warning=accepted spec {} has errors; the e2e tests will show them",
                spec.display()
            );
            continue;
        };
        let file = out.join(format!("{module}.rs"));
        let code = gatewayc::codegen::generate(&model);
        if std::fs::read_to_string(&file).ok().as_deref() != Some(code.as_str()) {
            let _ = std::fs::write(&file, code);
        }
        let _ = writeln!(
            all,
            "#[deny(warnings)]\n#[path = {:?}]\npub mod {module};",
            file.display().to_string()
        );
        let _ = writeln!(
            arms,
            "        {stem:?} => ::core::option::Option::Some(::gatewayc_runtime::main::<{module}::Gateway>()),"
        );
    }
    let _ = write!(
        all,
        "\n/// Serves the accepted spec named `name` (its file stem) as `gatewayc run` would.\n\
         pub fn main_for(name: &str) -> ::core::option::Option<::std::process::ExitCode> {{\n    match name {{\n{arms}        _ => ::core::option::Option::None,\n    }}\n}}\n\n\
         /// The file stems of every compiled accepted spec.\n\
         pub const NAMES: &[&str] = &[{}];\n",
        specs
            .iter()
            .filter_map(|s| s.file_stem().and_then(|s| s.to_str()))
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = std::fs::write(out.join("accepted.rs"), all);
}

fn compile(spec: &Path, root: &Path) -> Option<gatewayc::model::Model> {
    let first_line = std::fs::read_to_string(spec)
        .ok()?
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let default_upstream = first_line
        .strip_prefix("# gatewayc-test: --default-upstream ")
        .map(|u| u.trim().to_owned());
    let input = gatewayc::Input {
        specs: vec![spec.to_path_buf()],
        base: root.to_path_buf(),
        options: gatewayc::lower::Options { default_upstream },
        emit: None,
    };
    gatewayc::compile(&input).model
}
