//! The `gatewayc` command line, run as a process.

use crate::support::{TempDir, gatewayc, root};

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
            "2000ms",
            "public",
            "-"
        ]
    );
    let mine = table
        .lines()
        .find(|l| l.contains("listMyPets "))
        .unwrap_or_default();
    assert!(mine.contains("bearer[pets:read]"), "{mine}");
}

#[test]
fn routes_shows_the_upstream_timeout_over_the_defaults() {
    // docs/x-gateway.md: the timeout used is the first set of operation, path item, the
    // upstream's `timeout`, `defaults.timeout`, 30 s.
    let dir = TempDir::new("routes-timeouts");
    let spec = dir.0.join("timeouts.yaml");
    std::fs::write(
        &spec,
        r#"openapi: 3.0.3
info: { title: Timeouts, version: 1.0.0 }
x-gateway:
  upstreams:
    pets: { url: "http://127.0.0.1:9", timeout: 5s }
    owners: "http://127.0.0.1:9"
  defaults: { upstream: pets, timeout: 10s }
paths:
  /pets:
    get: { operationId: listPets, responses: { "200": { description: ok } } }
  /pets/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
    x-gateway: { timeout: 3s }
    get: { operationId: getPet, responses: { "200": { description: ok } } }
    delete:
      operationId: deletePet
      x-gateway: { timeout: 2s }
      responses: { "204": { description: gone } }
  /owners:
    get:
      operationId: listOwners
      x-gateway: { upstream: owners }
      responses: { "200": { description: ok } }
"#,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
    let out = gatewayc(&["routes", &spec.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    let timeout_of = |id: &str| {
        table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.get(2) == Some(&id))
            .and_then(|cells| cells.get(5).map(|t| (*t).to_owned()))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"))
    };
    assert_eq!(
        timeout_of("listPets"),
        "5000ms",
        "the upstream's, not the defaults'"
    );
    assert_eq!(timeout_of("getPet"), "3000ms", "the path item's");
    assert_eq!(timeout_of("deletePet"), "2000ms", "the operation's");
    assert_eq!(timeout_of("listOwners"), "10000ms", "the defaults'");
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

#[test]
fn build_compiles_a_gateway_outside_the_workspace_that_serves_examples() {
    let dir = std::env::temp_dir().join(format!("gatewayc-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_string_lossy().into_owned();
    // Its own target directory: the workspace's is locked by the running `cargo test`.
    let target = root().join("target").join("outside-build");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatewayc"))
        .args(["build", "specs/petstore.yaml", "-o", &dir_s])
        .current_dir(root())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gatewayc: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gatewayc build failed:\n{stderr}");
    assert!(dir.join("Cargo.lock").exists(), "no lock file written");
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(bin.ends_with("petstore-gateway"), "printed {bin:?}");

    // The binary serves the example response with no upstream running.
    let mut child = std::process::Command::new(&bin)
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .env("GATEWAY_WORKERS", "1")
        .env_remove("PETS_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = lines
        .find_map(|l| {
            l.ok()?
                .split("listening on http://")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("the built gateway did not start"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = rt.block_on(crate::support::get(&format!("http://{addr}/pets/1")));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["name"], "Rex");
}
