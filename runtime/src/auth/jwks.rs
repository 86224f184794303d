//! Keys fetched from an identity provider: a JWKS URL, or an OpenID Connect discovery
//! document whose `jwks_uri` names one.
//!
//! The key set is held in memory and fetched again:
//! - when a token names a `kid` the set lacks (the provider rotated its keys): at most once a
//!   second, and misses that arrive while a fetch runs wait for it instead of starting their
//!   own;
//! - when it is older than its refresh interval (the JWKS response's `Cache-Control: max-age`
//!   clamped to 60 s .. 1 day, 5 minutes without one): in a background task started by the
//!   next token, which meanwhile is checked against the keys held.
//!
//! A fetch that fails, or returns no usable key, keeps the keys held, so clients are not
//! locked out while the provider is down, and logs a warning naming the URL. Each fetch is
//! bounded by a 5 s timeout and a 1 MiB body. The client is hyper-util's, with rustls under the
//! `tls` feature; it follows no redirects and sends no credentials.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, HeaderMap, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::keys::{Jwk, Key};
use crate::proxy::error_chain;

use crate::proxy::Connector;

/// Bound on one fetch (discovery document and JWKS together).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest discovery or JWKS document read.
const MAX_DOCUMENT: usize = 1 << 20;
/// Fetches started by unknown `kid`s are at least this far apart.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Refresh interval when the JWKS response has no `max-age`.
const DEFAULT_REFRESH: Duration = Duration::from_secs(5 * 60);
const MIN_REFRESH_SECS: u64 = 60;
const MAX_REFRESH_SECS: u64 = 24 * 60 * 60;
/// After a failed fetch, the next periodic attempt waits this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The keys held at one moment; replaced whole, never changed in place.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
    /// Grows by one each time the keys change; 0 for a remote set never fetched. Tokens
    /// verified under one generation are not trusted from the cache under another.
    pub(crate) generation: u64,
    /// The JWKS entries the keys came from, to tell whether a fetch changed anything.
    jwks: Vec<Jwk>,
}

impl KeySet {
    /// One configured key (PEM file or secret), which never changes.
    pub(crate) fn fixed(key: Key) -> KeySet {
        KeySet {
            keys: vec![key],
            generation: 1,
            jwks: Vec::new(),
        }
    }
}

/// Where the JWKS is found.
#[derive(Debug)]
enum Location {
    Jwks(Uri),
    Discovery(Uri),
}

/// A JWKS kept fresh from its URL. See the module documentation for when it is fetched.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    scheme: &'static str,
    location: Location,
    client: Client<Connector, Empty<Bytes>>,
    current: RwLock<Arc<KeySet>>,
    /// Held for the whole of a fetch: this is what makes concurrent misses share one.
    fetches: tokio::sync::Mutex<FetchLog>,
    /// Origin of `refresh_at_ms`.
    epoch: Instant,
    /// When the next periodic refresh is due, in milliseconds after `epoch`.
    refresh_at_ms: AtomicU64,
    /// Whether a background refresh task is running.
    refreshing: AtomicBool,
}

#[derive(Debug, Default)]
struct FetchLog {
    last_started: Option<Instant>,
    last_finished: Option<Instant>,
}

/// A failed fetch: the URL that failed and what went wrong (never the document's content).
#[derive(Debug)]
struct FetchError {
    url: String,
    problem: String,
}

impl FetchError {
    fn new(url: &Uri, problem: impl Into<String>) -> FetchError {
        FetchError {
            url: url.to_string(),
            problem: problem.into(),
        }
    }
}

impl RemoteKeys {
    /// Keys to be fetched from `url`: a JWKS, or with `discovery` an OpenID discovery
    /// document. Nothing is fetched yet.
    pub(crate) fn new(scheme: &'static str, url: &str, discovery: bool) -> Result<Self, String> {
        let uri = parse_url(url).map_err(|problem| format!("the URL `{url}` {problem}"))?;
        if uri.scheme_str() == Some("http") && !is_loopback(uri.host()) {
            tracing::warn!(
                scheme,
                url,
                "JWT keys fetched over plain http can be replaced on the way; use https"
            );
        }
        let location = if discovery {
            Location::Discovery(uri)
        } else {
            Location::Jwks(uri)
        };
        Ok(RemoteKeys {
            scheme,
            location,
            client: client()?,
            current: RwLock::new(Arc::new(KeySet {
                keys: Vec::new(),
                generation: 0,
                jwks: Vec::new(),
            })),
            fetches: tokio::sync::Mutex::new(FetchLog::default()),
            epoch: Instant::now(),
            refresh_at_ms: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        })
    }

    /// The keys held now. When a periodic refresh is due, starts it in the background.
    pub(crate) fn current(self: &Arc<Self>) -> Arc<KeySet> {
        if self.elapsed_ms() >= self.refresh_at_ms.load(Ordering::Relaxed)
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let this = Arc::clone(self);
                    runtime.spawn(async move {
                        this.refresh_if_due().await;
                        this.refreshing.store(false, Ordering::Release);
                    });
                }
                Err(_) => self.refreshing.store(false, Ordering::Release),
            }
        }
        self.held()
    }

    /// Whether keys have been fetched at least once.
    pub(crate) fn loaded(&self) -> bool {
        self.held().generation > 0
    }

    /// Fetches now, however recent the keys are: the start-up fetch.
    pub(crate) async fn prefetch(&self) {
        let mut log = self.fetches.lock().await;
        self.fetch(&mut log).await;
    }

    /// Called when `seen` had no key for a token: fetches again unless a fetch started less
    /// than a second ago or finished while this caller waited, and returns the keys then held.
    pub(crate) async fn refetch_after_miss(&self, seen: &KeySet) -> Arc<KeySet> {
        let missed_at = Instant::now();
        let mut log = self.fetches.lock().await;
        let held = self.held();
        let changed = held.generation != seen.generation;
        let just_fetched = log.last_finished.is_some_and(|at| at >= missed_at);
        let too_soon = log
            .last_started
            .is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL);
        if changed || just_fetched || too_soon {
            return held;
        }
        self.fetch(&mut log).await;
        self.held()
    }

    async fn refresh_if_due(&self) {
        let mut log = self.fetches.lock().await;
        if self.elapsed_ms() >= self.refresh_at_ms.load(Ordering::Relaxed) {
            self.fetch(&mut log).await;
        }
    }

    /// One fetch, with `log` proving the caller holds the fetch lock. On success the key set
    /// is replaced if it changed; on failure the keys held stay.
    async fn fetch(&self, log: &mut FetchLog) {
        log.last_started = Some(Instant::now());
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.fetch_keys())
            .await
            .unwrap_or_else(|_| {
                Err(FetchError {
                    url: self.url().to_string(),
                    problem: format!("no complete answer within {} s", FETCH_TIMEOUT.as_secs()),
                })
            });
        log.last_finished = Some(Instant::now());
        crate::observe::metrics::jwks_refresh(self.scheme, fetched.is_ok());
        let next = match fetched {
            Ok((keys, jwks, refresh)) => {
                self.install(keys, jwks);
                refresh
            }
            Err(e) => {
                tracing::warn!(
                    scheme = self.scheme,
                    url = %e.url,
                    error = %e.problem,
                    "could not fetch the JWT signing keys; keeping the keys held"
                );
                RETRY_AFTER_FAILURE
            }
        };
        let next_ms = u64::try_from(next.as_millis()).unwrap_or(u64::MAX);
        self.refresh_at_ms
            .store(self.elapsed_ms().saturating_add(next_ms), Ordering::Relaxed);
    }

    /// The keys of the JWKS (after discovery, if configured so) and its refresh interval.
    async fn fetch_keys(&self) -> Result<(Vec<Key>, Vec<Jwk>, Duration), FetchError> {
        let jwks_uri = match &self.location {
            Location::Jwks(uri) => uri.clone(),
            Location::Discovery(uri) => {
                #[derive(Deserialize)]
                struct Discovery {
                    jwks_uri: String,
                }
                let (body, _) = self.get(uri).await?;
                let doc: Discovery = serde_json::from_slice(&body).map_err(|_| {
                    FetchError::new(uri, "not an OpenID discovery document with a `jwks_uri`")
                })?;
                parse_url(&doc.jwks_uri)
                    .map_err(|problem| FetchError::new(uri, format!("its jwks_uri {problem}")))?
            }
        };
        let (body, headers) = self.get(&jwks_uri).await?;
        let (keys, jwks) = self
            .parse_jwks(&body)
            .map_err(|problem| FetchError::new(&jwks_uri, problem))?;
        Ok((keys, jwks, refresh_interval(&headers)))
    }

    /// The usable keys of a JWKS document; entries that are not signing keys this gateway can
    /// use are skipped. A document with none is an error.
    fn parse_jwks(&self, body: &[u8]) -> Result<(Vec<Key>, Vec<Jwk>), &'static str> {
        #[derive(Deserialize)]
        struct JwkSet {
            keys: Vec<serde_json::Value>,
        }
        let set: JwkSet = serde_json::from_slice(body)
            .map_err(|_| "not a JWKS document (a JSON object with a `keys` array)")?;
        let mut keys = Vec::new();
        let mut jwks = Vec::new();
        for entry in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry) else {
                tracing::debug!(scheme = self.scheme, "JWKS entry skipped: not a JWK");
                continue;
            };
            match Key::from_jwk(&jwk) {
                Ok(key) => {
                    keys.push(key);
                    jwks.push(jwk);
                }
                Err(why) => {
                    tracing::debug!(
                        scheme = self.scheme,
                        kid = jwk.kid(),
                        why,
                        "JWKS entry skipped"
                    );
                }
            }
        }
        if keys.is_empty() {
            return Err("the JWKS holds no usable signing key");
        }
        Ok((keys, jwks))
    }

    fn install(&self, keys: Vec<Key>, jwks: Vec<Jwk>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.generation > 0 && current.jwks == jwks {
            return;
        }
        tracing::info!(
            scheme = self.scheme,
            keys = keys.len(),
            "JWT signing keys loaded"
        );
        *current = Arc::new(KeySet {
            keys,
            generation: current.generation + 1,
            jwks,
        });
    }

    /// One GET with a 2xx answer: its body and headers.
    async fn get(&self, uri: &Uri) -> Result<(Bytes, HeaderMap), FetchError> {
        let request = Request::get(uri.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Empty::new())
            .map_err(|e| FetchError::new(uri, e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::new(uri, error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(FetchError::new(
                uri,
                format!("answered {}", response.status()),
            ));
        }
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| FetchError::new(uri, format!("reading the body failed: {e}")))?
            .to_bytes();
        Ok((body, parts.headers))
    }

    fn held(&self) -> Arc<KeySet> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&current)
    }

    fn url(&self) -> &Uri {
        match &self.location {
            Location::Jwks(uri) | Location::Discovery(uri) => uri,
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Makes the periodic refresh due now.
    #[cfg(test)]
    pub(crate) fn make_refresh_due(&self) {
        self.refresh_at_ms.store(0, Ordering::Relaxed);
    }

    /// Seconds until the periodic refresh is due.
    #[cfg(test)]
    pub(crate) fn refresh_in_secs(&self) -> u64 {
        self.refresh_at_ms
            .load(Ordering::Relaxed)
            .saturating_sub(self.elapsed_ms())
            .div_ceil(1000)
    }
}

/// An `http` or `https` URL with a host, or what is wrong with it.
fn parse_url(url: &str) -> Result<Uri, &'static str> {
    let uri: Uri = url.parse().map_err(|_| "is not a valid URL")?;
    match uri.scheme_str() {
        Some("http") => {}
        #[cfg(feature = "tls")]
        Some("https") => {}
        #[cfg(not(feature = "tls"))]
        Some("https") => return Err("is https, but this gateway was built without `tls`"),
        _ => return Err("is not an http or https URL"),
    }
    if uri.host().is_none() {
        return Err("has no host");
    }
    Ok(uri)
}

/// Whether `host` is this machine (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback(host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `max-age` of the response's `Cache-Control`, clamped to 60 s .. 1 day; 5 minutes
/// when there is none.
fn refresh_interval(headers: &HeaderMap) -> Duration {
    let max_age = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|directive| {
            let (name, value) = directive.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("max-age") {
                return None;
            }
            value.trim().trim_matches('"').parse::<u64>().ok()
        });
    match max_age {
        Some(secs) => Duration::from_secs(secs.clamp(MIN_REFRESH_SECS, MAX_REFRESH_SECS)),
        None => DEFAULT_REFRESH,
    }
}

/// The HTTP(S) client for key fetches.
fn client() -> Result<Client<Connector, Empty<Bytes>>, String> {
    let connector = crate::proxy::connector(FETCH_TIMEOUT, false)?;
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_interval_follows_max_age_within_bounds() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
            refresh_interval(&headers).as_secs()
        };
        assert_eq!(refresh_interval(&HeaderMap::new()).as_secs(), 300);
        assert_eq!(with("public, max-age=3600"), 3600);
        assert_eq!(with("Max-Age=\"120\", must-revalidate"), 120);
        assert_eq!(with("max-age=0"), 60);
        assert_eq!(with("max-age=99999999"), 86400);
        assert_eq!(with("no-store"), 300);
        assert_eq!(with("max-age=soon"), 300);
    }

    #[test]
    fn only_http_and_https_urls_are_fetched() {
        assert!(parse_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(parse_url("file:///etc/passwd").is_err());
        assert!(parse_url("/jwks.json").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(is_loopback(Some("127.0.0.1")) && is_loopback(Some("[::1]")));
        assert!(is_loopback(Some("LocalHost")) && !is_loopback(Some("idp.example.test")));
    }
}
