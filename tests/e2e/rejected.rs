//! Tier 2: rejected specs fail with diagnostics that are snapshotted as users see them.

use crate::support::{compile, specs_in, stem};
use gatewayc::diagnostic::Severity;

#[test]
fn every_rejected_spec_fails_with_located_errors() {
    let specs = specs_in("rejected");
    assert!(specs.len() >= 8, "expected rejected specs, found {specs:?}");
    for spec in specs {
        let out = compile(&crate::support::with_companions(&spec), None, None);
        assert!(out.model.is_none(), "{} was accepted", spec.display());
        for d in out
            .diagnostics
            .items()
            .iter()
            .filter(|d| d.severity == Severity::Error)
        {
            let loc = d.location.as_ref().unwrap_or_else(|| {
                panic!("{}: error without location: {}", spec.display(), d.message)
            });
            assert!(
                out.sources.locate(loc).is_some(),
                "{}: no line:col for {} at {}",
                spec.display(),
                d.message,
                loc.pointer
            );
        }
        insta::assert_snapshot!(stem(&spec), out.diagnostics.render_human(&out.sources));
    }
}

#[test]
fn json_output_carries_the_same_findings() {
    for spec in specs_in("rejected") {
        let out = compile(&crate::support::with_companions(&spec), None, None);
        let json: serde_json::Value =
            serde_json::from_str(&out.diagnostics.render_json(&out.sources)).unwrap_or_default();
        let items = json.as_array().cloned().unwrap_or_default();
        assert_eq!(
            items.len(),
            out.diagnostics.items().len(),
            "{}",
            spec.display()
        );
        for item in items.iter().filter(|i| i["severity"] == "error") {
            assert!(
                item["code"].as_str().is_some_and(|c| c.starts_with('E')),
                "{item}"
            );
            assert!(
                item["location"]["line"].as_u64().is_some(),
                "{}: {item}",
                spec.display()
            );
            assert!(
                item["location"]["file"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("specs/rejected/")),
                "{item}"
            );
        }
    }
}
