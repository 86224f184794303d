//! Phase 3: cross-origin resource sharing, as `x-gateway.cors` configures it.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by
//! the gateway and never reaches an upstream or the authentication phase (browsers send
//! no credentials on a preflight). Every other response to an allowed origin, the
//! gateway's own errors included, carries `Access-Control-Allow-Origin`, so scripts can
//! read a 401 or a 429 as well as a 200.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderValue, ORIGIN, VARY,
};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::body::Body;
use crate::gateway::{CorsDef, Gateway, KeyLocation, RouteError, SchemeKind};
use crate::problem::Problem;

/// CORS settings with their header values prepared.
#[derive(Debug)]
pub struct Cors {
    def: &'static CorsDef,
    any_origin: bool,
    /// Request headers a preflight may ask for, lower case.
    allowed_headers: Vec<String>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

impl Cors {
    /// Prepares `G`'s CORS settings, if it has any. Without configured `headers`, a
    /// preflight may ask for `content-type`, `authorization` and the headers of `G`'s API
    /// key schemes.
    pub fn of<G: Gateway>() -> Option<Cors> {
        let def = G::CORS.as_ref()?;
        let mut allowed_headers: Vec<String> =
            def.headers.iter().map(|h| (*h).to_owned()).collect();
        if allowed_headers.is_empty() {
            allowed_headers.push("content-type".into());
            allowed_headers.push("authorization".into());
            if let Some(h) = G::VERSION_HEADER {
                allowed_headers.push(h.to_owned());
            }
            for s in G::SCHEMES {
                if let SchemeKind::ApiKey(k) = &s.kind
                    && k.location == KeyLocation::Header
                {
                    allowed_headers.push(k.name.to_owned());
                }
            }
        }
        Some(Cors {
            def,
            any_origin: def.origins.contains(&"*"),
            allowed_headers,
            expose: (!def.expose.is_empty())
                .then(|| HeaderValue::from_str(&def.expose.join(", ")).ok())
                .flatten(),
            max_age: def.max_age.map(HeaderValue::from),
        })
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.any_origin
            || self
                .def
                .origins
                .iter()
                .any(|o| o.as_bytes() == origin.as_bytes())
    }

    fn allow_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        if self.any_origin && !self.def.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if !headers.get_all(VARY).iter().any(|v| v == "origin") {
                headers.append(VARY, HeaderValue::from_static("origin"));
            }
        }
        if self.def.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// Answers a preflight request, or `None` when `method`/`headers` are not one.
    pub fn preflight<G: Gateway>(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<Result<Response<Body>, Problem>> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let requested = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        Some(self.answer::<G>(origin, requested, path, headers))
    }

    fn answer<G: Gateway>(
        &self,
        origin: &HeaderValue,
        requested: &HeaderValue,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, Problem> {
        if !self.allows(origin) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "cross-origin requests from this origin are not allowed",
            ));
        }
        let requested = Method::from_bytes(requested.as_bytes()).map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "Access-Control-Request-Method is not a method",
            )
        })?;
        let path_allows = match G::preflight_plan(&requested, path) {
            Ok(_) | Err(RouteError::BadParam { .. } | RouteError::UnknownVersion { .. }) => true,
            Err(RouteError::MethodNotAllowed(_)) => false,
            Err(RouteError::NotFound) => return Err(Problem::not_found()),
        };
        let configured = self.def.methods.is_empty()
            || self
                .def
                .methods
                .iter()
                .any(|m| m.as_bytes() == requested.as_str().as_bytes());
        if !path_allows || !configured {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("cross-origin {requested} requests are not allowed on this path"),
            ));
        }
        let mut asked = Vec::new();
        for v in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(s) = v.to_str() else {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "Access-Control-Request-Headers is malformed",
                ));
            };
            asked.extend(
                s.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty()),
            );
        }
        if let Some(h) = asked.iter().find(|h| !self.allowed_headers.contains(h)) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("cross-origin requests may not send the header `{h}`"),
            ));
        }
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        self.allow_origin(origin, h);
        h.append(
            VARY,
            HeaderValue::from_static(
                "access-control-request-method, access-control-request-headers",
            ),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_str(requested.as_str()).unwrap_or(HeaderValue::from_static("GET")),
        );
        if !asked.is_empty()
            && let Ok(v) = HeaderValue::from_str(&asked.join(", "))
        {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(age) = &self.max_age {
            h.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        Ok(resp)
    }

    /// Adds the CORS headers to the response of an actual request (and to a preflight's
    /// answer, which has them already). The gateway's policy is the only one: the headers
    /// that grant a script access, if an upstream sent them, are removed first, whatever
    /// the origin.
    pub fn decorate(&self, origin: Option<&HeaderValue>, resp: &mut Response<Body>) {
        let h = resp.headers_mut();
        for name in [
            &ACCESS_CONTROL_ALLOW_ORIGIN,
            &ACCESS_CONTROL_ALLOW_CREDENTIALS,
            &ACCESS_CONTROL_EXPOSE_HEADERS,
        ] {
            h.remove(name);
        }
        let Some(origin) = origin.filter(|o| self.allows(o)) else {
            return;
        };
        self.allow_origin(origin, h);
        if let Some(expose) = &self.expose {
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}
