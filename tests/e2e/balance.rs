//! Run tier: an upstream with three targets (weights 1, 1, 2), each a mock upstream on
//! 127.0.0.1: round robin shares requests exactly by weight, and hashing on a header sends
//! every request with one value to one target.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{Gateway, Upstream, get, send};

/// The gateway of `specs/accepted/balance.yaml` with its three targets.
async fn gateway() -> (Gateway, [Upstream; 3]) {
    let targets = [
        Upstream::start().await,
        Upstream::start().await,
        Upstream::start().await,
    ];
    let gw = Gateway::start(
        "balance",
        &[
            ("T1_URL", targets[0].url()),
            ("T2_URL", targets[1].url()),
            ("T3_URL", targets[2].url()),
        ],
    );
    (gw, targets)
}

fn counts(targets: &[Upstream; 3]) -> [usize; 3] {
    [targets[0].count(), targets[1].count(), targets[2].count()]
}

#[tokio::test]
async fn round_robin_shares_requests_exactly_by_weight() {
    let (gw, targets) = gateway().await;
    for i in 0..400 {
        let r = get(&gw.url(&format!("/spread/{i}"))).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(counts(&targets), [100, 100, 200]);
}

#[tokio::test]
async fn hashing_on_a_header_sends_each_value_to_one_target() {
    let (gw, targets) = gateway().await;
    for round in 0..5 {
        for tenant in 0..30 {
            let tenant = format!("tenant-{tenant}");
            let r = send("GET", &gw.url("/sticky"), &[("x-tenant", &tenant)]).await;
            assert_eq!(r.status, 200, "round {round}: {}", r.body);
        }
    }
    // Which targets saw each tenant.
    let mut seen_at: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, target) in targets.iter().enumerate() {
        let seen = target.seen.lock().map(|s| s.clone()).unwrap_or_default();
        for request in seen {
            let tenant = request
                .headers
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            seen_at.entry(tenant).or_default().insert(i);
        }
    }
    assert_eq!(seen_at.len(), 30, "{seen_at:?}");
    for (tenant, at) in &seen_at {
        assert_eq!(at.len(), 1, "{tenant} reached targets {at:?}");
    }
    assert_eq!(counts(&targets).iter().sum::<usize>(), 150);
    // Thirty keys do not all land on one target.
    let used: BTreeSet<usize> = seen_at.values().flatten().copied().collect();
    assert!(used.len() > 1, "every tenant went to target {used:?}");
    // Requests without the header go round robin.
    let before = counts(&targets);
    for _ in 0..4 {
        assert_eq!(get(&gw.url("/sticky")).await.status, 200);
    }
    let after = counts(&targets);
    let added: Vec<usize> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(added, [1, 1, 2]);
}
