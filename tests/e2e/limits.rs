//! Traffic-control tier: the `limits` accepted spec served by two gateway processes that
//! share one real `redis-server`, under concurrent load from several clients.

use std::time::{Duration, Instant};

use crate::support::{Gateway, Redis, Reply, TempDir, Upstream, header, new_key, send};

struct Replicas {
    gws: [Gateway; 2],
    up: Upstream,
    redis: Redis,
    key: String,
    _dir: TempDir,
}

async fn replicas(name: &str) -> Replicas {
    let dir = TempDir::new(name);
    let keys_file = dir.0.join("keys.toml");
    let key = new_key(&keys_file, "alice", "gold");
    let redis = Redis::start();
    let up = Upstream::start().await;
    let env = [
        ("BACKEND_URL", up.url()),
        ("KEYS_FILE", keys_file.to_string_lossy().into_owned()),
        ("REDIS_URL", redis.url()),
    ];
    let gws = [
        Gateway::start("limits", &env),
        Gateway::start("limits", &env),
    ];
    Replicas {
        gws,
        up,
        redis,
        key,
        _dir: dir,
    }
}

/// Sends with a deadline: a limit must never leave a request hanging.
async fn timed(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    tokio::time::timeout(Duration::from_secs(5), send(method, url, headers))
        .await
        .unwrap_or_else(|_| panic!("{method} {url} hung"))
}

#[tokio::test]
async fn two_replicas_admit_exactly_the_quota_in_total() {
    let r = replicas("quota").await;
    // 8 clients x 40 requests, alternating between the replicas, against gold's 150/day.
    let mut tasks = Vec::new();
    for client in 0..8 {
        let urls = [r.gws[0].url("/pets"), r.gws[1].url("/pets")];
        let key = r.key.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..40 {
                let url = &urls[(client + i) % 2];
                let reply = timed("GET", url, &[("x-api-key", &key)]).await;
                seen.push(reply);
            }
            seen
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        for reply in t.await.unwrap_or_else(|e| panic!("client: {e}")) {
            match reply.status.as_u16() {
                200 => {
                    ok += 1;
                    assert!(
                        header(&reply, "ratelimit-policy").contains("\"gold\""),
                        "{:?}",
                        reply.headers
                    );
                    assert!(
                        !header(&reply, "ratelimit").is_empty(),
                        "{:?}",
                        reply.headers
                    );
                }
                429 => {
                    limited += 1;
                    reply.assert_problem(429);
                    let retry: u64 = header(&reply, "retry-after")
                        .parse()
                        .unwrap_or_else(|_| panic!("Retry-After: {:?}", reply.headers));
                    assert!((1..=86_400).contains(&retry), "{retry}");
                }
                other => panic!("unexpected {other}: {}", reply.body),
            }
        }
    }
    assert_eq!(
        (ok, limited),
        (150, 170),
        "accepted {ok}, limited {limited}"
    );
    assert_eq!(r.up.count(), 150, "the upstream saw refused requests");
}

#[tokio::test]
async fn anonymous_traffic_is_limited_per_ip_and_routes_per_header() {
    let r = replicas("anonymous").await;
    // free: 2 per minute for anonymous clients, across both replicas.
    let a = timed("GET", &r.gws[0].url("/catalogue"), &[]).await;
    let b = timed("GET", &r.gws[1].url("/catalogue"), &[]).await;
    let c = timed("GET", &r.gws[0].url("/catalogue"), &[]).await;
    assert_eq!(
        (a.status.as_u16(), b.status.as_u16()),
        (200, 200),
        "{} {}",
        a.body,
        b.body
    );
    c.assert_problem(429);
    // A client cannot escape by claiming another address: the peer is not a trusted proxy.
    let d = timed(
        "GET",
        &r.gws[1].url("/catalogue"),
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await;
    d.assert_problem(429);
}

#[tokio::test]
async fn failed_credentials_spend_the_anonymous_plan() {
    let r = replicas("guessing").await;
    // free: 2 per minute per address; wrong keys count as anonymous requests.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let guess = format!("gwk_00000000000{i}_{}", "x".repeat(43));
        let reply = timed("GET", &r.gws[i % 2].url("/pets"), &[("x-api-key", &guess)]).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 429]);
    // The real key still works: the consumer has its own plan.
    let ok = timed("GET", &r.gws[0].url("/pets"), &[("x-api-key", &r.key)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn route_limits_count_per_header_on_top_of_the_plan() {
    let r = replicas("route").await;
    let key = r.key.clone();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let gw = &r.gws[i % 2];
        let reply = timed(
            "GET",
            &gw.url("/search"),
            &[("x-api-key", &key), ("x-tenant", "acme")],
        )
        .await;
        statuses.push(reply.status.as_u16());
    }
    // gold allows far more; the route's 3/min per tenant is what bites.
    assert_eq!(statuses, [200, 200, 200, 429]);
    let other = timed(
        "GET",
        &r.gws[0].url("/search"),
        &[("x-api-key", &key), ("x-tenant", "globex")],
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.body);
    let policy = header(&other, "ratelimit-policy");
    assert!(
        policy.contains("\"gold\"") && policy.contains("\"route\""),
        "{policy}"
    );
}

#[tokio::test]
async fn redis_down_denies_quickly_and_limits_resume_when_it_returns() {
    let mut r = replicas("outage").await;
    let key = r.key.clone();
    let ok = timed("GET", &r.gws[0].url("/pets"), &[("x-api-key", &key)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let port = r.redis.port;
    r.redis.kill();
    // on_error: deny, timeout 200ms: 503 problem+json, quickly, on both replicas.
    for gw in &r.gws {
        let started = Instant::now();
        let down = timed("GET", &gw.url("/pets"), &[("x-api-key", &key)]).await;
        down.assert_problem(503);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    r.redis = Redis::start_on(port);
    let mut resumed = false;
    for _ in 0..100 {
        let reply = timed("GET", &r.gws[1].url("/pets"), &[("x-api-key", &key)]).await;
        if reply.status == 200 {
            assert!(header(&reply, "ratelimit-policy").contains("\"gold\""));
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "limits did not resume after Redis came back");
}
