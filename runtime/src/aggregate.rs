//! Aggregation: one request answered by several upstream GETs, combined into one JSON
//! object (`x-gateway.aggregate`, docs/x-gateway.md).
//!
//! Parts without dependencies start at once and run concurrently inside the request's task
//! (nothing is spawned, so when the client goes away every part call is dropped with it). A
//! part that uses fields of other parts starts as soon as those have answered. Each part has
//! its own timeout, and the whole aggregate a deadline. A part's answer is read whole, up to
//! its `max_response`, and parsed as JSON: the one place the runtime collects a body.
//!
//! Failures; what the client is told never carries upstream detail, the log does:
//! - a required part fails (connect error, timeout, a non-2xx status, a body over its limit
//!   or not JSON, a field it needs that is absent or not a scalar): 502 naming the part;
//! - the deadline passes while a required part has not answered: 504 naming it;
//! - an optional part fails, or has not answered at the deadline: `null` in its place
//!   (`shape: parts`) or no members from it (`shape: merge`), and its name in the
//!   `X-Aggregate-Missing` response header. Parts that use its fields are missing too.
//!
//! Values put into a part's path are percent-encoded as one segment (a value that is empty,
//! `.` or `..` fails the part instead), and values in its query as one query component, so
//! no value can change the shape of the URL.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use gatewayc_vocab::headers;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::body::Body;
use crate::param::UpstreamPath;
use crate::phase::ctx::Ctx;
use crate::problem::Problem;
use crate::upstream::{Affinity, UpstreamError, Upstreams};

/// An aggregate operation: its parts and how their answers are combined.
#[derive(Debug)]
pub struct AggregateDef {
    /// The parts, in the order of the answer's keys.
    pub parts: &'static [PartDef],
    /// The whole aggregate's deadline, from the moment it starts.
    pub deadline: Duration,
    /// How the answers are combined.
    pub shape: Shape,
}

/// How an aggregate combines its parts' answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{ "<part>": <answer or null>, ... }`.
    Parts,
    /// The parts' top-level members in one object. The compiler checked that the members
    /// their schemas declare do not collide; for any other key two parts share, the earlier
    /// part's value is kept and the collision is logged.
    Merge,
}

/// One upstream call of an aggregate.
#[derive(Debug)]
pub struct PartDef {
    /// Its name: its key in the answer, and what the client is told when it fails.
    pub name: &'static str,
    /// Index into [`crate::Gateway::UPSTREAMS`].
    pub upstream: usize,
    /// The upstream path (before the upstream's base path is prefixed).
    pub path: &'static [Piece],
    /// The query string, without `?`; empty for none.
    pub query: &'static [Piece],
    /// Indices of the parts whose answers it uses.
    pub needs: &'static [usize],
    /// How long its answer may take once it has started.
    pub timeout: Duration,
    /// Whether the aggregate answers without it when it fails.
    pub optional: bool,
    /// Largest answer read, in bytes.
    pub max_response: u64,
    /// Its answer (JSON) when its upstream has no URL; `None` fails the part in mock mode.
    pub mock: Option<&'static str>,
}

/// A piece of a part's path or query.
#[derive(Debug)]
pub enum Piece {
    /// Literal text, already valid where it stands.
    Lit(&'static str),
    /// The operation's path parameter at this index, encoded where it stands.
    Param(usize),
    /// A multi-segment path parameter, placed in a path as the client sent it.
    RawParam(usize),
    /// A scalar from another part's answer, encoded where it stands.
    Field {
        /// Index of the part.
        part: usize,
        /// RFC 6901 pointer into its answer.
        pointer: &'static str,
    },
}

/// Why a part has no answer. Written to the log only.
#[derive(Debug)]
pub enum PartError {
    /// The upstream call failed: no connection, a broken one, an invalid answer, or an
    /// answer body that broke off.
    Upstream(UpstreamError),
    /// The part names an upstream the gateway does not have (only a definition out of step
    /// with its gateway can do this).
    NoUpstream,
    /// No answer within the part's timeout.
    Timeout,
    /// The aggregate's deadline passed first.
    Deadline,
    /// A status other than 2xx.
    Status(u16),
    /// A body larger than the part's `max_response`.
    TooLarge(u64),
    /// A body that is not JSON.
    NotJson,
    /// Under `shape: merge`, an answer that is not an object.
    NotObject,
    /// A part whose fields it uses is missing.
    Needs(&'static str),
    /// A value for its path or query cannot be used.
    Value(String),
    /// Mock mode, and no example answer.
    NoMock,
    /// Its dependencies never answered (only a definition with a cycle can do this).
    Unreachable,
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartError::Upstream(e) => write!(f, "upstream request failed: {e}"),
            PartError::NoUpstream => f.write_str("no such upstream"),
            PartError::Timeout => f.write_str("timed out"),
            PartError::Deadline => f.write_str("still pending at the aggregate's deadline"),
            PartError::Status(s) => write!(f, "upstream answered {s}"),
            PartError::TooLarge(n) => write!(f, "answer larger than {n} bytes"),
            PartError::NotJson => f.write_str("answer is not JSON"),
            PartError::NotObject => f.write_str("answer is not a JSON object, so cannot be merged"),
            PartError::Needs(p) => write!(f, "part `{p}`, whose answer it uses, is missing"),
            PartError::Value(why) => f.write_str(why),
            PartError::NoMock => f.write_str("upstream has no URL and the part no example answer"),
            PartError::Unreachable => f.write_str("the parts it needs never answered"),
        }
    }
}

/// The part that made the whole aggregate fail, and why.
#[derive(Debug)]
pub struct Failure {
    /// Index of the part.
    pub part: usize,
    /// What went wrong.
    pub error: PartError,
}

impl Failure {
    /// What the client is told: the part's name, never the upstream's detail.
    pub fn into_problem(self, def: &AggregateDef) -> Problem {
        let name = def.parts.get(self.part).map_or("", |p| p.name);
        match self.error {
            PartError::Deadline => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("aggregate part `{name}` did not answer within the operation's deadline"),
            ),
            _ => Problem::new(
                StatusCode::BAD_GATEWAY,
                format!("aggregate part `{name}` failed"),
            ),
        }
    }
}

static X_AGGREGATE_MISSING: HeaderName = HeaderName::from_static("x-aggregate-missing");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static(headers::X_FORWARDED_FOR);
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static(headers::X_FORWARDED_PROTO);
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static(headers::X_FORWARDED_HOST);
static X_REQUEST_ID: HeaderName = HeaderName::from_static(headers::X_REQUEST_ID);

/// Characters escaped in a query value: all but RFC 3986 unreserved ones, so `&`, `=`, `+`,
/// `#` and `%` in a value stay inside it.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The headers every part call carries: `Accept: application/json`, `X-Request-Id`,
/// `X-Forwarded-For` (appended), `-Proto` and `-Host`, and the forwarded claims that
/// authentication set. Nothing else of the client's request reaches a part.
pub fn part_headers<B>(req: &Request<B>, forwarded: &[HeaderName], ctx: &Ctx) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(8 + forwarded.len());
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    h.insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    // Parts are calls of the request's own span: their `traceparent` names it.
    ctx.trace.propagate(&mut h, &ctx.trace.span_id);
    let xff = crate::proxy::forwarded_for(req.headers(), ctx.peer, &ctx.peer_header);
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
    h.insert(
        X_FORWARDED_PROTO.clone(),
        crate::proxy::scheme_header(ctx.secure),
    );
    if let Some(cert) = &ctx.client_cert {
        h.insert(crate::proxy::X_FORWARDED_CLIENT_CERT.clone(), cert.clone());
    }
    let host = req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    if let Some(host) = host {
        h.insert(X_FORWARDED_HOST.clone(), host);
    }
    for name in forwarded {
        for v in req.headers().get_all(name) {
            h.append(name.clone(), v.clone());
        }
    }
    h
}

/// Answers an aggregate operation. `params_path` is the plan's path: the operation's path
/// parameters, each `/` and a percent-encoded segment.
pub async fn answer(
    def: &'static AggregateDef,
    operation: &'static str,
    upstreams: &Upstreams,
    affinity: &Affinity<'_>,
    params_path: &str,
    headers: HeaderMap,
) -> Result<Response<Body>, Problem> {
    let params = params(params_path);
    let fetch = |i: usize, pq: String| {
        let headers = headers.clone();
        async move {
            let Some(part) = def.parts.get(i) else {
                return Err(PartError::Unreachable);
            };
            fetch(upstreams, affinity, part, &pq, headers).await
        }
    };
    match gather(def, operation, &params, fetch).await {
        Ok(values) => Ok(respond(def, operation, values)),
        Err(failure) => Err(failure.into_problem(def)),
    }
}

/// The path parameters carried in a plan's path.
fn params(path: &str) -> Vec<String> {
    match path.strip_prefix('/') {
        None => Vec::new(),
        Some(rest) => rest
            .split('/')
            .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
            .collect(),
    }
}

/// One part call: a GET to the target its upstream's balancing chooses, or the part's
/// example in mock mode.
async fn fetch(
    upstreams: &Upstreams,
    affinity: &Affinity<'_>,
    part: &PartDef,
    path_and_query: &str,
    headers: HeaderMap,
) -> Result<Value, PartError> {
    let upstream = upstreams.get(part.upstream).ok_or(PartError::NoUpstream)?;
    match upstream.pick(|| *affinity) {
        None => match part.mock {
            Some(m) => serde_json::from_str(m).map_err(|_| PartError::NotJson),
            None => Err(PartError::NoMock),
        },
        Some(target) => {
            let base_path = &target.address.base_path;
            let mut pq = String::with_capacity(base_path.len() + path_and_query.len());
            pq.push_str(base_path);
            pq.push_str(path_and_query);
            let pq = http::uri::PathAndQuery::from_maybe_shared(pq)
                .map_err(|e| PartError::Value(format!("its path cannot be sent: {e}")))?;
            let resp = upstream
                .get(target, pq, headers)
                .await
                .map_err(PartError::Upstream)?;
            let status = resp.status();
            if !status.is_success() {
                return Err(PartError::Status(status.as_u16()));
            }
            read_json(resp.into_body(), part.max_response).await
        }
    }
}

/// Reads a body of at most `limit` bytes and parses it as JSON.
async fn read_json(body: Body, limit: u64) -> Result<Value, PartError> {
    if body.size_hint().lower() > limit {
        return Err(PartError::TooLarge(limit));
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let bytes = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                PartError::TooLarge(limit)
            } else {
                PartError::Upstream(UpstreamError::after_head(&*e))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|_| PartError::NotJson)
}

/// Where a part stands while the aggregate runs.
#[derive(Debug)]
enum Slot {
    Waiting,
    Running,
    Done(Value),
    Missing,
}

type Call<'a> = Pin<Box<dyn Future<Output = (usize, Result<Value, PartError>)> + Send + 'a>>;

/// Runs every part as soon as what it needs is there, with `fetch(part, path_and_query)`
/// making each call; returns each part's answer (`None`: a missing optional part) or the
/// required part that failed.
pub async fn gather<'a, F, Fut>(
    def: &AggregateDef,
    operation: &str,
    params: &[String],
    mut fetch: F,
) -> Result<Vec<Option<Value>>, Failure>
where
    F: FnMut(usize, String) -> Fut,
    Fut: Future<Output = Result<Value, PartError>> + Send + 'a,
{
    let mut slots: Vec<Slot> = def.parts.iter().map(|_| Slot::Waiting).collect();
    let mut running: Vec<Call<'a>> = Vec::new();
    let mut deadline = std::pin::pin!(tokio::time::sleep(def.deadline));
    loop {
        // Start every part whose needs have answered; a part whose needs are missing is
        // missing itself, which may settle others in turn.
        let mut changed = true;
        while changed {
            changed = false;
            for (i, part) in def.parts.iter().enumerate() {
                if !matches!(slots[i], Slot::Waiting) {
                    continue;
                }
                let missing = part
                    .needs
                    .iter()
                    .find(|&&j| matches!(slots.get(j), Some(Slot::Missing)));
                let settled = if let Some(&j) = missing {
                    Err(PartError::Needs(def.parts.get(j).map_or("", |p| p.name)))
                } else if part
                    .needs
                    .iter()
                    .all(|&j| matches!(slots.get(j), Some(Slot::Done(_))))
                {
                    match target(part, params, &slots) {
                        Ok(pq) => {
                            let call = fetch(i, pq);
                            let timeout = part.timeout;
                            running.push(Box::pin(async move {
                                let r = tokio::time::timeout(timeout, call)
                                    .await
                                    .unwrap_or(Err(PartError::Timeout));
                                (i, r)
                            }));
                            slots[i] = Slot::Running;
                            changed = true;
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    continue;
                };
                changed = true;
                settle(def, operation, &mut slots, i, settled)?;
            }
        }
        if running.is_empty() {
            break;
        }
        let next = std::future::poll_fn(|cx| {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            for k in 0..running.len() {
                if let Poll::Ready(done) = running[k].as_mut().poll(cx) {
                    drop(running.swap_remove(k));
                    return Poll::Ready(Some(done));
                }
            }
            Poll::Pending
        })
        .await;
        match next {
            Some((i, result)) => settle(def, operation, &mut slots, i, result)?,
            None => {
                running.clear();
                for i in 0..slots.len() {
                    if matches!(slots[i], Slot::Waiting | Slot::Running) {
                        settle(def, operation, &mut slots, i, Err(PartError::Deadline))?;
                    }
                }
                break;
            }
        }
    }
    for i in 0..slots.len() {
        if matches!(slots[i], Slot::Waiting) {
            settle(def, operation, &mut slots, i, Err(PartError::Unreachable))?;
        }
    }
    Ok(slots
        .into_iter()
        .map(|s| match s {
            Slot::Done(v) => Some(v),
            _ => None,
        })
        .collect())
}

/// Records a part's result; a required part's failure ends the aggregate.
fn settle(
    def: &AggregateDef,
    operation: &str,
    slots: &mut [Slot],
    i: usize,
    result: Result<Value, PartError>,
) -> Result<(), Failure> {
    let (Some(part), Some(slot)) = (def.parts.get(i), slots.get_mut(i)) else {
        return Ok(());
    };
    let result = match result {
        Ok(v) if def.shape == Shape::Merge && !v.is_object() => Err(PartError::NotObject),
        other => other,
    };
    match result {
        Ok(v) => {
            *slot = Slot::Done(v);
            Ok(())
        }
        Err(error) if part.optional => {
            tracing::info!(operation, part = part.name, error = %error, "optional aggregate part missing");
            *slot = Slot::Missing;
            Ok(())
        }
        Err(error) => {
            tracing::warn!(operation, part = part.name, error = %error, "required aggregate part failed");
            Err(Failure { part: i, error })
        }
    }
}

/// The path and query of a part's call, with every value encoded where it stands.
fn target(part: &PartDef, params: &[String], slots: &[Slot]) -> Result<String, PartError> {
    let mut p = UpstreamPath::with_capacity(64);
    for piece in part.path {
        match *piece {
            Piece::Lit(l) => p.lit(l),
            Piece::Param(i) => segment(&mut p, param(params, i)?)?,
            Piece::RawParam(i) => p.lit(param(params, i)?),
            Piece::Field { part, pointer } => segment(&mut p, &field(slots, part, pointer)?)?,
        }
    }
    if !part.query.is_empty() {
        p.lit("?");
        for piece in part.query {
            match *piece {
                Piece::Lit(l) => p.lit(l),
                Piece::Param(i) | Piece::RawParam(i) => query(&mut p, param(params, i)?),
                Piece::Field { part, pointer } => query(&mut p, &field(slots, part, pointer)?),
            }
        }
    }
    Ok(p.into_string())
}

fn param(params: &[String], i: usize) -> Result<&str, PartError> {
    params
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| PartError::Value(format!("path parameter {i} is absent")))
}

/// A value as one path segment; one that would be empty or a dot segment fails the part.
fn segment(p: &mut UpstreamPath, value: &str) -> Result<(), PartError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(PartError::Value(format!(
            "`{value}` cannot be a path segment"
        )));
    }
    p.segment(value);
    Ok(())
}

fn query(p: &mut UpstreamPath, value: &str) {
    p.lit(&utf8_percent_encode(value, QUERY_VALUE).to_string());
}

/// The scalar at `pointer` in part `part`'s answer, as text.
fn field(slots: &[Slot], part: usize, pointer: &str) -> Result<String, PartError> {
    let Some(Slot::Done(answer)) = slots.get(part) else {
        return Err(PartError::Unreachable);
    };
    match answer.pointer(pointer) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(other) => Err(PartError::Value(format!(
            "`{pointer}` is {}, not a string, number or boolean",
            match other {
                Value::Null => "null",
                Value::Array(_) => "an array",
                _ => "an object",
            }
        ))),
        None => Err(PartError::Value(format!("the answer has no `{pointer}`"))),
    }
}

/// The combined answer, and the names of the missing parts.
pub fn combine(
    def: &AggregateDef,
    operation: &str,
    values: Vec<Option<Value>>,
) -> (Value, Vec<&'static str>) {
    let mut missing = Vec::new();
    let mut out = Map::new();
    for (part, value) in def.parts.iter().zip(values) {
        match (def.shape, value) {
            (Shape::Parts, Some(v)) => {
                out.insert(part.name.to_owned(), v);
            }
            (Shape::Parts, None) => {
                missing.push(part.name);
                out.insert(part.name.to_owned(), Value::Null);
            }
            (Shape::Merge, Some(Value::Object(members))) => {
                for (key, v) in members {
                    if out.contains_key(&key) {
                        tracing::warn!(
                            operation,
                            part = part.name,
                            key,
                            "merged key already set by an earlier part: the earlier value is kept"
                        );
                    } else {
                        out.insert(key, v);
                    }
                }
            }
            (Shape::Merge, _) => missing.push(part.name),
        }
    }
    (Value::Object(out), missing)
}

fn respond(def: &AggregateDef, operation: &str, values: Vec<Option<Value>>) -> Response<Body> {
    let (value, missing) = combine(def, operation, values);
    // Serialising a `Value` cannot fail.
    let json = serde_json::to_vec(&value).unwrap_or_default();
    let mut resp = Response::new(Body::full(json));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if !missing.is_empty()
        && let Ok(v) = HeaderValue::from_str(&missing.join(", "))
    {
        resp.headers_mut().insert(X_AGGREGATE_MISSING.clone(), v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use serde_json::json;

    use super::*;

    const fn part(name: &'static str, needs: &'static [usize], optional: bool) -> PartDef {
        PartDef {
            name,
            upstream: 0,
            path: &[],
            query: &[],
            needs,
            timeout: Duration::from_secs(5),
            optional,
            max_response: 1 << 20,
            mock: None,
        }
    }

    type Log = Arc<Mutex<Vec<String>>>;

    /// A fetch that logs `start NAME` and `end NAME`, waits `delay(part)` and answers
    /// `answer(part)`.
    fn fake(
        def: &'static AggregateDef,
        log: &Log,
        delay: fn(usize) -> u64,
        answer: fn(usize) -> Result<Value, PartError>,
    ) -> impl FnMut(usize, String) -> Pin<Box<dyn Future<Output = Result<Value, PartError>> + Send>>
    + use<> {
        let log = log.clone();
        move |i, pq| {
            let log = log.clone();
            Box::pin(async move {
                let name = def.parts[i].name;
                log.lock().unwrap().push(format!("start {name} {pq}"));
                tokio::time::sleep(Duration::from_millis(delay(i))).await;
                log.lock().unwrap().push(format!("end {name}"));
                answer(i)
            })
        }
    }

    fn events(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    fn pos(events: &[String], prefix: &str) -> usize {
        events
            .iter()
            .position(|e| e.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {events:?}"))
    }

    static DAG: AggregateDef = AggregateDef {
        parts: &[
            PartDef {
                path: &[Piece::Lit("/pets/"), Piece::Param(0)],
                ..part("pet", &[], false)
            },
            PartDef {
                path: &[
                    Piece::Lit("/owners/"),
                    Piece::Field {
                        part: 0,
                        pointer: "/owner/id",
                    },
                ],
                ..part("owner", &[0], false)
            },
            part("reviews", &[], true),
            PartDef {
                query: &[
                    Piece::Lit("of="),
                    Piece::Field {
                        part: 1,
                        pointer: "/name",
                    },
                ],
                path: &[Piece::Lit("/friends")],
                ..part("friends", &[1], true)
            },
        ],
        deadline: Duration::from_secs(5),
        shape: Shape::Parts,
    };

    #[tokio::test]
    async fn aggregate_parts_run_in_parallel_and_dependents_wait() {
        let log = Log::default();
        let fetch = fake(
            &DAG,
            &log,
            |i| [80, 10, 80, 10][i],
            |i| {
                Ok([
                    json!({"owner": {"id": "o/1"}}),
                    json!({"name": "Ann & Bo"}),
                    json!([1, 2]),
                    json!({"n": 3}),
                ][i]
                    .clone())
            },
        );
        let started = Instant::now();
        let values = gather(&DAG, "op", &["7".to_owned()], fetch)
            .await
            .unwrap_or_else(|f| panic!("{f:?}"));
        let took = started.elapsed();
        let ev = events(&log);
        // Independent parts both start before either ends.
        assert!(pos(&ev, "start pet") < pos(&ev, "end"), "{ev:?}");
        assert!(pos(&ev, "start reviews") < pos(&ev, "end"), "{ev:?}");
        // A dependent starts after what it needs, with the field encoded as one segment.
        assert!(pos(&ev, "end pet") < pos(&ev, "start owner"), "{ev:?}");
        assert!(
            ev.contains(&"start owner /owners/o%2F1".to_owned()),
            "{ev:?}"
        );
        assert!(pos(&ev, "end owner") < pos(&ev, "start friends"), "{ev:?}");
        assert!(
            ev.contains(&"start friends /friends?of=Ann%20%26%20Bo".to_owned()),
            "{ev:?}"
        );
        assert!(
            took < Duration::from_millis(80 + 10 + 10 + 80 + 80),
            "{took:?}"
        );
        let (value, missing) = combine(&DAG, "op", values);
        assert!(missing.is_empty());
        assert_eq!(value["owner"], json!({"name": "Ann & Bo"}));
        assert_eq!(
            value
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec![
                "pet".to_owned(),
                "owner".to_owned(),
                "reviews".to_owned(),
                "friends".to_owned()
            ])
        );
    }

    #[tokio::test]
    async fn aggregate_required_failure_names_the_part_and_optional_failure_is_missing() {
        // `reviews` (optional) fails: null and listed.
        let log = Log::default();
        let fetch = fake(
            &DAG,
            &log,
            |_| 1,
            |i| match i {
                2 => Err(PartError::Status(500)),
                0 => Ok(json!({"owner": {"id": 5}})),
                _ => Ok(json!({"name": "x"})),
            },
        );
        let values = gather(&DAG, "op", &["7".to_owned()], fetch)
            .await
            .unwrap_or_else(|f| panic!("{f:?}"));
        let (value, missing) = combine(&DAG, "op", values);
        assert_eq!(missing, ["reviews"]);
        assert_eq!(value["reviews"], Value::Null);
        assert!(events(&log).contains(&"start owner /owners/5".to_owned()));

        // `owner` (required) fails: the aggregate fails with its name, status 502.
        let fetch = fake(
            &DAG,
            &Log::default(),
            |_| 1,
            |i| match i {
                1 => Err(PartError::Upstream(UpstreamError::Connect(
                    "cannot connect: refused by 10.0.0.7:80".into(),
                ))),
                _ => Ok(json!({"owner": {"id": 5}})),
            },
        );
        let failure = gather(&DAG, "op", &["7".to_owned()], fetch)
            .await
            .err()
            .unwrap_or_else(|| panic!("succeeded"));
        assert_eq!(failure.part, 1);
        let problem = failure.into_problem(&DAG);
        assert_eq!(problem.status, StatusCode::BAD_GATEWAY);
        assert_eq!(problem.detail, "aggregate part `owner` failed");

        // A field that is absent or not a scalar fails the part that needs it.
        let fetch = fake(&DAG, &Log::default(), |_| 1, |_| Ok(json!({"owner": {}})));
        let failure = gather(&DAG, "op", &["7".to_owned()], fetch).await.err();
        assert_eq!(failure.map(|f| f.part), Some(1));
    }

    static OPTIONAL_CHAIN: AggregateDef = AggregateDef {
        parts: &[
            part("a", &[], true),
            part("b", &[0], true),
            part("c", &[1], true),
            part("d", &[], false),
        ],
        deadline: Duration::from_secs(5),
        shape: Shape::Parts,
    };

    #[tokio::test]
    async fn aggregate_dependents_of_a_missing_part_are_missing_without_a_call() {
        let log = Log::default();
        let fetch = fake(
            &OPTIONAL_CHAIN,
            &log,
            |_| 1,
            |i| {
                if i == 0 {
                    Err(PartError::NotJson)
                } else {
                    Ok(json!(i))
                }
            },
        );
        let values = gather(&OPTIONAL_CHAIN, "op", &[], fetch)
            .await
            .unwrap_or_else(|f| panic!("{f:?}"));
        let (_, missing) = combine(&OPTIONAL_CHAIN, "op", values);
        assert_eq!(missing, ["a", "b", "c"]);
        let ev = events(&log);
        assert!(
            !ev.iter()
                .any(|e| e.starts_with("start b") || e.starts_with("start c"))
        );
    }

    static DEADLINE: AggregateDef = AggregateDef {
        parts: &[
            part("fast", &[], false),
            PartDef {
                timeout: Duration::from_millis(30),
                ..part("timed", &[], true)
            },
            part("slow", &[], true),
        ],
        deadline: Duration::from_millis(150),
        shape: Shape::Parts,
    };

    #[tokio::test]
    async fn aggregate_timeouts_and_the_deadline() {
        // The optional slow parts are cut off: `timed` by its timeout, `slow` by the deadline.
        let fetch = fake(
            &DEADLINE,
            &Log::default(),
            |i| [1, 10_000, 10_000][i],
            |i| Ok(json!(i)),
        );
        let started = Instant::now();
        let values = gather(&DEADLINE, "op", &[], fetch)
            .await
            .unwrap_or_else(|f| panic!("{f:?}"));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_millis(2_000), "{took:?}");
        let (value, missing) = combine(&DEADLINE, "op", values);
        assert_eq!(missing, ["timed", "slow"]);
        assert_eq!(value["fast"], json!(0));

        // A required part still pending at the deadline: 504 naming it.
        let fetch = fake(&DEADLINE, &Log::default(), |_| 10_000, |i| Ok(json!(i)));
        let failure = gather(&DEADLINE, "op", &[], fetch)
            .await
            .err()
            .unwrap_or_else(|| panic!("succeeded"));
        assert!(matches!(failure.error, PartError::Deadline));
        let problem = failure.into_problem(&DEADLINE);
        assert_eq!(problem.status, StatusCode::GATEWAY_TIMEOUT);
        assert!(problem.detail.contains("`fast`"), "{}", problem.detail);
    }

    static CYCLE: AggregateDef = AggregateDef {
        parts: &[
            part("a", &[1], true),
            part("b", &[0], true),
            part("c", &[7], false),
        ],
        deadline: Duration::from_secs(5),
        shape: Shape::Parts,
    };

    #[tokio::test]
    async fn aggregate_definitions_the_compiler_would_refuse_do_not_hang() {
        let fetch = fake(&CYCLE, &Log::default(), |_| 1, |i| Ok(json!(i)));
        let failure = gather(&CYCLE, "op", &[], fetch).await.err();
        assert_eq!(failure.map(|f| f.part), Some(2));
    }

    #[test]
    fn aggregate_values_cannot_change_the_shape_of_the_url() {
        static P: PartDef = PartDef {
            path: &[
                Piece::Lit("/owners/"),
                Piece::Field {
                    part: 0,
                    pointer: "/v",
                },
                Piece::Lit("/"),
                Piece::Param(0),
                Piece::Lit("/files/"),
                Piece::RawParam(1),
            ],
            query: &[
                Piece::Lit("q="),
                Piece::Field {
                    part: 0,
                    pointer: "/v",
                },
                Piece::Lit("&p="),
                Piece::Param(0),
            ],
            ..part("p", &[0], false)
        };
        let run = |v: Value, p0: &str| {
            let slots = [Slot::Done(json!({ "v": v }))];
            target(&P, &[p0.to_owned(), "a/b%20c".to_owned()], &slots)
        };
        let ok = |v: Value, p0: &str| run(v, p0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ok(json!("../admin"), "x"),
            "/owners/..%2Fadmin/x/files/a/b%20c?q=..%2Fadmin&p=x"
        );
        assert_eq!(
            ok(json!("%2F?#&="), "a b"),
            "/owners/%252F%3F%23&=/a%20b/files/a/b%20c?q=%252F%3F%23%26%3D&p=a%20b"
        );
        assert_eq!(ok(json!(42), "1"), "/owners/42/1/files/a/b%20c?q=42&p=1");
        assert_eq!(
            ok(json!(true), "1"),
            "/owners/true/1/files/a/b%20c?q=true&p=1"
        );
        for bad in [
            json!(".."),
            json!("."),
            json!(""),
            json!(null),
            json!({}),
            json!([1]),
        ] {
            assert!(run(bad.clone(), "x").is_err(), "{bad}");
        }
        assert_eq!(params("/7/a%2Fb/%2E%2E"), ["7", "a/b", ".."]);
        assert!(params("").is_empty());
    }

    static MERGE: AggregateDef = AggregateDef {
        parts: &[
            part("a", &[], false),
            part("b", &[], true),
            part("c", &[], true),
        ],
        deadline: Duration::from_secs(5),
        shape: Shape::Merge,
    };

    #[tokio::test]
    async fn aggregate_merge_keeps_the_first_value_of_a_shared_key() {
        let (value, missing) = combine(
            &MERGE,
            "op",
            vec![
                Some(json!({"id": 1, "path": "/a"})),
                Some(json!({"name": "n", "path": "/b"})),
                None,
            ],
        );
        assert_eq!(value, json!({"id": 1, "path": "/a", "name": "n"}));
        assert_eq!(missing, ["c"]);
        // An answer that is not an object cannot be merged: the part fails.
        let fetch = fake(&MERGE, &Log::default(), |_| 1, |i| Ok(json!([i])));
        let failure = gather(&MERGE, "op", &[], fetch).await.err();
        assert!(matches!(
            failure,
            Some(Failure {
                part: 0,
                error: PartError::NotObject
            })
        ));
    }
}
