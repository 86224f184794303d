//! Span export over OTLP/HTTP (protobuf): a server span per request and a client span per
//! upstream call, sent in batches to the endpoint `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`) names.
//!
//! Finished spans go into a bounded queue (2,048); a task sends what it holds every
//! `OTEL_BSP_SCHEDULE_DELAY` milliseconds (1,000 by default) as one
//! `ExportTraceServiceRequest`. When the queue is full, new spans are dropped and counted,
//! never waited for: a slow or absent collector costs requests nothing. A failed export is
//! logged (at most once a minute) and its spans dropped. The message types are the
//! OpenTelemetry project's (`opentelemetry-proto`), encoded with prost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message as _;

/// Spans kept waiting for export, at most.
const MAX_QUEUED: usize = 2048;

/// A finished span, as the request path records it.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// The trace.
    pub trace_id: [u8; 16],
    /// This span.
    pub span_id: [u8; 8],
    /// Its parent, if any.
    pub parent: Option<[u8; 8]>,
    /// `tracestate` of the trace, if any.
    pub state: Option<String>,
    /// The span's name.
    pub name: String,
    /// Server (the request) or client (an upstream call).
    pub client: bool,
    /// Start and end, as times since the epoch.
    pub start: Duration,
    /// The end.
    pub end: Duration,
    /// Attributes.
    pub attributes: Vec<(&'static str, Attr)>,
    /// Whether the span failed.
    pub error: bool,
}

/// An attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i64),
}

/// Where spans go, and those waiting.
#[derive(Debug)]
pub struct Exporter {
    endpoint: Uri,
    service: String,
    delay: Duration,
    queue: Mutex<Vec<SpanRecord>>,
    dropped: AtomicU64,
    client: Client,
}

impl Exporter {
    /// The exporter the OpenTelemetry environment variables ask for, if any.
    pub fn from_env(
        lookup: &dyn Fn(&str) -> Option<String>,
        gateway: &str,
    ) -> Result<Option<Exporter>, String> {
        let nonempty = |n: &str| lookup(n).filter(|v| !v.is_empty());
        let endpoint = match (
            nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            nonempty("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(full), _) => full,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| format!("OTLP endpoint `{endpoint}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            #[cfg(feature = "tls")]
            Some("https") => {}
            _ => {
                return Err(format!(
                    "OTLP endpoint `{endpoint}`: only http{} endpoints are supported",
                    if cfg!(feature = "tls") {
                        " and https"
                    } else {
                        ""
                    }
                ));
            }
        }
        let delay = match nonempty("OTEL_BSP_SCHEDULE_DELAY") {
            None => Duration::from_millis(1000),
            Some(ms) => Duration::from_millis(ms.parse::<u64>().map_err(|_| {
                format!("OTEL_BSP_SCHEDULE_DELAY=`{ms}` is not a number of milliseconds")
            })?),
        };
        Ok(Some(Exporter {
            endpoint: uri,
            service: nonempty("OTEL_SERVICE_NAME").unwrap_or_else(|| gateway.to_owned()),
            delay: delay.max(Duration::from_millis(10)),
            queue: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            client: client()?,
        }))
    }

    /// Queues a finished span; drops it when the queue is full.
    pub fn record(&self, span: SpanRecord) {
        if let Ok(mut q) = self.queue.lock()
            && q.len() < MAX_QUEUED
        {
            q.push(span);
            return;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends queued spans every `delay`, for the life of the process.
    pub async fn run(&'static self) {
        let mut tick = tokio::time::interval(self.delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_warning: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = self.export().await
                && last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60))
            {
                tracing::warn!(endpoint = %self.endpoint, error = %e, "span export failed; spans dropped");
                last_warning = Some(std::time::Instant::now());
            }
        }
    }

    /// Sends what the queue holds now (used at shutdown too).
    pub async fn export(&self) -> Result<(), String> {
        let spans = match self.queue.lock() {
            Ok(mut q) if !q.is_empty() => std::mem::take(&mut *q),
            _ => return Ok(()),
        };
        let body = encode(&self.service, &spans);
        let req = Request::post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| "the collector did not answer within 10 s".to_owned())?
            .map_err(|e| crate::proxy::error_chain(&e))?;
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "span queue full: spans dropped");
        }
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {}", resp.status()))
        }
    }
}

/// The HTTP client spans are sent with.
pub type Client = hyper_util::client::legacy::Client<crate::proxy::Connector, Full<Bytes>>;

fn client() -> Result<Client, String> {
    let connector = crate::proxy::connector(Duration::from_secs(5), false)?;
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// The time since the epoch now.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// One `ExportTraceServiceRequest` holding `spans`, protobuf-encoded.
pub fn encode(service: &str, spans: &[SpanRecord]) -> Vec<u8> {
    let kv = |key: &str, value: any_value::Value| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    };
    let spans = spans
        .iter()
        .map(|s| Span {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            trace_state: s.state.clone().unwrap_or_default(),
            parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: s.name.clone(),
            kind: if s.client {
                span::SpanKind::Client
            } else {
                span::SpanKind::Server
            } as i32,
            start_time_unix_nano: u64::try_from(s.start.as_nanos()).unwrap_or(u64::MAX),
            end_time_unix_nano: u64::try_from(s.end.as_nanos()).unwrap_or(u64::MAX),
            attributes: s
                .attributes
                .iter()
                .map(|(k, v)| {
                    kv(
                        k,
                        match v {
                            Attr::Str(t) => any_value::Value::StringValue(t.clone()),
                            Attr::Int(i) => any_value::Value::IntValue(*i),
                        },
                    )
                })
                .collect(),
            status: Some(Status {
                code: if s.error {
                    status::StatusCode::Error
                } else {
                    status::StatusCode::Unset
                } as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue(service.to_owned()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "gatewayc-runtime".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    request.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_encode_to_a_request_that_decodes_back() {
        let span = SpanRecord {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            state: None,
            name: "GET /pets/{petId}".into(),
            client: false,
            start: Duration::from_secs(1),
            end: Duration::from_secs(2),
            attributes: vec![
                ("http.route", Attr::Str("/pets/{petId}".into())),
                ("http.response.status_code", Attr::Int(200)),
            ],
            error: false,
        };
        let bytes = encode("petstore", &[span]);
        let back =
            ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{e}"));
        let spans = &back.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans[0].trace_id, vec![1; 16]);
        assert_eq!(spans[0].parent_span_id, vec![3; 8]);
        assert_eq!(spans[0].kind, span::SpanKind::Server as i32);
        assert_eq!(spans[0].attributes[1].key, "http.response.status_code");
    }

    #[test]
    fn the_endpoint_comes_from_the_standard_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let none = Exporter::from_env(&env(&[]), "gw").unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_none());
        let base = Exporter::from_env(
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]),
            "gw",
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no exporter"));
        assert_eq!(base.endpoint.to_string(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(base.service, "gw");
        let bad = Exporter::from_env(
            &env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x/")]),
            "gw",
        );
        assert!(bad.is_err());
    }
}
