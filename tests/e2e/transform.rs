//! Run tier: `x-gateway.transform` (specs/accepted/transforms.yaml) between a real client
//! and the mock upstream, which echoes what it got; and the published response schema.

use std::process::{Command, Stdio};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::support::{Gateway, Upstream, client, compile, get, root, send, send_body};

async fn gateway() -> (Gateway, Upstream) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        "transforms",
        &[("BACKEND_URL", up.url()), ("TRANSFORM_SOURCE", "ci".into())],
    );
    (gw, up)
}

fn header<'r>(headers: &'r http::HeaderMap, name: &str) -> Option<&'r str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn nested_request_body_header_and_query_edits() {
    let (gw, up) = gateway().await;
    let sent = json!({
        "name": "Rex",
        "internal": "secret",
        "owner": { "name": "Ann", "email": "ann@example.com" },
        "debug": { "level": 3 },
        "tags": [ { "label": "a", "secret": "s" }, { "label": "b" } ]
    });
    let r = send_body(
        "POST",
        &gw.url("/pets?q=cats&debug=1&keep=%2F"),
        &[
            ("content-type", "application/json"),
            ("x-request-id", "abc123"),
            ("x-debug", "1"),
            ("x-old", "o"),
        ],
        sent.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // `/echo` answers with exactly the body it received.
    assert_eq!(
        r.json(),
        json!({
            "name": "Rex",
            "owner": { "name": "Ann", "mail": "ann@example.com", "verified": true },
            "debug": {},
            "tags": [ { "label": "a" }, { "label": "b" } ],
            "meta": {
                "level": 3,
                "source": "gateway",
                "count": 1,
                "delta": -2,
                "ratio": 0.5,
                "tags": [ "a", { "k": null } ]
            }
        })
    );
    let seen = up.last();
    assert_eq!(seen.path_and_query, "/echo?query=cats&keep=%2F&format=json");
    assert_eq!(
        header(&seen.headers, "content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(header(&seen.headers, "x-source"), Some("gw-abc123"));
    assert_eq!(header(&seen.headers, "x-label"), Some("none"));
    assert_eq!(header(&seen.headers, "x-env"), Some("ci"));
    assert_eq!(header(&seen.headers, "x-new"), Some("o"));
    assert!(seen.headers.get("x-old").is_none() && seen.headers.get("x-debug").is_none());
    assert_eq!(header(&seen.headers, "x-request-id"), Some("abc123"));

    // A body that claims JSON and is not: 400, and the upstream never hears of it.
    let before = up.count();
    let bad = send_body(
        "POST",
        &gw.url("/pets"),
        &[("content-type", "application/json")],
        "{\"name\": ",
    )
    .await;
    bad.assert_problem(400);
    assert_eq!(up.count(), before);
}

#[tokio::test]
async fn bodies_that_are_not_json_pass_untouched_and_streamed() {
    let (gw, up) = gateway().await;
    let text = "{\"internal\": \"not JSON to the gateway\"}";
    let r = send_body(
        "POST",
        &gw.url("/pets"),
        &[("content-type", "text/plain")],
        text,
    )
    .await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, text));
    assert_eq!(
        header(&up.last().headers, "x-source").map(|s| s.starts_with("gw-")),
        Some(true)
    );

    // 12 MiB of bytes through an operation with a response body transform: more than a
    // JSON body may be buffered, so it can only pass because it is streamed untouched.
    let size = 12u64 << 20;
    let req = Request::builder()
        .uri(gw.url(&format!("/blobs/{size}")))
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = client()
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    assert_eq!(bytes.len() as u64, size);
    assert!(
        bytes
            .iter()
            .take(1000)
            .enumerate()
            .all(|(i, b)| *b == crate::support::Pattern::byte(i as u64))
    );
}

#[tokio::test]
async fn nested_bodies_are_transformed_both_ways() {
    let (gw, up) = gateway().await;
    let r = send_body(
        "PUT",
        &gw.url("/pets/7"),
        &[
            ("content-type", "application/json"),
            ("x-request-id", "r-1"),
        ],
        json!({
            "name": "Rex",
            "ownerRef": { "name": "Ann" },
            "internalId": "i-1",
            "tags": [ { "label": "a", "secret": "s" } ],
            "extra": true
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Request: pick, then set. Upstream reflects. Response: remove, rename, set.
    assert_eq!(
        r.json(),
        json!({
            "name": "Rex",
            "owner": { "name": "Ann" },
            "tags": [ { "label": "a" } ],
            "meta": { "by": "r-1" },
            "links": { "self": "/pets" }
        })
    );
    assert_eq!(
        header(&r.headers, "content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(header(&r.headers, "x-request-echo"), Some("r-1"));
    assert!(r.headers.get("x-internal").is_none());
    assert_eq!(header(&r.headers, "x-request-id"), Some("r-1"));
    // The gateway asked for an unencoded response, since it edits it.
    assert!(up.last().headers.get("accept-encoding").is_none());
}

#[tokio::test]
async fn status_mapping_and_body_edits_on_success_only() {
    let (gw, _up) = gateway().await;
    // 404 becomes 200; the body is the upstream's error body, not edited.
    let r = get(&gw.url("/pets/404")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "status": 404, "internal": true }));
    let r = get(&gw.url("/pets/201")).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json(), json!({ "status": 201 }));
    let r = get(&gw.url("/pets/503")).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json(), json!({ "status": 503, "internal": true }));
    let r = get(&gw.url("/pets/500")).await;
    assert_eq!(r.status, 500);
}

#[tokio::test]
async fn json_responses_over_the_limit_are_refused_not_leaked() {
    let (gw, _up) = gateway().await;
    let small = send_body(
        "POST",
        &gw.url("/big"),
        &[("content-type", "application/json")],
        json!({ "data": "d", "x": "secret" }).to_string(),
    )
    .await;
    assert_eq!(small.json(), json!({ "data": "d" }));

    let big = json!({ "data": "a".repeat(11 << 20), "x": "secret" }).to_string();
    let r = send_body(
        "POST",
        &gw.url("/big"),
        &[("content-type", "application/json")],
        big,
    )
    .await;
    r.assert_problem(502);
    assert!(!r.body.contains("secret"));
}

#[tokio::test]
async fn mock_responses_are_transformed() {
    let (gw, _up) = gateway().await;
    let r = get(&gw.url("/mocked")).await;
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(header(&r.headers, "x-mocked"), Some("yes"));
    assert_eq!(
        r.json(),
        json!({ "id": 1, "name": "Rex", "ownerRef": { "name": "Ann" } })
    );
    let head = send("HEAD", &gw.url("/mocked"), &[]).await;
    assert_eq!((head.status.as_u16(), head.body.as_str()), (203, ""));
}

#[test]
fn missing_transform_variables_are_named_at_start_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_test-gateway"))
        .arg("transforms")
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .env_remove("BACKEND_URL")
        .env_remove("TRANSFORM_SOURCE")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run test-gateway: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("missing environment variables: BACKEND_URL, TRANSFORM_SOURCE"),
        "{stderr}"
    );
}

#[test]
fn the_published_response_schema_shows_the_edits() {
    let out = compile(&[root().join("specs/accepted/transforms.yaml")], None, None);
    let model = out
        .model
        .unwrap_or_else(|| panic!("{}", out.diagnostics.render_human(&out.sources)));
    let published = |id: &str| {
        model
            .operations
            .iter()
            .find(|o| o.id == id)
            .and_then(|o| o.published_response_schema.clone())
    };
    assert_eq!(
        published("replacePet"),
        Some(json!({
            "type": "object",
            "required": ["id", "name", "links"],
            "properties": {
                "id": { "type": "integer" },
                "name": { "type": "string" },
                "tags": {
                    "type": "array",
                    "items": { "type": "object", "properties": { "label": { "type": "string" } } }
                },
                "owner": { "type": "object", "properties": { "name": { "type": "string" } } },
                "links": {
                    "type": "object",
                    "properties": { "self": { "type": "string" } },
                    "required": ["self"]
                }
            }
        }))
    );
    // No response body transform, nothing to publish beyond the spec.
    assert_eq!(published("createPet"), None);
}
