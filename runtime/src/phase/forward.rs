//! Phases 7 to 9: transform the request, call the upstream (or answer from the spec's
//! example, or aggregate several upstreams), transform the response.
//!
//! Validation (phase 7) and the cache (phase 8) are not built yet; see `docs/phases.md`.
//! The request body is limited to the operation's `max_body` on every branch: streamed
//! bodies are cut off past it, and a declared `Content-Length` over it is refused with 413
//! before anything is sent, an aggregate (whose parts never see the body) included.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;

use super::State;
use super::ctx::Ctx;
use crate::access::Principal;
use crate::body::Body;
use crate::gateway::{MockResponse, Plan};
use crate::problem::{Kind, Problem};
use crate::proxy::Target;
use crate::transform;

/// The answer from upstream, example or aggregate, with transforms applied.
pub(super) async fn run(
    state: &'static State,
    ctx: &mut Ctx,
    plan: Plan,
    principal: Option<Principal>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Problem> {
    let op = plan.op;
    if let Some(len) = crate::proxy::content_length(req.headers())
        && len > op.max_body
    {
        return Err(crate::proxy::too_large(op.max_body));
    }
    if let Some(aggregate) = op.aggregate {
        let headers = crate::aggregate::part_headers(&req, state.access.forwarded_headers(), ctx);
        return crate::aggregate::answer(
            aggregate,
            op.id,
            &state.proxy,
            &state.targets,
            plan.path.as_str(),
            headers,
        )
        .await;
    }
    let req = if req.body().is_end_stream() {
        req.map(|body| Body::limited(body, op.max_body))
    } else {
        let counter = Arc::new(AtomicU64::new(0));
        ctx.bytes_in = Some(counter.clone());
        req.map(|body| Body::counted(body, op.max_body, counter))
    };
    let target = &state.targets[op.upstream];
    let Some(t) = op.transform else {
        return match target {
            Target::Mock => mock(op.mock.as_ref(), op.id),
            Target::Http { .. } => {
                state
                    .proxy
                    .forward(op.upstream, target, plan, req, ctx)
                    .await
            }
        };
    };
    let request_id = ctx.request_id.clone();
    let cx = transform::Context {
        env: &state.env,
        request_id: &request_id,
        principal: principal.as_ref(),
        head: req.method() == http::Method::HEAD,
    };
    let req = transform::request(op, t, req, &cx).await?;
    let resp = match target {
        Target::Mock => mock(op.mock.as_ref(), op.id)?,
        Target::Http { .. } => {
            state
                .proxy
                .forward(op.upstream, target, plan, req, ctx)
                .await?
        }
    };
    transform::response(op, t, resp, &cx).await
}

/// The operation's example response (mock mode), or 501 when it has none.
fn mock(example: Option<&MockResponse>, operation: &str) -> Result<Response<Body>, Problem> {
    let Some(example) = example else {
        return Err(Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("operation `{operation}` has no upstream URL and no example response"),
        )
        .because(
            Kind::NotImplemented,
            "mock mode: the operation has no example",
        ));
    };
    let mut resp = Response::new(Body::full(Bytes::from_static(example.body.as_bytes())));
    *resp.status_mut() = StatusCode::from_u16(example.status).unwrap_or(StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(example.content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    Ok(resp)
}
