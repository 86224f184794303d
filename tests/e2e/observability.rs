//! Observability tier: what an operator sees of a running gateway (the `observability`
//! accepted spec, served as `obs` by a real process): the access log on stdout, JSON
//! diagnostics on stderr, no credential anywhere in either, metrics and health on the admin
//! listener, graceful shutdown, and spans exported to an OTLP receiver.
//!
//! Independent tools judge the formats: `promtool` and the Prometheus Python client's
//! parser read the metrics (`tests/tools/parse_metrics.py`), and the OpenTelemetry project's
//! protobuf classes decode the spans (`tests/tools/otlp_receiver.py`). A test fails, saying
//! what to install, when one of them is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::support::{
    Gateway, Reply, TempDir, Upstream, client, get, header, new_key, poll, root, send, send_body,
};

/// The accepted spec's file stem, which `test-gateway` serves.
const SPEC: &str = "observability";

/// The HS256 secret the `obs` gateway verifies bearer tokens with.
const JWT_SECRET: &str = "obs-test-secret-0123456789abcdef0123456789abcdef";

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A valid HS256 token for the `obs` gateway: `sub` consumer-alice, `plan` gold, the
/// spec's issuer and audience. These tests are about what operators see, not about JWT
/// verification (the security tier and the runtime's tests check that, against tokens
/// minted elsewhere), so the token is made here and the tier needs no fixtures.
fn valid_token() -> String {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64(serde_json::json!({
        "iss": "https://id.example.test/",
        "aud": "petstore-api",
        "sub": "consumer-alice",
        "plan": "gold",
        "iat": 1_700_000_000,
        "exp": 4_102_444_800u64,
    })
    .to_string()
    .as_bytes());
    let signed = format!("{header}.{claims}");
    let signature = b64(&hmac_sha256(JWT_SECRET.as_bytes(), signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// The valid token with its signature changed: well formed, and refused.
fn forged_token() -> String {
    let token = valid_token();
    let (head, signature) = token
        .rsplit_once('.')
        .unwrap_or_else(|| panic!("not a JWT: {token}"));
    let flipped: String = signature
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    format!("{head}.{flipped}")
}

/// A running `obs` gateway, its mock upstream, and the key it knows (carol, plan gold).
struct Obs {
    gw: Gateway,
    up: Upstream,
    key: String,
    _dir: TempDir,
}

/// Starts an `obs` gateway in front of a new mock upstream (or `upstream_url`, when given),
/// with `extra` environment variables.
async fn start(name: &str, upstream_url: Option<String>, extra: &[(&str, String)]) -> Obs {
    let dir = TempDir::new(&format!("obs-{name}"));
    let keys = dir.0.join("keys.toml");
    let key = new_key(&keys, "carol", "gold");
    let up = Upstream::start().await;
    let mut env = vec![
        ("OBS_UPSTREAM_URL", upstream_url.unwrap_or_else(|| up.url())),
        ("OBS_KEYS", keys.to_string_lossy().into_owned()),
        ("OBS_JWT_SECRET", JWT_SECRET.to_owned()),
    ];
    env.extend(extra.iter().cloned());
    let gw = Gateway::start(SPEC, &env);
    Obs {
        gw,
        up,
        key,
        _dir: dir,
    }
}

/// `GATEWAY_ADMIN_LISTEN` on a port of its own.
fn admin() -> (&'static str, String) {
    ("GATEWAY_ADMIN_LISTEN", "127.0.0.1:0".to_owned())
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a port: {e}"));
    listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("addr: {e}"))
}

fn request_id(r: &Reply) -> String {
    let id = header(r, "x-request-id");
    assert!(!id.is_empty(), "no X-Request-Id: {:?}", r.headers);
    id
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// RFC 3339 in UTC with milliseconds: `2026-12-04T19:00:00.123Z`.
fn is_timestamp(s: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == pattern.len()
        && s.bytes().zip(pattern).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == *p,
        })
}

/// The trace id and parent span id of the `traceparent` the upstream's last request carried.
fn upstream_traceparent(up: &Upstream) -> (String, String, String) {
    let seen = up.last();
    let tp = seen
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("the upstream got no traceparent: {:?}", seen.headers))
        .to_owned();
    let parts: Vec<&str> = tp.split('-').collect();
    assert!(
        parts.len() == 4 && parts[0] == "00" && is_hex(parts[1], 32) && is_hex(parts[2], 16),
        "malformed traceparent sent upstream: {tp}"
    );
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

/// A GET from the anonymous client at `ip` (the gateway believes X-Forwarded-For from
/// 127.0.0.1).
async fn get_from(gw: &Gateway, path: &str, ip: &str) -> Reply {
    send("GET", &gw.url(path), &[("x-forwarded-for", ip)]).await
}

fn text_field(line: &Value, name: &str) -> String {
    line[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` is not a string in {line}"))
        .to_owned()
}

/// Asserts the line is the gateway's own answer of kind `error_type`, with a reason that
/// contains each of `reason_has`.
fn assert_refusal(line: &Value, status: u16, error_type: &str, reason_has: &[&str]) {
    assert_eq!(line["http.response.status_code"], status, "{line}");
    assert_eq!(line["error.type"], error_type, "{line}");
    let reason = text_field(line, "gateway.reason");
    for part in reason_has {
        assert!(
            reason.to_lowercase().contains(&part.to_lowercase()),
            "gateway.reason {reason:?} does not mention {part:?}"
        );
    }
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_with_what_an_operator_needs() {
    let s = start("access", None, &[]).await;
    let gw = &s.gw;
    let mut sent = Vec::new();

    // A proxied request: ids, trace, route, upstream, timings, sizes.
    let r = send(
        "GET",
        &gw.url("/items/first"),
        &[
            ("user-agent", "obs-test/1.0"),
            ("x-forwarded-for", "192.0.2.1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = request_id(&r);
    sent.push(id.clone());
    let (trace_id, _, _) = upstream_traceparent(&s.up);
    let line = gw.access_line(&id).await;
    assert!(is_timestamp(&text_field(&line, "timestamp")), "{line}");
    assert_eq!(line["kind"], "access");
    assert_eq!(line["request_id"], id.as_str());
    assert_eq!(
        line["trace_id"],
        trace_id.as_str(),
        "the log's trace id is not the one the upstream got"
    );
    assert!(is_hex(&text_field(&line, "span_id"), 16), "{line}");
    assert_eq!(line["http.request.method"], "GET");
    assert_eq!(line["url.path"], "/items/first");
    assert!(line.get("url.query").is_none(), "{line}");
    assert_eq!(line["http.route"], "/items/{itemId}");
    assert_eq!(line["http.response.status_code"], 200);
    assert_eq!(line["server.address"], gw.addr.to_string().as_str());
    assert_eq!(line["client.address"], "127.0.0.1");
    assert_eq!(line["network.protocol.version"], "1.1");
    assert_eq!(line["user_agent.original"], "obs-test/1.0");
    assert_eq!(line["gateway.operation"], "getItem");
    assert_eq!(line["gateway.plan"], "anonymous");
    assert!(line.get("gateway.consumer").is_none(), "{line}");
    assert_eq!(line["gateway.upstream"], "backend");
    assert_eq!(line["gateway.upstream.attempts"], 1);
    let total = line["gateway.duration_ms"].as_f64();
    let upstream = line["gateway.upstream.duration_ms"].as_f64();
    assert!(
        matches!((total, upstream), (Some(t), Some(u)) if t > 0.0 && u > 0.0 && u <= t),
        "durations must be numbers, the upstream's within the whole: {line}"
    );
    assert_eq!(line["http.request.body.size"], 0);
    assert_eq!(line["http.response.body.size"], r.body.len());
    assert!(line.get("error.type").is_none() && line.get("gateway.reason").is_none());

    // The client's own request id is kept.
    let r = send(
        "GET",
        &gw.url("/items/mine"),
        &[
            ("x-request-id", "client-chosen-id-1"),
            ("x-forwarded-for", "192.0.2.1"),
        ],
    )
    .await;
    assert_eq!(request_id(&r), "client-chosen-id-1");
    sent.push("client-chosen-id-1".to_owned());
    assert_eq!(
        gw.access_line("client-chosen-id-1").await["url.path"],
        "/items/mine"
    );

    // An API key: consumer and plan; the body sizes are what was sent and received.
    let body = b"0123456789".repeat(100);
    let r = send_body(
        "POST",
        &gw.url("/echo"),
        &[
            ("x-api-key", &s.key),
            ("content-type", "application/octet-stream"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_bytes(), &body[..]);
    let id = request_id(&r);
    sent.push(id.clone());
    let line = gw.access_line(&id).await;
    assert_eq!(line["http.request.method"], "POST");
    assert_eq!(line["gateway.operation"], "echo");
    assert_eq!(line["gateway.consumer"], "carol");
    assert_eq!(line["gateway.plan"], "gold");
    assert_eq!(line["http.request.body.size"], body.len());
    assert_eq!(line["http.response.body.size"], body.len());

    // A JWT: the consumer is its `sub`, the plan its `plan` claim.
    let bearer = format!("Bearer {}", valid_token());
    let r = send("GET", &gw.url("/bearer"), &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = request_id(&r);
    sent.push(id.clone());
    let line = gw.access_line(&id).await;
    assert_eq!(line["gateway.consumer"], "consumer-alice");
    assert_eq!(line["gateway.plan"], "gold");

    // 401: no credential, then a forged token, then an unknown API key.
    let r = get_from(gw, "/bearer", "192.0.2.2").await;
    r.assert_problem(401);
    let id = request_id(&r);
    sent.push(id.clone());
    let line = gw.access_line(&id).await;
    assert_refusal(&line, 401, "auth_missing", &["bearer"]);
    assert_eq!(line["gateway.operation"], "withBearer");
    assert!(
        line.get("gateway.consumer").is_none() && line.get("gateway.upstream").is_none(),
        "{line}"
    );

    let forged = format!("Bearer {}", forged_token());
    let r = send(
        "GET",
        &gw.url("/bearer"),
        &[("authorization", &forged), ("x-forwarded-for", "192.0.2.3")],
    )
    .await;
    r.assert_problem(401);
    let id = request_id(&r);
    sent.push(id.clone());
    assert_refusal(&gw.access_line(&id).await, 401, "auth_invalid", &["bearer"]);

    let unknown = format!("gwk_000000000000_{}", "u".repeat(43));
    let r = send(
        "GET",
        &gw.url("/header-key"),
        &[("x-api-key", &unknown), ("x-forwarded-for", "192.0.2.4")],
    )
    .await;
    r.assert_problem(401);
    let id = request_id(&r);
    sent.push(id.clone());
    assert_refusal(
        &gw.access_line(&id).await,
        401,
        "auth_invalid",
        &["headerKey"],
    );

    // 429: the anonymous `free` plan (3 a minute) spent from one address.
    let mut last = None;
    for _ in 0..4 {
        let r = get_from(gw, "/items/limited", "198.51.100.7").await;
        sent.push(request_id(&r));
        last = Some(r);
    }
    let r = last.unwrap_or_else(|| panic!("no request sent"));
    r.assert_problem(429);
    let line = gw.access_line(&request_id(&r)).await;
    assert_refusal(&line, 429, "rate_limited", &["anonymous", "free"]);
    assert_eq!(line["gateway.plan"], "anonymous");
    assert!(line.get("gateway.upstream").is_none(), "{line}");

    // 404: nothing routed, so no route and no operation.
    let r = get_from(gw, "/no/such/path", "192.0.2.5").await;
    r.assert_problem(404);
    let id = request_id(&r);
    sent.push(id.clone());
    let line = gw.access_line(&id).await;
    assert_eq!(line["http.response.status_code"], 404);
    assert_eq!(line["error.type"], "not_found");
    assert_eq!(line["url.path"], "/no/such/path");
    assert!(
        line.get("http.route").is_none() && line.get("gateway.operation").is_none(),
        "{line}"
    );

    // 504: the upstream answers after 1.5 s, the operation's timeout is 500 ms.
    let started = Instant::now();
    let r = get_from(gw, "/slow/1500", "192.0.2.6").await;
    r.assert_problem(504);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the 504 took {:?}",
        started.elapsed()
    );
    let id = request_id(&r);
    sent.push(id.clone());
    let line = gw.access_line(&id).await;
    assert_refusal(&line, 504, "upstream_timeout", &["500 ms"]);
    assert_eq!(line["gateway.upstream"], "backend");
    assert_eq!(line["gateway.upstream.attempts"], 1);
    assert!(
        line["gateway.upstream.duration_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 450.0),
        "{line}"
    );

    // Exactly one line per request, and nothing else on stdout.
    let counted = poll(Duration::from_secs(5), || {
        let n = gw.stdout_lines().len();
        (n >= sent.len()).then_some(n)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let lines = gw.stdout_lines();
    assert_eq!(
        (counted, lines.len()),
        (Some(sent.len()), sent.len()),
        "{} requests, stdout:\n{}",
        sent.len(),
        lines.join("\n")
    );
    let logged: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {l}"));
            assert_eq!(v["kind"], "access", "{l}");
            text_field(&v, "request_id")
        })
        .collect();
    let (mut a, mut b) = (logged, sent);
    a.sort();
    b.sort();
    assert_eq!(a, b, "each request exactly once");
}

#[tokio::test]
async fn json_mode_writes_only_json_and_an_upstream_failure_names_its_request() {
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let s = start(
        "json",
        Some(dead),
        &[
            ("GATEWAY_LOG_FORMAT", "json".to_owned()),
            ("GATEWAY_LOG", "debug".to_owned()),
            admin(),
        ],
    )
    .await;
    let gw = &s.gw;

    let r = get_from(gw, "/items/down", "192.0.2.10").await;
    r.assert_problem(502);
    let id = request_id(&r);
    assert_eq!(r.json()["request_id"], id.as_str());
    let missing = get_from(gw, "/bearer", "192.0.2.11").await;
    missing.assert_problem(401);
    get_from(gw, "/nowhere", "192.0.2.12")
        .await
        .assert_problem(404);

    // The access line says which upstream failed and how.
    let line = gw.access_line(&id).await;
    assert_refusal(&line, 502, "upstream_connect", &["connect"]);
    assert_eq!(line["gateway.upstream"], "backend");
    assert_eq!(line["gateway.upstream.attempts"], 1);
    assert_eq!(line["http.route"], "/items/{itemId}");

    // The warning on stderr carries the request id the client got.
    let warning = poll(Duration::from_secs(5), || {
        gw.stderr_text().lines().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let rid = v
                .get("request_id")
                .or_else(|| v.get("fields").and_then(|f| f.get("request_id")));
            (v["level"] == "WARN" && rid.and_then(Value::as_str) == Some(id.as_str())).then_some(v)
        })
    })
    .await;
    assert!(
        warning.is_some(),
        "no WARN line with request_id {id} on stderr:\n{}",
        gw.stderr_text()
    );

    // Metrics agree: one connect failure of `backend`, its call timed as an error.
    let metrics = Metrics::scrape(gw).await;
    assert_eq!(
        metrics.value(
            "gateway_upstream_errors_total",
            &[("upstream", "backend"), ("kind", "connect")]
        ),
        Some(1.0),
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.value(
            "http_client_request_duration_seconds_count",
            &[("upstream", "backend"), ("status_code", "error")]
        ),
        Some(1.0),
        "{}",
        metrics.text
    );

    // Every line on both streams is a JSON object, the start-up lines included.
    gw.access_line(&request_id(&missing)).await;
    let stdout = gw.stdout_lines();
    let stderr = gw.stderr_text();
    assert!(stdout.len() >= 3, "{stdout:?}");
    for (stream, lines) in [
        ("stdout", stdout),
        ("stderr", stderr.lines().map(str::to_owned).collect()),
    ] {
        for l in &lines {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a {stream} line is not JSON ({e}): {l}"));
            assert!(v.is_object(), "a {stream} line is not an object: {l}");
        }
    }
    assert!(
        stderr.lines().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "GATEWAY_LOG=debug wrote no debug line:\n{stderr}"
    );
}

/// A request of the redaction test: path and query, headers, and the status expected.
type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16);

#[tokio::test]
async fn no_credential_reaches_stdout_or_stderr() {
    let s = start("redaction", None, &[("GATEWAY_LOG", "debug".to_owned())]).await;
    let gw = &s.gw;
    let token = valid_token();
    let forged = forged_token();
    let unknown_key = format!("gwk_0123456789ab_{}", "Zq7".repeat(14) + "Z");
    let session = "sess-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let upstream_cookie = "sid-0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let key = s.key.clone();
    let cookie_with_key = format!("obs_key={key}; session={session}");
    let cookie_unknown = format!("obs_key={unknown_key}");
    let session_cookie = format!("session={session}");
    let set_cookie = format!("sid={upstream_cookie}; HttpOnly");
    let bearer = format!("Bearer {token}");
    let bearer_forged = format!("Bearer {forged}");

    // Each from an address of its own, so that refused credentials never exhaust the
    // anonymous plan.
    let cases: Vec<Case<'_>> = vec![
        ("/bearer".into(), vec![("authorization", &bearer)], 200),
        (
            "/bearer".into(),
            vec![("authorization", &bearer_forged)],
            401,
        ),
        ("/header-key".into(), vec![("x-api-key", &key)], 200),
        ("/header-key".into(), vec![("x-api-key", &unknown_key)], 401),
        (format!("/query-key?api_key={key}&page=2"), vec![], 200),
        (format!("/query-key?api_key={unknown_key}"), vec![], 401),
        (
            "/cookie-key".into(),
            vec![("cookie", &cookie_with_key)],
            200,
        ),
        ("/cookie-key".into(), vec![("cookie", &cookie_unknown)], 401),
        (
            "/public".into(),
            vec![
                ("cookie", &session_cookie),
                ("x-mock-set-cookie", &set_cookie),
            ],
            200,
        ),
    ];
    let mut ids = Vec::new();
    for (i, (path, headers, status)) in cases.iter().enumerate() {
        let ip = format!("192.0.2.{}", 20 + i);
        let mut headers = headers.clone();
        headers.push(("x-forwarded-for", &ip));
        let r = send("GET", &gw.url(path), &headers).await;
        assert_eq!(r.status, *status, "{path}: {}", r.body);
        ids.push((path.clone(), request_id(&r), r));
    }
    // The upstream's cookie did reach the client: it is a secret the log must not repeat.
    let (_, _, public) = &ids[ids.len() - 1];
    assert!(header(public, "set-cookie").contains(upstream_cookie));

    // Every request was logged; the query key shows as REDACTED, the rest of the query kept.
    for (path, id, _) in &ids {
        let line = gw.access_line(id).await;
        assert_eq!(
            line["url.path"],
            path.split('?').next().unwrap_or_default(),
            "{line}"
        );
    }
    let query = |i: usize| gw.access_line(&ids[i].1);
    assert_eq!(query(4).await["url.query"], "api_key=REDACTED&page=2");
    assert_eq!(query(5).await["url.query"], "api_key=REDACTED");

    // Not the whole credentials, and not their secret parts either.
    // A key ends with its secret: 32 random bytes in unpadded base64url, 43 characters
    // (which may themselves hold `_`, so the key is not split on it).
    let secret_part = |k: &str| k[k.len().saturating_sub(43)..].to_owned();
    let signature = |t: &str| t.rsplit('.').next().unwrap_or_default().to_owned();
    let secrets = [
        token.clone(),
        signature(&token),
        forged.clone(),
        signature(&forged),
        key.clone(),
        secret_part(&key),
        unknown_key.clone(),
        secret_part(&unknown_key),
        session.to_owned(),
        upstream_cookie.to_owned(),
    ];
    tokio::time::sleep(Duration::from_millis(250)).await;
    let out = gw.stdout_lines().join("\n");
    let err = gw.stderr_text();
    assert!(
        err.contains("DEBUG"),
        "GATEWAY_LOG=debug wrote no debug line:\n{err}"
    );
    for secret in &secrets {
        assert!(secret.len() >= 16, "too short to search for: {secret}");
        assert!(
            !out.contains(secret.as_str()),
            "stdout holds {secret}:\n{out}"
        );
        assert!(
            !err.contains(secret.as_str()),
            "stderr holds {secret}:\n{err}"
        );
    }
}

/// A `/metrics` exposition, read by a small parser of the Prometheus text format.
struct Metrics {
    text: String,
    samples: Vec<Sample>,
}

/// One sample line: name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Metrics {
    /// Scrapes the gateway's admin listener in the Prometheus text format.
    async fn scrape(gw: &Gateway) -> Metrics {
        let r = get(&gw.admin_url("/metrics")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            header(&r, "content-type"),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Metrics::parse(r.body)
    }

    fn parse(text: String) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample line: {l:?}")))
            .collect();
        Metrics { text, samples }
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// The request-duration histogram's `_count` for one operation, method and status.
    fn requests(&self, op: &str, route: &str, method: &str, status: u16) -> f64 {
        let status = status.to_string();
        self.value(
            "http_server_request_duration_seconds_count",
            &[
                ("operation", op),
                ("route", route),
                ("method", method),
                ("status_code", &status),
            ],
        )
        .unwrap_or(0.0)
    }

    /// Every series: a histogram's buckets, sum and count are one series.
    fn series(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .map(|s| {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| s.name.strip_suffix(suffix))
                    .unwrap_or(&s.name);
                let mut labels = s.labels.clone();
                labels.remove("le");
                format!("{base}{labels:?}")
            })
            .collect()
    }
}

/// `name{k="v",...} value [timestamp]`, with `\\`, `\"` and `\n` escapes in values.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| *c == ',' || *c == ' ').is_some() {}
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            let mut key = String::from(c);
            loop {
                match chars.next()? {
                    (_, '=') => break,
                    (_, c) => key.push(c),
                }
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Burst request `i`: an item, an unknown path or an unknown API key, each with a path,
/// key and client address of its own.
fn burst_request(base: &str, i: usize) -> Request<Full<Bytes>> {
    let ip = format!("10.{}.{}.{}", 100 + i / 65_536, (i / 256) % 256, i % 256);
    let builder = Request::builder().header("x-forwarded-for", ip);
    let builder = match i % 10 {
        0..=3 => builder.uri(format!("{base}/items/burst-{i}")),
        4..=6 => builder.uri(format!("{base}/unknown/burst-{i}")),
        _ => builder
            .uri(format!("{base}/header-key"))
            .header("x-api-key", format!("gwk_{i:012x}_{i:043}")),
    };
    builder
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("bad request: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_requests_and_client_values_add_no_series() {
    let s = start("metrics", None, &[admin()]).await;
    let gw = &s.gw;

    // Known traffic, each anonymous client from an address of its own.
    for i in 0..5 {
        let r = get_from(gw, &format!("/items/w{i}"), &format!("10.1.0.{i}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for i in 0..2 {
        get_from(gw, "/bearer", &format!("10.2.0.{i}"))
            .await
            .assert_problem(401);
    }
    send(
        "GET",
        &gw.url("/bearer"),
        &[
            ("authorization", "Bearer not-a-jwt"),
            ("x-forwarded-for", "10.3.0.1"),
        ],
    )
    .await
    .assert_problem(401);
    let unknown = format!("gwk_000000000000_{}", "u".repeat(43));
    send(
        "GET",
        &gw.url("/header-key"),
        &[("x-api-key", &unknown), ("x-forwarded-for", "10.3.0.2")],
    )
    .await
    .assert_problem(401);
    let mut public = Vec::new();
    for _ in 0..4 {
        public.push(get_from(gw, "/public", "10.4.0.1").await.status.as_u16());
    }
    assert_eq!(public, [200, 200, 200, 429]);
    let echo = send_body("POST", &gw.url("/echo"), &[("x-api-key", &s.key)], "hi").await;
    assert_eq!(echo.status, 200, "{}", echo.body);
    get_from(gw, "/slow/1500", "10.5.0.1")
        .await
        .assert_problem(504);
    get_from(gw, "/nope/warm", "10.6.0.1")
        .await
        .assert_problem(404);
    for _ in 0..2 {
        assert_eq!(
            get_from(gw, "/healthz-public", "10.4.0.1").await.status,
            200
        );
    }
    // The metrics are on the admin listener only.
    let public_metrics = get(&gw.url("/metrics")).await;
    public_metrics.assert_problem(404);
    assert!(!public_metrics.body.contains("# TYPE"));

    let m = Metrics::scrape(gw).await;
    let t = &m.text;
    let item = ("getItem", "/items/{itemId}");
    assert_eq!(m.requests(item.0, item.1, "GET", 200), 5.0, "{t}");
    assert_eq!(m.requests("withBearer", "/bearer", "GET", 401), 3.0, "{t}");
    assert_eq!(
        m.requests("withHeaderKey", "/header-key", "GET", 401),
        1.0,
        "{t}"
    );
    assert_eq!(m.requests("publicGet", "/public", "GET", 200), 3.0, "{t}");
    assert_eq!(m.requests("publicGet", "/public", "GET", 429), 1.0, "{t}");
    assert_eq!(m.requests("echo", "/echo", "POST", 200), 1.0, "{t}");
    assert_eq!(m.requests("slow", "/slow/{ms}", "GET", 504), 1.0, "{t}");
    assert_eq!(
        m.requests("healthCheck", "/healthz-public", "GET", 200),
        2.0,
        "{t}"
    );
    // Unrouted: the warm-up 404 and the /metrics asked of the public port.
    assert_eq!(m.requests("", "", "GET", 404), 2.0, "{t}");
    // A histogram's +Inf bucket holds every observation.
    assert_eq!(
        m.value(
            "http_server_request_duration_seconds_bucket",
            &[
                ("operation", item.0),
                ("route", item.1),
                ("method", "GET"),
                ("status_code", "200"),
                ("le", "+Inf"),
            ]
        ),
        Some(5.0),
        "{t}"
    );
    assert_eq!(
        m.value("http_server_active_requests", &[]),
        Some(0.0),
        "{t}"
    );

    let auth = |scheme: &str, reason: &str| {
        m.value(
            "gateway_auth_failures_total",
            &[("scheme", scheme), ("reason", reason)],
        )
    };
    assert_eq!(auth("bearer", "missing"), Some(2.0), "{t}");
    assert_eq!(auth("bearer", "invalid"), Some(1.0), "{t}");
    assert_eq!(auth("headerKey", "invalid"), Some(1.0), "{t}");

    let decisions = |plan: &str, decision: &str| {
        m.value(
            "gateway_limit_decisions_total",
            &[("plan", plan), ("limit", "plan"), ("decision", decision)],
        )
    };
    // Anonymous: 5 items, 4 refused credentials, 3 of /public, the slow one; health checks
    // and unrouted requests are never counted.
    assert_eq!(decisions("anonymous", "allowed"), Some(13.0), "{t}");
    assert_eq!(decisions("anonymous", "limited"), Some(1.0), "{t}");
    assert_eq!(decisions("gold", "allowed"), Some(1.0), "{t}");

    assert_eq!(
        m.value(
            "gateway_upstream_errors_total",
            &[("upstream", "backend"), ("kind", "timeout")]
        ),
        Some(1.0),
        "{t}"
    );
    assert_eq!(
        m.value(
            "http_client_request_duration_seconds_count",
            &[("upstream", "backend"), ("status_code", "200")]
        ),
        Some(11.0),
        "{t}"
    );

    let info = m
        .samples
        .iter()
        .find(|s| s.name == "gateway_build_info")
        .unwrap_or_else(|| panic!("no gateway_build_info:\n{t}"));
    assert_eq!(info.value, 1.0);
    assert_eq!(info.labels.get("gateway").map(String::as_str), Some("obs"));
    assert!(
        info.labels
            .get("spec_digest")
            .is_some_and(|d| is_hex(d, 64)),
        "{info:?}"
    );
    assert!(
        info.labels
            .get("runtime_version")
            .is_some_and(|v| !v.is_empty()),
        "{info:?}"
    );

    // OpenMetrics when asked for.
    let om = send(
        "GET",
        &gw.admin_url("/metrics"),
        &[("accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await;
    assert_eq!(om.status, 200);
    assert!(
        header(&om, "content-type").starts_with("application/openmetrics-text"),
        "{:?}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(!m.text.contains("# EOF"));

    // 10,000 requests with client-chosen paths, addresses and keys: no new series but new
    // status codes or decisions.
    let before = m.series();
    let started = Instant::now();
    let pool = client::<Full<Bytes>>();
    let base = gw.url("");
    let mut tasks = Vec::new();
    const TOTAL: usize = 10_000;
    const IN_FLIGHT: usize = 16;
    for first in 0..IN_FLIGHT {
        let (pool, base) = (pool.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<(usize, u16), usize> = BTreeMap::new();
            for i in (first..TOTAL).step_by(IN_FLIGHT) {
                let resp = pool
                    .request(burst_request(&base, i))
                    .await
                    .unwrap_or_else(|e| panic!("burst request {i}: {e}"));
                let status = resp.status().as_u16();
                let _ = resp.into_body().collect().await;
                *statuses.entry((i % 10, status)).or_default() += 1;
            }
            statuses
        }));
    }
    let mut by_kind: BTreeMap<&str, BTreeMap<u16, usize>> = BTreeMap::new();
    for t in tasks {
        for ((kind, status), n) in t.await.unwrap_or_else(|e| panic!("burst: {e}")) {
            let kind = match kind {
                0..=3 => "item",
                4..=6 => "unknown path",
                _ => "unknown key",
            };
            *by_kind.entry(kind).or_default().entry(status).or_default() += n;
        }
    }
    let took = started.elapsed();
    let expected: BTreeMap<&str, BTreeMap<u16, usize>> = [
        ("item", [(200, 4000)].into()),
        ("unknown path", [(404, 3000)].into()),
        ("unknown key", [(401, 3000)].into()),
    ]
    .into();
    assert_eq!(by_kind, expected, "after {took:?}");

    let after = Metrics::scrape(gw).await;
    let t = &after.text;
    assert_eq!(after.requests(item.0, item.1, "GET", 200), 4005.0, "{t}");
    assert_eq!(after.requests("", "", "GET", 404), 3002.0, "{t}");
    assert_eq!(
        after.requests("withHeaderKey", "/header-key", "GET", 401),
        3001.0,
        "{t}"
    );
    let series = after.series();
    let gone: Vec<&String> = before.difference(&series).collect();
    assert!(gone.is_empty(), "series disappeared: {gone:?}");
    let new: Vec<&String> = series.difference(&before).collect();
    assert!(
        new.len() <= 4,
        "{} series before, {} after 10,000 requests with client-chosen values; new: {new:#?}",
        before.len(),
        series.len()
    );
    for s in &after.samples {
        for v in s.labels.values() {
            assert!(
                !v.contains("burst") && !v.contains("gwk_") && !v.starts_with("10."),
                "a client's value became a label: {} {:?}",
                s.name,
                s.labels
            );
        }
    }
}

/// Runs `program args` with `input` on standard input; `None` when it is not installed.
fn run_with_input(program: &str, args: &[&str], input: &str) -> Option<std::process::Output> {
    let mut child = match Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run {program}: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {program}: {e}"));
    }
    Some(
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{program}: {e}")),
    )
}

/// `promtool check metrics` on `text`.
fn promtool(text: &str) -> std::process::Output {
    run_with_input("promtool", &["check", "metrics"], text).unwrap_or_else(|| {
        panic!(
            "promtool is not installed; install it: apt-get install prometheus \
             (Debian's package ships promtool)"
        )
    })
}

/// `tests/tools/parse_metrics.py` on `text` (OpenMetrics when `openmetrics`).
fn reference_parser(text: &str, openmetrics: bool) -> std::process::Output {
    let mut args = vec!["tests/tools/parse_metrics.py"];
    if openmetrics {
        args.push("--openmetrics");
    }
    let out = run_with_input("python3", &args, text)
        .unwrap_or_else(|| panic!("python3 is not installed; install it: apt-get install python3"));
    assert_ne!(
        out.status.code(),
        Some(2),
        "the Prometheus Python client is missing; install it: \
         python3 -m pip install prometheus_client\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn metrics_pass_promtool_and_the_prometheus_client_parser() {
    let s = start("validators", None, &[admin()]).await;
    let gw = &s.gw;
    // Something in every family that traffic fills: routed and unrouted, refused,
    // limited, and an upstream failure.
    assert_eq!(get_from(gw, "/items/v", "10.7.0.1").await.status, 200);
    get_from(gw, "/bearer", "10.7.0.2")
        .await
        .assert_problem(401);
    get_from(gw, "/nope", "10.7.0.3").await.assert_problem(404);
    for _ in 0..4 {
        get_from(gw, "/public", "10.7.0.4").await;
    }
    get_from(gw, "/slow/900", "10.7.0.5")
        .await
        .assert_problem(504);
    let text = Metrics::scrape(gw).await.text;
    let om = send(
        "GET",
        &gw.admin_url("/metrics"),
        &[("accept", "application/openmetrics-text")],
    )
    .await
    .body;

    let out = promtool(&text);
    assert!(
        out.status.success(),
        "promtool check metrics: {:?}\n{}{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It does reject a broken exposition.
    let broken = format!("{text}gateway_broken{{le=\"1\" 1\n");
    assert!(
        !promtool(&broken).status.success(),
        "promtool accepts anything"
    );

    let families = [
        "http_server_request_duration_seconds",
        "gateway_auth_failures",
        "gateway_limit_decisions",
        "gateway_upstream_errors",
        "gateway_build_info",
    ];
    for (body, openmetrics) in [(&text, false), (&om, true)] {
        let out = reference_parser(body, openmetrics);
        assert!(
            out.status.success(),
            "parse_metrics.py (openmetrics: {openmetrics}): {}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
        let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "parse_metrics.py printed no JSON list ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        for f in families {
            assert!(names.iter().any(|n| n == f), "{f} missing from {names:?}");
        }
    }
    // The OpenMetrics parser requires the closing `# EOF`: without it, it fails.
    let cut = om.trim_end().trim_end_matches("# EOF");
    assert_eq!(
        reference_parser(cut, true).status.code(),
        Some(1),
        "the OpenMetrics parser accepted an exposition without # EOF"
    );
}

#[tokio::test]
async fn health_readiness_and_a_graceful_shutdown() {
    let mut s = start(
        "health",
        None,
        &[admin(), ("GATEWAY_SHUTDOWN_DELAY", "2".to_owned())],
    )
    .await;

    let h = get(&s.gw.admin_url("/healthz")).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json(), serde_json::json!({ "status": "ok" }));
    let r = get(&s.gw.admin_url("/readyz")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ready = r.json();
    assert_eq!(ready["status"], "ready", "{ready}");
    let checks: BTreeMap<String, Value> = ready["checks"]
        .as_object()
        .map(|o| o.clone().into_iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = checks.keys().map(String::as_str).collect();
    // Only the checks that apply: no Redis in this spec, so no limit store.
    assert_eq!(
        names,
        [
            "jwks",
            "key_store",
            "listener",
            "upstream_targets",
            "upstreams"
        ],
        "{ready}"
    );
    assert!(checks.values().all(|v| v == "ok"), "{ready}");
    assert_eq!(get(&s.gw.admin_url("/other")).await.status, 404);
    get(&s.gw.url("/healthz")).await.assert_problem(404);

    // A request the upstream answers after 2.5 s: still in flight when the listener closes.
    let url = s.gw.url("/public?delay=2500");
    let slow =
        tokio::spawn(async move { send("GET", &url, &[("x-forwarded-for", "10.8.0.1")]).await });
    let arrived = poll(Duration::from_secs(5), || (s.up.count() == 1).then_some(())).await;
    assert!(
        arrived.is_some(),
        "the slow request never reached the upstream"
    );

    s.gw.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let mut not_ready = None;
    while signalled.elapsed() < Duration::from_secs(1) {
        let r = get(&s.gw.admin_url("/readyz")).await;
        if r.status == 503 {
            not_ready = Some(r.body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = signalled.elapsed();
    let body = not_ready.unwrap_or_else(|| panic!("/readyz never said 503 after SIGTERM"));
    assert!(
        waited < Duration::from_millis(300),
        "/readyz took {waited:?} to say 503"
    );
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/readyz: not JSON ({e}): {body}"));
    assert_eq!(v["status"], "not ready", "{v}");
    assert_eq!(v["checks"]["shutdown"], "stopping", "{v}");

    // During the delay the public port still serves new requests, on new connections.
    let during = get_from(&s.gw, "/items/during", "10.8.0.2").await;
    assert_eq!(during.status, 200, "{}", during.body);
    assert!(signalled.elapsed() < Duration::from_secs(2));

    let slow = slow.await.unwrap_or_else(|e| panic!("slow request: {e}"));
    assert_eq!(slow.status, 200, "the in-flight request: {}", slow.body);
    assert!(signalled.elapsed() >= Duration::from_secs(2));

    let gw = &mut s.gw;
    let exited = poll(Duration::from_secs(5), || {
        gw.child.try_wait().ok().flatten()
    })
    .await;
    let status = exited.unwrap_or_else(|| panic!("the gateway did not exit after SIGTERM"));
    assert!(status.success(), "exit status {status:?}");
    // The buffered access-log lines were written before it exited.
    assert_eq!(
        gw.access_line(&request_id(&slow)).await["http.response.status_code"],
        200
    );
    gw.access_line(&request_id(&during)).await;
}

#[tokio::test]
async fn a_health_check_route_is_never_rate_limited() {
    let s = start("healthcheck", None, &[]).await;
    let gw = &s.gw;
    let ip = "10.9.0.1";
    // Far beyond the anonymous plan's 3 a minute, before and after the address is spent.
    for round in 0..2 {
        for _ in 0..15 {
            let r = get_from(gw, "/healthz-public", ip).await;
            assert_eq!(r.status, 200, "round {round}: {}", r.body);
            assert_eq!(header(&r, "ratelimit"), "", "{:?}", r.headers);
            assert_eq!(header(&r, "ratelimit-policy"), "", "{:?}", r.headers);
        }
        if round == 0 {
            let mut public = Vec::new();
            for _ in 0..4 {
                let r = get_from(gw, "/public", ip).await;
                if r.status == 200 {
                    assert!(!header(&r, "ratelimit").is_empty(), "{:?}", r.headers);
                }
                public.push(r.status.as_u16());
            }
            // The health checks spent none of the address's budget.
            assert_eq!(public, [200, 200, 200, 429]);
        }
    }
}

/// `tests/tools/otlp_receiver.py`, killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let mut child = Command::new("python3")
            .arg("tests/tools/otlp_receiver.py")
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 ({e}); install it: apt-get install python3")
            });
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = tx.send(first);
            }
            for line in lines {
                if let (Ok(v), Ok(mut s)) = (serde_json::from_str::<Value>(&line), sink.lock()) {
                    s.push(v);
                }
            }
        });
        let Ok(first) = rx.recv_timeout(Duration::from_secs(10)) else {
            let _ = child.kill();
            let status = child.wait().ok();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "otlp_receiver.py did not start ({status:?}); the OpenTelemetry protobuf \
                 classes are needed: python3 -m pip install opentelemetry-proto\n{err}"
            );
        };
        let port = first
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("otlp_receiver.py printed {first:?}: {e}"));
        Receiver { child, port, spans }
    }

    /// The spans exported so far.
    fn spans(&self) -> Vec<Value> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The server span of the request `request_id`, waiting for its export (up to 5 s).
    async fn server_span(&self, request_id: &str) -> Value {
        let found = poll(Duration::from_secs(5), || {
            self.spans()
                .into_iter()
                .find(|s| s["kind"] == 2 && s["attributes"]["gateway.request_id"] == request_id)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no server span for request {request_id}; spans:\n{:#?}",
                self.spans()
            )
        })
    }

    /// The client spans whose parent is `span_id`.
    fn children(&self, span_id: &str) -> Vec<Value> {
        self.spans()
            .into_iter()
            .filter(|s| s["kind"] == 3 && s["parent_span_id"] == span_id)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn traces_continue_a_valid_traceparent_and_reach_the_collector() {
    let receiver = Receiver::start();
    let s = start(
        "traces",
        None,
        &[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("http://127.0.0.1:{}/v1/traces", receiver.port),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
    )
    .await;
    let gw = &s.gw;
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";

    // Not sampled: continued with the flag kept, and never exported.
    let unsampled = format!("00-5bf92f3577b34da6a3ce929d0e0e4736-{client_span}-00");
    let r = send(
        "GET",
        &gw.url("/items/unsampled"),
        &[
            ("traceparent", &unsampled),
            ("x-forwarded-for", "10.10.0.1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let unsampled_id = request_id(&r);
    let (trace, _, flags) = upstream_traceparent(&s.up);
    assert_eq!(
        (trace.as_str(), flags.as_str()),
        ("5bf92f3577b34da6a3ce929d0e0e4736", "00")
    );

    // A valid traceparent (and tracestate): same trace, a new span id upstream.
    let traceparent = format!("00-{client_trace}-{client_span}-01");
    let r = send(
        "GET",
        &gw.url("/items/traced"),
        &[
            ("traceparent", &traceparent),
            ("tracestate", "obs=1"),
            ("x-forwarded-for", "10.10.0.2"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let continued_id = request_id(&r);
    let (trace, upstream_parent, flags) = upstream_traceparent(&s.up);
    assert_eq!(trace, client_trace);
    assert_ne!(
        upstream_parent, client_span,
        "the upstream got the client's span id"
    );
    assert_eq!(flags, "01");
    let seen = s.up.last();
    assert_eq!(
        seen.headers.get("tracestate").and_then(|v| v.to_str().ok()),
        Some("obs=1")
    );

    // No traceparent: a new trace.
    let r = get_from(gw, "/items/fresh", "10.10.0.3").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh_id = request_id(&r);
    let (fresh_trace, fresh_parent, _) = upstream_traceparent(&s.up);
    assert_ne!(fresh_trace, client_trace);

    // Invalid ones (an all-zero trace id, upper-case hex): a new trace, no tracestate.
    let mut invalid = Vec::new();
    for (i, bad) in [
        format!("00-00000000000000000000000000000000-{client_span}-01"),
        format!("00-{}-{client_span}-01", client_trace.to_uppercase()),
    ]
    .iter()
    .enumerate()
    {
        let ip = format!("10.10.1.{i}");
        let r = send(
            "GET",
            &gw.url("/items/invalid"),
            &[
                ("traceparent", bad),
                ("tracestate", "obs=1"),
                ("x-forwarded-for", &ip),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{bad}: {}", r.body);
        let (trace, _, _) = upstream_traceparent(&s.up);
        assert!(
            trace != client_trace && trace != "0".repeat(32),
            "{bad} was continued: {trace}"
        );
        assert!(s.up.last().headers.get("tracestate").is_none(), "{bad}");
        invalid.push((request_id(&r), trace));
    }

    // A 504: the server span is an error, the client span says why.
    let r = send(
        "GET",
        &gw.url("/slow/900"),
        &[
            ("traceparent", &traceparent),
            ("x-forwarded-for", "10.10.2.1"),
        ],
    )
    .await;
    r.assert_problem(504);
    let timeout_id = request_id(&r);

    // The continued request: the server span is the client's child, the client span the
    // server span's, and its id is the one the upstream got.
    let server = receiver.server_span(&continued_id).await;
    assert_eq!(server["trace_id"], client_trace, "{server}");
    assert_eq!(server["parent_span_id"], client_span, "{server}");
    assert_eq!(server["name"], "GET /items/{itemId}", "{server}");
    assert_eq!(server["service_name"], "obs", "{server}");
    let attrs = &server["attributes"];
    assert_eq!(attrs["http.route"], "/items/{itemId}", "{server}");
    assert_eq!(attrs["http.response.status_code"], 200, "{server}");
    assert_eq!(attrs["http.request.method"], "GET", "{server}");
    assert_eq!(attrs["url.path"], "/items/traced", "{server}");
    assert_eq!(attrs["gateway.operation"], "getItem", "{server}");
    assert_ne!(server["status_code"], 2, "{server}");
    let server_span = text_field(&server, "span_id");
    assert_ne!(server_span, client_span);
    assert_ne!(server_span, upstream_parent);
    assert_eq!(
        gw.access_line(&continued_id).await["span_id"],
        server_span.as_str(),
        "the access log and the trace disagree on the server span"
    );
    let children = receiver.children(&server_span);
    assert_eq!(children.len(), 1, "{children:#?}");
    let child = &children[0];
    assert_eq!(child["span_id"], upstream_parent.as_str(), "{child}");
    assert_eq!(child["trace_id"], client_trace, "{child}");
    assert_eq!(child["name"], "GET backend", "{child}");
    assert_eq!(
        child["attributes"]["gateway.upstream"], "backend",
        "{child}"
    );
    assert_eq!(
        child["attributes"]["http.response.status_code"], 200,
        "{child}"
    );

    // The others started traces of their own, with no parent.
    let fresh = receiver.server_span(&fresh_id).await;
    assert_eq!(fresh["trace_id"], fresh_trace.as_str(), "{fresh}");
    assert_eq!(fresh["parent_span_id"], "", "{fresh}");
    let fresh_children = receiver.children(&text_field(&fresh, "span_id"));
    assert_eq!(
        fresh_children
            .iter()
            .map(|c| c["span_id"].clone())
            .collect::<Vec<_>>(),
        [Value::from(fresh_parent)]
    );
    for (id, trace) in &invalid {
        let span = receiver.server_span(id).await;
        assert_eq!(span["trace_id"], trace.as_str(), "{span}");
        assert_eq!(span["parent_span_id"], "", "{span}");
    }

    let failed = receiver.server_span(&timeout_id).await;
    assert_eq!(
        failed["status_code"], 2,
        "a 504 span is not an error: {failed}"
    );
    assert_eq!(
        failed["attributes"]["http.response.status_code"], 504,
        "{failed}"
    );
    let failed_children = receiver.children(&text_field(&failed, "span_id"));
    assert_eq!(failed_children.len(), 1, "{failed_children:#?}");
    assert_eq!(
        failed_children[0]["attributes"]["error.type"], "upstream_timeout",
        "{failed_children:#?}"
    );
    assert_eq!(failed_children[0]["status_code"], 2);

    // The unsampled request was sent first; the later ones are exported, it is not.
    assert!(
        receiver
            .spans()
            .iter()
            .all(
                |s| s["attributes"]["gateway.request_id"] != unsampled_id.as_str()
                    && s["trace_id"] != "5bf92f3577b34da6a3ce929d0e0e4736"
            ),
        "an unsampled trace was exported"
    );
}
