//! A strict reader for `x-gateway` objects.
//!
//! Each getter names the key it reads; [`Obj::finish`] then reports every key that no getter
//! asked for, with a did-you-mean from the keys that were asked for. So the list of known
//! keys is the code that reads them, and cannot drift from it.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::spec::source::child;

/// An object being read, in file `file` at `pointer`.
#[derive(Debug)]
pub struct Obj<'s> {
    /// File index.
    pub file: usize,
    /// Pointer of the object.
    pub pointer: String,
    map: &'s Map<String, Value>,
    what: &'static str,
    known: Vec<&'static str>,
}

impl<'s> Obj<'s> {
    /// Starts reading `value`; reports an error and returns `None` if it is not an object.
    pub fn new(
        file: usize,
        pointer: String,
        value: &'s Value,
        what: &'static str,
        d: &mut Diagnostics,
    ) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Obj {
                file,
                pointer,
                map,
                what,
                known: Vec::new(),
            }),
            other => {
                d.push(Diagnostic::error(
                    "E0201",
                    Some(Location::value(file, pointer)),
                    format!("{what} must be an object, found {}", kind(other)),
                ));
                None
            }
        }
    }

    /// Location of member `key`'s value.
    pub fn loc(&self, key: &str) -> Location {
        Location::value(self.file, child(&self.pointer, key))
    }

    /// Location of the object itself.
    pub fn here(&self) -> Location {
        Location::value(self.file, self.pointer.clone())
    }

    /// Whether member `key` is present (without marking it as known).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Reads member `key` as it is, marking the key as known.
    pub fn raw(&mut self, key: &'static str) -> Option<&'s Value> {
        self.known.push(key);
        self.map.get(key)
    }

    /// Reads a string member.
    pub fn string(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                d.push(type_error(self.loc(key), key, "a string", other));
                None
            }
        }
    }

    /// Reads a boolean member.
    pub fn boolean(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                d.push(type_error(self.loc(key), key, "true or false", other));
                None
            }
        }
    }

    /// Reads a duration member (`250ms`, `2s`, `1m`, `1h`).
    pub fn duration(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Duration> {
        let v = self.raw(key)?;
        match v.as_str().and_then(parse_duration) {
            Some(dur) if !dur.is_zero() => Some(dur),
            _ => {
                d.push(
                    Diagnostic::error(
                        "E0203",
                        Some(self.loc(key)),
                        format!("`{key}` must be a positive duration, found {}", show(v)),
                    )
                    .hint("write a number and a unit: `250ms`, `2s`, `1m`, `1h`"),
                );
                None
            }
        }
    }

    /// Reads a size member (`1MiB`, `512KiB`, `10MB`, or a number of bytes).
    pub fn size(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<u64> {
        let v = self.raw(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => parse_size(s),
            _ => None,
        };
        if parsed.is_none() {
            d.push(
                Diagnostic::error(
                    "E0203",
                    Some(self.loc(key)),
                    format!("`{key}` must be a size, found {}", show(v)),
                )
                .hint("write bytes or a number and a unit: `512KiB`, `10MiB`, `1GB`"),
            );
        }
        parsed
    }

    /// Reads a nested object member.
    pub fn object(
        &mut self,
        key: &'static str,
        what: &'static str,
        d: &mut Diagnostics,
    ) -> Option<Obj<'s>> {
        let v = self.raw(key)?;
        Obj::new(self.file, child(&self.pointer, key), v, what, d)
    }

    /// The members of a map-valued member, each with its pointer.
    pub fn entries(
        &mut self,
        key: &'static str,
        d: &mut Diagnostics,
    ) -> Vec<(String, String, &'s Value)> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let ptr = child(&self.pointer, key);
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), child(&ptr, k), v))
                .collect(),
            other => {
                d.push(type_error(self.loc(key), key, "an object", other));
                Vec::new()
            }
        }
    }

    /// Marks keys that belong to the vocabulary but that this version does not implement:
    /// using one is an error that says so, rather than an unknown-key error.
    pub fn unsupported(&mut self, keys: &[&'static str], d: &mut Diagnostics) {
        for &key in keys {
            if self.raw(key).is_some() {
                d.push(Diagnostic::error(
                    "E0299",
                    Some(Location::key(self.file, child(&self.pointer, key))),
                    format!(
                        "`{key}` in {} is not supported by this version of gatewayc",
                        self.what
                    ),
                ));
            }
        }
    }

    /// Reports every member no getter asked for.
    pub fn finish(self, d: &mut Diagnostics) {
        for key in self.map.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let mut diag = Diagnostic::error(
                "E0202",
                Some(Location::key(self.file, child(&self.pointer, key))),
                format!("unknown key `{key}` in {}", self.what),
            );
            diag = match did_you_mean(key, &self.known) {
                Some(best) => diag.hint(format!("did you mean `{best}`?")),
                None => {
                    let mut keys = self.known.clone();
                    keys.sort_unstable();
                    keys.dedup();
                    diag.hint(format!("known keys: {}", keys.join(", ")))
                }
            };
            d.push(diag);
        }
    }
}

/// The candidate closest to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A type mismatch for member `key`.
pub fn type_error(loc: Location, key: &str, expected: &str, found: &Value) -> Diagnostic {
    Diagnostic::error(
        "E0201",
        Some(loc),
        format!("`{key}` must be {expected}, found {}", kind(found)),
    )
}

/// The JSON type of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => kind(other).to_owned(),
    }
}

/// Parses `250ms`, `2s`, `1m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" | "min" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Parses `512KiB`, `10MiB`, `1GB`, `100` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    gatewayc_vocab::size::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2 parsecs"), None);
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("12 furlongs"), None);
        assert_eq!(
            did_you_mean("tiemout", &["upstream", "path", "timeout"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("zzz", &["upstream", "path", "timeout"]), None);
    }
}
