//! `gatewayc check --format sarif`: the diagnostics as a SARIF 2.1.0 log, the format code
//! scanning services and editors read (GitHub code scanning, the VS Code SARIF viewer).
//!
//! One run, whose tool is gatewayc; one rule per code that occurs, described by its line in
//! docs/diagnostics.md; one result per diagnostic, at the file, line and column the
//! human output shows, with its related locations. A file under the current directory is
//! named by a relative URI against `%SRCROOT%` (the current directory), so that a service
//! that checked the repository out elsewhere still finds it; any other file by an absolute
//! `file:` URI. Columns count Unicode code points, as the human output does, and the run
//! says so (`columnKind`).

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, Location, Severity};
use crate::spec::source::{Pos, Sources};

/// The schema of SARIF 2.1.0 (OASIS Standard, with errata 01).
pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The base URI id relative artifact locations are resolved against: the directory
/// `gatewayc` ran in.
pub const SRCROOT: &str = "%SRCROOT%";

/// The reference of every diagnostic code, whose table rows describe the rules.
const CODES: &str = include_str!("../../docs/diagnostics.md");

/// The log for `diagnostics`. `base` is the directory relative paths are shown against
/// (the current directory); `properties` goes into the run's property bag (what the
/// gateway needs, when the check passed).
pub fn render(
    diagnostics: &Diagnostics,
    sources: &Sources,
    base: &Path,
    properties: Option<Value>,
) -> String {
    let descriptions = descriptions();
    let codes: BTreeMap<&str, Severity> = diagnostics
        .items()
        .iter()
        .map(|d| (d.code, d.severity))
        .collect();
    let index: BTreeMap<&str, usize> = codes.keys().enumerate().map(|(i, c)| (*c, i)).collect();
    let rules = codes
        .iter()
        .map(|(code, severity)| Rule {
            id: code,
            short_description: descriptions.get(code).map(|text| Text {
                text: (*text).to_owned(),
            }),
            default_configuration: Configuration {
                level: level(*severity),
            },
        })
        .collect();
    let results = diagnostics
        .items()
        .iter()
        .map(|d| result(d, index.get(d.code).copied().unwrap_or(0), sources))
        .collect();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "gatewayc",
                    version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            original_uri_base_ids: directory_uri(base).map(|uri| {
                BTreeMap::from([(
                    SRCROOT,
                    ArtifactLocation {
                        uri,
                        uri_base_id: None,
                    },
                )])
            }),
            column_kind: "unicodeCodePoints",
            results,
            properties,
        }],
    };
    serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_owned())
}

/// Each code's meaning, from the tables of docs/diagnostics.md (`| E0303 | meaning |`).
fn descriptions() -> BTreeMap<&'static str, &'static str> {
    CODES
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
            let code = cells.next()?;
            let meaning = cells.next()?;
            let is_code = code.len() == 5
                && code.starts_with(['E', 'W'])
                && code[1..].bytes().all(|b| b.is_ascii_digit());
            (is_code && !meaning.is_empty()).then_some((code, meaning))
        })
        .collect()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn result<'a>(d: &'a Diagnostic, rule_index: usize, sources: &'a Sources) -> SarifResult<'a> {
    let text = match &d.hint {
        Some(hint) => format!("{}\nhelp: {hint}", d.message),
        None => d.message.clone(),
    };
    SarifResult {
        rule_id: d.code,
        rule_index,
        level: level(d.severity),
        message: Text { text },
        locations: d
            .location
            .iter()
            .map(|l| location(l, None, None, sources))
            .collect(),
        related_locations: d
            .related
            .iter()
            .enumerate()
            .map(|(i, (l, note))| location(l, Some(i + 1), Some(note), sources))
            .collect(),
    }
}

fn location<'a>(
    l: &'a Location,
    id: Option<usize>,
    note: Option<&str>,
    sources: &'a Sources,
) -> SarifLocation<'a> {
    let (uri, uri_base_id) = artifact_uri(sources.display(l.file));
    SarifLocation {
        id,
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation { uri, uri_base_id },
            region: sources.locate(l).map(|pos| region(sources, l.file, pos)),
        },
        logical_locations: if l.pointer.is_empty() {
            Vec::new()
        } else {
            vec![LogicalLocation {
                fully_qualified_name: &l.pointer,
            }]
        },
        message: note.map(|n| Text { text: n.to_owned() }),
    }
}

/// The region `pos` covers: where it starts, and where the text it covers ends (the
/// column after its last character, as SARIF counts), which may be on a later line.
fn region(sources: &Sources, file: usize, pos: Pos) -> Region {
    let (end_line, end_column) = if file < sources.len() {
        end_of(&sources.file(file).text, pos)
    } else {
        (pos.line, pos.col + pos.len)
    };
    Region {
        start_line: pos.line.max(1),
        start_column: pos.col.max(1),
        end_line,
        end_column,
    }
}

/// The line and column just after the `pos.len` characters that start at `pos`, newlines
/// counted as one character; the end of the text when it is shorter.
fn end_of(text: &str, pos: Pos) -> (usize, usize) {
    let mut line = pos.line.max(1);
    let mut col = pos.col.max(1);
    let mut left = pos.len;
    let mut lines = text.split('\n').skip(line - 1).peekable();
    while let Some(current) = lines.next() {
        let width = current
            .strip_suffix('\r')
            .unwrap_or(current)
            .chars()
            .count();
        // Characters from `col` to the end of the line.
        let here = (width + 1).saturating_sub(col);
        if left <= here || lines.peek().is_none() {
            return (line, col + left.min(here));
        }
        // The rest of the line and its newline.
        left -= here + 1;
        line += 1;
        col = 1;
    }
    (line, col)
}

/// A displayed path as an artifact URI: relative against `%SRCROOT%` when it is relative,
/// an absolute `file:` URI otherwise. Every byte but unreserved characters and `/` is
/// percent-encoded, so that no segment can read as a scheme, query or fragment.
fn artifact_uri(display: &str) -> (String, Option<&'static str>) {
    let path = Path::new(display);
    if path.is_absolute() {
        (file_uri(path), None)
    } else {
        let segments: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(encode(&s.to_string_lossy())),
                Component::ParentDir => Some("..".to_owned()),
                _ => None,
            })
            .collect();
        (segments.join("/"), Some(SRCROOT))
    }
}

/// `dir` as a `file:` URI ending in `/`, when it is absolute.
fn directory_uri(dir: &Path) -> Option<String> {
    if !dir.is_absolute() {
        return None;
    }
    let mut uri = file_uri(dir);
    if !uri.ends_with('/') {
        uri.push('/');
    }
    Some(uri)
}

fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for c in path.components() {
        match c {
            Component::Prefix(p) => {
                // A Windows drive (`C:`): `file:///C:/...`.
                uri.push('/');
                uri.push_str(&p.as_os_str().to_string_lossy());
            }
            Component::RootDir => {}
            Component::CurDir => continue,
            Component::ParentDir => {
                uri.push_str("/..");
                continue;
            }
            Component::Normal(s) => {
                uri.push('/');
                uri.push_str(&encode(&s.to_string_lossy()));
                continue;
            }
        }
    }
    if uri == "file://" {
        uri.push('/');
    }
    uri
}

fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_uri_base_ids: Option<BTreeMap<&'static str, ArtifactLocation>>,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<Value>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
struct Driver<'a> {
    name: &'static str,
    version: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    short_description: Option<Text>,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<SarifLocation<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_locations: Vec<SarifLocation<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<usize>,
    physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logical_locations: Vec<LogicalLocation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Text>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation<'a> {
    fully_qualified_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Input, Output, compile};
    use serde_json::Value;
    use std::path::PathBuf;

    /// Checks what SARIF 2.1.0 requires of a log, as far as gatewayc writes it: the
    /// version and schema, one run whose driver has a name, rules with ids, and results
    /// whose `ruleIndex` names the rule of their `ruleId`, with a level, a message text,
    /// and locations with 1-based regions that end after they start, in files named by
    /// relative URIs against `%SRCROOT%` (no leading `/`, nothing that reads as a scheme)
    /// or by absolute `file:` URIs.
    fn assert_sarif_2_1_0(log: &Value) {
        assert_eq!(log["version"], "2.1.0", "{log:#}");
        assert_eq!(log["$schema"], SCHEMA);
        let runs = log["runs"].as_array().unwrap_or_else(|| panic!("no runs"));
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "gatewayc");
        assert!(driver["version"].as_str().is_some_and(|v| !v.is_empty()));
        assert_eq!(run["columnKind"], "unicodeCodePoints");
        let rules = driver["rules"].as_array().cloned().unwrap_or_default();
        for rule in &rules {
            let id = rule["id"].as_str().unwrap_or_default();
            assert!(id.len() == 5 && id.starts_with(['E', 'W']), "{rule}");
            assert!(
                rule["shortDescription"]["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty()),
                "{rule}"
            );
        }
        if let Some(base) = run.get("originalUriBaseIds") {
            let uri = base[SRCROOT]["uri"].as_str().unwrap_or_default();
            assert!(uri.starts_with("file:///") && uri.ends_with('/'), "{uri}");
        }
        let results = run["results"]
            .as_array()
            .unwrap_or_else(|| panic!("no results array"));
        for r in results {
            let index = r["ruleIndex"].as_u64().unwrap_or(u64::MAX) as usize;
            assert_eq!(
                rules.get(index).map(|rule| &rule["id"]),
                Some(&r["ruleId"]),
                "{r}"
            );
            assert!(
                ["error", "warning", "note"].contains(&r["level"].as_str().unwrap_or_default()),
                "{r}"
            );
            assert!(
                r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{r}"
            );
            let locations = r["locations"].as_array().into_iter().flatten();
            let related = r["relatedLocations"].as_array().into_iter().flatten();
            for l in locations.chain(related) {
                let artifact = &l["physicalLocation"]["artifactLocation"];
                let uri = artifact["uri"].as_str().unwrap_or_default();
                match artifact.get("uriBaseId") {
                    Some(base) => {
                        assert_eq!(base, SRCROOT);
                        assert!(!uri.is_empty() && !uri.starts_with('/'), "{uri}");
                        assert!(!uri.contains(':') && !uri.contains('\\'), "{uri}");
                    }
                    None => assert!(uri.starts_with("file:///"), "{uri}"),
                }
                let region = &l["physicalLocation"]["region"];
                if region.is_null() {
                    continue;
                }
                let n = |k: &str| region[k].as_u64().unwrap_or(0);
                assert!(n("startLine") >= 1 && n("startColumn") >= 1, "{region}");
                assert!(n("endLine") >= n("startLine"), "{region}");
                if n("endLine") == n("startLine") {
                    assert!(n("endColumn") >= n("startColumn"), "{region}");
                }
            }
        }
    }

    /// Compiles `files` (relative path → text) written under a temporary directory, which
    /// is also the base, as `gatewayc check` run there would; the first file is the spec.
    fn check(files: &[(&str, &str)]) -> (tempfile::TempDir, Output) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (path, text) in files {
            let path = dir.path().join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        }
        let out = compile(&Input {
            specs: vec![dir.path().join(files[0].0)],
            base: dir.path().to_path_buf(),
            options: crate::lower::Options::default(),
            emit: None,
        });
        (dir, out)
    }

    fn log(dir: &Path, out: &Output, properties: Option<Value>) -> Value {
        let text = render(&out.diagnostics, &out.sources, dir, properties);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// A wrong upstream (E0303, with a hint) and an operationId used twice (W0301, with
    /// the first use as a related location), in a file whose path needs encoding.
    const BROKEN: &str = r#"openapi: 3.0.3
info: { title: Pets, version: "1" }
security: []
x-gateway:
  upstreams:
    pets: { url: "http://127.0.0.1:9" }
  defaults: { upstream: petz }
paths:
  /a:
    get: { operationId: same, responses: { "200": { description: ok } } }
  /b:
    get: { operationId: same, responses: { "200": { description: ok } } }
"#;

    #[test]
    fn check_results_are_sarif_at_the_places_the_human_output_shows() {
        let (dir, out) = check(&[("my specs/api v1.yaml", BROKEN)]);
        let log = log(dir.path(), &out, None);
        assert_sarif_2_1_0(&log);
        let run = &log["runs"][0];
        let rules: Vec<&str> = run["tool"]["driver"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(rules, ["E0303", "W0301"]);
        assert_eq!(
            run["tool"]["driver"]["rules"][0]["shortDescription"]["text"],
            "an operation names an upstream that is not defined"
        );
        assert_eq!(
            run["originalUriBaseIds"][SRCROOT]["uri"]
                .as_str()
                .map(|u| u.ends_with('/')),
            Some(true)
        );

        let results = run["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), 2, "{results:#?}");
        let upstream = &results[0];
        assert_eq!(upstream["ruleId"], "E0303");
        assert_eq!(upstream["level"], "error");
        assert_eq!(
            upstream["message"]["text"],
            "upstream `petz` is not defined in `x-gateway.upstreams`\nhelp: did you mean `pets`?"
        );
        let at = &upstream["locations"][0];
        assert_eq!(
            at["physicalLocation"]["artifactLocation"],
            serde_json::json!({ "uri": "my%20specs/api%20v1.yaml", "uriBaseId": "%SRCROOT%" })
        );
        // `petz` on line 7, columns 25 to 28: the region ends at column 29.
        assert_eq!(
            at["physicalLocation"]["region"],
            serde_json::json!({ "startLine": 7, "startColumn": 25, "endLine": 7, "endColumn": 29 })
        );
        assert_eq!(
            at["logicalLocations"][0]["fullyQualifiedName"],
            "/x-gateway/defaults/upstream"
        );

        let twice = &results[1];
        assert_eq!(twice["ruleId"], "W0301");
        assert_eq!(twice["ruleIndex"], 1);
        assert_eq!(twice["level"], "warning");
        assert_eq!(
            twice["locations"][0]["physicalLocation"]["region"]["startLine"],
            12
        );
        let related = &twice["relatedLocations"][0];
        assert_eq!(related["id"], 1);
        assert_eq!(related["message"]["text"], "first used here");
        assert_eq!(related["physicalLocation"]["region"]["startLine"], 10);

        // The URI, decoded and resolved against the base, is the file that was read.
        let uri = at["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_default();
        let path: PathBuf = dir.path().join(uri.replace("%20", " "));
        assert!(path.is_file(), "{}", path.display());
    }

    #[test]
    fn a_clean_check_is_an_empty_run_with_its_properties() {
        let (dir, out) = check(&[(
            "api.yaml",
            "openapi: 3.0.3\ninfo: { title: t, version: \"1\" }\nsecurity: []\nx-gateway:\n  upstreams: { api: \"${API_URL}\" }\n  defaults: { upstream: api }\npaths:\n  /a:\n    get: { operationId: a, responses: { \"200\": { description: ok } } }\n",
        )]);
        let log = log(
            dir.path(),
            &out,
            Some(serde_json::json!({ "operations": 1 })),
        );
        assert_sarif_2_1_0(&log);
        assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
        assert_eq!(
            log["runs"][0]["tool"]["driver"]["rules"],
            serde_json::json!([])
        );
        assert_eq!(log["runs"][0]["properties"]["operations"], 1);
    }

    #[test]
    fn files_outside_the_directory_get_absolute_file_uris() {
        assert_eq!(
            artifact_uri("specs/pets.yaml"),
            ("specs/pets.yaml".to_owned(), Some(SRCROOT))
        );
        assert_eq!(
            artifact_uri("a:b/ü #1.yaml"),
            ("a%3Ab/%C3%BC%20%231.yaml".to_owned(), Some(SRCROOT))
        );
        #[cfg(unix)]
        assert_eq!(
            artifact_uri("/srv/api specs/pets.yaml"),
            ("file:///srv/api%20specs/pets.yaml".to_owned(), None)
        );
        #[cfg(unix)]
        assert_eq!(
            directory_uri(Path::new("/work/repo")).as_deref(),
            Some("file:///work/repo/")
        );
    }

    #[test]
    fn a_region_ends_after_its_last_character_even_on_a_later_line() {
        let pos = |line, col, len| Pos { line, col, len };
        assert_eq!(end_of("ab\ncd\n", pos(1, 2, 1)), (1, 3));
        // `b`, the newline, `cd`.
        assert_eq!(end_of("ab\ncd\n", pos(1, 2, 4)), (2, 3));
        assert_eq!(end_of("ab\r\ncd", pos(1, 1, 2)), (1, 3));
        // Longer than the text: its end.
        assert_eq!(end_of("ab", pos(1, 1, 10)), (1, 3));
    }

    #[test]
    fn every_code_the_compiler_reports_has_a_rule_description() {
        let descriptions = descriptions();
        let mut missing = Vec::new();
        let mut seen = 0;
        let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // Every quoted code: `"E0303"`.
                for (i, _) in text.match_indices('"') {
                    let code = text.get(i + 1..i + 6).unwrap_or_default();
                    let closed = text.get(i + 6..i + 7) == Some("\"");
                    if closed
                        && code.starts_with(['E', 'W'])
                        && code[1..].bytes().all(|b| b.is_ascii_digit())
                    {
                        seen += 1;
                        if !descriptions.contains_key(code) {
                            missing.push(format!("{code} ({})", path.display()));
                        }
                    }
                }
            }
        }
        assert!(seen > 100, "only {seen} codes found");
        assert!(
            missing.is_empty(),
            "not in docs/diagnostics.md: {missing:?}"
        );
    }
}
