//! Tier 3: the committed `generated-example/` is exactly what gatewayc generates now.

use crate::support::{compile, root};

#[test]
fn generated_example_is_up_to_date() {
    let emit = gatewayc::emit::EmitOptions {
        runtime_path: "../runtime".into(),
        standalone: false,
    };
    let out = compile(&[root().join("specs/petstore.yaml")], None, Some(emit));
    assert!(
        !out.diagnostics.has_errors(),
        "{}",
        out.diagnostics.render_human(&out.sources)
    );
    assert!(
        out.diagnostics.items().is_empty(),
        "the example should check without warnings:\n{}",
        out.diagnostics.render_human(&out.sources)
    );
    let krate = out
        .krate
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no crate"));
    for (path, expected) in &krate.files {
        let on_disk = std::fs::read_to_string(root().join("generated-example").join(path))
            .unwrap_or_default();
        assert!(
            on_disk == *expected,
            "generated-example/{path} is stale; regenerate it with:\n  cargo run -p gatewayc -- build specs/petstore.yaml -o generated-example --emit-only --workspace-member"
        );
    }
}

#[test]
fn example_routes_with_match_and_no_route_table() {
    let lib =
        std::fs::read_to_string(root().join("generated-example/src/lib.rs")).unwrap_or_default();
    assert!(lib.contains("pub fn route<'p>("));
    assert!(
        lib.contains("match __b0.get(1usize) {") && lib.contains("Some(b'p') =>"),
        "dispatch is not a match on the path's bytes"
    );
    for table in ["matchit", "Router", "HashMap", "BTreeMap", "regex"] {
        assert!(!lib.contains(table), "generated code mentions {table}");
    }
}
