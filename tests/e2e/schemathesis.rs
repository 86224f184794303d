//! An outside fuzzer against the example gateway: PyPI's `schemathesis` generates valid and
//! invalid requests from `specs/petstore.yaml` and sends them to the example gateway
//! (`generated-example/`, served as `petstore`), which forwards to a mock upstream of this
//! test. The gateway must never answer 5xx, and whatever reaches the upstream must match the
//! spec: every body the upstream received is checked against its operation's request
//! schema (and its path and query parameters against theirs) by `jsonschema`, another
//! independent implementation (`tests/tools/check_upstream_requests.py`).
//!
//! Without python3, schemathesis or jsonschema the test says so and passes, except under
//! `CI=true`, where `.ci/run` installs them and their absence fails it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::support::{Gateway, TempDir, loopback, root};
use gatewayc_tests::material::{jwt_fixtures, missing};

/// The schemathesis release `.ci/run` installs; the arguments below are its CLI's.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// What the upstream received of one request.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    content_type: String,
    body: Bytes,
}

/// A mock upstream that records every request, body included, and answers each of the
/// example's operations with a status and body its responses declare (after the gateway's
/// rewrite of `getPet` to `/internal/pets/{petId}`).
async fn recording_upstream() -> (String, Arc<Mutex<Vec<Received>>>) {
    let (listener, addr) = loopback().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(req, log.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

async fn answer(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Ok(mut l) = log.lock() {
        l.push(Received {
            method: method.clone(),
            path: path.clone(),
            content_type,
            body,
        });
    }
    let bare = path.split('?').next().unwrap_or_default();
    let pet = json!({"id": 1, "name": "Rex", "tag": "dog"});
    let (status, body) = match (method.as_str(), bare) {
        ("POST", "/pets") => (StatusCode::CREATED, Some(pet)),
        ("GET", "/pets" | "/pets/mine") => (StatusCode::OK, Some(json!([pet]))),
        ("DELETE", _) => (StatusCode::NO_CONTENT, None),
        ("GET", p) if p.starts_with("/internal/pets/") => (StatusCode::OK, Some(pet)),
        ("GET", p) if p.starts_with("/owners/") => (
            StatusCode::OK,
            Some(json!({"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "name": "Ada"})),
        ),
        ("POST", p) if p.ends_with(":adopt") => (StatusCode::OK, Some(json!({"adopted": true}))),
        _ => (StatusCode::OK, Some(json!({"available": 1}))),
    };
    let mut resp = Response::new(Full::new(
        body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    ));
    *resp.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        resp.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
    }
    Ok(resp)
}

/// A JWKS endpoint serving `body`.
async fn jwks(body: String) -> String {
    let (listener, addr) = loopback().await;
    let body = Bytes::from(body);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let mut resp = Response::new(Full::new(body.clone()));
                    resp.headers_mut().insert(
                        "content-type",
                        http::HeaderValue::from_static("application/json"),
                    );
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

/// The fixtures' RS256 token with both of the example's scopes (`pets:read pets:write`).
fn token(fixtures: &Path) -> String {
    let path = fixtures.join("tokens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tokens: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tokens["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["name"] == "rs256-valid"))
        .and_then(|c| c["token"].as_str())
        .unwrap_or_else(|| panic!("no rs256-valid case in {}", path.display()))
        .to_owned()
}

/// Whether python3 can import `module`; `missing` (skip, or fail under CI) otherwise.
fn python_has(module: &str, install: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    match probe {
        Ok(out) if out.status.success() => true,
        Ok(_) => {
            missing(&format!(
                "the Python module `{module}` is not installed; install it: python3 -m pip install {install}"
            ));
            false
        }
        Err(e) => {
            missing(&format!(
                "python3 cannot be run ({e}); install it: apt-get install python3"
            ));
            false
        }
    }
}

/// What schemathesis's NDJSON event log says of a run: its scenarios (a batch of test
/// cases of one operation in one phase), by status; the test cases by generation mode
/// (`positive`, or `negative`: made to break the schemas); the requests sent; every check
/// run, by name and status; and each failed check or scenario that was not a success or a
/// skip.
#[derive(Debug, Default)]
struct Report {
    scenarios: BTreeMap<String, usize>,
    modes: BTreeMap<String, usize>,
    requests: usize,
    checks: BTreeMap<(String, String), usize>,
    problems: Vec<String>,
}

impl Report {
    fn read(path: &Path) -> Report {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut report = Report::default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(scenario) = event.get("ScenarioFinished") else {
                continue;
            };
            let status = scenario["status"].as_str().unwrap_or("?").to_owned();
            let recorder = &scenario["recorder"];
            let label = recorder["label"].as_str().unwrap_or("?");
            if !["success", "skip"].contains(&status.as_str()) {
                report
                    .problems
                    .push(format!("{label} ({}): {status}", scenario["phase"]));
            }
            *report.scenarios.entry(status).or_default() += 1;
            if let Some(interactions) = recorder["interactions"].as_object() {
                report.requests += interactions.len();
            }
            for case in recorder["cases"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|c| c.1)
            {
                let mode = case["value"]["meta"]["generation"]["mode"].as_str();
                *report
                    .modes
                    .entry(mode.unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
            for (case, checks) in recorder["checks"].as_object().into_iter().flatten() {
                for check in checks.as_array().into_iter().flatten() {
                    let name = check["name"].as_str().unwrap_or("?").to_owned();
                    let status = check["status"].as_str().unwrap_or("?").to_owned();
                    if status != "success" {
                        let request = &recorder["interactions"][case]["request"];
                        report.problems.push(format!(
                            "{label}: {name} {status}: {} {} {check}",
                            request["method"], request["uri"]
                        ));
                    }
                    *report.checks.entry((name, status)).or_default() += 1;
                }
            }
        }
        report
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_nothing_invalid_reaches_the_upstream() {
    if !python_has("schemathesis", SCHEMATHESIS)
        || !python_has("jsonschema", "jsonschema")
        || !python_has("yaml", "pyyaml")
    {
        return;
    }
    let Some(fixtures) = jwt_fixtures() else {
        return;
    };
    let jwks_body = std::fs::read_to_string(fixtures.join("jwks.json"))
        .unwrap_or_else(|e| panic!("jwks.json: {e}"));
    let jwks_url = jwks(jwks_body).await;
    let (upstream, seen) = recording_upstream().await;
    // The example has no plans, quotas or rate limits, so nothing limits the run's rate.
    let gw = Gateway::start(
        "petstore",
        &[("PETS_URL", upstream), ("JWKS_URL", jwks_url)],
    );

    let dir = TempDir::new("schemathesis");
    let report = dir.0.join("events.ndjson");
    let spec = root().join("specs/petstore.yaml");
    let authorization = format!("Authorization: Bearer {}", token(&fixtures));
    let run = {
        let (report, spec, url) = (report.clone(), spec.clone(), gw.url(""));
        tokio::task::spawn_blocking(move || schemathesis(&spec, &url, &authorization, &report))
            .await
            .unwrap_or_else(|e| panic!("schemathesis: {e}"))
    };
    let out =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);

    let report = Report::read(&report);
    let _ = writeln_stderr(&format!(
        "schemathesis: {} requests, test cases {:?}, in scenarios {:?}; checks {:?}; the upstream received {}",
        report.requests,
        report.modes,
        report.scenarios,
        report.checks,
        seen.lock().map(|s| s.len()).unwrap_or(0)
    ));
    assert!(
        run.status.success() && report.problems.is_empty(),
        "schemathesis found problems (exit {:?}):\n{}\n{out}\ngateway stderr:\n{}",
        run.status.code(),
        report.problems.join("\n"),
        gw.stderr_text()
    );
    let negative = report.modes.get("negative").copied().unwrap_or(0);
    assert!(
        report.requests >= 200 && negative >= 50,
        "only {} requests were sent, {negative} of them invalid:\n{out}",
        report.requests
    );
    assert!(
        !gw.stderr_text().contains("panicked"),
        "{}",
        gw.stderr_text()
    );

    // Everything that reached the upstream, checked by an independent validator.
    let received = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let bodies = received
        .iter()
        .filter(|r| r.method == "POST" && !r.body.is_empty())
        .count();
    assert!(
        bodies >= 10,
        "only {bodies} bodies reached the upstream: schemathesis did not get past the checks"
    );
    let records = dir.0.join("received.jsonl");
    let lines: String = received
        .iter()
        .map(|r| {
            json!({
                "method": r.method,
                "path": r.path,
                "content_type": r.content_type,
                "body": base64::engine::general_purpose::STANDARD.encode(&r.body),
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&records, lines).unwrap_or_else(|e| panic!("{}: {e}", records.display()));
    let check = Command::new("python3")
        .arg(root().join("tests/tools/check_upstream_requests.py"))
        .arg(&spec)
        .arg(&records)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let summary = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "a request the spec forbids reached the upstream:\n{summary}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = writeln_stderr(&format!("upstream requests checked: {summary}"));

    // The checker is no rubber stamp: a body without its required `name`, a `tag` of the
    // wrong type and a `petId` below its minimum are each found.
    let wrong = dir.0.join("wrong.jsonl");
    let body = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let lines = [
        json!({"method": "POST", "path": "/pets", "content_type": "application/json", "body": body(r#"{"tag":"dog"}"#)}),
        json!({"method": "POST", "path": "/pets", "content_type": "application/json", "body": body(r#"{"name":"Rex","tag":5}"#)}),
        json!({"method": "GET", "path": "/internal/pets/0", "content_type": "", "body": ""}),
    ]
    .map(|l| l.to_string() + "\n")
    .concat();
    std::fs::write(&wrong, lines).unwrap_or_else(|e| panic!("{}: {e}", wrong.display()));
    let check = Command::new("python3")
        .arg(root().join("tests/tools/check_upstream_requests.py"))
        .arg(&spec)
        .arg(&wrong)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let summary: Value = serde_json::from_slice(&check.stdout).unwrap_or_default();
    assert_eq!(check.status.code(), Some(1), "{summary}");
    assert_eq!(
        summary["invalid"].as_array().map(Vec::len),
        Some(3),
        "{summary}"
    );
}

/// Runs `schemathesis run` against the gateway at `url`, writing its events to `report`.
fn schemathesis(
    spec: &Path,
    url: &str,
    authorization: &str,
    report: &Path,
) -> std::process::Output {
    let report_dir: PathBuf = report.parent().map(Path::to_path_buf).unwrap_or_default();
    Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(spec)
        .args(["--url", url])
        .args(["--header", authorization])
        // Valid and invalid data (`negative` mode makes requests the schemas forbid).
        .args(["--mode", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples(), "--seed", "20261205"])
        // One worker: with more, schemathesis 4.32.5 sometimes fails inside itself (a
        // `KeyError` from a cache its threads share) and skips the rest of an operation.
        .args(["--workers", "1", "--no-shrink"])
        .args(["--request-timeout", "10"])
        .args(["--report", "ndjson", "--report-ndjson-path"])
        .arg(report)
        .arg("--report-dir")
        .arg(&report_dir)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        .current_dir(&report_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run schemathesis: {e}"))
}

/// Test cases per operation and phase: 40 (a few seconds in all), or
/// `$GATEWAYC_SCHEMATHESIS_EXAMPLES` for a longer run.
fn examples() -> String {
    std::env::var("GATEWAYC_SCHEMATHESIS_EXAMPLES")
        .ok()
        .filter(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
        .unwrap_or_else(|| "40".to_owned())
}

/// The checks that judge the gateway: no 5xx; invalid data refused with a 4xx and valid
/// data accepted; a missing required header refused; a method the path does not declare
/// refused; a secured operation refused without credentials; and answers whose content
/// type and body match the declared response (the upstream's answers do, so a mismatch
/// would be the gateway's doing). `status_code_conformance` is left out: the gateway's own
/// refusals (400, 401, 403, 413, 415) are statuses `specs/petstore.yaml` does not declare.
const CHECKS: &str = "not_a_server_error,negative_data_rejection,positive_data_acceptance,\
missing_required_header,unsupported_method,ignored_auth,content_type_conformance,\
response_schema_conformance";

/// Writes past the test harness's capture.
fn writeln_stderr(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stderr(), "{text}")
}
