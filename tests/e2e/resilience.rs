//! Run tier: an upstream that stays up when its targets do not. Three targets behind one
//! upstream (one answering 503 to everything, one refusing connections, one good): every
//! GET gets its 200 through retries, the refusing target is ejected after five failures in
//! a row, the targets see exactly the tries expected and retries stay within the budget; a
//! POST is never retried. And a circuit breaker that refuses the third concurrent request.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::support::{Gateway, Upstream, get, poll, send};

/// A mock upstream on 127.0.0.1 that answers 503 to every request, and the method of each
/// request it saw.
async fn always_503() -> (String, Arc<Mutex<Vec<String>>>) {
    let (listener, addr) = crate::support::loopback().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    if let Ok(mut l) = log.lock() {
                        l.push(req.method().to_string());
                    }
                    async move {
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"down")));
                        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// A URL on 127.0.0.1 where nothing listens: connections are refused.
async fn refusing() -> String {
    let (listener, addr) = crate::support::loopback().await;
    drop(listener);
    format!("http://{addr}")
}

fn methods(seen: &Arc<Mutex<Vec<String>>>, method: &str) -> usize {
    seen.lock()
        .map(|s| s.iter().filter(|m| *m == method).count())
        .unwrap_or(0)
}

/// The `gateway.upstream.attempts` of every access-log line of operation `op`, once there
/// are `n` of them (waits up to 5 s for the log to be written).
async fn attempts(gw: &Gateway, op: &str, n: usize) -> Vec<u64> {
    let found = poll(Duration::from_secs(5), || {
        let lines: Vec<u64> = gw
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["gateway.operation"] == op)
            .filter_map(|v| v["gateway.upstream.attempts"].as_u64())
            .collect();
        (lines.len() >= n).then_some(lines)
    })
    .await;
    found.unwrap_or_else(|| panic!("fewer than {n} access-log lines for {op}"))
}

#[tokio::test]
async fn retries_and_ejection_keep_every_get_answered_and_posts_are_not_retried() {
    let (failing_url, failing) = always_503().await;
    let good = Upstream::start().await;
    let slow = Upstream::start().await;
    let gw = Gateway::start(
        "resilience",
        &[
            ("FAILING_URL", failing_url),
            ("REFUSING_URL", refusing().await),
            ("GOOD_URL", good.url()),
            ("SLOW_URL", slow.url()),
            ("GATEWAY_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ],
    );
    for i in 0..300 {
        let r = get(&gw.url(&format!("/items/{i}"))).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    // Each request ends at the good target, once.
    assert_eq!(good.count(), 300);
    // Round robin over [failing, refusing, good] gives the failing target the first try
    // of one request in three, and no retry ever goes to it (a retry goes to the next
    // target in the list: from the failing one to the refusing one while it is in, and
    // to the good one after).
    let at_failing = methods(&failing, "GET");
    assert_eq!(at_failing, 100);
    let tries: u64 = attempts(&gw, "getItem", 300).await.iter().sum();
    let retries = tries - 300;
    // What neither answering target saw went to the refusing one: five connection
    // failures in a row, which ejected it for 30 s, longer than this test.
    let at_refusing = tries - 300 - at_failing as u64;
    assert_eq!(
        at_refusing, 5,
        "{tries} tries, {at_failing} at the failing target"
    );
    assert_eq!(retries, 105);
    // The budget: 50% of the requests plus 3 a second over 10 seconds.
    assert!(retries <= 300 / 2 + 30, "{retries} retries");
    let metrics = get(&gw.admin_url("/metrics")).await;
    let counted = metrics
        .body
        .lines()
        .find(|l| {
            l.starts_with("gateway_upstream_retries_total{") && l.contains("upstream=\"pool\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(counted, Some(105.0), "{}", metrics.body);

    // A POST is never retried: the failing target's 503 is the client's.
    let r = send("POST", &gw.url("/orders"), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(methods(&failing, "POST"), 1);
    let posts_at_good = || {
        good.seen
            .lock()
            .map(|s| s.iter().filter(|r| r.method == "POST").count())
            .unwrap_or(0)
    };
    assert_eq!(posts_at_good(), 0, "the POST was retried");
    // The next one goes to the good target, round robin.
    let r = send("POST", &gw.url("/orders"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(posts_at_good(), 1);
    // A GET on the same upstream is retried.
    let r = get(&gw.url("/orders")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let line = attempts(&gw, "listOrders", 1).await;
    assert_eq!(
        line,
        [2],
        "the GET went to the failing target, then the good one"
    );
}

#[tokio::test]
async fn an_open_breaker_answers_503_with_retry_after() {
    let (failing_url, _) = always_503().await;
    let good = Upstream::start().await;
    let slow = Upstream::start().await;
    let gw = Gateway::start(
        "resilience",
        &[
            ("FAILING_URL", failing_url),
            ("REFUSING_URL", refusing().await),
            ("GOOD_URL", good.url()),
            ("SLOW_URL", slow.url()),
        ],
    );
    let url = gw.url("/slow/1000");
    let first = tokio::spawn({
        let url = url.clone();
        async move { get(&url).await }
    });
    let second = tokio::spawn({
        let url = url.clone();
        async move { get(&url).await }
    });
    // Both are in flight at the slow upstream.
    let arrived = poll(Duration::from_secs(5), || (slow.count() == 2).then_some(())).await;
    assert!(arrived.is_some(), "the two slow requests did not arrive");
    let third = get(&url).await;
    third.assert_problem(503);
    assert_eq!(
        third
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(slow.count(), 2, "the refused request reached the upstream");
    for handle in [first, second] {
        let r = handle.await.unwrap_or_else(|e| panic!("join: {e}"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Once they are done (their response bodies dropped by the gateway, a moment after
    // the client read them), requests go through again.
    let mut status = 0;
    for _ in 0..20 {
        status = get(&gw.url("/slow/1")).await.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}
