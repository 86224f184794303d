//! `gatewayc`: compiles OpenAPI documents annotated with `x-gateway` into a statically
//! routed Rust API gateway.
//!
//! The pipeline is [`compile`]: `load` (files → [`spec::Spec`]) → `lower`
//! ([`spec::Spec`] → [`model::Model`], every check) → `generate` ([`model::Model`] → Rust
//! source; infallible) → `emit` (source + templates → [`emit::Crate`]). Only `load` reads
//! files; only the binary writes them. Beside the pipeline, [`deploy`] turns a model into a
//! Dockerfile and Kubernetes manifests for `gatewayc build --deploy`. Apart from the
//! pipeline, [`keys`] manages API key stores for `gatewayc keys`, and reads and writes key
//! files.

pub mod cli;
pub mod codegen;
pub mod dashboard;
pub mod deploy;
pub mod diagnostic;
pub mod emit;
pub mod keys;
pub mod lower;
pub mod model;
pub mod spec;
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
