//! HTTP header names in `x-gateway` settings: what a valid one is, and the ones the gateway
//! keeps for itself.
//!
//! The lists of the gateway's own headers are the runtime's: hop-by-hop headers, which it
//! removes from every message it forwards, and the forwarding headers it sets on every
//! request. They live in `gatewayc_vocab::headers`, which both crates read.

pub(crate) use gatewayc_vocab::headers::{FORWARDING, HOP_BY_HOP, X_REQUEST_ID};

/// Whether `s` is an RFC 9110 token: what a header name, or a media type's type and
/// subtype, must be.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The lower-cased header name, when `name` is a valid one.
pub(crate) fn name(name: &str) -> Option<String> {
    is_token(name).then(|| name.to_ascii_lowercase())
}
