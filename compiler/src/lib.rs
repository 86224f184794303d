//! `gatewayc`: compiles OpenAPI documents annotated with `x-gateway` into a statically
//! routed Rust API gateway.
//!
//! The pipeline is [`compile`]: `load` (files → [`spec::Spec`]) → `lower`
//! ([`spec::Spec`] → [`model::Model`], every check) → `generate` ([`model::Model`] → Rust
//! source; infallible) → `emit` (source + templates → [`emit::Crate`]). Only `load` reads
//! files; only the binary writes them. Beside the pipeline, [`deploy`] turns a model into a
//! Dockerfile and Kubernetes manifests for `gatewayc build --deploy`, [`startup`] says what
//! a gateway will need from its environment, [`routes`] lays out its route table, and
//! [`sarif`] writes diagnostics for code scanning. Apart from the pipeline, [`keys`]
//! manages API key stores for `gatewayc keys`, and reads and writes key files.

pub mod cli;
pub mod codegen;
pub mod dashboard;
pub mod deploy;
pub mod diagnostic;
pub mod emit;
pub mod keys;
pub mod lower;
pub mod model;
pub mod routes;
pub mod sarif;
pub mod spec;
pub mod startup;
pub mod validate;

use std::path::PathBuf;

use diagnostic::Diagnostics;
use emit::{Crate, EmitError, EmitOptions};
use model::Model;
use spec::source::Sources;

/// What to compile.
#[derive(Debug, Clone)]
pub struct Input {
    /// The spec files, in order; several files make one gateway.
    pub specs: Vec<PathBuf>,
    /// Paths in diagnostics are shown relative to this directory.
    pub base: PathBuf,
    /// Command-line choices that the spec does not hold.
    pub options: lower::Options,
    /// How the generated crate finds the runtime; `None` stops after `lower` (a check).
    pub emit: Option<EmitOptions>,
}

/// What a compilation produced.
#[derive(Debug)]
pub struct Output {
    /// Every file read, for rendering diagnostics.
    pub sources: Sources,
    /// Every finding, sorted by file and position.
    pub diagnostics: Diagnostics,
    /// The validated model, when there was no error.
    pub model: Option<Model>,
    /// The generated crate, when asked for and there was no error.
    pub krate: Option<Result<Crate, EmitError>>,
}

/// The whole pipeline: load → lower → generate → emit.
pub fn compile(input: &Input) -> Output {
    let mut diagnostics = Diagnostics::default();
    let spec = spec::load(&input.specs, &input.base, &mut diagnostics);
    let model = lower::lower(&spec, &input.options, &mut diagnostics);
    let krate = match (&model, &input.emit) {
        (Some(model), Some(opts)) => Some(emit::render(model, codegen::generate(model), opts)),
        _ => None,
    };
    diagnostics.sort(&spec.sources);
    Output {
        sources: spec.sources,
        diagnostics,
        model,
        krate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles `yaml`, written to `api.yaml` in a temporary directory that is also the
    /// base, as `gatewayc check` would.
    fn check(yaml: &str) -> Output {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("api.yaml");
        std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("{e}"));
        compile(&Input {
            specs: vec![path],
            base: dir.path().to_path_buf(),
            options: lower::Options::default(),
            emit: None,
        })
    }

    #[test]
    fn a_typo_in_defaults_upstream_is_reported_once_where_it_is_written() {
        let mut yaml = String::from(
            r#"openapi: 3.0.3
info: { title: Pets, version: "1" }
security: []
x-gateway:
  upstreams:
    pets: { url: "http://127.0.0.1:9" }
  defaults: { upstream: petz }
paths:
"#,
        );
        for i in 0..8 {
            yaml.push_str(&format!(
                "  /p{i}:\n    get: {{ operationId: op{i}, responses: {{ \"200\": {{ description: ok }} }} }}\n"
            ));
        }
        let out = check(&yaml);
        let e0303: Vec<_> = out
            .diagnostics
            .items()
            .iter()
            .filter(|d| d.code == "E0303")
            .collect();
        assert_eq!(e0303.len(), 1, "{:?}", out.diagnostics.items());
        let human = out.diagnostics.render_human(&out.sources);
        assert!(
            human.contains(
                "error[E0303]: upstream `petz` is not defined in `x-gateway.upstreams`\n --> api.yaml:7:25 (at #/x-gateway/defaults/upstream)"
            ),
            "{human}"
        );
        assert!(human.contains("did you mean `pets`?"), "{human}");
        assert!(
            human.ends_with("error: could not compile the gateway due to 1 error\n"),
            "{human}"
        );
    }

    #[test]
    fn the_same_typo_on_two_operations_is_reported_at_each() {
        let out = check(
            r#"openapi: 3.0.3
info: { title: Pets, version: "1" }
security: []
x-gateway:
  upstreams:
    pets: { url: "http://127.0.0.1:9" }
paths:
  /a:
    get: { operationId: a, x-gateway: { upstream: petz }, responses: { "200": { description: ok } } }
  /b:
    get: { operationId: b, x-gateway: { upstream: petz }, responses: { "200": { description: ok } } }
"#,
        );
        let lines: Vec<usize> = out
            .diagnostics
            .items()
            .iter()
            .filter(|d| d.code == "E0303")
            .filter_map(|d| d.location.as_ref())
            .filter_map(|l| out.sources.locate(l))
            .map(|p| p.line)
            .collect();
        assert_eq!(lines, [9, 11]);
    }
}
