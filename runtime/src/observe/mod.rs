//! What operators see of a running gateway: the access log, metrics, traces and health
//! (docs/observability.md).
//!
//! The request path fills in a [`crate::phase::ctx::Ctx`]; when the response is done,
//! [`crate::phase::Finish`] hands it to the parts switched on here. Each is optional and
//! costs nothing when off: the access log (`GATEWAY_ACCESS_LOG`, on by default), metrics
//! (kept when the admin listener, `GATEWAY_ADMIN_LISTEN`, is on), spans (exported when an
//! OTLP endpoint is set).

pub mod admin;
pub mod log;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod trace;

use std::time::Duration;

use crate::phase::ctx::Ctx;

/// Which observability outputs are on, built at start-up.
#[derive(Debug, Default)]
pub struct Observe {
    /// One JSON line per request on stdout.
    pub access_log: bool,
    /// Metrics, when the admin listener serves them.
    pub metrics: Option<&'static metrics::Metrics>,
    /// The span exporter, when an OTLP endpoint is set.
    #[cfg(feature = "otlp")]
    pub exporter: Option<&'static otlp::Exporter>,
    /// Query parameters whose values are credentials, redacted in the log.
    pub secret_params: Vec<&'static str>,
}

impl Observe {
    /// Whether anything reads a finished request's context.
    pub fn active(&self) -> bool {
        #[cfg(feature = "otlp")]
        if self.exporter.is_some() {
            return true;
        }
        self.access_log || self.metrics.is_some()
    }

    /// Queues the spans of a finished request, when spans are exported and its trace is
    /// sampled: the server span, and a client span for its upstream call.
    pub(crate) fn spans(
        &self,
        ctx: &Ctx,
        status: u16,
        elapsed: Duration,
        upstream: Option<&'static str>,
    ) {
        #[cfg(feature = "otlp")]
        if let Some(exporter) = self.exporter
            && ctx.trace.sampled
        {
            use otlp::{Attr, SpanRecord};
            let end = otlp::now();
            let start = end.saturating_sub(elapsed);
            let mut attributes = vec![
                (
                    "http.request.method",
                    Attr::Str(ctx.method.as_str().to_owned()),
                ),
                ("url.path", Attr::Str(ctx.uri.path().to_owned())),
                ("http.response.status_code", Attr::Int(i64::from(status))),
                ("client.address", Attr::Str(ctx.peer.to_string())),
            ];
            if let Ok(id) = ctx.request_id.to_str() {
                attributes.push(("gateway.request_id", Attr::Str(id.to_owned())));
            }
            if let Some(op) = ctx.op {
                attributes.push(("http.route", Attr::Str(op.path.to_owned())));
                attributes.push(("gateway.operation", Attr::Str(op.id.to_owned())));
            }
            if let Some(cause) = &ctx.cause {
                attributes.push(("error.type", Attr::Str(cause.kind.as_str().to_owned())));
            }
            let state = ctx
                .trace
                .state
                .as_ref()
                .and_then(|s| s.to_str().ok())
                .map(str::to_owned);
            exporter.record(SpanRecord {
                trace_id: ctx.trace.trace_id,
                span_id: ctx.trace.span_id,
                parent: ctx.trace.parent,
                state: state.clone(),
                name: match ctx.op {
                    Some(op) => format!("{} {}", ctx.method, op.path),
                    None => ctx.method.to_string(),
                },
                client: false,
                start,
                end,
                attributes,
                error: status >= 500,
            });
            if let (Some(span_id), Some(name), Some(began)) =
                (ctx.upstream_span, upstream, ctx.upstream_start)
            {
                let offset = began.saturating_duration_since(ctx.start);
                let took = ctx.upstream_time.unwrap_or_else(|| began.elapsed());
                let mut attributes = vec![
                    (
                        "http.request.method",
                        Attr::Str(ctx.method.as_str().to_owned()),
                    ),
                    ("gateway.upstream", Attr::Str(name.to_owned())),
                ];
                let failed = match ctx.upstream_status {
                    Some(s) => {
                        attributes.push(("http.response.status_code", Attr::Int(i64::from(s))));
                        s >= 500
                    }
                    None => {
                        let kind = ctx.cause.as_ref().map_or("error", |c| c.kind.as_str());
                        attributes.push(("error.type", Attr::Str(kind.to_owned())));
                        true
                    }
                };
                exporter.record(SpanRecord {
                    trace_id: ctx.trace.trace_id,
                    span_id,
                    parent: Some(ctx.trace.span_id),
                    state,
                    name: format!("{} {name}", ctx.method),
                    client: true,
                    start: start + offset,
                    end: start + offset + took,
                    attributes,
                    error: failed,
                });
            }
        }
        #[cfg(not(feature = "otlp"))]
        let _ = (ctx, status, elapsed, upstream);
    }
}
