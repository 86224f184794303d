//! Phase 9's edges: the request transform just before forwarding, the response transform
//! just after (`x-gateway.transform`, docs/x-gateway.md#transforms).
//!
//! What runs, in order, on each message: the JSON body edits (request: when its
//! `Content-Type` is JSON; response: when, in addition, the upstream's status is 2xx), then
//! header edits (remove, rename, set), then, on requests, query edits (remove, rename, add).
//! Response status mapping comes first of all. Body edits run `pick`, then `rename`/`move`,
//! then `remove`, then `set`.
//!
//! A JSON body is buffered to be edited: a request body up to the operation's `max_body`
//! (over it: 413), a response body up to [`RESPONSE_BODY_LIMIT`] (over it: 502, never the
//! untransformed body, which may hold what the transform removes). A request body that
//! claims JSON and does not parse gives 400; a response body that does not parse gives 502.
//! Bodies that are not JSON pass through untouched, streamed. After an edit the body gets
//! a new `Content-Length`, a strong `ETag` becomes weak and digest headers are dropped.
//!
//! Operations without a transform never reach this module: their `OperationDef.transform`
//! is `None` and `dispatch` forwards as before.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderName,
    HeaderValue,
};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::access::Principal;
use crate::body::Body;
use crate::gateway::{Gateway, OperationDef};
use crate::problem::Problem;

/// Largest upstream response body a response body transform buffers: 10 MiB.
pub const RESPONSE_BODY_LIMIT: usize = 10 << 20;

/// An operation's transform.
#[derive(Debug)]
pub struct TransformDef {
    /// Edits to the request before it is forwarded.
    pub request: MessageDef,
    /// Edits to the response before it is returned.
    pub response: MessageDef,
    /// Response status mapping: (upstream status, status sent to the client).
    pub status: &'static [(u16, u16)],
}

/// Edits to one message.
#[derive(Debug)]
pub struct MessageDef {
    /// Header edits; names are lower case.
    pub headers: EditsDef,
    /// Query parameter edits (requests only; `set` is the spec's `add`).
    pub query: EditsDef,
    /// JSON body edits.
    pub body: Option<BodyDef>,
}

impl MessageDef {
    /// No edits.
    pub const NONE: MessageDef = MessageDef {
        headers: EditsDef::NONE,
        query: EditsDef::NONE,
        body: None,
    };
}

/// Edits of named values, applied remove, rename, set.
#[derive(Debug)]
pub struct EditsDef {
    /// Names removed.
    pub remove: &'static [&'static str],
    /// (from, to): values moved to another name, replacing what it had.
    pub rename: &'static [(&'static str, &'static str)],
    /// Names given a value, replacing what they had; a value naming the caller that the
    /// request lacks removes the name instead.
    pub set: &'static [(&'static str, &'static [Part])],
}

impl EditsDef {
    /// No edits.
    pub const NONE: EditsDef = EditsDef {
        remove: &[],
        rename: &[],
        set: &[],
    };

    fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.rename.is_empty() && self.set.is_empty()
    }
}

/// A JSON pointer as unescaped tokens; `*` on an array is every element.
pub type PointerDef = &'static [&'static str];

/// JSON body edits, applied pick, moves, remove, set.
#[derive(Debug)]
pub struct BodyDef {
    /// Allow-list of members kept (empty: all).
    pub pick: &'static [PointerDef],
    /// (from, to): `rename` and `move` entries.
    pub moves: &'static [(PointerDef, PointerDef)],
    /// Members removed.
    pub remove: &'static [PointerDef],
    /// Members set; missing (or null) parents are created as objects.
    pub set: &'static [(PointerDef, JsonDef)],
}

/// A JSON value a transform sets.
#[derive(Debug)]
pub enum JsonDef {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// Another number.
    Float(f64),
    /// A string built from a template.
    Str(&'static [Part]),
    /// An array.
    Array(&'static [JsonDef]),
    /// An object.
    Object(&'static [(&'static str, JsonDef)]),
}

/// A piece of a value template.
#[derive(Debug)]
pub enum Part {
    /// Literal text.
    Lit(&'static str),
    /// `${NAME}` / `${NAME:-default}`, read at start-up.
    Env(&'static str, Option<&'static str>),
    /// `${request.id}`.
    RequestId,
    /// `${request.consumer}`.
    Consumer,
    /// `${request.claim.NAME}`.
    Claim(&'static str),
}

impl TransformDef {
    fn parts(&self, f: &mut dyn FnMut(&'static Part)) {
        fn json(v: &'static JsonDef, f: &mut dyn FnMut(&'static Part)) {
            match v {
                JsonDef::Str(parts) => parts.iter().for_each(&mut *f),
                JsonDef::Array(items) => items.iter().for_each(|i| json(i, f)),
                JsonDef::Object(members) => members.iter().for_each(|(_, v)| json(v, f)),
                _ => {}
            }
        }
        for m in [&self.request, &self.response] {
            for (_, parts) in m.headers.set.iter().chain(m.query.set) {
                parts.iter().for_each(&mut *f);
            }
            if let Some(b) = &m.body {
                for (_, v) in b.set {
                    json(v, f);
                }
            }
        }
    }
}

/// The environment variables transforms use, read once at start-up.
#[derive(Debug, Default)]
pub struct Env {
    values: HashMap<&'static str, String>,
}

impl Env {
    /// Reads every variable the transforms of `G` use with `lookup`; `Err` names those
    /// that are unset (or empty) and have no default.
    pub fn resolve<G: Gateway>(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Env, BTreeSet<String>> {
        let mut env = Env::default();
        let mut missing = BTreeSet::new();
        for op in G::OPERATIONS {
            let Some(t) = op.transform else { continue };
            t.parts(&mut |p| {
                if let Part::Env(name, default) = p {
                    // An empty value counts as unset, so that the default applies.
                    match gatewayc_vocab::env::var(lookup, name) {
                        Some(v) => {
                            env.values.insert(name, v);
                        }
                        None if default.is_none() => {
                            missing.insert((*name).to_owned());
                        }
                        None => {}
                    }
                }
            });
        }
        if missing.is_empty() {
            Ok(env)
        } else {
            Err(missing)
        }
    }
}

/// What a transform can read about the request.
#[derive(Debug)]
pub struct Context<'a> {
    /// Environment values.
    pub env: &'a Env,
    /// The request id.
    pub request_id: &'a HeaderValue,
    /// Who called, when the operation has security.
    pub principal: Option<&'a Principal>,
    /// Whether the request is a HEAD (its response has no body to edit).
    pub head: bool,
}

impl Context<'_> {
    /// The text of a template; `None` when it names a caller value the request lacks.
    fn render(&self, parts: &[Part]) -> Option<String> {
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Env(name, default) => match self.env.values.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(default.unwrap_or("")),
                },
                Part::RequestId => out.push_str(self.request_id.to_str().unwrap_or("")),
                Part::Consumer => out.push_str(self.principal?.consumer.as_deref()?),
                Part::Claim(name) => match self.principal?.token.as_ref()?.claims.get(*name)? {
                    Value::Null => return None,
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Some(out)
    }

    fn json(&self, def: &JsonDef) -> Option<Value> {
        Some(match def {
            JsonDef::Null => Value::Null,
            JsonDef::Bool(b) => Value::Bool(*b),
            JsonDef::Int(i) => Value::from(*i),
            JsonDef::UInt(u) => Value::from(*u),
            JsonDef::Float(f) => Value::from(*f),
            JsonDef::Str(parts) => Value::String(self.render(parts)?),
            JsonDef::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.json(i))
                    .collect::<Option<Vec<_>>>()?,
            ),
            JsonDef::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| Some(((*k).to_owned(), self.json(v)?)))
                    .collect::<Option<Map<_, _>>>()?,
            ),
        })
    }
}

/// Whether a `Content-Type` is JSON (`application/json` or `+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(gatewayc_vocab::media::is_json)
}

/// Whether a message's body carries a `Content-Encoding` other than `identity`.
pub(crate) fn encoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// Applies the request transform of `op` to a request whose body is already limited to the
/// operation's `max_body`.
pub async fn request(
    op: &OperationDef,
    t: &TransformDef,
    req: Request<Body>,
    cx: &Context<'_>,
) -> Result<Request<Body>, Problem> {
    let m = &t.request;
    let (mut parts, body) = req.into_parts();
    let body = match &m.body {
        Some(def) if is_json(&parts.headers) => {
            if encoded(&parts.headers) {
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "this operation edits JSON request bodies, which must be sent without Content-Encoding",
                ));
            }
            // Parsed already when the request was validated; otherwise read here.
            let parsed = parts
                .extensions
                .remove::<crate::phase::validate::Parsed>()
                .map(|p| std::sync::Arc::try_unwrap(p.0).unwrap_or_else(|v| (*v).clone()));
            let value = match parsed {
                Some(value) => Some(value),
                None => {
                    let bytes = crate::phase::validate::read(op, body).await?;
                    if bytes.is_empty() {
                        None
                    } else {
                        Some(serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                            Problem::new(
                                StatusCode::BAD_REQUEST,
                                format!("the request body is not valid JSON: {e}"),
                            )
                        })?)
                    }
                }
            };
            match value {
                None => Body::Empty,
                Some(mut value) => {
                    apply_body(def, &mut value, cx);
                    replace_body(&mut parts.headers, &value)
                }
            }
        }
        _ => body,
    };
    // A response body the gateway edits must arrive unencoded.
    if t.response.body.is_some() {
        parts.headers.remove(ACCEPT_ENCODING);
    }
    apply_headers(&m.headers, &mut parts.headers, cx);
    if !m.query.is_empty() {
        let query = edit_query(parts.uri.query(), &m.query, cx);
        if let Some(uri) = with_query(&parts.uri, query.as_deref()) {
            parts.uri = uri;
        }
    }
    Ok(Request::from_parts(parts, body))
}

/// Applies the response transform of `op` to the upstream's (or mock mode's) response.
pub async fn response(
    op: &OperationDef,
    t: &TransformDef,
    resp: Response<Body>,
    cx: &Context<'_>,
) -> Result<Response<Body>, Problem> {
    let m = &t.response;
    let (mut parts, body) = resp.into_parts();
    let upstream = parts.status;
    if let Some(&(_, to)) = t.status.iter().find(|(from, _)| *from == upstream.as_u16())
        && let Ok(to) = StatusCode::from_u16(to)
    {
        parts.status = to;
    }
    let body = match &m.body {
        Some(def) if upstream.is_success() && is_json(&parts.headers) => {
            if cx.head {
                // No body to edit; the length the upstream gave is the unedited one's.
                parts.headers.remove(CONTENT_LENGTH);
                body
            } else {
                edit_response_body(op, def, &mut parts.headers, body, cx).await?
            }
        }
        _ => body,
    };
    apply_headers(&m.headers, &mut parts.headers, cx);
    Ok(Response::from_parts(parts, body))
}

async fn edit_response_body(
    op: &OperationDef,
    def: &BodyDef,
    headers: &mut HeaderMap,
    body: Body,
    cx: &Context<'_>,
) -> Result<Body, Problem> {
    let fail = |why: &str| {
        tracing::warn!(
            operation = op.id,
            reason = why,
            "response body not transformed"
        );
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "the upstream's response could not be transformed",
        )
    };
    if encoded(headers) {
        return Err(fail(
            "the upstream encoded its JSON body (Content-Encoding)",
        ));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > RESPONSE_BODY_LIMIT as u64) {
        return Err(fail("the body is larger than the transform limit"));
    }
    let bytes = Limited::new(body, RESPONSE_BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                fail("the body is larger than the transform limit")
            } else {
                fail("the body could not be read")
            }
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Body::Empty);
    }
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|_| fail("the body is not valid JSON"))?;
    apply_body(def, &mut value, cx);
    Ok(replace_body(headers, &value))
}

/// Serialises an edited body and fixes the headers that described the old one.
fn replace_body(headers: &mut HeaderMap, value: &Value) -> Body {
    // Serialising a `Value` cannot fail.
    let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    headers.remove(http::header::TRANSFER_ENCODING);
    for digest in ["content-md5", "digest", "content-digest", "repr-digest"] {
        headers.remove(digest);
    }
    if let Some(tag) = headers.get(ETAG)
        && !tag.as_bytes().starts_with(b"W/")
        && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", tag.as_bytes()].concat())
    {
        headers.insert(ETAG, weak);
    }
    Body::full(bytes)
}

/// Header edits: remove, rename, set.
fn apply_headers(edits: &EditsDef, headers: &mut HeaderMap, cx: &Context<'_>) {
    for name in edits.remove {
        headers.remove(*name);
    }
    for (from, to) in edits.rename {
        let values: Vec<HeaderValue> = headers.get_all(*from).iter().cloned().collect();
        if values.is_empty() {
            continue;
        }
        let Ok(to) = HeaderName::from_bytes(to.as_bytes()) else {
            continue;
        };
        headers.remove(*from);
        headers.remove(&to);
        for v in values {
            headers.append(to.clone(), v);
        }
    }
    for (name, parts) in edits.set {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        headers.remove(&name);
        if let Some(v) = cx
            .render(parts)
            .and_then(|text| HeaderValue::from_bytes(text.as_bytes()).ok())
        {
            headers.insert(name, v);
        }
    }
}

/// Characters percent-encoded in query names and values the gateway writes.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn decoded_name(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Query edits on the raw query: remove, rename, add. Untouched parameters keep their
/// bytes as sent; `None` when no parameter is left.
fn edit_query(query: Option<&str>, edits: &EditsDef, cx: &Context<'_>) -> Option<String> {
    // (name as matched, the pair as it will be written)
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let raw_name = p.split_once('=').map_or(p, |(n, _)| n);
            (decoded_name(raw_name), p.to_owned())
        })
        .collect();
    pairs.retain(|(n, _)| !edits.remove.contains(&n.as_str()));
    for (from, to) in edits.rename {
        if !pairs.iter().any(|(n, _)| n == from) {
            continue;
        }
        pairs.retain(|(n, _)| n != to);
        for (n, raw) in &mut pairs {
            if n == from {
                let value = raw.split_once('=').map(|(_, v)| v);
                let mut renamed = utf8_percent_encode(to, QUERY).to_string();
                if let Some(v) = value {
                    renamed.push('=');
                    renamed.push_str(v);
                }
                *n = (*to).to_owned();
                *raw = renamed;
            }
        }
    }
    for (name, parts) in edits.set {
        pairs.retain(|(n, _)| n != name);
        if let Some(value) = cx.render(parts) {
            pairs.push((
                (*name).to_owned(),
                format!(
                    "{}={}",
                    utf8_percent_encode(name, QUERY),
                    utf8_percent_encode(&value, QUERY)
                ),
            ));
        }
    }
    if pairs.is_empty() {
        return None;
    }
    Some(
        pairs
            .into_iter()
            .map(|(_, raw)| raw)
            .collect::<Vec<_>>()
            .join("&"),
    )
}

fn with_query(uri: &Uri, query: Option<&str>) -> Option<Uri> {
    let mut text = uri.path().to_owned();
    if let Some(q) = query {
        text.push('?');
        text.push_str(q);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::from_maybe_shared(text).ok()?);
    Uri::from_parts(parts).ok()
}

/// Body edits on a parsed body: pick, moves, remove, set.
pub fn apply_body(def: &BodyDef, value: &mut Value, cx: &Context<'_>) {
    if !def.pick.is_empty() {
        let picks: Vec<&[&str]> = def.pick.to_vec();
        let whole = std::mem::take(value);
        *value = pick(whole, &picks).unwrap_or(Value::Null);
    }
    for (from, to) in def.moves {
        match from.iter().rposition(|t| *t == "*") {
            // The compiler makes both pointers share everything up to their last `*`.
            Some(k) if to.len() > k => {
                let (prefix, from_rest, to_rest) = (&from[..=k], &from[k + 1..], &to[k + 1..]);
                for_each_mut(value, prefix, &mut |v| move_value(v, from_rest, to_rest));
            }
            _ => move_value(value, from, to),
        }
    }
    for p in def.remove {
        remove(value, p);
    }
    for (p, v) in def.set {
        match cx.json(v) {
            Some(v) => set(value, p, &v),
            // A value naming a caller the request lacks: never let the client's copy through.
            None => remove(value, p),
        }
    }
}

fn index(token: &str) -> Option<usize> {
    let canonical = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if canonical { token.parse().ok() } else { None }
}

/// Calls `f` on every value `tokens` reach (`*` on an array: each element).
fn for_each_mut(value: &mut Value, tokens: &[&str], f: &mut dyn FnMut(&mut Value)) {
    let Some((t, rest)) = tokens.split_first() else {
        f(value);
        return;
    };
    match value {
        Value::Object(m) => {
            if let Some(c) = m.get_mut(*t) {
                for_each_mut(c, rest, f);
            }
        }
        Value::Array(items) => {
            if *t == "*" {
                for c in items {
                    for_each_mut(c, rest, f);
                }
            } else if let Some(c) = index(t).and_then(|i| items.get_mut(i)) {
                for_each_mut(c, rest, f);
            }
        }
        _ => {}
    }
}

/// Keeps only the members `picks` name, in their original order.
fn pick(value: Value, picks: &[&[&str]]) -> Option<Value> {
    if picks.iter().any(|p| p.is_empty()) {
        return Some(value);
    }
    match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let sub: Vec<&[&str]> = picks
                    .iter()
                    .filter(|p| p.first() == Some(&k.as_str()))
                    .map(|p| &p[1..])
                    .collect();
                if sub.is_empty() {
                    continue;
                }
                if let Some(v) = pick(v, &sub) {
                    out.insert(k, v);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, v) in items.into_iter().enumerate() {
                let sub: Vec<&[&str]> = picks
                    .iter()
                    .filter(|p| p.first().is_some_and(|t| *t == "*" || index(t) == Some(i)))
                    .map(|p| &p[1..])
                    .collect();
                if sub.is_empty() {
                    continue;
                }
                if let Some(v) = pick(v, &sub) {
                    out.push(v);
                }
            }
            Some(Value::Array(out))
        }
        // A scalar where members were asked for: nothing to keep.
        _ => None,
    }
}

fn remove(value: &mut Value, p: &[&str]) {
    let Some((last, parent)) = p.split_last() else {
        return;
    };
    for_each_mut(value, parent, &mut |v| match v {
        Value::Object(m) => {
            m.shift_remove(*last);
        }
        Value::Array(items) => {
            if *last == "*" {
                items.clear();
            } else if let Some(i) = index(last).filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    });
}

/// Takes the value at `p` (no `*` in it) out of `value`.
fn take(value: &mut Value, p: &[&str]) -> Option<Value> {
    let Some((last, parent)) = p.split_last() else {
        return Some(std::mem::take(value));
    };
    let mut cur = value;
    for t in parent {
        cur = match cur {
            Value::Object(m) => m.get_mut(*t)?,
            Value::Array(items) => items.get_mut(index(t)?)?,
            _ => return None,
        };
    }
    match cur {
        Value::Object(m) => m.shift_remove(*last),
        Value::Array(items) => {
            let i = index(last).filter(|i| *i < items.len())?;
            Some(items.remove(i))
        }
        _ => None,
    }
}

fn move_value(value: &mut Value, from: &[&str], to: &[&str]) {
    if let Some(v) = take(value, from) {
        set(value, to, &v);
    }
}

/// Sets the value at `p`, creating missing (or null) parents as objects; a scalar on the
/// way cannot hold members and is left alone.
fn set(value: &mut Value, p: &[&str], new: &Value) {
    let Some((t, rest)) = p.split_first() else {
        *value = new.clone();
        return;
    };
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(m) => {
            if rest.is_empty() {
                m.insert((*t).to_owned(), new.clone());
            } else {
                set(m.entry(*t).or_insert(Value::Null), rest, new);
            }
        }
        Value::Array(items) => {
            if *t == "*" {
                for c in items {
                    set(c, rest, new);
                }
            } else if let Some(c) = index(t).and_then(|i| items.get_mut(i)) {
                set(c, rest, new);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx<'a>(env: &'a Env, id: &'a HeaderValue, principal: Option<&'a Principal>) -> Context<'a> {
        Context {
            env,
            request_id: id,
            principal,
            head: false,
        }
    }

    fn run(def: &BodyDef, mut v: Value) -> Value {
        let env = Env::default();
        let id = HeaderValue::from_static("req-1");
        apply_body(def, &mut v, &cx(&env, &id, None));
        v
    }

    #[test]
    fn nested_edits_run_pick_move_remove_set() {
        static DEF: BodyDef = BodyDef {
            pick: &[
                &["id"],
                &["owner", "name"],
                &["a~b"],
                &["tags"],
                &["ownerRef"],
            ],
            moves: &[(&["ownerRef"], &["owner", "ref"]), (&["a~b"], &["x/y"])],
            remove: &[&["tags", "*", "secret"], &["missing", "deep"]],
            set: &[
                (
                    &["meta", "source"],
                    JsonDef::Str(&[Part::Lit("gw-"), Part::RequestId]),
                ),
                (&["meta", "count"], JsonDef::UInt(1)),
                (&["owner", "name", "first"], JsonDef::Bool(true)),
            ],
        };
        let out = run(
            &DEF,
            json!({
                "id": 7,
                "internal": "x",
                "owner": { "name": "Ann", "email": "a@x" },
                "ownerRef": 42,
                "a~b": 1,
                "tags": [ { "label": "l", "secret": 1 }, { "secret": 2 } ]
            }),
        );
        assert_eq!(
            out,
            json!({
                "id": 7,
                // A string cannot hold `first`: left alone.
                "owner": { "name": "Ann", "ref": 42 },
                "tags": [ { "label": "l" }, {} ],
                "x/y": 1,
                "meta": { "source": "gw-req-1", "count": 1 }
            })
        );
    }

    #[test]
    fn pick_keeps_nested_members_and_array_elements() {
        static DEF: BodyDef = BodyDef {
            pick: &[&["items", "*", "id"], &["items", "0", "name"], &["page"]],
            moves: &[],
            remove: &[],
            set: &[],
        };
        let out = run(
            &DEF,
            json!({
                "items": [ { "id": 1, "name": "a", "x": 0 }, { "id": 2, "name": "b" }, "scalar" ],
                "page": { "n": 1 },
                "other": true
            }),
        );
        assert_eq!(
            out,
            json!({ "items": [ { "id": 1, "name": "a" }, { "id": 2 } ], "page": { "n": 1 } })
        );
        // A scalar where an object was expected keeps nothing.
        assert_eq!(run(&DEF, json!("text")), Value::Null);
    }

    #[test]
    fn moves_within_each_element_and_array_indexes() {
        static DEF: BodyDef = BodyDef {
            pick: &[],
            moves: &[(&["items", "*", "a"], &["items", "*", "b", "c"])],
            remove: &[&["list", "1"], &["gone", "*"]],
            set: &[
                (&["list", "0"], JsonDef::Null),
                (&["new", "0"], JsonDef::Int(-1)),
            ],
        };
        let out = run(
            &DEF,
            json!({
                "items": [ { "a": 1 }, { "z": 2 } ],
                "list": [ 10, 11, 12 ],
                "gone": [ 1, 2 ]
            }),
        );
        assert_eq!(
            out,
            json!({
                "items": [ { "b": { "c": 1 } }, { "z": 2 } ],
                "list": [ null, 12 ],
                "gone": [],
                // An index on a missing parent makes an object member, as on any object.
                "new": { "0": -1 }
            })
        );
    }

    #[test]
    fn caller_values_missing_remove_instead_of_set() {
        static DEF: BodyDef = BodyDef {
            pick: &[],
            moves: &[],
            remove: &[],
            set: &[
                (&["tenant"], JsonDef::Str(&[Part::Claim("tenant")])),
                (&["who"], JsonDef::Str(&[Part::Consumer])),
            ],
        };
        // Anonymous: the client's own `tenant` must not reach the upstream.
        let out = run(&DEF, json!({ "tenant": "forged", "who": "me", "k": 1 }));
        assert_eq!(out, json!({ "k": 1 }));

        let principal = Principal {
            consumer: Some("alice".into()),
            ..Principal::default()
        };
        let env = Env::default();
        let id = HeaderValue::from_static("r");
        let mut v = json!({ "tenant": "forged" });
        apply_body(&DEF, &mut v, &cx(&env, &id, Some(&principal)));
        assert_eq!(v, json!({ "who": "alice" }));
    }

    #[test]
    fn headers_and_queries_are_edited_in_order() {
        static HEADERS: EditsDef = EditsDef {
            remove: &["x-debug"],
            rename: &[("x-old", "x-new")],
            set: &[
                ("x-tenant", &[Part::Claim("tenant")]),
                (
                    "x-source",
                    &[
                        Part::Env("SOURCE", Some("gw")),
                        Part::Lit("/"),
                        Part::RequestId,
                    ],
                ),
            ],
        };
        let env = Env::default();
        let id = HeaderValue::from_static("abc");
        let c = cx(&env, &id, None);
        let mut h = HeaderMap::new();
        h.append("x-debug", HeaderValue::from_static("1"));
        h.append("x-old", HeaderValue::from_static("a"));
        h.append("x-old", HeaderValue::from_static("b"));
        h.append("x-new", HeaderValue::from_static("client"));
        h.append("x-tenant", HeaderValue::from_static("forged"));
        apply_headers(&HEADERS, &mut h, &c);
        assert!(h.get("x-debug").is_none() && h.get("x-old").is_none());
        let new: Vec<_> = h.get_all("x-new").iter().collect();
        assert_eq!(new, ["a", "b"]);
        assert!(
            h.get("x-tenant").is_none(),
            "an anonymous request's copy is removed"
        );
        assert_eq!(h["x-source"], "gw/abc");

        static QUERY_EDITS: EditsDef = EditsDef {
            remove: &["debug"],
            rename: &[("q", "query")],
            set: &[("format", &[Part::Lit("json & more")])],
        };
        assert_eq!(
            edit_query(
                Some("q=a%20b&debug=1&format=xml&query=old&x"),
                &QUERY_EDITS,
                &c
            )
            .as_deref(),
            Some("query=a%20b&x&format=json%20%26%20more")
        );
        assert_eq!(
            edit_query(
                Some("debug"),
                &EditsDef {
                    remove: &["debug"],
                    rename: &[],
                    set: &[]
                },
                &c
            ),
            None
        );
        let uri: Uri = "http://h/p/x?a=1".parse().expect("uri");
        assert_eq!(
            with_query(&uri, Some("b=2"))
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://h/p/x?b=2")
        );
    }

    #[test]
    fn json_content_types() {
        // Which media types are JSON is `gatewayc_vocab::media`'s, tested there.
        let mut h = HeaderMap::new();
        assert!(!is_json(&h), "no Content-Type");
        for (ct, json) in [
            ("Application/JSON; charset=utf-8", true),
            ("application/json5", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json(&h), json, "{ct}");
        }
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_bytes(b"application/json\xff").unwrap(),
        );
        assert!(!is_json(&h), "not visible ASCII");
    }

    #[test]
    fn environment_is_read_once_with_defaults() {
        static T: TransformDef = TransformDef {
            request: MessageDef {
                headers: EditsDef {
                    remove: &[],
                    rename: &[],
                    set: &[("x-a", &[Part::Env("A", None), Part::Env("B", Some("b"))])],
                },
                query: EditsDef::NONE,
                body: Some(BodyDef {
                    pick: &[],
                    moves: &[],
                    remove: &[],
                    set: &[(
                        &["k"],
                        JsonDef::Array(&[JsonDef::Str(&[Part::Env("C", None)])]),
                    )],
                }),
            },
            response: MessageDef::NONE,
            status: &[],
        };
        let mut seen = Vec::new();
        T.parts(&mut |p| {
            if let Part::Env(n, _) = p {
                seen.push(*n);
            }
        });
        assert_eq!(seen, ["A", "B", "C"]);
    }
}
