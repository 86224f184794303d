//! What a generated gateway hands to the runtime: its operations, its upstreams, and the
//! compiled router.
//!
//! Everything here is `'static` data built by the compiler; the runtime never searches a
//! route table. The router is a function generated as nested `match` code, exposed as
//! [`Gateway::plan`].

use std::time::Duration;

use http::header::{ALLOW, HeaderValue};
use http::{Method, StatusCode};

use crate::aggregate::AggregateDef;
use crate::param::UpstreamPath;
use crate::problem::Problem;

/// An upstream service as declared in `x-gateway.upstreams`.
///
/// Generated code writes the fields it sets and fills the rest with
/// `..UpstreamDef::DEFAULT`, as for [`OperationDef`].
#[derive(Debug)]
pub struct UpstreamDef {
    /// The name operations refer to.
    pub name: &'static str,
    /// The URL, possibly with `${VAR}` references resolved at start-up: one target of
    /// weight 1. `None` with no `targets`, or a value that resolves to the empty string,
    /// serves the spec's examples instead (mock mode).
    pub url: Option<&'static str>,
    /// The targets (`x-gateway.upstreams.NAME.targets`), when the spec lists them instead
    /// of one `url`; `url` is then `None`. A target whose URL resolves to the empty string
    /// is left out; when all are, the upstream serves the spec's examples.
    pub targets: &'static [TargetDef],
    /// How a request chooses among several targets; with one target there is no choice.
    pub balance: BalanceDef,
    /// Passive outlier ejection (`outlier`): on by default for upstreams with several
    /// targets; an upstream with one target never ejects it.
    pub outlier: OutlierDef,
    /// Active health checks (`health`); `None` (the default) probes nothing.
    pub health: Option<HealthDef>,
    /// Retries (`retries`); `None` (the default) sends every request once.
    pub retries: Option<RetryDef>,
    /// The circuit breaker (`breaker`); `None` (the default) limits nothing.
    pub breaker: Option<BreakerDef>,
    /// `tls`: the CA and client certificate for HTTPS targets; `None`: the public roots
    /// and no client certificate.
    pub tls: Option<UpstreamTlsDef>,
}

/// An upstream's `tls`: PEM files, paths with `${VAR}` references resolved at start-up.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTlsDef {
    /// CA certificates the targets' certificates are verified against, instead of the
    /// public roots.
    pub ca: Option<&'static str>,
    /// The gateway's client certificate chain, for mutual TLS (with `key`).
    pub cert: Option<&'static str>,
    /// The client certificate's private key.
    pub key: Option<&'static str>,
}

impl UpstreamDef {
    /// The value of every setting a generated upstream does not write.
    pub const DEFAULT: UpstreamDef = UpstreamDef {
        name: "",
        url: None,
        targets: &[],
        balance: BalanceDef::RoundRobin,
        outlier: OutlierDef::DEFAULT,
        health: None,
        retries: None,
        breaker: None,
        tls: None,
    };
}

/// Passive outlier ejection: a target that fails `consecutive_failures` times in a row (a
/// 5xx answer, no connection, a reset before the head, no head in time, an invalid
/// answer) is left out of balancing for `base_ejection` times the number of times it was
/// ejected without answering well in between, at most `max_ejection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDef {
    /// Failures in a row that eject a target; 0 turns ejection off.
    pub consecutive_failures: u32,
    /// How long a first ejection lasts.
    pub base_ejection: Duration,
    /// The longest an ejection lasts, however often the target was ejected.
    pub max_ejection: Duration,
    /// At most this share of the targets (in percent) is ejected at once.
    pub max_ejected_percent: u8,
    /// When fewer than this share of the targets (in percent) is healthy, every target is
    /// used, healthy or not.
    pub panic_threshold: u8,
}

impl OutlierDef {
    /// 5 failures in a row, 30 s growing to at most 300 s, at most half the targets out,
    /// every target used when fewer than half are healthy.
    pub const DEFAULT: OutlierDef = OutlierDef {
        consecutive_failures: 5,
        base_ejection: Duration::from_secs(30),
        max_ejection: Duration::from_secs(300),
        max_ejected_percent: 50,
        panic_threshold: 50,
    };
}

/// Active health checks: every `interval`, a `GET path` to each target; `unhealthy`
/// failures in a row (no answer within `timeout`, or a status outside 200-399) mark it
/// unhealthy, `healthy` successes in a row healthy again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthDef {
    /// The path probed, under the target's base path.
    pub path: &'static str,
    /// Time between two probes of a target.
    pub interval: Duration,
    /// How long a probe waits for its answer.
    pub timeout: Duration,
    /// Successes in a row that make an unhealthy target healthy.
    pub healthy: u32,
    /// Failures in a row that make a healthy target unhealthy.
    pub unhealthy: u32,
}

impl HealthDef {
    /// `/healthz` every 5 s, 1 s to answer, 2 successes and 3 failures to flip.
    pub const DEFAULT: HealthDef = HealthDef {
        path: "/healthz",
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        healthy: 2,
        unhealthy: 3,
    };
}

/// Retries of requests that are safe to send again (an idempotent method, or an operation
/// marked `retryable`, and no request body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDef {
    /// Retries after the first try, at most.
    pub attempts: u32,
    /// Retry when no connection could be made.
    pub on_connect: bool,
    /// Retry when the connection was closed or reset before the response head.
    pub on_reset: bool,
    /// Retry when a try got no head within `per_try_timeout`.
    pub on_timeout: bool,
    /// Retry on these response statuses (each 500 to 599).
    pub on_status: &'static [u16],
    /// The first retry waits about this long; each further one twice as long as the one
    /// before, at most ten times this, with jitter.
    pub backoff: Duration,
    /// How long one try waits for its head; `None`: what is left of the operation's
    /// timeout, which always bounds every try together.
    pub per_try_timeout: Option<Duration>,
    /// Retries allowed, in percent of the requests, over the last 10 seconds.
    pub budget_percent: u8,
    /// Retries allowed per second on top of the budget, so that little traffic can retry.
    pub min_per_second: u32,
}

impl RetryDef {
    /// 2 retries on connect failures, resets, 502, 503 and 504; 25 ms backoff; no per-try
    /// timeout; a budget of 20% plus 3 a second.
    pub const DEFAULT: RetryDef = RetryDef {
        attempts: 2,
        on_connect: true,
        on_reset: true,
        on_timeout: false,
        on_status: &[502, 503, 504],
        backoff: Duration::from_millis(25),
        per_try_timeout: None,
        budget_percent: 20,
        min_per_second: 3,
    };
}

/// The circuit breaker: limits on what an upstream has in hand at once; a request over a
/// limit is answered 503 at once, with `Retry-After: 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerDef {
    /// Requests in flight to the upstream (from the call until the response body is done).
    pub max_requests: u32,
    /// Requests waiting for a new connection to the upstream.
    pub max_pending: u32,
    /// Connections open to the upstream, over all its targets: a request that would need
    /// one more is refused rather than opening it.
    pub max_connections: u32,
}

impl BreakerDef {
    /// No limit (a breaker with only some limits written has the rest at this).
    pub const DEFAULT: BreakerDef = BreakerDef {
        max_requests: u32::MAX,
        max_pending: u32::MAX,
        max_connections: u32::MAX,
    };
}

/// One target of an upstream: a URL and its share of the requests.
#[derive(Debug)]
pub struct TargetDef {
    /// The URL; may hold `${VAR}` references, resolved at start-up.
    pub url: &'static str,
    /// Its weight (at least 1): a target of weight 2 gets twice the requests of one of
    /// weight 1.
    pub weight: u32,
}

/// How an upstream with several targets chooses one (`balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceDef {
    /// Weighted round robin, exact: in every run of as many requests as the weights add up
    /// to (divided by their greatest common divisor), each target gets its weight's share.
    RoundRobin,
    /// The less loaded of two targets drawn at random (requests in flight per unit of
    /// weight).
    LeastRequest,
    /// Consistent hashing on a key of the request (weighted rendezvous hashing): the same
    /// key reaches the same target while that target is there. Requests without the key
    /// go round robin.
    Hash(HashKeyDef),
}

/// What a `balance: hash` upstream hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKeyDef {
    /// The value of a request header (lower-case name); several lines are hashed as one.
    Header(&'static str),
    /// The value of a claim of the verified JWT.
    Claim(&'static str),
    /// The authenticated consumer.
    Consumer,
    /// A path parameter of the operation, as the client sent it (still percent-encoded).
    PathParam(&'static str),
}

/// A canned response taken from the spec's examples, served when an upstream has no URL.
#[derive(Debug)]
pub struct MockResponse {
    /// Response status.
    pub status: u16,
    /// Content-Type of the example.
    pub content_type: &'static str,
    /// The example, serialised.
    pub body: &'static str,
}

/// The version of the interface between generated code and this runtime: the shape of
/// [`Gateway`] and the `*Def` types. Generated code asserts at compile time that it equals
/// the version it was generated for, so a mismatch is one clear compile error rather than
/// many confusing ones. Adding a field with a default to [`OperationDef::DEFAULT`] does not
/// change it; removing or retyping one does.
pub const INTERFACE: u32 = gatewayc_vocab::INTERFACE;

/// One operation's settings, as constants.
///
/// Generated code writes the fields it sets and fills the rest with
/// `..OperationDef::DEFAULT`, so a runtime that gains a setting (with its default here)
/// still builds crates generated before it.
#[derive(Debug)]
pub struct OperationDef {
    /// The operationId (or the generated name when the spec has none).
    pub id: &'static str,
    /// Its index in [`Gateway::OPERATIONS`].
    pub index: usize,
    /// The HTTP method as written in the spec, upper case.
    pub method: &'static str,
    /// The path template as written in the spec.
    pub path: &'static str,
    /// Index into [`Gateway::UPSTREAMS`].
    pub upstream: usize,
    /// Deadline for the upstream's response head.
    pub timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body: u64,
    /// The example response used in mock mode, when the spec has one.
    pub mock: Option<MockResponse>,
    /// Who may call it: the alternatives of its OpenAPI `security` (OR-ed); each lists the
    /// schemes that must all pass (AND-ed). Empty: the operation is public.
    pub security: &'static [&'static [SchemeUse]],
    /// Route-level rate limits (`x-gateway.rate_limit`), applied on top of the plan's.
    pub rate_limits: &'static [RouteLimitDef],
    /// Set when the operation (or its version) is deprecated or has a sunset date.
    pub deprecation: Option<DeprecationDef>,
    /// `x-gateway.aggregate`: answered by combining several upstream calls instead of
    /// forwarding. For such an operation the plan's path holds the operation's path
    /// parameters, each as `/` and the value percent-encoded as one segment, in order.
    pub aggregate: Option<&'static AggregateDef>,
    /// Header, query and body edits and status mapping (`x-gateway.transform`); `None`
    /// costs nothing on the request path.
    pub transform: Option<&'static crate::transform::TransformDef>,
    /// `x-gateway.health_check`: a route load balancers probe, never counted by limits.
    pub health_check: bool,
    /// `x-gateway.retryable`: the upstream's retries apply even though the method is not
    /// idempotent (a request with a body is still never retried).
    pub retryable: bool,
    /// `x-gateway.cache`: GET answers kept in the gateway's shared cache (only on GET
    /// operations).
    pub cache: Option<&'static CacheDef>,
    /// What its requests are checked against (`x-gateway.validate`); `None`: nothing.
    pub validate: Option<&'static crate::validate::request::ValidateDef>,
}

/// An operation's response cache settings (`x-gateway.cache`; runtime/src/cache.rs).
#[derive(Debug)]
pub struct CacheDef {
    /// Freshness of an answer that gives none of its own (`s-maxage`, `max-age`); `None`:
    /// such answers are not stored.
    pub ttl: Option<Duration>,
    /// How long past its freshness a stored answer may stand in for a failing upstream.
    pub stale_if_error: Option<Duration>,
    /// How long past its freshness a stored answer is sent while one request refreshes it.
    pub stale_while_revalidate: Option<Duration>,
    /// Request headers (lower case) whose values tell answers apart.
    pub vary: &'static [&'static str],
}

impl CacheDef {
    /// The value of every setting generated code does not write.
    pub const DEFAULT: CacheDef = CacheDef {
        ttl: None,
        stale_if_error: None,
        stale_while_revalidate: None,
        vary: &[],
    };
}

impl OperationDef {
    /// The value of every setting a generated operation does not write.
    pub const DEFAULT: OperationDef = OperationDef {
        id: "",
        index: 0,
        method: "GET",
        path: "/",
        upstream: 0,
        timeout: Duration::from_secs(30),
        max_body: 1024 * 1024,
        mock: None,
        security: &[],
        rate_limits: &[],
        deprecation: None,
        aggregate: None,
        transform: None,
        health_check: false,
        retryable: false,
        cache: None,
        validate: None,
    };
}

/// What the responses of a deprecated operation say about it.
#[derive(Debug)]
pub struct DeprecationDef {
    /// The `Deprecation` value (RFC 9745), when the operation is deprecated: `@` and the
    /// seconds since the epoch of `x-gateway.deprecation`, or `@0` when the spec gives no
    /// date (deprecated already).
    pub deprecation: Option<&'static str>,
    /// `Sunset` (RFC 8594): an HTTP date.
    pub sunset: Option<&'static str>,
    /// Its documentation, sent as `Link: <url>; rel="deprecation"` (and `rel="sunset"`).
    pub link: Option<&'static str>,
}

/// A rate: `limit` requests per `period`, with up to `burst` at once (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDef {
    /// Requests per period.
    pub limit: u64,
    /// The period.
    pub period: Duration,
    /// Requests allowed at once (at least 1; defaults to `limit` in the compiler).
    pub burst: u64,
}

/// The calendar window of a quota (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A minute.
    Minute,
    /// An hour.
    Hour,
    /// A day.
    Day,
    /// A calendar month.
    Month,
}

/// A quota: `limit` requests per calendar `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDef {
    /// Requests per window.
    pub limit: u64,
    /// The window.
    pub window: Window,
}

/// A plan from `x-gateway.plans`: what each consumer on it may do.
#[derive(Debug)]
pub struct PlanDef {
    /// Its name, as consumers' `plan` (claim or key store) gives it.
    pub name: &'static str,
    /// Its rate, if any.
    pub rate: Option<RateDef>,
    /// Its quotas.
    pub quotas: &'static [QuotaDef],
}

/// What a route-level limit is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    /// The authenticated consumer (the client IP for anonymous requests).
    Consumer,
    /// The client IP (from `X-Forwarded-For` only when the peer is a trusted proxy).
    Ip,
    /// The value of a request header (lower-case name); requests without it share one
    /// bucket.
    Header(&'static str),
    /// The value of a JWT claim.
    Claim(&'static str),
}

/// A route-level rate limit.
#[derive(Debug)]
pub struct RouteLimitDef {
    /// The rate.
    pub rate: RateDef,
    /// What it is counted per.
    pub key: LimitKey,
}

/// Where limit state lives (`x-gateway.limits`).
#[derive(Debug)]
pub enum LimitStoreDef {
    /// In this process (the default): limits hold per replica.
    Memory,
    /// In Redis, shared by every replica.
    Redis {
        /// The URL; may hold `${VAR}`.
        url: &'static str,
        /// What to do when Redis cannot answer in time.
        on_error: OnError,
        /// How long a request waits for Redis.
        timeout: Duration,
    },
}

/// What a limit does when its Redis store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Let the request through.
    Allow,
    /// Refuse it (503).
    Deny,
    /// Count it in this process instead, until Redis is back.
    Local,
}

/// `x-gateway.limits`: the limit store and who gets which plan.
#[derive(Debug)]
pub struct LimitsDef {
    /// Where state lives.
    pub store: LimitStoreDef,
    /// Index into [`Gateway::PLANS`] of the plan for consumers whose plan is not given or
    /// unknown, if any.
    pub default_plan: Option<usize>,
    /// Index into [`Gateway::PLANS`] of the plan for anonymous requests (keyed by client IP),
    /// if any.
    pub anonymous_plan: Option<usize>,
    /// Peers whose `X-Forwarded-For` is believed (CIDRs like `10.0.0.0/8` or addresses).
    pub trusted_proxies: &'static [&'static str],
}

/// One scheme inside a security requirement, with the scopes the operation needs from it.
#[derive(Debug)]
pub struct SchemeUse {
    /// Index into [`Gateway::SCHEMES`].
    pub scheme: usize,
    /// Scopes that must all be granted (OAuth2 and JWT schemes; empty for API keys).
    pub scopes: &'static [&'static str],
}

/// A security scheme from `components.securitySchemes`, with its verification settings.
#[derive(Debug)]
pub struct SchemeDef {
    /// Its name in `components.securitySchemes`.
    pub name: &'static str,
    /// How a credential is checked.
    pub kind: SchemeKind,
}

/// How a scheme checks a credential.
#[derive(Debug)]
pub enum SchemeKind {
    /// A JWT bearer token (`http`/`bearer`, `oauth2`, `openIdConnect`).
    Jwt(JwtDef),
    /// An API key looked up in the consumer key store.
    ApiKey(ApiKeyDef),
    /// A client certificate verified in the TLS handshake (OpenAPI 3.1 `mutualTLS`;
    /// `GATEWAY_TLS_CLIENT_CA`): the consumer is the certificate's subject common name.
    MutualTls,
}

/// Verification settings of a JWT scheme (`x-gateway.jwt` on the scheme).
#[derive(Debug)]
pub struct JwtDef {
    /// Where the verification keys come from.
    pub keys: KeySource,
    /// Accepted `alg` values (`RS256`, `ES256`, ...). The compiler never lets `none` in, nor
    /// an HMAC algorithm next to an asymmetric key source.
    pub algorithms: &'static [&'static str],
    /// Required `iss`, if any.
    pub issuer: Option<&'static str>,
    /// Accepted `aud` values; the token's `aud` (string or array) must contain one. Empty:
    /// `aud` is not checked.
    pub audience: &'static [&'static str],
    /// Whether a token without `exp` is rejected (the default).
    pub require_exp: bool,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The claim naming the consumer (default `sub`).
    pub consumer_claim: &'static str,
    /// The claim naming the consumer's plan, if any.
    pub plan_claim: Option<&'static str>,
    /// Claims forwarded to the upstream: (claim, header name in lower case). Client-sent
    /// headers with these names are always removed first.
    pub forward_claims: &'static [(&'static str, &'static str)],
}

/// Where a JWT scheme's keys come from. Every string may hold `${VAR}` references,
/// resolved at start-up.
#[derive(Debug)]
pub enum KeySource {
    /// A JWKS document at this URL.
    JwksUrl(&'static str),
    /// An OpenID Connect discovery document (`openIdConnectUrl`), whose `jwks_uri` is used.
    Discovery(&'static str),
    /// A PEM file with a public key (RSA, EC or Ed25519).
    PemFile(&'static str),
    /// An HMAC secret, its bytes used as written.
    Secret(&'static str),
}

/// An API-key scheme: where the client puts its key.
#[derive(Debug)]
pub struct ApiKeyDef {
    /// Header, query parameter or cookie.
    pub location: KeyLocation,
    /// The header, parameter or cookie name (a header name in lower case).
    pub name: &'static str,
}

/// Where an API key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
    /// A cookie.
    Cookie,
}

/// The consumer key store API keys are checked against (`x-gateway.consumers`).
#[derive(Debug)]
pub enum ConsumerStoreDef {
    /// A TOML file written by `gatewayc keys`, reloaded on SIGHUP; the path may hold `${VAR}`.
    File(&'static str),
    /// A Redis server shared by several replicas; the URL may hold `${VAR}`.
    Redis(&'static str),
}

/// CORS settings (`x-gateway.cors`).
#[derive(Debug)]
pub struct CorsDef {
    /// Allowed origins; `*` allows any (never together with credentials).
    pub origins: &'static [&'static str],
    /// Methods a preflight may ask for; empty: the methods of the matched path.
    pub methods: &'static [&'static str],
    /// Request headers a preflight may ask for (lower case).
    pub headers: &'static [&'static str],
    /// Response headers exposed to scripts (lower case).
    pub expose: &'static [&'static str],
    /// Whether `Access-Control-Allow-Credentials: true` is sent.
    pub credentials: bool,
    /// `Access-Control-Max-Age`, in seconds.
    pub max_age: Option<u64>,
}

/// The router's decision for one request: which operation, and the upstream path with every
/// parameter already substituted and percent-encoded.
#[derive(Debug)]
pub struct Plan {
    /// The operation selected.
    pub op: &'static OperationDef,
    /// The path to request from the upstream (before the upstream's base path is prefixed).
    pub path: UpstreamPath,
}

/// Why the router selected no operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No path template matches.
    NotFound,
    /// A template matches, but not with this method; the value is the `Allow` header.
    MethodNotAllowed(&'static str),
    /// The request names a version (in this header) the gateway does not have.
    UnknownVersion {
        /// The header that names versions (lower case).
        header: &'static str,
        /// The versions there are, for the client.
        known: &'static str,
    },
    /// A path parameter does not parse as its schema's type.
    BadParam {
        /// The parameter's name in the spec.
        name: &'static str,
        /// What was expected, for the client (`an integer`, `one of a, b`).
        expected: &'static str,
    },
}

impl RouteError {
    /// The problem response for this routing failure.
    pub fn into_problem(self) -> Problem {
        match self {
            RouteError::NotFound => Problem::not_found(),
            RouteError::MethodNotAllowed(allow) => Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("this path accepts only {allow}"),
            )
            .with_header(ALLOW, HeaderValue::from_static(allow)),
            RouteError::UnknownVersion { header, known } => Problem::new(
                StatusCode::BAD_REQUEST,
                format!("`{header}` names no version of this API; it has: {known}"),
            ),
            RouteError::BadParam { name, expected } => Problem::new(
                StatusCode::BAD_REQUEST,
                format!("path parameter `{name}` must be {expected}"),
            ),
        }
    }
}

/// A gateway generated by `gatewayc`: constants plus the compiled router.
pub trait Gateway: 'static {
    /// The gateway's name (`x-gateway.name`).
    const NAME: &'static str;
    /// The SHA-256 of the spec files it was generated from (hex), for `gateway_build_info`.
    const SPEC_DIGEST: &'static str = "";
    /// The upstreams, in the order operations index them.
    const UPSTREAMS: &'static [UpstreamDef];
    /// Every operation, in a stable order.
    const OPERATIONS: &'static [OperationDef];
    /// The security schemes operations refer to by index.
    const SCHEMES: &'static [SchemeDef] = &[];
    /// Where API keys are checked, when any scheme is an API key.
    const CONSUMERS: Option<ConsumerStoreDef> = None;
    /// CORS settings, when the gateway answers cross-origin requests.
    const CORS: Option<CorsDef> = None;
    /// Plans consumers are on.
    const PLANS: &'static [PlanDef] = &[];
    /// Limit settings; `None` when the gateway limits nothing.
    const LIMITS: Option<LimitsDef> = None;

    /// Routes a request path (already checked by [`crate::param::check_path`]) to a plan.
    fn plan(method: &Method, path: &str) -> Result<Plan, RouteError>;

    /// The header that names the API version, when versions are chosen by a header.
    const VERSION_HEADER: Option<&'static str> = None;
    /// The request header responses vary by because it chooses the version (`Vary`).
    const VARY: Option<&'static str> = None;

    /// Routes a CORS preflight, which names no version: the path counts if any version has
    /// it. Otherwise the same as [`Gateway::plan`].
    fn preflight_plan(method: &Method, path: &str) -> Result<Plan, RouteError> {
        Self::plan(method, path)
    }

    /// Routes a request, choosing the API version from its headers when versions are
    /// chosen by a header or a media type; otherwise the same as [`Gateway::plan`].
    fn plan_for(
        method: &Method,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Plan, RouteError> {
        let _ = headers;
        Self::plan(method, path)
    }
}

/// The index in `types` of the first media type the request's `Accept` header lists, in
/// the client's order (parameters such as `;q=` are ignored); `None` when it lists none of
/// them. Generated gateways whose versions are chosen by media type call this.
pub fn accepted_version(headers: &http::HeaderMap, types: &[&str]) -> Option<usize> {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.split(';').next().unwrap_or_default().trim())
        .find_map(|item| types.iter().position(|t| t.eq_ignore_ascii_case(item)))
}
