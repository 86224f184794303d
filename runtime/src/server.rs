//! The process: settings, logging, the listeners, and shutdown.
//!
//! Each accepted connection is served by hyper (HTTP/1.1, or h2c when its first bytes are
//! the HTTP/2 preface); each request goes through the phases in `crate::phase`. With
//! `GATEWAY_ADMIN_LISTEN`, a second listener serves metrics and health
//! (`crate::observe::admin`).
//!
//! Shutdown: on SIGTERM or SIGINT `/readyz` turns 503 at once; after
//! `GATEWAY_SHUTDOWN_DELAY` the public listener closes, in-flight requests finish (up to
//! `GATEWAY_SHUTDOWN_GRACE`), buffered log lines and spans are written, and the process
//! exits.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::access::Access;
use crate::conns::{self, Connections};
use crate::cors::Cors;
use crate::gateway::Gateway;
use crate::observe::Observe;
use crate::observe::admin::Readiness;
use crate::phase::{self, State};
use crate::proxy::Peer;
use crate::traffic::Limits;
use crate::transform;
use crate::upstream::{Address, Resolved, Upstreams};

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
    /// `GATEWAY_ADMIN_LISTEN`: where `/metrics`, `/healthz` and `/readyz` are served; none
    /// by default.
    pub admin_listen: Option<SocketAddr>,
    /// `GATEWAY_ACCESS_LOG`: one JSON line per request on stdout (`on`, the default) or none
    /// (`off`).
    pub access_log: bool,
    /// `GATEWAY_SHUTDOWN_DELAY`: how long after SIGTERM the public listener stays open while
    /// `/readyz` says 503; default 5 s with an admin listener, 0 without.
    pub shutdown_delay: Duration,
    /// `GATEWAY_UPSTREAM_IDLE_TIMEOUT`: how long an idle upstream connection is kept for
    /// another request; 0 keeps none. Default 4 s: below common upstream keep-alive
    /// timeouts (Node.js 5 s, Apache 5 s, NGINX 75 s), so that the gateway gives a connection
    /// up before the upstream closes it.
    pub upstream_idle_timeout: Duration,
    /// `GATEWAY_MAX_CONNECTIONS`: client connections served at once; past it the gateway
    /// closes idle ones and leaves new ones in the listen queue until one ends. Default:
    /// half the open-file limit (raised to its hard limit at start-up), so the other half
    /// stays for upstream connections, Redis, files and the admin listener.
    pub max_connections: Option<usize>,
    /// `GATEWAY_TLS_CERT` and `GATEWAY_TLS_KEY` (both or neither), `GATEWAY_TLS_CLIENT_CA`
    /// and `GATEWAY_TLS_CLIENT_AUTH`: TLS on the public listener (runtime/src/tls.rs).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsSettings>,
    /// `GATEWAY_CACHE_SIZE`: the response cache's bound, in bytes (`64MiB` style sizes
    /// too); default 64 MiB. Used only when an operation is cached.
    pub cache_size: u64,
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
        let upstream_idle = var("GATEWAY_UPSTREAM_IDLE_TIMEOUT", "4");
        let cache_size = var("GATEWAY_CACHE_SIZE", "64MiB");
        let cache_size = gatewayc_vocab::size::parse(&cache_size).unwrap_or_else(|| {
            errors.push(format!(
                "GATEWAY_CACHE_SIZE=`{cache_size}` is not a size like 64MiB or 1000000"
            ));
            64 << 20
        });
        let max_connections = match std::env::var("GATEWAY_MAX_CONNECTIONS") {
            Ok(v) if !v.is_empty() => match v.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    errors.push(format!(
                        "GATEWAY_MAX_CONNECTIONS=`{v}` is not a number of connections above 0"
                    ));
                    None
                }
            },
            _ => None,
        };
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
        let admin_listen = match std::env::var("GATEWAY_ADMIN_LISTEN") {
            Ok(a) if !a.is_empty() => match a.parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    errors.push(format!(
                        "GATEWAY_ADMIN_LISTEN=`{a}` is not an address like 127.0.0.1:9901"
                    ));
                    None
                }
            },
            _ => None,
        };
        #[cfg(feature = "tls")]
        let tls = tls_settings(&mut errors);
        #[cfg(not(feature = "tls"))]
        if std::env::var_os("GATEWAY_TLS_CERT").is_some() {
            errors.push(
                "GATEWAY_TLS_CERT is set, but this gateway was built without the `tls` feature"
                    .to_owned(),
            );
        }
        let access_log = match var("GATEWAY_ACCESS_LOG", "on").as_str() {
            "on" => true,
            "off" => false,
            other => {
                errors.push(format!("GATEWAY_ACCESS_LOG=`{other}` is not `on` or `off`"));
                true
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
        let delay_default = if admin_listen.is_some() { "5" } else { "0" };
        let delay = var("GATEWAY_SHUTDOWN_DELAY", delay_default);
        let shutdown_delay = secs("GATEWAY_SHUTDOWN_DELAY", &delay);
        let upstream_idle_timeout = secs("GATEWAY_UPSTREAM_IDLE_TIMEOUT", &upstream_idle);
        if errors.is_empty() {
            Ok(Settings {
                listen,
                workers,
                shutdown_grace,
                header_timeout,
                admin_listen,
                access_log,
                shutdown_delay,
                upstream_idle_timeout,
                max_connections,
                #[cfg(feature = "tls")]
                tls,
                cache_size,
            })
        } else {
            Err(errors)
        }
    }
}

/// The `GATEWAY_TLS_*` variables; problems are pushed to `errors`.
#[cfg(feature = "tls")]
fn tls_settings(errors: &mut Vec<String>) -> Option<crate::tls::TlsSettings> {
    use crate::tls::{ClientAuth, TlsSettings};
    let get = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty());
    let (cert, key) = match (get("GATEWAY_TLS_CERT"), get("GATEWAY_TLS_KEY")) {
        (None, None) => {
            if get("GATEWAY_TLS_CLIENT_CA").is_some() {
                errors.push(
                    "GATEWAY_TLS_CLIENT_CA needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY".to_owned(),
                );
            }
            return None;
        }
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            errors.push("GATEWAY_TLS_CERT is set but GATEWAY_TLS_KEY is not".to_owned());
            return None;
        }
        (None, Some(_)) => {
            errors.push("GATEWAY_TLS_KEY is set but GATEWAY_TLS_CERT is not".to_owned());
            return None;
        }
    };
    let client_ca = get("GATEWAY_TLS_CLIENT_CA").map(std::path::PathBuf::from);
    let client_auth = match std::env::var("GATEWAY_TLS_CLIENT_AUTH").as_deref() {
        Err(_) | Ok("" | "required") => ClientAuth::Required,
        Ok("optional") => ClientAuth::Optional,
        Ok(other) => {
            errors.push(format!(
                "GATEWAY_TLS_CLIENT_AUTH=`{other}` is not `required` or `optional`"
            ));
            ClientAuth::Required
        }
    };
    Some(TlsSettings {
        cert: cert.into(),
        key: key.into(),
        client_ca,
        client_auth,
    })
}

/// Resolves every upstream URL of `G` with `lookup` (the environment in production).
///
/// Returns each upstream's targets (an upstream's `url` is one target of weight 1; a
/// target whose URL resolves to the empty string is left out, and an upstream left with
/// none serves the spec's examples), or every problem at once: all missing variables in
/// one message, then each malformed URL.
pub fn resolve_upstreams<G: Gateway>(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Vec<Resolved>>, Vec<String>> {
    let mut missing = std::collections::BTreeSet::new();
    let mut errors = Vec::new();
    let mut upstreams = Vec::new();
    for up in G::UPSTREAMS {
        let one = up.url.map(|url| (url, 1));
        let listed = up.targets.iter().map(|t| (t.url, t.weight));
        let mut targets = Vec::new();
        for (template, weight) in one.into_iter().chain(listed) {
            let url = match crate::env::resolve_with(template, lookup) {
                Ok(u) => u,
                Err(m) => {
                    missing.extend(m);
                    continue;
                }
            };
            if url.is_empty() {
                continue;
            }
            match Address::parse(&url) {
                Ok(address) => targets.push(Resolved {
                    address,
                    weight: weight.max(1),
                }),
                Err(e) => errors.push(format!("upstream `{}`: {e}", up.name)),
            }
        }
        upstreams.push(targets);
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
        Ok(upstreams)
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
    raise_open_file_limit();
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
        #[cfg(feature = "tls")]
        let tls = match &settings.tls {
            Some(t) => Some(Arc::new(crate::tls::Tls::load(t.clone())?)),
            None => None,
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let admin = match settings.admin_listen {
            None => None,
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .map_err(|e| format!("cannot listen on {at} (GATEWAY_ADMIN_LISTEN): {e}"))?,
            ),
        };
        for (up, t) in G::UPSTREAMS.iter().zip(&targets) {
            if t.is_empty() {
                tracing::warn!(
                    upstream = up.name,
                    "no URL set: serving the spec's examples"
                );
            }
        }
        // Plain lines, whatever the log level: tests and people read the bound addresses
        // here. The admin address comes first, so that it is known once the public one is.
        if let Some(admin) = &admin {
            let at = admin
                .local_addr()
                .map_err(|e| format!("cannot read the bound address: {e}"))?;
            announce(
                G::NAME,
                &format!("admin endpoints on http://{at} (/metrics, /healthz, /readyz)"),
            );
        }
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        #[cfg(feature = "tls")]
        let scheme = if tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        announce(
            G::NAME,
            &format!(
                "listening on {scheme}://{addr} ({} worker thread{})",
                settings.workers,
                if settings.workers == 1 { "" } else { "s" }
            ),
        );
        serve::<G>(
            Listeners {
                public: listener,
                admin,
                #[cfg(feature = "tls")]
                tls,
            },
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

/// Raises the open-file soft limit to the hard limit: every client and upstream connection
/// is a file descriptor, and the usual soft limit (1,024) is far below what a gateway
/// serves. A failure is logged and the gateway runs with the limit it has.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// `GATEWAY_MAX_CONNECTIONS` when set, or half the open-file limit (at least 64).
fn max_connections(settings: &Settings) -> usize {
    settings.max_connections.unwrap_or_else(|| {
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        usize::try_from(files / 2).unwrap_or(usize::MAX).max(64)
    })
}

/// Whether stderr lines are JSON objects (`GATEWAY_LOG_FORMAT=json`).
fn json_logs() -> bool {
    std::env::var("GATEWAY_LOG_FORMAT").as_deref() == Ok("json")
}

/// A line on stderr whatever the log level: `name: message`, or in JSON mode an object
/// with the same message.
fn announce(name: &str, message: &str) {
    say(name, "INFO", message);
}

fn say(name: &str, level: &str, message: &str) {
    if json_logs() {
        let line = serde_json::json!({
            "timestamp": crate::observe::log::timestamp(std::time::SystemTime::now()),
            "level": level,
            "message": message,
            "gateway": name,
        });
        eprintln!("{line}");
    } else if level == "ERROR" {
        eprintln!("{name}: error: {message}");
    } else {
        eprintln!("{name}: {message}");
    }
}

fn fail(name: &str, errors: &[String]) -> ExitCode {
    for e in errors {
        say(name, "ERROR", e);
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

/// The sockets a gateway serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The public listener.
    pub public: TcpListener,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`), if any.
    pub admin: Option<TcpListener>,
    /// TLS on the public listener, if any; reloaded on SIGHUP.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::tls::Tls>>,
}

/// Serves `G` until `shutdown` resolves, then drains in-flight requests. `targets` are
/// each upstream's, as [`resolve_upstreams`] gives them.
pub async fn serve<G: Gateway>(
    listeners: Listeners,
    targets: Vec<Vec<Resolved>>,
    (access, limits): (Access, Option<Limits>),
    settings: &Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let Listeners {
        public: listener,
        admin,
        #[cfg(feature = "tls")]
        tls,
    } = listeners;
    #[cfg(feature = "tls")]
    let tls: Option<&'static crate::tls::Tls> = tls.map(|t| {
        let leaked: &'static Arc<crate::tls::Tls> = Box::leak(Box::new(t));
        &**leaked
    });
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        tokio::spawn(reload_on_sighup(tls));
    }
    #[cfg(not(feature = "tls"))]
    let tls: Option<&'static ()> = None;
    let metrics = admin.as_ref().map(|_| {
        crate::observe::metrics::init(
            G::NAME,
            G::SPEC_DIGEST,
            G::OPERATIONS.len(),
            G::UPSTREAMS.len(),
        )
    });
    let lookup = |n: &str| std::env::var(n).ok();
    #[cfg(feature = "otlp")]
    let exporter: Option<&'static crate::observe::otlp::Exporter> =
        crate::observe::otlp::Exporter::from_env(&lookup, G::NAME)?
            .map(|e| &*Box::leak(Box::new(e)));
    #[cfg(not(feature = "otlp"))]
    if lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || lookup("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
    {
        tracing::warn!(
            "an OTLP endpoint is set, but this gateway was built without the `otlp` feature: no spans are exported"
        );
    }
    if settings.access_log {
        crate::observe::log::init(G::OPERATIONS);
    }
    let observe = Observe {
        access_log: settings.access_log,
        metrics,
        #[cfg(feature = "otlp")]
        exporter,
        secret_params: access.secret_params().to_vec(),
    };
    let state: &'static State = Box::leak(Box::new(State {
        upstreams: Upstreams::new(
            G::UPSTREAMS,
            targets,
            settings.upstream_idle_timeout,
            &lookup,
        )?,
        access,
        cors: Cors::of::<G>(),
        limits,
        // `main` has already stopped on any missing variable (`resolve_upstreams`).
        env: transform::Env::resolve::<G>(&lookup).unwrap_or_default(),
        cache: G::OPERATIONS
            .iter()
            .any(|op| op.cache.is_some())
            .then(|| crate::cache::Cache::new(settings.cache_size)),
        observe,
    }));
    #[cfg(feature = "otlp")]
    if let Some(e) = exporter {
        tokio::spawn(e.run());
    }
    state.upstreams.start_health_checks();
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
    // Limits set here rather than left to hyper's defaults, which may change: streams at
    // once per connection; streams a client may reset before the gateway has taken them
    // (hyper's guard against "rapid reset", CVE-2023-44487; those reset after are counted
    // in `conns`); streams the gateway itself resets for errors; the header block, as
    // large as an HTTP/1 head may be.
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        .max_header_list_size(u32::try_from(crate::proxy::MAX_BUF).unwrap_or(u32::MAX));
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
    let readiness: &'static Readiness = Box::leak(Box::new(Readiness::default()));
    if let Some(admin) = admin {
        tokio::spawn(crate::observe::admin::serve(admin, state, readiness, conns));
    }
    readiness
        .listening
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let max = max_connections(settings);
    let mut accept_errors = Throttled::default();
    let mut at_max = Throttled::default();
    loop {
        let room = conns.live() < max;
        tokio::select! {
            accepted = listener.accept(), if room => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning,
                        // and say so once in a while rather than at every try.
                        accept_errors.warn(|n| tracing::error!(error = %e, failures = n, "accept failed"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                accept_one::<G>(state, builders, conns, tls, &stop, first_bytes, stream, peer);
            }
            () = conns.room(max), if !room => {}
            () = &mut shutdown => break,
        }
        if !room {
            at_max.warn(|n| {
                tracing::warn!(
                    max_connections = max,
                    times = n,
                    "at GATEWAY_MAX_CONNECTIONS: idle connections closed to make room; new ones wait in the listen queue"
                );
            });
        }
    }
    // Readiness turns first; the listener stays open for the delay, so that requests a load
    // balancer still sends meanwhile are served.
    readiness
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    if !settings.shutdown_delay.is_zero() {
        tracing::info!(
            delay_s = settings.shutdown_delay.as_secs(),
            "shutting down: /readyz answers 503; the listener closes after the delay"
        );
        let delay = tokio::time::sleep(settings.shutdown_delay);
        tokio::pin!(delay);
        loop {
            tokio::select! {
                () = &mut delay => break,
                accepted = listener.accept() => {
                    if let Ok((stream, peer)) = accepted {
                        accept_one::<G>(state, builders, conns, tls, &stop, first_bytes, stream, peer);
                    }
                }
            }
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
    crate::observe::log::flush();
    #[cfg(feature = "otlp")]
    if let Some(e) = state.observe.exporter {
        let _ = tokio::time::timeout(Duration::from_secs(2), e.export()).await;
    }
    Ok(())
}

/// HTTP/2 streams a client may have open at once on one connection.
const H2_MAX_STREAMS: u32 = 128;

/// A condition logged at most every few seconds, with how many times it happened since.
#[derive(Debug, Default)]
struct Throttled {
    last: Option<std::time::Instant>,
    count: u64,
}

impl Throttled {
    fn warn(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(5))
        {
            log(self.count);
            self.last = Some(now);
            self.count = 0;
        }
    }
}

/// Reloads the listener's certificate and key on every SIGHUP; a failed reload keeps what
/// was there.
#[cfg(feature = "tls")]
async fn reload_on_sighup(tls: &'static crate::tls::Tls) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the TLS certificate is not reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: TLS reload failed; the previous certificate stays in use")
            }
        }
    }
}

/// What a connection is served over: the TLS configuration, or nothing (plain TCP).
#[cfg(feature = "tls")]
type TlsRef = Option<&'static crate::tls::Tls>;
#[cfg(not(feature = "tls"))]
type TlsRef = Option<&'static ()>;

/// Serves one accepted connection in a task of its own.
#[allow(clippy::too_many_arguments)]
fn accept_one<G: Gateway>(
    state: &'static State,
    builders: &'static (http1::Builder, http2::Builder<TokioExecutor>),
    conns: &'static Connections,
    tls: TlsRef,
    stop: &tokio::sync::watch::Receiver<bool>,
    first_bytes: Duration,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let live = conns.enter();
    let stop = stop.clone();
    tokio::spawn(async move {
        // HTTP/2 over cleartext starts with the preface `PRI * HTTP/2.0`; no HTTP/1 method
        // is `PRI`. Deciding once per connection from a peek lets each connection be served
        // by hyper's own builder directly, with no re-reading wrapper on every read.
        let mut stop = stop;
        #[cfg(feature = "tls")]
        if let Some(tls) = tls {
            let handshake = tokio::select! {
                biased;
                done = tokio::time::timeout(first_bytes, tls.acceptor().accept(stream)) => done,
                _ = stop.wait_for(|s| *s) => return,
            };
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let session = crate::tls::Session::of(stream.get_ref().1);
            let client = conns.open_peer(
                Peer::secure(peer, session.client_cert, session.client_identity),
                !session.h2,
            );
            serve_io::<G, _>(state, builders, client, TokioIo::new(stream), session.h2).await;
            drop(live);
            return;
        }
        #[cfg(not(feature = "tls"))]
        let _ = tls;
        let is_h2 = tokio::select! {
            // A connection whose first bytes are there is served, even if shutdown begins
            // at the same moment.
            biased;
            peeked = tokio::time::timeout(first_bytes, sniff_h2(&stream)) => peeked,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(Some(is_h2)) = is_h2 else { return };
        let client = conns.open_peer(Peer::new(peer), !is_h2);
        serve_io::<G, _>(state, builders, client, TokioIo::new(stream), is_h2).await;
        drop(live);
    });
}

/// Serves HTTP/1.1 or HTTP/2 on `io` until the connection ends.
async fn serve_io<G: Gateway, I>(
    state: &'static State,
    builders: &'static (http1::Builder, http2::Builder<TokioExecutor>),
    client: Arc<conns::Conn>,
    io: I,
    h2: bool,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let for_service = client.clone();
    let service = service_fn(move |req| phase::handle::<G>(state, for_service.clone(), req));
    let (h1_builder, h2_builder) = builders;
    let result = if h2 {
        conns::drive(h2_builder.serve_connection(io, service), client).await
    } else {
        conns::drive(h1_builder.serve_connection(io, service), client).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
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
