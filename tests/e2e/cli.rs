//! The `gatewayc` command line, run as a process.

use crate::support::{gatewayc, root};

#[test]
fn check_exits_zero_on_the_example_and_one_on_a_rejected_spec() {
    let ok = gatewayc(&["check", "specs/petstore.yaml"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stderr).contains("ok: 8 operations"));

    let bad = gatewayc(&["check", "specs/rejected/unknown-key.yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("error[E0202]: unknown key `tiemout`"), "{err}");
    assert!(
        err.contains("--> specs/rejected/unknown-key.yaml:"),
        "{err}"
    );
    assert!(err.contains("did you mean `timeout`?"), "{err}");
}

#[test]
fn check_json_is_machine_readable() {
    let out = gatewayc(&[
        "check",
        "--format",
        "json",
        "specs/rejected/unknown-key.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let first = &v[0];
    assert_eq!(first["severity"], "error");
    assert!(first["location"]["line"].as_u64().is_some_and(|l| l > 1));
    assert!(
        first["location"]["pointer"]
            .as_str()
            .is_some_and(|p| p.starts_with("/"))
    );
}

#[test]
fn a_spec_without_x_gateway_compiles_with_a_default_upstream() {
    let without = gatewayc(&["check", "specs/accepted/no-x-gateway.yaml"]);
    assert_eq!(without.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&without.stderr).contains("reaches no upstream"));
    let with = gatewayc(&[
        "check",
        "--default-upstream",
        "http://127.0.0.1:9",
        "specs/accepted/no-x-gateway.yaml",
    ]);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
}

#[test]
fn routes_prints_the_compiled_table() {
    let out = gatewayc(&["routes", "specs/petstore.yaml"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.contains("getPet "))
        .unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "GET",
            "/pets/{petId}",
            "getPet",
            "pets",
            "/internal/pets/{petId}",
            "2000ms"
        ]
    );
}

#[test]
fn several_spec_files_make_one_gateway() {
    let out = gatewayc(&[
        "routes",
        "specs/petstore.yaml",
        "specs/accepted/multi-file.yaml",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("getPet") && table.contains("getOrder"),
        "{table}"
    );
}

#[test]
fn emit_only_writes_a_standalone_crate_outside_the_workspace() {
    let dir = std::env::temp_dir().join(format!("gatewayc-emit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_string_lossy().into_owned();
    let out = gatewayc(&["build", "specs/petstore.yaml", "-o", &dir_s, "--emit-only"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    let runtime = root().join("runtime").canonicalize().unwrap_or_default();
    assert!(
        manifest.contains(&format!("path = \"{}\"", runtime.display())),
        "{manifest}"
    );
    assert!(dir.join("src/lib.rs").exists() && dir.join("src/main.rs").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
