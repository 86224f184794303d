//! Phase 7: the request body is bounded, and the request checked against its operation's
//! schemas (`x-gateway.validate`, on by default where the spec declares schemas).
//!
//! A declared `Content-Length` over the operation's `max_body` is 413 before anything is
//! read; a streamed body is cut off past it. Parameters are decoded as their `style` says
//! and checked by the generated validators ([`crate::validate::request`]). A JSON body is
//! read (within the operation's `timeout`, at most `max_body`), parsed once and checked;
//! the parse travels on with the request ([`Parsed`]) so that a body transform does not
//! parse it again. A request that breaks its schemas gets 400 with every violation, up to
//! [`crate::validate::MAX_VIOLATIONS`], and never reaches the upstream. A body in another
//! media type than the JSON an operation declares exclusively is 415.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::Poll;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use super::ctx::Ctx;
use crate::body::Body;
use crate::gateway::OperationDef;
use crate::problem::{Kind, Problem};
use crate::validate::Detail;
use crate::validate::request::{BodyDef, Report, check_params, is_json};

/// A request body the validate phase parsed, carried in the request's extensions for the
/// request transform.
#[derive(Debug, Clone)]
pub(crate) struct Parsed(pub(crate) Arc<Value>);

/// The request with its body bounded by `max_body`, once its parameters and body pass the
/// operation's checks.
pub(super) async fn run(
    ctx: &mut Ctx,
    op: &'static OperationDef,
    req: Request<Incoming>,
) -> Result<Request<Body>, Problem> {
    if let Some(len) = crate::proxy::content_length(req.headers())
        && len > op.max_body
    {
        return Err(crate::proxy::too_large(op.max_body));
    }
    let req = if req.body().is_end_stream() {
        req.map(|body| Body::limited(body, op.max_body))
    } else {
        let counter = Arc::new(AtomicU64::new(0));
        ctx.bytes_in = Some(counter.clone());
        req.map(|body| Body::counted(body, op.max_body, counter))
    };
    let Some(def) = op.validate else {
        return Ok(req);
    };
    let mut report = Report::default();
    check_params(
        def,
        op.path,
        req.uri().path(),
        req.uri().query(),
        req.headers(),
        &mut report,
    );
    let req = match def.body {
        Some(body) => check_body(op, body, req, &mut report).await?,
        None => req,
    };
    if report.is_empty() {
        return Ok(req);
    }
    Err(invalid(report))
}

/// The 400 for a request that breaks its schemas.
fn invalid(report: Report) -> Problem {
    let n = report.invalid.len();
    let more = if report.truncated { " or more" } else { "" };
    let detail = if n == 1 && !report.truncated {
        "the request does not match the operation's schema: 1 error".to_owned()
    } else {
        format!("the request does not match the operation's schema: {n}{more} errors")
    };
    let reason = report
        .invalid
        .first()
        .map(|i| match i.name {
            Some(name) => format!("invalid {} parameter `{name}`", i.location),
            None => "invalid request body".to_owned(),
        })
        .unwrap_or_default();
    let mut p = Problem::new(StatusCode::BAD_REQUEST, detail).because(Kind::Invalid, reason);
    p.errors = report.invalid;
    p
}

/// Reads, parses and checks a JSON request body; hands the request on with the body's
/// bytes and its parse. Bodies in another media type are left alone, or refused when the
/// operation takes only JSON.
async fn check_body(
    op: &OperationDef,
    def: BodyDef,
    req: Request<Body>,
    report: &mut Report,
) -> Result<Request<Body>, Problem> {
    let declared_empty = crate::proxy::content_length(req.headers()) == Some(0);
    if req.body().is_end_stream() || declared_empty {
        if def.required {
            report.push("body", None, Detail::Missing);
        }
        return Ok(req);
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(is_json) {
        if !def.json_only {
            return Ok(req);
        }
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this operation takes a JSON body: send it with `Content-Type: application/json`",
        )
        .because(Kind::UnsupportedMediaType, "not a JSON body")
        .with_header(
            http::HeaderName::from_static("accept-post"),
            http::HeaderValue::from_static("application/json"),
        ));
    }
    if crate::transform::encoded(req.headers()) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this operation checks JSON request bodies, which must be sent without Content-Encoding",
        )
        .because(Kind::UnsupportedMediaType, "encoded JSON body"));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = read(op, body).await?;
    if bytes.is_empty() {
        if def.required {
            report.push("body", None, Detail::Missing);
        }
        return Ok(Request::from_parts(parts, Body::Empty));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => {
            report.check("body", None, &value, def.check);
            // Kept only for a request body transform, which would parse it again.
            if op.transform.is_some_and(|t| t.request.body.is_some()) {
                parts.extensions.insert(Parsed(Arc::new(value)));
            }
        }
        Err(e) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {e}"),
            )
            .because(Kind::BadRequest, "request body is not JSON"));
        }
    }
    Ok(Request::from_parts(parts, Body::full(bytes)))
}

/// The whole body, within the operation's timeout: a client that trickles its body must
/// not hold the request (and up to `max_body` of memory) for ever.
pub(crate) async fn read(op: &OperationDef, body: Body) -> Result<Bytes, Problem> {
    let mut collect = std::pin::pin!(body.collect());
    // A small body has usually arrived with the head: one poll takes it, with no timer
    // armed. Only a body still on its way waits under the operation's timeout.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(collected) => collected,
        Poll::Pending => tokio::time::timeout(op.timeout, collect)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                )
            })?,
    };
    let collected = collected.map_err(|e| {
        if crate::proxy::is_too_large(&*e) {
            crate::proxy::too_large(op.max_body)
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        }
    })?;
    Ok(collected.to_bytes())
}

/// Largest answer `validate.response: report` reads to check it.
const MAX_REPORTED_BODY: u64 = 8 << 20;

/// `validate.response: report`: a JSON answer of known length (at most 8 MiB) is read and
/// checked against the schema declared for its status; what breaks it is logged (a
/// warning naming the operation, the status and the first violations) and counted in
/// `gateway_response_schema_violations_total`. The answer goes to the client unchanged
/// either way; one whose body breaks off is a 502, as it would be unchecked once its
/// head had been sent.
pub(super) async fn report_response(
    op: &'static OperationDef,
    def: &crate::validate::request::ValidateDef,
    resp: http::Response<Body>,
    request_id: &http::HeaderValue,
) -> Result<http::Response<Body>, Problem> {
    let Some(check) = def.response(resp.status().as_u16()) else {
        return Ok(resp);
    };
    let json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    let encoded = crate::transform::encoded(resp.headers());
    let size = resp.body().size_hint().exact();
    if !json || encoded || size.is_none_or(|n| n > MAX_REPORTED_BODY) {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(Problem::bad_gateway().because(
                Kind::UpstreamReset,
                format!("the answer's body broke off: {e}"),
            ));
        }
    };
    let mut report = Report::default();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => report.check("body", None, &value, check),
        Err(_) => report.push("body", None, Detail::NotJson),
    }
    if !report.is_empty() {
        crate::observe::metrics::response_schema_violation(op.id);
        let first: Vec<String> = report
            .invalid
            .iter()
            .take(3)
            .map(|i| {
                format!(
                    "{}: {}",
                    if i.pointer.is_empty() {
                        "/"
                    } else {
                        &i.pointer
                    },
                    i.detail
                )
            })
            .collect();
        tracing::warn!(
            operation = op.id,
            status = parts.status.as_u16(),
            request_id = request_id.to_str().unwrap_or_default(),
            violations = report.invalid.len(),
            first = %first.join("; "),
            "an answer breaks its response schema"
        );
    }
    Ok(http::Response::from_parts(parts, Body::full(bytes)))
}
