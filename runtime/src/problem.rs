//! Errors the gateway itself answers with, as `application/problem+json` (RFC 9457).
//!
//! A [`Problem`] keeps what the client is told apart from what the operator's log gets:
//! the client never sees upstream addresses, socket errors or any other internal detail.

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
}

impl Problem {
    /// A problem with a status and a detail for the client.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
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
