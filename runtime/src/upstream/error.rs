//! What can go wrong when calling an upstream, as one typed error, and the one place it
//! becomes a problem response.
//!
//! Each variant says where the failure lies (the upstream, or the client's request body)
//! and how far the call got (before or after the response head), which is what a retry
//! policy needs to know. The client is never told more than the status and a fixed
//! sentence; the upstream's error text goes to the operator as the problem's cause.

use std::time::Duration;

use crate::body::{BodyTooLarge, BoxError, ClientBodyError};
use crate::problem::{Kind, Problem};
use crate::proxy::{error_chain, too_large, unreadable_body};

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made to the target (refused, unreachable, DNS, TLS
    /// handshake, or the connect timeout).
    /// The text is the whole chain, which starts with `cannot connect`.
    #[error("{0}")]
    Connect(String),
    /// No response head within the operation's timeout.
    #[error("no response head within the operation's timeout of {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection was closed or reset before the response head arrived: the upstream
    /// may or may not have read the request.
    #[error("connection closed before the response head: {0}")]
    ResetBeforeHead(String),
    /// The connection was closed or reset while the response body was being read.
    #[error("connection closed during the response body: {0}")]
    ResetAfterHead(String),
    /// The upstream's response could not be parsed as HTTP/1.1.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The client's request body grew past the operation's limit (this many bytes) while
    /// it was being sent.
    #[error("the request body exceeds the limit of {0} bytes")]
    BodyTooLarge(u64),
    /// The client's request body could not be read (malformed chunked framing, or cut
    /// short): the client's fault, not the upstream's.
    #[error("the request body could not be read: {0}")]
    ClientBody(String),
    /// The upstream's circuit breaker refused the request, which was not sent: this limit
    /// (`max_requests` or `max_pending`) was reached.
    #[error("the circuit breaker is open: {0} reached")]
    BreakerOpen(&'static str),
}

impl UpstreamError {
    /// Classifies the error of a call that got no response head (connecting, sending the
    /// request and its body, waiting for the head).
    pub(crate) fn before_head(e: &(dyn std::error::Error + 'static)) -> UpstreamError {
        if let Some(too_large) = find::<BodyTooLarge>(e) {
            return UpstreamError::BodyTooLarge(too_large.limit);
        }
        if find::<ClientBodyError>(e).is_some() {
            return UpstreamError::ClientBody(error_chain(e));
        }
        if let Some(open) = find::<super::breaker::Open>(e) {
            return UpstreamError::BreakerOpen(open.0);
        }
        if find::<ConnectFailed>(e).is_some() {
            return UpstreamError::Connect(error_chain(e));
        }
        if invalid(e) {
            return UpstreamError::InvalidResponse(error_chain(e));
        }
        UpstreamError::ResetBeforeHead(error_chain(e))
    }

    /// Classifies the error of a response body that broke off after its head.
    pub(crate) fn after_head(e: &(dyn std::error::Error + 'static)) -> UpstreamError {
        if invalid(e) {
            UpstreamError::InvalidResponse(error_chain(e))
        } else {
            UpstreamError::ResetAfterHead(error_chain(e))
        }
    }

    /// What kind of failure this is, for the access log and metrics.
    pub fn kind(&self) -> Kind {
        match self {
            UpstreamError::Connect(_) => Kind::UpstreamConnect,
            UpstreamError::Timeout(_) => Kind::UpstreamTimeout,
            UpstreamError::ResetBeforeHead(_) | UpstreamError::ResetAfterHead(_) => {
                Kind::UpstreamReset
            }
            UpstreamError::InvalidResponse(_) => Kind::UpstreamInvalid,
            UpstreamError::BodyTooLarge(_) => Kind::TooLarge,
            UpstreamError::ClientBody(_) => Kind::BadRequest,
            UpstreamError::BreakerOpen(_) => Kind::UpstreamOverloaded,
        }
    }

    /// Whether the failure says something about the target's health, for outlier
    /// ejection: no connection, a reset before the head, no head in time, an invalid
    /// answer. The client's body and an open breaker do not.
    pub(crate) fn counts_against_target(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect(_)
                | UpstreamError::Timeout(_)
                | UpstreamError::ResetBeforeHead(_)
                | UpstreamError::InvalidResponse(_)
        )
    }
}

/// The one mapping of upstream failures to problem responses: 504 for a timeout, 413 and
/// 400 for the client's body (neither logged nor counted as an upstream failure), 503 with
/// `Retry-After: 1` for an open circuit breaker, 502 for everything else. The client's detail is a fixed sentence; the error's text is the
/// operator's cause.
impl From<UpstreamError> for Problem {
    fn from(e: UpstreamError) -> Problem {
        let kind = e.kind();
        match e {
            UpstreamError::Timeout(_) => Problem::gateway_timeout().because(kind, e.to_string()),
            UpstreamError::BodyTooLarge(limit) => too_large(limit),
            UpstreamError::ClientBody(reason) => unreadable_body(reason),
            UpstreamError::BreakerOpen(_) => Problem::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "the upstream service has too many requests in hand; try again shortly",
            )
            .with_header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            )
            .because(kind, e.to_string()),
            UpstreamError::Connect(_)
            | UpstreamError::ResetBeforeHead(_)
            | UpstreamError::ResetAfterHead(_)
            | UpstreamError::InvalidResponse(_) => {
                Problem::bad_gateway().because(kind, e.to_string())
            }
        }
    }
}

/// A new connection to a target could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect: {0}")]
pub(crate) struct ConnectFailed(pub(crate) String);

/// Whether the upstream's answer could not be parsed.
fn invalid(e: &(dyn std::error::Error + 'static)) -> bool {
    find::<hyper::Error>(e)
        .is_some_and(|h| h.is_parse() || h.is_parse_status() || h.is_parse_too_large())
}

/// `e`, or the first error in its chain of sources, that is a `T`.
pub(crate) fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// An error of a call, classified; see [`UpstreamError::before_head`].
impl From<BoxError> for UpstreamError {
    fn from(e: BoxError) -> UpstreamError {
        UpstreamError::before_head(&*e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status_and_kind() {
        let cases = [
            (
                UpstreamError::Connect("refused".into()),
                502,
                Kind::UpstreamConnect,
            ),
            (
                UpstreamError::Timeout(Duration::from_millis(250)),
                504,
                Kind::UpstreamTimeout,
            ),
            (
                UpstreamError::ResetBeforeHead("eof".into()),
                502,
                Kind::UpstreamReset,
            ),
            (
                UpstreamError::ResetAfterHead("eof".into()),
                502,
                Kind::UpstreamReset,
            ),
            (
                UpstreamError::InvalidResponse("junk".into()),
                502,
                Kind::UpstreamInvalid,
            ),
            (UpstreamError::BodyTooLarge(10), 413, Kind::TooLarge),
            (
                UpstreamError::ClientBody("bad chunk".into()),
                400,
                Kind::BadRequest,
            ),
            (
                UpstreamError::BreakerOpen("max_requests"),
                503,
                Kind::UpstreamOverloaded,
            ),
        ];
        for (e, status, kind) in cases {
            let text = e.to_string();
            let p = Problem::from(e);
            assert_eq!((p.status.as_u16(), p.cause.kind), (status, kind), "{text}");
            if status == 503 {
                assert!(
                    p.headers
                        .iter()
                        .any(|(n, v)| n == http::header::RETRY_AFTER && v == "1"),
                    "an open breaker says when to try again"
                );
            }
            // The client never sees the upstream's error text.
            assert!(!p.detail.contains("refused") && !p.detail.contains("junk"));
        }
    }

    #[test]
    fn errors_are_classified_through_their_sources() {
        let connect: BoxError = Box::new(ConnectFailed("connection refused".into()));
        assert!(matches!(
            UpstreamError::from(connect),
            UpstreamError::Connect(_)
        ));
        let too_large: BoxError = Box::new(BodyTooLarge { limit: 7 });
        assert!(matches!(
            UpstreamError::from(too_large),
            UpstreamError::BodyTooLarge(7)
        ));
        let open: BoxError = Box::new(super::super::breaker::Open("max_pending"));
        assert!(matches!(
            UpstreamError::from(open),
            UpstreamError::BreakerOpen("max_pending")
        ));
        let io: BoxError = Box::new(std::io::Error::other("reset by peer"));
        assert!(matches!(
            UpstreamError::from(io),
            UpstreamError::ResetBeforeHead(_)
        ));
    }
}
