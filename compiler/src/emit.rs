//! Stage 4, `emit`: the generated source plus files rendered from `templates/` → an
//! in-memory crate (path → contents).
//!
//! Only the command-line binary writes files. Non-Rust files come from templates, never
//! from `format!`, so their syntax is visible in one place. The one exception is the
//! Grafana dashboard (`dashboard.json`, beside `Cargo.toml`), which [`crate::dashboard`]
//! builds as a JSON value, so that it is always valid JSON.

use std::collections::BTreeMap;

use minijinja::{Environment, context};

use crate::model::Model;

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.j2");
const MAIN_RS: &str = include_str!("../../templates/main.rs.j2");

/// How the generated crate finds `gatewayc-runtime`.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// Path to the runtime crate, as written into the generated `Cargo.toml`.
    pub runtime_path: String,
    /// Add an empty `[workspace]` so the crate builds on its own wherever it is (off only
    /// for `generated-example/`, a member of this repository's workspace).
    pub standalone: bool,
}

/// A generated crate: relative path → file contents, in sorted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    /// The package name (`<gateway name>-gateway`).
    pub package: String,
    /// The files.
    pub files: BTreeMap<String, String>,
}

/// A template failed to render; a bug in gatewayc, reported rather than written.
#[derive(Debug, thiserror::Error)]
#[error("internal error rendering {template}: {source}")]
pub struct EmitError {
    template: &'static str,
    source: minijinja::Error,
}

/// The generated crate's package and binary name: `<gateway name>-gateway`.
pub fn package_name(model: &Model) -> String {
    format!("{}-gateway", model.name)
}

/// Assembles the crate for `model` around the generated `lib.rs` source.
pub fn render(model: &Model, lib_rs: String, opts: &EmitOptions) -> Result<Crate, EmitError> {
    let package = package_name(model);
    let lib = package.replace('-', "_");
    let env = Environment::new();
    // The runtime's optional parts this gateway uses: a gateway without a Redis store does
    // not build the Redis client.
    let uses_redis = matches!(model.consumers, Some(crate::model::ConsumerStore::Redis(_)))
        || model
            .limits
            .as_ref()
            .is_some_and(|l| matches!(l.store, crate::model::LimitStore::Redis { .. }));
    // Span export is switched on by the environment at start-up (`OTEL_EXPORTER_OTLP_*`),
    // so every gateway carries it.
    let mut features = vec!["tls", "mimalloc", "otlp"];
    if uses_redis {
        features.push("redis");
    }
    let ctx = context! {
        features => features,
        name => &model.name,
        package => &package,
        lib => &lib,
        sources => model.sources.join(", "),
        runtime_path => &opts.runtime_path,
        standalone => opts.standalone,
    };
    let mut files = BTreeMap::new();
    for (path, template) in [("Cargo.toml", CARGO_TOML), ("src/main.rs", MAIN_RS)] {
        let mut text = env.render_str(template, &ctx).map_err(|source| EmitError {
            template: path_static(path),
            source,
        })?;
        text.truncate(text.trim_end().len());
        text.push('\n');
        files.insert(path.to_owned(), text);
    }
    files.insert("src/lib.rs".to_owned(), lib_rs);
    if !model.validators.is_empty() {
        files.insert("src/validators.rs".to_owned(), model.validators.clone());
    }
    files.insert("dashboard.json".to_owned(), crate::dashboard::render(model));
    Ok(Crate { package, files })
}

fn path_static(path: &str) -> &'static str {
    match path {
        "Cargo.toml" => "templates/Cargo.toml.j2",
        _ => "templates/main.rs.j2",
    }
}
