//! Corpus tier: the real API descriptions of the corpus (`../shared/corpus` beside the
//! repository, or `$GATEWAYC_CORPUS`; used as they are) check clean, compile into routers
//! (see `build.rs`), and every documented operation is routed right. Without the corpus
//! these tests say so and pass (`gatewayc_tests::material`). The expected operation comes from an oracle written straight from
//! docs/routing.md, independent of the generated code: all templates that match the path,
//! the most specific one position by position (a literal beats a segment with literal text,
//! which beats a bare parameter), then the method.

use gatewayc_runtime::RouteError;
use gatewayc_runtime::http::Method;
use gatewayc_tests::corpus::CORPUS;
use gatewayc_tests::material::corpus;

/// How specific a template segment is, for precedence: literal > mixed (more literal text
/// first) > bare parameter.
fn rank(segment: &str) -> (u8, usize) {
    if segment.starts_with("{**") {
        return (0, 0);
    }
    if !segment.contains('{') {
        return (3, segment.len());
    }
    let literal: usize = segment.split(['{', '}']).step_by(2).map(str::len).sum();
    (if literal > 0 { 2 } else { 1 }, literal)
}

/// Whether one template segment matches one path segment.
fn segment_matches(template: &str, value: &str) -> bool {
    if !template.contains('{') {
        return template == value;
    }
    // Literal pieces in order, each parameter non-empty; the first occurrence of the literal
    // after a parameter ends it.
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        pieces.push(Some(&rest[..open]));
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        pieces.push(None);
        rest = &rest[(close + 1).min(rest.len())..];
    }
    pieces.push(Some(rest));
    let mut v = value;
    let mut i = 0;
    while i < pieces.len() {
        match pieces[i] {
            Some(lit) => match v.strip_prefix(lit) {
                Some(after) => v = after,
                None => return false,
            },
            None => {
                let next = pieces.get(i + 1).copied().flatten().unwrap_or("");
                let last = i + 2 >= pieces.len();
                let end = if next.is_empty() {
                    v.len()
                } else if last {
                    match v.strip_suffix(next) {
                        Some(head) => head.len(),
                        None => return false,
                    }
                } else {
                    match v.find(next) {
                        Some(e) => e,
                        None => return false,
                    }
                };
                if end == 0 {
                    return false;
                }
                v = &v[end..];
            }
        }
        i += 1;
    }
    v.is_empty()
}

fn method_of(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}

fn oracle(
    cases: &[(&str, &str, &str, &str)],
    method: &str,
    path: &str,
) -> Result<String, &'static str> {
    let segs: Vec<&str> = path[1..].split('/').collect();
    let mut best: Option<Vec<(u8, usize)>> = None;
    let mut at_best: Vec<&(&str, &str, &str, &str)> = Vec::new();
    for case in cases {
        let tsegs: Vec<&str> = case.3[1..].split('/').collect();
        // A trailing `{**name}` takes one or more whole segments.
        let rest = tsegs.last().is_some_and(|t| t.starts_with("{**"));
        let fits = if rest {
            segs.len() >= tsegs.len()
                && !segs[tsegs.len() - 1..].join("/").is_empty()
                && tsegs[..tsegs.len() - 1]
                    .iter()
                    .zip(&segs)
                    .all(|(t, s)| segment_matches(t, s))
        } else {
            tsegs.len() == segs.len() && tsegs.iter().zip(&segs).all(|(t, s)| segment_matches(t, s))
        };
        if !fits {
            continue;
        }
        let r: Vec<(u8, usize)> = tsegs.iter().map(|t| rank(t)).collect();
        match &best {
            Some(b) if r < *b => {}
            Some(b) if r == *b => at_best.push(case),
            _ => {
                best = Some(r);
                at_best = vec![case];
            }
        }
    }
    if at_best.is_empty() {
        return Err("not found");
    }
    let by = |m: &str| at_best.iter().find(|c| c.0 == m).map(|c| c.2.to_owned());
    by(method)
        .or_else(|| if method == "HEAD" { by("GET") } else { None })
        .ok_or("method not allowed")
}

#[test]
fn every_corpus_document_routes_every_operation_right() {
    let Some(dir) = corpus() else {
        return;
    };
    assert!(
        CORPUS.len() >= 12,
        "expected the 12 documents of {} compiled by build.rs, found {}; do they check clean? (build.rs reads the corpus when the tests are built: after adding or moving it, `touch tests/build.rs`)",
        dir.display(),
        CORPUS.len()
    );
    let mut total = 0;
    let mut own = 0;
    let mut report = String::new();
    for (doc, route, cases) in CORPUS {
        for (method, path, id, template) in cases.iter() {
            total += 1;
            let got = route(&method_of(method), path);
            // The operation's own request, then the same path with another method, then
            // one segment more: the router and the oracle must agree on each.
            let extra = format!("{path}/zz-extra");
            for (m, p) in [
                (*method, *path),
                ("PATCH", path),
                ("OPTIONS", path),
                (*method, extra.as_str()),
            ] {
                let got = route(&method_of(m), p);
                let want = oracle(cases, m, p);
                let agree = match (&got, &want) {
                    (Ok(g), Ok(w)) => g == w,
                    // The template matched but a typed parameter did not parse: a 400 for the
                    // operation the oracle chose.
                    (Err(RouteError::BadParam { name, .. }), Ok(w)) => cases
                        .iter()
                        .any(|c| c.2 == w && c.3.contains(&format!("{{{name}}}"))),
                    (Err(RouteError::NotFound), Err("not found")) => true,
                    (Err(RouteError::MethodNotAllowed(_)), Err("method not allowed")) => true,
                    _ => false,
                };
                assert!(
                    agree,
                    "{doc}: {m} {p} (template {template}): router {got:?}, oracle {want:?}"
                );
            }
            if got.as_ref().is_ok_and(|g| g == id) {
                own += 1;
            } else {
                report.push_str(&format!(
                    "  {doc}: {method} {path} -> {got:?}, not {id} (a value equal to a literal)\n"
                ));
            }
        }
    }
    eprintln!("{own} of {total} operations reached by their own sample path");
    if !report.is_empty() {
        eprintln!("{report}");
    }
    assert_eq!(
        total,
        manifest_operations(&dir),
        "operations compiled vs MANIFEST.tsv"
    );
    // A sample value can only be shadowed by a literal sibling equal to it; that must be rare.
    assert!(
        own * 1000 >= total * 995,
        "{own} of {total} reached their own operation:\n{report}"
    );
}

/// The operation count the corpus's own MANIFEST.tsv gives, summed over its documents.
fn manifest_operations(dir: &std::path::Path) -> usize {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("cannot read the corpus manifest: {e}"));
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = header
        .iter()
        .position(|h| *h == "operations")
        .unwrap_or_else(|| panic!("no operations column"));
    lines
        .filter_map(|l| l.split('\t').nth(col)?.parse::<usize>().ok())
        .sum()
}

#[test]
fn literal_and_parameter_at_the_same_position() {
    if corpus().is_none() {
        return;
    }
    let (_, route, _) = CORPUS
        .iter()
        .find(|(doc, ..)| *doc == "discord")
        .unwrap_or_else(|| panic!("discord is not compiled"));
    let me = route(&Method::GET, "/users/@me").unwrap_or_else(|e| panic!("{e:?}"));
    let other = route(&Method::GET, "/users/80351110224678912").unwrap_or_else(|e| panic!("{e:?}"));
    assert_ne!(
        me, other,
        "`/users/@me` must not be routed as `/users/{{user_id}}`"
    );
}
