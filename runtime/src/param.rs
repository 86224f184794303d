//! Path handling shared by every generated router: the request-path safety check, segment
//! splitting, typed parameter parsing, and the percent-encoding upstream path builder.
//!
//! Rules (also in `docs/routing.md`):
//! - A request path containing a `.` or `..` segment, written plainly or percent-encoded, or
//!   an encoded NUL (`%00`), is rejected with 400 before routing. Nothing is normalised
//!   silently, so what the router matched is what the client sent.
//! - A parameter never matches an empty segment, so `/pets//1` matches no template.
//! - The trailing slash is significant: `/pets/` matches only a template written `/pets/`.
//! - A parameter's value is percent-decoded before it is parsed, and re-encoded as one
//!   path segment before it is placed in the upstream path, so `/`, `?`, `#` or `%` in a
//!   value can never change the upstream path.

use std::borrow::Cow;
use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Characters escaped in a path segment: everything but RFC 3986 `pchar`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Checks a request path before routing; the error is the detail for a 400 response.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    let bytes = path.as_bytes();
    // Fast path: a path with neither '.' nor '%' cannot hold a dot segment or an encoded NUL.
    if !bytes.iter().any(|&b| b == b'.' || b == b'%') {
        return Ok(());
    }
    for seg in path.split('/') {
        if !seg.contains(['.', '%']) {
            continue;
        }
        let decoded: Vec<u8> = percent_decode_str(seg).collect();
        if decoded.contains(&0) {
            return Err("the request path contains an encoded NUL byte");
        }
        if decoded == b"." || decoded == b".." {
            return Err("the request path contains a `.` or `..` segment");
        }
    }
    Ok(())
}

/// Splits off the first segment: `("pets", Some("1/x"))` for `pets/1/x`, `("pets", None)`
/// for `pets`.
#[inline]
pub fn split(rest: &str) -> (&str, Option<&str>) {
    match memchr_slash(rest.as_bytes()) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

#[inline]
fn memchr_slash(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'/')
}

/// A string parameter: percent-decoded, valid UTF-8, not empty and not `.` or `..`.
#[inline]
pub fn string(raw: &str) -> Option<Cow<'_, str>> {
    if raw.is_empty() {
        return None;
    }
    let value = if raw.contains('%') {
        percent_decode_str(raw).decode_utf8().ok()?
    } else {
        Cow::Borrowed(raw)
    };
    if value.is_empty() || value == "." || value == ".." {
        return None;
    }
    Some(value)
}

/// An integer parameter of any width (`i32`, `i64`, `u64`).
#[inline]
pub fn integer<T: std::str::FromStr>(raw: &str) -> Option<T> {
    string(raw)?.parse().ok()
}

/// A number parameter: a finite `f64`.
#[inline]
pub fn number(raw: &str) -> Option<f64> {
    string(raw)?.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A boolean parameter: `true` or `false`.
#[inline]
pub fn boolean(raw: &str) -> Option<bool> {
    match string(raw)?.as_ref() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A `format: uuid` parameter: 8-4-4-4-12 hexadecimal digits.
#[inline]
pub fn uuid(raw: &str) -> Option<Cow<'_, str>> {
    let value = string(raw)?;
    let b = value.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then_some(value)
}

/// The path sent upstream, built from literal pieces and encoded parameter values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamPath(String);

impl UpstreamPath {
    /// An empty path with room for `capacity` bytes.
    #[inline]
    pub fn with_capacity(capacity: usize) -> Self {
        UpstreamPath(String::with_capacity(capacity))
    }

    /// Appends literal text from the spec (already a valid path).
    #[inline]
    pub fn lit(&mut self, text: &str) {
        self.0.push_str(text);
    }

    /// Appends a parameter value as one percent-encoded path segment.
    #[inline]
    pub fn segment(&mut self, value: &str) {
        self.0.extend(utf8_percent_encode(value, SEGMENT));
    }

    /// Appends a number or boolean parameter.
    #[inline]
    pub fn display(&mut self, value: impl std::fmt::Display) {
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{value}");
    }

    /// The path built so far.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_dot_segments_and_nul_in_any_spelling() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a/.%2e",
            "/a/%2E",
            "/a%00b",
            "/..",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for good in ["/a/b.json", "/a/...", "/a/%2Fb", "/v1/x:cancel", "/"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn encoded_values_stay_one_segment() {
        let mut p = UpstreamPath::default();
        p.lit("/files/");
        p.segment(&string("a%2F..%2Fb%3Fx%23y").unwrap_or_default());
        assert_eq!(p.as_str(), "/files/a%2F..%2Fb%3Fx%23y");
        assert_eq!(string(".."), None);
        assert_eq!(string("%2e%2e"), None);
        assert_eq!(string(""), None);
    }

    #[test]
    fn typed_parameters() {
        assert_eq!(integer::<i64>("42"), Some(42));
        assert_eq!(integer::<i64>("4x"), None);
        assert_eq!(integer::<i32>("99999999999"), None);
        assert_eq!(number("1.5"), Some(1.5));
        assert_eq!(number("NaN"), None);
        assert_eq!(boolean("true"), Some(true));
        assert_eq!(boolean("yes"), None);
        assert!(uuid("123e4567-e89b-12d3-a456-426614174000").is_some());
        assert!(uuid("123e4567e89b12d3a456426614174000").is_none());
    }
}
