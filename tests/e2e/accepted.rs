//! Tier 1: accepted specs check clean (warnings allowed, and snapshotted with the code).

use std::path::Path;

use crate::support::{compile, specs_in, stem, with_companions};

fn default_upstream(spec: &Path) -> Option<String> {
    let text = std::fs::read_to_string(spec).unwrap_or_default();
    text.lines()
        .next()?
        .strip_prefix("# gatewayc-test: --default-upstream ")
        .map(|s| s.trim().to_owned())
}

#[test]
fn every_accepted_spec_generates_the_snapshotted_code() {
    let specs = specs_in("accepted");
    assert!(specs.len() >= 4, "expected accepted specs, found {specs:?}");
    for spec in specs {
        let up = default_upstream(&spec);
        let out = compile(&with_companions(&spec), up.as_deref(), None);
        let rendered = out.diagnostics.render_human(&out.sources);
        let Some(model) = out.model else {
            panic!("{} has errors:\n{rendered}", spec.display())
        };
        let code = gatewayc::codegen::generate(&model);
        let snapshot = format!(
            "// diagnostics:\n{}\n// generated src/lib.rs:\n{code}",
            rendered
                .lines()
                .map(|l| format!("// {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        insta::assert_snapshot!(stem(&spec), snapshot);
    }
}

#[test]
fn generation_is_deterministic() {
    for spec in specs_in("accepted") {
        let up = default_upstream(&spec);
        let a = compile(&with_companions(&spec), up.as_deref(), None)
            .model
            .map(|m| gatewayc::codegen::generate(&m));
        let b = compile(&with_companions(&spec), up.as_deref(), None)
            .model
            .map(|m| gatewayc::codegen::generate(&m));
        assert_eq!(a, b, "{} generated different code twice", spec.display());
    }
}

#[test]
fn every_accepted_spec_is_compiled_into_the_test_crate() {
    let mut names: Vec<String> = specs_in("accepted").iter().map(|s| stem(s)).collect();
    names.sort();
    let mut compiled: Vec<String> = gatewayc_tests::NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    compiled.sort();
    assert_eq!(
        names, compiled,
        "build.rs skipped a spec; see its cargo warnings"
    );
}

#[test]
fn missing_operation_ids_get_named_with_a_warning() {
    let spec = crate::support::root().join("specs/accepted/no-x-gateway.yaml");
    let out = compile(&[spec], Some("http://127.0.0.1:9"), None);
    let model = out.model.unwrap_or_else(|| panic!("no model"));
    let ids: Vec<&str> = model.operations.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["getHealth", "getWidget", "putWidgetsId"]);
    assert!(model.operations.iter().all(|o| o.upstream == "default"));
    let warnings: Vec<_> = out
        .diagnostics
        .items()
        .iter()
        .filter(|d| d.code == "W0302")
        .collect();
    assert_eq!(warnings.len(), 2);
}
