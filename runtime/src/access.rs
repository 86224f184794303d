//! Phase 5: authenticate and authorize.
//!
//! An operation's `security` lists alternatives; the first alternative whose schemes all
//! accept the request wins (OpenAPI: OR across the list, AND within one requirement). When
//! none does, the answer explains the most useful failure: a missing scope (403) before an
//! unavailable key store (503) before a bad credential (401 `invalid_token`) before no
//! credential at all (401).
//!
//! Nothing a client sends as a credential, and no claim value, is ever logged or echoed.

use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};

use crate::auth::jwt::{JwtError, JwtVerifier, Verified};
use crate::gateway::{Gateway, KeyLocation, KeySource, OperationDef, SchemeKind};
use crate::keys::{Consumer, KeyStore, KeyStoreError};
use crate::problem::{Kind, Problem};

/// Who a request was authenticated as.
#[derive(Debug, Default, Clone)]
pub struct Principal {
    /// The consumer's name: the JWT's consumer claim, or the API key's consumer.
    pub consumer: Option<Arc<str>>,
    /// The consumer's plan.
    pub plan: Option<Arc<str>>,
    /// The verified token, when a JWT scheme accepted the request.
    pub token: Option<Arc<Verified>>,
    /// The API key's record, when a key scheme accepted the request.
    pub key: Option<Arc<Consumer>>,
}

/// Everything the authentication phase needs, built once at start-up.
#[derive(Debug)]
pub struct Access {
    realm: &'static str,
    schemes: Vec<Checker>,
    keys: Option<Arc<KeyStore>>,
    /// Headers that carry forwarded claims: removed from every client request.
    forwarded: Vec<HeaderName>,
    /// Each scheme's name, by index.
    names: Vec<&'static str>,
    /// Query parameters API keys travel in: their values are never logged.
    secret_params: Vec<&'static str>,
}

#[derive(Debug)]
enum Checker {
    Jwt(Box<JwtVerifier>),
    /// A JWT scheme whose key source resolved to the empty string (`${JWKS_URL:-}` with
    /// the variable unset): every token is rejected.
    NoKeys,
    ApiKey {
        location: KeyLocation,
        name: &'static str,
        header: Option<HeaderName>,
    },
    /// A verified TLS client certificate.
    MutualTls,
}

/// Why an alternative failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// No credential for a scheme.
    Missing,
    /// A credential was sent and is not valid.
    Invalid(&'static str),
    /// The key store could not be asked.
    StoreUnavailable,
    /// A JWT scheme has no signing keys yet: its identity provider has not answered since
    /// the gateway started. Not the client's fault: its token may be good.
    KeysUnavailable,
    /// Authenticated, but without these scopes.
    Scope(Vec<&'static str>),
}

impl Failure {
    /// How useful the failure is to report, when several alternatives failed.
    fn rank(&self) -> u8 {
        match self {
            Failure::Missing => 0,
            Failure::Invalid(_) => 1,
            Failure::StoreUnavailable | Failure::KeysUnavailable => 2,
            Failure::Scope(_) => 3,
        }
    }
}

impl Access {
    /// Builds the checkers of `G`'s schemes; `lookup` resolves `${VAR}` references. Every
    /// problem is returned, not only the first.
    pub async fn build<G: Gateway>(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Access, Vec<String>> {
        let mut errors = Vec::new();
        let mut schemes = Vec::new();
        let mut forwarded = Vec::new();
        let mut needs_keys = false;
        for def in G::SCHEMES {
            match &def.kind {
                SchemeKind::Jwt(jwt) => {
                    for (_, header) in jwt.forward_claims {
                        if let Ok(h) = HeaderName::from_bytes(header.as_bytes())
                            && !forwarded.contains(&h)
                        {
                            forwarded.push(h);
                        }
                    }
                    let source = match &jwt.keys {
                        KeySource::JwksUrl(s)
                        | KeySource::Discovery(s)
                        | KeySource::PemFile(s)
                        | KeySource::Secret(s) => s,
                    };
                    match crate::env::resolve_with(source, lookup) {
                        Err(missing) => {
                            let names: Vec<_> = missing.into_iter().collect();
                            errors.push(format!(
                                "scheme `{}`: missing environment variables: {}",
                                def.name,
                                names.join(", ")
                            ));
                        }
                        Ok(s) if s.is_empty() => {
                            tracing::warn!(
                                scheme = def.name,
                                "no verification keys configured: every token is rejected"
                            );
                            schemes.push(Checker::NoKeys);
                        }
                        Ok(_) => match JwtVerifier::new(def.name, jwt, lookup) {
                            Ok(v) => schemes.push(Checker::Jwt(Box::new(v))),
                            Err(e) => errors.push(e),
                        },
                    }
                }
                SchemeKind::MutualTls => schemes.push(Checker::MutualTls),
                SchemeKind::ApiKey(key) => {
                    needs_keys = true;
                    let header = match key.location {
                        KeyLocation::Header => match HeaderName::from_bytes(key.name.as_bytes()) {
                            Ok(h) => Some(h),
                            Err(_) => {
                                errors.push(format!(
                                    "scheme `{}`: `{}` is not a header name",
                                    def.name, key.name
                                ));
                                None
                            }
                        },
                        _ => None,
                    };
                    schemes.push(Checker::ApiKey {
                        location: key.location,
                        name: key.name,
                        header,
                    });
                }
            }
        }
        let keys = match (&G::CONSUMERS, needs_keys) {
            (Some(def), _) => match KeyStore::open(def, lookup).await {
                Ok(store) => {
                    let store = Arc::new(store);
                    store.watch_sighup();
                    Some(store)
                }
                Err(e) => {
                    errors.push(format!("key store: {e}"));
                    None
                }
            },
            (None, true) => {
                errors.push("API key schemes are used but no key store is configured".into());
                None
            }
            (None, false) => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        for s in &schemes {
            if let Checker::Jwt(v) = s {
                v.prefetch().await;
                let unusable = v.unusable_algorithms();
                if !unusable.is_empty() {
                    tracing::warn!(
                        scheme = v.scheme(),
                        algorithms = unusable.join(", "),
                        "no key of the scheme can verify these accepted algorithms: tokens signed with them are refused"
                    );
                }
            }
        }
        Ok(Access {
            realm: G::NAME,
            schemes,
            keys,
            forwarded,
            names: G::SCHEMES.iter().map(|s| s.name).collect(),
            secret_params: G::SCHEMES
                .iter()
                .filter_map(|s| match &s.kind {
                    SchemeKind::ApiKey(k) if k.location == KeyLocation::Query => Some(k.name),
                    _ => None,
                })
                .collect(),
        })
    }

    /// The query parameters API keys travel in, whose values the access log redacts.
    pub fn secret_params(&self) -> &[&'static str] {
        &self.secret_params
    }

    /// What readiness reports of authentication: the key store answering, and every JWKS
    /// fetched at least once. Each entry is a check's name and `Ok` or what is wrong.
    pub async fn readiness(&self) -> Vec<(&'static str, Result<(), String>)> {
        let mut checks = Vec::new();
        if let Some(keys) = &self.keys {
            checks.push(("key_store", keys.ready().await));
        }
        let not_loaded: Vec<&str> = self
            .schemes
            .iter()
            .filter_map(|s| match s {
                Checker::Jwt(v) if !v.keys_loaded() => Some(v.scheme()),
                _ => None,
            })
            .collect();
        if self.schemes.iter().any(|s| matches!(s, Checker::Jwt(_))) {
            checks.push((
                "jwks",
                if not_loaded.is_empty() {
                    Ok(())
                } else {
                    Err(format!("not loaded: scheme {}", not_loaded.join(", ")))
                },
            ));
        }
        checks
    }

    /// Removes client-sent copies of the headers forwarded claims travel in.
    pub fn strip_forwarded(&self, headers: &mut HeaderMap) {
        for h in &self.forwarded {
            headers.remove(h);
        }
    }

    /// The headers forwarded claims travel in (lower case): what an aggregate passes on to
    /// its parts besides the gateway's own headers.
    pub fn forwarded_headers(&self) -> &[HeaderName] {
        &self.forwarded
    }

    /// Checks the request against `op`'s requirements. On success, the headers of the
    /// forwarded claims are set on `headers` and the principal is returned (`None` for a
    /// public operation).
    pub async fn check(
        &self,
        op: &OperationDef,
        headers: &mut HeaderMap,
        query: Option<&str>,
        client_cert: Option<&Arc<str>>,
    ) -> Result<Option<Principal>, Problem> {
        if op.security.is_empty() {
            return Ok(None);
        }
        let mut worst: Option<(Failure, usize)> = None;
        // Each scheme's own failure, for its challenge (a scheme in several alternatives
        // fails the same way in each).
        let mut invalid: Vec<(usize, &'static str)> = Vec::new();
        for alternative in op.security {
            let mut principal = Principal::default();
            let mut failed = None;
            for req in *alternative {
                let outcome = match &self.schemes[req.scheme] {
                    Checker::Jwt(v) => self.jwt(v, headers, req.scopes, &mut principal).await,
                    Checker::NoKeys => match headers.get(AUTHORIZATION).and_then(bearer) {
                        Some(_) => Err(Failure::Invalid("no verification keys are configured")),
                        None => Err(Failure::Missing),
                    },
                    Checker::ApiKey {
                        location,
                        name,
                        header,
                    } => {
                        let presented = match location {
                            KeyLocation::Header => header
                                .as_ref()
                                .and_then(|h| single(headers, h))
                                .and_then(|v| v.to_str().ok()),
                            KeyLocation::Query => query.and_then(|q| query_value(q, name)),
                            KeyLocation::Cookie => cookie_value(headers, name),
                        };
                        self.api_key(presented, &mut principal).await
                    }
                    Checker::MutualTls => match client_cert {
                        Some(who) => {
                            principal.consumer = Some(who.clone());
                            Ok(())
                        }
                        None => Err(Failure::Missing),
                    },
                };
                if let Err(f) = outcome {
                    failed = Some((f, req.scheme));
                    break;
                }
            }
            match failed {
                None => {
                    if let Some(token) = &principal.token {
                        for (name, value) in token.forward.iter() {
                            headers.insert(name.clone(), value.clone());
                        }
                    }
                    return Ok(Some(principal));
                }
                Some(f) => {
                    if let (Failure::Invalid(why), scheme) = &f
                        && !invalid.iter().any(|(s, _)| s == scheme)
                    {
                        invalid.push((*scheme, why));
                    }
                    if worst.as_ref().is_none_or(|w| f.0.rank() > w.0.rank()) {
                        worst = Some(f);
                    }
                }
            }
        }
        let (failure, scheme) = worst.unwrap_or((Failure::Missing, 0));
        Err(self.problem(failure, scheme, &invalid, op))
    }

    async fn jwt(
        &self,
        verifier: &JwtVerifier,
        headers: &HeaderMap,
        scopes: &'static [&'static str],
        principal: &mut Principal,
    ) -> Result<(), Failure> {
        let Some(value) = single(headers, &AUTHORIZATION) else {
            return Err(if headers.contains_key(AUTHORIZATION) {
                Failure::Invalid("only one Authorization header may be sent")
            } else {
                Failure::Missing
            });
        };
        let token = bearer(value).ok_or(Failure::Missing)?;
        let verified = verifier
            .verify(token)
            .await
            .map_err(|e: JwtError| match e {
                JwtError::KeysUnavailable => Failure::KeysUnavailable,
                e => Failure::Invalid(e.description()),
            })?;
        let missing: Vec<&'static str> = scopes
            .iter()
            .copied()
            .filter(|s| !verified.has_scopes(&[s]))
            .collect();
        if !missing.is_empty() {
            return Err(Failure::Scope(missing));
        }
        if principal.consumer.is_none() {
            principal.consumer = verified.consumer.as_deref().map(Arc::from);
            principal.plan = verified.plan.as_deref().map(Arc::from);
        }
        principal.token = Some(verified);
        Ok(())
    }

    async fn api_key(
        &self,
        presented: Option<&str>,
        principal: &mut Principal,
    ) -> Result<(), Failure> {
        let presented = presented
            .filter(|k| !k.is_empty())
            .ok_or(Failure::Missing)?;
        let Some(store) = &self.keys else {
            return Err(Failure::StoreUnavailable);
        };
        match store.check(presented).await {
            Ok(Some(c)) => {
                if principal.consumer.is_none() {
                    principal.consumer = Some(Arc::from(&*c.consumer));
                    principal.plan = c.plan.as_deref().map(Arc::from);
                }
                principal.key = Some(c);
                Ok(())
            }
            Ok(None) => Err(Failure::Invalid("the API key is not valid")),
            Err(KeyStoreError::Unavailable) => Err(Failure::StoreUnavailable),
        }
    }

    /// The problem for `failure` of `scheme`, the one reported; `invalid` holds the
    /// description of every scheme whose credential was sent and not valid, so that each
    /// scheme's challenge says what went wrong with it (RFC 6750 section 3).
    fn problem(
        &self,
        failure: Failure,
        scheme: usize,
        invalid: &[(usize, &'static str)],
        op: &OperationDef,
    ) -> Problem {
        let realm = self.realm;
        // One challenge per scheme the operation accepts, so a client learns every way in.
        let mut challenges: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for alternative in op.security {
            for req in *alternative {
                if seen.contains(&req.scheme) {
                    continue;
                }
                seen.push(req.scheme);
                let params = match invalid.iter().find(|(s, _)| *s == req.scheme) {
                    Some((_, why)) => {
                        format!(", error=\"invalid_token\", error_description=\"{why}\"")
                    }
                    None => String::new(),
                };
                match &self.schemes[req.scheme] {
                    Checker::Jwt(_) | Checker::NoKeys => {
                        challenges.push(format!("Bearer realm=\"{realm}\"{params}"));
                    }
                    // No HTTP challenge asks for a certificate: the TLS handshake does.
                    Checker::MutualTls => {}
                    Checker::ApiKey { location, name, .. } => {
                        let place = match location {
                            KeyLocation::Header => "header",
                            KeyLocation::Query => "query",
                            KeyLocation::Cookie => "cookie",
                        };
                        challenges.push(format!(
                            "ApiKey realm=\"{realm}\", in=\"{place}\", name=\"{name}\""
                        ));
                    }
                }
            }
        }
        let with_challenges = |mut p: Problem| {
            for c in &challenges {
                if let Ok(v) = HeaderValue::from_str(c) {
                    p = p.with_header(WWW_AUTHENTICATE, v);
                }
            }
            p
        };
        let name = self.names.get(scheme).copied().unwrap_or("");
        let (metric_reason, kind) = match &failure {
            Failure::Missing => ("missing", Kind::AuthMissing),
            Failure::Invalid(_) => ("invalid", Kind::AuthInvalid),
            Failure::StoreUnavailable => ("store_unavailable", Kind::KeyStoreUnavailable),
            Failure::KeysUnavailable => ("keys_unavailable", Kind::KeysUnavailable),
            Failure::Scope(_) => ("insufficient_scope", Kind::AuthScope),
        };
        crate::observe::metrics::auth_failure(name, metric_reason);
        // The operator's reason names the scheme and what failed; never the credential.
        let reason = match &failure {
            Failure::Missing => format!("scheme {name}: no credential"),
            Failure::Invalid(why) => format!("scheme {name}: {why}"),
            Failure::StoreUnavailable => format!("scheme {name}: the key store did not answer"),
            Failure::KeysUnavailable => {
                format!(
                    "scheme {name}: no signing keys were ever loaded (the key source did not answer)"
                )
            }
            Failure::Scope(missing) => {
                format!("scheme {name}: missing scope {}", missing.join(" "))
            }
        };
        let problem = match failure {
            Failure::Missing => with_challenges(Problem::new(
                StatusCode::UNAUTHORIZED,
                "this operation needs credentials",
            )),
            Failure::Invalid(why) => with_challenges(Problem::new(
                StatusCode::UNAUTHORIZED,
                format!("the credentials are not valid: {why}"),
            )),
            // RFC 6750 clients throw a token away on 401: a token the gateway cannot check
            // yet is a 503, so the client keeps it and tries again.
            Failure::StoreUnavailable | Failure::KeysUnavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "credentials cannot be checked right now; try again later",
            )
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1")),
            Failure::Scope(missing) => {
                let scope = missing.join(" ");
                let mut p = Problem::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this operation needs the scope{} {scope}",
                        if missing.len() == 1 { "" } else { "s" }
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\""
                )) {
                    p = p.with_header(WWW_AUTHENTICATE, v);
                }
                p
            }
        };
        problem.because(kind, reason)
    }
}

/// The value of `name` when the request carries exactly one.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    all.next().is_none().then_some(first)
}

/// The token of `Authorization: Bearer <token>` (RFC 6750: the scheme is case-insensitive).
fn bearer(value: &HeaderValue) -> Option<&str> {
    // What `to_str` accepts, less control characters, which no token can hold: printable
    // ASCII checked a word at a time rather than a byte at a time.
    let s = std::str::from_utf8(value.as_bytes())
        .ok()
        .filter(|s| s.is_ascii())?;
    let (scheme, token) = s.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The raw value of query parameter `name` (keys are URL-safe, so no decoding is needed;
/// a percent-encoded key is simply not found).
fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    let mut found = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            if found.is_some() {
                return None;
            }
            found = Some(v);
        }
    }
    found
}

/// The value of cookie `name`.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(s) = header.to_str() else { continue };
        for pair in s.split(';') {
            let (k, v) = pair.trim().split_once('=').unwrap_or((pair, ""));
            if k == name {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim_matches('"'));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer(&v("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&v("bearer abc")), Some("abc"));
        assert_eq!(bearer(&v("Bearer ")), None);
        assert_eq!(bearer(&v("Basic abc")), None);
        assert_eq!(bearer(&v("Bearerabc")), None);
    }

    #[test]
    fn a_repeated_key_is_no_key() {
        assert_eq!(query_value("a=1&key=k&b=2", "key"), Some("k"));
        assert_eq!(query_value("key=k&key=j", "key"), None);
        assert_eq!(query_value("keys=k", "key"), None);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; key=k"));
        assert_eq!(cookie_value(&h, "key"), Some("k"));
        h.append(COOKIE, HeaderValue::from_static("key=j"));
        assert_eq!(cookie_value(&h, "key"), None);
    }

    #[test]
    fn failures_rank_scope_over_store_over_invalid_over_missing() {
        assert!(Failure::Scope(vec![]).rank() > Failure::StoreUnavailable.rank());
        assert!(Failure::StoreUnavailable.rank() > Failure::Invalid("x").rank());
        assert!(Failure::Invalid("x").rank() > Failure::Missing.rank());
    }
}
