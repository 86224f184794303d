//! Compiles the benchmark's corpus documents with gatewayc and writes, for each, the
//! generated router (the `src/lib.rs` a generated gateway crate would have) plus a table of
//! its operations, into OUT_DIR. `src/main.rs` includes `corpora.rs`, which ties them in.
//!
//! The documents are read from `<repo>/../shared/corpus`, or from the directory named by
//! `ROUTER_BENCH_CORPUS`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gatewayc::model::{Model, ParamType};

/// (module name, file name in the corpus directory)
const CORPORA: &[(&str, &str)] = &[
    ("github", "github-api-2021.json"),
    ("stripe", "stripe-spec3-2023-09.yaml"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("run by cargo"));
    // bench/router → repository root.
    let repo = manifest
        .parent()
        .and_then(Path::parent)
        .expect("bench/router lies two levels below the repository root")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=ROUTER_BENCH_CORPUS");
    let corpus_dir = match std::env::var_os("ROUTER_BENCH_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => repo.join("..").join("shared").join("corpus"),
    };

    let mut tie = String::new();
    for &(name, file) in CORPORA {
        let spec = corpus_dir.join(file);
        println!("cargo:rerun-if-changed={}", spec.display());
        let model = compile(&spec, &repo);

        let router_file = out.join(format!("{name}_router.rs"));
        write_if_changed(&router_file, &gatewayc::codegen::generate(&model));

        let _ = writeln!(
            tie,
            "/// The router gatewayc generates for `{file}`.\n\
             #[allow(dead_code, unused_qualifications, clippy::all)]\n\
             #[path = {:?}]\n\
             pub mod {name}_router;\n",
            router_file.display().to_string()
        );
        let _ = writeln!(
            tie,
            "/// The operations of `{file}`, in the model's order.\n\
             pub const {}_OPS: &[crate::Op] = &[\n{}];\n",
            name.to_uppercase(),
            operations_table(&model)
        );
    }
    write_if_changed(&out.join("corpora.rs"), &tie);
}

fn compile(spec: &Path, repo: &Path) -> Model {
    let input = gatewayc::Input {
        specs: vec![spec.to_path_buf()],
        base: repo.to_path_buf(),
        options: gatewayc::lower::Options {
            default_upstream: Some("http://127.0.0.1:9".into()),
        },
        emit: None,
    };
    let output = gatewayc::compile(&input);
    match output.model {
        Some(model) => model,
        None => panic!(
            "{} does not compile:\n{}",
            spec.display(),
            output.diagnostics.render_human(&output.sources)
        ),
    }
}

/// One `crate::Op { .. },` line per operation.
fn operations_table(model: &Model) -> String {
    let mut table = String::new();
    for op in &model.operations {
        let params: Vec<String> = op
            .params
            .iter()
            .map(|p| {
                let kind = match &p.ty {
                    ParamType::String => "crate::Kind::Str".to_owned(),
                    ParamType::Int32 | ParamType::Int64 => "crate::Kind::Int".to_owned(),
                    ParamType::Number => "crate::Kind::Num".to_owned(),
                    ParamType::Boolean => "crate::Kind::Bool".to_owned(),
                    ParamType::Uuid => "crate::Kind::Uuid".to_owned(),
                    ParamType::Path => "crate::Kind::Path".to_owned(),
                    ParamType::Enum(values) => match values.first() {
                        Some(first) => format!("crate::Kind::Enum({first:?})"),
                        None => "crate::Kind::Str".to_owned(),
                    },
                };
                format!("({:?}, {kind})", p.name)
            })
            .collect();
        // A multi-segment parameter is matchit's catch-all, `{*name}`.
        let mut template = op.path.raw.clone();
        for p in op.params.iter().filter(|p| p.ty == ParamType::Path) {
            template = template.replace(&format!("{{{}}}", p.name), &format!("{{*{}}}", p.name));
        }
        let _ = writeln!(
            table,
            "    crate::Op {{ id: {:?}, method: {:?}, template: {:?}, params: &[{}] }},",
            op.id,
            op.method.as_str(),
            template,
            params.join(", ")
        );
    }
    table
}

/// Leaves an unchanged file alone, so cargo does not recompile the big generated modules.
fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
