//! How much memory the memory limit store takes for many distinct keys, and whether it
//! gives it back once they are idle (bench/README.md, "Limit store memory").
//!
//! Fills the store with one request each from N distinct keys (1,000,000 unless given as
//! the first argument) against a plan with a rate and a per-minute quota, then evicts idle
//! state twice: once the rate buckets are full again (rate keys go), and once the minute
//! has ended (quota counters go). Prints the resident memory (`VmRSS`) at each step.
//!
//! ```sh
//! cargo run --release -p gatewayc-runtime --example limit_memory
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gatewayc_runtime::limit::{Check, Decision, Limiter};
use gatewayc_runtime::{LimitStoreDef, LimitsDef, QuotaDef, RateDef, Window};

/// The allocator generated gateways use.
#[global_allocator]
static ALLOCATOR: gatewayc_runtime::Allocator = gatewayc_runtime::ALLOCATOR;

static LIMITS: LimitsDef = LimitsDef {
    store: LimitStoreDef::Memory,
    default_plan: None,
    anonymous_plan: None,
    trusted_proxies: &[],
};

static QUOTAS: [QuotaDef; 1] = [QuotaDef {
    limit: 1_000,
    window: Window::Minute,
}];

const RATE: RateDef = RateDef {
    limit: 10,
    period: Duration::from_secs(1),
    burst: 10,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let keys: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("not a number of keys: {n}"))?,
        None => 1_000_000,
    };
    let limiter = Limiter::new(&LIMITS, &|_| None).await?;
    report("start", &limiter);

    let started = Instant::now();
    let mut key = String::new();
    for i in 0..keys {
        key.clear();
        key.push_str("ip:");
        key.push_str(&i.to_string());
        let check = Check {
            policy: "plan",
            key: &key,
            rate: Some(RATE),
            quotas: &QUOTAS,
        };
        if !matches!(limiter.check(&[check]).await, Decision::Allowed(_)) {
            return Err(format!("request {i} was refused"));
        }
    }
    let took = started.elapsed();
    report(&format!("{keys} keys ({took:.2?})"), &limiter);

    // A bucket with one request taken is full again after one interval (100 ms); it is
    // evicted once it has been full for another.
    tokio::time::sleep(Duration::from_millis(300)).await;
    limiter.evict_idle();
    report("rate keys evicted", &limiter);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let minute_left = Duration::from_secs(60 - now.as_secs() % 60);
    eprintln!("waiting {minute_left:.0?} for the minute to end");
    tokio::time::sleep(minute_left + Duration::from_secs(1)).await;
    limiter.evict_idle();
    report("quota counters evicted", &limiter);
    Ok(())
}

fn report(step: &str, limiter: &Limiter) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "{step:<32} VmRSS {rss:>12}   keys held {:>9}",
        limiter.memory_keys()
    );
}
