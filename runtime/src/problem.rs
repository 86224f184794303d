//! Errors the gateway itself answers with, as `application/problem+json` (RFC 9457).
//!
//! A [`Problem`] keeps what the client is told apart from what the operator's log gets:
//! the client never sees upstream addresses, socket errors or any other internal detail.
//! `detail` goes to the client; [`Cause`] (what kind of failure, and the operator's
//! reason) goes to the access log, metrics and traces, as dropshot's `HttpError` keeps its
//! internal message and pingora's error type says where an error came from.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::body::Body;

/// The media type of every error the gateway produces.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response made by the gateway, not by an upstream.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// A human-readable explanation for the client; never contains upstream detail.
    pub detail: String,
    /// Extra headers (`Allow` for 405, `Retry-After` for 429, ...).
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
    /// What the operator is told: the kind of failure and why. Never sent to the client.
    pub cause: Cause,
    /// Each way the request breaks its operation's schemas (`errors`, RFC 9457 §3's
    /// example member), for a 400 from request validation; empty otherwise.
    pub errors: Vec<crate::validate::request::Invalid>,
}

/// Where a problem came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client's request is wrong (4xx that are not auth or limits).
    Client,
    /// Authentication or authorization refused it.
    Auth,
    /// A rate limit or quota refused it.
    Limit,
    /// The upstream failed.
    Upstream,
    /// The gateway itself could not serve it.
    Gateway,
}

/// What went wrong, in a fixed vocabulary: the access log's `error.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A malformed request (bad path, parameter, body, preflight).
    BadRequest,
    /// A request that breaks its operation's schemas (request validation).
    Invalid,
    /// No operation has this path.
    NotFound,
    /// The path exists, not with this method.
    MethodNotAllowed,
    /// No credential was sent.
    AuthMissing,
    /// A credential was sent and is not valid.
    AuthInvalid,
    /// Authenticated, without the scopes needed.
    AuthScope,
    /// A CORS preflight or request from an origin, method or header not allowed.
    Forbidden,
    /// The API key store could not answer.
    KeyStoreUnavailable,
    /// A JWT scheme has never had signing keys (its identity provider did not answer).
    KeysUnavailable,
    /// A rate limit or quota is exhausted.
    RateLimited,
    /// The limit store could not answer.
    LimitStoreUnavailable,
    /// The request body is over the operation's limit.
    TooLarge,
    /// The request body did not arrive in time.
    Timeout,
    /// The request's media type is not accepted.
    UnsupportedMediaType,
    /// The upstream could not be connected to.
    UpstreamConnect,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream broke the connection.
    UpstreamReset,
    /// The upstream's answer could not be used.
    UpstreamInvalid,
    /// The upstream's circuit breaker is open: the request was not sent.
    UpstreamOverloaded,
    /// The operation has no upstream and no example.
    NotImplemented,
    /// Anything else the gateway could not do.
    Gateway,
}

impl Kind {
    /// The name in logs and traces (`error.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BadRequest => "bad_request",
            Kind::Invalid => "invalid_request",
            Kind::NotFound => "not_found",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::AuthMissing => "auth_missing",
            Kind::AuthInvalid => "auth_invalid",
            Kind::AuthScope => "auth_scope",
            Kind::Forbidden => "forbidden",
            Kind::KeyStoreUnavailable => "key_store_unavailable",
            Kind::KeysUnavailable => "keys_unavailable",
            Kind::RateLimited => "rate_limited",
            Kind::LimitStoreUnavailable => "limit_store_unavailable",
            Kind::TooLarge => "too_large",
            Kind::Timeout => "timeout",
            Kind::UnsupportedMediaType => "unsupported_media_type",
            Kind::UpstreamConnect => "upstream_connect",
            Kind::UpstreamTimeout => "upstream_timeout",
            Kind::UpstreamReset => "upstream_reset",
            Kind::UpstreamInvalid => "upstream_invalid",
            Kind::UpstreamOverloaded => "upstream_overloaded",
            Kind::NotImplemented => "not_implemented",
            Kind::Gateway => "gateway",
        }
    }

    /// Where a problem of this kind comes from.
    pub fn source(self) -> Source {
        match self {
            Kind::AuthMissing
            | Kind::AuthInvalid
            | Kind::AuthScope
            | Kind::Forbidden
            | Kind::KeyStoreUnavailable => Source::Auth,
            Kind::RateLimited | Kind::LimitStoreUnavailable => Source::Limit,
            Kind::UpstreamConnect
            | Kind::UpstreamTimeout
            | Kind::UpstreamReset
            | Kind::UpstreamInvalid
            | Kind::UpstreamOverloaded => Source::Upstream,
            Kind::NotImplemented | Kind::Gateway => Source::Gateway,
            _ => Source::Client,
        }
    }

    /// The kind a bare status implies, for problems made without one.
    fn of(status: StatusCode) -> Kind {
        match status.as_u16() {
            404 => Kind::NotFound,
            405 => Kind::MethodNotAllowed,
            401 => Kind::AuthMissing,
            403 => Kind::Forbidden,
            408 => Kind::Timeout,
            413 => Kind::TooLarge,
            415 => Kind::UnsupportedMediaType,
            429 => Kind::RateLimited,
            501 => Kind::NotImplemented,
            502 => Kind::UpstreamInvalid,
            504 => Kind::UpstreamTimeout,
            400..=499 => Kind::BadRequest,
            _ => Kind::Gateway,
        }
    }
}

/// The operator's side of a problem.
#[derive(Debug, Clone)]
pub struct Cause {
    /// What went wrong.
    pub kind: Kind,
    /// Why, for the operator: names schemes, plans and upstreams, never a credential, a
    /// claim value or a secret. Empty when the client's detail says it all.
    pub reason: std::borrow::Cow<'static, str>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [crate::validate::request::Invalid],
}

impl Problem {
    /// A problem with a status and a detail for the client.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            status,
            detail: detail.into(),
            headers: Vec::new(),
            cause: Cause {
                kind: Kind::of(status),
                reason: std::borrow::Cow::Borrowed(""),
            },
            errors: Vec::new(),
        }
    }

    /// Sets what went wrong and why, for the operator.
    #[must_use]
    pub fn because(
        mut self,
        kind: Kind,
        reason: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        self.cause = Cause {
            kind,
            reason: reason.into(),
        };
        self
    }

    /// Where the problem came from.
    pub fn source(&self) -> Source {
        self.cause.kind.source()
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 404: no operation has this path.
    pub fn not_found() -> Self {
        Problem::new(StatusCode::NOT_FOUND, "no operation matches this path")
    }

    /// 400: the request path is malformed.
    pub fn bad_path(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 502: the upstream could not be reached or broke the connection.
    pub fn bad_gateway() -> Self {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "the upstream service could not be reached",
        )
    }

    /// 504: the upstream did not answer in time.
    pub fn gateway_timeout() -> Self {
        Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "the upstream service did not answer in time",
        )
    }

    /// Renders the problem as a response; `request_id` is echoed so that a client can quote it.
    pub fn into_response(self, request_id: Option<&str>) -> Response<Body> {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let wire = Wire {
            kind: "about:blank",
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            request_id,
            errors: &self.errors,
        };
        // Serialising this struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        let mut resp = Response::new(Body::Full(Some(Bytes::from(json))));
        *resp.status_mut() = self.status;
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }
}
