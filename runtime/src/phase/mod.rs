//! The request path: the phases of `docs/phases.md`, each in its own module, run in order
//! over one per-request context ([`ctx::Ctx`]) by [`handle`].
//!
//! ```text
//! accept ─▶ route ─▶ authenticate ─▶ limit ─▶ validate ─▶ forward ─▶ respond
//! (ids,     (path     (security,      (plans,   (max_body,  (mock, upstream,   (problem+json, headers
//!  trace)    check,    forwarded       route     params,     aggregate,         decorated once; log,
//!            CORS      claims)         limits)   JSON body)  transforms)        metrics, spans at the
//!            preflight,                                                         end of the body)
//!            router)
//! ```
//!
//! A phase either lets the request go on or ends it with an answer (a [`Problem`], or a
//! CORS preflight's 204). Every answer, whichever phase made it, is decorated in one place
//! ([`respond::answer`]): limit headers, deprecation, CORS, `Vary`, `X-Request-Id`. The
//! context is then carried by the response body and reported when the body is done
//! ([`respond::Finish`]). Dispatch is static: phases are plain async functions, nothing is
//! boxed on the way.

pub mod ctx;

mod accept;
mod authenticate;
mod forward;
mod limit;
mod respond;
mod route;
pub(crate) mod validate;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

pub(crate) use respond::Finish;

use crate::access::Access;
use crate::body::Body;
use crate::conns::{Conn, Reply};
use crate::cors::Cors;
use crate::gateway::Gateway;
use crate::observe::Observe;
use crate::problem::Problem;
use crate::traffic::Limits;
use crate::transform;
use crate::upstream::Upstreams;

/// Everything a request needs, built once at start-up and never freed.
#[derive(Debug)]
pub(crate) struct State {
    /// Every upstream: targets, balancing, connection pools.
    pub(crate) upstreams: Upstreams,
    pub(crate) access: Access,
    pub(crate) cors: Option<Cors>,
    pub(crate) limits: Option<Limits>,
    /// Environment values transforms use.
    pub(crate) env: transform::Env,
    /// The response cache, when an operation is cached.
    pub(crate) cache: Option<crate::cache::Cache>,
    /// Where the access log, metrics and spans go.
    pub(crate) observe: Observe,
}

/// Serves one request: the phases in order, then the answer decorated and handed to the
/// connection with the context that reports it.
pub(crate) async fn handle<G: Gateway>(
    state: &'static State,
    client: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<Reply>, Infallible> {
    let in_flight = client.busy();
    let mut ctx = accept::begin(state, in_flight.peer(), &req);
    let origin = match &state.cors {
        Some(_) => req.headers().get(http::header::ORIGIN).cloned(),
        None => None,
    };
    let result = run::<G>(state, &mut ctx, req).await;
    let resp = respond::answer::<G>(state, &mut ctx, result, origin.as_ref());
    Ok(respond::reply::<G>(state, ctx, resp, in_flight))
}

/// Phases 2 to 9; the first that ends the request gives its answer.
async fn run<G: Gateway>(
    state: &'static State,
    ctx: &mut ctx::Ctx,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Problem> {
    let plan = match route::run::<G, _>(state, ctx, &req) {
        Ok(plan) => plan,
        Err(answer) => return answer,
    };
    let principal = authenticate::run(state, ctx, plan.op, &mut req).await?;
    limit::run(state, ctx, plan.op, principal.as_ref(), &req).await?;
    let req = validate::run(ctx, plan.op, req).await?;
    forward::run(state, ctx, plan, principal, req).await
}
