//! The one body type that flows through the gateway in both directions.
//!
//! Bodies are streamed frame by frame: the gateway never holds a whole request or
//! response in memory. The enum avoids boxing on the hot path.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

/// An error carried by a [`Body`]; boxed because it only exists on failure paths.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body grew past the operation's `max_body`.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The configured limit.
    pub limit: u64,
}

/// The client's request body could not be read: its chunked framing is malformed (a chunk
/// size of `-1`, `0x5`, one too large for 64 bits, `5 junk`, a bare LF), or the client closed
/// or reset the connection before the body ended. The client's fault, never the upstream's:
/// it reaches the upstream call as the error of the body the call was sending, and is
/// answered with 400 ([`crate::upstream::UpstreamError::ClientBody`]).
#[derive(Debug, thiserror::Error)]
#[error("the client's request body could not be read")]
pub struct ClientBodyError(#[source] hyper::Error);

/// A request or response body: empty, a buffer the gateway made, or a stream from a peer.
#[derive(Debug)]
pub enum Body {
    /// No body at all.
    Empty,
    /// A complete body the gateway produced (problem responses, mock responses).
    Full(Option<Bytes>),
    /// A body streamed from the client or the upstream, with a byte limit.
    Stream {
        /// The peer's body.
        inner: Incoming,
        /// Bytes still allowed before the stream fails with [`BodyTooLarge`].
        remaining: u64,
        /// The limit, for the error message.
        limit: u64,
        /// For an upstream's response: its connection, returned to the pool on drop. `None`
        /// for a client's request, whose read errors are [`ClientBodyError`]s.
        lease: Option<crate::upstream::Lease>,
        /// For a client's request: where the bytes read so far are counted (access log).
        counted: Option<Arc<AtomicU64>>,
    },
}

impl Body {
    /// A complete body from bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }

    /// A streamed body that fails once more than `limit` bytes have passed.
    pub fn limited(inner: Incoming, limit: u64) -> Self {
        Body::Stream {
            inner,
            remaining: limit,
            limit,
            lease: None,
            counted: None,
        }
    }

    /// A streamed body like [`Body::limited`], whose bytes are added to `counter` as they
    /// are read.
    pub fn counted(inner: Incoming, limit: u64, counter: Arc<AtomicU64>) -> Self {
        Body::Stream {
            inner,
            remaining: limit,
            limit,
            lease: None,
            counted: Some(counter),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream {
                inner,
                remaining,
                limit,
                counted,
                lease,
            } => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        let len = data.len() as u64;
                        if len > *remaining {
                            return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                                limit: *limit,
                            }))));
                        }
                        *remaining -= len;
                        if let Some(c) = counted {
                            c.fetch_add(len, Ordering::Relaxed);
                        }
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                // A request body's error comes from the client (see `ClientBodyError`); a
                // response body's from the upstream.
                Poll::Ready(Some(Err(e))) if lease.is_none() => {
                    Poll::Ready(Some(Err(Box::new(ClientBodyError(e)))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::Stream { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream { inner, .. } => inner.size_hint(),
        }
    }
}
