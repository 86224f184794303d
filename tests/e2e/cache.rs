//! Run tier: the response cache (`x-gateway.cache`), against a real gateway process and an
//! upstream that counts what reaches it: hits and `Age`, HEAD from a stored GET, coalesced
//! misses, answers kept apart by consumer and by the declared `vary` headers, what the
//! upstream forbids to store, stale answers standing in for a failing upstream, and
//! `Cache-Status` on every answer of a cached operation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::support::{Gateway, Reply, TempDir, new_key, send};

/// An upstream that answers every GET with a JSON body naming the path, the call number
/// for that path, and the request's `X-Echo` and `Accept-Language`; `?delay=MS` answers
/// late, `?cc=VALUE` sets `Cache-Control`; while `failing`, it answers 503.
#[derive(Debug, Clone)]
struct Counting {
    addr: SocketAddr,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    /// Milliseconds every answer waits.
    delay: Arc<std::sync::atomic::AtomicU64>,
}

impl Counting {
    async fn start() -> Counting {
        let (listener, addr) = crate::support::loopback().await;
        let up = Counting {
            addr,
            calls: Arc::default(),
            total: Arc::default(),
            failing: Arc::default(),
            delay: Arc::default(),
        };
        let served = up.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let up = served.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| up.clone().answer(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        up
    }

    async fn answer(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let n = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let n = calls.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.total.fetch_add(1, Ordering::SeqCst);
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let delay = query
            .get("delay")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.delay.load(Ordering::SeqCst));
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let body = serde_json::json!({
            "path": path,
            "call": n,
            "echo": header("x-echo"),
            "lang": header("accept-language"),
        })
        .to_string();
        let mut resp = Response::builder()
            .header("content-type", "application/json")
            .header("x-upstream", "yes");
        if self.failing.load(Ordering::SeqCst) {
            resp = resp.status(503);
        }
        if let Some(cc) = query.get("cc") {
            resp = resp.header("cache-control", cc.replace("%20", " "));
        }
        Ok(resp
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|e| panic!("{e}")))
    }

    fn calls(&self, path: &str) -> usize {
        self.calls
            .lock()
            .map(|c| c.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

struct Setup {
    up: Counting,
    gw: Gateway,
    alice: String,
    bob: String,
    _keys: TempDir,
}

async fn setup(name: &str) -> Setup {
    let up = Counting::start().await;
    let keys = TempDir::new(name);
    let file = keys.0.join("keys.toml");
    let alice = new_key(&file, "alice", "basic");
    let bob = new_key(&file, "bob", "basic");
    let gw = Gateway::start(
        "cache",
        &[
            ("CACHE_UPSTREAM_URL", format!("http://{}", up.addr)),
            ("CACHE_KEYS", file.display().to_string()),
        ],
    );
    Setup {
        up,
        gw,
        alice,
        bob,
        _keys: keys,
    }
}

fn cache_status(r: &Reply) -> String {
    r.headers
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn get(s: &Setup, path: &str, headers: &[(&str, &str)]) -> Reply {
    send("GET", &s.gw.url(path), headers).await
}

#[tokio::test]
async fn a_second_get_is_a_hit_and_head_is_answered_from_it() {
    let s = setup("cache-hit").await;
    let first = get(&s, "/items/1?a=1&b=2", &[]).await;
    assert_eq!(first.status.as_u16(), 200);
    assert_eq!(cache_status(&first), "gatewayc; fwd=miss; stored");
    // The same query in another order is the same entry.
    let second = get(&s, "/items/1?b=2&a=1", &[]).await;
    assert_eq!(second.status.as_u16(), 200);
    assert!(
        cache_status(&second).starts_with("gatewayc; hit; ttl="),
        "{}",
        cache_status(&second)
    );
    assert_eq!(second.body, first.body);
    assert_eq!(
        second
            .headers
            .get("x-upstream")
            .and_then(|v| v.to_str().ok()),
        Some("yes"),
        "the stored answer keeps the upstream's headers"
    );
    let age: u64 = second
        .headers
        .get("age")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(age < 5, "age {age}");
    let head = send("HEAD", &s.gw.url("/items/1?a=1&b=2"), &[]).await;
    assert_eq!(head.status.as_u16(), 200);
    assert!(head.body.is_empty());
    assert!(
        cache_status(&head).contains("hit"),
        "{}",
        cache_status(&head)
    );
    assert_eq!(s.up.calls("/items/1"), 1);
    // An operation without `cache` says nothing about the cache.
    let plain = get(&s, "/plain", &[]).await;
    assert!(plain.headers.get("cache-status").is_none());
}

#[tokio::test]
async fn concurrent_misses_for_one_key_reach_the_upstream_once() {
    let s = setup("cache-coalesce").await;
    let url = s.gw.url("/items/slow?delay=300");
    let all = (0..20).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { send("GET", &url, &[]).await })
    });
    let mut bodies = Vec::new();
    for r in all {
        let r = r.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status.as_u16(), 200);
        bodies.push(r.body);
    }
    assert_eq!(s.up.calls("/items/slow"), 1);
    assert!(bodies.iter().all(|b| *b == bodies[0]));
}

#[tokio::test]
async fn one_consumer_never_receives_another_s_answer() {
    let s = setup("cache-consumers").await;
    let as_alice = [("x-api-key", s.alice.as_str()), ("x-echo", "alice")];
    let as_bob = [("x-api-key", s.bob.as_str()), ("x-echo", "bob")];
    let a1 = get(&s, "/mine", &as_alice).await;
    let b1 = get(&s, "/mine", &as_bob).await;
    let a2 = get(&s, "/mine", &as_alice).await;
    let b2 = get(&s, "/mine", &as_bob).await;
    for (r, who) in [(&a1, "alice"), (&b1, "bob"), (&a2, "alice"), (&b2, "bob")] {
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        assert_eq!(r.json()["echo"], who, "{}", r.body);
    }
    assert!(cache_status(&a2).contains("hit"));
    assert!(cache_status(&b2).contains("hit"));
    assert_eq!(s.up.calls("/mine"), 2);
    // Without a key there is no consumer: refused before the cache is looked at.
    let anonymous = get(&s, "/mine", &[]).await;
    assert_eq!(anonymous.status.as_u16(), 401);
    assert_eq!(s.up.calls("/mine"), 2);
}

#[tokio::test]
async fn declared_vary_headers_split_entries_and_other_headers_do_not() {
    let s = setup("cache-vary").await;
    let en = get(&s, "/items/v", &[("accept-language", "en")]).await;
    let fr = get(&s, "/items/v", &[("accept-language", "fr")]).await;
    let en2 = get(
        &s,
        "/items/v",
        &[("accept-language", "en"), ("x-echo", "other")],
    )
    .await;
    assert_eq!(en.json()["lang"], "en");
    assert_eq!(fr.json()["lang"], "fr");
    assert_eq!(en2.json()["lang"], "en");
    assert!(cache_status(&en2).contains("hit"));
    assert_eq!(s.up.calls("/items/v"), 2);
}

#[tokio::test]
async fn what_the_upstream_or_the_client_forbids_is_not_stored() {
    let s = setup("cache-forbid").await;
    for cc in ["no-store", "private", "no-cache", "max-age=0"] {
        let path = format!("/items/{cc}?cc={cc}");
        let first = get(&s, &path, &[]).await;
        let second = get(&s, &path, &[]).await;
        assert_eq!(first.status.as_u16(), 200);
        assert_eq!(
            cache_status(&second),
            "gatewayc; fwd=uri-miss; detail=uncacheable",
            "{cc}"
        );
        assert_eq!(s.up.calls(&format!("/items/{cc}")), 2, "{cc}");
    }
    // A client's Authorization on a public operation: neither served nor stored.
    let auth = [("authorization", "Bearer something")];
    let _ = get(&s, "/items/auth", &auth).await;
    let r = get(&s, "/items/auth", &auth).await;
    assert_eq!(
        cache_status(&r),
        "gatewayc; fwd=bypass; detail=authorization"
    );
    assert_eq!(s.up.calls("/items/auth"), 2);
    // A client's no-cache goes upstream and refreshes the entry.
    let _ = get(&s, "/items/fresh", &[]).await;
    let refreshed = get(&s, "/items/fresh", &[("cache-control", "no-cache")]).await;
    assert_eq!(cache_status(&refreshed), "gatewayc; fwd=request; stored");
    assert_eq!(refreshed.json()["call"], 2);
    let hit = get(&s, "/items/fresh", &[]).await;
    assert_eq!(hit.json()["call"], 2);
    assert_eq!(s.up.calls("/items/fresh"), 2);
}

#[tokio::test]
async fn a_stale_answer_stands_in_while_the_upstream_fails() {
    let s = setup("cache-stale").await;
    let first = get(&s, "/flaky", &[]).await;
    assert_eq!(first.json()["call"], 1);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    s.up.failing.store(true, Ordering::SeqCst);
    let stale = get(&s, "/flaky", &[]).await;
    assert_eq!(stale.status.as_u16(), 200);
    assert_eq!(stale.json()["call"], 1);
    assert!(
        cache_status(&stale).ends_with("detail=stale-if-error"),
        "{}",
        cache_status(&stale)
    );
    s.up.failing.store(false, Ordering::SeqCst);
    let renewed = get(&s, "/flaky", &[]).await;
    assert_eq!(cache_status(&renewed), "gatewayc; fwd=stale; stored");
    assert_eq!(renewed.json()["call"], 3);
}

#[tokio::test]
async fn one_request_refreshes_a_stale_answer_while_the_others_get_it_at_once() {
    let s = setup("cache-swr").await;
    assert_eq!(get(&s, "/swr", &[]).await.json()["call"], 1);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    s.up.delay.store(600, Ordering::SeqCst);
    let url = s.gw.url("/swr");
    let refresher = tokio::spawn(async move { send("GET", &url, &[]).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = std::time::Instant::now();
    let meanwhile = get(&s, "/swr", &[]).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the stale answer took {:?}",
        started.elapsed()
    );
    assert_eq!(meanwhile.json()["call"], 1);
    assert!(
        cache_status(&meanwhile).ends_with("detail=stale-while-revalidate"),
        "{}",
        cache_status(&meanwhile)
    );
    let refreshed = refresher.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cache_status(&refreshed), "gatewayc; fwd=stale; stored");
    assert_eq!(refreshed.json()["call"], 2);
    s.up.delay.store(0, Ordering::SeqCst);
    let after = get(&s, "/swr", &[]).await;
    assert!(
        cache_status(&after).contains("hit; ttl="),
        "{}",
        cache_status(&after)
    );
    assert_eq!(after.json()["call"], 2);
    assert_eq!(s.up.calls("/swr"), 2);
}
