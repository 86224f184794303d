//! Runs every case of the JSON Schema Test Suite through the validators `build.rs`
//! generated, and prints how many passed per file.
//!
//! A case passes when the validator's verdict is the suite's `valid`, both collecting
//! violations and probing. It fails the run when it does not pass and `SKIPPED.md` does not
//! list it; a group whose schema has keywords the generator reports as not enforced
//! (`Reason::weakens`) must be listed too. An entry of `SKIPPED.md` that covers nothing, or
//! only cases that pass in groups that enforce everything, is stale and fails the run as
//! well, so the list stays exactly what is left out.
//!
//! Beside the suite's verdicts, `violations.json` (in this directory) pins what a client is
//! told: for a few values, the exact list of violations (pointer, detail, order) and the
//! bound on their number.
//!
//! `cargo test -p gatewayc-schema-suite -- WORD` runs only the files whose path contains
//! WORD.
//!
//! The suite is not in this repository (`src/lib.rs` says where it is read from). Without
//! it, only `violations.json` is checked, after a notice on stderr; under `CI=true` its
//! absence fails the run.

use std::collections::BTreeMap;
use std::process::ExitCode;

use gatewayc_runtime::validate::{Path, Value, Violations};

/// A generated root validator.
type Validate = fn(&Value, &Path<'_>, &mut Violations);

/// One group of a suite file, compiled.
struct Group {
    /// The file, relative to the suite's `tests/`.
    file: &'static str,
    /// The group's index in the file.
    index: usize,
    /// The generated root function.
    validate: Validate,
    /// What the generator did not enforce: (reason, whether it weakens, where and why).
    unsupported: &'static [(&'static str, bool, &'static str)],
}

mod generated {
    use super::{Group, Validate};
    include!(concat!(env!("OUT_DIR"), "/suite.rs"));
}

/// An entry of `SKIPPED.md`: file, group and case descriptions (`*` for any), and why.
struct Skip {
    file: String,
    group: String,
    case: String,
    reason: String,
    /// Cases it covers.
    covered: usize,
    /// Of those, cases that need it (they fail, or their group is not fully enforced).
    needed: usize,
}

impl Skip {
    fn covers(&self, file: &str, group: &str, case: &str) -> bool {
        let m = |pat: &str, s: &str| pat == "*" || pat == s.trim();
        m(&self.file, file) && m(&self.group, group) && m(&self.case, case)
    }
}

/// The table rows of SKIPPED.md: `| file | group | case | reason |`, `\|` for a literal bar.
fn skips() -> Vec<Skip> {
    let text = include_str!("SKIPPED.md");
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut chars = row.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    cell.push('|');
                    chars.next();
                }
                '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
                c => cell.push(c),
            }
        }
        if cells.len() != 4 || cells[0] == "file" || cells[0].starts_with("---") {
            continue;
        }
        let unquote = |s: &str| s.trim_matches('`').to_owned();
        out.push(Skip {
            file: unquote(&cells[0]),
            group: unquote(&cells[1]),
            case: unquote(&cells[2]),
            reason: cells[3].clone(),
            covered: 0,
            needed: 0,
        });
    }
    out
}

/// Checks the exact violations of each case of `violations.json`: pointers, details,
/// order, the bound. Returns how many cases passed, and what differs.
fn violations() -> (usize, Vec<String>) {
    let cases: Value = serde_json::from_str(include_str!("violations.json")).unwrap_or(Value::Null);
    let cases = cases.as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    if cases.len() != generated::VIOLATIONS.len() {
        problems.push("violations.json: not every case was compiled".to_owned());
        return (0, problems);
    }
    for (case, validate) in cases.iter().zip(generated::VIOLATIONS) {
        let description = case["description"].as_str().unwrap_or_default();
        let mut out = Violations::new();
        validate(&case["data"], &Path::ROOT, &mut out);
        let got: Vec<(String, String)> = out
            .as_slice()
            .iter()
            .map(|v| (v.pointer.clone(), v.detail.to_string()))
            .collect();
        let count_ok = case["count"].as_u64().is_none_or(|c| c == got.len() as u64);
        let truncated_ok = case["truncated"].as_bool().unwrap_or(false) == out.truncated();
        let expected: Option<Vec<(String, String)>> = case["violations"].as_array().map(|list| {
            list.iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap_or_default().to_owned(),
                        pair[1].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        });
        let list_ok = expected.as_ref().is_none_or(|e| *e == got);
        if !(count_ok && truncated_ok && list_ok) {
            problems.push(format!(
                "violations.json: {description}: got {got:?} (truncated: {})",
                out.truncated()
            ));
        }
    }
    (cases.len() - problems.len(), problems)
}

#[derive(Default)]
struct Count {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let groups = generated::GROUPS;
    // A clone of the repository alone has no suite: then only `violations.json` is checked,
    // after a notice. CI always has it, and fails without it.
    let found = !groups.is_empty();
    if !found {
        let message = format!(
            "the JSON Schema Test Suite not found (no tests/draft2020-12 or tests/draft4 in {}); it is read from ../shared/fixtures/json-schema-test-suite beside the repository, or from the directory $GATEWAYC_JSON_SCHEMA_SUITE names (when the tests are built: after adding it, `touch tests/schema-suite/build.rs`)",
            generated::SUITE
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            println!("{message} (CI=true: nothing may be skipped)");
            println!("schema suite: 0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
        eprintln!("note: skipped the JSON Schema Test Suite's cases: {message}");
    }
    let mut skips = skips();
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, Count> = BTreeMap::new();
    let mut files: BTreeMap<&str, Value> = BTreeMap::new();
    for g in groups {
        if !filter.is_empty() && !filter.iter().any(|f| g.file.contains(f.as_str())) {
            continue;
        }
        let doc = files.entry(g.file).or_insert_with(|| {
            let path = std::path::Path::new(generated::SUITE)
                .join("tests")
                .join(g.file);
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null)
        });
        let Some(group) = doc.get(g.index) else {
            problems.push(format!("{} group {}: cannot be read", g.file, g.index));
            continue;
        };
        let description = group["description"].as_str().unwrap_or_default();
        let weakened: Vec<&str> = g.unsupported.iter().filter(|u| u.1).map(|u| u.2).collect();
        let count = counts.entry(g.file).or_default();
        for case in group["tests"].as_array().into_iter().flatten() {
            let case_description = case["description"].as_str().unwrap_or_default();
            let expected = case["valid"].as_bool().unwrap_or(false);
            let data = &case["data"];
            let mut out = Violations::new();
            (g.validate)(data, &Path::ROOT, &mut out);
            let mut probe = Violations::probe();
            (g.validate)(data, &Path::ROOT, &mut probe);
            let consistent =
                out.is_empty() == probe.is_empty() && out.is_empty() == out.as_slice().is_empty();
            let ok = consistent && out.is_empty() == expected;
            let needs_skip = !ok || !weakened.is_empty();
            let skip = skips
                .iter_mut()
                .find(|s| s.covers(g.file, description, case_description));
            match skip {
                Some(s) => {
                    s.covered += 1;
                    if needs_skip {
                        s.needed += 1;
                    }
                    count.skipped += 1;
                }
                None if ok && weakened.is_empty() => count.passed += 1,
                None => {
                    count.failed += 1;
                    let why = if !weakened.is_empty() {
                        format!("not enforced: {}", weakened.join("; "))
                    } else if !consistent {
                        "collecting and probing disagree".to_owned()
                    } else {
                        let found: Vec<String> = out
                            .as_slice()
                            .iter()
                            .map(|v| format!("{} {}", v.pointer, v.detail))
                            .collect();
                        format!(
                            "expected {}, got {} {found:?}",
                            if expected { "valid" } else { "invalid" },
                            if out.is_empty() { "valid" } else { "invalid" },
                        )
                    };
                    problems.push(format!(
                        "| {} | {} | {} | {why} |",
                        g.file,
                        description.replace('|', "\\|"),
                        case_description.replace('|', "\\|")
                    ));
                }
            }
        }
    }
    let mut total = Count::default();
    if filter.is_empty() {
        let (passed, differ) = violations();
        println!("violations.json: {passed} passed, {} failed", differ.len());
        total.passed += passed;
        problems.extend(differ);
    }
    if filter.is_empty() && found {
        for s in &skips {
            if s.needed == 0 {
                problems.push(format!(
                    "stale SKIPPED.md entry (covers {} cases, all pass and are enforced): | {} | {} | {} | {} |",
                    s.covered, s.file, s.group, s.case, s.reason
                ));
            }
        }
    }
    for (file, c) in &counts {
        println!(
            "{file}: {} passed, {} failed, {} skipped",
            c.passed, c.failed, c.skipped
        );
        total.passed += c.passed;
        total.failed += c.failed;
        total.skipped += c.skipped;
    }
    for p in &problems {
        println!("{p}");
    }
    println!(
        "schema suite: {} passed, {} failed, {} skipped",
        total.passed,
        problems.len(),
        total.skipped
    );
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
