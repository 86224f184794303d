//! The metrics a gateway exports on its admin listener (`/metrics`), with their labels.
//!
//! The runtime registers exactly these; `gatewayc build` writes a Grafana dashboard whose
//! queries name only these. Names follow the OpenTelemetry semantic conventions for HTTP
//! where one exists (`http.server.request.duration` is exported to Prometheus as
//! `http_server_request_duration_seconds`), and start with `gateway_` otherwise. Every
//! label value comes from the compiled spec or a fixed list, never from a request: a
//! gateway's series are bounded by its spec, whatever its traffic.
//!
//! Names are written as the Prometheus text format shows them: a counter's samples end in
//! `_total`, a histogram's in `_bucket`, `_sum` and `_count`.

/// A metric: its family name (without `_total` for counters), kind, help text and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The family name, as registered.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Label names, in order.
    pub labels: &'static [&'static str],
}

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; samples are named `<name>_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets; samples are `<name>_bucket`, `_sum` and `_count`.
    Histogram,
}

impl Metric {
    /// The name of a sample of this metric that a query would use: `_total` for a counter,
    /// `_bucket` for a histogram's buckets (`quantile` queries), the name itself for a gauge.
    pub fn sample(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Gauge => self.name.to_owned(),
            Kind::Histogram => format!("{}_bucket", self.name),
        }
    }
}

/// Label: the operationId (`""` for requests no operation matched).
pub const OPERATION: &str = "operation";
/// Label: the path template as written in the spec (`http.route`).
pub const ROUTE: &str = "route";
/// Label: the request method, one of the standard methods or `_OTHER`.
pub const METHOD: &str = "method";
/// Label: the response status code.
pub const STATUS_CODE: &str = "status_code";
/// Label: an upstream's name from `x-gateway.upstreams`.
pub const UPSTREAM: &str = "upstream";
/// Label: what went wrong, from a fixed list per metric.
pub const KIND: &str = "kind";
/// Label: a security scheme's name.
pub const SCHEME: &str = "scheme";
/// Label: why a check failed, from a fixed list.
pub const REASON: &str = "reason";
/// Label: a plan's name, `anonymous` or `none`.
pub const PLAN: &str = "plan";
/// Label: which limit decided (`plan`, `route`).
pub const LIMIT: &str = "limit";
/// Label: `allowed`, `limited` or `unavailable`.
pub const DECISION: &str = "decision";
/// Label: a store (`memory`, `redis`, `file`).
pub const STORE: &str = "store";
/// Label: an outcome (`ok`, `error`).
pub const OUTCOME: &str = "outcome";

/// Request duration, from the first byte of the head to the end of the response body.
pub const REQUEST_DURATION: Metric = Metric {
    name: "http_server_request_duration_seconds",
    kind: Kind::Histogram,
    help: "Duration of HTTP server requests, from the request head to the end of the response body",
    labels: &[OPERATION, ROUTE, METHOD, STATUS_CODE],
};
/// Requests being served now.
pub const ACTIVE_REQUESTS: Metric = Metric {
    name: "http_server_active_requests",
    kind: Kind::Gauge,
    help: "HTTP server requests in flight",
    labels: &[],
};
/// Request body sizes.
pub const REQUEST_BODY_SIZE: Metric = Metric {
    name: "http_server_request_body_size_bytes",
    kind: Kind::Histogram,
    help: "Size of HTTP server request bodies",
    labels: &[OPERATION],
};
/// Response body sizes.
pub const RESPONSE_BODY_SIZE: Metric = Metric {
    name: "http_server_response_body_size_bytes",
    kind: Kind::Histogram,
    help: "Size of HTTP server response bodies",
    labels: &[OPERATION],
};
/// Open client connections.
pub const OPEN_CONNECTIONS: Metric = Metric {
    name: "gateway_open_connections",
    kind: Kind::Gauge,
    help: "Client connections open now",
    labels: &[],
};
/// Upstream calls, each attempt, by upstream and response status (`error` when none came).
pub const UPSTREAM_DURATION: Metric = Metric {
    name: "http_client_request_duration_seconds",
    kind: Kind::Histogram,
    help: "Duration of upstream calls, from sending the request to the response head",
    labels: &[UPSTREAM, STATUS_CODE],
};
/// Upstream calls that got no usable response, by kind (`connect`, `timeout`, `reset`,
/// `too_large`, `invalid`).
pub const UPSTREAM_ERRORS: Metric = Metric {
    name: "gateway_upstream_errors",
    kind: Kind::Counter,
    help: "Upstream calls that failed, by upstream and kind of failure",
    labels: &[UPSTREAM, KIND],
};
/// Retries of upstream calls (each try after a request's first), by upstream.
pub const UPSTREAM_RETRIES: Metric = Metric {
    name: "gateway_upstream_retries",
    kind: Kind::Counter,
    help: "Upstream calls sent again after a failed try, by upstream",
    labels: &[UPSTREAM],
};
/// Requests an upstream's circuit breaker refused (answered 503 without calling it).
pub const UPSTREAM_BREAKER_OPEN: Metric = Metric {
    name: "gateway_upstream_breaker_open",
    kind: Kind::Counter,
    help: "Requests refused by an upstream's circuit breaker, by upstream",
    labels: &[UPSTREAM],
};
/// Answers that broke their declared response schema (`validate.response: report`), by
/// operation; the answers themselves are passed on unchanged.
pub const RESPONSE_SCHEMA_VIOLATIONS: Metric = Metric {
    name: "gateway_response_schema_violations",
    kind: Kind::Counter,
    help: "Answers that broke their declared response schema, by operation (reported, not changed)",
    labels: &[OPERATION],
};
/// Requests refused by authentication or authorization, by scheme and reason.
pub const AUTH_FAILURES: Metric = Metric {
    name: "gateway_auth_failures",
    kind: Kind::Counter,
    help: "Requests refused by authentication or authorization, by scheme and reason",
    labels: &[SCHEME, REASON],
};
/// Limit decisions, by plan, limit and decision.
pub const LIMIT_DECISIONS: Metric = Metric {
    name: "gateway_limit_decisions",
    kind: Kind::Counter,
    help: "Rate-limit and quota decisions, by plan, limit and decision",
    labels: &[PLAN, LIMIT, DECISION],
};
/// Limit store failures (Redis not answering in time).
pub const LIMIT_STORE_ERRORS: Metric = Metric {
    name: "gateway_limit_store_errors",
    kind: Kind::Counter,
    help: "Limit checks the limit store could not answer",
    labels: &[STORE],
};
/// Key store failures (Redis not answering in time).
pub const KEY_STORE_ERRORS: Metric = Metric {
    name: "gateway_key_store_errors",
    kind: Kind::Counter,
    help: "API key look-ups the key store could not answer",
    labels: &[STORE],
};
/// JWKS fetches, by scheme and outcome.
pub const JWKS_REFRESHES: Metric = Metric {
    name: "gateway_jwks_refreshes",
    kind: Kind::Counter,
    help: "JWKS fetches, by scheme and outcome",
    labels: &[SCHEME, OUTCOME],
};
/// Always 1; its labels say what is running.
pub const BUILD_INFO: Metric = Metric {
    name: "gateway_build_info",
    kind: Kind::Gauge,
    help: "The gateway, the digest of the specs it was generated from, and the runtime version",
    labels: &["gateway", "spec_digest", "runtime_version"],
};

/// Every metric a gateway exports.
pub const ALL: &[Metric] = &[
    REQUEST_DURATION,
    ACTIVE_REQUESTS,
    REQUEST_BODY_SIZE,
    RESPONSE_BODY_SIZE,
    OPEN_CONNECTIONS,
    UPSTREAM_DURATION,
    UPSTREAM_ERRORS,
    UPSTREAM_RETRIES,
    UPSTREAM_BREAKER_OPEN,
    AUTH_FAILURES,
    LIMIT_DECISIONS,
    LIMIT_STORE_ERRORS,
    KEY_STORE_ERRORS,
    JWKS_REFRESHES,
    BUILD_INFO,
];

/// Buckets of the duration histograms, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the body size histograms, in bytes.
pub const SIZE_BUCKETS: &[f64] = &[
    0.0,
    100.0,
    1_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
    10_000_000.0,
    100_000_000.0,
];

/// Every sample name a query may use: each metric's [`Metric::sample`], plus a histogram's
/// `_sum` and `_count`.
pub fn sample_names() -> Vec<String> {
    let mut names = Vec::new();
    for m in ALL {
        names.push(m.sample());
        if m.kind == Kind::Histogram {
            names.push(format!("{}_sum", m.name));
            names.push(format!("{}_count", m.name));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prometheus_names() {
        let mut seen = std::collections::BTreeSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            assert!(
                !m.name.ends_with("_total"),
                "{}: counters get _total",
                m.name
            );
        }
    }
}
