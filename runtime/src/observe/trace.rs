//! W3C trace context (`traceparent`, `tracestate`): continued when a client sends a valid
//! one, started otherwise, and passed to upstreams with the span id of the gateway's call.
//!
//! Only version `00` is fully understood; a later version is read for its first four fields,
//! as the recommendation says. Anything malformed (wrong length, upper-case hex, an all-zero
//! trace or parent id, version `ff`, two `traceparent` lines) starts a new trace: a bad
//! header from a client never breaks a request, and never joins it to someone else's trace.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// The `traceparent` header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A request's place in a trace.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The trace it belongs to.
    pub trace_id: [u8; 16],
    /// The client's span, when the client sent a valid `traceparent`.
    pub parent: Option<[u8; 8]>,
    /// The gateway's server span for this request.
    pub span_id: [u8; 8],
    /// Whether the trace is sampled (exported).
    pub sampled: bool,
    /// The client's `tracestate`, passed on unchanged when its `traceparent` was valid.
    pub state: Option<HeaderValue>,
    /// The client sent a `traceparent` that was not valid: its `tracestate` (if any) belongs
    /// to no trace of ours and is removed.
    pub rejected: bool,
}

impl Trace {
    /// Continues the trace the request's headers carry, or starts a new one.
    pub fn from_headers(headers: &HeaderMap) -> Trace {
        let mut lines = headers.get_all(&TRACEPARENT).iter();
        let (first, second) = (lines.next(), lines.next());
        let parsed = match (first, second) {
            (Some(v), None) => parse(v.as_bytes()),
            _ => None,
        };
        match parsed {
            Some((trace_id, parent, flags)) => Trace {
                trace_id,
                parent: Some(parent),
                span_id: new_span_id(),
                sampled: flags & 1 == 1,
                state: tracestate(headers),
                rejected: false,
            },
            None => Trace {
                trace_id: new_trace_id(),
                parent: None,
                span_id: new_span_id(),
                sampled: true,
                state: None,
                rejected: first.is_some(),
            },
        }
    }

    /// The `traceparent` naming `span` (a child span of this request's) as the parent.
    pub fn traceparent(&self, span: &[u8; 8]) -> HeaderValue {
        let mut out = [0u8; 55];
        out[..3].copy_from_slice(b"00-");
        hex_into(&self.trace_id, &mut out[3..35]);
        out[35] = b'-';
        hex_into(span, &mut out[36..52]);
        out[52] = b'-';
        out[53] = b'0';
        out[54] = if self.sampled { b'1' } else { b'0' };
        // Hex digits and dashes are always a valid header value.
        HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("00"))
    }

    /// Sets `traceparent` (with `span` as the parent) and `tracestate` on an upstream
    /// request, replacing the client's. A `tracestate` sent without any `traceparent` is
    /// left as it is (it names no trace); one sent with a rejected `traceparent` is removed.
    pub fn propagate(&self, headers: &mut HeaderMap, span: &[u8; 8]) {
        headers.insert(TRACEPARENT.clone(), self.traceparent(span));
        if let Some(s) = &self.state {
            headers.insert(TRACESTATE.clone(), s.clone());
        } else if self.rejected {
            headers.remove(&TRACESTATE);
        }
    }
}

/// A new random span id (never all zeros).
pub fn new_span_id() -> [u8; 8] {
    fastrand::u64(1..).to_be_bytes()
}

fn new_trace_id() -> [u8; 16] {
    fastrand::u128(1..).to_be_bytes()
}

/// Writes `bytes` as lower-case hex into `out`, which holds twice as many bytes.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

fn unhex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// `version-traceid-parentid-flags`, by the W3C Trace Context rules.
fn parse(v: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let [version] = unhex::<1>(&v[..2])?;
    // Version 00 is exactly 55 characters; a later version may carry more after a dash.
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let trace_id = unhex::<16>(&v[3..35])?;
    let parent = unhex::<8>(&v[36..52])?;
    let [flags] = unhex::<1>(&v[53..55])?;
    if trace_id == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace_id, parent, flags))
}

/// Every `tracestate` line joined with `,`, when each is visible ASCII and the whole is no
/// longer than 512 characters; otherwise none is passed on.
fn tracestate(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut lines = headers.get_all(&TRACESTATE).iter();
    let first = lines.next()?;
    let rest: Vec<&HeaderValue> = lines.collect();
    if rest.is_empty() {
        return (first.len() <= 512).then(|| first.clone());
    }
    let mut joined = first.as_bytes().to_vec();
    for line in rest {
        joined.push(b',');
        joined.extend_from_slice(line.as_bytes());
    }
    if joined.len() > 512 {
        return None;
    }
    HeaderValue::from_bytes(&joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        let mut out = vec![0u8; bytes.len() * 2];
        hex_into(bytes, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    fn with(traceparent: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT.clone(),
            HeaderValue::from_str(traceparent).unwrap_or_else(|e| panic!("{e}")),
        );
        h
    }

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let t = Trace::from_headers(&with(VALID));
        assert_eq!(hex(&t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.parent.map(|p| hex(&p)).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_ne!(hex(&t.span_id), "00f067aa0ba902b7");
        assert!(t.sampled);
        let child = new_span_id();
        let sent = t.traceparent(&child);
        assert_eq!(
            sent.to_str().unwrap_or_default(),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", hex(&child))
        );
    }

    #[test]
    fn the_sampled_flag_is_kept() {
        let t = Trace::from_headers(&with(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ));
        assert!(!t.sampled);
        assert!(
            t.traceparent(&t.span_id)
                .to_str()
                .unwrap_or_default()
                .ends_with("-00")
        );
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let t = Trace::from_headers(&with(bad));
            assert!(t.parent.is_none(), "{bad} was continued");
            assert_ne!(
                hex(&t.trace_id),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_later_version_is_read_for_its_first_fields() {
        let t = Trace::from_headers(&with(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later",
        ));
        assert_eq!(hex(&t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn two_traceparent_lines_start_a_new_trace_and_tracestate_follows_only_a_valid_one() {
        let mut h = with(VALID);
        h.append(TRACEPARENT.clone(), HeaderValue::from_static(VALID));
        assert!(Trace::from_headers(&h).parent.is_none());
        let mut h = with(VALID);
        h.append(TRACESTATE.clone(), HeaderValue::from_static("a=1"));
        h.append(TRACESTATE.clone(), HeaderValue::from_static("b=2"));
        let t = Trace::from_headers(&h);
        assert_eq!(
            t.state.as_ref().and_then(|s| s.to_str().ok()),
            Some("a=1,b=2")
        );
        let mut bad = with("nonsense");
        bad.insert(TRACESTATE.clone(), HeaderValue::from_static("a=1"));
        assert!(Trace::from_headers(&bad).state.is_none());
    }
}
