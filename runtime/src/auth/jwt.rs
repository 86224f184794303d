//! JWT bearer tokens: checked against a scheme's keys and claim rules, with a cache of the
//! tokens already verified.
//!
//! What a token must pass, in the order checked:
//! - at most 8 KiB, before anything is decoded;
//! - three base64url parts and a JSON header without `jku`, `x5u`, `jwk` or `x5c` (a token
//!   never chooses the key that verifies it) and without `crit` (no extension is understood);
//! - an `alg` spelled exactly as one of the scheme's algorithms (`none` never is one), and a
//!   key that fits it: the key's type, and the JWK's own `alg` when it has one;
//! - the signature;
//! - the claims: `exp` present when required, `exp` and `nbf` within the leeway, `iss` equal to
//!   the scheme's issuer, `aud` (string or array) containing one of its audiences.
//!
//! A verified token is cached under the SHA-256 of its text, never the text itself, so a
//! repeated token skips the signature check (4-8 us for RS256). A cache entry is used only
//! between the token's `nbf` and `exp` (outside them the token is checked in full, leeway
//! included) and only under the key set that verified it; the cache is emptied when the key
//! set changes. Nothing here logs or returns token text, claim values or key material.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatewayc_vocab::jwt as jws;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::Algorithm;
use jsonwebtoken::crypto::CryptoProvider;
use quick_cache::sync::Cache;
use serde_json::{Map, Value};

use super::jwks::{KeySet, RemoteKeys};
use super::keys::{Key, select};
use crate::env::resolve_with;
use crate::gateway::{JwtDef, KeySource};

/// Longest token accepted; longer ones are refused before any decoding.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Verified tokens kept per scheme (fewer when they are over 1 KiB: [`TokenWeight`]).
const CACHE_CAPACITY: usize = 16 * 1024;
/// Header parameters that would let a token pick or carry its own key, or demand
/// extensions this verifier does not implement.
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// Why a token was refused. Each maps to a 401 with an RFC 6750 `error="invalid_token"`,
/// except perhaps [`JwtError::TooLarge`] (431) and [`JwtError::KeysUnavailable`] (503),
/// which are the caller's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, a header or payload that is not a JSON object, or a claim
    /// of the wrong type.
    Malformed,
    /// The header's `alg` is not one of the scheme's, or does not fit the key it names.
    AlgorithmNotAllowed,
    /// No key with the token's `kid`, even after fetching the keys again.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// No `exp`, and the scheme requires one.
    MissingExp,
    /// `iss` is not the scheme's issuer.
    WrongIssuer,
    /// `aud` holds none of the scheme's audiences.
    WrongAudience,
    /// The header has `jku`, `x5u`, `jwk`, `x5c` or `crit`.
    ForbiddenHeader,
    /// The token is longer than 8 KiB.
    TooLarge,
    /// The scheme's keys have never been fetched successfully.
    KeysUnavailable,
}

impl JwtError {
    /// A short fixed text for the client (RFC 6750 `error_description`); it never contains
    /// anything taken from the token.
    pub fn description(&self) -> &'static str {
        match self {
            JwtError::Malformed => "The access token is malformed",
            JwtError::AlgorithmNotAllowed => "The token's signing algorithm is not accepted",
            JwtError::UnknownKey => "The token is signed with an unknown key",
            JwtError::BadSignature => "The token signature is invalid",
            JwtError::Expired => "The token has expired",
            JwtError::NotYetValid => "The token is not valid yet",
            JwtError::MissingExp => "The token has no expiry time",
            JwtError::WrongIssuer => "The token was issued by an untrusted issuer",
            JwtError::WrongAudience => "The token is not meant for this API",
            JwtError::ForbiddenHeader => "The token header names or embeds its own key",
            JwtError::TooLarge => "The token is too large",
            JwtError::KeysUnavailable => "The token signing keys are unavailable",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for JwtError {}

/// What a verified token says about its bearer.
pub struct Verified {
    /// The value of the scheme's consumer claim (a string, or a number as text).
    pub consumer: Option<Box<str>>,
    /// The value of the scheme's plan claim (a string, or a number as text).
    pub plan: Option<Box<str>>,
    /// Granted scopes: `scope` and `scp`, each a space-separated string or an array.
    pub scopes: Box<[Box<str>]>,
    /// Headers for the upstream from the scheme's forwarded claims: strings, numbers and
    /// booleans as text; a claim that is absent, of another type, or not a valid header
    /// value is left out.
    pub forward: Box<[(HeaderName, HeaderValue)]>,
    /// All claims, for later phases (limits keyed by a claim).
    pub claims: Map<String, Value>,
    /// `exp`, in Unix seconds.
    pub expires: Option<u64>,
}

impl Verified {
    /// Whether every scope in `needed` was granted.
    pub fn has_scopes(&self, needed: &[&str]) -> bool {
        needed
            .iter()
            .all(|want| self.scopes.iter().any(|have| &**have == *want))
    }
}

/// Shows which claims there are, never their values.
impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .field("scopes", &self.scopes.len())
            .field(
                "forward",
                &self
                    .forward
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("expires", &self.expires)
            .finish()
    }
}

/// The verifier of one JWT security scheme: its keys, rules and cache of verified tokens.
/// Built once at start-up and shared.
pub struct JwtVerifier {
    scheme: &'static str,
    def: &'static JwtDef,
    /// The scheme's algorithms, with their names as written.
    algorithms: Box<[(&'static str, Algorithm)]>,
    /// (claim, header) pairs of `def.forward_claims`, header names parsed.
    forward: Box<[(&'static str, HeaderName)]>,
    keys: Keys,
    cache: Cache<TokenKey, Cached, TokenWeight, DigestHash>,
    /// The newest key-set generation seen; the cache is emptied when it grows.
    cache_generation: AtomicU64,
    /// Signatures checked, so tests can tell a cache hit from a verification.
    #[cfg(test)]
    signature_checks: AtomicU64,
    /// Seconds added to the clock, so tests can move past a token's `exp`.
    #[cfg(test)]
    clock_offset: AtomicU64,
}

#[derive(Debug)]
enum Keys {
    /// A PEM key or HMAC secret, read at start-up.
    Fixed(Arc<KeySet>),
    /// A JWKS, fetched and refreshed.
    Remote(Arc<RemoteKeys>),
}

/// The cache key of a token: the token itself, compared in full on every hit.
///
/// Keying by the whole text (rather than a digest of it) costs no hash over the ~600 bytes
/// of a typical token on the hot path, and no collision can ever answer one token with
/// another's claims: a hit needs every byte equal. The bucket comes from the last 16 bytes
/// (the end of the signature, uniform for tokens from a real signer); only verified tokens
/// enter the cache, so nobody can crowd one bucket with tokens of their choosing.
#[derive(Clone, PartialEq, Eq)]
struct TokenKey(Box<str>);

/// A token being looked up: hashes and compares as the [`TokenKey`] it would become.
struct TokenRef<'a>(&'a str);

impl std::hash::Hash for TokenKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(tail_hash(&self.0));
    }
}

impl std::hash::Hash for TokenRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(tail_hash(self.0));
    }
}

impl quick_cache::Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        *self.0 == *key.0
    }
}

/// A 64-bit hash of a token's last 16 bytes (fewer for a shorter token), mixed so that
/// every output bit depends on every input byte.
fn tail_hash(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let mut tail = [0u8; 16];
    let n = bytes.len().min(16);
    tail[..n].copy_from_slice(&bytes[bytes.len() - n..]);
    let (a, b) = tail.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
    let mut h = (a ^ b.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// Passes on the `u64` a [`TokenKey`] hashes to, without mixing it again.
#[derive(Debug, Clone, Copy, Default)]
struct DigestHash;

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

/// The hasher of [`DigestHash`]: the last `u64` written (other writes are folded in, so it
/// stays a hasher for any key, if a poor one).
#[derive(Debug)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Weighs a cache entry by its token's length, in kibibytes rounded up: the cache holds
/// [`CACHE_CAPACITY`] typical tokens, fewer when they are large, so its memory stays
/// bounded (about 16 MiB of token text at most).
#[derive(Debug, Clone, Copy)]
struct TokenWeight;

impl quick_cache::Weighter<TokenKey, Cached> for TokenWeight {
    fn weight(&self, key: &TokenKey, _: &Cached) -> u64 {
        key.0.len().div_ceil(1024).max(1) as u64
    }
}

/// A verified token in the cache.
#[derive(Clone)]
struct Cached {
    verified: Arc<Verified>,
    /// The key-set generation that verified it.
    generation: u64,
    not_before: Option<u64>,
}

impl Cached {
    /// Whether the entry may answer at `now`: strictly inside the token's own validity, so
    /// the cache never extends a token's life.
    fn usable_at(&self, now: u64, generation: u64) -> bool {
        self.generation == generation
            && self.verified.expires.is_none_or(|exp| now < exp)
            && self.not_before.is_none_or(|nbf| now >= nbf)
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("scheme", &self.scheme)
            .field("algorithms", &self.def.algorithms)
            .field("cached_tokens", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Resolves `${VAR}`s in the key source with `lookup` and reads a PEM file or HMAC
    /// secret now. Errors name the scheme and the problem, never key material. No network
    /// here: a JWKS is fetched by [`JwtVerifier::prefetch`] or the first token.
    pub fn new(
        scheme: &'static str,
        def: &'static JwtDef,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JwtVerifier, String> {
        // Exactly one backend is compiled in; installing it explicitly keeps verification
        // working should feature unification ever enable a second one.
        let _ =
            CryptoProvider::install_default(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);
        let fail = |problem: String| format!("JWT scheme `{scheme}`: {problem}");
        let resolve = |what: &str, template: &str| {
            resolve_with(template, lookup).map_err(|missing| {
                let names: Vec<_> = missing.into_iter().collect();
                fail(format!("{what} uses unset variables: {}", names.join(", ")))
            })
        };
        let keys = match def.keys {
            KeySource::Secret(template) => {
                let secret = resolve("the HMAC secret", template)?;
                if secret.is_empty() {
                    return Err(fail("the HMAC secret is empty".into()));
                }
                if secret.len() < 32 {
                    tracing::warn!(
                        scheme,
                        "the HMAC secret is shorter than 32 bytes; a short secret can be guessed"
                    );
                }
                Keys::Fixed(Arc::new(KeySet::fixed(Key::secret(secret.as_bytes()))))
            }
            KeySource::PemFile(template) => {
                let path = resolve("the key file path", template)?;
                let pem = std::fs::read(&path)
                    .map_err(|e| fail(format!("cannot read the key file `{path}`: {e}")))?;
                let key = Key::from_pem(&pem)
                    .map_err(|problem| fail(format!("the key file `{path}` {problem}")))?;
                Keys::Fixed(Arc::new(KeySet::fixed(key)))
            }
            KeySource::JwksUrl(template) => {
                let url = resolve("the JWKS URL", template)?;
                Keys::Remote(Arc::new(
                    RemoteKeys::new(scheme, &url, false).map_err(fail)?,
                ))
            }
            KeySource::Discovery(template) => {
                let url = resolve("the OpenID discovery URL", template)?;
                Keys::Remote(Arc::new(RemoteKeys::new(scheme, &url, true).map_err(fail)?))
            }
        };
        let algorithms = check_algorithms(def, &keys).map_err(fail)?;
        let forward = def
            .forward_claims
            .iter()
            .map(|&(claim, header)| {
                HeaderName::from_bytes(header.as_bytes())
                    .map(|name| (claim, name))
                    .map_err(|_| fail(format!("`{header}` is not a valid header name")))
            })
            .collect::<Result<_, _>>()?;
        Ok(JwtVerifier {
            scheme,
            def,
            algorithms,
            forward,
            keys,
            cache: Cache::with(
                CACHE_CAPACITY,
                CACHE_CAPACITY as u64,
                TokenWeight,
                DigestHash,
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            cache_generation: AtomicU64::new(0),
            #[cfg(test)]
            signature_checks: AtomicU64::new(0),
            #[cfg(test)]
            clock_offset: AtomicU64::new(0),
        })
    }

    /// Fetches the JWKS (or discovery document, then JWKS) once, within about 5 s. A failure
    /// is logged, not fatal: the first token tries again. Does nothing for PEM and secret keys.
    /// Whether the scheme's keys are there: always for a fixed key, after the first
    /// successful fetch for a JWKS (readiness).
    pub fn keys_loaded(&self) -> bool {
        match &self.keys {
            Keys::Remote(r) => r.loaded(),
            _ => true,
        }
    }

    /// The scheme's name.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    pub async fn prefetch(&self) {
        if let Keys::Remote(remote) = &self.keys {
            remote.prefetch().await;
        }
    }

    /// Verifies a bearer token (the text after `Bearer `).
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        let mut keys = self.key_set();
        let now = self.now();
        if let Some(hit) = self.cache.get(&TokenRef(token))
            && hit.usable_at(now, keys.generation)
        {
            return Ok(hit.verified);
        }

        let text = token;
        let token = Parts::split(token)?;
        let alg = self
            .algorithms
            .iter()
            .find(|(name, _)| *name == token.alg)
            .map(|&(_, alg)| alg)
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let by_kid = matches!(self.keys, Keys::Remote(_));
        let kid = token.kid.as_deref();
        if let (Err(JwtError::UnknownKey), Keys::Remote(remote)) =
            (select(&keys.keys, by_kid, alg, kid), &self.keys)
        {
            keys = remote.refetch_after_miss(&keys).await;
            self.note_generation(keys.generation);
            if keys.generation == 0 {
                return Err(JwtError::KeysUnavailable);
            }
        }
        let key = select(&keys.keys, by_kid, alg, kid)?;

        #[cfg(test)]
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let valid = jsonwebtoken::crypto::verify(
            token.signature,
            token.signing_input.as_bytes(),
            &key.decoding,
            alg,
        );
        if !matches!(valid, Ok(true)) {
            return Err(JwtError::BadSignature);
        }

        let claims: Map<String, Value> = decode_json(token.payload)?;
        let window = self.check_claims(&claims, now)?;
        let verified = Arc::new(self.verified(claims, window.expires));
        self.cache.insert(
            TokenKey(text.into()),
            Cached {
                verified: Arc::clone(&verified),
                generation: keys.generation,
                not_before: window.not_before,
            },
        );
        Ok(verified)
    }

    /// The scheme's algorithms that no key it has now can verify: tokens signed with them
    /// are all refused. Empty while a remote key set has not been fetched (nothing is known
    /// yet). Start-up warns about them: usually a JWKS that lost a key type, or an
    /// algorithm listed by mistake.
    pub fn unusable_algorithms(&self) -> Vec<&'static str> {
        let keys = self.key_set();
        if keys.generation == 0 {
            return Vec::new();
        }
        self.algorithms
            .iter()
            .filter(|(_, alg)| !keys.keys.iter().any(|k| k.accepts(*alg)))
            .map(|(name, _)| *name)
            .collect()
    }

    /// The keys to verify with now; notices a new key set and empties the cache then.
    fn key_set(&self) -> Arc<KeySet> {
        match &self.keys {
            Keys::Fixed(set) => Arc::clone(set),
            Keys::Remote(remote) => {
                let set = remote.current();
                self.note_generation(set.generation);
                set
            }
        }
    }

    fn note_generation(&self, generation: u64) {
        if self
            .cache_generation
            .fetch_max(generation, Ordering::AcqRel)
            < generation
        {
            self.cache.clear();
        }
    }

    /// Checks `exp`, `nbf`, `iss` and `aud`; returns the token's validity window.
    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<Window, JwtError> {
        let leeway = self.def.leeway.as_secs();
        let expires = numeric_date(claims.get("exp"), f64::floor)?;
        let not_before = numeric_date(claims.get("nbf"), f64::ceil)?;
        match expires {
            None if self.def.require_exp => return Err(JwtError::MissingExp),
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(JwtError::Expired),
            _ => {}
        }
        if not_before.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(JwtError::NotYetValid);
        }
        if let Some(issuer) = self.def.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer)
        {
            return Err(JwtError::WrongIssuer);
        }
        if !self.def.audience.is_empty() {
            let accepted =
                |aud: &Value| aud.as_str().is_some_and(|a| self.def.audience.contains(&a));
            let matches = match claims.get("aud") {
                Some(Value::Array(auds)) => auds.iter().any(accepted),
                Some(aud) => accepted(aud),
                None => false,
            };
            if !matches {
                return Err(JwtError::WrongAudience);
            }
        }
        Ok(Window {
            expires,
            not_before,
        })
    }

    fn verified(&self, claims: Map<String, Value>, expires: Option<u64>) -> Verified {
        let text = |claim: &str| match claims.get(claim)? {
            Value::String(s) => Some(Box::from(s.as_str())),
            Value::Number(n) => Some(n.to_string().into_boxed_str()),
            _ => None,
        };
        let forward = self
            .forward
            .iter()
            .filter_map(|(claim, header)| {
                let value = match claims.get(*claim)? {
                    Value::String(s) => HeaderValue::from_str(s),
                    Value::Number(n) => HeaderValue::from_str(&n.to_string()),
                    Value::Bool(b) => HeaderValue::from_str(if *b { "true" } else { "false" }),
                    _ => return None,
                };
                Some((header.clone(), value.ok()?))
            })
            .collect();
        let mut scopes = Vec::new();
        for claim in ["scope", "scp"] {
            match claims.get(claim) {
                Some(Value::String(s)) => scopes.extend(s.split_ascii_whitespace().map(Box::from)),
                Some(Value::Array(items)) => {
                    scopes.extend(items.iter().filter_map(Value::as_str).map(Box::from));
                }
                _ => {}
            }
        }
        Verified {
            consumer: text(self.def.consumer_claim),
            plan: self.def.plan_claim.and_then(text),
            scopes: scopes.into(),
            forward,
            claims,
            expires,
        }
    }

    fn now(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        #[cfg(test)]
        let now = now + self.clock_offset.load(Ordering::Relaxed);
        now
    }
}

/// The scheme's algorithms, parsed; each must suit the key source: HMAC only with a
/// secret, the others only with public keys, and a PEM key of a type that fits.
fn check_algorithms(
    def: &'static JwtDef,
    keys: &Keys,
) -> Result<Box<[(&'static str, Algorithm)]>, String> {
    if def.algorithms.is_empty() {
        return Err("no algorithms are allowed".into());
    }
    let secret = matches!(def.keys, KeySource::Secret(_));
    def.algorithms
        .iter()
        .map(|&name| {
            let alg = match name.parse::<Algorithm>() {
                Ok(alg) if jws::is_known(name) => alg,
                _ => return Err(format!("`{name}` is not a supported JWS algorithm")),
            };
            if jws::is_hmac(name) != secret {
                return Err(if secret {
                    format!("{name} needs a public key, not an HMAC secret")
                } else {
                    format!("{name} needs an HMAC secret as its key")
                });
            }
            if let Keys::Fixed(set) = keys
                && let Some(key) = set.keys.first()
                && !key.kind.fits(alg)
            {
                return Err(format!(
                    "the key file holds {}, which cannot verify {name}",
                    key.kind.describe()
                ));
            }
            Ok((name, alg))
        })
        .collect()
}

/// A token's `exp` and `nbf`, Unix seconds.
struct Window {
    expires: Option<u64>,
    not_before: Option<u64>,
}

/// A NumericDate claim (seconds, possibly fractional, rounded with `round`); absent is
/// `None`, another type is malformed.
fn numeric_date(value: Option<&Value>, round: fn(f64) -> f64) -> Result<Option<u64>, JwtError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let number = value.as_number().ok_or(JwtError::Malformed)?;
    if let Some(secs) = number.as_u64() {
        return Ok(Some(secs));
    }
    let secs = number.as_f64().ok_or(JwtError::Malformed)?;
    // `as` saturates: negative dates become 0, huge ones u64::MAX.
    Ok(Some(round(secs) as u64))
}

/// A compact JWS split into its parts, with the header read.
struct Parts<'t> {
    alg: String,
    kid: Option<String>,
    /// `header.payload`, what the signature covers.
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Result<Parts<'t>, JwtError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
        if payload.contains('.') {
            return Err(JwtError::Malformed);
        }
        let mut header: Map<String, Value> = decode_json(header)?;
        if FORBIDDEN_HEADERS
            .iter()
            .any(|name| header.contains_key(*name))
        {
            return Err(JwtError::ForbiddenHeader);
        }
        let Some(Value::String(alg)) = header.remove("alg") else {
            return Err(JwtError::Malformed);
        };
        let kid = match header.remove("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid),
            Some(_) => return Err(JwtError::Malformed),
        };
        Ok(Parts {
            alg,
            kid,
            signing_input,
            payload,
            signature,
        })
    }
}

/// A base64url (unpadded) JSON object.
fn decode_json(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://id.example.test/";
    /// The HS256 secret of the tests that sign their own tokens (`${TEST_SECRET}`); the
    /// fixtures' tokens use theirs (`${JWT_SECRET}`).
    const TEST_SECRET: &str = "test-secret-of-jwt-rs-0123456789abcdef0123456789";

    /// Every case of tokens.json with its outcome against jwks.json (algorithms RS256,
    /// PS256, ES256, EdDSA); `None` is accepted.
    const JWKS_OUTCOMES: &[(&str, Option<JwtError>)] = &[
        ("hs256-valid", Some(JwtError::AlgorithmNotAllowed)),
        ("rs256-valid", None),
        // jwks.json says rsa-1 is for RS256: its `alg` is binding.
        ("ps256-valid", Some(JwtError::AlgorithmNotAllowed)),
        ("es256-valid", None),
        ("eddsa-valid", None),
        ("rs256-read-only-scope", None),
        ("rs256-scp-array", None),
        ("rs256-no-scope", None),
        ("rs256-aud-array", None),
        ("rs256-bob-silver", None),
        ("rs256-rotated-key", Some(JwtError::UnknownKey)),
        ("expired", Some(JwtError::Expired)),
        ("not-yet-valid", Some(JwtError::NotYetValid)),
        ("no-exp", Some(JwtError::MissingExp)),
        ("wrong-issuer", Some(JwtError::WrongIssuer)),
        ("wrong-audience", Some(JwtError::WrongAudience)),
        ("unknown-kid", Some(JwtError::UnknownKey)),
        ("bad-signature", Some(JwtError::BadSignature)),
        ("alg-none", Some(JwtError::AlgorithmNotAllowed)),
        ("alg-none-upper", Some(JwtError::AlgorithmNotAllowed)),
        (
            "alg-confusion-hs256-with-rsa-public-key",
            Some(JwtError::AlgorithmNotAllowed),
        ),
        ("kid-path-traversal", Some(JwtError::UnknownKey)),
        ("jku-injection", Some(JwtError::ForbiddenHeader)),
        ("embedded-jwk", Some(JwtError::ForbiddenHeader)),
        ("malformed-two-parts", Some(JwtError::Malformed)),
        ("malformed-base64", Some(JwtError::Malformed)),
        ("malformed-json-header", Some(JwtError::Malformed)),
        ("oversized", Some(JwtError::TooLarge)),
    ];

    /// A file of the JWT fixtures (a test that calls this starts with
    /// `crate::test_fixtures::jwt()`, which says when they are missing).
    fn fixture_text(name: &str) -> String {
        std::fs::read_to_string(crate::test_fixtures::jwt_dir().join(name)).expect("JWT fixture")
    }

    /// The token of a tokens.json case.
    fn token(name: &str) -> String {
        let file: Value = serde_json::from_str(&fixture_text("tokens.json")).expect("tokens.json");
        let cases = file["cases"].as_array().expect("cases");
        let case = cases.iter().find(|c| c["name"] == name);
        case.and_then(|c| c["token"].as_str())
            .unwrap_or_else(|| panic!("no case {name}"))
            .to_owned()
    }

    fn def(keys: KeySource, algorithms: &'static [&'static str]) -> &'static JwtDef {
        Box::leak(Box::new(jwt_def(keys, algorithms)))
    }

    fn jwt_def(keys: KeySource, algorithms: &'static [&'static str]) -> JwtDef {
        JwtDef {
            keys,
            algorithms,
            issuer: Some(ISSUER),
            audience: &["petstore-api"],
            require_exp: true,
            leeway: Duration::from_secs(60),
            consumer_claim: "sub",
            plan_claim: Some("plan"),
            forward_claims: &[
                ("tenant", "x-tenant"),
                ("admin", "x-admin"),
                ("note", "x-note"),
            ],
        }
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "FIXTURES" => Some(crate::test_fixtures::jwt_dir().display().to_string()),
            "JWT_SECRET" => Some(fixture_text("keys/hs256.secret").trim_end().to_owned()),
            "TEST_SECRET" => Some(TEST_SECRET.to_owned()),
            _ => None,
        }
    }

    fn verifier(keys: KeySource, algorithms: &'static [&'static str]) -> JwtVerifier {
        JwtVerifier::new("bearerAuth", def(keys, algorithms), &env).expect("verifier")
    }

    fn checks(v: &JwtVerifier) -> u64 {
        v.signature_checks.load(Ordering::Relaxed)
    }

    fn remote(v: &JwtVerifier) -> &RemoteKeys {
        match &v.keys {
            Keys::Remote(remote) => remote,
            Keys::Fixed(_) => panic!("not a JWKS verifier"),
        }
    }

    async fn outcome(v: &JwtVerifier, name: &str) -> Result<Arc<Verified>, JwtError> {
        v.verify(&token(name)).await
    }

    /// An HS256 token with these claims, signed with [`TEST_SECRET`].
    fn hs256(claims: Value) -> String {
        let secret = env("TEST_SECRET").expect("secret");
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("signed token")
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    /// What the test identity provider answers at `/jwks`.
    enum Answer {
        Json(&'static str, String),
        Status(u16),
    }

    /// A local identity provider: `/jwks` answers what it is told to, counting requests;
    /// `/.well-known/openid-configuration` points at `/jwks`.
    struct IdP {
        addr: SocketAddr,
        answer: Mutex<Answer>,
        jwks_hits: AtomicUsize,
        delay: Mutex<Duration>,
    }

    impl IdP {
        async fn start(jwks_file: &str) -> Arc<IdP> {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let idp = Arc::new(IdP {
                addr: listener.local_addr().expect("addr"),
                answer: Mutex::new(Answer::Json("max-age=30", fixture_text(jwks_file))),
                jwks_hits: AtomicUsize::new(0),
                delay: Mutex::new(Duration::ZERO),
            });
            let server = Arc::clone(&idp);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let idp = Arc::clone(&server);
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let idp = Arc::clone(&idp);
                        async move { Ok::<_, Infallible>(idp.respond(req.uri().path()).await) }
                    });
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service),
                    );
                }
            });
            idp
        }

        async fn respond(&self, path: &str) -> Response<Full<Bytes>> {
            let (status, cache_control, body) = if path == "/jwks" {
                self.jwks_hits.fetch_add(1, Ordering::SeqCst);
                let delay = *self.delay.lock().expect("delay");
                tokio::time::sleep(delay).await;
                match &*self.answer.lock().expect("answer") {
                    Answer::Json(cache_control, body) => (200, *cache_control, body.clone()),
                    Answer::Status(status) => (*status, "no-store", String::new()),
                }
            } else if path == "/.well-known/openid-configuration" {
                let doc = json!({"issuer": ISSUER, "jwks_uri": self.url("/jwks")});
                (200, "no-store", doc.to_string())
            } else {
                (404, "no-store", String::new())
            };
            Response::builder()
                .status(status)
                .header("cache-control", cache_control)
                .body(Full::new(Bytes::from(body)))
                .expect("response")
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn url_static(&self, path: &str) -> &'static str {
            Box::leak(self.url(path).into_boxed_str())
        }

        fn serve(&self, answer: Answer) {
            *self.answer.lock().expect("answer") = answer;
        }

        fn hits(&self) -> usize {
            self.jwks_hits.load(Ordering::SeqCst)
        }
    }

    const ASYMMETRIC: &[&str] = &["RS256", "PS256", "ES256", "EdDSA"];

    async fn jwks_verifier(idp: &IdP) -> JwtVerifier {
        let v = verifier(KeySource::JwksUrl(idp.url_static("/jwks")), ASYMMETRIC);
        v.prefetch().await;
        v
    }

    #[tokio::test]
    async fn algorithms_no_key_can_verify_are_named() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let v = verifier(
            KeySource::JwksUrl(idp.url_static("/jwks")),
            &["RS256", "ES384", "PS512", "EdDSA"],
        );
        // Nothing fetched yet: nothing is known.
        assert!(v.unusable_algorithms().is_empty());
        v.prefetch().await;
        // The JWKS has an RSA key for RS256 only (its `alg` is binding), a P-256 and an
        // Ed25519 key: nothing verifies ES384 (no P-384 key) or PS512.
        assert_eq!(v.unusable_algorithms(), ["ES384", "PS512"]);
        let fitting = verifier(
            KeySource::JwksUrl(idp.url_static("/jwks")),
            &["RS256", "ES256", "EdDSA"],
        );
        fitting.prefetch().await;
        assert!(fitting.unusable_algorithms().is_empty());
    }

    /// Past the one-second window between fetches started by unknown `kid`s.
    async fn after_refetch_window() {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    #[tokio::test]
    async fn every_fixture_has_its_outcome_and_a_rotated_key_is_picked_up() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let file: Value = serde_json::from_str(&fixture_text("tokens.json")).expect("tokens.json");
        let names: Vec<&str> = file["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        let expected: Vec<&str> = JWKS_OUTCOMES.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names, expected,
            "tokens.json and JWKS_OUTCOMES list different cases"
        );

        let idp = IdP::start("jwks.json").await;
        let v = jwks_verifier(&idp).await;
        for (name, want) in JWKS_OUTCOMES {
            let got = outcome(&v, name).await.map(|_| ()).err();
            assert_eq!(got, *want, "{name}");
        }
        // Several unknown kids, one fetch: the prefetch's, less than a second ago.
        assert_eq!(idp.hits(), 1);

        idp.serve(Answer::Json(
            "max-age=30",
            fixture_text("jwks-rotated.json"),
        ));
        // Within the window the rotated key is still unknown...
        assert_eq!(
            outcome(&v, "rs256-rotated-key").await.map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        after_refetch_window().await;
        // ...after it, the unknown kid makes the verifier fetch again, without a rebuild.
        assert!(outcome(&v, "rs256-rotated-key").await.is_ok());
        assert_eq!(idp.hits(), 2);
        // rsa-1 left the set: its tokens fail even though they were cached.
        let before = checks(&v);
        assert_eq!(
            outcome(&v, "rs256-valid").await.map(|_| ()),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(checks(&v), before, "rejected without a signature check");
        assert!(outcome(&v, "es256-valid").await.is_ok());
        for (name, want) in [
            ("jku-injection", JwtError::ForbiddenHeader),
            ("embedded-jwk", JwtError::ForbiddenHeader),
            (
                "alg-confusion-hs256-with-rsa-public-key",
                JwtError::AlgorithmNotAllowed,
            ),
            ("alg-none", JwtError::AlgorithmNotAllowed),
            ("kid-path-traversal", JwtError::UnknownKey),
            ("ps256-valid", JwtError::UnknownKey),
        ] {
            assert_eq!(
                outcome(&v, name).await.map(|_| ()),
                Err(want),
                "{name} after rotation"
            );
        }
    }

    #[tokio::test]
    async fn verified_tokens_carry_consumer_plan_scopes_and_forwarded_claims() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let v = jwks_verifier(&idp).await;
        let alice = outcome(&v, "rs256-valid").await.expect("valid");
        assert_eq!(alice.consumer.as_deref(), Some("consumer-alice"));
        assert_eq!(alice.plan.as_deref(), Some("gold"));
        assert_eq!(alice.expires, Some(4_102_444_800));
        assert!(alice.has_scopes(&["pets:read", "pets:write"]));
        assert!(!alice.has_scopes(&["admin"]));
        assert_eq!(alice.forward.len(), 1);
        assert_eq!(alice.forward[0].0, "x-tenant");
        assert_eq!(alice.forward[0].1, "acme");
        assert_eq!(alice.claims["tenant"], "acme");
        let debug = format!("{alice:?}");
        assert!(
            !debug.contains("consumer-alice") && !debug.contains("acme"),
            "{debug}"
        );

        let scp = outcome(&v, "rs256-scp-array").await.expect("valid");
        assert!(scp.has_scopes(&["pets:read", "pets:write"]));
        let read_only = outcome(&v, "rs256-read-only-scope").await.expect("valid");
        assert!(read_only.has_scopes(&["pets:read"]) && !read_only.has_scopes(&["pets:write"]));
        let none = outcome(&v, "rs256-no-scope").await.expect("valid");
        assert!(none.scopes.is_empty() && none.has_scopes(&[]) && !none.has_scopes(&["pets:read"]));
        let bob = outcome(&v, "rs256-bob-silver").await.expect("valid");
        assert_eq!(
            (bob.consumer.as_deref(), bob.plan.as_deref()),
            (Some("consumer-bob"), Some("silver"))
        );
    }

    #[tokio::test]
    async fn claim_values_become_text_and_bad_header_values_are_skipped() {
        let v = verifier(KeySource::Secret("${TEST_SECRET}"), &["HS256"]);
        let token = hs256(json!({
            "iss": ISSUER, "aud": ["petstore-api"], "exp": unix_now() + 600,
            "sub": 42, "plan": true, "tenant": "line\nbreak", "admin": false, "note": 1.5,
            "scp": "a b",
        }));
        let verified = v.verify(&token).await.expect("valid");
        assert_eq!(verified.consumer.as_deref(), Some("42"));
        assert_eq!(verified.plan, None, "a boolean is no plan name");
        let forward: Vec<_> = verified
            .forward
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().expect("ascii")))
            .collect();
        assert_eq!(forward, [("x-admin", "false"), ("x-note", "1.5")]);
        assert!(verified.has_scopes(&["a", "b"]));
    }

    #[tokio::test]
    async fn a_repeated_token_is_answered_from_the_cache() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let v = jwks_verifier(&idp).await;
        let first = outcome(&v, "rs256-valid").await.expect("valid");
        assert_eq!(checks(&v), 1);
        let second = outcome(&v, "rs256-valid").await.expect("valid");
        assert_eq!(checks(&v), 1, "no second signature check");
        assert!(Arc::ptr_eq(&first, &second));
        // Failures are not cached.
        for _ in 0..2 {
            assert_eq!(
                outcome(&v, "bad-signature").await.map(|_| ()),
                Err(JwtError::BadSignature)
            );
        }
        assert_eq!(checks(&v), 3);
        assert_eq!(v.cache.len(), 1);
    }

    #[tokio::test]
    async fn a_token_sharing_a_cached_tokens_signature_is_checked_in_full() {
        // The cache buckets tokens by their last bytes (the signature): a token that keeps a
        // cached token's signature but changes its claims must still be verified, and fail.
        let v = verifier(KeySource::Secret("${TEST_SECRET}"), &["HS256"]);
        let exp = unix_now() + 600;
        let cached = hs256(json!({"iss": ISSUER, "aud": "petstore-api", "exp": exp, "sub": "1"}));
        assert!(v.verify(&cached).await.is_ok());
        let other = hs256(json!({"iss": ISSUER, "aud": "petstore-api", "exp": exp, "sub": "2"}));
        let (signed, _) = other.rsplit_once('.').expect("three parts");
        let (_, signature) = cached.rsplit_once('.').expect("three parts");
        let forged = format!("{signed}.{signature}");
        assert_eq!(
            v.verify(&forged).await.map(|_| ()),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            v.verify(&cached).await.map(|t| t.consumer.clone()),
            Ok(Some("1".into()))
        );
    }

    #[tokio::test]
    async fn the_cache_never_outlives_exp_nor_answers_before_nbf() {
        let v = verifier(KeySource::Secret("${TEST_SECRET}"), &["HS256"]);
        let now = unix_now();
        let short = hs256(json!({"iss": ISSUER, "aud": "petstore-api", "exp": now + 100}));
        assert!(v.verify(&short).await.is_ok());
        assert!(v.verify(&short).await.is_ok());
        assert_eq!(checks(&v), 1);
        // 200 s later the token is past exp and the 60 s leeway: checked in full, refused.
        v.clock_offset.store(200, Ordering::Relaxed);
        assert_eq!(v.verify(&short).await.map(|_| ()), Err(JwtError::Expired));
        assert_eq!(checks(&v), 2);
        v.clock_offset.store(0, Ordering::Relaxed);

        // Accepted within the leeway before its nbf, but never served from the cache then.
        let early =
            hs256(json!({"iss": ISSUER, "aud": "petstore-api", "exp": now + 600, "nbf": now + 30}));
        assert!(v.verify(&early).await.is_ok());
        assert!(v.verify(&early).await.is_ok());
        assert_eq!(checks(&v), 4);
    }

    #[tokio::test]
    async fn exp_and_nbf_are_checked_with_the_leeway() {
        let v = verifier(KeySource::Secret("${TEST_SECRET}"), &["HS256"]);
        let now = unix_now();
        let with = |extra: Value| {
            let mut claims = json!({"iss": ISSUER, "aud": "petstore-api"});
            if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
                claims.extend(extra.clone());
            }
            hs256(claims)
        };
        for (claims, want) in [
            (json!({"exp": now - 30}), None),
            (json!({"exp": now - 90}), Some(JwtError::Expired)),
            (
                json!({"exp": now + 600, "nbf": now + 90}),
                Some(JwtError::NotYetValid),
            ),
            (json!({"exp": (now + 600) as f64 + 0.5}), None),
            (json!({"exp": "tomorrow"}), Some(JwtError::Malformed)),
            (json!({"nbf": now}), Some(JwtError::MissingExp)),
        ] {
            let got = v.verify(&with(claims.clone())).await.map(|_| ()).err();
            assert_eq!(got, want, "{claims}");
        }
        // Without require_exp, a token without exp is accepted.
        let lenient = JwtVerifier::new(
            "lenient",
            Box::leak(Box::new(JwtDef {
                require_exp: false,
                leeway: Duration::ZERO,
                ..jwt_def(KeySource::Secret("${TEST_SECRET}"), &["HS256"])
            })),
            &env,
        )
        .expect("verifier");
        assert!(lenient.verify(&with(json!({}))).await.is_ok());
        assert_eq!(
            lenient
                .verify(&with(json!({"exp": now - 1})))
                .await
                .map(|_| ()),
            Err(JwtError::Expired)
        );
    }

    #[tokio::test]
    async fn issuer_and_audience_are_matched_exactly() {
        let v = verifier(KeySource::Secret("${TEST_SECRET}"), &["HS256"]);
        let exp = unix_now() + 600;
        for (iss, aud, want) in [
            (json!(ISSUER), json!(["x", "petstore-api"]), None),
            (
                json!("https://id.example.test"),
                json!("petstore-api"),
                Some(JwtError::WrongIssuer),
            ),
            (
                json!(null),
                json!("petstore-api"),
                Some(JwtError::WrongIssuer),
            ),
            (
                json!(ISSUER),
                json!("Petstore-api"),
                Some(JwtError::WrongAudience),
            ),
            (json!(ISSUER), json!([]), Some(JwtError::WrongAudience)),
            (json!(ISSUER), json!(null), Some(JwtError::WrongAudience)),
        ] {
            let token = hs256(json!({"iss": iss, "aud": aud, "exp": exp}));
            assert_eq!(
                v.verify(&token).await.map(|_| ()).err(),
                want,
                "{iss} {aud}"
            );
        }
    }

    #[tokio::test]
    async fn hs256_uses_the_secret_as_written() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let v = verifier(KeySource::Secret("${JWT_SECRET}"), &["HS256"]);
        let alice = outcome(&v, "hs256-valid").await.expect("valid");
        assert_eq!(alice.consumer.as_deref(), Some("consumer-alice"));
        // RSA tokens are refused; the confusion token, HMAC'd with rsa-1's public PEM,
        // does not verify with the real secret.
        for (name, want) in [
            ("rs256-valid", JwtError::AlgorithmNotAllowed),
            (
                "alg-confusion-hs256-with-rsa-public-key",
                JwtError::BadSignature,
            ),
            ("alg-none", JwtError::AlgorithmNotAllowed),
        ] {
            assert_eq!(outcome(&v, name).await.map(|_| ()), Err(want), "{name}");
        }
    }

    #[tokio::test]
    async fn pem_keys_verify_ps256_es256_and_eddsa() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let rsa = verifier(
            KeySource::PemFile("${FIXTURES}/keys/rsa-1.pub.pem"),
            &["RS256", "PS256"],
        );
        assert!(outcome(&rsa, "ps256-valid").await.is_ok());
        assert!(outcome(&rsa, "rs256-valid").await.is_ok());
        for (name, want) in [
            // One configured key: the kid is not looked at, and rsa-2's signature fails.
            ("rs256-rotated-key", JwtError::BadSignature),
            (
                "alg-confusion-hs256-with-rsa-public-key",
                JwtError::AlgorithmNotAllowed,
            ),
            ("es256-valid", JwtError::AlgorithmNotAllowed),
            ("jku-injection", JwtError::ForbiddenHeader),
        ] {
            assert_eq!(outcome(&rsa, name).await.map(|_| ()), Err(want), "{name}");
        }
        let ec = verifier(
            KeySource::PemFile("${FIXTURES}/keys/ec-1.pub.pem"),
            &["ES256"],
        );
        assert!(outcome(&ec, "es256-valid").await.is_ok());
        let ed = verifier(
            KeySource::PemFile("${FIXTURES}/keys/ed-1.pub.pem"),
            &["EdDSA"],
        );
        assert!(outcome(&ed, "eddsa-valid").await.is_ok());
        assert_eq!(
            outcome(&ed, "es256-valid").await.map(|_| ()),
            Err(JwtError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn the_shared_algorithm_names_are_jsonwebtokens_with_the_same_families() {
        use jsonwebtoken::AlgorithmFamily;
        for name in jws::ALGORITHMS {
            let alg: Algorithm = name.parse().unwrap_or_else(|_| panic!("{name}"));
            let hmac = alg.family() == AlgorithmFamily::Hmac;
            assert_eq!(hmac, jws::is_hmac(name), "{name}");
        }
    }

    #[test]
    fn start_up_errors_name_the_scheme_and_problem_but_no_key_material() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let error = |keys: KeySource, algorithms: &'static [&'static str]| {
            JwtVerifier::new("bearerAuth", def(keys, algorithms), &env).expect_err("refused")
        };
        let cases = [
            (error(KeySource::Secret("${NOPE}"), &["HS256"]), "NOPE"),
            (
                error(KeySource::Secret("${JWT_SECRET}"), &["RS256"]),
                "needs a public key",
            ),
            (
                error(
                    KeySource::PemFile("${FIXTURES}/keys/rsa-1.pub.pem"),
                    &["RS256", "HS256"],
                ),
                "needs an HMAC secret",
            ),
            (
                error(
                    KeySource::PemFile("${FIXTURES}/keys/rsa-1.pub.pem"),
                    &["RS256", "ES256"],
                ),
                "holds an RSA key, which cannot verify ES256",
            ),
            (
                error(
                    KeySource::PemFile("${FIXTURES}/keys/ec-1.pub.pem"),
                    &["ES384"],
                ),
                "cannot verify ES384",
            ),
            (
                error(KeySource::PemFile("${FIXTURES}/keys/rsa-1.pem"), &["RS256"]),
                "private key",
            ),
            (
                error(KeySource::PemFile("/nonexistent/key.pem"), &["RS256"]),
                "/nonexistent/key.pem",
            ),
            (
                error(KeySource::JwksUrl("ftp://example.test/jwks"), &["RS256"]),
                "http or https",
            ),
            (
                error(KeySource::JwksUrl("http://127.0.0.1/jwks"), &["none"]),
                "`none`",
            ),
            (
                error(KeySource::JwksUrl("http://127.0.0.1/jwks"), &["rs256"]),
                "`rs256`",
            ),
            (
                error(KeySource::JwksUrl("http://127.0.0.1/jwks"), &[]),
                "no algorithms",
            ),
        ];
        let secret = env("JWT_SECRET").expect("secret");
        let private = fixture_text("keys/rsa-1.pem");
        let private_body = private.lines().nth(1).expect("PEM body");
        for (message, needle) in cases {
            assert!(
                message.starts_with("JWT scheme `bearerAuth`: "),
                "{message}"
            );
            assert!(message.contains(needle), "{message} lacks {needle}");
            assert!(
                !message.contains(&secret) && !message.contains(private_body),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let v: &'static JwtVerifier = Box::leak(Box::new(jwks_verifier(&idp).await));
        assert_eq!(idp.hits(), 1);
        after_refetch_window().await;
        *idp.delay.lock().expect("delay") = Duration::from_millis(300);
        let unknown = token("unknown-kid");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let unknown = unknown.clone();
            tasks.spawn(async move { v.verify(&unknown).await.map(|_| ()) });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.expect("task"), Err(JwtError::UnknownKey));
        }
        assert_eq!(idp.hits(), 2);
    }

    #[tokio::test]
    async fn keys_are_kept_when_the_provider_fails() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let v = jwks_verifier(&idp).await;
        for (answer, label) in [
            (Answer::Status(500), "500"),
            (
                Answer::Json("no-store", "<html>oops</html>".into()),
                "not JSON",
            ),
            (Answer::Json("no-store", r#"{"keys":[]}"#.into()), "no keys"),
            (
                Answer::Json("no-store", r#"{"keys":[{"kty":"oct","k":"AA"}]}"#.into()),
                "no usable keys",
            ),
        ] {
            idp.serve(answer);
            after_refetch_window().await;
            let hits = idp.hits();
            assert_eq!(
                outcome(&v, "unknown-kid").await.map(|_| ()),
                Err(JwtError::UnknownKey),
                "{label}"
            );
            assert_eq!(idp.hits(), hits + 1, "{label}: fetched again");
            // Tokens never seen before still verify with the keys held.
            v.cache.clear();
            assert!(outcome(&v, "rs256-bob-silver").await.is_ok(), "{label}");
            assert!(outcome(&v, "eddsa-valid").await.is_ok(), "{label}");
        }
    }

    #[tokio::test]
    async fn keys_never_fetched_are_unavailable() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        idp.serve(Answer::Status(503));
        let v = jwks_verifier(&idp).await;
        assert_eq!(
            outcome(&v, "rs256-valid").await.map(|_| ()),
            Err(JwtError::KeysUnavailable)
        );
        let v = verifier(KeySource::JwksUrl("http://127.0.0.1:1/jwks"), ASYMMETRIC);
        v.prefetch().await;
        assert_eq!(
            outcome(&v, "rs256-valid").await.map(|_| ()),
            Err(JwtError::KeysUnavailable)
        );
    }

    #[tokio::test]
    async fn discovery_leads_to_the_jwks() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let url = idp.url_static("/.well-known/openid-configuration");
        let v = verifier(KeySource::Discovery(url), ASYMMETRIC);
        v.prefetch().await;
        assert_eq!(idp.hits(), 1);
        assert!(outcome(&v, "rs256-valid").await.is_ok());
    }

    #[tokio::test]
    async fn keys_are_refreshed_when_due() {
        if crate::test_fixtures::jwt().is_none() {
            return;
        }
        let idp = IdP::start("jwks.json").await;
        let v = jwks_verifier(&idp).await;
        // max-age=30 is raised to the 60 s minimum.
        assert!((59..=60).contains(&remote(&v).refresh_in_secs()));
        idp.serve(Answer::Json(
            "max-age=7200",
            fixture_text("jwks-rotated.json"),
        ));
        remote(&v).make_refresh_due();
        // The token that notices is checked against the keys held, while the refresh runs.
        assert!(outcome(&v, "rs256-valid").await.is_ok());
        for _ in 0..50 {
            if idp.hits() == 2 && remote(&v).refresh_in_secs() > 60 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(idp.hits(), 2);
        assert!((7199..=7200).contains(&remote(&v).refresh_in_secs()));
        assert!(outcome(&v, "rs256-rotated-key").await.is_ok());
        assert_eq!(idp.hits(), 2, "the rotated key came with the refresh");
    }

    #[test]
    fn descriptions_are_distinct_fixed_texts() {
        let all = [
            JwtError::Malformed,
            JwtError::AlgorithmNotAllowed,
            JwtError::UnknownKey,
            JwtError::BadSignature,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::MissingExp,
            JwtError::WrongIssuer,
            JwtError::WrongAudience,
            JwtError::ForbiddenHeader,
            JwtError::TooLarge,
            JwtError::KeysUnavailable,
        ];
        let texts: std::collections::BTreeSet<_> = all.iter().map(JwtError::description).collect();
        assert_eq!(texts.len(), all.len());
    }

    #[test]
    fn verification_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let v = verifier(KeySource::Secret("${TEST_SECRET}"), &["HS256"]);
        send_sync(&v);
        send(v.verify(""));
    }
}
