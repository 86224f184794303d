//! Run tier: clients that hold on to what they should let go, against a real gateway
//! process. HTTP/2 connections that never finish their preface or a header block are closed
//! as HTTP/1 ones that never finish a head are; a flood of streams reset as soon as they
//! are opened ("rapid reset", CVE-2023-44487) ends its own connection and slows no one
//! else; past `GATEWAY_MAX_CONNECTIONS` idle connections make room for new clients; and
//! the open-file limit is raised at start-up.
//!
//! HTTP/2 is spoken here frame by frame on raw TCP, so that a test can send exactly the
//! broken or hostile sequence it is about.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Gateway, Upstream, get};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One HTTP/2 frame: 9-byte header, then the payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or_else(|_| panic!("payload too long"));
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// A GET of `path` as an HPACK header block, from the static table and literals only.
fn get_block(path: &str) -> Vec<u8> {
    // :method GET (static 2), :scheme http (static 6).
    let mut b = vec![0x82, 0x86];
    // :path (static name 4) and :authority (static name 1), literals without indexing.
    for (name, value) in [(0x04u8, path), (0x01, "localhost")] {
        b.push(name);
        b.push(u8::try_from(value.len()).unwrap_or_else(|_| panic!("value too long")));
        b.extend_from_slice(value.as_bytes());
    }
    b
}

/// Connects to the gateway and writes `bytes`.
async fn connect_and_send(gw: &Gateway, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    s.write_all(bytes)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    s
}

/// Reads (and drops) whatever comes until the gateway closes the connection; how long that
/// took, or `None` when it was still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

/// A listener that accepts connections and never answers: an upstream that hangs.
async fn hanging_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let (listener, addr) = crate::support::loopback().await;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn http2_connections_that_never_finish_a_head_are_closed_like_http1_ones() {
    let gw = Gateway::start(
        "proxy",
        &[
            ("BACKEND_URL", "http://127.0.0.1:9".to_owned()),
            ("GATEWAY_HEADER_TIMEOUT", "1".to_owned()),
        ],
    );
    let settings = frame(SETTINGS, 0, 0, &[]);
    let block = get_block("/items/1");
    // A HEADERS frame without END_HEADERS: the header block never ends.
    let mut open_block = PREFACE.to_vec();
    open_block.extend(&settings);
    open_block.extend(frame(HEADERS, END_STREAM, 1, &block));
    let mut preface_and_settings = PREFACE.to_vec();
    preface_and_settings.extend(&settings);
    let cases: [(&str, &[u8]); 5] = [
        ("four bytes of the preface", b"PRI "),
        ("part of the preface", &PREFACE[..10]),
        ("the preface alone", PREFACE),
        ("the preface and SETTINGS", &preface_and_settings),
        ("a header block without END_HEADERS", &open_block),
    ];
    let mut conns = Vec::new();
    for (what, bytes) in cases {
        conns.push((what, connect_and_send(&gw, bytes).await));
    }
    // Swept twice a second once idle for more than the 1 s timeout: gone well within 4 s.
    for (what, s) in &mut conns {
        let took = closed_within(s, Duration::from_secs(4)).await;
        assert!(
            took.is_some(),
            "{what}: the connection was still open after 4 s"
        );
    }
    // A well-behaved HTTP/2 client still gets its answer.
    let mut ok = preface_and_settings.clone();
    ok.extend(frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get_block("/no/such/route"),
    ));
    let mut s = connect_and_send(&gw, &ok).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    // A HEADERS frame on stream 1 (the 404's head) comes back.
    let answered = loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break false;
        };
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break false,
        }
        if frames(&got).any(|(kind, _, stream)| kind == HEADERS && stream == 1) {
            break true;
        }
    };
    assert!(answered, "no answer on stream 1: {got:?}");
}

/// The (type, flags, stream) of every whole frame in `bytes`.
fn frames(bytes: &[u8]) -> impl Iterator<Item = (u8, u8, u32)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = bytes.get(at..at + 9)?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        bytes.get(at + 9..at + 9 + len)?;
        at += 9 + len;
        Some((head[3], head[4], stream))
    })
}

/// Opens streams asking for `/items/1` on a new connection and resets each at once, up to
/// `streams` of them; with `pause`, each reset waits that long after its HEADERS, so the
/// gateway has taken the stream and started on it (a burst is reset before that). Returns
/// the connection when everything was written or the gateway closed it.
fn flood(
    gw: &Gateway,
    streams: u32,
    pause: Option<Duration>,
) -> tokio::task::JoinHandle<TcpStream> {
    let addr = gw.addr;
    tokio::spawn(async move {
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let mut start = PREFACE.to_vec();
        start.extend(frame(SETTINGS, 0, 0, &[]));
        if s.write_all(&start).await.is_err() {
            return s;
        }
        let block = get_block("/items/1");
        let mut burst = Vec::new();
        for i in 0..streams {
            let stream = 2 * i + 1;
            let headers = frame(HEADERS, END_STREAM | END_HEADERS, stream, &block);
            let reset = frame(RST_STREAM, 0, stream, &8u32.to_be_bytes());
            match pause {
                None => {
                    burst.extend(headers);
                    burst.extend(reset);
                }
                Some(pause) => {
                    if s.write_all(&headers).await.is_err() {
                        return s;
                    }
                    tokio::time::sleep(pause).await;
                    if s.write_all(&reset).await.is_err() {
                        return s;
                    }
                }
            }
        }
        // The gateway may close the connection before all of it is written.
        let _ = s.write_all(&burst).await;
        s
    })
}

/// GETs of a route the gateway answers itself, each within a second.
async fn answered_promptly(gw: &Gateway, times: usize) {
    let url = gw.url("/no/such/route");
    for _ in 0..times {
        let start = Instant::now();
        let r = get(&url).await;
        assert_eq!(r.status.as_u16(), 404);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a request took {:?} during the flood",
            start.elapsed()
        );
    }
}

#[tokio::test]
async fn a_rapid_reset_flood_closes_its_connection_and_starves_no_one() {
    let (hang, _upstream) = hanging_upstream().await;
    let gw = Gateway::start("proxy", &[("BACKEND_URL", hang)]);
    // Every stream asks for an operation whose upstream never answers.
    // A burst: the streams are reset before the gateway takes them (hyper's own limit).
    let burst = flood(&gw, 2_000, None);
    answered_promptly(&gw, 10).await;
    let mut s = burst.await.unwrap_or_else(|e| panic!("flood: {e}"));
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection of a burst of resets was left open"
    );
    // Paced: each stream reset after the gateway has started on it (the gateway's limit).
    let paced = flood(&gw, 400, Some(Duration::from_millis(2)));
    answered_promptly(&gw, 10).await;
    let mut s = paced.await.unwrap_or_else(|e| panic!("flood: {e}"));
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection of paced resets was left open"
    );
    let warned = crate::support::poll(Duration::from_secs(2), || {
        gw.stderr_text()
            .contains("reset most of its streams")
            .then_some(())
    })
    .await;
    assert!(warned.is_some(), "stderr:\n{}", gw.stderr_text());
}

#[tokio::test]
async fn past_max_connections_idle_ones_make_room_for_new_clients() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        "proxy",
        &[
            ("BACKEND_URL", up.url()),
            ("GATEWAY_MAX_CONNECTIONS", "10".to_owned()),
        ],
    );
    let request = b"GET /items/1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // Thirty clients in turn, each served once and then left idle on its keep-alive
    // connection (the head timeout, 30 s, would close none of them during the test).
    let mut clients = Vec::new();
    for i in 0..30 {
        let start = Instant::now();
        let mut s = connect_and_send(&gw, request).await;
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("client {i} got no answer within 3 s"))
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "client {i}: {head}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "client {i} waited {:?}",
            start.elapsed()
        );
        clients.push(s);
    }
    // The oldest idle connections were closed to make room: at most 10 are still open.
    let mut open = 0;
    for s in &mut clients {
        if closed_within(s, Duration::from_millis(200)).await.is_none() {
            open += 1;
        }
    }
    assert!(open <= 10, "{open} connections open with a maximum of 10");
    assert!(
        gw.stderr_text().contains("GATEWAY_MAX_CONNECTIONS"),
        "stderr:\n{}",
        gw.stderr_text()
    );
}

#[tokio::test]
async fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let gw = Gateway::start_wrapped(
        &["prlimit", "--nofile=256:4096"],
        "proxy",
        &[("BACKEND_URL", "http://127.0.0.1:9".to_owned())],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.child.id()))
        .unwrap_or_else(|e| panic!("limits: {e}"));
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-files line in\n{limits}"));
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
}
