//! Versioning tier: two spec files, one per version, served side by side by one gateway,
//! with deprecation headers on the old version.

use crate::support::{Gateway, Upstream, get, send};

#[tokio::test]
async fn two_versions_side_by_side_with_deprecation_on_the_old_one() {
    let (v1, v2) = (Upstream::start().await, Upstream::start().await);
    let gw = Gateway::start("versioned", &[("V1_URL", v1.url()), ("V2_URL", v2.url())]);
    let h = |r: &crate::support::Reply, n: &str| -> Vec<String> {
        r.headers
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };

    let old = get(&gw.url("/v1/pets/7")).await;
    assert_eq!(old.status, 200, "{}", old.body);
    // The prefix selects the version and is not sent upstream.
    assert_eq!(v1.last().path_and_query, "/pets/7");
    assert_eq!(h(&old, "deprecation"), ["@0"]);
    assert_eq!(h(&old, "sunset"), ["Thu, 31 Dec 2099 00:00:00 GMT"]);
    assert_eq!(
        h(&old, "link"),
        [
            "<https://docs.example.test/pets/v1>; rel=\"deprecation\"; type=\"text/html\"",
            "<https://docs.example.test/pets/v1>; rel=\"sunset\"; type=\"text/html\"",
        ]
    );

    let id = "0b7e6f5a-3c1d-4e2f-8a9b-1c2d3e4f5a6b";
    let new = get(&gw.url(&format!("/v2/pets/{id}"))).await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert_eq!(v2.last().path_and_query, format!("/pets/{id}"));
    assert!(new.headers.get("deprecation").is_none() && new.headers.get("sunset").is_none());
    // Each version keeps its own parameter types: v2 ids are UUIDs.
    get(&gw.url("/v2/pets/7")).await.assert_problem(400);
    assert_eq!(v1.count(), 1);

    // One deprecated operation inside the current version.
    let list = get(&gw.url("/v2/pets")).await;
    assert_eq!(list.status, 200);
    // The date `x-gateway.deprecation` gives, as RFC 9745 writes it.
    assert_eq!(h(&list, "deprecation"), ["@1780272000"]);
    assert_eq!(h(&list, "sunset"), ["Wed, 01 Jan 2098 00:00:00 GMT"]);
    assert!(h(&list, "link")[0].starts_with("<https://docs.example.test/pets/v2#list>"));

    // Without a prefix there is no version to choose.
    get(&gw.url("/pets/7")).await.assert_problem(404);
}

#[tokio::test]
async fn a_header_chooses_the_version_with_a_default() {
    let (v1, v2) = (Upstream::start().await, Upstream::start().await);
    let gw = Gateway::start(
        "header-versions",
        &[("V1_URL", v1.url()), ("V2_URL", v2.url())],
    );
    let default = get(&gw.url("/pets/7")).await;
    assert_eq!(default.status, 200, "{}", default.body);
    assert_eq!((v1.count(), v2.count()), (1, 0));
    assert_eq!(
        default
            .headers
            .get("deprecation")
            .and_then(|v| v.to_str().ok()),
        Some("@0")
    );
    let two = send("GET", &gw.url("/pets/rex"), &[("api-version", "2")]).await;
    assert_eq!(two.status, 200, "{}", two.body);
    assert_eq!((v1.count(), v2.count()), (1, 1));
    assert_eq!(v2.last().path_and_query, "/pets/rex");
    assert!(two.headers.get("deprecation").is_none());
    // Version 1 still types its parameter as an integer.
    send("GET", &gw.url("/pets/rex"), &[("api-version", "1")])
        .await
        .assert_problem(400);
    let unknown = send("GET", &gw.url("/pets/7"), &[("api-version", "3")]).await;
    unknown.assert_problem(400);
    assert!(unknown.body.contains("1, 2"), "{}", unknown.body);
    // Caches must keep the versions apart.
    assert!(
        two.headers
            .get_all("vary")
            .iter()
            .any(|v| v == "api-version"),
        "{:?}",
        two.headers
    );
    // A preflight names no version; the version header may be sent cross-origin.
    let pre = send(
        "OPTIONS",
        &gw.url("/pets/rex"),
        &[
            ("origin", "https://app.example.test"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "api-version"),
        ],
    )
    .await;
    assert_eq!(pre.status, 204, "{}", pre.body);
    assert_eq!(
        pre.headers
            .get("access-control-allow-headers")
            .and_then(|v| v.to_str().ok()),
        Some("api-version")
    );
}

#[tokio::test]
async fn the_accepted_media_type_chooses_the_version() {
    let (v1, v2) = (Upstream::start().await, Upstream::start().await);
    let gw = Gateway::start(
        "media-versions",
        &[("V1_URL", v1.url()), ("V2_URL", v2.url())],
    );
    let accept = |a: &'static str| [("accept", a)];
    assert_eq!(get(&gw.url("/pets")).await.status, 200);
    send("GET", &gw.url("/pets"), &accept("application/json")).await;
    assert_eq!((v1.count(), v2.count()), (2, 0));
    send(
        "GET",
        &gw.url("/pets"),
        &accept("application/vnd.pets.v2+json"),
    )
    .await;
    send(
        "GET",
        &gw.url("/pets"),
        &accept("text/html, Application/Vnd.Pets.V2+JSON;q=0.9"),
    )
    .await;
    assert_eq!((v1.count(), v2.count()), (2, 2));
    send(
        "GET",
        &gw.url("/pets"),
        &accept("application/vnd.pets.v1+json"),
    )
    .await;
    assert_eq!((v1.count(), v2.count()), (3, 2));
}
