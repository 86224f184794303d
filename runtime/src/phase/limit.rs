//! Phase 6, limit: the request is counted on its consumer's plan (or the anonymous plan of
//! its address) and the operation's route limits, in one step ([`crate::traffic::Limits`]).
//! Its `RateLimit` headers go into the context, for whatever answer the request gets.
//! An operation marked `x-gateway.health_check` is never counted.

use http::Request;

use super::State;
use super::ctx::Ctx;
use crate::access::Principal;
use crate::gateway::OperationDef;
use crate::problem::Problem;

/// Counts the request, or refuses it (429, or 503 when the limit store cannot answer).
pub(super) async fn run<B>(
    state: &State,
    ctx: &mut Ctx,
    op: &'static OperationDef,
    principal: Option<&Principal>,
    req: &Request<B>,
) -> Result<(), Problem> {
    let Some(limits) = &state.limits else {
        return Ok(());
    };
    if op.health_check {
        return Ok(());
    }
    ctx.limit_headers = limits
        .check(op, principal, ctx.peer, req.headers(), &mut ctx.plan)
        .await?;
    Ok(())
}
