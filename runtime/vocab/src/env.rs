//! `${VAR}` and `${VAR:-default}` references: the syntax a spec uses to take a value from
//! the gateway's environment at start-up.
//!
//! Secrets never live in specs: the spec names a variable and the process environment
//! supplies it. The compiler checks the references a spec writes and the runtime resolves
//! them, so both split a template with [`pieces`]. The rules:
//!
//! - `${NAME}` is the value of variable `NAME`; `${NAME:-default}` is the same, or
//!   `default` when the variable is unset or empty. A name is ASCII letters, digits and
//!   `_` ([`is_var_name`]); the compiler also knows a few dotted names of its own
//!   (`${request.id}` in transforms), which never reach the environment.
//! - `$$` is a literal `$`, and so is a `$` that starts no reference.
//! - A `${` without a closing `}` is an error for the compiler; the runtime, which only
//!   sees templates the compiler accepted, keeps it as text.

use std::collections::BTreeSet;

/// A piece of a template, as [`pieces`] splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text taken as it is: `$$` gives `"$"`.
    Text(&'a str),
    /// `${name}` or `${name:-default}`. The name is not checked (see [`is_var_name`]).
    Ref {
        /// The reference as written, from `$` to `}`.
        raw: &'a str,
        /// What comes before the first `:-`, or everything between the braces.
        name: &'a str,
        /// What comes after the first `:-`, if there is one.
        default: Option<&'a str>,
    },
    /// A `${` with no `}` after it: the rest of the template, from the `$`.
    Unclosed(&'a str),
}

/// The pieces of `template`, in order. Consecutive [`Piece::Text`]s are not joined.
pub fn pieces(template: &str) -> Pieces<'_> {
    Pieces { rest: template }
}

/// The iterator [`pieces`] returns.
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        let Some(dollar) = rest.find('$') else {
            self.rest = "";
            return Some(Piece::Text(rest));
        };
        if dollar > 0 {
            self.rest = &rest[dollar..];
            return Some(Piece::Text(&rest[..dollar]));
        }
        if let Some(after) = rest.strip_prefix("$$") {
            self.rest = after;
            return Some(Piece::Text(&rest[..1]));
        }
        if let Some(body) = rest.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                self.rest = "";
                return Some(Piece::Unclosed(rest));
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            // `${`, the inner text, `}`.
            let len = 2 + end + 1;
            self.rest = &rest[len..];
            return Some(Piece::Ref {
                raw: &rest[..len],
                name,
                default,
            });
        }
        // A `$` that starts nothing: text up to the next `$`.
        let next = rest[1..].find('$').map_or(rest.len(), |i| i + 1);
        self.rest = &rest[next..];
        Some(Piece::Text(&rest[..next]))
    }
}

/// Whether `name` can name an environment variable: one or more ASCII letters, digits and
/// `_`.
pub fn is_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The value of variable `name` as a reference sees it: `None` when it is unset or empty,
/// so that a default applies to both.
pub fn var(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.is_empty())
}

/// Resolves every reference in `template` with `lookup` (the process environment, in
/// production).
///
/// Returns the resolved text, or the sorted names of every variable that had no value and
/// no default, so that an operator can fix them all in one go.
pub fn resolve(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, BTreeSet<String>> {
    let mut out = String::with_capacity(template.len());
    let mut missing = BTreeSet::new();
    for piece in pieces(template) {
        match piece {
            Piece::Text(text) | Piece::Unclosed(text) => out.push_str(text),
            Piece::Ref { name, default, .. } => match (var(lookup, name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    missing.insert(name.to_owned());
                }
            },
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            resolve("http://${HOST}:80", &env).as_deref(),
            Ok("http://pets.internal:80")
        );
        assert_eq!(
            resolve("${NOPE:-http://x}", &env).as_deref(),
            Ok("http://x")
        );
        assert_eq!(resolve("${EMPTY:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(resolve("${HOST:-}", &env).as_deref(), Ok("pets.internal"));
        assert_eq!(resolve("${NOPE:-}", &env).as_deref(), Ok(""));
        assert_eq!(resolve("a$$b", &env).as_deref(), Ok("a$b"));
        assert_eq!(resolve("$${HOST}", &env).as_deref(), Ok("${HOST}"));
        assert_eq!(resolve("5$ and $", &env).as_deref(), Ok("5$ and $"));
        assert_eq!(resolve("x${HOST", &env).as_deref(), Ok("x${HOST"));
        let missing = resolve("${B}/${A}/${HOST}/${A}/${EMPTY}", &env).unwrap_err();
        assert_eq!(missing.into_iter().collect::<Vec<_>>(), ["A", "B", "EMPTY"]);
    }

    #[test]
    fn templates_split_into_text_references_and_unclosed_rest() {
        let all = |t| pieces(t).collect::<Vec<_>>();
        assert_eq!(
            all("a-${X}-${Y:-d:-e}$$-$"),
            [
                Piece::Text("a-"),
                Piece::Ref {
                    raw: "${X}",
                    name: "X",
                    default: None
                },
                Piece::Text("-"),
                Piece::Ref {
                    raw: "${Y:-d:-e}",
                    name: "Y",
                    default: Some("d:-e")
                },
                Piece::Text("$"),
                Piece::Text("-"),
                Piece::Text("$"),
            ]
        );
        assert_eq!(all(""), []);
        assert_eq!(
            all("${}${a b}"),
            [
                Piece::Ref {
                    raw: "${}",
                    name: "",
                    default: None
                },
                Piece::Ref {
                    raw: "${a b}",
                    name: "a b",
                    default: None
                },
            ]
        );
        assert_eq!(
            all("x${Y}${unclosed $$"),
            [
                Piece::Text("x"),
                Piece::Ref {
                    raw: "${Y}",
                    name: "Y",
                    default: None
                },
                Piece::Unclosed("${unclosed $$"),
            ]
        );
    }

    #[test]
    fn variable_names_are_ascii_words() {
        for good in ["HOME", "JWT_SECRET", "_", "a1"] {
            assert!(is_var_name(good), "{good}");
        }
        for bad in ["", "a b", "request.id", "A-B", "É"] {
            assert!(!is_var_name(bad), "{bad}");
        }
    }
}
