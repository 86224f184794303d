//! Path handling shared by every generated router: the request-path safety check, finding
//! the end of a parameter's segment, literal compares, typed parameter parsing, and the
//! percent-encoding upstream path builder.
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
    if !bytes.iter().any(|&b| b == b'.' || b == b'%' || b == b'\\') {
        return Ok(());
    }
    for seg in path.split('/') {
        if !seg.contains(['.', '%', '\\']) {
            continue;
        }
        let decoded: Vec<u8> = percent_decode_str(seg).collect();
        if decoded.contains(&0) {
            return Err("the request path contains an encoded NUL byte");
        }
        if decoded == b"." || decoded == b".." {
            return Err("the request path contains a `.` or `..` segment");
        }
        if decoded.contains(&b'\\') {
            // Some servers (IIS, anything on Windows) treat `\` as a separator, so an
            // encoded one could climb out of the path there.
            return Err("the request path contains an encoded backslash");
        }
    }
    Ok(())
}

/// The end of the path segment that starts at offset `from` of `rest`, the tail of `path`
/// where matching stands: the offset in `rest` of the first `/` at or after `from` (the
/// length of `rest` if there is none), and whether a `%` comes before it (so the segment
/// needs decoding).
///
/// Looks for `/` and `%` eight bytes at a time. When fewer than eight bytes are left, the
/// last eight bytes of `path` are read instead, shifted so the bytes before `from` fall
/// out; `rest` must be a tail of `path` for that to be right (if it is not, the answer is
/// still an offset within `rest`).
#[inline(always)]
pub fn scan(path: &[u8], rest: &[u8], from: usize) -> (usize, bool) {
    let n = rest.len();
    // Most segments end within the first word: the eight bytes from `from`, or the path's
    // last eight bytes shifted (zeros come in at the top, and match neither byte).
    let (word, last) = match rest.get(from..).and_then(<[u8]>::first_chunk::<8>) {
        Some(word) => (u64::from_le_bytes(*word), false),
        None => match path.last_chunk::<8>() {
            Some(word) if from < n => (u64::from_le_bytes(*word) >> (8 * (8 - (n - from))), true),
            _ => return scan_bytes(rest, from, false),
        },
    };
    let (slash, percent) = slash_and_percent(word);
    if slash != 0 {
        return end_at(from, slash, percent, false);
    }
    if last {
        return (n, percent != 0);
    }
    scan_on(rest, from + 8, percent != 0)
}

/// [`scan`] from `i` on, with `pct` for what came before.
#[inline(never)]
fn scan_on(path: &[u8], mut i: usize, mut pct: bool) -> (usize, bool) {
    while let Some(word) = path.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let (slash, percent) = slash_and_percent(u64::from_le_bytes(*word));
        if slash != 0 {
            return end_at(i, slash, percent, pct);
        }
        pct |= percent != 0;
        i += 8;
    }
    let n = path.len();
    if i >= n {
        return (n, pct);
    }
    match path.last_chunk::<8>() {
        Some(last) => {
            let word = u64::from_le_bytes(*last) >> (8 * (8 - (n - i)));
            let (slash, percent) = slash_and_percent(word);
            if slash != 0 {
                return end_at(i, slash, percent, pct);
            }
            (n, pct | (percent != 0))
        }
        None => scan_bytes(path, i, pct),
    }
}

/// Bit 7 of each byte of `word` that is `/`, then of each that is `%`. Exact up to and
/// including the lowest set bit of each mask, which is all that is used.
#[inline(always)]
fn slash_and_percent(word: u64) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let s = word ^ (ONES * u64::from(b'/'));
    let p = word ^ (ONES * u64::from(b'%'));
    (
        s.wrapping_sub(ONES) & !s & HIGHS,
        p.wrapping_sub(ONES) & !p & HIGHS,
    )
}

/// [`scan`]'s answer when the word at `i` holds a `/` (`slash != 0`): a `%` counts when it
/// comes before the first `/`.
#[inline(always)]
fn end_at(i: usize, slash: u64, percent: u64, pct: bool) -> (usize, bool) {
    let upto = slash ^ slash.wrapping_sub(1);
    (
        i + (slash.trailing_zeros() / 8) as usize,
        pct | (percent & upto != 0),
    )
}

/// [`scan`] byte by byte from `i`, for paths shorter than eight bytes.
#[inline(never)]
fn scan_bytes(path: &[u8], mut i: usize, mut pct: bool) -> (usize, bool) {
    while let Some(&b) = path.get(i) {
        match b {
            b'/' => return (i, pct),
            b'%' => pct = true,
            _ => {}
        }
        i += 1;
    }
    (path.len(), pct)
}

/// Whether `b` holds the bytes `lit` at offset `i`. The length is a constant, so the compare
/// compiles to at most two word compares (overlapping when the length is not a power of two)
/// against immediates.
#[inline(always)]
pub fn starts_at<const N: usize>(b: &[u8], i: usize, lit: &[u8; N]) -> bool {
    match b.get(i..).and_then(<[u8]>::first_chunk::<N>) {
        Some(s) => same(s, lit),
        None => false,
    }
}

/// `a == b`, for a constant length.
#[inline(always)]
fn same<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    // Each `*_chunk` is `Some` exactly when the length allows it, known when compiling.
    #[inline(always)]
    fn head<const M: usize, const N: usize>(a: &[u8; N]) -> Option<&[u8; M]> {
        a.first_chunk::<M>()
    }
    #[inline(always)]
    fn tail<const M: usize, const N: usize>(a: &[u8; N]) -> Option<&[u8; M]> {
        a.last_chunk::<M>()
    }
    match N {
        0..=2 | 4 | 8 => a == b,
        3 => head::<2, N>(a) == head::<2, N>(b) && tail::<2, N>(a) == tail::<2, N>(b),
        5..=7 => head::<4, N>(a) == head::<4, N>(b) && tail::<4, N>(a) == tail::<4, N>(b),
        9..=16 => head::<8, N>(a) == head::<8, N>(b) && tail::<8, N>(a) == tail::<8, N>(b),
        _ => a == b,
    }
}

/// A text path parameter as the router found it: a slice of the request path, already
/// checked (it decodes to valid UTF-8, and is neither empty nor `.` or `..`), decoded only
/// when asked. It is `Copy` and owns nothing, so a route holding it costs nothing to drop.
/// Equality and `Debug` are by decoded value.
#[derive(Clone, Copy)]
pub struct Text<'p>(&'p str);

impl<'p> Text<'p> {
    /// A value from its raw (possibly percent-encoded) text, unchecked: for tests and for
    /// comparing with a route's value.
    pub fn new(raw: &'p str) -> Self {
        Text(raw)
    }

    /// The value as it appears in the path, percent-encoding kept.
    pub fn as_raw(&self) -> &'p str {
        self.0
    }

    /// The value percent-decoded (borrowed unless it holds a `%`).
    pub fn decoded(&self) -> Cow<'p, str> {
        if self.0.as_bytes().contains(&b'%') {
            percent_decode_str(self.0).decode_utf8_lossy()
        } else {
            Cow::Borrowed(self.0)
        }
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.decoded() == other.decoded()
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        self.decoded() == other
    }
}

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.decoded(), f)
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.decoded())
    }
}

/// A string parameter whose segment is known to hold no `%` (`pct == false`) or may
/// (`pct == true`); accepts what [`string`] accepts.
#[inline(always)]
pub fn string_in(raw: &str, pct: bool) -> Option<Text<'_>> {
    if pct {
        return checked(raw);
    }
    if raw.len() <= 2 && matches!(raw, "" | "." | "..") {
        return None;
    }
    Some(Text(raw))
}

/// [`string`]'s checks, out of line: the rare value that holds a `%`.
#[inline(never)]
fn checked(raw: &str) -> Option<Text<'_>> {
    string(raw).map(|_| Text(raw))
}

/// Whether two occurrences of one path parameter carry the same value, compared
/// percent-decoded (`%41` and `A` are the same value).
#[inline]
pub fn agree(a: &str, b: &str) -> bool {
    a == b || percent_decode_str(a).eq(percent_decode_str(b))
}

/// A string parameter whose raw value is `path[start..end]`; otherwise as [`string_in`].
#[inline(always)]
pub fn string_at(path: &str, start: usize, end: usize, pct: bool) -> Option<Text<'_>> {
    let (head, _) = path.split_at_checked(end)?;
    let (_, raw) = head.split_at_checked(start)?;
    string_in(raw, pct)
}

/// An integer parameter (`i32`, `i64`) from the raw bytes of its segment, which hold a `%`
/// only if `pct`; accepts exactly what [`integer`] accepts.
#[inline(always)]
pub fn int_in<T: std::str::FromStr + TryFrom<i64>>(raw: &[u8], pct: bool) -> Option<T> {
    // 1 to 18 plain digits cannot overflow an `i64`; anything else (a sign, a `%`, a longer
    // or a bad value) goes the slow way.
    if !pct && !raw.is_empty() && raw.len() <= 18 {
        let mut n: i64 = 0;
        for &c in raw {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return int_slow(raw);
            }
            n = n * 10 + i64::from(d);
        }
        return T::try_from(n).ok();
    }
    int_slow(raw)
}

/// [`int_in`] by way of [`integer`].
#[inline(never)]
fn int_slow<T: std::str::FromStr>(raw: &[u8]) -> Option<T> {
    integer(std::str::from_utf8(raw).ok()?)
}

/// A string parameter: percent-decoded, valid UTF-8, not empty and not `.` or `..`.
#[inline]
pub fn string(raw: &str) -> Option<Cow<'_, str>> {
    if raw.is_empty() {
        return None;
    }
    let value = if raw.as_bytes().contains(&b'%') {
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
pub fn uuid(raw: &str) -> Option<Text<'_>> {
    let value = string(raw)?;
    let b = value.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then_some(Text(raw))
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
            "/a/..%5C..%5Cx",
            "/a/%5c",
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

    /// `scan` over `rest` alone, and as the tail of longer paths.
    fn scan_all(rest: &[u8], from: usize) -> (usize, bool) {
        let answer = scan(rest, rest, from);
        for prefix in [&b"/"[..], b"/abc", b"/a%c/efgh/"] {
            let mut path = prefix.to_vec();
            path.extend_from_slice(rest);
            assert_eq!(
                scan(&path, &path[prefix.len()..], from),
                answer,
                "{path:?} {from}"
            );
        }
        answer
    }

    #[test]
    fn scan_finds_the_segment_end_and_percent_signs() {
        // Every start, every segment length, a `%` before, at or after the end, paths
        // shorter and longer than eight bytes.
        let base = b"0123456789abcdefghijklmnopqrst";
        for len in 0..base.len() {
            for from in 0..=len {
                let plain = &base[..len];
                assert_eq!(scan_all(plain, from), (len, false), "{len} {from}");
                for cut in from..len {
                    let mut p = plain.to_vec();
                    p[cut] = b'/';
                    assert_eq!(scan_all(&p, from), (cut, false), "{p:?} {from}");
                    for pc in from..len {
                        if pc == cut {
                            continue;
                        }
                        let mut q = p.clone();
                        q[pc] = b'%';
                        assert_eq!(scan_all(&q, from), (cut, pc < cut), "{q:?} {from}");
                    }
                }
                for pc in from..len {
                    let mut q = plain.to_vec();
                    q[pc] = b'%';
                    assert_eq!(scan_all(&q, from), (len, true), "{q:?} {from}");
                }
            }
        }
    }

    #[test]
    fn starts_at_compares_every_byte() {
        fn check<const N: usize>() {
            let lit: [u8; N] = std::array::from_fn(|k| b'a' + k as u8);
            for i in 0..3 {
                let mut b = vec![b'/'; i];
                b.extend_from_slice(&lit);
                assert!(starts_at(&b, i, &lit), "{N} {i}");
                assert!(!starts_at(&b[..b.len() - 1], i, &lit), "{N} {i} short");
                for k in 0..N {
                    let mut c = b.clone();
                    c[i + k] ^= 0x20;
                    assert!(!starts_at(&c, i, &lit), "{N} {i} {k}");
                }
            }
        }
        check::<1>();
        check::<2>();
        check::<3>();
        check::<4>();
        check::<5>();
        check::<6>();
        check::<7>();
        check::<8>();
        check::<9>();
        check::<12>();
        check::<15>();
        check::<16>();
        check::<17>();
        check::<25>();
    }

    #[test]
    fn int_in_agrees_with_str_parse() {
        let cases = [
            "",
            "+",
            "-",
            "0",
            "-0",
            "+0",
            "42",
            "-42",
            "+42",
            "007",
            "4x",
            "x4",
            " 4",
            "4 ",
            "++4",
            "--4",
            "-+4",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "999999999999999999",
            "-999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "0000000000000000000000001",
            "\u{e9}",
            "1\u{e9}",
        ];
        for c in cases {
            assert_eq!(
                int_in::<i64>(c.as_bytes(), false),
                c.parse::<i64>().ok(),
                "{c}"
            );
            assert_eq!(
                int_in::<i32>(c.as_bytes(), false),
                c.parse::<i32>().ok(),
                "{c}"
            );
        }
        assert_eq!(int_in::<i64>(b"%34%32", true), Some(42));
        assert_eq!(int_in::<i32>(b"%2D7", true), Some(-7));
        assert_eq!(int_in::<i64>(b"4%2F", true), None);
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
