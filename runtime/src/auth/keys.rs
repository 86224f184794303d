//! Verification keys, and which key may check which token.
//!
//! A key knows its type (HMAC secret, RSA, EC P-256, EC P-384, Ed25519) and, when its JWK
//! names one, the single algorithm it may be used with. Keys come from an HMAC secret, a PEM
//! file, or a JWKS document. A JWKS's symmetric (`oct`) keys are never taken, so an HMAC key
//! exists only where the operator configured a secret: a token can never get an RSA public
//! key used as an HMAC secret (algorithm confusion).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;

use super::jwt::JwtError;

/// The type of a key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A shared secret, for HS256/HS384/HS512.
    Hmac,
    /// An RSA public key, for RS* and PS*.
    Rsa,
    /// An EC public key on P-256, for ES256.
    EcP256,
    /// An EC public key on P-384, for ES384.
    EcP384,
    /// An Ed25519 public key, for EdDSA.
    Ed25519,
}

impl KeyKind {
    /// Whether a key of this kind can verify `alg`.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Hmac => alg.family() == AlgorithmFamily::Hmac,
            KeyKind::Rsa => alg.family() == AlgorithmFamily::Rsa,
            KeyKind::EcP256 => alg == Algorithm::ES256,
            KeyKind::EcP384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    /// The kind in words, for start-up errors.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            KeyKind::Hmac => "an HMAC secret",
            KeyKind::Rsa => "an RSA key",
            KeyKind::EcP256 => "an EC P-256 key",
            KeyKind::EcP384 => "an EC P-384 key",
            KeyKind::Ed25519 => "an Ed25519 key",
        }
    }
}

/// One verification key.
#[derive(Debug)]
pub(crate) struct Key {
    /// The JWK's `kid`; `None` for PEM and secret keys, and for JWKs without one.
    pub(crate) kid: Option<Box<str>>,
    pub(crate) kind: KeyKind,
    /// The only algorithm this key may verify, when its JWK names one.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

impl Key {
    /// An HMAC secret, its bytes used as they are.
    pub(crate) fn secret(secret: &[u8]) -> Key {
        Key {
            kid: None,
            kind: KeyKind::Hmac,
            alg: None,
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A public key from PEM text (`PUBLIC KEY` or `RSA PUBLIC KEY`). The error says what is
    /// wrong with the file, never what it holds.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Key, &'static str> {
        let label = pem_label(pem).ok_or("is not a PEM file")?;
        if label.contains("PRIVATE") {
            return Err("holds a private key; configure its public half instead");
        }
        if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
            return Err("holds no public key (expected `BEGIN PUBLIC KEY`)");
        }
        let (kind, decoding) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (KeyKind::Rsa, key)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            // The uncompressed point, 0x04 || x || y, tells the curve by its length.
            let kind = match key.try_get_as_bytes() {
                Ok([4, rest @ ..]) if rest.len() == 64 => KeyKind::EcP256,
                Ok([4, rest @ ..]) if rest.len() == 96 => KeyKind::EcP384,
                _ => return Err("holds an EC key on a curve other than P-256 or P-384"),
            };
            (kind, key)
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            match key.try_get_as_bytes() {
                Ok(bytes) if bytes.len() == 32 => (KeyKind::Ed25519, key),
                _ => return Err("holds an Edwards-curve key other than Ed25519"),
            }
        } else {
            return Err("holds no RSA, EC (P-256, P-384) or Ed25519 public key");
        };
        Ok(Key {
            kid: None,
            kind,
            alg: None,
            decoding,
        })
    }

    /// A key from one JWKS entry, or why the entry is skipped.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Key, &'static str> {
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err("not a signing key (`use` is not `sig`)");
        }
        let alg = match jwk.alg.as_deref() {
            None => None,
            Some(name) => Some(
                name.parse::<Algorithm>()
                    .map_err(|_| "its `alg` is not a JWS signature algorithm")?,
            ),
        };
        let (kind, decoding) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
                    return Err("an RSA key without `n` or `e`");
                };
                let decoding = DecodingKey::from_rsa_components(n, e)
                    .map_err(|_| "an RSA key whose `n` or `e` is not base64url")?;
                (KeyKind::Rsa, decoding)
            }
            ("EC", Some("P-256")) => (KeyKind::EcP256, ec_point(jwk, 32)?),
            ("EC", Some("P-384")) => (KeyKind::EcP384, ec_point(jwk, 48)?),
            ("OKP", Some("Ed25519")) => {
                let x = decode_coordinate(jwk.x.as_deref(), 32)?;
                (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
            }
            ("oct", _) => {
                return Err("a symmetric key; HMAC keys come only from a configured secret");
            }
            _ => return Err("a key type or curve this gateway does not verify with"),
        };
        if let Some(alg) = alg
            && !kind.fits(alg)
        {
            return Err("its `alg` does not fit its key type");
        }
        Ok(Key {
            kid: jwk.kid.as_deref().map(Box::from),
            kind,
            alg,
            decoding,
        })
    }

    /// Whether this key may verify a token signed with `alg`: the key type fits, and a JWK's
    /// own `alg` is binding.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

/// The fields of a JWK that key selection and comparison need; anything else is ignored.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwk {
    /// The entry's `kid`, for logs.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// An EC public key from a JWK's `x` and `y`, each `size` bytes.
fn ec_point(jwk: &Jwk, size: usize) -> Result<DecodingKey, &'static str> {
    let x = decode_coordinate(jwk.x.as_deref(), size)?;
    let y = decode_coordinate(jwk.y.as_deref(), size)?;
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(DecodingKey::from_ec_der(&point))
}

fn decode_coordinate(value: Option<&str>, size: usize) -> Result<Vec<u8>, &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(value.ok_or("a curve key without its coordinates")?)
        .map_err(|_| "a curve key whose coordinates are not base64url")?;
    if bytes.len() == size {
        Ok(bytes)
    } else {
        Err("a curve key whose coordinates have the wrong length")
    }
}

/// The label of the first PEM block (`PUBLIC KEY` in `-----BEGIN PUBLIC KEY-----`).
fn pem_label(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = text[start..].find("-----")?;
    Some(&text[start..start + len])
}

/// The key that verifies a token with header `alg` and `kid`.
///
/// With `by_kid` (JWKS keys) a token's `kid` must name a key; a token without one is
/// accepted only when exactly one key fits its algorithm. Without it (one configured PEM key
/// or secret) the `kid` is not looked at. An unknown `kid` is [`JwtError::UnknownKey`], which
/// makes the caller refetch a JWKS; a known key that does not fit the algorithm is
/// [`JwtError::AlgorithmNotAllowed`].
pub(crate) fn select<'k>(
    keys: &'k [Key],
    by_kid: bool,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<&'k Key, JwtError> {
    match kid.filter(|_| by_kid) {
        Some(kid) => {
            let mut named = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return Err(JwtError::UnknownKey);
            }
            named
                .find(|k| k.accepts(alg))
                .ok_or(JwtError::AlgorithmNotAllowed)
        }
        None => {
            let mut fitting = keys.iter().filter(|k| k.accepts(alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(key),
                _ if !by_kid && !keys.is_empty() => Err(JwtError::AlgorithmNotAllowed),
                _ => Err(JwtError::UnknownKey),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(json: &str) -> Jwk {
        serde_json::from_str(json).expect("test JWK")
    }

    #[test]
    fn jwks_entries_are_taken_or_skipped_by_type_use_and_alg() {
        let ed = r#""kty":"OKP","crv":"Ed25519","x":"rmV_GqBFJa8O6mFGQriD-6Ky4XVAaPnzpJYw36CaP0g""#;
        let key = Key::from_jwk(&jwk(&format!(r#"{{{ed},"kid":"ed-1","alg":"EdDSA"}}"#)));
        let key = key.expect("Ed25519 JWK");
        assert_eq!(
            (key.kind, key.alg),
            (KeyKind::Ed25519, Some(Algorithm::EdDSA))
        );
        for (json, why) in [
            (format!(r#"{{{ed},"use":"enc"}}"#), "not a signing key"),
            (format!(r#"{{{ed},"alg":"RS256"}}"#), "does not fit"),
            (format!(r#"{{{ed},"alg":"none"}}"#), "not a JWS"),
            (r#"{"kty":"oct","k":"c2VjcmV0"}"#.to_owned(), "symmetric"),
            (
                r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#.to_owned(),
                "wrong length",
            ),
            (
                r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#.to_owned(),
                "curve",
            ),
            (r#"{"kty":"RSA","e":"AQAB"}"#.to_owned(), "without `n`"),
        ] {
            let err = Key::from_jwk(&jwk(&json)).expect_err(why);
            assert!(err.contains(why), "{json}: {err}");
        }
    }

    #[test]
    fn pem_files_say_what_is_wrong() {
        let Some(fixtures) = crate::test_fixtures::jwt() else {
            return;
        };
        let read =
            |name: &str| std::fs::read(fixtures.join("keys").join(name)).expect("fixture key");
        let kind = |name: &str| Key::from_pem(&read(name)).map(|k| k.kind);
        assert_eq!(kind("rsa-1.pub.pem"), Ok(KeyKind::Rsa));
        assert_eq!(kind("ec-1.pub.pem"), Ok(KeyKind::EcP256));
        assert_eq!(kind("ed-1.pub.pem"), Ok(KeyKind::Ed25519));
        let err = kind("rsa-1.pem").expect_err("private key");
        assert!(err.contains("private key"), "{err}");
        assert!(Key::from_pem(b"not pem").is_err());
    }

    #[test]
    fn a_jwk_alg_is_binding_and_kid_selects() {
        let rsa = |kid: &str, alg: Option<Algorithm>| Key {
            kid: Some(kid.into()),
            kind: KeyKind::Rsa,
            alg,
            decoding: DecodingKey::from_rsa_raw_components(&[1], &[1]),
        };
        let keys = [rsa("a", Some(Algorithm::RS256)), rsa("b", None)];
        let pick = |alg, kid| select(&keys, true, alg, kid).map(|k| k.kid.as_deref());
        assert_eq!(pick(Algorithm::RS256, Some("a")), Ok(Some("a")));
        assert_eq!(
            pick(Algorithm::PS256, Some("a")),
            Err(JwtError::AlgorithmNotAllowed)
        );
        assert_eq!(pick(Algorithm::PS256, Some("b")), Ok(Some("b")));
        assert_eq!(
            pick(Algorithm::ES256, Some("b")),
            Err(JwtError::AlgorithmNotAllowed)
        );
        assert_eq!(
            pick(Algorithm::RS256, Some("../../etc/passwd")),
            Err(JwtError::UnknownKey)
        );
        // Without a kid: exactly one key must fit.
        assert_eq!(pick(Algorithm::PS256, None), Ok(Some("b")));
        assert_eq!(pick(Algorithm::RS256, None), Err(JwtError::UnknownKey));
        // One configured key: the kid is not looked at, the type must fit.
        let one = [Key::secret(b"s")];
        assert!(select(&one, false, Algorithm::HS256, Some("x")).is_ok());
        assert_eq!(
            select(&one, false, Algorithm::RS256, None).map(|_| ()),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }
}
