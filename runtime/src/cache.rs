//! Phase 8: the response cache, a shared cache (RFC 9111) in front of the upstream for the
//! GET operations whose spec says `x-gateway.cache` (docs/x-gateway.md).
//!
//! **Keys.** An answer is stored under: the operation, the request path, the query with its
//! parameters in sorted order (so `?a=1&b=2` and `?b=2&a=1` share an entry), the values of
//! the request headers the operation's `vary` names, and, on an operation with security,
//! the authenticated consumer: one consumer never receives another's answer. A request for
//! a secured operation without a consumer name, or a request with `Authorization` to a
//! public operation, is not cached at all (`fwd=bypass`).
//!
//! **What is stored.** A GET's answer with status 200, 203, 204, 300, 301, 308, 404, 405,
//! 410, 414 or 501, a known `Content-Length` of at most the entry limit (an eighth of the
//! cache, at most 1 MiB), and a freshness: the answer's `Cache-Control: s-maxage`, else its
//! `max-age`, else the operation's `ttl`. Never stored: an answer with `no-store`,
//! `private` or `no-cache`, with `Set-Cookie`, with `Vary: *` or a `Vary` naming a header the
//! operation's `vary` does not. `Expires` is not read. An answer's own `Age` counts against
//! its freshness.
//!
//! **Requests.** `Cache-Control: no-cache` (or `Pragma: no-cache`) from the client goes to
//! the upstream and refreshes the entry; `no-store` goes to the upstream and stores nothing.
//! HEAD is answered from a stored GET answer (or forwarded, never stored).
//!
//! **Misses.** Concurrent misses for one key are coalesced: one request goes upstream and
//! the others wait for its answer (quick_cache's placeholder). An answer that cannot be
//! stored leaves a one-second pass mark, so the requests that waited, and those right
//! after, go upstream side by side instead of one by one.
//!
//! **Stale answers.** With `stale_if_error`, an answer past its freshness is kept that much
//! longer; when the upstream then fails (no answer, or a 5xx), the stale answer is sent.
//! With `stale_while_revalidate`, a request that finds its answer past its freshness but
//! within that time refreshes it from the upstream, and every other request for it
//! meanwhile gets the stale answer at once (as NGINX's `proxy_cache_use_stale updating`
//! does): one client waits for the upstream, not all of them. An answer's own
//! `Cache-Control: stale-if-error=N` and `stale-while-revalidate=N` (RFC 5861) win over the
//! operation's.
//!
//! **What the client sees.** Every answer of a cached operation carries `Cache-Status`
//! (RFC 9211): `gatewayc; hit; ttl=N`, `gatewayc; fwd=miss; stored`, `gatewayc; fwd=miss`,
//! `gatewayc; fwd=stale; stored`, `gatewayc; hit; ttl=-N; detail=stale-if-error`,
//! `gatewayc; hit; ttl=-N; detail=stale-while-revalidate`,
//! `gatewayc; fwd=request` or `gatewayc; fwd=bypass`. Answers from the cache carry `Age`.
//!
//! **Memory.** The cache is bounded in bytes (`GATEWAY_CACHE_SIZE`, default 64 MiB) with
//! quick_cache's admission policy (CLOCK-PRO: an entry read once is evicted before entries
//! read again).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;

use crate::body::Body;
use crate::gateway::{CacheDef, OperationDef};
use crate::problem::{Kind, Problem};

/// `Cache-Status` (RFC 9211).
pub static CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
/// How long an answer that could not be stored sends its key's requests straight upstream.
const PASS_FOR: Duration = Duration::from_secs(1);
/// The largest entry, whatever the cache's size.
const MAX_ENTRY: u64 = 1024 * 1024;

type Store = quick_cache::sync::Cache<Vec<u8>, Entry, Weight>;

/// The gateway's response cache, shared by every cached operation.
pub struct Cache {
    store: Store,
    max_entry: u64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.store.len())
            .field("bytes", &self.store.weight())
            .field("capacity", &self.store.capacity())
            .finish()
    }
}

/// What a key holds.
#[derive(Debug, Clone)]
enum Entry {
    Stored(Arc<Stored>),
    /// Not storable: requests go upstream, without waiting for one another, until then.
    Pass(Instant),
}

/// A stored answer.
#[derive(Debug)]
struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// When it was stored, less the `Age` it came with.
    born: Instant,
    fresh: Duration,
    stale_if_error: Duration,
    stale_while_revalidate: Duration,
    /// A request is refreshing it; others get it stale meanwhile (within
    /// `stale_while_revalidate`).
    refreshing: AtomicBool,
    weight: u64,
}

/// Clears an entry's `refreshing` when the request refreshing it is done, whatever came of
/// it (a new entry replaces the old one when the answer could be stored).
struct Refreshing(Arc<Stored>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Relaxed);
    }
}

impl Stored {
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.born)
    }
}

/// The weight of an entry: its bytes, roughly.
#[derive(Debug, Clone, Copy)]
struct Weight;

impl quick_cache::Weighter<Vec<u8>, Entry> for Weight {
    fn weight(&self, key: &Vec<u8>, entry: &Entry) -> u64 {
        let entry = match entry {
            Entry::Stored(s) => s.weight,
            Entry::Pass(_) => 16,
        };
        key.len() as u64 + entry
    }
}

impl Cache {
    /// A cache of at most `bytes` (keys, headers and bodies).
    pub fn new(bytes: u64) -> Cache {
        let bytes = bytes.max(64 * 1024);
        // quick_cache sizes its table from an estimate of the number of entries.
        let estimate = usize::try_from(bytes / 4096).unwrap_or(usize::MAX).max(16);
        Cache {
            store: quick_cache::sync::Cache::with_weighter(estimate, bytes, Weight),
            max_entry: (bytes / 8).min(MAX_ENTRY),
        }
    }

    /// Entries and bytes held. For tools and tests.
    pub fn usage(&self) -> (usize, u64) {
        (self.store.len(), self.store.weight())
    }
}

/// How one request meets the cache.
#[derive(Debug)]
pub(crate) struct Lookup<'c> {
    cache: &'c Cache,
    def: &'static CacheDef,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// Not cacheable: forwarded as it is, with why.
    Bypass(&'static str),
    /// A HEAD: answered from a stored GET answer, or forwarded.
    Head(Vec<u8>),
    /// A GET: `refresh` when the client asked for a fresh answer; `store` unless it said
    /// `no-store`.
    Get {
        key: Vec<u8>,
        refresh: bool,
        store: bool,
    },
}

impl<'c> Lookup<'c> {
    /// How `req` for `op` meets the cache; `consumer` is who the request authenticated as.
    pub(crate) fn new<B>(
        cache: &'c Cache,
        def: &'static CacheDef,
        op: &OperationDef,
        req: &Request<B>,
        consumer: Option<&str>,
    ) -> Lookup<'c> {
        let mode = mode(def, op, req, consumer);
        Lookup { cache, def, mode }
    }

    /// The answer: from the cache, or from `fetch` (the upstream), stored when it can be.
    /// `fetch` makes its future only on a miss: a hit never builds (or moves) the
    /// forwarding state machine.
    pub(crate) async fn serve<F>(self, fetch: impl FnOnce() -> F) -> Result<Response<Body>, Problem>
    where
        F: Future<Output = Result<Response<Body>, Problem>>,
    {
        let Lookup { cache, def, mode } = self;
        match mode {
            Mode::Bypass(why) => {
                let detail = format!("gatewayc; fwd=bypass; detail={why}");
                marked(fetch().await, &detail)
            }
            Mode::Head(key) => {
                let now = Instant::now();
                if let Some(Entry::Stored(s)) = cache.store.get(key.as_slice())
                    && s.age(now) < s.fresh
                {
                    return Ok(answer(&s, now, false, None));
                }
                marked(fetch().await, "gatewayc; fwd=miss")
            }
            Mode::Get {
                key,
                refresh,
                store,
            } => get(cache, def, key, refresh, store, fetch).await,
        }
    }
}

async fn get<F>(
    cache: &Cache,
    def: &'static CacheDef,
    key: Vec<u8>,
    refresh: bool,
    store: bool,
    fetch: impl FnOnce() -> F,
) -> Result<Response<Body>, Problem>
where
    F: Future<Output = Result<Response<Body>, Problem>>,
{
    let mut stale = None;
    let mut guard = None;
    let mut _refreshing = None;
    let mut fwd = if refresh { "request" } else { "miss" };
    if !refresh {
        match cache.store.get_value_or_guard_async(key.as_slice()).await {
            Ok(Entry::Stored(s)) => {
                let now = Instant::now();
                let age = s.age(now);
                if age < s.fresh {
                    return Ok(answer(&s, now, true, None));
                }
                if age < s.fresh + s.stale_while_revalidate {
                    if s.refreshing.swap(true, Ordering::Relaxed) {
                        // Another request is refreshing it: this one gets it stale now.
                        return Ok(answer(&s, now, true, Some("stale-while-revalidate")));
                    }
                    _refreshing = Some(Refreshing(Arc::clone(&s)));
                }
                fwd = "stale";
                stale = Some(s);
            }
            Ok(Entry::Pass(until)) if Instant::now() < until => {
                return marked(fetch().await, "gatewayc; fwd=uri-miss; detail=uncacheable");
            }
            Ok(Entry::Pass(_)) => {}
            Err(g) => guard = Some(g),
        }
    }
    // A stale answer may stand in for a failing upstream while it is this young.
    let stand_in = |now: Instant| {
        stale
            .as_ref()
            .filter(|s| s.age(now) < s.fresh + s.stale_if_error)
    };
    let resp = match fetch().await {
        Ok(resp) if !resp.status().is_server_error() => resp,
        failed => {
            let now = Instant::now();
            if let Some(s) = stand_in(now) {
                return Ok(answer(s, now, true, Some("stale-if-error")));
            }
            return marked(failed, &format!("gatewayc; fwd={fwd}"));
        }
    };
    let now = Instant::now();
    let lifetimes = if store {
        lifetimes(&resp, def, cache.max_entry)
    } else {
        None
    };
    let Some(Lifetimes {
        fresh,
        stale_if_error,
        stale_while_revalidate,
    }) = lifetimes
    else {
        if let Some(g) = guard {
            let _ = g.insert(Entry::Pass(now + PASS_FOR));
        }
        return marked(Ok(resp), &format!("gatewayc; fwd={fwd}"));
    };
    let (parts, body) = resp.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Err(Problem::bad_gateway().because(
                Kind::UpstreamReset,
                format!("the upstream's answer ended early: {e}"),
            ));
        }
    };
    let mut headers = parts.headers;
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    headers.remove(header::AGE);
    let weight = body.len() as u64
        + headers
            .iter()
            .map(|(n, v)| (n.as_str().len() + v.len() + 32) as u64)
            .sum::<u64>()
        + 128;
    let stored = Arc::new(Stored {
        status: parts.status,
        headers,
        body,
        born: now.checked_sub(Duration::from_secs(age)).unwrap_or(now),
        fresh,
        stale_if_error,
        stale_while_revalidate,
        refreshing: AtomicBool::new(false),
        weight,
    });
    match guard {
        Some(g) => {
            let _ = g.insert(Entry::Stored(Arc::clone(&stored)));
        }
        None => cache.store.insert(key, Entry::Stored(Arc::clone(&stored))),
    }
    let mut resp = answer(&stored, now, true, None);
    resp.headers_mut().insert(
        CACHE_STATUS.clone(),
        status_value(&format!("gatewayc; fwd={fwd}; stored")),
    );
    Ok(resp)
}

/// The stored answer as a response, with `Age` and `Cache-Status` (a hit, or a stale
/// answer standing in with `detail`).
fn answer(s: &Stored, now: Instant, body: bool, detail: Option<&str>) -> Response<Body> {
    let age = s.age(now);
    let mut resp = Response::new(if body {
        Body::full(s.body.clone())
    } else {
        Body::Empty
    });
    *resp.status_mut() = s.status;
    *resp.headers_mut() = s.headers.clone();
    resp.headers_mut()
        .insert(header::AGE, HeaderValue::from(age.as_secs()));
    let ttl = i64::try_from(s.fresh.as_secs()).unwrap_or(i64::MAX)
        - i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
    let mut status = String::with_capacity(48);
    status.push_str("gatewayc; hit; ttl=");
    status.push_str(itoa::Buffer::new().format(ttl));
    if let Some(d) = detail {
        status.push_str("; detail=");
        status.push_str(d);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(status)) {
        resp.headers_mut().insert(CACHE_STATUS.clone(), v);
    }
    resp
}

/// `result` with `Cache-Status: status`, on the answer or on the problem.
fn marked(
    result: Result<Response<Body>, Problem>,
    status: &str,
) -> Result<Response<Body>, Problem> {
    let value = status_value(status);
    match result {
        Ok(mut resp) => {
            resp.headers_mut().insert(CACHE_STATUS.clone(), value);
            Ok(resp)
        }
        Err(p) => Err(p.with_header(CACHE_STATUS.clone(), value)),
    }
}

fn status_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("gatewayc"))
}

/// How a request meets the cache (see the module docs).
fn mode<B>(
    def: &'static CacheDef,
    op: &OperationDef,
    req: &Request<B>,
    consumer: Option<&str>,
) -> Mode {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Mode::Bypass("method"),
    };
    let secured = !op.security.is_empty();
    let consumer = match (secured, consumer) {
        (true, Some(c)) => Some(c),
        (true, None) => return Mode::Bypass("no-consumer"),
        (false, _) if req.headers().contains_key(header::AUTHORIZATION) => {
            return Mode::Bypass("authorization");
        }
        (false, _) => None,
    };
    let directives = |name| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|d| d.trim().to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let request_cc = directives(header::CACHE_CONTROL);
    let no_store = request_cc.iter().any(|d| d == "no-store");
    let refresh = no_store
        || request_cc.iter().any(|d| d == "no-cache")
        || directives(header::PRAGMA).iter().any(|d| d == "no-cache");
    let key = key(def, op, req, consumer);
    if head {
        if refresh {
            return Mode::Bypass("request");
        }
        return Mode::Head(key);
    }
    Mode::Get {
        key,
        refresh,
        store: !no_store,
    }
}

/// The key of a request (see the module docs). Parts are separated by a 0 byte, which no
/// path, query or header value holds.
fn key<B>(def: &CacheDef, op: &OperationDef, req: &Request<B>, consumer: Option<&str>) -> Vec<u8> {
    let uri = req.uri();
    let mut k = Vec::with_capacity(64 + uri.path().len());
    k.extend_from_slice(&(op.index as u64).to_le_bytes());
    k.extend_from_slice(uri.path().as_bytes());
    k.push(0);
    if let Some(q) = uri.query() {
        let mut pairs: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
        pairs.sort_unstable();
        for (i, p) in pairs.iter().enumerate() {
            if i > 0 {
                k.push(b'&');
            }
            k.extend_from_slice(p.as_bytes());
        }
    }
    k.push(0);
    for name in def.vary {
        for (i, v) in req.headers().get_all(*name).iter().enumerate() {
            if i > 0 {
                k.extend_from_slice(b", ");
            }
            k.extend_from_slice(v.as_bytes());
        }
        k.push(0);
    }
    if let Some(c) = consumer {
        k.push(1);
        k.extend_from_slice(c.as_bytes());
    }
    k
}

/// How long a storable answer is fresh, then may stand in stale.
#[derive(Debug, Clone, Copy)]
struct Lifetimes {
    fresh: Duration,
    stale_if_error: Duration,
    stale_while_revalidate: Duration,
}

/// How long `resp` stays fresh and usable stale, when it may be stored (see the module
/// docs). RFC 5861: the answer's own `stale-if-error` and `stale-while-revalidate` win over
/// the operation's.
fn lifetimes(resp: &Response<Body>, def: &CacheDef, max_entry: u64) -> Option<Lifetimes> {
    let status = resp.status().as_u16();
    if !matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    ) {
        return None;
    }
    let h = resp.headers();
    if h.contains_key(header::SET_COOKIE) {
        return None;
    }
    let len = crate::proxy::content_length(h).or_else(|| (status == 204).then_some(0))?;
    if len > max_entry {
        return None;
    }
    for vary in h.get_all(header::VARY) {
        let names = vary.to_str().ok()?;
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*"
                || !def
                    .vary
                    .iter()
                    .any(|declared| declared.eq_ignore_ascii_case(name))
            {
                return None;
            }
        }
    }
    let mut max_age = None;
    let mut s_maxage = None;
    let mut stale_if_error = None;
    let mut stale_while_revalidate = None;
    for v in h.get_all(header::CACHE_CONTROL) {
        let v = v.to_str().ok()?;
        for d in v.split(',').map(str::trim) {
            let (name, value) = d.split_once('=').unwrap_or((d, ""));
            let name = name.trim().to_ascii_lowercase();
            let secs = || value.trim().trim_matches('"').parse::<u64>().ok();
            match name.as_str() {
                "no-store" | "private" | "no-cache" => return None,
                "max-age" => max_age = secs(),
                "s-maxage" => s_maxage = secs(),
                "stale-if-error" => stale_if_error = secs(),
                "stale-while-revalidate" => stale_while_revalidate = secs(),
                _ => {}
            }
        }
    }
    let fresh = s_maxage.or(max_age).map(Duration::from_secs).or(def.ttl)?;
    let stale = |own: Option<u64>, spec: Option<Duration>| {
        own.map(Duration::from_secs)
            .or(spec)
            .unwrap_or(Duration::ZERO)
    };
    (!fresh.is_zero()).then_some(Lifetimes {
        fresh,
        stale_if_error: stale(stale_if_error, def.stale_if_error),
        stale_while_revalidate: stale(stale_while_revalidate, def.stale_while_revalidate),
    })
}

/// How long `resp` stays fresh, when it may be stored.
#[cfg(test)]
fn storable(resp: &Response<Body>, def: &CacheDef, max_entry: u64) -> Option<Duration> {
    lifetimes(resp, def, max_entry).map(|l| l.fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    static DEF: CacheDef = CacheDef {
        ttl: Some(Duration::from_secs(60)),
        vary: &["accept-language"],
        ..CacheDef::DEFAULT
    };

    fn op(secured: bool) -> OperationDef {
        static PUBLIC: &[&[crate::gateway::SchemeUse]] = &[];
        static SECURED: &[&[crate::gateway::SchemeUse]] = &[&[]];
        OperationDef {
            index: 3,
            security: if secured { SECURED } else { PUBLIC },
            ..OperationDef::DEFAULT
        }
    }

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn resp(headers: &[(&str, &str)]) -> Response<Body> {
        let mut b = Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::Empty).unwrap_or_else(|e| panic!("{e}"))
    }

    fn key_of(r: &Request<()>, consumer: Option<&str>, secured: bool) -> Option<Vec<u8>> {
        match mode(&DEF, &op(secured), r, consumer) {
            Mode::Get { key, .. } | Mode::Head(key) => Some(key),
            Mode::Bypass(_) => None,
        }
    }

    #[test]
    fn keys_sort_the_query_and_separate_vary_values_and_consumers() {
        let a = key_of(&req("GET", "/p?b=2&a=1", &[]), None, false);
        let b = key_of(&req("GET", "/p?a=1&b=2", &[]), None, false);
        assert_eq!(a, b);
        let en = key_of(&req("GET", "/p", &[("accept-language", "en")]), None, false);
        let fr = key_of(&req("GET", "/p", &[("accept-language", "fr")]), None, false);
        assert_ne!(en, fr);
        // Headers outside `vary` do not split entries.
        let x = key_of(&req("GET", "/p", &[("x-other", "1")]), None, false);
        assert_eq!(x, key_of(&req("GET", "/p", &[]), None, false));
        let alice = key_of(&req("GET", "/p", &[]), Some("alice"), true);
        let bob = key_of(&req("GET", "/p", &[]), Some("bob"), true);
        assert!(alice.is_some() && alice != bob);
        // HEAD shares GET's key.
        assert_eq!(key_of(&req("HEAD", "/p?a=1&b=2", &[]), None, false), a);
    }

    #[test]
    fn requests_that_cannot_share_answers_bypass() {
        let m = |r: Request<()>, consumer, secured| mode(&DEF, &op(secured), &r, consumer);
        assert!(matches!(
            m(req("POST", "/p", &[]), None, false),
            Mode::Bypass("method")
        ));
        assert!(matches!(
            m(req("GET", "/p", &[]), None, true),
            Mode::Bypass("no-consumer")
        ));
        assert!(matches!(
            m(
                req("GET", "/p", &[("authorization", "Bearer x")]),
                None,
                false
            ),
            Mode::Bypass("authorization")
        ));
        assert!(matches!(
            m(
                req("GET", "/p", &[("cache-control", "no-cache")]),
                None,
                false
            ),
            Mode::Get {
                refresh: true,
                store: true,
                ..
            }
        ));
        assert!(matches!(
            m(
                req("GET", "/p", &[("cache-control", "max-age=0, no-store")]),
                None,
                false
            ),
            Mode::Get {
                refresh: true,
                store: false,
                ..
            }
        ));
    }

    #[test]
    fn freshness_comes_from_s_maxage_then_max_age_then_the_spec() {
        let f = |h: &[(&str, &str)]| storable(&resp(h), &DEF, MAX_ENTRY);
        let len = ("content-length", "2");
        assert_eq!(f(&[len]), Some(Duration::from_secs(60)));
        assert_eq!(
            f(&[len, ("cache-control", "public, max-age=5")]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            f(&[len, ("cache-control", "max-age=5, s-maxage=9")]),
            Some(Duration::from_secs(9))
        );
        for never in ["no-store", "private", "no-cache", "max-age=0"] {
            assert_eq!(f(&[len, ("cache-control", never)]), None, "{never}");
        }
        assert_eq!(f(&[len, ("set-cookie", "a=b")]), None);
        assert_eq!(f(&[len, ("vary", "*")]), None);
        assert_eq!(f(&[len, ("vary", "Accept-Encoding")]), None);
        assert_eq!(
            f(&[len, ("vary", "Accept-Language")]),
            Some(Duration::from_secs(60))
        );
        // Unknown length, or over the entry limit: not stored.
        assert_eq!(f(&[]), None);
        assert_eq!(f(&[("content-length", "2000000")]), None);
    }
}
