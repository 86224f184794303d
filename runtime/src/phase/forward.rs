//! Phases 8 and 9: transform the request, answer from the response cache (phase 8,
//! runtime/src/cache.rs) or call the upstream (or answer from the spec's example, or
//! aggregate several upstreams), transform the response. The cache keeps answers as
//! transforms leave them, so a hit skips both.
//!
//! The request body comes bounded by the operation's `max_body`, and checked, from
//! phase 7 (`validate.rs`).

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};

use super::State;
use super::ctx::Ctx;
use crate::access::Principal;
use crate::body::Body;
use crate::gateway::{MockResponse, Plan};
use crate::problem::{Kind, Problem};
use crate::transform;
use crate::upstream::{Affinity, Upstream};

/// The answer from the cache, or from upstream, example or aggregate with transforms
/// applied.
pub(super) async fn run(
    state: &'static State,
    ctx: &mut Ctx,
    plan: Plan,
    principal: Option<Principal>,
    req: Request<Body>,
) -> Result<Response<Body>, Problem> {
    if let (Some(def), Some(cache)) = (plan.op.cache, &state.cache) {
        let consumer = principal.as_ref().and_then(|p| p.consumer.clone());
        let lookup = crate::cache::Lookup::new(cache, def, plan.op, &req, consumer.as_deref());
        return lookup
            .serve(|| fetch(state, ctx, plan, principal, req))
            .await;
    }
    fetch(state, ctx, plan, principal, req).await
}

/// The answer from upstream, example or aggregate, with transforms applied.
async fn fetch(
    state: &'static State,
    ctx: &mut Ctx,
    plan: Plan,
    principal: Option<Principal>,
    req: Request<Body>,
) -> Result<Response<Body>, Problem> {
    let op = plan.op;
    if let Some(aggregate) = op.aggregate {
        let headers = crate::aggregate::part_headers(&req, state.access.forwarded_headers(), ctx);
        let affinity = affinity(&req, op.path, principal.as_ref());
        return crate::aggregate::answer(
            aggregate,
            op.id,
            &state.upstreams,
            &affinity,
            plan.path.as_str(),
            headers,
        )
        .await;
    }
    let Some(upstream) = state.upstreams.get(op.upstream) else {
        return Err(Problem::bad_gateway().because(Kind::Gateway, "no such upstream"));
    };
    let Some(t) = op.transform else {
        let resp = call(upstream, plan, req, principal.as_ref(), ctx).await?;
        return report(op, resp, ctx).await;
    };
    let request_id = ctx.request_id.clone();
    let cx = transform::Context {
        env: &state.env,
        request_id: &request_id,
        principal: principal.as_ref(),
        head: req.method() == http::Method::HEAD,
    };
    let req = transform::request(op, t, req, &cx).await?;
    let resp = call(upstream, plan, req, principal.as_ref(), ctx).await?;
    // The spec's response schema describes the upstream's answer: it is checked before
    // the response transform rewrites it.
    let resp = report(op, resp, ctx).await?;
    transform::response(op, t, resp, &cx).await
}

/// `validate.response: report`: the answer checked against its schema, and passed on.
async fn report(
    op: &'static crate::gateway::OperationDef,
    resp: Response<Body>,
    ctx: &Ctx,
) -> Result<Response<Body>, Problem> {
    match op.validate {
        Some(def) if !def.responses.is_empty() => {
            super::validate::report_response(op, def, resp, &ctx.request_id).await
        }
        _ => Ok(resp),
    }
}

/// The upstream's answer, from the target the upstream's balancing chooses; or, in mock
/// mode, the operation's example.
async fn call(
    upstream: &Upstream,
    plan: Plan,
    req: Request<Body>,
    principal: Option<&Principal>,
    ctx: &mut Ctx,
) -> Result<Response<Body>, Problem> {
    let op = plan.op;
    // Read only by upstreams that hash a key of the request.
    let target = upstream.pick(|| affinity(&req, op.path, principal));
    match target {
        None => mock(op.mock.as_ref(), op.id),
        Some(target) => crate::proxy::forward(upstream, target, plan, req, ctx).await,
    }
}

/// What `balance: hash` may key on: the request's headers and path, the operation's path
/// template, and the authenticated consumer and claims.
fn affinity<'r, B>(
    req: &'r Request<B>,
    template: &'static str,
    principal: Option<&'r Principal>,
) -> Affinity<'r> {
    Affinity {
        headers: req.headers(),
        path: req.uri().path(),
        template,
        consumer: principal.and_then(|p| p.consumer.as_deref()),
        claims: principal
            .and_then(|p| p.token.as_deref())
            .map(|token| &token.claims),
    }
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
