//! The access log: one JSON object per request on stdout, written when the response is
//! done, with OpenTelemetry semantic-convention field names (docs/observability.md).
//!
//! Lines are appended to one buffer and written out by the server's 100 ms tick (or at
//! once when the buffer passes 64 KiB, and at shutdown), so a request costs no system
//! call of its own: a write per request would cost more than the rest of the log line.
//! A line is therefore on stdout within about 100 ms of its response.
//!
//! What is never written: request headers other than `Host` and `User-Agent` (so no
//! `Authorization`, `Cookie` or API-key header), and the value of any query parameter an
//! API-key scheme reads (`REDACTED` stands in for it).

use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::gateway::OperationDef;
use crate::phase::ctx::Ctx;

/// How large the buffer may grow before a request writes it out itself.
const FLUSH_AT: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Appends one line (without its newline) to the log.
pub(crate) fn push(line: &[u8]) {
    let full = {
        let Ok(mut buf) = BUFFER.lock() else { return };
        buf.extend_from_slice(line);
        buf.push(b'\n');
        if buf.len() >= FLUSH_AT {
            Some(std::mem::replace(
                &mut *buf,
                Vec::with_capacity(FLUSH_AT + 4096),
            ))
        } else {
            None
        }
    };
    if let Some(out) = full {
        write_out(&out);
    }
}

/// Writes out what the buffer holds; called by the tick task and at shutdown.
pub(crate) fn flush() {
    let out = match BUFFER.lock() {
        Ok(mut buf) if !buf.is_empty() => {
            let keep = buf.capacity().min(FLUSH_AT + 4096);
            std::mem::replace(&mut *buf, Vec::with_capacity(keep))
        }
        _ => return,
    };
    write_out(&out);
}

fn write_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout loses log lines, never a request.
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

/// Per operation (by index), the fields of its lines that the compiled spec fixes, rendered
/// once: `,"http.route":"…","gateway.operation":"…"`, beside the operation's own `id` (a
/// process serving several gateways, as tests do, renders the others' lines field by
/// field).
static OPERATIONS: OnceLock<Box<[OpFields]>> = OnceLock::new();

/// An operation's `id`, and its rendered fields.
type OpFields = (&'static str, Box<[u8]>);

/// Renders the fixed fields of every operation's lines; called once at start-up.
pub(crate) fn init(operations: &'static [OperationDef]) {
    OPERATIONS.get_or_init(|| {
        operations
            .iter()
            .map(|op| {
                let mut buf = Vec::with_capacity(48 + op.path.len() + op.id.len());
                op_fields(&mut Line(&mut buf), op);
                (op.id, buf.into_boxed_slice())
            })
            .collect()
    });
}

fn op_fields(w: &mut Line<'_>, op: &OperationDef) {
    w.str(b",\"http.route\":", op.path);
    w.str(b",\"gateway.operation\":", op.id);
}

/// What the access log line of a finished request says besides its context.
#[derive(Debug)]
pub(crate) struct Outcome<'a> {
    /// The response status sent.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// From the request head to the end of the response.
    pub duration: std::time::Duration,
    /// The upstream's name, when one was called.
    pub upstream: Option<&'static str>,
    /// Query parameters whose values are credentials.
    pub secret_params: &'a [&'static str],
}

/// Builds the access log line of a finished request and appends it to the log.
pub(crate) fn write(ctx: &Ctx, out: &Outcome<'_>) {
    LINE.with_borrow_mut(|buf| {
        buf.clear();
        line_into(buf, ctx, out);
        push(buf);
    });
}

thread_local! {
    /// Each thread builds its lines in one buffer, kept between requests.
    static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
}

fn line_into(buf: &mut Vec<u8>, ctx: &Ctx, out: &Outcome<'_>) {
    let mut w = Line(buf);
    w.0.extend_from_slice(b"{\"timestamp\":\"");
    timestamp_into(w.0, SystemTime::now());
    w.0.extend_from_slice(b"\",\"kind\":\"access\"");
    if let Ok(id) = ctx.request_id.to_str() {
        w.str(b",\"request_id\":", id);
    }
    w.hex(b",\"trace_id\":", &ctx.trace.trace_id);
    w.hex(b",\"span_id\":", &ctx.trace.span_id);
    match ctx.method.as_str() {
        // The standard methods need no escape check.
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => {
            w.0.extend_from_slice(b",\"http.request.method\":\"");
            w.0.extend_from_slice(m.as_bytes());
            w.0.push(b'"');
        }
        other => w.str(b",\"http.request.method\":", other),
    }
    w.str(b",\"url.path\":", ctx.uri.path());
    if let Some(q) = ctx.uri.query() {
        w.str(b",\"url.query\":", &redact_query(q, out.secret_params));
    }
    if let Some(op) = ctx.op {
        match OPERATIONS.get().and_then(|ops| ops.get(op.index)) {
            Some((id, fields)) if std::ptr::eq(*id, op.id) => w.0.extend_from_slice(fields),
            _ => op_fields(&mut w, op),
        }
    }
    w.num(b",\"http.response.status_code\":", u64::from(out.status));
    if let Some(host) = ctx.host.as_ref().and_then(|h| h.to_str().ok()) {
        w.str(b",\"server.address\":", host);
    }
    if let Ok(peer) = ctx.peer_header.to_str() {
        w.str(b",\"client.address\":", peer);
    }
    w.0.extend_from_slice(match ctx.version {
        http::Version::HTTP_2 => b",\"network.protocol.version\":\"2\"",
        http::Version::HTTP_10 => b",\"network.protocol.version\":\"1.0\"",
        _ => b",\"network.protocol.version\":\"1.1\"",
    });
    if let Some(ua) = ctx.user_agent.as_ref().and_then(|h| h.to_str().ok()) {
        w.str(b",\"user_agent.original\":", ua);
    }
    if let Some(c) = &ctx.consumer {
        w.str(b",\"gateway.consumer\":", c);
    }
    if let Some(p) = ctx.plan {
        w.str(b",\"gateway.plan\":", p);
    }
    if let Some(u) = out.upstream {
        w.str(b",\"gateway.upstream\":", u);
        if ctx.attempts > 0 {
            w.num(b",\"gateway.upstream.attempts\":", u64::from(ctx.attempts));
        }
    }
    w.millis(b",\"gateway.duration_ms\":", out.duration);
    if let Some(t) = ctx.upstream_time {
        w.millis(b",\"gateway.upstream.duration_ms\":", t);
    }
    let bytes_in = ctx
        .bytes_in
        .as_ref()
        .map_or(0, |b| b.load(std::sync::atomic::Ordering::Relaxed));
    w.num(b",\"http.request.body.size\":", bytes_in);
    w.num(b",\"http.response.body.size\":", out.bytes_out);
    if let Some(cause) = &ctx.cause {
        w.str(b",\"error.type\":", cause.kind.as_str());
        if !cause.reason.is_empty() {
            w.str(b",\"gateway.reason\":", &cause.reason);
        }
    }
    w.0.push(b'}');
}

/// A JSON object written field by field. Each field starts with its key written out as a
/// constant (`,"name":`). Text that needs no escaping (printable ASCII without `"` or
/// `\`, nearly all of it) is copied as it is; anything else is escaped by serde_json.
struct Line<'a>(&'a mut Vec<u8>);

impl Line<'_> {
    fn str(&mut self, key: &[u8], v: &str) {
        self.0.extend_from_slice(key);
        let needs_escape = needs_escape(v.as_bytes());
        if needs_escape {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *self.0, v);
        } else {
            self.0.push(b'"');
            self.0.extend_from_slice(v.as_bytes());
            self.0.push(b'"');
        }
    }

    fn hex<const N: usize>(&mut self, key: &[u8], bytes: &[u8; N]) {
        self.0.extend_from_slice(key);
        let mut text = [b'"'; 34];
        let n = 2 * N.min(16);
        super::trace::hex_into(&bytes[..n / 2], &mut text[1..=n]);
        self.0.extend_from_slice(&text[..n + 2]);
    }

    fn num(&mut self, key: &[u8], v: u64) {
        self.0.extend_from_slice(key);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// A duration in milliseconds with three decimals (microsecond precision).
    fn millis(&mut self, key: &[u8], d: std::time::Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.num(key, micros / 1000);
        let frac = micros % 1000;
        self.0.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
    }
}

/// Whether JSON needs any byte of `v` escaped (or, for bytes above ASCII, checked): a
/// control character, `"`, `\\`, DEL or a non-ASCII byte. Eight bytes are looked at at
/// once; the strings here are short, too short for the compiler's own vector loops.
fn needs_escape(v: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = v.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        // A byte below 0x20 (exact when no byte has its high bit set, and any byte that
        // has makes the answer true anyway), a high bit, DEL, `"` or `\\`.
        let flagged = (x.wrapping_sub(0x20 * ONES) & !x & HIGH)
            | (x & HIGH)
            | has_zero(x ^ (0x7f * ONES))
            | has_zero(x ^ (u64::from(b'"') * ONES))
            | has_zero(x ^ (u64::from(b'\\') * ONES));
        if flagged != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b.wrapping_sub(0x20) >= 0x5f || b == b'"' || b == b'\\')
}

/// The query with the value of every parameter in `secret` replaced by `REDACTED`.
fn redact_query(query: &str, secret: &[&str]) -> String {
    if secret.is_empty() {
        return query.to_owned();
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        let decoded = percent_encoding::percent_decode_str(&name.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            if secret.iter().any(|s| *s == decoded) {
                out.push_str("REDACTED");
            } else {
                out.push_str(v);
            }
        }
    }
    out
}

/// RFC 3339 in UTC with milliseconds: `2026-12-04T19:00:00.123Z`.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    timestamp_into(&mut out, t);
    String::from_utf8(out).unwrap_or_default()
}

thread_local! {
    /// The last second formatted on this thread, and its text up to the `.`: most lines
    /// of a busy gateway fall in a second already formatted.
    static SECOND: std::cell::Cell<(u64, [u8; 20])> = const { std::cell::Cell::new((u64::MAX, [0; 20])) };
}

/// Appends `t` as RFC 3339 in UTC with milliseconds.
fn timestamp_into(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        let (y, m, d) = gatewayc_vocab::calendar::civil_from_days(days);
        let rem = secs % 86_400;
        let mut w = Vec::with_capacity(20);
        let _ = write!(
            w,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
        if w.len() != 20 {
            // A year beyond 9999 (or before 0): no cache, the text as it is.
            out.extend_from_slice(&w);
            let _ = write!(out, "{:03}Z", since.subsec_millis());
            return;
        }
        text.copy_from_slice(&w);
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    let ms = since.subsec_millis();
    out.extend_from_slice(&[
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("api_key=s3cret&limit=5&api%5Fkey=again&flag", &["api_key"]),
            "api_key=REDACTED&limit=5&api%5Fkey=REDACTED&flag"
        );
        assert_eq!(redact_query("a=1", &[]), "a=1");
    }

    #[test]
    fn text_that_needs_escaping_is_escaped_and_the_line_is_json() {
        let mut line = b"{\"first\":1".to_vec();
        let mut w = Line(&mut line);
        w.str(b",\"plain\":", "/pets/{petId}");
        w.str(b",\"quoted\":", "a\"b\\c\u{1}é");
        w.millis(b",\"ms\":", std::time::Duration::from_micros(1_234_567));
        w.hex(b",\"id\":", &[0xab_u8, 0x01]);
        line.push(b'}');
        let v: serde_json::Value =
            serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(v["plain"], "/pets/{petId}");
        assert_eq!(v["quoted"], "a\"b\\c\u{1}é");
        assert_eq!(v["ms"].as_f64(), Some(1234.567));
        assert_eq!(v["id"], "ab01");
    }

    #[test]
    fn escaping_is_needed_exactly_where_json_says() {
        for len in 0..40 {
            let plain = "a/Z~ {}".repeat(6);
            assert!(!needs_escape(&plain.as_bytes()[..len]), "{len}");
            for bad in [0x00u8, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff] {
                for at in 0..len {
                    let mut v = plain.as_bytes()[..len].to_vec();
                    v[at] = bad;
                    assert!(needs_escape(&v), "{bad:#x} at {at} of {len}");
                }
            }
        }
        assert!(!needs_escape(b" !#$%&'()*+,-./0123456789:;<=>?@[]^_`|}~"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_796_410_800_123);
        assert_eq!(timestamp(t), "2026-12-04T19:00:00.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // The same second again, from the cache, with other milliseconds.
        let later = t + std::time::Duration::from_millis(800);
        assert_eq!(timestamp(later), "2026-12-04T19:00:00.923Z");
        assert_eq!(timestamp(t), "2026-12-04T19:00:00.123Z");
    }
}
