//! The header names the gateway keeps for itself.
//!
//! The runtime removes hop-by-hop headers from every message it forwards and sets the
//! forwarding headers on every request it sends upstream; the compiler refuses a transform
//! or a forwarded claim that would write one of them, since the gateway would remove or
//! overwrite it. Both read these lists, so what the compiler refuses is exactly what the
//! runtime owns. Names are lower case, as HTTP/2 and `http::HeaderName` write them.

/// Hop-by-hop headers (RFC 9110 section 7.6.1, plus `Keep-Alive` and the legacy
/// `Proxy-Connection`, which are hop-by-hop in practice): the gateway removes them, and
/// every header `Connection` names, from every message it forwards.
///
/// `connection` comes first: the runtime finds it by index, and at most 16 names fit the
/// bit set it marks present names in.
pub const HOP_BY_HOP: &[&str] = &[
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

/// `X-Forwarded-For`: the client addresses, each proxy appending the one it saw.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// `X-Forwarded-Proto`: the scheme the client used.
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
/// `X-Forwarded-Host`: the `Host` the client sent.
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
/// `X-Forwarded-Client-Cert`: the client's verified TLS certificate (hash, subject,
/// names), set by the gateway and removed from what clients send.
pub const X_FORWARDED_CLIENT_CERT: &str = "x-forwarded-client-cert";
/// `X-Request-Id`: the request's id, passed on or made by the gateway, and echoed back.
pub const X_REQUEST_ID: &str = "x-request-id";

/// Headers the gateway sets on every request it forwards.
pub const FORWARDING: &[&str] = &[
    "host",
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_CLIENT_CERT,
    X_REQUEST_ID,
];

/// Appends `parts`, one after the other, to `out` as one quoted string in a header value
/// (RFC 9110 `quoted-string`, RFC 8941 `sf-string`): between double quotes, `"` and `\\`
/// escaped, and every character outside visible ASCII and space replaced by `?` (neither
/// grammar can carry it).
pub fn push_quoted(out: &mut String, parts: &[&str]) {
    out.push('"');
    for text in parts {
        if text
            .bytes()
            .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
        {
            out.push_str(text);
            continue;
        }
        for c in text.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                ' '..='~' => out.push(c),
                _ => out.push('?'),
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hold_distinct_lower_case_names() {
        assert_eq!(HOP_BY_HOP[0], "connection");
        assert!(HOP_BY_HOP.len() <= 16);
        let mut seen = std::collections::BTreeSet::new();
        for name in HOP_BY_HOP.iter().chain(FORWARDING) {
            assert!(seen.insert(*name), "{name} twice");
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
        }
    }

    #[test]
    fn quoted_strings_escape_quotes_and_replace_what_they_cannot_carry() {
        let mut out = String::new();
        push_quoted(&mut out, &["gold", "-", "day"]);
        push_quoted(&mut out, &["a\"b\\c é\n"]);
        assert_eq!(out, "\"gold-day\"\"a\\\"b\\\\c ??\"");
    }
}
