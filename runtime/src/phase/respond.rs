//! Phase 10, respond: every answer decorated in one place, and the request reported when
//! its response is done.
//!
//! [`answer`] turns a problem into `application/problem+json` and adds, in this order:
//! the limit headers of a counted request, deprecation headers once the operation is known,
//! CORS headers for an allowed origin, `Vary` when a header chooses the version, and
//! `X-Request-Id`. [`reply`] hands the response to the connection with a [`Finish`], which
//! writes the access log line, records the metrics and queues the spans when the body has
//! been sent or the client has gone away.

use http::Response;
use http::header::{HeaderName, HeaderValue};

use super::State;
use super::accept::X_REQUEST_ID;
use super::ctx::Ctx;
use crate::body::Body;
use crate::conns::{InFlight, Reply};
use crate::gateway::{DeprecationDef, Gateway, UpstreamDef};
use crate::observe::Observe;
use crate::problem::{Kind, Problem, Source};

/// The answer to send: the phases' result, decorated.
pub(super) fn answer<G: Gateway>(
    state: &State,
    ctx: &mut Ctx,
    result: Result<Response<Body>, Problem>,
    origin: Option<&HeaderValue>,
) -> Response<Body> {
    let mut resp = match result {
        Ok(r) => r,
        Err(problem) => {
            if problem.status.is_server_error() {
                // An error log line names the request, so an operator can find it from
                // what the client quotes.
                tracing::warn!(
                    request_id = ctx.request_id.to_str().unwrap_or_default(),
                    operation = ctx.op.map_or("", |o| o.id),
                    upstream = ctx.upstream_name(G::UPSTREAMS).unwrap_or_default(),
                    status = problem.status.as_u16(),
                    error = problem.cause.kind.as_str(),
                    reason = %problem.cause.reason,
                    "{}",
                    match problem.source() {
                        Source::Upstream => "upstream request failed",
                        Source::Limit => "limit store unavailable",
                        Source::Auth => "credentials could not be checked",
                        _ => "request failed",
                    }
                );
            }
            ctx.cause = Some(problem.cause.clone());
            problem.into_response(ctx.request_id.to_str().ok())
        }
    };
    let h = resp.headers_mut();
    for (name, value) in ctx.limit_headers.drain(..) {
        h.append(name, value);
    }
    if let Some(dep) = ctx.op.and_then(|op| op.deprecation.as_ref()) {
        // Ours replace the upstream's `Deprecation` and `Sunset`; links add up.
        for (name, value) in deprecation_headers(dep) {
            if name == http::header::LINK {
                h.append(name, value);
            } else {
                h.insert(name, value);
            }
        }
    }
    if let Some(cors) = &state.cors {
        cors.decorate(origin, &mut resp);
    }
    if let Some(vary) = G::VARY {
        resp.headers_mut()
            .append(http::header::VARY, HeaderValue::from_static(vary));
    }
    resp.headers_mut()
        .insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    resp
}

/// The response handed to the connection; its body reports the request when done.
pub(super) fn reply<G: Gateway>(
    state: &'static State,
    ctx: Ctx,
    resp: Response<Body>,
    in_flight: InFlight,
) -> Response<Reply> {
    // Boxed: the response is moved several times on its way out through hyper, and a
    // pointer is cheaper to move than the context (measured with callgrind).
    let finish = state.observe.active().then(|| {
        Box::new(Finish {
            status: resp.status().as_u16(),
            observe: &state.observe,
            upstreams: G::UPSTREAMS,
            ctx,
        })
    });
    resp.map(|body| Reply::new(body, in_flight, finish))
}

/// A request waiting for the end of its response, to be reported.
#[derive(Debug)]
pub(crate) struct Finish {
    ctx: Ctx,
    status: u16,
    observe: &'static Observe,
    upstreams: &'static [UpstreamDef],
}

impl Finish {
    /// The response body is done (sent, or abandoned by the client) after `bytes_out` bytes.
    pub(crate) fn done(self: Box<Self>, bytes_out: u64) {
        let Finish {
            ctx,
            status,
            observe,
            upstreams,
        } = *self;
        let elapsed = ctx.start.elapsed();
        let upstream = ctx.upstream_name(upstreams);
        if observe.access_log {
            crate::observe::log::write(
                &ctx,
                &crate::observe::log::Outcome {
                    status,
                    bytes_out,
                    duration: elapsed,
                    upstream,
                    secret_params: &observe.secret_params,
                },
            );
        }
        if let Some(m) = observe.metrics {
            let bytes_in = ctx
                .bytes_in
                .as_ref()
                .map_or(0, |b| b.load(std::sync::atomic::Ordering::Relaxed));
            m.request_finished(&crate::observe::metrics::Finished {
                op: ctx.op,
                method: &ctx.method,
                status,
                seconds: elapsed.as_secs_f64(),
                bytes_in,
                bytes_out,
            });
            if let (Some(name), Some(index)) = (upstream, ctx.upstream) {
                if let Some(t) = ctx.upstream_time {
                    m.upstream_call(index, name, ctx.upstream_status, t.as_secs_f64());
                }
                if let Some(kind) = ctx.cause.as_ref().and_then(|c| upstream_error(c.kind)) {
                    m.upstream_error(name, kind);
                }
                if ctx
                    .cause
                    .as_ref()
                    .is_some_and(|c| c.kind == Kind::UpstreamOverloaded)
                {
                    crate::observe::metrics::breaker_open(name);
                }
            }
        }
        observe.spans(&ctx, status, elapsed, upstream);
    }
}

/// The `kind` label of an upstream failure.
fn upstream_error(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::UpstreamConnect => Some("connect"),
        Kind::UpstreamTimeout => Some("timeout"),
        Kind::UpstreamReset => Some("reset"),
        Kind::UpstreamInvalid => Some("invalid"),
        _ => None,
    }
}

/// `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and their `Link`s.
fn deprecation_headers(dep: &DeprecationDef) -> Vec<(HeaderName, HeaderValue)> {
    use http::header::LINK;
    static DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
    static SUNSET: HeaderName = HeaderName::from_static("sunset");
    let mut headers = Vec::with_capacity(4);
    if let Some(value) = dep.deprecation {
        headers.push((DEPRECATION.clone(), HeaderValue::from_static(value)));
    }
    if let Some(date) = dep.sunset.and_then(|d| HeaderValue::from_str(d).ok()) {
        headers.push((SUNSET.clone(), date));
    }
    if let Some(link) = dep.link {
        if dep.deprecation.is_some()
            && let Ok(v) = HeaderValue::from_str(&format!(
                "<{link}>; rel=\"deprecation\"; type=\"text/html\""
            ))
        {
            headers.push((LINK, v));
        }
        if dep.sunset.is_some()
            && let Ok(v) =
                HeaderValue::from_str(&format!("<{link}>; rel=\"sunset\"; type=\"text/html\""))
        {
            headers.push((LINK, v));
        }
    }
    headers
}
