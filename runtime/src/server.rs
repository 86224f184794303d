//! The listener and the request phases.
//!
//! Phases, in order (see `docs/phases.md`): accept (HTTP/1.1 and h2c on one port, header
//! read timeout, request id) → check the path → CORS preflight → route (generated `match`)
//! → authenticate and authorize → limit → transform the request → forward to the upstream
//! (or answer from the spec's examples, or aggregate several upstreams) → transform the
//! response. Transforms run only for operations that have one.
//!
//! Shutdown: on SIGTERM or SIGINT the listener closes, in-flight requests finish (up to
//! `GATEWAY_SHUTDOWN_GRACE`), then the process exits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::access::Access;
use crate::body::Body;
use crate::conns::{self, Conn, Connections, Reply};
use crate::cors::Cors;
use crate::gateway::{DeprecationDef, Gateway, MockResponse};
use crate::param;
use crate::problem::Problem;
use crate::proxy::{Peer, Proxy, Target};
use crate::traffic::Limits;
use crate::transform;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Process settings, from `GATEWAY_*` environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `GATEWAY_LISTEN`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `GATEWAY_WORKERS`: worker threads; 1 runs everything on one thread. Default: cores.
    pub workers: usize,
    /// `GATEWAY_SHUTDOWN_GRACE`: how long in-flight requests may take after SIGTERM.
    pub shutdown_grace: Duration,
    /// `GATEWAY_HEADER_TIMEOUT`: how long an HTTP/1 client may take to send a request head,
    /// and may stay idle between requests; 0 for no limit.
    pub header_timeout: Duration,
}

impl Settings {
    /// Reads the settings; every malformed variable is named in the error.
    pub fn from_env() -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let listen = var("GATEWAY_LISTEN", "127.0.0.1:8080");
        let workers = var("GATEWAY_WORKERS", "0");
        let grace = var("GATEWAY_SHUTDOWN_GRACE", "30");
        let header = var("GATEWAY_HEADER_TIMEOUT", "30");
        let listen = listen.parse().unwrap_or_else(|_| {
            errors.push(format!(
                "GATEWAY_LISTEN=`{listen}` is not an address like 127.0.0.1:8080"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let workers = match workers.parse::<usize>() {
            Ok(0) => std::thread::available_parallelism().map_or(1, usize::from),
            Ok(n) => n,
            Err(_) => {
                errors.push(format!("GATEWAY_WORKERS=`{workers}` is not a number"));
                1
            }
        };
        let mut secs = |name: &str, v: &str| match v.parse::<u64>() {
            Ok(n) => Duration::from_secs(n),
            Err(_) => {
                errors.push(format!("{name}=`{v}` is not a number of seconds"));
                Duration::from_secs(30)
            }
        };
        let shutdown_grace = secs("GATEWAY_SHUTDOWN_GRACE", &grace);
        let header_timeout = secs("GATEWAY_HEADER_TIMEOUT", &header);
        if errors.is_empty() {
            Ok(Settings {
                listen,
                workers,
                shutdown_grace,
                header_timeout,
            })
        } else {
            Err(errors)
        }
    }
}

/// Everything a request needs, built once at start-up and never freed.
#[derive(Debug)]
struct State {
    proxy: Proxy,
    targets: Vec<Target>,
    access: Access,
    cors: Option<Cors>,
    limits: Option<Limits>,
    /// Environment values transforms use.
    env: transform::Env,
}

/// Resolves every upstream URL of `G` with `lookup` (the environment in production).
///
/// Returns one target per upstream, or every problem at once: all missing variables in one
/// message, then each malformed URL.
pub fn resolve_upstreams<G: Gateway>(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, Vec<String>> {
    let mut missing = std::collections::BTreeSet::new();
    let mut errors = Vec::new();
    let mut targets = Vec::new();
    for up in G::UPSTREAMS {
        let url = match up.url {
            None => String::new(),
            Some(t) => match crate::env::resolve_with(t, lookup) {
                Ok(u) => u,
                Err(m) => {
                    missing.extend(m);
                    continue;
                }
            },
        };
        match Target::parse(&url) {
            Ok(t) => targets.push(t),
            Err(e) => errors.push(format!("upstream `{}`: {e}", up.name)),
        }
    }
    // Transform values read the environment too; one message names every missing variable.
    if let Err(m) = transform::Env::resolve::<G>(lookup) {
        missing.extend(m);
    }
    if !missing.is_empty() {
        let names: Vec<_> = missing.into_iter().collect();
        errors.insert(
            0,
            format!("missing environment variables: {}", names.join(", ")),
        );
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(errors)
    }
}

/// The generated `main`: reads settings and upstreams from the environment, serves until
/// SIGTERM or SIGINT, and drains in-flight requests before exiting.
pub fn main<G: Gateway>() -> ExitCode {
    init_logging();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(errors) => return fail(G::NAME, &errors),
    };
    let targets = match resolve_upstreams::<G>(&|n| std::env::var(n).ok()) {
        Ok(t) => t,
        Err(errors) => return fail(G::NAME, &errors),
    };
    let runtime = if settings.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.workers)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => return fail(G::NAME, &[format!("cannot start the async runtime: {e}")]),
    };
    let result = runtime.block_on(async {
        // Security settings are checked (and keys fetched) before the port opens, so a
        // misconfigured gateway never accepts a request.
        let access = Access::build::<G>(&|n| std::env::var(n).ok())
            .await
            .map_err(|errors| errors.join("; "))?;
        let limits = Limits::build::<G>(&|n| std::env::var(n).ok()).await?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        for (up, t) in G::UPSTREAMS.iter().zip(&targets) {
            if matches!(t, Target::Mock) {
                tracing::warn!(
                    upstream = up.name,
                    "no URL set: serving the spec's examples"
                );
            }
        }
        // One plain line, whatever the log level: tests and people read the bound address here.
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        eprintln!(
            "{}: listening on http://{addr} ({} worker thread{})",
            G::NAME,
            settings.workers,
            if settings.workers == 1 { "" } else { "s" }
        );
        serve::<G>(
            listener,
            targets,
            (access, limits),
            &settings,
            shutdown_signal(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(G::NAME, &[e]),
    }
}

fn fail(name: &str, errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("{name}: error: {e}");
    }
    ExitCode::from(2)
}

fn init_logging() {
    let level = match std::env::var("GATEWAY_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("info") => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level);
    let _ = if std::env::var("GATEWAY_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves `G` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve<G: Gateway>(
    listener: TcpListener,
    targets: Vec<Target>,
    (access, limits): (Access, Option<Limits>),
    settings: &Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let state: &'static State = Box::leak(Box::new(State {
        proxy: Proxy::new(targets.len())?,
        targets,
        access,
        cors: Cors::of::<G>(),
        limits,
        // `main` has already stopped on any missing variable (`resolve_upstreams`).
        env: transform::Env::resolve::<G>(&|n| std::env::var(n).ok()).unwrap_or_default(),
    }));
    // No hyper `header_read_timeout`: the head timeout is `conns`' (see there why).
    let mut h1 = http1::Builder::new();
    // One buffer per write (the body copied after the head) rather than a queue of buffers
    // for `writev`: API responses are small, and the queue cost about 400 instructions per
    // request (bench/proxy_instructions.py). A large body pays one memory copy per chunk,
    // and a connection keeps a write buffer of up to `MAX_BUF` (64 KiB) once it needed one.
    h1.writev(false)
        .max_buf_size(crate::proxy::MAX_BUF)
        .max_header_size(crate::proxy::MAX_BUF);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    let builders: &'static (http1::Builder, http2::Builder<TokioExecutor>) =
        Box::leak(Box::new((h1, h2)));
    let header_timeout = settings.header_timeout;
    let conns = Connections::new(header_timeout);
    // The first bytes of a connection are due within the head timeout too (0: no limit).
    let first_bytes = if header_timeout.is_zero() {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        header_timeout
    };
    // Tells connections that have not sent a byte yet to give up at shutdown: they count as
    // live, and would otherwise delay exit by the header timeout.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::spawn(conns.run());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let live = conns.enter();
                let stop = stop.clone();
                tokio::spawn(async move {
                    // HTTP/2 over cleartext starts with the preface `PRI * HTTP/2.0`; no
                    // HTTP/1 method is `PRI`. Deciding once per connection from a peek lets
                    // each connection be served by hyper's own builder directly, with no
                    // re-reading wrapper on every read.
                    let mut stop = stop;
                    let is_h2 = tokio::select! {
                        // A connection whose first bytes are there is served, even if
                        // shutdown begins at the same moment.
                        biased;
                        peeked = tokio::time::timeout(first_bytes, sniff_h2(&stream)) => peeked,
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    let Ok(Some(is_h2)) = is_h2 else { return };
                    let client = conns.open(peer, !is_h2);
                    let for_service = client.clone();
                    let service =
                        service_fn(move |req| handle::<G>(state, for_service.clone(), req));
                    let io = TokioIo::new(stream);
                    let (h1, h2) = builders;
                    let result = if is_h2 {
                        conns::drive(h2.serve_connection(io, service), client).await
                    } else {
                        conns::drive(h1.serve_connection(io, service), client).await
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(live);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    tracing::info!("shutting down: draining in-flight requests");
    conns.stop();
    let drained = async {
        while conns.live() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    Ok(())
}

/// Whether a new connection speaks HTTP/2 (prior knowledge), from its first bytes; `None`
/// when it closes or fails before sending any.
async fn sniff_h2(stream: &tokio::net::TcpStream) -> Option<bool> {
    const PREFACE: &[u8; 4] = b"PRI ";
    let mut head = [0u8; 4];
    loop {
        let n = stream.peek(&mut head).await.ok()?;
        if n == 0 {
            return None;
        }
        if head[..n] != PREFACE[..n] {
            return Some(false);
        }
        if n == PREFACE.len() {
            return Some(true);
        }
        // A prefix of the preface so far (a client writing byte by byte): wait for more.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn handle<G: Gateway>(
    state: &'static State,
    client: std::sync::Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<Reply>, Infallible> {
    client.busy();
    let request_id = request_id(&req);
    let origin = match &state.cors {
        Some(_) => req.headers().get(http::header::ORIGIN).cloned(),
        None => None,
    };
    let mut resp = match dispatch::<G>(state, &client.peer, req, &request_id).await {
        Ok(r) => r,
        Err(problem) => problem.into_response(request_id.to_str().ok()),
    };
    if let Some(cors) = &state.cors {
        cors.decorate(origin.as_ref(), &mut resp);
    }
    if let Some(vary) = G::VARY {
        resp.headers_mut()
            .append(http::header::VARY, HeaderValue::from_static(vary));
    }
    resp.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
    Ok(resp.map(|body| Reply::new(body, client)))
}

async fn dispatch<G: Gateway>(
    state: &'static State,
    peer: &Peer,
    req: Request<Incoming>,
    request_id: &HeaderValue,
) -> Result<Response<Body>, Problem> {
    let path = req.uri().path();
    param::check_path(path).map_err(Problem::bad_path)?;
    if let Some(cors) = &state.cors
        && let Some(answer) = cors.preflight::<G>(req.method(), path, req.headers())
    {
        return answer;
    }
    let plan = G::plan_for(req.method(), path, req.headers()).map_err(|e| e.into_problem())?;
    // The usual case returns the answer as it is (no move through a match).
    let Some(dep) = plan.op.deprecation.as_ref() else {
        return serve_operation(state, peer, req, request_id, plan).await;
    };
    // Deprecation applies to every answer of a deprecated operation, errors included.
    match serve_operation(state, peer, req, request_id, plan).await {
        Ok(mut resp) => {
            // Ours replace the upstream's `Deprecation` and `Sunset`; links add up.
            let h = resp.headers_mut();
            for (name, value) in deprecation_headers(dep) {
                if name == http::header::LINK {
                    h.append(name, value);
                } else {
                    h.insert(name, value);
                }
            }
            Ok(resp)
        }
        Err(mut problem) => {
            problem.headers.extend(deprecation_headers(dep));
            Err(problem)
        }
    }
}

/// Phases 5 to 9 for a routed request: authenticate and authorize, limit, forward.
async fn serve_operation(
    state: &'static State,
    peer: &Peer,
    mut req: Request<Incoming>,
    request_id: &HeaderValue,
    plan: crate::gateway::Plan,
) -> Result<Response<Body>, Problem> {
    // Hop-by-hop headers go first, before the gateway sets any header (forwarded claims,
    // transforms, X-Forwarded-*), so that a client's `Connection: x-user-id` cannot remove
    // one of them.
    crate::proxy::remove_hop_by_hop(req.headers_mut());
    state.access.strip_forwarded(req.headers_mut());
    let principal = if plan.op.security.is_empty() {
        None
    } else {
        let uri = req.uri().clone();
        match state
            .access
            .check(plan.op, req.headers_mut(), uri.query())
            .await
        {
            Ok(principal) => principal,
            Err(problem) => {
                // A request whose credential fails counts as anonymous: guessing keys or
                // tokens spends the anonymous plan of the client's address.
                if problem.status == http::StatusCode::UNAUTHORIZED
                    && let Some(limits) = &state.limits
                {
                    limits.check(plan.op, None, peer.ip, req.headers()).await?;
                }
                return Err(problem);
            }
        }
    };
    let limit_headers = match &state.limits {
        Some(limits) => {
            limits
                .check(plan.op, principal.as_ref(), peer.ip, req.headers())
                .await?
        }
        None => Vec::new(),
    };
    if let Some(aggregate) = plan.op.aggregate {
        let headers = crate::aggregate::part_headers(
            &req,
            state.access.forwarded_headers(),
            peer,
            request_id,
        );
        let result = crate::aggregate::answer(
            aggregate,
            plan.op.id,
            &state.proxy,
            &state.targets,
            plan.path.as_str(),
            headers,
        )
        .await;
        return with_limit_headers(result, limit_headers);
    }
    let op = plan.op;
    let target = &state.targets[op.upstream];
    let req = req.map(|body| Body::limited(body, op.max_body));
    let result = match op.transform {
        None => match target {
            Target::Mock => mock(op.mock.as_ref(), op.id),
            Target::Http { .. } => {
                state
                    .proxy
                    .forward(op.upstream, target, plan, req, peer, request_id)
                    .await
            }
        },
        Some(t) => {
            let cx = transform::Context {
                env: &state.env,
                request_id,
                principal: principal.as_ref(),
                head: req.method() == http::Method::HEAD,
            };
            transformed(state, peer, req, plan, t, &cx).await
        }
    };
    if limit_headers.is_empty() {
        return result;
    }
    with_limit_headers(result, limit_headers)
}

/// Forwards with the operation's transform applied both ways.
async fn transformed(
    state: &'static State,
    peer: &Peer,
    req: Request<Body>,
    plan: crate::gateway::Plan,
    t: &'static transform::TransformDef,
    cx: &transform::Context<'_>,
) -> Result<Response<Body>, Problem> {
    let op = plan.op;
    let target = &state.targets[op.upstream];
    let req = transform::request(op, t, req, cx).await?;
    let resp = match target {
        Target::Mock => mock(op.mock.as_ref(), op.id)?,
        Target::Http { .. } => {
            state
                .proxy
                .forward(op.upstream, target, plan, req, peer, cx.request_id)
                .await?
        }
    };
    transform::response(op, t, resp, cx).await
}

/// A counted request reports its limits whatever happened next (413, 502, 504, ...).
fn with_limit_headers(
    result: Result<Response<Body>, Problem>,
    limit_headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<Response<Body>, Problem> {
    match result {
        Ok(mut resp) => {
            for (name, value) in limit_headers {
                resp.headers_mut().append(name, value);
            }
            Ok(resp)
        }
        Err(mut problem) => {
            problem.headers.extend(limit_headers);
            Err(problem)
        }
    }
}

/// `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and their `Link`s.
fn deprecation_headers(dep: &DeprecationDef) -> Vec<(HeaderName, HeaderValue)> {
    use http::header::LINK;
    static DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
    static SUNSET: HeaderName = HeaderName::from_static("sunset");
    let mut headers = Vec::with_capacity(4);
    if let Some(value) = dep.deprecation {
        headers.push((DEPRECATION.clone(), HeaderValue::from_static(value)));
    }
    if let Some(date) = dep.sunset.and_then(|d| HeaderValue::from_str(d).ok()) {
        headers.push((SUNSET.clone(), date));
    }
    if let Some(link) = dep.link {
        if dep.deprecation.is_some()
            && let Ok(v) = HeaderValue::from_str(&format!(
                "<{link}>; rel=\"deprecation\"; type=\"text/html\""
            ))
        {
            headers.push((LINK, v));
        }
        if dep.sunset.is_some()
            && let Ok(v) =
                HeaderValue::from_str(&format!("<{link}>; rel=\"sunset\"; type=\"text/html\""))
        {
            headers.push((LINK, v));
        }
    }
    headers
}

fn mock(example: Option<&MockResponse>, operation: &str) -> Result<Response<Body>, Problem> {
    let Some(example) = example else {
        return Err(Problem::new(
            http::StatusCode::NOT_IMPLEMENTED,
            format!("operation `{operation}` has no upstream URL and no example response"),
        ));
    };
    let mut resp = Response::new(Body::full(bytes::Bytes::from_static(
        example.body.as_bytes(),
    )));
    *resp.status_mut() = http::StatusCode::from_u16(example.status).unwrap_or(http::StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(example.content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    Ok(resp)
}

/// The client's `X-Request-Id` when it is a sane token, otherwise a new random one.
fn request_id<B>(req: &Request<B>) -> HeaderValue {
    if let Some(v) = req.headers().get(&X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    let mut buf = [0u8; 32];
    let n = fastrand::u128(..);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = HEX[((n >> (i * 4)) & 0xf) as usize];
    }
    // 32 hex digits are always a valid header value.
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}
