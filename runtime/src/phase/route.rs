//! Phases 2 to 4: check the path, answer a CORS preflight, route.
//!
//! The path is checked for dot segments and encoded NULs (400); a CORS preflight is
//! answered here and goes no further; then the generated router picks the operation
//! (404, 405 with `Allow`, 400 for a bad typed parameter or an unknown version).

use http::{Request, Response};

use super::State;
use super::ctx::Ctx;
use crate::body::Body;
use crate::gateway::{Gateway, Plan};
use crate::param;
use crate::problem::{Kind, Problem};

/// The plan for the request, or the answer that ends it here.
// The answer is large, and moved once, straight to the caller's return: boxing it would
// cost an allocation on every 404 and preflight for nothing.
#[allow(clippy::result_large_err)]
pub(super) fn run<G: Gateway, B>(
    state: &State,
    ctx: &mut Ctx,
    req: &Request<B>,
) -> Result<Plan, Result<Response<Body>, Problem>> {
    let path = req.uri().path();
    param::check_path(path)
        .map_err(|why| Err(Problem::bad_path(why).because(Kind::BadRequest, "")))?;
    if let Some(cors) = &state.cors
        && let Some(answer) = cors.preflight::<G>(req.method(), path, req.headers())
    {
        return Err(answer);
    }
    let plan = G::plan_for(req.method(), path, req.headers()).map_err(|e| Err(e.into_problem()))?;
    ctx.op = Some(plan.op);
    Ok(plan)
}
