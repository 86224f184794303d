//! The admin listener (`GATEWAY_ADMIN_LISTEN`): `/metrics`, `/healthz` and `/readyz`, on an
//! address of their own, never on the public port.
//!
//! It is a plain hyper HTTP/1.1 server: three fixed paths need no router (axum would add
//! build time and nothing else here). `/readyz` runs its checks on every call, each bounded
//! by the store's own timeout; on SIGTERM it answers 503 at once (before the public
//! listener closes), so that a load balancer stops sending new requests first.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use super::metrics::Metrics;
use crate::conns::Connections;
use crate::phase::State;
use crate::upstream::Upstreams;

/// What readiness depends on besides the gateway's state.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The public listener is bound and accepting.
    pub listening: AtomicBool,
    /// SIGTERM has arrived.
    pub stopping: AtomicBool,
}

/// What the admin handlers read.
#[derive(Debug)]
struct Admin {
    state: &'static State,
    metrics: Option<&'static Metrics>,
    readiness: &'static Readiness,
    connections: &'static Connections,
}

/// Serves the admin endpoints on `listener` for the life of the process.
pub(crate) async fn serve(
    listener: TcpListener,
    state: &'static State,
    readiness: &'static Readiness,
    connections: &'static Connections,
) {
    let admin: &'static Admin = Box::leak(Box::new(Admin {
        state,
        metrics: state.observe.metrics,
        readiness,
        connections,
    }));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(admin, req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    admin: &Admin,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n"));
    }
    Ok(match req.uri().path() {
        "/healthz" => json_response(StatusCode::OK, &json!({ "status": "ok" })),
        "/readyz" => {
            let (ready, checks) = readiness(admin).await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_response(
                status,
                &json!({
                    "status": if ready { "ready" } else { "not ready" },
                    "checks": Value::Object(checks),
                }),
            )
        }
        "/metrics" => match admin.metrics {
            None => text(StatusCode::NOT_FOUND, "metrics are off\n"),
            Some(m) => {
                let openmetrics = req
                    .headers()
                    .get_all(ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.contains("application/openmetrics-text"));
                let body = m.encode(openmetrics, admin.connections.live());
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(if openmetrics {
                        "application/openmetrics-text; version=1.0.0; charset=utf-8"
                    } else {
                        "text/plain; version=0.0.4; charset=utf-8"
                    }),
                );
                resp
            }
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        ),
    })
}

/// Runs every readiness check; ready when all pass.
async fn readiness(admin: &Admin) -> (bool, Map<String, Value>) {
    let mut checks = Map::new();
    let mut ready = true;
    let mut put = |name: &str, result: Result<(), String>| {
        ready &= result.is_ok();
        checks.insert(
            name.to_owned(),
            Value::String(result.err().unwrap_or_else(|| "ok".to_owned())),
        );
    };
    put(
        "listener",
        if admin.readiness.listening.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("not bound yet".to_owned())
        },
    );
    put("upstreams", resolve(&admin.state.upstreams).await);
    if let Some(limits) = &admin.state.limits
        && let Some(result) = limits.readiness().await
    {
        put("limit_store", result);
    }
    for (name, result) in admin.state.access.readiness().await {
        put(name, result);
    }
    if admin.readiness.stopping.load(Ordering::SeqCst) {
        put("shutdown", Err("stopping".to_owned()));
    }
    // Reported, but not a readiness failure: taking the gateway out of a load balancer
    // does not bring an upstream back, and its other operations still work.
    let unhealthy: Vec<&str> = admin
        .state
        .upstreams
        .iter()
        .filter(|u| !u.has_usable_target())
        .map(|u| u.name)
        .collect();
    checks.insert(
        "upstream_targets".to_owned(),
        Value::String(if unhealthy.is_empty() {
            "ok".to_owned()
        } else {
            format!("no healthy target: {}", unhealthy.join(", "))
        }),
    );
    (ready, checks)
}

/// Whether the host name of every target of every upstream resolves now (within 2 s
/// each).
async fn resolve(upstreams: &Upstreams) -> Result<(), String> {
    let mut failed = Vec::new();
    for t in upstreams.iter().flat_map(|u| u.targets()) {
        let connect_uri = &t.address.connect_uri;
        let Some(host) = connect_uri.host() else {
            continue;
        };
        let port = connect_uri
            .port_u16()
            .unwrap_or(if connect_uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let looked_up = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::lookup_host((host, port)),
        )
        .await;
        let resolved = match looked_up {
            Ok(Ok(mut addrs)) => addrs.next().is_some(),
            _ => false,
        };
        if !resolved {
            failed.push(host.to_owned());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("cannot resolve {}", failed.join(", ")))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
