//! Route lookups of gatewayc's generated router and of matchit over the operations of a
//! real API description, for counting instructions with callgrind (see `run.py`).
//!
//! ```text
//! router-bench <github|stripe> <gatewayc|matchit|baseline|check|list> [iterations]
//! ```
//!
//! `check` only runs the checks (and lists the templates matchit refused); `list` prints
//! every request with the operation it must reach.
//!
//! Every operation gives one request: its method and its path template with each
//! parameter replaced by a value of the parameter's type. Templates matchit refuses to
//! insert are left out for both routers. Before measuring, both routers are checked to
//! select the expected operation for every request; any difference aborts the run.
//!
//! The measured work happens inside `measure_gatewayc`, `measure_matchit` and
//! `measure_baseline` (never inlined, so callgrind's `--toggle-collect` can count just
//! them). `baseline` runs the same loop without a lookup, so its count is the loop's own
//! cost, to subtract.

use std::hint::black_box;
use std::process::ExitCode;

use gatewayc_runtime::http::Method;

/// The type of a path parameter, reduced to what choosing a sample value needs.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Int,
    Num,
    Bool,
    Uuid,
    /// A multi-segment parameter (the rest of the path).
    Path,
    /// An enum, with its first value.
    Enum(&'static str),
}

/// One operation of a corpus document, as written by `build.rs`.
#[derive(Debug)]
pub struct Op {
    pub id: &'static str,
    pub method: &'static str,
    pub template: &'static str,
    pub params: &'static [(&'static str, Kind)],
}

mod corpora {
    include!(concat!(env!("OUT_DIR"), "/corpora.rs"));
}

const DEFAULT_ITERATIONS: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Corpus {
    Github,
    Stripe,
}

impl Corpus {
    fn ops(self) -> &'static [Op] {
        match self {
            Corpus::Github => corpora::GITHUB_OPS,
            Corpus::Stripe => corpora::STRIPE_OPS,
        }
    }

    /// gatewayc's answer: the operationId of the selected route, or the error's text.
    fn gatewayc_route(self, method: &Method, path: &str) -> Result<&'static str, String> {
        match self {
            Corpus::Github => corpora::github_router::route(method, path)
                .map(|r| r.operation_id())
                .map_err(|e| format!("{e:?}")),
            Corpus::Stripe => corpora::stripe_router::route(method, path)
                .map(|r| r.operation_id())
                .map_err(|e| format!("{e:?}")),
        }
    }
}

/// One request to route.
#[derive(Debug)]
struct Request {
    method: Method,
    path: String,
    /// Index of the operation it was made from, in `Corpus::ops`.
    op: usize,
    /// (name, value) of each parameter, in template order.
    values: Vec<(&'static str, String)>,
}

/// A sample value of each type, valid for gatewayc's parameter parsers.
fn sample(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "octocat",
        Kind::Int => "42",
        Kind::Num => "1.5",
        Kind::Bool => "true",
        Kind::Uuid => "0b5c3a9e-4f21-4d8e-9a77-2c1e6f0d3b48",
        Kind::Enum(first) => first,
        Kind::Path => "docs/guide/readme.md",
    }
}

/// The template with every `{name}` replaced by a sample value of the parameter's type;
/// literal text around parameters stays as it is.
fn concrete(op: &Op) -> (String, Vec<(&'static str, String)>) {
    let mut path = String::with_capacity(op.template.len() + 16);
    let mut values = Vec::new();
    let mut rest = op.template;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .unwrap_or_else(|| panic!("unclosed `{{` in {}", op.template));
        let name = rest[open + 1..close].trim_start_matches('*');
        let &(name, kind) = op
            .params
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{}: no parameter `{name}` in the model", op.template));
        let value = sample(kind);
        path.push_str(value);
        values.push((name, value.to_owned()));
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    (path, values)
}

/// Position of a method in `Entry::ops`.
const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
];
const GET: usize = 0;
const HEAD: usize = 1;
const NONE: u16 = u16::MAX;

/// What matchit stores per path template: the operation index for each method, `NONE`
/// where the template has no such operation. Dispatching on the method after the path
/// match is what axum's `MethodRouter` does (one field per method).
#[derive(Debug, Clone, Copy)]
struct Entry {
    ops: [u16; 8],
}

/// The method's slot: a chain of comparisons with the standard methods, like axum's.
#[inline]
fn method_slot(method: &Method) -> Option<usize> {
    if *method == Method::GET {
        Some(0)
    } else if *method == Method::HEAD {
        Some(1)
    } else if *method == Method::POST {
        Some(2)
    } else if *method == Method::PUT {
        Some(3)
    } else if *method == Method::PATCH {
        Some(4)
    } else if *method == Method::DELETE {
        Some(5)
    } else if *method == Method::OPTIONS {
        Some(6)
    } else if *method == Method::TRACE {
        Some(7)
    } else {
        None
    }
}

/// matchit's answer plus the method dispatch: the operation index, `None` for 404/405.
/// `HEAD` falls back to `GET`, as in gatewayc (and axum).
#[inline]
fn matchit_lookup<'r, 'p>(
    router: &'r matchit::Router<Entry>,
    method: &Method,
    path: &'p str,
) -> Option<(u16, matchit::Params<'r, 'p>)> {
    let matched = router.at(path).ok()?;
    let slot = method_slot(method)?;
    let mut op = matched.value.ops[slot];
    if op == NONE && slot == HEAD {
        op = matched.value.ops[GET];
    }
    (op != NONE).then_some((op, matched.params))
}

/// The requests and the matchit router, with templates matchit refused left out.
struct Setup {
    requests: Vec<Request>,
    router: matchit::Router<Entry>,
    /// (template, matchit's error) for each refused template.
    refused: Vec<(&'static str, String)>,
    /// Operations left out because their template was refused.
    refused_ops: usize,
}

fn setup(corpus: Corpus) -> Setup {
    let ops = corpus.ops();
    // Templates in first-seen order, with their per-method operations.
    let mut templates: Vec<(&'static str, Entry)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let slot = METHODS
            .iter()
            .position(|m| m.as_str() == op.method)
            .unwrap_or_else(|| panic!("unknown method {}", op.method));
        let index = u16::try_from(i).expect("fewer than 65535 operations");
        match templates.iter_mut().find(|(t, _)| *t == op.template) {
            Some((_, entry)) => entry.ops[slot] = index,
            None => {
                let mut entry = Entry { ops: [NONE; 8] };
                entry.ops[slot] = index;
                templates.push((op.template, entry));
            }
        }
    }
    let mut router = matchit::Router::new();
    let mut refused = Vec::new();
    for (template, entry) in templates {
        if let Err(e) = router.insert(template, entry) {
            refused.push((template, e.to_string()));
        }
    }
    let mut requests = Vec::new();
    let mut refused_ops = 0;
    for (i, op) in ops.iter().enumerate() {
        if refused.iter().any(|(t, _)| *t == op.template) {
            refused_ops += 1;
            continue;
        }
        let (path, values) = concrete(op);
        requests.push(Request {
            method: Method::from_bytes(op.method.as_bytes()).expect("a valid method"),
            path,
            op: i,
            values,
        });
    }
    Setup {
        requests,
        router,
        refused,
        refused_ops,
    }
}

/// Both routers must select the request's own operation (and matchit must hand back the
/// sample values). Returns one line per disagreement.
fn check(corpus: Corpus, setup: &Setup) -> Vec<String> {
    let ops = corpus.ops();
    let mut problems = Vec::new();
    for req in &setup.requests {
        let want = ops[req.op].id;
        match corpus.gatewayc_route(&req.method, &req.path) {
            Ok(got) if got == want => {}
            Ok(got) => problems.push(format!(
                "gatewayc: {} {} selected {got}, expected {want}",
                req.method, req.path
            )),
            Err(e) => problems.push(format!(
                "gatewayc: {} {} failed with {e}, expected {want}",
                req.method, req.path
            )),
        }
        match matchit_lookup(&setup.router, &req.method, &req.path) {
            Some((got, params)) => {
                let got = ops[usize::from(got)].id;
                if got != want {
                    problems.push(format!(
                        "matchit: {} {} selected {got}, expected {want}",
                        req.method, req.path
                    ));
                }
                for (name, value) in &req.values {
                    if params.get(name) != Some(value.as_str()) {
                        problems.push(format!(
                            "matchit: {} {}: parameter {name} = {:?}, expected {value:?}",
                            req.method,
                            req.path,
                            params.get(name)
                        ));
                    }
                }
            }
            None => problems.push(format!(
                "matchit: {} {} matched nothing, expected {want}",
                req.method, req.path
            )),
        }
    }
    problems
}

#[inline(never)]
fn measure_gatewayc(corpus: Corpus, requests: &[Request], iterations: u32) {
    match corpus {
        Corpus::Github => {
            for _ in 0..iterations {
                for req in requests {
                    let _ = black_box(corpora::github_router::route(
                        black_box(&req.method),
                        black_box(req.path.as_str()),
                    ));
                }
            }
        }
        Corpus::Stripe => {
            for _ in 0..iterations {
                for req in requests {
                    let _ = black_box(corpora::stripe_router::route(
                        black_box(&req.method),
                        black_box(req.path.as_str()),
                    ));
                }
            }
        }
    }
}

#[inline(never)]
fn measure_matchit(router: &matchit::Router<Entry>, requests: &[Request], iterations: u32) {
    for _ in 0..iterations {
        for req in requests {
            let _ = black_box(matchit_lookup(
                router,
                black_box(&req.method),
                black_box(req.path.as_str()),
            ));
        }
    }
}

#[inline(never)]
fn measure_baseline(requests: &[Request], iterations: u32) {
    for _ in 0..iterations {
        for req in requests {
            black_box(&req.method);
            black_box(req.path.as_str());
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: router-bench <github|stripe> <gatewayc|matchit|baseline|check|list> [iterations]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = match args.first().map(String::as_str) {
        Some("github") => Corpus::Github,
        Some("stripe") => Corpus::Stripe,
        _ => return usage(),
    };
    let Some(router) = args.get(1).map(String::as_str) else {
        return usage();
    };
    if !matches!(
        router,
        "gatewayc" | "matchit" | "baseline" | "check" | "list"
    ) {
        return usage();
    }
    let iterations = match args.get(2).map(|s| s.parse::<u32>()) {
        None => DEFAULT_ITERATIONS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };

    let setup = setup(corpus);
    let problems = check(corpus, &setup);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("MISMATCH {p}");
        }
        eprintln!("{} mismatches; nothing measured", problems.len());
        return ExitCode::FAILURE;
    }
    if router == "check" {
        for (template, error) in &setup.refused {
            println!("refused by matchit: {template}: {error}");
        }
    }
    if router == "list" {
        for req in &setup.requests {
            println!("{} {} {}", req.method, req.path, corpus.ops()[req.op].id);
        }
    }

    match router {
        "gatewayc" => measure_gatewayc(corpus, &setup.requests, iterations),
        "matchit" => measure_matchit(&setup.router, &setup.requests, iterations),
        "baseline" => measure_baseline(&setup.requests, iterations),
        _ => {}
    }

    // One machine-readable line for run.py.
    println!(
        "corpus={} router={router} operations={} paths={} refused_templates={} refused_operations={} iterations={iterations}",
        args[0],
        corpus.ops().len(),
        setup.requests.len(),
        setup.refused.len(),
        setup.refused_ops,
    );
    ExitCode::SUCCESS
}
