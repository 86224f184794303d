//! Run tier: what goes wrong between a client, the gateway and an upstream, against a real
//! gateway process: upstream connections closed while idle (a request is never failed for
//! it), the idle timeout of pooled connections, bodies sent with GET and HEAD, and chunked
//! bodies a client frames badly (the client's 400, not an upstream failure).
//!
//! The upstream here is written on raw TCP rather than with hyper, so that a test sees a
//! request exactly as it was framed on the wire and decides when a connection closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Gateway, get, poll, send, send_body};

/// What the raw upstream does with a keep-alive connection between requests.
#[derive(Debug, Clone, Copy)]
enum Idle {
    /// Keeps it open.
    Keep,
    /// Closes it once it has been idle this long, as an upstream's keep-alive timeout does.
    CloseAfter(Duration),
    /// Reads a request that comes on a connection that has already answered one, and
    /// closes the connection without answering: as if its idle timeout fired just as the
    /// request arrived.
    DropReused,
}

/// A request as the raw upstream read it off the wire.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    /// Header lines in order, names lower-cased.
    headers: Vec<(String, String)>,
    /// The body, de-chunked when it came chunked.
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 upstream on raw TCP on 127.0.0.1. Every complete request is recorded and
/// answered 200 with `{"n": N}`, N counting the answers so far, and the connection kept
/// alive (or not: [`Idle`]).
#[derive(Debug, Clone)]
struct RawUpstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
    /// Connections the gateway closed while they were idle.
    closed_by_gateway: Arc<AtomicUsize>,
    /// Requests read and left unanswered ([`Idle::DropReused`]).
    dropped: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start(idle: Idle) -> RawUpstream {
        let (listener, addr) = crate::support::loopback().await;
        let up = RawUpstream {
            addr,
            received: Arc::default(),
            connections: Arc::default(),
            closed_by_gateway: Arc::default(),
            dropped: Arc::default(),
        };
        let serving = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                serving.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serving.clone().serve(stream, idle));
            }
        });
        up
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn last(&self) -> Received {
        self.received()
            .pop()
            .unwrap_or_else(|| panic!("the upstream received no complete request"))
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// One connection, request after request, until either side closes it.
    async fn serve(self, mut stream: TcpStream, idle: Idle) {
        let mut buf = Vec::new();
        let mut answered = 0usize;
        loop {
            // The next request's head. While nothing of it has come, the connection is idle.
            let head_len = loop {
                if let Some(at) = find(&buf, b"\r\n\r\n") {
                    break at + 4;
                }
                let mut chunk = [0u8; 8192];
                let read = match idle {
                    Idle::CloseAfter(limit) if buf.is_empty() => {
                        match tokio::time::timeout(limit, stream.read(&mut chunk)).await {
                            Ok(read) => read,
                            // Idle too long: dropping the stream closes it.
                            Err(_) => return,
                        }
                    }
                    _ => stream.read(&mut chunk).await,
                };
                match read {
                    Ok(0) | Err(_) => {
                        if buf.is_empty() && answered > 0 {
                            self.closed_by_gateway.fetch_add(1, Ordering::SeqCst);
                        }
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
            buf.drain(..head_len);
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap_or_default().split(' ');
            let method = request_line.next().unwrap_or_default().to_owned();
            let target = request_line.next().unwrap_or_default().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let value = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let chunked = value("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked"));
            let length: usize = value("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // The body: by its chunks, by its length, or none.
            let (body, used) = loop {
                let whole = if chunked {
                    dechunk(&buf)
                } else {
                    (buf.len() >= length).then(|| (buf[..length].to_vec(), length))
                };
                if let Some(whole) = whole {
                    break whole;
                }
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    // Cut off before its end: not a request, and nothing to answer.
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            buf.drain(..used);
            if matches!(idle, Idle::DropReused) && answered > 0 {
                self.dropped.fetch_add(1, Ordering::SeqCst);
                return;
            }
            let n = match self.received.lock() {
                Ok(mut r) => {
                    r.push(Received {
                        method: method.clone(),
                        target,
                        headers,
                        body,
                    });
                    r.len()
                }
                Err(_) => return,
            };
            answered += 1;
            let json = format!("{{\"n\":{n}}}");
            let mut answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                json.len()
            );
            if method != "HEAD" {
                answer.push_str(&json);
            }
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// Where `needle` first starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of the chunked message at the start of `buf`, and how many bytes it takes;
/// `None` while it has not all arrived. Chunk extensions and trailers are skipped.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&buf[at..], b"\r\n")?;
        let line = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let end = at + find(&buf[at..], b"\r\n")?;
                let last = end == at;
                at = end + 2;
                if last {
                    return Some((body, at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}

/// An answer of the gateway read off the wire.
#[derive(Debug)]
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Writes `request` (which should say `connection: close`) to the gateway as it is, and
/// reads the answer until the gateway closes the connection.
async fn exchange(gw: &Gateway, request: &[u8]) -> RawReply {
    let mut s = TcpStream::connect(gw.addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    s.write_all(request)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Err(_) => panic!(
                "the gateway neither answered nor closed the connection; read so far:\n{}",
                String::from_utf8_lossy(&raw)
            ),
            // A reset after the answer ends it too.
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let head_len = find(&raw, b"\r\n\r\n")
        .map(|at| at + 4)
        .unwrap_or_else(|| panic!("no answer: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[head_len..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    RawReply {
        status,
        headers,
        body,
    }
}

fn gateway(up: &RawUpstream, extra: &[(&str, &str)]) -> Gateway {
    let mut env = vec![("BACKEND_URL", up.url())];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Gateway::start("proxy", &env)
}

#[tokio::test]
async fn connections_the_upstream_closes_while_idle_never_fail_a_request() {
    // Closes idle keep-alive connections after 0.1 s; requests come every 0.3 s, so each
    // finds its pooled connection closed by the upstream.
    let up = RawUpstream::start(Idle::CloseAfter(Duration::from_millis(100))).await;
    let gw = gateway(&up, &[]);
    let mut expected = Vec::new();
    for i in 0..6 {
        let id = format!("idle-close-{i}");
        let r = if i % 2 == 0 {
            expected.push(("GET".to_owned(), format!("/v2/items/{i}"), String::new()));
            send(
                "GET",
                &gw.url(&format!("/items/{i}")),
                &[("x-request-id", id.as_str())],
            )
            .await
        } else {
            let body = format!("{{\"job\":{i}}}");
            expected.push((
                "POST".to_owned(),
                format!("/ops/job-{i}/cancel"),
                body.clone(),
            ));
            send_body(
                "POST",
                &gw.url(&format!("/v1/job-{i}:cancel")),
                &[
                    ("x-request-id", id.as_str()),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await
        };
        assert_eq!(
            r.status,
            200,
            "request {i}: {}\ngateway log:\n{}",
            r.body,
            gw.stderr_text()
        );
        assert_eq!(r.json()["n"], i + 1, "request {i} got another answer");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let received = up.received();
    let seen: Vec<(String, String, String)> = received
        .iter()
        .map(|r| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            (r.method.clone(), r.target.clone(), body)
        })
        .collect();
    assert_eq!(seen, expected, "each request must reach the upstream once");
    let ids: Vec<&str> = received
        .iter()
        .map(|r| r.header("x-request-id").unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        (0..6)
            .map(|i| format!("idle-close-{i}"))
            .collect::<Vec<_>>()
    );
    // Every request after the first found its connection closed: the case under test.
    assert_eq!(up.connections(), 6);
}

#[tokio::test]
async fn a_get_whose_connection_the_upstream_closes_as_it_arrives_is_sent_again() {
    let up = RawUpstream::start(Idle::DropReused).await;
    let gw = gateway(&up, &[]);
    for i in 0..3 {
        let r = get(&gw.url(&format!("/items/{i}"))).await;
        assert_eq!(
            r.status,
            200,
            "GET {i}: {}\ngateway log:\n{}",
            r.body,
            gw.stderr_text()
        );
        // Idle long enough for the gateway to count the connection as rested.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The second and third GET went first on a pooled connection, which the upstream
    // closed on reading them; each went again on a new connection and was answered once.
    assert_eq!(up.dropped.load(Ordering::SeqCst), 2);
    let targets: Vec<String> = up.received().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/v2/items/0", "/v2/items/1", "/v2/items/2"]);
    assert_eq!(up.connections(), 3);

    // A POST caught the same way may have been acted on: it is not sent a second time.
    let r = send_body("POST", &gw.url("/v1/job-9:cancel"), &[], "{}").await;
    r.assert_problem(502);
    assert_eq!(up.dropped.load(Ordering::SeqCst), 3);
    assert_eq!(up.connections(), 3, "the POST was sent again");
    assert_eq!(up.received().len(), 3);
}

#[tokio::test]
async fn idle_upstream_connections_are_given_up_after_the_idle_timeout() {
    let up = RawUpstream::start(Idle::Keep).await;
    let gw = gateway(&up, &[("GATEWAY_UPSTREAM_IDLE_TIMEOUT", "1")]);
    for i in 0..2 {
        assert_eq!(get(&gw.url(&format!("/items/{i}"))).await.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        up.connections(),
        1,
        "a connection idle for 0.3 s was not reused"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&gw.url("/items/3")).await.status, 200);
    assert_eq!(
        up.connections(),
        2,
        "a connection idle past GATEWAY_UPSTREAM_IDLE_TIMEOUT was used"
    );
    // The gateway closed the expired connection itself.
    let closed = poll(Duration::from_secs(2), || {
        (up.closed_by_gateway.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    assert!(closed.is_some(), "the expired connection was left open");

    // With 0, no connection is kept.
    let up = RawUpstream::start(Idle::Keep).await;
    let gw = gateway(&up, &[("GATEWAY_UPSTREAM_IDLE_TIMEOUT", "0")]);
    for i in 0..2 {
        assert_eq!(get(&gw.url(&format!("/items/{i}"))).await.status, 200);
    }
    assert_eq!(up.connections(), 2);
}

#[tokio::test]
async fn a_chunked_body_sent_with_get_or_head_reaches_the_upstream() {
    let up = RawUpstream::start(Idle::Keep).await;
    let gw = gateway(&up, &[]);
    for method in ["GET", "HEAD"] {
        let request = format!(
            "{method} /items/7 HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
        );
        let r = exchange(&gw, request.as_bytes()).await;
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        let seen = up.last();
        assert_eq!(
            (seen.method.as_str(), seen.target.as_str()),
            (method, "/v2/items/7")
        );
        assert_eq!(
            String::from_utf8_lossy(&seen.body),
            "hello",
            "{method}: the body was not forwarded: {seen:?}"
        );
        assert_eq!(
            seen.header("transfer-encoding"),
            Some("chunked"),
            "{seen:?}"
        );
        assert_eq!(seen.header("content-length"), None, "{seen:?}");
    }
    // A declared length goes as it is.
    let r = exchange(
        &gw,
        b"GET /items/8 HTTP/1.1\r\nhost: gw\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(String::from_utf8_lossy(&seen.body), "hello");
    assert_eq!(seen.header("content-length"), Some("5"), "{seen:?}");
    assert_eq!(seen.header("transfer-encoding"), None, "{seen:?}");
    // A GET without a body gains none.
    assert_eq!(get(&gw.url("/items/9")).await.status, 200);
    let seen = up.last();
    assert_eq!(seen.target, "/v2/items/9");
    assert!(seen.body.is_empty());
    assert_eq!(seen.header("transfer-encoding"), None, "{seen:?}");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_client_s_400_not_an_upstream_failure() {
    let up = RawUpstream::start(Idle::Keep).await;
    let gw = gateway(&up, &[("GATEWAY_ADMIN_LISTEN", "127.0.0.1:0")]);
    let cases: [(&str, &[u8]); 5] = [
        ("a negative size", b"-1\r\nhello\r\n0\r\n\r\n"),
        ("a 0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        (
            "a size over 64 bits",
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
        ),
        ("junk after the size", b"5 junk\r\nhello\r\n0\r\n\r\n"),
        ("a size line ended by a bare LF", b"5\nhello\r\n0\r\n\r\n"),
    ];
    for (i, (what, body)) in cases.iter().enumerate() {
        let id = format!("bad-chunk-{i}");
        let mut request = format!(
            "POST /small-echo HTTP/1.1\r\nhost: gw\r\nx-request-id: {id}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        .into_bytes();
        request.extend_from_slice(body);
        let r = exchange(&gw, &request).await;
        assert_eq!(
            r.status,
            400,
            "{what}: {}\ngateway log:\n{}",
            r.text(),
            gw.stderr_text()
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        let problem: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", r.text()));
        assert_eq!(problem["status"], 400, "{what}: {problem}");
        assert_eq!(problem["request_id"], id.as_str(), "{what}: {problem}");
        let line = gw.access_line(&id).await;
        assert_eq!(line["error.type"], "bad_request", "{what}: {line}");
    }
    assert!(
        up.received().is_empty(),
        "a malformed body reached the upstream whole: {:?}",
        up.received()
    );
    let log = gw.stderr_text();
    assert!(!log.contains("upstream request failed"), "{log}");
    let metrics = get(&gw.admin_url("/metrics")).await.body;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("gateway_upstream_errors_total{")),
        "a client's body counted as an upstream error:\n{metrics}"
    );
}
