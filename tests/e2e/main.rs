//! End-to-end tests of gatewayc, in tiers (see ARCHITECTURE.md):
//!
//! 1. `accepted`: each spec in `specs/accepted/` checks clean and its generated code is
//!    snapshotted; `build.rs` compiles that code into this crate with warnings denied.
//! 2. `rejected`: each spec in `specs/rejected/` fails, and its rendered diagnostics are
//!    snapshotted.
//! 3. `example`: `generated-example/` is exactly what gatewayc generates today.
//! 4. `routing` and `proxy`: generated routers in-process, then real gateway processes
//!    with mock upstreams on 127.0.0.1 over real HTTP.
//! 5. `security`: JWTs (the shared fixtures, a JWKS server that rotates its keys), API keys
//!    from `gatewayc keys`, forwarded claims and CORS, against a real gateway process.
//! 6. `limits`: plans, quotas and route limits in two gateway processes sharing one
//!    `redis-server`, under concurrent load; Redis killed and brought back.
//! 7. `versions`: two spec files, one per version, in one gateway; deprecation headers.
//! 8. `aggregate`: aggregates over a fast, a slow and a failing upstream: parallel parts,
//!    dependent parts, optional and required failures, the deadline, encoding, mock mode.
//! 9. `transform`: header, query and nested JSON body edits both ways, status mapping and
//!    the published response schema, against a real gateway process.
//! 10. `observability`: the access log, JSON diagnostics, redaction of credentials, metrics
//!     (checked by `promtool` and the Prometheus client's parser) and their bounded labels,
//!     health, readiness and graceful shutdown, and spans sent to an OTLP receiver.
//! 11. `faults`: upstream connections closed while idle, the pool's idle timeout, bodies
//!     sent with GET and HEAD, and malformed chunked bodies, against a raw-TCP upstream.
//! 12. `balance`: an upstream with three weighted targets: round robin's exact shares and
//!     hashing on a header.
//! 13. `resilience`: three targets, one answering 503 and one refusing connections:
//!     retries within their budget, outlier ejection, POSTs never retried; and a circuit
//!     breaker refusing a request over its limit.
//! 14. `validation`: parameters in every location and style and JSON bodies checked
//!     against their schemas (400 with every violation, 415), nothing invalid reaching the
//!     upstream; `validate: none`; answers reported, not changed, in report mode.
//! 15. `schemathesis`: PyPI's schemathesis fuzzes the example gateway in front of a
//!     recording upstream: no 5xx, and `jsonschema` finds nothing invalid upstream.

mod accepted;
mod aggregate;
mod balance;
mod cache;
mod cli;
mod corpus;
mod example;
mod faults;
mod hardening;
mod limits;
mod observability;
mod proxy;
mod rejected;
mod resilience;
mod routing;
mod schemathesis;
mod security;
mod support;
mod tls;
mod transform;
mod validation;
mod versions;
