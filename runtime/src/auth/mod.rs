//! Authentication of callers: the credential checks behind an operation's `security`.
//!
//! [`jwt`] verifies bearer tokens; its keys come from a PEM file, an HMAC secret, or a JWKS
//! kept fresh from an identity provider (`jwks`).

mod jwks;
pub mod jwt;
mod keys;
