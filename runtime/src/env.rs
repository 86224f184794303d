//! `${VAR}` and `${VAR:-default}` references in configuration values, resolved at start-up.
//!
//! The syntax is `gatewayc_vocab::env`'s, which the compiler checks specs against; this
//! module keeps the names the rest of the runtime calls. Every missing variable is reported
//! at once, so an operator fixes them all in one go.

use std::collections::BTreeSet;

/// Resolves every `${VAR}` / `${VAR:-default}` in `template` with `lookup`.
///
/// Returns the resolved text, or the sorted names of every variable that had no value and
/// no default. `$$` stands for a literal `$`.
pub fn resolve_with(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, BTreeSet<String>> {
    gatewayc_vocab::env::resolve(template, lookup)
}

/// Resolves `template` against the process environment.
pub fn resolve(template: &str) -> Result<String, BTreeSet<String>> {
    resolve_with(template, &|name| std::env::var(name).ok())
}
