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
    let mut compiled = Vec::new();
    for spec in &specs {
        println!("cargo:rerun-if-changed={}", spec.display());
        let Some(stem) = spec.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let module = stem.replace('-', "_");
        let Some(model) = compile(spec, &root, default_upstream(spec)) else {
            continue;
        };
        all.push_str(&module_for(&model, out.as_path(), &module, "deny"));
        compiled.push(format!("{stem:?}"));
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
        compiled.join(", ")
    );
    let _ = std::fs::write(out.join("accepted.rs"), all);
    corpus(&root, &out);
}

/// Compiles the router of every document in the corpus (`../shared/corpus` beside the
/// repository, or `$GATEWAYC_CORPUS`: the place `gatewayc_tests::material::corpus` names)
/// into a module, with one request per operation for the routing test. The table is empty
/// when the corpus is absent; the test then says so, and passes (or fails under `CI=true`).
fn corpus(root: &Path, out: &Path) {
    println!("cargo:rerun-if-env-changed=GATEWAYC_CORPUS");
    let dir = std::env::var_os("GATEWAYC_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("..").join("shared").join("corpus"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    docs.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"));
    let multi = dir.join("digitalocean/specification/DigitalOcean-public.v2.yaml");
    if multi.exists() {
        docs.push(multi);
    }
    docs.sort();
    let mut all = String::new();
    let mut table = String::from(
        "/// A document's router, reduced to the operationId it selects.\n\
         pub type RouteFn = fn(&::gatewayc_runtime::http::Method, &str) -> ::core::result::Result<&'static str, ::gatewayc_runtime::RouteError>;\n\
         /// One request per operation: (method, path, operationId, path template).\n\
         pub type Case = (&'static str, &'static str, &'static str, &'static str);\n\
         /// (document, its router, its requests).\n\
         pub const CORPUS: &[(&str, RouteFn, &[Case])] = &[\n",
    );
    for doc in &docs {
        println!("cargo:rerun-if-changed={}", doc.display());
        let stem = doc.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let module = format!(
            "corpus_{}",
            stem.replace(['-', '.'], "_").to_ascii_lowercase()
        );
        let Some(model) = compile(doc, root, Some("http://127.0.0.1:9".into())) else {
            continue;
        };
        all.push_str(&module_for(&model, out, &module, "allow"));
        let _ = writeln!(
            all,
            "fn {module}_route(m: &::gatewayc_runtime::http::Method, p: &str) -> ::core::result::Result<&'static str, ::gatewayc_runtime::RouteError> {{ {module}::route(m, p).map(|r| r.operation_id()) }}"
        );
        let mut cases = String::new();
        for op in &model.operations {
            let path = sample_path(op);
            let _ = write!(
                cases,
                "({:?}, {:?}, {:?}, {:?}), ",
                op.method.as_str(),
                path,
                op.id,
                template_text(op)
            );
        }
        let _ = writeln!(table, "    ({stem:?}, {module}_route, &[{cases}]),");
    }
    table.push_str("];\n");
    all.push_str(&table);
    let _ = std::fs::write(out.join("corpus.rs"), all);
}

/// The operation's template as the test's oracle reads it: a multi-segment parameter is
/// written `{**name}`.
fn template_text(op: &gatewayc::model::Operation) -> String {
    use gatewayc::model::{Piece, Segment};
    let mut out = String::new();
    for seg in &op.path.segments {
        out.push('/');
        match seg {
            Segment::Literal(l) => out.push_str(l),
            Segment::Rest(name) => out.push_str(&format!("{{**{name}}}")),
            Segment::Pattern(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Lit(l) => out.push_str(l),
                        Piece::Param(n) => out.push_str(&format!("{{{n}}}")),
                    }
                }
            }
        }
    }
    out
}

/// A request path for an operation: each parameter replaced by a value valid for its type.
fn sample_path(op: &gatewayc::model::Operation) -> String {
    use gatewayc::model::{ParamType, Piece, Segment};
    let mut out = String::new();
    for seg in &op.path.segments {
        out.push('/');
        match seg {
            Segment::Literal(l) => out.push_str(l),
            Segment::Rest(_) => out.push_str("docs/read%20me.md"),
            Segment::Pattern(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Lit(l) => out.push_str(l),
                        Piece::Param(name) => {
                            let ty = op.params.iter().find(|p| &p.name == name).map(|p| &p.ty);
                            out.push_str(&match ty {
                                Some(ParamType::Int32 | ParamType::Int64) => "42".to_owned(),
                                Some(ParamType::Number) => "1.5".to_owned(),
                                Some(ParamType::Boolean) => "true".to_owned(),
                                Some(ParamType::Uuid) => {
                                    "123e4567-e89b-12d3-a456-426614174000".to_owned()
                                }
                                Some(ParamType::Enum(values)) => {
                                    encode(values.first().map_or("x", String::as_str))
                                }
                                _ => "v4lue".to_owned(),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Percent-encodes what cannot stand in a path segment.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Compiles one spec; its errors become a cargo warning (the e2e tests then show them).
fn compile(
    spec: &Path,
    root: &Path,
    default_upstream: Option<String>,
) -> Option<gatewayc::model::Model> {
    let input = gatewayc::Input {
        specs: with_companions(spec),
        base: root.to_path_buf(),
        options: gatewayc::lower::Options { default_upstream },
        emit: None,
    };
    let model = gatewayc::compile(&input).model;
    if model.is_none() {
        println!(
            "cargo:warning={} has errors; the e2e tests will show them",
            spec.display()
        );
    }
    model
}

/// A spec and the files its `# gatewayc-test: also FILE...` lines name (relative to the
/// spec's directory): several spec files compiled into one gateway, as
/// `gatewayc build a.yaml b.yaml` would.
fn with_companions(spec: &Path) -> Vec<PathBuf> {
    let mut specs = vec![spec.to_path_buf()];
    let text = std::fs::read_to_string(spec).unwrap_or_default();
    let dir = spec.parent().unwrap_or(Path::new("."));
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(files) = line.strip_prefix("# gatewayc-test: also ") {
            for f in files.split_whitespace() {
                println!("cargo:rerun-if-changed={}", dir.join(f).display());
                specs.push(dir.join(f));
            }
        }
    }
    specs
}

/// A spec's first line may say `# gatewayc-test: --default-upstream URL`.
fn default_upstream(spec: &Path) -> Option<String> {
    let text = std::fs::read_to_string(spec).ok()?;
    let first = text.lines().next()?;
    first
        .strip_prefix("# gatewayc-test: --default-upstream ")
        .map(|u| u.trim().to_owned())
}

/// Writes the model's generated code into `out/MODULE/` (only what changed, so cargo does
/// not recompile it) and returns the module declaration that includes it, under `#[deny]`
/// or `#[allow]` of warnings. The validators go beside it, where its `mod validators;`
/// finds them.
fn module_for(model: &gatewayc::model::Model, out: &Path, module: &str, warnings: &str) -> String {
    let dir = out.join(module);
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("lib.rs");
    write_if_changed(&file, &gatewayc::codegen::generate(model));
    if !model.validators.is_empty() {
        write_if_changed(&dir.join("validators.rs"), &model.validators);
    }
    format!(
        "#[{warnings}(warnings)]\n#[path = {:?}]\npub mod {module};\n",
        file.display().to_string()
    )
}

fn write_if_changed(file: &Path, text: &str) {
    if std::fs::read_to_string(file).ok().as_deref() != Some(text) {
        let _ = std::fs::write(file, text);
    }
}
