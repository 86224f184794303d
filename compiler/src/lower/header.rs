//! HTTP header names in `x-gateway` settings: what a valid one is, and the ones the gateway
//! keeps for itself.

/// Hop-by-hop headers (RFC 9110 section 7.6.1, and the legacy `Proxy-Connection`): the
/// gateway removes them from every message it forwards.
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers the gateway sets on every request it forwards.
pub(crate) const FORWARDING: &[&str] = &[
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
];

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
