//! `${VAR}` and `${VAR:-default}` references in configuration values, resolved at start-up.
//!
//! Secrets never live in specs: the spec names a variable and the process environment
//! supplies it. Every missing variable is reported at once, so an operator fixes them all
//! in one go.

use std::collections::BTreeSet;

/// Resolves every `${VAR}` / `${VAR:-default}` in `template` with `lookup`.
///
/// Returns the resolved text, or the sorted names of every variable that had no value and
/// no default. `$$` stands for a literal `$`.
pub fn resolve_with(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, BTreeSet<String>> {
    let mut out = String::with_capacity(template.len());
    let mut missing = BTreeSet::new();
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix("${")
            && let Some(end) = body.find('}')
        {
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match lookup(name).filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(&v),
                None => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        missing.insert(name.to_owned());
                    }
                },
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// Resolves `template` against the process environment.
pub fn resolve(template: &str) -> Result<String, BTreeSet<String>> {
    resolve_with(template, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::resolve_with;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("pets.internal".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_reports_all_missing() {
        assert_eq!(
            resolve_with("http://${HOST}:80", &env).as_deref(),
            Ok("http://pets.internal:80")
        );
        assert_eq!(
            resolve_with("${NOPE:-http://x}", &env).as_deref(),
            Ok("http://x")
        );
        assert_eq!(resolve_with("${EMPTY:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(resolve_with("a$$b", &env).as_deref(), Ok("a$b"));
        let missing = resolve_with("${B}/${A}/${HOST}/${A}", &env).unwrap_err();
        assert_eq!(
            missing.into_iter().collect::<Vec<_>>(),
            vec!["A".to_owned(), "B".to_owned()]
        );
    }
}
