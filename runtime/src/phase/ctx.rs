//! The per-request context: what the phases learn about a request, in one place, read at
//! the end by the access log, the metrics and the trace exporter.
//!
//! Each phase fills in its part (routing the operation, authentication the principal, the
//! limit phase the plan, forwarding the upstream and its attempts) and an error its cause.
//! Nothing here is boxed or shared: the context lives in the request's future and then in
//! the response body ([`crate::phase::Finish`]), which reports it when the body is done.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Method, Uri, Version};

use crate::gateway::OperationDef;
use crate::observe::trace::Trace;
use crate::problem::Cause;

/// Everything known about one request.
#[derive(Debug)]
pub struct Ctx {
    /// When its head arrived.
    pub start: Instant,
    /// The id the client gets back in `X-Request-Id`.
    pub request_id: HeaderValue,
    /// Its place in a trace.
    pub trace: Trace,
    /// The client's address.
    pub peer: IpAddr,
    /// The client's address as a header value (made once per connection).
    pub peer_header: HeaderValue,
    /// The client connected over TLS.
    pub secure: bool,
    /// The client's verified TLS certificate, as an `X-Forwarded-Client-Cert` value.
    pub client_cert: Option<HeaderValue>,
    /// Who that certificate names (its subject's common name), for `mutualTLS` schemes.
    pub client_identity: Option<Arc<str>>,
    /// The request method.
    pub method: Method,
    /// The request target as received (for the log's `url.path` and `url.query`).
    pub uri: Uri,
    /// HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// The `Host` the client asked for.
    pub host: Option<HeaderValue>,
    /// The client's `User-Agent`.
    pub user_agent: Option<HeaderValue>,
    /// The operation, once routed.
    pub op: Option<&'static OperationDef>,
    /// The authenticated consumer.
    pub consumer: Option<Arc<str>>,
    /// The plan the request was counted on (its name from the spec, or `anonymous`).
    pub plan: Option<&'static str>,
    /// The upstream called: an index into the gateway's upstreams.
    pub upstream: Option<usize>,
    /// Calls made to upstreams (aggregate parts included).
    pub attempts: u32,
    /// From the start of the upstream call to its response head.
    pub upstream_time: Option<std::time::Duration>,
    /// The status of the upstream's answer, when one came.
    pub upstream_status: Option<u16>,
    /// The span id of the upstream call, sent in its `traceparent`.
    pub upstream_span: Option<[u8; 8]>,
    /// When the upstream call started, for its span.
    pub upstream_start: Option<Instant>,
    /// Why the gateway answered with a problem, when it did.
    pub cause: Option<Cause>,
    /// The `RateLimit-Policy` and `RateLimit` headers of a counted request, for its answer.
    pub limit_headers: Vec<(http::HeaderName, HeaderValue)>,
    /// Request body bytes read, counted as they stream.
    pub bytes_in: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Ctx {
    /// The name of the upstream called, for logs and metrics.
    pub fn upstream_name(
        &self,
        upstreams: &'static [crate::gateway::UpstreamDef],
    ) -> Option<&'static str> {
        if self.op.is_some_and(|op| op.aggregate.is_some()) {
            return Some("aggregate");
        }
        self.upstream.and_then(|i| upstreams.get(i)).map(|u| u.name)
    }
}
