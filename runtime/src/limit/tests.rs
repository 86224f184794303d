//! Limiter tests: the same behaviour checked against the memory store and a real
//! `redis-server`, plus Redis outages, restarts and concurrent replicas.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::gateway::Window;
use crate::test_redis::RedisServer;

/// The Redis timeout of every Redis definition here.
const TIMEOUT: Duration = Duration::from_millis(200);
/// The longest any check may take: the timeout, with room for a loaded machine.
const BOUND: Duration = Duration::from_millis(1_000);

static MEMORY: LimitsDef = LimitsDef {
    store: LimitStoreDef::Memory,
    default_plan: None,
    anonymous_plan: None,
    trusted_proxies: &["10.0.0.0/8"],
};

const fn redis_def(on_error: OnError) -> LimitsDef {
    LimitsDef {
        store: LimitStoreDef::Redis {
            url: "${REDIS_URL}",
            on_error,
            timeout: TIMEOUT,
        },
        default_plan: None,
        anonymous_plan: None,
        trusted_proxies: &[],
    }
}

static REDIS_DENY: LimitsDef = redis_def(OnError::Deny);
static REDIS_ALLOW: LimitsDef = redis_def(OnError::Allow);
static REDIS_LOCAL: LimitsDef = redis_def(OnError::Local);

static DAY_1: [QuotaDef; 1] = [QuotaDef {
    limit: 1,
    window: Window::Day,
}];
static DAY_2: [QuotaDef; 1] = [QuotaDef {
    limit: 2,
    window: Window::Day,
}];
static DAY_3: [QuotaDef; 1] = [QuotaDef {
    limit: 3,
    window: Window::Day,
}];
static DAY_5: [QuotaDef; 1] = [QuotaDef {
    limit: 5,
    window: Window::Day,
}];
static DAY_100: [QuotaDef; 1] = [QuotaDef {
    limit: 100,
    window: Window::Day,
}];

fn rate(limit: u64, period: Duration, burst: u64) -> RateDef {
    RateDef {
        limit,
        period,
        burst,
    }
}

const HOUR: Duration = Duration::from_secs(3_600);

fn check<'a>(
    policy: &'static str,
    key: &'a str,
    rate: Option<RateDef>,
    quotas: &'static [QuotaDef],
) -> Check<'a> {
    Check {
        policy,
        key,
        rate,
        quotas,
    }
}

fn vars(url: &str) -> impl Fn(&str) -> Option<String> + use<> {
    let url = url.to_owned();
    move |name| (name == "REDIS_URL").then(|| url.clone())
}

async fn memory() -> Limiter {
    Limiter::new(&MEMORY, &|_| None).await.unwrap()
}

async fn redis(def: &'static LimitsDef, url: &str) -> Limiter {
    Limiter::new(def, &vars(url)).await.unwrap()
}

/// A key no other test uses, so tests sharing a store do not meet.
fn fresh(name: &str) -> String {
    format!("{name}-{:016x}", fastrand::u64(..))
}

fn header(headers: &[(HeaderName, HeaderValue)], name: &HeaderName) -> String {
    let found = headers.iter().find(|(n, _)| n == name);
    found.map_or_else(String::new, |(_, v)| v.to_str().unwrap().to_owned())
}

/// `RateLimit` of an allowed or limited decision.
fn current(decision: &Decision) -> String {
    match decision {
        Decision::Allowed(h) | Decision::Limited { headers: h, .. } => header(h, &RATELIMIT),
        Decision::Unavailable => panic!("unavailable"),
    }
}

fn is_allowed(decision: &Decision) -> bool {
    matches!(decision, Decision::Allowed(_))
}

async fn timed(limiter: &Limiter, checks: &[Check<'_>]) -> Decision {
    let started = Instant::now();
    let decision = limiter.check(checks).await;
    let took = started.elapsed();
    assert!(took < BOUND, "a check took {took:?}");
    decision
}

/// Seconds until the current UTC day ends; waits for the next day when it is about to end,
/// so that a test's day quota does not roll over under it.
fn day_left() -> u64 {
    let mut left = 86_400 - unix_now().as_secs() % 86_400;
    if left < 15 {
        std::thread::sleep(Duration::from_secs(left + 1));
        left = 86_400 - unix_now().as_secs() % 86_400;
    }
    left
}

// The behaviour both stores share.

/// GCRA: `burst` at once, then one request per interval.
async fn burst_then_rate(limiter: &Limiter) {
    let key = fresh("burst");
    let c = [check(
        "burst",
        &key,
        Some(rate(10, Duration::from_secs(1), 5)),
        &[],
    )];
    for left in (0..5).rev() {
        let d = timed(limiter, &c).await;
        assert!(is_allowed(&d), "{d:?}");
        assert!(
            current(&d).starts_with(&format!("\"burst\";r={left};t=")),
            "{d:?}"
        );
    }
    let d = timed(limiter, &c).await;
    let Decision::Limited {
        retry_after,
        headers,
    } = &d
    else {
        panic!("the 6th request of a burst of 5 was let through: {d:?}");
    };
    assert_eq!(*retry_after, Duration::from_secs(1), "100 ms rounded up");
    assert_eq!(header(headers, &RATELIMIT), "\"burst\";r=0;t=1");
    assert_eq!(header(headers, &RATELIMIT_POLICY), "\"burst\";q=10;w=1");

    // Sustained: about one request per 100 ms, however often the client tries.
    let started = Instant::now();
    let mut allowed = 0u64;
    while started.elapsed() < Duration::from_millis(1_500) {
        if is_allowed(&timed(limiter, &c).await) {
            allowed += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let earned = started.elapsed().as_millis() as u64 / 100;
    assert!(
        allowed <= earned + 1 && allowed + 3 >= earned,
        "{allowed} allowed in {:?}",
        started.elapsed()
    );
}

/// A quota of N admits N in its window, then 429 until the window ends.
async fn quota_admits_exactly_n(limiter: &Limiter) {
    let key = fresh("quota");
    let c = [check("q", &key, None, &DAY_3)];
    let left = day_left();
    for remaining in (0..3).rev() {
        let d = timed(limiter, &c).await;
        assert!(is_allowed(&d), "{d:?}");
        let text = current(&d);
        let t: u64 = text
            .strip_prefix(&format!("\"q-day\";r={remaining};t="))
            .unwrap_or_else(|| panic!("{text}"))
            .parse()
            .unwrap();
        assert!(
            t.abs_diff(left) <= 2,
            "{t} s to the end of the day, not {left}"
        );
    }
    for _ in 0..2 {
        let d = timed(limiter, &c).await;
        let Decision::Limited {
            retry_after,
            headers,
        } = &d
        else {
            panic!("request 4 of a quota of 3: {d:?}");
        };
        assert!(retry_after.as_secs().abs_diff(left) <= 2, "{retry_after:?}");
        assert_eq!(
            header(headers, &RATELIMIT),
            format!("\"q-day\";r=0;t={}", retry_after.as_secs())
        );
        assert_eq!(header(headers, &RATELIMIT_POLICY), "\"q-day\";q=3;w=86400");
    }
}

/// A request refused by one limit counts against none of the others.
async fn refused_burns_nothing(limiter: &Limiter) {
    day_left();
    // The rate refuses: the quota keeps what it had.
    let key = fresh("rate-refuses");
    let slow = Some(rate(1, HOUR, 2));
    let both = [check("p", &key, slow, &DAY_5)];
    assert!(is_allowed(&timed(limiter, &both).await));
    assert!(is_allowed(&timed(limiter, &both).await));
    for _ in 0..3 {
        let d = timed(limiter, &both).await;
        assert!(matches!(d, Decision::Limited { .. }), "{d:?}");
        assert!(current(&d).starts_with("\"p\";r=0;t="), "{d:?}");
    }
    let quota_only = [check("p", &key, None, &DAY_5)];
    let d = timed(limiter, &quota_only).await;
    assert!(
        current(&d).starts_with("\"p-day\";r=2;"),
        "quota burnt: {d:?}"
    );

    // The quota refuses: the rate keeps what it had.
    let key = fresh("quota-refuses");
    let slow = Some(rate(1, HOUR, 3));
    let both = [check("p2", &key, slow, &DAY_1)];
    assert!(is_allowed(&timed(limiter, &both).await));
    for _ in 0..3 {
        let d = timed(limiter, &both).await;
        assert!(current(&d).starts_with("\"p2-day\";r=0;"), "{d:?}");
    }
    let rate_only = [check("p2", &key, slow, &[])];
    let d = timed(limiter, &rate_only).await;
    assert_eq!(current(&d), "\"p2\";r=1;t=7200", "rate burnt");

    // The second of two rates refuses: the first keeps what it had.
    let key = fresh("two-rates");
    let (a, b) = (Some(rate(1, HOUR, 5)), Some(rate(1, HOUR, 1)));
    let two = [check("a", &key, a, &[]), check("b", &key, b, &[])];
    assert!(is_allowed(&timed(limiter, &two).await));
    for _ in 0..3 {
        let d = timed(limiter, &two).await;
        assert_eq!(current(&d), "\"b\";r=0;t=3600", "{d:?}");
    }
    let d = timed(limiter, &[check("a", &key, a, &[])]).await;
    assert_eq!(current(&d), "\"a\";r=3;t=7200", "first rate burnt");
}

/// The headers of a plan with a rate and two quotas, on its first request.
async fn plan_headers(limiter: &Limiter) {
    static QUOTAS: [QuotaDef; 2] = [
        QuotaDef {
            limit: 1_000,
            window: Window::Day,
        },
        QuotaDef {
            limit: 20_000,
            window: Window::Month,
        },
    ];
    let key = fresh("plan");
    let gold = Some(rate(100, Duration::from_secs(60), 100));
    let d = timed(limiter, &[check("gold", &key, gold, &QUOTAS)]).await;
    let Decision::Allowed(headers) = &d else {
        panic!("{d:?}")
    };
    let month = window::span(Window::Month, unix_now().as_secs()).seconds();
    assert_eq!(
        header(headers, &RATELIMIT_POLICY),
        format!(
            "\"gold\";q=100;w=60, \"gold-day\";q=1000;w=86400, \"gold-month\";q=20000;w={month}"
        )
    );
    assert_eq!(header(headers, &RATELIMIT), "\"gold\";r=99;t=1");
    assert_eq!(headers.len(), 2);
}

// Memory store.

#[tokio::test]
async fn memory_rate_bursts_then_sustains() {
    burst_then_rate(&memory().await).await;
}

#[tokio::test]
async fn memory_quota_admits_exactly_n() {
    quota_admits_exactly_n(&memory().await).await;
}

#[tokio::test]
async fn memory_refused_request_burns_nothing() {
    refused_burns_nothing(&memory().await).await;
}

#[tokio::test]
async fn memory_headers() {
    plan_headers(&memory().await).await;
    let limiter = memory().await;
    assert_eq!(limiter.check(&[]).await, Decision::Allowed(Vec::new()));
    let nothing = [check("none", "k", None, &[])];
    assert_eq!(limiter.check(&nothing).await, Decision::Allowed(Vec::new()));
}

#[tokio::test]
async fn memory_evicts_idle_rate_keys() {
    let limiter = memory().await;
    let quick = Some(rate(10, Duration::from_millis(100), 10));
    let keys: Vec<String> = (0..500).map(|i| format!("ip:192.0.2.{i}")).collect();
    for key in &keys {
        assert!(is_allowed(
            &limiter.check(&[check("r", key, quick, &[])]).await
        ));
    }
    assert_eq!(limiter.memory_keys(), 500);
    limiter.evict_idle();
    assert_eq!(limiter.memory_keys(), 500, "evicted while still counting");
    // One request is earned back after 10 ms; a key is idle once its bucket is full.
    tokio::time::sleep(Duration::from_millis(60)).await;
    limiter.evict_idle();
    assert_eq!(limiter.memory_keys(), 0);
    assert!(format!("{limiter:?}").contains("keys: 0"));
}

#[tokio::test]
async fn memory_drops_quota_counters_of_past_windows() {
    let store = MemoryStore::start();
    static MINUTE: [QuotaDef; 1] = [QuotaDef {
        limit: 10,
        window: Window::Minute,
    }];
    let now = unix_now();
    let checks: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for key in &checks {
        let items = items(&[check("m", key, None, &MINUTE)]);
        assert_eq!(store.check(&items, now)[0].refused, None);
    }
    assert_eq!(store.len(), 100);
    store.evict_idle_at(now.as_secs());
    assert_eq!(store.len(), 100, "the window is still on");
    store.evict_idle_at(now.as_secs() + 60);
    assert_eq!(store.len(), 0);
    // A new window starts from zero, even for a counter not yet evicted.
    let items = items(&[check("m", "k", None, &MINUTE)]);
    for _ in 0..10 {
        assert_eq!(store.check(&items, now)[0].refused, None);
    }
    assert!(store.check(&items, now)[0].refused.is_some());
    assert_eq!(
        store.check(&items, now + Duration::from_secs(60))[0].remaining,
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_quota_is_exact_under_concurrency() {
    day_left();
    let limiter = Arc::new(memory().await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let mut allowed = 0;
                for _ in 0..50 {
                    let c = [check(
                        "shared",
                        "everyone",
                        Some(rate(1, HOUR, 1_000)),
                        &DAY_100,
                    )];
                    if is_allowed(&limiter.check(&c).await) {
                        allowed += 1;
                    }
                }
                allowed
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 100);
}

#[test]
fn headers_exact_text() {
    static QUOTAS: [QuotaDef; 2] = [
        QuotaDef {
            limit: 1_000,
            window: Window::Day,
        },
        QuotaDef {
            limit: 20_000,
            window: Window::Month,
        },
    ];
    // 2026-02-10T12:00:00Z: February 2026 has 28 days.
    let now = Duration::from_secs(1_770_724_800);
    let checks = [
        check(
            "gold",
            "alice",
            Some(rate(100, Duration::from_secs(60), 100)),
            &QUOTAS,
        ),
        check(
            "route",
            "ip:192.0.2.1",
            Some(rate(5, Duration::from_millis(500), 2)),
            &[],
        ),
        check(
            "we\"ird\\ é",
            "x",
            Some(rate(3, Duration::from_millis(1_500), 1)),
            &[],
        ),
    ];
    let items = items(&checks);
    let policy = "\"gold\";q=100;w=60, \"gold-day\";q=1000;w=86400, \
                  \"gold-month\";q=20000;w=2419200, \"route\";q=10;w=1, \
                  \"we\\\"ird\\\\ ?\";q=4;w=2";
    let outcome = |item, remaining, reset: u64, refused: Option<u64>| Outcome {
        item,
        remaining,
        reset: Duration::from_millis(reset),
        refused: refused.map(Duration::from_millis),
    };
    // Allowed: the fewest requests left; on a tie, the later reset.
    let allowed = decide(
        &items,
        &[
            outcome(0, 99, 600, None),
            outcome(1, 999, 43_200_000, None),
            outcome(2, 19_999, 1_598_400_000, None),
            outcome(3, 1, 200, None),
            outcome(4, 1, 1_500, None),
        ],
        now,
    );
    let Decision::Allowed(headers) = allowed else {
        panic!("{allowed:?}")
    };
    assert_eq!(header(&headers, &RATELIMIT_POLICY), policy);
    assert_eq!(header(&headers, &RATELIMIT), "\"we\\\"ird\\\\ ?\";r=1;t=2");
    // Limited: the refusal with the longest wait, rounded up.
    let limited = decide(
        &items,
        &[
            outcome(0, 0, 600, Some(600)),
            outcome(1, 0, 43_200_000, Some(43_200_000)),
            outcome(3, 0, 200, Some(100)),
        ],
        now,
    );
    let Decision::Limited {
        retry_after,
        headers,
    } = limited
    else {
        panic!("{limited:?}")
    };
    assert_eq!(retry_after, Duration::from_secs(43_200));
    assert_eq!(header(&headers, &RATELIMIT_POLICY), policy);
    assert_eq!(header(&headers, &RATELIMIT), "\"gold-day\";r=0;t=43200");
    // A wait below a second is one second.
    let limited = decide(&items, &[outcome(3, 0, 1, Some(1))], now);
    assert!(
        matches!(limited, Decision::Limited { retry_after, .. } if retry_after == Duration::from_secs(1))
    );
}

#[test]
fn rates_are_published_as_their_sustained_rate() {
    let policy = |limit, period_ms, burst| {
        Gcra::new(rate(limit, Duration::from_millis(period_ms), burst)).policy()
    };
    assert_eq!(policy(100, 60_000, 10), (100, 60));
    assert_eq!(policy(5, 500, 1), (10, 1));
    assert_eq!(policy(1, 100_000, 1), (1, 100));
    assert_eq!(policy(3, 1_500, 1), (4, 2));
    // Nonsense in, something sane out (the compiler rejects these).
    assert_eq!(policy(0, 0, 0), (1_000_000_000, 1));
    let zero = Gcra::new(rate(0, Duration::ZERO, 0));
    assert_eq!(
        (zero.limit, zero.burst, zero.t),
        (1, 1, Duration::from_nanos(1))
    );
}

#[tokio::test]
async fn new_reports_bad_settings() {
    static BAD_PROXY: LimitsDef = LimitsDef {
        store: LimitStoreDef::Memory,
        default_plan: None,
        anonymous_plan: None,
        trusted_proxies: &["10.0.0.0/8", "10.0.0.0/40"],
    };
    let err = Limiter::new(&BAD_PROXY, &|_| None).await.unwrap_err();
    assert!(err.contains("`10.0.0.0/40`"), "{err}");
    let err = Limiter::new(&REDIS_DENY, &|_| None).await.unwrap_err();
    assert_eq!(err, "limit store: missing environment variables: REDIS_URL");
    let err = Limiter::new(&REDIS_DENY, &vars("http://127.0.0.1:1/"))
        .await
        .unwrap_err();
    assert!(
        err.starts_with("the limit store's Redis URL is not valid"),
        "{err}"
    );
    static ZERO: LimitsDef = LimitsDef {
        store: LimitStoreDef::Redis {
            url: "redis://127.0.0.1:1/",
            on_error: OnError::Deny,
            timeout: Duration::ZERO,
        },
        default_plan: None,
        anonymous_plan: None,
        trusted_proxies: &[],
    };
    let err = Limiter::new(&ZERO, &|_| None).await.unwrap_err();
    assert_eq!(err, "the limit store's Redis timeout must be above 0");

    let limiter = memory().await;
    let peer = "10.0.0.9".parse().unwrap();
    let xff = HeaderValue::from_static("203.0.113.5");
    assert_eq!(
        client_ip(peer, Some(&xff), limiter.trusted_proxies()),
        "203.0.113.5".parse::<std::net::IpAddr>().unwrap()
    );
}

// Redis store.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_semantics() {
    let server = RedisServer::start();
    let limiter = redis(&REDIS_DENY, &server.url()).await;
    burst_then_rate(&limiter).await;
    quota_admits_exactly_n(&limiter).await;
    refused_burns_nothing(&limiter).await;
    plan_headers(&limiter).await;
    assert_eq!(limiter.memory_keys(), 0, "Redis answered everything");

    // The keys are where the module docs say, and expire.
    let mut conn = server.connection();
    let key = fresh("keys");
    let c = [check(
        "gold",
        &key,
        Some(rate(10, Duration::from_secs(1), 10)),
        &DAY_5,
    )];
    assert!(is_allowed(&limiter.check(&c).await));
    let label = window::label(
        Window::Day,
        window::span(Window::Day, unix_now().as_secs()).start,
    );
    let count: i64 = redis::cmd("GET")
        .arg(format!("gatewayc:q:gold:{label}:{key}"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(count, 1);
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("gatewayc:q:gold:{label}:{key}"))
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0 && ttl <= 86_400 + 60, "{ttl}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("gatewayc:rl:gold:{key}"))
        .query(&mut conn)
        .unwrap();
    assert!(
        pttl > 0 && pttl <= 100,
        "the rate state lives until the bucket is full: {pttl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replicas_share_a_quota_exactly() {
    day_left();
    let server = RedisServer::start();
    let replicas = [
        Arc::new(redis(&REDIS_DENY, &server.url()).await),
        Arc::new(redis(&REDIS_DENY, &server.url()).await),
    ];
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let limiter = Arc::clone(&replicas[i % 2]);
            tokio::spawn(async move {
                let mut seen: HashMap<&'static str, u32> = HashMap::new();
                for _ in 0..50 {
                    let c = [check(
                        "shared",
                        "everyone",
                        Some(rate(1, HOUR, 1_000)),
                        &DAY_100,
                    )];
                    let kind = match limiter.check(&c).await {
                        Decision::Allowed(_) => "allowed",
                        Decision::Limited { .. } => "limited",
                        Decision::Unavailable => "unavailable",
                    };
                    *seen.entry(kind).or_default() += 1;
                }
                seen
            })
        })
        .collect();
    let mut total: HashMap<&'static str, u32> = HashMap::new();
    for task in tasks {
        for (kind, n) in task.await.unwrap() {
            *total.entry(kind).or_default() += n;
        }
    }
    assert_eq!(total.get("allowed"), Some(&100), "{total:?}");
    assert_eq!(total.get("limited"), Some(&300), "{total:?}");
    assert_eq!(total.get("unavailable"), None, "{total:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_applies_on_error_and_limits_resume_after_restart() {
    day_left();
    let mut server = RedisServer::start();
    let url = server.url();
    let deny = redis(&REDIS_DENY, &url).await;
    let allow = redis(&REDIS_ALLOW, &url).await;
    let local = redis(&REDIS_LOCAL, &url).await;
    for (name, limiter) in [("deny", &deny), ("allow", &allow), ("local", &local)] {
        assert!(is_allowed(
            &timed(limiter, &[check("o", name, None, &DAY_2)]).await
        ));
    }
    let c = [check("o", "deny", None, &DAY_2)];
    assert!(is_allowed(&timed(&deny, &c).await));
    assert!(
        matches!(timed(&deny, &c).await, Decision::Limited { .. }),
        "3 of 2"
    );

    server.kill();
    for _ in 0..3 {
        assert_eq!(timed(&deny, &c).await, Decision::Unavailable);
        assert_eq!(timed(&allow, &c).await, Decision::Allowed(Vec::new()));
    }
    // Counted in this process instead: a fresh count, since Redis's is out of reach.
    assert!(is_allowed(&timed(&local, &c).await));
    assert!(is_allowed(&timed(&local, &c).await));
    assert!(matches!(timed(&local, &c).await, Decision::Limited { .. }));
    assert_eq!(local.memory_keys(), 1);

    // Redis comes back, empty: the same limiters use it again without being rebuilt.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let fresh_key = [check("o", "after", None, &DAY_2)];
    loop {
        match timed(&deny, &fresh_key).await {
            Decision::Allowed(h) if !h.is_empty() => break,
            Decision::Unavailable => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the limiter did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(is_allowed(&timed(&deny, &fresh_key).await));
    assert!(matches!(
        timed(&deny, &fresh_key).await,
        Decision::Limited { .. }
    ));
    // The others reach Redis again too: each probe key shows up there once they do.
    let mut conn = server.connection();
    let label = window::label(
        Window::Day,
        window::span(Window::Day, unix_now().as_secs()).start,
    );
    for (name, limiter) in [("allow", &allow), ("local", &local)] {
        let deadline = Instant::now() + Duration::from_secs(10);
        for n in 0.. {
            let key = format!("{name}-{n}");
            let d = timed(limiter, &[check("o", &key, None, &DAY_2)]).await;
            let in_redis: bool = redis::cmd("EXISTS")
                .arg(format!("gatewayc:q:o:{label}:{key}"))
                .query(&mut conn)
                .unwrap();
            if in_redis {
                assert!(current(&d).starts_with("\"o-day\";r=1;"), "{d:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{name} did not reconnect: {d:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let count: i64 = redis::cmd("GET")
        .arg(format!("gatewayc:q:o:{label}:after"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(count, 2, "counted in Redis");
}

#[tokio::test]
async fn redis_that_never_answers_costs_at_most_the_timeout() {
    // Connections to this listener complete, but nothing ever answers them.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    let started = Instant::now();
    let deny = redis(&REDIS_DENY, &url).await;
    let local = redis(&REDIS_LOCAL, &url).await;
    assert!(started.elapsed() < 2 * BOUND, "new waited for Redis");
    let c = [check("s", "k", Some(rate(1, HOUR, 1)), &[])];
    for _ in 0..3 {
        assert_eq!(timed(&deny, &c).await, Decision::Unavailable);
    }
    assert!(is_allowed(&timed(&local, &c).await));
    assert!(matches!(timed(&local, &c).await, Decision::Limited { .. }));
    assert!(!format!("{deny:?}").contains(&url), "Debug shows the URL");
}

#[tokio::test]
async fn redis_down_at_start_up_is_not_fatal() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let deny = redis(&REDIS_DENY, &format!("redis://127.0.0.1:{port}/")).await;
    let c = [check("d", "k", None, &DAY_1)];
    assert_eq!(timed(&deny, &c).await, Decision::Unavailable);
}

#[tokio::test]
async fn a_call_redis_runs_after_its_deadline_counts_nothing() {
    day_left();
    let server = RedisServer::start();
    let deny = redis(&REDIS_DENY, &server.url()).await;
    let local = redis(&REDIS_LOCAL, &server.url()).await;
    let c = [check("late", "frozen", None, &DAY_2)];
    // One call answered: Redis's clock is known, and one of the two is used.
    assert!(is_allowed(&timed(&deny, &c).await));
    // Redis frozen: the calls time out and are refused (deny) or counted here (local)...
    server.signal("STOP");
    for _ in 0..3 {
        assert_eq!(timed(&deny, &c).await, Decision::Unavailable);
    }
    let l = [check("late", "local", None, &DAY_2)];
    assert!(is_allowed(&timed(&local, &l).await));
    // ... and when Redis resumes and runs them, past their deadlines, they count nowhere.
    server.signal("CONT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        is_allowed(&timed(&deny, &c).await),
        "the refused calls were counted once Redis resumed"
    );
    assert!(
        matches!(timed(&deny, &c).await, Decision::Limited { .. }),
        "3 of 2"
    );
    let mut conn = server.connection();
    let label = window::label(
        Window::Day,
        window::span(Window::Day, unix_now().as_secs()).start,
    );
    let counted: Option<u64> = redis::cmd("GET")
        .arg(format!("gatewayc:q:late:{label}:local"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        counted, None,
        "a call answered locally was counted in Redis too"
    );
}
