//! Phase 5, authenticate and authorize.
//!
//! Hop-by-hop headers are removed first, before the gateway sets any header, so a client's
//! `Connection: x-user-id` cannot remove a forwarded claim; then client-sent copies of
//! forwarded-claim headers. For an operation with `security`, [`crate::access::Access`]
//! tries its alternatives. A request whose credential fails counts against the anonymous
//! plan of its client's address, so guessing keys or tokens is rate limited too.

use http::{Request, StatusCode};
use hyper::body::Incoming;

use super::State;
use super::ctx::Ctx;
use crate::access::Principal;
use crate::gateway::OperationDef;
use crate::problem::Problem;

/// Who the request is from (`None` for a public operation), or the 401/403/503 problem.
pub(super) async fn run(
    state: &State,
    ctx: &mut Ctx,
    op: &'static OperationDef,
    req: &mut Request<Incoming>,
) -> Result<Option<Principal>, Problem> {
    crate::proxy::remove_hop_by_hop(req.headers_mut());
    state.access.strip_forwarded(req.headers_mut());
    if op.security.is_empty() {
        return Ok(None);
    }
    let uri = req.uri().clone();
    let client_cert = ctx.client_identity.clone();
    match state
        .access
        .check(op, req.headers_mut(), uri.query(), client_cert.as_ref())
        .await
    {
        Ok(principal) => {
            ctx.consumer = principal.as_ref().and_then(|p| p.consumer.clone());
            Ok(principal)
        }
        Err(problem) => {
            if problem.status == StatusCode::UNAUTHORIZED
                && !op.health_check
                && let Some(limits) = &state.limits
            {
                limits
                    .check(op, None, ctx.peer, req.headers(), &mut ctx.plan)
                    .await?;
            }
            Err(problem)
        }
    }
}
