//! Request validation against a real gateway process (`specs/accepted/validation.yaml`):
//! what a client is told about a request that breaks its schemas, that such a request never
//! reaches the upstream, and that valid ones do, unchanged.

use serde_json::{Value, json};

use crate::support::{Gateway, Upstream, poll, send, send_body};

const TENANT: (&str, &str) = ("x-tenant", "3fa85f64-5717-4562-b3fc-2c963f66afa6");
const JSON: (&str, &str) = ("content-type", "application/json");

async fn gateway() -> (Gateway, Upstream) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        "validation",
        &[
            ("BACKEND_URL", up.url()),
            ("GATEWAY_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ],
    );
    (gw, up)
}

/// The `errors` of a 400 as (in, name, pointer, detail) tuples.
fn errors(body: &Value) -> Vec<(String, String, String, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no `errors` in {body}"))
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("in"), s("name"), s("pointer"), s("detail"))
        })
        .collect()
}

fn tuple(a: &str, b: &str, c: &str, d: &str) -> (String, String, String, String) {
    (a.into(), b.into(), c.into(), d.into())
}

#[tokio::test]
async fn parameters_are_decoded_by_style_and_checked() {
    let (gw, up) = gateway().await;
    let ok = "/pets?limit=5&status=sold&tags=ab&tags=cd&ids=1,2&filter[age]=3&filter[kind]=cat";
    let r = send(
        "GET",
        &gw.url(ok),
        &[TENANT, ("cookie", "session=0badcafe")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        up.last().path_and_query,
        ok,
        "forwarded as the client sent it"
    );

    let before = up.count();
    for (query, cookie, pointer_detail) in [
        ("limit=abc", "", ("limit", "", "must be of type integer")),
        ("limit=0", "", ("limit", "", "must be at least 1")),
        ("limit=1.5", "", ("limit", "", "must be of type integer")),
        (
            "status=bogus",
            "",
            ("status", "", "must be one of the allowed values"),
        ),
        (
            "tags=a",
            "",
            ("tags", "/0", "must be at least 2 characters long"),
        ),
        (
            "tags=aa&tags=bb&tags=cc&tags=dd",
            "",
            ("tags", "", "must have at most 3 elements"),
        ),
        ("ids=1,x", "", ("ids", "/1", "must be of type integer")),
        (
            "filter[age]=-1",
            "",
            ("filter", "/age", "must be at least 0"),
        ),
        (
            "filter[color]=red",
            "",
            ("filter", "/color", "the member is not allowed"),
        ),
        (
            "",
            "session=XYZ",
            ("session", "", "must match the pattern `^[a-f0-9]{8}$`"),
        ),
    ] {
        let mut headers = vec![TENANT];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie));
        }
        let r = send("GET", &gw.url(&format!("/pets?{query}")), &headers).await;
        r.assert_problem(400);
        let (name, pointer, detail) = pointer_detail;
        let location = if cookie.is_empty() { "query" } else { "cookie" };
        assert_eq!(
            errors(&r.json()),
            [tuple(location, name, pointer, detail)],
            "{query} {cookie}"
        );
    }
    assert_eq!(
        up.count(),
        before,
        "an invalid request reached the upstream"
    );

    // Every violation is listed, parameters in declaration order, with its location.
    let r = send(
        "GET",
        &gw.url("/pets?limit=abc&status=bogus"),
        &[("x-tenant", "not-a-uuid")],
    )
    .await;
    r.assert_problem(400);
    let body = r.json();
    assert_eq!(
        body["detail"],
        "the request does not match the operation's schema: 3 errors"
    );
    assert_eq!(
        errors(&body),
        [
            tuple("query", "limit", "", "must be of type integer"),
            tuple("query", "status", "", "must be one of the allowed values"),
            tuple("header", "X-Tenant", "", "must be a valid uuid"),
        ]
    );
    let line = gw
        .access_line(body["request_id"].as_str().unwrap_or_default())
        .await;
    assert_eq!(line["error.type"], "invalid_request", "{line}");

    let r = send("GET", &gw.url("/pets"), &[]).await;
    r.assert_problem(400);
    assert_eq!(
        errors(&r.json()),
        [tuple("header", "X-Tenant", "", "is required")]
    );
    assert_eq!(up.count(), before);
}

#[tokio::test]
async fn path_parameters_are_checked_beyond_their_type() {
    let (gw, up) = gateway().await;
    let before = up.count();
    let r = send_body(
        "PUT",
        &gw.url("/pets/0"),
        &[JSON],
        r#"{"name":"Rex","age":1}"#,
    )
    .await;
    r.assert_problem(400);
    assert_eq!(
        errors(&r.json()),
        [tuple("path", "id", "", "must be at least 1")]
    );
    assert_eq!(up.count(), before);
    let r = send_body(
        "PUT",
        &gw.url("/pets/7"),
        &[JSON],
        r#"{"name":"Rex","age":1}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn json_bodies_are_checked_once_and_transformed_from_the_same_parse() {
    let (gw, up) = gateway().await;
    // Valid: forwarded, with the transform's rename applied.
    let r = send_body(
        "POST",
        &gw.url("/pets"),
        &[JSON],
        r#"{"name":"Rex","age":3,"tags":["a","b"],"owner":{"email":"ada@example.com"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"title": "Rex", "age": 3, "tags": ["a", "b"], "owner": {"email": "ada@example.com"}})
    );

    let before = up.count();
    let r = send_body(
        "POST",
        &gw.url("/pets"),
        &[JSON],
        r#"{"name":"","age":-1,"tags":["a","a"],"owner":{"email":"nobody"},"extra":1}"#,
    )
    .await;
    r.assert_problem(400);
    let mut got = errors(&r.json());
    got.sort();
    let mut want = vec![
        tuple("body", "", "/name", "must be at least 1 characters long"),
        tuple("body", "", "/age", "must be at least 0"),
        tuple("body", "", "/tags", "elements 0 and 1 are equal"),
        tuple("body", "", "/owner/email", "must be a valid email"),
        tuple("body", "", "/extra", "the member is not allowed"),
    ];
    want.sort();
    assert_eq!(got, want);

    // A missing required member is reported at the object that lacks it.
    let r = send_body("POST", &gw.url("/pets"), &[JSON], r#"{"name":"Rex"}"#).await;
    assert_eq!(
        errors(&r.json()),
        [tuple("body", "", "", "the member `age` is required")]
    );
    // No body at all, where one is required.
    let r = send("POST", &gw.url("/pets"), &[JSON]).await;
    r.assert_problem(400);
    assert_eq!(errors(&r.json()), [tuple("body", "", "", "is required")]);
    // Not JSON.
    let r = send_body("POST", &gw.url("/pets"), &[JSON], "{name: Rex").await;
    r.assert_problem(400);
    assert!(
        r.json()["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("the request body is not valid JSON")),
        "{}",
        r.body
    );
    // Another media type, where only JSON is declared: 415.
    let r = send_body(
        "POST",
        &gw.url("/pets"),
        &[("content-type", "text/plain")],
        "Rex",
    )
    .await;
    r.assert_problem(415);
    assert_eq!(
        r.headers.get("accept-post").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(up.count(), before, "an invalid body reached the upstream");

    // An operation that declares text too lets text through unchecked; JSON is checked.
    let r = send_body(
        "PUT",
        &gw.url("/pets/3"),
        &[("content-type", "text/plain")],
        "Rex",
    )
    .await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "Rex"));
    let r = send_body("PUT", &gw.url("/pets/3"), &[JSON], r#"{"age":"old"}"#).await;
    r.assert_problem(400);
    assert_eq!(errors(&r.json()).len(), 2, "{}", r.body);
}

#[tokio::test]
async fn validate_none_forwards_what_the_schema_forbids() {
    let (gw, _up) = gateway().await;
    let r = send_body("POST", &gw.url("/raw"), &[JSON], r#"{"name":5}"#).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, r#"{"name":5}"#));
}

#[tokio::test]
async fn answers_that_break_their_schema_are_reported_not_changed() {
    let (gw, _up) = gateway().await;
    let r = send("GET", &gw.url("/status/200"), &[]).await;
    assert_eq!(r.status, 200);
    // `{"status": 503, "internal": true}` lacks the `title` the default response requires.
    let r = send("GET", &gw.url("/status/503"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({"status": 503, "internal": true}),
        "unchanged"
    );
    let logged = poll(std::time::Duration::from_secs(5), || {
        let text = gw.stderr_text();
        text.contains("an answer breaks its response schema")
            .then_some(text)
    })
    .await
    .unwrap_or_else(|| panic!("no warning logged:\n{}", gw.stderr_text()));
    let line = logged
        .lines()
        .find(|l| l.contains("an answer breaks its response schema"))
        .unwrap_or_default();
    assert!(
        line.contains("operation=\"status\"") || line.contains("operation=status"),
        "{line}"
    );
    assert!(line.contains("the member `title` is required"), "{line}");
    assert_eq!(
        logged
            .matches("an answer breaks its response schema")
            .count(),
        1,
        "the valid 200 was reported too:\n{logged}"
    );
    let metrics = send("GET", &gw.admin_url("/metrics"), &[]).await.body;
    assert!(
        metrics.contains("gateway_response_schema_violations_total{operation=\"status\"} 1"),
        "{metrics}"
    );
}

/// A JSON body that arrives in pieces is read whole, under the operation's timeout
/// (`timeout: 5s` in the spec): one finished after a pause is checked and forwarded; one
/// that never finishes is answered 408, and nothing reaches the upstream.
#[tokio::test]
async fn a_body_arriving_late_is_awaited_within_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, up) = gateway().await;
    let body = r#"{"name":"Rex","age":3}"#;
    let head = format!(
        "POST /pets HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(8);

    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(format!("{head}{first}").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""title":"Rex""#), "{answer}");

    let before = up.count();
    let started = std::time::Instant::now();
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(format!("{head}{first}").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        s.read_to_string(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "no answer within 20 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    assert_eq!(up.count(), before);
}
