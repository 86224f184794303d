//! The JWS algorithm names a JWT scheme may list (`x-gateway.jwt.algorithms`), and which of
//! them take an HMAC secret rather than a public key.
//!
//! The compiler refuses any other name, and an HMAC algorithm next to public keys (or the
//! reverse); the runtime checks the same at start-up and compares a token's `alg` with
//! these names exactly. `none` is never one of them.

/// Every algorithm a scheme may list, as JWS (RFC 7518, RFC 8037) names it.
pub const ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// The HMAC algorithms: verified with a shared secret (`x-gateway.jwt.secret`). Every other
/// algorithm is verified with a public key (a PEM file, a JWKS or OpenID discovery).
pub const HMAC: &[&str] = &["HS256", "HS384", "HS512"];

/// Whether `alg` is one of [`ALGORITHMS`] (exactly: names are case-sensitive).
pub fn is_known(alg: &str) -> bool {
    ALGORITHMS.contains(&alg)
}

/// Whether `alg` is an HMAC algorithm, verified with a shared secret.
pub fn is_hmac(alg: &str) -> bool {
    HMAC.contains(&alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_algorithms_are_known_and_none_is_not() {
        assert!(HMAC.iter().all(|alg| is_known(alg)));
        let asymmetric: Vec<_> = ALGORITHMS.iter().filter(|a| !is_hmac(a)).collect();
        assert_eq!(asymmetric.len(), ALGORITHMS.len() - HMAC.len());
        assert!(asymmetric.iter().all(|a| !a.starts_with("HS")));
        for unknown in ["none", "None", "hs256", "ES512", ""] {
            assert!(!is_known(unknown), "{unknown}");
        }
    }
}
