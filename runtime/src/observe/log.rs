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
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
            Some(std::mem::take(&mut *buf))
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
        Ok(mut buf) if !buf.is_empty() => std::mem::take(&mut *buf),
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

/// What the access log line of a finished request says besides its context.
#[derive(Debug)]
pub(crate) struct Outcome<'a> {
    /// The response status sent.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Seconds from the request head to the end of the response.
    pub duration: f64,
    /// The upstream's name, when one was called.
    pub upstream: Option<&'static str>,
    /// Query parameters whose values are credentials.
    pub secret_params: &'a [&'static str],
}

/// Builds the access log line of a finished request.
pub(crate) fn line(ctx: &Ctx, out: &Outcome<'_>) -> Vec<u8> {
    let mut w = Line::new();
    w.str("timestamp", &timestamp(SystemTime::now()));
    w.str("kind", "access");
    if let Ok(id) = ctx.request_id.to_str() {
        w.str("request_id", id);
    }
    w.str("trace_id", &super::trace::hex(&ctx.trace.trace_id));
    w.str("span_id", &super::trace::hex(&ctx.trace.span_id));
    w.str("http.request.method", ctx.method.as_str());
    w.str("url.path", ctx.uri.path());
    if let Some(q) = ctx.uri.query() {
        w.str("url.query", &redact_query(q, out.secret_params));
    }
    if let Some(op) = ctx.op {
        w.str("http.route", op.path);
    }
    w.num("http.response.status_code", u64::from(out.status));
    if let Some(host) = ctx.host.as_ref().and_then(|h| h.to_str().ok()) {
        w.str("server.address", host);
    }
    w.str("client.address", &ctx.peer.to_string());
    w.str(
        "network.protocol.version",
        match ctx.version {
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_10 => "1.0",
            _ => "1.1",
        },
    );
    if let Some(ua) = ctx.user_agent.as_ref().and_then(|h| h.to_str().ok()) {
        w.str("user_agent.original", ua);
    }
    if let Some(op) = ctx.op {
        w.str("gateway.operation", op.id);
    }
    if let Some(c) = &ctx.consumer {
        w.str("gateway.consumer", c);
    }
    if let Some(p) = ctx.plan {
        w.str("gateway.plan", p);
    }
    if let Some(u) = out.upstream {
        w.str("gateway.upstream", u);
        if ctx.attempts > 0 {
            w.num("gateway.upstream.attempts", u64::from(ctx.attempts));
        }
    }
    w.float("gateway.duration_ms", out.duration * 1000.0);
    if let Some(t) = ctx.upstream_time {
        w.float("gateway.upstream.duration_ms", t.as_secs_f64() * 1000.0);
    }
    let bytes_in = ctx
        .bytes_in
        .as_ref()
        .map_or(0, |b| b.load(std::sync::atomic::Ordering::Relaxed));
    w.num("http.request.body.size", bytes_in);
    w.num("http.response.body.size", out.bytes_out);
    if let Some(cause) = &ctx.cause {
        w.str("error.type", cause.kind.as_str());
        if !cause.reason.is_empty() {
            w.str("gateway.reason", &cause.reason);
        }
    }
    w.finish()
}

/// A JSON object written field by field; keys are the module's own constants, values are
/// escaped by serde_json.
struct Line(Vec<u8>);

impl Line {
    fn new() -> Self {
        let mut v = Vec::with_capacity(640);
        v.push(b'{');
        Line(v)
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(k.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, v);
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }

    fn float(&mut self, k: &str, v: f64) {
        self.key(k);
        let _ = write!(self.0, "{v:.3}");
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
    }
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
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = gatewayc_vocab::calendar::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
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
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_796_410_800_123);
        assert_eq!(timestamp(t), "2026-12-04T19:00:00.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
