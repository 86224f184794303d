//! Run tier: aggregates (`specs/accepted/aggregate.yaml`) through a real gateway process,
//! over three upstreams: `pets` answers at once, `owners` is asked to answer slowly, and
//! `reviews` is down (nothing listens on its port).

use std::time::{Duration, Instant};

use crate::support::{Gateway, Reply, Upstream, get, send};

struct Setup {
    gw: Gateway,
    pets: Upstream,
    owners: Upstream,
}

/// A URL on which nothing listens.
async fn down_url() -> String {
    let (listener, addr) = crate::support::loopback().await;
    drop(listener);
    format!("http://{addr}")
}

async fn setup() -> Setup {
    let pets = Upstream::start().await;
    let owners = Upstream::start().await;
    let gw = Gateway::start(
        "aggregate",
        &[
            ("PETS_URL", pets.url()),
            ("OWNERS_URL", owners.url()),
            ("REVIEWS_URL", down_url().await),
        ],
    );
    Setup { gw, pets, owners }
}

fn missing(r: &Reply) -> Option<&str> {
    r.headers
        .get("x-aggregate-missing")
        .and_then(|v| v.to_str().ok())
}

fn paths(up: &Upstream) -> Vec<String> {
    up.seen
        .lock()
        .map(|s| s.iter().map(|x| x.path_and_query.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_aggregate_combines_its_parts_and_a_dependent_uses_a_field_of_an_earlier_one() {
    let s = setup().await;
    let started = Instant::now();
    let r = send(
        "GET",
        &s.gw.url("/pets/7/profile"),
        &[
            ("x-request-id", "agg-1"),
            ("authorization", "Bearer secret"),
            ("cookie", "session=1"),
        ],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let j = r.json();
    assert_eq!(j["pet"]["ownerId"], "7", "{j}");
    // `owner` waited for `pet` and used its `ownerId`.
    assert_eq!(j["owner"]["path"], "/owners/7?delay=300", "{j}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // The failing optional part is null and named.
    assert_eq!(j["reviews"], serde_json::Value::Null);
    assert_eq!(missing(&r), Some("reviews"));
    let keys: Vec<&String> = j
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["pet", "owner", "reviews"]);
    // Parts carry the request id and the gateway's headers, not the client's credentials.
    let seen = s.owners.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("agg-1")
    );
    assert_eq!(
        seen.headers.get("accept").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert!(seen.headers.get("x-forwarded-for").is_some());
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("cookie").is_none());
    assert_eq!(
        r.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("agg-1")
    );
}

#[tokio::test]
async fn independent_parts_run_in_parallel() {
    let s = setup().await;
    // Warm-up, so connection set-up does not count.
    assert_eq!(get(&s.gw.url("/pets/1/parallel")).await.status, 200);
    let started = Instant::now();
    let r = get(&s.gw.url("/pets/2/parallel")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["a"]["path"], "/a/2?delay=500");
    assert_eq!(j["b"]["path"], "/b/2?delay=500");
    assert_eq!(j["c"]["path"], "/c/2?delay=500");
    assert_eq!(missing(&r), None);
    // Three parts of 500 ms each: about as long as one, far from the 1.5 s of their sum.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_millis(1_200), "{took:?}");
}

#[tokio::test]
async fn every_kind_of_optional_failure_is_null_and_listed() {
    let s = setup().await;
    let started = Instant::now();
    let r = get(&s.gw.url("/pets/1/failures")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["ok"]["path"], "/ok/1");
    for part in ["status", "text", "big", "down", "timed"] {
        assert_eq!(j[part], serde_json::Value::Null, "{part}: {j}");
    }
    // Non-2xx, not JSON, over `max_response`, connection refused, over its timeout.
    assert_eq!(missing(&r), Some("status, text, big, down, timed"));
    // `timed` was cut off by its 100 ms timeout, not waited for (1.5 s).
    assert!(took < Duration::from_millis(1_000), "{took:?}");
    assert!(paths(&s.pets).contains(&"/status?status=503".to_owned()));
}

#[tokio::test]
async fn a_failing_required_part_gives_502_naming_only_the_part() {
    let s = setup().await;
    let r = get(&s.gw.url("/pets/1/broken")).await;
    r.assert_problem(502);
    assert_eq!(r.json()["detail"], "aggregate part `stats` failed");
    for leak in ["127.0.0.1", "refused", "reviews", "connect"] {
        assert!(!r.body.contains(leak), "`{leak}` leaked: {}", r.body);
    }
    assert!(r.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn the_deadline_gives_504_naming_the_pending_part() {
    let s = setup().await;
    let started = Instant::now();
    let r = get(&s.gw.url("/pets/1/late")).await;
    let took = started.elapsed();
    r.assert_problem(504);
    assert!(
        r.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`slow`")),
        "{}",
        r.body
    );
    // The 300 ms deadline, not the part's 5 s timeout nor its 1.5 s answer.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1_200), "{took:?}");
}

#[tokio::test]
async fn values_from_answers_and_parameters_cannot_change_a_part_s_path() {
    let s = setup().await;
    // `../admin` travels from the request into `pet`'s query, back in its answer, and into
    // `owner`'s path: one segment each time.
    let r = get(&s.gw.url("/pets/..%2Fadmin/profile")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        paths(&s.pets).contains(&"/pets/..%2Fadmin?ownerId=..%2Fadmin&name=Rex".to_owned()),
        "{:?}",
        paths(&s.pets)
    );
    assert_eq!(
        s.owners.last().path_and_query,
        "/owners/..%2Fadmin?delay=300"
    );
    // An encoded slash stays encoded: `%2F` in a value is sent as `%252F`.
    let r = get(&s.gw.url("/pets/%252F/profile")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.owners.last().path_and_query, "/owners/%252F?delay=300");
    assert_eq!(r.json()["pet"]["ownerId"], "%2F");
    // `..` as a whole segment is never sent: the part that would use it fails.
    let before = s.owners.count();
    let r = get(&s.gw.url("/pets/1/dots")).await;
    r.assert_problem(502);
    assert_eq!(r.json()["detail"], "aggregate part `owner` failed");
    assert_eq!(s.owners.count(), before);
}

#[tokio::test]
async fn merge_combines_the_members_of_the_parts() {
    let s = setup().await;
    let r = get(&s.gw.url("/pets/3/card")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Both answers carry `path` (which their schemas do not declare): the first part's wins.
    assert_eq!(
        r.json(),
        serde_json::json!({
            "path": "/pets/3?ownerId=o-3&name=Rex",
            "ownerId": "o-3",
            "name": "Rex",
            "ownerName": "Ann",
            "since": "2020",
        })
    );
    assert_eq!(
        s.owners.last().path_and_query,
        "/owners/o-3?ownerName=Ann&since=2020"
    );
}

#[tokio::test]
async fn in_mock_mode_parts_answer_from_their_response_examples() {
    let gw = Gateway::start("aggregate", &[]);
    let r = get(&gw.url("/pets/1/profile")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "pet": { "path": "/pets/1", "ownerId": "o-1", "name": "Rex" },
            "owner": { "ownerName": "Ann", "since": "string" },
            "reviews": null,
        })
    );
    assert_eq!(missing(&r), Some("reviews"));
    // Parts without `response` have no example: a required one fails.
    let r = get(&gw.url("/pets/1/parallel")).await;
    r.assert_problem(502);
    assert_eq!(r.json()["detail"], "aggregate part `a` failed");
}
