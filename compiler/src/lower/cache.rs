//! `x-gateway.cache` on an operation or a path item: a shared response cache in front of
//! the upstream (runtime/src/cache.rs, docs/x-gateway.md). What is read here is the
//! operation's side of it: how long an answer without its own freshness stays fresh, how
//! long a stored answer may stand in for a failing upstream, and which request headers
//! tell answers apart.
//!
//! Only GET answers are stored (HEAD is answered from them): `cache` on an operation of
//! another method is E1002; on a path item it applies to the item's GET operation.

use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::lower::header;
use crate::lower::reader::{Obj, type_error};
use crate::model::Cache;
use serde_json::Value;

/// Reads `cache`; `None` when absent or unusable (diagnostics pushed).
pub fn read(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<(Cache, Location)> {
    let loc = obj.loc("cache");
    let mut c = obj.object("cache", "x-gateway.cache", d)?;
    let ttl = c.duration("ttl", d);
    let stale_if_error = c.duration("stale_if_error", d);
    let stale_while_revalidate = c.duration("stale_while_revalidate", d);
    let vary_loc = c.loc("vary");
    let mut vary = Vec::new();
    match c.raw("vary") {
        None => {}
        Some(Value::Array(names)) => {
            for (i, v) in names.iter().enumerate() {
                match v.as_str().and_then(header::name) {
                    Some(name) if !vary.contains(&name) => vary.push(name),
                    Some(_) => {}
                    None => d.push(
                        Diagnostic::error(
                            "E1001",
                            Some(Location::value(
                                vary_loc.file,
                                format!("{}/{i}", vary_loc.pointer),
                            )),
                            format!("`vary` lists a header name, found {v}"),
                        )
                        .hint("write request header names: `vary: [Accept-Language]`"),
                    ),
                }
            }
        }
        Some(other) => d.push(type_error(
            vary_loc,
            "vary",
            "a list of header names",
            other,
        )),
    }
    c.finish(d);
    Some((
        Cache {
            ttl,
            stale_if_error,
            stale_while_revalidate,
            vary,
        },
        loc,
    ))
}

/// E1002 for `cache` written on an operation whose answers are never stored.
pub fn not_get(method: &str, loc: Location) -> Diagnostic {
    Diagnostic::error(
        "E1002",
        Some(loc),
        format!("`cache` stores GET answers; a {method} answer is never stored"),
    )
    .hint("put `cache` on the GET operation (HEAD requests are answered from it)")
}
