//! One target of an upstream: the address its requests go to and its connection pool
//! (its weight lives in the upstream's balancer).

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::uri::{Scheme, Uri};

use super::pool::Pool;

/// Where a target's requests go, parsed from its URL once at start-up.
#[derive(Debug, Clone)]
pub struct Address {
    /// The URL's path without a trailing slash (`""` for none).
    pub base_path: String,
    /// The `Host` header sent upstream.
    pub host: HeaderValue,
    /// Scheme and authority, for the connector.
    pub connect_uri: Uri,
}

impl Address {
    /// Parses a resolved target URL.
    ///
    /// Fails, saying why, for a URL that does not parse, has no scheme or host, is neither
    /// `http` nor `https` (nor `https` without the `tls` feature), carries a query, or
    /// carries credentials (they would travel as its Host header).
    pub fn parse(url: &str) -> Result<Address, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!(
                "`{url}`: only http and https upstreams are supported"
            ));
        }
        #[cfg(not(feature = "tls"))]
        if scheme == Scheme::HTTPS {
            return Err(format!(
                "`{url}`: this gateway was built without the `tls` feature"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if uri.query().is_some() {
            return Err(format!("`{url}`: an upstream URL cannot carry a query"));
        }
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{url}`: credentials in an upstream URL would be sent as its Host header; remove them"
            ));
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("`{url}` has a host that cannot be a Host header"))?;
        let connect_uri = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| format!("`{url}`: {e}"))?;
        Ok(Address {
            base_path,
            host,
            connect_uri,
        })
    }
}

/// A resolved target, before its pool exists: what start-up checks.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Where it is.
    pub address: Address,
    /// Its weight (at least 1).
    pub weight: u32,
}

/// One target of an upstream, with its connection pool.
#[derive(Debug)]
pub struct Target {
    /// Where its requests go.
    pub address: Address,
    /// Its place in the upstream's list, where its health is kept.
    pub(crate) index: usize,
    /// Its connections, and its requests in flight.
    pub(crate) pool: Arc<Pool>,
}

impl Target {
    /// Target number `index` of its upstream, at `address`, whose idle connections are
    /// kept for `idle_timeout`.
    pub(crate) fn new(address: Address, idle_timeout: Duration, index: usize) -> Target {
        Target {
            address,
            index,
            pool: Arc::new(Pool::new(idle_timeout)),
        }
    }
}
