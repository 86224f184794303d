//! The gateway's metrics, kept with the Prometheus project's client (`prometheus-client`)
//! and served on the admin listener in the Prometheus text format or OpenMetrics.
//!
//! The names, kinds and labels are `gatewayc_vocab::metrics`, which the compiler's
//! dashboards query. Every label value comes from the compiled spec (operation ids, path
//! templates, upstream, scheme and plan names) or a fixed list (methods, status codes,
//! failure kinds): no path, consumer, key or address a client sends becomes a series.
//! Label sets hold indices and static strings, so counting a request hashes a few integers.
//!
//! Metrics are kept only when the admin listener is on ([`init`]); otherwise every
//! recording function returns at once.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use gatewayc_vocab::metrics::{self as names, DURATION_BUCKETS, SIZE_BUCKETS};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::gateway::OperationDef;

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    active: Gauge,
    request_size: Family<OpLabel, Histogram, fn() -> Histogram>,
    response_size: Family<OpLabel, Histogram, fn() -> Histogram>,
    connections: Gauge,
    upstream_duration: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    upstream_errors: Family<Pair, Counter>,
    upstream_retries: Family<Single, Counter>,
    breaker_open: Family<Single, Counter>,
    response_violations: Family<Single, Counter>,
    auth_failures: Family<Pair, Counter>,
    limit_decisions: Family<Triple, Counter>,
    limit_store_errors: Family<Single, Counter>,
    key_store_errors: Family<Single, Counter>,
    jwks_refreshes: Family<Pair, Counter>,
    /// Per operation (and one last slot for requests no operation matched), the metrics a
    /// finished request updates, taken from the families once: a request then hashes no
    /// label set (the families' maps use SipHash, a few hundred instructions a look-up).
    handles: Vec<OpHandles>,
    /// Per upstream (by index), its call durations by status (`None`: no response).
    upstream_handles: Vec<Handles<Option<u16>>>,
    /// Limit decisions by (plan, limit, decision), all names from the compiled spec.
    decision_handles: Handles<[&'static str; 3], Counter>,
}

/// Metrics taken from a family once, by a small key (a handful per operation, upstream or
/// plan), found by a scan under a read lock instead of a hash of the label set.
#[derive(Debug)]
struct Handles<K, M = Histogram>(std::sync::RwLock<Vec<(K, M)>>);

impl<K, M> Default for Handles<K, M> {
    fn default() -> Self {
        Handles(std::sync::RwLock::new(Vec::new()))
    }
}

impl<K: PartialEq + Copy, M> Handles<K, M> {
    /// Applies `update` to the metric of `key`, taking it from its family with `take` the
    /// first time.
    fn with(&self, key: K, update: impl Fn(&M), take: impl FnOnce() -> M) {
        let seen = self.0.read().is_ok_and(|d| {
            d.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, m)| update(m))
                .is_some()
        });
        if seen {
            return;
        }
        let m = take();
        update(&m);
        if let Ok(mut d) = self.0.write()
            && !d.iter().any(|(k, _)| *k == key)
        {
            d.push((key, m));
        }
    }
}

impl<K: PartialEq + Copy> Handles<K> {
    /// Observes `value` on the histogram of `key`.
    fn observe(&self, key: K, value: f64, take: impl FnOnce() -> Histogram) {
        self.with(key, |h| h.observe(value), take);
    }
}

/// One operation's metrics, as handles into the families.
#[derive(Debug, Default)]
struct OpHandles {
    /// Request and response body sizes.
    sizes: OnceLock<(Histogram, Histogram)>,
    /// Durations by (method, status).
    durations: Handles<(u8, u16)>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics, when they are kept.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Registers `metric` under its vocabulary name and help text.
fn add(
    registry: &mut Registry,
    def: names::Metric,
    metric: impl prometheus_client::registry::Metric,
) {
    registry.register(def.name, def.help, metric);
}

fn durations() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

fn sizes() -> Histogram {
    Histogram::new(SIZE_BUCKETS.iter().copied())
}

/// Starts keeping metrics for a gateway named `gateway` generated from specs whose digest
/// is `spec_digest`.
pub fn init(
    gateway: &'static str,
    spec_digest: &'static str,
    operations: usize,
    upstreams: usize,
) -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(gateway, spec_digest, operations, upstreams))
}

impl Metrics {
    fn new(
        gateway: &'static str,
        spec_digest: &'static str,
        operations: usize,
        upstreams: usize,
    ) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::new_with_constructor(durations as fn() -> Histogram);
        let request_size = Family::new_with_constructor(sizes as fn() -> Histogram);
        let response_size = Family::new_with_constructor(sizes as fn() -> Histogram);
        let upstream_duration = Family::new_with_constructor(durations as fn() -> Histogram);
        let m = Metrics {
            registry: Registry::default(),
            requests,
            active: Gauge::default(),
            request_size,
            response_size,
            connections: Gauge::default(),
            upstream_duration,
            upstream_errors: Family::default(),
            upstream_retries: Family::default(),
            breaker_open: Family::default(),
            response_violations: Family::default(),
            auth_failures: Family::default(),
            limit_decisions: Family::default(),
            limit_store_errors: Family::default(),
            key_store_errors: Family::default(),
            jwks_refreshes: Family::default(),
            handles: (0..=operations).map(|_| OpHandles::default()).collect(),
            upstream_handles: (0..upstreams).map(|_| Default::default()).collect(),
            decision_handles: Handles::default(),
        };
        add(&mut registry, names::REQUEST_DURATION, m.requests.clone());
        add(&mut registry, names::ACTIVE_REQUESTS, m.active.clone());
        add(
            &mut registry,
            names::REQUEST_BODY_SIZE,
            m.request_size.clone(),
        );
        add(
            &mut registry,
            names::RESPONSE_BODY_SIZE,
            m.response_size.clone(),
        );
        add(
            &mut registry,
            names::OPEN_CONNECTIONS,
            m.connections.clone(),
        );
        add(
            &mut registry,
            names::UPSTREAM_DURATION,
            m.upstream_duration.clone(),
        );
        add(
            &mut registry,
            names::UPSTREAM_ERRORS,
            m.upstream_errors.clone(),
        );
        add(
            &mut registry,
            names::UPSTREAM_RETRIES,
            m.upstream_retries.clone(),
        );
        add(
            &mut registry,
            names::UPSTREAM_BREAKER_OPEN,
            m.breaker_open.clone(),
        );
        add(
            &mut registry,
            names::RESPONSE_SCHEMA_VIOLATIONS,
            m.response_violations.clone(),
        );
        add(&mut registry, names::AUTH_FAILURES, m.auth_failures.clone());
        add(
            &mut registry,
            names::LIMIT_DECISIONS,
            m.limit_decisions.clone(),
        );
        add(
            &mut registry,
            names::LIMIT_STORE_ERRORS,
            m.limit_store_errors.clone(),
        );
        add(
            &mut registry,
            names::KEY_STORE_ERRORS,
            m.key_store_errors.clone(),
        );
        add(
            &mut registry,
            names::JWKS_REFRESHES,
            m.jwks_refreshes.clone(),
        );
        let info: Family<[(&'static str, &'static str); 3], Gauge> = Family::default();
        info.get_or_create(&[
            ("gateway", gateway),
            ("spec_digest", spec_digest),
            ("runtime_version", env!("CARGO_PKG_VERSION")),
        ])
        .set(1);
        add(&mut registry, names::BUILD_INFO, info);
        Metrics { registry, ..m }
    }

    /// The exposition: OpenMetrics when `openmetrics`, else the Prometheus text format.
    /// `connections` is the number of open client connections now.
    pub fn encode(&self, openmetrics: bool, connections: usize) -> String {
        self.connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String fails only if a label fails to encode, which ours cannot.
        let _ = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        out
    }

    /// A request has started.
    pub fn request_started(&self) {
        self.active.inc();
    }

    /// A request has finished.
    pub fn request_finished(&self, done: &Finished<'_>) {
        self.active.dec();
        let slot = done
            .op
            .map_or(self.handles.len() - 1, |o| o.index)
            .min(self.handles.len() - 1);
        let Some(handles) = self.handles.get(slot) else {
            return;
        };
        let method = method_index(done.method);
        handles
            .durations
            .observe((method, done.status), done.seconds, || {
                self.requests.get_or_create_owned(&RequestLabels {
                    op: done.op,
                    method,
                    status: done.status,
                })
            });
        let (request_size, response_size) = handles.sizes.get_or_init(|| {
            let op = OpLabel(done.op);
            (
                self.request_size.get_or_create_owned(&op),
                self.response_size.get_or_create_owned(&op),
            )
        });
        request_size.observe(done.bytes_in as f64);
        response_size.observe(done.bytes_out as f64);
    }

    /// A call to upstream number `index`, named `upstream`, got its response head
    /// (`status`), or failed (`None`).
    pub fn upstream_call(
        &self,
        index: usize,
        upstream: &'static str,
        status: Option<u16>,
        seconds: f64,
    ) {
        let Some(handles) = self.upstream_handles.get(index) else {
            return;
        };
        handles.observe(status, seconds, || {
            self.upstream_duration
                .get_or_create_owned(&UpstreamLabels { upstream, status })
        });
    }

    /// An upstream call failed, by kind (`connect`, `timeout`, `reset`, `invalid`, ...).
    pub fn upstream_error(&self, upstream: &'static str, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&Pair([names::UPSTREAM, names::KIND], [upstream, kind]))
            .inc();
    }
}

/// What [`Metrics::request_finished`] records.
#[derive(Debug)]
pub struct Finished<'a> {
    /// The operation, when routed.
    pub op: Option<&'static OperationDef>,
    /// The request method.
    pub method: &'a http::Method,
    /// The response status.
    pub status: u16,
    /// Seconds from the head to the end of the response.
    pub seconds: f64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
}

/// A try of a call to `upstream` failed and is sent again (retries are rare: the label
/// set is hashed each time).
pub fn upstream_retry(upstream: &'static str) {
    if let Some(m) = get() {
        m.upstream_retries
            .get_or_create(&Single(names::UPSTREAM, upstream))
            .inc();
    }
}

/// `upstream`'s circuit breaker refused a request.
pub fn breaker_open(upstream: &'static str) {
    if let Some(m) = get() {
        m.breaker_open
            .get_or_create(&Single(names::UPSTREAM, upstream))
            .inc();
    }
}

/// An answer of `operation` broke its response schema (`validate.response: report`).
pub fn response_schema_violation(operation: &'static str) {
    if let Some(m) = get() {
        m.response_violations
            .get_or_create(&Single(names::OPERATION, operation))
            .inc();
    }
}

/// A request was refused by a security scheme.
pub fn auth_failure(scheme: &'static str, reason: &'static str) {
    if let Some(m) = get() {
        m.auth_failures
            .get_or_create(&Pair([names::SCHEME, names::REASON], [scheme, reason]))
            .inc();
    }
}

/// A limit decision: `plan` is a plan's name, `anonymous` or `none`; `limit` says which
/// limits were checked; `decision` is `allowed`, `limited` or `unavailable`.
pub fn limit_decision(plan: &'static str, limit: &'static str, decision: &'static str) {
    if let Some(m) = get() {
        let values = [plan, limit, decision];
        m.decision_handles.with(
            values,
            |c| {
                c.inc();
            },
            || {
                m.limit_decisions.get_or_create_owned(&Triple(
                    [names::PLAN, names::LIMIT, names::DECISION],
                    values,
                ))
            },
        );
    }
}

/// The limit store could not answer.
pub fn limit_store_error(store: &'static str) {
    if let Some(m) = get() {
        m.limit_store_errors
            .get_or_create(&Single(names::STORE, store))
            .inc();
    }
}

/// The key store could not answer.
pub fn key_store_error(store: &'static str) {
    if let Some(m) = get() {
        m.key_store_errors
            .get_or_create(&Single(names::STORE, store))
            .inc();
    }
}

/// A JWKS fetch for `scheme` ended with `ok` or not.
pub fn jwks_refresh(scheme: &'static str, ok: bool) {
    if let Some(m) = get() {
        m.jwks_refreshes
            .get_or_create(&Pair(
                [names::SCHEME, names::OUTCOME],
                [scheme, if ok { "ok" } else { "error" }],
            ))
            .inc();
    }
}

/// The standard methods, in the order of [`method_index`]; anything else is `_OTHER`.
const METHODS: [&str; 10] = [
    "_OTHER", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

fn method_index(m: &http::Method) -> u8 {
    use http::Method as M;
    match *m {
        M::GET => 1,
        M::HEAD => 2,
        M::POST => 3,
        M::PUT => 4,
        M::DELETE => 5,
        M::PATCH => 6,
        M::OPTIONS => 7,
        M::TRACE => 8,
        M::CONNECT => 9,
        _ => 0,
    }
}

fn label(encoder: &mut LabelSetEncoder<'_>, key: &str, value: &str) -> std::fmt::Result {
    let mut l = encoder.encode_label();
    let mut k = l.encode_label_key()?;
    k.write_str(key)?;
    let mut v = k.encode_label_value()?;
    EncodeLabelValue::encode(&value, &mut v)?;
    v.finish()
}

/// A request's labels: operation (by index), method, status.
#[derive(Debug, Clone)]
struct RequestLabels {
    op: Option<&'static OperationDef>,
    method: u8,
    status: u16,
}

impl PartialEq for RequestLabels {
    fn eq(&self, other: &Self) -> bool {
        self.op.map(|o| o.index) == other.op.map(|o| o.index)
            && self.method == other.method
            && self.status == other.status
    }
}
impl Eq for RequestLabels {}
impl Hash for RequestLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.op.map(|o| o.index).hash(state);
        self.method.hash(state);
        self.status.hash(state);
    }
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        label(encoder, names::OPERATION, self.op.map_or("", |o| o.id))?;
        label(encoder, names::ROUTE, self.op.map_or("", |o| o.path))?;
        label(
            encoder,
            names::METHOD,
            METHODS
                .get(usize::from(self.method))
                .copied()
                .unwrap_or("_OTHER"),
        )?;
        label(encoder, names::STATUS_CODE, &self.status.to_string())
    }
}

/// The operation label alone.
#[derive(Debug, Clone)]
struct OpLabel(Option<&'static OperationDef>);

impl PartialEq for OpLabel {
    fn eq(&self, other: &Self) -> bool {
        self.0.map(|o| o.index) == other.0.map(|o| o.index)
    }
}
impl Eq for OpLabel {}
impl Hash for OpLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.map(|o| o.index).hash(state);
    }
}
impl EncodeLabelSet for OpLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        label(encoder, names::OPERATION, self.0.map_or("", |o| o.id))
    }
}

/// An upstream call's labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UpstreamLabels {
    upstream: &'static str,
    status: Option<u16>,
}

impl EncodeLabelSet for UpstreamLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        label(encoder, names::UPSTREAM, self.upstream)?;
        match self.status {
            Some(s) => label(encoder, names::STATUS_CODE, &s.to_string()),
            None => label(encoder, names::STATUS_CODE, "error"),
        }
    }
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Single(&'static str, &'static str);

impl EncodeLabelSet for Single {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        label(encoder, self.0, self.1)
    }
}

/// Two labels, names then values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Pair([&'static str; 2], [&'static str; 2]);

impl EncodeLabelSet for Pair {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        for (k, v) in self.0.iter().zip(&self.1) {
            label(encoder, k, v)?;
        }
        Ok(())
    }
}

/// Three labels, names then values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Triple([&'static str; 3], [&'static str; 3]);

impl EncodeLabelSet for Triple {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> std::fmt::Result {
        for (k, v) in self.0.iter().zip(&self.1) {
            label(encoder, k, v)?;
        }
        Ok(())
    }
}
