//! Shared pieces of the end-to-end tests: paths, compiling specs, a mock upstream, a gateway
//! process, and an HTTP client.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub use gatewayc_tests::material::root;

/// Spec files directly in `specs/<dir>`, sorted.
pub fn specs_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("specs").join(dir))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"));
    v.sort();
    v
}

/// The file stem of a path.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Compiles specs the way `gatewayc check` does, with paths shown relative to the repo.
pub fn compile(
    specs: &[PathBuf],
    default_upstream: Option<&str>,
    emit: Option<gatewayc::emit::EmitOptions>,
) -> gatewayc::Output {
    gatewayc::compile(&gatewayc::Input {
        specs: specs.to_vec(),
        base: root(),
        options: gatewayc::lower::Options {
            default_upstream: default_upstream.map(str::to_owned),
        },
        emit,
    })
}

/// Runs the `gatewayc` binary with `args` in the repository root.
pub fn gatewayc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatewayc"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run gatewayc: {e}"))
}

/// A listener on a free port of 127.0.0.1, and its address.
pub async fn loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    (listener, addr)
}

/// What the mock upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
}

/// A mock upstream on 127.0.0.1 that records requests and behaves by path:
/// `/echo` streams the request body back, `/bytes/N` streams N bytes, `/slow/MS` and
/// `/drain/MS` answer after MS milliseconds, `/reset` drops the connection, anything else
/// answers 200 with `{"path": ...}`; `/sink` reads the whole body before answering.
/// In that last answer, each query parameter is a string member too (percent-decoded), and
/// two change the behaviour: `delay=MS` answers after MS milliseconds, `status=CODE` with
/// that status.
/// `/reflect` streams the request body back with the request's `Content-Type` and an
/// `X-Internal: yes` header; `/status/N` answers status N with `{"status": N, "internal":
/// true}` as JSON. A request carrying `X-Mock-Set-Cookie` gets that header's value back in
/// `Set-Cookie`, on the default answer.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections accepted so far.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let (listener, addr) = loopback().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| upstream_handler(req, log.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            seen,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .map(|s| s.last().cloned())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the upstream saw no request"))
    }

    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

async fn upstream_handler(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<UpBody>, std::io::Error> {
    let path = req.uri().path().to_owned();
    let set_cookie = req.headers().get("x-mock-set-cookie").cloned();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if let Ok(mut l) = log.lock() {
        l.push(Seen {
            method: req.method().to_string(),
            path_and_query: pq.clone(),
            headers: req.headers().clone(),
        });
    }
    let num = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|n| n.parse::<u64>().ok())
    };
    if path == "/sink" {
        // Reads the whole body before answering, so only a limit can cut the request short.
        let n = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        let body = serde_json::json!({ "bytes": n }).to_string();
        return Ok(Response::new(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        ));
    }
    if path == "/echo" {
        return Ok(Response::new(req.into_body().boxed()));
    }
    if path == "/reflect" {
        let ct = req.headers().get("content-type").cloned();
        let mut resp = Response::new(req.into_body().boxed());
        if let Some(ct) = ct {
            resp.headers_mut().insert("content-type", ct);
        }
        resp.headers_mut()
            .insert("x-internal", http::HeaderValue::from_static("yes"));
        return Ok(resp);
    }
    if let Some(code) = num("/status/") {
        let body = serde_json::json!({ "status": code, "internal": true }).to_string();
        let mut resp = Response::new(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        );
        *resp.status_mut() = u16::try_from(code)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::IM_A_TEAPOT);
        resp.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    if let Some(n) = num("/bytes/") {
        return Ok(Response::new(
            Pattern::new(n).map_err(|never| match never {}).boxed(),
        ));
    }
    if let Some(ms) = num("/slow/").or_else(|| num("/drain/")) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if path == "/reset" {
        return Err(std::io::Error::other(
            "the mock upstream drops this connection",
        ));
    }
    let mut answer = serde_json::Map::new();
    answer.insert("path".to_owned(), serde_json::Value::String(pq.clone()));
    let mut status = StatusCode::OK;
    for (k, v) in req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        let v = decode(v);
        match k {
            "delay" => tokio::time::sleep(Duration::from_millis(v.parse().unwrap_or(0))).await,
            "status" => {
                status = v
                    .parse()
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(status)
            }
            _ => {}
        }
        answer.insert(decode(k), serde_json::Value::String(v));
    }
    let body = serde_json::Value::Object(answer).to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert("keep-alive", http::HeaderValue::from_static("timeout=5"));
    if let Some(cookie) = set_cookie {
        resp.headers_mut().insert("set-cookie", cookie);
    }
    *resp.status_mut() = status;
    Ok(resp)
}

/// Percent-decodes a query component (`+` stays a plus).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A body of `len` bytes whose byte `i` is `i % 251`, produced in 64 KiB frames.
#[derive(Debug)]
pub struct Pattern {
    sent: u64,
    len: u64,
}

impl Pattern {
    pub fn new(len: u64) -> Self {
        Pattern { sent: 0, len }
    }

    pub fn byte(i: u64) -> u8 {
        (i % 251) as u8
    }
}

impl hyper::body::Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent >= self.len {
            return Poll::Ready(None);
        }
        let n = (self.len - self.sent).min(64 * 1024);
        let start = self.sent;
        let chunk: Vec<u8> = (start..start + n).map(Pattern::byte).collect();
        self.sent += n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.len - self.sent)
    }
}

/// The address that follows `marker` in a start-up line, up to the first space or `"`
/// (the line may be text or a JSON object).
fn address_after(line: &str, marker: &str) -> Option<String> {
    let (_, rest) = line.split_once(marker)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// Calls `probe` every 10 ms until it gives a value, for at most `limit`. For what a
/// process writes after the response a test has seen (log lines, exported spans), instead
/// of a fixed sleep.
pub async fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A running gateway process (`test-gateway <spec>`), killed when dropped.
#[derive(Debug)]
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    /// Standard output (the access log), one entry per line, as it arrives.
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// The admin listener's address, when the gateway printed one (`GATEWAY_ADMIN_LISTEN`).
    pub admin: Option<SocketAddr>,
}

impl Gateway {
    /// Starts the accepted spec `name` with extra environment variables.
    ///
    /// The public address is read from the start-up line holding `listening on http://`,
    /// and the admin address from the one holding `admin endpoints on http://` (printed
    /// before it), each up to the first space or `"`, so that both text and JSON lines
    /// are read. Standard output is collected line by line into `stdout`.
    pub fn start(name: &str, env: &[(&str, String)]) -> Gateway {
        Gateway::start_wrapped(&[], name, env)
    }

    /// [`Gateway::start`], run by the command `wrapper` (a program and its arguments, such
    /// as `prlimit --nofile=256:4096`, which execs the gateway in its own process).
    pub fn start_wrapped(wrapper: &[&str], name: &str, env: &[(&str, String)]) -> Gateway {
        let gateway = env!("CARGO_BIN_EXE_test-gateway");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(gateway);
                c
            }
            None => Command::new(gateway),
        };
        cmd.arg(name)
            .env("GATEWAY_LISTEN", "127.0.0.1:0")
            .env("GATEWAY_WORKERS", "1")
            .env("GATEWAY_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start test-gateway: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let out_sink = out.clone();
        // Read whatever the bytes are: a reader that stopped at a line that is not UTF-8
        // would leave the pipe full and the gateway blocked on its next write.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                if let Ok(mut l) = out_sink.lock() {
                    l.push(String::from_utf8_lossy(&line).into_owned());
                }
            }
        });
        // (true, address) for the admin listener, (false, address) for the public one.
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = address_after(&line, "admin endpoints on http://") {
                    let _ = tx.send((true, addr));
                }
                if let Some(addr) = address_after(&line, "listening on http://")
                    .or_else(|| address_after(&line, "listening on https://"))
                {
                    let _ = tx.send((false, addr));
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut admin = None;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((true, a)) => admin = Some(a),
                Ok((false, a)) => break a,
                Err(_) => panic!(
                    "test-gateway {name} did not start; stderr:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                ),
            }
        };
        let addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("bad address {addr}: {e}"));
        let admin = admin.map(|a| {
            a.parse::<SocketAddr>()
                .unwrap_or_else(|e| panic!("bad admin address {a}: {e}"))
        });
        Gateway {
            child,
            addr,
            stderr: log,
            stdout: out,
            admin,
        }
    }

    /// The URL of `path` on the admin listener; panics when the gateway printed none.
    pub fn admin_url(&self, path: &str) -> String {
        let addr = self.admin.unwrap_or_else(|| {
            panic!(
                "the gateway printed no `admin endpoints on http://` line; stderr:\n{}",
                self.stderr_text()
            )
        });
        format!("http://{addr}{path}")
    }

    /// Every line written to standard output so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Everything written to standard error so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The access-log line (standard output) of the request whose `X-Request-Id` was
    /// `request_id`, parsed. It is written once the response has been sent, so this waits
    /// for it, up to 5 s.
    pub async fn access_line(&self, request_id: &str) -> serde_json::Value {
        let found = poll(Duration::from_secs(5), || {
            self.stdout_lines()
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["request_id"] == request_id)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no access-log line with request_id {request_id}; stdout:\n{}",
                self.stdout_lines().join("\n")
            )
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process's peak resident memory (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap_or(0);
        // SAFETY-free: libc::kill is a plain system call; the pid is our own child's.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 client with a fresh pool.
pub fn client<B>() -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts this is a problem+json response with `status`.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let j = self.json();
        assert_eq!(j["status"], status);
        assert!(j["title"].is_string() && j["detail"].is_string(), "{j}");
    }
}

/// Sends a request with an empty body and reads the response whole.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    send_body(method, url, headers, Bytes::new()).await
}

/// Sends a request with `body` and reads the response whole.
pub async fn send_body(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(body.into()))
        .unwrap_or_else(|e| panic!("bad request: {e}"));
    let resp = client()
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// GET shorthand.
pub async fn get(url: &str) -> Reply {
    send("GET", url, &[]).await
}

/// A `redis-server` on a free loopback port, with no persistence, killed when dropped.
#[derive(Debug)]
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        Redis::start_on(port)
    }

    /// Starts one on `port` (to bring a killed server back where clients expect it).
    pub fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if Redis::ping(port) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            port,
            child: Some(child),
        }
    }

    fn ping(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gatewayc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `gatewayc keys new` into `file`; returns the key it printed.
pub fn new_key(file: &Path, consumer: &str, plan: &str) -> String {
    let f = file.to_string_lossy();
    let out = gatewayc(&[
        "keys",
        "new",
        "--consumer",
        consumer,
        "--plan",
        plan,
        "--file",
        &f,
    ]);
    assert!(
        out.status.success(),
        "keys new failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !key.is_empty() && !key.contains(char::is_whitespace),
        "{key:?}"
    );
    key
}

/// The spec and the companion files its `# gatewayc-test: also FILE...` lines name
/// (compiled into one gateway; tests/build.rs reads the same lines).
pub fn with_companions(spec: &Path) -> Vec<PathBuf> {
    let mut specs = vec![spec.to_path_buf()];
    let text = std::fs::read_to_string(spec).unwrap_or_default();
    let dir = spec.parent().unwrap_or(Path::new("."));
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(files) = line.strip_prefix("# gatewayc-test: also ") {
            specs.extend(files.split_whitespace().map(|f| dir.join(f)));
        }
    }
    specs
}

/// Every value of response header `name`, joined with `, `.
pub fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}
